package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/server"
)

func TestKeysCommands(t *testing.T) {
	dir := startServer(t)
	var keys []azclient.SigningKey
	okJSON(t, dir, &keys, "keys", "list")
	if len(keys) != 1 || keys[0].State != "active" || keys[0].KeyID == "" {
		t.Fatalf("keys list on a new server = %+v", keys)
	}
	old := keys[0].KeyID

	var k azclient.SigningKey
	okJSON(t, dir, &k, "keys", "rotate", "--publish-ahead", "0s")
	if k.KeyID == "" || k.KeyID == old || k.State != "active" && k.State != "pending" || time.Until(k.Activates) > 2*time.Second {
		t.Fatalf("keys rotate --publish-ahead 0s = %+v", k)
	}
	time.Sleep(time.Until(k.Activates))
	okJSON(t, dir, &keys, "keys", "list")
	if len(keys) != 2 || keys[0].KeyID != k.KeyID || keys[0].State != "active" || keys[1].KeyID != old || keys[1].State != "retired" ||
		keys[1].RemovableAfter.IsZero() {
		t.Fatalf("keys list after rotation = %+v", keys)
	}
	if out := ok(t, dir, "keys", "list", "-o", "table"); !strings.Contains(out, "KID") || !strings.Contains(out, "retired") || !strings.Contains(out, k.KeyID) {
		t.Errorf("keys list table:\n%s", out)
	}

	// New tokens carry the new key.
	ok(t, dir, "tenant", "create", "acme")
	var tok tokenJSON
	okJSON(t, dir, &tok, "account", "get-access-token", "--resource", "https://graph.microsoft.com")
	h, _, _ := strings.Cut(tok.AccessToken, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(h)
	var header map[string]any
	if err := json.Unmarshal(raw, &header); err != nil || header["kid"] != k.KeyID {
		t.Errorf("token header after rotation = %s; want kid %s", raw, k.KeyID)
	}

	// The default publishes a day ahead.
	var pending azclient.SigningKey
	okJSON(t, dir, &pending, "keys", "rotate")
	if pending.State != "pending" || time.Until(pending.Activates) < 23*time.Hour {
		t.Errorf("keys rotate = %+v; want pending for a day", pending)
	}
	fails(t, dir, "negative", "keys", "rotate", "--publish-ahead", "-1s")
	fails(t, dir, "publishAhead", "keys", "rotate", "--publish-ahead", "800h")
	fails(t, dir, "invalid argument", "keys", "rotate", "--publish-ahead", "soon")
}

func TestIdentityAndWorkloadCommands(t *testing.T) {
	dir := startServer(t)
	var tenant tenantJSON
	okJSON(t, dir, &tenant, "tenant", "create", "contoso")

	var id azclient.Identity
	okJSON(t, dir, &id, "identity", "create", "uploader", "--resource-group", "jobs", "--tenant", "contoso")
	if id.Name != "uploader" || id.ResourceGroup != "jobs" || id.ClientID == "" || id.PrincipalID == "" || id.TenantID != tenant.TenantID ||
		!strings.HasSuffix(id.ResourceID, "/resourceGroups/jobs/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uploader") {
		t.Fatalf("identity create = %+v", id)
	}
	var other azclient.Identity
	okJSON(t, dir, &other, "identity", "create", "reader") // the only profile's tenant
	if other.ResourceGroup == "" || other.TenantID != tenant.TenantID {
		t.Errorf("identity create without --tenant or --resource-group = %+v", other)
	}
	fails(t, dir, "already exists", "identity", "create", "uploader", "--resource-group", "jobs")
	fails(t, dir, "letters", "identity", "create", "bad/name")

	var ids []azclient.Identity
	okJSON(t, dir, &ids, "identity", "list", "--tenant", "contoso")
	if len(ids) != 2 {
		t.Errorf("identity list = %+v", ids)
	}
	for _, ref := range []string{"uploader", id.ClientID, id.PrincipalID, id.ResourceID} {
		var shown azclient.Identity
		okJSON(t, dir, &shown, "identity", "show", ref)
		if shown.PrincipalID != id.PrincipalID {
			t.Errorf("identity show %s = %+v", ref, shown)
		}
	}
	if out := ok(t, dir, "identity", "list", "-o", "table"); !strings.Contains(out, "CLIENT ID") || !strings.Contains(out, id.ClientID) {
		t.Errorf("identity list table:\n%s", out)
	}
	fails(t, dir, "not found", "identity", "show", "nosuch")
	fails(t, dir, "not found", "identity", "list", "--tenant", "nosuch")

	// A workload with its own identity and a user-assigned one; the header
	// is shown once.
	var w azclient.Workload
	okJSON(t, dir, &w, "workload", "create", "api", "--system-assigned", "--identity", "uploader", "--identity", other.ClientID)
	if w.ID == "" || w.IdentityHeader == "" || w.SystemAssignedIdentity == nil || w.SystemAssignedIdentity.PrincipalID == "" ||
		len(w.UserAssignedIdentities) != 2 || w.UserAssignedIdentities[0].ClientID != id.ClientID {
		t.Fatalf("workload create = %+v", w)
	}
	var shown azclient.Workload
	okJSON(t, dir, &shown, "workload", "show", "api")
	if shown.ID != w.ID || shown.IdentityHeader != "" || len(shown.UserAssignedIdentities) != 2 {
		t.Errorf("workload show = %+v (it must not show the header)", shown)
	}
	var ws []azclient.Workload
	okJSON(t, dir, &ws, "workload", "list")
	if len(ws) != 1 || ws[0].IdentityHeader != "" {
		t.Errorf("workload list = %+v", ws)
	}
	if out := ok(t, dir, "workload", "list", "-o", "table"); !strings.Contains(out, "uploader") {
		t.Errorf("workload list table:\n%s", out)
	}
	fails(t, dir, "--system-assigned", "workload", "create", "bare")
	fails(t, dir, "not found", "workload", "create", "ghost", "--identity", "nosuch")
	fails(t, dir, "not found", "workload", "show", "nosuch")

	// workload env rotates the header; AZURE_CLIENT_ID picks the identity.
	env := parseEnv(t, ok(t, dir, "workload", "env", "api"))
	if h := env.set["IDENTITY_HEADER"]; h == "" || h == w.IdentityHeader {
		t.Errorf("workload env did not print a new header: %q", h)
	}
	if _, set := env.set["AZURE_CLIENT_ID"]; set || !slices.Contains(env.unset, "AZURE_CLIENT_ID") {
		t.Errorf("workload env for the system-assigned identity must unset AZURE_CLIENT_ID: %+v", env)
	}
	if env.set["IDENTITY_ENDPOINT"] != "https://"+serverAddr(t, dir)+"/"+tenant.TenantID+"/msi/token" || env.set["AZURE_TENANT_ID"] != tenant.TenantID {
		t.Errorf("workload env = %+v", env.set)
	}
	if _, set := env.set["HTTPS_PROXY"]; set {
		t.Errorf("workload env set HTTPS_PROXY on a server without a proxy")
	}
	env = parseEnv(t, ok(t, dir, "workload", "env", "api", "--identity", "uploader"))
	if env.set["AZURE_CLIENT_ID"] != id.ClientID {
		t.Errorf("workload env --identity uploader: AZURE_CLIENT_ID = %q", env.set["AZURE_CLIENT_ID"])
	}
	fails(t, dir, "does not run as", "workload", "env", "api", "--identity", "nosuch")

	// identity env makes a workload of its own for the identity.
	env = parseEnv(t, ok(t, dir, "identity", "env", "reader"))
	if env.set["AZURE_CLIENT_ID"] != other.ClientID || env.set["IDENTITY_HEADER"] == "" || env.set["SSL_CERT_FILE"] == "" {
		t.Errorf("identity env = %+v", env.set)
	}
	okJSON(t, dir, &ws, "workload", "list")
	var envWorkload string
	for _, x := range ws {
		if strings.HasPrefix(x.Name, "reader-env-") && len(x.UserAssignedIdentities) == 1 && x.UserAssignedIdentities[0].ClientID == other.ClientID {
			envWorkload = x.Name
		}
	}
	if len(ws) != 2 || envWorkload == "" {
		t.Fatalf("after identity env, workload list = %+v", ws)
	}

	// Deleting.
	ok(t, dir, "workload", "delete", envWorkload)
	ok(t, dir, "workload", "delete", "api")
	fails(t, dir, "not found", "workload", "show", "api")
	ok(t, dir, "identity", "delete", "uploader")
	fails(t, dir, "not found", "identity", "show", "uploader")
	// A system-assigned identity is not the identity commands' to delete.
	fails(t, dir, "not found", "identity", "delete", w.SystemAssignedIdentity.PrincipalID)

	// Every change is audited.
	var recs []azclient.AuditRecord
	okJSON(t, dir, &recs, "audit", "--tenant", "contoso")
	seen := map[string]int{}
	for _, r := range recs {
		if r.Result == "success" {
			seen[r.Action]++
		}
	}
	for action, n := range map[string]int{"managedIdentity.create": 2, "managedIdentity.delete": 1, "workload.create": 2,
		"workload.rotateHeader": 2, "workload.delete": 2} {
		if seen[action] != n {
			t.Errorf("audit has %d successful %s records; want %d", seen[action], action, n)
		}
	}
}

// serverAddr is the listen address the data directory's operator.json names.
func serverAddr(t *testing.T, dir string) string {
	t.Helper()
	cred, err := azclient.ReadOperatorCredential(filepath.Join(dir, "operator.json"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(cred.URL, "https://")
}

// envOutput is what env commands print, parsed.
type envOutput struct {
	set   map[string]string
	unset []string
}

// parseEnv parses `export NAME='value'` and `unset A B` lines; the quoting
// itself is checked against a real shell in TestShellQuote.
func parseEnv(t *testing.T, out string) envOutput {
	t.Helper()
	e := envOutput{set: map[string]string{}}
	for line := range strings.Lines(out) {
		line = strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, "# "):
		case strings.HasPrefix(line, "export "):
			name, quoted, found := strings.Cut(strings.TrimPrefix(line, "export "), "=")
			if !found || len(quoted) < 2 || quoted[0] != '\'' || quoted[len(quoted)-1] != '\'' {
				t.Fatalf("env output line %q is not export NAME='value'", line)
			}
			e.set[name] = strings.ReplaceAll(quoted[1:len(quoted)-1], `'\''`, "'")
		case strings.HasPrefix(line, "unset "):
			e.unset = append(e.unset, strings.Fields(strings.TrimPrefix(line, "unset "))...)
		default:
			t.Fatalf("unexpected env output line %q", line)
		}
	}
	return e
}

func TestEnvCommand(t *testing.T) {
	dir := startServerWith(t, server.Config{ProxyListen: "127.0.0.1:0"})
	cred, err := azclient.ReadOperatorCredential(filepath.Join(dir, "operator.json"))
	if err != nil || cred.ProxyURL == "" {
		t.Fatalf("operator.json: %+v, %v", cred, err)
	}
	var tenant tenantJSON
	okJSON(t, dir, &tenant, "tenant", "create", "contoso")
	admin := tenant.Admin.ClientID

	// --app --secret: a new secret of the application.
	env := parseEnv(t, ok(t, dir, "env", "--tenant", "contoso", "--app", admin, "--secret"))
	bundle, _ := filepath.Abs(filepath.Join(dir, "ca-bundle.pem"))
	caAbs, _ := filepath.Abs(cred.CAFile)
	for k, v := range map[string]string{"HTTPS_PROXY": cred.ProxyURL, "https_proxy": cred.ProxyURL, "SSL_CERT_FILE": bundle,
		"REQUESTS_CA_BUNDLE": bundle, "NODE_EXTRA_CA_CERTS": caAbs, "AZURE_TOKEN_CREDENTIALS": "prod",
		"AZURE_TENANT_ID": tenant.TenantID, "AZURE_CLIENT_ID": admin, "NO_PROXY": "localhost,127.0.0.1,::1"} {
		if env.set[k] != v {
			t.Errorf("env --secret: %s = %q; want %q", k, env.set[k], v)
		}
	}
	if env.set["AZURE_CLIENT_SECRET"] == "" || env.set["AZURE_CLIENT_SECRET"] == tenant.Admin.ClientSecret {
		t.Errorf("env --secret: AZURE_CLIENT_SECRET = %q; want a new secret", env.set["AZURE_CLIENT_SECRET"])
	}
	for _, v := range []string{"AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT", "IMDS_ENDPOINT", "AZURE_AUTHORITY_HOST", "AZURE_USERNAME"} {
		if !slices.Contains(env.unset, v) {
			t.Errorf("env --secret does not unset %s: %v", v, env.unset)
		}
	}
	for _, v := range []string{"AZURE_CLIENT_SECRET", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"} {
		if slices.Contains(env.unset, v) {
			t.Errorf("env --secret unsets %s, which it sets", v)
		}
	}
	var app azclient.Application
	okJSON(t, dir, &app, "ad", "app", "show", "--id", admin)
	if len(app.PasswordCredentials) != 2 {
		t.Errorf("after env --secret the application has %d secrets; want 2", len(app.PasswordCredentials))
	}
	// The bundle: the system's roots, then tenantbridge's CA; 0644.
	fi, err := os.Stat(bundle)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("ca-bundle.pem mode %v; want 0644", fi.Mode().Perm())
	}
	bundlePEM, _ := os.ReadFile(bundle)
	caPEM, _ := os.ReadFile(cred.CAFile)
	if !bytes.HasSuffix(bundlePEM, caPEM) {
		t.Error("ca-bundle.pem does not end with tenantbridge's CA")
	}

	// --identity: a workload bound to the identity.
	var id azclient.Identity
	okJSON(t, dir, &id, "identity", "create", "worker")
	env = parseEnv(t, ok(t, dir, "env", "--identity", "worker"))
	if env.set["AZURE_CLIENT_ID"] != id.ClientID || env.set["IDENTITY_HEADER"] == "" || env.set["HTTPS_PROXY"] != cred.ProxyURL ||
		env.set["IDENTITY_ENDPOINT"] != "https://"+serverAddr(t, dir)+"/"+tenant.TenantID+"/msi/token" {
		t.Errorf("env --identity = %+v", env.set)
	}
	for _, v := range []string{"AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT", "MSI_ENDPOINT"} {
		if !slices.Contains(env.unset, v) {
			t.Errorf("env --identity does not unset %s", v)
		}
	}

	// --federated-token: with --app as given; without, the application
	// whose federated credential matches the token's issuer and subject.
	c := &cli{dataDir: dir, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(string) string { return "" }}
	s, err := c.session("contoso")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fed, err := s.graph.CreateApplication(ctx, azclient.Application{DisplayName: "Federated"})
	if err != nil {
		t.Fatal(err)
	}
	const issuer, subject = "https://token.actions.example.com", "repo:contoso/app:ref:refs/heads/main"
	if _, err := s.graph.AddFederatedCredential(ctx, fed.ID, azclient.FederatedCredential{Name: "ci-main", Issuer: issuer, Subject: subject,
		Audiences: []string{azclient.TokenExchangeAudience}}); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeToken := func(claims map[string]any) {
		b, _ := json.Marshal(claims)
		tok := "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(b) + ".c2ln\n"
		if err := os.WriteFile(tokenFile, []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeToken(map[string]any{"iss": issuer, "sub": subject, "aud": azclient.TokenExchangeAudience})
	rel, err := filepath.Rel(mustGetwd(t), tokenFile)
	if err != nil {
		rel = tokenFile
	}
	env = parseEnv(t, ok(t, dir, "env", "--tenant", "contoso", "--federated-token", rel))
	if env.set["AZURE_CLIENT_ID"] != fed.AppID || env.set["AZURE_FEDERATED_TOKEN_FILE"] != tokenFile || env.set["AZURE_TENANT_ID"] != tenant.TenantID {
		t.Errorf("env --federated-token = %+v", env.set)
	}
	if !slices.Contains(env.unset, "AZURE_CLIENT_SECRET") || !slices.Contains(env.unset, "IDENTITY_ENDPOINT") {
		t.Errorf("env --federated-token unsets %v", env.unset)
	}
	env = parseEnv(t, ok(t, dir, "env", "--federated-token", tokenFile, "--app", admin))
	if env.set["AZURE_CLIENT_ID"] != admin {
		t.Errorf("env --federated-token --app: AZURE_CLIENT_ID = %q", env.set["AZURE_CLIENT_ID"])
	}
	writeToken(map[string]any{"iss": issuer, "sub": "someone-else"})
	fails(t, dir, "no application", "env", "--federated-token", tokenFile)
	if err := os.WriteFile(tokenFile, []byte("not a jwt"), 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, dir, "--app", "env", "--federated-token", tokenFile)
	fails(t, dir, "federated token file", "env", "--federated-token", filepath.Join(t.TempDir(), "missing"), "--app", admin)

	// Mistakes.
	fails(t, dir, "choose the credential", "env")
	fails(t, dir, "--app", "env", "--secret")
	fails(t, dir, "choose one", "env", "--secret", "--app", admin, "--identity", "worker")
	fails(t, dir, "drop --app", "env", "--identity", "worker", "--app", admin)
	fails(t, dir, "not registered", "env", "--app", "00000000-0000-0000-0000-00000000beef", "--secret")
	fails(t, dir, "ad sp create", "env", "--app", fed.AppID, "--secret")
	fails(t, dir, "not found", "env", "--identity", "nosuch")

	// A server without a proxy cannot serve unmodified programs.
	plain := startServer(t)
	ok(t, plain, "tenant", "create", "fabrikam")
	ok(t, plain, "identity", "create", "worker")
	fails(t, plain, "--proxy-listen", "env", "--app", admin, "--secret")
	fails(t, plain, "--proxy-listen", "env", "--identity", "worker")
	// identity env needs no proxy.
	env = parseEnv(t, ok(t, plain, "identity", "env", "worker"))
	if env.set["IDENTITY_HEADER"] == "" {
		t.Errorf("identity env without a proxy = %+v", env.set)
	}
	if _, set := env.set["HTTPS_PROXY"]; set {
		t.Error("identity env set HTTPS_PROXY for a server without a proxy")
	}
}

func mustGetwd(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

// shellQuote's output, evaluated by a real shell, is the value again.
func TestShellQuote(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"", "plain", "it's", "''", `a'\''b`, "$(echo pwned)", "`echo pwned`", "$HOME", `back\slash`,
		"two\nlines", "tab\there", " spaces ", `"double"`, "semi;colon&amp|pipe", "*", "~"} {
		e := &shellEnv{}
		e.export("X", v)
		var script strings.Builder
		if err := e.write(&script); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(sh, "-c", `eval "$1" && printf %s "$X"`, "sh", script.String()).Output()
		if err != nil || string(out) != v {
			t.Errorf("eval of %q gives %q (%v); want %q", script.String(), out, err, v)
		}
	}
}

func TestCABundle(t *testing.T) {
	dir := t.TempDir()
	ca := writeCert(t, filepath.Join(dir, "ca.pem"), "tenantbridge test CA")
	system := writeCert(t, filepath.Join(dir, "system.pem"), "system root")
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}

	path, used, err := writeCABundle(dir, filepath.Join(dir, "ca.pem"), []string{filepath.Join(dir, "missing.pem"), junk, filepath.Join(dir, "system.pem")})
	if err != nil {
		t.Fatal(err)
	}
	if used != filepath.Join(dir, "system.pem") || path != filepath.Join(dir, caBundleFile) {
		t.Errorf("writeCABundle = %s, %s", path, used)
	}
	got, _ := os.ReadFile(path)
	if i, j := bytes.Index(got, system), bytes.Index(got, ca); i < 0 || j < 0 || i > j {
		t.Errorf("bundle does not hold the system roots then the CA:\n%s", got)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(got) {
		t.Error("the bundle does not parse")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("bundle mode: %v %v", fi, err)
	}

	// No system bundle: only the CA, and the caller is told.
	_, used, err = writeCABundle(dir, filepath.Join(dir, "ca.pem"), []string{junk})
	if err != nil || used != "" {
		t.Fatalf("without a system bundle: %q, %v", used, err)
	}
	got, _ = os.ReadFile(path)
	if bytes.Contains(got, system) || !bytes.Contains(got, ca) {
		t.Errorf("bundle without system roots:\n%s", got)
	}
	if _, _, err := writeCABundle(dir, junk, nil); err == nil {
		t.Error("a CA file without a certificate was accepted")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

// writeCert writes a self-signed certificate as PEM and returns the PEM.
func writeCert(t *testing.T, path, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(path, p, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The managed-identity endpoint at the listen address is never proxied.
func TestProxyEnv(t *testing.T) {
	for url, want := range map[string]string{
		"https://127.0.0.1:8443": "localhost,127.0.0.1,::1",
		"https://0.0.0.0:8443":   "localhost,127.0.0.1,::1",
		"https://10.1.2.3:8443":  "localhost,127.0.0.1,::1,10.1.2.3",
	} {
		e := &shellEnv{}
		proxyEnv(e, azclient.OperatorCredential{URL: url, CAFile: "ca.pem", ProxyURL: "http://127.0.0.1:8444"})
		var out strings.Builder
		_ = e.write(&out)
		env := parseEnv(t, out.String())
		if env.set["NO_PROXY"] != want || env.set["no_proxy"] != want || env.set["HTTPS_PROXY"] != "http://127.0.0.1:8444" {
			t.Errorf("server %s: %v", url, env.set)
		}
	}
}

// TestEnvCertificateRefusals: env --certificate says what is wrong before
// printing anything: no --app, a PEM file without its private key, a
// file that is not there.
func TestEnvCertificateRefusals(t *testing.T) {
	dir := startServerWith(t, server.Config{ProxyListen: "127.0.0.1:0"})
	var tenant tenantJSON
	okJSON(t, dir, &tenant, "tenant", "create", "contoso")
	certOnly := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(certOnly, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fails(t, dir, "--certificate needs the application", "env", "--tenant", "contoso", "--certificate", certOnly)
	fails(t, dir, "must hold the certificate and its private key", "env", "--tenant", "contoso", "--app", tenant.Admin.ClientID, "--certificate", certOnly)
	fails(t, dir, "certificate file", "env", "--tenant", "contoso", "--app", tenant.Admin.ClientID, "--certificate", filepath.Join(t.TempDir(), "missing.pem"))
}
