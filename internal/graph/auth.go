package graph

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/sts"
	"github.com/tenantbridge/tenantbridge/internal/token"
)

// TokenVerifier checks a bearer token: signature, lifetime, issuer, tenant,
// and that its audience is one of audiences. sts.Verifier implements it;
// the interface lives here, with its only consumer.
type TokenVerifier interface {
	Verify(ctx context.Context, raw string, audiences ...string) (token.Claims, error)
}

// graphAudiences are the audiences a Graph token may carry: the resource
// URI with and without its slash (v1 tokens carry what was asked for) and
// Graph's application id (v2 tokens).
var graphAudiences = []string{"https://graph.microsoft.com", "https://graph.microsoft.com/", directory.GraphAppID}

// caller is who a request acts as, from its verified token.
type caller struct {
	claims token.Claims
	// tenantID is the tenant acted in (the token's tid): every object
	// the request reads or changes belongs to it.
	tenantID string
	// objectID is the caller's object id in that tenant (oid): the
	// service principal of an app-only token, the user of a delegated one.
	objectID string
	// homeTenant is the tenant the caller comes from, for the audit
	// record: the tenant of the idp claim when the token has one (a
	// principal from another tenant), else tid.
	homeTenant string
}

// authenticate verifies the bearer token. Every failure is a 401 with
// Graph's InvalidAuthenticationToken code; the message says what kind of
// failure it was, never more.
func (h *Handler) authenticate(r *http.Request) (caller, *graphError) {
	header := r.Header.Get("Authorization")
	scheme, raw, _ := strings.Cut(header, " ")
	raw = strings.TrimSpace(raw)
	if !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return caller{}, unauthenticated("Access token is empty.")
	}
	claims, err := h.verifier.Verify(r.Context(), raw, graphAudiences...)
	if err != nil {
		h.log.InfoContext(r.Context(), "graph: token refused", "err", err)
		if errors.Is(err, token.ErrTrustRevoked) {
			e := unauthenticated("Continuous access evaluation resulted in challenge with result: InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp")
			e.challenge = token.ClaimsChallenge("https://login.microsoftonline.com/common/oauth2/authorize", directory.GraphAppID, time.Now())
			return caller{}, e
		}
		return caller{}, unauthenticated(tokenFailureMessage(err))
	}
	if claims.TenantID == "" || claims.ObjectID == "" {
		return caller{}, unauthenticated("Access token validation failure.")
	}
	return caller{claims: claims, tenantID: claims.TenantID, objectID: claims.ObjectID,
		homeTenant: claims.HomeTenant()}, nil
}

// tokenFailureMessage is Graph's message for a refused token. It knows the
// verifier's error values (token's and sts's), the one thing this package
// takes from the token service besides the TokenVerifier contract.
func tokenFailureMessage(err error) string {
	switch {
	case errors.Is(err, token.ErrExpired):
		return "Lifetime validation failed, the token is expired."
	case errors.Is(err, token.ErrNotYetValid):
		return "Lifetime validation failed, the token is not yet valid."
	case errors.Is(err, sts.ErrWrongAudience):
		return "Access token validation failure. Invalid audience."
	case errors.Is(err, token.ErrMalformed):
		return "IDX14100: JWT is not well formed."
	}
	return "Access token validation failure."
}

// validID reports whether s is an object id: a GUID in its canonical
// 8-4-4-4-12 form (uuid.Parse alone also takes braces and urn: prefixes).
func validID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

// resourceKind is what an endpoint acts on, for the permission table.
type resourceKind string

const (
	kindApplications       resourceKind = "applications"
	kindServicePrincipals  resourceKind = "servicePrincipals"
	kindAppRoleAssignments resourceKind = "appRoleAssignments"
	kindUsers              resourceKind = "users"
	kindUserMemberships    resourceKind = "users/memberOf"
	kindGroups             resourceKind = "groups"
	kindGroupMembers       resourceKind = "groups/members"
	// kindOAuth2PermissionGrants are delegated permission grants.
	kindOAuth2PermissionGrants resourceKind = "oauth2PermissionGrants"
	kindMe                     resourceKind = "me"
	kindDirectoryObjects       resourceKind = "directoryObjects"
	// kindDirectoryRoles: directoryRoles and roleManagement/directory.
	kindDirectoryRoles resourceKind = "directoryRoles"
	kindAuthMethods    resourceKind = "users/authentication/methods"
)

