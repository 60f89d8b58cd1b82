package signin

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/userauth"
)

// authRequest is an authorize request, parsed.
type authRequest struct {
	Version             int
	ClientID            string
	RedirectURI         string
	ResponseType        string
	ResponseMode        string
	Scope               string
	Resource            string
	State               string
	Nonce               string
	CodeChallenge       string
	CodeChallengeMethod string
	Prompt              string
	LoginHint           string
	DomainHint          string
}

// maxParam bounds each parameter; Entra's own limits are of this order.
const maxParam = 4096

// authorizeParams are the parameters parseAuthorize reads; each may appear once.
var authorizeParams = []string{"client_id", "redirect_uri", "response_type", "response_mode", "scope", "resource",
	"state", "nonce", "code_challenge", "code_challenge_method", "prompt", "login_hint", "domain_hint"}

// parseAuthorize reads an authorize request's parameters. It refuses only
// what makes the request unreadable (a repeated or oversized parameter, a
// missing client_id): those errors are shown on a page, since the
// redirect URI is not yet verified. The rest is checked by validate, after
// the redirect URI.
func parseAuthorize(q url.Values, version int) (*authRequest, *authError) {
	for _, k := range authorizeParams {
		vs := q[k]
		if len(vs) > 1 {
			return nil, invalidRequest("The parameter '%s' is duplicated.", k)
		}
		if len(vs) == 1 && (len(vs[0]) > maxParam || !utf8.ValidString(vs[0]) || strings.ContainsRune(vs[0], 0)) {
			return nil, invalidRequest("The value of the parameter '%s' is not valid.", k)
		}
	}
	req := &authRequest{
		Version: version, ClientID: strings.TrimSpace(q.Get("client_id")), RedirectURI: q.Get("redirect_uri"),
		ResponseType: q.Get("response_type"), ResponseMode: q.Get("response_mode"), Scope: q.Get("scope"),
		Resource: q.Get("resource"), State: q.Get("state"), Nonce: q.Get("nonce"), CodeChallenge: q.Get("code_challenge"),
		CodeChallengeMethod: q.Get("code_challenge_method"), Prompt: q.Get("prompt"), LoginHint: strings.TrimSpace(q.Get("login_hint")),
		DomainHint: strings.TrimSpace(q.Get("domain_hint")),
	}
	if req.ClientID == "" {
		return nil, missingParam("client_id")
	}
	return req, nil
}

// validate checks what an authorize request asks for, once its redirect
// URI is known to be the client's: these errors go to the client.
func (req *authRequest) validate(publicClient bool) *authError {
	types := strings.Fields(req.ResponseType)
	switch {
	case req.ResponseType == "":
		return missingParam("response_type")
	case slices.Contains(types, "token"):
		return &authError{status: http.StatusBadRequest, oauth: "unsupported_response_type", code: codeTokenNotEnabled,
			msg: "response_type 'token' is not enabled for the application."}
	case slices.Contains(types, "id_token"):
		return &authError{status: http.StatusBadRequest, oauth: "unsupported_response_type", code: codeIDTokenNotEnabled,
			msg: "response_type 'id_token' is not enabled for the application."}
	case req.ResponseType != "code":
		return &authError{status: http.StatusBadRequest, oauth: "unsupported_response_type", code: codeInvalidRequest,
			msg: "The provided value for the input parameter 'response_type' is not allowed for this request. Expected value: 'code'."}
	}
	switch req.ResponseMode {
	case "":
		req.ResponseMode = "query"
	case "query", "fragment", "form_post":
	default:
		return invalidRequest("The provided value for the input parameter 'response_mode' is not valid: use query, fragment or form_post.")
	}
	switch {
	case req.CodeChallenge == "" && req.CodeChallengeMethod != "":
		return missingParam("code_challenge")
	case req.CodeChallenge != "" && req.CodeChallengeMethod != "S256":
		return invalidRequest("The code_challenge_method '%s' is not supported. Use S256.", req.CodeChallengeMethod)
	case req.CodeChallenge != "" && !userauth.ValidChallenge(req.CodeChallenge):
		return &authError{status: http.StatusBadRequest, oauth: "invalid_request", code: codeInvalidChallenge,
			msg: "Invalid size of Code_Challenge parameter."}
	case req.CodeChallenge == "" && publicClient:
		return &authError{status: http.StatusBadRequest, oauth: "invalid_request", code: codePKCERequired,
			msg: "Proof Key for Code Exchange is required for public clients: send code_challenge with code_challenge_method S256."}
	}
	switch req.Prompt {
	case "", "login", "none", "consent", "select_account", "admin_consent":
	default:
		return invalidRequest("Invalid value '%s' for parameter 'prompt'.", req.Prompt)
	}
	if req.Version == 2 && strings.TrimSpace(req.Scope) == "" {
		return missingParam("scope")
	}
	return nil
}

// redirectKind is the platform a redirect URI is registered under.
type redirectKind int

const (
	redirectWeb    redirectKind = iota // web: a confidential client, or a public one if isFallbackPublicClient
	redirectPublic                     // mobile and desktop: a public client
	// redirectSPA is a single-page application's: Entra issues the code,
	// and the token endpoint redeems it only cross-origin with PKCE
	// ("Redirect URI setup required for single-page apps",
	// https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow).
	redirectSPA
)

