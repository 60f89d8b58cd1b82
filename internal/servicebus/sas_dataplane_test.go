package servicebus_test

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/arm"
	"github.com/tenantbridge/tenantbridge/internal/arm/armtest"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/servicebus"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
)

// forEachStoreSAS is forEachStore with Resource Manager and the data
// plane sharing a KEK, so that authorization rules are served and
// SharedAccessSignature tokens accepted.
func forEachStoreSAS(t *testing.T, fn func(t *testing.T, e *env)) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		b := testenv.New(t, st, testenv.LoginHosts("login.microsoftonline.com"), testenv.LoginURL("https://login.microsoftonline.com"))
		e := &env{t: t, ctx: t.Context(), st: st, dir: b.Dir, client: b.Client(), base: b}
		kek := make([]byte, 32)
		_, _ = rand.Read(kek)
		engine := rbac.New(st, e.dir)
		resources := arm.New(arm.Config{Directory: e.dir, Store: st, RBAC: engine, Verifier: b.Verifier, Audit: b.Audit, Logger: b.Logger,
			Now: e.now, Providers: armtest.Providers(kek)})
		broker := servicebus.NewBroker(st, e.now, b.Logger)
		t.Cleanup(broker.Close)
		bus := servicebus.New(servicebus.Config{Store: st, Broker: broker, Verifier: b.Verifier, Authorizer: busAuthorizer{engine},
			Limits: servicebus.QueueLimits, Audit: b.Audit, Logger: b.Logger, KEK: kek})
		b.Route(func(r *http.Request) http.Handler {
			switch {
			case strings.HasPrefix(r.Host, "management."):
				return resources
			case strings.Contains(r.Host, ".servicebus."):
				return bus
			}
			return nil
		})
		e.contoso, e.fabrikam = b.Tenants(t)
		fn(t, e)
	})
}

// ruleKeys are a rule's keys as listKeys answers them.
type ruleKeys struct {
	PrimaryKey, SecondaryKey, KeyName, PrimaryConnectionString string
}

func (e *env) listKeys(ns namespace, rulePath string) ruleKeys {
	e.t.Helper()
	r := e.arm(e.adminARMToken(ns.tenant), http.MethodPost, ns.id+rulePath+"/listKeys", "")
	var k ruleKeys
	must(e.t, json.Unmarshal(r.body, &k))
	return k
}

// sas sends a data-plane request with a SharedAccessSignature header.
func (e *env) sas(auth, method, url string, body string) response {
	e.t.Helper()
	return e.do("", method, url, http.Header{"Authorization": {auth}}, []byte(body))
}

func wantSAS401(t *testing.T, r response, want string) {
	t.Helper()
	if r.status != http.StatusUnauthorized {
		t.Fatalf("got %d %s, want 401 %q", r.status, r.body, want)
	}
	if d := detail(t, r); !strings.Contains(d, want) {
		t.Errorf("detail %q, want it to contain %q", d, want)
	}
}

