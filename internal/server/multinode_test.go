package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
)

// TestFleetSurvivesNodeKill: three server processes on one PostgreSQL
// schema with one node key (a fleet) take the same keys from the store; a
// receiver on one node is woken by a send on another; a user signs in with
// each step on another node; a rotation that would sign before every node
// publishes is refused. Then mixed load on all three — client-credentials
// tokens, Graph group creations, Key Vault secret sets and reads, managed
// application installs, queue sends and receives over REST and over AMQP
// with azservicebus — until one node is killed with SIGKILL mid-load.
// Checked on the survivors: every acknowledged group and install exists
// exactly once, every acknowledged secret reads back, every acknowledged
// message is received exactly once unless it was completed and no
// completed message returns (crashLedger.check), and tokens the dead node
// issued still verify.
func TestFleetSurvivesNodeKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three server processes and kills one")
	}
	storetest.RequirePostgres(t)
	dsn := storetest.PostgresSchemaDSN(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	t.Setenv("TENANTBRIDGE_NODE_KEY", base64.StdEncoding.EncodeToString(key))
	var nodes []*crashServer
	for range 3 {
		n := &crashServer{t: t, dir: t.TempDir(), store: dsn}
		n.start()
		nodes = append(nodes, n)
	}
	A, B, C := nodes[0], nodes[1], nodes[2]
	for _, n := range nodes[1:] {
		if n.opKey != A.opKey {
			t.Fatal("the nodes have different operator keys")
		}
		for _, f := range []string{"ca.pem", "keys/kek.key", "keys/secret-hash.key"} {
			x, _ := os.ReadFile(filepath.Join(A.dir, f))
			y, _ := os.ReadFile(filepath.Join(n.dir, f))
			if len(x) == 0 || !bytes.Equal(x, y) {
				t.Fatalf("%s differs between the nodes", f)
			}
		}
	}

	w := fleetWorld{crashWorld: A.world()} // its tokens are the dead node's, later
	graphTok := fleetToken(A, w, "https://graph.microsoft.com")
	queue := "https://" + crashFQDN + "/work"
	vault := fleetVault(t, B, w.crashWorld)
	w.kvTok = fleetToken(A, w, "https://vault.azure.net")
	apps := newFleetApps(t, C, w.crashWorld)

	// A receiver on C sleeps in a long poll; a send on A wakes it.
	got := make(chan crashResp, 1)
	go func() { got <- C.do("POST", queue+"/messages/head?timeout=60", w.busTok, "", nil) }()
	time.Sleep(500 * time.Millisecond)
	A.must(A.do("POST", queue+"/messages", w.busTok, "wake", nil), http.StatusCreated, "send on A")
	select {
	case r := <-got:
		if r.status != http.StatusCreated || r.body != "wake" {
			t.Fatalf("receiver on C: %d %v %s", r.status, r.err, r.body)
		}
		C.must(C.do("DELETE", r.header.Get("Location"), w.busTok, "", nil), 200, "complete on C")
	case <-time.After(15 * time.Second):
		t.Fatal("a receiver long-polling on node C was not woken by a send on node A")
	}

	fleetSignInAcrossNodes(t, nodes, w.crashWorld, graphTok)

	// A rotation must give every node time to publish the key before
	// any signs with it: "0s" is refused on a fleet's node.
	B.must(B.do("POST", "https://"+*B.addr.Load()+"/_operator/v1/keys/rotate", B.opKey, `{"publishAhead":"0s"}`,
		map[string]string{"Content-Type": "application/json"}), http.StatusBadRequest, "rotate at once on a fleet's node")

	l := newCrashLedger()
	var stop atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var clients []*azservicebus.Client
	var graphMu sync.Mutex
	groups, secrets := map[string]bool{}, map[string]string{}
	aTokens := make(chan string, 64) // issued by A during the load
	var killingA atomic.Bool
	for i, n := range nodes {
		wg.Go(func() { n.restSender(l, &stop, queue, w.busTok, fmt.Sprintf("rest%d", i)) })
		wg.Go(func() { n.restReceiver(l, &stop, queue, w.busTok) })
		wg.Go(func() {
			for j := 0; !stop.Load() && j < 20; j++ {
				name := fmt.Sprintf("fleet-%d-%d", i, j)
				r := n.do("POST", "https://graph.microsoft.com/v1.0/groups", graphTok,
					fmt.Sprintf(`{"displayName":%q,"mailEnabled":false,"mailNickname":%q,"securityEnabled":true}`, name, name),
					map[string]string{"Content-Type": "application/json"})
				if r.err == nil && r.status == http.StatusCreated {
					graphMu.Lock()
					groups[name] = true
					graphMu.Unlock()
				}
				sname, value := fmt.Sprintf("s-%d-%d", i, j), fmt.Sprintf("v-%d-%d", i, j)
				r = n.do("PUT", "https://"+vault+".vault.azure.net/secrets/"+sname+"?api-version=7.4", w.kvTok, `{"value":"`+value+`"}`,
					map[string]string{"Content-Type": "application/json"})
				if r.err == nil && r.status == http.StatusOK {
					graphMu.Lock()
					secrets[sname] = value
					graphMu.Unlock()
					// A read that could not reach node A because it was
					// being killed is not a lost write: the survivors
					// (node C) read every acknowledged secret after the kill.
					g := n.do("GET", "https://"+vault+".vault.azure.net/secrets/"+sname+"?api-version=7.4", w.kvTok, "", nil)
					if g.status != http.StatusOK && !(g.err != nil && n == A && killingA.Load()) {
						t.Errorf("secret %s set on node %d did not read back there: %d %v", sname, i, g.status, g.err)
					}
				}
				if j < 2 {
					apps.install(n, fmt.Sprintf("app-%d-%d", i, j))
				}
				if i == 0 {
					if tok := fleetTryToken(n, w.crashWorld, "https://graph.microsoft.com"); tok != "" {
						select {
						case aTokens <- tok:
						default:
						}
					}
				}
			}
		})
	}
	for _, n := range nodes[1:] {
		sc, rc := n.amqpClient(w.crashWorld), n.amqpClient(w.crashWorld)
		clients = append(clients, sc, rc)
		wg.Go(func() { amqpSender(ctx, l, &stop, sc, "amqp-"+n.dir[len(n.dir)-3:]) })
		wg.Go(func() { amqpReceiver(ctx, l, &stop, rc) })
	}
	deadline := time.After(60 * time.Second)
	for going := false; !going; {
		l.mu.Lock()
		going = min(l.restAcked, l.amqpAcked) >= 60 && min(l.restCompleted, l.amqpCompleted) >= 20
		l.mu.Unlock()
		select {
		case <-l.progress:
		case <-deadline:
			l.logBefore(t)
			t.Fatal("the load did not reach its mark within 60 s")
		}
	}
	// Before the kill: a request that fails from here on may have met it.
	killingA.Store(true)
	A.kill() // mid-load; the others go on a moment
	time.Sleep(time.Second)
	stop.Store(true)
	cancel()
	wg.Wait()
	for _, c := range clients {
		_ = c.Close(context.Background())
	}
	l.logBefore(t)

	// Tokens the dead node issued verify on the others.
	close(aTokens)
	issued := []string{graphTok}
	for tok := range aTokens {
		issued = append(issued, tok)
	}
	for _, tok := range issued {
		for _, n := range []*crashServer{B, C} {
			n.must(n.do("GET", "https://graph.microsoft.com/v1.0/groups?$top=1", tok, "", nil), http.StatusOK, "a token of the dead node")
		}
	}

	// Every acknowledged group exactly once; every acknowledged secret.
	var list struct {
		Value []struct{ DisplayName string }
	}
	r := B.must(B.do("GET", "https://graph.microsoft.com/v1.0/groups?$top=999&$filter="+url.QueryEscape("startswith(displayName,'fleet-')"), graphTok, "", nil),
		http.StatusOK, "list groups")
	if err := json.Unmarshal([]byte(r.body), &list); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, g := range list.Value {
		seen[g.DisplayName]++
	}
	for name := range groups {
		if seen[name] != 1 {
			t.Errorf("acknowledged group %s exists %d times", name, seen[name])
		}
	}
	for name, value := range secrets {
		r := C.must(C.do("GET", "https://"+vault+".vault.azure.net/secrets/"+name+"?api-version=7.4", w.kvTok, "", nil), http.StatusOK, "read secret")
		var s struct{ Value string }
		if json.Unmarshal([]byte(r.body), &s) != nil || s.Value != value {
			t.Errorf("secret %s reads %q on node C, want %q", name, s.Value, value)
		}
	}
	apps.check(B)
	t.Logf("%d groups and %d secrets acknowledged, %d tokens of the dead node verified on both survivors", len(groups), len(secrets), len(issued))

	// Drain the queue on B: messages locked on A come back when their
	// 5 s locks expire.
	after := map[string]int{}
	for quiet := 0; quiet < 2; {
		r := B.do("POST", queue+"/messages/head?timeout=7", w.busTok, "", nil)
		switch {
		case r.err != nil:
			t.Fatalf("drain: %v", r.err)
		case r.status == http.StatusNoContent:
			quiet++
			continue
		case r.status != http.StatusCreated:
			t.Fatalf("drain: %d %s", r.status, r.body)
		}
		quiet = 0
		after[r.body]++
		B.must(B.do("DELETE", r.header.Get("Location"), w.busTok, "", nil), 200, "complete while draining")
	}
	l.check(t, after)
}

