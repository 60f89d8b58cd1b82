package signin

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/sealed"
	"github.com/tenantbridge/tenantbridge/internal/userauth"
)

// The kinds of browser flow.
const (
	kindAuthorize    = "authorize"
	kindAdminConsent = "adminconsent"
	kindDevice       = "device"
)

// flowLifetime bounds how long a sign-in may sit on one page.
const flowLifetime = 20 * time.Minute

// flow is a sign-in in progress: the verified request and how far the
// user got. It travels sealed in every form, never stored.
type flow struct {
	Kind     string      `json:"k"`
	Tenant   string      `json:"t"`             // the tenant path segment as asked
	TenantID string      `json:"tid,omitempty"` // resolved ("" until the sign-in name says, for common)
	Req      authRequest `json:"req"`
	// Verified: the redirect URI is the client's, so errors go to it.
	Verified bool `json:"ver,omitempty"`
	// SPA: the redirect URI is a single-page application's, and so is the
	// code issued to it (userauth.Code.SPA).
	SPA          bool   `json:"spa,omitempty"`
	ForceConsent bool   `json:"fc,omitempty"`
	UserCode     string `json:"uc,omitempty"`
	Username     string `json:"un,omitempty"`
	// UserID is set once the password (or the session) proved who the
	// user is; AMR and AuthTime say how and when.
	UserID   string    `json:"oid,omitempty"`
	AuthTime time.Time `json:"at,omitzero"`
	AMR      []string  `json:"amr,omitempty"`
	// FreshAuth: the user authenticated in this flow, so a new session
	// cookie is due once sign-in completes.
	FreshAuth bool      `json:"fa,omitempty"`
	CSRF      string    `json:"csrf"`
	Expires   time.Time `json:"exp"`
}

var flowAAD = []byte("tenantbridge sign-in flow v1")

func (h *Handler) sealFlow(f *flow) (string, error) {
	f.Expires = h.now().Add(flowLifetime)
	plain, err := json.Marshal(f)
	if err != nil {
		return "", err
	}
	box, err := sealed.Seal(h.kek, plain, flowAAD)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(box), nil
}

func (h *Handler) openFlow(s string) (*flow, error) {
	if s == "" || len(s) > 32<<10 {
		return nil, errors.New("no flow")
	}
	box, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	plain, err := sealed.Open(h.kek, box, flowAAD)
	if err != nil {
		return nil, err
	}
	var f flow
	if err := json.Unmarshal(plain, &f); err != nil {
		return nil, err
	}
	if !h.now().Before(f.Expires) {
		return nil, errors.New("flow expired")
	}
	return &f, nil
}

// page renders one of the flow's pages with the flow sealed into it.
func (h *Handler) page(w http.ResponseWriter, r *http.Request, f *flow, fresh *userauth.Session, status int, name string, d pageData) {
	csrf := h.csrfFor(r, fresh)
	f.CSRF = csrf.token
	sealedFlow, err := h.sealFlow(f)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	d.CSRF, d.Flow = csrf.token, sealedFlow
	tenant := f.Tenant
	if d.Action == "" {
		step := map[string]string{"name": "name", "password": "password", "mfa": "mfa", "consent": "consent", "deviceconfirm": "device"}[name]
		d.Action = "/" + url.PathEscape(tenant) + "/login/" + step
	}
	if d.Username == "" {
		d.Username = f.Username
	}
	if d.Title == "" {
		d.Title = "Sign in to your account"
	}
	h.render(w, status, name, d, csrf)
}

