package azclient

import (
	"context"
	"net/http"
	"net/url"
)

// The Graph calls behind the CLI's people and permission commands: users'
// directory roles, group members, API permissions and their consent
// (delegated grants and app role assignments), and federated credentials.
// Each is the documented Graph v1.0 call, so the same client works against
// Microsoft Graph.

// RedirectURIs are one platform's redirect URIs
// (https://learn.microsoft.com/graph/api/resources/webapplication,
// publicclientapplication).
type RedirectURIs struct {
	RedirectURIs []string `json:"redirectUris"`
}

// RequiredResourceAccess is the set of permissions an application asks for
// on one API (https://learn.microsoft.com/graph/api/resources/requiredresourceaccess).
type RequiredResourceAccess struct {
	ResourceAppID  string           `json:"resourceAppId"`
	ResourceAccess []ResourceAccess `json:"resourceAccess"`
}

// ResourceAccess is one permission: the id of an API's delegated scope
// (Type "Scope") or app role (Type "Role").
type ResourceAccess struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// The two kinds of ResourceAccess.
const (
	AccessScope = "Scope"
	AccessRole  = "Role"
)

// AppRole is an application permission (or a role for users) an API offers.
type AppRole struct {
	ID                 string   `json:"id"`
	Value              string   `json:"value,omitempty"`
	DisplayName        string   `json:"displayName,omitempty"`
	AllowedMemberTypes []string `json:"allowedMemberTypes,omitempty"`
	IsEnabled          *bool    `json:"isEnabled,omitempty"`
}

// PermissionScope is a delegated permission an API offers.
type PermissionScope struct {
	ID        string `json:"id"`
	Value     string `json:"value,omitempty"`
	Type      string `json:"type,omitempty"` // "User" or "Admin": who may consent
	IsEnabled *bool  `json:"isEnabled,omitempty"`
}

// DirectoryObject is a member of a group or role: a user, group or
// service principal, told apart by ODataType.
type DirectoryObject struct {
	ODataType         string `json:"@odata.type"`
	ID                string `json:"id"`
	DisplayName       string `json:"displayName,omitempty"`
	UserPrincipalName string `json:"userPrincipalName,omitempty"`
	AppID             string `json:"appId,omitempty"`
}

// OAuth2PermissionGrant is a delegated permission grant: the client's
// service principal may act for users (ConsentType "AllPrincipals") or for
// one user (ConsentType "Principal", PrincipalID) on the resource's API with
// Scope, a space-separated list of scope values.
type OAuth2PermissionGrant struct {
	ID          string `json:"id,omitempty"`
	ClientID    string `json:"clientId"`
	ConsentType string `json:"consentType"`
	PrincipalID string `json:"principalId,omitempty"`
	ResourceID  string `json:"resourceId"`
	Scope       string `json:"scope"`
}

// The consent types of an OAuth2PermissionGrant.
const (
	ConsentAllPrincipals = "AllPrincipals"
	ConsentPrincipal     = "Principal"
)

// AppRoleAssignment grants the app role AppRoleID of the resource
// service principal ResourceID to the principal PrincipalID.
type AppRoleAssignment struct {
	ID                  string `json:"id,omitempty"`
	AppRoleID           string `json:"appRoleId"`
	PrincipalID         string `json:"principalId"`
	ResourceID          string `json:"resourceId"`
	PrincipalType       string `json:"principalType,omitempty"`
	ResourceDisplayName string `json:"resourceDisplayName,omitempty"`
}

// RoleDefinition is a built-in directory role (unifiedRoleDefinition).
type RoleDefinition struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	TemplateID  string `json:"templateId,omitempty"`
	IsBuiltIn   bool   `json:"isBuiltIn"`
}

// RoleAssignment is a directory role held by a principal
// (unifiedRoleAssignment); DirectoryScopeID "/" is the whole tenant.
type RoleAssignment struct {
	ID               string `json:"id,omitempty"`
	PrincipalID      string `json:"principalId"`
	RoleDefinitionID string `json:"roleDefinitionId"`
	DirectoryScopeID string `json:"directoryScopeId"`
}

// UpdateApplication changes the properties named in changes (Graph's PATCH
// replaces each property it is given, whole).
func (g *Graph) UpdateApplication(ctx context.Context, id string, changes map[string]any) error {
	return g.do(ctx, http.MethodPatch, "/applications/"+url.PathEscape(id), nil, changes, nil)
}

// GetFederatedCredential gets one of the application's federated identity
// credentials by id or name.
func (g *Graph) GetFederatedCredential(ctx context.Context, appObjectID, idOrName string) (*FederatedCredential, error) {
	var out FederatedCredential
	return &out, g.do(ctx, http.MethodGet, "/applications/"+url.PathEscape(appObjectID)+"/federatedIdentityCredentials/"+url.PathEscape(idOrName), nil, nil, &out)
}

// DeleteFederatedCredential deletes one of the application's federated
// identity credentials by id or name.
func (g *Graph) DeleteFederatedCredential(ctx context.Context, appObjectID, idOrName string) error {
	return g.do(ctx, http.MethodDelete, "/applications/"+url.PathEscape(appObjectID)+"/federatedIdentityCredentials/"+url.PathEscape(idOrName), nil, nil, nil)
}

