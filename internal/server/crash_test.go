package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/tenantbridge/tenantbridge/internal/fleet"
	"github.com/tenantbridge/tenantbridge/internal/server"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
)

// The crash test's server runs in a child process: this test binary, run
// again with these variables set, serves until it is killed.
const (
	crashChildEnv = "TENANTBRIDGE_CRASH_CHILD_DIR"
	crashStoreEnv = "TENANTBRIDGE_CRASH_CHILD_STORE"
)

// TestCrashChildProcess is the child's body; run directly it does nothing.
func TestCrashChildProcess(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("the server process of TestServiceBusSurvivesSIGKILL")
	}
	// A fleet's node (multinode_test.go) has the node key in the environment.
	nodeKey, err := fleet.LoadNodeKey("", os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(context.Background(), server.Config{DataDir: dir, Listen: "127.0.0.1:0", AMQPListen: "127.0.0.1:0",
		StoreURL: os.Getenv(crashStoreEnv), NodeKey: nodeKey, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	// The addresses (HTTPS, then AMQPS) are published only once both
	// listeners are up.
	tmp := filepath.Join(dir, "addr.tmp")
	if err := os.WriteFile(tmp, []byte(ln.Addr().String()+"\n"+srv.AMQPAddr()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "addr")); err != nil {
		t.Fatal(err)
	}
	_ = srv.Serve(context.Background(), ln) // until SIGKILL
}

// crashServer is the child process and how to reach it.
type crashServer struct {
	t       *testing.T
	dir     string
	store   string
	cmd     *exec.Cmd
	addr    atomic.Pointer[string] // the HTTPS listener's
	amqp    string                 // the AMQPS listener's, new at every start
	pool    *x509.CertPool
	client  *http.Client
	opKey   string
	stopped chan struct{}
}

func (c *crashServer) start() {
	c.t.Helper()
	_ = os.Remove(filepath.Join(c.dir, "addr"))
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+c.dir, crashStoreEnv+"="+c.store)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.cmd = cmd
	c.stopped = make(chan struct{})
	go func() { _ = cmd.Wait(); close(c.stopped) }()
	c.t.Cleanup(c.kill)
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(c.dir, "addr"))
		if err == nil {
			a, amqpAddr, _ := strings.Cut(string(b), "\n")
			c.addr.Store(&a)
			c.amqp = amqpAddr
			break
		}
		select {
		case <-c.stopped:
			c.t.Fatal("the server process exited before listening")
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatal("the server process did not start listening within 60 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c.client == nil {
		pem, err := os.ReadFile(filepath.Join(c.dir, "ca.pem"))
		if err != nil {
			c.t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		c.pool = pool
		dialer := &net.Dialer{Timeout: 5 * time.Second}
		c.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool},
			MaxIdleConnsPerHost: 64,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, *c.addr.Load())
			},
		}}
		var op struct{ Key string }
		b, err := os.ReadFile(filepath.Join(c.dir, "operator.json"))
		if err != nil || json.Unmarshal(b, &op) != nil {
			c.t.Fatalf("operator.json: %v", err)
		}
		c.opKey = op.Key
	}
}

// kill sends SIGKILL: no shutdown, no flush, no deferred anything.
func (c *crashServer) kill() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.stopped
	c.client.CloseIdleConnections()
}

type crashResp struct {
	status int
	header http.Header
	body   string
	err    error
}

func (c *crashServer) do(method, u, bearer, body string, header map[string]string) crashResp {
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		return crashResp{err: err}
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return crashResp{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return crashResp{status: resp.StatusCode, header: resp.Header, body: string(b), err: err}
}

func (c *crashServer) must(r crashResp, want int, what string) crashResp {
	c.t.Helper()
	if r.err != nil || r.status != want {
		c.t.Fatalf("%s: %d %v %s", what, r.status, r.err, r.body)
	}
	return r
}

// TestServiceBusSurvivesSIGKILL: a separate server process under
// concurrent send / peek-lock / complete load is killed with SIGKILL and
// started again on the same data. Every send acknowledged with 201 is
// received: exactly once after the restart unless it was completed before
// the kill (a message whose complete was in flight at the kill may have
// been completed, and comes back at most once); nothing whose complete
// was acknowledged is delivered again; and nothing appears that no one
// sent.
func TestServiceBusSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a server process")
	}
	t.Run("sqlite", func(t *testing.T) { crashTest(t, "") })
	t.Run("postgres", func(t *testing.T) {
		storetest.RequirePostgres(t)
		crashTest(t, storetest.PostgresSchemaDSN(t))
	})
}

