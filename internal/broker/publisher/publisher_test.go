package publisher_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/broker/publisher"
	"github.com/tenantbridge/tenantbridge/internal/server"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
)

const sig = "n0tif-s3cret"

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// world is a running tenantbridge with a publisher tenant and a customer
// tenant, the publisher's group of shared-resource roles, and the
// publisher's broker served behind a notification endpoint. The test sets
// the cloud up through the wire APIs (operator, Resource Manager, Graph)
// as the publisher and the customer would.
type world struct {
	hc        *http.Client
	opts      policy.ClientOptions
	authority string
	pub, cust *azclient.Tenant
	pubCred   azcore.TokenCredential
	custCred  azcore.TokenCredential
	graph     *azclient.Graph
	groupID   string
	hook      *httptest.Server
	// issuerSrv serves the broker over HTTPS: its issuer (discovery,
	// JWKS) and exchange, at issuer.
	issuerSrv    *httptest.Server
	issuer       string
	signer       *publisher.VaultSigner
	op           *azclient.Operator
	workloads    map[string]string // principal id -> identity header
	opcred       azclient.OperatorCredential
	handler      http.Handler
	mu           sync.Mutex
	statePath    string
	logs         *syncBuffer
	definition   string
	bootstrapped bool
	// offers configure the broker's packages (Config.Offers).
	offers map[string]publisher.Offer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newWorld(t testing.TB) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{statePath: filepath.Join(t.TempDir(), "state.json"), logs: &syncBuffer{}}
	// The broker's HTTPS endpoint, whose certificate's authority the
	// cloud trusts for federation fetches (as a deployment trusts a
	// broker's public certificate through the system's roots).
	w.issuerSrv = httptest.NewUnstartedServer(http.HandlerFunc(w.serve))
	w.issuerSrv.StartTLS()
	t.Cleanup(w.issuerSrv.Close)
	w.issuer = w.issuerSrv.URL + "/oidc"
	srv, err := server.New(ctx, server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
		FederationRoots: []*x509.Certificate{w.issuerSrv.Certificate()}})
	must(t, err)
	ln, err := srv.Listen()
	must(t, err)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })

	cred, err := azclient.ReadOperatorCredential(srv.OperatorFile())
	must(t, err)
	local, err := cred.Local()
	must(t, err)
	w.opcred = cred
	w.opts, err = local.ClientOptions()
	must(t, err)
	w.hc = w.opts.Transport.(*http.Client)
	w.authority, err = cred.AuthorityURL()
	must(t, err)
	op, err := azclient.NewOperatorFromCredential(cred)
	must(t, err)
	w.op = op
	w.pub, err = op.CreateTenant(ctx, "publisher")
	must(t, err)
	w.cust, err = op.CreateTenant(ctx, "customer")
	must(t, err)
	w.pubCred, err = azclient.NewClientSecretCredential(w.authority, w.pub.TenantID, w.pub.Admin.ClientID, w.pub.Admin.ClientSecret, w.opts)
	must(t, err)
	w.custCred, err = azclient.NewClientSecretCredential(w.authority, w.cust.TenantID, w.cust.Admin.ClientID, w.cust.Admin.ClientSecret, w.opts)
	must(t, err)
	w.graph, err = azclient.NewGraph(azclient.GraphEndpoint, w.pubCred, &w.opts)
	must(t, err)
	g, err := w.graph.CreateGroup(ctx, azclient.Group{DisplayName: "shared-resources", MailNickname: "shared-resources", SecurityEnabled: true})
	must(t, err)
	w.groupID = g.ID

	w.hook = httptest.NewServer(http.HandlerFunc(w.serve))
	t.Cleanup(w.hook.Close)
	return w
}

// serve hands a request to the current broker.
func (w *world) serve(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	h := w.handler
	w.mu.Unlock()
	if h == nil {
		http.Error(rw, "not yet", http.StatusServiceUnavailable)
		return
	}
	h.ServeHTTP(rw, r)
}