// fleetWorld is the crash test's world with a Key Vault token.
type fleetWorld struct {
	crashWorld
	kvTok string
}

// fleetVault creates a vault through node n, makes the administrator its
// Key Vault Secrets Officer, and returns its name.
func fleetVault(t *testing.T, n *crashServer, w crashWorld) string {
	t.Helper()
	armTok := fleetToken(n, fleetWorld{crashWorld: w}, "https://management.azure.com")
	var tc struct{ SubscriptionID string }
	r := n.must(n.do("GET", "https://management.azure.com/subscriptions?api-version=2022-12-01", armTok, "", nil), 200, "subscriptions")
	var subs struct {
		Value []struct{ SubscriptionID string }
	}
	if json.Unmarshal([]byte(r.body), &subs) != nil || len(subs.Value) == 0 {
		t.Fatalf("subscriptions: %s", r.body)
	}
	tc.SubscriptionID = subs.Value[0].SubscriptionID
	name := "fleet" + fmt.Sprint(time.Now().UnixNano()%1e9)
	id := "/subscriptions/" + tc.SubscriptionID + "/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/" + name
	put := func(path, body string) {
		r := n.do("PUT", "https://management.azure.com"+path+"?api-version="+testenv.ARMAPIVersion(path), armTok, body,
			map[string]string{"Content-Type": "application/json"})
		if r.err != nil || r.status/100 != 2 {
			t.Fatalf("PUT %s: %d %v %s", path, r.status, r.err, r.body)
		}
	}
	put(id, fmt.Sprintf(`{"location":"westeurope","properties":{"tenantId":%q,"sku":{"family":"A","name":"standard"},"enableRbacAuthorization":true}}`, w.tenantID))
	put(id+"/providers/Microsoft.Authorization/roleAssignments/7b1f2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4c",
		`{"properties":{"roleDefinitionId":"/subscriptions/`+tc.SubscriptionID+`/providers/Microsoft.Authorization/roleDefinitions/b86a8fe4-44ce-4948-aee5-eccb2c155cd7","principalId":"`+fleetPrincipal(t, armTok)+`"}}`)
	return name
}

