package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/console"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/signin"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/postgres"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
)

// otherNode is a second server's console and sign-in pages over its own
// handle on the store, with the fleet's KEK: the state it shares with the
// first server is only what the store holds.
type otherNode struct {
	console http.Handler
	signin  http.Handler
}

func newOtherNode(t *testing.T, st store.Store, kek []byte) otherNode {
	t.Helper()
	dir, err := directory.New(st, testenv.RandomKey(t), testenv.RandomKey(t))
	testenv.Must(t, err)
	log := audit.New(st, nil)
	return otherNode{
		console: console.New(console.Config{Directory: dir, Store: st, Audit: log, KEK: kek, OperatorKey: operatorKey}),
		signin:  signin.New(signin.Config{Directory: dir, Audit: log, KEK: kek}),
	}
}

// get asks h for path with the browser's cookies and returns the status
// and the Location or body.
func (n otherNode) get(h http.Handler, b *browser, path string) (int, string) {
	req := httptest.NewRequest(http.MethodGet, base+path, nil)
	for _, c := range b.jar.Cookies(mustURL(base + path)) {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if loc := rec.Header().Get("Location"); loc != "" {
		return rec.Code, loc
	}
	return rec.Code, rec.Body.String()
}

// TestSignOutCountsOnEveryServer: a console sign-out through one server
// ends the session on another server on the same store — the console's
// pages, the operator's session and the sign-in pages' single sign-on
// alike — while other sessions of the same user go on. On SQLite (one
// process per database) the second server is a second console and
// sign-in handler on the same store, with caches of their own; on
// PostgreSQL it has its own connection pool and change listener, as a
// second process has.
func TestSignOutCountsOnEveryServer(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) {
		st := storetest.SQLite(t)
		testSignOutOnEveryServer(t, st, st)
	})
	t.Run("Postgres", func(t *testing.T) {
		dsn := storetest.PostgresSchemaDSN(t)
		open := func() store.Store {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			st, err := postgres.Open(ctx, dsn)
			testenv.Must(t, err)
			t.Cleanup(func() { _ = st.Close() })
			return st
		}
		testSignOutOnEveryServer(t, open(), open())
	})
}

func testSignOutOnEveryServer(t *testing.T, first, second store.Store) {
	v := newEnv(t, first)
	w := v.w
	b := newOtherNode(t, second, v.e.KEK)
	graph := "/console/tenants/" + w.Customer.ID + "/graph"
	consoleSignIn := signin.ConsoleSignInPath("organizations", false)

	admin := v.signedIn(t, w.Admin)
	stays := v.signedIn(t, w.Admin) // the same user in another browser
	op := v.operator(t)
	// Before: the second server takes all three, and its caches hold
	// them as not signed out.
	for name, br := range map[string]*browser{"admin": admin, "other browser": stays, "operator": op} {
		if status, body := b.get(b.console, br, graph); status != http.StatusOK {
			t.Fatalf("%s on the second server before the sign-out: %d %.300s", name, status, body)
		}
	}
	if status, loc := b.get(b.signin, admin, consoleSignIn); status != http.StatusSeeOther || loc != signin.ConsolePath {
		t.Fatalf("single sign-on on the second server before the sign-out: %d %q", status, loc)
	}

	for _, br := range []*browser{admin, op} {
		before := br.jar.Cookies(mustURL(base + "/console/"))
		if status, _ := br.post("/console/signout", url.Values{"csrf": {br.csrf}}, ""); status != http.StatusOK {
			t.Fatalf("sign out: %d", status)
		}
		// The cookies copied before, on the paths they were set for.
		for _, c := range before {
			c.Path, c.Secure = "/console/", true
			if c.Name == signin.SessionCookie {
				c.Path = "/"
			}
		}
		br.jar.SetCookies(mustURL(base+"/"), before)
	}

	// After: refused by the second server, as soon as it hears of the
	// commit (at once on one SQLite store; PostgreSQL notifies).
	refused := func(h http.Handler, br *browser, path string, ok func(int, string) bool) bool {
		deadline := time.Now().Add(5 * time.Second)
		for {
			if ok(b.get(h, br, path)) {
				return true
			}
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	unauthorized := func(status int, _ string) bool { return status == http.StatusUnauthorized }
	if !refused(b.console, admin, graph, unauthorized) {
		t.Error("the signed-out administrator's copied cookie still works on the second server")
	}
	if !refused(b.console, op, graph, unauthorized) {
		t.Error("the signed-out operator's copied cookie still works on the second server")
	}
	// The sign-in pages no longer sign the browser in with it: they ask
	// for the name.
	if !refused(b.signin, admin, consoleSignIn, func(status int, body string) bool {
		return status == http.StatusOK && strings.Contains(body, `name="username"`)
	}) {
		t.Error("the second server's sign-in pages still take the signed-out session")
	}
	// The user's other session goes on, on both servers.
	if status, _ := b.get(b.console, stays, graph); status != http.StatusOK {
		t.Errorf("another session of the user on the second server after the sign-out: %d", status)
	}
	if status, _ := stays.get(graph); status != http.StatusOK {
		t.Errorf("another session of the user on the first server after the sign-out: %d", status)
	}
}
