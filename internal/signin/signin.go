// Package signin serves the browser side of Entra sign-in: the authorize
// endpoints (v1 and v2), the sign-in name, password and TOTP pages, the
// consent page, the admin-consent endpoints and the device-code page. It
// hands the token service (package sts) what it needs through
// package userauth: a sealed authorization code, and a sealed session
// cookie for single sign-on.
//
// Nothing between pages is kept on the server: the state of a sign-in in
// progress (the validated authorize request and how far the user got) is
// sealed under the key-encryption key and carried in each form, bound to
// the browser by the CSRF token it carries. Every form is CSRF-protected:
// with the session's token once there is a session, with a pre-session
// cookie before.
package signin

import (
	"context"
	"crypto/subtle"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/userauth"
	"github.com/tenantbridge/tenantbridge/web"
)

// DeviceApprover is the device-code flow's store, as the device page sees
// it: the token service keeps pending device codes; this package lets the
// user find one by its user code and approve or deny it.
type DeviceApprover interface {
	// Lookup returns what the device asked for: the client's appId, the
	// scope (or v1 resource) and the tenant path segment it used
	// ("common", "organizations", an id or a domain). An unknown or
	// expired code is an error.
	Lookup(userCode string) (clientID, scope, tenant string, err error)
	// Decide records the user's answer; userID and tenantID are the
	// signed-in user's, authTime and amr how they signed in.
	Decide(userCode string, approve bool, userID, tenantID string, authTime time.Time, amr []string) error
}

// Config is what a Handler needs.
type Config struct {
	Directory *directory.Service
	Audit     *audit.Log
	Logger    *slog.Logger
	// KEK seals authorization codes, session cookies and the state of
	// sign-ins in progress. It must be the token service's, which opens
	// the codes (32 bytes).
	KEK []byte
	// Devices backs the device-code page; nil leaves it answering 404.
	Devices DeviceApprover
	// SessionLifetime is how long a browser stays signed in; 12 hours
	// when zero.
	SessionLifetime time.Duration
	// Now replaces time.Now, for tests.
	Now func() time.Time
}

// Handler serves the sign-in pages. It routes on r.URL.Path itself, so it
// can be mounted for every path of the login hosts it serves.
type Handler struct {
	dir      *directory.Service
	audit    *audit.Log
	log      *slog.Logger
	kek      []byte
	devices  DeviceApprover
	lifetime time.Duration
	now      func() time.Time
	// signOuts are the sessions signed out (by the console) on any server
	// sharing the store; a signed-out session is no session here either.
	signOuts *userauth.SignOuts
	pages    map[string]*template.Template
	formPost *template.Template
	static   fs.FS // web/static, served under /_signin/static/
}

// Cookie names.
const (
	sessionCookie = "tb_session"
	csrfCookie    = "tb_csrf"
)

// maxForm bounds a form or query, before parsing.
const maxForm = 64 << 10

// New returns a Handler. It panics if the embedded templates do not parse
// (a build defect, not a runtime condition).
func New(cfg Config) *Handler {
	h := &Handler{dir: cfg.Directory, audit: cfg.Audit, log: cfg.Logger, kek: cfg.KEK, devices: cfg.Devices,
		lifetime: cfg.SessionLifetime, now: cfg.Now}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if cfg.Directory != nil {
		h.signOuts = userauth.NewSignOuts(cfg.Directory.Store())
	}
	if h.lifetime <= 0 {
		h.lifetime = 12 * time.Hour
	}
	tfs := web.Templates()
	h.pages = map[string]*template.Template{}
	for _, p := range []string{"name", "password", "mfa", "consent", "needadmin", "error", "device", "deviceconfirm", "message", "logout"} {
		h.pages[p] = template.Must(template.ParseFS(tfs, "layout.html", p+".html"))
	}
	h.formPost = template.Must(template.ParseFS(tfs, "formpost.html"))
	h.static = web.Static()
	return h
}

