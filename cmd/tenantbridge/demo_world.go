package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/server"
)

// Built-in role definition ids the scenarios assign.
const (
	roleContributor         = "b24988ac-6180-42a0-ab88-20f7382dd24c"
	roleKVSecretsUser       = "4633458b-17de-408a-b874-0445c86b69e6"
	roleKVSecretsOfficer    = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
	roleBusSender           = "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"
	roleBusReceiver         = "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"
	roleBusOwner            = "090c5cfd-751d-490a-894a-3ce6f1109419"
	graphUserReadAllRole    = "df021288-bdef-4463-88db-98f22de89214" // User.Read.All (application)
	graphUserReadScope      = "e1fe6dd8-ba31-4d61-89e7-88639da4683d" // User.Read (delegated)
	armBase                 = "https://management.azure.com"
	tokenExchangeScope      = "api://AzureADTokenExchange/.default"
	demoLocation            = "westeurope"
	demoStepTimeout         = 20 * time.Second
	demoRoleAPIVersion      = "2022-04-01"
	demoGroupAPIVersion     = "2021-04-01"
	demoVaultAPIVersion     = "2023-07-01"
	demoBusAPIVersion       = "2022-10-01-preview"
	demoManagedAppAPIVer    = "2021-07-01"
	demoIdentityAPIVersion  = "2023-01-31"
	demoKeyVaultDataVersion = "7.5"
)

// actor is a tenant of the demo's world and its administrators: the
// bootstrap admin application (for Graph and Resource Manager) and a
// human Global Administrator with a password and TOTP (for the sign-in
// pages).
type actor struct {
	*azclient.Tenant
	role     string
	cred     azcore.TokenCredential
	graph    *azclient.Graph
	upn      string
	password string
	totp     string
	totpURL  string // otpauth://, what an authenticator app takes
}

func (a *actor) sub() string { return "/subscriptions/" + a.SubscriptionID }

// world is the running cloud, seen as its operator and tenants see it.
type world struct {
	d         *scenarioDemo
	srv       *server.Server
	op        *azclient.Operator
	opcred    azclient.OperatorCredential
	opts      policy.ClientOptions
	tr        *http.Transport
	hc        *http.Client
	authority string
	suffix    string // random, for globally named resources
}

// newSecret returns a random string that never appears in the narration.
func (d *scenarioDemo) newSecret(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	s := prefix + hex.EncodeToString(b)
	d.secret(s)
	return s
}

// secret remembers a value that must never be printed.
func (d *scenarioDemo) secret(s string) {
	if len(s) < 8 {
		return
	}
	d.mu.Lock()
	d.secrets = append(d.secrets, s)
	d.mu.Unlock()
}

func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// newActor creates a tenant through the operator API and a Global
// Administrator with a password and TOTP, as ad user create --role and ad
// user mfa enable do: Graph creates the user and assigns the directory
// role; the TOTP enrolment is the operator API's (Graph has no call that
// creates an authenticator).
func (d *scenarioDemo) newActor(ctx context.Context, base, role string) (*actor, error) {
	name := base
	var t *azclient.Tenant
	for range 5 {
		var err error
		t, err = d.w.op.CreateTenant(ctx, name)
		var re *azclient.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusConflict {
			n, _ := rand.Int(rand.Reader, big.NewInt(9000))
			name = base + strconv.Itoa(1000+int(n.Int64()))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("creating the %s tenant: %w", role, err)
		}
		if t.Admin == nil || t.Admin.ClientSecret == "" {
			return nil, fmt.Errorf("tenant %s has no admin credential", t.Name)
		}
		break
	}
	if t == nil || t.Admin == nil {
		return nil, fmt.Errorf("creating the %s tenant: names are taken", role)
	}
	d.secret(t.Admin.ClientSecret)
	if err := d.c.saveProfile(profileOf(t)); err != nil {
		return nil, err
	}
	a := &actor{Tenant: t, role: role}
	var err error
	if a.cred, err = azclient.NewClientSecretCredential(d.w.authority, t.TenantID, t.Admin.ClientID, t.Admin.ClientSecret, d.w.opts); err != nil {
		return nil, err
	}
	if a.graph, err = azclient.NewGraph(azclient.GraphEndpoint, a.cred, &d.w.opts); err != nil {
		return nil, err
	}
	a.upn = "admin@" + t.Domain
	a.password = d.newSecret("Pw-9")
	u, err := a.graph.CreateUser(ctx, azclient.User{DisplayName: t.Name + " admin", UserPrincipalName: a.upn,
		MailNickname: "admin", AccountEnabled: new(true), PasswordProfile: &azclient.PasswordProfile{Password: a.password}})
	if err != nil {
		return nil, fmt.Errorf("creating %s's administrator: %s", t.Name, azclient.Describe(err))
	}
	if _, err := a.graph.AssignDirectoryRole(ctx, u.ID, directory.RoleGlobalAdministrator); err != nil {
		return nil, fmt.Errorf("making %s Global Administrator: %s", a.upn, azclient.Describe(err))
	}
	auth, err := d.w.op.EnrollAuthenticator(ctx, t.TenantID, u.ID, false)
	if err != nil {
		return nil, fmt.Errorf("enrolling %s's authenticator: %s", a.upn, azclient.Describe(err))
	}
	a.totpURL, a.totp = auth.OtpauthURI, auth.Secret
	d.secret(a.totp)
	d.names[t.TenantID] = t.Name
	d.names[t.Admin.ServicePrincipalID] = t.Name + " admin app"
	d.names[t.Admin.ClientID] = t.Name + " admin app"
	d.names[u.ID] = a.upn
	d.printf("  %-9s %-10s tenant %s  (admin app; Global Administrator %s with password + TOTP)\n", role, t.Name, t.TenantID, a.upn)
	return a, nil
}

