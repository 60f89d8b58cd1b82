package directory_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

func key(b byte) []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = b
	}
	return k
}

// clock is a settable time source for expiry tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newDirectory(t *testing.T, st store.Store) (*directory.Service, *clock) {
	t.Helper()
	c := &clock{t: time.Now().UTC()}
	d, err := directory.New(st, key(1), key(2), directory.WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.EnsureFirstParty(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d, c
}

func mustTenant(t *testing.T, d *directory.Service, name string) *directory.TenantBootstrap {
	t.Helper()
	b, err := d.CreateTenant(context.Background(), name)
	if err != nil {
		t.Fatalf("CreateTenant(%s): %v", name, err)
	}
	return b
}

func TestTenantBootstrap(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		d, _ := newDirectory(t, st)
		b := mustTenant(t, d, "contoso")
		if b.Tenant.Domain != "contoso.onmicrosoft.com" || b.Tenant.SubscriptionID == "" {
			t.Fatalf("tenant = %+v", b.Tenant)
		}
		for _, appID := range []string{directory.GraphAppID, directory.ARMAppID, directory.KeyVaultAppID, directory.ServiceBusAppID, directory.TokenExchangeAppID, directory.ApplianceRPAppID} {
			sp, err := d.ServicePrincipalByAppID(ctx, b.Tenant.ID, appID)
			if err != nil {
				t.Fatalf("first-party %s: %v", appID, err)
			}
			if sp.AppOwnerOrganizationID != directory.MicrosoftTenantID {
				t.Errorf("%s owner = %s", appID, sp.AppOwnerOrganizationID)
			}
		}
		graph, err := d.ServicePrincipalByName(ctx, b.Tenant.ID, "https://graph.microsoft.com/")
		if err != nil || graph.AppID != directory.GraphAppID {
			t.Fatalf("Graph by name with slash: %v %v", graph, err)
		}
		arm, err := d.ServicePrincipalByName(ctx, b.Tenant.ID, "https://management.azure.com")
		if err != nil || arm.AppID != directory.ARMAppID {
			t.Fatalf("ARM by name without slash: %v %v", arm, err)
		}
		roles, err := d.GrantedRoles(ctx, b.Tenant.ID, b.AdminSP.ID, store.KindServicePrincipal, graph)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(roles)
		want := []string{"AppRoleAssignment.ReadWrite.All", "Application.ReadWrite.All", "DelegatedPermissionGrant.ReadWrite.All",
			"Group.ReadWrite.All", "RoleManagement.ReadWrite.Directory", "User.ReadWrite.All"}
		if !slices.Equal(roles, want) {
			t.Fatalf("admin roles = %v, want %v", roles, want)
		}
		if err := d.AuthenticateClientSecret(b.Admin, nil, b.AdminSecret.SecretText); err != nil {
			t.Fatalf("bootstrap secret: %v", err)
		}
		if _, err := d.CreateTenant(ctx, "Contoso"); !errors.Is(err, directory.ErrConflict) {
			t.Fatalf("duplicate tenant: %v", err)
		}
		for _, bad := range []string{"", "common", "has space", "a.b", "microsoftservices", "x123456789012345678901234567890123456789012"} {
			if _, err := d.CreateTenant(ctx, bad); err == nil {
				t.Errorf("tenant name %q accepted", bad)
			} else if _, ok := directory.IsInvalid(err); !ok {
				t.Errorf("tenant name %q: %v is not an InvalidError", bad, err)
			}
		}
		// A second start changes nothing.
		if err := d.EnsureFirstParty(ctx); err != nil {
			t.Fatal(err)
		}
		sps, err := d.ListServicePrincipals(ctx, b.Tenant.ID, directory.Query{})
		if err != nil || len(sps) != 7 {
			t.Fatalf("service principals after restart = %d, %v; want 6 first-party + admin", len(sps), err)
		}
		tenants, _ := d.ListTenants(ctx)
		if len(tenants) != 1 || tenants[0].ID != b.Tenant.ID {
			t.Fatalf("ListTenants = %+v (Microsoft's tenant must be hidden)", tenants)
		}
		for _, ref := range []string{b.Tenant.ID, "contoso.onmicrosoft.com", "CONTOSO.onmicrosoft.com", "contoso"} {
			if got, err := d.Tenant(ctx, ref); err != nil || got.ID != b.Tenant.ID {
				t.Errorf("Tenant(%q) = %v, %v", ref, got.ID, err)
			}
		}
	})
}

