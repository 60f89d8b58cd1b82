package directory

import (
	"slices"
	"strings"
	"time"
)

// The sign-in audiences tenantbridge supports. Personal Microsoft accounts
// have no place in a cloud without consumers, so their audiences are refused.
const (
	AudienceMyOrg          = "AzureADMyOrg"
	AudienceMultipleOrgs   = "AzureADMultipleOrgs"
	MaxFederatedCredential = 20 // Entra's limit per application or managed identity
)

// Application is an application registration: the global definition of an
// app, stored in its home tenant. Its json tags are the storage format, not
// the Graph wire format (the graph package owns that).
type Application struct {
	ID                         string                        `json:"id"` // object id
	TenantID                   string                        `json:"-"`  // home tenant
	AppID                      string                        `json:"appId"`
	DisplayName                string                        `json:"displayName"`
	Description                string                        `json:"description,omitempty"`
	SignInAudience             string                        `json:"signInAudience"`
	IdentifierURIs             []string                      `json:"identifierUris,omitempty"`
	AppRoles                   []AppRole                     `json:"appRoles,omitempty"`
	OAuth2PermissionScopes     []PermissionScope             `json:"oauth2PermissionScopes,omitempty"`
	RequiredResourceAccess     []RequiredResourceAccess      `json:"requiredResourceAccess,omitempty"`
	PasswordCredentials        []PasswordCredential          `json:"passwordCredentials,omitempty"`
	KeyCredentials             []KeyCredential               `json:"keyCredentials,omitempty"`
	FederatedCredentials       []FederatedIdentityCredential `json:"federatedIdentityCredentials,omitempty"`
	AccessTokenAcceptedVersion *int                          `json:"accessTokenAcceptedVersion,omitempty"`
	WebRedirectURIs            []string                      `json:"webRedirectUris,omitempty"`
	PublicClientRedirectURIs   []string                      `json:"publicClientRedirectUris,omitempty"`
	SPARedirectURIs            []string                      `json:"spaRedirectUris,omitempty"` // single-page apps (Graph's spa)
	IsFallbackPublicClient     bool                          `json:"isFallbackPublicClient,omitempty"`
	PublisherDomain            string                        `json:"publisherDomain,omitempty"`
	Tags                       []string                      `json:"tags,omitempty"`
	CreatedDateTime            time.Time                     `json:"createdDateTime"`
	Version                    int64                         `json:"-"`
}

// IsMultiTenant reports whether other tenants may hold a service principal of the app.
func (a *Application) IsMultiTenant() bool { return a.SignInAudience == AudienceMultipleOrgs }

// AppRole is a role an application defines; app permissions are app roles
// whose allowed member types include Application.
type AppRole struct {
	ID                 string   `json:"id"`
	AllowedMemberTypes []string `json:"allowedMemberTypes"` // "User", "Application"
	Description        string   `json:"description,omitempty"`
	DisplayName        string   `json:"displayName,omitempty"`
	IsEnabled          bool     `json:"isEnabled"`
	Value              string   `json:"value,omitempty"`
	Origin             string   `json:"origin,omitempty"`
}

// Allows reports whether principals of the member type ("User" or "Application") may hold the role.
func (r AppRole) Allows(memberType string) bool {
	for _, t := range r.AllowedMemberTypes {
		if t == memberType {
			return true
		}
	}
	return false
}

// PermissionScope is a delegated permission an application exposes.
type PermissionScope struct {
	ID                      string `json:"id"`
	Value                   string `json:"value"`
	Type                    string `json:"type"` // "User" or "Admin": who may consent
	AdminConsentDisplayName string `json:"adminConsentDisplayName,omitempty"`
	AdminConsentDescription string `json:"adminConsentDescription,omitempty"`
	UserConsentDisplayName  string `json:"userConsentDisplayName,omitempty"`
	UserConsentDescription  string `json:"userConsentDescription,omitempty"`
	IsEnabled               bool   `json:"isEnabled"`
}

// RequiredResourceAccess lists the permissions an application asks for on one resource.
type RequiredResourceAccess struct {
	ResourceAppID  string           `json:"resourceAppId"`
	ResourceAccess []ResourceAccess `json:"resourceAccess"`
}

// ResourceAccess is one requested permission: Type "Role" (an app role) or "Scope" (a delegated scope).
type ResourceAccess struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// PasswordCredential is a client secret. Only a keyed hash of the secret is
// stored; SecretText is filled once, in the result of AddPassword.
type PasswordCredential struct {
	KeyID         string    `json:"keyId"`
	DisplayName   string    `json:"displayName,omitempty"`
	Hint          string    `json:"hint"`
	StartDateTime time.Time `json:"startDateTime"`
	EndDateTime   time.Time `json:"endDateTime"`
	Hash          []byte    `json:"hash"`
	SecretText    string    `json:"-"`
}

// KeyCredential is a certificate whose key may sign client assertions.
type KeyCredential struct {
	KeyID               string    `json:"keyId"`
	DisplayName         string    `json:"displayName,omitempty"`
	Type                string    `json:"type"`  // "AsymmetricX509Cert"
	Usage               string    `json:"usage"` // "Verify"
	Key                 []byte    `json:"key"`   // certificate DER
	CustomKeyIdentifier string    `json:"customKeyIdentifier,omitempty"`
	StartDateTime       time.Time `json:"startDateTime"`
	EndDateTime         time.Time `json:"endDateTime"`
}

