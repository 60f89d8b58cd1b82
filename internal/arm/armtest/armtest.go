// Package armtest starts Resource Manager's real front door (package arm)
// with the real providers of the services (Key Vault, Service Bus,
// Managed Identity, and Solutions from arm itself) for tests: a store,
// the directory, the token service and Resource Manager behind one TLS
// listener routed by host (package testenv), reached by Azure's names. It
// runs a test on every store the environment offers (SQLite always,
// PostgreSQL when TENANTBRIDGE_TEST_POSTGRES_DSN is set), so that a
// provider's tests in its own package exercise it exactly as the server
// wires it.
package armtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azarm "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/arm"
	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/managedidentity"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/servicebus"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

// The hosts tests reach, by Azure's names.
const (
	ARMBase   = "https://management.azure.com"
	LoginBase = "https://login.microsoftonline.com"
)

// Providers are the services' providers as the server registers them
// (internal/server); kek seals Service Bus rule keys (nil: no rules) and
// the secrets Key Vault's provider writes (nil: none).
func Providers(kek []byte) []*rp.Provider {
	return []*rp.Provider{vault.Provider(kek), managedidentity.Provider(), servicebus.Provider(kek)}
}

// vaultAuthorizer is the server's Key Vault authorizer: the RBAC engine
// deciding the data action at the scope.
type vaultAuthorizer struct{ e *rbac.Engine }

func (a vaultAuthorizer) Authorize(ctx context.Context, acc vault.Access) (bool, string, error) {
	d, err := a.e.Decide(ctx, rbac.Request{PrincipalID: acc.PrincipalID, PrincipalTenantID: acc.PrincipalTenantID,
		TenantID: acc.TenantID, Action: acc.DataAction, DataAction: true, Scope: acc.Scope})
	if err != nil {
		return false, "", err
	}
	return d.Allowed, d.Because.String(), nil
}

// Env is one running environment: the real thing (testenv) with Resource
// Manager and the tenants Contoso and Fabrikam.
type Env struct {
	T      *testing.T
	Ctx    context.Context
	St     store.Store
	Dir    *directory.Service
	Srv    *httptest.Server
	Client *http.Client
	Base   *testenv.Env

	// Vaults is Key Vault's data plane at {vault}.vault.azure.net, with
	// the KEK Key Vault's provider seals secrets under.
	Vaults *vault.Service

	Contoso, Fabrikam *directory.TenantBootstrap
	// Notified counts the calls of arm.Config.Notify.
	Notified *atomic.Int64
}

// Options change the environment a test starts.
type Options struct {
	// PageSize pages lists at this many items (arm.Config.PageSize).
	PageSize int
	// KEK, when true, gives Service Bus a key-encryption key so that
	// authorization rules are served.
	KEK bool
	// Now is Resource Manager's clock (arm.Config.Now): a test moves it
	// to see what time does (a deleted vault's purge date).
	Now func() time.Time
}

// ForEachStore runs fn with a new environment on every store.
func ForEachStore(t *testing.T, fn func(t *testing.T, e *Env)) { ForEachStoreWith(t, Options{}, fn) }

// ForEachStoreWith is ForEachStore with options.
func ForEachStoreWith(t *testing.T, o Options, fn func(t *testing.T, e *Env)) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) { fn(t, New(t, st, o)) })
}

// New starts an environment on st.
func New(t *testing.T, st store.Store, o Options) *Env {
	t.Helper()
	b := testenv.New(t, st, testenv.LoginHosts("login.microsoftonline.com"), testenv.LoginURL(LoginBase))
	e := &Env{T: t, Ctx: context.Background(), St: st, Dir: b.Dir, Srv: b.Server, Client: b.Client(), Base: b, Notified: new(atomic.Int64)}
	var kek []byte
	if o.KEK {
		kek = make([]byte, 32)
		_, _ = rand.Read(kek)
	}
	// Key Vault always has a KEK (the server's); Service Bus only when
	// asked for.
	vaultKEK := testenv.RandomKey(t)
	providers := Providers(kek)
	providers[0] = vault.Provider(vaultKEK)
	e.Vaults = vault.New(vault.Config{Store: st, KEK: vaultKEK, Verifier: b.Verifier, Authorizer: vaultAuthorizer{rbac.New(st, e.Dir)},
		Audit: b.Audit, Logger: b.Logger})
	h := arm.New(arm.Config{Directory: e.Dir, Store: st, RBAC: rbac.New(st, e.Dir), Verifier: b.Verifier, Audit: b.Audit, Logger: b.Logger, PageSize: o.PageSize,
		TokenMinter: b.STS, Notify: func() { e.Notified.Add(1) }, Providers: providers, Now: o.Now})
	b.Route(func(r *http.Request) http.Handler {
		switch {
		case strings.HasPrefix(r.Host, "management."):
			return h
		case strings.Contains(r.Host, ".vault."):
			return e.Vaults
		}
		return nil
	})
	e.Contoso, e.Fabrikam = b.Tenants(t)
	return e
}

