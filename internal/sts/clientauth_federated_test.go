package sts_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

const workloadSubject = "system:serviceaccount:payments:api"

// addFIC adds a federated identity credential to an application.
func (e *env) addFIC(tenantID, appObjectID, name, issuer, subject, audience string) directory.FederatedIdentityCredential {
	e.t.Helper()
	f, err := e.dir.AddFederatedCredential(e.ctx, tenantID, appObjectID, directory.FederatedIdentityCredential{
		Name: name, Issuer: issuer, Subject: subject, Audiences: []string{audience}})
	must(e.t, err)
	return f
}

// TestAzidentityClientAssertion: ClientAssertionCredential with a token of
// an external OIDC issuer that the app's federated credential trusts, in
// the home tenant and in a tenant the multi-tenant app was consented into;
// the issuer's keys are fetched once and cached.
func TestAzidentityClientAssertion(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		is := newTestIssuer(t)
		fic := e.addFIC(e.contoso.ID, e.provider.ID, "payments", is.url, workloadSubject, directory.TokenExchangeAudience)

		calls := 0
		cred, err := azidentity.NewClientAssertionCredential(e.contoso.ID, e.provider.AppID, func(context.Context) (string, error) {
			calls++
			return is.token(t, workloadSubject, directory.TokenExchangeAudience, nil), nil
		}, &azidentity.ClientAssertionCredentialOptions{ClientOptions: e.clientOptions(), DisableInstanceDiscovery: true, AdditionallyAllowedTenants: []string{"*"}})
		must(t, err)
		tok, err := cred.GetToken(e.ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}, EnableCAE: true})
		must(t, err)
		c, err := e.verifier.Verify(e.ctx, tok.Token, directory.GraphResource)
		must(t, err)
		if c.AppID != e.provider.AppID || c.AppIDACR != "2" || c.ObjectID != e.providerSPHome.ID || c.TenantID != e.contoso.ID {
			t.Errorf("home token: appid %s appidacr %s oid %s tid %s", c.AppID, c.AppIDACR, c.ObjectID, c.TenantID)
		}
		if a := e.lastAudit(); !strings.Contains(a.Detail, "client_auth=private_key_jwt") || !strings.Contains(a.Detail, "credential=federated:"+fic.Name) {
			t.Errorf("audit detail %q", a.Detail)
		}

		tok, err = cred.GetToken(e.ctx, policy.TokenRequestOptions{Scopes: []string{ordersURI + "/.default"}, TenantID: e.fabrikam.ID})
		must(t, err)
		c, err = e.verifier.Verify(e.ctx, tok.Token, e.orders.AppID)
		must(t, err)
		if c.AZP != e.provider.AppID || c.AZPACR != "2" || c.ObjectID != e.providerSPOther.ID || c.TenantID != e.fabrikam.ID ||
			!slices.Equal(c.Roles, []string{"Orders.Read"}) {
			t.Errorf("fabrikam token: azp %s azpacr %s oid %s tid %s roles %v", c.AZP, c.AZPACR, c.ObjectID, c.TenantID, c.Roles)
		}
		if calls != 2 || is.fetches.Load() != 1 {
			t.Errorf("%d assertions, %d JWKS fetches; want 2 and 1 (cached)", calls, is.fetches.Load())
		}
	})
}

// TestAzidentityWorkloadIdentity: WorkloadIdentityCredential reads a
// projected token file that ends in a newline and sends it verbatim.
func TestAzidentityWorkloadIdentity(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		is := newTestIssuer(t)
		e.addFIC(e.contoso.ID, e.provider.ID, "payments", is.url, workloadSubject, directory.TokenExchangeAudience)
		file := filepath.Join(t.TempDir(), "token")
		must(t, os.WriteFile(file, []byte(is.token(t, workloadSubject, directory.TokenExchangeAudience, nil)+"\n"), 0o600))

		cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: e.clientOptions(), DisableInstanceDiscovery: true,
			ClientID: e.provider.AppID, TenantID: e.fabrikam.ID, TokenFilePath: file})
		must(t, err)
		tok, err := cred.GetToken(e.ctx, policy.TokenRequestOptions{Scopes: []string{ordersURI + "/.default"}})
		must(t, err)
		c, err := e.verifier.Verify(e.ctx, tok.Token, e.orders.AppID)
		must(t, err)
		if c.AZP != e.provider.AppID || c.TenantID != e.fabrikam.ID || c.AZPACR != "2" {
			t.Errorf("azp %s tid %s azpacr %s", c.AZP, c.TenantID, c.AZPACR)
		}
	})
}

// TestUserAssignedIdentityFederation: a user-assigned managed identity's
// own federated credential; its client id at the token endpoint gets a
// token as the identity in its tenant, and never through a secret.
func TestUserAssignedIdentityFederation(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	is := newTestIssuer(t)
	uami, err := e.dir.CreateUserAssignedIdentity(e.ctx, e.fabrikam.ID, "", "ci-deployer")
	must(t, err)
	_, err = e.dir.AddIdentityFederatedCredential(e.ctx, e.fabrikam.ID, uami.ID, directory.FederatedIdentityCredential{
		Name: "ci-pipeline", Issuer: is.url, Subject: workloadSubject, Audiences: []string{directory.TokenExchangeAudience}})
	must(t, err)
	e.grantGraph(e.fabrikam.ID, uami.ID, directory.PermUserReadAll)

	cred, err := azidentity.NewClientAssertionCredential(e.fabrikam.ID, uami.AppID, func(context.Context) (string, error) {
		return is.token(t, workloadSubject, directory.TokenExchangeAudience, nil), nil
	}, &azidentity.ClientAssertionCredentialOptions{ClientOptions: e.clientOptions(), DisableInstanceDiscovery: true})
	must(t, err)
	tok, err := cred.GetToken(e.ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
	must(t, err)
	c, err := e.verifier.Verify(e.ctx, tok.Token, directory.GraphResource)
	must(t, err)
	if c.AppID != uami.AppID || c.ObjectID != uami.ID || c.TenantID != e.fabrikam.ID || c.AppIDACR != "2" ||
		c.ManagedIdentityResourceID != uami.ManagedIdentityResourceID() || !slices.Equal(c.Roles, []string{directory.PermUserReadAll}) {
		t.Errorf("appid %s oid %s tid %s appidacr %s xms_mirid %s roles %v", c.AppID, c.ObjectID, c.TenantID, c.AppIDACR, c.ManagedIdentityResourceID, c.Roles)
	}

	// Its client id in another tenant is no client there.
	resp, doc := e.post(e.tokenURL(e.contoso.ID, true), assertionForm(uami.AppID, is.token(t, workloadSubject, directory.TokenExchangeAudience, nil),
		"https://graph.microsoft.com/.default"), nil)
	wantAAD(t, "identity in another tenant", resp, doc, 400, "unauthorized_client", 700016)
	// A secret is never how a managed identity authenticates, even one
	// that was put on its service principal.
	secret := "anything"
	if pc, err := e.dir.AddServicePrincipalPassword(e.ctx, e.fabrikam.ID, uami.ID, "sneaky", zeroTime, zeroTime); err == nil {
		secret = pc.SecretText
	}
	resp, doc = e.post(e.tokenURL(e.fabrikam.ID, true), map[string][]string{"grant_type": {"client_credentials"}, "client_id": {uami.AppID},
		"client_secret": {secret}, "scope": {"https://graph.microsoft.com/.default"}}, nil)
	wantAAD(t, "secret for a managed identity", resp, doc, 401, "invalid_client", 7000218)
}