// proceed takes a flow to its next step: the sign-in name, the password,
// the second factor, then what the flow is for. fresh is the session this
// response has just created, if any.
func (h *Handler) proceed(w http.ResponseWriter, r *http.Request, f *flow, fresh *userauth.Session) {
	ctx := r.Context()
	if f.UserID == "" && f.Req.Prompt != "login" && f.Req.Prompt != "select_account" {
		if s, ok := h.session(r); ok && (f.TenantID == "" || f.TenantID == s.TenantID) &&
			(f.Username == "" || strings.EqualFold(f.Username, s.UPN)) {
			f.TenantID, f.UserID, f.Username, f.AuthTime, f.AMR = s.TenantID, s.UserID, s.UPN, s.AuthTime, s.AMR
		}
	}
	if f.UserID == "" && f.Req.Prompt == "none" {
		h.fail(w, r, f, &authError{status: http.StatusBadRequest, oauth: "login_required", code: codeLoginRequired,
			msg: "A silent sign-in request was sent but no user is signed in."})
		return
	}
	if f.TenantID == "" && f.Username != "" && f.Req.Prompt != "select_account" {
		if t, ok := h.tenantOfName(r, f.Username); ok {
			f.TenantID = t
		}
	}
	if f.TenantID == "" || (f.UserID == "" && (f.Username == "" || f.Req.Prompt == "select_account")) {
		if f.Req.Prompt == "select_account" {
			f.Req.Prompt = "" // shown once
		}
		h.page(w, r, f, fresh, http.StatusOK, "name", pageData{AppName: h.appName(r, f)})
		return
	}
	if f.UserID == "" {
		h.page(w, r, f, fresh, http.StatusOK, "password", pageData{Restart: h.restartURL(f)})
		return
	}
	user, err := h.dir.GetUser(ctx, f.TenantID, f.UserID)
	if err != nil || !user.AccountEnabled {
		if err != nil && !errors.Is(err, directory.ErrNotFound) {
			h.serverError(w, r, err)
			return
		}
		f.UserID, f.AMR = "", nil
		h.page(w, r, f, fresh, http.StatusOK, "name", pageData{Error: "Your account has been locked or no longer exists. Contact your admin."})
		return
	}
	policy, err := h.dir.SignInPolicy(ctx, f.TenantID)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	if (user.HasTOTP() || policy.RequireMFA) && !slices.Contains(f.AMR, "mfa") {
		switch {
		case f.Req.Prompt == "none":
			h.fail(w, r, f, &authError{status: http.StatusBadRequest, oauth: "interaction_required", code: codeMFARequired,
				msg: "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access this application."})
		case !user.HasTOTP():
			h.fail(w, r, f, &authError{status: http.StatusBadRequest, oauth: "interaction_required", code: codeMFAEnrollment,
				msg: "Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access this application."})
		default:
			h.page(w, r, f, fresh, http.StatusOK, "mfa", pageData{})
		}
		return
	}
	if f.FreshAuth && fresh == nil {
		s := userauth.Session{TenantID: f.TenantID, UserID: user.ID, UPN: user.UserPrincipalName, AuthTime: f.AuthTime,
			AMR: f.AMR, Expires: h.now().Add(h.lifetime), CSRF: userauth.NewID()}
		v, err := userauth.SealSession(h.kek, s)
		if err != nil {
			h.serverError(w, r, err)
			return
		}
		setCookie(w, sessionCookie, v, int(h.lifetime/time.Second))
		fresh = &s
		f.FreshAuth = false
		h.record(ctx, user.ID, f.TenantID, f.TenantID, "signin.session", user.ID, audit.Success, "amr "+strings.Join(f.AMR, " "))
	}
	switch f.Kind {
	case kindAuthorize:
		h.authorizeSignedIn(w, r, f, user, fresh)
	case kindAdminConsent:
		h.adminConsentSignedIn(w, r, f, user, fresh)
	case kindDevice:
		h.deviceSignedIn(w, r, f, user, fresh)
	case kindConsole:
		h.consoleSignedIn(w, r, f, user, fresh)
	default:
		h.errorPage(w, r, http.StatusBadRequest, codeInvalidRequest, "The sign-in request is not valid.")
	}
}

