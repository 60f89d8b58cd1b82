package graph

// This file is the only place Graph's wire shapes meet the directory's
// types. Every response is built from a view type here, field by field, so
// that a field added to a directory type (a hash, a sealed secret) can
// never reach a client by accident; every request body is decoded into an
// input type here and copied into directory types explicitly.
//
// View types have no omitempty: Graph sends every property, with null for
// what is unset, and $select relies on knowing every property name (see
// propertiesOf).

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// graphTime formats a time as Graph does: RFC 3339 in UTC ("Z").
func graphTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// nullable is Graph's null for an unset string property.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// deref is the directory's "" for a null or absent string.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// list is Graph's [] for an empty collection property (never null).
func list[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return slices.Clone(xs)
}

// ---- applications ----

type applicationView struct {
	ID                     string                       `json:"id"`
	AppID                  string                       `json:"appId"`
	DisplayName            string                       `json:"displayName"`
	Description            *string                      `json:"description"`
	SignInAudience         string                       `json:"signInAudience"`
	IdentifierURIs         []string                     `json:"identifierUris"`
	AppRoles               []appRoleView                `json:"appRoles"`
	API                    apiView                      `json:"api"`
	RequiredResourceAccess []requiredResourceAccessView `json:"requiredResourceAccess"`
	PasswordCredentials    []passwordCredentialView     `json:"passwordCredentials"`
	KeyCredentials         []keyCredentialView          `json:"keyCredentials"`
	Web                    redirectsView                `json:"web"`
	Spa                    redirectsView                `json:"spa"`
	PublicClient           redirectsView                `json:"publicClient"`
	IsFallbackPublicClient bool                         `json:"isFallbackPublicClient"`
	PublisherDomain        string                       `json:"publisherDomain"`
	CreatedDateTime        string                       `json:"createdDateTime"`
	Tags                   []string                     `json:"tags"`
}

// appRoleView is used both ways: in responses and in request bodies. As
// input, an absent isEnabled means true (Graph's default) and origin is
// ignored (the directory sets it).
type appRoleView struct {
	ODataType          string   `json:"@odata.type,omitempty"`
	AllowedMemberTypes []string `json:"allowedMemberTypes"`
	Description        *string  `json:"description"`
	DisplayName        *string  `json:"displayName"`
	ID                 string   `json:"id"`
	IsEnabled          *bool    `json:"isEnabled"`
	Origin             *string  `json:"origin"`
	Value              *string  `json:"value"`
}

// permissionScopeView is used both ways, like appRoleView.
type permissionScopeView struct {
	ODataType               string  `json:"@odata.type,omitempty"`
	AdminConsentDescription *string `json:"adminConsentDescription"`
	AdminConsentDisplayName *string `json:"adminConsentDisplayName"`
	ID                      string  `json:"id"`
	IsEnabled               *bool   `json:"isEnabled"`
	Type                    *string `json:"type"`
	UserConsentDescription  *string `json:"userConsentDescription"`
	UserConsentDisplayName  *string `json:"userConsentDisplayName"`
	Value                   *string `json:"value"`
}

type apiView struct {
	OAuth2PermissionScopes      []permissionScopeView `json:"oauth2PermissionScopes"`
	RequestedAccessTokenVersion *int                  `json:"requestedAccessTokenVersion"`
}

// requiredResourceAccessView is used both ways.
type requiredResourceAccessView struct {
	ODataType      string               `json:"@odata.type,omitempty"`
	ResourceAppID  string               `json:"resourceAppId"`
	ResourceAccess []resourceAccessView `json:"resourceAccess"`
}

type resourceAccessView struct {
	ODataType string `json:"@odata.type,omitempty"`
	ID        string `json:"id"`
	Type      string `json:"type"`
}

type redirectsView struct {
	RedirectURIs []string `json:"redirectUris"`
}

// passwordCredentialView never carries the stored hash; secretText is set
// only in the answer to addPassword.
type passwordCredentialView struct {
	CustomKeyIdentifier *string `json:"customKeyIdentifier"`
	DisplayName         *string `json:"displayName"`
	EndDateTime         string  `json:"endDateTime"`
	Hint                string  `json:"hint"`
	KeyID               string  `json:"keyId"`
	SecretText          *string `json:"secretText"`
	StartDateTime       string  `json:"startDateTime"`
}

// keyCredentialView shows a certificate credential without the certificate
// itself (key is null, as in Graph's list responses).
type keyCredentialView struct {
	CustomKeyIdentifier *string `json:"customKeyIdentifier"`
	DisplayName         *string `json:"displayName"`
	EndDateTime         string  `json:"endDateTime"`
	Key                 *string `json:"key"`
	KeyID               string  `json:"keyId"`
	StartDateTime       string  `json:"startDateTime"`
	Type                string  `json:"type"`
	Usage               string  `json:"usage"`
}

