package vault_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/pki"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/sts"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

// grants is the test's Authorizer.
//
// TEST-ONLY CONCESSION (replace with the real rbac engine through the
// server's adapter once internal/rbac exposes Decide): it grants exactly
// the listed (principal, data action, scope) triples, where a grant at a
// scope also covers every scope below it.
type grants struct {
	mu   sync.Mutex
	list [][3]string
}

func (g *grants) grant(principal, action, scope string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.list = append(g.list, [3]string{principal, action, scope})
}

func (g *grants) Authorize(_ context.Context, a vault.Access) (bool, string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, gr := range g.list {
		scope := strings.ToLower(a.Scope)
		gs := strings.ToLower(gr[2])
		if gr[0] == a.PrincipalID && gr[1] == a.DataAction && (scope == gs || strings.HasPrefix(scope, gs+"/")) {
			return true, "", nil
		}
	}
	return false, "No role assignment grants the action.", nil
}

// env is the real thing: a store, the directory, the token service and the
// vault surface behind one TLS server that any host name reaches.
type env struct {
	t      *testing.T
	ctx    context.Context
	st     store.Store
	dir    *directory.Service
	vaults *vault.Service
	grants *grants
	srv    *httptest.Server
	client *http.Client

	contoso, fabrikam *directory.TenantBootstrap
}

func newEnv(t testing.TB, st store.Store) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{ctx: ctx, st: st, grants: &grants{}}
	if tt, ok := t.(*testing.T); ok {
		e.t = tt
	}
	var err error
	e.dir, err = directory.New(st, randomKey(t), randomKey(t))
	must(t, err)
	must(t, e.dir.EnsureFirstParty(ctx))
	keys, err := pki.LoadOrCreateKeySet(t.TempDir())
	must(t, err)
	logger := slog.New(slog.DiscardHandler)
	al := audit.New(st, logger)
	svc := sts.New(sts.Config{Directory: e.dir, Keys: keys, Audit: al, Logger: logger,
		IsLoginHost: func(h string) bool { return h == "127.0.0.1" }})
	e.srv = httptest.NewUnstartedServer(nil)
	e.vaults = vault.New(vault.Config{Store: st, KEK: randomKey(t), Verifier: svc.Verifier(), Authorizer: e.grants, Audit: al, Logger: logger,
		LoginBase: func(*http.Request) string { return e.srv.URL }})
	e.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(httpx.WithInfo(r.Context(), httpx.Info{RequestID: uuid.NewString(), ClientAddr: r.RemoteAddr, BaseURL: "https://" + r.Host}))
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		if strings.Contains(host, ".vault.") {
			e.vaults.ServeHTTP(w, r)
			return
		}
		svc.ServeHTTP(w, r)
	})
	cert, pool := testCert(t)
	e.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	addr := e.srv.Listener.Addr().String()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	e.client = &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
	}, Timeout: 30 * time.Second}
	e.contoso, err = e.dir.CreateTenant(ctx, "contoso")
	must(t, err)
	e.fabrikam, err = e.dir.CreateTenant(ctx, "fabrikam")
	must(t, err)
	return e
}

// testCert is a self-signed certificate for the names the test reaches.
func testCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames:    []string{"*.vault.azure.net", "*.vault.contoso.test", "localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	c, err := x509.ParseCertificate(der)
	must(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func randomKey(t testing.TB) []byte {
	k := make([]byte, 32)
	_, err := rand.Read(k)
	must(t, err)
	return k
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// app is a client application with a secret, and its service principal.
type app struct {
	appID, secret, spID string
}

func (e *env) newApp(t testing.TB, tenantID, name string, multi bool) app {
	t.Helper()
	a := directory.Application{DisplayName: name}
	if multi {
		a.SignInAudience = directory.AudienceMultipleOrgs
	}
	created, err := e.dir.CreateApplication(e.ctx, tenantID, a)
	must(t, err)
	sp, err := e.dir.CreateServicePrincipal(e.ctx, tenantID, created.AppID)
	must(t, err)
	cred, err := e.dir.AddApplicationPassword(e.ctx, tenantID, created.ID, "test", time.Time{}, time.Time{})
	must(t, err)
	return app{appID: created.AppID, secret: cred.SecretText, spID: sp.ID}
}

// credential is azidentity's client-secret credential against the test
// server, in tenantID.
func (e *env) credential(t testing.TB, tenantID string, a app) azcore.TokenCredential {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(tenantID, a.appID, a.secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            policy.ClientOptions{Transport: e.client, Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: e.srv.URL}},
		DisableInstanceDiscovery: true,
	})
	must(t, err)
	return cred
}

// secrets is an unmodified azsecrets client (default options but the
// transport).
func (e *env) secrets(t testing.TB, vaultURL string, cred azcore.TokenCredential) *azsecrets.Client {
	t.Helper()
	c, err := azsecrets.NewClient(vaultURL, cred, &azsecrets.ClientOptions{ClientOptions: policy.ClientOptions{Transport: e.client}})
	must(t, err)
	return c
}

// grantAll grants a principal every secrets data action at a scope.
func (e *env) grantAll(principal, scope string) {
	for _, a := range []string{vault.ActionGetSecret, vault.ActionSetSecret, vault.ActionReadMetadata, vault.ActionUpdate, vault.ActionDelete,
		vault.ActionRecover, vault.ActionPurge, vault.ActionBackup, vault.ActionRestore} {
		e.grants.grant(principal, a, scope)
	}
}
