package store

import (
	"context"
	"strings"
	"time"
)

// PrincipalType is the kind of principal a role or deny assignment names,
// spelled as Azure Resource Manager spells it.
type PrincipalType string

// The principal types.
const (
	PrincipalUser             PrincipalType = "User"
	PrincipalGroup            PrincipalType = "Group"
	PrincipalServicePrincipal PrincipalType = "ServicePrincipal"
	// PrincipalSystemDefined, with the all-zero id EveryonePrincipalID,
	// stands for every principal in a deny assignment.
	PrincipalSystemDefined PrincipalType = "SystemDefined"
)

// EveryonePrincipalID with PrincipalSystemDefined means "every principal"
// in a deny assignment's Principals.
const EveryonePrincipalID = "00000000-0000-0000-0000-000000000000"

// Permission is one permission block of a role definition or a deny
// assignment: operation patterns in Azure's syntax (`*` is a wildcard).
type Permission struct {
	Actions        []string `json:"actions"`
	NotActions     []string `json:"notActions"`
	DataActions    []string `json:"dataActions"`
	NotDataActions []string `json:"notDataActions"`
}

// RoleDefinition is a custom role of a tenant. Built-in roles are not
// stored: package rbac holds them in code.
type RoleDefinition struct {
	TenantID    string
	ID          string // GUID, unique per tenant
	Name        string // roleName, unique per tenant case-insensitively
	Description string
	Permissions []Permission
	// AssignableScopes are the scopes the role may be assigned at (and
	// below), as given.
	AssignableScopes []string
	Created          time.Time
	Updated          time.Time
	CreatedBy        string
}

// RoleAssignment grants a principal a role at a scope. It belongs to the
// tenant that owns the scope; the principal may live in another tenant
// (PrincipalTenantID), and the assignment counts only for TenantID's scopes.
type RoleAssignment struct {
	TenantID         string // the tenant that owns Scope
	ID               string // GUID, unique per tenant
	Scope            string // ARM resource id, returned as given; matched case-insensitively
	RoleDefinitionID string // GUID of a built-in or custom role
	PrincipalID      string
	PrincipalType    PrincipalType
	// PrincipalTenantID is the principal's home tenant; empty means
	// TenantID. Deleting that tenant removes the assignment too.
	PrincipalTenantID string
	CreatedOn         time.Time
	CreatedBy         string
}

// DelegationCreator begins the CreatedBy of the role assignments through
// which a tenant delegates a scope to principals of another tenant (a
// managed application's publisher authorizations): the only assignments
// that let a token of another tenant into the resource manager at all.
// Any other assignment naming a foreign principal (left by a bug or a
// hostile import) lets no one in.
const DelegationCreator = "delegation:"

// IsDelegation reports whether a is a delegation the platform made.
func (a RoleAssignment) IsDelegation() bool {
	return strings.HasPrefix(a.CreatedBy, DelegationCreator)
}

// RoleAssignmentQuery selects role assignments of one tenant. Empty fields
// do not filter; results are ordered by ID.
type RoleAssignmentQuery struct {
	TenantID string // required
	// Scopes selects assignments whose scope is one of these,
	// case-insensitively (callers pass a scope and its ancestors).
	Scopes []string
	// ScopePrefix selects assignments at this scope or below it
	// (case-insensitive, on whole segments).
	ScopePrefix       string
	PrincipalIDs      []string
	PrincipalTenantID string
	RoleDefinitionID  string
	// After is a cursor: only assignments whose ID sorts after it (IDs
	// are lower-case GUIDs). Limit bounds the result (0: no limit).
	// Together they page a list, and Limit 1 asks whether any
	// assignment matches.
	After string
	Limit int
}

// DenyPrincipal names a principal in a deny assignment.
type DenyPrincipal struct {
	ID   string        `json:"id"`
	Type PrincipalType `json:"type"`
}

// DenyAssignment blocks principals from operations at a scope (and, unless
// DoNotApplyToChildScopes, below it), whatever their roles grant. Only the
// platform creates them (managed applications, deployment stacks).
type DenyAssignment struct {
	TenantID                string // the tenant that owns Scope
	ID                      string // GUID, unique per tenant
	Name                    string // unique per tenant and scope, case-insensitively
	Description             string
	Scope                   string // returned as given; matched case-insensitively
	Permissions             []Permission
	Principals              []DenyPrincipal
	ExcludePrincipals       []DenyPrincipal
	DoNotApplyToChildScopes bool
	IsSystemProtected       bool
	CreatedOn               time.Time
	CreatedBy               string
}

// DenyAssignmentQuery selects deny assignments of one tenant, ordered by ID.
type DenyAssignmentQuery struct {
	TenantID    string // required
	Scopes      []string
	ScopePrefix string
}

// RBAC stores custom role definitions, role assignments and deny
// assignments. Every record belongs to a tenant and goes with it.
type RBAC interface {
	// CreateRoleDefinition fails with ErrConflict when the id or the name
	// is taken in the tenant, ErrNotFound when the tenant does not exist.
	CreateRoleDefinition(ctx context.Context, d RoleDefinition) error
	GetRoleDefinition(ctx context.Context, tenantID, id string) (RoleDefinition, error)
	// UpdateRoleDefinition replaces Name, Description, Permissions and
	// AssignableScopes and sets Updated; ErrNotFound, ErrConflict on a taken name.
	UpdateRoleDefinition(ctx context.Context, d RoleDefinition) error
	DeleteRoleDefinition(ctx context.Context, tenantID, id string) error
	// ListRoleDefinitions lists a tenant's custom roles ordered by ID.
	ListRoleDefinitions(ctx context.Context, tenantID string) ([]RoleDefinition, error)

	// CreateRoleAssignment fails with ErrConflict when the id is taken or
	// the same (scope, role, principal) is already assigned in the tenant,
	// ErrNotFound when the tenant or the principal's tenant does not exist.
	CreateRoleAssignment(ctx context.Context, a RoleAssignment) error
	GetRoleAssignment(ctx context.Context, tenantID, id string) (RoleAssignment, error)
	DeleteRoleAssignment(ctx context.Context, tenantID, id string) error
	ListRoleAssignments(ctx context.Context, q RoleAssignmentQuery) ([]RoleAssignment, error)

	// CreateDenyAssignment fails with ErrConflict when the id, or the name
	// at the same scope, is taken in the tenant.
	CreateDenyAssignment(ctx context.Context, d DenyAssignment) error
	GetDenyAssignment(ctx context.Context, tenantID, id string) (DenyAssignment, error)
	DeleteDenyAssignment(ctx context.Context, tenantID, id string) error
	ListDenyAssignments(ctx context.Context, q DenyAssignmentQuery) ([]DenyAssignment, error)

	// TenantsBySubscription lists the ids of the tenants whose
	// SubscriptionID is subscriptionID (case-insensitively), ordered by id:
	// how a scope finds the tenant that owns it.
	TenantsBySubscription(ctx context.Context, subscriptionID string) ([]string, error)
}
