package oidcfed

import (
	"context"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// BenchmarkVerifyCached measures a verification whose issuer keys are
// cached: the common case in the token service.
func BenchmarkVerifyCached(b *testing.B) {
	for _, k := range []testKey{rsaKey(0, "rs", jose.RS256), rsaKey(1, "ps", jose.PS256), ecKey(0, "es", jose.ES256)} {
		b.Run(string(k.alg), func(b *testing.B) {
			f := newFakeIssuer(b, k)
			clk := newClock()
			v := newTestVerifier(f, clk)
			raw := k.sign(b, claimsFor(f.URL, clk.Now()), nil)
			if _, err := v.Verify(context.Background(), raw); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := v.Verify(context.Background(), raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
