// Package console is the web console on the server's own address
// (https://LISTEN/console/): the trust graph of a tenant — every principal
// of another tenant that can do anything in it, what, where and why, and
// the reverse — with revocation, and the cross-tenant audit log, filtered
// and live (server-sent events).
//
// Who may use it: a tenant's Global Administrator, signed in with the
// sign-in pages (package signin's console flow; the browser session is
// their sealed cookie, signin.SessionCookie), sees and acts on their own
// tenant only; the operator, signed in with the operator key
// (DIR/operator.json), sees every tenant. Pages are server-rendered
// (html/template, the graph an inline SVG); the one script only follows
// the audit stream. Every state-changing form carries the session's CSRF
// token and is refused without it or from another origin; cookies are
// Secure, HttpOnly and SameSite; no token ever travels in a URL.
package console

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/arm"
	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/signin"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/userauth"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Prefix is the path the console is served under on the listen address.
const Prefix = "/console/"

// RoleRevoker deletes a role assignment with its audit records in one
// transaction, as ARM's API does; *arm.Handler satisfies it.
type RoleRevoker interface {
	RevokeRoleAssignment(ctx context.Context, tenantID, id string, records ...store.AuditRecord) (store.RoleAssignment, error)
}

// Config is what the console needs.
type Config struct {
	Directory *directory.Service
	Store     store.Store
	RBAC      *rbac.Engine
	Roles     RoleRevoker
	Audit     *audit.Log
	Logger    *slog.Logger
	// KEK opens the sign-in pages' session cookies and seals the
	// operator's console session (32 bytes).
	KEK []byte
	// IsLoginHost tells this server's issuers' hosts (Graph.IsLoginHost).
	IsLoginHost func(host string) bool
	// OperatorKey is the operator API's key: signing in with it makes the
	// browser the operator's. Empty disables the operator's sign-in.
	OperatorKey string
	// Now replaces time.Now, for tests.
	Now func() time.Time
	// PollInterval is how often an audit stream looks for new records
	// (1 s when zero); Heartbeat how often an idle stream sends a comment
	// (15 s when zero).
	PollInterval, Heartbeat time.Duration
}

// Handler serves the console. It is safe for concurrent use.
type Handler struct {
	cfg    Config
	graph  *Graph
	log    *slog.Logger
	now    func() time.Time
	pages  map[string]*template.Template
	static fs.FS

	// heavy bounds the graph and audit computations running at once: a
	// graph of a provider with many customers, or a long audit log, costs
	// many store reads, and reloading must not multiply that.
	heavy chan struct{}

	// signOuts are the sessions signed out on any server sharing the
	// store: the console's operator sessions and the sign-in pages'.
	signOuts *userauth.SignOuts

	mu      sync.Mutex
	streams map[string]int                    // open audit streams per principal
	byID    map[string]map[chan struct{}]bool // this process's streams per session, closed at sign-out
}

var _ RoleRevoker = (*arm.Handler)(nil)

// New returns the console. It panics if the embedded templates do not
// parse (a build defect).
func New(cfg Config) *Handler {
	if cfg.Directory == nil || cfg.Store == nil || cfg.Audit == nil || len(cfg.KEK) != 32 {
		panic("console: Config needs Directory, Store, Audit and a 32-byte KEK")
	}
	h := &Handler{cfg: cfg, log: cfg.Logger, now: cfg.Now, pages: map[string]*template.Template{},
		streams: map[string]int{}, byID: map[string]map[chan struct{}]bool{}, signOuts: userauth.NewSignOuts(cfg.Store),
		graph: &Graph{Dir: cfg.Directory, St: cfg.Store, RBAC: cfg.RBAC, IsLoginHost: cfg.IsLoginHost}, heavy: make(chan struct{}, maxHeavy)}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.cfg.PollInterval <= 0 {
		h.cfg.PollInterval = time.Second
	}
	if h.cfg.Heartbeat <= 0 {
		h.cfg.Heartbeat = 15 * time.Second
	}
	funcs := template.FuncMap{"short": short}
	for _, p := range []string{"home", "signin", "graph", "audit", "message"} {
		h.pages[p] = template.Must(template.New("").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+p+".html"))
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		panic(err)
	}
	h.static = static
	return h
}

