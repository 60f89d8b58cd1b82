package servicebus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/arm"
	"github.com/tenantbridge/tenantbridge/internal/arm/armtest"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/servicebus"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
)

// busAuthorizer is the test's copy of the server's adapter: the real RBAC
// engine deciding the data action at the queue's scope.
type busAuthorizer struct{ e *rbac.Engine }

func (a busAuthorizer) Authorize(ctx context.Context, acc servicebus.Access) (bool, string, error) {
	d, err := a.e.Decide(ctx, rbac.Request{PrincipalID: acc.PrincipalID, PrincipalTenantID: acc.PrincipalTenantID,
		TenantID: acc.TenantID, Action: acc.DataAction, DataAction: true, Scope: acc.Scope})
	if err != nil {
		return false, "", err
	}
	return d.Allowed, d.Because.String(), nil
}

// env is the real thing: a store, the directory, the token service,
// Resource Manager (which creates namespaces and queues) and the messaging
// data plane behind one TLS listener, routed by host name. The broker's
// clock runs offset from the wall clock by what a test advances, so that
// lock expiry, TTL and scheduled messages are tested without sleeping.
type env struct {
	t      *testing.T
	ctx    context.Context
	st     store.Store
	dir    *directory.Service
	client *http.Client
	base   *testenv.Env
	offset atomic.Int64 // nanoseconds added to the broker's clock
	// hungUp, when set, cancels each data-plane request's context before
	// the handler sees it, as net/http does when the client hangs up.
	hungUp atomic.Bool

	contoso, fabrikam *directory.TenantBootstrap
}

func forEachStore(t *testing.T, fn func(t *testing.T, e *env)) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) { fn(t, newEnv(t, st)) })
}

func newEnv(t *testing.T, st store.Store) *env {
	t.Helper()
	b := testenv.New(t, st, testenv.LoginHosts("login.microsoftonline.com"), testenv.LoginURL("https://login.microsoftonline.com"))
	e := &env{t: t, ctx: context.Background(), st: st, dir: b.Dir, client: b.Client(), base: b}
	engine := rbac.New(st, e.dir)
	resources := arm.New(arm.Config{Directory: e.dir, Store: st, RBAC: engine, Verifier: b.Verifier, Audit: b.Audit, Logger: b.Logger,
		Now: e.now, Providers: armtest.Providers(nil)})
	broker := servicebus.NewBroker(st, e.now, b.Logger)
	t.Cleanup(broker.Close)
	bus := servicebus.New(servicebus.Config{Store: st, Broker: broker, Verifier: b.Verifier, Authorizer: busAuthorizer{engine},
		Limits: servicebus.QueueLimits, Audit: b.Audit, Logger: b.Logger})
	b.Route(func(r *http.Request) http.Handler {
		switch {
		case strings.HasPrefix(r.Host, "management."):
			return resources
		case strings.Contains(r.Host, ".servicebus.") && e.hungUp.Load():
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx, cancel := context.WithCancel(r.Context())
				cancel()
				bus.ServeHTTP(w, r.WithContext(ctx))
			})
		case strings.Contains(r.Host, ".servicebus."):
			return bus
		}
		return nil
	})
	e.contoso, e.fabrikam = b.Tenants(t)
	return e
}

func (e *env) now() time.Time { return time.Now().Add(time.Duration(e.offset.Load())) }

// advance moves the broker's clock forward.
func (e *env) advance(d time.Duration) { e.offset.Add(int64(d)) }

var must = testenv.Must

// app is a registered application with a service principal and a secret.
type app struct{ tenantID, appID, secret, spID string }

func (e *env) newApp(tenantID, name string) app {
	e.t.Helper()
	a, err := e.dir.CreateApplication(e.ctx, tenantID, directory.Application{DisplayName: name, SignInAudience: directory.AudienceMultipleOrgs})
	must(e.t, err)
	sp, err := e.dir.CreateServicePrincipal(e.ctx, tenantID, a.AppID)
	must(e.t, err)
	cred, err := e.dir.AddApplicationPassword(e.ctx, tenantID, a.ID, "test", time.Time{}, time.Time{})
	must(e.t, err)
	return app{tenantID: tenantID, appID: a.AppID, secret: cred.SecretText, spID: sp.ID}
}

// busToken is a token of a for Service Bus, issued in tenantID (its home
// or a tenant it is provisioned into).
func (e *env) busToken(tenantID string, a app) string {
	return e.base.Token(e.t, tenantID, a.appID, a.secret, servicebus.Resource+"/.default")
}

func (e *env) adminARMToken(tb *directory.TenantBootstrap) string {
	return e.base.Token(e.t, tb.Tenant.ID, tb.Admin.AppID, tb.AdminSecret.SecretText, "https://management.azure.com/.default")
}