// Must fails the test on an error.
var Must = testenv.Must

// Sub is Contoso's subscription's id (/subscriptions/{id}).
func Sub(e *Env) string { return "/subscriptions/" + e.Contoso.Tenant.SubscriptionID }

// TokenFor gets an app-only token from the real token endpoint.
func (e *Env) TokenFor(tenantID, clientID, secret, scope string) string {
	e.T.Helper()
	return e.Base.Token(e.T, tenantID, clientID, secret, scope)
}

// ARMToken is an app-only token for Resource Manager.
func (e *Env) ARMToken(tenantID, clientID, secret string) string {
	return e.TokenFor(tenantID, clientID, secret, "https://management.azure.com/.default")
}

// AdminToken is a Resource Manager token of the tenant's admin application
// (Owner of its subscription).
func (e *Env) AdminToken(tb *directory.TenantBootstrap) string {
	return e.ARMToken(tb.Tenant.ID, tb.Admin.AppID, tb.AdminSecret.SecretText)
}

// App is a registered application with a service principal and a secret.
type App struct {
	App    *directory.Application
	SP     *directory.ServicePrincipal
	Secret string
}

// NewApp registers an application in the tenant.
func (e *Env) NewApp(tenantID, name string, multiTenant bool) App {
	e.T.Helper()
	a := directory.Application{DisplayName: name}
	if multiTenant {
		a.SignInAudience = directory.AudienceMultipleOrgs
	}
	created, err := e.Dir.CreateApplication(e.Ctx, tenantID, a)
	Must(e.T, err)
	sp, err := e.Dir.CreateServicePrincipal(e.Ctx, tenantID, created.AppID)
	Must(e.T, err)
	cred, err := e.Dir.AddApplicationPassword(e.Ctx, tenantID, created.ID, "test", time.Time{}, time.Time{})
	Must(e.T, err)
	return App{App: created, SP: sp, Secret: cred.SecretText}
}

// ARMOptions are the unmodified SDK's options but the transport, which
// reaches the test server by Azure's names, and no retries.
func (e *Env) ARMOptions() *azarm.ClientOptions { return ClientOptions(e.Client) }

// Credential is azidentity's client-secret credential against the test
// server's token endpoint.
func (e *Env) Credential(tenantID, clientID, secret string) azcore.TokenCredential {
	e.T.Helper()
	return SecretCredential(e.T, e.Client, tenantID, clientID, secret)
}

// ClientOptions are the unmodified SDK's options but the transport c,
// which reaches a test server by Azure's names, and no retries.
func ClientOptions(c *http.Client) *azarm.ClientOptions {
	return &azarm.ClientOptions{ClientOptions: policy.ClientOptions{Transport: c, Cloud: cloud.AzurePublic,
		Retry: policy.RetryOptions{MaxRetries: -1}}}
}

