package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDemo runs `tenantbridge demo --exit` end to end: the five seed
// scenarios on a fresh world. It must exit 0 with every scenario passed in
// the summary, narrate the boundaries, and print no secret.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	r := tb(t, dir, "demo", "--exit", "--listen", "127.0.0.1:0")
	t.Logf("demo took %v", time.Since(start).Round(time.Millisecond))
	if r.code != 0 {
		t.Fatalf("demo --exit: exit %d\nstderr: %s\nstdout: %s", r.code, r.stderr, r.stdout)
	}
	defer func() {
		if t.Failed() {
			t.Logf("demo output:\n%s", r.stdout)
		}
	}()

	// The summary: each scenario, passed.
	i := strings.LastIndex(r.stdout, "\nSummary\n")
	if i < 0 {
		t.Fatal("the demo printed no summary")
	}
	summary := r.stdout[i:]
	for _, s := range []string{"S1", "S2", "S3", "S4", "S5"} {
		if !regexp.MustCompile(`(?m)^\s+` + s + ` .*\s\d+\s+passed\s`).MatchString(summary) {
			t.Errorf("the summary does not show %s as passed:\n%s", s, summary)
		}
	}
	if strings.Contains(summary, "FAILED") || strings.Contains(summary, "not run") {
		t.Errorf("the summary shows a failure:\n%s", summary)
	}

	// The narration says what crossed, with what, and what was allowed,
	// and shows the refusals.
	for _, want := range []string{
		"fabrikam", "contoso", "northwind", "adatum",
		"crossed", "with", "allowed",
		"PUT/Succeeded delivered", "0 client secrets", "1 federated credential",
		"listTokens", "HTTP 403 AuthorizationFailed",
		"admin_consent=True", `page "Enter code"`, "AADSTS700016", "insufficient_claims",
		"code_challenge_method=S256", "amr pwd,mfa", "the cloud rotated the refresh token",
		`replied "ok"`, "--by-tenant",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	for _, c := range []string{"contoso", "northwind", "adatum"} {
		if !regexp.MustCompile(`(?m)^\s+` + c + `\s+replied "ok"`).MatchString(r.stdout) {
			t.Errorf("no reply from %s", c)
		}
	}

	// No secret: no token, no secret text, none of the tenants' admin secrets.
	if m := regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.`).FindString(r.stdout + r.stderr); m != "" {
		t.Errorf("a token appears in the output: %s…", m[:12])
	}
	if strings.Contains(r.stdout, "secretText") || strings.Contains(r.stdout, "sig=sig-") {
		t.Error("a secret appears in the output")
	}
	raw, err := os.ReadFile(filepath.Join(dir, "profiles.json"))
	if err != nil {
		t.Fatalf("the demo saved no profiles: %v", err)
	}
	var ps profileStore
	if err := json.Unmarshal(raw, &ps); err != nil {
		t.Fatal(err)
	}
	if len(ps.Profiles) < 4 {
		t.Errorf("%d profiles saved, want the four tenants", len(ps.Profiles))
	}
	for _, p := range ps.Profiles {
		if p.ClientSecret == "" || strings.Contains(r.stdout+r.stderr, p.ClientSecret) {
			t.Errorf("tenant %s's admin secret is missing or appears in the output", p.TenantName)
		}
	}
	if !strings.Contains(r.stdout, "no secret value appeared in this output") {
		t.Error("the demo did not check its own output for secrets")
	}
}

func TestDemoFlags(t *testing.T) {
	r := tb(t, t.TempDir(), "demo", "--exit", "--keep")
	if r.code == 0 || !strings.Contains(r.stderr, "--exit and --keep") {
		t.Errorf("demo --exit --keep: exit %d, %q", r.code, r.stderr)
	}
}

// cancelOn is a writer that keeps what is written and cancels once it
// has seen marker.
type cancelOn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	cancel context.CancelFunc
}

func (w *cancelOn) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.marker) {
		w.cancel()
	}
	return n, err
}

// TestDemoKeepPrintsSignIns: with --keep, once the scenarios are over,
// the demo prints each tenant's Global Administrator (sign-in name,
// password, TOTP as an otpauth:// URL) so a person can try the browser
// flows on the kept server (the demo's own S3 and S4 sign in with them).
func TestDemoKeepPrintsSignIns(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := &cancelOn{marker: "Press Ctrl-C to stop.", cancel: cancel}
	var errOut bytes.Buffer
	code := run(ctx, []string{"--data", dir, "demo", "--keep", "--listen", "127.0.0.1:0"}, out, &errOut, func(string) string { return "" })
	text := out.buf.String()
	if !strings.Contains(text, "Press Ctrl-C to stop.") {
		t.Fatalf("demo --keep: exit %d, stderr %s\n%s", code, errOut.String(), text)
	}
	i := strings.Index(text, "To sign in as a person")
	if i < 0 {
		t.Fatalf("no sign-in names printed:\n%s", text[max(0, len(text)-2000):])
	}
	signIns := text[i:]
	for _, tenant := range []string{"fabrikam", "contoso", "northwind", "adatum"} {
		if !strings.Contains(signIns, tenant) {
			t.Errorf("no Global Administrator of %s in:\n%s", tenant, signIns)
		}
	}
	if strings.Count(signIns, "otpauth://totp/") != 4 || strings.Count(signIns, "password ") != 4 {
		t.Errorf("want 4 passwords and 4 otpauth URLs:\n%s", signIns)
	}
	if !regexp.MustCompile(`The console \(trust graph and cross-tenant audit\): https://127\.0\.0\.1:[0-9]+/console/\n`).MatchString(signIns) {
		t.Errorf("no console address printed:\n%s", signIns)
	}
}