// tenantOfName finds the tenant a sign-in name belongs to by its domain.
func (h *Handler) tenantOfName(r *http.Request, name string) (string, bool) {
	_, domain, ok := strings.Cut(name, "@")
	if !ok || domain == "" || strings.Contains(domain, "@") {
		return "", false
	}
	t, err := h.dir.Tenant(r.Context(), domain)
	if err != nil || isMicrosoft(t.ID) || !strings.EqualFold(t.Domain, domain) {
		return "", false
	}
	return t.ID, true
}

func (h *Handler) appName(r *http.Request, f *flow) string {
	if f.Kind == kindConsole {
		return consoleName
	}
	if app, err := h.dir.ApplicationByAppID(r.Context(), f.Req.ClientID); err == nil {
		return app.DisplayName
	}
	return ""
}

// restartURL starts the same request over with the account picker.
func (h *Handler) restartURL(f *flow) string {
	if f.Kind == kindConsole {
		return ConsoleSignInPath(f.Tenant, true)
	}
	if f.Kind != kindAuthorize {
		return "/" + url.PathEscape(f.Tenant) + "/oauth2/v2.0/authorize?" + url.Values{"client_id": {f.Req.ClientID}}.Encode()
	}
	path := "/oauth2/v2.0/authorize"
	if f.Req.Version == 1 {
		path = "/oauth2/authorize"
	}
	q := url.Values{"client_id": {f.Req.ClientID}, "redirect_uri": {f.Req.RedirectURI}, "response_type": {f.Req.ResponseType},
		"response_mode": {f.Req.ResponseMode}, "prompt": {"select_account"}}
	for k, v := range map[string]string{"scope": f.Req.Scope, "resource": f.Req.Resource, "state": f.Req.State, "nonce": f.Req.Nonce,
		"code_challenge": f.Req.CodeChallenge, "code_challenge_method": f.Req.CodeChallengeMethod} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return "/" + url.PathEscape(f.Tenant) + path + "?" + q.Encode()
}