func TestApplicationValidation(t *testing.T) {
	d, _ := newDirectory(t, storetest.SQLite(t))
	ctx := context.Background()
	tid := mustTenant(t, d, "fabrikam").Tenant.ID
	v3 := 3
	cases := map[string]directory.Application{
		"no name":          {},
		"audience":         {DisplayName: "a", SignInAudience: "PersonalMicrosoftAccount"},
		"relative uri":     {DisplayName: "a", IdentifierURIs: []string{"not-a-uri"}},
		"wildcard uri":     {DisplayName: "a", IdentifierURIs: []string{"api://fabrikam.onmicrosoft.com/*"}},
		"dup uri":          {DisplayName: "a", IdentifierURIs: []string{"api://fabrikam.onmicrosoft.com/x", "API://FABRIKAM.onmicrosoft.com/X"}},
		"slash dup uri":    {DisplayName: "a", IdentifierURIs: []string{"https://fabrikam.onmicrosoft.com/x", "https://fabrikam.onmicrosoft.com/x/"}},
		"foreign uri":      {DisplayName: "a", IdentifierURIs: []string{"api://orders"}},
		"graph uri":        {DisplayName: "a", IdentifierURIs: []string{"https://graph.microsoft.com/"}},
		"js redirect":      {DisplayName: "a", WebRedirectURIs: []string{"javascript:alert(1)"}},
		"data redirect":    {DisplayName: "a", PublicClientRedirectURIs: []string{"data:text/html,x"}},
		"custom web":       {DisplayName: "a", WebRedirectURIs: []string{"myapp://auth"}},
		"role id":          {DisplayName: "a", AppRoles: []directory.AppRole{{ID: "nope", AllowedMemberTypes: []string{"Application"}, Value: "r"}}},
		"role member type": {DisplayName: "a", AppRoles: []directory.AppRole{{ID: "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30", AllowedMemberTypes: []string{"Robot"}, Value: "r"}}},
		"role value space": {DisplayName: "a", AppRoles: []directory.AppRole{{ID: "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30", AllowedMemberTypes: []string{"User"}, Value: "r r"}}},
		"token version":    {DisplayName: "a", AccessTokenAcceptedVersion: &v3},
		"http redirect":    {DisplayName: "a", WebRedirectURIs: []string{"http://example.com/cb"}},
		"scope type":       {DisplayName: "a", OAuth2PermissionScopes: []directory.PermissionScope{{ID: "14dad69e-099b-42c9-810b-d002981feec1", Value: "read", Type: "Everyone"}}},
	}
	for name, app := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := d.CreateApplication(ctx, tid, app)
			if _, ok := directory.IsInvalid(err); !ok {
				t.Fatalf("err = %v, want InvalidError", err)
			}
		})
	}
	ok, err := d.CreateApplication(ctx, tid, directory.Application{DisplayName: "api", IdentifierURIs: []string{"api://fabrikam.onmicrosoft.com/orders"},
		WebRedirectURIs: []string{"https://app.example/cb", "http://localhost:5000/cb"}, PublicClientRedirectURIs: []string{"msalapp://auth"}})
	if err != nil {
		t.Fatal(err)
	}
	if ok.SignInAudience != directory.AudienceMyOrg || ok.PublisherDomain != "fabrikam.onmicrosoft.com" || ok.AppID == "" {
		t.Fatalf("defaults: %+v", ok)
	}
	if _, err := d.CreateApplication(ctx, tid, directory.Application{DisplayName: "other", IdentifierURIs: []string{"API://Fabrikam.onmicrosoft.com/orders"}}); !errors.Is(err, directory.ErrConflict) {
		t.Fatalf("identifier URI reuse: %v", err)
	}
}

