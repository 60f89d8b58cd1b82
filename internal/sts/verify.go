package sts

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/gencache"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/store"
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
	trust       *gencache.PartCache[trustKey, trustResult]
	appTrust    *gencache.PartCache[appTrustKey, trustResult]
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
	return &Verifier{keys: keys, verified: token.NewVerifiedCache(), dir: dir, isLoginHost: isLoginHost, now: now,
		trust:    gencache.NewPartCache[trustKey, trustResult](dir.Store(), maxCachedTrust),
		appTrust: gencache.NewPartCache[appTrustKey, trustResult](dir.Store(), maxCachedTrust)}
}

// maxCachedTrust bounds the trust checks remembered. A connected AMQP
// client's token is checked again for every message, so every token in
// steady use needs its entry: two per customer of a 10,000-customer
// fan-out (the provider application in the customer's tenant, the
// customer's worker), 20,000 in all, with room to spare.
const maxCachedTrust = 60_000

// Verify checks raw and returns its claims if it is valid for one of the
// audiences (compared case-insensitively, one trailing slash ignored, since
// clients ask for "https://management.azure.com" and
// "https://management.azure.com/" alike; see audienceMatches). With no
// audiences it accepts none.
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
	if err := v.checkTrust(ctx, c); err != nil {
		return token.Claims{}, err
	}
	httpx.NoteFrom(ctx).SetCaller(c.TenantID, c.ObjectID) // for the request's log line
	return c, nil
}

// trustKey is what a trust check depends on, besides the directory.
type trustKey struct{ tenant, client, user, audience, scope string }

// appTrustKey is the trust check of a token without a user, whose tenant
// and client are ids in their canonical form: all that check reads is
// whether the client has an enabled service principal in the tenant, so
// the token's audience is not part of it (one entry serves a client's
// tokens for Graph, ARM and Service Bus alike) and the ids are held as
// their 16 bytes instead of strings of the token's claims. Which case an
// id is written in does not matter, as trustKey's lowercasing made it not
// matter.
type appTrustKey struct{ tenant, client uuid.UUID }

// canonicalID parses an id written in the canonical 36-character form;
// two such ids parse alike exactly when they are equal without regard
// to case.
func canonicalID(s string) (uuid.UUID, bool) {
	if len(s) != 36 {
		return uuid.UUID{}, false
	}
	id, err := uuid.Parse(s)
	return id, err == nil
}

type trustResult struct{ err error }

// checkTrust is continuous access evaluation: the trust a token was issued
// through must still stand when it is presented. The client application
// must still have an enabled service principal in the token's tenant (a
// customer that deletes a provider's principal cuts off the tokens it
// already has, not only new ones), and a user's token must still be
// covered by the delegated grants of that client for its resource. The
// answer is cached until the store changes what it was read from: an
// application's token depends on its service principal in the token's
// tenant only (a write to that tenant's rows, or one that cannot name its
// tenants, is seen on the next request; writes to other tenants leave
// the answer cached), a user's token on everything, since the resource's
// names may come from its application in another tenant.
func (v *Verifier) checkTrust(ctx context.Context, c token.Claims) error {
	client := c.AppID
	if client == "" {
		client = c.AZP
	}
	if client == "" {
		return nil // not a token of ours for an application
	}
	k := trustKey{tenant: strings.ToLower(c.TenantID), client: strings.ToLower(client), audience: c.Audience}
	if c.Scope != "" {
		k.user, k.scope = c.ObjectID, c.Scope
	}
	load := func(d *gencache.Deps) (trustResult, error) {
		if k.user == "" {
			d.Part(store.TenantPart(c.TenantID)) // trustStands reads the client's service principal there only
		} else {
			d.All()
		}
		err := v.trustStands(ctx, c.TenantID, client, k.user, c.Audience, k.scope)
		if err != nil && !errors.Is(err, token.ErrTrustRevoked) {
			return trustResult{}, err // a store failure: not cached, not a verdict
		}
		return trustResult{err}, nil
	}
	var r trustResult
	var err error
	tenant, okTenant := canonicalID(c.TenantID)
	clientID, okClient := canonicalID(client)
	if k.user == "" && okTenant && okClient {
		r, err = v.appTrust.Get(appTrustKey{tenant, clientID}, load)
	} else {
		r, err = v.trust.Get(k, load)
	}
	if err != nil {
		return fmt.Errorf("sts: verify: trust: %w", err)
	}
	return r.err
}

func (v *Verifier) trustStands(ctx context.Context, tenantID, client, user, audience, scope string) error {
	sp, err := v.dir.ServicePrincipalByAppID(ctx, tenantID, client)
	if errors.Is(err, directory.ErrNotFound) {
		return fmt.Errorf("%w: client %s has no service principal in tenant %s", token.ErrTrustRevoked, client, tenantID)
	}
	if err != nil {
		return err
	}
	if !sp.AccountEnabled {
		return fmt.Errorf("%w: client %s is disabled in tenant %s", token.ErrTrustRevoked, client, tenantID)
	}
	if user == "" {
		return nil
	}
	resource, err := v.dir.ServicePrincipalByName(ctx, tenantID, audience)
	if errors.Is(err, directory.ErrNotFound) {
		return fmt.Errorf("%w: resource %s is gone from tenant %s", token.ErrTrustRevoked, audience, tenantID)
	}
	if err != nil {
		return err
	}
	consented, err := v.dir.ConsentedScopes(ctx, tenantID, sp.ID, user, resource.ID)
	if err != nil {
		return err
	}
	for _, s := range strings.Fields(scope) {
		if !slices.ContainsFunc(consented, func(c string) bool { return strings.EqualFold(c, s) }) {
			return fmt.Errorf("%w: scope %s is no longer granted", token.ErrTrustRevoked, s)
		}
	}
	return nil
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

// audienceMatches compares an aud claim with the accepted audiences:
// equal without regard to case, or differing by one trailing slash
// ("https://management.azure.com" and "https://management.azure.com/" are
// both ARM, as in Entra). Nothing else is normalised: "https://x//" is not
// "https://x", so a name that differs from a resource's own by any other
// spelling never passes for it.
func audienceMatches(aud string, audiences []string) bool {
	if aud == "" {
		return false
	}
	for _, want := range audiences {
		if want == "" {
			continue
		}
		if strings.EqualFold(aud, want) || strings.EqualFold(aud, want+"/") || strings.EqualFold(aud+"/", want) {
			return true
		}
	}
	return false
}