func crashTest(t *testing.T, storeURL string) {
	c := &crashServer{t: t, dir: t.TempDir(), store: storeURL}
	c.start()
	w := c.world()
	busTok := w.busTok
	queue := "https://" + crashFQDN + "/work"

	// The load: senders record what was acknowledged; receivers record
	// what they were given and what they completed with a 200.
	l := newCrashLedger()
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() { c.restSender(l, &stop, queue, busTok, fmt.Sprintf("s%d", w)) })
	}
	for range 6 {
		wg.Go(func() { c.restReceiver(l, &stop, queue, busTok) })
	}
	time.Sleep(2 * time.Second)
	c.kill() // mid-load
	stop.Store(true)
	wg.Wait()
	l.logBefore(t)

	// Restart on the same data and drain the queue. Messages locked at
	// the kill come back when their 5 s locks expire.
	c.start()
	after := map[string]int{}
	quiet := 0
	for quiet < 2 {
		r := c.do("POST", queue+"/messages/head?timeout=7", busTok, "", nil)
		if r.err != nil {
			t.Fatalf("drain: %v", r.err)
		}
		switch r.status {
		case http.StatusNoContent:
			quiet++
			continue
		case http.StatusCreated:
			quiet = 0
		default:
			t.Fatalf("drain: %d %s", r.status, r.body)
		}
		after[r.body]++
		c.must(c.do("DELETE", r.header.Get("Location"), busTok, "", nil), 200, "complete while draining")
	}
	l.check(t, after)
}

// crashFQDN is the crash test's namespace.
const crashFQDN = "crash-bus.servicebus.windows.net"

// crashWorld is the tenant the crash tests load: its administrator (Azure
// Service Bus Data Owner on the namespace) and a Service Bus token of it.
type crashWorld struct {
	tenantID, clientID, clientSecret string
	busTok                           string
}

