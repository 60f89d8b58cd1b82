package publisher_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/tenantbridge/tenantbridge/internal/broker/publisher"
)

// BenchmarkInstallToCredential measures a managed application install end
// to end: from the customer's PUT of the application until the publisher's
// broker has registered the installation (the per-installation
// application, its service principal and group membership) and the
// credential is in the managed application's own vault. The lifecycle
// notification travels through the cloud's outbox to the broker's
// handler over HTTP, as it would in production (the deliverer is woken
// by the commit, not by a timer).
func BenchmarkInstallToCredential(b *testing.B) {
	for _, mode := range []string{publisher.ModeSecret, publisher.ModeFederated} {
		b.Run(mode, func(b *testing.B) {
			w := newWorld(b)
			br := w.broker(b, nil)
			w.publish(b, "offer-"+mode, mode)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				appID, _ := w.install(b, "offer-"+mode, fmt.Sprintf("%s%d", mode, i))
				// Poll the broker's own state every millisecond (waitFor's
				// 50 ms step would round the latency up).
				deadline := time.Now().Add(30 * time.Second)
				for in := w.installation(b, br, appID); in == nil || in.Status != "registered"; in = w.installation(b, br, appID) {
					if time.Now().After(deadline) {
						b.Fatalf("install %d not registered in 30 s", i)
					}
					time.Sleep(time.Millisecond)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
		})
	}
}

// BenchmarkExchange measures the broker's secretless exchange end to end
// over HTTPS: an installation's managed identity token in, verified
// against the customer tenant's keys (cached after the first), the
// installation read from the broker's state, and an assertion signed by
// Key Vault's sign out (assertions/s). Parallel: as many installations'
// requests at once as GOMAXPROCS × 4.
func BenchmarkExchange(b *testing.B) {
	ctx := context.Background()
	w := newWorld(b)
	br := w.broker(b, nil)
	w.publish(b, "secretless", publisher.ModeFederated)
	appID, _ := w.install(b, "secretless", "bench1")
	waitFor(b, "registration", func() bool {
		in := w.installation(b, br, appID)
		return in != nil && in.Status == "registered"
	})
	tok, err := w.installedSoftware(b, appID).GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{publisher.TokenExchangeAudience + "/.default"}})
	must(b, err)
	hc := w.issuerSrv.Client()
	if _, err := publisher.ExchangeToken(ctx, hc, br.ExchangeURL(), appID, tok.Token); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := publisher.ExchangeToken(ctx, hc, br.ExchangeURL(), appID, tok.Token); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "assertions/s")
}

// BenchmarkVaultSign measures Key Vault's sign through the real azkeys
// client (RS256 over a SHA-256 digest, RSA 2048, HTTPS to the vault):
// the cost of every assertion the broker signs (signs/s).
func BenchmarkVaultSign(b *testing.B) {
	ctx := context.Background()
	w := newWorld(b)
	s := w.issuerKey(b)
	digest := sha256.Sum256([]byte("header.claims"))
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := s.SignDigest(ctx, digest[:]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "signs/s")
}