func TestMultiTenantServicePrincipals(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		d, _ := newDirectory(t, st)
		provider := mustTenant(t, d, "provider").Tenant.ID
		customer := mustTenant(t, d, "customer").Tenant.ID

		single, err := d.CreateApplication(ctx, provider, directory.Application{DisplayName: "internal"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.CreateServicePrincipal(ctx, customer, single.AppID); err == nil {
			t.Fatal("a single-tenant app's service principal was created in another tenant")
		}
		multi, err := d.CreateApplication(ctx, provider, directory.Application{DisplayName: "saas", SignInAudience: directory.AudienceMultipleOrgs,
			IdentifierURIs: []string{"api://provider.onmicrosoft.com/saas"},
			AppRoles:       []directory.AppRole{{ID: "2a7d6f1c-7e3b-4b8e-9a35-1c7e2f0d9b11", AllowedMemberTypes: []string{"Application"}, Value: "Orders.Read", IsEnabled: true}}})
		if err != nil {
			t.Fatal(err)
		}
		home, err := d.CreateServicePrincipal(ctx, provider, multi.AppID)
		if err != nil {
			t.Fatal(err)
		}
		foreign, err := d.CreateServicePrincipal(ctx, customer, multi.AppID)
		if err != nil {
			t.Fatal(err)
		}
		if foreign.AppOwnerOrganizationID != provider || foreign.ID == home.ID {
			t.Fatalf("foreign sp = %+v", foreign)
		}
		if _, err := d.CreateServicePrincipal(ctx, customer, multi.AppID); !errors.Is(err, directory.ErrConflict) {
			t.Fatalf("second sp in one tenant: %v", err)
		}
		// Changing the application reaches its service principal in every tenant.
		_, err = d.UpdateApplication(ctx, provider, multi.ID, func(a *directory.Application) error {
			a.IdentifierURIs = []string{"api://provider.onmicrosoft.com/saas-v2"}
			a.AppRoles[0].Value = "Orders.ReadAll"
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.ServicePrincipalByName(ctx, customer, "api://provider.onmicrosoft.com/saas-v2")
		if err != nil || got.ID != foreign.ID {
			t.Fatalf("customer sp by new uri: %v, %v", got, err)
		}
		if _, err := d.ServicePrincipalByName(ctx, customer, "api://provider.onmicrosoft.com/saas"); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("old uri still resolves: %v", err)
		}
		if got.AppRoles[0].Value != "Orders.ReadAll" {
			t.Fatalf("roles not synced: %+v", got.AppRoles)
		}
		// Deleting the application removes its home service principal only.
		if err := d.DeleteApplication(ctx, provider, multi.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := d.GetServicePrincipal(ctx, provider, home.ID); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("home sp after app delete: %v", err)
		}
		if _, err := d.GetServicePrincipal(ctx, customer, foreign.ID); err != nil {
			t.Fatalf("foreign sp after app delete: %v", err)
		}
		if _, err := d.ApplicationByAppID(ctx, multi.AppID); !errors.Is(err, directory.ErrNotFound) {
			t.Fatalf("app after delete: %v", err)
		}
	})
}

func TestClientSecrets(t *testing.T) {
	d, c := newDirectory(t, storetest.SQLite(t))
	ctx := context.Background()
	tid := mustTenant(t, d, "secrets").Tenant.ID
	app, err := d.CreateApplication(ctx, tid, directory.Application{DisplayName: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.AuthenticateClientSecret(app, nil, "anything"); !errors.Is(err, directory.ErrNoSecret) {
		t.Fatalf("no secrets: %v", err)
	}
	cred, err := d.AddApplicationPassword(ctx, tid, app.ID, "ci", time.Time{}, c.now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(cred.SecretText) != 40 || cred.Hint != cred.SecretText[:3] || cred.SecretText[4:6] != "Q~" {
		t.Fatalf("secret shape: %q hint %q", cred.SecretText, cred.Hint)
	}
	app, _ = d.GetApplication(ctx, tid, app.ID)
	if app.PasswordCredentials[0].SecretText != "" || len(app.PasswordCredentials[0].Hash) != 32 {
		t.Fatal("stored credential must hold the hash only")
	}
	if err := d.AuthenticateClientSecret(app, nil, cred.SecretText); err != nil {
		t.Fatalf("valid secret: %v", err)
	}
	if err := d.AuthenticateClientSecret(app, nil, cred.SecretText+"x"); !errors.Is(err, directory.ErrInvalidSecret) {
		t.Fatalf("wrong secret: %v", err)
	}
	c.add(2 * time.Hour)
	if err := d.AuthenticateClientSecret(app, nil, cred.SecretText); !errors.Is(err, directory.ErrSecretExpired) {
		t.Fatalf("expired secret: %v", err)
	}
	if _, err := d.AddApplicationPassword(ctx, tid, app.ID, "bad", c.now(), c.now().Add(-time.Minute)); err == nil {
		t.Fatal("end before start accepted")
	}
	if err := d.RemoveApplicationPassword(ctx, tid, app.ID, cred.KeyID); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveApplicationPassword(ctx, tid, app.ID, cred.KeyID); err == nil {
		t.Fatal("removing twice succeeded")
	}
	// A service principal's own secret authenticates in its tenant.
	sp, err := d.CreateServicePrincipal(ctx, tid, app.AppID)
	if err != nil {
		t.Fatal(err)
	}
	spCred, err := d.AddServicePrincipalPassword(ctx, tid, sp.ID, "sp", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	app, _ = d.GetApplication(ctx, tid, app.ID)
	sp, _ = d.GetServicePrincipal(ctx, tid, sp.ID)
	if err := d.AuthenticateClientSecret(app, sp, spCred.SecretText); err != nil {
		t.Fatalf("sp secret: %v", err)
	}
	if err := d.AuthenticateClientSecret(app, nil, spCred.SecretText); err == nil {
		t.Fatal("sp secret accepted without the sp")
	}
}

// Concurrent credential changes must all survive: none may overwrite another.
func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		d, _ := newDirectory(t, st)
		ctx := context.Background()
		tid := mustTenant(t, d, "busy").Tenant.ID
		app, err := d.CreateApplication(ctx, tid, directory.Application{DisplayName: "busy"})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := d.AddApplicationPassword(ctx, tid, app.ID, "p", time.Time{}, time.Time{})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		app, _ = d.GetApplication(ctx, tid, app.ID)
		if len(app.PasswordCredentials) != 20 {
			t.Fatalf("credentials = %d, want 20", len(app.PasswordCredentials))
		}
	})
}

func TestUsersPasswordsAndTOTP(t *testing.T) {
	d, c := newDirectory(t, storetest.SQLite(t))
	ctx := context.Background()
	tid := mustTenant(t, d, "people").Tenant.ID
	good := directory.NewUser{UserPrincipalName: "ada@people.onmicrosoft.com", DisplayName: "Ada", Password: "Correct-Horse-9", AccountEnabled: true}
	for name, nu := range map[string]directory.NewUser{
		"foreign domain": {UserPrincipalName: "ada@evil.example", DisplayName: "Ada", Password: good.Password},
		"no at":          {UserPrincipalName: "ada", DisplayName: "Ada", Password: good.Password},
		"weak password":  {UserPrincipalName: good.UserPrincipalName, DisplayName: "Ada", Password: "password"},
		"no name":        {UserPrincipalName: good.UserPrincipalName, Password: good.Password},
	} {
		if _, err := d.CreateUser(ctx, tid, nu); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	u, err := d.CreateUser(ctx, tid, good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateUser(ctx, tid, directory.NewUser{UserPrincipalName: "ADA@people.onmicrosoft.com", DisplayName: "Ada 2", Password: good.Password}); !errors.Is(err, directory.ErrConflict) {
		t.Fatalf("duplicate upn: %v", err)
	}
	found, err := d.UserByName(ctx, tid, "Ada@People.onmicrosoft.com")
	if err != nil || found.ID != u.ID {
		t.Fatalf("UserByName: %v %v", found, err)
	}
	if !d.CheckUserPassword(found, good.Password) || d.CheckUserPassword(found, "Correct-Horse-8") {
		t.Fatal("password check wrong")
	}
	disabled := false
	found, _ = d.UpdateUser(ctx, tid, u.ID, directory.UserChanges{AccountEnabled: &disabled})
	if d.CheckUserPassword(found, good.Password) {
		t.Fatal("disabled user signed in")
	}
	_, secret, err := d.EnrollTOTP(ctx, tid, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	found, _ = d.GetUser(ctx, tid, u.ID)
	code, _ := directory.TOTPCode(secret, c.now())
	if !d.CheckTOTP(found, code) {
		t.Fatal("current TOTP code refused")
	}
	old, _ := directory.TOTPCode(secret, c.now().Add(-5*time.Minute))
	if old != code && d.CheckTOTP(found, old) {
		t.Fatal("stale TOTP code accepted")
	}
}

// TestEnrollAuthenticatorOnce: without replace, a user's authenticator is
// enrolled once, even by enrolments at the same time; the secret of the
// one that succeeded is the one that works.
func TestEnrollAuthenticatorOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		d, c := newDirectory(t, st)
		ctx := context.Background()
		tid := mustTenant(t, d, "once").Tenant.ID
		u, err := d.CreateUser(ctx, tid, directory.NewUser{UserPrincipalName: "al@once.onmicrosoft.com", DisplayName: "Al",
			Password: "Correct-Horse-9", AccountEnabled: true})
		if err != nil {
			t.Fatal(err)
		}
		const n = 8
		secrets, errs := make([]string, n), make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, secrets[i], errs[i] = d.EnrollAuthenticator(ctx, tid, u.ID, false)
			}()
		}
		wg.Wait()
		var won string
		for i, err := range errs {
			switch {
			case err == nil && won == "":
				won = secrets[i]
			case err == nil:
				t.Fatal("two enrolments without replace both succeeded")
			case !errors.Is(err, directory.ErrConflict):
				t.Fatal(err)
			}
		}
		if won == "" {
			t.Fatal("no enrolment succeeded")
		}
		found, _ := d.GetUser(ctx, tid, u.ID)
		if code, _ := directory.TOTPCode(won, c.now()); !d.CheckTOTP(found, code) {
			t.Fatal("the enrolled secret's code refused")
		}
		if _, _, err := d.EnrollAuthenticator(ctx, tid, u.ID, false); !errors.Is(err, directory.ErrConflict) {
			t.Fatalf("enrolling again without replace: %v", err)
		}
		if _, next, err := d.EnrollAuthenticator(ctx, tid, u.ID, true); err != nil || next == won {
			t.Fatalf("replace: %v", err)
		}
	})
}

