package sts_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// credential is the real azidentity ClientSecretCredential pointed at the test server.
func (e *env) credential(tenant string, additionallyAllowed ...string) *azidentity.ClientSecretCredential {
	e.t.Helper()
	cred, err := azidentity.NewClientSecretCredential(tenant, e.provider.AppID, e.providerSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: e.srv.URL},
			Transport: e.srv.Client(),
		},
		AdditionallyAllowedTenants: additionallyAllowed,
		DisableInstanceDiscovery:   true,
	})
	must(e.t, err)
	return cred
}

// TestAzidentityClientSecret drives the Azure SDK's own credential: a token
// in the app's home tenant, in a tenant it was provisioned into (by
// AdditionallyAllowedTenants and by a credential for that tenant's domain),
// each verified and checked for the claims a resource relies on.
func TestAzidentityClientSecret(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		ctx := context.Background()
		graph := []string{"https://graph.microsoft.com/.default"}

		cred := e.credential(e.contoso.ID, "*")
		// EnableCAE is what azcore's BearerTokenPolicy always sets: it makes
		// azidentity send claims={"access_token":{"xms_cc":{"values":["CP1"]}}}.
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: graph, EnableCAE: true})
		must(t, err)
		c, err := e.verifier.Verify(ctx, tok.Token, directory.GraphResource)
		must(t, err)
		if c.TenantID != e.contoso.ID || c.ObjectID != e.providerSPHome.ID || c.Subject != c.ObjectID {
			t.Errorf("home token: tid %s oid %s sub %s, want tid %s oid=sub=%s", c.TenantID, c.ObjectID, c.Subject, e.contoso.ID, e.providerSPHome.ID)
		}
		if c.Version != "1.0" || c.AppID != e.provider.AppID || c.AppIDACR != "1" || c.IdentType != "app" || c.IDP != "" {
			t.Errorf("home token: ver %q appid %q appidacr %q idtyp %q idp %q", c.Version, c.AppID, c.AppIDACR, c.IdentType, c.IDP)
		}
		if !slices.Equal(c.Roles, []string{directory.PermApplicationReadAll}) {
			t.Errorf("home token roles = %v, want [%s]", c.Roles, directory.PermApplicationReadAll)
		}
		if !slices.Equal(c.ClientCapabilities, []string{"CP1"}) {
			t.Errorf("xms_cc = %v: azidentity asked for CP1", c.ClientCapabilities)
		}

		// The same credential, another tenant: the provider's service principal there.
		tok, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: graph, TenantID: e.fabrikam.ID})
		must(t, err)
		c, err = e.verifier.Verify(ctx, tok.Token, directory.GraphResource)
		must(t, err)
		if c.TenantID != e.fabrikam.ID || c.ObjectID != e.providerSPOther.ID {
			t.Errorf("cross-tenant token: tid %s oid %s, want %s %s", c.TenantID, c.ObjectID, e.fabrikam.ID, e.providerSPOther.ID)
		}
		if !slices.Equal(c.Roles, []string{directory.PermUserReadAll}) {
			t.Errorf("cross-tenant roles = %v, want only what fabrikam granted", c.Roles)
		}
		if want := e.srv.URL + "/" + e.contoso.ID + "/"; c.IDP != want {
			t.Errorf("idp = %q, want the home tenant's issuer %q", c.IDP, want)
		}
		if len(c.ClientCapabilities) != 0 {
			t.Errorf("xms_cc = %v without a claims request", c.ClientCapabilities)
		}

		// A credential made for the other tenant by its domain name.
		cred = e.credential(e.fabrikam.Domain)
		tok, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{ordersURI + "/.default"}})
		must(t, err)
		c, err = e.verifier.Verify(ctx, tok.Token, e.orders.AppID)
		must(t, err)
		if c.Version != "2.0" || c.AZP != e.provider.AppID || c.AZPACR != "1" || c.AppID != "" || c.TenantID != e.fabrikam.ID {
			t.Errorf("v2 token: ver %q azp %q azpacr %q appid %q tid %q", c.Version, c.AZP, c.AZPACR, c.AppID, c.TenantID)
		}
		if !slices.Equal(c.Roles, []string{"Orders.Read"}) {
			t.Errorf("orders roles = %v, want [Orders.Read] (Orders.Write was never granted)", c.Roles)
		}

		// A wrong secret surfaces Entra's code through the SDK's error.
		bad, err := azidentity.NewClientSecretCredential(e.contoso.ID, e.provider.AppID, "wrong", &azidentity.ClientSecretCredentialOptions{
			ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: e.srv.URL}, Transport: e.srv.Client()},
			DisableInstanceDiscovery: true,
		})
		must(t, err)
		_, err = bad.GetToken(ctx, policy.TokenRequestOptions{Scopes: graph})
		if err == nil || !strings.Contains(err.Error(), "AADSTS7000215") {
			t.Errorf("wrong secret: err = %v, want AADSTS7000215", err)
		}
	})
}