// verb is whether an endpoint reads or changes.
type verb string

const (
	read  verb = "read"
	write verb = "write"
)

// access is how much a caller may do at an endpoint.
type access int

const (
	denied access = iota
	// ownedOnly: only on objects the caller owns (Application.ReadWrite.OwnedBy).
	// Lists show only those; reads and changes of others are refused; what
	// the caller creates, it owns.
	ownedOnly
	full
	// selfOnly: an app-only caller without permission acting on its own
	// application (selfService actions); never the result of decide.
	selfOnly
)

// grant is one permission that opens an endpoint, and how far.
type grant struct {
	permission string
	access     access
}

// Shorthands for the table below.
func all(perms ...string) []grant {
	out := make([]grant, len(perms))
	for i, p := range perms {
		out[i] = grant{p, full}
	}
	return out
}

var ownedBy = grant{directory.PermApplicationReadWriteOwned, ownedOnly}

var (
	applicationRead  = append(all(directory.PermApplicationReadAll, directory.PermApplicationReadWriteAll, directory.PermDirectoryReadAll, directory.PermDirectoryReadWriteAll), ownedBy)
	applicationWrite = append(all(directory.PermApplicationReadWriteAll, directory.PermDirectoryReadWriteAll), ownedBy)
	groupRead        = all(directory.PermGroupReadAll, directory.PermGroupReadWriteAll, directory.PermGroupMemberReadAll,
		directory.PermGroupMemberReadWriteAll, directory.PermDirectoryReadAll, directory.PermDirectoryReadWriteAll)
)

// permissionTable says which permissions open which endpoints: the whole
// authorization policy of the Graph surface in one place. A permission
// counts when the token carries it: as an app role (roles claim) in an
// app-only token, as a delegated scope (scp claim) in a delegated one.
var permissionTable = map[resourceKind]map[verb][]grant{
	// Graph's documented permissions for grants: reading takes
	// Directory.Read.All (or DelegatedPermissionGrant.Read.All, or either
	// write permission); changing takes DelegatedPermissionGrant.ReadWrite.All
	// or Directory.ReadWrite.All.
	kindOAuth2PermissionGrants: {
		read: all(directory.PermDelegatedGrantReadAll, directory.PermDelegatedGrantReadWriteAll,
			directory.PermDirectoryReadAll, directory.PermDirectoryReadWriteAll),
		write: all(directory.PermDelegatedGrantReadWriteAll, directory.PermDirectoryReadWriteAll),
	},
	kindApplications:      {read: applicationRead, write: applicationWrite},
	kindServicePrincipals: {read: applicationRead, write: applicationWrite},
	kindAppRoleAssignments: {
		read: all(directory.PermAppRoleAssignmentReadWrite, directory.PermApplicationReadAll, directory.PermApplicationReadWriteAll,
			directory.PermDirectoryReadAll, directory.PermDirectoryReadWriteAll),
		write: all(directory.PermAppRoleAssignmentReadWrite),
	},
	kindUsers: {
		read:  all(directory.PermUserReadAll, directory.PermUserReadWriteAll, directory.PermDirectoryReadAll, directory.PermDirectoryReadWriteAll),
		write: all(directory.PermUserReadWriteAll, directory.PermDirectoryReadWriteAll),
	},
	kindUserMemberships: {
		read: append(all(directory.PermUserReadAll, directory.PermUserReadWriteAll), groupRead...),
	},
	kindGroups: {
		read:  groupRead,
		write: all(directory.PermGroupReadWriteAll, directory.PermDirectoryReadWriteAll),
	},
	// GET /me: User.Read or any permission that reads users
	// (https://learn.microsoft.com/graph/api/user-get).
	kindMe: {read: all("User.Read", "User.ReadWrite", "User.ReadBasic.All", directory.PermUserReadAll,
		directory.PermUserReadWriteAll, directory.PermDirectoryReadAll, directory.PermDirectoryReadWriteAll, "Directory.AccessAsUser.All")},
	// getByIds: Directory.Read.All is the least privileged
	// (https://learn.microsoft.com/graph/api/directoryobject-getbyids).
	kindDirectoryObjects: {read: all(directory.PermDirectoryReadAll, directory.PermDirectoryReadWriteAll)},
	// Directory roles and role management: RoleManagement.Read.Directory
	// to read, RoleManagement.ReadWrite.Directory to change
	// (https://learn.microsoft.com/graph/api/directoryrole-post-members,
	// rbacapplication-post-roleassignments).
	kindDirectoryRoles: {
		read: all(directory.PermRoleManagementRead, directory.PermRoleManagementReadWrite,
			directory.PermDirectoryReadAll, directory.PermDirectoryReadWriteAll),
		write: all(directory.PermRoleManagementReadWrite),
	},
	// UserAuthenticationMethod.Read.All
	// (https://learn.microsoft.com/graph/api/authentication-list-methods).
	kindAuthMethods: {read: all(directory.PermAuthMethodReadAll)},
	kindGroupMembers: {
		read:  groupRead,
		write: all(directory.PermGroupReadWriteAll, directory.PermDirectoryReadWriteAll, directory.PermGroupMemberReadWriteAll),
	},
}