func applicationToView(a *directory.Application) applicationView {
	var version *int
	if a.AccessTokenAcceptedVersion != nil {
		v := *a.AccessTokenAcceptedVersion
		version = &v
	}
	return applicationView{
		ID:                     a.ID,
		AppID:                  a.AppID,
		DisplayName:            a.DisplayName,
		Description:            nullable(a.Description),
		SignInAudience:         a.SignInAudience,
		IdentifierURIs:         list(a.IdentifierURIs),
		AppRoles:               appRolesToView(a.AppRoles, "Application"),
		API:                    apiView{OAuth2PermissionScopes: scopesToView(a.OAuth2PermissionScopes), RequestedAccessTokenVersion: version},
		RequiredResourceAccess: requiredAccessToView(a.RequiredResourceAccess),
		PasswordCredentials:    passwordsToView(a.PasswordCredentials),
		KeyCredentials:         keysToView(a.KeyCredentials),
		Web:                    redirectsView{RedirectURIs: list(a.WebRedirectURIs)},
		Spa:                    redirectsView{RedirectURIs: list(a.SPARedirectURIs)},
		PublicClient:           redirectsView{RedirectURIs: list(a.PublicClientRedirectURIs)},
		IsFallbackPublicClient: a.IsFallbackPublicClient,
		PublisherDomain:        a.PublisherDomain,
		CreatedDateTime:        graphTime(a.CreatedDateTime),
		Tags:                   list(a.Tags),
	}
}

func appRolesToView(roles []directory.AppRole, defaultOrigin string) []appRoleView {
	out := make([]appRoleView, 0, len(roles))
	for _, r := range roles {
		enabled, origin := r.IsEnabled, r.Origin
		if origin == "" {
			origin = defaultOrigin
		}
		out = append(out, appRoleView{AllowedMemberTypes: list(r.AllowedMemberTypes), Description: nullable(r.Description),
			DisplayName: nullable(r.DisplayName), ID: r.ID, IsEnabled: &enabled, Origin: &origin, Value: nullable(r.Value)})
	}
	return out
}

func scopesToView(scopes []directory.PermissionScope) []permissionScopeView {
	out := make([]permissionScopeView, 0, len(scopes))
	for _, s := range scopes {
		enabled, typ := s.IsEnabled, s.Type
		out = append(out, permissionScopeView{AdminConsentDescription: nullable(s.AdminConsentDescription),
			AdminConsentDisplayName: nullable(s.AdminConsentDisplayName), ID: s.ID, IsEnabled: &enabled, Type: &typ,
			UserConsentDescription: nullable(s.UserConsentDescription), UserConsentDisplayName: nullable(s.UserConsentDisplayName),
			Value: nullable(s.Value)})
	}
	return out
}

func requiredAccessToView(rras []directory.RequiredResourceAccess) []requiredResourceAccessView {
	out := make([]requiredResourceAccessView, 0, len(rras))
	for _, rra := range rras {
		v := requiredResourceAccessView{ResourceAppID: rra.ResourceAppID, ResourceAccess: []resourceAccessView{}}
		for _, ra := range rra.ResourceAccess {
			v.ResourceAccess = append(v.ResourceAccess, resourceAccessView{ID: ra.ID, Type: ra.Type})
		}
		out = append(out, v)
	}
	return out
}

func passwordsToView(creds []directory.PasswordCredential) []passwordCredentialView {
	out := make([]passwordCredentialView, 0, len(creds))
	for _, c := range creds {
		out = append(out, passwordToView(c, false))
	}
	return out
}

// passwordToView shows a client secret; withSecret is true only for the
// answer to addPassword, the one time the secret's text exists.
func passwordToView(c directory.PasswordCredential, withSecret bool) passwordCredentialView {
	v := passwordCredentialView{DisplayName: nullable(c.DisplayName), EndDateTime: graphTime(c.EndDateTime),
		Hint: c.Hint, KeyID: c.KeyID, StartDateTime: graphTime(c.StartDateTime)}
	if withSecret {
		v.SecretText = nullable(c.SecretText)
	}
	return v
}

func keysToView(keys []directory.KeyCredential) []keyCredentialView {
	out := make([]keyCredentialView, 0, len(keys))
	for _, k := range keys {
		out = append(out, keyToView(k))
	}
	return out
}

// keyToView shows a certificate credential. customKeyIdentifier is
// Edm.Binary on the wire (base64); the directory keeps the SHA-1
// thumbprint as hex.
func keyToView(k directory.KeyCredential) keyCredentialView {
	var custom *string
	if k.CustomKeyIdentifier != "" {
		raw, err := hex.DecodeString(k.CustomKeyIdentifier)
		if err != nil {
			raw = []byte(k.CustomKeyIdentifier)
		}
		custom = nullable(base64.StdEncoding.EncodeToString(raw))
	}
	return keyCredentialView{CustomKeyIdentifier: custom, DisplayName: nullable(k.DisplayName),
		EndDateTime: graphTime(k.EndDateTime), KeyID: k.KeyID, StartDateTime: graphTime(k.StartDateTime),
		Type: k.Type, Usage: k.Usage}
}