// Cookie names: the operator's console session, and the anti-forgery
// token of the operator's sign-in form (before any session exists).
const (
	operatorCookie = "tb_console_operator"
	preCSRFCookie  = "tb_console_csrf"
)

// operatorLifetime is how long the operator's console session lasts.
const operatorLifetime = 8 * time.Hour

// maxForm bounds a posted form.
const maxForm = 16 << 10

var operatorAAD = []byte("tenantbridge console operator session v1")

// viewer is who is looking: the operator, or a tenant's administrator.
type viewer struct {
	Operator bool
	TenantID string // the administrator's tenant
	UserID   string
	Name     string // for the page header
	CSRF     string
	// ID identifies the session (for sign-out and stream bookkeeping);
	// Expires is when it ends.
	ID      string
	Expires time.Time
}

// principal is the key the stream cap counts per.
func (v *viewer) principal() string {
	if v.Operator {
		return "operator"
	}
	return v.TenantID + "|" + v.UserID
}

// sees reports whether the viewer may see tenantID at all.
func (v *viewer) sees(tenantID string) bool {
	return v.Operator || strings.EqualFold(v.TenantID, tenantID)
}

// operatorSession is the operator's sealed cookie.
type operatorSession struct {
	// Key is a hash of the operator key it was opened with: a new key
	// (operator.json replaced) ends the sessions of the old one.
	Key     string    `json:"key"`
	ID      string    `json:"id"`
	CSRF    string    `json:"csrf"`
	Expires time.Time `json:"exp"`
}