// TestOAuth2ClientCredentials uses golang.org/x/oauth2, both with HTTP Basic
// authentication and with the secret in the body.
func TestOAuth2ClientCredentials(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, e.srv.Client())
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		cfg := clientcredentials.Config{
			ClientID: e.provider.AppID, ClientSecret: e.providerSecret,
			TokenURL: e.tokenURL(e.fabrikam.ID, true), Scopes: []string{ordersURI + "/.default"},
			AuthStyle: style,
		}
		tok, err := cfg.Token(ctx)
		if err != nil {
			t.Fatalf("auth style %d: %v", style, err)
		}
		if tok.TokenType != "Bearer" || tok.Expiry.IsZero() {
			t.Errorf("auth style %d: token type %q expiry %v", style, tok.TokenType, tok.Expiry)
		}
		c, err := e.verifier.Verify(ctx, tok.AccessToken, e.orders.AppID)
		must(t, err)
		if c.AZP != e.provider.AppID || c.TenantID != e.fabrikam.ID {
			t.Errorf("auth style %d: azp %q tid %q", style, c.AZP, c.TenantID)
		}
		wantMethod := map[oauth2.AuthStyle]string{oauth2.AuthStyleInHeader: "client_secret_basic", oauth2.AuthStyleInParams: "client_secret_post"}[style]
		if a := e.lastAudit(); !strings.Contains(a.Detail, "client_auth="+wantMethod) {
			t.Errorf("audit detail %q, want %s", a.Detail, wantMethod)
		}
	}
}

// TestGoOIDCVerifiesTokens checks that a generic OIDC library discovers the
// issuer and verifies our tokens: v2 (the API's client id as audience) and
// v1 (the v1 issuer and its discovery document).
func TestGoOIDCVerifiesTokens(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	ctx := oidc.ClientContext(context.Background(), e.srv.Client())

	provider, err := oidc.NewProvider(ctx, e.srv.URL+"/"+e.fabrikam.ID+"/v2.0")
	must(t, err)
	status, doc := e.clientCredentials(e.fabrikam.Domain, true, ordersURI+"/.default")
	if status != 200 {
		t.Fatalf("token: %d %v", status, doc)
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: e.orders.AppID}).Verify(ctx, doc["access_token"].(string))
	must(t, err)
	if idt.Subject != e.providerSPOther.ID {
		t.Errorf("v2 sub = %s, want %s", idt.Subject, e.providerSPOther.ID)
	}
	// The audience is checked: the same token is not for Graph.
	if _, err := provider.Verifier(&oidc.Config{ClientID: directory.GraphAppID}).Verify(ctx, doc["access_token"].(string)); err == nil {
		t.Error("go-oidc accepted the orders token for another audience")
	}

	v1provider, err := oidc.NewProvider(ctx, e.srv.URL+"/"+e.fabrikam.ID+"/")
	must(t, err)
	status, doc = e.clientCredentials(e.fabrikam.ID, false, directory.GraphResource)
	if status != 200 {
		t.Fatalf("v1 token: %d %v", status, doc)
	}
	if _, err := v1provider.Verifier(&oidc.Config{ClientID: directory.GraphResource}).Verify(ctx, doc["access_token"].(string)); err != nil {
		t.Errorf("v1 token: %v", err)
	}
	// A v2 issuer does not vouch for a v1 token.
	if _, err := provider.Verifier(&oidc.Config{ClientID: directory.GraphResource}).Verify(ctx, doc["access_token"].(string)); err == nil {
		t.Error("the v2 issuer's verifier accepted a v1 token")
	}
}