// decide returns the most a caller may do at an endpoint.
func decide(c token.Claims, kind resourceKind, v verb) access {
	best := denied
	for _, g := range permissionTable[kind][v] {
		if holds(c, g.permission) && g.access > best {
			best = g.access
		}
	}
	return best
}

// holds reports whether the token carries a permission. A delegated token
// (one with scp that is not marked app-only) is judged by its scopes only,
// an app-only token by its app roles only, so that a user's app roles can
// never stand in for consented scopes or the reverse.
func holds(c token.Claims, permission string) bool {
	if !c.IsAppOnly() && c.Scope != "" {
		return c.HasScope(permission)
	}
	return c.HasRole(permission)
}

// A delegated token acts for a signed-in user, so it can do no more than
// that user could: Graph "evaluates delegated permissions together with the
// signed-in user's privileges; the app can't do more than the user"
// (https://learn.microsoft.com/graph/permissions-overview, "Delegated
// permissions"; https://learn.microsoft.com/entra/identity-platform/permissions-consent-overview,
// "the effective permissions ... are the intersection of the delegated
// permissions the app has been granted and the privileges of the currently
// signed-in user"). userCeiling is the most a user may do at an endpoint,
// from the user's directory roles
// (https://learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference)
// and Entra's default user permissions for members
// (https://learn.microsoft.com/entra/fundamentals/users-default-permissions):
//
//   - Global Administrator: everything;
//   - Global Reader: every read, no write;
//   - Application Administrator and Cloud Application Administrator:
//     every read; applications and service principals, their app role
//     assignments and delegated permission grants;
//   - Privileged Role Administrator: every read; app role assignments and
//     delegated permission grants; applications and service principals as
//     a member;
//   - a member without a role: every read; applications and service
//     principals the user owns (members may register applications and
//     manage those they own); nothing else.
//
// Owned-only access exists only where the handlers check ownership
// (applications and service principals); everywhere else the ceiling is
// full or denied.
func userCeiling(roles []string, kind resourceKind, v verb) access {
	has := func(r string) bool { return slices.Contains(roles, r) }
	if has(directory.RoleGlobalAdministrator) {
		return full
	}
	if v == read {
		return full
	}
	appAdmin := has(directory.RoleApplicationAdministrator) || has(directory.RoleCloudApplicationAdministrator)
	switch kind {
	case kindApplications, kindServicePrincipals:
		if appAdmin {
			return full
		}
		if has(directory.RoleGlobalReader) {
			return denied
		}
		return ownedOnly
	case kindAppRoleAssignments, kindOAuth2PermissionGrants:
		if appAdmin || has(directory.RolePrivilegedRoleAdministrator) {
			return full
		}
	case kindDirectoryRoles:
		// "Privileged Role Administrator is the least privileged role
		// supported for this operation" (directoryrole-post-members,
		// rbacapplication-post-roleassignments).
		if has(directory.RolePrivilegedRoleAdministrator) {
			return full
		}
	}
	return denied
}