// viewerOf returns who the browser is signed in as, if anyone allowed in
// the console. An administrator must still hold Global Administrator in
// an enabled account: checked at every request, so removing the role
// ends the console at once.
func (h *Handler) viewerOf(r *http.Request) (*viewer, error) {
	now := h.now()
	if c, err := r.Cookie(operatorCookie); err == nil && h.cfg.OperatorKey != "" {
		var s operatorSession
		if userauth.OpenJSON(h.cfg.KEK, c.Value, operatorAAD, &s) == nil && now.Before(s.Expires) &&
			subtle.ConstantTimeCompare([]byte(s.Key), []byte(h.operatorKeyHash())) == 1 {
			out, err := h.signOuts.SignedOut(r.Context(), operatorSessionID(s.ID), now)
			if err != nil {
				return nil, err
			}
			if !out {
				return &viewer{Operator: true, Name: "operator", CSRF: s.CSRF, ID: operatorSessionID(s.ID), Expires: s.Expires}, nil
			}
		}
	}
	c, err := r.Cookie(signin.SessionCookie)
	if err != nil {
		return nil, nil
	}
	s, err := userauth.OpenSession(h.cfg.KEK, c.Value, now)
	if err != nil {
		return nil, nil
	}
	id := s.ID()
	if out, err := h.signOuts.SignedOut(r.Context(), id, now); err != nil {
		return nil, err
	} else if out {
		return nil, nil
	}
	u, err := h.cfg.Directory.GetUser(r.Context(), s.TenantID, s.UserID)
	if errors.Is(err, directory.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if !u.AccountEnabled {
		return nil, nil
	}
	roles, err := h.cfg.Directory.DirectoryRolesOf(r.Context(), s.TenantID, s.UserID)
	if err != nil {
		return nil, err
	}
	v := &viewer{TenantID: s.TenantID, UserID: s.UserID, Name: u.UserPrincipalName, CSRF: s.CSRF, ID: id, Expires: s.Expires}
	if !slices.Contains(roles, directory.RoleGlobalAdministrator) {
		return v, errNotAdmin
	}
	return v, nil
}

// errNotAdmin: signed in, but not a Global Administrator.
var errNotAdmin = errors.New("console: not a Global Administrator")

// operatorSessionID is the id under which an operator session is
// signed out: its own random id, kept apart from the sign-in pages'
// session ids (userauth.Session.ID).
func operatorSessionID(id string) string { return "console-operator|" + id }

// signOut records the session as signed out in the store, so that every
// server sharing it refuses the cookie until it would have expired, and
// closes this process's audit streams of it (another server's streams
// end at their next check of the session).
func (h *Handler) signOut(ctx context.Context, v *viewer) error {
	if err := h.signOuts.SignOut(ctx, v.ID, v.Expires, h.now()); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.byID[v.ID] {
		close(ch)
	}
	delete(h.byID, v.ID)
	return nil
}

// maxHeavy is how many graph or audit computations run at once; a request
// waits up to heavyWait for its turn, then gets a "busy" page (503).
const (
	maxHeavy  = 2
	heavyWait = 15 * time.Second
)

// acquire waits for a turn to compute a graph or read the audit log; it
// answers 503 and returns false when none comes in time.
func (h *Handler) acquire(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	t := time.NewTimer(heavyWait)
	defer t.Stop()
	select {
	case h.heavy <- struct{}{}:
		return func() { <-h.heavy }, true
	case <-t.C:
	case <-r.Context().Done():
	}
	w.Header().Set("Retry-After", "10")
	h.message(w, http.StatusServiceUnavailable, "Busy", "The console is computing other graphs; try again in a moment.")
	return nil, false
}

// ServeHTTP routes the console's requests.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	rest, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		h.message(w, http.StatusNotFound, "Not found", "There is no such page.")
		return
	}
	if name, ok := strings.CutPrefix(rest, "static/"); ok {
		h.serveStatic(w, r, name)
		return
	}
	switch {
	case rest == "signin" && isGet(r):
		http.Redirect(w, r, signin.ConsoleSignInPath("organizations", r.URL.Query().Has("switch")), http.StatusSeeOther)
		return
	case rest == "operator":
		h.operatorSignIn(w, r)
		return
	}
	v, err := h.viewerOf(r)
	if v != nil {
		if note := httpx.NoteFrom(r.Context()); note != nil {
			note.SetCaller(v.TenantID, v.UserID)
		}
	}
	if errors.Is(err, errNotAdmin) {
		h.message(w, http.StatusForbidden, "Not an administrator",
			v.Name+" is signed in, but the console is for each tenant's Global Administrators and the operator.")
		return
	} else if err != nil {
		h.serverError(w, r, err)
		return
	}
	if v == nil {
		if isGet(r) && rest == "" {
			h.render(w, http.StatusOK, "signin", pageData{Title: "Sign in to the console", CSRF: h.preCSRF(w, r), OperatorEnabled: h.cfg.OperatorKey != ""})
			return
		}
		h.message(w, http.StatusUnauthorized, "Signed out", "Your console session has ended. Sign in again at "+Prefix+".")
		return
	}
	if r.Method == http.MethodPost && !h.checkPost(w, r, v) {
		return
	}
	switch {
	case rest == "" && isGet(r):
		h.home(w, r, v)
	case rest == "signout" && r.Method == http.MethodPost:
		h.signOutPost(w, r, v)
	default:
		tenant, page, ok := strings.Cut(strings.TrimPrefix(rest, "tenants/"), "/")
		if !ok || !strings.HasPrefix(rest, "tenants/") || !isID(tenant) || !v.sees(tenant) {
			// Another tenant's pages do not exist for an administrator:
			// the same answer as a tenant that does not exist.
			h.message(w, http.StatusNotFound, "Not found", "There is no such page.")
			return
		}
		tenant = strings.ToLower(tenant)
		if page == "graph" || page == "revoke" || page == "audit" {
			release, ok := h.acquire(w, r)
			if !ok {
				return
			}
			defer release()
		}
		switch {
		case page == "graph" && isGet(r):
			h.graphPage(w, r, v, tenant)
		case page == "revoke" && r.Method == http.MethodPost:
			h.revokePost(w, r, v, tenant)
		case page == "audit" && isGet(r):
			h.auditPage(w, r, v, tenant)
		case page == "audit/stream" && r.Method == http.MethodGet:
			h.auditStream(w, r, v, tenant)
		default:
			h.message(w, http.StatusNotFound, "Not found", "There is no such page.")
		}
	}
}

