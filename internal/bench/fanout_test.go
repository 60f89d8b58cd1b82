package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/bench"
)

// TestRunFanout: a provider and three customer tenants set up through the
// public APIs only, two measured rounds: every command answered, matched
// by CorrelationId, and every tenant deleted.
func TestRunFanout(t *testing.T) {
	cred := startServer(t)
	var log bytes.Buffer
	rep, err := bench.RunFanout(context.Background(), bench.FanoutOptions{Server: cred, Customers: 3, Rounds: 2, Log: &log})
	if err != nil {
		t.Fatalf("RunFanout: %v\nlog:\n%s", err, log.String())
	}
	if rep.Sent != 6 || rep.Replies != 6 || rep.Missing != 0 || len(rep.SendErrors) != 0 {
		t.Errorf("sent %d, replies %d, missing %d, errors %v; want 6, 6, 0, none", rep.Sent, rep.Replies, rep.Missing, rep.SendErrors)
	}
	l := rep.RoundTrip
	if !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) || rep.Throughput <= 0 || rep.Setup <= 0 {
		t.Errorf("round trip %+v, throughput %.1f, setup %s", l, rep.Throughput, rep.Setup)
	}
	if m := rep.MemoryConnected; m == nil || m.RSSBytes == 0 || m.HeapInuseBytes == 0 || m.Goroutines == 0 || rep.Warmup <= 0 {
		t.Errorf("server memory with the fleet connected %+v (note %q), warm-up %s", m, rep.MemoryNote, rep.Warmup)
	}
	if rep.MemoryAtRest == nil || rep.MemoryAfter == nil {
		t.Errorf("server memory at rest %+v, after %+v", rep.MemoryAtRest, rep.MemoryAfter)
	}
	if rep.TenantsDeleted != 4 || rep.CleanupError != "" {
		t.Errorf("%d tenants deleted, cleanup error %q; want 4", rep.TenantsDeleted, rep.CleanupError)
	}
	op, err := azclient.NewOperatorFromCredential(cred)
	if err != nil {
		t.Fatal(err)
	}
	if ts, err := op.ListTenants(context.Background()); err != nil {
		t.Fatal(err)
	} else {
		for _, ten := range ts {
			if strings.HasPrefix(ten.Name, "bench") {
				t.Errorf("tenant %s left after the run", ten.Name)
			}
		}
	}
	var table, js bytes.Buffer
	if err := bench.PrintFanout(&table, rep, "table"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"RTT P99", "3 customer tenants", "4 tenants deleted", rep.AppID, "fleet connected: RSS", "goroutines"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	if err := bench.PrintFanout(&js, rep, "json"); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back["Replies"] != float64(6) || back["ServerMemoryConnected"] == nil {
		t.Errorf("JSON %s: %v", js.String(), err)
	}
}