// issuerKey is the broker's signing key: an RSA key created in the
// publisher's vault (Key Vault Crypto Officer for the broker's identity),
// used only through Key Vault's sign.
func (w *world) issuerKey(t testing.TB) *publisher.VaultSigner {
	t.Helper()
	w.mu.Lock()
	s := w.signer
	w.mu.Unlock()
	if s != nil {
		return s
	}
	sub := "/subscriptions/" + w.pub.SubscriptionID
	w.arm(t, w.pubCred, "PUT", sub+"/resourceGroups/broker", map[string]any{"location": "westeurope"})
	vault := sub + "/resourceGroups/broker/providers/Microsoft.KeyVault/vaults/pubkeys"
	if c, doc := w.arm(t, w.pubCred, "PUT", vault, map[string]any{"location": "westeurope", "properties": map[string]any{
		"tenantId": w.pub.TenantID, "sku": map[string]any{"family": "A", "name": "standard"}}}); c/100 != 2 {
		t.Fatalf("vault %d %v", c, doc)
	}
	if c, doc := w.arm(t, w.pubCred, "PUT", vault+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{
		"properties": map[string]any{"roleDefinitionId": sub + "/providers/Microsoft.Authorization/roleDefinitions/" + roleCryptoOfficer,
			"principalId": w.pub.Admin.ServicePrincipalID, "principalType": "ServicePrincipal"}}); c/100 != 2 {
		t.Fatalf("role %d %v", c, doc)
	}
	s, err := publisher.NewVaultSigner(context.Background(), "https://pubkeys.vault.azure.net", "broker-issuer", w.pubCred,
		&publisher.VaultSignerOptions{ClientOptions: w.opts, Create: true})
	must(t, err)
	w.mu.Lock()
	w.signer = s
	w.mu.Unlock()
	return s
}

// Key Vault Crypto Officer, Azure's built-in role.
const roleCryptoOfficer = "14b46e9e-c2b7-41b4-b07b-48a6ebf60603"

// installationIdentity is the user-assigned identity of the federated
// offers' managed groups that the installed software runs as.
const installationIdentity = "installation"

