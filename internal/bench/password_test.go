package bench_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/bench"
)

// TestRunPasswordGuess: a tiny password-guess run against a real server:
// every guess is answered with a refusal (wrong password, locked out, or
// no hashing slot), none with a token; the client-credentials loop
// alongside gets tokens without errors; the server's memory is sampled;
// the tenant is deleted. No speed or memory figure is asserted.
func TestRunPasswordGuess(t *testing.T) {
	cred := startServer(t)
	var log bytes.Buffer
	rep, err := bench.RunPasswordGuess(context.Background(), bench.PasswordGuessOptions{Server: cred, Concurrency: 4, Users: 2,
		Duration: time.Second, Log: &log})
	if err != nil {
		t.Fatalf("RunPasswordGuess: %v\nlog:\n%s", err, log.String())
	}
	if rep.Guesses == 0 || rep.GuessRate <= 0 || len(rep.Notes) != 0 {
		t.Errorf("%d guesses at %.1f/s, notes %q; want some, none answered with a token", rep.Guesses, rep.GuessRate, rep.Notes)
	}
	answered := 0
	for k, n := range rep.GuessErrors {
		if !strings.HasPrefix(k, "AADSTS50126") && !strings.HasPrefix(k, "AADSTS50053") && !strings.HasPrefix(k, "AADSTS90033") {
			t.Errorf("%d guesses answered %q; want wrong password, locked out or no hashing slot", n, k)
		}
		answered += n
	}
	if answered != rep.Guesses {
		t.Errorf("guesses by answer %v add up to %d, not %d", rep.GuessErrors, answered, rep.Guesses)
	}
	if tok := rep.Token; tok.Tokens == 0 || tok.Failed != 0 || len(tok.Errors) != 0 || tok.Latency.P50 <= 0 {
		t.Errorf("client credentials alongside: %d tokens, %d errors %v, p50 %s", tok.Tokens, tok.Failed, tok.Errors, tok.Latency.P50)
	}
	if rep.MemoryAtRest != nil && (rep.RSSSamples == 0 || rep.PeakRSSBytes == 0) {
		t.Errorf("the server reports its memory, but %d samples, peak %d", rep.RSSSamples, rep.PeakRSSBytes)
	}
	if !rep.TenantDeleted || rep.CleanupError != "" {
		t.Errorf("tenant deleted = %v, cleanup error %q", rep.TenantDeleted, rep.CleanupError)
	}
	var table bytes.Buffer
	if err := bench.PrintPasswordGuess(&table, rep, "table"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"peak RSS", "guesses", "client_credentials"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	t.Logf("%d guesses %v; %d tokens, p99 %s; peak RSS %d over %d samples", rep.Guesses, rep.GuessErrors, rep.Token.Tokens,
		rep.Token.Latency.P99, rep.PeakRSSBytes, rep.RSSSamples)
}
