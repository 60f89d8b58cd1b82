package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

// armEndpoint and armScope are where and for what role commands call
// Resource Manager; the Local transport sends them to tenantbridge.
const (
	armEndpoint = "https://management.azure.com"
	armScope    = "https://management.azure.com/.default"
)

// armAPIVersion is the api-version the CLI sends to path: each resource
// type takes only its own versions, as in Azure (Microsoft.Resources'
// subscriptions and groups refuse 2022-04-01 with
// InvalidApiVersionParameter). The versions are the current SDKs':
// armauthorization v2 2022-04-01, armservicebus v2 2022-10-01-preview,
// armsubscriptions 2022-12-01.
func armAPIVersion(path string) string {
	segs := strings.Split(path, "/")
	ns := ""
	for i := len(segs) - 3; i >= 0 && ns == ""; i-- {
		if strings.EqualFold(segs[i], "providers") {
			ns = strings.ToLower(segs[i+1])
		}
	}
	switch ns {
	case "microsoft.authorization", "tenantbridge.authorization":
		return "2022-04-01"
	case "microsoft.servicebus":
		return "2022-10-01-preview"
	case "microsoft.keyvault":
		return "2023-07-01" // armkeyvault's GA before v2
	case "microsoft.managedidentity":
		return "2023-01-31" // armmsi's GA
	case "microsoft.solutions":
		return "2021-07-01" // armmanagedapplications
	}
	return "2022-12-01"
}

// armClient is a minimal Resource Manager client for the role commands.
type armClient struct {
	pl runtime.Pipeline
}

func (c *cli) armClient(s *session) (*armClient, error) {
	opts, _, err := c.clientOptions()
	if err != nil {
		return nil, err
	}
	bearer := runtime.NewBearerTokenPolicy(s.cred, []string{armScope}, nil)
	return &armClient{pl: runtime.NewPipeline("tenantbridge/cli", "v0.1.0", runtime.PipelineOptions{PerRetry: []policy.Policy{bearer}}, &opts)}, nil
}

// armCallError is an ARM error response.
type armCallError struct {
	Status        int
	Code, Message string
}

func (e *armCallError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("%s: %s (HTTP %d)", e.Code, e.Message, e.Status)
}

// do calls path (with query) and decodes a JSON answer into out.
func (a *armClient) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	if query == nil {
		query = url.Values{}
	}
	query.Set("api-version", armAPIVersion(path))
	req, err := runtime.NewRequest(ctx, method, armEndpoint+(&url.URL{Path: path}).EscapedPath()+"?"+strings.ReplaceAll(query.Encode(), "+", "%20"))
	if err != nil {
		return err
	}
	req.Raw().Header.Set("Accept", "application/json")
	if body != nil {
		if err := runtime.MarshalAsJSON(req, body); err != nil {
			return err
		}
	}
	resp, err := a.pl.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var doc struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(raw, &doc)
		return &armCallError{Status: resp.StatusCode, Code: doc.Error.Code, Message: doc.Error.Message}
	}
	if out == nil || resp.StatusCode == http.StatusNoContent || len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("arm %s %s: %w", method, path, err)
	}
	return nil
}

// Wire shapes of the role commands.
type (
	roleAssignment struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		// RoleDefinitionName is the role's name, which the CLI looks up
		// as az does (az role assignment list prints roleDefinitionName);
		// Resource Manager's answer has only the definition's id.
		RoleDefinitionName string `json:"roleDefinitionName,omitempty"`
		Properties         struct {
			RoleDefinitionID string `json:"roleDefinitionId"`
			PrincipalID      string `json:"principalId"`
			PrincipalType    string `json:"principalType"`
			Scope            string `json:"scope"`
			CreatedOn        string `json:"createdOn,omitempty"`
		} `json:"properties"`
	}
	roleDefinition struct {
		ID         string `json:"id"`
		Name       string `json:"name"`
		Properties struct {
			RoleName    string `json:"roleName"`
			Type        string `json:"type"`
			Description string `json:"description"`
			Permissions []struct {
				Actions        []string `json:"actions"`
				NotActions     []string `json:"notActions"`
				DataActions    []string `json:"dataActions"`
				NotDataActions []string `json:"notDataActions"`
			} `json:"permissions"`
			AssignableScopes []string `json:"assignableScopes"`
		} `json:"properties"`
	}
	explanation struct {
		Allowed          bool     `json:"allowed"`
		Because          string   `json:"because"`
		Operation        string   `json:"operation"`
		DataAction       bool     `json:"dataAction"`
		Scope            string   `json:"scope"`
		TenantID         string   `json:"tenantId"`
		RoleAssignmentID string   `json:"roleAssignmentId,omitempty"`
		RoleDefinitionID string   `json:"roleDefinitionId,omitempty"`
		DenyAssignmentID string   `json:"denyAssignmentId,omitempty"`
		Path             []string `json:"path,omitempty"`
	}
)