// loginPost serves the pages' own forms: POST /{tenant}/login/{step}.
func (h *Handler) loginPost(w http.ResponseWriter, r *http.Request, tenant, step string) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, r, http.StatusBadRequest, codeInvalidRequest, "The request is not valid.")
		return
	}
	f, err := h.openFlow(r.PostForm.Get("flow"))
	if err != nil {
		h.errorPage(w, r, http.StatusBadRequest, codeFlowExpired, "The sign-in page has expired or is not valid. Go back to the application and sign in again.")
		return
	}
	if !h.checkCSRF(r) || subtle.ConstantTimeCompare([]byte(f.CSRF), []byte(r.PostForm.Get("csrf"))) != 1 || !strings.EqualFold(f.Tenant, tenant) {
		h.record(r.Context(), "anonymous", "", f.TenantID, "signin.csrf", f.Req.ClientID, "AADSTS90023", "form without a valid CSRF token")
		h.errorPage(w, r, http.StatusForbidden, codeInvalidRequest, "The form could not be verified (missing or wrong anti-forgery token). Go back to the application and sign in again.")
		return
	}
	ctx := r.Context()
	switch step {
	case "name":
		name := strings.TrimSpace(r.PostForm.Get("username"))
		if name == "" || len(name) > 256 {
			h.page(w, r, f, nil, http.StatusOK, "name", pageData{Error: "Enter a valid email address or sign-in name."})
			return
		}
		f.Username, f.UserID, f.AMR = name, "", nil
		tid := f.TenantID
		if strings.EqualFold(f.Tenant, "common") || strings.EqualFold(f.Tenant, "organizations") {
			tid, _ = h.tenantOfName(r, name)
		}
		var user *directory.User
		if tid != "" {
			user, err = h.dir.UserByName(ctx, tid, name)
			if err != nil && !errors.Is(err, directory.ErrNotFound) {
				h.serverError(w, r, err)
				return
			}
		}
		if user == nil {
			h.record(ctx, "anonymous", "", tid, "signin.name", f.Req.ClientID, fmt.Sprintf("AADSTS%d", codeUserNotFound), "unknown sign-in name")
			h.page(w, r, f, nil, http.StatusOK, "name", pageData{Error: "This username may be incorrect. Make sure you typed it correctly. Otherwise, contact your admin."})
			return
		}
		f.TenantID = tid
		// Picking the account the browser is signed in with needs no password.
		if s, ok := h.session(r); ok && f.Req.Prompt != "login" && s.TenantID == tid && s.UserID == user.ID {
			f.UserID, f.AuthTime, f.AMR = s.UserID, s.AuthTime, s.AMR
		}
		if f.Req.Prompt == "select_account" {
			f.Req.Prompt = ""
		}
		h.proceed(w, r, f, nil)
	case "password":
		if f.TenantID == "" || f.Username == "" {
			h.proceed(w, r, f, nil)
			return
		}
		user, err := h.dir.UserByName(ctx, f.TenantID, f.Username)
		if err != nil && !errors.Is(err, directory.ErrNotFound) {
			h.serverError(w, r, err)
			return
		}
		// Smart lockout decides first: a locked account is refused before
		// its password is hashed; a password that cannot be checked in time
		// (every hashing slot busy) is a "try again", counted against no one.
		err = directory.ErrBadPassword
		if user != nil && user.AccountEnabled {
			err = h.dir.CheckPasswordSignIn(ctx, user, r.PostForm.Get("password"))
		}
		actor := "anonymous"
		if user != nil {
			actor = user.ID
		}
		switch {
		case errors.Is(err, directory.ErrAccountLocked):
			// The message Entra shows while smart lockout holds the account
			// (learn.microsoft.com/entra/identity/authentication/howto-password-smart-lockout).
			h.record(ctx, actor, f.TenantID, f.TenantID, "signin.password", f.Req.ClientID, fmt.Sprintf("AADSTS%d", codeAccountLocked), "account locked by smart lockout")
			h.page(w, r, f, nil, http.StatusOK, "password", pageData{Restart: h.restartURL(f),
				Error: "Your account is temporarily locked to prevent unauthorized use. Try again later, and if you still have trouble, contact your admin."})
			return
		case errors.Is(err, directory.ErrPasswordBusy):
			h.record(ctx, actor, f.TenantID, f.TenantID, "signin.password", f.Req.ClientID, fmt.Sprintf("AADSTS%d", codeTransient), "password check busy")
			w.Header().Set("Retry-After", "1")
			h.page(w, r, f, nil, http.StatusServiceUnavailable, "password", pageData{Restart: h.restartURL(f),
				Error: "We couldn't check your password right now because the service is busy. Please try again in a moment."})
			return
		case errors.Is(err, directory.ErrBadPassword):
			h.record(ctx, actor, f.TenantID, f.TenantID, "signin.password", f.Req.ClientID, fmt.Sprintf("AADSTS%d", codeBadPassword), "invalid username or password")
			h.page(w, r, f, nil, http.StatusOK, "password", pageData{Restart: h.restartURL(f),
				Error: "Your account or password is incorrect. If you don't remember your password, contact your admin."})
			return
		case err != nil:
			h.serverError(w, r, err)
			return
		}
		f.UserID, f.Username, f.AuthTime, f.AMR, f.FreshAuth = user.ID, user.UserPrincipalName, h.now().UTC(), []string{"pwd"}, true
		f.Req.Prompt = strings.Replace(f.Req.Prompt, "login", "", 1)
		h.record(ctx, user.ID, f.TenantID, f.TenantID, "signin.password", f.Req.ClientID, audit.Success, "")
		h.proceed(w, r, f, nil)
	case "mfa":
		if f.UserID == "" {
			h.proceed(w, r, f, nil)
			return
		}
		user, err := h.dir.GetUser(ctx, f.TenantID, f.UserID)
		if err != nil {
			f.UserID = ""
			h.proceed(w, r, f, nil)
			return
		}
		if !h.dir.CheckTOTP(user, r.PostForm.Get("otc")) {
			h.record(ctx, user.ID, f.TenantID, f.TenantID, "signin.mfa", f.Req.ClientID, fmt.Sprintf("AADSTS%d", codeBadTOTP), "wrong verification code")
			h.page(w, r, f, nil, http.StatusOK, "mfa", pageData{Error: "You didn't enter the expected verification code. Please try again."})
			return
		}
		if !slices.Contains(f.AMR, "mfa") {
			f.AMR = append(f.AMR, "mfa")
		}
		f.FreshAuth = true
		h.record(ctx, user.ID, f.TenantID, f.TenantID, "signin.mfa", f.Req.ClientID, audit.Success, "")
		h.proceed(w, r, f, nil)
	case "consent", "device":
		if f.UserID == "" {
			h.proceed(w, r, f, nil)
			return
		}
		s, ok := h.session(r)
		if !ok || s.UserID != f.UserID || s.TenantID != f.TenantID {
			// The decision must come from the browser that signed in.
			f.UserID = ""
			h.proceed(w, r, f, nil)
			return
		}
		user, err := h.dir.GetUser(ctx, f.TenantID, f.UserID)
		if err != nil {
			f.UserID = ""
			h.proceed(w, r, f, nil)
			return
		}
		accept := r.PostForm.Get("decision") == "accept"
		if step == "device" {
			h.deviceDecision(w, r, f, user, accept)
			return
		}
		h.consentDecision(w, r, f, user, accept, r.PostForm.Get("org") == "on")
	default:
		http.NotFound(w, r)
	}
}