// applicationInput is the body of POST and PATCH /applications. Absent (or
// null) properties are left as they are; a present one replaces the
// stored value whole, lists included.
type applicationInput struct {
	ODataType              string                        `json:"@odata.type"` // sent by the Graph SDKs; ignored
	DisplayName            *string                       `json:"displayName"`
	Description            *string                       `json:"description"`
	SignInAudience         *string                       `json:"signInAudience"`
	IdentifierURIs         *[]string                     `json:"identifierUris"`
	AppRoles               *[]appRoleView                `json:"appRoles"`
	API                    *apiInput                     `json:"api"`
	RequiredResourceAccess *[]requiredResourceAccessView `json:"requiredResourceAccess"`
	Web                    *redirectsInput               `json:"web"`
	Spa                    *redirectsInput               `json:"spa"`
	PublicClient           *redirectsInput               `json:"publicClient"`
	// KeyCredentials replaces the application's certificates: "Create
	// application and Update application operations can continue to be
	// used to add and update key credentials", and Update is how the first
	// one is added (https://learn.microsoft.com/graph/api/application-addkey).
	// The handlers apply it (keyCredentialsFrom); applyTo does not.
	KeyCredentials         *[]keyCredentialInput `json:"keyCredentials"`
	IsFallbackPublicClient *bool                 `json:"isFallbackPublicClient"`
	Tags                   *[]string             `json:"tags"`
}

type apiInput struct {
	ODataType              string                 `json:"@odata.type"`
	OAuth2PermissionScopes *[]permissionScopeView `json:"oauth2PermissionScopes"`
	// RequestedAccessTokenVersion is raw so that null (back to the
	// default, v1) can be told from absent (unchanged).
	RequestedAccessTokenVersion json.RawMessage `json:"requestedAccessTokenVersion"`
}

type redirectsInput struct {
	ODataType    string    `json:"@odata.type"`
	RedirectURIs *[]string `json:"redirectUris"`
}

// applicationReadOnly are the properties a client may read but not set;
// naming one in a body is a 400 with Graph's message, not a silent no-op.
// Secrets and federated credentials have their own actions (addPassword,
// federatedIdentityCredentials); keyCredentials may be set here.
//
// passwordCredentials: "You can no longer use a PATCH operation on the
// application or servicePrincipal objects to update passwordCredentials";
// use addPassword and removePassword
// (https://devblogs.microsoft.com/microsoft365dev/breaking-changes-application-and-serviceprincipal-api-updates-in-microsoft-graph-beta,
// and the passwordCredential resource page).
var applicationReadOnly = []string{"id", "appId", "publisherDomain", "createdDateTime",
	"passwordCredentials", "federatedIdentityCredentials"}

// decodeApplication decodes a POST /applications body into the directory
// application it asks for. It is the whole of the request's translation,
// so that the fuzz target exercises exactly what the handler runs.
func decodeApplication(body []byte) (directory.Application, error) {
	var in applicationInput
	var app directory.Application
	if err := decodeBody(body, &in, applicationReadOnly); err != nil {
		return app, err
	}
	if in.DisplayName == nil {
		return app, badRequest("Property 'displayName' is required.")
	}
	err := in.applyTo(&app)
	return app, err
}

