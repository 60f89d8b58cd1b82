package directory

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/gencache"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// tenantName is what may precede ".onmicrosoft.com": Entra allows letters
// and digits; we also keep names short enough to be a DNS label.
var tenantName = regexp.MustCompile(`^[a-z0-9]{1,40}$`)

// Reserved tenant path segments: the token service gives them meaning.
var reservedTenantNames = map[string]bool{"common": true, "organizations": true, "consumers": true, "adfs": true}

// BootstrapAdminName is the display name of each tenant's bootstrap application.
const BootstrapAdminName = "tenantbridge-admin"

// bootstrapPermissions are the Graph application permissions of a tenant's
// bootstrap administrator: enough to manage the tenant's directory, as the
// Global Administrator who creates an Entra tenant can — including making
// directory roles (RoleManagement.ReadWrite.Directory,
// https://learn.microsoft.com/graph/api/rbacapplication-post-roleassignments)
// and granting delegated permissions tenant-wide
// (DelegatedPermissionGrant.ReadWrite.All,
// https://learn.microsoft.com/graph/api/oauth2permissiongrant-post). Neither
// adds power: AppRoleAssignment.ReadWrite.All already lets an app grant any
// application permission, its own service principal included
// (https://learn.microsoft.com/graph/api/serviceprincipal-post-approleassignments).
var bootstrapPermissions = []string{PermApplicationReadWriteAll, PermAppRoleAssignmentReadWrite, PermGroupReadWriteAll, PermUserReadWriteAll,
	PermRoleManagementReadWrite, PermDelegatedGrantReadWriteAll}

// TenantBootstrap is what creating a tenant returns: the tenant and its
// bootstrap administrator, whose secret is shown only here.
type TenantBootstrap struct {
	Tenant      store.Tenant
	Admin       *Application
	AdminSP     *ServicePrincipal
	AdminSecret PasswordCredential
}

// CreateTenant creates a tenant with its default domain NAME.onmicrosoft.com,
// a default subscription id, the first-party service principals, and a
// bootstrap administrator application holding the Graph permissions to
// manage the tenant.
func (s *Service) CreateTenant(ctx context.Context, name string) (*TenantBootstrap, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	if !tenantName.MatchString(name) || reservedTenantNames[name] || name == MicrosoftTenantName {
		return nil, invalidf("tenant name %q is not valid: use 1 to 40 lowercase letters and digits", name)
	}
	// The first-party applications, read before the transaction through
	// the lookup cache (which a transaction bypasses): decoding Graph's
	// application, with every permission Graph defines, for each new
	// tenant was a large part of creating one. Reading them inside the
	// transaction through the pool instead could leave every pooled
	// connection held by a transaction waiting for one.
	fps := firstPartyApps()
	apps := make([]*Application, len(fps))
	for i, fp := range fps {
		app, err := s.ApplicationByAppID(ctx, fp.AppID)
		if err != nil {
			return nil, fmt.Errorf("first-party application %s: %w", fp.AppID, err)
		}
		apps[i] = app
	}
	var out TenantBootstrap
	err := s.inTx(ctx, func(tx *Service) error {
		t := store.Tenant{ID: newID(), Name: name, Domain: name + ".onmicrosoft.com", SubscriptionID: newID(), Created: tx.Now()}
		if err := tx.st.CreateTenant(ctx, t); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return conflictf("Tenant %q already exists", name)
			}
			return err
		}
		out.Tenant = t
		var graph *ServicePrincipal
		for _, app := range apps {
			sp, err := tx.createServicePrincipal(ctx, t.ID, app)
			if err != nil {
				return err
			}
			if sp.AppID == GraphAppID {
				graph = sp
			}
		}
		if graph == nil {
			return errors.New("directory: no first-party application is Microsoft Graph")
		}
		admin, err := tx.CreateApplication(ctx, t.ID, Application{DisplayName: BootstrapAdminName, SignInAudience: AudienceMyOrg})
		if err != nil {
			return err
		}
		sp, err := tx.CreateServicePrincipal(ctx, t.ID, admin.AppID)
		if err != nil {
			return err
		}
		cred, err := tx.AddApplicationPassword(ctx, t.ID, admin.ID, "bootstrap", zeroTime, zeroTime)
		if err != nil {
			return err
		}
		if err := tx.grantGraphPermissions(ctx, graph, sp.ID, bootstrapPermissions); err != nil {
			return err
		}
		// The bootstrap administrator owns the tenant's subscription, as the
		// account that creates an Azure subscription does.
		err = tx.st.CreateRoleAssignment(ctx, store.RoleAssignment{TenantID: t.ID, ID: newID(),
			Scope: "/subscriptions/" + t.SubscriptionID, RoleDefinitionID: rbac.RoleOwner,
			PrincipalID: sp.ID, PrincipalType: store.PrincipalServicePrincipal, CreatedOn: tx.Now(), CreatedBy: "tenantbridge"})
		if err != nil {
			return err
		}
		if admin, err = tx.GetApplication(ctx, t.ID, admin.ID); err != nil {
			return err
		}
		out.Admin, out.AdminSP, out.AdminSecret = admin, sp, cred
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// grantGraphPermissions assigns Microsoft Graph application permissions,
// by value, to a service principal of graph's tenant; graph is that
// tenant's Graph service principal as the caller's transaction created it.
func (s *Service) grantGraphPermissions(ctx context.Context, graph *ServicePrincipal, principalID string, values []string) error {
	for _, v := range values {
		roleID := ""
		for _, r := range graph.AppRoles {
			if r.Value == v {
				roleID = r.ID
			}
		}
		if roleID == "" {
			return fmt.Errorf("directory: Graph has no permission %q", v)
		}
		if _, err := s.assignAppRole(ctx, graph.TenantID, principalID, store.KindServicePrincipal, graph, roleID); err != nil {
			return err
		}
	}
	return nil
}

// Tenant finds a tenant by id, domain, or short name.
func (s *Service) Tenant(ctx context.Context, ref string) (store.Tenant, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return store.Tenant{}, ErrNotFound
	}
	// The entry depends on the tenant record found and on the references
	// tried (a tenant created later with that id or domain would now be
	// found instead): store.TenantRefPart, which writes to the tenant's
	// other rows (its objects, its resources) leave alone.
	t, err := cachedWith(s, lookupKey{lookupTenant, "", strings.ToLower(ref)}, func(d *gencache.Deps) (*store.Tenant, error) {
		d.Part(store.TenantRefPart(ref))
		t, err := s.st.GetTenant(ctx, ref)
		if errors.Is(err, store.ErrNotFound) && !strings.Contains(ref, ".") {
			domain := strings.ToLower(ref) + ".onmicrosoft.com"
			d.Part(store.TenantRefPart(domain))
			t, err = s.st.GetTenant(ctx, domain)
		}
		if err == nil {
			d.Part(store.TenantRefPart(t.ID))
		}
		t.ID = s.shared.str(t.ID) // as the tenant's other entries hold it
		return &t, err
	})
	if err != nil {
		return store.Tenant{}, err
	}
	return *t, nil
}

