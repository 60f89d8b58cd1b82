package partner

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// flowCookie binds a consent flow to the browser that started it, so that
// a callback carrying someone else's code (login CSRF) is refused.
const flowCookie = "tb_partner_flow"

// flowLifetime bounds how long a partner admin may take to sign in.
const flowLifetime = 10 * time.Minute

// maxFlows bounds the consent flows in progress.
const maxFlows = 1000

// flow is a consent flow in progress: what the callback must match.
type flow struct {
	verifier string
	nonce    string
	expires  time.Time
}

type flowStore struct {
	mu sync.Mutex
	m  map[string]flow // by state
}

func (f *flowStore) put(state string, fl flow, now time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, v := range f.m {
		if now.After(v.expires) {
			delete(f.m, k)
		}
	}
	if len(f.m) >= maxFlows {
		return errors.New("too many consent flows in progress; try again in a few minutes")
	}
	f.m[state] = fl
	return nil
}

// take removes and returns the flow of state: a state is used once.
func (f *flowStore) take(state string, now time.Time) (flow, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.m[state]
	delete(f.m, state)
	if !ok || now.After(fl.expires) {
		return flow{}, false
	}
	return fl, true
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Handler is the partner-consent page: GET / shows the custody and a
// "Connect partner" link, GET /connect starts the authorization code flow
// and GET /callback finishes it. Mount it at the root of a listener, or
// under a prefix with http.StripPrefix; Config.RedirectURL must name its
// /callback.
func (c *Custodian) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", c.index)
	mux.HandleFunc("GET /connect", c.connect)
	mux.HandleFunc("GET /callback", c.callback)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'")
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		mux.ServeHTTP(w, r)
	})
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} – tenantbridge broker</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}dt{font-weight:bold}.warn{color:#8a3b00}.err{color:#a00}</style>
</head><body>
<h1>{{.Title}}</h1>
{{if .Error}}<p class="err" role="alert">{{.Error}}</p>{{end}}
{{if .Message}}<p>{{.Message}}</p>{{end}}
{{with .Status}}<dl>
<dt>Partner administrator</dt><dd>{{.User}}</dd>
<dt>Partner tenant</dt><dd>{{.TenantID}}</dd>
<dt>Delegated permissions</dt><dd>{{.Scopes}}</dd>
<dt>Consented</dt><dd>{{.ConsentedAt.Format "2006-01-02 15:04 MST"}}</dd>
<dt>Last used</dt><dd>{{.LastUsed.Format "2006-01-02 15:04 MST"}}</dd>
<dt>Vault secret</dt><dd>{{.Secret}} (version {{.Version}})</dd>
</dl>{{if .Warning}}<p class="warn" role="alert">{{.Warning}}</p>{{end}}{{end}}
<p><a href="{{.Connect}}">Connect partner</a> – sign in as the partner's administrator, with multi-factor authentication, and consent.{{if .Status}} Consenting again replaces the stored token.{{end}}</p>
</body></html>`))

type pageData struct {
	Title, Message, Error string
	Status                *Status
	Connect               string
}

func (c *Custodian) render(w http.ResponseWriter, status int, d pageData) {
	if d.Connect == "" {
		d.Connect = c.connectURL()
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pageTemplate.Execute(w, d)
}

// connectURL is /connect next to the callback.
func (c *Custodian) connectURL() string {
	if u, err := url.Parse(c.cfg.RedirectURL); err == nil {
		u.Path = strings.TrimSuffix(u.Path, "/callback") + "/connect"
		u.RawQuery = ""
		return u.Path
	}
	return "connect"
}

func (c *Custodian) index(w http.ResponseWriter, r *http.Request) {
	d := pageData{Title: "Partner connection"}
	st, err := c.Status(r.Context())
	switch {
	case errors.Is(err, ErrNotConnected):
		d.Message = "No partner is connected."
	case err != nil:
		d.Error = "The vault could not be read: " + err.Error()
	default:
		d.Status = st
	}
	c.render(w, http.StatusOK, d)
}

// askedScopes are the configured scopes with openid, profile and
// offline_access (the refresh token).
func (c *Custodian) askedScopes() string {
	scopes := []string{"openid", "profile", "offline_access"}
	for _, s := range c.cfg.Scopes {
		if !oidcScope(s) {
			scopes = append(scopes, s)
		}
	}
	return strings.Join(scopes, " ")
}

func (c *Custodian) connect(w http.ResponseWriter, r *http.Request) {
	now := c.cfg.Now()
	state, nonce, verifier := randomString(32), randomString(32), randomString(48)
	if err := c.flows.put(state, flow{verifier: verifier, nonce: nonce, expires: now.Add(flowLifetime)}, now); err != nil {
		c.render(w, http.StatusServiceUnavailable, pageData{Title: "Partner connection", Error: err.Error()})
		return
	}
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {c.cfg.ClientID}, "response_type": {"code"}, "redirect_uri": {c.cfg.RedirectURL},
		"response_mode": {"query"}, "scope": {c.askedScopes()}, "state": {state}, "nonce": {nonce},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"prompt": {"select_account"}}
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Value: state, Path: "/", MaxAge: int(flowLifetime / time.Second),
		HttpOnly: true, Secure: strings.HasPrefix(c.cfg.RedirectURL, "https:"), SameSite: http.SameSiteLaxMode})
	c.log.Info("partner consent started")
	http.Redirect(w, r, c.cfg.AuthorityHost+"/"+url.PathEscape(c.cfg.Tenant)+"/oauth2/v2.0/authorize?"+q.Encode(), http.StatusFound)
}

func (c *Custodian) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: strings.HasPrefix(c.cfg.RedirectURL, "https:"), SameSite: http.SameSiteLaxMode})
	refuse := func(status int, msg string) {
		c.log.Warn("partner consent refused", "reason", msg)
		c.render(w, status, pageData{Title: "Partner not connected", Error: msg})
	}
	state := q.Get("state")
	cookie, err := r.Cookie(flowCookie)
	if state == "" || err != nil || subtle.ConstantTimeCompare([]byte(cookie.Value), []byte(state)) != 1 {
		refuse(http.StatusBadRequest, "This answer does not belong to a consent started in this browser (state mismatch). Start again with Connect partner.")
		return
	}
	fl, ok := c.flows.take(state, c.cfg.Now())
	if !ok {
		refuse(http.StatusBadRequest, "This consent has expired or was already used. Start again with Connect partner.")
		return
	}
	if e := q.Get("error"); e != "" {
		desc := q.Get("error_description")
		if i := strings.IndexAny(desc, "\r\n"); i >= 0 {
			desc = desc[:i]
		}
		refuse(http.StatusBadRequest, fmt.Sprintf("The sign-in did not complete: %s: %s", e, desc))
		return
	}
	code := q.Get("code")
	if code == "" {
		refuse(http.StatusBadRequest, "The answer carries no authorization code.")
		return
	}
	st, err := c.exchange(r.Context(), code, fl)
	if err != nil {
		status := http.StatusBadGateway
		var ce *consentError
		if errors.As(err, &ce) {
			status = ce.status
		}
		refuse(status, err.Error())
		return
	}
	c.render(w, http.StatusOK, pageData{Title: "Partner connected",
		Message: "The partner's delegated access is now held by the broker; the refresh token is in the vault.", Status: st})
}

// consentError is a consent the broker refuses to keep.
type consentError struct {
	status int
	err    error
}

func (e *consentError) Error() string { return e.err.Error() }
func (e *consentError) Unwrap() error { return e.err }

func refuseConsent(format string, args ...any) error {
	return &consentError{status: http.StatusForbidden, err: fmt.Errorf(format, args...)}
}

// exchange redeems the code, checks the id_token (audience, nonce, MFA) and
// stores the refresh token as a new version of the secret.
func (c *Custodian) exchange(ctx context.Context, code string, fl flow) (*Status, error) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.cfg.RedirectURL},
		"code_verifier": {fl.verifier}, "scope": {c.askedScopes()}}
	tr, err := c.redeem(ctx, c.tokenURL(c.cfg.Tenant), form)
	if err != nil {
		return nil, fmt.Errorf("the authorization code was not redeemed: %w", err)
	}
	if tr.RefreshToken == "" {
		return nil, refuseConsent("the token endpoint returned no refresh token (was offline_access consented?)")
	}
	if tr.IDToken == "" {
		return nil, refuseConsent("the token endpoint returned no id_token")
	}
	id, err := parseIDToken(tr.IDToken)
	if err != nil {
		return nil, refuseConsent("%v", err)
	}
	now := c.cfg.Now().UTC()
	switch {
	case !containsFold(id.Audience, c.cfg.ClientID):
		return nil, refuseConsent("the id_token is not for this application")
	case subtle.ConstantTimeCompare([]byte(id.Nonce), []byte(fl.nonce)) != 1:
		return nil, refuseConsent("the id_token's nonce does not match this consent")
	case id.Expires != 0 && time.Unix(id.Expires, 0).Before(now.Add(-5*time.Minute)):
		return nil, refuseConsent("the id_token has expired")
	case id.TenantID == "":
		return nil, refuseConsent("the id_token names no tenant")
	case tenantIsID(c.cfg.Tenant) && !strings.EqualFold(c.cfg.Tenant, id.TenantID):
		return nil, refuseConsent("the administrator signed in to tenant %s, not the partner tenant %s", id.TenantID, c.cfg.Tenant)
	}
	// Entra's v2 id_tokens carry no amr; the access token (v1 for Graph and
	// Partner Center, as the APIs that enforce the rule read it) does. Both
	// came straight from the token endpoint.
	amr := id.AMR
	if len(amr) == 0 {
		if at, err := parseIDToken(tr.AccessToken); err == nil {
			amr = at.AMR
		}
	}
	if !slices.Contains(amr, "mfa") {
		return nil, &consentError{status: http.StatusForbidden, err: fmt.Errorf("%w (amr %v): sign in again with your second factor", ErrMFARequired, amr)}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// With a multi-tenant authority (organizations), the first consent pins
	// the partner's tenant: an administrator of another tenant who finds the
	// page cannot replace the partner's token.
	if !tenantIsID(c.cfg.Tenant) {
		cur, err := c.load(ctx)
		switch {
		case err == nil && cur.tags[TagTenantID] != "" && !strings.EqualFold(cur.tags[TagTenantID], id.TenantID):
			return nil, refuseConsent("the stored partner access belongs to tenant %s; an administrator of tenant %s cannot replace it (configure the partner tenant, or delete the secret to connect another partner)",
				cur.tags[TagTenantID], id.TenantID)
		case err != nil && !errors.Is(err, ErrNotConnected):
			return nil, err
		}
	}
	scopes := tr.Scope
	if len(scopes) > 256 {
		scopes = scopes[:256]
	}
	ts := now.Format(time.RFC3339)
	s := &stored{token: tr.RefreshToken, tags: map[string]string{TagUser: id.user(), TagUserID: id.ObjectID, TagTenantID: id.TenantID,
		TagClientID: c.cfg.ClientID, TagScopes: scopes, TagConsentedAt: ts, TagStoredAt: ts, TagLastUsed: ts}}
	if err := c.save(ctx, s); err != nil {
		return nil, err
	}
	c.unsaved = nil // the new consent replaces whatever was pending
	c.log.Info("partner connected", "user", id.user(), "tenant", id.TenantID, "version", s.version, "scope", tr.Scope)
	return &Status{Secret: c.cfg.SecretName, Version: s.version, User: id.user(), UserID: id.ObjectID, TenantID: id.TenantID,
		Scopes: scopes, ConsentedAt: now, StoredAt: now, LastUsed: now, ExpiresAt: now.Add(c.cfg.Inactivity)}, nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// tenantIsID reports whether the configured tenant is a tenant id (not
// organizations, common or a domain).
func tenantIsID(t string) bool {
	return len(t) == 36 && strings.Count(t, "-") == 4
}