// wireError is a non-2xx answer of a wire API.
type wireError struct {
	Status  int
	Code    string
	Message string
	Header  http.Header
}

func (e *wireError) Error() string {
	msg := e.Message
	if i := strings.Index(msg, ". "); i > 0 {
		msg = msg[:i+1]
	}
	if e.Code != "" {
		return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, msg)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Status, msg)
}

func statusOf(err error) int {
	var we *wireError
	if errors.As(err, &we) {
		return we.Status
	}
	return 0
}

// bearer sends one request with a bearer token and decodes a JSON answer.
func (d *scenarioDemo) bearer(ctx context.Context, token, method, u string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, demoStepTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.w.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode/100 != 2 {
		var doc struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(raw, &doc)
		msg := doc.Error.Message
		if msg == "" {
			msg = strings.TrimSpace(string(raw))
		}
		return resp.StatusCode, &wireError{Status: resp.StatusCode, Code: doc.Error.Code, Message: msg, Header: resp.Header}
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w", method, u, err)
		}
	}
	return resp.StatusCode, nil
}

// call is bearer with a token of cred for scope.
func (d *scenarioDemo) call(ctx context.Context, cred azcore.TokenCredential, scope, method, u string, body, out any) (int, error) {
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		return 0, errors.New(azclient.Describe(err))
	}
	return d.bearer(ctx, tok.Token, method, u, body, out)
}

// arm calls Resource Manager; path may carry its own api-version.
func (d *scenarioDemo) arm(ctx context.Context, cred azcore.TokenCredential, method, path, apiVersion string, body, out any) (int, error) {
	u := armBase + path
	if !strings.Contains(path, "api-version=") {
		u += "?api-version=" + apiVersion
	}
	return d.call(ctx, cred, armScope, method, u, body, out)
}

// assign gives principal a built-in role at scope, as cred (an owner of it).
func (d *scenarioDemo) assign(ctx context.Context, cred azcore.TokenCredential, sub, scope, role, principal string) error {
	return d.assignAs(ctx, cred, sub, scope, role, principal, "ServicePrincipal")
}

// assignAs is assign for a principal of type ptype (User, Group, ServicePrincipal).
func (d *scenarioDemo) assignAs(ctx context.Context, cred azcore.TokenCredential, sub, scope, role, principal, ptype string) error {
	id := scope + "/providers/Microsoft.Authorization/roleAssignments/" + newUUID()
	body := map[string]any{"properties": map[string]any{
		"roleDefinitionId": sub + "/providers/Microsoft.Authorization/roleDefinitions/" + role,
		"principalId":      principal, "principalType": ptype}}
	if _, err := d.arm(ctx, cred, http.MethodPut, id, demoRoleAPIVersion, body, nil); err != nil {
		return fmt.Errorf("assigning role %s at %s: %w", role, scope, err)
	}
	return nil
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// createGroup creates a resource group.
func (d *scenarioDemo) createGroup(ctx context.Context, a *actor, name string) (string, error) {
	rg := a.sub() + "/resourceGroups/" + name
	_, err := d.arm(ctx, a.cred, http.MethodPut, rg, demoGroupAPIVersion, map[string]any{"location": demoLocation}, nil)
	return rg, err
}

// createVault creates a vault (RBAC mode) in a's resource group rg and
// makes a's admin app its Secrets Officer.
func (d *scenarioDemo) createVault(ctx context.Context, a *actor, rg, name string) (string, error) {
	id := rg + "/providers/Microsoft.KeyVault/vaults/" + name
	props := map[string]any{"tenantId": a.TenantID, "sku": map[string]string{"family": "A", "name": "standard"}, "enableRbacAuthorization": true}
	if _, err := d.arm(ctx, a.cred, http.MethodPut, id, demoVaultAPIVersion, map[string]any{"location": demoLocation, "properties": props}, nil); err != nil {
		return "", fmt.Errorf("creating vault %s: %w", name, err)
	}
	return id, d.assign(ctx, a.cred, a.sub(), id, roleKVSecretsOfficer, a.Admin.ServicePrincipalID)
}

// vaultClient is a Key Vault client for https://{name}.vault.azure.net.
func (d *scenarioDemo) vaultClient(name string, cred azcore.TokenCredential) (*azsecrets.Client, error) {
	return azsecrets.NewClient("https://"+name+".vault.azure.net", cred, &azsecrets.ClientOptions{ClientOptions: d.w.opts})
}

// secretNames lists the names of a vault's secrets.
func secretNames(ctx context.Context, kv *azsecrets.Client) ([]string, error) {
	var names []string
	pager := kv.NewListSecretPropertiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range page.Value {
			names = append(names, p.ID.Name())
		}
	}
	return names, nil
}

