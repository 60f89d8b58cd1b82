package signin_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// TestLogout: the end_session_endpoint that discovery advertises. A GET
// only asks (a link from another site ends nothing); the confirmed POST
// ends the session on the store, so its cookie no longer signs anyone in,
// and goes back to the application only to one of its registered
// redirect URIs, with state. A forged POST, an unregistered URI or
// another application's URI are refused or not followed.
func TestLogout(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		w := newWorld(t, st)
		b := w.browser(t)
		// Sign alice in (the consent leaves her session cookie).
		p := b.get(authorizeURL("contoso", w.codeRequest(nil)))
		p = signIn(t, b, p, "alice@contoso.onmicrosoft.com")
		expectPage(t, p, "Permissions requested")
		redirectParams(t, b.submit(p, url.Values{"decision": {"accept"}}), webRedirect+"?")
		signedIn := func() bool {
			p := b.get(authorizeURL("contoso", w.codeRequest(nil)))
			return p.status == http.StatusFound && strings.HasPrefix(p.location, webRedirect)
		}
		if !signedIn() {
			t.Fatal("no single sign-on after the first sign-in")
		}

		q := url.Values{"post_logout_redirect_uri": {webRedirect}, "client_id": {w.app.AppID}, "state": {"bye-1"}}
		logout := "/contoso/oauth2/v2.0/logout?" + q.Encode()
		// A GET asks, and ends nothing.
		p = b.get(logout)
		expectPage(t, p, "alice@contoso.onmicrosoft.com")
		if !signedIn() {
			t.Fatal("a GET of the sign-out page ended the session")
		}
		// A POST without the session's anti-forgery token is refused.
		if f := b.post("/contoso/oauth2/v2.0/logout", url.Values{"csrf": {"forged-token-0123456789"}}); f.status != http.StatusBadRequest {
			t.Fatalf("forged sign-out: %d", f.status)
		}
		if !signedIn() {
			t.Fatal("a forged sign-out ended the session")
		}
		// Confirmed: back to the app's registered URI with state.
		back := redirectParams(t, b.submit(p, nil), webRedirect+"?")
		if back.Get("state") != "bye-1" {
			t.Errorf("state after sign-out = %q", back.Get("state"))
		}
		if signedIn() {
			t.Fatal("still signed in after the sign-out")
		}
		recs, err := st.ListAudit(t.Context(), store.AuditQuery{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, r := range recs {
			found = found || (r.Action == "signin.logout" && r.Actor == w.alice.ID)
		}
		if !found {
			t.Error("the sign-out is not audited")
		}

		// Not signed in, an unregistered or unverified URI is not followed.
		for _, q := range []url.Values{
			{"post_logout_redirect_uri": {"https://evil.example/"}, "client_id": {w.app.AppID}},
			{"post_logout_redirect_uri": {webRedirect}},                                // no client named
			{"post_logout_redirect_uri": {webRedirect}, "client_id": {w.native.AppID}}, // another app's
			{"post_logout_redirect_uri": {webRedirect}, "client_id": {"00000000-0000-0000-0000-00000000dead"}},
		} {
			p := b.get("/contoso/oauth2/v2.0/logout?" + q.Encode())
			expectPage(t, p, "You signed out")
			if !strings.Contains(p.body, "not sent back") {
				t.Errorf("%v: the page does not say why it did not go back", q)
			}
		}
		// The v1 path serves too, and no parameters give the plain page.
		expectPage(t, b.get("/contoso/oauth2/logout"), "You signed out")
	})
}