// ListTenants lists the customer tenants (not Microsoft's own).
func (s *Service) ListTenants(ctx context.Context) ([]store.Tenant, error) {
	all, err := s.st.ListTenants(ctx)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, t := range all {
		if t.ID != MicrosoftTenantID {
			out = append(out, t)
		}
	}
	return out, nil
}

// DeleteTenant removes a tenant and everything in it. Service principals of
// its multi-tenant applications in other tenants stay, as in Entra, but no
// token is issued for them any more because their application is gone.
func (s *Service) DeleteTenant(ctx context.Context, ref string) (store.Tenant, error) {
	t, err := s.Tenant(ctx, ref)
	if err != nil {
		return t, err
	}
	if t.ID == MicrosoftTenantID {
		return t, invalidf("Microsoft's tenant cannot be deleted")
	}
	return t, s.st.DeleteTenant(ctx, t.ID)
}

// EnsureFirstParty creates Microsoft's tenant and the first-party
// applications on first start, and brings them up to date (and every
// tenant's service principals of them) when a new version of tenantbridge
// defines them differently. It is idempotent.
func (s *Service) EnsureFirstParty(ctx context.Context) error {
	return s.inTx(ctx, func(tx *Service) error {
		if _, err := tx.st.GetTenant(ctx, MicrosoftTenantID); errors.Is(err, store.ErrNotFound) {
			err = tx.st.CreateTenant(ctx, store.Tenant{ID: MicrosoftTenantID, Name: MicrosoftTenantName,
				Domain: MicrosoftTenantDomain, SubscriptionID: "", Created: tx.Now()})
			if err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		tenants, err := tx.st.ListTenants(ctx)
		if err != nil {
			return err
		}
		for _, want := range firstPartyApps() {
			app, err := tx.ApplicationByAppID(ctx, want.AppID)
			switch {
			case errors.Is(err, ErrNotFound):
				want.ID, want.SignInAudience, want.PublisherDomain = newID(), AudienceMultipleOrgs, MicrosoftTenantDomain
				want.CreatedDateTime = tx.Now()
				if err := create(ctx, tx.st, MicrosoftTenantID, &want); err != nil {
					return err
				}
				app = &want
			case err != nil:
				return err
			case firstPartyDiffers(app, &want):
				app, err = tx.UpdateApplication(ctx, MicrosoftTenantID, app.ID, func(a *Application) error {
					a.DisplayName, a.IdentifierURIs, a.AppRoles = want.DisplayName, want.IdentifierURIs, want.AppRoles
					a.OAuth2PermissionScopes, a.AccessTokenAcceptedVersion = want.OAuth2PermissionScopes, want.AccessTokenAcceptedVersion
					return nil
				})
				if err != nil {
					return err
				}
			}
			// One listing of the application's service principals serves
			// both: bring each in step, and add the tenants that lack one.
			if err := tx.ensureServicePrincipals(ctx, app, tenants); err != nil {
				return err
			}
		}
		return nil
	})
}

// ensureServicePrincipals gives every tenant a service principal of app,
// in step with it. It reads the application's service principals once,
// however many tenants there are, and writes only what differs.
func (s *Service) ensureServicePrincipals(ctx context.Context, app *Application, tenants []store.Tenant) error {
	have, err := s.syncServicePrincipalsOf(ctx, app)
	if err != nil {
		return err
	}
	for _, t := range tenants {
		if !have[t.ID] {
			if _, err := s.createServicePrincipal(ctx, t.ID, app); err != nil {
				return err
			}
		}
	}
	return nil
}

func firstPartyDiffers(have, want *Application) bool {
	return have.DisplayName != want.DisplayName ||
		!reflect.DeepEqual(have.IdentifierURIs, want.IdentifierURIs) ||
		!reflect.DeepEqual(have.AppRoles, want.AppRoles) ||
		!reflect.DeepEqual(have.OAuth2PermissionScopes, want.OAuth2PermissionScopes) ||
		!reflect.DeepEqual(have.AccessTokenAcceptedVersion, want.AccessTokenAcceptedVersion)
}
