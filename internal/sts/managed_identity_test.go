package sts_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// miWorkload is a workload of contoso with a system-assigned identity and
// one user-assigned identity ("worker"), and a user-assigned identity it
// was not given ("stranger").
type miWorkload struct {
	w                  *directory.Workload
	header             string
	system, worker     *directory.ServicePrincipal
	stranger           *directory.ServicePrincipal
	endpoint, tenantID string
}

func (e *env) newWorkload(tenantID, name string) *miWorkload {
	e.t.Helper()
	worker, err := e.dir.CreateUserAssignedIdentity(e.ctx, tenantID, "", name+"-worker")
	must(e.t, err)
	stranger, err := e.dir.CreateUserAssignedIdentity(e.ctx, tenantID, "", name+"-stranger")
	must(e.t, err)
	w, header, err := e.dir.CreateWorkload(e.ctx, tenantID, "", name, true, []string{worker.ID})
	must(e.t, err)
	system, err := e.dir.GetServicePrincipal(e.ctx, tenantID, w.SystemIdentityID)
	must(e.t, err)
	return &miWorkload{w: w, header: header, system: system, worker: worker, stranger: stranger,
		endpoint: e.srv.URL + "/" + tenantID + "/msi/token", tenantID: tenantID}
}

// use points ManagedIdentityCredential at the workload, as App Service
// sets IDENTITY_ENDPOINT and IDENTITY_HEADER.
func (m *miWorkload) use(t *testing.T) {
	t.Setenv("IDENTITY_ENDPOINT", m.endpoint)
	t.Setenv("IDENTITY_HEADER", m.header)
}

// miCredential is azidentity's ManagedIdentityCredential for id (nil: system-assigned).
func (e *env) miCredential(id azidentity.ManagedIDKind) *azidentity.ManagedIdentityCredential {
	e.t.Helper()
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ClientOptions: azcore.ClientOptions{Transport: e.srv.Client()}, ID: id})
	must(e.t, err)
	return cred
}

// noCache makes MSAL skip its process-wide managed identity token cache,
// which would otherwise hand one test's token to the next.
const noCache = `{"access_token":{"nbf":{"essential":true,"value":"1"}}}`

// TestAzidentityManagedIdentity: system-assigned and user-assigned (by
// client id, by resource id, by object id) through the real
// ManagedIdentityCredential, with each token's claims, and the audit record.
func TestAzidentityManagedIdentity(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		m := e.newWorkload(e.contoso.ID, "web")
		m.use(t)
		e.grantGraph(e.contoso.ID, m.worker.ID, directory.PermUserReadAll)

		cases := []struct {
			name string
			id   azidentity.ManagedIDKind
			want *directory.ServicePrincipal
		}{
			{"system-assigned", nil, m.system},
			{"by client id", azidentity.ClientID(m.worker.AppID), m.worker},
			{"by resource id", azidentity.ResourceID(m.worker.ManagedIdentityResourceID()), m.worker},
			{"by object id", azidentity.ObjectID(m.worker.ID), m.worker},
		}
		for _, tc := range cases {
			tok, err := e.miCredential(tc.id).GetToken(e.ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}, Claims: noCache})
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			c, err := e.verifier.Verify(e.ctx, tok.Token, directory.GraphResource)
			must(t, err)
			if c.AppID != tc.want.AppID || c.AppIDACR != "2" || c.ObjectID != tc.want.ID || c.Subject != tc.want.ID ||
				c.IdentType != "app" || c.TenantID != e.contoso.ID || c.IDP != "" || c.ManagedIdentityResourceID != tc.want.ManagedIdentityResourceID() {
				t.Errorf("%s: appid %s appidacr %s oid %s sub %s idtyp %s tid %s idp %s xms_mirid %s", tc.name,
					c.AppID, c.AppIDACR, c.ObjectID, c.Subject, c.IdentType, c.TenantID, c.IDP, c.ManagedIdentityResourceID)
			}
			if tc.want == m.worker && !slices.Equal(c.Roles, []string{directory.PermUserReadAll}) {
				t.Errorf("%s: roles %v", tc.name, c.Roles)
			}
			if tc.want == m.system && len(c.Roles) != 0 {
				t.Errorf("%s: roles %v granted to nobody", tc.name, c.Roles)
			}
			a := e.lastAudit()
			if a.Action != "token.issue" || a.Actor != tc.want.ID || a.Result != "success" || a.Detail != "managed identity" || a.TargetTenant != e.contoso.ID {
				t.Errorf("%s: audit %+v", tc.name, a)
			}
		}

		// The token exchange audience gets a v2 token: the shape another
		// tenant's federated credential trusts.
		tok, err := e.miCredential(nil).GetToken(e.ctx, policy.TokenRequestOptions{Scopes: []string{directory.TokenExchangeAudience + "/.default"}, Claims: noCache})
		must(t, err)
		_, claims := decodeJWT(t, tok.Token)
		if claims["ver"] != "2.0" || claims["aud"] != directory.TokenExchangeAppID || claims["iss"] != "https://login.microsoftonline.com/"+e.contoso.ID+"/v2.0" ||
			claims["azp"] != m.system.AppID || claims["azpacr"] != "2" || claims["sub"] != m.system.ID {
			t.Errorf("token exchange token: %v", claims)
		}

		// An identity the workload was not given, and a wrong header.
		_, err = e.miCredential(azidentity.ClientID(m.stranger.AppID)).GetToken(e.ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}, Claims: noCache})
		if err == nil || !strings.Contains(err.Error(), "Unable to load the proper Managed Identity") {
			t.Errorf("identity not granted: %v", err)
		}
		t.Setenv("IDENTITY_HEADER", m.w.ID+".wrong")
		_, err = e.miCredential(nil).GetToken(e.ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}, Claims: noCache})
		if err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("wrong header: %v", err)
		}
		if a := e.lastAudit(); a.Result != "HTTP401" || a.Actor != m.w.ID || a.Detail != "managed identity" {
			t.Errorf("refusal audit %+v", a)
		}
	})
}

