package sts_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/pki"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/sts"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
)

// env is a running token service over a real store (testenv), with two
// tenants:
//
//   - contoso, home of "provider", a multi-tenant app with a client secret,
//     granted Graph's Application.Read.All in contoso;
//   - fabrikam, which holds provider's service principal (as after admin
//     consent), granted Graph's User.Read.All and the Orders.Read role of
//     fabrikam's own "orders" API, which accepts v2 tokens.
type env struct {
	t        testing.TB
	ctx      context.Context
	st       store.Store
	dir      *directory.Service
	keys     *pki.KeySet
	audit    *audit.Log
	svc      *sts.Service
	srv      *httptest.Server
	verifier *sts.Verifier
	kek      []byte // seals authorization codes

	contoso, fabrikam store.Tenant
	provider          *directory.Application
	providerSecret    string
	providerSPHome    *directory.ServicePrincipal // in contoso
	providerSPOther   *directory.ServicePrincipal // in fabrikam
	orders            *directory.Application      // fabrikam's v2 API
	ordersSP          *directory.ServicePrincipal
}

const ordersURI = "api://fabrikam.onmicrosoft.com/orders"

func newEnv(t testing.TB, st store.Store) *env {
	t.Helper()
	ctx := context.Background()
	b := testenv.New(t, st, testenv.LoginHosts("127.0.0.1", "login.tenantbridge.test"), testenv.Federation())
	e := &env{t: t, ctx: ctx, st: st, dir: b.Dir, keys: b.Keys, audit: b.Audit, svc: b.STS, srv: b.Server, verifier: b.Verifier, kek: b.KEK}

	contoso, err := e.dir.CreateTenant(ctx, "contoso")
	must(t, err)
	fabrikam, err := e.dir.CreateTenant(ctx, "fabrikam")
	must(t, err)
	e.contoso, e.fabrikam = contoso.Tenant, fabrikam.Tenant

	e.provider, err = e.dir.CreateApplication(ctx, e.contoso.ID, directory.Application{DisplayName: "provider", SignInAudience: directory.AudienceMultipleOrgs})
	must(t, err)
	cred, err := e.dir.AddApplicationPassword(ctx, e.contoso.ID, e.provider.ID, "test", time.Time{}, time.Time{})
	must(t, err)
	e.providerSecret = cred.SecretText
	e.providerSPHome, err = e.dir.CreateServicePrincipal(ctx, e.contoso.ID, e.provider.AppID)
	must(t, err)
	e.providerSPOther, err = e.dir.CreateServicePrincipal(ctx, e.fabrikam.ID, e.provider.AppID)
	must(t, err)
	e.grantGraph(e.contoso.ID, e.providerSPHome.ID, directory.PermApplicationReadAll)
	e.grantGraph(e.fabrikam.ID, e.providerSPOther.ID, directory.PermUserReadAll)

	two := 2
	e.orders, err = e.dir.CreateApplication(ctx, e.fabrikam.ID, directory.Application{
		DisplayName: "orders", IdentifierURIs: []string{ordersURI}, AccessTokenAcceptedVersion: &two,
		AppRoles: []directory.AppRole{
			{ID: uuid.NewString(), Value: "Orders.Read", AllowedMemberTypes: []string{"Application"}, IsEnabled: true},
			{ID: uuid.NewString(), Value: "Orders.Write", AllowedMemberTypes: []string{"Application"}, IsEnabled: true},
		},
	})
	must(t, err)
	e.ordersSP, err = e.dir.CreateServicePrincipal(ctx, e.fabrikam.ID, e.orders.AppID)
	must(t, err)
	_, err = e.dir.AssignAppRole(ctx, e.fabrikam.ID, e.providerSPOther.ID, e.ordersSP.ID, e.orders.AppRoles[0].ID)
	must(t, err)
	return e
}

// grantGraph grants a principal a Microsoft Graph application permission.
func (e *env) grantGraph(tenantID, principalID, permission string) {
	e.t.Helper()
	graph, err := e.dir.ServicePrincipalByAppID(e.ctx, tenantID, directory.GraphAppID)
	must(e.t, err)
	for _, r := range graph.AppRoles {
		if r.Value == permission {
			_, err := e.dir.AssignAppRole(e.ctx, tenantID, principalID, graph.ID, r.ID)
			must(e.t, err)
			return
		}
	}
	e.t.Fatalf("Graph has no permission %s", permission)
}

// tokenURL is the v2 (or v1) token endpoint of a tenant.
func (e *env) tokenURL(tenant string, v2 bool) string {
	if v2 {
		return e.srv.URL + "/" + tenant + "/oauth2/v2.0/token"
	}
	return e.srv.URL + "/" + tenant + "/oauth2/token"
}

// post sends a form to a URL and returns the status and decoded JSON body.
func (e *env) post(u string, form url.Values, header http.Header) (*http.Response, map[string]any) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	must(e.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	for k, v := range header {
		req.Header[k] = v
	}
	return e.do(req)
}

func (e *env) do(req *http.Request) (*http.Response, map[string]any) {
	e.t.Helper()
	resp, err := e.srv.Client().Do(req)
	must(e.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	must(e.t, err)
	var doc map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &doc); err != nil {
			e.t.Fatalf("%s %s: body is not JSON: %v\n%s", req.Method, req.URL, err, body)
		}
	}
	return resp, doc
}

// clientCredentials asks for a token with the provider's secret in the body.
func (e *env) clientCredentials(tenant string, v2 bool, resourceOrScope string) (int, map[string]any) {
	e.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {e.provider.AppID}, "client_secret": {e.providerSecret}}
	if v2 {
		form.Set("scope", resourceOrScope)
	} else {
		form.Set("resource", resourceOrScope)
	}
	resp, doc := e.post(e.tokenURL(tenant, v2), form, nil)
	return resp.StatusCode, doc
}

// lastAudit returns the newest audit record.
func (e *env) lastAudit() store.AuditRecord {
	e.t.Helper()
	recs, err := e.audit.List(e.ctx, store.AuditQuery{})
	must(e.t, err)
	if len(recs) == 0 {
		e.t.Fatal("no audit records")
	}
	return recs[len(recs)-1]
}

// decodeJWT returns a compact JWT's header and payload as maps, without verifying it.
func decodeJWT(t testing.TB, raw string) (header, payload map[string]any) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	for i, dst := range []*map[string]any{&header, &payload} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		must(t, err)
		must(t, json.Unmarshal(b, dst))
	}
	return header, payload
}

var must = testenv.Must