// applyTo copies the properties present in the body onto a. Validation is
// the directory's; only what the wire format itself decides is checked here.
func (in *applicationInput) applyTo(a *directory.Application) error {
	if in.DisplayName != nil {
		a.DisplayName = *in.DisplayName
	}
	if in.Description != nil {
		a.Description = *in.Description
	}
	if in.SignInAudience != nil {
		a.SignInAudience = *in.SignInAudience
	}
	if in.IdentifierURIs != nil {
		a.IdentifierURIs = slices.Clone(*in.IdentifierURIs)
	}
	if in.AppRoles != nil {
		a.AppRoles = make([]directory.AppRole, 0, len(*in.AppRoles))
		for _, r := range *in.AppRoles {
			a.AppRoles = append(a.AppRoles, directory.AppRole{ID: strings.ToLower(r.ID), AllowedMemberTypes: slices.Clone(r.AllowedMemberTypes),
				Description: deref(r.Description), DisplayName: deref(r.DisplayName), IsEnabled: r.IsEnabled == nil || *r.IsEnabled,
				Value: deref(r.Value)})
		}
	}
	if in.API != nil {
		if in.API.OAuth2PermissionScopes != nil {
			a.OAuth2PermissionScopes = make([]directory.PermissionScope, 0, len(*in.API.OAuth2PermissionScopes))
			for _, s := range *in.API.OAuth2PermissionScopes {
				a.OAuth2PermissionScopes = append(a.OAuth2PermissionScopes, directory.PermissionScope{
					ID: strings.ToLower(s.ID), Value: deref(s.Value), Type: deref(s.Type),
					AdminConsentDisplayName: deref(s.AdminConsentDisplayName), AdminConsentDescription: deref(s.AdminConsentDescription),
					UserConsentDisplayName: deref(s.UserConsentDisplayName), UserConsentDescription: deref(s.UserConsentDescription),
					IsEnabled: s.IsEnabled == nil || *s.IsEnabled})
			}
		}
		if raw := in.API.RequestedAccessTokenVersion; len(raw) > 0 {
			if string(raw) == "null" {
				a.AccessTokenAcceptedVersion = nil
			} else {
				var v int
				if err := json.Unmarshal(raw, &v); err != nil {
					return badRequest("Property 'requestedAccessTokenVersion' must be 1 or 2.")
				}
				a.AccessTokenAcceptedVersion = &v
			}
		}
	}
	if in.RequiredResourceAccess != nil {
		a.RequiredResourceAccess = make([]directory.RequiredResourceAccess, 0, len(*in.RequiredResourceAccess))
		for _, rra := range *in.RequiredResourceAccess {
			d := directory.RequiredResourceAccess{ResourceAppID: strings.ToLower(rra.ResourceAppID), ResourceAccess: []directory.ResourceAccess{}}
			for _, ra := range rra.ResourceAccess {
				d.ResourceAccess = append(d.ResourceAccess, directory.ResourceAccess{ID: strings.ToLower(ra.ID), Type: ra.Type})
			}
			a.RequiredResourceAccess = append(a.RequiredResourceAccess, d)
		}
	}
	if in.Web != nil && in.Web.RedirectURIs != nil {
		a.WebRedirectURIs = slices.Clone(*in.Web.RedirectURIs)
	}
	if in.Spa != nil && in.Spa.RedirectURIs != nil {
		a.SPARedirectURIs = slices.Clone(*in.Spa.RedirectURIs)
	}
	if in.PublicClient != nil && in.PublicClient.RedirectURIs != nil {
		a.PublicClientRedirectURIs = slices.Clone(*in.PublicClient.RedirectURIs)
	}
	if in.IsFallbackPublicClient != nil {
		a.IsFallbackPublicClient = *in.IsFallbackPublicClient
	}
	if in.Tags != nil {
		a.Tags = slices.Clone(*in.Tags)
	}
	return nil
}

// addPasswordInput is the body of addPassword. Graph generates keyId,
// hint and secretText; clients that send them (some SDKs send nulls) are
// ignored on those, as Graph ignores them.
type addPasswordInput struct {
	ODataType          string                   `json:"@odata.type"`
	PasswordCredential *passwordCredentialInput `json:"passwordCredential"`
}

type passwordCredentialInput struct {
	ODataType           string          `json:"@odata.type"`
	DisplayName         *string         `json:"displayName"`
	StartDateTime       *time.Time      `json:"startDateTime"`
	EndDateTime         *time.Time      `json:"endDateTime"`
	CustomKeyIdentifier json.RawMessage `json:"customKeyIdentifier"`
	Hint                json.RawMessage `json:"hint"`
	KeyID               json.RawMessage `json:"keyId"`
	SecretText          json.RawMessage `json:"secretText"`
}

// removeCredentialInput is the body of removePassword and removeKey.
type removeCredentialInput struct {
	KeyID string `json:"keyId"`
	// Proof is the proof-of-possession token removeKey takes (see
	// keyproof.go); removePassword has none.
	Proof *string `json:"proof"`
}

// addKeyInput is the body of addKey.
type addKeyInput struct {
	KeyCredential *keyCredentialInput `json:"keyCredential"`
	// PasswordCredential would carry a private key's password, for keys
	// that sign; only verification keys are accepted, so it must be null.
	PasswordCredential json.RawMessage `json:"passwordCredential"`
	Proof              *string         `json:"proof"`
}

type keyCredentialInput struct {
	ODataType           string          `json:"@odata.type"`
	Type                string          `json:"type"`
	Usage               string          `json:"usage"`
	Key                 []byte          `json:"key"` // base64 on the wire: a certificate, DER or PEM
	DisplayName         *string         `json:"displayName"`
	StartDateTime       *time.Time      `json:"startDateTime"`
	EndDateTime         *time.Time      `json:"endDateTime"`
	CustomKeyIdentifier json.RawMessage `json:"customKeyIdentifier"` // computed from the certificate
	KeyID               json.RawMessage `json:"keyId"`               // generated
}

// ---- federated identity credentials ----

type federatedCredentialView struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Issuer      string   `json:"issuer"`
	Subject     string   `json:"subject"`
	Audiences   []string `json:"audiences"`
	Description *string  `json:"description"`
}

