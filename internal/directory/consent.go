package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// This file holds the consent model: delegated permission grants
// (oauth2PermissionGrants), the directory roles that decide who may consent
// for an organization, each tenant's sign-in policy, and GrantConsent,
// which is what accepting a consent page does.

// Consent types of a delegated permission grant, as Graph names them.
const (
	ConsentAllPrincipals = "AllPrincipals"
	ConsentPrincipal     = "Principal"
)

// OAuth2PermissionGrant is a delegated permission grant: the client service
// principal may call the resource service principal with Scope on behalf of
// one user (Principal) or of every user of the tenant (AllPrincipals).
type OAuth2PermissionGrant struct {
	ID          string `json:"id"`
	TenantID    string `json:"-"`
	ClientID    string `json:"clientId"`    // the client service principal's object id
	ConsentType string `json:"consentType"` // AllPrincipals or Principal
	PrincipalID string `json:"principalId,omitempty"`
	ResourceID  string `json:"resourceId"` // the resource service principal's object id
	Scope       string `json:"scope"`      // space-separated scope values
	Version     int64  `json:"-"`
}

// Scopes returns the grant's scope values.
func (g *OAuth2PermissionGrant) Scopes() []string { return strings.Fields(g.Scope) }

// grantKey is the one name a grant answers to: a tenant holds one grant
// per client, resource and consent type (and principal).
func grantKey(clientID, resourceID, consentType, principalID string) string {
	if consentType == ConsentAllPrincipals {
		principalID = "*"
	}
	return strings.ToLower(clientID + "/" + resourceID + "/" + principalID)
}

func (g *OAuth2PermissionGrant) keys() objectKeys {
	// DisplayName carries the client id, so that listing a client's
	// grants is an indexed lookup.
	return objectKeys{store.KindOAuth2PermissionGrant, g.ID, "", g.ClientID,
		[]string{grantKey(g.ClientID, g.ResourceID, g.ConsentType, g.PrincipalID)}}
}
func (g *OAuth2PermissionGrant) setMeta(t string, v int64) { g.TenantID, g.Version = t, v }
func (g *OAuth2PermissionGrant) version() int64            { return g.Version }

// GrantFilter selects delegated grants; empty fields do not filter.
type GrantFilter struct {
	ClientID    string
	ResourceID  string
	PrincipalID string
	ConsentType string
}

// normalizeScope returns the space-separated set of scope values, in the
// order first given, without duplicates.
func normalizeScope(values []string) string {
	var out []string
	seen := map[string]bool{}
	for _, v := range values {
		for _, f := range strings.Fields(v) {
			if k := strings.ToLower(f); !seen[k] {
				seen[k] = true
				out = append(out, f)
			}
		}
	}
	return strings.Join(out, " ")
}

// checkScopes makes sure every value is an enabled delegated scope of the resource.
func checkScopes(resource *ServicePrincipal, values []string) error {
	for _, v := range values {
		if _, ok := delegatedScopeOf(resource, v); !ok {
			return &ConsentError{Code: CodeScopeNotFound, Msg: fmt.Sprintf(
				"The application asked for scope '%s' that doesn't exist on the resource '%s'. Contact the app vendor.", v, resource.AppID)}
		}
	}
	return nil
}

func delegatedScopeOf(resource *ServicePrincipal, value string) (PermissionScope, bool) {
	for _, s := range resource.OAuth2PermissionScopes {
		if s.IsEnabled && strings.EqualFold(s.Value, value) {
			return s, true
		}
	}
	return PermissionScope{}, false
}

func appRoleOf(resource *ServicePrincipal, value string) (AppRole, bool) {
	for _, r := range resource.AppRoles {
		if r.IsEnabled && r.Allows("Application") && strings.EqualFold(r.Value, value) {
			return r, true
		}
	}
	return AppRole{}, false
}

