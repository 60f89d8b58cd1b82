package bench

import (
	"context"
	"log/slog"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/server"
)

func TestSummarize(t *testing.T) {
	if got := summarize(nil); got != (Latency{}) {
		t.Errorf("summarize(nil) = %+v", got)
	}
	var s []time.Duration
	for i := 100; i >= 1; i-- { // 1..100 ms, reversed
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	got := summarize(s)
	want := Latency{P50: 50 * time.Millisecond, P90: 90 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond,
		Mean: 50500 * time.Microsecond}
	if got != want {
		t.Errorf("summarize(1..100ms) = %+v; want %+v", got, want)
	}
	one := summarize([]time.Duration{7})
	if one.P50 != 7 || one.P99 != 7 || one.Max != 7 {
		t.Errorf("summarize([7]) = %+v", one)
	}
}

func TestResponseFailure(t *testing.T) {
	for _, c := range []struct {
		status int
		body   string
		want   string
	}{
		{401, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Trace ID: x"}`, "AADSTS7000215 (HTTP 401)"},
		{400, `{"error":"invalid_request"}`, "invalid_request (HTTP 400)"},
		{503, `<html>busy</html>`, "HTTP 503"},
	} {
		if got := responseFailure(c.status, []byte(c.body)); got != c.want {
			t.Errorf("responseFailure(%d, %s) = %q; want %q", c.status, c.body, got, c.want)
		}
	}
}

// TestLoadCountsRefusals: refused requests are counted by AADSTS code and
// status, and are not latency samples.
func TestLoadCountsRefusals(t *testing.T) {
	cred := startTestServer(t)
	ctx := context.Background()
	b, err := newBench(TokenOptions{Server: cred, Concurrency: 2}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	ten, err := b.op.CreateTenant(ctx, "refusals")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.setupTenant(ctx, ten); err != nil {
		t.Fatal(err)
	}
	if _, err := b.admin.graph.AddPassword(ctx, b.app.ID, azclient.PasswordCredential{}); err != nil {
		t.Fatal(err)
	}
	body := []byte(b.formPrefix() + "&client_secret=" + url.QueryEscape("not-the-secret"))
	p := b.load.run(ctx, 2, 300*time.Millisecond, staticBody(body), 16)
	if len(p.samples) != 0 || p.failed == 0 || p.errors["AADSTS7000215 (HTTP 401)"] != p.failed {
		t.Errorf("samples %d, failed %d, errors %v", len(p.samples), p.failed, p.errors)
	}
	if err := b.op.DeleteTenant(ctx, ten.TenantID); err != nil {
		t.Fatal(err)
	}
}

func startTestServer(t *testing.T) azclient.OperatorCredential {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Config{DataDir: dir, Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	cred, err := azclient.ReadOperatorCredential(filepath.Join(dir, "operator.json"))
	if err != nil {
		t.Fatal(err)
	}
	return cred
}