func federatedCredentialToView(f directory.FederatedIdentityCredential) federatedCredentialView {
	return federatedCredentialView{ID: f.ID, Name: f.Name, Issuer: f.Issuer, Subject: f.Subject,
		Audiences: list(f.Audiences), Description: nullable(f.Description)}
}

type federatedCredentialInput struct {
	ODataType   string    `json:"@odata.type"`
	Name        *string   `json:"name"`
	Issuer      *string   `json:"issuer"`
	Subject     *string   `json:"subject"`
	Audiences   *[]string `json:"audiences"`
	Description *string   `json:"description"`
}

// applyTo copies the properties present onto f (name only when creating).
func (in *federatedCredentialInput) applyTo(f *directory.FederatedIdentityCredential) {
	if in.Name != nil {
		f.Name = *in.Name
	}
	if in.Issuer != nil {
		f.Issuer = *in.Issuer
	}
	if in.Subject != nil {
		f.Subject = *in.Subject
	}
	if in.Audiences != nil {
		f.Audiences = slices.Clone(*in.Audiences)
	}
	if in.Description != nil {
		f.Description = *in.Description
	}
}

// ---- service principals ----

type servicePrincipalView struct {
	ID                        string                   `json:"id"`
	AccountEnabled            bool                     `json:"accountEnabled"`
	AlternativeNames          []string                 `json:"alternativeNames"`
	AppDisplayName            *string                  `json:"appDisplayName"`
	AppID                     string                   `json:"appId"`
	AppOwnerOrganizationID    *string                  `json:"appOwnerOrganizationId"`
	AppRoleAssignmentRequired bool                     `json:"appRoleAssignmentRequired"`
	AppRoles                  []appRoleView            `json:"appRoles"`
	DisplayName               string                   `json:"displayName"`
	KeyCredentials            []keyCredentialView      `json:"keyCredentials"`
	OAuth2PermissionScopes    []permissionScopeView    `json:"oauth2PermissionScopes"`
	PasswordCredentials       []passwordCredentialView `json:"passwordCredentials"`
	ServicePrincipalNames     []string                 `json:"servicePrincipalNames"`
	ServicePrincipalType      string                   `json:"servicePrincipalType"`
	SignInAudience            *string                  `json:"signInAudience"`
	Tags                      []string                 `json:"tags"`
}

func servicePrincipalToView(sp *directory.ServicePrincipal) servicePrincipalView {
	return servicePrincipalView{
		ID:                        sp.ID,
		AccountEnabled:            sp.AccountEnabled,
		AlternativeNames:          list(sp.AlternativeNames),
		AppDisplayName:            nullable(sp.AppDisplayName),
		AppID:                     sp.AppID,
		AppOwnerOrganizationID:    nullable(sp.AppOwnerOrganizationID),
		AppRoleAssignmentRequired: sp.AppRoleAssignmentRequired,
		AppRoles:                  appRolesToView(sp.AppRoles, "Application"),
		DisplayName:               sp.DisplayName,
		KeyCredentials:            keysToView(sp.KeyCredentials),
		OAuth2PermissionScopes:    scopesToView(sp.OAuth2PermissionScopes),
		PasswordCredentials:       passwordsToView(sp.PasswordCredentials),
		ServicePrincipalNames:     list(sp.ServicePrincipalNames),
		ServicePrincipalType:      sp.ServicePrincipalType,
		SignInAudience:            nullable(sp.SignInAudience),
		Tags:                      list(sp.Tags),
	}
}

// servicePrincipalInput is the body of POST (appId and the tenant-local
// settings) and PATCH (the tenant-local settings) /servicePrincipals.
type servicePrincipalInput struct {
	ODataType                 string    `json:"@odata.type"`
	AppID                     *string   `json:"appId"`
	AccountEnabled            *bool     `json:"accountEnabled"`
	AppRoleAssignmentRequired *bool     `json:"appRoleAssignmentRequired"`
	DisplayName               *string   `json:"displayName"`
	Tags                      *[]string `json:"tags"`
}

// servicePrincipalReadOnly: what a service principal mirrors of its
// application, and what the directory assigns.
var servicePrincipalReadOnly = []string{"id", "appDisplayName", "appOwnerOrganizationId", "servicePrincipalType",
	"servicePrincipalNames", "alternativeNames", "appRoles", "oauth2PermissionScopes", "passwordCredentials",
	"keyCredentials", "signInAudience"}

func (in *servicePrincipalInput) applyTo(sp *directory.ServicePrincipal) {
	if in.AccountEnabled != nil {
		sp.AccountEnabled = *in.AccountEnabled
	}
	if in.AppRoleAssignmentRequired != nil {
		sp.AppRoleAssignmentRequired = *in.AppRoleAssignmentRequired
	}
	if in.DisplayName != nil {
		sp.DisplayName = *in.DisplayName
	}
	if in.Tags != nil {
		sp.Tags = slices.Clone(*in.Tags)
	}
}