func TestGroupsAndRoles(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		d, _ := newDirectory(t, st)
		ctx := context.Background()
		tid := mustTenant(t, d, "groups").Tenant.ID
		outer, _ := d.CreateGroup(ctx, tid, directory.Group{DisplayName: "Outer"})
		inner, _ := d.CreateGroup(ctx, tid, directory.Group{DisplayName: "Inner"})
		u, err := d.CreateUser(ctx, tid, directory.NewUser{UserPrincipalName: "bo@groups.onmicrosoft.com", DisplayName: "Bo", Password: "Sturdy-Pass-1", AccountEnabled: true})
		if err != nil {
			t.Fatal(err)
		}
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(d.AddMember(ctx, tid, outer.ID, inner.ID))
		must(d.AddMember(ctx, tid, inner.ID, u.ID))
		if err := d.AddMember(ctx, tid, inner.ID, outer.ID); err == nil {
			t.Fatal("membership cycle accepted")
		}
		if err := d.AddMember(ctx, tid, inner.ID, u.ID); !errors.Is(err, directory.ErrConflict) {
			t.Fatalf("duplicate member: %v", err)
		}
		groups, err := d.TransitiveMemberOf(ctx, tid, u.ID)
		must(err)
		slices.Sort(groups)
		want := []string{inner.ID, outer.ID}
		slices.Sort(want)
		if !slices.Equal(groups, want) {
			t.Fatalf("transitive groups = %v, want %v", groups, want)
		}
		// An app role granted to the outer group reaches the user through the inner one.
		api, err := d.CreateApplication(ctx, tid, directory.Application{DisplayName: "api", AppRoles: []directory.AppRole{
			{ID: "5d3b8c1e-2f4a-4c6b-8e9d-0a1b2c3d4e5f", AllowedMemberTypes: []string{"User"}, Value: "Reports.View", IsEnabled: true},
			{ID: "6e4c9d2f-3a5b-4d7c-9f0e-1b2c3d4e5f60", AllowedMemberTypes: []string{"Application"}, Value: "Jobs.Run", IsEnabled: true},
		}})
		must(err)
		apiSP, err := d.CreateServicePrincipal(ctx, tid, api.AppID)
		must(err)
		_, err = d.AssignAppRole(ctx, tid, outer.ID, apiSP.ID, "5d3b8c1e-2f4a-4c6b-8e9d-0a1b2c3d4e5f")
		must(err)
		if _, err := d.AssignAppRole(ctx, tid, u.ID, apiSP.ID, "6e4c9d2f-3a5b-4d7c-9f0e-1b2c3d4e5f60"); err == nil {
			t.Fatal("application-only role assigned to a user")
		}
		if _, err := d.AssignAppRole(ctx, tid, outer.ID, apiSP.ID, "5d3b8c1e-2f4a-4c6b-8e9d-0a1b2c3d4e5f"); !errors.Is(err, directory.ErrConflict) {
			t.Fatalf("duplicate assignment: %v", err)
		}
		roles, err := d.GrantedRoles(ctx, tid, u.ID, store.KindUser, apiSP)
		must(err)
		if !slices.Equal(roles, []string{"Reports.View"}) {
			t.Fatalf("user roles = %v", roles)
		}
		must(d.RemoveMember(ctx, tid, outer.ID, inner.ID))
		roles, _ = d.GrantedRoles(ctx, tid, u.ID, store.KindUser, apiSP)
		if len(roles) != 0 {
			t.Fatalf("roles after leaving the group = %v", roles)
		}
		// Owners.
		must(d.AddOwner(ctx, tid, api.ID, u.ID))
		if ok, _ := d.IsOwner(ctx, tid, api.ID, u.ID); !ok {
			t.Fatal("owner not recorded")
		}
		if err := d.AddOwner(ctx, tid, api.ID, inner.ID); err == nil {
			t.Fatal("a group became an owner")
		}
	})
}

