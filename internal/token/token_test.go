package token_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/pki"
	"github.com/tenantbridge/tenantbridge/internal/token"
)

func keys(t testing.TB) *pki.KeySet {
	t.Helper()
	ks, err := pki.LoadOrCreateKeySet(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func claims(now time.Time, ver string) token.Claims {
	return token.Claims{Audience: "https://graph.microsoft.com", Issuer: "https://sts.windows.net/t/", TenantID: "t",
		IssuedAt: now.Unix(), NotBefore: now.Unix(), Expires: now.Add(time.Hour).Unix(), Version: ver, Roles: []string{"A.B"}}
}

func header(t *testing.T, raw string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestMintAndVerify(t *testing.T) {
	ks := keys(t)
	now := time.Now()
	for _, ver := range []string{"1.0", "2.0"} {
		raw, err := token.Mint(ks.Current(), claims(now, ver))
		if err != nil {
			t.Fatal(err)
		}
		h := header(t, raw)
		if h["alg"] != "RS256" || h["kid"] != ks.Current().KeyID || h["typ"] != "JWT" {
			t.Fatalf("%s header = %v", ver, h)
		}
		// Entra's v1 tokens carry x5t, its v2 tokens only kid.
		if _, has := h["x5t"]; has != (ver == "1.0") {
			t.Fatalf("%s header x5t presence wrong: %v", ver, h)
		}
		c, err := token.Verify(ks, raw, now)
		if err != nil || !c.HasRole("A.B") || c.Version != ver {
			t.Fatalf("%s verify: %+v %v", ver, c, err)
		}
	}
}

func TestVerifyRefuses(t *testing.T) {
	ks, other := keys(t), keys(t)
	now := time.Now()
	good, _ := token.Mint(ks.Current(), claims(now, "1.0"))
	foreign, _ := token.Mint(other.Current(), claims(now, "1.0"))
	noTenant := claims(now, "1.0")
	noTenant.TenantID = ""
	missing, _ := token.Mint(ks.Current(), noTenant)
	parts := strings.Split(good, ".")
	forge := func(h string) string {
		return base64.RawURLEncoding.EncodeToString([]byte(h)) + "." + parts[1] + "." + parts[2]
	}
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"aud":"x","iss":"y","tid":"t","exp":9999999999}`)) + "." + parts[2]
	cases := []struct {
		name string
		raw  string
		at   time.Time
		want error
	}{
		{"expired beyond the skew", good, now.Add(time.Hour + token.ClockSkew + time.Minute), token.ErrExpired},
		{"not yet valid beyond the skew", good, now.Add(-token.ClockSkew - time.Minute), token.ErrNotYetValid},
		{"signed by another key", foreign, now, token.ErrUnknownKey},
		{"alg none", forge(`{"alg":"none","kid":"` + ks.Current().KeyID + `"}`), now, token.ErrMalformed},
		{"HMAC with the public key", forge(`{"alg":"HS256","kid":"` + ks.Current().KeyID + `"}`), now, token.ErrMalformed},
		{"tampered payload", tampered, now, token.ErrSignature},
		{"missing tenant", missing, now, token.ErrMissingClaim},
		{"garbage", "not.a.jwt", now, token.ErrMalformed},
		{"too long", strings.Repeat("a", 20<<10), now, token.ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := token.Verify(ks, c.raw, c.at); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	// Within the skew both ends are accepted.
	if _, err := token.Verify(ks, good, now.Add(time.Hour+token.ClockSkew-time.Minute)); err != nil {
		t.Fatalf("within skew after exp: %v", err)
	}
}

// FuzzVerify: bearer tokens are untrusted input. Nothing may panic, and
// nothing but a token signed by the key set verifies.
func FuzzVerify(f *testing.F) {
	ks := keys(f)
	now := time.Now()
	good, _ := token.Mint(ks.Current(), claims(now, "1.0"))
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add(strings.Replace(good, ".", "..", 1))
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := token.Verify(ks, raw, now)
		if err == nil && raw != good {
			// Another string may verify only if it is the same JWS in a
			// different (equivalent) encoding; its claims must be ours.
			if c.TenantID != "t" || c.Audience != "https://graph.microsoft.com" {
				t.Fatalf("forged token verified: %q -> %+v", raw, c)
			}
		}
	})
}