// Paths reports whether the handler serves path: the lead's router asks
// before handing a login-host request over.
func Paths(path string) bool {
	if strings.HasPrefix(path, "/_signin/static/") || path == "/common/oauth2/deviceauth" {
		return true
	}
	_, rest, ok := splitTenant(path)
	if !ok {
		return false
	}
	switch rest {
	case "/oauth2/v2.0/authorize", "/oauth2/authorize", "/adminconsent", "/v2.0/adminconsent",
		"/login/name", "/login/password", "/login/mfa", "/login/consent", "/login/device", "/login/console",
		"/oauth2/v2.0/logout", "/oauth2/logout":
		return true
	}
	return false
}

func splitTenant(path string) (tenant, rest string, ok bool) {
	if !strings.HasPrefix(path, "/") {
		return "", "", false
	}
	tenant, rest, ok = strings.Cut(path[1:], "/")
	if !ok || tenant == "" {
		return "", "", false
	}
	return tenant, "/" + rest, true
}

// ServeHTTP routes a request of the sign-in surface.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	if name, ok := strings.CutPrefix(r.URL.Path, "/_signin/static/"); ok {
		h.serveStatic(w, r, name)
		return
	}
	if r.URL.Path == "/common/oauth2/deviceauth" {
		h.deviceAuth(w, r)
		return
	}
	tenant, rest, ok := splitTenant(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	get, post := r.Method == http.MethodGet || r.Method == http.MethodHead, r.Method == http.MethodPost
	switch {
	case rest == "/oauth2/v2.0/authorize" && (get || post):
		h.authorize(w, r, tenant, 2)
	case rest == "/oauth2/authorize" && (get || post):
		h.authorize(w, r, tenant, 1)
	case rest == "/adminconsent" && get:
		h.adminConsent(w, r, tenant, 1)
	case rest == "/v2.0/adminconsent" && get:
		h.adminConsent(w, r, tenant, 2)
	case (rest == "/oauth2/v2.0/logout" || rest == "/oauth2/logout") && (get || post):
		h.logout(w, r, tenant)
	case rest == "/login/console" && get:
		h.consoleSignIn(w, r, tenant)
	case strings.HasPrefix(rest, "/login/") && post:
		h.loginPost(w, r, tenant, strings.TrimPrefix(rest, "/login/"))
	case Paths(r.URL.Path):
		w.Header().Set("Allow", "GET, POST")
		h.errorPage(w, r, http.StatusMethodNotAllowed, codeInvalidRequest, "The request method is not supported by this endpoint.")
	default:
		http.NotFound(w, r)
	}
}

// serveStatic serves one of the pages' static files (a stylesheet). It is
// not http.FileServer on purpose: that answers a name the file system
// refuses (invalid UTF-8, "%ff") with a text/plain 500, a missing file with
// a text/plain 404, and a bad Range header with a 416; here every refusal
// is the sign-in surface's own error page, and a name that is not a file
// is a 404, never a 500. The files are small and embedded, so there are no
// ranges, no directory listings and no modification times to honour.
func (h *Handler) serveStatic(w http.ResponseWriter, r *http.Request, name string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		h.errorPage(w, r, http.StatusMethodNotAllowed, codeInvalidRequest, "The request method is not supported by this endpoint.")
		return
	}
	var data []byte
	err := fs.ErrNotExist
	if utf8.ValidString(name) && fs.ValidPath(name) && name != "." {
		data, err = fs.ReadFile(h.static, name) // a directory is an error too
	}
	if err != nil {
		h.errorPage(w, r, http.StatusNotFound, codeInvalidRequest, "The requested page was not found.")
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Header().Set("Cache-Control", "public, max-age=3600")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(data)
}

// securityHeaders forbid framing (clickjacking), caching and referrers on
// every page. Scripts run only with the nonce the form_post page sets.
func securityHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Pragma", "no-cache")
}