const authorizationProvider = "/providers/Microsoft.Authorization/"

// roleCtx is a signed-in role command: the session and its ARM client.
type roleCtx struct {
	s   *session
	arm *armClient
}

func (c *cli) roleSession(tenant string) (*roleCtx, error) {
	s, err := c.session(tenant)
	if err != nil {
		return nil, err
	}
	a, err := c.armClient(s)
	if err != nil {
		return nil, err
	}
	return &roleCtx{s: s, arm: a}, nil
}

// defaultScope is the profile's subscription, or the first one ARM lists.
func (r *roleCtx) defaultScope(ctx context.Context) (string, error) {
	if r.s.profile.SubscriptionID != "" {
		return "/subscriptions/" + r.s.profile.SubscriptionID, nil
	}
	var subs struct {
		Value []struct {
			SubscriptionID string `json:"subscriptionId"`
		} `json:"value"`
	}
	if err := r.arm.do(ctx, http.MethodGet, "/subscriptions", nil, nil, &subs); err != nil {
		return "", err
	}
	if len(subs.Value) == 0 {
		return "", errors.New("no subscription is visible to this profile: pass --scope")
	}
	return "/subscriptions/" + subs.Value[0].SubscriptionID, nil
}

func (r *roleCtx) scope(ctx context.Context, scope string) (string, error) {
	if scope == "" {
		return r.defaultScope(ctx)
	}
	if !strings.HasPrefix(scope, "/") {
		return "", fmt.Errorf("--scope %q must be a resource id starting with '/'", scope)
	}
	return strings.TrimSuffix(scope, "/"), nil
}

// principal resolves --assignee: an object id, a service principal's
// appId, or a user principal name, to an object id.
func (r *roleCtx) principal(ctx context.Context, assignee string) (string, error) {
	if assignee == "" {
		return "", errors.New("--assignee is required")
	}
	if azclient.IsGUID(assignee) {
		sp, err := r.s.graph.GetServicePrincipal(ctx, assignee)
		if err == nil {
			return sp.ID, nil
		}
		if !azclient.IsNotFound(err) {
			var ae *azclient.ResponseError
			if !errors.As(err, &ae) || ae.StatusCode != http.StatusForbidden {
				return "", err
			}
		}
		return strings.ToLower(assignee), nil // a user or group, or not visible through Graph
	}
	u, err := r.s.graph.GetUser(ctx, assignee)
	if err != nil {
		return "", fmt.Errorf("--assignee %s: %w", assignee, err)
	}
	return u.ID, nil
}

// roleID resolves --role: a role definition GUID or id, or a role name.
func (r *roleCtx) roleID(ctx context.Context, scope, role string) (string, error) {
	if role == "" {
		return "", errors.New("--role is required")
	}
	if i := strings.LastIndex(strings.ToLower(role), "/roledefinitions/"); i >= 0 {
		role = role[i+len("/roledefinitions/"):]
	}
	if azclient.IsGUID(role) {
		return strings.ToLower(role), nil
	}
	var defs struct{ Value []roleDefinition }
	q := url.Values{"$filter": {"roleName eq " + azclient.ODataString(role)}}
	if err := r.arm.do(ctx, http.MethodGet, scope+authorizationProvider+"roleDefinitions", q, nil, &defs); err != nil {
		return "", err
	}
	if len(defs.Value) != 1 {
		return "", fmt.Errorf("--role %q matches %d role definitions", role, len(defs.Value))
	}
	return defs.Value[0].Name, nil
}

