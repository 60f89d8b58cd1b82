package publisher_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

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