// ---- users ----

// userView never carries the password hash or the sealed TOTP secret.
type userView struct {
	ID                string  `json:"id"`
	AccountEnabled    bool    `json:"accountEnabled"`
	CreatedDateTime   string  `json:"createdDateTime"`
	DisplayName       string  `json:"displayName"`
	GivenName         *string `json:"givenName"`
	Mail              *string `json:"mail"`
	MailNickname      *string `json:"mailNickname"`
	Surname           *string `json:"surname"`
	UserPrincipalName string  `json:"userPrincipalName"`
}

func userToView(u *directory.User) userView {
	return userView{ID: u.ID, AccountEnabled: u.AccountEnabled, CreatedDateTime: graphTime(u.CreatedDateTime),
		DisplayName: u.DisplayName, GivenName: nullable(u.GivenName), Mail: nullable(u.Mail),
		MailNickname: nullable(u.MailNickname), Surname: nullable(u.Surname), UserPrincipalName: u.UserPrincipalName}
}

type userInput struct {
	ODataType         string                `json:"@odata.type"`
	AccountEnabled    *bool                 `json:"accountEnabled"`
	DisplayName       *string               `json:"displayName"`
	GivenName         *string               `json:"givenName"`
	Surname           *string               `json:"surname"`
	MailNickname      *string               `json:"mailNickname"`
	UserPrincipalName *string               `json:"userPrincipalName"`
	PasswordProfile   *passwordProfileInput `json:"passwordProfile"`
}

// passwordProfileInput: the forceChangePassword flags are accepted because
// Graph's samples always send them, but not enforced yet (the sign-in page
// has no change-password step).
type passwordProfileInput struct {
	ODataType                            string  `json:"@odata.type"`
	Password                             *string `json:"password"`
	ForceChangePasswordNextSignIn        *bool   `json:"forceChangePasswordNextSignIn"`
	ForceChangePasswordNextSignInWithMfa *bool   `json:"forceChangePasswordNextSignInWithMfa"`
}

var (
	userCreateReadOnly = []string{"id", "createdDateTime", "mail"}
	// A user's sign-in name and mail nickname are fixed once created.
	userUpdateReadOnly = []string{"id", "createdDateTime", "mail", "userPrincipalName", "mailNickname"}
)

func (in *userInput) newUser() (directory.NewUser, error) {
	if err := checkDisplayName(in.DisplayName); err != nil {
		return directory.NewUser{}, err
	}
	switch {
	case in.AccountEnabled == nil:
		return directory.NewUser{}, badRequest("Property 'accountEnabled' is required.")
	case in.UserPrincipalName == nil:
		return directory.NewUser{}, badRequest("Property 'userPrincipalName' is required.")
	case in.PasswordProfile == nil || in.PasswordProfile.Password == nil:
		return directory.NewUser{}, badRequest("Property 'passwordProfile' with a password is required.")
	}
	return directory.NewUser{UserPrincipalName: *in.UserPrincipalName, DisplayName: deref(in.DisplayName),
		GivenName: deref(in.GivenName), Surname: deref(in.Surname), MailNickname: deref(in.MailNickname),
		Password: *in.PasswordProfile.Password, AccountEnabled: *in.AccountEnabled}, nil
}

func (in *userInput) changes() (directory.UserChanges, error) {
	if err := checkDisplayName(in.DisplayName); err != nil {
		return directory.UserChanges{}, err
	}
	c := directory.UserChanges{DisplayName: in.DisplayName, GivenName: in.GivenName, Surname: in.Surname,
		AccountEnabled: in.AccountEnabled}
	if in.PasswordProfile != nil {
		c.Password = in.PasswordProfile.Password
	}
	return c, nil
}

// ---- groups ----

type groupView struct {
	ID              string   `json:"id"`
	CreatedDateTime string   `json:"createdDateTime"`
	Description     *string  `json:"description"`
	DisplayName     string   `json:"displayName"`
	GroupTypes      []string `json:"groupTypes"`
	Mail            *string  `json:"mail"`
	MailEnabled     bool     `json:"mailEnabled"`
	MailNickname    string   `json:"mailNickname"`
	SecurityEnabled bool     `json:"securityEnabled"`
}

func groupToView(g *directory.Group) groupView {
	return groupView{ID: g.ID, CreatedDateTime: graphTime(g.CreatedDateTime), Description: nullable(g.Description),
		DisplayName: g.DisplayName, GroupTypes: []string{}, MailEnabled: g.MailEnabled, MailNickname: g.MailNickname,
		SecurityEnabled: g.SecurityEnabled}
}

type groupInput struct {
	ODataType       string    `json:"@odata.type"`
	DisplayName     *string   `json:"displayName"`
	Description     *string   `json:"description"`
	MailEnabled     *bool     `json:"mailEnabled"`
	MailNickname    *string   `json:"mailNickname"`
	SecurityEnabled *bool     `json:"securityEnabled"`
	GroupTypes      *[]string `json:"groupTypes"`
}

