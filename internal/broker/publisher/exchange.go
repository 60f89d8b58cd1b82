package publisher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// S1's secretless exchange (RFC 8693 token exchange, form-encoded):
//
//	POST {issuer}/exchange
//	grant_type=urn:ietf:params:oauth:grant-type:token-exchange
//	subject_token=<the installation's managed identity token for api://AzureADTokenExchange>
//	subject_token_type=urn:ietf:params:oauth:token-type:jwt (or …:access_token)
//	installation=<the managed application's resource id>
//	[audience=api://AzureADTokenExchange] [requested_token_type=urn:ietf:params:oauth:token-type:jwt]
//
// The broker verifies the subject token against the customer tenant's
// OpenID metadata (its discovery document and JWKS, over HTTPS: the
// customer's Entra is an ordinary issuer to the broker) and checks that it
// is the identity registered for that installation, then answers
//
//	200 {"access_token": <assertion>, "issued_token_type": "urn:ietf:params:oauth:token-type:jwt",
//	     "token_type": "N_A", "expires_in": 300}
//
// with an assertion of the broker's issuer (subject
// InstallationSubject(installation), audience api://AzureADTokenExchange),
// which the per-installation application's federated credential trusts.
// Entra would refuse the customer's token itself as that credential: a
// federated credential may trust an Entra issuer only for its owner's own
// tenant and a user-assigned identity there (AADSTS700236; learn.microsoft.com/
// entra/workload-id/workload-identity-federation-config-app-trust-managed-identity:
// "Both the Microsoft Entra app and managed identity must belong to the
// same tenant"). Errors are RFC 6749 §5.2 JSON: 400 invalid_request,
// unsupported_grant_type or invalid_grant (one description for every
// reason a token is not the installation's, so that the endpoint tells
// nobody which installations exist), 405, 413, 415, and 503
// temporarily_unavailable when the customer's metadata or the state cannot
// be read (retry).

// Token exchange vocabulary (RFC 8693).
const (
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeJWT       = "urn:ietf:params:oauth:token-type:jwt"
	tokenTypeAccess    = "urn:ietf:params:oauth:token-type:access_token"
	maxExchangeBody    = 32 << 10
	maxSubjectToken    = 16 << 10
)

// ExchangeRequest is a parsed exchange request.
type ExchangeRequest struct {
	SubjectToken string
	Installation string
}

// exchangeError is an RFC 6749 §5.2 error answer.
type exchangeError struct {
	status int
	code   string
	desc   string
	cause  error // logged, never sent
}

func (e *exchangeError) Error() string {
	if e.cause != nil {
		return e.code + ": " + e.desc + ": " + e.cause.Error()
	}
	return e.code + ": " + e.desc
}

func badExchange(code, format string, a ...any) *exchangeError {
	return &exchangeError{status: http.StatusBadRequest, code: code, desc: fmt.Sprintf(format, a...)}
}

// errNotTheInstallation is every refusal of a well-formed token.
func errNotTheInstallation(cause error) *exchangeError {
	return &exchangeError{status: http.StatusBadRequest, code: "invalid_grant", cause: cause,
		desc: "the subject token is not a valid token of the managed identity registered for this installation"}
}

// ParseExchange parses an exchange request's form body strictly: each
// parameter at most once, the documented ones only, the grant and token
// types above, the installation a Microsoft.Solutions/applications id.
func ParseExchange(body []byte) (*ExchangeRequest, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, badExchange("invalid_request", "the body is not form-encoded")
	}
	allowed := map[string]bool{"grant_type": true, "subject_token": true, "subject_token_type": true,
		"installation": true, "audience": true, "requested_token_type": true}
	for k, v := range form {
		if !allowed[k] {
			return nil, badExchange("invalid_request", "unknown parameter %q", clipText(k))
		}
		if len(v) != 1 {
			return nil, badExchange("invalid_request", "parameter %q appears %d times", k, len(v))
		}
	}
	switch g := form.Get("grant_type"); g {
	case grantTokenExchange:
	case "":
		return nil, badExchange("invalid_request", "grant_type is missing")
	default:
		return nil, badExchange("unsupported_grant_type", "grant_type must be %s", grantTokenExchange)
	}
	switch form.Get("subject_token_type") {
	case tokenTypeJWT, tokenTypeAccess:
	default:
		return nil, badExchange("invalid_request", "subject_token_type must be %s or %s", tokenTypeJWT, tokenTypeAccess)
	}
	if a, ok := form["audience"]; ok && a[0] != TokenExchangeAudience {
		return nil, badExchange("invalid_target", "the broker issues assertions for %s only", TokenExchangeAudience)
	}
	if r, ok := form["requested_token_type"]; ok && r[0] != tokenTypeJWT {
		return nil, badExchange("invalid_request", "requested_token_type must be %s", tokenTypeJWT)
	}
	tok := strings.TrimSpace(form.Get("subject_token"))
	if tok == "" || len(tok) > maxSubjectToken {
		return nil, badExchange("invalid_request", "subject_token is missing or longer than %d bytes", maxSubjectToken)
	}
	inst := form.Get("installation")
	if !isResourceID(inst, "microsoft.solutions", "applications") || len(inst) > 1024 {
		return nil, badExchange("invalid_request", "installation must be the managed application's resource id")
	}
	if !strings.HasPrefix(inst, "/") {
		inst = "/" + inst
	}
	return &ExchangeRequest{SubjectToken: tok, Installation: inst}, nil
}