// FederatedIdentityCredential trusts tokens of an external issuer for one subject.
type FederatedIdentityCredential struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Issuer      string   `json:"issuer"`
	Subject     string   `json:"subject"`
	Audiences   []string `json:"audiences"`
	Description string   `json:"description,omitempty"`
}

// Service principal types.
const (
	SPTypeApplication     = "Application"
	SPTypeManagedIdentity = "ManagedIdentity"
)

// ServicePrincipal is an application's identity in one tenant: what roles
// are granted to and what tokens are issued for.
type ServicePrincipal struct {
	ID                     string            `json:"id"`
	TenantID               string            `json:"-"`
	AppID                  string            `json:"appId"`
	AppDisplayName         string            `json:"appDisplayName,omitempty"`
	DisplayName            string            `json:"displayName"`
	AppOwnerOrganizationID string            `json:"appOwnerOrganizationId"`
	ServicePrincipalType   string            `json:"servicePrincipalType"`
	ServicePrincipalNames  []string          `json:"servicePrincipalNames"`
	AlternativeNames       []string          `json:"alternativeNames,omitempty"`
	AppRoles               []AppRole         `json:"appRoles,omitempty"`
	OAuth2PermissionScopes []PermissionScope `json:"oauth2PermissionScopes,omitempty"`
	// AccessTokenAcceptedVersion mirrors the application's, so that a
	// token for this resource needs no read of the application.
	AccessTokenAcceptedVersion *int                 `json:"accessTokenAcceptedVersion,omitempty"`
	AccountEnabled             bool                 `json:"accountEnabled"`
	AppRoleAssignmentRequired  bool                 `json:"appRoleAssignmentRequired,omitempty"`
	PasswordCredentials        []PasswordCredential `json:"passwordCredentials,omitempty"`
	KeyCredentials             []KeyCredential      `json:"keyCredentials,omitempty"`
	SignInAudience             string               `json:"signInAudience,omitempty"`
	Tags                       []string             `json:"tags,omitempty"`
	// FederatedCredentials are a user-assigned managed identity's; an
	// application's live on the application.
	FederatedCredentials []FederatedIdentityCredential `json:"federatedIdentityCredentials,omitempty"`
	CreatedDateTime      time.Time                     `json:"createdDateTime"`
	Version              int64                         `json:"-"`
}

// AppRole returns the enabled role with the id, if the principal defines it.
func (sp *ServicePrincipal) AppRole(id string) (AppRole, bool) {
	for _, r := range sp.AppRoles {
		if r.ID == id && r.IsEnabled {
			return r, true
		}
	}
	return AppRole{}, false
}

// IsManagedIdentity reports whether the principal is a managed identity,
// which has no application object and no credentials of its own.
func (sp *ServicePrincipal) IsManagedIdentity() bool {
	return sp.ServicePrincipalType == SPTypeManagedIdentity
}

// ManagedIdentityResourceID returns the Azure resource id a managed
// identity belongs to: its own for a user-assigned identity, its resource's
// for a system-assigned one. Entra keeps it in alternativeNames.
func (sp *ServicePrincipal) ManagedIdentityResourceID() string {
	for _, n := range sp.AlternativeNames {
		if strings.HasPrefix(n, "/") {
			return n
		}
	}
	return ""
}

// IsUserAssigned reports whether a managed identity is user-assigned
// (isExplicit=True in Entra's alternativeNames).
func (sp *ServicePrincipal) IsUserAssigned() bool {
	return slices.Contains(sp.AlternativeNames, "isExplicit=True")
}

// User is a person's account in a tenant.
type User struct {
	ID                string    `json:"id"`
	TenantID          string    `json:"-"`
	UserPrincipalName string    `json:"userPrincipalName"`
	DisplayName       string    `json:"displayName"`
	GivenName         string    `json:"givenName,omitempty"`
	Surname           string    `json:"surname,omitempty"`
	Mail              string    `json:"mail,omitempty"`
	MailNickname      string    `json:"mailNickname,omitempty"`
	AccountEnabled    bool      `json:"accountEnabled"`
	PasswordHash      string    `json:"passwordHash,omitempty"` // argon2id, PHC string format
	TOTPSealed        []byte    `json:"totpSealed,omitempty"`   // TOTP secret, sealed under the KEK
	CreatedDateTime   time.Time `json:"createdDateTime"`
	Version           int64     `json:"-"`
}

// HasTOTP reports whether the user has enrolled an authenticator.
func (u *User) HasTOTP() bool { return len(u.TOTPSealed) > 0 }

// Group is a security group; members may be users, service principals and other groups.
type Group struct {
	ID              string    `json:"id"`
	TenantID        string    `json:"-"`
	DisplayName     string    `json:"displayName"`
	Description     string    `json:"description,omitempty"`
	MailNickname    string    `json:"mailNickname"`
	MailEnabled     bool      `json:"mailEnabled"`
	SecurityEnabled bool      `json:"securityEnabled"`
	CreatedDateTime time.Time `json:"createdDateTime"`
	Version         int64     `json:"-"`
}