// CreateDelegatedGrant stores a delegated permission grant. The client and
// resource must be service principals of the tenant, a Principal grant's
// principal a user of the tenant, and every scope a delegated scope of the
// resource. A second grant for the same client, resource and principal is
// a conflict, as in Graph.
func (s *Service) CreateDelegatedGrant(ctx context.Context, tenantID string, g OAuth2PermissionGrant) (*OAuth2PermissionGrant, error) {
	out := &g
	err := s.inTx(ctx, func(tx *Service) error {
		if err := tx.checkGrant(ctx, tenantID, out); err != nil {
			return err
		}
		out.ID = newID()
		if err := create(ctx, tx.st, tenantID, out); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return conflictf("Permission entry already exists.")
			}
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Service) checkGrant(ctx context.Context, tenantID string, g *OAuth2PermissionGrant) error {
	switch g.ConsentType {
	case ConsentAllPrincipals:
		if g.PrincipalID != "" {
			return invalidf("principalId must be empty when consentType is AllPrincipals.")
		}
	case ConsentPrincipal:
		if _, err := s.GetUser(ctx, tenantID, g.PrincipalID); err != nil {
			if errors.Is(err, ErrNotFound) {
				return invalidf("Principal %s was not found in the tenant.", g.PrincipalID)
			}
			return err
		}
	default:
		return invalidf("consentType must be AllPrincipals or Principal.")
	}
	client, err := s.GetServicePrincipal(ctx, tenantID, g.ClientID)
	if errors.Is(err, ErrNotFound) {
		return invalidf("Client service principal %s was not found in the tenant.", g.ClientID)
	}
	if err != nil {
		return err
	}
	resource, err := s.GetServicePrincipal(ctx, tenantID, g.ResourceID)
	if errors.Is(err, ErrNotFound) {
		return invalidf("Resource service principal %s was not found in the tenant.", g.ResourceID)
	}
	if err != nil {
		return err
	}
	g.ClientID, g.ResourceID = client.ID, resource.ID
	g.Scope = normalizeScope([]string{g.Scope})
	if err := checkScopes(resource, strings.Fields(g.Scope)); err != nil {
		var ce *ConsentError
		if errors.As(err, &ce) {
			return invalidf("%s", ce.Msg)
		}
		return err
	}
	return nil
}

// GetDelegatedGrant finds a grant by id.
func (s *Service) GetDelegatedGrant(ctx context.Context, tenantID, id string) (*OAuth2PermissionGrant, error) {
	return get[OAuth2PermissionGrant](ctx, s.st, tenantID, store.KindOAuth2PermissionGrant, id)
}

// ListDelegatedGrants lists the tenant's grants that match f, ordered by id.
func (s *Service) ListDelegatedGrants(ctx context.Context, tenantID string, f GrantFilter) ([]*OAuth2PermissionGrant, error) {
	q := store.ObjectQuery{TenantID: tenantID, Kind: store.KindOAuth2PermissionGrant}
	if f.ClientID != "" {
		q.DisplayName = f.ClientID
	}
	all, err := list[OAuth2PermissionGrant](ctx, s.st, q)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, g := range all {
		if (f.ClientID == "" || strings.EqualFold(g.ClientID, f.ClientID)) &&
			(f.ResourceID == "" || strings.EqualFold(g.ResourceID, f.ResourceID)) &&
			(f.PrincipalID == "" || strings.EqualFold(g.PrincipalID, f.PrincipalID)) &&
			(f.ConsentType == "" || g.ConsentType == f.ConsentType) {
			out = append(out, g)
		}
	}
	return out, nil
}

// UpdateDelegatedGrantScope replaces a grant's scopes. Every value must be a
// delegated scope of the grant's resource.
func (s *Service) UpdateDelegatedGrantScope(ctx context.Context, tenantID, id, scope string) (*OAuth2PermissionGrant, error) {
	var out *OAuth2PermissionGrant
	err := s.inTx(ctx, func(tx *Service) error {
		g, err := update[OAuth2PermissionGrant](ctx, tx.st, tenantID, store.KindOAuth2PermissionGrant, id, func(g *OAuth2PermissionGrant) error {
			g.Scope = scope
			return tx.checkGrant(ctx, tenantID, g)
		})
		out = g
		return err
	})
	return out, err
}

// DeleteDelegatedGrant removes a grant: the client can no longer get tokens
// with its scopes.
func (s *Service) DeleteDelegatedGrant(ctx context.Context, tenantID, id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return ErrNotFound
	}
	return s.st.DeleteObject(ctx, tenantID, store.KindOAuth2PermissionGrant, id)
}

// deleteServicePrincipalAndGrants deletes a service principal together with
// the delegated grants it is client or resource of, in one transaction.
func (s *Service) deleteServicePrincipalAndGrants(ctx context.Context, tenantID, id string) error {
	return s.inTx(ctx, func(tx *Service) error {
		grants, err := list[OAuth2PermissionGrant](ctx, tx.st, store.ObjectQuery{TenantID: tenantID, Kind: store.KindOAuth2PermissionGrant})
		if err != nil {
			return err
		}
		for _, g := range grants {
			if strings.EqualFold(g.ClientID, id) || strings.EqualFold(g.ResourceID, id) {
				if err := tx.st.DeleteObject(ctx, tenantID, store.KindOAuth2PermissionGrant, g.ID); err != nil && !errors.Is(err, ErrNotFound) {
					return err
				}
			}
		}
		return tx.st.DeleteObject(ctx, tenantID, store.KindServicePrincipal, id)
	})
}

// ConsentedScopes returns the scope values the client service principal
// may use on the resource for the user: those granted for all principals
// and those the user (or an admin for the user) granted. userID may be
// empty, which gives the AllPrincipals grants only.
func (s *Service) ConsentedScopes(ctx context.Context, tenantID, clientSPID, userID, resourceSPID string) ([]string, error) {
	grants, err := s.ListDelegatedGrants(ctx, tenantID, GrantFilter{ClientID: clientSPID, ResourceID: resourceSPID})
	if err != nil {
		return nil, err
	}
	var values []string
	for _, g := range grants {
		if g.ConsentType == ConsentAllPrincipals || (userID != "" && strings.EqualFold(g.PrincipalID, userID)) {
			values = append(values, g.Scope)
		}
	}
	out := strings.Fields(normalizeScope(values))
	return out, nil
}

