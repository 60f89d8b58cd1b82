package server_test

// The adversary (issue 11): per run, a world of three tenants built through
// the real server — A the attacker, B and C its victims — and hundreds of
// attempts by A's principals (its administrator application with Graph
// application permissions, ordinary users with passwords, multi-tenant
// applications it registers, a managed identity) to obtain or use any
// token, consent, credential or identifier that grants anything in B or C.
// Every attempt is checked against a model written here: nothing of a
// victim is reachable from A unless the victim's own principals granted it
// (its administrator, through Graph and Resource Manager; its user, for
// their own data, through the consent page), and those grants are modelled
// too, as are in-tenant controls, so the test fails both ways.
//
// The seed is random per run; TENANTBRIDGE_ADVERSARY_SEED=N replays one.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/server"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
)

// ---- Azure's names, written from Azure's documentation ----

const (
	advGraph    = "https://graph.microsoft.com"
	advARM      = "https://management.azure.com"
	advKV       = "https://vault.azure.net"
	advSB       = "https://servicebus.azure.net"
	advExchange = "api://AzureADTokenExchange"
	advLogin    = "https://login.microsoftonline.com"

	advGraphAppID = "00000003-0000-0000-c000-000000000000"
	advARMAppID   = "797f4846-ba00-4fd7-ba43-dac1f8f63013"
	advKVAppID    = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"
	advSBAppID    = "80369ed6-5f11-4dd9-bef3-692475845e77"

	advUserReadAllRole = "df021288-bdef-4463-88db-98f22de89214" // Graph application permission User.Read.All

	advRoleOwner          = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
	advRoleReader         = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
	advRoleSecretsOfficer = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
	advRoleSecretsUser    = "4633458b-17de-408a-b874-0445c86b69e6"
	advRoleSBOwner        = "090c5cfd-751d-490a-894a-3ce6f1109419"
	advRoleSBReceiver     = "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"

	advPassword = "Adv3rsary-Horse-Battery"
	advRedirect = "https://attacker.example/callback"
	advARMVer   = testenv.AnyARMVersion
	advKVVer    = "api-version=7.4"
)

// advSurfaces are the resource surfaces, each with the resource name a
// well-behaved client asks tokens for.
var advSurfaces = []string{"graph", "arm", "kv", "sb"}

var advCanon = map[string]string{"graph": advGraph, "arm": advARM, "kv": advKV, "sb": advSB}

// advAudKind says which surface an aud claim speaks for, by Azure's rules:
// each resource's identifier URIs (any case, trailing slashes ignored), its
// application id, and the per-vault and per-namespace resources.
func advAudKind(aud string) string {
	a := strings.ToLower(strings.TrimRight(aud, "/"))
	switch {
	case a == "https://graph.microsoft.com" || a == advGraphAppID:
		return "graph"
	case a == "https://management.azure.com" || a == "https://management.core.windows.net" || a == advARMAppID:
		return "arm"
	case a == "https://vault.azure.net" || a == advKVAppID || (strings.HasPrefix(a, "https://") && strings.HasSuffix(a, ".vault.azure.net")):
		return "kv"
	case a == "https://servicebus.azure.net" || a == advSBAppID || (strings.HasPrefix(a, "https://") && strings.HasSuffix(a, ".servicebus.windows.net")):
		return "sb"
	}
	return "other"
}

// advCanonical reports whether a resource name is one a well-behaved
// client uses for a first-party resource: its identifier URI in any case,
// with or without trailing slashes.
func advCanonical(name string) bool {
	switch strings.ToLower(strings.TrimRight(name, "/")) {
	case "https://graph.microsoft.com", "https://management.azure.com", "https://management.core.windows.net", "https://vault.azure.net", "https://servicebus.azure.net":
		return true
	}
	return false
}

// ---- the world ----

type advUser struct{ id, upn string }

type advApp struct {
	label                  string
	obj, appID, secret, sp string
	impostor               string // the identifier URI it tried to take, for impostors
	impKind                string // what the impostor pretends to be: a surface, "exchange" or "victim"
	registered             bool   // the impostor URI was accepted
	marker                 string // in its scope and role display names
	home                   int
	spIn                   map[int]bool // model: tenants holding its service principal
	v2                     bool         // requestedAccessTokenVersion 2
	roleID, apiURI         string
}

type advTenant struct {
	idx                                 int
	name                                string
	tc                                  tenantCreated
	tok                                 map[string]string // the admin's token per surface
	adminAppObj, graphSP                string
	rg, vault, vaultID, secret, value   string
	ns, nsID, queue, sasKey             string
	users                               [2]advUser // users[0] holds data roles, users[1] none
	group                               string
	api, multi                          *advApp // the tenant's own API (single-tenant) and a multi-tenant app
	miClientID, miID, miHeader, miIssue string
}

func (x *advTenant) sub() string { return "/subscriptions/" + x.tc.SubscriptionID }
func (x *advTenant) id() string  { return x.tc.TenantID }

// advToken is a token someone holds, with what the model lets it do.
type advToken struct {
	label   string
	raw     string
	holder  int    // tenant whose principals hold it (0: the attacker)
	tid     int    // tenant the token claims (index; -1 none of ours)
	kind    string // surface its aud speaks for
	origin  string // canonical, impostor, delegated, forged, admin
	allowed map[string]bool
}

// advTarget is one operation on one tenant's resource.
type advTarget struct {
	key       string
	tenant    int
	surface   string
	method    string
	url, body string
	marker    string // a success counts only if the body holds it (lists, reads)
	dup       string // an answer holding this means the operation was allowed (it had been done before)
	noControl bool   // the owner's admin cannot do it either (names a foreign principal)
}

type advWant int

const (
	advRefused advWant = iota // the model says no
	advGranted                // the model says yes: a control
	advEither                 // the model does not say (issuance the directory may legitimately refuse)
)

// advAttempt is one checked attempt.
type advAttempt struct {
	class   string // graph, arm, kv, sb, sts, signin, register, sas
	label   string
	cross   bool
	want    advWant
	got     bool
	hint    string // which mechanism a grant would be
	request string
	status  int
	body    string
}

type adv struct {
	t        *testing.T
	r        *running
	c        *http.Client
	rng      *rand.Rand
	seed     uint64
	ts       []*advTenant
	apps     []*advApp // the attacker's applications
	admin    *advApp   // A's bootstrap admin, as an app
	partner  *advApp
	loner    *advApp
	imps     []*advApp
	tokens   []*advToken
	targets  []*advTarget
	attempts []*advAttempt
	// model of legit grants
	appRoles   map[string][]string        // "{appID}|{tenant}|{surface}" → app roles granted
	delegated  map[string][]string        // "{appID}|{tenant}|{user}|{surface}" → scopes consented to first-party resources
	dataAccess map[string]map[string]bool // "{appID}|{tenant}|{surface}" → target keys allowed to an app-only token
	userAccess map[string]map[string]bool // "{user}|{surface}" → target keys the user may reach
	partnerT   int                        // the victim that granted A's partner app Graph's User.Read.All (and maybe a vault)
	bridgeT    int                        // the victim whose app trusts A's managed identity (-1: none)
	bridge     *advApp
	mallory    advUser
	nextID     uint64
	verbose    bool
}

// ---- HTTP ----

