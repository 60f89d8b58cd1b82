package token

import (
	"crypto/rsa"
	"crypto/sha256"
	"sync"
	"time"
)

// maxVerified bounds the tokens a VerifiedCache remembers. A connected
// AMQP client's token is checked again for every message (continuous
// access evaluation), so the cache must hold every token in use: a
// fan-out of 10,000 customers presents two per customer (the provider's
// token in the customer's tenant and the customer's worker's), 20,000 in
// all. An entry is the token's claims, packed (packedClaims): some 700
// bytes for an app-only token (TestVerifiedCacheMemoryPerToken).
const maxVerified = 65_536

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
	max     int
	mu      sync.RWMutex
	entries map[[sha256.Size]byte]verifiedToken
	stable  map[string]string // the entries' packedClaims.stable strings, each once
}

type verifiedToken struct {
	claims packedClaims
	kid    string         // the key's own KeyID, not a copy per token
	key    *rsa.PublicKey // the key that verified it
}

// NewVerifiedCache returns an empty cache.
func NewVerifiedCache() *VerifiedCache {
	return &VerifiedCache{max: maxVerified, entries: map[[sha256.Size]byte]verifiedToken{}, stable: map[string]string{}}
}

// intern returns the stable string of claims equal to s that an entry
// already holds, else s, which later entries will share. The strings
// are as many as the cache's max at most, and twice its entries (and a
// few): past that they start over (the entries keep theirs), so that
// those of tokens gone are not kept for long. vc.mu is held.
func (vc *VerifiedCache) intern(s string) string {
	if s == "" {
		return ""
	}
	if t, ok := vc.stable[s]; ok {
		return t
	}
	if len(vc.stable) >= vc.max || len(vc.stable) >= 2*len(vc.entries)+8 {
		clear(vc.stable)
	}
	vc.stable[s] = s
	return s
}

func sha256Sum(raw string) [sha256.Size]byte { return sha256.Sum256([]byte(raw)) }

// evict makes room in a full cache: the expired tokens go (they verify
// nothing any more), then, if that freed less than a quarter, others in
// the map's random order until a quarter is free. Starting over instead
// would make a cache whose tokens in use outnumber it check a signature
// on every call; this way most calls still find theirs. vc.mu is held.
func (vc *VerifiedCache) evict(now time.Time) {
	for k, e := range vc.entries {
		if e.claims.expires != 0 && now.Unix() >= e.claims.expires {
			delete(vc.entries, k)
		}
	}
	for k := range vc.entries {
		if len(vc.entries) <= vc.max*3/4 {
			break
		}
		delete(vc.entries, k)
	}
}

// Verify is token.Verify, with the signature check remembered. The
// returned claims share their slices with the cache: callers must not
// modify them.
func (vc *VerifiedCache) Verify(keys KeyLookup, raw string, now time.Time) (Claims, error) {
	if len(raw) > 16<<10 {
		return Verify(keys, raw, now)
	}
	sum := sha256Sum(raw)
	vc.mu.RLock()
	e, ok := vc.entries[sum]
	vc.mu.RUnlock()
	if ok {
		key, found := keys.Lookup(e.kid)
		if found && &key.Key.PublicKey == e.key {
			c := e.claims.unpack()
			return c, checkTimes(c, now)
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
		if key.KeyID == kid {
			kid = key.KeyID // the key set's string, not one decoded per token
		}
		vc.mu.Lock()
		if p, ok := pack(&c, vc.intern); ok {
			if len(vc.entries) >= vc.max {
				vc.evict(now)
			}
			vc.entries[sum] = verifiedToken{claims: p, kid: kid, key: &key.Key.PublicKey}
		}
		vc.mu.Unlock()
	}
	return c, checkTimes(c, now)
}