// TestManagedIdentityEndpointErrors checks each refusal of the identity
// endpoint: status and App Service's error shape.
func TestManagedIdentityEndpointErrors(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	m := e.newWorkload(e.contoso.ID, "web")
	other := e.newWorkload(e.fabrikam.ID, "elsewhere")
	disabled, err := e.dir.CreateUserAssignedIdentity(e.ctx, e.contoso.ID, "", "disabled")
	must(t, err)
	_, dheader, err := e.dir.CreateWorkload(e.ctx, e.contoso.ID, "", "dw", false, []string{disabled.ID})
	must(t, err)
	_, err = e.dir.UpdateServicePrincipal(e.ctx, e.contoso.ID, disabled.ID, func(sp *directory.ServicePrincipal) error {
		sp.AccountEnabled = false
		return nil
	})
	must(t, err)

	q := func(kv ...string) string {
		v := url.Values{"api-version": {"2019-08-01"}, "resource": {"https://vault.azure.net"}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v.Encode()
	}
	cases := []struct {
		name     string
		method   string
		tenant   string
		query    string
		header   string
		status   int
		contains string
	}{
		{name: "ok", query: q(), header: m.header, status: 200},
		{name: "no header", query: q(), status: 401, contains: "X-IDENTITY-HEADER"},
		{name: "wrong secret", query: q(), header: m.w.ID + ".nope", status: 401, contains: "not valid"},
		{name: "another tenant's header", query: q(), header: other.header, status: 401},
		{name: "header for another tenant's endpoint", tenant: e.fabrikam.ID, query: q(), header: m.header, status: 401},
		{name: "api-version", query: q("api-version", "2018-02-01"), header: m.header, status: 400, contains: "api-version"},
		{name: "no api-version", query: q("api-version", ""), header: m.header, status: 400},
		{name: "no resource", query: q("resource", ""), header: m.header, status: 400, contains: "resource"},
		{name: "unknown resource", query: q("resource", "https://nothing.example"), header: m.header, status: 400, contains: "AADSTS500011"},
		{name: "identity not granted", query: q("client_id", m.stranger.AppID), header: m.header, status: 400, contains: "Unable to load the proper Managed Identity."},
		{name: "unknown identity", query: q("object_id", "00000000-0000-0000-0000-000000000001"), header: m.header, status: 400, contains: "Unable to load"},
		{name: "two selectors", query: q("client_id", m.worker.AppID, "object_id", m.worker.ID), header: m.header, status: 400},
		{name: "no system identity", query: q(), header: dheader, status: 400, contains: "system-assigned"},
		{name: "disabled identity", query: q("client_id", disabled.AppID), header: dheader, status: 400, contains: "AADSTS7000112"},
		{name: "repeated parameter", query: q() + "&client_id=a&client_id=b", header: m.header, status: 400},
		{name: "unknown tenant", tenant: "nosuchtenant", query: q(), header: m.header, status: 404},
		{name: "POST", method: http.MethodPost, query: q(), header: m.header, status: 405},
	}
	for _, tc := range cases {
		tenant := tc.tenant
		if tenant == "" {
			tenant = e.contoso.ID
		}
		method := tc.method
		if method == "" {
			method = http.MethodGet
		}
		req, err := http.NewRequest(method, e.srv.URL+"/"+tenant+"/msi/token?"+tc.query, nil)
		must(t, err)
		if tc.header != "" {
			req.Header.Set("X-IDENTITY-HEADER", tc.header)
		}
		resp, doc := e.do(req)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d (%v)", tc.name, resp.StatusCode, tc.status, doc)
			continue
		}
		if tc.status == 200 {
			if doc["token_type"] != "Bearer" || doc["resource"] != "https://vault.azure.net" || doc["client_id"] != m.system.AppID {
				t.Errorf("%s: %v", tc.name, doc)
			}
			if s, ok := doc["expires_on"].(string); !ok || len(s) < 10 {
				t.Errorf("%s: expires_on %v, want an epoch string", tc.name, doc["expires_on"])
			}
			continue
		}
		msg, _ := doc["message"].(string)
		if doc["statusCode"] != float64(tc.status) || doc["correlationId"] == "" || !strings.Contains(msg, tc.contains) || len(doc) != 3 {
			t.Errorf("%s: body %v, want statusCode %d and a message with %q", tc.name, doc, tc.status, tc.contains)
		}
		if a := e.lastAudit(); a.Detail != "managed identity" || a.Result == "success" {
			t.Errorf("%s: audit %+v", tc.name, a)
		}
	}
}
