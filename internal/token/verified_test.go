package token_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/pki"
	"github.com/tenantbridge/tenantbridge/internal/token"
)

// keyMap is a KeyLookup whose keys a test can remove.
type keyMap map[string]pki.SigningKey

func (m keyMap) Lookup(kid string) (pki.SigningKey, bool) { k, ok := m[kid]; return k, ok }

func TestVerifiedCacheAgreesWithVerify(t *testing.T) {
	key := keys(t).Current()
	set := keyMap{key.KeyID: key}
	now := time.Now()
	raw, err := token.Mint(key, claims(now, "2.0"))
	if err != nil {
		t.Fatal(err)
	}
	vc := token.NewVerifiedCache()
	for i := range 2 { // the second call is served from the cache
		c, err := vc.Verify(set, raw, now)
		if err != nil || c.TenantID == "" {
			t.Fatalf("call %d: %+v %v", i, c, err)
		}
	}
	// Time is checked on every call.
	if _, err := vc.Verify(set, raw, now.Add(2*time.Hour)); !errors.Is(err, token.ErrExpired) {
		t.Fatalf("expired token from the cache: %v", err)
	}
	// A token altered by one character is checked afresh and refused.
	bad := raw[:len(raw)-2] + flip(raw[len(raw)-2])
	if _, err := vc.Verify(set, bad, now); err == nil {
		t.Fatal("altered token accepted")
	}
	// A key removed from the set stops its cached tokens at once.
	delete(set, key.KeyID)
	if _, err := vc.Verify(set, raw, now); !errors.Is(err, token.ErrUnknownKey) {
		t.Fatalf("token of a pruned key: %v", err)
	}
	// A different key under the same id is not trusted from the cache.
	other := keys(t).Current()
	other.KeyID = key.KeyID
	set[key.KeyID] = other
	if _, err := vc.Verify(set, raw, now); !errors.Is(err, token.ErrSignature) {
		t.Fatalf("token checked against a replaced key: %v", err)
	}
}

func flip(b byte) string {
	if b == 'A' {
		return "B"
	}
	return "A"
}

// TestVerifiedCacheEvictsExpiredThenAQuarter: a full cache drops its
// expired tokens first and otherwise only a quarter of its tokens, so
// that tokens in use past its size still mostly verify from memory; it
// never starts over (which made every call check a signature once the
// tokens in use outnumbered it).
func TestVerifiedCacheEvictsExpiredThenAQuarter(t *testing.T) {
	key := keys(t).Current()
	set := keyMap{key.KeyID: key}
	now := time.Now()
	minted := 0
	mint := func(t *testing.T, n int, life time.Duration) []string {
		var out []string
		for range n {
			minted++
			c := claims(now, "2.0")
			c.Expires = now.Add(life).Unix()
			c.ObjectID = fmt.Sprint(minted) // each token distinct
			raw, err := token.Mint(key, c)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, raw)
		}
		return out
	}
	vc := token.NewVerifiedCache()
	token.SetVerifiedMax(vc, 8)
	short, long := mint(t, 4, time.Minute), mint(t, 4, time.Hour)
	for _, raw := range append(short, long...) {
		if _, err := vc.Verify(set, raw, now); err != nil {
			t.Fatal(err)
		}
	}
	// Full; at now+10 minutes the short-lived tokens have expired: they go,
	// every live one stays.
	later := now.Add(10 * time.Minute)
	extra := mint(t, 1, time.Hour)[0]
	if _, err := vc.Verify(set, extra, later); err != nil {
		t.Fatal(err)
	}
	for _, raw := range short {
		if held, _ := token.VerifiedHolds(vc, raw); held {
			t.Error("an expired token was kept while live ones were full")
		}
	}
	for _, raw := range append(long, extra) {
		if held, n := token.VerifiedHolds(vc, raw); !held {
			t.Errorf("a live token was dropped (%d held)", n)
		}
	}
	// Nothing expired: a quarter goes, not everything.
	more := mint(t, 4, time.Hour)
	for _, raw := range more {
		if _, err := vc.Verify(set, raw, later); err != nil {
			t.Fatal(err)
		}
	}
	if _, n := token.VerifiedHolds(vc, more[3]); n < 6 || n > 8 {
		t.Fatalf("%d tokens held after overflowing a cache of 8; want 6-8", n)
	}
}

// BenchmarkVerifiedCacheManyTokens verifies, round and round, more
// tokens than the cache held before 368d351 (4,096): what the per-message
// re-check of a fan-out's connected customers does, two tokens each. An
// op is one call; with every token remembered it is a hash and a map
// read, without it an RSA verification.
func BenchmarkVerifiedCacheManyTokens(b *testing.B) {
	key := keys(b).Current()
	set := keyMap{key.KeyID: key}
	now := time.Now()
	raws := make([]string, 6000)
	for i := range raws {
		c := claims(now, "2.0")
		c.ObjectID = fmt.Sprint(i)
		raw, err := token.Mint(key, c)
		if err != nil {
			b.Fatal(err)
		}
		raws[i] = raw
	}
	vc := token.NewVerifiedCache()
	for _, raw := range raws { // the first round fills the cache
		if _, err := vc.Verify(set, raw, now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := vc.Verify(set, raws[i%len(raws)], now); err != nil {
			b.Fatal(err)
		}
	}
}