// world creates a tenant, a namespace and a queue "work" with the
// shortest lock Azure allows, and makes the administrator Azure Service
// Bus Data Owner.
func (c *crashServer) world() crashWorld {
	t := c.t
	t.Helper()
	var tc struct {
		TenantID, SubscriptionID string
		Admin                    struct{ ClientID, ClientSecret, ServicePrincipalID string }
	}
	r := c.must(c.do("POST", "https://"+*c.addr.Load()+"/_operator/v1/tenants", c.opKey, `{"name":"crash"}`,
		map[string]string{"Content-Type": "application/json"}), 201, "create tenant")
	if err := json.Unmarshal([]byte(r.body), &tc); err != nil {
		t.Fatal(err)
	}
	token := func(resource string) string {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {tc.Admin.ClientID},
			"client_secret": {tc.Admin.ClientSecret}, "scope": {resource + "/.default"}}
		r := c.must(c.do("POST", "https://login.microsoftonline.com/"+tc.TenantID+"/oauth2/v2.0/token", "", form.Encode(),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded"}), 200, "token")
		var tr struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.Unmarshal([]byte(r.body), &tr)
		return tr.AccessToken
	}
	armTok := token("https://management.azure.com")
	ns := "/subscriptions/" + tc.SubscriptionID + "/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/crash-bus"
	arm := func(path, body string) {
		r := c.do("PUT", "https://management.azure.com"+path+"?api-version="+testenv.ARMAPIVersion(path), armTok, body,
			map[string]string{"Content-Type": "application/json"})
		if r.err != nil || r.status/100 != 2 {
			t.Fatalf("PUT %s: %d %v %s", path, r.status, r.err, r.body)
		}
	}
	arm("/subscriptions/"+tc.SubscriptionID+"/resourceGroups/rg", `{"location":"westeurope"}`)
	arm(ns, `{"location":"westeurope"}`)
	arm(ns+"/queues/work", `{"properties":{"lockDuration":"PT5S","maxDeliveryCount":100}}`)
	arm(ns+"/providers/Microsoft.Authorization/roleAssignments/"+"6a1f2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b",
		`{"properties":{"roleDefinitionId":"/subscriptions/`+tc.SubscriptionID+`/providers/Microsoft.Authorization/roleDefinitions/090c5cfd-751d-490a-894a-3ce6f1109419","principalId":"`+tc.Admin.ServicePrincipalID+`"}}`)
	return crashWorld{tenantID: tc.TenantID, clientID: tc.Admin.ClientID, clientSecret: tc.Admin.ClientSecret,
		busTok: token("https://servicebus.azure.net")}
}

// crashLedger is what the load's clients were told: which sends were
// attempted and acknowledged, which messages were delivered to them and
// which completes were acknowledged. A message's body is its id.
type crashLedger struct {
	mu        sync.Mutex
	attempted map[string]bool
	acked     map[string]bool
	completed map[string]bool
	delivered map[string]int
	// completedBy is the front-end ("REST", "AMQP") whose complete was
	// acknowledged, for the failures' messages.
	completedBy map[string]string
	// per front-end counts, to know the load runs on both before the kill
	restAcked, amqpAcked, restCompleted, amqpCompleted int
	progress                                           chan struct{} // signalled after every count
}

func newCrashLedger() *crashLedger {
	return &crashLedger{attempted: map[string]bool{}, acked: map[string]bool{}, completed: map[string]bool{},
		delivered: map[string]int{}, completedBy: map[string]string{}, progress: make(chan struct{}, 1)}
}

func (l *crashLedger) record(f func()) {
	l.mu.Lock()
	f()
	l.mu.Unlock()
	select {
	case l.progress <- struct{}{}:
	default:
	}
}

func (l *crashLedger) logBefore(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("before the kill: %d sends attempted, %d acknowledged (REST %d, AMQP %d), %d messages delivered, %d completes acknowledged (REST %d, AMQP %d)",
		len(l.attempted), len(l.acked), l.restAcked, l.amqpAcked, len(l.delivered), len(l.completed), l.restCompleted, l.amqpCompleted)
	if len(l.acked) == 0 || l.restCompleted+l.amqpCompleted == 0 {
		t.Fatal("the load did not get going before the kill")
	}
}

// restSender sends messages named prefix-N over REST until stop.
func (c *crashServer) restSender(l *crashLedger, stop *atomic.Bool, queue, busTok, prefix string) {
	for i := 0; !stop.Load(); i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		l.record(func() { l.attempted[id] = true })
		r := c.do("POST", queue+"/messages", busTok, id, nil)
		if r.err == nil && r.status == http.StatusCreated {
			l.record(func() { l.acked[id] = true; l.restAcked++ })
		} else if r.err != nil {
			time.Sleep(10 * time.Millisecond) // the server is down
		}
	}
}

// restReceiver peek-locks and completes over REST until stop.
func (c *crashServer) restReceiver(l *crashLedger, stop *atomic.Bool, queue, busTok string) {
	for !stop.Load() {
		r := c.do("POST", queue+"/messages/head?timeout=1", busTok, "", nil)
		if r.err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if r.status != http.StatusCreated {
			continue
		}
		l.record(func() { l.delivered[r.body]++ })
		d := c.do("DELETE", r.header.Get("Location"), busTok, "", nil)
		if d.err == nil && d.status == http.StatusOK {
			l.record(func() { l.completed[r.body] = true; l.completedBy[r.body] = "REST"; l.restCompleted++ })
		}
	}
}

