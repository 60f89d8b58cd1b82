package sts

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

const grantTypeRefreshToken = "refresh_token"

// refreshTokenGrant redeems a refresh token (RFC 6749 §6) with rotation:
// each redemption spends the token and issues its successor in the same
// family, in one transaction; presenting a spent token again revokes the
// whole family, because only a copy held by someone else can explain it
// (OAuth 2.0 Security BCP §4.14). Entra's refresh tokens are for any
// resource the user consented to, so the scope decides the access token's
// resource and is checked against the consent in force now.
type refreshTokenGrant struct{ s *Service }

func (refreshTokenGrant) clientCredentialRequired() bool { return false }

// prepare checks the token's form and, for a SPA's token (spa.go), the
// cross-origin rules and its fixed end, before anything is spent.
func (g refreshTokenGrant) prepare(req *tokenRequest) *Error {
	raw := req.form.get("refresh_token")
	if raw == "" {
		return aadError(codeMissingParameter, "refresh_token")
	}
	if len(raw) > 512 || !strings.HasPrefix(raw, "1.") {
		return aadError(codeRefreshMalformed)
	}
	issued, spa := spaRefreshIssued(raw)
	if e := checkCrossOrigin(req, spa); e != nil {
		return e
	}
	if spa && !req.now.Before(issued.Add(spaRefreshLifetime)) {
		return aadError(codeSPARefreshExpired, issued.UTC().Format(time.RFC3339))
	}
	return nil
}

func (g refreshTokenGrant) issue(ctx context.Context, req *tokenRequest, c *client) (*issuedToken, *Error) {
	raw := req.form.get("refresh_token")
	// The successor's fields other than its id and times are the spent
	// token's: the store copies them in the transaction that spends it. A
	// SPA's successor keeps the family's end; any other gets a new
	// inactivity window.
	next, expires := newRefreshTokenValue(), req.now.Add(g.s.refreshInactivity)
	issued, spa := spaRefreshIssued(raw)
	if spa {
		next, expires = newSPARefreshValue(issued), issued.Add(spaRefreshLifetime)
	}
	rec, err := g.s.dir.Store().RedeemRefreshToken(ctx, refreshTokenID(raw), req.now, store.RefreshToken{
		ID: refreshTokenID(next), Created: req.now, Expires: expires})
	switch {
	case spa && errors.Is(err, store.ErrExpired):
		return nil, aadError(codeSPARefreshExpired, issued.UTC().Format(time.RFC3339))
	case errors.Is(err, store.ErrNotFound):
		return nil, aadError(codeRefreshMalformed)
	case errors.Is(err, store.ErrRefreshTokenReused), errors.Is(err, store.ErrRevoked):
		return nil, aadError(codeRefreshRevoked)
	case errors.Is(err, store.ErrExpired):
		return nil, aadError(codeRefreshExpired)
	case err != nil:
		return nil, serverError(err)
	}
	if !strings.EqualFold(rec.ClientID, c.appID) || (req.tenant.ID != "" && !strings.EqualFold(req.tenant.ID, rec.TenantID)) {
		// A token of another client, or of another tenant: spent now,
		// like any presented token, and its family with it.
		_, _ = g.s.dir.Store().RevokeRefreshTokens(ctx, store.RefreshTokenQuery{TenantID: rec.TenantID, FamilyID: rec.FamilyID}, req.now)
		return nil, aadError(codeRefreshRevoked)
	}
	// c.sp is the client's principal in rec's tenant, or nil (a request to
	// common): issueUserTokens finds it then.
	scopes := strings.Fields(req.form.get("scope"))
	if len(scopes) == 0 {
		scopes = strings.Fields(rec.Scope)
	}
	u := userSignIn{tenantID: rec.TenantID, userID: rec.UserID, scopes: scopes, authTime: rec.AuthTime, amr: rec.AMR,
		familyID: rec.FamilyID, refresh: next, spa: spa}
	if req.endpoint == v1 {
		u.scopes, u.resource = nil, req.form.get("resource")
		if u.resource == "" {
			u.resource = rec.Scope
		}
	}
	return g.s.issueUserTokens(ctx, req, c, u)
}