func isGet(r *http.Request) bool { return r.Method == http.MethodGet || r.Method == http.MethodHead }

// isID accepts a tenant id as the console's paths carry it: a GUID.
func isID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return true
}

// checkPost refuses a state-changing request that does not come from a
// console page of this session: another origin (when the browser says),
// or a form without the session's anti-forgery token.
func (h *Handler) checkPost(w http.ResponseWriter, r *http.Request, v *viewer) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		h.message(w, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return false
	}
	if !sameOrigin(r) || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(v.CSRF)) != 1 || v.CSRF == "" {
		h.record(r.Context(), v, v.TenantID, "console.csrf", r.URL.Path, "Forbidden", "form without this session's anti-forgery token")
		h.message(w, http.StatusForbidden, "Forbidden", "The form could not be verified (missing or wrong anti-forgery token). Reload the page and try again.")
		return false
	}
	return true
}

// sameOrigin reports whether the request's Origin, if the browser sent
// one, is this host over https.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Scheme == "https" && strings.EqualFold(u.Host, r.Host)
}

// preCSRF returns the anti-forgery token of the operator's sign-in form,
// setting its cookie when the browser has none.
func (h *Handler) preCSRF(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(preCSRFCookie); err == nil && len(c.Value) >= 16 && len(c.Value) <= 64 {
		return c.Value
	}
	tok := userauth.NewID()
	setCookie(w, preCSRFCookie, tok, 0)
	return tok
}

