package sts

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/token"
)

const grantTypeJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// onBehalfOfGrant is the on-behalf-of flow: a middle-tier API that received
// a user's access token exchanges it for a token to a downstream API, as
// that user, with requested_token_use=on_behalf_of. The assertion must be
// one of our user tokens (it carries scopes) whose audience is the
// middle tier itself; the new token carries the scopes the tenant
// consented for the middle tier on the downstream resource, for that user.
type onBehalfOfGrant struct{ s *Service }

// The middle tier is always a confidential client.
func (onBehalfOfGrant) clientCredentialRequired() bool { return true }

func (onBehalfOfGrant) prepare(req *tokenRequest) *Error {
	if req.form.get("requested_token_use") != "on_behalf_of" {
		return aadError(codeInvalidRequest, "The jwt-bearer grant is supported only with requested_token_use=on_behalf_of.")
	}
	if req.form.get("assertion") == "" {
		return aadError(codeMissingParameter, "assertion")
	}
	if req.endpoint == v2 && req.form.get("scope") == "" {
		return aadError(codeMissingParameter, "scope")
	}
	if req.endpoint == v1 && req.form.get("resource") == "" {
		return aadError(codeMissingParameter, "resource")
	}
	return nil
}

func (g onBehalfOfGrant) issue(ctx context.Context, req *tokenRequest, c *client) (*issuedToken, *Error) {
	if c.app == nil {
		return nil, aadError(codeOBOAudience)
	}
	audiences := append([]string{c.app.AppID}, c.app.IdentifierURIs...)
	claims, err := g.s.Verifier().Verify(ctx, req.form.get("assertion"), audiences...)
	switch {
	case errors.Is(err, ErrWrongAudience):
		return nil, aadError(codeOBOAudience)
	case errors.Is(err, token.ErrTrustRevoked):
		return nil, aadError(codeRefreshRevoked)
	case err != nil:
		return nil, aadError(codeOBOAssertion)
	}
	if claims.Scope == "" || claims.ObjectID == "" {
		// An app-only token stands for no user to act on behalf of.
		return nil, aadError(codeOBOAssertion)
	}
	if req.tenant.ID != "" && !strings.EqualFold(req.tenant.ID, claims.TenantID) {
		return nil, aadError(codeOBOAssertion)
	}
	if req.tenant.ID == "" {
		// The verifier found the tenant; a failure here is the store's
		// (retryable), or the tenant deleted since, as resolveTenant says.
		var e *Error
		if req.tenant, e = g.s.resolveTenant(ctx, claims.TenantID); e != nil {
			return nil, e
		}
	}
	if c.sp == nil || !strings.EqualFold(c.sp.TenantID, claims.TenantID) {
		sp, err := g.s.dir.ServicePrincipalByAppID(ctx, claims.TenantID, c.appID)
		if errors.Is(err, directory.ErrNotFound) {
			return nil, aadError(codeConsentRequired, c.appID, c.displayName())
		}
		if err != nil {
			return nil, serverError(err)
		}
		c.sp = sp
	}
	u := userSignIn{tenantID: claims.TenantID, userID: claims.ObjectID, amr: claims.AMR,
		authTime: time.Unix(claims.IssuedAt, 0), scopes: strings.Fields(req.form.get("scope"))}
	u.offline = slices.Contains(u.scopes, "offline_access")
	if req.endpoint == v1 {
		u.scopes, u.resource = nil, req.form.get("resource")
	}
	return g.s.issueUserTokens(ctx, req, c, u)
}