// response is a data-plane or ARM answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(token, method, url string, header http.Header, body []byte) response {
	e.t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	must(e.t, err)
	for k, vs := range header {
		req.Header[k] = vs
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.client.Do(req)
	must(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(e.t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// namespace is a namespace and its queues, created through Resource
// Manager by the tenant's administrator.
type namespace struct {
	tenant *directory.TenantBootstrap
	name   string
	id     string // resource id
}

func (e *env) newNamespace(tb *directory.TenantBootstrap, name string) namespace {
	e.t.Helper()
	tok := e.adminARMToken(tb)
	rg := "/subscriptions/" + tb.Tenant.SubscriptionID + "/resourceGroups/messaging"
	e.arm(tok, http.MethodPut, rg, `{"location":"westeurope"}`)
	id := rg + "/providers/Microsoft.ServiceBus/namespaces/" + name
	e.arm(tok, http.MethodPut, id, `{"location":"westeurope"}`)
	return namespace{tenant: tb, name: name, id: id}
}

// queue creates a queue with the given ARM properties (JSON object body).
func (e *env) queue(ns namespace, name, props string) string {
	e.t.Helper()
	if props == "" {
		props = "{}"
	}
	id := ns.id + "/queues/" + name
	e.arm(e.adminARMToken(ns.tenant), http.MethodPut, id, `{"properties":`+props+`}`)
	return id
}

func (e *env) arm(token, method, id, body string) response {
	e.t.Helper()
	r := e.do(token, method, "https://management.azure.com"+id+"?api-version="+testenv.ARMAPIVersion(id),
		http.Header{"Content-Type": {"application/json"}}, []byte(body))
	if r.status >= 300 {
		e.t.Fatalf("%s %s: %d %s", method, id, r.status, r.body)
	}
	return r
}

// assign gives a principal a built-in role at a scope of tenantID.
func (e *env) assign(tenantID, principal, role, scope string) {
	e.t.Helper()
	must(e.t, e.st.CreateRoleAssignment(e.ctx, store.RoleAssignment{TenantID: tenantID, ID: uuid.NewString(), Scope: scope,
		RoleDefinitionID: role, PrincipalID: principal, PrincipalType: store.PrincipalServicePrincipal}))
}

// url is a data-plane URL of the namespace.
func (ns namespace) url(path string) string {
	return "https://" + ns.name + ".servicebus.windows.net/" + strings.TrimPrefix(path, "/")
}

// client is a principal talking to one namespace.
type client struct {
	e     *env
	ns    namespace
	token string
}

func (e *env) as(ns namespace, token string) client { return client{e: e, ns: ns, token: token} }

func (c client) send(queue, body string, header http.Header) response {
	c.e.t.Helper()
	return c.e.do(c.token, http.MethodPost, c.ns.url(queue+"/messages"), header, []byte(body))
}

func (c client) mustSend(queue, body string, bp map[string]any) {
	c.e.t.Helper()
	h := http.Header{}
	if bp != nil {
		b, _ := json.Marshal(bp)
		h.Set("BrokerProperties", string(b))
	}
	if r := c.send(queue, body, h); r.status != http.StatusCreated {
		c.e.t.Fatalf("send to %s: %d %s", queue, r.status, r.body)
	}
}

// lock peek-locks (POST head); receive receives and deletes (DELETE head).
func (c client) lock(path string, timeout int) response {
	c.e.t.Helper()
	return c.e.do(c.token, http.MethodPost, c.ns.url(path+"/messages/head?timeout="+strconv.Itoa(timeout)), nil, nil)
}

func (c client) receive(path string, timeout int) response {
	c.e.t.Helper()
	return c.e.do(c.token, http.MethodDelete, c.ns.url(path+"/messages/head?timeout="+strconv.Itoa(timeout)), nil, nil)
}

// settle sends method to a locked message's Location.
func (c client) settle(method string, locked response) response {
	c.e.t.Helper()
	loc := locked.header.Get("Location")
	if loc == "" {
		c.e.t.Fatalf("no Location in %d %v", locked.status, locked.header)
	}
	return c.e.do(c.token, method, loc, nil, nil)
}

// props decodes a response's BrokerProperties header.
func props(t *testing.T, r response) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.header.Get("BrokerProperties")), &m); err != nil {
		t.Fatalf("BrokerProperties %q: %v", r.header.Get("BrokerProperties"), err)
	}
	return m
}

// detail is the Detail text of a Service Bus error body.
func detail(t *testing.T, r response) string {
	t.Helper()
	var doc struct {
		Code   int    `xml:"Code"`
		Detail string `xml:"Detail"`
	}
	if err := xml.Unmarshal(r.body, &doc); err != nil || doc.Code != r.status {
		t.Fatalf("error body %q (status %d): %v", r.body, r.status, err)
	}
	return doc.Detail
}
