package publisher_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/broker/publisher"
)

// TestCloudRegistrationCallIsAccepted: the cloud's own registration call
// (the deployment's registration step, with the bootstrap secret it reads
// from the publisher's vault at send time) reaches the broker's /register
// and is answered 2xx: the delivery log shows it delivered.
func TestCloudRegistrationCallIsAccepted(t *testing.T) {
	w := newWorld(t)
	w.broker(t, nil)
	w.publish(t, "called", publisher.ModeFederated)
	appID, _ := w.install(t, "called", "call1")
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, doc := w.arm(t, w.pubCred, "GET", w.definition+"/notifications", nil)
		for _, v := range asList(doc["value"]) {
			m, _ := v.(map[string]any)
			if strings.Contains(toString(m["endpoint"]), "/register") {
				if m["state"] == "delivered" && m["lastStatus"] == 200.0 {
					return
				}
				if m["state"] == "failed" {
					t.Fatalf("registration call failed: %v", m)
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("registration call for %s not delivered in 20 s: %v", appID, doc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func asList(v any) []any { l, _ := v.([]any); return l }

func toString(v any) string { s, _ := v.(string); return s }
