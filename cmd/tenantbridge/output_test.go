package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
	"golang.org/x/sys/unix"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/server"
)

// The output formats, --query, --debug, completion and version, through the
// CLI against a real server.

func TestOutputFormats(t *testing.T) {
	dir := startServer(t)
	var acme, globex tenantJSON
	okJSON(t, dir, &acme, "tenant", "create", "acme")
	okJSON(t, dir, &globex, "tenant", "create", "globex")

	// Piped (not a terminal), a list prints as JSON, as az does.
	var list []tenantJSON
	if out := ok(t, dir, "tenant", "list"); json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 {
		t.Fatalf("tenant list without -o, piped: want JSON of two tenants, got\n%s", out)
	}
	// jsonc is plain JSON when stdout is not a terminal (knack's _should_enable_color).
	if out := ok(t, dir, "tenant", "list", "-o", "jsonc"); strings.Contains(out, "\x1b[") || json.Unmarshal([]byte(out), &list) != nil {
		t.Errorf("tenant list -o jsonc, piped: %q", out)
	}

	// tsv: no header, a line per item, the values in sorted key order
	// (created, domain, name, subscriptionId, tenantId).
	lines := strings.Split(strings.TrimSuffix(ok(t, dir, "tenant", "list", "-o", "tsv"), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("tenant list -o tsv: %q", lines)
	}
	for _, line := range lines {
		f := strings.Split(line, "\t")
		if len(f) != 5 || (f[2] != "acme" || f[4] != acme.TenantID) && (f[2] != "globex" || f[4] != globex.TenantID) {
			t.Errorf("tenant list -o tsv line %q", line)
		}
	}
	// A multi-select hash keeps the query's order, not the sorted one.
	if out := ok(t, dir, "tenant", "list", "--query", "[?name=='acme'].{n: name, d: domain}", "-o", "tsv"); out != "acme\tacme.onmicrosoft.com\n" {
		t.Errorf("--query multi-select -o tsv = %q", out)
	}
	// A single value, as scripts take it (az … --query id -o tsv).
	if out := ok(t, dir, "tenant", "show", "globex", "--query", "tenantId", "-o", "tsv"); out != globex.TenantID+"\n" {
		t.Errorf("tenant show --query tenantId -o tsv = %q", out)
	}
	// Nested booleans and nulls as az writes them (Python's True, None), a
	// bare boolean as true.
	if out := ok(t, dir, "account", "list", "--query", "[?profile=='acme'].{p: profile, b: bootstrap, x: nosuch}", "-o", "tsv"); out != "acme\tTrue\tNone\n" {
		t.Errorf("account list tsv of a boolean and a null = %q", out)
	}
	if out := ok(t, dir, "account", "show", "--tenant", "acme", "--query", "bootstrap", "-o", "tsv"); out != "true\n" {
		t.Errorf("a bare boolean -o tsv = %q", out)
	}
	// --query applies to the JSON the command prints; a null result prints nothing.
	var ids []string
	okJSON(t, dir, &ids, "tenant", "list", "--query", "sort([].tenantId)")
	if len(ids) != 2 || !(ids[0] == min(acme.TenantID, globex.TenantID)) {
		t.Errorf("--query sort([].tenantId) = %v", ids)
	}
	if out := ok(t, dir, "tenant", "list", "--query", "[0].nosuch"); out != "" {
		t.Errorf("a query whose result is null printed %q", out)
	}
	// get-access-token with the az idiom.
	tok := strings.TrimSpace(ok(t, dir, "account", "get-access-token", "--tenant", "acme", "--query", "accessToken", "-o", "tsv"))
	if claimsOf(t, tok)["tid"] != acme.TenantID {
		t.Errorf("get-access-token --query accessToken -o tsv: a token of %v", claimsOf(t, tok)["tid"])
	}

	// yaml: the same data.
	var fromYAML []map[string]any
	if err := yaml.Unmarshal([]byte(ok(t, dir, "tenant", "list", "-o", "yaml")), &fromYAML); err != nil || len(fromYAML) != 2 {
		t.Fatalf("tenant list -o yaml: %v %v", fromYAML, err)
	}
	for _, m := range fromYAML {
		if m["tenantId"] != acme.TenantID && m["tenantId"] != globex.TenantID {
			t.Errorf("tenant list -o yaml item %v", m)
		}
	}

	// none prints nothing, and the command still runs.
	r := tb(t, dir, "tenant", "create", "initech", "-o", "none")
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("tenant create -o none: exit %d, stdout %q", r.code, r.stdout)
	}
	ok(t, dir, "tenant", "show", "initech")

	// table of a query's result, as az makes it: capitalised keys, a rule.
	out := ok(t, dir, "tenant", "list", "--query", "[?name=='acme'].{name: name, sub: subscriptionId}", "-o", "table")
	want := regexp.MustCompile(`^Name +Sub\n-{4} +-{36}\nacme +` + acme.SubscriptionID + `\n$`)
	if !want.MatchString(out) {
		t.Errorf("--query -o table:\n%s", out)
	}
	fails(t, dir, "table output unavailable", "tenant", "list", "--query", "[].{names: [name]}", "-o", "table")

	// Bad flags fail before anything runs.
	fails(t, dir, "invalid choice", "tenant", "create", "hooli", "-o", "xml")
	fails(t, dir, "--query", "tenant", "create", "hooli", "--query", "[?name==")
	fails(t, dir, "not found", "tenant", "show", "hooli")
}

