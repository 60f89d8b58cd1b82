package sts

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/token"
	"github.com/tenantbridge/tenantbridge/internal/userauth"
)

// grant turns a token request of one grant_type into a token, in the style of
// fosite's handlers: the token endpoint parses the request, resolves the
// tenant and authenticates the client; a grant adds only what is its own.
// Each grant lives in its own file (grant_<type>.go) and is registered in
// New; adding one never touches another.
type grant interface {
	// prepare checks the grant's own parameters and records what the
	// request is for (req.resource). It runs before the client is
	// authenticated and must not read the directory, so that a malformed
	// request is refused cheaply and learns nothing.
	prepare(req *tokenRequest) *Error
	// clientCredentialRequired reports whether only confidential clients
	// (with a secret or an assertion) may use the grant.
	clientCredentialRequired() bool
	// issue makes the token for an authenticated client.
	issue(ctx context.Context, req *tokenRequest, c *client) (*issuedToken, *Error)
}

// tokenRequest is a parsed token request and what the endpoint has learnt
// about it so far.
type tokenRequest struct {
	endpoint  endpointVersion
	baseURL   string       // the URL the client reached us by: issuers follow it
	tenantRef string       // the tenant as the path names it
	tenant    store.Tenant // zero when the path names no tenant (common, organizations)
	form      tokenForm
	basic     *basicAuth // nil without Basic authentication
	// origin is the request's Origin header: a browser's cross-origin
	// request, which only a SPA's redemption may be (spa.go).
	origin string
	now    time.Time
	// resource is what the token is for, as the client named it: an
	// identifier URI or appId (set by the grant's prepare).
	resource string
	// impliedTenant is the tenant a user grant's code or token names,
	// when the path names none (common, organizations).
	impliedTenant string
	// code is the opened authorization code of that grant.
	code *userauth.Code
	// audit collects what the audit record says about the request.
	audit struct {
		clientID     string
		clientTenant string
		method       string
		credential   string // which credential authenticated: "certificate:<keyId>", "federated:<name>"
	}
}

// tenantDisplayName is how error messages name the request's tenant.
func (req *tokenRequest) tenantDisplayName() string {
	if req.tenant.Name != "" {
		return req.tenant.Name
	}
	return safeName(req.tenantRef)
}

// issuedToken is what a grant hands back: the signed token and its claims,
// from which the response's lifetimes are taken.
type issuedToken struct {
	accessToken string
	claims      token.Claims
	user        *userExtras // a user's tokens: id token, refresh token, scope, client_info
}