// DeleteUser deletes a user by object id or user principal name.
func (g *Graph) DeleteUser(ctx context.Context, idOrUPN string) error {
	return g.do(ctx, http.MethodDelete, "/users/"+url.PathEscape(idOrUPN), nil, nil, nil)
}

// ListGroupMembers lists a group's direct members.
func (g *Graph) ListGroupMembers(ctx context.Context, groupID string) ([]DirectoryObject, error) {
	return list[DirectoryObject](ctx, g, "/groups/"+url.PathEscape(groupID)+"/members", "")
}

// RemoveGroupMember removes the directory object memberID from the group.
func (g *Graph) RemoveGroupMember(ctx context.Context, groupID, memberID string) error {
	return g.do(ctx, http.MethodDelete, "/groups/"+url.PathEscape(groupID)+"/members/"+url.PathEscape(memberID)+"/$ref", nil, nil, nil)
}

// ListDirectoryRoleDefinitions lists the directory's role definitions
// (GET /roleManagement/directory/roleDefinitions).
func (g *Graph) ListDirectoryRoleDefinitions(ctx context.Context) ([]RoleDefinition, error) {
	return list[RoleDefinition](ctx, g, "/roleManagement/directory/roleDefinitions", "")
}

// AssignDirectoryRole gives the principal the directory role (a role
// definition id) over the whole tenant
// (https://learn.microsoft.com/graph/api/rbacapplication-post-roleassignments).
func (g *Graph) AssignDirectoryRole(ctx context.Context, principalID, roleDefinitionID string) (*RoleAssignment, error) {
	var out RoleAssignment
	body := RoleAssignment{PrincipalID: principalID, RoleDefinitionID: roleDefinitionID, DirectoryScopeID: "/"}
	return &out, g.do(ctx, http.MethodPost, "/roleManagement/directory/roleAssignments", nil, body, &out)
}

// ListDirectoryRoleAssignments lists directory role assignments; filter is
// an OData $filter (e.g. "principalId eq '…'"), or empty for all.
func (g *Graph) ListDirectoryRoleAssignments(ctx context.Context, filter string) ([]RoleAssignment, error) {
	return list[RoleAssignment](ctx, g, "/roleManagement/directory/roleAssignments", filter)
}

// ListOAuth2PermissionGrants lists delegated permission grants; filter is
// an OData $filter (e.g. "clientId eq '…'"), or empty for all.
func (g *Graph) ListOAuth2PermissionGrants(ctx context.Context, filter string) ([]OAuth2PermissionGrant, error) {
	return list[OAuth2PermissionGrant](ctx, g, "/oauth2PermissionGrants", filter)
}

// CreateOAuth2PermissionGrant grants delegated permissions.
func (g *Graph) CreateOAuth2PermissionGrant(ctx context.Context, grant OAuth2PermissionGrant) (*OAuth2PermissionGrant, error) {
	var out OAuth2PermissionGrant
	return &out, g.do(ctx, http.MethodPost, "/oauth2PermissionGrants", nil, grant, &out)
}

// UpdateOAuth2PermissionGrantScope replaces a grant's scope, the one
// property of a grant Graph lets change.
func (g *Graph) UpdateOAuth2PermissionGrantScope(ctx context.Context, id, scope string) error {
	return g.do(ctx, http.MethodPatch, "/oauth2PermissionGrants/"+url.PathEscape(id), nil, map[string]string{"scope": scope}, nil)
}

// DeleteOAuth2PermissionGrant revokes a delegated permission grant.
func (g *Graph) DeleteOAuth2PermissionGrant(ctx context.Context, id string) error {
	return g.do(ctx, http.MethodDelete, "/oauth2PermissionGrants/"+url.PathEscape(id), nil, nil, nil)
}

// ListAppRoleAssignments lists the app roles granted to a service principal.
func (g *Graph) ListAppRoleAssignments(ctx context.Context, spID string) ([]AppRoleAssignment, error) {
	return list[AppRoleAssignment](ctx, g, "/servicePrincipals/"+url.PathEscape(spID)+"/appRoleAssignments", "")
}

// AssignAppRole grants the app role appRoleID of the resource service
// principal to the service principal spID (an application permission, when
// the resource is an API).
func (g *Graph) AssignAppRole(ctx context.Context, spID, resourceID, appRoleID string) (*AppRoleAssignment, error) {
	var out AppRoleAssignment
	body := AppRoleAssignment{PrincipalID: spID, ResourceID: resourceID, AppRoleID: appRoleID}
	return &out, g.do(ctx, http.MethodPost, "/servicePrincipals/"+url.PathEscape(spID)+"/appRoleAssignments", nil, body, &out)
}

// RemoveAppRoleAssignment revokes an app role assignment of the service
// principal spID.
func (g *Graph) RemoveAppRoleAssignment(ctx context.Context, spID, assignmentID string) error {
	return g.do(ctx, http.MethodDelete, "/servicePrincipals/"+url.PathEscape(spID)+"/appRoleAssignments/"+url.PathEscape(assignmentID), nil, nil, nil)
}