// checkRedirect returns the redirect URI to use, if it is registered on
// the app exactly, and the platform it is registered under. An empty one
// means the app's only registered URI. A URI registered under two
// platforms is taken as a public client's, then a web one, then a SPA's
// (Entra "will pick one arbitrarily", reply-url.md).
func checkRedirect(app *directory.Application, uri string) (string, redirectKind, *authError) {
	if uri == "" {
		all := slices.Concat(app.WebRedirectURIs, app.PublicClientRedirectURIs, app.SPARedirectURIs)
		if len(all) != 1 {
			if len(all) == 0 {
				return "", redirectWeb, &authError{status: http.StatusBadRequest, oauth: "invalid_request", code: codeNoReplyAddress,
					msg: "No reply address is registered for the application."}
			}
			return "", redirectWeb, missingParam("redirect_uri")
		}
		uri = all[0]
	}
	switch {
	case slices.Contains(app.PublicClientRedirectURIs, uri):
		return uri, redirectPublic, nil
	case slices.Contains(app.WebRedirectURIs, uri):
		return uri, redirectWeb, nil
	case slices.Contains(app.SPARedirectURIs, uri):
		return uri, redirectSPA, nil
	}
	return "", redirectWeb, redirectMismatch(uri, app.AppID)
}

// authorize serves GET and POST /{tenant}/oauth2[/v2.0]/authorize.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, tenant string, version int) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if len(r.URL.RawQuery) > maxForm || r.ParseForm() != nil {
		h.errorPage(w, r, http.StatusBadRequest, codeInvalidRequest, "The request is not valid.")
		return
	}
	req, aerr := parseAuthorize(r.Form, version)
	if aerr != nil {
		h.errorPage(w, r, aerr.status, aerr.code, aerr.msg)
		return
	}
	f := &flow{Kind: kindAuthorize, Tenant: tenant, Req: *req}
	if !h.resolveTenantPath(w, r, f) {
		return
	}
	app, ok := h.clientApp(w, r, f, req.ClientID)
	if !ok {
		return
	}
	uri, kind, aerr := checkRedirect(app, req.RedirectURI)
	if aerr != nil {
		h.record(r.Context(), "anonymous", "", f.TenantID, "signin.authorize", req.ClientID, resultOf(aerr), "redirect_uri refused")
		h.errorPage(w, r, aerr.status, aerr.code, aerr.msg)
		return
	}
	f.Req.RedirectURI, f.Verified, f.SPA = uri, true, kind == redirectSPA
	// A SPA's code without PKCE is issued, as Entra issues it, and refused
	// at redemption (AADSTS9002325); a public client's is refused here.
	public := kind == redirectPublic || (kind == redirectWeb && app.IsFallbackPublicClient)
	if aerr := f.Req.validate(public); aerr != nil {
		h.fail(w, r, f, aerr)
		return
	}
	if f.Req.Prompt == "consent" || f.Req.Prompt == "admin_consent" {
		f.ForceConsent = true
	}
	f.Username = f.Req.LoginHint
	if f.TenantID == "" && f.Req.DomainHint != "" {
		if t, err := h.dir.Tenant(r.Context(), f.Req.DomainHint); err == nil && !isMicrosoft(t.ID) {
			f.TenantID = t.ID
		}
	}
	h.proceed(w, r, f, nil)
}

// resolveTenantPath resolves the tenant path segment; common and
// organizations leave it to the sign-in name. It shows the error page and
// returns false for an unknown tenant.
func (h *Handler) resolveTenantPath(w http.ResponseWriter, r *http.Request, f *flow) bool {
	switch strings.ToLower(f.Tenant) {
	case "common", "organizations":
		return true
	}
	t, err := h.dir.Tenant(r.Context(), f.Tenant)
	if err != nil || isMicrosoft(t.ID) {
		if err != nil && !errors.Is(err, directory.ErrNotFound) {
			h.log.ErrorContext(r.Context(), "signin: tenant lookup", "err", err)
		}
		ae := tenantNotFound(f.Tenant)
		h.errorPage(w, r, ae.status, ae.code, ae.msg)
		return false
	}
	f.TenantID = t.ID
	return true
}

func isMicrosoft(tenantID string) bool { return tenantID == directory.MicrosoftTenantID }

// clientApp finds the client application: it must exist and, when the
// tenant is known, be usable there. It shows the error page otherwise.
func (h *Handler) clientApp(w http.ResponseWriter, r *http.Request, f *flow, clientID string) (*directory.Application, bool) {
	var app *directory.Application
	var err error
	if f.TenantID != "" {
		app, err = h.dir.ClientApplication(r.Context(), f.TenantID, clientID)
	} else {
		app, err = h.dir.ApplicationByAppID(r.Context(), clientID)
	}
	if err != nil {
		var ce *directory.ConsentError
		if !errors.Is(err, directory.ErrNotFound) && !errors.As(err, &ce) {
			h.serverError(w, r, err)
			return nil, false
		}
		tenant := f.TenantID
		if tenant == "" {
			tenant = f.Tenant
		}
		ae := clientNotFound(clientID, tenant)
		h.record(r.Context(), "anonymous", "", f.TenantID, "signin.authorize", clientID, resultOf(ae), "unknown client")
		h.errorPage(w, r, ae.status, ae.code, ae.msg)
		return nil, false
	}
	return app, true
}

func (h *Handler) serverError(w http.ResponseWriter, r *http.Request, err error) {
	h.log.ErrorContext(r.Context(), "signin: internal error", "err", err)
	h.errorPage(w, r, http.StatusInternalServerError, 90033, "A transient error has occurred. Please try again.")
}
