package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/tenantbridge/tenantbridge/internal/operator"
	"github.com/tenantbridge/tenantbridge/internal/server"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// running is a server started for one test.
type running struct {
	srv  *server.Server
	addr string // host:port of the listener
	dir  string
	stop func()
}

func start(t *testing.T, cfg server.Config) *running {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.Listen = "127.0.0.1:0"
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	r := &running{srv: srv, addr: ln.Addr().String(), dir: cfg.DataDir}
	r.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			r.stop()
		}
	})
	return r
}

// client returns an HTTP client that trusts only the server's CA and dials
// the server whatever host a URL names — the one change an unmodified
// program needs (DNS would do the same).
func (r *running) client() *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: r.srv.CA().Pool()},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, r.addr)
		},
	}, Timeout: 30 * time.Second}
}

type tenantCreated struct {
	TenantID, Domain, SubscriptionID string
	Admin                            struct{ ClientID, ClientSecret, ServicePrincipalID string }
}

func (r *running) createTenant(t *testing.T, name string) tenantCreated {
	t.Helper()
	req, _ := http.NewRequest("POST", "https://"+r.addr+"/_operator/v1/tenants", strings.NewReader(`{"name":"`+name+`"}`))
	req.Header.Set("Authorization", "Bearer "+r.srv.Operator().Key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create tenant: %d %s", resp.StatusCode, body)
	}
	var tc tenantCreated
	if err := json.Unmarshal(body, &tc); err != nil {
		t.Fatal(err)
	}
	if tc.TenantID == "" || tc.Admin.ClientSecret == "" || tc.SubscriptionID == "" || tc.Domain != name+".onmicrosoft.com" {
		t.Fatalf("tenant create response: %s", body)
	}
	return tc
}

func TestFirstStartCreatesAndLaterStartsReuse(t *testing.T) {
	dir := t.TempDir()
	r := start(t, server.Config{DataDir: dir})
	for file, mode := range map[string]os.FileMode{"ca-key.pem": 0o600, "server-key.pem": 0o600, operator.FileName: 0o600, "keys/kek.key": 0o600} {
		fi, err := os.Stat(filepath.Join(dir, file))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s mode = %v, want %v", file, fi.Mode().Perm(), mode)
		}
	}
	ca := r.srv.CA().Cert
	if len(ca.PermittedDNSDomains) == 0 || !ca.PermittedDNSDomainsCritical {
		t.Fatalf("CA is not name-constrained: %v", ca.PermittedDNSDomains)
	}
	var cred operator.Credential
	data, _ := os.ReadFile(filepath.Join(dir, operator.FileName))
	if err := json.Unmarshal(data, &cred); err != nil || cred.URL != "https://"+r.addr || cred.CAFile != r.srv.CA().CertFile() {
		t.Fatalf("operator.json = %s (%v)", data, err)
	}
	tc := r.createTenant(t, "persist")
	r.stop()

	again := start(t, server.Config{DataDir: dir})
	if !again.srv.CA().Cert.Equal(ca) {
		t.Fatal("second start made a new CA")
	}
	if again.srv.Operator().Key != cred.Key {
		t.Fatal("second start made a new operator key")
	}
	if _, err := again.srv.Directory().Tenant(context.Background(), tc.TenantID); err != nil {
		t.Fatalf("tenant lost across restart: %v", err)
	}
}

// An unmodified azidentity program reaches tenantbridge as
// login.microsoftonline.com — instance discovery included — and calls
// graph.microsoft.com with the token. Only the transport differs.
func TestReachedAsAzureHosts(t *testing.T) {
	r := start(t, server.Config{})
	tc := r.createTenant(t, "contoso")
	cred, err := azidentity.NewClientSecretCredential(tc.TenantID, tc.Admin.ClientID, tc.Admin.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: policy.ClientOptions{Transport: r.client()}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
	if err != nil {
		t.Fatalf("GetToken as login.microsoftonline.com: %v", err)
	}
	if time.Until(tok.ExpiresOn) < 55*time.Minute {
		t.Fatalf("token lifetime too short: expires %v", tok.ExpiresOn)
	}
	req, _ := http.NewRequest("GET", "https://graph.microsoft.com/v1.0/applications?$filter="+url.QueryEscape("displayName eq 'tenantbridge-admin'"), nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err := r.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(tc.Admin.ClientID)) {
		t.Fatalf("Graph as graph.microsoft.com: %d %s", resp.StatusCode, body)
	}
}

func TestFrontDoor(t *testing.T) {
	r := start(t, server.Config{CustomDomain: "tenantbridge.test"})
	c := r.client()
	get := func(url string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	resp, body := get("https://"+r.addr+"/healthz", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"ok"`) || resp.Header.Get("x-ms-request-id") == "" {
		t.Fatalf("health: %d %s", resp.StatusCode, body)
	}
	// The token service answers on the bare address, on Azure's login host and on the custom domain.
	for _, base := range []string{"https://" + r.addr, "https://login.microsoftonline.com", "https://login.tenantbridge.test"} {
		resp, body := get(base+"/common/discovery/instance?api-version=1.1&authorization_endpoint="+base+"/common/oauth2/v2.0/authorize", nil)
		if resp.StatusCode != 200 || !strings.Contains(body, "tenant_discovery_endpoint") {
			t.Errorf("%s instance discovery: %d %s", base, resp.StatusCode, body)
		}
	}
	resp, body = get("https://graph.tenantbridge.test/v1.0/applications", nil)
	if resp.StatusCode != 401 || !strings.Contains(body, "InvalidAuthenticationToken") {
		t.Errorf("graph on custom domain without token: %d %s", resp.StatusCode, body)
	}
	// A host we do not serve is refused, not guessed at.
	req, _ := http.NewRequest("GET", "https://"+r.addr+"/healthz", nil)
	req.Host = "evil.example.com"
	resp2, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("unknown host: %d", resp2.StatusCode)
	}
	// The TLS certificate does not vouch for other names.
	_, err = tls.Dial("tcp", r.addr, &tls.Config{RootCAs: r.srv.CA().Pool(), ServerName: "example.com"})
	var hostErr x509.HostnameError
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("TLS for example.com: %v (%T)", err, hostErr)
	}
	// The operator API refuses a wrong key.
	resp, _ = get("https://"+r.addr+"/_operator/v1/tenants", map[string]string{"Authorization": "Bearer nope"})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("operator API with a wrong key: %d", resp.StatusCode)
	}
	// Oversized headers are refused before any handler runs.
	resp, _ = get("https://"+r.addr+"/healthz", map[string]string{"X-Big": strings.Repeat("a", 200<<10)})
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("huge header: %d", resp.StatusCode)
	}
}

func TestPostgresBackend(t *testing.T) {
	dsn := storetest.PostgresSchemaDSN(t)
	r := start(t, server.Config{StoreURL: dsn})
	tc := r.createTenant(t, "pgtenant")
	if _, err := r.srv.Directory().Tenant(context.Background(), tc.TenantID); err != nil {
		t.Fatal(err)
	}
}

// Shutdown lets a request in flight finish before Serve returns.
func TestGracefulShutdown(t *testing.T) {
	r := start(t, server.Config{})
	c := r.client()
	resp, err := c.Get("https://" + r.addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r.stop()
	if _, err := c.Get("https://" + r.addr + "/healthz"); err == nil {
		t.Fatal("server still answering after shutdown")
	}
}
