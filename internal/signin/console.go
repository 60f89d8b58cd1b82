package signin

import (
	"net/http"
	"net/url"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/userauth"
)

// The console (package console) signs people in with these pages: it
// sends the browser to GET /{tenant}/login/console, which runs the same
// sign-in name → password → TOTP steps as an authorization request and,
// once the user is signed in, sets the browser session (SessionCookie) and
// sends the browser back to ConsolePath on the same host. No client, no
// redirect URI and no code are involved: the console lives on the same
// host as these pages and reads the session cookie itself, so nothing the
// browser could be tricked into sending elsewhere is ever issued, and the
// only place the flow goes afterwards is a fixed path of this host.
const (
	kindConsole = "console"
	// ConsolePath is where a console sign-in ends.
	ConsolePath = "/console/"
	// SessionCookie is the browser session's cookie: a sealed
	// userauth.Session, Secure, HttpOnly, SameSite=Lax, Path=/.
	SessionCookie = sessionCookie
	// consoleName is what the sign-in name page says the user signs in to.
	consoleName = "the tenantbridge console"
)

// ConsoleSignInPath is the path that signs a browser in for the console:
// tenant is "organizations" (the sign-in name's domain finds the tenant)
// or a tenant id or domain. selectAccount asks for the sign-in name even
// when the browser is signed in.
func ConsoleSignInPath(tenant string, selectAccount bool) string {
	p := "/" + url.PathEscape(tenant) + "/login/console"
	if selectAccount {
		p += "?prompt=select_account"
	}
	return p
}

// consoleSignIn serves GET /{tenant}/login/console.
func (h *Handler) consoleSignIn(w http.ResponseWriter, r *http.Request, tenant string) {
	f := &flow{Kind: kindConsole, Tenant: tenant, Req: authRequest{Version: 2}}
	switch p := r.URL.Query().Get("prompt"); p {
	case "login", "select_account":
		f.Req.Prompt = p
	}
	if !h.resolveTenantPath(w, r, f) {
		return
	}
	h.proceed(w, r, f, nil)
}

// consoleSignedIn ends a console sign-in: the session cookie is set (by
// proceed, when the user authenticated in this flow; else it was already
// there), so the browser goes back to the console.
func (h *Handler) consoleSignedIn(w http.ResponseWriter, r *http.Request, f *flow, user *directory.User, _ *userauth.Session) {
	h.record(r.Context(), user.ID, f.TenantID, f.TenantID, "signin.console", user.ID, audit.Success, "")
	http.Redirect(w, r, ConsolePath, http.StatusSeeOther)
}
