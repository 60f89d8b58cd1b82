package arm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/arm"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
)

// env is the real thing (testenv): a store, the directory, the token
// service and Resource Manager behind one TLS listener routed by host,
// reached by Azure's names through a dialer that sends every connection to
// it.
type env struct {
	t      *testing.T
	ctx    context.Context
	st     store.Store
	dir    *directory.Service
	srv    *httptest.Server
	client *http.Client
	base   *testenv.Env

	contoso, fabrikam *directory.TenantBootstrap
	// notified counts the calls of Config.Notify.
	notified *atomic.Int64
}

const (
	armBase   = "https://management.azure.com"
	loginBase = "https://login.microsoftonline.com"
)

func forEachStore(t *testing.T, fn func(t *testing.T, e *env)) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) { fn(t, newEnv(t, st)) })
}

// forEachStorePaged is forEachStore with lists paged at pageSize items.
func forEachStorePaged(t *testing.T, pageSize int, fn func(t *testing.T, e *env)) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) { fn(t, newPagedEnv(t, st, pageSize)) })
}

func newEnv(t *testing.T, st store.Store) *env { return newPagedEnv(t, st, 0) }

func newPagedEnv(t *testing.T, st store.Store, pageSize int) *env {
	t.Helper()
	ctx := context.Background()
	b := testenv.New(t, st, testenv.LoginHosts("login.microsoftonline.com"), testenv.LoginURL(loginBase))
	e := &env{t: t, ctx: ctx, st: st, dir: b.Dir, srv: b.Server, client: b.Client(), base: b, notified: new(atomic.Int64)}
	h := arm.New(arm.Config{Directory: e.dir, Store: st, RBAC: rbac.New(st, e.dir), Verifier: b.Verifier, Audit: b.Audit, Logger: b.Logger, PageSize: pageSize,
		TokenMinter: b.STS, Notify: func() { e.notified.Add(1) }})
	b.Route(func(r *http.Request) http.Handler {
		if strings.HasPrefix(r.Host, "management.") {
			return h
		}
		return nil
	})
	e.contoso, e.fabrikam = b.Tenants(t)
	return e
}

var must = testenv.Must

// tokenFor gets an app-only token from the real token endpoint.
func (e *env) tokenFor(tenantID, clientID, secret, scope string) string {
	e.t.Helper()
	return e.base.Token(e.t, tenantID, clientID, secret, scope)
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
// the api-version of the path's namespace is added.
func (e *env) call(token, method, path string, body any) response {
	e.t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return e.raw(token, method, path+sep+"api-version="+testenv.ARMAPIVersion(path), body)
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