func selfSignedCert(t *testing.T) []byte {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestKeyAndFederatedCredentials(t *testing.T) {
	d, _ := newDirectory(t, storetest.SQLite(t))
	ctx := context.Background()
	tid := mustTenant(t, d, "creds").Tenant.ID
	app, _ := d.CreateApplication(ctx, tid, directory.Application{DisplayName: "wl"})
	if _, err := directory.NewKeyCredential([]byte("junk"), "", time.Time{}, time.Time{}); err == nil {
		t.Fatal("junk certificate accepted")
	}
	kc, err := directory.NewKeyCredential(selfSignedCert(t), "", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.AddApplicationKey(ctx, tid, app.ID, kc); err != nil {
		t.Fatal(err)
	}
	if _, err := d.AddApplicationKey(ctx, tid, app.ID, kc); !errors.Is(err, directory.ErrConflict) {
		t.Fatalf("same certificate twice: %v", err)
	}
	fic := directory.FederatedIdentityCredential{Name: "k8s", Issuer: "https://issuer.example", Subject: "system:serviceaccount:ns:sa", Audiences: []string{directory.TokenExchangeAudience}}
	for name, bad := range map[string]directory.FederatedIdentityCredential{
		"http issuer":   {Name: "a1x", Issuer: "http://issuer.example", Subject: "s", Audiences: []string{"a"}},
		"no subject":    {Name: "a2x", Issuer: "https://issuer.example", Audiences: []string{"a"}},
		"two audiences": {Name: "a3x", Issuer: "https://issuer.example", Subject: "s", Audiences: []string{"a", "b"}},
		"bad name":      {Name: "a b", Issuer: "https://issuer.example", Subject: "s", Audiences: []string{"a"}},
	} {
		if _, err := d.AddFederatedCredential(ctx, tid, app.ID, bad); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := d.AddFederatedCredential(ctx, tid, app.ID, fic); err != nil {
		t.Fatal(err)
	}
	dup := fic
	dup.Name = "other"
	if _, err := d.AddFederatedCredential(ctx, tid, app.ID, dup); !errors.Is(err, directory.ErrConflict) {
		t.Fatalf("same issuer+subject: %v", err)
	}
	for i := 1; i < directory.MaxFederatedCredential; i++ {
		f := fic
		f.Name, f.Subject = "fic-"+string(rune('a'+i)), "subject-"+string(rune('a'+i))
		if _, err := d.AddFederatedCredential(ctx, tid, app.ID, f); err != nil {
			t.Fatalf("credential %d: %v", i, err)
		}
	}
	over := fic
	over.Name, over.Subject = "one-too-many", "s21"
	if _, err := d.AddFederatedCredential(ctx, tid, app.ID, over); err == nil {
		t.Fatal("21st federated credential accepted")
	}
	if _, err := d.UpdateFederatedCredential(ctx, tid, app.ID, "k8s", func(f *directory.FederatedIdentityCredential) { f.Subject = "new" }); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveFederatedCredential(ctx, tid, app.ID, "k8s"); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveFederatedCredential(ctx, tid, app.ID, "k8s"); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("remove twice: %v", err)
	}
}

func TestDeleteTenant(t *testing.T) {
	d, _ := newDirectory(t, storetest.SQLite(t))
	ctx := context.Background()
	b := mustTenant(t, d, "gone")
	if _, err := d.DeleteTenant(ctx, directory.MicrosoftTenantID); err == nil {
		t.Fatal("Microsoft's tenant deleted")
	}
	if _, err := d.DeleteTenant(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Tenant(ctx, b.Tenant.ID); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("tenant after delete: %v", err)
	}
	if _, err := d.ApplicationByAppID(ctx, b.Admin.AppID); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("admin app after tenant delete: %v", err)
	}
}

// The bootstrap administrator owns the new tenant's subscription.
func TestBootstrapAdminOwnsSubscription(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		d, _ := newDirectory(t, st)
		b := mustTenant(t, d, "owned")
		sub := "/subscriptions/" + b.Tenant.SubscriptionID
		as, err := st.ListRoleAssignments(ctx, store.RoleAssignmentQuery{TenantID: b.Tenant.ID, Scopes: []string{sub}})
		if err != nil {
			t.Fatal(err)
		}
		if len(as) != 1 || as[0].PrincipalID != b.AdminSP.ID || as[0].RoleDefinitionID != rbac.RoleOwner {
			t.Fatalf("subscription assignments = %+v", as)
		}
		dec, err := rbac.New(st, d).Decide(ctx, rbac.Request{PrincipalID: b.AdminSP.ID, Action: "Microsoft.Resources/subscriptions/resourceGroups/write", Scope: sub + "/resourceGroups/rg1"})
		if err != nil || !dec.Allowed {
			t.Fatalf("admin may not create a resource group: %+v %v", dec, err)
		}
	})
}

// A start finds a tenant lacking a first-party service principal (deleted
// through the store, or created by an older build) and gives it one.
func TestEnsureFirstPartyRestoresServicePrincipals(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	d, _ := newDirectory(t, st)
	b := mustTenant(t, d, "repaired")
	kv, err := d.ServicePrincipalByAppID(ctx, b.Tenant.ID, directory.KeyVaultAppID)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteObject(ctx, b.Tenant.ID, store.KindServicePrincipal, kv.ID); err != nil {
		t.Fatal(err)
	}
	if err := d.EnsureFirstParty(ctx); err != nil {
		t.Fatal(err)
	}
	again, err := d.ServicePrincipalByAppID(ctx, b.Tenant.ID, directory.KeyVaultAppID)
	if err != nil || again.ID == kv.ID || again.AppOwnerOrganizationID != directory.MicrosoftTenantID {
		t.Fatalf("Key Vault's service principal after a start: %+v, %v", again, err)
	}
}
