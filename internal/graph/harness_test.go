package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/graph"
	"github.com/tenantbridge/tenantbridge/internal/pki"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
)

// env is the real thing, wired as the server wires it (testenv): a store,
// the directory, signing keys, the token service and Graph behind one TLS
// listener that routes /v1.0/ to Graph and everything else to the token
// service. Tokens come from the real token endpoint.
type env struct {
	t     *testing.T
	ctx   context.Context
	st    store.Store
	dir   *directory.Service
	keys  *pki.KeySet
	audit *audit.Log
	srv   *httptest.Server
	base  *testenv.Env

	// Two tenants, each with its bootstrap administrator, whose client
	// secret gets tokens with Application.ReadWrite.All,
	// AppRoleAssignment.ReadWrite.All, Group.ReadWrite.All and
	// User.ReadWrite.All.
	contoso, fabrikam *directory.TenantBootstrap
}

// forEachStore runs a test on SQLite and on PostgreSQL (which storetest
// skips without TENANTBRIDGE_TEST_POSTGRES_DSN, and fails under CI).
func forEachStore(t *testing.T, fn func(t *testing.T, e *env)) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) { fn(t, newEnv(t, st)) })
}

func newEnv(t *testing.T, st store.Store) *env {
	t.Helper()
	ctx := context.Background()
	b := testenv.New(t, st)
	e := &env{t: t, ctx: ctx, st: st, dir: b.Dir, keys: b.Keys, audit: b.Audit, srv: b.Server, base: b}
	g := graph.New(graph.Config{Directory: e.dir, Verifier: b.Verifier, Audit: e.audit, Logger: b.Logger})
	b.Route(func(r *http.Request) http.Handler {
		if r.URL.Path == "/v1.0" || strings.HasPrefix(r.URL.Path, "/v1.0/") {
			return g
		}
		return nil
	})
	e.contoso, e.fabrikam = b.Tenants(t)
	return e
}

var must = testenv.Must

// tokenFor gets an app-only token for a resource from the real token
// endpoint (v2, client_credentials with a client secret).
func (e *env) tokenFor(tenantID, clientID, secret, scope string) string {
	e.t.Helper()
	return e.base.Token(e.t, tenantID, clientID, secret, scope)
}

// graphToken gets a Graph token.
func (e *env) graphToken(tenantID, clientID, secret string) string {
	return e.tokenFor(tenantID, clientID, secret, "https://graph.microsoft.com/.default")
}

// adminToken is a Graph token of a tenant's bootstrap administrator.
func (e *env) adminToken(tb *directory.TenantBootstrap) string {
	return e.graphToken(tb.Tenant.ID, tb.Admin.AppID, tb.AdminSecret.SecretText)
}

// client is a calling application of a tenant with exactly the Graph
// permissions it was given.
type client struct {
	app    *directory.Application
	sp     *directory.ServicePrincipal
	secret string
	token  string
}

// newClient registers an application in a tenant (through the directory:
// it is the test's setup, not what is tested), grants it Graph application
// permissions and gets it a Graph token.
func (e *env) newClient(tenantID, name string, perms ...string) client {
	e.t.Helper()
	app, err := e.dir.CreateApplication(e.ctx, tenantID, directory.Application{DisplayName: name})
	must(e.t, err)
	sp, err := e.dir.CreateServicePrincipal(e.ctx, tenantID, app.AppID)
	must(e.t, err)
	cred, err := e.dir.AddApplicationPassword(e.ctx, tenantID, app.ID, "test", time.Time{}, time.Time{})
	must(e.t, err)
	e.grantGraph(tenantID, sp.ID, perms...)
	return client{app: app, sp: sp, secret: cred.SecretText, token: e.graphToken(tenantID, app.AppID, cred.SecretText)}
}

// grantGraph assigns Graph application permissions to a principal.
func (e *env) grantGraph(tenantID, principalID string, perms ...string) {
	e.t.Helper()
	graphSP, err := e.dir.ServicePrincipalByAppID(e.ctx, tenantID, directory.GraphAppID)
	must(e.t, err)
	for _, p := range perms {
		found := false
		for _, r := range graphSP.AppRoles {
			if r.Value == p {
				_, err := e.dir.AssignAppRole(e.ctx, tenantID, principalID, graphSP.ID, r.ID)
				must(e.t, err)
				found = true
			}
		}
		if !found {
			e.t.Fatalf("Graph has no permission %s", p)
		}
	}
}

// response is a Graph answer, read whole.
type response struct {
	status int
	header http.Header
	raw    []byte
	doc    map[string]any
}

// call sends a request to Graph. body is marshalled to JSON unless it is
// a string (sent as it is) or nil.
func (e *env) call(token, method, path string, body any) response {
	e.t.Helper()
	return e.callWith(token, method, path, body, nil)
}

func (e *env) callWith(token, method, path string, body any, header http.Header) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		must(e.t, err)
		rd = bytes.NewReader(data)
	}
	u := path
	if !strings.HasPrefix(u, "https://") {
		u = e.srv.URL + path
	}
	req, err := http.NewRequest(method, u, rd)
	must(e.t, err)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.srv.Client().Do(req)
	must(e.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	must(e.t, err)
	r := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(raw) > 0 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		if err := json.Unmarshal(raw, &r.doc); err != nil {
			e.t.Fatalf("%s %s: body is not JSON: %v\n%s", method, path, err, raw)
		}
	}
	return r
}

// expect fails the test unless the response has the status (and, for
// errors, the Graph error code).
func (r response) expect(t testing.TB, status int, code ...string) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.raw)
	}
	if len(code) > 0 {
		if got := r.errorCode(); got != code[0] {
			t.Fatalf("error code = %q, want %q; body %s", got, code[0], r.raw)
		}
	}
	return r
}

func (r response) errorCode() string {
	e, _ := r.doc["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (r response) errorMessage() string {
	e, _ := r.doc["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

func (r response) str(key string) string {
	s, _ := r.doc[key].(string)
	return s
}

// values is the value array of a collection response.
func (r response) values() []map[string]any {
	arr, _ := r.doc["value"].([]any)
	out := make([]map[string]any, 0, len(arr))
	for _, v := range arr {
		m, _ := v.(map[string]any)
		out = append(out, m)
	}
	return out
}

// ids is the id of every item of a collection response.
func (r response) ids() []string {
	var out []string
	for _, v := range r.values() {
		id, _ := v["id"].(string)
		out = append(out, id)
	}
	return out
}

// audits lists the audit records involving a tenant.
func (e *env) audits(tenantID string) []store.AuditRecord {
	e.t.Helper()
	recs, err := e.audit.List(e.ctx, store.AuditQuery{TenantID: tenantID})
	must(e.t, err)
	return recs
}

// lastAudit is the newest audit record with the action.
func (e *env) lastAudit(tenantID, action string) store.AuditRecord {
	e.t.Helper()
	recs := e.audits(tenantID)
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Action == action {
			return recs[i]
		}
	}
	e.t.Fatalf("no audit record %s in %s", action, tenantID)
	return store.AuditRecord{}
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
