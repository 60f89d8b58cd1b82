package main

// The Azure SDK for JavaScript (@azure/identity, @azure/keyvault-secrets,
// @azure/arm-resources), unmodified, configured with nothing but what
// `tenantbridge env` prints: test/node-identity holds its tests (node's
// built-in test runner; `npm ci --prefix test/node-identity` installs the
// pinned packages, as .ci/run does). This test starts a server with an
// HTTPS proxy, sets up a vault, a resource group and the principals' roles
// with the CLI, and for each credential kind runs `env` in-process and
// `node --test` there with exactly the variables it exported, plus PATH,
// HOME and the names of what the program works on.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/server"
)

const nodeIdentityDir = "../../test/node-identity"

func TestNodeIdentitySDK(t *testing.T) {
	node, err := exec.LookPath("node")
	if err == nil {
		for _, pkg := range []string{"identity", "keyvault-secrets", "arm-resources"} {
			if _, err = os.Stat(filepath.Join(nodeIdentityDir, "node_modules", "@azure", pkg, "package.json")); err != nil {
				break
			}
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node and %s/node_modules are needed (npm ci --prefix test/node-identity): %v", nodeIdentityDir, err)
		}
		t.Skipf("node or %s/node_modules missing (npm ci --prefix test/node-identity): %v", nodeIdentityDir, err)
	}

	dir := startServerWith(t, server.Config{ProxyListen: "127.0.0.1:0"})
	var tenant tenantJSON
	okJSON(t, dir, &tenant, "tenant", "create", "contoso")
	admin := tenant.Admin.ClientID
	const rg, vaultName = "node-rg", "node-vault"
	var vault struct{ ID string }
	okJSON(t, dir, &vault, "keyvault", "create", "--name", vaultName, "--resource-group", rg)
	var mi azclient.Identity
	okJSON(t, dir, &mi, "identity", "create", "node-identity", "--resource-group", rg)

	c := &cli{dataDir: dir, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(string) string { return "" }}
	s, err := c.session("contoso")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	adminSP, err := s.graph.GetServicePrincipal(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}

	// A second application for the certificate and the federated
	// credential, with only the roles given here (the administrator is
	// the subscription's Owner).
	app, err := s.graph.CreateApplication(ctx, azclient.Application{DisplayName: "Node worker"})
	if err != nil {
		t.Fatal(err)
	}
	appSP, err := s.graph.CreateServicePrincipal(ctx, app.AppID)
	if err != nil {
		t.Fatal(err)
	}
	for _, principal := range []string{mi.PrincipalID, appSP.ID} {
		ok(t, dir, "role", "assignment", "create", "--assignee", principal, "--role", "Key Vault Secrets Officer", "--scope", vault.ID)
		ok(t, dir, "role", "assignment", "create", "--assignee", principal, "--role", "Reader", "--scope", "/subscriptions/"+tenant.SubscriptionID)
	}

	// run runs node --test with env's exports and the program's settings.
	run := func(t *testing.T, kind, oid string, e envOutput) {
		t.Helper()
		vars := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
			"TB_KIND=" + kind, "TB_VAULT_NAME=" + vaultName, "TB_SUBSCRIPTION_ID=" + tenant.SubscriptionID,
			"TB_RESOURCE_GROUP=" + rg, "TB_EXPECT_OID=" + oid}
		for k, v := range e.set {
			vars = append(vars, k+"="+v)
		}
		slices.Sort(vars)
		ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "identity.test.mjs")
		cmd.Dir = nodeIdentityDir
		cmd.Env = vars
		boundTool(cmd)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("node --test in %s (%s): %v\n%s", nodeIdentityDir, kind, err, out.Bytes())
		}
		t.Logf("node --test (%s):\n%s", kind, out.Bytes())
	}

	t.Run("secret", func(t *testing.T) {
		run(t, "secret", adminSP.ID, parseEnv(t, ok(t, dir, "env", "--tenant", "contoso", "--app", admin, "--secret")))
	})

	t.Run("managed-identity", func(t *testing.T) {
		run(t, "managed-identity", mi.PrincipalID, parseEnv(t, ok(t, dir, "env", "--tenant", "contoso", "--identity", "node-identity")))
	})

	t.Run("certificate", func(t *testing.T) {
		pemFile := filepath.Join(t.TempDir(), "node-worker.pem")
		der := writeCertAndKey(t, pemFile)
		addCertificate(t, c, s, app.ID, der)
		run(t, "certificate", appSP.ID, parseEnv(t, ok(t, dir, "env", "--tenant", "contoso", "--app", app.AppID, "--certificate", pemFile)))
	})

	// Workload identity federation: the assertion is the managed
	// identity's token for api://AzureADTokenExchange, from the endpoint
	// env points a workload at; the application trusts its issuer for the
	// identity's object id.
	t.Run("workload-identity", func(t *testing.T) {
		e := parseEnv(t, ok(t, dir, "env", "--tenant", "contoso", "--identity", "node-identity"))
		assertion := managedIdentityToken(t, c, e, azclient.TokenExchangeAudience)
		claims := claimsOf(t, assertion)
		iss, _ := claims["iss"].(string)
		if iss == "" || claims["sub"] != mi.PrincipalID {
			t.Fatalf("the identity's assertion: iss %v sub %v", claims["iss"], claims["sub"])
		}
		if _, err := s.graph.AddFederatedCredential(ctx, app.ID, azclient.FederatedCredential{Name: "node-identity", Issuer: iss,
			Subject: mi.PrincipalID, Audiences: []string{azclient.TokenExchangeAudience}}); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "assertion.jwt")
		if err := os.WriteFile(file, []byte(assertion+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		run(t, "workload-identity", appSP.ID, parseEnv(t, ok(t, dir, "env", "--tenant", "contoso", "--federated-token", file)))
	})
}

