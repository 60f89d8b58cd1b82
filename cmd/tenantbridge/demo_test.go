package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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
