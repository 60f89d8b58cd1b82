package postgres

import "testing"

// TestQueueWakesOf: a queue wake-up notification is taken only from the
// same schema and another process, and only when well formed.
func TestQueueWakesOf(t *testing.T) {
	const js = `[{"q":"/subscriptions/s/resourcegroups/g/providers/microsoft.servicebus/namespaces/n/queues/q","n":2},{"q":"/q","s":"sess","n":1}]`
	ws, ok := queueWakesOf("tb tenantbridge-other "+js, "tb", "tenantbridge-me")
	if !ok || len(ws) != 2 || ws[0].N != 2 || ws[1].Session != "sess" {
		t.Fatalf("got %+v, %v", ws, ok)
	}
	for _, tc := range []struct{ name, payload string }{
		{"own process", "tb tenantbridge-me " + js},
		{"other schema", "tb2 tenantbridge-other " + js},
		{"no wake-ups", "tb tenantbridge-other"},
		{"not JSON", "tb tenantbridge-other [{"},
		{"no queue", `tb tenantbridge-other [{"n":1}]`},
		{"no count", `tb tenantbridge-other [{"q":"/q"}]`},
		{"absurd count", `tb tenantbridge-other [{"q":"/q","n":99999999}]`},
		{"null", "tb tenantbridge-other null"},
	} {
		if ws, ok := queueWakesOf(tc.payload, "tb", "tenantbridge-me"); ok {
			t.Errorf("%s: taken as %+v", tc.name, ws)
		}
	}
}

func FuzzQueueWakesOf(f *testing.F) {
	f.Add(`tb x [{"q":"/q","n":1,"d":true}]`)
	f.Add(`tb x [{"q":"/q","x":true,"n":3}]`)
	f.Fuzz(func(t *testing.T, payload string) {
		ws, ok := queueWakesOf(payload, "tb", "me")
		if !ok {
			return
		}
		for _, w := range ws {
			if w.QueueID == "" || w.N <= 0 {
				t.Fatalf("accepted %+v", w)
			}
		}
	})
}