func TestTablesFitOneHundredTwentyColumns(t *testing.T) {
	dir := startServer(t)
	var tenant tenantJSON
	okJSON(t, dir, &tenant, "tenant", "create", "contoso")
	long := strings.TrimSpace(strings.Repeat("A rather long display name ", 4))
	var app azclient.Application
	okJSON(t, dir, &app, "ad", "app", "create", "--display-name", long)
	ok(t, dir, "ad", "sp", "create", "--id", app.AppID)
	ok(t, dir, "ad", "group", "create", "--display-name", long, "--mail-nickname", "long")
	ok(t, dir, "ad", "user", "create", "--display-name", long, "--user-principal-name", "a.very.long.user.principal.name.indeed@contoso.onmicrosoft.com",
		"--password", "Correct-Horse-Battery-9")
	ok(t, dir, "identity", "create", "a-user-assigned-identity-with-a-long-name", "--resource-group", "a-resource-group-with-a-long-name")
	ok(t, dir, "workload", "create", "a-workload-with-a-long-name", "--identity", "a-user-assigned-identity-with-a-long-name", "--system-assigned")
	ok(t, dir, "role", "assignment", "create", "--assignee", app.AppID, "--role", "Reader",
		"--scope", "/subscriptions/"+tenant.SubscriptionID+"/resourceGroups/a-resource-group-with-a-long-name")
	ok(t, dir, "keyvault", "create", "--name", "kv-with-a-long-name-01", "--resource-group", "a-resource-group-with-a-long-name")
	ok(t, dir, "servicebus", "namespace", "create", "--name", "sb-with-a-long-name-0001", "--resource-group", "a-resource-group-with-a-long-name")
	ok(t, dir, "servicebus", "queue", "create", "--namespace-name", "sb-with-a-long-name-0001", "--name", "a-queue-with-a-rather-long-name")

	for _, args := range [][]string{
		{"tenant", "list"}, {"account", "list"}, {"keys", "list"},
		{"ad", "app", "list"}, {"ad", "sp", "list"}, {"ad", "group", "list"}, {"ad", "user", "list"},
		{"identity", "list"}, {"workload", "list"},
		{"role", "assignment", "list", "--scope", "/subscriptions/" + tenant.SubscriptionID + "/resourceGroups/a-resource-group-with-a-long-name"}, {"role", "definition", "list"},
		{"keyvault", "list"}, {"servicebus", "namespace", "list"},
		{"servicebus", "queue", "list", "--namespace-name", "sb-with-a-long-name-0001"},
		{"audit", "--tenant", "contoso"},
	} {
		out := ok(t, dir, append(args, "-o", "table")...)
		if strings.Count(out, "\n") < 2 {
			t.Errorf("%s -o table shows no rows:\n%s", strings.Join(args, " "), out)
		}
		for line := range strings.Lines(out) {
			if n := utf8.RuneCountInString(strings.TrimSuffix(line, "\n")); n > maxTableWidth {
				t.Errorf("%s -o table: a line of %d columns:\n%s", strings.Join(args, " "), n, line)
			}
		}
	}
	// What a cut hides, JSON shows whole.
	var apps []azclient.Application
	okJSON(t, dir, &apps, "ad", "app", "list")
	found := false
	for _, a := range apps {
		found = found || a.DisplayName == long
	}
	if !found {
		t.Errorf("ad app list -o json lacks the long display name")
	}
}

func TestCutCell(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"short", "short"},
		{"A rather long display name", "A rather l…"},
		{"/subscriptions/s/resourceGroups/rg/providers/X/vaults/kv", "/subs…ts/kv"},
	} {
		width := min(len(c.in), 11)
		if got := cutCell(c.in, width); got != c.want || utf8.RuneCountInString(got) != width {
			t.Errorf("cutCell(%q, %d) = %q; want %q", c.in, width, got, c.want)
		}
	}
}

