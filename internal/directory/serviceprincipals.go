package directory

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/gencache"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// CreateServicePrincipal provisions an application's service principal into
// a tenant. The application must be registered in that tenant, or be
// multi-tenant (which is what admin consent relies on). A tenant holds at
// most one service principal per application.
func (s *Service) CreateServicePrincipal(ctx context.Context, tenantID, appID string) (*ServicePrincipal, error) {
	app, err := s.ApplicationByAppID(ctx, appID)
	if errors.Is(err, ErrNotFound) {
		return nil, invalidf("The appId '%s' of the service principal does not reference a valid application object.", appID)
	}
	if err != nil {
		return nil, err
	}
	if app.TenantID != tenantID && !app.IsMultiTenant() {
		return nil, invalidf("The appId '%s' of the service principal does not reference a valid application object: the application is not multi-tenant.", appID)
	}
	return s.createServicePrincipal(ctx, tenantID, app)
}

func (s *Service) createServicePrincipal(ctx context.Context, tenantID string, app *Application) (*ServicePrincipal, error) {
	sp := &ServicePrincipal{
		ID:                     newID(),
		AppID:                  app.AppID,
		DisplayName:            app.DisplayName,
		AppOwnerOrganizationID: app.TenantID,
		ServicePrincipalType:   SPTypeApplication,
		AccountEnabled:         true,
		CreatedDateTime:        s.Now(),
	}
	copyFromApplication(sp, app)
	if err := create(ctx, s.st, tenantID, sp); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, conflictf("A service principal of application %s already exists in this tenant", app.AppID)
		}
		return nil, err
	}
	return sp, nil
}

// copyFromApplication sets what a service principal mirrors of its application.
func copyFromApplication(sp *ServicePrincipal, app *Application) {
	sp.AppDisplayName = app.DisplayName
	sp.SignInAudience = app.SignInAudience
	sp.ServicePrincipalNames = append([]string{app.AppID}, app.IdentifierURIs...)
	sp.AppRoles = slices.Clone(app.AppRoles)
	for i := range sp.AppRoles {
		sp.AppRoles[i].Origin = "Application"
	}
	sp.OAuth2PermissionScopes = slices.Clone(app.OAuth2PermissionScopes)
	sp.AccessTokenAcceptedVersion = app.AccessTokenAcceptedVersion
}

// syncServicePrincipals brings every tenant's service principal of app in
// step with it, writing only those that differ.
func (s *Service) syncServicePrincipals(ctx context.Context, app *Application) error {
	_, err := s.syncServicePrincipalsOf(ctx, app)
	return err
}

// syncServicePrincipalsOf is syncServicePrincipals, also reporting which
// tenants hold a service principal of app.
func (s *Service) syncServicePrincipalsOf(ctx context.Context, app *Application) (map[string]bool, error) {
	sps, err := list[ServicePrincipal](ctx, s.st, store.ObjectQuery{Kind: store.KindServicePrincipal, AppID: app.AppID})
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool, len(sps))
	for _, sp := range sps {
		have[sp.TenantID] = true
		want := *sp
		copyFromApplication(&want, app)
		if reflect.DeepEqual(&want, sp) {
			continue
		}
		_, err := update[ServicePrincipal](ctx, s.st, sp.TenantID, store.KindServicePrincipal, sp.ID, func(p *ServicePrincipal) error {
			copyFromApplication(p, app)
			return nil
		})
		if err != nil {
			return nil, identifierConflict(err)
		}
	}
	return have, nil
}

// GetServicePrincipal finds a service principal by object id.
func (s *Service) GetServicePrincipal(ctx context.Context, tenantID, id string) (*ServicePrincipal, error) {
	return get[ServicePrincipal](ctx, s.st, tenantID, store.KindServicePrincipal, id)
}

