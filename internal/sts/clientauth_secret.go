package sts

import (
	"context"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/directory"
)

// checkClientSecret checks a secret against the application's secrets and
// those of its service principal in the request's tenant, and maps the
// directory's verdict to Entra's codes. A managed identity has no secret to
// check: it authenticates only with its federated credentials.
func (s *Service) checkClientSecret(c *client, secret string) (string, *Error) {
	if c.app == nil {
		return "", aadError(codeNoClientCredential)
	}
	err := s.dir.AuthenticateClientSecret(c.app, c.sp, secret)
	switch {
	case err == nil:
		return "1", nil
	case errors.Is(err, directory.ErrInvalidSecret):
		return "", aadError(codeInvalidSecret, c.appID)
	case errors.Is(err, directory.ErrSecretExpired):
		return "", aadError(codeSecretExpired, c.appID)
	case errors.Is(err, directory.ErrNoSecret):
		// The app has no secret at all, so a secret cannot be how it
		// authenticates: Entra asks for the credential the app does have.
		return "", aadError(codeNoClientCredential)
	default:
		return "", serverError(err)
	}
}

// secretPost is client_secret_post: client_id and client_secret in the body.
// It is what MSAL and azidentity send.
type secretPost struct{}

func (secretPost) name() string                             { return "client_secret_post" }
func (secretPost) presented(req *tokenRequest) bool         { return req.form.get("client_secret") != "" }
func (secretPost) claimedClientID(req *tokenRequest) string { return "" }
func (secretPost) authenticate(_ context.Context, s *Service, req *tokenRequest, c *client) (string, *Error) {
	return s.checkClientSecret(c, req.form.get("client_secret"))
}

// secretBasic is client_secret_basic: HTTP Basic authentication with the
// form-encoded client id and secret (RFC 6749 §2.3.1), what
// golang.org/x/oauth2 tries first.
type secretBasic struct{}

func (secretBasic) name() string                             { return "client_secret_basic" }
func (secretBasic) presented(req *tokenRequest) bool         { return req.basic != nil }
func (secretBasic) claimedClientID(req *tokenRequest) string { return req.basic.clientID }
func (secretBasic) authenticate(_ context.Context, s *Service, req *tokenRequest, c *client) (string, *Error) {
	return s.checkClientSecret(c, req.basic.secret)
}

// basicAuth is a client id and secret from an HTTP Basic Authorization header.
type basicAuth struct{ clientID, secret string }

// parseBasicAuth reads "Authorization: Basic ..." (RFC 6749 §2.3.1: both
// parts form-encoded, then base64). No header, or another scheme, is no
// Basic credential; a malformed Basic header is refused rather than
// ignored, so that a client never gets a token it did not authenticate for.
func parseBasicAuth(header string) (*basicAuth, *Error) {
	scheme, rest, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return nil, nil
	}
	bad := aadError(codeCredentialInvalid, "The Authorization header is not valid HTTP Basic authentication.")
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
	if err != nil {
		return nil, bad
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return nil, bad
	}
	id, err1 := url.QueryUnescape(user)
	secret, err2 := url.QueryUnescape(pass)
	if err1 != nil || err2 != nil || id == "" || secret == "" {
		return nil, bad
	}
	return &basicAuth{clientID: id, secret: secret}, nil
}