var (
	groupCreateReadOnly = []string{"id", "createdDateTime", "mail"}
	groupUpdateReadOnly = []string{"id", "createdDateTime", "mail", "mailEnabled", "mailNickname", "securityEnabled", "groupTypes"}
)

// newGroup checks what only security groups allow and returns the group to
// create; the directory checks the rest.
func (in *groupInput) newGroup() (directory.Group, error) {
	if in.SecurityEnabled != nil && !*in.SecurityEnabled {
		return directory.Group{}, badRequest("Only security groups (securityEnabled true) are supported.")
	}
	if in.GroupTypes != nil && len(*in.GroupTypes) > 0 {
		return directory.Group{}, badRequest("Only security groups are supported: groupTypes must be empty.")
	}
	g := directory.Group{DisplayName: deref(in.DisplayName), Description: deref(in.Description),
		MailNickname: deref(in.MailNickname), SecurityEnabled: true}
	if in.MailEnabled != nil {
		g.MailEnabled = *in.MailEnabled
	}
	return g, nil
}

// ---- app role assignments ----

type appRoleAssignmentView struct {
	ID                   string  `json:"id"`
	AppRoleID            string  `json:"appRoleId"`
	CreatedDateTime      string  `json:"createdDateTime"`
	DeletedDateTime      *string `json:"deletedDateTime"`
	PrincipalDisplayName *string `json:"principalDisplayName"`
	PrincipalID          string  `json:"principalId"`
	PrincipalType        string  `json:"principalType"`
	ResourceDisplayName  *string `json:"resourceDisplayName"`
	ResourceID           string  `json:"resourceId"`
}

type appRoleAssignmentInput struct {
	ODataType   string `json:"@odata.type"`
	PrincipalID string `json:"principalId"`
	ResourceID  string `json:"resourceId"`
	AppRoleID   string `json:"appRoleId"`
}

var appRoleAssignmentReadOnly = []string{"id", "createdDateTime", "deletedDateTime", "principalDisplayName",
	"principalType", "resourceDisplayName"}

// principalTypes are Graph's names for the kinds of principal.
var principalTypes = map[store.ObjectKind]string{
	store.KindUser:             "User",
	store.KindGroup:            "Group",
	store.KindServicePrincipal: "ServicePrincipal",
}

// ---- directory objects ----

// odataTypes name each kind in a collection that mixes kinds (members,
// owners, memberOf), where every item says what it is.
var odataTypes = map[store.ObjectKind]string{
	store.KindUser:             "#microsoft.graph.user",
	store.KindGroup:            "#microsoft.graph.group",
	store.KindServicePrincipal: "#microsoft.graph.servicePrincipal",
	store.KindApplication:      "#microsoft.graph.application",
}

// refInput is the body of a $ref POST: a reference to a directory object.
type refInput struct {
	ODataID string `json:"@odata.id"`
}

// referencedID returns the object id an @odata.id names: an absolute or
// relative URL whose path ends in /directoryObjects/{id} (or /users/{id},
// /groups/{id}, /servicePrincipals/{id}, which Graph also accepts).
func (in refInput) referencedID() (string, error) {
	bad := badRequest("Invalid object identifier '%s'.", safeText(in.ODataID))
	path := in.ODataID
	if i := strings.Index(path, "://"); i >= 0 {
		rest := path[i+3:]
		slash := strings.IndexByte(rest, '/')
		if slash < 0 {
			return "", bad
		}
		path = rest[slash:]
	}
	path = strings.TrimPrefix(path, "/")
	path = strings.TrimPrefix(path, "v1.0/")
	collection, id, ok := strings.Cut(path, "/")
	if !ok || !slices.Contains([]string{"directoryObjects", "users", "groups", "servicePrincipals"}, collection) {
		return "", bad
	}
	if !validID(id) {
		return "", bad
	}
	return strings.ToLower(id), nil
}

// maxDisplayName is Graph's limit on a display name. The directory checks
// it for applications and groups; for users and service principals it is
// checked here, because a longer name would not fit the store's index (a
// PostgreSQL b-tree entry) and must be a 400, not a 500.
const maxDisplayName = 256

func checkDisplayName(name *string) error {
	if name != nil && utf8.RuneCountInString(*name) > maxDisplayName {
		return badRequest("Property 'displayName' is too long: at most %d characters.", maxDisplayName)
	}
	return nil
}

// checkDateRange refuses dates whose arithmetic (a default end two years
// after the start) or storage (RFC 3339 has four-digit years) would fail.
func checkDateRange(name string, t *time.Time) error {
	if t != nil && (t.Year() < 1900 || t.Year() > 9000) {
		return badRequest("Property '%s' is out of range.", name)
	}
	return nil
}