// broker builds the publisher's broker as it runs (its own credential,
// the state file) and serves it behind the hook.
func (w *world) broker(t testing.TB, now func() time.Time) *publisher.Broker {
	t.Helper()
	st, err := publisher.NewFileStore(w.statePath)
	must(t, err)
	b, err := publisher.New(publisher.Config{TenantID: w.pub.TenantID, Credential: w.pubCred, ClientOptions: w.opts,
		IssuerURL: w.issuer, Signer: w.issuerKey(t), InstallationIdentity: installationIdentity,
		GroupID: w.groupID, NotificationSecret: sig, BootstrapSecret: bootstrap, Subscriptions: []string{w.pub.SubscriptionID}, State: st,
		GroupBackoff: 10 * time.Millisecond, GroupAttempts: 2, Now: now, Offers: w.offers,
		Logger: slog.New(slog.NewJSONHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	must(t, err)
	w.mu.Lock()
	w.handler = b.Handler()
	w.mu.Unlock()
	return b
}

// arm calls Resource Manager with cred's token.
func (w *world) arm(t testing.TB, cred azcore.TokenCredential, method, path string, body any) (int, map[string]any) {
	t.Helper()
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	must(t, err)
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "https://management.azure.com"+path+"?api-version="+testenv.ARMAPIVersion(path), rd)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.hc.Do(req)
	must(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	_ = json.Unmarshal(raw, &doc)
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotFound {
		t.Logf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, doc
}

// bootstrapSecret keeps the registration call's bootstrap secret in a
// vault of the publisher (created once) and returns its URI, as the
// definition's registration.bootstrapSecret names it.
func (w *world) bootstrapSecret(t testing.TB) string {
	t.Helper()
	const uri = "https://pubboot.vault.azure.net/secrets/BootstrapSecret"
	w.mu.Lock()
	done := w.bootstrapped
	w.bootstrapped = true
	w.mu.Unlock()
	if done {
		return uri
	}
	sub := "/subscriptions/" + w.pub.SubscriptionID
	w.arm(t, w.pubCred, "PUT", sub+"/resourceGroups/broker", map[string]any{"location": "westeurope"})
	vault := sub + "/resourceGroups/broker/providers/Microsoft.KeyVault/vaults/pubboot"
	if c, doc := w.arm(t, w.pubCred, "PUT", vault, map[string]any{"location": "westeurope", "properties": map[string]any{
		"tenantId": w.pub.TenantID, "sku": map[string]any{"family": "A", "name": "standard"}}}); c/100 != 2 {
		t.Fatalf("vault %d %v", c, doc)
	}
	if c, doc := w.arm(t, w.pubCred, "PUT", vault+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{
		"properties": map[string]any{"roleDefinitionId": sub + "/providers/Microsoft.Authorization/roleDefinitions/b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
			"principalId": w.pub.Admin.ServicePrincipalID, "principalType": "ServicePrincipal"}}); c/100 != 2 {
		t.Fatalf("role %d %v", c, doc)
	}
	kv, err := azsecrets.NewClient("https://pubboot.vault.azure.net", w.pubCred, &azsecrets.ClientOptions{ClientOptions: w.opts})
	must(t, err)
	v := bootstrap
	_, err = kv.SetSecret(context.Background(), "BootstrapSecret", azsecrets.SetSecretParameters{Value: &v}, nil)
	must(t, err)
	return uri
}

// publish writes the publisher's marketplace definition (named name) whose
// spec has a vault, the application identity as its Secrets Officer, and
// the registration in mode (federated: with the user-assigned identity the
// installed software runs as).
func (w *world) publish(t testing.TB, name, mode string) {
	t.Helper()
	w.publishWith(t, name, mode, true)
}

// publishWith is publish; without the registration call (withCall false)
// the notification alone registers, and no bootstrap secret exists.
func (w *world) publishWith(t testing.TB, name, mode string, withCall bool) {
	t.Helper()
	sub := "/subscriptions/" + w.pub.SubscriptionID
	if c, _ := w.arm(t, w.pubCred, "PUT", sub+"/resourceGroups/offers", map[string]any{"location": "westeurope"}); c/100 != 2 {
		t.Fatal("offers group")
	}
	spec := map[string]any{
		"vaults": []any{map[string]any{"name": "kv{uniqueSuffix}"}},
		"roleAssignments": []any{
			map[string]any{"role": "Key Vault Secrets Officer", "principal": "applicationIdentity", "scope": "vault:kv{uniqueSuffix}"},
		},
		"registration": map[string]any{"credentialMode": mode, "vault": "kv{uniqueSuffix}"},
	}
	if withCall {
		reg := spec["registration"].(map[string]any)
		reg["endpoint"], reg["bootstrapSecret"] = w.hook.URL+"/register", w.bootstrapSecret(t)
	}
	if mode == publisher.ModeFederated {
		spec["userAssignedIdentities"] = []any{map[string]any{"name": installationIdentity}}
	}
	w.definition = sub + "/resourceGroups/offers/providers/Microsoft.Solutions/applicationDefinitions/" + name
	c, doc := w.arm(t, w.pubCred, "PUT", w.definition, map[string]any{"location": "westeurope", "properties": map[string]any{
		"lockLevel": "ReadOnly", "displayName": "Shared resource broker",
		"authorizations":     []any{map[string]any{"principalId": w.pub.Admin.ServicePrincipalID, "roleDefinitionId": "b24988ac-6180-42a0-ab88-20f7382dd24c"}},
		"notificationPolicy": map[string]any{"notificationEndpoints": []any{map[string]any{"uri": w.hook.URL + "/hooks?sig=" + sig}}},
		"deploymentSpec":     spec}})
	if c/100 != 2 {
		t.Fatalf("definition: %d %v", c, doc)
	}
	w.publishOffer(t, w.definition)
}

// publishOffer makes the definition a marketplace offer: the operator's
// step (Partner Center's in Azure, which has no ARM API for it).
func (w *world) publishOffer(t testing.TB, definitionID string) {
	t.Helper()
	if _, err := w.op.PublishOffer(context.Background(), definitionID); err != nil {
		t.Fatalf("publishing %s: %v", definitionID, err)
	}
}

// install installs the offer in the customer's subscription.
func (w *world) install(t testing.TB, product, name string) (appID string, status int) {
	t.Helper()
	sub := "/subscriptions/" + w.cust.SubscriptionID
	w.arm(t, w.custCred, "PUT", sub+"/resourceGroups/apps", map[string]any{"location": "westeurope"})
	appID = sub + "/resourceGroups/apps/providers/Microsoft.Solutions/applications/" + name
	c, doc := w.arm(t, w.custCred, "PUT", appID, map[string]any{"location": "westeurope", "kind": "MarketPlace",
		"plan":       map[string]any{"name": "standard", "publisher": w.pub.Domain, "product": product, "version": "1.0.0"},
		"identity":   map[string]any{"type": "SystemAssigned"},
		"properties": map[string]any{"managedResourceGroupId": sub + "/resourceGroups/mrg-" + name}})
	if c/100 != 2 {
		t.Fatalf("install: %d %v", c, doc)
	}
	if p, _ := doc["properties"].(map[string]any); p["provisioningState"] != "Succeeded" {
		t.Fatalf("install: %v", doc)
	}
	return appID, c
}

// waitFor polls cond for up to 30 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (w *world) installation(t testing.TB, b *publisher.Broker, appID string) *publisher.Installation {
	t.Helper()
	in, err := b.Installation(context.Background(), appID)
	must(t, err)
	return in
}

// managedVault reads the managed application's vault as the publisher's
// authorized principal can: with a listTokens token of the application's
// identity.
func (w *world) managedVault(t testing.TB, appID string) *azsecrets.Client {
	t.Helper()
	c, doc := w.arm(t, w.pubCred, "POST", appID+"/listTokens", map[string]any{"authorizationAudience": "https://vault.azure.net"})
	if c != 200 {
		t.Fatalf("listTokens %d %v", c, doc)
	}
	tok := doc["value"].([]any)[0].(map[string]any)["access_token"].(string)
	kv, err := azsecrets.NewClient("https://kv"+publisher.UniqueSuffix(appID)+".vault.azure.net", staticCred(tok),
		&azsecrets.ClientOptions{ClientOptions: w.opts})
	must(t, err)
	return kv
}

type staticCred string

func (s staticCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(s), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func (w *world) vaultSecrets(t testing.TB, appID string) map[string]string {
	t.Helper()
	kv := w.managedVault(t, appID)
	out := map[string]string{}
	pager := kv.NewListSecretPropertiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		must(t, err)
		for _, p := range page.Value {
			r, err := kv.GetSecret(context.Background(), p.ID.Name(), "", nil)
			must(t, err)
			out[p.ID.Name()] = *r.Value
		}
	}
	return out
}

func (w *world) isMember(t testing.TB, spID string) bool {
	t.Helper()
	tok, err := w.pubCred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{azclient.GraphScope}})
	must(t, err)
	req, _ := http.NewRequest("GET", azclient.GraphEndpoint+"/groups/"+w.groupID+"/members", nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err := w.hc.Do(req)
	must(t, err)
	defer resp.Body.Close()
	var page struct {
		Value []struct {
			ID string `json:"id"`
		} `json:"value"`
	}
	must(t, json.NewDecoder(resp.Body).Decode(&page))
	for _, m := range page.Value {
		if m.ID == spID {
			return true
		}
	}
	return false
}

// post sends a notification to the hook.
func (w *world) post(t testing.TB, query string, body any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(w.hook.URL+"/hooks/resource"+query, "application/json", bytes.NewReader(b))
	must(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// TestSecretModeLifecycle: install → the cloud's notifications reach the
// broker → app, service principal, group membership and the client secret
// in the customer's managed vault (a secret that works); replays and a
// second install change nothing; bad and missing sigs are refused;
// rotation puts the new secret in the vault before the old one expires;
// delete removes everything.
func TestSecretModeLifecycle(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	var clockMu sync.Mutex
	clock := time.Now()
	now := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	b := w.broker(t, now)
	w.publish(t, "broker-offer", publisher.ModeSecret)
	appID, _ := w.install(t, "broker-offer", "srb1")

	waitFor(t, "registration", func() bool {
		in := w.installation(t, b, appID)
		return in != nil && in.Status == "registered" && !in.LastEventTime.IsZero()
	})
	in := w.installation(t, b, appID)
	if in.CredentialMode != publisher.ModeSecret || in.CustomerTenantID != w.cust.TenantID || in.Vault != "kv"+publisher.UniqueSuffix(appID) {
		t.Fatalf("installation %+v", in)
	}
	app, err := w.graph.GetApplication(ctx, in.AppObjectID)
	must(t, err)
	if !strings.Contains(app.DisplayName, "srb1") || len(app.PasswordCredentials) != 1 {
		t.Fatalf("application %+v", app)
	}
	if _, err := w.graph.GetServicePrincipal(ctx, in.SPObjectID); err != nil {
		t.Fatal(err)
	}
	if !w.isMember(t, in.SPObjectID) {
		t.Fatal("the service principal is not in the group")
	}
	secrets := w.vaultSecrets(t, appID)
	secret := secrets[publisher.DefaultSecretName]
	var cfg publisher.VaultConfig
	must(t, json.Unmarshal([]byte(secrets[publisher.DefaultConfigName]), &cfg))
	if secret == "" || cfg.ClientID != in.ClientID || cfg.TenantID != w.pub.TenantID || cfg.SecretName != publisher.DefaultSecretName {
		t.Fatalf("vault %v", secrets)
	}
	// The delivered secret works: the installation signs in to the publisher tenant.
	useSecret := func(s string) error {
		c, err := azclient.NewClientSecretCredential(w.authority, w.pub.TenantID, in.ClientID, s, w.opts)
		must(t, err)
		_, err = c.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
		return err
	}
	must(t, useSecret(secret))

	// Idempotent: installing again (200, no event), replaying the last
	// event, and registering directly return the same installation.
	if _, c := w.install(t, "broker-offer", "srb1"); c != http.StatusOK {
		t.Errorf("second install %d", c)
	}
	ev := map[string]any{"eventType": "PUT", "applicationId": appID, "provisioningState": "Succeeded",
		"eventTime": in.LastEventTime.Format(time.RFC3339Nano), "plan": map[string]any{"name": "standard", "publisher": w.pub.Domain, "product": "broker-offer", "version": "1.0.0"}}
	if c, body := w.post(t, "?sig="+sig, ev); c != 200 || !strings.Contains(body, "stale") {
		t.Errorf("replay: %d %s", c, body)
	}
	again, err := b.Register(ctx, publisher.Ref{ApplicationID: strings.ToUpper(appID)})
	must(t, err)
	if again.AppObjectID != in.AppObjectID || again.ClientID != in.ClientID {
		t.Errorf("register again: %+v", again)
	}
	apps, err := w.graph.ListApplications(ctx, "displayName eq "+azclient.ODataString(in.DisplayName))
	must(t, err)
	app, err = w.graph.GetApplication(ctx, in.AppObjectID)
	must(t, err)
	if len(apps) != 1 || len(app.PasswordCredentials) != 1 || w.vaultSecrets(t, appID)[publisher.DefaultSecretName] != secret {
		t.Errorf("not idempotent: %d apps, %d passwords", len(apps), len(app.PasswordCredentials))
	}

	// The sig: missing, wrong, repeated are refused.
	for q, want := range map[string]int{"": 401, "?sig=": 401, "?sig=wrong": 403, "?sig=" + sig + "&sig=" + sig: 403, "?sig=" + sig[:5]: 403} {
		if c, _ := w.post(t, q, ev); c != want {
			t.Errorf("sig %q: %d, want %d", q, c, want)
		}
	}
	// Strict parsing.
	for _, bad := range []any{map[string]any{"eventType": "GET", "applicationId": appID, "eventTime": "2026-01-01T00:00:00Z", "provisioningState": "Succeeded"},
		map[string]any{"eventType": "PUT", "applicationId": "/subscriptions/x", "eventTime": "2026-01-01T00:00:00Z", "provisioningState": "Succeeded"},
		map[string]any{"eventType": "PUT", "applicationId": appID, "eventTime": "yesterday", "provisioningState": "Succeeded"},
		map[string]any{"eventType": "PUT", "applicationId": appID, "eventTime": "2026-01-01T00:00:00Z", "provisioningState": "Succeeded", "extra": 1}} {
		if c, _ := w.post(t, "?sig="+sig, bad); c != 400 {
			t.Errorf("%v: %d", bad, c)
		}
	}
	// A stale event (older than the last applied) does nothing.
	stale := map[string]any{"eventType": "DELETE", "applicationId": appID, "provisioningState": "Deleted",
		"eventTime": in.LastEventTime.Add(-time.Minute).Format(time.RFC3339Nano)}
	if c, body := w.post(t, "?sig="+sig, stale); c != 200 || !strings.Contains(body, "stale") {
		t.Errorf("stale: %d %s", c, body)
	}
	if w.installation(t, b, appID).Status != "registered" {
		t.Fatal("a stale Deleted deprovisioned")
	}

	// Rotation: nothing yet; 61 days on (30 before the 90-day expiry) a
	// new secret is in the vault while the old one still works; after the
	// grace period the old one is removed.
	res, err := b.Rotate(ctx)
	must(t, err)
	if len(res.Rotated) != 0 {
		t.Fatalf("rotated too early %+v", res)
	}
	clockMu.Lock()
	clock = clock.Add(61 * 24 * time.Hour)
	clockMu.Unlock()
	res, err = b.Rotate(ctx)
	must(t, err)
	if len(res.Rotated) != 1 || len(res.Retired) != 0 {
		t.Fatalf("rotate %+v", res)
	}
	newSecret := w.vaultSecrets(t, appID)[publisher.DefaultSecretName]
	if newSecret == secret || newSecret == "" {
		t.Fatal("the vault does not hold the new secret")
	}
	rotated := w.installation(t, b, appID)
	if len(rotated.Passwords) != 2 || rotated.Passwords[0].RetireAt.IsZero() || !rotated.Passwords[0].RetireAt.Before(rotated.Passwords[0].Expires) {
		t.Fatalf("passwords after rotation %+v", rotated.Passwords)
	}
	must(t, useSecret(newSecret))
	must(t, useSecret(secret)) // still valid during the grace period
	clockMu.Lock()
	clock = clock.Add(8 * 24 * time.Hour)
	clockMu.Unlock()
	res, err = b.Rotate(ctx)
	must(t, err)
	if len(res.Rotated) != 0 || len(res.Retired) != 1 {
		t.Fatalf("retire %+v", res)
	}
	app, err = w.graph.GetApplication(ctx, in.AppObjectID)
	must(t, err)
	if len(app.PasswordCredentials) != 1 || app.PasswordCredentials[0].KeyID != w.installation(t, b, appID).Passwords[0].KeyID {
		t.Fatalf("passwords after retirement %+v", app.PasswordCredentials)
	}
	if useSecret(secret) == nil {
		t.Error("the retired secret still works")
	}
	must(t, useSecret(newSecret))

	// The state survives a restart: a new broker on the same file knows
	// the installation.
	b = w.broker(t, now)
	if got := w.installation(t, b, appID); got.Status != "registered" || got.AppObjectID != in.AppObjectID {
		t.Fatalf("after restart %+v", got)
	}

	// Delete: Deleting, Deleted → everything the publisher created is gone.
	if c, _ := w.arm(t, w.custCred, "DELETE", appID, nil); c != 200 {
		t.Fatalf("delete %d", c)
	}
	waitFor(t, "deprovisioning", func() bool { return w.installation(t, b, appID).Status == "deleted" })
	if _, err := w.graph.GetApplication(ctx, in.AppObjectID); !azclient.IsNotFound(err) {
		t.Errorf("application survived: %v", err)
	}
	if _, err := w.graph.GetServicePrincipal(ctx, in.SPObjectID); !azclient.IsNotFound(err) {
		t.Errorf("service principal survived: %v", err)
	}
	if w.isMember(t, in.SPObjectID) {
		t.Error("group membership survived")
	}
	if useSecret(newSecret) == nil {
		t.Error("the delivered secret still works")
	}
	// A replayed old Succeeded does not revive it.
	if c, body := w.post(t, "?sig="+sig, ev); c != 200 || !strings.Contains(body, "stale") {
		t.Errorf("replay after delete: %d %s", c, body)
	}
	if w.installation(t, b, appID).Status != "deleted" {
		t.Error("revived")
	}
}

// TestGroupFailureIsLoud: a group the broker cannot add to fails the
// registration with a logged error and a 503 (so the sender retries); the
// retry resumes at that step once the group is fixed.
func TestGroupFailureIsLoud(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	realGroup := w.groupID
	w.groupID = "00000000-0000-0000-0000-00000000dead"
	b := w.broker(t, nil)
	w.publish(t, "broker-offer", publisher.ModeSecret)
	appID, _ := w.install(t, "broker-offer", "grp1")
	waitFor(t, "a failed attempt", func() bool {
		in := w.installation(t, b, appID)
		return in != nil && in.SPObjectID != "" && strings.Contains(w.logs.String(), "could not add")
	})
	in := w.installation(t, b, appID)
	if in.Status != "registering" || in.InGroup {
		t.Fatalf("after failure %+v", in)
	}
	ev := map[string]any{"eventType": "PUT", "applicationId": appID, "provisioningState": "Succeeded",
		"eventTime": time.Now().UTC().Format(time.RFC3339Nano), "plan": map[string]any{"name": "standard", "publisher": w.pub.Domain, "product": "broker-offer", "version": "1.0.0"}}
	if c, _ := w.post(t, "?sig="+sig, ev); c != http.StatusServiceUnavailable {
		t.Errorf("failure answered %d", c)
	}
	// Fixed: the next attempt resumes with the same application.
	w.groupID = realGroup
	b = w.broker(t, nil)
	if c, body := w.post(t, "?sig="+sig, ev); c != 200 {
		t.Fatalf("retry %d %s", c, body)
	}
	got := w.installation(t, b, appID)
	if got.Status != "registered" || got.AppObjectID != in.AppObjectID || !w.isMember(t, got.SPObjectID) {
		t.Fatalf("resumed %+v", got)
	}
	apps, err := w.graph.ListApplications(ctx, "displayName eq "+azclient.ODataString(got.DisplayName))
	must(t, err)
	if len(apps) != 1 {
		t.Errorf("%d applications", len(apps))
	}
}