func (a *adv) send(method, u string, hdr map[string]string, body string) (int, string) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return -1, err.Error()
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := a.c.Do(req)
	if err != nil {
		return -1, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (a *adv) call(method, u, bearer, body string) (int, string) {
	u = testenv.WithARMVersion(u)
	hdr := map[string]string{}
	if bearer != "" {
		hdr["Authorization"] = "Bearer " + bearer
	}
	if body != "" {
		hdr["Content-Type"] = "application/json"
	}
	return a.send(method, u, hdr, body)
}

func (a *adv) form(u string, f url.Values) (int, string) {
	return a.send("POST", u, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, f.Encode())
}

// must is a setup step: it has to work.
type advResp struct {
	status int
	body   string
}

func (a *adv) req(method, u, bearer, body string) advResp {
	s, b := a.call(method, u, bearer, body)
	return advResp{s, b}
}

func (a *adv) must(what string, r advResp, want ...int) map[string]any {
	a.t.Helper()
	status, body := r.status, r.body
	if (len(want) == 0 && (status < 200 || status > 299)) || (len(want) > 0 && !slices.Contains(want, status)) {
		a.t.Fatalf("seed %d: setup: %s: %d %s", a.seed, what, status, clip(body, 800))
	}
	var m map[string]any
	_ = json.Unmarshal([]byte(body), &m)
	return m
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

func firstValue(m map[string]any) map[string]any {
	if vs, ok := m["value"].([]any); ok && len(vs) > 0 {
		v, _ := vs[0].(map[string]any)
		return v
	}
	return nil
}

// id makes a GUID from the seed, so that a replay names the same things.
func (a *adv) id() string {
	a.nextID++
	b := make([]byte, 16)
	for i := range b {
		b[i] = byte(a.rng.Uint32())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// tokenReq asks for a client-credentials token with a secret, at the v1 or v2 endpoint.
func (a *adv) tokenReq(tenant, clientID, secret, resource string, v1 bool) (string, int, string, string) {
	f := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}}
	u := advLogin + "/" + tenant + "/oauth2/v2.0/token"
	if v1 {
		u = advLogin + "/" + tenant + "/oauth2/token"
		f.Set("resource", resource)
	} else {
		f.Set("scope", resource+"/.default")
	}
	status, body := a.form(u, f)
	return accessToken(body), status, body, "POST " + u + " client_credentials client_id=" + clientID + " resource=" + resource
}

func accessToken(body string) string {
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal([]byte(body), &tr)
	return tr.AccessToken
}

// advClaims reads a JWT's payload without verifying it (the attacker's view).
func advClaims(raw string) map[string]any {
	parts := strings.Split(raw, ".")
	if len(parts) < 2 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func claimList(c map[string]any, k string) []string {
	switch v := c[k].(type) {
	case string:
		return strings.Fields(v)
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func (a *adv) tenantIndex(tid string) int {
	for i, x := range a.ts {
		if strings.EqualFold(x.id(), tid) {
			return i
		}
	}
	return -1
}

// ---- recording ----

func (a *adv) record(at *advAttempt) {
	at.body = clip(at.body, 700)
	if a.verbose && !strings.Contains(at.label, "→") {
		a.t.Logf("[%s] want=%d got=%v %s\n    %s\n    %d %s", at.class, at.want, at.got, at.label, at.request, at.status, clip(at.body, 300))
	}
	a.attempts = append(a.attempts, at)
}

// ---- the test ----

func TestAdversary(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TENANTBRIDGE_ADVERSARY_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("TENANTBRIDGE_ADVERSARY_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with TENANTBRIDGE_ADVERSARY_SEED=%d)", seed, seed)
	began := time.Now()
	r := start(t, server.Config{})
	a := &adv{t: t, r: r, c: r.client(), rng: rand.New(rand.NewPCG(seed, seed^0x5bd1e9955bd1e995)), seed: seed,
		appRoles: map[string][]string{}, delegated: map[string][]string{}, dataAccess: map[string]map[string]bool{},
		userAccess: map[string]map[string]bool{}, bridgeT: -1, verbose: os.Getenv("TENANTBRIDGE_ADVERSARY_VERBOSE") != ""}
	t.Cleanup(a.c.CloseIdleConnections)

	suffix := fmt.Sprintf("%04x", a.rng.Uint32()&0xffff)
	for i, n := range []string{"atk", "vica", "vicb"} {
		a.ts = append(a.ts, a.buildTenant(i, n+suffix))
	}
	a.buildAttacker()
	a.legitGrants()
	a.buildTargets()
	a.registrations()
	a.signIns()
	a.tokenService()
	a.forgeries()
	a.sas()
	a.matrix()
	a.report(time.Since(began))
}

// buildTenant creates a tenant and, through Graph and Resource Manager as
// its administrator, its users, group, applications, resource group,
// vault with a secret, Service Bus namespace with a queue, and a
// user-assigned managed identity.
func (a *adv) buildTenant(i int, name string) *advTenant {
	t := a.t
	ctx := context.Background()
	x := &advTenant{idx: i, name: name, tc: a.r.createTenant(t, name), tok: map[string]string{}}
	for _, s := range advSurfaces {
		tok, status, body, _ := a.tokenReq(x.id(), x.tc.Admin.ClientID, x.tc.Admin.ClientSecret, advCanon[s], a.rng.IntN(2) == 0)
		if tok == "" {
			t.Fatalf("seed %d: admin %s token: %d %s", a.seed, s, status, body)
		}
		x.tok[s] = tok
	}
	g := x.tok["graph"]
	m := a.must("admin application", a.req("GET", advGraph+"/v1.0/applications?$filter="+url.QueryEscape("appId eq '"+x.tc.Admin.ClientID+"'"), g, ""))
	x.adminAppObj = str(firstValue(m), "id")
	m = a.must("Graph's principal", a.req("GET", advGraph+"/v1.0/servicePrincipals?$filter="+url.QueryEscape("appId eq '"+advGraphAppID+"'"), g, ""))
	x.graphSP = str(firstValue(m), "id")
	if x.adminAppObj == "" || x.graphSP == "" {
		t.Fatalf("seed %d: admin app %q, Graph SP %q", a.seed, x.adminAppObj, x.graphSP)
	}
	for u := range 2 {
		nick := fmt.Sprintf("user%d", u)
		if i == 0 && u == 0 {
			nick = "mallory"
		}
		body := fmt.Sprintf(`{"accountEnabled":true,"displayName":%q,"mailNickname":%q,"userPrincipalName":%q,"passwordProfile":{"password":%q,"forceChangePasswordNextSignIn":false}}`,
			nick, nick, nick+"@"+x.tc.Domain, advPassword)
		m := a.must("create user", a.req("POST", advGraph+"/v1.0/users", g, body), 201)
		x.users[u] = advUser{id: str(m, "id"), upn: nick + "@" + x.tc.Domain}
	}
	m = a.must("group", a.req("POST", advGraph+"/v1.0/groups", g, `{"displayName":"canary","mailEnabled":false,"mailNickname":"canary","securityEnabled":true}`))
	x.group = str(m, "id")
	x.api = a.graphApp(x, g, "api-"+name, false, "")
	a.patchURIs(x, g, x.api, []string{"api://" + x.api.appID, "https://" + x.tc.Domain + "/api"}, true)
	x.multi = a.graphApp(x, g, "multi-"+name, true, "")
	x.multi.secret = a.addPassword(g, x.multi.obj)

	// Resources, through Resource Manager.
	arm := x.tok["arm"]
	x.rg = fmt.Sprintf("rg-%04x", a.rng.Uint32()&0xffff)
	rgID := x.sub() + "/resourceGroups/" + x.rg
	a.must("resource group", a.req("PUT", advARM+rgID+"?"+advARMVer, arm, `{"location":"westeurope"}`), 201)
	x.vault = "kv-" + name
	x.vaultID = rgID + "/providers/Microsoft.KeyVault/vaults/" + x.vault
	a.must("vault", a.req("PUT", advARM+x.vaultID+"?"+advARMVer, arm,
		fmt.Sprintf(`{"location":"westeurope","properties":{"tenantId":%q,"sku":{"family":"A","name":"standard"},"enableRbacAuthorization":true}}`, x.id())), 200, 201)
	x.ns = "sb-" + name
	x.nsID = rgID + "/providers/Microsoft.ServiceBus/namespaces/" + x.ns
	a.must("namespace", a.req("PUT", advARM+x.nsID+"?"+advARMVer, arm, `{"location":"westeurope","sku":{"name":"Standard"}}`), 200, 201)
	x.queue = "orders"
	a.must("queue", a.req("PUT", advARM+x.nsID+"/queues/"+x.queue+"?"+advARMVer, arm, `{}`), 200, 201)
	m = a.must("listKeys", a.req("POST", advARM+x.nsID+"/authorizationRules/RootManageSharedAccessKey/listKeys?"+advARMVer, arm, ""), 200)
	x.sasKey = str(m, "primaryKey")
	a.assign(x, x.vaultID, advRoleSecretsOfficer, x.tc.Admin.ServicePrincipalID)
	a.assign(x, x.nsID, advRoleSBOwner, x.tc.Admin.ServicePrincipalID)
	a.assign(x, x.vaultID, advRoleSecretsUser, x.users[0].id)
	a.assign(x, x.nsID, advRoleSBReceiver, x.users[0].id)
	x.secret = fmt.Sprintf("s-%04x", a.rng.Uint32()&0xffff)
	x.value = fmt.Sprintf("value-%d-%s", a.seed, name)
	a.must("secret", a.req("PUT", "https://"+x.vault+".vault.azure.net/secrets/"+x.secret+"?"+advKVVer, x.tok["kv"], `{"value":"`+x.value+`"}`), 200)
	a.must("message", a.req("POST", "https://"+x.ns+".servicebus.windows.net/"+x.queue+"/messages", x.tok["sb"], `{"hello":"`+name+`"}`), 201)

	// A user-assigned managed identity and the workload that runs as it:
	// the platform's operator API has no tenant-facing door for workloads,
	// so these come from the directory directly.
	dir := a.r.srv.Directory()
	mi, err := dir.CreateUserAssignedIdentity(ctx, x.id(), "", "mi-"+name)
	if err != nil {
		t.Fatal(err)
	}
	_, header, err := dir.CreateWorkload(ctx, x.id(), "", "wl-"+name, false, []string{mi.ID})
	if err != nil {
		t.Fatal(err)
	}
	x.miClientID, x.miID, x.miHeader = mi.AppID, mi.ID, header
	return x
}

func (a *adv) assign(x *advTenant, scope, role, principal string) {
	a.t.Helper()
	body := fmt.Sprintf(`{"properties":{"roleDefinitionId":"%s/providers/Microsoft.Authorization/roleDefinitions/%s","principalId":"%s"}}`, x.sub(), role, principal)
	a.must("role assignment", a.req("PUT", advARM+scope+"/providers/Microsoft.Authorization/roleAssignments/"+a.id()+"?"+advARMVer, x.tok["arm"], body), 201)
}

// graphApp registers an application through Graph with its service
// principal at home. extra is more JSON members.
func (a *adv) graphApp(x *advTenant, tok, name string, multi bool, extra string) *advApp {
	a.t.Helper()
	aud := "AzureADMyOrg"
	if multi {
		aud = "AzureADMultipleOrgs"
	}
	body := fmt.Sprintf(`{"displayName":%q,"signInAudience":%q%s}`, name, aud, extra)
	m := a.must("application "+name, a.req("POST", advGraph+"/v1.0/applications", tok, body), 201)
	app := &advApp{label: name, obj: str(m, "id"), appID: str(m, "appId"), home: x.idx, spIn: map[int]bool{x.idx: true}}
	m = a.must("principal of "+name, a.req("POST", advGraph+"/v1.0/servicePrincipals", tok, `{"appId":"`+app.appID+`"}`), 201)
	app.sp = str(m, "id")
	return app
}

func (a *adv) addPassword(tok, obj string) string {
	a.t.Helper()
	m := a.must("addPassword", a.req("POST", advGraph+"/v1.0/applications/"+obj+"/addPassword", tok, `{"passwordCredential":{"displayName":"adv"}}`), 200)
	return str(m, "secretText")
}

// patchURIs sets identifierUris; control says it must work.
func (a *adv) patchURIs(x *advTenant, tok string, app *advApp, uris []string, control bool) (int, string) {
	b, _ := json.Marshal(map[string]any{"identifierUris": uris})
	status, body := a.call("PATCH", advGraph+"/v1.0/applications/"+app.obj, tok, string(b))
	if control {
		a.must("identifierUris "+strings.Join(uris, " "), advResp{status, body}, 204)
	}
	return status, body
}

// buildAttacker gives A its applications: the partner (a multi-tenant app
// with an API of its own that victims may consent to), the loner (a
// multi-tenant app nobody ever admits), and the impostors come with the
// registrations.
func (a *adv) buildAttacker() {
	A := a.ts[0]
	g := A.tok["graph"]
	a.admin = &advApp{label: "A.admin", appID: A.tc.Admin.ClientID, secret: A.tc.Admin.ClientSecret, sp: A.tc.Admin.ServicePrincipalID,
		obj: A.adminAppObj, home: 0, spIn: map[int]bool{0: true}}
	a.partner = a.graphApp(A, g, "partner", true, `,"web":{"redirectUris":["`+advRedirect+`"]}`+a.apiJSON("access_as_user", "Partner access", "", nil))
	a.partner.secret = a.addPassword(g, a.partner.obj)
	a.partner.apiURI = "api://" + a.partner.appID
	a.patchURIs(A, g, a.partner, []string{a.partner.apiURI}, true)
	a.partner.label = "A.partner"
	a.loner = a.graphApp(A, g, "loner", true, `,"web":{"redirectUris":["`+advRedirect+`"]}`)
	a.loner.secret = a.addPassword(g, a.loner.obj)
	a.loner.label = "A.loner"
	A.multi.label, A.api.label = "A.multi", "A.api"
	a.apps = append(a.apps, a.admin, a.partner, a.loner, A.multi)
	a.mallory = A.users[0]
	// The managed identity's token for the token exchange audience.
	status, body := a.msi(A.id(), A.miHeader, advExchange, A.miClientID)
	A.miIssue = accessToken(body)
	if A.miIssue == "" {
		a.t.Fatalf("seed %d: managed identity exchange token: %d %s", a.seed, status, body)
	}
}

func (a *adv) msi(tenant, header, resource, clientID string) (int, string) {
	q := url.Values{"api-version": {"2019-08-01"}, "resource": {resource}}
	if clientID != "" {
		q.Set("client_id", clientID)
	}
	return a.send("GET", "https://"+a.r.addr+"/"+tenant+"/msi/token?"+q.Encode(), map[string]string{"X-IDENTITY-HEADER": header}, "")
}

// apiJSON declares a delegated scope and an application role of value.
func (a *adv) apiJSON(value, display, ver string, roles []string) string {
	scope := fmt.Sprintf(`{"id":%q,"value":%q,"type":"User","isEnabled":true,"adminConsentDisplayName":%q,"adminConsentDescription":%q,"userConsentDisplayName":%q,"userConsentDescription":%q}`,
		a.id(), value, display, display, display, display)
	out := `,"api":{"oauth2PermissionScopes":[` + scope + `]` + ver + `}`
	var rs []string
	for _, r := range roles {
		rs = append(rs, fmt.Sprintf(`{"id":%q,"value":%q,"allowedMemberTypes":["Application"],"isEnabled":true,"displayName":%q,"description":%q}`, a.id(), r, display, display))
	}
	if len(rs) > 0 {
		out += `,"appRoles":[` + strings.Join(rs, ",") + `]`
	}
	return out
}

// legitGrants: what victims grant A on purpose, and the model of it. One
// victim's administrator admits A's partner app with Graph's User.Read.All
// (and, at random, Key Vault Secrets User on its vault); at random a
// victim's administrator registers an app that trusts A's managed identity
// and makes it Reader of its subscription.
func (a *adv) legitGrants() {
	a.partnerT = 1 + a.rng.IntN(2)
	P := a.ts[a.partnerT]
	g := P.tok["graph"]
	m := a.must("partner admitted", a.req("POST", advGraph+"/v1.0/servicePrincipals", g, `{"appId":"`+a.partner.appID+`"}`), 201)
	psp := str(m, "id")
	a.partner.spIn[a.partnerT] = true
	body := fmt.Sprintf(`{"principalId":%q,"resourceId":%q,"appRoleId":%q}`, psp, P.graphSP, advUserReadAllRole)
	a.must("partner granted User.Read.All", a.req("POST", advGraph+"/v1.0/servicePrincipals/"+P.graphSP+"/appRoleAssignedTo", g, body), 201)
	a.appRoles[a.partner.appID+"|"+strconv.Itoa(a.partnerT)+"|graph"] = []string{"User.Read.All"}
	a.allow(a.partner.appID, a.partnerT, "graph", "graph:listUsers", "graph:getUser")
	if a.rng.IntN(2) == 0 {
		a.assign(P, P.vaultID, advRoleSecretsUser, psp)
		a.allow(a.partner.appID, a.partnerT, "kv", "kv:get", "kv:list")
		// As in Azure, a role anywhere in a subscription shows the subscription.
		a.allow(a.partner.appID, a.partnerT, "arm", "arm:getSub")
	}
	// The users' own data roles (users[0] in every tenant).
	for i, x := range a.ts {
		a.userAccess[x.users[0].id+"|kv"] = map[string]bool{a.key(i, "kv:get"): true, a.key(i, "kv:list"): true}
		a.userAccess[x.users[0].id+"|sb"] = map[string]bool{a.key(i, "sb:peek"): true, a.key(i, "sb:receive"): true}
		a.userAccess[x.users[0].id+"|arm"] = map[string]bool{a.key(i, "arm:getNS"): true, a.key(i, "arm:getSub"): true}
	}

	if a.rng.IntN(3) > 0 {
		a.bridgeT = 1 + a.rng.IntN(2)
		Q := a.ts[a.bridgeT]
		g := Q.tok["graph"]
		a.bridge = a.graphApp(Q, g, "bridge", false, "")
		a.bridge.label = "victim.bridge"
		iss, _ := advClaims(a.ts[0].miIssue)["iss"].(string)
		fic := fmt.Sprintf(`{"name":"trust-atk-mi","issuer":%q,"subject":%q,"audiences":[%q]}`, iss, a.ts[0].miID, advExchange)
		a.must("bridge federated credential", a.req("POST", advGraph+"/v1.0/applications/"+a.bridge.obj+"/federatedIdentityCredentials", g, fic), 201)
		a.assign(Q, Q.sub(), advRoleReader, a.bridge.sp)
		a.allow(a.bridge.appID, a.bridgeT, "arm", "arm:getSub", "arm:listRGs", "arm:getRG", "arm:getVault", "arm:getNS", "arm:listRA")
	}
}

func (a *adv) key(tenant int, name string) string { return strconv.Itoa(tenant) + ":" + name }

func (a *adv) allow(appID string, tenant int, surface string, names ...string) {
	k := appID + "|" + strconv.Itoa(tenant) + "|" + surface
	if a.dataAccess[k] == nil {
		a.dataAccess[k] = map[string]bool{}
	}
	for _, n := range names {
		a.dataAccess[k][a.key(tenant, n)] = true
	}
}

// buildTargets lists, per tenant, the operations an attacker wants.
func (a *adv) buildTargets() {
	A := a.ts[0]
	for i, x := range a.ts {
		add := func(name, surface, method, u, body, marker string, noControl bool) {
			a.targets = append(a.targets, &advTarget{key: a.key(i, surface+":"+name), tenant: i, surface: surface, method: method,
				url: u, body: body, marker: marker, noControl: noControl})
		}
		dup := func(s string) { a.targets[len(a.targets)-1].dup = s }
		G := advGraph + "/v1.0"
		add("listUsers", "graph", "GET", G+"/users", "", x.users[1].id, false)
		add("getUser", "graph", "GET", G+"/users/"+x.users[1].id, "", x.users[1].id, false)
		add("patchUser", "graph", "PATCH", G+"/users/"+x.users[1].id, `{"displayName":"renamed"}`, "", false)
		add("getAdminApp", "graph", "GET", G+"/applications/"+x.adminAppObj, "", x.adminAppObj, false)
		add("getAdminAppByAppId", "graph", "GET", G+"/applications(appId='"+x.tc.Admin.ClientID+"')", "", x.adminAppObj, false)
		add("filterAdminApp", "graph", "GET", G+"/applications?$filter="+url.QueryEscape("appId eq '"+x.tc.Admin.ClientID+"'"), "", x.adminAppObj, false)
		add("filterAPISP", "graph", "GET", G+"/servicePrincipals?$filter="+url.QueryEscape("appId eq '"+x.api.appID+"'"), "", x.api.sp, false)
		add("addPasswordAdminApp", "graph", "POST", G+"/applications/"+x.adminAppObj+"/addPassword", `{}`, "", false)
		add("addPasswordAdminSP", "graph", "POST", G+"/servicePrincipals/"+x.tc.Admin.ServicePrincipalID+"/addPassword", `{}`, "", false)
		add("patchAPIApp", "graph", "PATCH", G+"/applications/"+x.api.obj, `{"tags":["touched"]}`, "", false)
		add("getAdminSP", "graph", "GET", G+"/servicePrincipals/"+x.tc.Admin.ServicePrincipalID, "", x.tc.Admin.ServicePrincipalID, false)
		add("getGroup", "graph", "GET", G+"/groups/"+x.group, "", x.group, false)
		add("addMember", "graph", "POST", G+"/groups/"+x.group+"/members/$ref", `{"@odata.id":"https://graph.microsoft.com/v1.0/directoryObjects/`+x.users[1].id+`"}`, "", false)
		dup("already exist")
		add("grantRole", "graph", "POST", G+"/servicePrincipals/"+x.graphSP+"/appRoleAssignedTo",
			fmt.Sprintf(`{"principalId":%q,"resourceId":%q,"appRoleId":%q}`, x.multi.sp, x.graphSP, advUserReadAllRole), "", false)
		dup("already exists")

		rgID := x.sub() + "/resourceGroups/" + x.rg
		add("getSub", "arm", "GET", advARM+x.sub()+"?"+advARMVer, "", x.tc.SubscriptionID, false)
		add("listRGs", "arm", "GET", advARM+x.sub()+"/resourcegroups?"+advARMVer, "", x.rg, false)
		add("getRG", "arm", "GET", advARM+rgID+"?"+advARMVer, "", x.rg, false)
		add("putRG", "arm", "PUT", advARM+rgID+"?"+advARMVer, `{"location":"westeurope","tags":{"touched":"yes"}}`, "", false)
		add("getVault", "arm", "GET", advARM+x.vaultID+"?"+advARMVer, "", x.vault, false)
		add("getNS", "arm", "GET", advARM+x.nsID+"?"+advARMVer, "", x.ns, false)
		add("listKeys", "arm", "POST", advARM+x.nsID+"/authorizationRules/RootManageSharedAccessKey/listKeys?"+advARMVer, "", "", false)
		add("listRA", "arm", "GET", advARM+x.sub()+"/providers/Microsoft.Authorization/roleAssignments?"+advARMVer, "", x.tc.Admin.ServicePrincipalID, false)
		add("assignOwner", "arm", "PUT", advARM+rgID+"/providers/Microsoft.Authorization/roleAssignments/"+a.id()+"?"+advARMVer,
			fmt.Sprintf(`{"properties":{"roleDefinitionId":"%s/providers/Microsoft.Authorization/roleDefinitions/%s","principalId":"%s"}}`, x.sub(), advRoleOwner, A.tc.Admin.ServicePrincipalID), "", i != 0)

		V := "https://" + x.vault + ".vault.azure.net"
		add("get", "kv", "GET", V+"/secrets/"+x.secret+"?"+advKVVer, "", x.value, false)
		add("list", "kv", "GET", V+"/secrets?"+advKVVer, "", x.secret, false)
		add("set", "kv", "PUT", V+"/secrets/"+x.secret+"?"+advKVVer, `{"value":"`+x.value+`"}`, "", false)

		S := "https://" + x.ns + ".servicebus.windows.net/" + x.queue
		add("send", "sb", "POST", S+"/messages", `{"adv":1}`, "", false)
		add("peek", "sb", "GET", S+"/messages?top=5", "", "", false)
		add("receive", "sb", "DELETE", S+"/messages/head?timeout=0", "", "", false)
	}
	// The tenant admins' own tokens are the controls: everything of their
	// tenant, on the right surface.
	for i, x := range a.ts {
		for _, s := range advSurfaces {
			tk := &advToken{label: fmt.Sprintf("t%d.admin %s token", i, s), raw: x.tok[s], holder: i, tid: i, kind: s, origin: "admin", allowed: map[string]bool{}}
			for _, tg := range a.targets {
				if tg.tenant == i && tg.surface == s && !tg.noControl {
					tk.allowed[tg.key] = true
				}
			}
			a.tokens = append(a.tokens, tk)
		}
	}
}

// ---- identifier URIs ----

// registrations: A's administrator registers multi-tenant apps whose
// identifier URIs impersonate first-party resources, the victims and the
// hosts this server answers as; and legit ones on its own names.
func (a *adv) registrations() {
	A, B := a.ts[0], a.ts[1]
	g := A.tok["graph"]
	variant := func(s string) string {
		switch a.rng.IntN(4) {
		case 0:
			return strings.ToUpper(s)
		case 1:
			return s + "/"
		case 2:
			return strings.Replace(s, "https://", "HTTPS://", 1) + "//"
		}
		return s
	}
	type imp struct{ uri, kind string }
	var list []imp
	for _, v := range a.ts[1:] {
		list = append(list,
			imp{"https://" + v.vault + ".vault.azure.net", "kv"},
			imp{"https://" + v.ns + ".servicebus.windows.net", "sb"},
			imp{"https://" + v.tc.Domain + "/x", "victim"},
			imp{"api://" + v.id() + "/x", "victim"},
			imp{"api://x/" + v.api.appID, "victim"},
			imp{"https://x." + v.tc.Domain, "victim"},
			imp{"api://" + v.api.appID, "victim"},
			imp{"https://sts.windows.net/" + v.id() + "/", "victim"},
		)
	}
	list = append(list,
		imp{"https://graph.microsoft.com/", "graph"}, imp{"https://graph.microsoft.com", "graph"},
		imp{"https://Graph.Microsoft.com", "graph"}, imp{"HTTPS://GRAPH.MICROSOFT.COM//", "graph"},
		imp{variant("https://graph.microsoft.com"), "graph"},
		imp{variant("https://management.azure.com"), "arm"}, imp{"https://management.azure.com", "arm"},
		imp{"https://management.core.windows.net/", "arm"},
		imp{variant("https://vault.azure.net"), "kv"}, imp{"https://vault.azure.net", "kv"},
		imp{variant("https://servicebus.azure.net"), "sb"}, imp{"https://servicebus.azure.net/", "sb"},
		imp{advExchange, "exchange"}, imp{"api://azureadtokenexchange", "exchange"},
		imp{"https://login.microsoftonline.com", "victim"}, imp{"https://" + B.vault + ".vault.azure.net/", "kv"},
	)
	a.rng.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
	for n, im := range list {
		marker := fmt.Sprintf("ADVMARK%d-%04x", n, a.rng.Uint32()&0xffff)
		ver := ""
		v2 := a.rng.IntN(4) == 0
		if v2 {
			ver = `,"requestedAccessTokenVersion":2`
		}
		extra := `,"web":{"redirectUris":["` + advRedirect + `"]}` + a.apiJSON("Directory.ReadWrite.All", marker, ver, []string{"Directory.ReadWrite.All"})
		app := &advApp{label: fmt.Sprintf("A.imp%d(%s)", n, im.uri), impostor: im.uri, impKind: im.kind, marker: marker, home: 0, spIn: map[int]bool{0: true}, v2: v2}
		// At creation, or later by PATCH: either way is an attempt.
		atCreate := a.rng.IntN(2) == 0
		name := fmt.Sprintf("adv-imp-%d", n)
		if atCreate {
			b, _ := json.Marshal(im.uri)
			body := fmt.Sprintf(`{"displayName":%q,"signInAudience":"AzureADMultipleOrgs","identifierUris":[%s]%s}`, name, b, extra)
			status, resp := a.call("POST", advGraph+"/v1.0/applications", g, body)
			got := status == http.StatusCreated
			a.record(&advAttempt{class: "register", label: "create app with identifierUris " + im.uri, cross: im.kind != "own", want: advRefused, got: got,
				hint: "(a) identifier URI rules", request: "POST /v1.0/applications identifierUris=[" + im.uri + "]", status: status, body: resp})
			if got {
				m := map[string]any{}
				_ = json.Unmarshal([]byte(resp), &m)
				app.obj, app.appID, app.registered = str(m, "id"), str(m, "appId"), true
			}
		}
		if app.obj == "" {
			body := fmt.Sprintf(`{"displayName":%q,"signInAudience":"AzureADMultipleOrgs"%s}`, name, extra)
			m := a.must("impostor app without URI", a.req("POST", advGraph+"/v1.0/applications", g, body), 201)
			app.obj, app.appID = str(m, "id"), str(m, "appId")
		}
		app.apiURI = "api://" + app.appID
		uris := []string{app.apiURI}
		if app.registered {
			uris = append(uris, im.uri)
		}
		if st, resp := a.patchURIs(A, g, app, uris, false); st != http.StatusNoContent {
			// The default URI must be accepted; a refusal because of the
			// impostor it keeps is that impostor's to answer for.
			if !app.registered {
				a.must("identifierUris api://{appId}", advResp{st, resp}, 204)
			}
		}
		if !app.registered {
			status, resp := a.patchURIs(A, g, app, []string{app.apiURI, im.uri}, false)
			got := status == http.StatusNoContent
			a.record(&advAttempt{class: "register", label: "PATCH identifierUris += " + im.uri, cross: true, want: advRefused, got: got,
				hint: "(a) identifier URI rules", request: "PATCH /v1.0/applications/{A app} identifierUris=[api://{appId}, " + im.uri + "]", status: status, body: resp})
			app.registered = got
		}
		app.secret = a.addPassword(g, app.obj)
		// Its principal at home; an impostor URI the directory took may
		// still clash here, which is that registration's to answer for.
		status, resp := a.call("POST", advGraph+"/v1.0/servicePrincipals", g, `{"appId":"`+app.appID+`"}`)
		if status != http.StatusCreated && !app.registered {
			a.must("impostor principal", advResp{status, resp}, 201)
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(resp), &m)
		app.sp = str(m, "id")
		if app.sp == "" {
			a.t.Logf("note: %s has no principal at home: %d %s", app.label, status, clip(resp, 300))
			delete(app.spIn, 0)
		}
		// A's administrator gives A's multi app the impostor's
		// Directory.ReadWrite.All role: its own business, in its own tenant.
		m = a.must("impostor app", a.req("GET", advGraph+"/v1.0/applications/"+app.obj, g, ""), 200)
		if roles, ok := m["appRoles"].([]any); ok && len(roles) == 1 && app.sp != "" {
			app.roleID = str(roles[0].(map[string]any), "id")
			body := fmt.Sprintf(`{"principalId":%q,"resourceId":%q,"appRoleId":%q}`, A.multi.sp, app.sp, app.roleID)
			a.must("impostor role to A.multi", a.req("POST", advGraph+"/v1.0/servicePrincipals/"+app.sp+"/appRoleAssignedTo", g, body), 201)
		}
		a.imps = append(a.imps, app)
		a.apps = append(a.apps, app)
	}
	// Controls: Entra's documented formats on A's own names.
	ctl := a.graphApp(A, g, "adv-control", true, "")
	for _, u := range [][]string{
		{"api://" + ctl.appID}, {"api://" + ctl.appID, "https://" + A.tc.Domain + "/x"}, {"api://" + A.id() + "/x"},
	} {
		status, resp := a.patchURIs(A, g, ctl, u, false)
		a.record(&advAttempt{class: "register", label: "control: identifierUris " + strings.Join(u, " "), want: advGranted, got: status == http.StatusNoContent,
			request: "PATCH /v1.0/applications/{A app}", status: status, body: resp})
	}
}

// ---- sign-in and consent ----

type advBrowser struct {
	a *adv
	c *http.Client
}

type advPage struct {
	status         int
	body, location string
}

func (a *adv) browser() *advBrowser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		a.t.Fatal(err)
	}
	c := *a.c
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &advBrowser{a: a, c: &c}
}

func (b *advBrowser) do(method, u string, f url.Values) advPage {
	var rd io.Reader
	if f != nil {
		rd = strings.NewReader(f.Encode())
	}
	req, _ := http.NewRequest(method, u, rd)
	if f != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		return advPage{status: -1, body: err.Error()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return advPage{status: resp.StatusCode, body: string(body), location: resp.Header.Get("Location")}
}

func (b *advBrowser) submit(p advPage, fields url.Values) advPage {
	base, _ := url.Parse(advLogin)
	action, f, ok := pageForm(p.body, base, fields)
	if !ok {
		return advPage{status: -1, body: "no form: " + clip(p.body, 300)}
	}
	return b.do("POST", action, f)
}

// advFlow is what one authorization request came to.
type advFlow struct {
	consent  string // the consent page, if one was shown
	code     string
	verifier string
	last     advPage
	errText  string
}

// authorize walks the code flow as upn, accepting any consent page.
func (b *advBrowser) authorize(tenant, clientID, scope, upn, prompt string) advFlow {
	verifier := strings.Repeat("v", 43) + b.a.id()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {clientID}, "redirect_uri": {advRedirect}, "response_type": {"code"}, "scope": {scope},
		"state": {"st"}, "nonce": {"n"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"login_hint": {upn}}
	if prompt != "" {
		q.Set("prompt", prompt)
	}
	fl := advFlow{verifier: verifier}
	p := b.do("GET", advLogin+"/"+tenant+"/oauth2/v2.0/authorize?"+q.Encode(), nil)
	for range 8 {
		fl.last = p
		switch {
		case p.status == http.StatusFound && strings.HasPrefix(p.location, advRedirect):
			u, _ := url.Parse(p.location)
			fl.code = u.Query().Get("code")
			fl.errText = u.Query().Get("error") + " " + u.Query().Get("error_description")
			return fl
		case p.status != http.StatusOK:
			fl.errText = fmt.Sprintf("%d %s %s", p.status, p.location, clip(p.body, 300))
			return fl
		case strings.Contains(p.body, "Permissions requested"):
			fl.consent = p.body
			p = b.submit(p, url.Values{"decision": {"accept"}})
		case strings.Contains(p.body, `name="password"`):
			p = b.submit(p, url.Values{"password": {advPassword}})
		case strings.Contains(p.body, `name="username"`):
			p = b.submit(p, url.Values{"username": {upn}})
		default:
			fl.errText = "page: " + clip(p.body, 300)
			return fl
		}
	}
	return fl
}

// redeem redeems a code at tenant's token endpoint.
func (a *adv) redeem(tenant string, app *advApp, fl advFlow, scope string) (string, int, string, string) {
	f := url.Values{"grant_type": {"authorization_code"}, "client_id": {app.appID}, "client_secret": {app.secret}, "code": {fl.code},
		"redirect_uri": {advRedirect}, "code_verifier": {fl.verifier}}
	if scope != "" {
		f.Set("scope", scope)
	}
	u := advLogin + "/" + tenant + "/oauth2/v2.0/token"
	status, body := a.form(u, f)
	return accessToken(body), status, body, "POST " + u + " authorization_code client_id=" + app.label + " scope=" + scope
}

// judgeUserToken: a user token that A's app holds is granted beyond the
// model when it is for a victim and its scopes exceed what that user
// consented on the surface its audience speaks for.
func (a *adv) judgeUserToken(app *advApp, victim int, user advUser, raw string, impostorReq bool) (bool, string) {
	if raw == "" {
		return false, ""
	}
	c := advClaims(raw)
	aud, _ := c["aud"].(string)
	tid, _ := c["tid"].(string)
	ti := a.tenantIndex(tid)
	kind := advAudKind(aud)
	scp := claimList(c, "scp")
	if ti != victim {
		return ti > 0, fmt.Sprintf("token tid %s, aud %s, scp %v", tid, aud, scp)
	}
	why := fmt.Sprintf("aud %s (%s), tid victim %d, scp %v, roles %v", aud, kind, victim, scp, claimList(c, "roles"))
	if kind == "other" {
		return false, why
	}
	legit := a.delegated[app.appID+"|"+strconv.Itoa(victim)+"|"+user.id+"|"+kind]
	if impostorReq {
		legit = nil
	}
	for _, s := range scp {
		if !slices.ContainsFunc(legit, func(l string) bool { return strings.EqualFold(l, s) }) {
			return true, why
		}
	}
	return len(claimList(c, "roles")) > 0, why
}

// userToken adds a user token to those the matrix tries.
func (a *adv) userToken(label, raw string, app *advApp, victim int, user advUser, origin string) {
	c := advClaims(raw)
	aud, _ := c["aud"].(string)
	tid, _ := c["tid"].(string)
	tk := &advToken{label: label, raw: raw, holder: 0, tid: a.tenantIndex(tid), kind: advAudKind(aud), origin: origin, allowed: map[string]bool{}}
	if origin == "delegated" && tk.tid == victim && len(a.delegated[app.appID+"|"+strconv.Itoa(victim)+"|"+user.id+"|"+tk.kind]) > 0 {
		for k := range a.userAccess[user.id+"|"+tk.kind] {
			tk.allowed[k] = true
		}
	}
	a.tokens = append(a.tokens, tk)
}

func (a *adv) signIns() {
	A := a.ts[0]
	// Control in A: mallory signs in to the partner app (its own API).
	b := a.browser()
	fl := b.authorize(A.id(), a.partner.appID, "openid offline_access "+a.partner.apiURI+"/access_as_user", a.mallory.upn, "")
	tok, status, body, req := a.redeem(A.id(), a.partner, fl, "")
	a.record(&advAttempt{class: "signin", label: "control: A's user signs in to A's partner app in A", want: advGranted, got: tok != "",
		request: req, status: status, body: body + " " + fl.errText})
	var refresh struct {
		RefreshToken string `json:"refresh_token"`
	}
	_ = json.Unmarshal([]byte(body), &refresh)
	malloryTok := tok

	for vi := 1; vi < len(a.ts); vi++ {
		V := a.ts[vi]
		// mallory at the victim's sign-in pages.
		fl := a.browser().authorize(V.id(), a.partner.appID, "openid "+a.partner.apiURI+"/access_as_user", a.mallory.upn, "")
		got, why := false, fl.errText
		if fl.code != "" {
			t, status, body, _ := a.redeem(V.id(), a.partner, fl, "")
			got, why = t != "" && a.tenantIndex(str(advClaims(t), "tid")) == vi, fmt.Sprintf("%d %s", status, body)
		}
		a.record(&advAttempt{class: "signin", label: fmt.Sprintf("A's user signs in at victim %d's authorize endpoint", vi), cross: true, want: advRefused, got: got,
			hint: "(b) sign-in of a foreign user", request: "GET /" + V.id() + "/oauth2/v2.0/authorize login_hint=" + a.mallory.upn, status: fl.last.status, body: why})
		// An A code redeemed at the victim's endpoint.
		fl = b.authorize(A.id(), a.partner.appID, "openid "+a.partner.apiURI+"/access_as_user", a.mallory.upn, "none")
		if fl.code != "" {
			t, status, body, req := a.redeem(V.id(), a.partner, fl, "")
			a.record(&advAttempt{class: "sts", label: fmt.Sprintf("A's authorization code redeemed at victim %d", vi), cross: true, want: advRefused,
				got: t != "" && a.tenantIndex(str(advClaims(t), "tid")) == vi, hint: "(b) code crosses tenants", request: req, status: status, body: body})
		}
		// mallory's refresh token at the victim's endpoint.
		if refresh.RefreshToken != "" {
			f := url.Values{"grant_type": {"refresh_token"}, "client_id": {a.partner.appID}, "client_secret": {a.partner.secret},
				"refresh_token": {refresh.RefreshToken}, "scope": {[]string{"https://graph.microsoft.com/User.Read", a.partner.apiURI + "/access_as_user", advARM + "/user_impersonation"}[a.rng.IntN(3)]}}
			u := advLogin + "/" + V.id() + "/oauth2/v2.0/token"
			status, body := a.form(u, f)
			t := accessToken(body)
			a.record(&advAttempt{class: "sts", label: fmt.Sprintf("A's refresh token at victim %d", vi), cross: true, want: advRefused,
				got: t != "" && a.tenantIndex(str(advClaims(t), "tid")) == vi, hint: "(b) refresh token crosses tenants", request: "POST " + u + " refresh_token scope=" + f.Get("scope"), status: status, body: body})
			if t != "" {
				var nr struct {
					RefreshToken string `json:"refresh_token"`
				}
				if json.Unmarshal([]byte(body), &nr) == nil && nr.RefreshToken != "" {
					refresh.RefreshToken = nr.RefreshToken
				}
			}
		}
		// On-behalf-of: mallory's token for the partner, exchanged in the victim.
		if malloryTok != "" {
			f := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "client_id": {a.partner.appID}, "client_secret": {a.partner.secret},
				"assertion": {malloryTok}, "requested_token_use": {"on_behalf_of"}, "scope": {advCanon[advSurfaces[a.rng.IntN(4)]] + "/.default"}}
			u := advLogin + "/" + V.id() + "/oauth2/v2.0/token"
			status, body := a.form(u, f)
			t := accessToken(body)
			a.record(&advAttempt{class: "sts", label: fmt.Sprintf("on-behalf-of A's user at victim %d", vi), cross: true, want: advRefused,
				got: t != "" && a.tenantIndex(str(advClaims(t), "tid")) == vi, hint: "(b) on-behalf-of crosses tenants", request: "POST " + u + " OBO scope=" + f.Get("scope"), status: status, body: body})
		}
	}

	// Legit: a victim's users[0] lets the partner app read their profile
	// on Graph and act as them at Key Vault (their own secret reads).
	for vi := 1; vi < len(a.ts); vi++ {
		V := a.ts[vi]
		u := V.users[0]
		for _, legit := range []struct{ kind, scope, value string }{
			{"graph", "https://graph.microsoft.com/User.Read", "User.Read"},
			{"kv", advKV + "/user_impersonation", "user_impersonation"},
		} {
			if a.rng.IntN(3) == 0 {
				continue
			}
			fl := a.browser().authorize(V.id(), a.partner.appID, "openid "+legit.scope, u.upn, "")
			a.partner.spIn[vi] = a.partner.spIn[vi] || fl.code != ""
			a.delegated[a.partner.appID+"|"+strconv.Itoa(vi)+"|"+u.id+"|"+legit.kind] = []string{legit.value}
			tok, status, body, req := a.redeem(V.id(), a.partner, fl, "")
			a.record(&advAttempt{class: "signin", label: fmt.Sprintf("control: victim %d's user consents to A's partner for %s", vi, legit.scope), cross: true,
				want: advGranted, got: tok != "", request: req, status: status, body: fl.errText + " " + body})
			if tok != "" {
				if g, why := a.judgeUserToken(a.partner, vi, u, tok, false); g {
					a.record(&advAttempt{class: "signin", label: "legit consent's token exceeds the consent", cross: true, want: advRefused, got: true,
						hint: "(b) token beyond consent", request: req, body: why})
				}
				a.userToken(fmt.Sprintf("partner as victim %d user (%s)", vi, legit.scope), tok, a.partner, vi, u, "delegated")
			}
		}
	}

	// The impostors: a victim's user consents to an impostor's own API
	// (legit: it is A's API), then is asked for the same scope under the
	// name the impostor claims.
	// Impostors the directory took come first (a graph one above all),
	// then the others, in the seed's order.
	var took, rest, chosen []*advApp
	for _, i := range a.rng.Perm(len(a.imps)) {
		if im := a.imps[i]; im.registered && im.sp != "" {
			took = append(took, im)
		} else {
			rest = append(rest, im)
		}
	}
	sort.SliceStable(took, func(i, j int) bool { return took[i].impKind == "graph" && took[j].impKind != "graph" })
	chosen = append(took, rest...)
	chosen = chosen[:min(len(chosen), 5)]
	for _, im := range chosen {
		vi := 1 + a.rng.IntN(2)
		V := a.ts[vi]
		u := V.users[0]
		if a.rng.IntN(3) == 0 {
			u = V.users[1]
		}
		b := a.browser()
		// The user first lets the app sign them in and read their profile:
		// its principal is then in the victim's tenant.
		fl := b.authorize(V.id(), im.appID, "openid https://graph.microsoft.com/User.Read", u.upn, "")
		im.spIn[vi] = im.spIn[vi] || fl.code != ""
		a.delegated[im.appID+"|"+strconv.Itoa(vi)+"|"+u.id+"|graph"] = []string{"User.Read"}
		tok, status, body, req := a.redeem(V.id(), im, fl, "")
		want := advGranted
		if im.registered {
			want = advEither
		}
		a.record(&advAttempt{class: "signin", label: fmt.Sprintf("control: victim %d's user lets %s read their profile", vi, im.label), cross: true,
			want: want, got: tok != "", request: req, status: status, body: fl.errText + " " + body})
		if tok != "" {
			if g, why := a.judgeUserToken(im, vi, u, tok, false); g {
				a.record(&advAttempt{class: "signin", label: "User.Read token of " + im.label + " exceeds the consent", cross: true, want: advRefused, got: true,
					hint: "(a) impostor resolution", request: req, body: why})
			}
			a.userToken(fmt.Sprintf("%s as victim %d user, User.Read", im.label, vi), tok, im, vi, u, "delegated")
		}
		own := "openid offline_access " + im.apiURI + "/Directory.ReadWrite.All"
		fl = b.authorize(V.id(), im.appID, own, u.upn, "")
		im.spIn[vi] = im.spIn[vi] || fl.code != ""
		tok, status, body, req = a.redeem(V.id(), im, fl, "")
		a.record(&advAttempt{class: "signin", label: fmt.Sprintf("control: victim %d's user consents to %s for its own API", vi, im.label), cross: true,
			want: want, got: tok != "", request: req, status: status, body: fl.errText + " " + body})
		if tok != "" {
			g, why := a.judgeUserToken(im, vi, u, tok, true)
			a.record(&advAttempt{class: "signin", label: "token for an impostor's own API speaks for a first-party surface", cross: true, want: advRefused, got: g,
				hint: "(a) impostor resolution", request: req, status: status, body: why})
			a.userToken(fmt.Sprintf("%s as victim %d user, own API", im.label, vi), tok, im, vi, u, "impostor")
		}
		// The same scope under the impostor's claimed name (and the canonical
		// name of what it impersonates).
		names := []string{im.impostor}
		if c, ok := advCanon[im.impKind]; ok {
			names = append(names, c+"/")
		}
		for _, name := range names {
			scope := "openid " + name + "/Directory.ReadWrite.All"
			fl := b.authorize(V.id(), im.appID, scope, u.upn, []string{"", "consent", "none"}[a.rng.IntN(3)])
			shown := fl.consent != "" && strings.Contains(fl.consent, im.marker)
			a.record(&advAttempt{class: "signin", label: fmt.Sprintf("consent page for %q shows %s", scope, im.label), cross: true, want: advRefused, got: shown,
				hint: "(a) impostor resolution (consent page)", request: "GET /" + V.id() + "/oauth2/v2.0/authorize scope=" + scope, status: fl.last.status, body: fl.errText + " " + clip(fl.consent, 200)})
			a.impostorCode(im, vi, u, fl, "")
			// The code of the legit request, redeemed for the impostor's name.
			fl = b.authorize(V.id(), im.appID, own, u.upn, "none")
			a.impostorCode(im, vi, u, fl, name+"/Directory.ReadWrite.All")
		}
	}
}

// impostorCode redeems a code an impostor got in a victim and uses the
// token on the victim's Graph.
func (a *adv) impostorCode(im *advApp, vi int, u advUser, fl advFlow, scope string) {
	if fl.code == "" {
		return
	}
	V := a.ts[vi]
	tok, status, body, req := a.redeem(V.id(), im, fl, scope)
	g, why := a.judgeUserToken(im, vi, u, tok, true)
	a.record(&advAttempt{class: "signin", label: fmt.Sprintf("%s redeems victim %d's code (scope %q)", im.label, vi, scope), cross: true, want: advRefused, got: g,
		hint: "(a) impostor resolution / delegated cap", request: req, status: status, body: why + " " + clip(body, 200)})
	if tok == "" {
		return
	}
	a.userToken(fmt.Sprintf("%s as victim %d user via %q", im.label, vi, scope), tok, im, vi, u, "impostor")
	for _, op := range []struct{ method, path, body string }{
		{"GET", "/v1.0/users", ""},
		{"POST", "/v1.0/applications/" + V.adminAppObj + "/addPassword", "{}"},
	} {
		status, resp := a.call(op.method, advGraph+op.path, tok, op.body)
		got := status >= 200 && status < 300
		a.record(&advAttempt{class: "graph", label: fmt.Sprintf("%s with victim %d user's impostor token", op.path, vi), cross: true, want: advRefused, got: got,
			hint: "(a) impostor resolution / delegated cap", request: op.method + " " + advGraph + op.path, status: status, body: resp})
	}
}

// ---- the token service ----

// issued judges and keeps a token A obtained with client credentials.
func (a *adv) issued(app *advApp, tenant int, resource string, canonical bool, tok string, status int, body, req, label string, want advWant) {
	got := false
	why := body
	if tok != "" {
		c := advClaims(tok)
		aud, _ := c["aud"].(string)
		ti := a.tenantIndex(str(c, "tid"))
		kind := advAudKind(aud)
		roles := claimList(c, "roles")
		why = fmt.Sprintf("issued: tid t%d aud %s (%s) roles %v", ti, aud, kind, roles)
		legit := a.appRoles[app.appID+"|"+strconv.Itoa(ti)+"|"+kind]
		if ti == 0 && app == a.admin && kind == "graph" {
			legit = []string{"Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All", "Group.ReadWrite.All", "User.ReadWrite.All",
				"RoleManagement.ReadWrite.Directory", "DelegatedPermissionGrant.ReadWrite.All"}
		}
		if !canonical && kind != "other" {
			legit = nil // an impostor's roles never speak for a first-party resource
		}
		switch {
		case ti > 0 && !app.spIn[ti]:
			got = true
		case kind == "other" && a.victimAudience(aud) > 0 && a.victimAudience(aud) != ti:
			got = true // a token of another tenant naming a victim's API
		case kind == "other" && ti > 0:
			got = len(roles) > 0
		case kind == "other":
			// A's own API in A: A's business.
		default:
			for _, r := range roles {
				if !slices.Contains(legit, r) {
					got = true
				}
			}
		}
		tk := &advToken{label: label, raw: tok, holder: 0, tid: ti, kind: kind, origin: "canonical", allowed: map[string]bool{}}
		if !canonical {
			tk.origin = "impostor"
		} else {
			for k := range a.dataAccess[app.appID+"|"+strconv.Itoa(ti)+"|"+kind] {
				tk.allowed[k] = true
			}
			if ti == 0 && app == a.admin {
				for _, tg := range a.targets {
					if tg.tenant == 0 && tg.surface == kind && !tg.noControl {
						tk.allowed[tg.key] = true
					}
				}
			}
		}
		a.keepToken(tk)
	}
	if want == advGranted && !got && tok != "" {
		got = true // a control: issued as the model says
	} else if want == advGranted {
		got = false
	}
	hint := "(a) a resource name resolves to the wrong principal"
	if !canonical {
		hint = "(a) impostor identifier URI resolution"
	}
	a.record(&advAttempt{class: "sts", label: label, cross: tenant > 0, want: want, got: got, hint: hint, request: req, status: status, body: why})
}

// keepToken keeps one token per (label kind, tid, kind, origin, allowed) for the matrix.
// victimAudience says which victim's own application aud names (0: none).
func (a *adv) victimAudience(aud string) int {
	n := strings.ToLower(strings.TrimRight(aud, "/"))
	for i, v := range a.ts {
		for _, id := range []string{v.api.appID, "api://" + v.api.appID, "https://" + v.tc.Domain + "/api", v.multi.appID, v.tc.Admin.ClientID} {
			if i > 0 && n == strings.ToLower(id) {
				return i
			}
		}
	}
	return 0
}

func (a *adv) keepToken(tk *advToken) {
	var keys []string
	for k := range tk.allowed {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	sig := func(t *advToken) string {
		c := advClaims(t.raw)
		roles, scp := claimList(c, "roles"), claimList(c, "scp")
		who := strings.SplitN(t.label, " ", 2)[0]
		if strings.HasPrefix(who, "A.imp") {
			who = "A.imp"
		}
		return fmt.Sprint(who, t.tid, t.kind, t.origin, sortedKeys(t.allowed), len(roles)+len(scp) > 0)
	}
	mine := sig(tk)
	for _, o := range a.tokens {
		if sig(o) == mine {
			return
		}
	}
	a.tokens = append(a.tokens, tk)
}

func sortedKeys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func (a *adv) tokenService() {
	A := a.ts[0]
	// Every app of A asks every tenant for every resource name.
	for _, app := range a.apps {
		for ti, x := range a.ts {
			var names []struct {
				name      string
				canonical bool
			}
			for _, s := range advSurfaces {
				names = append(names, struct {
					name      string
					canonical bool
				}{advCanon[s], true})
			}
			for _, v := range a.ts[1:] {
				for _, n := range []string{v.api.appID, "api://" + v.api.appID, "https://" + v.tc.Domain + "/api"} {
					names = append(names, struct {
						name      string
						canonical bool
					}{n, true})
				}
			}
			for _, im := range a.imps {
				if a.rng.IntN(3) == 0 || (ti == 0 && im.registered) {
					names = append(names, struct {
						name      string
						canonical bool
					}{im.impostor, advCanonical(im.impostor)})
				}
			}
			for _, n := range names {
				if ti == 0 && n.canonical && app != a.admin && a.rng.IntN(3) > 0 {
					continue // A's own apps in A: sampled
				}
				ref := x.id() // the tenant by id, or by its domain name
				if a.rng.IntN(4) == 0 {
					ref = x.tc.Domain
				}
				tok, status, body, req := a.tokenReq(ref, app.appID, app.secret, n.name, a.rng.IntN(2) == 0)
				want := advRefused // issuance beyond the model counts as granted
				a.issued(app, ti, n.name, n.canonical, tok, status, body, req, fmt.Sprintf("%s client credentials in t%d for %s", app.label, ti, n.name), want)
			}
		}
	}
	// Secrets of A's apps for the victims' apps.
	for vi := 1; vi < len(a.ts); vi++ {
		V := a.ts[vi]
		for _, client := range []string{V.tc.Admin.ClientID, V.api.appID, V.multi.appID} {
			for range 2 {
				app := a.apps[a.rng.IntN(len(a.apps))]
				ti := []int{0, vi}[a.rng.IntN(2)]
				tok, status, body, req := a.tokenReq(a.ts[ti].id(), client, app.secret, advCanon[advSurfaces[a.rng.IntN(4)]], a.rng.IntN(2) == 0)
				a.record(&advAttempt{class: "sts", label: fmt.Sprintf("secret of %s as victim %d's app %s in t%d", app.label, vi, client, ti), cross: true,
					want: advRefused, got: tok != "", hint: "(b) client authentication", request: req, status: status, body: body})
			}
		}
		// A admits the victim's multi-tenant app in A and gives its
		// principal there a secret: good in A at most, never in the victim.
		g := A.tok["graph"]
		status, body := a.call("POST", advGraph+"/v1.0/servicePrincipals", g, `{"appId":"`+V.multi.appID+`"}`)
		if status == http.StatusCreated {
			var m map[string]any
			_ = json.Unmarshal([]byte(body), &m)
			st2, b2 := a.call("POST", advGraph+"/v1.0/servicePrincipals/"+str(m, "id")+"/addPassword", g, `{"passwordCredential":{"displayName":"adv"}}`)
			var pw map[string]any
			_ = json.Unmarshal([]byte(b2), &pw)
			if sec := str(pw, "secretText"); sec != "" {
				tok, status, body, req := a.tokenReq(V.id(), V.multi.appID, sec, advCanon[advSurfaces[a.rng.IntN(4)]], a.rng.IntN(2) == 0)
				a.record(&advAttempt{class: "sts", label: fmt.Sprintf("secret of victim %d's app's principal in A, used in victim %d", vi, vi), cross: true,
					want: advRefused, got: tok != "", hint: "(b) client authentication", request: req, status: status, body: body})
			} else {
				a.t.Logf("note: servicePrincipal addPassword in A: %d %s", st2, clip(b2, 200))
			}
		}
		// A admits the victim's single-tenant API in A.
		status, body = a.call("POST", advGraph+"/v1.0/servicePrincipals", g, `{"appId":"`+V.api.appID+`"}`)
		a.record(&advAttempt{class: "graph", label: fmt.Sprintf("A provisions victim %d's single-tenant app", vi), cross: true, want: advRefused,
			got: status >= 200 && status < 300, hint: "(b) who may exist where", request: "POST /v1.0/servicePrincipals appId=" + V.api.appID, status: status, body: body})
	}
	// The password grant with A's own user's password, at the victims'
	// endpoints and the multi-tenant ones: a token is A's at most.
	for _, app := range []*advApp{a.partner, a.loner, A.multi} {
		for _, ref := range []string{a.ts[1].id(), a.ts[2].tc.Domain, "organizations", "common"} {
			f := url.Values{"grant_type": {"password"}, "client_id": {app.appID}, "client_secret": {app.secret}, "username": {a.mallory.upn},
				"password": {advPassword}, "scope": {advCanon[advSurfaces[a.rng.IntN(4)]] + "/.default"}}
			u := advLogin + "/" + ref + "/oauth2/v2.0/token"
			status, body := a.form(u, f)
			tok := accessToken(body)
			a.record(&advAttempt{class: "sts", label: fmt.Sprintf("password grant for A's user via %s at /%s", app.label, ref), cross: true, want: advRefused,
				got: tok != "" && a.tenantIndex(str(advClaims(tok), "tid")) > 0, hint: "(b) password grant crosses tenants", request: "POST " + u + " password scope=" + f.Get("scope"), status: status, body: body})
		}
	}
	// Federated: A's managed identity's exchange token against the
	// victims' apps. The bridge (if any), a victim's app whose federated
	// credential trusts A's managed identity, is refused too, as Entra
	// refuses an Entra issuer of another tenant (AADSTS700236, Microsoft
	// Q&A 2139753; "Both the Microsoft Entra app and managed identity must
	// belong to the same tenant", learn.microsoft.com/entra/workload-id/
	// workload-identity-federation-config-app-trust-managed-identity).
	assertion := func(tenant, client, tok string) (string, int, string, string) {
		f := url.Values{"grant_type": {"client_credentials"}, "client_id": {client}, "scope": {advARM + "/.default"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {tok}}
		u := advLogin + "/" + tenant + "/oauth2/v2.0/token"
		status, body := a.form(u, f)
		return accessToken(body), status, body, "POST " + u + " client_assertion client_id=" + client
	}
	exch := []struct{ label, tok string }{{"A's managed identity", A.miIssue}}
	for _, app := range []*advApp{a.partner, a.admin} {
		if tok, _, _, _ := a.tokenReq(A.id(), app.appID, app.secret, advExchange, false); tok != "" {
			exch = append(exch, struct{ label, tok string }{app.label, tok})
		}
	}
	for _, im := range a.imps {
		if im.impKind == "exchange" && im.registered {
			if tok, _, _, _ := a.tokenReq(A.id(), A.multi.appID, A.multi.secret, im.impostor, true); tok != "" {
				exch = append(exch, struct{ label, tok string }{"A.multi via " + im.label, tok})
			}
		}
	}
	for vi := 1; vi < len(a.ts); vi++ {
		V := a.ts[vi]
		clients := []string{V.tc.Admin.ClientID, V.api.appID, V.multi.appID, V.miClientID}
		if a.bridge != nil {
			clients = append(clients, a.bridge.appID)
		}
		for _, e := range exch {
			for _, client := range clients {
				for _, ti := range []int{vi, 0} {
					tok, status, body, req := assertion(a.ts[ti].id(), client, e.tok)
					want := advRefused
					got := tok != ""
					a.record(&advAttempt{class: "sts", label: fmt.Sprintf("%s's exchange token as client %s in t%d", e.label, client, ti), cross: true,
						want: want, got: got, hint: "(b) federated credential matching", request: req, status: status, body: body})
					if tok != "" {
						c := advClaims(tok)
						tk := &advToken{label: "federated " + client + " in t" + strconv.Itoa(ti), raw: tok, holder: 0, tid: a.tenantIndex(str(c, "tid")),
							kind: advAudKind(str(c, "aud")), origin: "canonical", allowed: map[string]bool{}}
						if want == advGranted {
							for k := range a.dataAccess[a.bridge.appID+"|"+strconv.Itoa(vi)+"|arm"] {
								tk.allowed[k] = true
							}
						}
						a.keepToken(tk)
					}
				}
			}
		}
		// A's workload header at the victim's managed identity endpoint,
		// and for the victim's identity at A's.
		for _, probe := range []struct{ tenant, client string }{{V.id(), ""}, {V.id(), V.miClientID}, {A.id(), V.miClientID}, {V.id(), A.miClientID}} {
			status, body := a.msi(probe.tenant, A.miHeader, advCanon[advSurfaces[1+a.rng.IntN(3)]], probe.client)
			tok := accessToken(body)
			a.record(&advAttempt{class: "sts", label: fmt.Sprintf("A's workload header at /%s/msi/token client_id=%s", probe.tenant, probe.client), cross: true,
				want: advRefused, got: tok != "" && a.tenantIndex(str(advClaims(tok), "tid")) > 0, hint: "(b) managed identity endpoint",
				request: "GET /" + probe.tenant + "/msi/token", status: status, body: body})
		}
	}
	// A's managed identity's own tokens, for the matrix.
	for _, s := range []string{"arm", "kv", "sb"} {
		if _, body := a.msi(A.id(), A.miHeader, advCanon[s], A.miClientID); accessToken(body) != "" {
			a.keepToken(&advToken{label: "A.mi " + s, raw: accessToken(body), holder: 0, tid: 0, kind: s, origin: "canonical", allowed: map[string]bool{}})
		}
	}
}

// forgeries: A's admin tokens rewritten to claim a victim's tenant, kept
// signed (the signature no longer matches) or unsigned.
func (a *adv) forgeries() {
	A := a.ts[0]
	for _, s := range advSurfaces {
		parts := strings.Split(A.tok[s], ".")
		raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
		vi := 1 + a.rng.IntN(2)
		V := a.ts[vi]
		payload := strings.ReplaceAll(string(raw), A.id(), V.id())
		p := base64.RawURLEncoding.EncodeToString([]byte(payload))
		none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
		a.tokens = append(a.tokens,
			&advToken{label: "A.admin " + s + " token, tid forged to victim " + strconv.Itoa(vi), raw: parts[0] + "." + p + "." + parts[2], holder: 0, tid: vi, kind: s, origin: "forged", allowed: map[string]bool{}},
			&advToken{label: "A.admin " + s + " token, tid forged, alg none", raw: none + "." + p + ".", holder: 0, tid: vi, kind: s, origin: "forged", allowed: map[string]bool{}})
	}
}

// ---- Shared Access Signatures ----

func advSAS(resource, keyName, key string, expiry time.Time, lower bool) string {
	sr := url.QueryEscape(resource)
	if lower {
		sr = strings.ToLower(sr)
	}
	se := strconv.FormatInt(expiry.Unix(), 10)
	m := hmacSHA256([]byte(key), []byte(sr+"\n"+se))
	return "SharedAccessSignature sr=" + sr + "&sig=" + url.QueryEscape(base64.StdEncoding.EncodeToString(m)) + "&se=" + se + "&skn=" + url.QueryEscape(keyName)
}

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

func (a *adv) sas() {
	A := a.ts[0]
	exp := time.Now().Add(time.Hour)
	op := func(x *advTenant, which int) (string, string, string) {
		base := "https://" + x.ns + ".servicebus.windows.net/" + x.queue
		switch which {
		case 0:
			return "POST", base + "/messages", `{"sas":1}`
		case 1:
			return "GET", base + "/messages?top=5", ""
		}
		return "DELETE", base + "/messages/head?timeout=0", ""
	}
	try := func(label string, x *advTenant, header string, want advWant, cross bool) {
		for w := range 3 {
			method, u, body := op(x, w)
			hdr := map[string]string{"Authorization": header}
			if body != "" {
				hdr["Content-Type"] = "application/json"
			}
			status, resp := a.send(method, u, hdr, body)
			a.record(&advAttempt{class: "sas", label: label + " " + method, cross: cross, want: want, got: status >= 200 && status < 300,
				hint: "(b) SAS crosses namespaces", request: method + " " + u, status: status, body: resp})
		}
	}
	for vi := 0; vi < len(a.ts); vi++ {
		V := a.ts[vi]
		own := "https://" + V.ns + ".servicebus.windows.net/"
		if vi == 0 || a.rng.IntN(2) == 0 {
			try(fmt.Sprintf("control: t%d's own SAS on its queue", vi), V, advSAS(own, "RootManageSharedAccessKey", V.sasKey, exp, true), advGranted, false)
		}
		if vi == 0 {
			continue
		}
		aBase := "https://" + A.ns + ".servicebus.windows.net/"
		for _, sr := range []string{own, own + V.queue, strings.ToUpper(own), aBase, aBase + V.queue, "https://" + V.ns + ".servicebus.windows.net", "sb://" + V.ns + ".servicebus.windows.net/"} {
			skn := []string{"RootManageSharedAccessKey", "rootmanagesharedaccesskey"}[a.rng.IntN(2)]
			try(fmt.Sprintf("A's root key signing sr=%s skn=%s at victim %d", sr, skn, vi), V, advSAS(sr, skn, A.sasKey, exp, a.rng.IntN(2) == 0), advRefused, true)
		}
	}
}

// ---- the matrix: every token the attacker holds against the targets ----

type advCase struct {
	tok    *advToken
	tgt    *advTarget
	want   advWant
	status int
	body   string
}

func (a *adv) matrix() {
	var attacks, controls []*advCase
	for _, tk := range a.tokens {
		for _, tg := range a.targets {
			right := tg.surface == tk.kind
			switch {
			case tk.holder != 0 && tg.tenant != tk.holder:
				continue // the victims' admins: controls in their own tenant only
			case tk.holder != 0 && !right && a.rng.IntN(4) > 0:
				continue
			case tk.holder == 0 && !right && a.rng.IntN(3) > 0:
				continue // wrong audience: sampled
			}
			c := &advCase{tok: tk, tgt: tg, want: advRefused}
			if tk.tid == tg.tenant && right && tk.allowed[tg.key] {
				c.want = advGranted
				controls = append(controls, c)
			} else {
				attacks = append(attacks, c)
			}
		}
	}
	run := func(cases []*advCase, workers int) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, workers)
		for _, c := range cases {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				c.status, c.body = a.call(c.tgt.method, c.tgt.url, c.tok.raw, c.tgt.body)
			}()
		}
		wg.Wait()
	}
	run(attacks, 4)
	run(controls, 1) // after the attacks, so that no control's change hides an attack
	for _, c := range append(attacks, controls...) {
		got := c.status >= 200 && c.status < 300 && (c.tgt.marker == "" || strings.Contains(c.body, c.tgt.marker))
		got = got || (c.tgt.dup != "" && c.status == http.StatusBadRequest && strings.Contains(c.body, c.tgt.dup))
		hint := "(b) NEW: " + c.tok.origin + " token accepted"
		switch {
		case c.tok.kind != c.tgt.surface:
			hint = "(a) surface accepts a wrong audience"
		case c.tok.origin == "impostor":
			hint = "(a) impostor identifier URI resolution"
		case c.tok.origin == "delegated" && c.tgt.surface == "graph":
			hint = "(a) delegated Graph token not capped by the user's roles"
		}
		req := c.tgt.method + " " + c.tgt.url
		if c.tgt.body != "" {
			req += " " + c.tgt.body
		}
		a.record(&advAttempt{class: c.tgt.surface, label: fmt.Sprintf("%s [tid t%d, %s] → %s", c.tok.label, c.tok.tid, c.tok.kind, c.tgt.key),
			cross: c.tok.holder != c.tgt.tenant || c.tok.tid != c.tgt.tenant, want: c.want, got: got, hint: hint, request: req, status: c.status, body: c.body})
	}
}

// ---- the verdict ----

func (a *adv) report(took time.Duration) {
	t := a.t
	type counts struct{ n, cross, legit, refusedOK, grantedBad, controlBad int }
	per := map[string]*counts{}
	var bad []*advAttempt
	for _, at := range a.attempts {
		c := per[at.class]
		if c == nil {
			c = &counts{}
			per[at.class] = c
		}
		c.n++
		if at.cross {
			c.cross++
		}
		switch {
		case at.want == advGranted && at.got:
			c.legit++
		case at.want == advGranted:
			c.controlBad++
			bad = append(bad, at)
		case at.want == advRefused && at.got:
			c.grantedBad++
			bad = append(bad, at)
		default:
			c.refusedOK++
		}
	}
	var classes []string
	for k := range per {
		classes = append(classes, k)
	}
	sort.Strings(classes)
	total, grantedBad := 0, 0
	for _, k := range classes {
		c := per[k]
		total += c.n
		grantedBad += c.grantedBad
		t.Logf("%-9s %4d attempts (%4d cross-tenant): %4d refused as modelled, %3d legit granted, %3d GRANTED AGAINST THE MODEL, %3d controls failed",
			k, c.n, c.cross, c.refusedOK, c.legit, c.grantedBad, c.controlBad)
	}
	t.Logf("%d attempts, %d tokens held, %d targets, partner admitted by t%d, bridge in t%d; %v", total, len(a.tokens), len(a.targets), a.partnerT, a.bridgeT, took.Round(time.Millisecond))
	if len(bad) == 0 {
		return
	}
	// The failed controls first: there are few, and they say the most.
	sort.SliceStable(bad, func(i, j int) bool { return bad[i].want == advGranted && bad[j].want != advGranted })
	for i, at := range bad {
		if i >= 60 {
			t.Errorf("… and %d more", len(bad)-i)
			break
		}
		what := "GRANTED against the model, " + at.hint
		if at.want == advGranted {
			what = "CONTROL FAILED (the model says it must work)"
		}
		t.Errorf("%s [%s] %s\n  request: %s\n  response: %d %s", what, at.class, at.label, at.request, at.status, at.body)
	}
	t.Errorf("seed %d: %d attempts granted against the model, %d controls failed (replay with TENANTBRIDGE_ADVERSARY_SEED=%d)", a.seed, grantedBad, len(bad)-grantedBad, a.seed)
}