// operatorSignIn serves the operator's sign-in: POST the operator key.
func (h *Handler) operatorSignIn(w http.ResponseWriter, r *http.Request) {
	if h.cfg.OperatorKey == "" {
		h.message(w, http.StatusNotFound, "Not found", "There is no such page.")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		h.message(w, http.StatusMethodNotAllowed, "Method not allowed", "Sign in from "+Prefix+".")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		h.message(w, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	c, err := r.Cookie(preCSRFCookie)
	if err != nil || !sameOrigin(r) || r.PostForm.Get("csrf") == "" ||
		subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(c.Value)) != 1 {
		h.message(w, http.StatusForbidden, "Forbidden", "The form could not be verified (missing or wrong anti-forgery token). Reload the page and try again.")
		return
	}
	key := r.PostForm.Get("key")
	if subtle.ConstantTimeCompare([]byte(key), []byte(h.cfg.OperatorKey)) != 1 {
		_ = h.cfg.Audit.Record(r.Context(), store.AuditRecord{Actor: "anonymous", Action: "console.signin", Target: "operator", Result: "Unauthorized", Detail: "wrong operator key"})
		h.render(w, http.StatusUnauthorized, "signin", pageData{Title: "Sign in to the console", CSRF: h.preCSRF(w, r),
			OperatorEnabled: true, Error: "That is not the operator key."})
		return
	}
	s := operatorSession{Key: h.operatorKeyHash(), ID: userauth.NewID(), CSRF: userauth.NewID(), Expires: h.now().Add(operatorLifetime)}
	v, err := userauth.SealJSON(h.cfg.KEK, s, operatorAAD)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	_ = h.cfg.Audit.Record(r.Context(), store.AuditRecord{Actor: "operator", Action: "console.signin", Target: "operator", Result: audit.Success})
	http.SetCookie(w, &http.Cookie{Name: operatorCookie, Value: v, Path: Prefix, MaxAge: int(operatorLifetime / time.Second),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

// operatorKeyHash names the operator key in a session without holding it.
func (h *Handler) operatorKeyHash() string {
	sum := sha256.Sum256([]byte("console operator key|" + h.cfg.OperatorKey))
	return hex.EncodeToString(sum[:16])
}

// signOutPost ends the console session: the cookies go, and the session
// is refused by every server sharing the store until it would have
// expired. A sign-out the store could not record is an error page, not a
// false "signed out".
func (h *Handler) signOutPost(w http.ResponseWriter, r *http.Request, v *viewer) {
	if err := h.signOut(r.Context(), v); err != nil {
		h.serverError(w, r, err)
		return
	}
	if v.Operator {
		http.SetCookie(w, &http.Cookie{Name: operatorCookie, Value: "", Path: Prefix, MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	} else {
		setCookie(w, signin.SessionCookie, "", -1)
	}
	h.record(r.Context(), v, v.TenantID, "console.signout", v.UserID, audit.Success, "")
	h.message(w, http.StatusOK, "Signed out", "You have signed out of the console.")
}

func setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// home lists the tenants the viewer sees.
func (h *Handler) home(w http.ResponseWriter, r *http.Request, v *viewer) {
	var tenants []store.Tenant
	if v.Operator {
		all, err := h.cfg.Directory.ListTenants(r.Context())
		if err != nil {
			h.serverError(w, r, err)
			return
		}
		for _, t := range all {
			if t.ID != directory.MicrosoftTenantID {
				tenants = append(tenants, t)
			}
		}
	} else {
		t, err := h.cfg.Directory.Tenant(r.Context(), v.TenantID)
		if err != nil {
			h.serverError(w, r, err)
			return
		}
		tenants = []store.Tenant{t}
	}
	h.render(w, http.StatusOK, "home", pageData{Title: "Tenants", Viewer: v, Tenants: tenants})
}

// record writes an audit record of a console act.
func (h *Handler) record(ctx context.Context, v *viewer, target, action, object, result, detail string) {
	actor, home := "operator", ""
	if v != nil && !v.Operator {
		actor, home = v.UserID, v.TenantID
	}
	_ = h.cfg.Audit.Record(ctx, store.AuditRecord{Actor: actor, ActorTenant: home, TargetTenant: target,
		Action: action, Target: object, Result: result, Detail: detail})
}

// ---- rendering ----

// pageData is what every template reads; each page uses some of it.
type pageData struct {
	Title           string
	Viewer          *viewer
	CSRF            string
	Error, Notice   string
	OperatorEnabled bool
	Message         string

	Tenants []store.Tenant
	Tenant  store.Tenant
	// The graph page.
	View      string // "in" or "out"
	Edges     []edgeView
	SVG       *svgGraph
	Truncated bool
	// The audit page.
	Filter  auditFilter
	Records []recordView
	Stream  string
}

func (h *Handler) render(w http.ResponseWriter, status int, page string, d pageData) {
	if d.Viewer != nil && d.CSRF == "" {
		d.CSRF = d.Viewer.CSRF
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := h.pages[page].ExecuteTemplate(w, "layout", d); err != nil {
		h.log.Error("console: render page", "page", page, "err", err)
	}
}

func (h *Handler) message(w http.ResponseWriter, status int, title, msg string) {
	h.render(w, status, "message", pageData{Title: title, Message: msg})
}

func (h *Handler) serverError(w http.ResponseWriter, r *http.Request, err error) {
	h.log.ErrorContext(r.Context(), "console: internal error", "err", err)
	h.message(w, http.StatusInternalServerError, "Something went wrong",
		"The console could not answer; request id "+httpx.InfoFrom(r.Context()).RequestID+".")
}

// serveStatic serves the stylesheet and the script.
func (h *Handler) serveStatic(w http.ResponseWriter, r *http.Request, name string) {
	if !isGet(r) {
		w.Header().Set("Allow", "GET, HEAD")
		h.message(w, http.StatusMethodNotAllowed, "Method not allowed", "Static files are read with GET.")
		return
	}
	var ct string
	switch name {
	case "console.css":
		ct = "text/css; charset=utf-8"
	case "console.js":
		ct = "text/javascript; charset=utf-8"
	default:
		h.message(w, http.StatusNotFound, "Not found", "There is no such file.")
		return
	}
	data, err := fs.ReadFile(h.static, name)
	if err != nil {
		h.message(w, http.StatusNotFound, "Not found", "There is no such file.")
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(data)
}

// securityHeaders: no framing, no foreign script, style or connection,
// nothing cached, no referrer to another origin. ("no-referrer" would
// make Chromium send "Origin: null" with the console's own forms, which
// sameOrigin rightly refuses.)
func securityHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
}

// short clips text for the graph's labels.
func short(n int, s string) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
