package token

import (
	"crypto/rsa"
	"crypto/sha256"
	"sync"
	"time"
)

// maxVerified bounds the tokens a VerifiedCache remembers; past it, it
// starts over.
const maxVerified = 4096

// VerifiedCache remembers tokens whose signature has been checked, so that
// a client presenting the same bearer token on every call (which is what
// the Azure SDKs do until it nears expiry) costs one RSA verification and
// one claims decoding per token, not per request. Those were a fifth of
// the Key Vault data plane's CPU.
//
// Only what depends on the token's bytes alone is remembered. Each call
// still requires that the signing key is one of keys at that moment (a
// pruned key stops its tokens at once) and checks the validity window at
// now; everything else (issuer, audience, tenant) is the caller's to
// check on every call, as before. Entries are keyed by the token's
// SHA-256, so the cache holds no bearer tokens.
type VerifiedCache struct {
	mu      sync.RWMutex
	entries map[[sha256.Size]byte]verifiedToken
}

type verifiedToken struct {
	claims Claims
	kid    string
	key    *rsa.PublicKey // the key that verified it
}

// NewVerifiedCache returns an empty cache.
func NewVerifiedCache() *VerifiedCache {
	return &VerifiedCache{entries: map[[sha256.Size]byte]verifiedToken{}}
}

// Verify is token.Verify, with the signature check remembered. The
// returned claims share their slices with the cache: callers must not
// modify them.
func (vc *VerifiedCache) Verify(keys KeyLookup, raw string, now time.Time) (Claims, error) {
	if len(raw) > 16<<10 {
		return Verify(keys, raw, now)
	}
	sum := sha256.Sum256([]byte(raw))
	vc.mu.RLock()
	e, ok := vc.entries[sum]
	vc.mu.RUnlock()
	if ok {
		key, found := keys.Lookup(e.kid)
		if found && &key.Key.PublicKey == e.key {
			return e.claims, checkTimes(e.claims, now)
		}
		if !found {
			return Claims{}, ErrUnknownKey
		}
		// The key id now names another key: check afresh.
	}
	c, kid, err := verifySignature(keys, raw)
	if err != nil {
		return c, err
	}
	if key, found := keys.Lookup(kid); found {
		vc.mu.Lock()
		if len(vc.entries) >= maxVerified {
			clear(vc.entries)
		}
		vc.entries[sum] = verifiedToken{claims: c, kid: kid, key: &key.Key.PublicKey}
		vc.mu.Unlock()
	}
	return c, checkTimes(c, now)
}
