package sts_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// TestEntraIssuerOnUserAssignedIdentity: a user-assigned identity's
// federated credential that trusts another tenant's Entra issuer is
// refused with AADSTS700236, as an application's is, while a credential
// trusting an identity of its own tenant is accepted; the refusal shows in
// the view of the tenant whose token was presented as well as the
// identity's.
func TestEntraIssuerOnUserAssignedIdentity(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	m := e.newWorkload(e.contoso.ID, "bridge")
	northwind, err := e.dir.CreateTenant(e.ctx, "northwind")
	must(t, err)
	nw := e.newWorkload(northwind.Tenant.ID, "intruder")
	nwToken := e.exchangeToken(t, nw)
	contosoToken := e.exchangeToken(t, m)

	northwindIssuer := "https://login.microsoftonline.com/" + northwind.Tenant.ID + "/v2.0"
	contosoIssuer := "https://login.microsoftonline.com/" + e.contoso.ID + "/v2.0"
	if _, err := e.dir.AddIdentityFederatedCredential(e.ctx, e.contoso.ID, m.stranger.ID, directory.FederatedIdentityCredential{
		Name: "northwind", Issuer: northwindIssuer, Subject: nw.worker.ID, Audiences: []string{directory.TokenExchangeAudience}}); err != nil {
		t.Fatal(err) // created, as Entra creates it: the exchange is what fails
	}
	if _, err := e.dir.AddIdentityFederatedCredential(e.ctx, e.contoso.ID, m.stranger.ID, directory.FederatedIdentityCredential{
		Name: "contoso", Issuer: contosoIssuer, Subject: m.worker.ID, Audiences: []string{directory.TokenExchangeAudience}}); err != nil {
		t.Fatal(err)
	}
	graph := "https://graph.microsoft.com/.default"

	resp, doc := e.post(e.tokenURL(e.contoso.ID, true), assertionForm(m.stranger.AppID, nwToken, graph), nil)
	wantAAD(t, "another tenant's identity", resp, doc, 401, "invalid_client", 700236)
	recs, err := e.audit.List(e.ctx, store.AuditQuery{TenantID: northwind.Tenant.ID})
	must(t, err)
	seen := false
	for _, r := range recs {
		seen = seen || (r.Result == "AADSTS700236" && r.ActorTenant == northwind.Tenant.ID && r.TargetTenant == e.contoso.ID)
	}
	if !seen {
		t.Errorf("northwind's audit view lacks the refusal: %+v", recs)
	}
	if r := e.lastAudit(); r.Result != "AADSTS700236" || r.TargetTenant != e.contoso.ID {
		t.Errorf("contoso's record: %+v", r)
	}

	resp, doc = e.post(e.tokenURL(e.contoso.ID, true), assertionForm(m.stranger.AppID, contosoToken, graph), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("same tenant's user-assigned identity: %d %s", resp.StatusCode, description(doc))
	}

	// The same two through WorkloadIdentityCredential, as a workload
	// whose projected token file holds the identity token.
	for _, tc := range []struct {
		name, token string
		refused     bool
	}{{"another tenant's identity", nwToken, true}, {"the same tenant's identity", contosoToken, false}} {
		file := filepath.Join(t.TempDir(), "token")
		must(t, os.WriteFile(file, []byte(tc.token+"\n"), 0o600))
		cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: e.clientOptions(), DisableInstanceDiscovery: true,
			ClientID: m.stranger.AppID, TenantID: e.contoso.ID, TokenFilePath: file})
		must(t, err)
		_, err = cred.GetToken(e.ctx, policy.TokenRequestOptions{Scopes: []string{graph}})
		switch {
		case tc.refused && (err == nil || !strings.Contains(err.Error(), "AADSTS700236")):
			t.Errorf("WorkloadIdentityCredential, %s: %v, want AADSTS700236", tc.name, err)
		case !tc.refused && err != nil:
			t.Errorf("WorkloadIdentityCredential, %s: %v", tc.name, err)
		}
	}
}