// fleetPrincipal is the administrator's service principal id: its
// token's oid.
func fleetPrincipal(t *testing.T, armTok string) string {
	t.Helper()
	claims := claimsOfToken(t, armTok)
	oid, _ := claims["oid"].(string)
	if oid == "" {
		t.Fatal("the ARM token has no oid")
	}
	return oid
}

// fleetToken gets a client-credentials token of the administrator from
// node n, or fails the test.
func fleetToken(n *crashServer, w fleetWorld, resource string) string {
	n.t.Helper()
	tok := fleetTryToken(n, w.crashWorld, resource)
	if tok == "" {
		n.t.Fatalf("no token for %s from the node", resource)
	}
	return tok
}

// fleetTryToken gets a client-credentials token from node n; "" when the
// node did not answer with one.
func fleetTryToken(n *crashServer, w crashWorld, resource string) string {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {w.clientID},
		"client_secret": {w.clientSecret}, "scope": {resource + "/.default"}}
	r := n.do("POST", "https://login.microsoftonline.com/"+w.tenantID+"/oauth2/v2.0/token", "", form.Encode(),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if r.err != nil || r.status != http.StatusOK {
		return ""
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal([]byte(r.body), &tr)
	return tr.AccessToken
}

func claimsOfToken(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := bytes.Split([]byte(tok), []byte("."))
	if len(parts) != 3 {
		t.Fatal("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(string(parts[1]))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// fleetApps are managed applications installed during the load: one
// definition (made before it), and the installs each node acknowledged.
type fleetApps struct {
	t        *testing.T
	armTok   string
	sub, def string
	mu       sync.Mutex
	acked    map[string]bool
}

// newFleetApps makes, through node n, the groups and the managed
// application definition (deploying a vault into each install's managed
// group) that the load installs.
func newFleetApps(t *testing.T, n *crashServer, w crashWorld) *fleetApps {
	t.Helper()
	a := &fleetApps{t: t, armTok: fleetToken(n, fleetWorld{crashWorld: w}, "https://management.azure.com"), acked: map[string]bool{}}
	oid, _ := claimsOfToken(t, a.armTok)["oid"].(string)
	r := n.must(n.do("GET", "https://management.azure.com/subscriptions?api-version=2022-12-01", a.armTok, "", nil), 200, "subscriptions")
	var subs struct {
		Value []struct{ SubscriptionID string }
	}
	if json.Unmarshal([]byte(r.body), &subs) != nil || len(subs.Value) == 0 {
		t.Fatalf("subscriptions: %s", r.body)
	}
	a.sub = "/subscriptions/" + subs.Value[0].SubscriptionID
	a.def = a.sub + "/resourceGroups/defs/providers/Microsoft.Solutions/applicationDefinitions/fleet"
	for _, x := range [][2]string{
		{a.sub + "/resourceGroups/defs", `{"location":"westeurope"}`},
		{a.sub + "/resourceGroups/apps", `{"location":"westeurope"}`},
		{a.def, `{"location":"westeurope","properties":{"lockLevel":"ReadOnly","displayName":"Fleet","authorizations":[{"principalId":"` + oid +
			`","roleDefinitionId":"b24988ac-6180-42a0-ab88-20f7382dd24c"}],"deploymentSpec":{"vaults":[{"name":"kv{uniqueSuffix}"}]}}}`},
	} {
		if r := a.put(n, x[0], x[1]); r.err != nil || r.status/100 != 2 {
			t.Fatalf("PUT %s: %d %v %s", x[0], r.status, r.err, r.body)
		}
	}
	return a
}

func (a *fleetApps) put(n *crashServer, path, body string) crashResp {
	return n.do("PUT", "https://management.azure.com"+path+"?api-version="+testenv.ARMAPIVersion(path), a.armTok, body,
		map[string]string{"Content-Type": "application/json"})
}

// install installs the application name through node n and records it
// when n acknowledged it provisioned.
func (a *fleetApps) install(n *crashServer, name string) {
	r := a.put(n, a.sub+"/resourceGroups/apps/providers/Microsoft.Solutions/applications/"+name, `{"location":"westeurope","kind":"ServiceCatalog",`+
		`"identity":{"type":"SystemAssigned"},"properties":{"applicationDefinitionId":"`+a.def+`","managedResourceGroupId":"`+a.sub+`/resourceGroups/mrg-`+name+`"}}`)
	var app struct {
		Properties struct{ ProvisioningState string }
	}
	if r.err == nil && r.status/100 == 2 && json.Unmarshal([]byte(r.body), &app) == nil && app.Properties.ProvisioningState == "Succeeded" {
		a.mu.Lock()
		a.acked[name] = true
		a.mu.Unlock()
	}
}

// check: every acknowledged install is listed exactly once through node n,
// provisioned, with its managed group.
func (a *fleetApps) check(n *crashServer) {
	t := a.t
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.acked) == 0 {
		t.Fatal("no managed application install was acknowledged during the load")
	}
	path := a.sub + "/resourceGroups/apps/providers/Microsoft.Solutions/applications"
	r := n.must(n.do("GET", "https://management.azure.com"+path+"?api-version="+testenv.ARMAPIVersion(path+"/x"), a.armTok, "", nil), 200, "list applications")
	var list struct {
		Value []struct {
			Name       string
			Properties struct{ ProvisioningState string }
		}
	}
	if err := json.Unmarshal([]byte(r.body), &list); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, v := range list.Value {
		seen[v.Name]++
		if a.acked[v.Name] && v.Properties.ProvisioningState != "Succeeded" {
			t.Errorf("acknowledged install %s is %s", v.Name, v.Properties.ProvisioningState)
		}
	}
	for name := range a.acked {
		if seen[name] != 1 {
			t.Errorf("acknowledged install %s listed %d times", name, seen[name])
		}
		g := a.sub + "/resourceGroups/mrg-" + name
		n.must(n.do("GET", "https://management.azure.com"+g+"?api-version="+testenv.ARMAPIVersion(g), a.armTok, "", nil), 200, "managed group of "+name)
	}
	t.Logf("%d managed application installs acknowledged, each present once with its managed group", len(a.acked))
}