// ---- Directory roles ----

// The role template ids of the directory roles that matter for consent;
// they are Entra's own.
const (
	RoleGlobalAdministrator           = "62e90394-69f5-4237-9190-012177145e10"
	RolePrivilegedRoleAdministrator   = "e8611ab8-c189-46e8-94e1-60213ab1f814"
	RoleCloudApplicationAdministrator = "158c047a-c907-4556-b7ef-446551a6b5f7"
	RoleApplicationAdministrator      = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"
	RoleGlobalReader                  = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"
)

// DirectoryRoleNames are the display names of the role templates tenantbridge knows.
var DirectoryRoleNames = map[string]string{
	RoleGlobalAdministrator:           "Global Administrator",
	RolePrivilegedRoleAdministrator:   "Privileged Role Administrator",
	RoleCloudApplicationAdministrator: "Cloud Application Administrator",
	RoleApplicationAdministrator:      "Application Administrator",
	RoleGlobalReader:                  "Global Reader",
}

// directoryRole is a role activated in a tenant; users and service
// principals hold it through LinkDirectoryRoleMember links, which go with
// the holder when it is deleted.
type directoryRole struct {
	ID             string `json:"id"`
	TenantID       string `json:"-"`
	RoleTemplateID string `json:"roleTemplateId"`
	DisplayName    string `json:"displayName"`
	Version        int64  `json:"-"`
}

func (r *directoryRole) keys() objectKeys {
	return objectKeys{store.KindDirectoryRole, r.ID, "", r.DisplayName, []string{r.RoleTemplateID}}
}
func (r *directoryRole) setMeta(t string, v int64) { r.TenantID, r.Version = t, v }
func (r *directoryRole) version() int64            { return r.Version }

// roleNamespace derives the object ids of per-tenant singletons.
var roleNamespace = uuid.MustParse("6f0b4a52-5d0e-4c57-9a0b-7c1f3b1e2d11")

func directoryRoleID(tenantID, templateID string) string {
	return uuid.NewSHA1(roleNamespace, []byte(strings.ToLower(tenantID)+"/role/"+templateID)).String()
}