// check holds the invariants against what was drained after the restart
// (after: how often each message was delivered then).
func (l *crashLedger) check(t *testing.T, after map[string]int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	unknown := 0
	for id := range l.acked {
		switch {
		case l.completed[id] && after[id] > 0:
			t.Errorf("%s was completed over %s before the kill and delivered again after it", id, l.completedBy[id])
		case l.completed[id]:
		case l.delivered[id] > 0:
			// Locked before the kill, its complete unanswered: the kill
			// came before or after that complete's commit. Either way it
			// is delivered at most once more.
			unknown++
			if after[id] > 1 {
				t.Errorf("%s delivered %d times after the restart", id, after[id])
			}
		case after[id] != 1:
			t.Errorf("acknowledged send %s, never delivered before the kill: delivered %d times after the restart, want exactly 1", id, after[id])
		}
	}
	for id, n := range after {
		if !l.attempted[id] {
			t.Errorf("%q delivered after the restart was never sent", id)
		}
		if l.completed[id] {
			t.Errorf("%s delivered after the restart had been completed over %s", id, l.completedBy[id])
		}
		if n > 1 {
			t.Errorf("%s delivered %d times after the restart", id, n)
		}
	}
	t.Logf("after the restart: %d messages drained (acknowledged but not completed, and sends in flight at the kill); %d completes were in flight at the kill",
		len(after), unknown)
}

// TestServiceBusSurvivesSIGKILLOverAMQP is the crash test with the real
// azservicebus over AMQPS next to REST clients, on one broker: three
// senders and two receivers over REST, three senders and four receivers
// over AMQP. A send counts as acknowledged when SendMessage returned nil
// (the broker settled it accepted), a complete when CompleteMessage
// returned nil (the receiver settle mode is second: the broker confirmed
// the disposition). The server is killed once both front-ends have
// acknowledged sends and completes, restarted, and the queue drained by
// new AMQP clients until a peek finds it empty; the invariants are the
// REST test's.
func TestServiceBusSurvivesSIGKILLOverAMQP(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a server process")
	}
	t.Run("sqlite", func(t *testing.T) { crashTestAMQP(t, "") })
	t.Run("postgres", func(t *testing.T) {
		storetest.RequirePostgres(t)
		crashTestAMQP(t, storetest.PostgresSchemaDSN(t))
	})
}

// amqpClient is a new azservicebus client of the running child over
// AMQPS (CustomEndpoint, as a program on the host reaches a local
// Service Bus), authenticated with the administrator's Entra credential.
// Retries are few and short: the clients of a killed server should give
// up, not hide the kill.
func (c *crashServer) amqpClient(w crashWorld) *azservicebus.Client {
	c.t.Helper()
	cred, err := azidentity.NewClientSecretCredential(w.tenantID, w.clientID, w.clientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: policy.ClientOptions{Transport: c.client}})
	if err != nil {
		c.t.Fatal(err)
	}
	client, err := azservicebus.NewClient(crashFQDN, cred, &azservicebus.ClientOptions{CustomEndpoint: c.amqp,
		TLSConfig:    &tls.Config{RootCAs: c.pool, ServerName: crashFQDN},
		RetryOptions: azservicebus.RetryOptions{MaxRetries: 1, RetryDelay: 20 * time.Millisecond, MaxRetryDelay: 100 * time.Millisecond}})
	if err != nil {
		c.t.Fatal(err)
	}
	return client
}

