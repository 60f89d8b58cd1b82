package vault_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

// rbacAuthorizer is the Authorizer the server wires: the real rbac engine
// deciding the data action at the scope. (This is the test's copy of the
// adapter; the server owns the real one.)
type rbacAuthorizer struct{ e *rbac.Engine }

func (a rbacAuthorizer) Authorize(ctx context.Context, acc vault.Access) (bool, string, error) {
	d, err := a.e.Decide(ctx, rbac.Request{PrincipalID: acc.PrincipalID, PrincipalTenantID: acc.PrincipalTenantID,
		TenantID: acc.TenantID, Action: acc.DataAction, DataAction: true, Scope: acc.Scope})
	if err != nil {
		return false, "", err
	}
	return d.Allowed, d.Because.String(), nil
}

// env is the real thing (testenv): a store, the directory, the token
// service and the vault surface behind one TLS server that any host name
// reaches.
type env struct {
	t      *testing.T
	ctx    context.Context
	st     store.Store
	dir    *directory.Service
	vaults *vault.Service
	srv    *httptest.Server
	client *http.Client

	contoso, fabrikam *directory.TenantBootstrap
}

func newEnv(t testing.TB, st store.Store) *env {
	t.Helper()
	ctx := context.Background()
	b := testenv.New(t, st, testenv.Certificate(testCert(t)),
		testenv.ResourceAliases(map[string]string{"https://vault.contoso.test": directory.KeyVaultResource}))
	e := &env{ctx: ctx, st: st, dir: b.Dir, srv: b.Server, client: b.Client()}
	if tt, ok := t.(*testing.T); ok {
		e.t = tt
	}
	e.vaults = vault.New(vault.Config{Store: st, KEK: testenv.RandomKey(t), Verifier: b.Verifier, Authorizer: rbacAuthorizer{rbac.New(st, e.dir)}, Audit: b.Audit, Logger: b.Logger,
		LoginBase: func(*http.Request) string { return e.srv.URL }})
	b.Route(func(r *http.Request) http.Handler {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		if strings.Contains(host, ".vault.") {
			return e.vaults
		}
		return nil
	})
	e.contoso, e.fabrikam = b.Tenants(t)
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

var must = testenv.Must

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

// assign gives a service principal of tenantID (or provisioned into it) a
// built-in role at a scope of tenantID.
func (e *env) assign(t testing.TB, tenantID, principal, role, scope string) {
	t.Helper()
	must(t, e.st.CreateRoleAssignment(e.ctx, store.RoleAssignment{TenantID: tenantID, ID: uuid.NewString(), Scope: scope,
		RoleDefinitionID: role, PrincipalID: principal, PrincipalType: store.PrincipalServicePrincipal}))
}

// grantAll makes a principal Key Vault Secrets Officer of a vault.
func (e *env) grantAll(t testing.TB, v store.Vault, principal string) {
	e.assign(t, v.TenantID, principal, rbac.RoleKeyVaultSecretsOfficer, v.ResourceID)
}
