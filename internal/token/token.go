// Package token mints and verifies the JSON Web Tokens that tenantbridge's
// token service issues and its resource surfaces (Graph, ARM, Key Vault,
// Service Bus) accept. The claim names and header fields follow what Entra ID
// puts in its tokens, so that code written against Entra reads ours unchanged.
package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/pki"
)

// Claims are the claims of an access or ID token, v1 and v2 alike; a field a
// version does not use stays empty and is omitted.
type Claims struct {
	Audience  string `json:"aud"`
	Issuer    string `json:"iss"`
	IssuedAt  int64  `json:"iat"`
	NotBefore int64  `json:"nbf"`
	Expires   int64  `json:"exp"`

	// Identity of the caller.
	TenantID  string `json:"tid,omitempty"`
	ObjectID  string `json:"oid,omitempty"`
	Subject   string `json:"sub,omitempty"`
	IdentType string `json:"idtyp,omitempty"` // "app" for app-only tokens
	IDP       string `json:"idp,omitempty"`   // the home tenant's issuer, for principals from another tenant

	// The client application: v1 names, then v2 names.
	AppID    string `json:"appid,omitempty"`
	AppIDACR string `json:"appidacr,omitempty"` // "0" public, "1" secret, "2" certificate
	AZP      string `json:"azp,omitempty"`
	AZPACR   string `json:"azpacr,omitempty"`

	// What the caller may do.
	Roles  []string `json:"roles,omitempty"`
	Scope  string   `json:"scp,omitempty"`
	Groups []string `json:"groups,omitempty"`
	// WIDs are the template ids of the tenant-wide directory roles the
	// subject holds ("wids", access-token-claims-reference).
	WIDs []string `json:"wids,omitempty"`

	// Users.
	Name              string   `json:"name,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	UniqueName        string   `json:"unique_name,omitempty"`
	UPN               string   `json:"upn,omitempty"`
	AMR               []string `json:"amr,omitempty"`
	Nonce             string   `json:"nonce,omitempty"`

	// Bookkeeping claims Entra always sends.
	AIO     string `json:"aio,omitempty"`
	RH      string `json:"rh,omitempty"`
	UTI     string `json:"uti,omitempty"` // unique token id
	Version string `json:"ver,omitempty"` // "1.0" or "2.0"

	// ManagedIdentityResourceID is xms_mirid: the resource id of a managed identity.
	ManagedIdentityResourceID string `json:"xms_mirid,omitempty"`
	// ClientCapabilities is xms_cc, e.g. ["CP1"] when the client can handle claims challenges.
	ClientCapabilities []string `json:"xms_cc,omitempty"`
}

// HasRole reports whether the token carries the app role value (case-sensitive, as Entra's role values are).
func (c Claims) HasRole(role string) bool {
	for _, r := range c.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// HasScope reports whether scp lists the scope (case-insensitively).
func (c Claims) HasScope(scope string) bool {
	for _, s := range strings.Fields(c.Scope) {
		if strings.EqualFold(s, scope) {
			return true
		}
	}
	return false
}

// IsAppOnly reports whether the token was issued to an application acting as itself.
func (c Claims) IsAppOnly() bool { return c.IdentType == "app" }

// HomeTenant is the caller's home tenant: the tenant id in the idp claim's
// issuer URL (https://sts.windows.net/{tid}/ or
// https://login.microsoftonline.com/{tid}/v2.0), which Entra sets when the
// subject comes from another tenant, else tid. Audit records name it as the
// actor's tenant, so that a tenant sees what its principals did elsewhere.
func (c Claims) HomeTenant() string {
	for _, seg := range strings.Split(c.IDP, "/") {
		if len(seg) == 36 {
			if id, err := uuid.Parse(seg); err == nil {
				return id.String()
			}
		}
	}
	return c.TenantID
}

// ClientID returns the calling application's id, from appid (v1) or azp (v2).
func (c Claims) ClientID() string {
	if c.AppID != "" {
		return c.AppID
	}
	return c.AZP
}

// Mint signs claims with key as RS256. v1 tokens carry x5t and kid in their
// header, v2 tokens only kid, as Entra's do.
func Mint(key pki.SigningKey, c Claims) (string, error) {
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", key.KeyID)
	if c.Version == "1.0" {
		opts = opts.WithHeader("x5t", key.X5T())
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key.Key}, opts)
	if err != nil {
		return "", fmt.Errorf("token: signer: %w", err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("token: claims: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("token: sign: %w", err)
	}
	return jws.CompactSerialize()
}

// Verification errors. Resource surfaces map them to their own 401 bodies.
var (
	ErrMalformed    = errors.New("token is malformed")
	ErrUnknownKey   = errors.New("token is signed by an unknown key")
	ErrSignature    = errors.New("token signature is invalid")
	ErrExpired      = errors.New("token is expired")
	ErrNotYetValid  = errors.New("token is not yet valid")
	ErrMissingClaim = errors.New("token lacks a required claim")
)

// ClockSkew is how far a token's nbf and exp may be off the verifier's clock,
// the five minutes Microsoft's resource providers allow.
const ClockSkew = 5 * time.Minute

// KeyLookup finds a published signing key by its kid.
type KeyLookup interface {
	Lookup(kid string) (pki.SigningKey, bool)
}

// Verify checks that raw is an RS256 JWT signed by one of keys and valid at
// now, and returns its claims. The caller checks issuer, audience and tenant,
// which only it knows.
func Verify(keys KeyLookup, raw string, now time.Time) (Claims, error) {
	c, _, err := verifySignature(keys, raw)
	if err != nil {
		return c, err
	}
	return c, checkTimes(c, now)
}

// verifySignature parses raw, checks its signature with the key it names,
// and decodes its claims; it returns the claims and the key id.
func verifySignature(keys KeyLookup, raw string) (Claims, string, error) {
	var c Claims
	if len(raw) > 16<<10 {
		return c, "", fmt.Errorf("%w: too long", ErrMalformed)
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return c, "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(jws.Signatures) != 1 {
		return c, "", fmt.Errorf("%w: want one signature", ErrMalformed)
	}
	kid := jws.Signatures[0].Header.KeyID
	key, ok := keys.Lookup(kid)
	if !ok {
		return c, "", ErrUnknownKey
	}
	payload, err := jws.Verify(&key.Key.PublicKey)
	if err != nil {
		return c, "", ErrSignature
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return c, "", fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	if c.Expires == 0 || c.TenantID == "" || c.Audience == "" || c.Issuer == "" {
		return c, "", ErrMissingClaim
	}
	return c, kid, nil
}

// checkTimes checks the token's validity window at now, with ClockSkew.
func checkTimes(c Claims, now time.Time) error {
	t := now.Unix()
	skew := int64(ClockSkew / time.Second)
	if t > c.Expires+skew {
		return ErrExpired
	}
	if c.NotBefore != 0 && t+skew < c.NotBefore {
		return ErrNotYetValid
	}
	return nil
}
