package directory

import "time"

// The lookup cache holds a service principal or an application that has
// none of the properties most lack (roles, scopes, certificates, federated
// credentials, redirect URIs, tags: a customer's own applications, the
// service principals of them and of a provider's, Service Bus's) in a
// packed form without room for those: 192 bytes instead of the 384 a
// ServicePrincipal takes on the heap, 176 instead of an Application's
// 448, in each of a fan-out customer's four such entries. A lookup unpacks it into the document it
// stands for, as it copies a document held whole, so callers get the same
// either way. A document with any of those properties is held whole.
// TestPackedDocuments checks, property by property, that unpacking gives
// back exactly what was packed, so that a property added to either type
// cannot be dropped silently.

// unpacker is a cached value that stands for a *T.
type unpacker[T any] interface{ unpack() *T }

// pack returns what the cache holds for a document a lookup loaded.
func pack(doc any) any {
	switch d := doc.(type) {
	case *ServicePrincipal:
		if p, ok := packServicePrincipal(d); ok {
			return p
		}
	case *Application:
		if p, ok := packApplication(d); ok {
			return p
		}
	}
	return doc
}

type packedServicePrincipal struct {
	id, tenantID, appID, appDisplayName, displayName string
	appOwnerOrganizationID, servicePrincipalType     string
	signInAudience                                   string
	servicePrincipalNames                            []string
	created                                          time.Time
	version                                          int64
	accountEnabled                                   bool
}

func packServicePrincipal(sp *ServicePrincipal) (*packedServicePrincipal, bool) {
	if sp.AlternativeNames != nil || sp.AppRoles != nil || sp.OAuth2PermissionScopes != nil ||
		sp.AccessTokenAcceptedVersion != nil || sp.AppRoleAssignmentRequired || sp.PasswordCredentials != nil ||
		sp.KeyCredentials != nil || sp.Tags != nil || sp.FederatedCredentials != nil {
		return nil, false
	}
	return &packedServicePrincipal{
		id: sp.ID, tenantID: sp.TenantID, appID: sp.AppID, appDisplayName: sp.AppDisplayName, displayName: sp.DisplayName,
		appOwnerOrganizationID: sp.AppOwnerOrganizationID, servicePrincipalType: sp.ServicePrincipalType,
		signInAudience: sp.SignInAudience, servicePrincipalNames: sp.ServicePrincipalNames,
		created: sp.CreatedDateTime, version: sp.Version, accountEnabled: sp.AccountEnabled,
	}, true
}

func (p *packedServicePrincipal) unpack() *ServicePrincipal {
	return &ServicePrincipal{
		ID: p.id, TenantID: p.tenantID, AppID: p.appID, AppDisplayName: p.appDisplayName, DisplayName: p.displayName,
		AppOwnerOrganizationID: p.appOwnerOrganizationID, ServicePrincipalType: p.servicePrincipalType,
		SignInAudience: p.signInAudience, ServicePrincipalNames: p.servicePrincipalNames,
		CreatedDateTime: p.created, Version: p.version, AccountEnabled: p.accountEnabled,
	}
}

type packedApplication struct {
	id, tenantID, appID, displayName, signInAudience string
	publisherDomain                                  string
	identifierURIs                                   []string
	passwordCredentials                              []PasswordCredential
	created                                          time.Time
	version                                          int64
}

func packApplication(app *Application) (*packedApplication, bool) {
	if app.Description != "" || app.AppRoles != nil || app.OAuth2PermissionScopes != nil || app.RequiredResourceAccess != nil ||
		app.KeyCredentials != nil || app.FederatedCredentials != nil || app.AccessTokenAcceptedVersion != nil ||
		app.WebRedirectURIs != nil || app.PublicClientRedirectURIs != nil || app.SPARedirectURIs != nil ||
		app.IsFallbackPublicClient || app.Tags != nil {
		return nil, false
	}
	return &packedApplication{
		id: app.ID, tenantID: app.TenantID, appID: app.AppID, displayName: app.DisplayName, signInAudience: app.SignInAudience,
		publisherDomain: app.PublisherDomain, identifierURIs: app.IdentifierURIs, passwordCredentials: app.PasswordCredentials,
		created: app.CreatedDateTime, version: app.Version,
	}, true
}

func (p *packedApplication) unpack() *Application {
	return &Application{
		ID: p.id, TenantID: p.tenantID, AppID: p.appID, DisplayName: p.displayName, SignInAudience: p.signInAudience,
		PublisherDomain: p.publisherDomain, IdentifierURIs: p.identifierURIs, PasswordCredentials: p.passwordCredentials,
		CreatedDateTime: p.created, Version: p.version,
	}
}
