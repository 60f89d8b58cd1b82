package sts

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/userauth"
)

const grantTypeAuthorizationCode = "authorization_code"

// authorizationCodeGrant redeems the code the sign-in pages issued (RFC
// 6749 §4.1.3): once, by the client it was issued to, with the same
// redirect URI, and with the PKCE verifier when authorize got a challenge.
// A confidential client authenticates; a public client (a native app, a
// single-page app) proves itself with PKCE alone. A code issued to a SPA
// redirect URI is redeemed only cross-origin (spa.go).
type authorizationCodeGrant struct{ s *Service }

func (authorizationCodeGrant) clientCredentialRequired() bool { return false }

// prepare opens the code (no directory read) and names its tenant, so
// that a request to /common/ finds the client's principal in the tenant
// the user signed in to.
func (g authorizationCodeGrant) prepare(req *tokenRequest) *Error {
	raw := req.form.get("code")
	if raw == "" {
		return aadError(codeMissingParameter, "code")
	}
	if req.form.get("redirect_uri") == "" {
		return aadError(codeMissingParameter, "redirect_uri")
	}
	code, err := userauth.OpenCode(g.s.kek, raw, req.now)
	if err != nil {
		return aadError(codeAuthCodeInvalid)
	}
	if req.tenant.ID != "" && !strings.EqualFold(req.tenant.ID, code.TenantID) {
		return aadError(codeAuthCodeInvalid)
	}
	if int(req.endpoint) != code.Version {
		// A v1 code at the v2 endpoint, or the other way round.
		return aadError(codeAuthCodeInvalid)
	}
	if code.SPA && code.CodeChallenge == "" {
		// "PKCE … required by the Microsoft identity platform for single
		// page apps using the authorization code flow" (v2-oauth2-auth-code-flow.md).
		return aadError(codeSPAPKCERequired)
	}
	if e := checkCrossOrigin(req, code.SPA); e != nil {
		return e
	}
	req.impliedTenant = code.TenantID
	req.code = &code
	return nil
}

func (g authorizationCodeGrant) issue(ctx context.Context, req *tokenRequest, c *client) (*issuedToken, *Error) {
	code := req.code
	if !strings.EqualFold(code.ClientID, c.appID) {
		return nil, aadError(codeAuthCodeInvalid)
	}
	if redirect := req.form.get("redirect_uri"); redirect != code.RedirectURI {
		return nil, aadError(codeRedirectMismatch, clip(redirect, 256), clip(code.RedirectURI, 256))
	}
	if c.acr == "0" && !code.SPA && !isPublicRedirect(c, code.RedirectURI) {
		// A confidential client's code needs its credential.
		return nil, aadError(codeNoClientCredential)
	}
	if code.CodeChallenge != "" && !userauth.VerifyPKCE(code.CodeChallenge, code.CodeChallengeMethod, req.form.get("code_verifier")) {
		return nil, aadError(codePKCEMismatch)
	}
	// Once: the code's id is spent until the code would have expired.
	err := g.s.dir.Store().UseOnce(ctx, "authcode:"+code.ID, code.Expires)
	if errors.Is(err, store.ErrConflict) {
		return nil, aadError(codeAuthCodeRedeemed)
	}
	if err != nil {
		return nil, serverError(err)
	}
	scopes := code.Scopes
	if asked := strings.Fields(req.form.get("scope")); req.endpoint == v2 && len(asked) > 0 {
		scopes = asked // MSAL repeats them; the consent check below applies to these
	}
	return g.s.issueUserTokens(ctx, req, c, userSignIn{tenantID: code.TenantID, userID: code.UserID, scopes: scopes,
		resource: code.Resource, nonce: code.Nonce, authTime: code.AuthTime, amr: code.AMR,
		offline: slices.Contains(code.Scopes, "offline_access"), spa: code.SPA})
}

// isPublicRedirect reports whether the client is a public client for this
// redirect URI: registered as a public client (mobile and desktop) URI,
// or the application allows public client flows.
func isPublicRedirect(c *client, redirect string) bool {
	return c.app != nil && (c.app.IsFallbackPublicClient || slices.Contains(c.app.PublicClientRedirectURIs, redirect))
}