var roleAssignmentHeader = []string{"NAME", "ROLE", "PRINCIPAL", "TYPE", "SCOPE"}

// scoped opens the role session and resolves scope (default: the subscription).
func scoped(ctx context.Context, sess roleSessionFunc, scope string) (*roleCtx, string, error) {
	r, err := sess()
	if err != nil {
		return nil, scope, err
	}
	scope, err = r.scope(ctx, scope)
	return r, scope, err
}

// armList GETs the collection at path, filtered by the terms joined with "and".
func armList[T any](ctx context.Context, r *roleCtx, path string, terms []string) ([]T, error) {
	q := url.Values{}
	if len(terms) > 0 {
		q.Set("$filter", strings.Join(terms, " and "))
	}
	var out struct{ Value []T }
	err := r.arm.do(ctx, http.MethodGet, path, q, nil, &out)
	return out.Value, err
}

// roleAssignmentRow shows an assignment by its name (the GUID its id ends
// with) and its role by name where known, so that a row fits a terminal.
func roleAssignmentRow(a roleAssignment) []string {
	role := a.RoleDefinitionName
	if role == "" {
		role = a.Properties.RoleDefinitionID[strings.LastIndex(a.Properties.RoleDefinitionID, "/")+1:]
	}
	return []string{a.Name, role, a.Properties.PrincipalID, a.Properties.PrincipalType, a.Properties.Scope}
}

// nameRoles sets RoleDefinitionName on each assignment from the role
// definitions visible at scope (one list call).
func nameRoles(ctx context.Context, r *roleCtx, scope string, as []roleAssignment) error {
	if len(as) == 0 {
		return nil
	}
	defs, err := armList[roleDefinition](ctx, r, scope+authorizationProvider+"roleDefinitions", nil)
	if err != nil {
		return err
	}
	names := make(map[string]string, len(defs))
	for _, d := range defs {
		names[strings.ToLower(d.Name)] = d.Properties.RoleName
	}
	for i := range as {
		id := as[i].Properties.RoleDefinitionID
		as[i].RoleDefinitionName = names[strings.ToLower(id[strings.LastIndex(id, "/")+1:])]
	}
	return nil
}

// roleCommand is az role: Azure RBAC role assignments and definitions,
// through Resource Manager.
func (c *cli) roleCommand() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{Use: "role", Short: "Manage Azure RBAC role assignments and definitions through Resource Manager"}
	cmd.PersistentFlags().StringVarP(&tenant, "tenant", "t", "", "tenant name, domain or id (default: the only profile)")
	sess := func() (*roleCtx, error) { return c.roleSession(tenant) }

	assignment := &cobra.Command{Use: "assignment", Short: "Role assignments"}
	assignment.AddCommand(c.roleAssignmentCreate(sess), c.roleAssignmentList(sess), c.roleAssignmentDelete(sess))
	definition := &cobra.Command{Use: "definition", Short: "Role definitions"}
	definition.AddCommand(c.roleDefinitionList(sess))
	cmd.AddCommand(assignment, definition, c.roleExplain(sess))
	return cmd
}

type roleSessionFunc func() (*roleCtx, error)

// principalTypes are az's --assignee-principal-type choices, ARM's
// principalType values (https://learn.microsoft.com/rest/api/authorization/role-assignments/create,
// PrincipalType). ARM refuses one that does not match the principal
// (UnmatchedPrincipalType).
var principalTypes = []string{"User", "Group", "ServicePrincipal", "ForeignGroup", "Device"}