// writeCertAndKey writes a new self-signed RSA certificate and its PKCS#8
// key to path as PEM (the file AZURE_CLIENT_CERTIFICATE_PATH names) and
// returns the certificate's DER.
func writeCertAndKey(t *testing.T, path string) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "node-worker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	data := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})...)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return der
}

// addCertificate registers der as the application's first certificate with
// Graph's Update application (PATCH keyCredentials), as Graph's addKey page
// says the first one is added.
func addCertificate(t *testing.T, c *cli, s *session, appObjectID string, der []byte) {
	t.Helper()
	opts, _, err := c.clientOptions()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{azclient.GraphScope}})
	if err != nil {
		t.Fatal(err)
	}
	thumb := sha1.Sum(der)
	body, _ := json.Marshal(map[string]any{"keyCredentials": []any{map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify",
		"key": base64.StdEncoding.EncodeToString(der), "displayName": "node-worker",
		"customKeyIdentifier": strings.ToUpper(base64.StdEncoding.EncodeToString(thumb[:]))}}})
	req, _ := http.NewRequest(http.MethodPatch, azclient.GraphEndpoint+"/applications/"+url.PathEscape(appObjectID), bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := opts.Transport.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PATCH keyCredentials: %d %s", resp.StatusCode, b)
	}
}

// managedIdentityToken gets a token for resource from the managed-identity
// endpoint env exported, as a workload does.
func managedIdentityToken(t *testing.T, c *cli, e envOutput, resource string) string {
	t.Helper()
	info, err := c.serverInfo()
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(info.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: time.Minute}
	q := url.Values{"api-version": {"2019-08-01"}, "resource": {resource}, "client_id": {e.set["AZURE_CLIENT_ID"]}}
	req, _ := http.NewRequest(http.MethodGet, e.set["IDENTITY_ENDPOINT"]+"?"+q.Encode(), nil)
	req.Header.Set("X-IDENTITY-HEADER", e.set["IDENTITY_HEADER"])
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil || out.AccessToken == "" {
		t.Fatalf("the identity's token for %s: %d %s", resource, resp.StatusCode, body)
	}
	return out.AccessToken
}