// fail ends a flow with an error: to the client once its redirect URI is
// verified, on a page before.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, f *flow, e *authError) {
	actor, actorTenant := "anonymous", ""
	if f.UserID != "" {
		actor, actorTenant = f.UserID, f.TenantID
	}
	h.record(r.Context(), actor, actorTenant, f.TenantID, "signin."+f.Kind, f.Req.ClientID, resultOf(e), e.oauth)
	if !f.Verified {
		h.errorPage(w, r, e.status, e.code, e.msg)
		return
	}
	info := httpx.InfoFrom(r.Context())
	desc := fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", e.code, e.msg,
		info.RequestID, info.RequestID, h.now().UTC().Format("2006-01-02 15:04:05Z"))
	params := url.Values{"error": {e.oauth}, "error_description": {desc}}
	if e.subcode != "" {
		params.Set("error_subcode", e.subcode)
	}
	h.respond(w, r, f, params)
}

func resultOf(e *authError) string { return fmt.Sprintf("AADSTS%d", e.code) }

// respond sends parameters to the client's verified redirect URI in the
// flow's response mode.
func (h *Handler) respond(w http.ResponseWriter, r *http.Request, f *flow, params url.Values) {
	if f.Req.State != "" {
		params.Set("state", f.Req.State)
	}
	target := f.Req.RedirectURI
	switch f.Req.ResponseMode {
	case "form_post":
		type param struct{ Name, Value string }
		var ps []param
		for _, k := range sortedKeys(params) {
			ps = append(ps, param{k, params.Get(k)})
		}
		nonce := userauth.NewID()
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; frame-ancestors 'none'; base-uri 'none'")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		if err := h.formPost.Execute(w, struct {
			RedirectURI, Nonce string
			Params             []param
		}{target, nonce, ps}); err != nil {
			h.log.ErrorContext(r.Context(), "signin: render form_post", "err", err)
		}
		return
	case "fragment":
		target = strings.SplitN(target, "#", 2)[0] + "#" + params.Encode()
	default:
		sep := "?"
		if strings.Contains(target, "?") {
			sep = "&"
		}
		target += sep + params.Encode()
	}
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusFound)
}

func sortedKeys(v url.Values) []string {
	ks := make([]string, 0, len(v))
	for k := range v {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