// tokenResponse is Entra's token response. v1 adds expires_on, not_before
// and resource, and writes every time as a string: expires_in and
// ext_expires_in are numbers on v2 and strings on v1 (seed 003's recorded
// v1 response: "expires_in": "4549"; MSAL and ADAL read both). scope is
// never sent for app tokens: MSAL would compare it with the requested
// scopes and fail on the difference.
type tokenResponse struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    any    `json:"expires_in"`     // int64 (v2) or string (v1)
	ExtExpiresIn any    `json:"ext_expires_in"` // likewise
	ExpiresOn    string `json:"expires_on,omitempty"`
	NotBefore    string `json:"not_before,omitempty"`
	Resource     string `json:"resource,omitempty"`
	Scope        string `json:"scope,omitempty"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	ClientInfo   string `json:"client_info,omitempty"`
}

// handleToken serves POST /{tenant}/oauth2[/v2.0]/token.
func (s *Service) handleToken(ver endpointVersion) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
		case http.MethodOptions:
			preflight(w, r)
			return
		default:
			s.refuse(w, r, aadError(codePostOnly, safeName(r.Method)))
			return
		}
		req := &tokenRequest{endpoint: ver, tenantRef: r.PathValue("tenant"), baseURL: httpx.BaseURL(r), now: s.now(),
			origin: r.Header.Get("Origin")}
		if req.origin != "" {
			setCORS(w, r)
		}
		issued, e := s.token(r, req)
		if err := s.recordToken(r.Context(), req, e); err != nil && e == nil {
			// A token that is not on record is not issued.
			issued, e = nil, serverError(err)
		}
		if e != nil {
			s.refuse(w, r, e)
			return
		}
		s.issued(r.Context(), req.form.get("grant_type"), req.audit.method, req.audit.credential, issued)
		s.writeToken(w, r, req, issued)
	}
}

// token runs a token request through its steps: parse, tenant, grant
// parameters, client authentication, issue.
func (s *Service) token(r *http.Request, req *tokenRequest) (*issuedToken, *Error) {
	ctx := r.Context()
	if e := s.readForm(r, req); e != nil {
		return nil, e
	}
	var e *Error
	if req.basic, e = parseBasicAuth(r.Header.Get("Authorization")); e != nil {
		return nil, e
	}
	grantType := req.form.get("grant_type")
	if grantType == "" {
		return nil, aadError(codeMissingParameter, "grant_type")
	}
	g, ok := s.grants[grantType]
	if !ok {
		return nil, aadError(codeUnsupportedGrantType, safeName(grantType))
	}
	if req.origin != "" && grantType != grantTypeAuthorizationCode && grantType != grantTypeRefreshToken {
		// Only a SPA's code or refresh token is redeemed cross-origin;
		// those two grants check it themselves, knowing what they redeem.
		return nil, aadError(codeCrossOriginNotSPA, clip(req.origin, 256))
	}
	if e := g.prepare(req); e != nil {
		return nil, e
	}
	if req.tenant.ID == "" && req.impliedTenant != "" {
		if req.tenant, e = s.resolveTenant(ctx, req.impliedTenant); e != nil {
			return nil, e
		}
	}
	c, e := s.authenticateClient(ctx, req, g)
	if e != nil {
		return nil, e
	}
	req.audit.method = c.method
	return g.issue(ctx, req, c)
}

// readForm reads the form of a POST to the token service's endpoints
// (/token, /devicecode) and resolves the tenant its path names, if it
// names one (not common or organizations).
func (s *Service) readForm(r *http.Request, req *tokenRequest) *Error {
	body, e := readTokenBody(r)
	if e != nil {
		return e
	}
	if req.form, e = parseTokenRequest(r.Header.Get("Content-Type"), body); e != nil {
		return e
	}
	if !isMultiTenantAlias(req.tenantRef) {
		if req.tenant, e = s.resolveTenant(r.Context(), req.tenantRef); e != nil {
			return e
		}
	}
	return nil
}

// readTokenBody reads at most maxTokenBody+1 bytes, so that the parser can
// tell a body at the limit from one over it without reading an unbounded one.
func readTokenBody(r *http.Request) ([]byte, *Error) {
	if r.ContentLength > maxTokenBody {
		return nil, aadError(codeBodyTooLarge, maxTokenBody)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxTokenBody+1))
	if err != nil {
		return nil, aadError(codeInvalidRequest, "The request body could not be read.")
	}
	return body, nil
}

// writeToken sends the token response.
func (s *Service) writeToken(w http.ResponseWriter, r *http.Request, req *tokenRequest, t *issuedToken) {
	expiresIn := max(t.claims.Expires-req.now.Unix(), 0)
	resp := tokenResponse{
		TokenType:    "Bearer",
		ExpiresIn:    expiresIn,
		ExtExpiresIn: expiresIn,
		AccessToken:  t.accessToken,
	}
	if u := t.user; u != nil {
		resp.Scope, resp.RefreshToken, resp.IDToken, resp.ClientInfo = u.scope, u.refreshToken, u.idToken, u.clientInfo
	}
	if req.endpoint == v1 {
		resp.ExpiresIn = strconv.FormatInt(expiresIn, 10)
		resp.ExtExpiresIn = resp.ExpiresIn
		resp.ExpiresOn = strconv.FormatInt(t.claims.Expires, 10)
		resp.NotBefore = strconv.FormatInt(t.claims.NotBefore, 10)
		resp.Resource = req.resource
	}
	traceID, correlationID := requestIDs(r)
	setNoStore(w)
	setRequestIDHeaders(w, r, traceID, correlationID)
	httpx.WriteJSON(w, http.StatusOK, resp)
}

// recordToken writes the audit record of a token request, issued or
// refused. Never the secret: only who asked, where, for what, and the verdict.
func (s *Service) recordToken(ctx context.Context, req *tokenRequest, e *Error) error {
	target := req.tenant.ID
	if target == "" {
		target = safeName(req.tenantRef)
	}
	result := audit.Success
	if e != nil {
		result = e.Result()
	}
	actor := req.audit.clientID
	if actor == "" {
		actor = req.form.get("client_id")
	}
	if actor == "" && req.basic != nil {
		actor = req.basic.clientID
	}
	detail := "endpoint=v" + strconv.Itoa(int(req.endpoint))
	if gt := req.form.get("grant_type"); gt != "" {
		detail += " grant_type=" + safeName(gt)
	}
	if req.audit.method != "" {
		detail += " client_auth=" + req.audit.method
	}
	if req.audit.credential != "" {
		detail += " credential=" + clip(req.audit.credential, 160)
	}
	return s.audit.Record(ctx, store.AuditRecord{
		Actor:        safeName(actor),
		ActorTenant:  req.audit.clientTenant,
		TargetTenant: target,
		Action:       "token.issue",
		Target:       clip(req.resource, 256),
		Result:       result,
		Detail:       detail,
	})
}
