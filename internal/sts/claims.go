package sts

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	mathrand "math/rand/v2"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/token"
)

// Access token lifetime: Entra gives each token a random lifetime between
// 60 and 90 minutes, so that a fleet of clients started together does not
// come back together. Clients refresh five minutes before expiry, so the
// lower bound must stay well above that.
const (
	minTokenLifetime = 3599 * time.Second
	maxTokenLifetime = 5399 * time.Second
)

// MaxTokenLifetime is the longest lifetime of any token the service signs.
// A retired signing key must stay published at least this long.
const MaxTokenLifetime = maxTokenLifetime

// tokenLifetime picks a lifetime in [minTokenLifetime, maxTokenLifetime].
func tokenLifetime() time.Duration {
	spread := int64((maxTokenLifetime - minTokenLifetime) / time.Second)
	return minTokenLifetime + time.Duration(mathrand.Int64N(spread+1))*time.Second
}

// tokenVersion is the access token version a resource accepts: its
// application's accessTokenAcceptedVersion, which its service principal
// mirrors, where unset means 1. In Entra it is the resource that decides,
// not the endpoint the client called.
func tokenVersion(resource *directory.ServicePrincipal) int {
	if v := resource.AccessTokenAcceptedVersion; v != nil && *v == 2 {
		return 2
	}
	return 1
}

// appToken describes an app-only access token: a client acting as itself.
type appToken struct {
	baseURL      string
	tenantID     string // the tenant the token is for
	client       *client
	resourceName string // the resource as the client named it: the v1 audience
	resource     *directory.ServicePrincipal
	version      int
	roles        []string
	wids         []string // directory roles' template ids
	capabilities []string // xms_cc
	now          time.Time
	lifetime     time.Duration
}

// claims builds the token's claims as Entra does for app-only tokens (see
// access-token-claims-reference): the subject and object id are the
// client's service principal in the token's tenant (a managed identity's
// own principal, whose resource id goes in xms_mirid), roles are the app
// roles it was granted on the resource, and the v1/v2 differences are
// audience, issuer and the name of the client claims.
func (t appToken) claims() token.Claims {
	iat := t.now.Unix()
	c := token.Claims{
		IssuedAt:           iat,
		NotBefore:          iat,
		Expires:            t.now.Add(t.lifetime).Unix(),
		TenantID:           t.tenantID,
		ObjectID:           t.client.sp.ID,
		Subject:            t.client.sp.ID,
		IdentType:          "app",
		Roles:              t.roles,
		WIDs:               t.wids,
		AIO:                opaque(48),
		RH:                 "0." + opaque(64),
		UTI:                opaque(16),
		ClientCapabilities: t.capabilities,
	}
	if home := t.client.homeTenant; home != t.tenantID {
		// A principal from another tenant: idp names the tenant that
		// vouches for the application.
		c.IDP = issuerV1(t.baseURL, home)
	}
	if t.client.sp.IsManagedIdentity() {
		c.ManagedIdentityResourceID = t.client.sp.ManagedIdentityResourceID()
	}
	if t.version == 2 {
		c.Audience = t.resource.AppID
		c.Issuer = issuerV2(t.baseURL, t.tenantID)
		c.AZP, c.AZPACR = t.client.appID, t.client.acr
		c.Version = "2.0"
	} else {
		c.Audience = t.resourceName
		c.Issuer = issuerV1(t.baseURL, t.tenantID)
		c.AppID, c.AppIDACR = t.client.appID, t.client.acr
		c.Version = "1.0"
	}
	return c
}

// opaque returns n random bytes, base64url-encoded: the shape of Entra's
// uti, aio and rh claims, which clients must treat as opaque.
func opaque(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// clientCapabilities reads the capabilities a client declares in the claims
// request parameter, {"access_token":{"xms_cc":{"values":["CP1"]}}}, which
// azidentity sends on every request (continuous access evaluation). CP1 is
// the only capability Entra defines; anything else, and a claims value
// that is not this JSON, is ignored, as Entra ignores claims it does not
// know.
func clientCapabilities(claimsParam string) []string {
	if claimsParam == "" {
		return nil
	}
	var req struct {
		AccessToken struct {
			XMSCC struct {
				Values []string `json:"values"`
			} `json:"xms_cc"`
		} `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(claimsParam), &req); err != nil {
		return nil
	}
	for _, v := range req.AccessToken.XMSCC.Values {
		if strings.EqualFold(v, "CP1") {
			return []string{"CP1"}
		}
	}
	return nil
}
