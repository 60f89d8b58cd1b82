package arm_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/arm/armtest"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
)

// env is armtest's environment (the real front door with the real
// providers) under the names this package's tests use.
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

	x *armtest.Env
}

const (
	armBase   = armtest.ARMBase
	loginBase = armtest.LoginBase
)

func envOf(x *armtest.Env) *env {
	return &env{t: x.T, ctx: x.Ctx, st: x.St, dir: x.Dir, srv: x.Srv, client: x.Client, base: x.Base,
		contoso: x.Contoso, fabrikam: x.Fabrikam, notified: x.Notified, x: x}
}

func forEachStore(t *testing.T, fn func(t *testing.T, e *env)) {
	armtest.ForEachStore(t, func(t *testing.T, x *armtest.Env) { fn(t, envOf(x)) })
}

// forEachStorePaged is forEachStore with lists paged at pageSize items.
func forEachStorePaged(t *testing.T, pageSize int, fn func(t *testing.T, e *env)) {
	armtest.ForEachStoreWith(t, armtest.Options{PageSize: pageSize}, func(t *testing.T, x *armtest.Env) { fn(t, envOf(x)) })
}

// forEachStoreKEK is forEachStore with Service Bus holding a KEK, so that
// its authorization rules are served.
func forEachStoreKEK(t *testing.T, fn func(t *testing.T, e *env)) {
	armtest.ForEachStoreWith(t, armtest.Options{KEK: true}, func(t *testing.T, x *armtest.Env) { fn(t, envOf(x)) })
}

func newEnv(t *testing.T, st store.Store) *env { return envOf(armtest.New(t, st, armtest.Options{})) }

var must = testenv.Must

var (
	vaultBody = armtest.VaultBody
	nsBody    = armtest.NamespaceBody
)

// tokenFor gets an app-only token from the real token endpoint.
func (e *env) tokenFor(tenantID, clientID, secret, scope string) string {
	e.t.Helper()
	return e.x.TokenFor(tenantID, clientID, secret, scope)
}

func (e *env) armToken(tenantID, clientID, secret string) string {
	return e.x.ARMToken(tenantID, clientID, secret)
}

func (e *env) adminToken(tb *directory.TenantBootstrap) string { return e.x.AdminToken(tb) }

// app is a registered application with a service principal and a secret.
type app struct {
	app    *directory.Application
	sp     *directory.ServicePrincipal
	secret string
}

func (e *env) newApp(tenantID, name string, multiTenant bool) app {
	e.t.Helper()
	a := e.x.NewApp(tenantID, name, multiTenant)
	return app{app: a.App, sp: a.SP, secret: a.Secret}
}

// response is an ARM answer, read whole.
type response struct {
	status int
	header http.Header
	raw    []byte
	doc    map[string]any
}

func responseOf(r armtest.Response) response {
	return response{status: r.Status, header: r.Header, raw: r.Raw, doc: r.Doc}
}

func (r response) code() string    { return armtest.Response{Doc: r.doc}.Code() }
func (r response) message() string { return armtest.Response{Doc: r.doc}.Message() }

// call sends a request to ARM; path may hold its own query, to which
// the api-version of the path's namespace is added.
func (e *env) call(token, method, path string, body any) response {
	e.t.Helper()
	return responseOf(e.x.Call(token, method, path, body))
}

func (e *env) raw(token, method, pathAndQuery string, body any) response {
	e.t.Helper()
	return responseOf(e.x.Raw(token, method, pathAndQuery, body))
}

func (e *env) want(r response, status int, code string) {
	e.t.Helper()
	e.x.Want(armtest.Response{Status: r.status, Raw: r.raw, Doc: r.doc}, status, code)
}

func storetestSQLite(t *testing.T) store.Store { return storetest.SQLite(t) }