// openPTY opens a pseudo-terminal pair: what a person's terminal is to a
// program.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// onTerminal runs the CLI with stdout and stderr on a terminal and returns
// what the terminal showed.
func onTerminal(t *testing.T, dir string, args ...string) string {
	t.Helper()
	master, slave := openPTY(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if code := run(ctx, append([]string{"--data", dir}, args...), slave, slave, func(string) string { return "" }); code != 0 {
		t.Fatalf("tenantbridge %s on a terminal: exit %d", strings.Join(args, " "), code)
	}
	slave.Close()
	// Once the other end is closed, reading drains what was written, then fails (EIO).
	out, _ := io.ReadAll(master)
	return strings.ReplaceAll(string(out), "\r\n", "\n")
}

func TestTerminalDefaultsToTable(t *testing.T) {
	dir := startServer(t)
	ok(t, dir, "tenant", "create", "acme")
	if out := onTerminal(t, dir, "tenant", "list"); !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "acme.onmicrosoft.com") {
		t.Errorf("tenant list on a terminal:\n%s", out)
	}
	// get-access-token is JSON wherever it prints, as az's is.
	if out := onTerminal(t, dir, "account", "get-access-token"); !strings.Contains(out, `"accessToken"`) {
		t.Errorf("get-access-token on a terminal:\n%s", out)
	}
	// jsonc colours a terminal, and is the same JSON under the colours.
	out := onTerminal(t, dir, "tenant", "show", "acme", "-o", "jsonc")
	if !strings.Contains(out, colourKey+`"tenantId"`+colourReset) {
		t.Errorf("-o jsonc on a terminal shows no coloured key:\n%q", out)
	}
	var shown tenantJSON
	plain := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(out, "")
	if err := json.Unmarshal([]byte(plain), &shown); err != nil || shown.Name != "acme" {
		t.Errorf("-o jsonc without its colours is not the JSON: %v\n%s", err, plain)
	}
}

func TestColourJSONKeepsTheText(t *testing.T) {
	src := `{"a": "x \" y", "b": [1, -2.5e3, true, false, null], "c": {"d": ""}}`
	var buf bytes.Buffer
	var v any
	if err := json.Unmarshal([]byte(src), &v); err != nil {
		t.Fatal(err)
	}
	if err := writeJSON(&buf, v); err != nil {
		t.Fatal(err)
	}
	painted := string(colourJSON(buf.Bytes()))
	if plain := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(painted, ""); plain != buf.String() {
		t.Errorf("colourJSON changed the text:\n%s\nwant\n%s", plain, buf.String())
	}
	for _, want := range []string{colourKey + `"a"`, colourString + `"x \" y"`, colourLiteral + "-2500", colourLiteral + "null"} {
		if !strings.Contains(painted, want) {
			t.Errorf("colourJSON lacks %q:\n%q", want, painted)
		}
	}
}