func crashTestAMQP(t *testing.T, storeURL string) {
	c := &crashServer{t: t, dir: t.TempDir(), store: storeURL}
	c.start()
	w := c.world()
	queue := "https://" + crashFQDN + "/work"

	l := newCrashLedger()
	var stop atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() { c.restSender(l, &stop, queue, w.busTok, fmt.Sprintf("rest%d", i)) })
	}
	for range 2 {
		wg.Go(func() { c.restReceiver(l, &stop, queue, w.busTok) })
	}
	var clients []*azservicebus.Client
	for i := range 3 {
		client := c.amqpClient(w)
		clients = append(clients, client)
		wg.Go(func() { amqpSender(ctx, l, &stop, client, fmt.Sprintf("amqp%d", i)) })
	}
	for range 4 {
		client := c.amqpClient(w)
		clients = append(clients, client)
		wg.Go(func() { amqpReceiver(ctx, l, &stop, client) })
	}
	// Kill once both front-ends have acknowledged sends and completes,
	// whatever the machine's speed.
	for {
		l.mu.Lock()
		going := min(l.restAcked, l.amqpAcked, l.restCompleted, l.amqpCompleted) >= 50
		l.mu.Unlock()
		if going {
			break
		}
		<-l.progress
	}
	c.kill() // mid-load
	stop.Store(true)
	cancel() // calls waiting on the dead server end
	wg.Wait()
	for _, client := range clients {
		_ = client.Close(context.Background())
	}
	l.logBefore(t)

	// Restart on the same data and drain over AMQP with new clients.
	// Messages locked at the kill come back when their 5 s locks expire;
	// the drain ends when a peek (which sees locked messages too) finds
	// the queue empty.
	c.start()
	client := c.amqpClient(w)
	defer client.Close(context.Background())
	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer dcancel()
	receiver, err := client.NewReceiverForQueue("work", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer receiver.Close(dctx)
	after := map[string]int{}
	for dctx.Err() == nil {
		wait, stopWait := context.WithTimeout(dctx, 7*time.Second)
		ms, err := receiver.ReceiveMessages(wait, 100, nil)
		stopWait()
		if err != nil && dctx.Err() == nil && wait.Err() == nil {
			t.Fatalf("drain: %v", err)
		}
		for _, m := range ms {
			after[string(m.Body)]++
			if err := receiver.CompleteMessage(dctx, m, nil); err != nil {
				t.Fatalf("complete while draining: %v", err)
			}
		}
		if len(ms) > 0 {
			continue
		}
		from := int64(0)
		left, err := receiver.PeekMessages(dctx, 1, &azservicebus.PeekMessagesOptions{FromSequenceNumber: &from})
		if err != nil {
			t.Fatalf("peek while draining: %v", err)
		}
		if len(left) == 0 {
			break
		}
	}
	if dctx.Err() != nil {
		t.Fatal("the queue was not drained within 5 minutes")
	}
	l.check(t, after)
}

// amqpSender sends messages named prefix-N with azservicebus until stop.
func amqpSender(ctx context.Context, l *crashLedger, stop *atomic.Bool, client *azservicebus.Client, prefix string) {
	sender, err := client.NewSender("work", nil)
	if err != nil {
		return
	}
	defer sender.Close(context.Background())
	for i := 0; !stop.Load(); i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		l.record(func() { l.attempted[id] = true })
		if err := sender.SendMessage(ctx, &azservicebus.Message{Body: []byte(id)}, nil); err == nil {
			l.record(func() { l.acked[id] = true; l.amqpAcked++ })
		} else if ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond) // the server is down
		}
	}
}

// amqpReceiver peek-locks and completes with azservicebus until stop.
func amqpReceiver(ctx context.Context, l *crashLedger, stop *atomic.Bool, client *azservicebus.Client) {
	receiver, err := client.NewReceiverForQueue("work", nil)
	if err != nil {
		return
	}
	defer receiver.Close(context.Background())
	for !stop.Load() {
		ms, err := receiver.ReceiveMessages(ctx, 5, nil)
		if err != nil && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		for _, m := range ms {
			id := string(m.Body)
			l.record(func() { l.delivered[id]++ })
			if err := receiver.CompleteMessage(ctx, m, nil); err == nil {
				l.record(func() {
					// The engine settles a peek-lock receiver's
					// disposition only once the broker has committed
					// the complete: a nil here is as durable as
					// REST's 200.
					l.amqpCompleted++
					l.completed[id] = true
					l.completedBy[id] = "AMQP"
				})
			}
		}
	}
}