// ---- shaping responses ----

// propertiesOf lists the JSON property names of a view type, for $select.
func propertiesOf(view any) []string {
	m, err := toMap(view)
	if err != nil {
		panic("graph: view type does not marshal: " + err.Error())
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// The properties $select may name, per type.
var (
	applicationProperties         = propertiesOf(applicationView{})
	servicePrincipalProperties    = propertiesOf(servicePrincipalView{})
	userProperties                = propertiesOf(userView{})
	groupProperties               = propertiesOf(groupView{})
	federatedCredentialProperties = propertiesOf(federatedCredentialView{})
	appRoleAssignmentProperties   = propertiesOf(appRoleAssignmentView{})
	// A directoryObject collection may hold users, groups and service
	// principals; $select may name a property of any of them.
	directoryObjectProperties = union(userProperties, groupProperties, servicePrincipalProperties)
)

func union(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, p := range l {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	slices.Sort(out)
	return out
}

// entity is one JSON object of a response: a view's properties, which
// $select may narrow and to which @odata annotations are added.
type entity map[string]json.RawMessage

func toMap(view any) (entity, error) {
	b, err := json.Marshal(view)
	if err != nil {
		return nil, err
	}
	var m entity
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// project keeps the selected properties (all when sel is empty) and the
// OData annotations.
func (e entity) project(sel []string) entity {
	if len(sel) == 0 {
		return e
	}
	out := entity{}
	for k, v := range e {
		if slices.Contains(sel, k) || strings.HasPrefix(k, "@odata.") {
			out[k] = v
		}
	}
	return out
}

func (e entity) annotate(name, value string) entity {
	b, _ := json.Marshal(value) // a string always marshals
	e[name] = b
	return e
}

// ---- decoding request bodies ----

// decodeBody decodes a JSON object strictly into v (unknown properties and
// wrong types are 400s with httpx's messages). Before that it refuses what
// the store could not hold or the caller may not set: strings containing
// NUL, which PostgreSQL text refuses, and the read-only properties named.
func decodeBody(body []byte, v any, readOnly []string) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return badRequest("The request body must be a JSON object.")
	}
	if err := httpx.DecodeJSON(body, new(json.RawMessage)); err != nil {
		return badRequest("%s", err.Error())
	}
	if hasNUL(body) {
		return badRequest("The request body contains a string with a NUL character.")
	}
	if len(readOnly) > 0 {
		var top map[string]json.RawMessage
		if err := json.Unmarshal(body, &top); err != nil {
			return badRequest("The request body must be a JSON object.")
		}
		for _, name := range readOnly {
			if _, ok := top[name]; ok {
				return badRequest("Property '%s' is read-only and cannot be set.", name)
			}
		}
	}
	if err := httpx.DecodeJSON(body, v); err != nil {
		return badRequest("%s", err.Error())
	}
	return nil
}

// hasNUL reports whether any string (key or value) of a well-formed JSON
// document holds a NUL character.
func hasNUL(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil { // io.EOF at the end; decodeBody has checked the syntax
			return false
		}
		if s, ok := tok.(string); ok && strings.IndexByte(s, 0) >= 0 {
			return true
		}
	}
}

// ---- delegated permission grants ----

// oauth2PermissionGrantView is Graph v1.0's oAuth2PermissionGrant:
// principalId is null for an AllPrincipals grant.
type oauth2PermissionGrantView struct {
	ID          string  `json:"id"`
	ClientID    string  `json:"clientId"`
	ConsentType string  `json:"consentType"`
	PrincipalID *string `json:"principalId"`
	ResourceID  string  `json:"resourceId"`
	Scope       string  `json:"scope"`
}

func grantToView(g *directory.OAuth2PermissionGrant) oauth2PermissionGrantView {
	return oauth2PermissionGrantView{ID: g.ID, ClientID: g.ClientID, ConsentType: g.ConsentType,
		PrincipalID: nullable(g.PrincipalID), ResourceID: g.ResourceID, Scope: g.Scope}
}

// oauth2PermissionGrantInput is the body of a create or update; nil is
// absent. An update may carry scope only.
type oauth2PermissionGrantInput struct {
	ODataType   string  `json:"@odata.type"`
	ClientID    *string `json:"clientId"`
	ConsentType *string `json:"consentType"`
	PrincipalID *string `json:"principalId"`
	ResourceID  *string `json:"resourceId"`
	Scope       *string `json:"scope"`
}

var (
	oauth2PermissionGrantReadOnly = []string{"id"}
	// oauth2PermissionGrantFixed are the properties a grant is created
	// with and never changes; PATCH refuses them, as Graph does.
	oauth2PermissionGrantFixed      = []string{"id", "clientId", "consentType", "principalId", "resourceId"}
	oauth2PermissionGrantProperties = propertiesOf(oauth2PermissionGrantView{})
)
