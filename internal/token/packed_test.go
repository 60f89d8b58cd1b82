package token_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/go-jose/go-jose/v4"

	"github.com/tenantbridge/tenantbridge/internal/token"
)

// everyClaim sets every field of Claims, through reflection, so that a
// claim added to Claims and not to the cache's packing makes the cache
// answer differently from Verify.
func everyClaim(t *testing.T, now time.Time) token.Claims {
	t.Helper()
	var c token.Claims
	v := reflect.ValueOf(&c).Elem()
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch f.Interface().(type) {
		case string:
			f.SetString(fmt.Sprintf("%s-%d-é", name, i))
		case []string:
			f.Set(reflect.ValueOf([]string{name + "-a", "shared", name + "-b"}))
		case int64:
			f.SetInt(now.Unix() - int64(i))
		default:
			t.Fatalf("Claims.%s is a %s: teach the VerifiedCache's packing (packed.go) and this test about it", name, f.Type())
		}
	}
	c.Expires = now.Add(time.Hour).Unix()
	c.Subject = c.ObjectID // a repeated value is stored once
	c.Issuer = "https://sts.windows.net/" + c.TenantID + "/"
	return c
}

// TestPackedClaimsKeepEveryClaim: a token served from the VerifiedCache
// has exactly the claims Verify decodes, every claim set, and lists
// that are absent, present and empty, or present stay so.
func TestPackedClaimsKeepEveryClaim(t *testing.T) {
	key := keys(t).Current()
	set := keyMap{key.KeyID: key}
	now := time.Now()
	full, err := token.Mint(key, everyClaim(t, now))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key.Key}, (&jose.SignerOptions{}).WithHeader("kid", key.KeyID))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(map[string]any{"aud": "a", "iss": "https://sts.windows.net/t/", "tid": "t", "exp": now.Add(time.Hour).Unix(),
		"roles": []string{}, "groups": nil, "wids": []string{""}, "amr": []string{"pwd", "pw"}, "upn": "\u00e9\\u0041", "oid": "t"})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	lists, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	// Tokens whose stable claims pack to one string share it, with lists
	// of their own.
	sameText := []string{full, lists}
	for _, roles := range [][]string{{"ab"}, {"a", "b"}, {"a", "b"}, {"ab", "a"}} {
		c := claims(now, "2.0")
		c.Roles, c.UTI = roles, fmt.Sprint(len(sameText))
		raw, err := token.Mint(key, c)
		if err != nil {
			t.Fatal(err)
		}
		sameText = append(sameText, raw)
	}
	vc := token.NewVerifiedCache()
	for _, raw := range sameText {
		want, err := token.Verify(set, raw, now)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			got, err := vc.Verify(set, raw, now)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("call %d: the cache answered\n%#v\nVerify\n%#v", i, got, want)
			}
		}
		if held, _ := token.VerifiedHolds(vc, raw); !held {
			t.Fatal("the token was not cached")
		}
	}
	if c, _ := vc.Verify(set, lists, now); c.Roles == nil || len(c.Roles) != 0 || c.Groups != nil || len(c.WIDs) != 1 {
		t.Fatalf("lists: roles %#v, groups %#v, wids %#v", c.Roles, c.Groups, c.WIDs)
	}
}

// TestRenewedTokenSharesStableClaims: a renewed token's claims that say
// who the caller is are the first token's strings, which caches keyed by
// them (RBAC decisions, trust checks) keep, not a copy per token.
func TestRenewedTokenSharesStableClaims(t *testing.T) {
	key := keys(t).Current()
	set := keyMap{key.KeyID: key}
	now := time.Now()
	vc := token.NewVerifiedCache()
	var got []token.Claims
	for i := range 2 {
		c := claims(now, "1.0")
		c.ObjectID, c.UTI, c.IssuedAt = "object", fmt.Sprint("uti", i), now.Unix()-int64(i)
		raw, err := token.Mint(key, c)
		if err != nil {
			t.Fatal(err)
		}
		_, err = vc.Verify(set, raw, now)
		v, err2 := vc.Verify(set, raw, now) // from the cache
		if err != nil || err2 != nil {
			t.Fatal(err, err2)
		}
		got = append(got, v)
	}
	if unsafe.StringData(got[0].ObjectID) != unsafe.StringData(got[1].ObjectID) || got[0].UTI == got[1].UTI {
		t.Fatalf("renewed: %+v\nfirst: %+v", got[1], got[0])
	}
}

// TestVerifiedStableTableBounded: the table of shared stable claims
// holds no more than the cache's max nor twice its tokens (and a few),
// however many tokens with claims of their own went through it.
func TestVerifiedStableTableBounded(t *testing.T) {
	key := keys(t).Current()
	set := keyMap{key.KeyID: key}
	now := time.Now()
	vc := token.NewVerifiedCache()
	token.SetVerifiedMax(vc, 16)
	for i := range 100 {
		c := claims(now, "2.0")
		c.ObjectID = fmt.Sprint("object ", i)
		raw, err := token.Mint(key, c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := vc.Verify(set, raw, now); err != nil {
			t.Fatal(err)
		}
		_, held := token.VerifiedHolds(vc, raw)
		if n := token.VerifiedStable(vc); n > 16 || n > 2*held+8 {
			t.Fatalf("after %d tokens: %d stable strings for %d tokens", i+1, n, held)
		}
	}
}