// A service principal holds directory roles as a user does, and Entra
// honours them for its app-only calls: "In app-only scenarios, the calling
// app can be assigned one of the preceding supported roles instead of the
// … application permission" (Graph's API pages, e.g.
// accesspackage-list-resourcerolescopes; user-update: "the calling app
// must be assigned … at least the User Administrator Microsoft Entra
// role"). appOnlyCeiling is what a service principal's roles alone open,
// from the same role descriptions as userCeiling but narrower: a service
// principal has no default member permissions (no reads without a role),
// and where Entra documents a shorter role list for an operation that list
// is the one used here:
//
//   - Global Administrator: everything;
//   - Global Reader: every read;
//   - Application Administrator and Cloud Application Administrator:
//     applications and service principals ("Can create and manage all
//     aspects of app registrations and enterprise apps"), and delegated
//     permission grants;
//   - Privileged Role Administrator: directory roles and role assignments
//     (directoryrole-post-members: "Privileged Role Administrator is the
//     least privileged role supported for this operation"), app role
//     assignments and delegated permission grants (granting Microsoft
//     Graph's application permissions takes Global Administrator or
//     Privileged Role Administrator, Application Administrator only
//     delegated ones: tutorial-grant-app-only-api-permissions,
//     MicrosoftDocs/microsoftgraph-docs-powershell#523).
func appOnlyCeiling(roles []string, kind resourceKind, v verb) access {
	has := func(r string) bool { return slices.Contains(roles, r) }
	if has(directory.RoleGlobalAdministrator) || (v == read && has(directory.RoleGlobalReader)) {
		return full
	}
	appAdmin := has(directory.RoleApplicationAdministrator) || has(directory.RoleCloudApplicationAdministrator)
	pra := has(directory.RolePrivilegedRoleAdministrator)
	switch kind {
	case kindApplications, kindServicePrincipals:
		if appAdmin {
			return full
		}
	case kindOAuth2PermissionGrants:
		if appAdmin || pra {
			return full
		}
	case kindAppRoleAssignments, kindDirectoryRoles:
		if pra {
			return full
		}
	}
	return denied
}

// principalAccess adjusts the access a token's permissions give to its
// principal: a delegated token is capped by its user's roles (capByUser),
// an app-only token is raised to what its service principal's directory
// roles open (appOnlyCeiling), read from the directory at each request so
// that a removed role counts at once.
func (h *Handler) principalAccess(ctx context.Context, c caller, kind resourceKind, v verb, granted access) (access, error) {
	if !c.claims.IsAppOnly() {
		return h.capByUser(ctx, c, kind, v, granted)
	}
	if granted == full {
		return full, nil // no role opens more: no directory read on the hot path
	}
	roles, err := h.dir.EnabledServicePrincipalRoles(ctx, c.tenantID, c.objectID)
	if errors.Is(err, directory.ErrNotFound) {
		return granted, nil
	}
	if err != nil {
		return denied, err
	}
	return max(granted, appOnlyCeiling(roles, kind, v)), nil
}

// capByUser lowers the access a delegated token's scopes give to what its
// signed-in user may do. A user token whose user is not (or no longer) an
// enabled user of the tenant is denied.
func (h *Handler) capByUser(ctx context.Context, c caller, kind resourceKind, v verb, scoped access) (access, error) {
	if scoped == denied {
		return scoped, nil
	}
	roles, err := h.dir.EnabledUserRoles(ctx, c.tenantID, c.objectID)
	if errors.Is(err, directory.ErrNotFound) {
		return denied, nil
	}
	if err != nil {
		return denied, err
	}
	return min(scoped, userCeiling(roles, kind, v)), nil
}
