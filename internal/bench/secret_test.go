package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/bench"
)

// TestRunSecretGet: a real server, set up through the public APIs only,
// read at concurrency 4 for a second: authorized reads, no errors, the
// tenant deleted.
func TestRunSecretGet(t *testing.T) {
	cred := startServer(t)
	var log bytes.Buffer
	rep, err := bench.RunSecretGet(context.Background(), bench.SecretGetOptions{Server: cred, Concurrency: 4, Duration: time.Second,
		Warmup: 200 * time.Millisecond, Log: &log})
	if err != nil {
		t.Fatalf("RunSecretGet: %v\nlog:\n%s", err, log.String())
	}
	if rep.Reads == 0 || rep.Rate <= 0 {
		t.Errorf("%d reads at %.1f/s; want some", rep.Reads, rep.Rate)
	}
	if rep.Failed != 0 || len(rep.Errors) != 0 {
		t.Errorf("%d errors: %v", rep.Failed, rep.Errors)
	}
	l := rep.Latency
	if !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max && l.Mean > 0 && l.Mean <= l.Max) {
		t.Errorf("latency %+v is not ordered", l)
	}
	if rep.Window < 900*time.Millisecond || rep.Connections > 0 || rep.Protocol != "HTTP/1.1" {
		t.Errorf("window %s, %d connections opened in it, protocol %q", rep.Window, rep.Connections, rep.Protocol)
	}
	if !strings.HasSuffix(rep.Vault, ".vault.azure.net") || rep.Secret == "" {
		t.Errorf("vault %q secret %q", rep.Vault, rep.Secret)
	}
	if rep.MemoryAtRest == nil && rep.MemoryNote == "" {
		t.Error("neither the server's memory nor a note on why it is missing")
	}
	if !rep.TenantDeleted || rep.CleanupError != "" {
		t.Errorf("tenant deleted = %v, cleanup error %q", rep.TenantDeleted, rep.CleanupError)
	}
	op, err := azclient.NewOperatorFromCredential(cred)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.GetTenant(context.Background(), rep.TenantID); !azclient.IsNotFound(err) {
		t.Errorf("bench tenant %s after the run: %v; want not found", rep.TenantID, err)
	}

	var table, js bytes.Buffer
	if err := bench.PrintSecretGet(&table, rep, "table"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"(deleted)", "READS/S", "HTTP/1.1", rep.Vault + "/secrets/"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	if err := bench.PrintSecretGet(&js, rep, "json"); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Reads         int     `json:"reads"`
		ReadsPerSec   float64 `json:"readsPerSecond"`
		Latency       struct{ P50Ms float64 }
		TenantDeleted bool `json:"tenantDeleted"`
	}
	if err := json.Unmarshal(js.Bytes(), &got); err != nil || got.Reads != rep.Reads || got.ReadsPerSec <= 0 || got.Latency.P50Ms <= 0 || !got.TenantDeleted {
		t.Errorf("json (%v) = %s", err, js.String())
	}
	if err := bench.PrintSecretGet(&js, rep, "yaml"); err == nil {
		t.Error("PrintSecretGet accepted yaml")
	}
	t.Logf("%d reads, %.1f/s, p50 %s p99 %s", rep.Reads, rep.Rate, rep.Latency.P50, rep.Latency.P99)
}

// TestSecretGetPrintErrors: refusals are listed by code and status.
func TestSecretGetPrintErrors(t *testing.T) {
	rep := bench.SecretGetReport{Server: "https://127.0.0.1:8443", Tenant: "bench1", Concurrency: 2, Duration: time.Second,
		Reads: 10, Rate: 10, Failed: 3, Errors: map[string]int{"Forbidden: denied (HTTP 403)": 3}, TenantDeleted: true,
		Latency: bench.Latency{P50: time.Millisecond, P90: time.Millisecond, P99: 2 * time.Millisecond, Max: 3 * time.Millisecond, Mean: time.Millisecond}}
	var out bytes.Buffer
	if err := bench.PrintSecretGet(&out, rep, ""); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "3 × Forbidden: denied (HTTP 403)") || !strings.Contains(out.String(), "1.00ms") {
		t.Errorf("table:\n%s", out.String())
	}
}