func TestDebugShowsRequestsWithoutSecrets(t *testing.T) {
	dir := startServerWith(t, server.Config{})
	r := tb(t, dir, "--debug", "tenant", "create", "acme", "-o", "json")
	if r.code != 0 {
		t.Fatalf("--debug tenant create: exit %d %s", r.code, r.stderr)
	}
	var created tenantJSON
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil || created.Admin == nil {
		t.Fatalf("--debug kept stdout for data: %v %q", err, r.stdout)
	}
	cred, err := azclient.ReadOperatorCredential(dir + "/operator.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DEBUG: request: POST https://", "/_operator/v1/tenants", "DEBUG:   Authorization: REDACTED",
		"DEBUG: response: 201 Created", `"clientSecret":"REDACTED"`} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("--debug tenant create: stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	for _, secret := range []string{cred.Key, created.Admin.ClientSecret} {
		if strings.Contains(r.stderr, secret) {
			t.Errorf("--debug printed a secret:\n%s", r.stderr)
		}
	}

	// A token request (a form with the client secret) and a Graph call.
	r = tb(t, dir, "--debug", "ad", "app", "list", "--filter", "displayName eq 'nosuch'", "-o", "json")
	if r.code != 0 {
		t.Fatalf("--debug ad app list: exit %d %s", r.code, r.stderr)
	}
	for _, want := range []string{"DEBUG: request: POST https://", "/oauth2/v2.0/token", "client_secret=REDACTED",
		`"access_token":"REDACTED"`, "DEBUG: request: GET https://graph.microsoft.com/v1.0/applications?%24filter=displayName+eq+%27nosuch%27",
		"DEBUG: response: 200 OK"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("--debug ad app list: stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, created.Admin.ClientSecret) || regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.`).MatchString(r.stderr) {
		t.Errorf("--debug printed a secret or a token:\n%s", r.stderr)
	}
	// An error's body is shown, with its code.
	r = tb(t, dir, "--debug", "ad", "app", "show", "--id", "00000000-0000-0000-0000-000000000001")
	if r.code == 0 || !strings.Contains(r.stderr, "DEBUG: response: 404 Not Found") || !strings.Contains(r.stderr, `"code":"Request_ResourceNotFound"`) {
		t.Errorf("--debug of a 404: exit %d\n%s", r.code, r.stderr)
	}
}

// TestRedactJSONTOTPSeed: an authenticator's enrolment (the operator
// API's answer) carries the TOTP seed twice, as secret and inside
// otpauthUri; Graph's software OATH method as secretKey. --debug shows
// none of them.
func TestRedactJSONTOTPSeed(t *testing.T) {
	const seed = "JBSWY3DPEHPK3PXP"
	body := []byte(`{"userId":"u1","otpauthUri":"otpauth://totp/tenantbridge:a@b?secret=` + seed + `&issuer=tenantbridge","secret":"` + seed +
		`","methods":[{"@odata.type":"#microsoft.graph.softwareOathAuthenticationMethod","secretKey":"` + seed + `"}]}`)
	var b strings.Builder
	writeBody(&b, "application/json", body, len(body))
	if got := b.String(); strings.Contains(got, seed) || !strings.Contains(got, `"userId":"u1"`) {
		t.Errorf("writeBody printed the TOTP seed or lost the rest:\n%s", got)
	}
}

func TestRedactURL(t *testing.T) {
	u, err := url.Parse("https://ns.servicebus.windows.net/q?api-version=2017-04&sig=c2VjcmV0&se=1&code=abc")
	if err != nil {
		t.Fatal(err)
	}
	got := redactURL(u)
	if strings.Contains(got, "c2VjcmV0") || strings.Contains(got, "abc") || !strings.Contains(got, "api-version=2017-04") || !strings.Contains(got, "se=1") {
		t.Errorf("redactURL = %s", got)
	}
}

func TestCompletion(t *testing.T) {
	dir := startServer(t)
	ok(t, dir, "tenant", "create", "acme")
	for shell, want := range map[string]string{"bash": "__start_tenantbridge", "zsh": "#compdef tenantbridge", "fish": "complete -c tenantbridge",
		"powershell": "Register-ArgumentCompleter"} {
		if out := ok(t, dir, "completion", shell); !strings.Contains(out, want) {
			t.Errorf("completion %s lacks %q", shell, want)
		}
	}
	fails(t, dir, "unknown command", "completion", "tcsh")
	// What the scripts ask the binary: tenants for --tenant, formats for -o.
	if out := ok(t, dir, "__complete", "ad", "app", "list", "--tenant", ""); !strings.Contains(out, "acme\n") {
		t.Errorf("completing --tenant:\n%s", out)
	}
	if out := ok(t, dir, "__complete", "tenant", "list", "-o", "ts"); !strings.Contains(out, "tsv") {
		t.Errorf("completing -o:\n%s", out)
	}
	if out := ok(t, dir, "__complete", "account", "show", "--profile", "a"); !strings.Contains(out, "acme\n") {
		t.Errorf("completing --profile:\n%s", out)
	}
}

func TestVersion(t *testing.T) {
	out := ok(t, t.TempDir(), "version", "-o", "table")
	if !strings.HasPrefix(out, "tenantbridge ") || strings.Count(out, "\n") != 1 {
		t.Errorf("version: %q", out)
	}
	var v versionView
	okJSON(t, t.TempDir(), &v, "version")
	want := buildVersion()
	if v.Version == "" || v.Go == "" || v != want {
		t.Errorf("version -o json = %+v; want %+v", v, want)
	}
	// A test binary is built from the source tree: "(devel)".
	if v.Version != develVersion {
		t.Errorf("version of a source build = %q; want %q", v.Version, develVersion)
	}
	// What go install …@v1.2.3 in a checkout stamps.
	bi, err := debug.ParseBuildInfo("go\tgo1.26.8\npath\tgithub.com/tenantbridge/tenantbridge/cmd/tenantbridge\n" +
		"mod\tgithub.com/tenantbridge/tenantbridge\tv1.2.3\t\n" +
		"build\tvcs=git\nbuild\tvcs.revision=0123456789abcdef0123456789abcdef01234567\nbuild\tvcs.time=2026-12-01T10:00:00Z\nbuild\tvcs.modified=true\n")
	if err != nil {
		t.Fatal(err)
	}
	got := versionOf(bi)
	if got.Version != "v1.2.3" || got.Commit != "0123456789abcdef0123456789abcdef01234567" || got.Time != "2026-12-01T10:00:00Z" || !got.Modified {
		t.Errorf("versionOf(stamped) = %+v", got)
	}
	if s := got.String(); !strings.Contains(s, "v1.2.3 (commit 0123456789abcdef0123456789abcdef01234567, 2026-12-01T10:00:00Z, modified, go") {
		t.Errorf("stamped version line %q", s)
	}
	if got := versionOf(nil); got.Version != develVersion {
		t.Errorf("versionOf(no build info) = %+v", got)
	}
}