// staticToken is a credential that always presents one token.
type staticToken string

func (s staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(s), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// identityCredential is a managed identity's credential: the App Service
// identity endpoint protocol (IDENTITY_ENDPOINT and IDENTITY_HEADER), which
// azidentity.ManagedIdentityCredential speaks; spelled out here so that
// several workloads of several tenants run in one process without sharing
// the environment.
type identityCredential struct {
	d        *scenarioDemo
	endpoint string
	header   string
	clientID string
}

func (c *identityCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if len(opts.Scopes) != 1 {
		return azcore.AccessToken{}, errors.New("identity credential: exactly one scope")
	}
	q := url.Values{"api-version": {"2019-08-01"}, "resource": {strings.TrimSuffix(opts.Scopes[0], "/.default")}}
	if c.clientID != "" {
		q.Set("client_id", c.clientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint+"?"+q.Encode(), nil)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	req.Header.Set("X-IDENTITY-HEADER", c.header)
	resp, err := c.d.w.hc.Do(req)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresOn   string `json:"expires_on"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &out) != nil || out.AccessToken == "" {
		return azcore.AccessToken{}, fmt.Errorf("identity endpoint: HTTP %d %s", resp.StatusCode, oneLineText(string(raw)))
	}
	c.d.secret(out.AccessToken)
	exp, _ := strconv.ParseInt(out.ExpiresOn, 10, 64)
	return azcore.AccessToken{Token: out.AccessToken, ExpiresOn: time.Unix(exp, 0)}, nil
}

func oneLineText(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// workloadIdentity creates a user-assigned identity and a workload running
// as it (operator API), and returns the identity and its credential.
func (d *scenarioDemo) workloadIdentity(ctx context.Context, a *actor, name string) (*azclient.Identity, azcore.TokenCredential, error) {
	id, err := d.w.op.CreateIdentity(ctx, a.TenantID, name, "")
	if err != nil {
		return nil, nil, fmt.Errorf("creating identity %s in %s: %w", name, a.Name, err)
	}
	wl, err := d.w.op.CreateWorkload(ctx, a.TenantID, azclient.NewWorkload{Name: name, Identities: []string{id.Name}})
	if err != nil {
		return nil, nil, fmt.Errorf("creating workload %s in %s: %w", name, a.Name, err)
	}
	d.secret(wl.IdentityHeader)
	endpoint, err := d.w.opcred.IdentityEndpoint(a.TenantID)
	if err != nil {
		return nil, nil, err
	}
	d.names[id.PrincipalID] = name + " (" + a.Name + "'s managed identity)"
	return id, &identityCredential{d: d, endpoint: endpoint, header: wl.IdentityHeader, clientID: id.ClientID}, nil
}

// browser drives the sign-in and consent pages over HTTP with a cookie
// jar, as a person's browser would, following redirects on the cloud's
// hosts and on the local broker pages; it stops at any other host (the
// redirect URI of an application) and returns that URL.
type browser struct {
	d     *scenarioDemo
	c     *http.Client
	local map[string]bool // hosts (host:port) of the demo's own brokers
}

type page struct {
	url    *url.URL
	status int
	body   string
}

func (d *scenarioDemo) newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{d: d, local: map[string]bool{}}
	for _, h := range d.localHosts {
		b.local[h] = true
	}
	b.c = &http.Client{Transport: d.w.tr, Jar: jar, Timeout: demoStepTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return b
}

func (b *browser) followable(u *url.URL) bool {
	return u.Host == "login.microsoftonline.com" || b.local[u.Host]
}

func (b *browser) do(req *http.Request) (page, error) {
	for range 10 {
		resp, err := b.c.Do(req)
		if err != nil {
			return page{}, err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
			return page{url: req.URL, status: resp.StatusCode, body: string(body)}, nil
		}
		next, err := req.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			return page{}, err
		}
		if !b.followable(next) {
			return page{url: next, status: resp.StatusCode}, nil
		}
		if req, err = http.NewRequest(http.MethodGet, next.String(), nil); err != nil {
			return page{}, err
		}
	}
	return page{}, errors.New("too many redirects")
}

func (b *browser) get(u string) (page, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return page{}, err
	}
	return b.do(req)
}

var (
	formActionRE  = regexp.MustCompile(`<form method="post"[^>]* action="([^"]+)"`)
	hiddenFieldRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// submit posts the page's form with its hidden fields plus fields.
func (b *browser) submit(p page, fields url.Values) (page, error) {
	m := formActionRE.FindStringSubmatch(p.body)
	if m == nil {
		return page{}, fmt.Errorf("no form on the page at %s (HTTP %d): %s", p.url.Redacted(), p.status, pageText(p.body))
	}
	form := url.Values{}
	for _, h := range hiddenFieldRE.FindAllStringSubmatch(p.body, -1) {
		form.Set(h[1], html.UnescapeString(h[2]))
	}
	for k, v := range fields {
		form[k] = v
	}
	action, err := p.url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		return page{}, err
	}
	req, err := http.NewRequest(http.MethodPost, action.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return page{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var tagRE = regexp.MustCompile(`<[^>]*>`)

// pageText is a page's visible text, on one line.
func pageText(body string) string {
	if i := strings.Index(body, "<body"); i >= 0 {
		body = body[i:]
	}
	return oneLineText(html.UnescapeString(tagRE.ReplaceAllString(body, " ")))
}

// signIn walks the sign-in pages from p as a: name, password, TOTP; it
// accepts the consent page if one comes. It narrates each page.
func (b *browser) signIn(p page, a *actor) (page, error) {
	var err error
	if strings.Contains(p.body, `name="username"`) {
		b.d.printf("      page %q: enters %s\n", "Sign in", a.upn)
		if p, err = b.submit(p, url.Values{"username": {a.upn}}); err != nil {
			return p, err
		}
	}
	if !strings.Contains(p.body, "Enter password") {
		return p, fmt.Errorf("expected the password page, got HTTP %d at %s: %s", p.status, p.url.Redacted(), pageText(p.body))
	}
	b.d.printf("      page %q: enters the password\n", "Enter password")
	if p, err = b.submit(p, url.Values{"password": {a.password}}); err != nil {
		return p, err
	}
	if !strings.Contains(p.body, "Enter code") {
		return p, fmt.Errorf("expected the MFA page, got HTTP %d at %s: %s", p.status, p.url.Redacted(), pageText(p.body))
	}
	code, err := directory.TOTPCode(a.totp, time.Now())
	if err != nil {
		return p, err
	}
	b.d.printf("      page %q: enters the authenticator's one-time code (MFA)\n", "Enter code")
	if p, err = b.submit(p, url.Values{"otc": {code}}); err != nil {
		return p, err
	}
	if strings.Contains(p.body, "Permissions requested") {
		b.d.printf("      page %q: reads who asks for what, and accepts\n", "Permissions requested")
		return b.submit(p, url.Values{"decision": {"accept"}})
	}
	return p, nil
}

// localServer serves h on a loopback port until the demo ends; it returns
// the base URL (http://127.0.0.1:PORT).
func (d *scenarioDemo) localServer(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.Serve(ln) }()
	d.onClose(func() { _ = s.Close() })
	d.localHosts = append(d.localHosts, ln.Addr().String())
	return "http://" + ln.Addr().String(), nil
}

// swapHandler is a handler set after its URL is known.
type swapHandler struct {
	mu sync.Mutex
	h  http.Handler
}

func (s *swapHandler) set(h http.Handler) { s.mu.Lock(); s.h = h; s.mu.Unlock() }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	h := s.h
	s.mu.Unlock()
	if h == nil {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	h.ServeHTTP(w, r)
}

// waitUntil polls cond until it is true or the step's time is up.
func waitUntil(ctx context.Context, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(demoStepTimeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", demoStepTimeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// claimsOf decodes a token's claims (unverified: for display).
func tokenClaims(tok string) map[string]any {
	c, err := azclient.UnverifiedClaims(tok)
	if err != nil {
		return map[string]any{}
	}
	return c
}

func claim(c map[string]any, name string) string {
	switch v := c[name].(type) {
	case string:
		return v
	case []any:
		var s []string
		for _, x := range v {
			s = append(s, fmt.Sprint(x))
		}
		return strings.Join(s, ",")
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}
