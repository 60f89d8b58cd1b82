package token_test

import (
	"errors"
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