// ---- cookies and CSRF ----

func setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// session returns the browser's session, if it has a valid one: sealed
// by us, unexpired and not signed out on any server sharing the store.
// When the store cannot say whether it was signed out, there is no
// session (the user signs in again), never a session that may have ended.
func (h *Handler) session(r *http.Request) (userauth.Session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return userauth.Session{}, false
	}
	now := h.now()
	s, err := userauth.OpenSession(h.kek, c.Value, now)
	if err != nil {
		return userauth.Session{}, false
	}
	if h.signOuts == nil {
		return userauth.Session{}, false
	}
	out, err := h.signOuts.SignedOut(r.Context(), s.ID(), now)
	if err != nil {
		h.log.WarnContext(r.Context(), "signin: cannot tell whether the session was signed out", "err", err)
		return userauth.Session{}, false
	}
	if out {
		return userauth.Session{}, false
	}
	return s, true
}

// csrfState is what a response's forms carry, and the cookie that backs
// it when there is no session yet.
type csrfState struct {
	token string
	set   bool // the pre-session cookie must be set
}

// csrfFor returns the token forms rendered for r must carry: the session's,
// or the pre-session cookie's (new if absent).
func (h *Handler) csrfFor(r *http.Request, sess *userauth.Session) csrfState {
	if sess != nil {
		return csrfState{token: sess.CSRF}
	}
	if s, ok := h.session(r); ok {
		return csrfState{token: s.CSRF}
	}
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 16 && len(c.Value) <= 64 {
		return csrfState{token: c.Value}
	}
	return csrfState{token: userauth.NewID(), set: true}
}

// checkCSRF reports whether a posted form carries the browser's token.
func (h *Handler) checkCSRF(r *http.Request) bool {
	got := r.PostForm.Get("csrf")
	if got == "" {
		return false
	}
	var want string
	if s, ok := h.session(r); ok {
		want = s.CSRF
	} else if c, err := r.Cookie(csrfCookie); err == nil {
		want = c.Value
	}
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// ---- pages ----

// pageData is what every page template reads; each page uses some of it.
type pageData struct {
	Title, Action, CSRF, Flow, Error string
	Username, Restart                string
	AppName                          string
	PublisherName, PublisherDomain   string
	TenantName                       string
	Permissions                      []permissionView
	OfferOrg, OrgChecked             bool
	AdminConsent                     bool
	Code                             int
	Message, RequestID, Time         string
	UserCode                         string
	// The sign-out page's parameters, carried to its POST.
	LogoutRedirect, LogoutClient, LogoutState string
}

type permissionView struct {
	Name, Description, Value string
	AdminOnly, AppOnly       bool
}

func (h *Handler) render(w http.ResponseWriter, status int, page string, d pageData, csrf csrfState) {
	if csrf.set {
		setCookie(w, csrfCookie, csrf.token, 0)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := h.pages[page].ExecuteTemplate(w, "layout", d); err != nil {
		h.log.Error("signin: render page", "page", page, "err", err)
	}
}

// errorPage shows an error that cannot go to a verified redirect URI.
func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, status, code int, msg string) {
	h.render(w, status, "error", pageData{Title: "Sign in error", Code: code, Message: msg,
		RequestID: httpx.InfoFrom(r.Context()).RequestID, Time: h.now().UTC().Format("2006-01-02 15:04:05Z")}, csrfState{})
}

// ---- audit ----

// record appends an audit record; a record that cannot be stored is
// logged by the audit log (sign-in events are not changes that could be
// rolled back).
func (h *Handler) record(ctx context.Context, actor, actorTenant, targetTenant, action, target, result, detail string) {
	if h.audit == nil {
		return
	}
	_ = h.audit.Record(ctx, store.AuditRecord{Actor: actor, ActorTenant: actorTenant, TargetTenant: targetTenant,
		Action: action, Target: target, Result: result, Detail: detail})
}
