package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/bench"
	"github.com/tenantbridge/tenantbridge/internal/server"
)

// startServer runs a real tenantbridge on a loopback port and returns its
// operator credential.
func startServer(t *testing.T) azclient.OperatorCredential {
	t.Helper()
	cred, _ := startServerConfig(t, server.Config{})
	return cred
}

// startServerConfig is startServer with cfg (its data directory, listen
// address and logger set here); it returns the server too.
func startServerConfig(t *testing.T, cfg server.Config) (azclient.OperatorCredential, *server.Server) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cfg.DataDir, cfg.Listen, cfg.Logger = dir, "127.0.0.1:0", slog.New(slog.DiscardHandler)
	srv, err := server.New(ctx, cfg)
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
	return cred, srv
}

// checkGone fails unless the bench tenant was deleted.
func checkGone(t *testing.T, cred azclient.OperatorCredential, rep bench.TokenReport) {
	t.Helper()
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
}

// checkResult asserts what a clean run of one kind must show; no timing
// beyond sanity.
func checkResult(t *testing.T, rep bench.TokenReport, kind bench.Kind) bench.KindResult {
	t.Helper()
	if len(rep.Results) != 1 || rep.Results[0].Kind != kind {
		t.Fatalf("results = %+v; want one for %s", rep.Results, kind)
	}
	r := rep.Results[0]
	if r.SetupError != "" {
		t.Fatalf("%s: setup error: %s", kind, r.SetupError)
	}
	if r.Tokens == 0 || r.Rate <= 0 {
		t.Errorf("%s: %d tokens at %.1f/s; want some", kind, r.Tokens, r.Rate)
	}
	if r.Failed != 0 || len(r.Errors) != 0 {
		t.Errorf("%s: %d errors: %v", kind, r.Failed, r.Errors)
	}
	l := r.Latency
	if !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max && l.Mean > 0 && l.Mean <= l.Max) {
		t.Errorf("%s: latency %+v is not ordered", kind, l)
	}
	if r.Window < 900*time.Millisecond {
		t.Errorf("%s: window %s; want about a second", kind, r.Window)
	}
	// Kept-alive connections: the warm-up opened them.
	if r.Connections > 0 {
		t.Errorf("%s: %d connections opened during the window; want them kept alive from the warm-up", kind, r.Connections)
	}
	if rep.Protocol != "HTTP/1.1" {
		t.Errorf("protocol %q; want HTTP/1.1", rep.Protocol)
	}
	if rep.MemoryAtRest == nil && rep.MemoryNote == "" {
		t.Error("neither the server's memory nor a note on why it is missing")
	}
	return r
}

func run(t *testing.T, cred azclient.OperatorCredential, opts bench.TokenOptions) bench.TokenReport {
	t.Helper()
	opts.Server = cred
	if opts.Concurrency == 0 {
		opts.Concurrency = 4
	}
	if opts.Duration == 0 {
		opts.Duration = time.Second
	}
	if opts.Warmup == 0 {
		opts.Warmup = 200 * time.Millisecond
	}
	var log bytes.Buffer
	opts.Log = &log
	rep, err := bench.RunToken(context.Background(), opts)
	if err != nil {
		// The token service may not have the kind yet: fail, with why.
		t.Fatalf("RunToken(%v): %v\nlog:\n%s", opts.Kinds, err, log.String())
	}
	return rep
}

func TestRunToken(t *testing.T) {
	cred := startServer(t)
	for _, kind := range bench.AllKinds {
		t.Run(string(kind), func(t *testing.T) {
			rep := run(t, cred, bench.TokenOptions{Kinds: []bench.Kind{kind}})
			r := checkResult(t, rep, kind)
			checkGone(t, cred, rep)
			t.Logf("%s (%s): %d tokens, %.1f/s, p50 %s p99 %s", kind, r.Mode, r.Tokens, r.Rate, r.Latency.P50, r.Latency.P99)
		})
	}

	// Presigned assertions: made before the clock starts, each used once;
	// too few of them end the window early, with a note.
	t.Run("certificate-presigned", func(t *testing.T) {
		rep := run(t, cred, bench.TokenOptions{Kinds: []bench.Kind{bench.KindCertificate}, Presign: true, PresignRate: 400})
		checkGone(t, cred, rep)
		if len(rep.Results) != 1 {
			t.Fatalf("results = %+v", rep.Results)
		}
		r := rep.Results[0]
		if r.Mode != "presigned" || r.Presigned != 480 || r.Tokens == 0 || r.Tokens > r.Presigned || r.Failed != 0 {
			t.Errorf("mode %q, presigned %d, tokens %d, errors %v; want presigned, 480 (1.2s × 400/s), some tokens, none refused",
				r.Mode, r.Presigned, r.Tokens, r.Errors)
		}
		ranOut := false
		for _, n := range r.Notes {
			ranOut = ranOut || strings.Contains(n, "ran out")
		}
		if !ranOut && r.Window < 900*time.Millisecond {
			t.Errorf("window %s, notes %q: a window cut short must say the assertions ran out", r.Window, r.Notes)
		}
	})

	t.Run("http2", func(t *testing.T) {
		rep := run(t, cred, bench.TokenOptions{Kinds: []bench.Kind{bench.KindSecret}, HTTP2: true})
		if rep.Protocol != "HTTP/2.0" || len(rep.Results) != 1 || rep.Results[0].Tokens == 0 || rep.Results[0].Failed != 0 {
			t.Errorf("protocol %q, results %+v", rep.Protocol, rep.Results)
		}
		checkGone(t, cred, rep)
	})

	t.Run("keep", func(t *testing.T) {
		rep := run(t, cred, bench.TokenOptions{Kinds: []bench.Kind{bench.KindSecret}, Keep: true, Duration: 100 * time.Millisecond})
		op, err := azclient.NewOperatorFromCredential(cred)
		if err != nil {
			t.Fatal(err)
		}
		if rep.TenantDeleted {
			t.Error("the tenant was deleted despite Keep")
		}
		if _, err := op.GetTenant(context.Background(), rep.TenantID); err != nil {
			t.Fatalf("kept tenant: %v", err)
		}
		if err := op.DeleteTenant(context.Background(), rep.TenantID); err != nil {
			t.Fatal(err)
		}
	})

	// Ctrl-C: the load stops early, what was measured is reported and the
	// tenant is still deleted.
	t.Run("interrupted", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var log syncBuffer
		log.onLine = func(line string) {
			if strings.Contains(line, "measuring") {
				// Long enough that even a loaded CI machine issues some
				// tokens in the window, far shorter than the minute asked.
				time.AfterFunc(2*time.Second, cancel)
			}
		}
		start := time.Now()
		rep, err := bench.RunToken(ctx, bench.TokenOptions{Server: cred, Kinds: []bench.Kind{bench.KindSecret, bench.KindFederated}, Concurrency: 2,
			Duration: time.Minute, Log: &log})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 30*time.Second {
			t.Errorf("the run took %s after the interrupt", took)
		}
		if !rep.Interrupted || len(rep.Results) != 1 || rep.Results[0].Tokens == 0 || rep.Results[0].Failed != 0 {
			t.Errorf("interrupted %v, results %+v", rep.Interrupted, rep.Results)
		}
		checkGone(t, cred, rep)
	})
}

