package signin_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/signin"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/userauth"
)

// TestConsoleSignIn: the console's sign-in runs the same steps (name,
// password, TOTP), then sets the session cookie and goes to the fixed
// /console/ of the same host — never anywhere a parameter names; a
// browser already signed in goes straight there, unless it asks to pick
// the account again.
func TestConsoleSignIn(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t))
	b := w.browser(t)
	start := signin.ConsoleSignInPath("organizations", false)
	p := b.get(start + "?redirect_uri=https://evil.example/&return=https://evil.example/")
	expectPage(t, p, `name="username"`)
	if !strings.Contains(p.body, "the tenantbridge console") {
		t.Errorf("the name page does not say what the user signs in to: %s", p.body)
	}
	p = signIn(t, b, p, w.admin.UserPrincipalName)
	expectPage(t, p, "Enter code")
	code, err := directory.TOTPCode(w.adminTOTP, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p = b.submit(p, url.Values{"otc": {code}})
	if p.status != http.StatusSeeOther || p.location != signin.ConsolePath {
		t.Fatalf("end of the console sign-in: %d %q, want 303 %s", p.status, p.location, signin.ConsolePath)
	}
	var session *http.Cookie
	for _, c := range (&http.Response{Header: p.header}).Cookies() {
		if c.Name == signin.SessionCookie {
			session = c
		}
	}
	if session == nil || !session.Secure || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/" {
		t.Fatalf("session cookie = %+v", session)
	}
	s, err := userauth.OpenSession(w.kek, session.Value, time.Now())
	if err != nil || s.UserID != w.admin.ID || s.TenantID != w.contoso.Tenant.ID || !strings.Contains(strings.Join(s.AMR, " "), "mfa") {
		t.Fatalf("session = %+v, %v", s, err)
	}

	// Signed in: straight back to the console.
	if p := b.get(start); p.status != http.StatusSeeOther || p.location != signin.ConsolePath {
		t.Errorf("signed in: %d %q", p.status, p.location)
	}
	// Picking another account shows the name page.
	expectPage(t, b.get(signin.ConsoleSignInPath("organizations", true)), `name="username"`)
	// A tenant that does not exist is the sign-in pages' error.
	if p := b.get(signin.ConsoleSignInPath("nowhere.example", false)); p.status < 400 {
		t.Errorf("unknown tenant: %d", p.status)
	}
	// Only GET starts it.
	if p := b.post(start, url.Values{}); p.status == http.StatusSeeOther {
		t.Errorf("POST to the console sign-in: %d %q", p.status, p.location)
	}
}