func TestSASNamespaceRule(t *testing.T) {
	forEachStoreSAS(t, func(t *testing.T, e *env) {
		ns := e.newNamespace(e.contoso, "sas-ns-one")
		e.queue(ns, "orders", "")
		e.queue(ns, "other", "")
		k := e.listKeys(ns, "/authorizationRules/RootManageSharedAccessKey")
		exp := time.Now().Add(time.Hour)

		// sb:// entity URI, as the SDKs sign; the namespace rule reaches every queue.
		tok := servicebus.SignSAS("sb://sas-ns-one.servicebus.windows.net/orders", "RootManageSharedAccessKey", []byte(k.PrimaryKey), exp)
		if r := e.sas(tok, http.MethodPost, ns.url("orders/messages"), "hello"); r.status != http.StatusCreated {
			t.Fatalf("send: %d %s", r.status, r.body)
		}
		locked := e.sas(tok, http.MethodPost, ns.url("orders/messages/head?timeout=1"), "")
		if locked.status != http.StatusCreated || string(locked.body) != "hello" {
			t.Fatalf("peek-lock: %d %s", locked.status, locked.body)
		}
		if r := e.sas(tok, http.MethodDelete, locked.header.Get("Location"), ""); r.status != http.StatusOK {
			t.Fatalf("complete: %d %s", r.status, r.body)
		}
		// https:// namespace URI signed by the secondary key, on another queue.
		tok2 := servicebus.SignSAS("https://sas-ns-one.servicebus.windows.net/", "RootManageSharedAccessKey", []byte(k.SecondaryKey), exp)
		if r := e.sas(tok2, http.MethodPost, ns.url("other/messages"), "x"); r.status != http.StatusCreated {
			t.Fatalf("send with secondary: %d %s", r.status, r.body)
		}
		if r := e.sas(tok2, http.MethodDelete, ns.url("other/messages/head?timeout=1"), ""); r.status != http.StatusOK || string(r.body) != "x" {
			t.Fatalf("receive with secondary: %d %s", r.status, r.body)
		}

		// Scope: a token for "other" does not reach "orders", nor "orders2".
		e.queue(ns, "orders2", "")
		wantSAS401(t, e.sas(servicebus.SignSAS("sb://sas-ns-one.servicebus.windows.net/other", "RootManageSharedAccessKey", []byte(k.PrimaryKey), exp),
			http.MethodPost, ns.url("orders/messages"), "x"), "InvalidAudience")
		wantSAS401(t, e.sas(tok, http.MethodPost, ns.url("orders2/messages"), "x"), "InvalidAudience")
		// Another namespace's host.
		ns2 := e.newNamespace(e.contoso, "sas-ns-two")
		e.queue(ns2, "orders", "")
		wantSAS401(t, e.sas(tok, http.MethodPost, ns2.url("orders/messages"), "x"), "InvalidSignature")
		// Expired.
		wantSAS401(t, e.sas(servicebus.SignSAS("sb://sas-ns-one.servicebus.windows.net/orders", "RootManageSharedAccessKey", []byte(k.PrimaryKey), time.Now().Add(-time.Minute)),
			http.MethodPost, ns.url("orders/messages"), "x"), "ExpiredToken")
		// Tampered: a well-formed signature made with a key that is not the
		// rule's. (Changing one character of the URL-encoded signature can
		// hit a %XX escape and make the token malformed instead.)
		wantSAS401(t, e.sas(servicebus.SignSAS("sb://sas-ns-one.servicebus.windows.net/orders", "RootManageSharedAccessKey", []byte("not the rule's key"), exp),
			http.MethodPost, ns.url("orders/messages"), "x"), "InvalidSignature")
		// Tampered: expiry pushed out.
		wantSAS401(t, e.sas(strings.Replace(tok, "&se=", "&se=9", 1), http.MethodPost, ns.url("orders/messages"), "x"), "InvalidSignature")
		// Unknown rule, and a key from another rule.
		wantSAS401(t, e.sas(servicebus.SignSAS("sb://sas-ns-one.servicebus.windows.net/orders", "NoSuchRule", []byte(k.PrimaryKey), exp),
			http.MethodPost, ns.url("orders/messages"), "x"), "InvalidSignature")
		// Malformed.
		wantSAS401(t, e.sas("SharedAccessSignature sr=x&sig=y", http.MethodPost, ns.url("orders/messages"), "x"), "MalformedToken")

		// Every refusal is audited.
		recs, err := e.st.ListAudit(e.ctx, store.AuditQuery{TenantID: e.contoso.Tenant.ID})
		must(t, err)
		n := 0
		for _, rec := range recs {
			if strings.HasPrefix(rec.Action, "servicebus.") && rec.Result == "Unauthorized" {
				n++
			}
		}
		if n < 7 {
			t.Errorf("%d audited refusals, want at least 7", n)
		}
	})
}