func clipText(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Exchange verifies req's subject token as the installation's identity
// and returns the broker's assertion for the installation, and when it
// expires. The error is an *exchangeError.
func (b *Broker) Exchange(ctx context.Context, req *ExchangeRequest) (string, time.Time, error) {
	if b.iss == nil {
		return "", time.Time{}, &exchangeError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable", desc: ErrNoIssuer.Error()}
	}
	key := NormalizeID(req.Installation)
	in, err := b.cfg.State.Get(ctx, key)
	if err != nil {
		return "", time.Time{}, &exchangeError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
			desc: "the broker's state cannot be read; retry", cause: err}
	}
	switch {
	case in == nil:
		return "", time.Time{}, errNotTheInstallation(errors.New("no such installation"))
	case in.Status != "registered" || in.CredentialMode != ModeFederated:
		return "", time.Time{}, errNotTheInstallation(fmt.Errorf("the installation is %s in mode %q", in.Status, in.CredentialMode))
	case in.CustomerTenantID == "" || in.exchangeIdentity() == "":
		return "", time.Time{}, errNotTheInstallation(errors.New("the installation has no registered identity"))
	}
	// Only the customer tenant's own issuer is ever fetched.
	want := b.cfg.AuthorityHost + "/" + in.CustomerTenantID + "/v2.0"
	c, err := b.remote.verify(ctx, req.SubjectToken, want)
	var unreachable *metadataError
	switch {
	case errors.As(err, &unreachable):
		return "", time.Time{}, &exchangeError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
			desc: "the customer tenant's OpenID metadata cannot be read; retry", cause: err}
	case err != nil:
		return "", time.Time{}, errNotTheInstallation(err)
	}
	now := b.cfg.Now()
	switch {
	case !c.hasAudience(TokenExchangeAudience, TokenExchangeAppID):
		return "", time.Time{}, errNotTheInstallation(fmt.Errorf("audience %v", c.Audiences))
	case !strings.EqualFold(c.TenantID, in.CustomerTenantID):
		return "", time.Time{}, errNotTheInstallation(fmt.Errorf("tid %q", c.TenantID))
	case c.Subject != in.exchangeIdentity() || (c.ObjectID != "" && c.ObjectID != in.exchangeIdentity()):
		return "", time.Time{}, errNotTheInstallation(fmt.Errorf("subject %q", c.Subject))
	case !now.Add(-clockSkew).Before(c.Expires):
		return "", time.Time{}, errNotTheInstallation(errors.New("expired"))
	case !c.NotBefore.IsZero() && now.Add(clockSkew).Before(c.NotBefore):
		return "", time.Time{}, errNotTheInstallation(errors.New("not yet valid"))
	}
	a, exp, err := b.iss.assertion(ctx, InstallationSubject(in.ApplicationID))
	if err != nil {
		return "", time.Time{}, &exchangeError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
			desc: "the broker could not sign; retry", cause: err}
	}
	return a, exp, nil
}

// serveExchange serves POST {issuer}/exchange.
func (b *Broker) serveExchange(w http.ResponseWriter, r *http.Request) {
	fail := func(e *exchangeError) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(e.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": e.code, "error_description": e.desc})
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fail(&exchangeError{status: http.StatusMethodNotAllowed, code: "invalid_request", desc: "POST only"})
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		fail(&exchangeError{status: http.StatusUnsupportedMediaType, code: "invalid_request", desc: "the body must be application/x-www-form-urlencoded"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxExchangeBody))
	if err != nil {
		fail(&exchangeError{status: http.StatusRequestEntityTooLarge, code: "invalid_request", desc: "the body is too large or unreadable"})
		return
	}
	req, err := ParseExchange(body)
	if err != nil {
		fail(err.(*exchangeError))
		return
	}
	a, exp, err := b.Exchange(r.Context(), req)
	if err != nil {
		e := err.(*exchangeError)
		b.log.Warn("token exchange refused", "installation", req.Installation, "remote", r.RemoteAddr, "error", e.Error())
		fail(e)
		return
	}
	b.log.Debug("token exchange", "installation", req.Installation)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": a, "issued_token_type": tokenTypeJWT, "token_type": "N_A",
		"expires_in": int(time.Until(exp).Round(time.Second).Seconds())})
}