// roleAssignmentCreate is az role assignment create. --assignee is looked
// up in Graph; --assignee-object-id is taken as it is, with no Graph call
// (az: "nothing to resolve, do not call Graph"), for a caller that cannot
// read the directory or a principal Graph does not show yet.
func (c *cli) roleAssignmentCreate(sess roleSessionFunc) *cobra.Command {
	var assignee, objectID, principalType, role, scope string
	cmd := &cobra.Command{
		Use:   "create (--assignee ID | --assignee-object-id ID [--assignee-principal-type TYPE]) --role NAME|ID [--scope SCOPE]",
		Short: "Assign a role to a user, group or service principal at a scope (default: the subscription)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// az's usage rules (azure-cli role/custom.py create_role_assignment).
			switch {
			case (assignee == "") == (objectID == ""):
				return errors.New("usage error: --assignee STRING | --assignee-object-id GUID")
			case principalType != "" && objectID == "":
				return errors.New("usage error: --assignee-object-id GUID --assignee-principal-type TYPE")
			case objectID != "" && !azclient.IsGUID(objectID):
				return fmt.Errorf("--assignee-object-id %q is not an object id (a GUID)", objectID)
			}
			if principalType != "" {
				i := slices.IndexFunc(principalTypes, func(t string) bool { return strings.EqualFold(t, principalType) })
				if i < 0 {
					return fmt.Errorf("--assignee-principal-type %q: use one of %s", principalType, strings.Join(principalTypes, ", "))
				}
				principalType = principalTypes[i]
			}
			ctx := cmd.Context()
			var r *roleCtx
			var err error
			if r, scope, err = scoped(ctx, sess, scope); err != nil {
				return err
			}
			principal := strings.ToLower(objectID)
			if assignee != "" {
				if principal, err = r.principal(ctx, assignee); err != nil {
					return err
				}
			}
			roleID, err := r.roleID(ctx, scope, role)
			if err != nil {
				return err
			}
			var out roleAssignment
			props := map[string]any{"roleDefinitionId": roleID, "principalId": principal}
			if principalType != "" {
				props["principalType"] = principalType
			}
			body := map[string]any{"properties": props}
			if err := r.arm.do(ctx, http.MethodPut, scope+authorizationProvider+"roleAssignments/"+uuid.NewString(), nil, body, &out); err != nil {
				return err
			}
			named := []roleAssignment{out}
			if err := nameRoles(ctx, r, scope, named); err != nil {
				return err
			}
			out = named[0]
			return c.render(cmd, out, func() table { return table{header: roleAssignmentHeader, rows: [][]string{roleAssignmentRow(out)}} })
		},
	}
	cmd.Flags().StringVar(&assignee, "assignee", "", "object id, service principal appId or user principal name, looked up in Graph")
	cmd.Flags().StringVar(&objectID, "assignee-object-id", "", "object id of the principal, used as it is (no Graph lookup)")
	cmd.Flags().StringVar(&principalType, "assignee-principal-type", "", "with --assignee-object-id: "+strings.Join(principalTypes, ", "))
	cmd.Flags().StringVar(&role, "role", "", "role name or role definition id (required)")
	cmd.Flags().StringVar(&scope, "scope", "", "scope, e.g. /subscriptions/ID/resourceGroups/NAME (default: the subscription)")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func (c *cli) roleAssignmentList(sess roleSessionFunc) *cobra.Command {
	var assignee, scope string
	var atScope bool
	cmd := listCommand(c, "List role assignments at, above and below a scope (default: the subscription)",
		func(cmd *cobra.Command, _ []string) ([]roleAssignment, error) {
			ctx := cmd.Context()
			var r *roleCtx
			var err error
			if r, scope, err = scoped(ctx, sess, scope); err != nil {
				return nil, err
			}
			var terms []string
			if atScope {
				terms = append(terms, "atScope()")
			}
			if assignee != "" {
				principal, err := r.principal(ctx, assignee)
				if err != nil {
					return nil, err
				}
				terms = append(terms, "principalId eq "+azclient.ODataString(principal))
			}
			as, err := armList[roleAssignment](ctx, r, scope+authorizationProvider+"roleAssignments", terms)
			if err != nil {
				return nil, err
			}
			return as, nameRoles(ctx, r, scope, as)
		}, roleAssignmentHeader, roleAssignmentRow)
	cmd.Flags().StringVar(&assignee, "assignee", "", "only this principal's assignments (object id, appId or UPN)")
	cmd.Flags().StringVar(&scope, "scope", "", "scope (default: the subscription)")
	cmd.Flags().BoolVar(&atScope, "at-scope", false, "only assignments at the scope and above it")
	return cmd
}