// TestWrongOperatorKey: a setup failure is one clear line.
func TestWrongOperatorKey(t *testing.T) {
	cred := startServer(t)
	bad := cred
	bad.Key = "tbop_not-the-key-not-the-key-not-the-key"
	rep, err := bench.RunToken(context.Background(), bench.TokenOptions{Server: bad, Kinds: []bench.Kind{bench.KindSecret}, Duration: time.Second})
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "bench tenant") || rep.Tenant != "" {
		t.Errorf("with a wrong operator key: %v, %+v", err, rep)
	}
}

func TestPrint(t *testing.T) {
	rep := bench.TokenReport{Server: "https://127.0.0.1:8443", Tenant: "bench1", TenantID: "t", Concurrency: 4, Duration: time.Second,
		Protocol: "HTTP/1.1", ClientCPUs: 2, TenantDeleted: true, MemoryNote: "the server does not report its memory",
		Results: []bench.KindResult{
			{Kind: bench.KindSecret, Mode: "client_secret", Window: time.Second, Tokens: 100, Rate: 100, Failed: 2,
				Errors:  map[string]int{"AADSTS7000215 (HTTP 401)": 2},
				Latency: bench.Latency{P50: 1500 * time.Microsecond, P90: 3 * time.Millisecond, P99: 12 * time.Millisecond, Max: 250 * time.Millisecond, Mean: 2 * time.Millisecond}},
			{Kind: bench.KindCertificate, Mode: "signed per request", SetupError: "the server does not support certificate credentials yet: AADSTS700027: x (HTTP 401)"},
		}}
	var table bytes.Buffer
	if err := bench.Print(&table, rep, "table"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bench1 (deleted)", "HTTP/1.1", "TOKENS/S", "100.0", "1.50ms", "12.0ms", "250ms",
		"secret: 2 × AADSTS7000215 (HTTP 401)", "certificate: not measured: the server does not support certificate credentials yet"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var js bytes.Buffer
	if err := bench.Print(&js, rep, "json"); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Results []struct {
			Kind       string
			Tokens     int
			Latency    struct{ P50Ms, P99Ms float64 }
			ErrorsBy   map[string]int
			SetupError string
		}
		TenantDeleted bool
	}
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, js.String())
	}
	if len(got.Results) != 2 || got.Results[0].Latency.P50Ms != 1.5 || got.Results[0].Latency.P99Ms != 12 || got.Results[0].ErrorsBy["AADSTS7000215 (HTTP 401)"] != 2 ||
		got.Results[1].SetupError == "" || !got.TenantDeleted {
		t.Errorf("json = %s", js.String())
	}
	if err := bench.Print(&js, rep, "yaml"); err == nil {
		t.Error("Print accepted yaml")
	}
}

func TestParseKinds(t *testing.T) {
	for in, want := range map[string]string{"all": "secret,certificate,federated", "secret": "secret", "Certificate, secret,secret": "certificate,secret"} {
		ks, err := bench.ParseKinds(in)
		var names []string
		for _, k := range ks {
			names = append(names, string(k))
		}
		if err != nil || strings.Join(names, ",") != want {
			t.Errorf("ParseKinds(%q) = %v, %v; want %s", in, names, err, want)
		}
	}
	for _, bad := range []string{"", "password", "secret,"} {
		if _, err := bench.ParseKinds(bad); err == nil {
			t.Errorf("ParseKinds(%q) succeeded", bad)
		}
	}
}

// syncBuffer is a log writer for a concurrent run that calls onLine with
// each write.
type syncBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	onLine func(string)
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.onLine != nil {
		b.onLine(string(p))
	}
	return b.buf.Write(p)
}