// AssignDirectoryRole makes a user or service principal of the tenant
// hold a directory role, named by its role template id. Holding it
// already is not an error. Entra assigns directory roles to users, groups
// that are role-assignable and service principals ("Assign Microsoft
// Entra roles", https://learn.microsoft.com/entra/identity/role-based-access-control/manage-roles-portal);
// groups are not served here. The principal is looked up in the tenant
// only, so an object id of another tenant is not found: a multi-tenant
// application holds roles here through its service principal in this
// tenant, never through its home tenant's.
func (s *Service) AssignDirectoryRole(ctx context.Context, tenantID, principalID, roleTemplateID string) error {
	roleTemplateID = strings.ToLower(roleTemplateID)
	name, ok := DirectoryRoleNames[roleTemplateID]
	if !ok {
		return invalidf("Role template %s is not a directory role tenantbridge supports.", roleTemplateID)
	}
	return s.inTx(ctx, func(tx *Service) error {
		kind, err := tx.ObjectKind(ctx, tenantID, principalID)
		if errors.Is(err, ErrNotFound) {
			return invalidf("Principal %s was not found in the tenant.", principalID)
		}
		if err != nil {
			return err
		}
		if kind != store.KindUser && kind != store.KindServicePrincipal {
			return invalidf("Only users and service principals may hold directory roles; %s is not one.", principalID)
		}
		id := directoryRoleID(tenantID, roleTemplateID)
		if _, err := tx.st.GetObject(ctx, tenantID, store.KindDirectoryRole, id); errors.Is(err, ErrNotFound) {
			if err := create(ctx, tx.st, tenantID, &directoryRole{ID: id, RoleTemplateID: roleTemplateID, DisplayName: name}); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		err = tx.st.AddLink(ctx, store.Link{TenantID: tenantID, Kind: store.LinkDirectoryRoleMember, From: id, To: principalID, ToKind: kind,
			Created: tx.Now()})
		if errors.Is(err, store.ErrConflict) {
			return nil
		}
		return err
	})
}

// RemoveDirectoryRole takes a directory role from a user or service principal.
func (s *Service) RemoveDirectoryRole(ctx context.Context, tenantID, principalID, roleTemplateID string) error {
	return s.st.RemoveLink(ctx, tenantID, store.LinkDirectoryRoleMember, directoryRoleID(tenantID, strings.ToLower(roleTemplateID)), principalID)
}

// DirectoryRolesOf lists the role template ids of the directory roles a
// user or service principal holds, sorted.
func (s *Service) DirectoryRolesOf(ctx context.Context, tenantID, principalID string) ([]string, error) {
	links, err := s.st.ListLinksTo(ctx, tenantID, store.LinkDirectoryRoleMember, principalID)
	if err != nil {
		return nil, err
	}
	var out []string
	for tmpl := range DirectoryRoleNames {
		id := directoryRoleID(tenantID, tmpl)
		for _, l := range links {
			if l.From == id {
				out = append(out, tmpl)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// EnabledUserRoles returns the directory roles of userID, an enabled user
// of the tenant, and ErrNotFound when there is no such user or the account
// is disabled. Graph asks it on every request of a delegated token (what
// the signed-in user may do caps what the token may), so the answer is
// cached until the store's generation moves: a disabled user or a removed
// role counts from the very next request.
func (s *Service) EnabledUserRoles(ctx context.Context, tenantID, userID string) ([]string, error) {
	return s.enabledRoles(ctx, lookupEnabledUserRoles, tenantID, userID, func() (string, bool, error) {
		u, err := s.GetUser(ctx, tenantID, userID)
		if err != nil {
			return "", false, err
		}
		return u.ID, u.AccountEnabled, nil
	})
}

// EnabledServicePrincipalRoles returns the directory roles of spID, an
// enabled service principal of the tenant, and ErrNotFound when there is
// no such principal or it is disabled. Graph asks it for every app-only
// request (a service principal's directory roles open what its
// application permissions do not) and the token service for the wids
// claim, so the answer is cached as EnabledUserRoles' is.
func (s *Service) EnabledServicePrincipalRoles(ctx context.Context, tenantID, spID string) ([]string, error) {
	return s.enabledRoles(ctx, lookupEnabledSPRoles, tenantID, spID, func() (string, bool, error) {
		sp, err := s.GetServicePrincipal(ctx, tenantID, spID)
		if err != nil {
			return "", false, err
		}
		return sp.ID, sp.AccountEnabled, nil
	})
}

// enabledRoles is the directory roles of the principal load finds (its id
// and whether it is enabled), cached per store generation under what.
func (s *Service) enabledRoles(ctx context.Context, what lookupKind, tenantID, ref string, load func() (string, bool, error)) ([]string, error) {
	r, err := cached(s, lookupKey{what, tenantID, ref}, func() (*grantedRoles, error) {
		id, enabled, err := load()
		if err != nil {
			return nil, err
		}
		if !enabled {
			return nil, ErrNotFound
		}
		roles, err := s.DirectoryRolesOf(ctx, tenantID, id)
		return rolesFound(roles), err
	})
	if err != nil {
		return nil, err
	}
	return slices.Clone(r.values), nil
}

// CanConsentForOrganization reports whether holders of the roles may grant
// tenant-wide (admin) consent: Global Administrator, Privileged Role
// Administrator, Cloud Application Administrator or Application
// Administrator.
func CanConsentForOrganization(roles []string) bool {
	for _, r := range roles {
		switch r {
		case RoleGlobalAdministrator, RolePrivilegedRoleAdministrator, RoleCloudApplicationAdministrator, RoleApplicationAdministrator:
			return true
		}
	}
	return false
}

// CanConsentToGraphAppRoles reports whether holders of the roles may grant
// Microsoft Graph application permissions: as in Entra, only a Global
// Administrator or Privileged Role Administrator.
func CanConsentToGraphAppRoles(roles []string) bool {
	return slices.Contains(roles, RoleGlobalAdministrator) || slices.Contains(roles, RolePrivilegedRoleAdministrator)
}

// ---- Sign-in policy ----

// SignInPolicy is a tenant's sign-in and consent policy.
type SignInPolicy struct {
	// UserConsentAllowed lets users consent, for themselves, to delegated
	// scopes whose type is "User". Scopes of type "Admin" always need an
	// administrator. Default true.
	UserConsentAllowed bool `json:"userConsentAllowed"`
	// RequireMFA asks every user for a second factor at every sign-in.
	// Users with an authenticator enrolled are always asked. Default false.
	RequireMFA bool `json:"requireMfa"`
}

// DefaultSignInPolicy is the policy of a tenant that has not set one.
var DefaultSignInPolicy = SignInPolicy{UserConsentAllowed: true}

type tenantPolicy struct {
	ID       string       `json:"id"`
	TenantID string       `json:"-"`
	SignIn   SignInPolicy `json:"signIn"`
	Version  int64        `json:"-"`
}

func (p *tenantPolicy) keys() objectKeys {
	return objectKeys{store.KindTenantPolicy, p.ID, "", "tenantPolicy", nil}
}
func (p *tenantPolicy) setMeta(t string, v int64) { p.TenantID, p.Version = t, v }
func (p *tenantPolicy) version() int64            { return p.Version }

func tenantPolicyID(tenantID string) string {
	return uuid.NewSHA1(roleNamespace, []byte(strings.ToLower(tenantID)+"/policy")).String()
}

// SignInPolicy returns the tenant's sign-in policy, or the default.
func (s *Service) SignInPolicy(ctx context.Context, tenantID string) (SignInPolicy, error) {
	p, err := get[tenantPolicy](ctx, s.st, tenantID, store.KindTenantPolicy, tenantPolicyID(tenantID))
	if errors.Is(err, ErrNotFound) {
		return DefaultSignInPolicy, nil
	}
	if err != nil {
		return SignInPolicy{}, err
	}
	return p.SignIn, nil
}

// SetSignInPolicy replaces the tenant's sign-in policy.
func (s *Service) SetSignInPolicy(ctx context.Context, tenantID string, sp SignInPolicy) error {
	if _, err := s.st.GetTenant(ctx, tenantID); err != nil {
		return err
	}
	id := tenantPolicyID(tenantID)
	for range 4 {
		_, err := update[tenantPolicy](ctx, s.st, tenantID, store.KindTenantPolicy, id, func(p *tenantPolicy) error {
			p.SignIn = sp
			return nil
		})
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		err = create(ctx, s.st, tenantID, &tenantPolicy{ID: id, SignIn: sp})
		if !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("directory: set sign-in policy of %s: too much contention", tenantID)
}

// ---- Consent ----

// AADSTS codes of consent refusals, for callers to put on the wire.
const (
	CodeClientNotFound     = 700016 // the app is unknown or may not be used in the tenant
	CodeConsentRequired    = 65001  // no consent, and none can be asked for
	CodeAdminConsentNeeded = 90094  // the grant requires an administrator
	CodeScopeNotFound      = 650053 // a scope or role the resource does not define
	CodeResourceDisabled   = 650052 // the resource has no service principal in the tenant
	CodeUserNotFound       = 50034
	CodeInvalidScope       = 70011  // a scope parameter that does not parse
	CodeResourceNotFound   = 500011 // a resource named in a scope that does not exist
)

// ConsentError is a consent refused with an AADSTS code. Msg is Entra's
// wording, safe to show.
type ConsentError struct {
	Code int
	Msg  string
}

func (e *ConsentError) Error() string { return fmt.Sprintf("AADSTS%d: %s", e.Code, e.Msg) }

// Permissions are what a client asks for, per resource application id:
// delegated scope values and application permission (app role) values.
type Permissions struct {
	Delegated map[string][]string
	AppRoles  map[string][]string
}

// Empty reports whether nothing is asked for.
func (p Permissions) Empty() bool {
	for _, v := range p.Delegated {
		if len(v) > 0 {
			return false
		}
	}
	for _, v := range p.AppRoles {
		if len(v) > 0 {
			return false
		}
	}
	return true
}

func (p *Permissions) addScope(resourceAppID, value string) {
	if p.Delegated == nil {
		p.Delegated = map[string][]string{}
	}
	if !containsFold(p.Delegated[resourceAppID], value) {
		p.Delegated[resourceAppID] = append(p.Delegated[resourceAppID], value)
	}
}

// addResource records that a resource is asked for, even with no value.
func (p *Permissions) addResource(resourceAppID string) {
	if p.Delegated == nil {
		p.Delegated = map[string][]string{}
	}
	if _, ok := p.Delegated[resourceAppID]; !ok {
		p.Delegated[resourceAppID] = []string{}
	}
}

func (p *Permissions) addRole(resourceAppID, value string) {
	if p.AppRoles == nil {
		p.AppRoles = map[string][]string{}
	}
	if !containsFold(p.AppRoles[resourceAppID], value) {
		p.AppRoles[resourceAppID] = append(p.AppRoles[resourceAppID], value)
	}
}

func containsFold(list []string, v string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, v) })
}

// RequestedPermissions returns what an application declares in its
// requiredResourceAccess, as values: what v1 admin consent and a
// "/.default" request consent to. Permissions the resource no longer
// defines are left out.
func (s *Service) RequestedPermissions(ctx context.Context, app *Application) (Permissions, error) {
	var p Permissions
	for _, rra := range app.RequiredResourceAccess {
		res, err := s.ApplicationByAppID(ctx, rra.ResourceAppID)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return p, err
		}
		resID := strings.ToLower(res.AppID)
		for _, ra := range rra.ResourceAccess {
			switch ra.Type {
			case "Scope":
				for _, sc := range res.OAuth2PermissionScopes {
					if strings.EqualFold(sc.ID, ra.ID) && sc.IsEnabled {
						p.addScope(resID, sc.Value)
					}
				}
			case "Role":
				for _, r := range res.AppRoles {
					if strings.EqualFold(r.ID, ra.ID) && r.IsEnabled && r.Allows("Application") {
						p.addRole(resID, r.Value)
					}
				}
			}
		}
	}
	return p, nil
}

// OIDCScopes are the OpenID Connect scopes. They are Microsoft Graph's
// delegated scopes in Entra, and consented to as such.
var OIDCScopes = []string{"openid", "profile", "email", "offline_access"}

// IsOIDCScope reports whether v is one of OIDCScopes.
func IsOIDCScope(v string) bool { return containsFold(OIDCScopes, v) }

// ParseScopeParam turns a v2 scope parameter into permissions per resource
// application id, for a client app signing users in to tenantID.
//
//   - "openid", "profile", "email", "offline_access" and bare values such
//     as "User.Read" are Microsoft Graph's;
//   - "https://graph.microsoft.com/User.Read" or "api://{appId}/read" name
//     the resource by identifier URI or appId, then the value;
//   - "{resource}/.default" stands for what the client declares for that
//     resource in requiredResourceAccess (delegated scopes only unless
//     withRoles, which admin consent sets).
//
// Refusals are ConsentErrors: AADSTS70011 for a malformed scope,
// AADSTS500011 for a resource that cannot be found.
func (s *Service) ParseScopeParam(ctx context.Context, tenantID string, app *Application, scope string, withRoles bool) (Permissions, error) {
	var p Permissions
	fields := strings.Fields(scope)
	if len(fields) > 64 {
		return p, &ConsentError{Code: CodeInvalidScope, Msg: "The provided value for the input parameter 'scope' is not valid: too many scopes."}
	}
	var declared *Permissions
	for _, f := range fields {
		if len(f) > 512 {
			return p, &ConsentError{Code: CodeInvalidScope, Msg: "The provided value for the input parameter 'scope' is not valid. The scope is too long."}
		}
		i := strings.LastIndex(f, "/")
		if i < 0 {
			p.addScope(GraphAppID, f)
			continue
		}
		resName, value := f[:i], f[i+1:]
		if resName == "" || value == "" {
			return p, &ConsentError{Code: CodeInvalidScope, Msg: fmt.Sprintf("The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", f)}
		}
		resAppID, err := s.ResolveResource(ctx, tenantID, app, resName)
		if err != nil {
			return p, err
		}
		if value != ".default" {
			p.addScope(resAppID, value)
			continue
		}
		if declared == nil {
			d, err := s.RequestedPermissions(ctx, app)
			if err != nil {
				return p, err
			}
			declared = &d
		}
		p.addResource(resAppID)
		for _, v := range declared.Delegated[resAppID] {
			p.addScope(resAppID, v)
		}
		if withRoles {
			for _, v := range declared.AppRoles[resAppID] {
				p.addRole(resAppID, v)
			}
		}
	}
	return p, nil
}

// ResolveResource finds the application id of a resource named by appId,
// "api://{appId}" or an identifier URI: first among the tenant's service
// principals, then among applications, then among the service principals
// of the client's home tenant (an API registered next to its client).
func (s *Service) ResolveResource(ctx context.Context, tenantID string, client *Application, name string) (string, error) {
	if sp, err := s.ServicePrincipalByName(ctx, tenantID, name); err == nil {
		return strings.ToLower(sp.AppID), nil
	} else if !errors.Is(err, ErrNotFound) {
		return "", err
	}
	for _, cand := range []string{name, strings.TrimPrefix(name, "api://")} {
		if _, err := uuid.Parse(cand); err == nil {
			if a, err := s.ApplicationByAppID(ctx, cand); err == nil {
				return strings.ToLower(a.AppID), nil
			}
		}
	}
	if client != nil && client.TenantID != tenantID {
		if sp, err := s.ServicePrincipalByName(ctx, client.TenantID, name); err == nil {
			return strings.ToLower(sp.AppID), nil
		}
	}
	return "", &ConsentError{Code: CodeResourceNotFound, Msg: fmt.Sprintf("The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", name, tenantID)}
}

// ClientApplication returns the application clientAppID if it may sign
// users in to tenantID: registered there, or multi-tenant. Otherwise it
// answers AADSTS700016 as a ConsentError.
func (s *Service) ClientApplication(ctx context.Context, tenantID, clientAppID string) (*Application, error) {
	app, err := s.ApplicationByAppID(ctx, clientAppID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if err != nil || (app.TenantID != tenantID && !app.IsMultiTenant()) {
		return nil, &ConsentError{Code: CodeClientNotFound, Msg: fmt.Sprintf(
			"Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientAppID, tenantID)}
	}
	return app, nil
}

// ConsentRequest is one acceptance of a consent page.
type ConsentRequest struct {
	TenantID    string
	ClientAppID string
	// Delegated and AppRoles map a resource application id to the values
	// consented to.
	Delegated map[string][]string
	AppRoles  map[string][]string
	// UserID is the user a Principal grant is for; ignored when
	// AllPrincipals.
	UserID        string
	AllPrincipals bool
	// ConsentedBy is the user who accepted, a user of TenantID. Their
	// directory roles decide what they may grant.
	ConsentedBy string
}

// GrantConsent records a consent, in one transaction with its audit record:
// it provisions the client's service principal into the tenant (a
// multi-tenant application of another tenant) and the service principals
// of first-party resources, merges the delegated scopes into the grant
// (for all principals, or for UserID), and assigns the application
// permissions to the client's service principal. It returns the client's
// service principal in the tenant.
//
// Who may do what is checked here, failing closed: tenant-wide consent and
// application permissions need an administrator (Microsoft Graph's
// application permissions a Global or Privileged Role Administrator); a
// user may consent for themselves to "User" scopes where the tenant allows
// it.
func (s *Service) GrantConsent(ctx context.Context, req ConsentRequest) (*ServicePrincipal, error) {
	var out *ServicePrincipal
	err := s.inTx(ctx, func(tx *Service) error {
		sp, err := tx.grantConsent(ctx, req)
		if err != nil {
			return err
		}
		out = sp
		detail := consentDetail(req)
		rec := store.AuditRecord{Actor: req.ConsentedBy, ActorTenant: req.TenantID, TargetTenant: req.TenantID,
			Action: "consent.grant", Target: sp.ID, Result: audit.Success, Detail: detail}
		return audit.New(tx.st, slog.New(slog.DiscardHandler)).Record(ctx, rec)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func consentDetail(req ConsentRequest) string {
	var parts []string
	kind := "user"
	if req.AllPrincipals {
		kind = "admin"
	}
	parts = append(parts, kind+" consent for app "+req.ClientAppID)
	for _, res := range sortedKeys(req.Delegated) {
		if len(req.Delegated[res]) > 0 {
			parts = append(parts, "scp "+res+": "+strings.Join(req.Delegated[res], " "))
		}
	}
	for _, res := range sortedKeys(req.AppRoles) {
		if len(req.AppRoles[res]) > 0 {
			parts = append(parts, "roles "+res+": "+strings.Join(req.AppRoles[res], " "))
		}
	}
	d := strings.Join(parts, "; ")
	if len(d) > 1000 {
		d = d[:1000]
	}
	return d
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func (s *Service) grantConsent(ctx context.Context, req ConsentRequest) (*ServicePrincipal, error) {
	app, err := s.ClientApplication(ctx, req.TenantID, req.ClientAppID)
	if err != nil {
		return nil, err
	}
	consenter, err := s.GetUser(ctx, req.TenantID, req.ConsentedBy)
	if errors.Is(err, ErrNotFound) {
		return nil, &ConsentError{Code: CodeUserNotFound, Msg: "The user who consented was not found in the tenant."}
	}
	if err != nil {
		return nil, err
	}
	roles, err := s.DirectoryRolesOf(ctx, req.TenantID, consenter.ID)
	if err != nil {
		return nil, err
	}
	hasRoles := false
	for _, v := range req.AppRoles {
		hasRoles = hasRoles || len(v) > 0
	}
	admin := CanConsentForOrganization(roles)
	if (req.AllPrincipals || hasRoles) && !admin {
		return nil, needAdmin(app)
	}
	if !req.AllPrincipals {
		if req.UserID == "" || (!strings.EqualFold(req.UserID, consenter.ID) && !admin) {
			return nil, needAdmin(app)
		}
		if _, err := s.GetUser(ctx, req.TenantID, req.UserID); err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, &ConsentError{Code: CodeUserNotFound, Msg: "The user consent is granted for was not found in the tenant."}
			}
			return nil, err
		}
	}
	policy, err := s.SignInPolicy(ctx, req.TenantID)
	if err != nil {
		return nil, err
	}

	// Resolve and check every resource and value before changing anything.
	type resourceGrant struct {
		sp     *ServicePrincipal
		scopes []string
		roles  []AppRole
	}
	var grants []*resourceGrant
	byApp := map[string]*resourceGrant{}
	resource := func(appID string) (*resourceGrant, error) {
		appID = strings.ToLower(appID)
		if g, ok := byApp[appID]; ok {
			return g, nil
		}
		var sp *ServicePrincipal
		var err error
		if strings.EqualFold(appID, app.AppID) {
			// The client asks for its own API's scopes (api://{its appId}/…):
			// consenting provisions its service principal, which is also the
			// resource, as in Entra.
			sp, err = s.ensureClientSP(ctx, req.TenantID, app)
		} else {
			sp, err = s.ensureResourceSP(ctx, req.TenantID, appID)
		}
		if err != nil {
			return nil, err
		}
		g := &resourceGrant{sp: sp}
		byApp[appID] = g
		grants = append(grants, g)
		return g, nil
	}
	for _, resApp := range sortedKeys(req.Delegated) {
		values := req.Delegated[resApp]
		if len(values) == 0 {
			continue
		}
		g, err := resource(resApp)
		if err != nil {
			return nil, err
		}
		for _, v := range strings.Fields(normalizeScope(values)) {
			sc, ok := delegatedScopeOf(g.sp, v)
			if !ok {
				return nil, checkScopes(g.sp, []string{v})
			}
			if !req.AllPrincipals && !admin && (sc.Type != "User" || !policy.UserConsentAllowed) {
				return nil, needAdmin(app)
			}
			g.scopes = append(g.scopes, sc.Value)
		}
	}
	for _, resApp := range sortedKeys(req.AppRoles) {
		values := req.AppRoles[resApp]
		if len(values) == 0 {
			continue
		}
		g, err := resource(resApp)
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(g.sp.AppID, GraphAppID) && !CanConsentToGraphAppRoles(roles) {
			return nil, &ConsentError{Code: CodeAdminConsentNeeded, Msg: fmt.Sprintf(
				"Microsoft Graph application permissions requested by '%s' can be granted only by a Global Administrator or a Privileged Role Administrator.", app.DisplayName)}
		}
		for _, v := range values {
			r, ok := appRoleOf(g.sp, v)
			if !ok {
				return nil, &ConsentError{Code: CodeScopeNotFound, Msg: fmt.Sprintf(
					"The application asked for permission '%s' that doesn't exist on the resource '%s'. Contact the app vendor.", v, g.sp.AppID)}
			}
			g.roles = append(g.roles, r)
		}
	}

	client, err := s.ensureClientSP(ctx, req.TenantID, app)
	if err != nil {
		return nil, err
	}
	if !client.AccountEnabled {
		return nil, &ConsentError{Code: 7000112, Msg: fmt.Sprintf("Application '%s'(%s) is disabled.", app.AppID, app.DisplayName)}
	}
	for _, g := range grants {
		if len(g.scopes) > 0 {
			if err := s.mergeGrant(ctx, req, client.ID, g.sp.ID, g.scopes); err != nil {
				return nil, err
			}
		}
		for _, r := range g.roles {
			if _, err := s.AssignAppRole(ctx, req.TenantID, client.ID, g.sp.ID, r.ID); err != nil && !errors.Is(err, ErrConflict) {
				return nil, err
			}
		}
	}
	return client, nil
}

func needAdmin(app *Application) error {
	return &ConsentError{Code: CodeAdminConsentNeeded, Msg: fmt.Sprintf(
		"'%s' needs permission to access resources in your organization that only an admin can grant. Please ask an admin to grant permission to this app before you can use it.", app.DisplayName)}
}

// ensureClientSP returns the tenant's service principal of the consented
// application, provisioning it: consent is what creates it in a tenant.
func (s *Service) ensureClientSP(ctx context.Context, tenantID string, app *Application) (*ServicePrincipal, error) {
	sp, err := s.ServicePrincipalByAppID(ctx, tenantID, app.AppID)
	if errors.Is(err, ErrNotFound) {
		return s.createServicePrincipal(ctx, tenantID, app)
	}
	return sp, err
}

// ensureResourceSP returns the tenant's service principal of a resource,
// provisioning it for a first-party application as Entra does.
func (s *Service) ensureResourceSP(ctx context.Context, tenantID, appID string) (*ServicePrincipal, error) {
	sp, err := s.ServicePrincipalByAppID(ctx, tenantID, appID)
	if err == nil {
		return sp, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	res, err := s.ApplicationByAppID(ctx, appID)
	if err == nil && res.TenantID == MicrosoftTenantID {
		return s.createServicePrincipal(ctx, tenantID, res)
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	return nil, &ConsentError{Code: CodeResourceDisabled, Msg: fmt.Sprintf(
		"The app needs access to a service (\"%s\") that your organization has not subscribed to or enabled. Contact your IT Admin to review the configuration of your service subscriptions.", appID)}
}

// mergeGrant adds scopes to the client's grant on a resource, creating it
// if needed.
func (s *Service) mergeGrant(ctx context.Context, req ConsentRequest, clientID, resourceID string, scopes []string) error {
	consentType, principal := ConsentPrincipal, req.UserID
	if req.AllPrincipals {
		consentType, principal = ConsentAllPrincipals, ""
	}
	existing, err := list[OAuth2PermissionGrant](ctx, s.st, store.ObjectQuery{TenantID: req.TenantID,
		Kind: store.KindOAuth2PermissionGrant, Name: grantKey(clientID, resourceID, consentType, principal), Limit: 1})
	if err != nil {
		return err
	}
	if len(existing) == 0 {
		g := &OAuth2PermissionGrant{ID: newID(), ClientID: clientID, ConsentType: consentType, PrincipalID: principal,
			ResourceID: resourceID, Scope: normalizeScope(scopes)}
		return create(ctx, s.st, req.TenantID, g)
	}
	_, err = update[OAuth2PermissionGrant](ctx, s.st, req.TenantID, store.KindOAuth2PermissionGrant, existing[0].ID, func(g *OAuth2PermissionGrant) error {
		g.Scope = normalizeScope(append([]string{g.Scope}, scopes...))
		return nil
	})
	return err
}