// SecretCredential is azidentity's client-secret credential against the
// token endpoint a test server answers at LoginBase through c.
func SecretCredential(t testing.TB, c *http.Client, tenantID, clientID, secret string) azcore.TokenCredential {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(tenantID, clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            policy.ClientOptions{Transport: c, Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: LoginBase + "/"}},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// Response is an ARM answer, read whole.
type Response struct {
	Status int
	Header http.Header
	Raw    []byte
	Doc    map[string]any
}

// Code is the error's code.
func (r Response) Code() string {
	errObj, _ := r.Doc["error"].(map[string]any)
	c, _ := errObj["code"].(string)
	return c
}

// Message is the error's message.
func (r Response) Message() string {
	errObj, _ := r.Doc["error"].(map[string]any)
	c, _ := errObj["message"].(string)
	return c
}

// Call sends a request to ARM; path may hold its own query, to which the
// api-version of the path's namespace is added.
func (e *Env) Call(token, method, path string, body any) Response {
	e.T.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return e.Raw(token, method, path+sep+"api-version="+testenv.ARMAPIVersion(path), body)
}

// Raw sends a request to ARM as it is; body is nil, a string or a value
// sent as JSON.
func (e *Env) Raw(token, method, pathAndQuery string, body any) Response {
	e.T.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		Must(e.T, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, ARMBase+pathAndQuery, rd)
	Must(e.T, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.Client.Do(req)
	Must(e.T, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	Must(e.T, err)
	out := Response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &out.Doc); err != nil {
			e.T.Fatalf("%s %s: body is not a JSON object: %s", method, pathAndQuery, raw)
		}
	}
	return out
}

// Want fails the test unless r has the status and (if not empty) the
// error code.
func (e *Env) Want(r Response, status int, code string) {
	e.T.Helper()
	if r.Status != status || (code != "" && r.Code() != code) {
		e.T.Fatalf("got %d %s, want %d %s: %s", r.Status, r.Code(), status, code, r.Raw)
	}
}

// VaultBody is a vault's PUT body in the tenant (standard sku, RBAC
// permission model) with props added to its properties.
func VaultBody(tenantID string, props map[string]any) map[string]any {
	p := map[string]any{"tenantId": tenantID, "sku": map[string]any{"family": "A", "name": "standard"}, "enableRbacAuthorization": true}
	for k, v := range props {
		p[k] = v
	}
	return map[string]any{"location": "West Europe", "properties": p}
}

// NamespaceBody is a Standard Service Bus namespace's PUT body.
func NamespaceBody() map[string]any {
	return map[string]any{"location": "westeurope", "sku": map[string]any{"name": "Standard"}}
}

// CheckPatchRefusals checks what every PATCH (Update) of resource id
// with body is refused as its PUT is, and that each refusal leaves the
// resource as GET showed it: a caller of the tenant with only Reader at
// the group (403 AuthorizationFailed, audited), another tenant's admin
// (401 InvalidAuthenticationTokenTenant: ARM takes only tokens of the
// subscription's tenant), and a ReadOnly lock on the group (409
// ScopeLocked). rg is the resource's group id.
func (e *Env) CheckPatchRefusals(tb *directory.TenantBootstrap, rg, id string, body any) {
	e.T.Helper()
	admin := e.AdminToken(tb)
	before := e.Call(admin, "GET", id, nil)
	e.Want(before, http.StatusOK, "")

	reader := e.NewApp(tb.Tenant.ID, "patch-reader", false)
	e.Want(e.Call(admin, "PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{"properties": map[string]any{
		"roleDefinitionId": rbac.RoleReader, "principalId": reader.SP.ID}}), http.StatusCreated, "")
	tok := e.ARMToken(tb.Tenant.ID, reader.App.AppID, reader.Secret)
	r := e.Call(tok, "PATCH", id, body)
	e.Want(r, http.StatusForbidden, "AuthorizationFailed")
	if !strings.Contains(r.Message(), "/write'") {
		e.T.Errorf("PATCH refusal names no write action: %s", r.Message())
	}
	recs, err := e.St.ListAudit(e.Ctx, store.AuditQuery{TenantID: tb.Tenant.ID})
	Must(e.T, err)
	audited := false
	for _, rec := range recs {
		audited = audited || (rec.Actor == reader.SP.ID && rec.Result == "AuthorizationFailed" && strings.HasSuffix(rec.Action, "/write"))
	}
	if !audited {
		e.T.Errorf("the refused PATCH is not audited")
	}

	other := e.Contoso
	if other.Tenant.ID == tb.Tenant.ID {
		other = e.Fabrikam
	}
	e.Want(e.Call(e.AdminToken(other), "PATCH", id, body), http.StatusUnauthorized, "InvalidAuthenticationTokenTenant")

	lock := rg + "/providers/Microsoft.Authorization/locks/patch-freeze"
	e.Want(e.Call(admin, "PUT", lock, map[string]any{"properties": map[string]any{"level": "ReadOnly"}}), http.StatusCreated, "")
	e.Want(e.Call(admin, "PATCH", id, body), http.StatusConflict, "ScopeLocked")
	e.Want(e.Call(admin, "DELETE", lock, nil), http.StatusOK, "")

	after := e.Call(admin, "GET", id, nil)
	if !bytes.Equal(before.Raw, after.Raw) {
		e.T.Errorf("a refused PATCH changed the resource:\n%s\n%s", before.Raw, after.Raw)
	}
}
