package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

// ad app permission: the API permissions an application asks for
// (requiredResourceAccess) and their consent in this tenant, as az does
// them (azure-cli role/custom.py add_permission, grant_application):
//
//   - add writes requiredResourceAccess on the application; it grants
//     nothing by itself.
//   - grant writes an oauth2PermissionGrant: delegated scopes of one API for
//     the client's service principal, for every user (AllPrincipals) or one.
//   - admin-consent grants everything the application asks for, tenant-wide:
//     its delegated scopes as AllPrincipals grants and its application
//     permissions as app role assignments, which is what Entra's admin
//     consent writes (https://learn.microsoft.com/entra/identity/enterprise-apps/grant-admin-consent,
//     "Grant admin consent … using Microsoft Graph"). az calls a portal-only
//     endpoint for this; the CLI uses the documented Graph calls instead.

func (c *cli) adAppPermission(sess sessionFunc) *cobra.Command {
	cmd := &cobra.Command{Use: "permission", Short: "API permissions of an application and their consent"}
	cmd.AddCommand(c.adPermissionAdd(sess), c.adPermissionList(sess), c.adPermissionGrant(sess),
		c.adPermissionListGrants(sess), c.adPermissionAdminConsent(sess))
	return cmd
}

// parseAPIPermissions reads az's --api-permissions: ID=Scope or ID=Role
// entries, comma- or space-separated.
func parseAPIPermissions(values []string) ([]azclient.ResourceAccess, error) {
	var out []azclient.ResourceAccess
	for _, v := range values {
		for _, e := range strings.Fields(v) {
			id, typ, ok := strings.Cut(e, "=")
			switch {
			case !ok || !azclient.IsGUID(id):
				return nil, fmt.Errorf("--api-permissions %q: give the permission's id and type, e.g. e1fe6dd8-ba31-4d61-89e7-88639da4683d=Scope", e)
			case typ != azclient.AccessScope && typ != azclient.AccessRole:
				return nil, fmt.Errorf("--api-permissions %q: the type is Scope (delegated) or Role (application)", e)
			}
			out = append(out, azclient.ResourceAccess{ID: strings.ToLower(id), Type: typ})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("--api-permissions is required")
	}
	return out, nil
}

func (c *cli) adPermissionAdd(sess sessionFunc) *cobra.Command {
	var id, api string
	var perms []string
	cmd := showCommand(c, "add --id ID|APPID --api APIAPPID --api-permissions ID=Scope|Role...",
		"Add API permissions to what an application asks for (grant or admin-consent makes them effective)", cobra.NoArgs,
		withGraph(sess, func(ctx context.Context, g *azclient.Graph) (*azclient.Application, error) {
			add, err := parseAPIPermissions(perms)
			if err != nil {
				return nil, err
			}
			if !azclient.IsGUID(api) {
				return nil, fmt.Errorf("--api %q must be the API's appId (Microsoft Graph: 00000003-0000-0000-c000-000000000000)", api)
			}
			app, err := g.GetApplication(ctx, id)
			if err != nil {
				return nil, err
			}
			rra := app.RequiredResourceAccess
			i := slices.IndexFunc(rra, func(r azclient.RequiredResourceAccess) bool { return strings.EqualFold(r.ResourceAppID, api) })
			if i < 0 {
				rra = append(rra, azclient.RequiredResourceAccess{ResourceAppID: strings.ToLower(api)})
				i = len(rra) - 1
			}
			for _, a := range add {
				if !slices.ContainsFunc(rra[i].ResourceAccess, func(e azclient.ResourceAccess) bool {
					return strings.EqualFold(e.ID, a.ID) && e.Type == a.Type
				}) {
					rra[i].ResourceAccess = append(rra[i].ResourceAccess, a)
				}
			}
			if err := g.UpdateApplication(ctx, app.ID, map[string]any{"requiredResourceAccess": rra}); err != nil {
				return nil, err
			}
			c.notef("Run 'tenantbridge ad app permission grant --id %s --api %s --scope ...' or 'tenantbridge ad app permission admin-consent --id %s' to make the change effective.", id, api, id)
			return g.GetApplication(ctx, app.ID)
		}), appFields)
	objectOrAppID.add(cmd, &id)
	requiredFlag(cmd, &api, "api", "", "appId of the API, e.g. 00000003-0000-0000-c000-000000000000 for Microsoft Graph (required)")
	cmd.Flags().StringSliceVar(&perms, "api-permissions", nil, "permissions as ID=Scope (delegated) or ID=Role (application), comma- or space-separated (required)")
	_ = cmd.MarkFlagRequired("api-permissions")
	return cmd
}

var permissionHeader = []string{"API", "PERMISSION ID", "TYPE"}

func (c *cli) adPermissionList(sess sessionFunc) *cobra.Command {
	var id string
	cmd := listCommand(c, "List the API permissions an application asks for",
		withGraph(sess, func(ctx context.Context, g *azclient.Graph) ([]azclient.RequiredResourceAccess, error) {
			app, err := g.GetApplication(ctx, id)
			if err != nil {
				return nil, err
			}
			return app.RequiredResourceAccess, nil
		}), permissionHeader, func(r azclient.RequiredResourceAccess) []string {
			var ids, types []string
			for _, a := range r.ResourceAccess {
				ids = append(ids, a.ID)
				types = append(types, a.Type)
			}
			return []string{r.ResourceAppID, strings.Join(ids, " "), strings.Join(types, " ")}
		})
	objectOrAppID.add(cmd, &id)
	return cmd
}

var grantHeader = []string{"ID", "CLIENT", "RESOURCE", "CONSENT TYPE", "PRINCIPAL", "SCOPE"}

func grantRow(g azclient.OAuth2PermissionGrant) []string {
	return []string{g.ID, g.ClientID, g.ResourceID, g.ConsentType, g.PrincipalID, g.Scope}
}

func (c *cli) adPermissionGrant(sess sessionFunc) *cobra.Command {
	var id, api, consentType, principal string
	var scopes []string
	cmd := showCommand(c, "grant --id APPID --api APIAPPID --scope SCOPE...",
		"Grant delegated permissions of an API to an application's service principal", cobra.NoArgs,
		withGraph(sess, func(ctx context.Context, g *azclient.Graph) (*azclient.OAuth2PermissionGrant, error) {
			scope := strings.Join(strings.Fields(strings.Join(scopes, " ")), " ")
			switch {
			case scope == "":
				return nil, errors.New("--scope is required: the delegated permissions' values, e.g. User.Read")
			case consentType != azclient.ConsentAllPrincipals && consentType != azclient.ConsentPrincipal:
				return nil, fmt.Errorf("--consent-type %q: use AllPrincipals or Principal", consentType)
			case consentType == azclient.ConsentPrincipal && principal == "":
				return nil, errors.New("--principal-id is required when --consent-type is Principal")
			case consentType == azclient.ConsentAllPrincipals && principal != "":
				return nil, errors.New("--principal-id goes with --consent-type Principal")
			}
			client, err := g.GetServicePrincipal(ctx, id)
			if err != nil {
				return nil, fmt.Errorf("--id %s: the application's service principal: %w", id, err)
			}
			resource, err := g.GetServicePrincipal(ctx, api)
			if err != nil {
				return nil, fmt.Errorf("--api %s: %w", api, err)
			}
			// az replaces the grant it makes; only the one for the same
			// consent type and user, so that other users' consents stay.
			existing, err := g.ListOAuth2PermissionGrants(ctx, "clientId eq "+azclient.ODataString(client.ID))
			if err != nil {
				return nil, err
			}
			for _, e := range existing {
				if strings.EqualFold(e.ResourceID, resource.ID) && e.ConsentType == consentType && strings.EqualFold(e.PrincipalID, principal) {
					if err := g.DeleteOAuth2PermissionGrant(ctx, e.ID); err != nil {
						return nil, fmt.Errorf("replacing grant %s: %w", e.ID, err)
					}
				}
			}
			return g.CreateOAuth2PermissionGrant(ctx, azclient.OAuth2PermissionGrant{ClientID: client.ID, ConsentType: consentType,
				PrincipalID: principal, ResourceID: resource.ID, Scope: scope})
		}), func(gr *azclient.OAuth2PermissionGrant) table {
			return fields("id", gr.ID, "clientId", gr.ClientID, "resourceId", gr.ResourceID, "consentType", gr.ConsentType,
				"principalId", gr.PrincipalID, "scope", gr.Scope)
		})
	requiredFlag(cmd, &id, "id", "", "appId or service principal object id of the client application (required)")
	requiredFlag(cmd, &api, "api", "", "appId or service principal object id of the API (required)")
	cmd.Flags().StringSliceVar(&scopes, "scope", nil, "delegated permissions to grant, space- or comma-separated, e.g. \"User.Read Mail.Read\" (required)")
	cmd.Flags().StringVar(&consentType, "consent-type", azclient.ConsentAllPrincipals, "AllPrincipals (every user) or Principal (one user, --principal-id)")
	cmd.Flags().StringVar(&principal, "principal-id", "", "object id of the user, with --consent-type Principal")
	_ = cmd.MarkFlagRequired("scope")
	return cmd
}

func (c *cli) adPermissionListGrants(sess sessionFunc) *cobra.Command {
	var id string
	cmd := listCommand(c, "List the delegated permission grants of an application's service principal",
		withGraph(sess, func(ctx context.Context, g *azclient.Graph) ([]azclient.OAuth2PermissionGrant, error) {
			sp, err := g.GetServicePrincipal(ctx, id)
			if err != nil {
				return nil, err
			}
			return g.ListOAuth2PermissionGrants(ctx, "clientId eq "+azclient.ODataString(sp.ID))
		}), grantHeader, grantRow)
	cmd.Use = "list-grants"
	requiredFlag(cmd, &id, "id", "", "appId or service principal object id of the client application (required)")
	return cmd
}

// consented is one permission admin-consent dealt with.
type consented struct {
	API        string `json:"api"`        // the API's appId
	Type       string `json:"type"`       // Scope or Role
	Permission string `json:"permission"` // the scope's or app role's value
	Result     string `json:"result"`     // granted, or alreadyGranted
}

func (c *cli) adPermissionAdminConsent(sess sessionFunc) *cobra.Command {
	var id string
	cmd := listCommand(c, "Grant, for the whole tenant, every API permission an application asks for",
		withGraph(sess, func(ctx context.Context, g *azclient.Graph) ([]consented, error) {
			return adminConsent(ctx, g, id)
		}), []string{"API", "TYPE", "PERMISSION", "RESULT"}, func(x consented) []string {
			return []string{x.API, x.Type, x.Permission, x.Result}
		})
	cmd.Use = "admin-consent"
	objectOrAppID.add(cmd, &id)
	return cmd
}

// adminConsent grants everything the application asks for in the tenant:
// the client's service principal is created if missing (as consent
// provisions it), delegated scopes are merged into the AllPrincipals grant
// of each API, and each application permission becomes an app role
// assignment. A permission the API does not offer stops it before anything
// is written for that API.
func adminConsent(ctx context.Context, g *azclient.Graph, id string) ([]consented, error) {
	app, err := g.GetApplication(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(app.RequiredResourceAccess) == 0 {
		return nil, fmt.Errorf("application %s asks for no API permissions: add some with 'ad app permission add'", app.AppID)
	}
	client, err := g.GetServicePrincipal(ctx, app.AppID)
	if azclient.IsNotFound(err) {
		client, err = g.CreateServicePrincipal(ctx, app.AppID)
	}
	if err != nil {
		return nil, fmt.Errorf("the application's service principal: %w", err)
	}
	// The grants are read only when there are scopes to grant, so that a
	// caller without permission to read grants can still consent to
	// application permissions (what an older tenant's bootstrap
	// administrator needs to give itself RoleManagement.ReadWrite.Directory).
	var grants []azclient.OAuth2PermissionGrant
	grantsRead := false
	assigned, err := g.ListAppRoleAssignments(ctx, client.ID)
	if err != nil {
		return nil, err
	}
	var out []consented
	for _, rra := range app.RequiredResourceAccess {
		api, err := g.GetServicePrincipal(ctx, rra.ResourceAppID)
		if err != nil {
			return out, fmt.Errorf("API %s has no service principal in this tenant: %w", rra.ResourceAppID, err)
		}
		var scopes []string
		var roles []azclient.AppRole
		for _, ra := range rra.ResourceAccess {
			switch ra.Type {
			case azclient.AccessScope:
				i := slices.IndexFunc(api.OAuth2PermissionScopes, func(s azclient.PermissionScope) bool { return strings.EqualFold(s.ID, ra.ID) })
				if i < 0 {
					return out, fmt.Errorf("API %s (%s) offers no delegated permission %s", api.DisplayName, api.AppID, ra.ID)
				}
				scopes = append(scopes, api.OAuth2PermissionScopes[i].Value)
			case azclient.AccessRole:
				i := slices.IndexFunc(api.AppRoles, func(r azclient.AppRole) bool { return strings.EqualFold(r.ID, ra.ID) })
				if i < 0 || !slices.Contains(api.AppRoles[i].AllowedMemberTypes, "Application") {
					return out, fmt.Errorf("API %s (%s) offers no application permission %s", api.DisplayName, api.AppID, ra.ID)
				}
				roles = append(roles, api.AppRoles[i])
			default:
				return out, fmt.Errorf("permission %s of API %s has type %q, not Scope or Role", ra.ID, api.AppID, ra.Type)
			}
		}
		if len(scopes) > 0 {
			if !grantsRead {
				if grants, err = g.ListOAuth2PermissionGrants(ctx, "clientId eq "+azclient.ODataString(client.ID)); err != nil {
					return out, err
				}
				grantsRead = true
			}
			done, err := grantAllPrincipals(ctx, g, grants, client.ID, api.ID, scopes)
			if err != nil {
				return out, err
			}
			for _, s := range scopes {
				result := "granted"
				if done[s] {
					result = "alreadyGranted"
				}
				out = append(out, consented{API: api.AppID, Type: azclient.AccessScope, Permission: s, Result: result})
			}
		}
		for _, r := range roles {
			result := "alreadyGranted"
			if !slices.ContainsFunc(assigned, func(a azclient.AppRoleAssignment) bool {
				return strings.EqualFold(a.ResourceID, api.ID) && strings.EqualFold(a.AppRoleID, r.ID)
			}) {
				if _, err := g.AssignAppRole(ctx, client.ID, api.ID, r.ID); err != nil {
					return out, fmt.Errorf("granting %s of %s: %w", r.Value, api.DisplayName, err)
				}
				result = "granted"
			}
			out = append(out, consented{API: api.AppID, Type: azclient.AccessRole, Permission: r.Value, Result: result})
		}
	}
	return out, nil
}

// grantAllPrincipals makes the client's AllPrincipals grant on the
// resource hold scopes, adding to the grant there is (Graph allows one per
// client and resource) or creating it. It returns the scopes that were
// granted already.
func grantAllPrincipals(ctx context.Context, g *azclient.Graph, grants []azclient.OAuth2PermissionGrant, clientID, resourceID string, scopes []string) (map[string]bool, error) {
	had := map[string]bool{}
	for _, gr := range grants {
		if gr.ConsentType != azclient.ConsentAllPrincipals || !strings.EqualFold(gr.ResourceID, resourceID) {
			continue
		}
		current := strings.Fields(gr.Scope)
		merged := slices.Clone(current)
		for _, s := range scopes {
			if slices.Contains(current, s) {
				had[s] = true
			} else if !slices.Contains(merged, s) {
				merged = append(merged, s)
			}
		}
		if len(merged) == len(current) {
			return had, nil
		}
		return had, g.UpdateOAuth2PermissionGrantScope(ctx, gr.ID, strings.Join(merged, " "))
	}
	_, err := g.CreateOAuth2PermissionGrant(ctx, azclient.OAuth2PermissionGrant{ClientID: clientID,
		ConsentType: azclient.ConsentAllPrincipals, ResourceID: resourceID, Scope: strings.Join(slices.Compact(slices.Sorted(slices.Values(scopes))), " ")})
	return had, err
}