// roleAssignmentDelete is az role assignment delete: by --ids, or every
// assignment that matches --assignee, --role and --scope (az's
// delete_role_assignments and _search_role_assignments in azure-cli
// role/custom.py): assignments at exactly the scope (or, with
// --include-inherited, at the scope and above it), of that role and that
// principal. Matching nothing is an error, as in az; deleting every
// assignment of the subscription (no filter at all) needs --yes.
func (c *cli) roleAssignmentDelete(sess roleSessionFunc) *cobra.Command {
	var ids []string
	var assignee, objectID, role, scope string
	var inherited, yes bool
	cmd := &cobra.Command{
		Use:   "delete (--ids ID... | [--assignee ID] [--role NAME|ID] [--scope SCOPE])",
		Short: "Delete role assignments by id, or those matching an assignee, role and scope",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			filtered := assignee != "" || objectID != "" || role != "" || scope != "" || inherited
			switch {
			case len(ids) > 0 && filtered:
				return errors.New("usage error: --ids, or --assignee/--role/--scope, not both")
			case assignee != "" && objectID != "":
				return errors.New("usage error: --assignee STRING | --assignee-object-id GUID")
			case objectID != "" && !azclient.IsGUID(objectID):
				return fmt.Errorf("--assignee-object-id %q is not an object id (a GUID)", objectID)
			case len(ids) == 0 && !filtered && !yes:
				return errors.New("this would delete every role assignment of the subscription: name --assignee, --role or --scope, or pass --yes")
			}
			ctx := cmd.Context()
			if len(ids) > 0 {
				r, err := sess()
				if err != nil {
					return err
				}
				return c.deleteAssignments(ctx, r, ids)
			}
			r, scope, err := scoped(ctx, sess, scope)
			if err != nil {
				return err
			}
			matched, err := r.matchAssignments(ctx, scope, assignee, objectID, role, inherited)
			if err != nil {
				return err
			}
			if len(matched) == 0 {
				return errors.New("no matched assignments were found to delete")
			}
			return c.deleteAssignments(ctx, r, matched)
		},
	}
	cmd.Flags().StringSliceVar(&ids, "ids", nil, "role assignment resource ids")
	cmd.Flags().StringVar(&assignee, "assignee", "", "only this principal's assignments (object id, appId or UPN, looked up in Graph)")
	cmd.Flags().StringVar(&objectID, "assignee-object-id", "", "only this principal's assignments (object id, no Graph lookup)")
	cmd.Flags().StringVar(&role, "role", "", "only assignments of this role (name or role definition id)")
	cmd.Flags().StringVar(&scope, "scope", "", "only assignments at this scope (default: the subscription)")
	cmd.Flags().BoolVar(&inherited, "include-inherited", false, "also assignments at scopes above --scope")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "with no filter, delete every assignment of the subscription")
	return cmd
}

// deleteAssignments deletes role assignments by resource id.
func (c *cli) deleteAssignments(ctx context.Context, r *roleCtx, ids []string) error {
	for _, id := range ids {
		if !strings.Contains(strings.ToLower(id), strings.ToLower(authorizationProvider)+"roleassignments/") {
			return fmt.Errorf("--ids %q is not a role assignment id (…/providers/Microsoft.Authorization/roleAssignments/GUID)", id)
		}
		if err := r.arm.do(ctx, http.MethodDelete, id, nil, nil, nil); err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		c.notef("deleted %s", id)
	}
	return nil
}

// matchAssignments lists the assignments at scope (ARM's atScope(): at the
// scope and above it) and keeps those az's delete would: at the scope
// itself unless inherited, of the role and principal named.
func (r *roleCtx) matchAssignments(ctx context.Context, scope, assignee, objectID, role string, inherited bool) ([]string, error) {
	principal := strings.ToLower(objectID)
	if assignee != "" {
		var err error
		if principal, err = r.principal(ctx, assignee); err != nil {
			return nil, err
		}
	}
	roleID := ""
	if role != "" {
		var err error
		if roleID, err = r.roleID(ctx, scope, role); err != nil {
			return nil, err
		}
	}
	all, err := armList[roleAssignment](ctx, r, scope+authorizationProvider+"roleAssignments", []string{"atScope()"})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, a := range all {
		p := a.Properties
		switch {
		case !inherited && !strings.EqualFold(strings.TrimSuffix(p.Scope, "/"), scope):
		case inherited && !scopeWithin(scope, p.Scope):
		case roleID != "" && !strings.EqualFold(p.RoleDefinitionID[strings.LastIndex(p.RoleDefinitionID, "/")+1:], roleID):
		case principal != "" && !strings.EqualFold(p.PrincipalID, principal):
		default:
			ids = append(ids, a.ID)
		}
	}
	return ids, nil
}

