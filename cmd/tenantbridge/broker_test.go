package main

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/broker/publisher"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/server"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

const brokerTestPassword = "Partner-Admin-Pass-9"

// testCloud is a cloud served in-process on a data directory, with its
// operator credential read.
type testCloud struct {
	srv  *server.Server
	cred azclient.OperatorCredential
	op   *azclient.Operator
	stop func() // stops the server; also at the test's end
}

// startCloud serves a cloud on dir in-process and creates the tenants named.
func startCloud(t *testing.T, ctx context.Context, dir string, tenants ...string) (*testCloud, []*azclient.Tenant) {
	t.Helper()
	srv, err := server.New(ctx, server.Config{DataDir: dir, Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	c := &testCloud{srv: srv, stop: sync.OnceFunc(func() { cancel(); <-done })}
	t.Cleanup(c.stop)
	if c.cred, err = azclient.ReadOperatorCredential(srv.OperatorFile()); err != nil {
		t.Fatal(err)
	}
	if c.op, err = azclient.NewOperatorFromCredential(c.cred); err != nil {
		t.Fatal(err)
	}
	var created []*azclient.Tenant
	for _, name := range tenants {
		ten, err := c.op.CreateTenant(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		created = append(created, ten)
	}
	return c, created
}

// freeAddr is a local address no one listens on, for broker serve.
func freeAddr(t *testing.T) string {
	t.Helper()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer free.Close()
	return free.Addr().String()
}

// TestBrokerPartnerCommands runs the broker as an operator would: broker
// serve for the consent page, then broker partner token, status and
// refresh, configured by the environment, with the broker's managed
// identity as its only credential (for the vault, and as the federated
// credential of its application).
func TestBrokerPartnerCommands(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cloud, tenants := startCloud(t, ctx, dir, "csp")
	srv, cred, ten := cloud.srv, cloud.cred, tenants[0]
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	local, err := cred.Local()
	must(err)
	transport, err := local.Transport()
	must(err)
	hc := &http.Client{Transport: transport, Timeout: time.Minute}
	tid := ten.TenantID

	// Cloud-side setup: the partner admin, the broker's app, identity and vault.
	d := srv.Directory()
	admin, err := d.CreateUser(ctx, tid, directory.NewUser{UserPrincipalName: "admin@csp.onmicrosoft.com", DisplayName: "CSP admin",
		Password: brokerTestPassword, AccountEnabled: true})
	must(err)
	must(d.AssignDirectoryRole(ctx, tid, admin.ID, directory.RoleGlobalAdministrator))
	_, totp, err := d.EnrollTOTP(ctx, tid, admin.ID)
	must(err)
	brokerAddr := freeAddr(t)
	app, err := d.CreateApplication(ctx, tid, directory.Application{DisplayName: "CSP Broker", SignInAudience: directory.AudienceMultipleOrgs,
		WebRedirectURIs: []string{"http://" + brokerAddr + "/callback"},
		RequiredResourceAccess: []directory.RequiredResourceAccess{{ResourceAppID: directory.GraphAppID, ResourceAccess: []directory.ResourceAccess{
			{ID: "e1fe6dd8-ba31-4d61-89e7-88639da4683d", Type: "Scope"}}}}})
	must(err)
	_, err = d.CreateServicePrincipal(ctx, tid, app.AppID)
	must(err)
	mi, err := d.CreateUserAssignedIdentity(ctx, tid, "broker", "broker")
	must(err)
	_, header, err := d.CreateWorkload(ctx, tid, "broker", "broker", false, []string{mi.ID})
	must(err)
	endpoint, err := cred.IdentityEndpoint(tid)
	must(err)
	t.Setenv("IDENTITY_ENDPOINT", endpoint) // azidentity reads these from the process environment
	t.Setenv("IDENTITY_HEADER", header)
	miCred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ClientOptions: azcore.ClientOptions{Transport: hc}, ID: azidentity.ClientID(mi.AppID)})
	must(err)
	xt, err := miCred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{directory.TokenExchangeAudience + "/.default"}})
	must(err)
	claims := claimsOf(t, xt.Token)
	_, err = d.AddFederatedCredential(ctx, tid, app.ID, directory.FederatedIdentityCredential{Name: "broker", Issuer: claims["iss"].(string),
		Subject: mi.ID, Audiences: []string{directory.TokenExchangeAudience}})
	must(err)
	v, err := srv.Vaults().CreateVault(ctx, vault.VaultSpec{TenantID: tid, Name: "csp-broker-kv", ResourceGroup: "broker"})
	must(err)
	for principal, role := range map[string]string{mi.ID: rbac.RoleKeyVaultSecretsOfficer, ten.Admin.ServicePrincipalID: rbac.RoleKeyVaultSecretsUser} {
		must(srv.Store().CreateRoleAssignment(ctx, store.RoleAssignment{TenantID: tid, ID: uuid.NewString(), Scope: v.ResourceID,
			RoleDefinitionID: role, PrincipalID: principal, PrincipalType: store.PrincipalServicePrincipal, CreatedOn: time.Now()}))
	}
	adminCred, err := azidentity.NewClientSecretCredential(tid, ten.Admin.ClientID, ten.Admin.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: policy.ClientOptions{Transport: hc}})
	must(err)
	kv, err := azsecrets.NewClient("https://csp-broker-kv.vault.azure.net", adminCred, &azsecrets.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: hc}})
	must(err)
	stored := func() (value, version string) {
		t.Helper()
		s, err := kv.GetSecret(ctx, "partner-refresh-token", "", nil)
		must(err)
		return *s.Value, s.ID.Version()
	}

	env := map[string]string{envBrokerClientID: app.AppID, envBrokerTenant: tid, envBrokerVaultURL: "https://csp-broker-kv.vault.azure.net",
		"AZURE_CLIENT_ID": mi.AppID}
	var outputs []string
	broker := func(args ...string) result {
		t.Helper()
		var out, errOut bytes.Buffer
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		code := run(cctx, append([]string{"--data", dir, "broker"}, args...), &out, &errOut, func(k string) string { return env[k] })
		r := result{out.String(), errOut.String(), code}
		outputs = append(outputs, r.stdout, r.stderr)
		return r
	}

	// Before consent: a clear refusal.
	if r := broker("partner", "token", "--audience", "https://graph.microsoft.com"); r.code == 0 || !strings.Contains(r.stderr, "no partner is connected") {
		t.Fatalf("token before consent: %d %s", r.code, r.stderr)
	}
	if r := broker("partner", "token"); r.code == 0 || !strings.Contains(r.stderr, "--audience") {
		t.Fatalf("token without an audience: %d %s", r.code, r.stderr)
	}

	// broker serve, and the partner admin connects through it.
	serveCtx, stopServe := context.WithCancel(ctx)
	var serveOut, serveErr lockedBuffer
	served := make(chan int, 1)
	go func() {
		served <- run(serveCtx, []string{"--data", dir, "broker", "serve", "--listen", brokerAddr, "--check-interval", "0"}, &serveOut, &serveErr,
			func(k string) string { return env[k] })
	}()
	defer func() {
		stopServe()
		if code := <-served; code != 0 {
			t.Errorf("broker serve exited %d: %s", code, serveErr.String())
		}
	}()
	base := "http://" + brokerAddr
	for i := 0; ; i++ {
		resp, err := http.Get(base + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i > 100 {
			t.Fatalf("broker serve is not listening: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	jar, _ := cookiejar.New(nil)
	b := &cliBrowser{t: t, c: &http.Client{Transport: transport, Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	p := b.get(base + "/connect")
	if strings.Contains(p.body, `name="username"`) {
		p = b.submit(p, url.Values{"username": {admin.UserPrincipalName}})
	}
	p = b.submit(p, url.Values{"password": {brokerTestPassword}})
	code, err := directory.TOTPCode(totp, time.Now())
	must(err)
	p = b.submit(p, url.Values{"otc": {code}})
	if strings.Contains(p.body, "Permissions requested") {
		p = b.submit(p, url.Values{"decision": {"accept"}})
	}
	if p.status != http.StatusOK || !strings.Contains(p.body, "Partner connected") {
		t.Fatalf("consent through broker serve: %d at %s\n%s", p.status, p.url, p.body)
	}
	rt0, v0 := stored()

	// token --audience, twice: a JWT for Graph, and a new version each time.
	prevRT, prevV := rt0, v0
	for i := range 2 {
		r := broker("partner", "token", "--audience", "https://graph.microsoft.com", "-o", "table")
		if r.code != 0 {
			t.Fatalf("token %d: exit %d %s", i, r.code, r.stderr)
		}
		if c := claimsOf(t, strings.TrimSpace(r.stdout)); c["aud"] != "https://graph.microsoft.com" || c["upn"] != admin.UserPrincipalName {
			t.Fatalf("token %d claims %v", i, c)
		}
		rt, ver := stored()
		if rt == prevRT || ver == prevV {
			t.Fatalf("token %d: the rotated refresh token was not written back", i)
		}
		prevRT, prevV = rt, ver
	}
	var tok brokerAccessToken
	if r := broker("partner", "token", "--scope", "https://graph.microsoft.com/User.Read", "-o", "json"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &tok) != nil ||
		tok.AccessToken == "" || tok.ExpiresOnTS <= time.Now().Unix() || tok.Tenant != tid || tok.User != admin.UserPrincipalName {
		t.Fatalf("token -o json: %d %s %s", r.code, r.stdout, r.stderr)
	}

	// status: fresh, then a warning (and a non-zero exit) once the token has
	// gone unused longer than --warn-after.
	var st struct {
		User, TenantID, Version, Warning string
		Expired                          bool
	}
	r := broker("partner", "status", "-o", "json")
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil || st.User != admin.UserPrincipalName || st.TenantID != tid || st.Warning != "" {
		t.Fatalf("status: %d %s %s", r.code, r.stdout, r.stderr)
	}
	time.Sleep(1100 * time.Millisecond)
	r = broker("partner", "status", "--warn-after", "1s")
	if r.code == 0 || !strings.Contains(r.stderr, "warning: the refresh token has gone unused") || !strings.Contains(r.stdout, admin.UserPrincipalName) {
		t.Fatalf("status of an idle token: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// refresh keeps it alive: a new version.
	_, before := stored()
	if r := broker("partner", "refresh"); r.code != 0 || !strings.Contains(r.stderr, "Refreshed") {
		t.Fatalf("refresh: %d %s", r.code, r.stderr)
	}
	if _, after := stored(); after == before {
		t.Fatal("refresh did not write a new version")
	}

	// The first refresh token is spent: the cloud refuses it with invalid_grant.
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {app.AppID}, "refresh_token": {rt0}, "scope": {"https://graph.microsoft.com/User.Read"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {xt.Token}}
	resp, err := hc.PostForm("https://login.microsoftonline.com/"+tid+"/oauth2/v2.0/token", form)
	must(err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "invalid_grant") {
		t.Fatalf("spent refresh token: %d %s", resp.StatusCode, body)
	}
	// The broker then says clearly that the family is revoked.
	if r := broker("partner", "token", "--audience", "https://graph.microsoft.com"); r.code == 0 || !strings.Contains(r.stderr, "AADSTS50173") ||
		!strings.Contains(r.stderr, "consent again") {
		t.Fatalf("token after reuse: %d %s", r.code, r.stderr)
	}

	// No refresh token in any output or log of the broker.
	current, _ := stored()
	outputs = append(outputs, serveOut.String(), serveErr.String())
	for _, o := range outputs {
		for _, rt := range []string{rt0, current} {
			if strings.Contains(o, rt) {
				t.Fatalf("a refresh token was printed: %s", o)
			}
		}
	}
}

// cliBrowser drives pages over HTTP with a cookie jar, following redirects.
type cliBrowser struct {
	t *testing.T
	c *http.Client
}

type cliPage struct {
	url    *url.URL
	status int
	body   string
}

func (b *cliBrowser) do(req *http.Request) cliPage {
	b.t.Helper()
	for range 10 {
		resp, err := b.c.Do(req)
		if err != nil {
			b.t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
			return cliPage{url: req.URL, status: resp.StatusCode, body: string(body)}
		}
		next, err := req.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			b.t.Fatal(err)
		}
		req, _ = http.NewRequest(http.MethodGet, next.String(), nil)
	}
	b.t.Fatal("too many redirects")
	return cliPage{}
}

func (b *cliBrowser) get(u string) cliPage {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

var (
	cliActionRE = regexp.MustCompile(`<form method="post"[^>]* action="([^"]+)"`)
	cliHiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

func (b *cliBrowser) submit(p cliPage, fields url.Values) cliPage {
	b.t.Helper()
	m := cliActionRE.FindStringSubmatch(p.body)
	if m == nil {
		b.t.Fatalf("no form on %s (%d): %s", p.url, p.status, p.body)
	}
	form := url.Values{}
	for _, h := range cliHiddenRE.FindAllStringSubmatch(p.body, -1) {
		form.Set(h[1], html.UnescapeString(h[2]))
	}
	for k, v := range fields {
		form[k] = v
	}
	action, err := p.url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		b.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, action.String(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// lockedBuffer is a bytes.Buffer safe for the goroutines of a server.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBrokerServePublisher runs broker serve as the publisher's
// managed-application broker only (no partner custody), configured by the
// environment: a customer installs the publisher's marketplace offer, the
// cloud's notifications reach broker serve, and the installation is
// registered (its record in the state file); a notification without the
// sig is refused; deleting the application deprovisions it.
func TestBrokerServePublisher(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cloud, tenants := startCloud(t, ctx, dir, "publisher", "customer")
	cred, pub, cust := cloud.cred, tenants[0], tenants[1]
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	local, err := cred.Local()
	must(err)
	opts, err := local.ClientOptions()
	must(err)
	hc := opts.Transport.(*http.Client)
	authority, err := cred.AuthorityURL()
	must(err)
	pubCred, err := azclient.NewClientSecretCredential(authority, pub.TenantID, pub.Admin.ClientID, pub.Admin.ClientSecret, opts)
	must(err)
	custCred, err := azclient.NewClientSecretCredential(authority, cust.TenantID, cust.Admin.ClientID, cust.Admin.ClientSecret, opts)
	must(err)
	graph, err := azclient.NewGraph(azclient.GraphEndpoint, pubCred, &opts)
	must(err)
	group, err := graph.CreateGroup(ctx, azclient.Group{DisplayName: "shared", MailNickname: "shared", SecurityEnabled: true})
	must(err)
	armCall := func(c azcore.TokenCredential, method, path string, body any) (int, string) {
		t.Helper()
		tok, err := c.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
		must(err)
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, "https://management.azure.com"+path+"?api-version="+testenv.ARMAPIVersion(path), bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		must(err)
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}

	// The publisher's vault: the registration call's bootstrap secret and
	// the broker's issuer key (Secrets Officer, Crypto Officer).
	sub := "/subscriptions/" + pub.SubscriptionID
	if c, body := armCall(pubCred, "PUT", sub+"/resourceGroups/offers", map[string]any{"location": "westeurope"}); c/100 != 2 {
		t.Fatalf("%d %s", c, body)
	}
	kvID := sub + "/resourceGroups/offers/providers/Microsoft.KeyVault/vaults/pubboot"
	if c, body := armCall(pubCred, "PUT", kvID, map[string]any{"location": "westeurope", "properties": map[string]any{
		"tenantId": pub.TenantID, "sku": map[string]any{"family": "A", "name": "standard"}}}); c/100 != 2 {
		t.Fatalf("vault %d %s", c, body)
	}
	if c, body := armCall(pubCred, "PUT", kvID+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{
		"properties": map[string]any{"roleDefinitionId": sub + "/providers/Microsoft.Authorization/roleDefinitions/b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
			"principalId": pub.Admin.ServicePrincipalID, "principalType": "ServicePrincipal"}}); c/100 != 2 {
		t.Fatalf("role %d %s", c, body)
	}
	if c, body := armCall(pubCred, "PUT", kvID+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{
		"properties": map[string]any{"roleDefinitionId": sub + "/providers/Microsoft.Authorization/roleDefinitions/" + roleCryptoOfficer,
			"principalId": pub.Admin.ServicePrincipalID, "principalType": "ServicePrincipal"}}); c/100 != 2 {
		t.Fatalf("role %d %s", c, body)
	}

	brokerAddr := freeAddr(t)
	const sig = "cli-n0tif-s3cret"
	state := filepath.Join(t.TempDir(), "publisher.json")
	env := map[string]string{envPublisherTenant: pub.TenantID, envPublisherGroup: group.ID, envPublisherSig: sig,
		envPublisherClientID: pub.Admin.ClientID, envPublisherClientSecret: pub.Admin.ClientSecret,
		envPublisherSubscriptions: pub.SubscriptionID, envPublisherState: state, envPublisherBootstrap: "cli-b00tstrap",
		// The issuer's public URL: in production behind a TLS front end.
		envPublisherVaultURL: "https://pubboot.vault.azure.net", envPublisherIssuerURL: "https://" + brokerAddr + "/oidc"}
	serveCtx, stopServe := context.WithCancel(ctx)
	var serveOut, serveErr lockedBuffer
	served := make(chan int, 1)
	go func() {
		served <- run(serveCtx, []string{"--data", dir, "broker", "serve", "--listen", brokerAddr, "--log-level", "debug"}, &serveOut, &serveErr,
			func(k string) string { return env[k] })
	}()
	defer func() {
		stopServe()
		if code := <-served; code != 0 {
			t.Errorf("broker serve exited %d: %s", code, serveErr.String())
		}
	}()
	hook := "http://" + brokerAddr + "/managedapp"
	for i := 0; ; i++ {
		resp, err := http.Post(hook+"/resource", "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("no sig: %d", resp.StatusCode)
			}
			break
		}
		if i > 200 {
			t.Fatalf("broker serve is not listening: %v %s", err, serveErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The broker's issuer, on its listener (the front end adds TLS).
	if resp, err := http.Get("http://" + brokerAddr + "/oidc/.well-known/openid-configuration"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the issuer's discovery: %v %v", resp, err)
	} else {
		var doc map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if doc["issuer"] != env[envPublisherIssuerURL] || doc["jwks_uri"] != env[envPublisherIssuerURL]+"/keys" {
			t.Errorf("discovery %v", doc)
		}
	}

	// The publisher's offer, its notifications to broker serve.
	kv, err := azsecrets.NewClient("https://pubboot.vault.azure.net", pubCred, &azsecrets.ClientOptions{ClientOptions: opts})
	must(err)
	bootstrap := env[envPublisherBootstrap]
	_, err = kv.SetSecret(ctx, "BootstrapSecret", azsecrets.SetSecretParameters{Value: &bootstrap}, nil)
	must(err)
	def := sub + "/resourceGroups/offers/providers/Microsoft.Solutions/applicationDefinitions/srb"
	if c, body := armCall(pubCred, "PUT", def, map[string]any{"location": "westeurope", "properties": map[string]any{
		"lockLevel":          "ReadOnly",
		"authorizations":     []any{map[string]any{"principalId": pub.Admin.ServicePrincipalID, "roleDefinitionId": "b24988ac-6180-42a0-ab88-20f7382dd24c"}},
		"notificationPolicy": map[string]any{"notificationEndpoints": []any{map[string]any{"uri": hook + "?sig=" + sig}}},
		"deploymentSpec": map[string]any{"vaults": []any{map[string]any{"name": "kv{uniqueSuffix}"}},
			"roleAssignments": []any{map[string]any{"role": "Key Vault Secrets Officer", "principal": "applicationIdentity", "scope": "vault:kv{uniqueSuffix}"}},
			"registration": map[string]any{"endpoint": hook + "/register", "credentialMode": "federated", "vault": "kv{uniqueSuffix}",
				"bootstrapSecret": "https://pubboot.vault.azure.net/secrets/BootstrapSecret"}}}}); c/100 != 2 {
		t.Fatalf("definition %d %s", c, body)
	}
	// The operator puts it on sale (Partner Center's job in Azure).
	var pubOut, pubErr bytes.Buffer
	if code := run(ctx, []string{"--data", dir, "-o", "json", "marketplace", "offer", "publish", "--definition-id", def}, &pubOut, &pubErr, func(string) string { return "" }); code != 0 {
		t.Fatalf("marketplace offer publish: %d %s", code, pubErr.String())
	}
	var offer azclient.MarketplaceOffer
	if err := json.Unmarshal(pubOut.Bytes(), &offer); err != nil || offer.Offer != "srb" || offer.Publisher != pub.Domain || !strings.EqualFold(offer.ApplicationDefinitionID, def) {
		t.Fatalf("marketplace offer publish printed %s (%v)", pubOut.String(), err)
	}
	csub := "/subscriptions/" + cust.SubscriptionID
	armCall(custCred, "PUT", csub+"/resourceGroups/apps", map[string]any{"location": "westeurope"})
	appID := csub + "/resourceGroups/apps/providers/Microsoft.Solutions/applications/srb1"
	if c, body := armCall(custCred, "PUT", appID, map[string]any{"location": "westeurope", "kind": "MarketPlace",
		"plan":       map[string]any{"name": "standard", "publisher": pub.Domain, "product": "srb", "version": "1"},
		"identity":   map[string]any{"type": "SystemAssigned"},
		"properties": map[string]any{"managedResourceGroupId": csub + "/resourceGroups/mrg-srb1"}}); c/100 != 2 {
		t.Fatalf("install %d %s", c, body)
	}
	store, err := publisher.NewFileStore(state)
	must(err)
	waitStatus := func(want string) *publisher.Installation {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			in, err := store.Get(ctx, publisher.NormalizeID(appID))
			must(err)
			if in != nil && in.Status == want {
				return in
			}
			if time.Now().After(deadline) {
				t.Fatalf("installation not %s: %+v\n%s", want, in, serveErr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	in := waitStatus("registered")
	if in.FederatedCredID == "" || in.CustomerTenantID != cust.TenantID {
		t.Errorf("registered %+v", in)
	}
	if fics, err := graph.ListFederatedCredentials(ctx, in.AppObjectID); err != nil || len(fics) != 1 || fics[0].Issuer != env[envPublisherIssuerURL] {
		t.Errorf("federated credentials %+v %v", fics, err)
	}
	if resp, err := http.Post(hook+"/resource?sig=wrong", "application/json", strings.NewReader("{}")); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("wrong sig: %v %v", resp, err)
	}
	// The registration endpoint: the bootstrap secret from the environment.
	register := func(secret string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, hook+"/register", strings.NewReader(`{"applicationId":"`+appID+`","plan":{"name":"standard","publisher":"`+pub.Domain+`","product":"srb","version":"1"}}`))
		req.Header.Set("Authorization", "Bootstrap "+secret)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		must(err)
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	if c, body := register("wrong"); c != http.StatusUnauthorized {
		t.Errorf("wrong bootstrap secret: %d %s", c, body)
	}
	if c, body := register("cli-b00tstrap"); c != http.StatusOK || !strings.Contains(body, `"clientId":"`+in.ClientID+`"`) {
		t.Errorf("registration call: %d %s", c, body)
	}
	if c, body := armCall(custCred, "DELETE", appID, nil); c != 200 {
		t.Fatalf("delete %d %s", c, body)
	}
	waitStatus("deleted")
	if _, err := graph.GetApplication(ctx, in.AppObjectID); !azclient.IsNotFound(err) {
		t.Errorf("the installation's application survived: %v", err)
	}
}

// TestServeRunsTheBroker: serve --broker-listen runs the cloud and the
// publisher's broker in one process; the broker reaches the cloud through
// the wire APIs and answers notifications at its own address.
func TestServeRunsTheBroker(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// The publisher tenant and its shared-resources group exist before.
	cloud, tenants := startCloud(t, ctx, dir, "publisher")
	pub := tenants[0]
	cloud.stop()

	brokerAddr := freeAddr(t)
	env := map[string]string{envPublisherTenant: pub.TenantID, envPublisherGroup: "00000000-0000-0000-0000-000000000001",
		envPublisherSig: "serve-s3cret", envPublisherClientID: pub.Admin.ClientID, envPublisherClientSecret: pub.Admin.ClientSecret,
		envPublisherSubscriptions: pub.SubscriptionID, envPublisherState: filepath.Join(t.TempDir(), "state.json")}
	serveCtx, stopServe := context.WithCancel(ctx)
	var out, errOut lockedBuffer
	served := make(chan int, 1)
	go func() {
		served <- run(serveCtx, []string{"--data", dir, "serve", "--listen", "127.0.0.1:0", "--amqp-listen", "127.0.0.1:0", "--broker-listen", brokerAddr, "--log-level", "error"},
			&out, &errOut, func(k string) string { return env[k] })
	}()
	hook := "http://" + brokerAddr + "/managedapp/resource"
	for i := 0; ; i++ {
		resp, err := http.Post(hook+"?sig=wrong", "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("wrong sig: %d", resp.StatusCode)
			}
			break
		}
		if i > 300 {
			t.Fatalf("the broker is not listening: %v %s", err, errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "tenantbridge is serving on") {
		t.Fatalf("serve output: %s", out.String())
	}
	stopServe()
	if code := <-served; code != 0 {
		t.Fatalf("serve exited %d: %s", code, errOut.String())
	}
}