func TestSASQueueRuleAndRights(t *testing.T) {
	forEachStoreSAS(t, func(t *testing.T, e *env) {
		ns := e.newNamespace(e.contoso, "sas-ns-q")
		e.queue(ns, "commands", "")
		e.queue(ns, "status", "")
		admin := e.adminARMToken(ns.tenant)
		e.arm(admin, http.MethodPut, ns.id+"/queues/commands/authorizationRules/worker", `{"properties":{"rights":["Listen","Send"]}}`)
		e.arm(admin, http.MethodPut, ns.id+"/authorizationRules/sendonly", `{"properties":{"rights":["Send"]}}`)
		e.arm(admin, http.MethodPut, ns.id+"/authorizationRules/listenonly", `{"properties":{"rights":["Listen"]}}`)
		exp := time.Now().Add(time.Hour)

		// A queue rule works on its queue, the token's sr being the entity.
		wk := e.listKeys(ns, "/queues/commands/authorizationRules/worker")
		if !strings.HasSuffix(wk.PrimaryConnectionString, ";EntityPath=commands") {
			t.Errorf("connection string %q", wk.PrimaryConnectionString)
		}
		tok := servicebus.SignSAS("sb://sas-ns-q.servicebus.windows.net/commands", "worker", []byte(wk.PrimaryKey), exp)
		if r := e.sas(tok, http.MethodPost, ns.url("commands/messages"), "cmd"); r.status != http.StatusCreated {
			t.Fatalf("send: %d %s", r.status, r.body)
		}
		if r := e.sas(tok, http.MethodDelete, ns.url("commands/messages/head?timeout=1"), ""); r.status != http.StatusOK || string(r.body) != "cmd" {
			t.Fatalf("receive: %d %s", r.status, r.body)
		}
		// ...and on no other queue, even with a token whose sr covers the namespace.
		wide := servicebus.SignSAS("sb://sas-ns-q.servicebus.windows.net/", "worker", []byte(wk.PrimaryKey), exp)
		if r := e.sas(wide, http.MethodPost, ns.url("commands/messages"), "cmd"); r.status != http.StatusCreated {
			t.Fatalf("send with namespace sr: %d %s", r.status, r.body)
		}
		wantSAS401(t, e.sas(wide, http.MethodPost, ns.url("status/messages"), "x"), "InvalidSignature")
		wantSAS401(t, e.sas(wide, http.MethodDelete, ns.url("status/messages/head?timeout=1"), ""), "InvalidSignature")

		// A Send-only rule sends and cannot receive, peek or settle.
		sk := e.listKeys(ns, "/authorizationRules/sendonly")
		stok := servicebus.SignSAS("sb://sas-ns-q.servicebus.windows.net/status", "sendonly", []byte(sk.PrimaryKey), exp)
		if r := e.sas(stok, http.MethodPost, ns.url("status/messages"), "st"); r.status != http.StatusCreated {
			t.Fatalf("send-only send: %d %s", r.status, r.body)
		}
		wantSAS401(t, e.sas(stok, http.MethodDelete, ns.url("status/messages/head?timeout=1"), ""), "'Listen' claim(s) are required")
		wantSAS401(t, e.sas(stok, http.MethodPost, ns.url("status/messages/head?timeout=1"), ""), "'Listen' claim(s) are required")
		wantSAS401(t, e.sas(stok, http.MethodGet, ns.url("status/messages"), ""), "'Listen' claim(s) are required")
		// A Listen-only rule receives and cannot send.
		lk := e.listKeys(ns, "/authorizationRules/listenonly")
		ltok := servicebus.SignSAS("sb://sas-ns-q.servicebus.windows.net/status", "listenonly", []byte(lk.PrimaryKey), exp)
		wantSAS401(t, e.sas(ltok, http.MethodPost, ns.url("status/messages"), "x"), "'Send' claim(s) are required")
		if r := e.sas(ltok, http.MethodDelete, ns.url("status/messages/head?timeout=1"), ""); r.status != http.StatusOK || string(r.body) != "st" {
			t.Fatalf("listen-only receive: %d %s", r.status, r.body)
		}
		// Deleting the rule takes effect on the next request.
		e.arm(admin, http.MethodDelete, ns.id+"/authorizationRules/listenonly", "")
		wantSAS401(t, e.sas(ltok, http.MethodDelete, ns.url("status/messages/head?timeout=1"), ""), "InvalidSignature")
	})
}

func TestSASRegeneratedKey(t *testing.T) {
	forEachStoreSAS(t, func(t *testing.T, e *env) {
		ns := e.newNamespace(e.contoso, "sas-ns-regen")
		e.queue(ns, "orders", "")
		admin := e.adminARMToken(ns.tenant)
		rule := "/authorizationRules/RootManageSharedAccessKey"
		old := e.listKeys(ns, rule)
		exp := time.Now().Add(time.Hour)
		oldTok := servicebus.SignSAS("sb://sas-ns-regen.servicebus.windows.net/orders", "RootManageSharedAccessKey", []byte(old.PrimaryKey), exp)
		secTok := servicebus.SignSAS("sb://sas-ns-regen.servicebus.windows.net/orders", "RootManageSharedAccessKey", []byte(old.SecondaryKey), exp)
		if r := e.sas(oldTok, http.MethodPost, ns.url("orders/messages"), "a"); r.status != http.StatusCreated {
			t.Fatalf("send: %d %s", r.status, r.body) // the rule is now in the data plane's cache
		}
		e.arm(admin, http.MethodPost, ns.id+rule+"/regenerateKeys", `{"keyType":"PrimaryKey"}`)
		wantSAS401(t, e.sas(oldTok, http.MethodPost, ns.url("orders/messages"), "b"), "InvalidSignature")
		if r := e.sas(secTok, http.MethodPost, ns.url("orders/messages"), "c"); r.status != http.StatusCreated {
			t.Fatalf("the secondary key still signs: %d %s", r.status, r.body)
		}
		cur := e.listKeys(ns, rule)
		newTok := servicebus.SignSAS("sb://sas-ns-regen.servicebus.windows.net/orders", "RootManageSharedAccessKey", []byte(cur.PrimaryKey), exp)
		if r := e.sas(newTok, http.MethodDelete, ns.url("orders/messages/head?timeout=1"), ""); r.status != http.StatusOK || string(r.body) != "a" {
			t.Fatalf("receive with the new key: %d %s", r.status, r.body)
		}
		// Bearer tokens still work alongside.
		if r := e.do("", http.MethodPost, ns.url("orders/messages"), nil, nil); r.status != http.StatusUnauthorized {
			t.Errorf("no Authorization: %d", r.status)
		}
	})
}
