package arm_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/arm"
	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/pki"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/sts"
)

// env is the real thing: a store, the directory, the token service and
// Resource Manager behind one TLS listener routed by host, reached by
// Azure's names through a dialer that sends every connection to it.
type env struct {
	t      *testing.T
	ctx    context.Context
	st     store.Store
	dir    *directory.Service
	srv    *httptest.Server
	client *http.Client

	contoso, fabrikam *directory.TenantBootstrap
}

const (
	armBase   = "https://management.azure.com"
	loginBase = "https://login.microsoftonline.com"
)

func forEachStore(t *testing.T, fn func(t *testing.T, e *env)) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) { fn(t, newEnv(t, st)) })
}

func newEnv(t *testing.T, st store.Store) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, ctx: ctx, st: st}
	var err error
	e.dir, err = directory.New(st, randomKey(t), randomKey(t))
	must(t, err)
	must(t, e.dir.EnsureFirstParty(ctx))
	keys, err := pki.LoadOrCreateKeySet(t.TempDir())
	must(t, err)
	logger := slog.New(slog.DiscardHandler)
	log := audit.New(st, logger)
	svc := sts.New(sts.Config{Directory: e.dir, Keys: keys, Audit: log, Logger: logger,
		IsLoginHost: func(h string) bool { return h == "login.microsoftonline.com" }})
	h := arm.New(arm.Config{Directory: e.dir, Store: st, RBAC: rbac.New(st, e.dir), Verifier: svc.Verifier(), Audit: log, Logger: logger})

	e.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := httpx.WithInfo(r.Context(), httpx.Info{RequestID: uuid.NewString(), ClientAddr: r.RemoteAddr, BaseURL: "https://" + r.Host})
		r = r.WithContext(ctx)
		if strings.HasPrefix(r.Host, "management.") {
			h.ServeHTTP(w, r)
			return
		}
		svc.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	base := e.srv.Client().Transport.(*http.Transport)
	addr := e.srv.Listener.Addr().String()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	e.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		// httptest's certificate is for example.com; the Host header
		// still says which service is meant.
		TLSClientConfig: &tls.Config{RootCAs: base.TLSClientConfig.RootCAs, ServerName: "example.com"},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
	}}

	e.contoso, err = e.dir.CreateTenant(ctx, "contoso")
	must(t, err)
	e.fabrikam, err = e.dir.CreateTenant(ctx, "fabrikam")
	must(t, err)
	return e
}

func randomKey(t *testing.T) []byte {
	k := make([]byte, 32)
	_, err := rand.Read(k)
	must(t, err)
	return k
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// tokenFor gets an app-only token from the real token endpoint.
func (e *env) tokenFor(tenantID, clientID, secret, scope string) string {
	e.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "scope": {scope}}
	resp, err := e.client.Post(loginBase+"/"+tenantID+"/oauth2/v2.0/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	must(e.t, err)
	defer resp.Body.Close()
	var doc map[string]any
	must(e.t, json.NewDecoder(resp.Body).Decode(&doc))
	tok, _ := doc["access_token"].(string)
	if resp.StatusCode != 200 || tok == "" {
		e.t.Fatalf("token for %s in %s: %d %v", clientID, tenantID, resp.StatusCode, doc)
	}
	return tok
}

func (e *env) armToken(tenantID, clientID, secret string) string {
	return e.tokenFor(tenantID, clientID, secret, "https://management.azure.com/.default")
}

func (e *env) adminToken(tb *directory.TenantBootstrap) string {
	return e.armToken(tb.Tenant.ID, tb.Admin.AppID, tb.AdminSecret.SecretText)
}

// app is a registered application with a service principal and a secret.
type app struct {
	app    *directory.Application
	sp     *directory.ServicePrincipal
	secret string
}

func (e *env) newApp(tenantID, name string, multiTenant bool) app {
	e.t.Helper()
	a := directory.Application{DisplayName: name}
	if multiTenant {
		a.SignInAudience = directory.AudienceMultipleOrgs
	}
	created, err := e.dir.CreateApplication(e.ctx, tenantID, a)
	must(e.t, err)
	sp, err := e.dir.CreateServicePrincipal(e.ctx, tenantID, created.AppID)
	must(e.t, err)
	cred, err := e.dir.AddApplicationPassword(e.ctx, tenantID, created.ID, "test", time.Time{}, time.Time{})
	must(e.t, err)
	return app{app: created, sp: sp, secret: cred.SecretText}
}

// response is an ARM answer, read whole.
type response struct {
	status int
	header http.Header
	raw    []byte
	doc    map[string]any
}

func (r response) code() string {
	errObj, _ := r.doc["error"].(map[string]any)
	c, _ := errObj["code"].(string)
	return c
}

func (r response) message() string {
	errObj, _ := r.doc["error"].(map[string]any)
	c, _ := errObj["message"].(string)
	return c
}

// call sends a request to ARM; path may hold its own query, to which
// api-version is added unless noVersion.
func (e *env) call(token, method, path string, body any) response {
	e.t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return e.raw(token, method, path+sep+"api-version=2022-04-01", body)
}

func (e *env) raw(token, method, pathAndQuery string, body any) response {
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
	req, err := http.NewRequest(method, armBase+pathAndQuery, rd)
	must(e.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.client.Do(req)
	must(e.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	must(e.t, err)
	out := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &out.doc); err != nil {
			e.t.Fatalf("%s %s: body is not a JSON object: %s", method, pathAndQuery, raw)
		}
	}
	return out
}

func (e *env) want(r response, status int, code string) {
	e.t.Helper()
	if r.status != status || (code != "" && r.code() != code) {
		e.t.Fatalf("got %d %s, want %d %s: %s", r.status, r.code(), status, code, r.raw)
	}
}

func storetestSQLite(t *testing.T) store.Store { return storetest.SQLite(t) }
