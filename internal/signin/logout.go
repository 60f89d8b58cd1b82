package signin

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/audit"
)

// logout serves GET and POST /{tenant}/oauth2[/v2.0]/logout, the
// end_session_endpoint that discovery advertises: Entra's "Send a
// sign-out request" (learn.microsoft.com, entra/identity-platform/
// v2-protocols-oidc) and OpenID Connect RP-Initiated Logout 1.0.
//
// A GET with a session asks the user to confirm: a sign-out changes state,
// and a page of another site must not end the user's session by linking
// here (Entra likewise shows its own page and account picker). The POST
// carries the session's anti-forgery token; it records the session as
// signed out in the store, so every server sharing the store refuses its
// cookie from then on, deletes the cookie and audits the sign-out.
//
// Then the browser returns to post_logout_redirect_uri only when client_id
// names an application on which that URI is registered as a redirect URI,
// exactly ("This URL must match one of the redirect URIs registered for
// your application", v2-protocols-oidc), with state when given. Any other
// URI is never followed (no open redirect): the user sees that they signed
// out.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request, tenant string) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if len(r.URL.RawQuery) > maxForm || r.ParseForm() != nil {
		h.errorPage(w, r, http.StatusBadRequest, codeInvalidRequest, "The request is not valid.")
		return
	}
	redirect := r.Form.Get("post_logout_redirect_uri")
	clientID := strings.TrimSpace(r.Form.Get("client_id"))
	state := r.Form.Get("state")
	sess, signedIn := h.session(r)
	if r.Method == http.MethodPost {
		if !h.checkCSRF(r) {
			h.errorPage(w, r, http.StatusBadRequest, codeInvalidRequest, "The sign-out request is not valid: reload the page and try again.")
			return
		}
		if signedIn {
			if err := h.signOuts.SignOut(r.Context(), sess.ID(), sess.Expires, h.now()); err != nil {
				h.serverError(w, r, err)
				return
			}
			setCookie(w, sessionCookie, "", -1)
			h.record(r.Context(), sess.UserID, sess.TenantID, sess.TenantID, "signin.logout", sess.UserID, audit.Success, "")
		}
		h.signedOut(w, r, redirect, clientID, state)
		return
	}
	if !signedIn {
		h.signedOut(w, r, redirect, clientID, state)
		return
	}
	csrf := h.csrfFor(r, &sess)
	h.render(w, http.StatusOK, "logout", pageData{Title: "Sign out", Username: sess.UPN, CSRF: csrf.token,
		Action:         r.URL.EscapedPath(),
		LogoutRedirect: redirect, LogoutClient: clientID, LogoutState: state}, csrf)
}

// signedOut ends a sign-out: back to the application when its
// post_logout_redirect_uri is verified, else a page that says so.
func (h *Handler) signedOut(w http.ResponseWriter, r *http.Request, redirect, clientID, state string) {
	if redirect != "" && clientID != "" {
		app, err := h.dir.ApplicationByAppID(r.Context(), clientID)
		if err == nil && slices.Contains(slices.Concat(app.WebRedirectURIs, app.PublicClientRedirectURIs, app.SPARedirectURIs), redirect) {
			if u, err := url.Parse(redirect); err == nil {
				if state != "" {
					q := u.Query()
					q.Set("state", state)
					u.RawQuery = q.Encode()
				}
				http.Redirect(w, r, u.String(), http.StatusFound)
				return
			}
		}
	}
	msg := "You signed out of your account. It's a good idea to close all browser windows."
	if redirect != "" {
		msg += " The application's address after sign-out is not one of its registered redirect URIs, so you were not sent back to it."
	}
	h.render(w, http.StatusOK, "message", pageData{Title: "You signed out of your account", Message: msg}, csrfState{})
}
