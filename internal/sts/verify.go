package sts

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/token"
)

// Verification errors beyond token's own (token.ErrExpired, ErrSignature, …,
// which Verify returns wrapped). Resource surfaces answer all of them with 401.
var (
	ErrWrongAudience = errors.New("token is not for this resource")
	ErrWrongIssuer   = errors.New("token issuer is not trusted")
	ErrUnknownTenant = errors.New("token is for a tenant that does not exist")
)

// Verifier checks access tokens presented to a resource surface (Graph,
// ARM, Key Vault, Service Bus): our signature, the time window, an issuer of
// ours that names the token's own tenant, a tenant that still exists, and
// the surface's audience.
type Verifier struct {
	keys        token.KeyLookup
	verified    *token.VerifiedCache
	dir         *directory.Service
	isLoginHost func(string) bool
	now         func() time.Time
}

// NewVerifier returns a verifier. isLoginHost says which hosts (without
// port) issue our tokens; nil trusts only Entra's own issuer URLs. now
// defaults to time.Now.
func NewVerifier(keys token.KeyLookup, dir *directory.Service, isLoginHost func(string) bool, now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	return &Verifier{keys: keys, verified: token.NewVerifiedCache(), dir: dir, isLoginHost: isLoginHost, now: now}
}

// Verify checks raw and returns its claims if it is valid for one of the
// audiences (compared case-insensitively, a trailing slash ignored, since
// clients ask for "https://management.azure.com" and
// "https://management.azure.com/" alike). With no audiences it accepts none.
func (v *Verifier) Verify(ctx context.Context, raw string, audiences ...string) (token.Claims, error) {
	c, err := v.verified.Verify(v.keys, raw, v.now())
	if err != nil {
		return token.Claims{}, err
	}
	if _, err := uuid.Parse(c.TenantID); err != nil {
		return token.Claims{}, fmt.Errorf("%w: tid %q is not a tenant id", ErrUnknownTenant, c.TenantID)
	}
	if !v.trustedIssuer(c.Issuer, c.TenantID, c.Version) {
		return token.Claims{}, fmt.Errorf("%w: %q", ErrWrongIssuer, c.Issuer)
	}
	if !audienceMatches(c.Audience, audiences) {
		return token.Claims{}, fmt.Errorf("%w: audience %q", ErrWrongAudience, c.Audience)
	}
	t, err := v.dir.Tenant(ctx, c.TenantID)
	if errors.Is(err, directory.ErrNotFound) || (err == nil && !strings.EqualFold(t.ID, c.TenantID)) {
		return token.Claims{}, fmt.Errorf("%w: %s", ErrUnknownTenant, c.TenantID)
	}
	if err != nil {
		return token.Claims{}, fmt.Errorf("sts: verify: tenant lookup: %w", err)
	}
	return c, nil
}

// trustedIssuer accepts Entra's two issuer forms, and https URLs on our
// login hosts with the path /{tid}/ (v1) or /{tid}/v2.0 (v2), where the
// tenant in the issuer must be the token's own tid: a token one tenant
// issued cannot speak for another. When the token states its version, the
// issuer form must agree with it.
func (v *Verifier) trustedIssuer(iss, tid, ver string) bool {
	wantV1 := ver == "" || ver == "1.0"
	wantV2 := ver == "" || ver == "2.0"
	switch {
	case strings.EqualFold(iss, "https://sts.windows.net/"+tid+"/"):
		return wantV1
	case strings.EqualFold(iss, "https://login.microsoftonline.com/"+tid+"/v2.0"):
		return wantV2
	}
	if v.isLoginHost == nil {
		return false
	}
	u, err := url.Parse(iss)
	if err != nil || u.Scheme != "https" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return false
	}
	if !v.isLoginHost(strings.ToLower(u.Hostname())) {
		return false
	}
	switch {
	case strings.EqualFold(u.Path, "/"+tid+"/"):
		return wantV1
	case strings.EqualFold(u.Path, "/"+tid+"/v2.0"):
		return wantV2
	}
	return false
}

// audienceMatches compares an aud claim with the accepted audiences.
func audienceMatches(aud string, audiences []string) bool {
	norm := func(s string) string { return strings.ToLower(strings.TrimRight(s, "/")) }
	a := norm(aud)
	if a == "" {
		return false
	}
	for _, want := range audiences {
		if norm(want) == a {
			return true
		}
	}
	return false
}
