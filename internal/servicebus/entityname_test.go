package servicebus_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/servicebus"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// auditOf returns the audit records of tenantID with action.
func (e *env) auditOf(tenantID, action string) []store.AuditRecord {
	e.t.Helper()
	recs, err := e.base.Audit.List(e.ctx, store.AuditQuery{TenantID: tenantID})
	must(e.t, err)
	var out []store.AuditRecord
	for _, r := range recs {
		if r.Action == action {
			out = append(out, r)
		}
	}
	return out
}

// A queue name Service Bus could never have is a 400 with Service Bus's
// words (SubCode 40000), with or without a token and for every operation,
// not a 401, 404, 410 or 500; a well-formed name that does not exist is
// still 410. Each refusal is audited, invalid UTF-8 and all.
func TestInvalidEntityNames(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ns := e.newNamespace(e.contoso, "contoso-names")
		e.queue(ns, "q", "")
		c := e.owner(ns)
		long := strings.Repeat("a", 261)
		for _, tc := range []struct {
			name, path, method string
			token              bool
			status             int
			says               string
		}{
			{"invalid UTF-8", "%ff%fe/messages", http.MethodPost, true, 400, "Entity segments can contain only letters"},
			{"invalid UTF-8, no token", "%ff/messages", http.MethodPost, false, 400, "Entity segments can contain only letters"},
			{"space", "q%20x/messages", http.MethodPost, true, 400, "Entity segments can contain only letters"},
			{"plus", "q+x/messages/head", http.MethodPost, true, 400, "Entity segments can contain only letters"},
			{"NUL", "q%00/messages/head", http.MethodDelete, true, 400, "Entity segments can contain only letters"},
			{"dollar", "$q/messages", http.MethodGet, true, 400, "Entity segments can contain only letters"},
			{"non-ASCII letter", "%C3%A9/messages", http.MethodPost, true, 400, "Entity segments can contain only letters"},
			{"encoded slash", "a%2Fb/messages", http.MethodPost, true, 400, "is not a queue messages path"}, // no nested entities here
			{"too long", long + "/messages", http.MethodPost, true, 400, "longer than 260 characters"},
			{"settle", "%ff/messages/1/2", http.MethodDelete, true, 400, "Entity segments can contain only letters"},
			{"longest name, absent", strings.Repeat("a", 260) + "/messages", http.MethodPost, true, 410, "could not be found"},
			{"well-formed, absent", "-q/messages", http.MethodPost, true, 410, "could not be found"},
		} {
			tok := ""
			if tc.token {
				tok = c.token
			}
			r := e.do(tok, tc.method, ns.url(tc.path), nil, []byte("x"))
			if r.status != tc.status {
				t.Errorf("%s: %d %s, want %d", tc.name, r.status, r.body, tc.status)
				continue
			}
			if d := detail(t, r); !strings.Contains(d, tc.says) || (strings.Contains(tc.says, "Entity") && !strings.HasPrefix(d, "SubCode=40000. ")) {
				t.Errorf("%s: detail %q", tc.name, d)
			}
		}
		recs := e.auditOf(e.contoso.Tenant.ID, "servicebus.send")
		found := false
		for _, r := range recs {
			if r.Target == "contoso-names/\uFFFD" && r.Result == "BadRequest" {
				found = true
			}
		}
		if !found {
			t.Errorf("the refusal of an invalid UTF-8 name is not in the audit log: %+v", recs)
		}
	})
}

// A refusal is audited when the client has already hung up: the request's
// context is cancelled (as net/http does when the connection drops)
// before the handler records it.
func TestRefusalAuditedAfterClientLeft(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ns := e.newNamespace(e.contoso, "contoso-gone")
		e.queue(ns, "q", "")
		c := e.owner(ns)
		c.mustSend("q", "warm", nil) // the namespace is now cached: the refusal needs no store read
		e.hungUp.Store(true)
		r := c.send("q%20gone", "x", nil)
		e.hungUp.Store(false)
		if r.status != http.StatusBadRequest {
			t.Fatalf("send to an invalid name after hanging up: %d %s", r.status, r.body)
		}
		for _, rec := range e.auditOf(e.contoso.Tenant.ID, "servicebus.send") {
			if rec.Target == "contoso-gone/q gone" && rec.Result == "BadRequest" {
				return
			}
		}
		t.Fatal("the refusal of a client that hung up is not in the audit log")
	})
}

// A SAS naming a rule whose name is not UTF-8 is refused, and the refusal
// is audited (the store would refuse the raw name; the log keeps it
// sanitized).
func TestSASRefusalWithInvalidUTF8KeyNameIsAudited(t *testing.T) {
	forEachStoreSAS(t, func(t *testing.T, e *env) {
		ns := e.newNamespace(e.contoso, "sas-bad-name")
		e.queue(ns, "orders", "")
		tok := servicebus.SignSAS("sb://sas-bad-name.servicebus.windows.net/orders", "\xff\xfeRule", []byte("some key"), time.Now().Add(time.Hour))
		wantSAS401(t, e.sas(tok, http.MethodPost, ns.url("orders/messages"), "x"), "InvalidSignature")
		for _, r := range e.auditOf(e.contoso.Tenant.ID, "servicebus.send") {
			if r.Actor == "sas:\uFFFDRule" && r.Result == "Unauthorized" && r.Target == "sas-bad-name/orders" {
				return
			}
		}
		t.Fatal("the refusal is not in the audit log")
	})
}
