package directory_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// consentWorld is a provider tenant with a multi-tenant app that exposes an
// API and asks for Graph permissions, and a customer tenant with an admin
// and a user.
type consentWorld struct {
	d                  *directory.Service
	provider, customer *directory.TenantBootstrap
	app                *directory.Application
	admin, user        *directory.User
}

const (
	scopeReadID  = "5d1a6c3e-1c1f-4b7e-9a55-0d7a0f6b4c01"
	scopeWriteID = "5d1a6c3e-1c1f-4b7e-9a55-0d7a0f6b4c02"
	roleSyncID   = "5d1a6c3e-1c1f-4b7e-9a55-0d7a0f6b4c03"
)

func newConsentWorld(t *testing.T, st store.Store) *consentWorld {
	t.Helper()
	ctx := context.Background()
	d, _ := newDirectory(t, st)
	w := &consentWorld{d: d, provider: mustTenant(t, d, "provider"), customer: mustTenant(t, d, "customer")}
	app, err := d.CreateApplication(ctx, w.provider.Tenant.ID, directory.Application{
		DisplayName: "Provider App", SignInAudience: directory.AudienceMultipleOrgs,
		WebRedirectURIs: []string{"https://app.provider.example/callback"},
		OAuth2PermissionScopes: []directory.PermissionScope{
			{ID: scopeReadID, Value: "Data.Read", Type: "User", UserConsentDisplayName: "Read your data", AdminConsentDisplayName: "Read data", IsEnabled: true},
			{ID: scopeWriteID, Value: "Data.Write", Type: "Admin", AdminConsentDisplayName: "Write all data", IsEnabled: true},
		},
		AppRoles: []directory.AppRole{{ID: roleSyncID, Value: "Sync.All", DisplayName: "Sync", AllowedMemberTypes: []string{"Application"}, IsEnabled: true}},
		RequiredResourceAccess: []directory.RequiredResourceAccess{{ResourceAppID: directory.GraphAppID, ResourceAccess: []directory.ResourceAccess{
			{ID: "e1fe6dd8-ba31-4d61-89e7-88639da4683d", Type: "Scope"}, // User.Read
			{ID: "df021288-bdef-4463-88db-98f22de89214", Type: "Role"},  // User.Read.All
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	w.app = app
	mk := func(name string) *directory.User {
		u, err := d.CreateUser(ctx, w.customer.Tenant.ID, directory.NewUser{UserPrincipalName: name + "@customer.onmicrosoft.com",
			DisplayName: name, Password: "Correct-Horse-9", AccountEnabled: true})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	w.admin, w.user = mk("admin"), mk("user")
	if err := d.AssignDirectoryRole(ctx, w.customer.Tenant.ID, w.admin.ID, directory.RoleGlobalAdministrator); err != nil {
		t.Fatal(err)
	}
	return w
}

func consentCode(err error) int {
	var ce *directory.ConsentError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

func TestAdminConsentProvisionsAndGrants(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		w := newConsentWorld(t, st)
		cid := w.customer.Tenant.ID
		perms, err := w.d.RequestedPermissions(ctx, w.app)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(perms.Delegated[directory.GraphAppID], []string{"User.Read"}) || !slices.Equal(perms.AppRoles[directory.GraphAppID], []string{"User.Read.All"}) {
			t.Fatalf("requested = %+v", perms)
		}
		sp, err := w.d.GrantConsent(ctx, directory.ConsentRequest{TenantID: cid, ClientAppID: w.app.AppID,
			Delegated: perms.Delegated, AppRoles: perms.AppRoles, AllPrincipals: true, ConsentedBy: w.admin.ID})
		if err != nil {
			t.Fatal(err)
		}
		if sp.TenantID != cid || sp.AppOwnerOrganizationID != w.provider.Tenant.ID {
			t.Fatalf("sp = %+v", sp)
		}
		graph, _ := w.d.ServicePrincipalByAppID(ctx, cid, directory.GraphAppID)
		roles, err := w.d.GrantedRoles(ctx, cid, sp.ID, store.KindServicePrincipal, graph)
		if err != nil || !slices.Equal(roles, []string{"User.Read.All"}) {
			t.Fatalf("roles = %v, %v", roles, err)
		}
		got, err := w.d.ConsentedScopes(ctx, cid, sp.ID, w.user.ID, graph.ID)
		if err != nil || !slices.Equal(got, []string{"User.Read"}) {
			t.Fatalf("consented = %v, %v", got, err)
		}
		// Consenting again merges and stays one grant; the assignment is not duplicated.
		if _, err := w.d.GrantConsent(ctx, directory.ConsentRequest{TenantID: cid, ClientAppID: w.app.AppID,
			Delegated: map[string][]string{directory.GraphAppID: {"openid", "User.Read"}}, AppRoles: perms.AppRoles,
			AllPrincipals: true, ConsentedBy: w.admin.ID}); err != nil {
			t.Fatal(err)
		}
		grants, _ := w.d.ListDelegatedGrants(ctx, cid, directory.GrantFilter{ClientID: sp.ID})
		if len(grants) != 1 || grants[0].Scope != "User.Read openid" || grants[0].ConsentType != directory.ConsentAllPrincipals {
			t.Fatalf("grants = %+v", grants)
		}
		recs, _ := st.ListAudit(ctx, store.AuditQuery{TenantID: cid})
		n := 0
		for _, r := range recs {
			if r.Action == "consent.grant" && r.Actor == w.admin.ID && r.Target == sp.ID {
				n++
			}
		}
		if n != 2 {
			t.Fatalf("%d consent audit records", n)
		}
		// Deleting the client's service principal takes its grants.
		if err := w.d.DeleteServicePrincipal(ctx, cid, sp.ID); err != nil {
			t.Fatal(err)
		}
		if grants, _ := w.d.ListDelegatedGrants(ctx, cid, directory.GrantFilter{}); len(grants) != 0 {
			t.Fatalf("grants left: %+v", grants)
		}
	})
}

func TestConsentRules(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		w := newConsentWorld(t, st)
		cid := w.customer.Tenant.ID
		// The provider's own API scopes, consented in the customer tenant,
		// need the provider app's SP there as resource: it is the client too.
		userReq := directory.ConsentRequest{TenantID: cid, ClientAppID: w.app.AppID, UserID: w.user.ID, ConsentedBy: w.user.ID,
			Delegated: map[string][]string{directory.GraphAppID: {"User.Read", "offline_access"}}}
		sp, err := w.d.GrantConsent(ctx, userReq)
		if err != nil {
			t.Fatalf("user consent: %v", err)
		}
		graph, _ := w.d.ServicePrincipalByAppID(ctx, cid, directory.GraphAppID)
		if got, _ := w.d.ConsentedScopes(ctx, cid, sp.ID, w.user.ID, graph.ID); len(got) != 2 {
			t.Fatalf("user's scopes = %v", got)
		}
		if got, _ := w.d.ConsentedScopes(ctx, cid, sp.ID, w.admin.ID, graph.ID); len(got) != 0 {
			t.Fatalf("another user's scopes = %v", got)
		}
		for name, tc := range map[string]struct {
			req  directory.ConsentRequest
			code int
		}{
			"user asks admin scope": {directory.ConsentRequest{TenantID: cid, ClientAppID: w.app.AppID, UserID: w.user.ID, ConsentedBy: w.user.ID,
				Delegated: map[string][]string{directory.GraphAppID: {"Application.Read.All"}}}, directory.CodeAdminConsentNeeded},
			"user for all": {directory.ConsentRequest{TenantID: cid, ClientAppID: w.app.AppID, AllPrincipals: true, ConsentedBy: w.user.ID,
				Delegated: map[string][]string{directory.GraphAppID: {"User.Read"}}}, directory.CodeAdminConsentNeeded},
			"user for another": {directory.ConsentRequest{TenantID: cid, ClientAppID: w.app.AppID, UserID: w.admin.ID, ConsentedBy: w.user.ID,
				Delegated: map[string][]string{directory.GraphAppID: {"User.Read"}}}, directory.CodeAdminConsentNeeded},
			"user grants roles": {directory.ConsentRequest{TenantID: cid, ClientAppID: w.app.AppID, UserID: w.user.ID, ConsentedBy: w.user.ID,
				AppRoles: map[string][]string{directory.GraphAppID: {"User.Read.All"}}}, directory.CodeAdminConsentNeeded},
			"unknown scope": {directory.ConsentRequest{TenantID: cid, ClientAppID: w.app.AppID, UserID: w.user.ID, ConsentedBy: w.user.ID,
				Delegated: map[string][]string{directory.GraphAppID: {"Mail.Nope"}}}, directory.CodeScopeNotFound},
			"unknown role": {directory.ConsentRequest{TenantID: cid, ClientAppID: w.app.AppID, AllPrincipals: true, ConsentedBy: w.admin.ID,
				AppRoles: map[string][]string{directory.GraphAppID: {"Nope.All"}}}, directory.CodeScopeNotFound},
			"unknown app":                         {directory.ConsentRequest{TenantID: cid, ClientAppID: "00000000-1111-2222-3333-444444444444", AllPrincipals: true, ConsentedBy: w.admin.ID}, directory.CodeClientNotFound},
			"single-tenant app of another tenant": {directory.ConsentRequest{TenantID: cid, ClientAppID: w.provider.Admin.AppID, AllPrincipals: true, ConsentedBy: w.admin.ID}, directory.CodeClientNotFound},
		} {
			if _, err := w.d.GrantConsent(ctx, tc.req); consentCode(err) != tc.code {
				t.Errorf("%s: err = %v, want AADSTS%d", name, err, tc.code)
			}
		}
		// An Application Administrator may consent for all, but not to Graph's application permissions.
		appAdmin := w.user
		if err := w.d.AssignDirectoryRole(ctx, cid, appAdmin.ID, directory.RoleApplicationAdministrator); err != nil {
			t.Fatal(err)
		}
		if roles, _ := w.d.DirectoryRolesOf(ctx, cid, appAdmin.ID); !slices.Equal(roles, []string{directory.RoleApplicationAdministrator}) {
			t.Fatalf("roles = %v", roles)
		}
		if _, err := w.d.GrantConsent(ctx, directory.ConsentRequest{TenantID: cid, ClientAppID: w.app.AppID, AllPrincipals: true, ConsentedBy: appAdmin.ID,
			AppRoles: map[string][]string{directory.GraphAppID: {"User.Read.All"}}}); consentCode(err) != directory.CodeAdminConsentNeeded {
			t.Fatalf("app admin granted Graph roles: %v", err)
		}
		if _, err := w.d.GrantConsent(ctx, directory.ConsentRequest{TenantID: cid, ClientAppID: w.app.AppID, AllPrincipals: true, ConsentedBy: appAdmin.ID,
			Delegated: map[string][]string{directory.GraphAppID: {"Application.Read.All"}}}); err != nil {
			t.Fatalf("app admin delegated: %v", err)
		}
		if err := w.d.RemoveDirectoryRole(ctx, cid, appAdmin.ID, directory.RoleApplicationAdministrator); err != nil {
			t.Fatal(err)
		}
		if roles, _ := w.d.DirectoryRolesOf(ctx, cid, appAdmin.ID); len(roles) != 0 {
			t.Fatalf("roles after removal = %v", roles)
		}
		// A tenant that disables user consent.
		if err := w.d.SetSignInPolicy(ctx, cid, directory.SignInPolicy{UserConsentAllowed: false, RequireMFA: true}); err != nil {
			t.Fatal(err)
		}
		if p, _ := w.d.SignInPolicy(ctx, cid); p.UserConsentAllowed || !p.RequireMFA {
			t.Fatalf("policy = %+v", p)
		}
		if p, _ := w.d.SignInPolicy(ctx, w.provider.Tenant.ID); p != directory.DefaultSignInPolicy {
			t.Fatalf("default policy = %+v", p)
		}
		if _, err := w.d.GrantConsent(ctx, userReq); consentCode(err) != directory.CodeAdminConsentNeeded {
			t.Fatalf("user consent under a disabling policy: %v", err)
		}
	})
}

func TestDelegatedGrantCRUD(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		w := newConsentWorld(t, st)
		pid := w.provider.Tenant.ID
		client, err := w.d.CreateServicePrincipal(ctx, pid, w.app.AppID)
		if err != nil {
			t.Fatal(err)
		}
		graph, _ := w.d.ServicePrincipalByAppID(ctx, pid, directory.GraphAppID)
		g, err := w.d.CreateDelegatedGrant(ctx, pid, directory.OAuth2PermissionGrant{ClientID: client.ID, ResourceID: graph.ID,
			ConsentType: directory.ConsentAllPrincipals, Scope: " User.Read  openid User.Read"})
		if err != nil {
			t.Fatal(err)
		}
		if g.Scope != "User.Read openid" {
			t.Fatalf("scope = %q", g.Scope)
		}
		if _, err := w.d.CreateDelegatedGrant(ctx, pid, directory.OAuth2PermissionGrant{ClientID: client.ID, ResourceID: graph.ID,
			ConsentType: directory.ConsentAllPrincipals, Scope: "email"}); !errors.Is(err, directory.ErrConflict) {
			t.Fatalf("second grant: %v", err)
		}
		for name, bad := range map[string]directory.OAuth2PermissionGrant{
			"bad type":      {ClientID: client.ID, ResourceID: graph.ID, ConsentType: "Everyone", Scope: "openid"},
			"no principal":  {ClientID: client.ID, ResourceID: graph.ID, ConsentType: directory.ConsentPrincipal, Scope: "openid"},
			"unknown scope": {ClientID: client.ID, ResourceID: graph.ID, ConsentType: directory.ConsentAllPrincipals, Scope: "Nope"},
			"bad client":    {ClientID: graph.ID + "x", ResourceID: graph.ID, ConsentType: directory.ConsentAllPrincipals, Scope: "openid"},
		} {
			if _, err := w.d.CreateDelegatedGrant(ctx, pid, bad); err == nil {
				t.Errorf("%s: accepted", name)
			} else if _, ok := directory.IsInvalid(err); !ok {
				t.Errorf("%s: %v is not an InvalidError", name, err)
			}
		}
		up, err := w.d.UpdateDelegatedGrantScope(ctx, pid, g.ID, "email")
		if err != nil || up.Scope != "email" || up.Version != 2 {
			t.Fatalf("update = %+v, %v", up, err)
		}
		if _, err := w.d.UpdateDelegatedGrantScope(ctx, pid, g.ID, "Nope"); err == nil {
			t.Fatal("unknown scope accepted on update")
		}
		list, _ := w.d.ListDelegatedGrants(ctx, pid, directory.GrantFilter{ResourceID: graph.ID})
		if len(list) != 1 || list[0].ID != g.ID {
			t.Fatalf("list = %+v", list)
		}
		if list, _ := w.d.ListDelegatedGrants(ctx, pid, directory.GrantFilter{ClientID: graph.ID}); len(list) != 0 {
			t.Fatalf("filtered list = %+v", list)
		}
		if err := w.d.DeleteDelegatedGrant(ctx, pid, g.ID); err != nil {
			t.Fatal(err)
		}
		if err := w.d.DeleteDelegatedGrant(ctx, pid, g.ID); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
	})
}

func TestParseScopeParam(t *testing.T) {
	ctx := context.Background()
	w := newConsentWorld(t, storetest.SQLite(t))
	cid := w.customer.Tenant.ID
	p, err := w.d.ParseScopeParam(ctx, cid, w.app, "openid offline_access https://graph.microsoft.com/Mail.Read User.Read", false)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.Delegated[directory.GraphAppID], " "); got != "openid offline_access Mail.Read User.Read" {
		t.Fatalf("graph scopes = %q", got)
	}
	p, err = w.d.ParseScopeParam(ctx, cid, w.app, "https://graph.microsoft.com/.default", true)
	if err != nil || !slices.Equal(p.Delegated[directory.GraphAppID], []string{"User.Read"}) || !slices.Equal(p.AppRoles[directory.GraphAppID], []string{"User.Read.All"}) {
		t.Fatalf(".default = %+v, %v", p, err)
	}
	// The provider's own API by api://{appId}, found though the customer has no SP of it yet.
	p, err = w.d.ParseScopeParam(ctx, cid, w.app, "api://"+w.app.AppID+"/Data.Read", false)
	if err != nil || !slices.Equal(p.Delegated[strings.ToLower(w.app.AppID)], []string{"Data.Read"}) {
		t.Fatalf("api scope = %+v, %v", p, err)
	}
	p, err = w.d.ParseScopeParam(ctx, cid, w.app, "https://vault.azure.net/.default", false)
	if err != nil || p.Delegated[directory.KeyVaultAppID] == nil || len(p.Delegated[directory.KeyVaultAppID]) != 0 {
		t.Fatalf("vault .default = %+v, %v", p, err)
	}
	for _, bad := range []string{"https://nowhere.example/x", "/x", "https://graph.microsoft.com/", strings.Repeat("a ", 100)} {
		if _, err := w.d.ParseScopeParam(ctx, cid, w.app, bad, false); consentCode(err) == 0 {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