// ServicePrincipalByAppID finds the tenant's service principal of an application.
func (s *Service) ServicePrincipalByAppID(ctx context.Context, tenantID, appID string) (*ServicePrincipal, error) {
	if _, err := uuid.Parse(appID); err != nil {
		return nil, ErrNotFound
	}
	appID = strings.ToLower(appID)
	return cached(s, lookupKey{lookupSPByAppID, tenantID, appID}, func() (*ServicePrincipal, error) {
		sps, err := list[ServicePrincipal](ctx, s.st, store.ObjectQuery{TenantID: tenantID, Kind: store.KindServicePrincipal, AppID: appID, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(sps) == 0 {
			return nil, ErrNotFound
		}
		return s.shared.servicePrincipal(sps[0]), nil
	})
}

// ServicePrincipalByName finds the tenant's service principal that answers
// to a resource name: an appId or one of its servicePrincipalNames (the
// application's identifier URIs). A trailing slash is not significant, so
// "https://management.azure.com" finds ARM as its registered
// "https://management.azure.com/" does.
//
// A resource name grants whatever a token for it grants, so the answer is
// exactly one principal or none, never a guess:
//   - a name that two principals answer to (one with, one without the
//     slash) is ErrAmbiguousResource;
//   - a name counts only if the principal's application may own it: a
//     first-party name (Graph, ARM, Key Vault, Service Bus, the token
//     exchange audience) only for Microsoft's own application, any other
//     identifier URI only if it follows Entra's rules for the application's
//     home tenant (CheckIdentifierURI). A name registered before those
//     rules, or written around them, resolves to nothing.
func (s *Service) ServicePrincipalByName(ctx context.Context, tenantID, name string) (*ServicePrincipal, error) {
	if name == "" || len(name) > 2*maxIdentifierURILength {
		return nil, ErrNotFound
	}
	return cachedWith(s, lookupKey{lookupSPByName, tenantID, strings.ToLower(name)}, func(d *gencache.Deps) (*ServicePrincipal, error) {
		if _, err := uuid.Parse(name); err == nil && len(name) == 36 {
			return s.ServicePrincipalByAppID(ctx, tenantID, name)
		}
		candidates := []string{name}
		if trimmed := strings.TrimSuffix(name, "/"); trimmed != name {
			candidates = append(candidates, trimmed)
		} else {
			candidates = append(candidates, name+"/")
		}
		var found *ServicePrincipal
		for _, n := range candidates {
			sps, err := list[ServicePrincipal](ctx, s.st, store.ObjectQuery{TenantID: tenantID, Kind: store.KindServicePrincipal, Name: n, Limit: 2})
			if err != nil {
				return nil, err
			}
			for _, sp := range sps {
				ok, err := s.answersTo(ctx, sp, n, d)
				if err != nil {
					return nil, err
				}
				if !ok {
					continue
				}
				if found != nil && found.ID != sp.ID {
					return nil, fmt.Errorf("%w: %q names more than one service principal in tenant %s", ErrAmbiguousResource, name, tenantID)
				}
				found = sp
			}
		}
		if found == nil {
			return nil, ErrNotFound
		}
		return s.shared.servicePrincipal(found), nil
	})
}

// ErrAmbiguousResource is a resource name that more than one service
// principal answers to. It is an ErrNotFound: callers refuse it as they
// refuse an unknown resource (AADSTS500011).
var ErrAmbiguousResource = fmt.Errorf("directory: ambiguous resource name: %w", ErrNotFound)

// answersTo reports whether sp may be found by name, one of its
// servicePrincipalNames (compared without case): its own appId, a
// first-party name of Microsoft's own application, or an identifier URI
// its application's home tenant may own under Entra's rules. Reading the
// home tenant's record is a read outside the service principal's tenant:
// deps then depends on everything.
func (s *Service) answersTo(ctx context.Context, sp *ServicePrincipal, name string, deps *gencache.Deps) (bool, error) {
	if strings.EqualFold(name, sp.AppID) {
		return true, nil
	}
	if sp.IsManagedIdentity() {
		return false, nil // a managed identity is no resource
	}
	if owner := firstPartyURIOwner(name); owner != "" {
		return strings.EqualFold(owner, sp.AppID) && strings.EqualFold(sp.AppOwnerOrganizationID, MicrosoftTenantID), nil
	}
	if isFirstPartyApp(sp.AppID) {
		return false, nil // Microsoft's applications answer to their own names only
	}
	deps.All()
	home, err := s.Tenant(ctx, sp.AppOwnerOrganizationID)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return CheckIdentifierURI(name, home, sp.AppID, s.reservedHosts) == nil, nil
}

// isFirstPartyApp reports whether appID is one of Microsoft's first-party
// applications.
func isFirstPartyApp(appID string) bool {
	return firstPartyAppIDs[strings.ToLower(appID)]
}

// ListServicePrincipals lists the tenant's service principals.
func (s *Service) ListServicePrincipals(ctx context.Context, tenantID string, q Query) ([]*ServicePrincipal, error) {
	if q.AppID != "" {
		q.AppID = strings.ToLower(q.AppID)
	}
	return list[ServicePrincipal](ctx, s.st, q.store(tenantID, store.KindServicePrincipal))
}

// UpdateServicePrincipal changes the tenant-local properties of a service
// principal (accountEnabled, appRoleAssignmentRequired, tags, displayName);
// what it mirrors of its application is restored if mutate touches it.
func (s *Service) UpdateServicePrincipal(ctx context.Context, tenantID, id string, mutate func(*ServicePrincipal) error) (*ServicePrincipal, error) {
	return update[ServicePrincipal](ctx, s.st, tenantID, store.KindServicePrincipal, id, func(sp *ServicePrincipal) error {
		keep := *sp
		if err := mutate(sp); err != nil {
			return err
		}
		sp.ID, sp.AppID, sp.AppOwnerOrganizationID, sp.ServicePrincipalType = keep.ID, keep.AppID, keep.AppOwnerOrganizationID, keep.ServicePrincipalType
		sp.ServicePrincipalNames, sp.AppRoles, sp.OAuth2PermissionScopes = keep.ServicePrincipalNames, keep.AppRoles, keep.OAuth2PermissionScopes
		sp.AccessTokenAcceptedVersion = keep.AccessTokenAcceptedVersion
		sp.AppDisplayName, sp.PasswordCredentials, sp.KeyCredentials, sp.CreatedDateTime = keep.AppDisplayName, keep.PasswordCredentials, keep.KeyCredentials, keep.CreatedDateTime
		if strings.TrimSpace(sp.DisplayName) == "" {
			return invalidf("Property 'displayName' is required.")
		}
		return nil
	})
}

// DeleteServicePrincipal removes a service principal from a tenant, with
// its role assignments and memberships. For another tenant's application
// this is how a customer revokes a provider's access.
func (s *Service) DeleteServicePrincipal(ctx context.Context, tenantID, id string) error {
	return s.deleteServicePrincipalAndGrants(ctx, tenantID, id)
}

// AddServicePrincipalPassword adds a client secret to a service principal.
func (s *Service) AddServicePrincipalPassword(ctx context.Context, tenantID, id, displayName string, start, end time.Time) (PasswordCredential, error) {
	cred, err := s.newPasswordCredential(displayName, start, end)
	if err != nil {
		return cred, err
	}
	_, err = update[ServicePrincipal](ctx, s.st, tenantID, store.KindServicePrincipal, id, func(sp *ServicePrincipal) error {
		if sp.ServicePrincipalType == SPTypeManagedIdentity {
			return invalidf("Credentials cannot be added to a managed identity.")
		}
		if len(sp.PasswordCredentials) >= 100 {
			return invalidf("A service principal may hold at most 100 password credentials.")
		}
		sp.PasswordCredentials = append(sp.PasswordCredentials, cred)
		return nil
	})
	return cred, err
}

// RemoveServicePrincipalPassword removes a service principal's client secret by key id.
func (s *Service) RemoveServicePrincipalPassword(ctx context.Context, tenantID, id, keyID string) error {
	_, err := update[ServicePrincipal](ctx, s.st, tenantID, store.KindServicePrincipal, id, func(sp *ServicePrincipal) error {
		n := len(sp.PasswordCredentials)
		sp.PasswordCredentials = slices.DeleteFunc(sp.PasswordCredentials, func(c PasswordCredential) bool { return strings.EqualFold(c.KeyID, keyID) })
		if len(sp.PasswordCredentials) == n {
			return invalidf("No password credential found with keyId %s.", keyID)
		}
		return nil
	})
	return err
}