// scopeWithin reports whether scope is at or below parent ("/" is every
// scope's root).
func scopeWithin(scope, parent string) bool {
	scope, parent = strings.ToLower(strings.TrimSuffix(scope, "/")), strings.ToLower(strings.TrimSuffix(parent, "/"))
	return parent == "" || scope == parent || strings.HasPrefix(scope, parent+"/")
}

func (c *cli) roleDefinitionList(sess roleSessionFunc) *cobra.Command {
	var scope, name string
	var custom bool
	cmd := listCommand(c, "List role definitions (built-in and custom)",
		func(cmd *cobra.Command, _ []string) ([]roleDefinition, error) {
			ctx := cmd.Context()
			var r *roleCtx
			var err error
			if r, scope, err = scoped(ctx, sess, scope); err != nil {
				return nil, err
			}
			var terms []string
			if name != "" {
				terms = append(terms, "roleName eq "+azclient.ODataString(name))
			}
			if custom {
				terms = append(terms, "type eq 'CustomRole'")
			}
			return armList[roleDefinition](ctx, r, scope+authorizationProvider+"roleDefinitions", terms)
		}, []string{"ID", "NAME", "TYPE", "DESCRIPTION"}, func(d roleDefinition) []string {
			return []string{d.Name, d.Properties.RoleName, d.Properties.Type, d.Properties.Description}
		})
	cmd.Flags().StringVar(&scope, "scope", "", "scope (default: the subscription)")
	cmd.Flags().StringVar(&name, "name", "", "only the role of this name")
	cmd.Flags().BoolVar(&custom, "custom-role-only", false, "only custom roles")
	return cmd
}

func (c *cli) roleExplain(sess roleSessionFunc) *cobra.Command {
	var assignee, action, scope string
	var dataAction bool
	cmd := &cobra.Command{
		Use:   "explain --assignee ID --action ACTION [--scope SCOPE] [--data-action]",
		Short: "Say whether a principal may perform an operation at a scope, and why",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var r *roleCtx
			var err error
			if r, scope, err = scoped(ctx, sess, scope); err != nil {
				return err
			}
			principal, err := r.principal(ctx, assignee)
			if err != nil {
				return err
			}
			q := url.Values{"principalId": {principal}, "action": {action}, "scope": {scope}}
			if dataAction {
				q.Set("dataAction", "true")
			}
			var out explanation
			if err := r.arm.do(ctx, http.MethodGet, "/providers/TenantBridge.Authorization/explain", q, nil, &out); err != nil {
				return err
			}
			return c.render(cmd, out, func() table {
				verdict := "DENIED"
				if out.Allowed {
					verdict = "ALLOWED"
				}
				rows := [][]string{{"decision", verdict}, {"because", out.Because}, {"operation", out.Operation}, {"scope", out.Scope}}
				if out.RoleAssignmentID != "" {
					rows = append(rows, []string{"roleAssignment", out.RoleAssignmentID})
				}
				if out.DenyAssignmentID != "" {
					rows = append(rows, []string{"denyAssignment", out.DenyAssignmentID})
				}
				if len(out.Path) > 0 {
					rows = append(rows, []string{"path", strings.Join(out.Path, " → ")})
				}
				return table{rows: rows}
			})
		},
	}
	cmd.Flags().StringVar(&assignee, "assignee", "", "object id, service principal appId or user principal name (required)")
	cmd.Flags().StringVar(&action, "action", "", "the operation, e.g. Microsoft.KeyVault/vaults/read (required)")
	cmd.Flags().StringVar(&scope, "scope", "", "scope (default: the subscription)")
	cmd.Flags().BoolVar(&dataAction, "data-action", false, "the operation is a data action")
	_ = cmd.MarkFlagRequired("assignee")
	_ = cmd.MarkFlagRequired("action")
	return cmd
}
