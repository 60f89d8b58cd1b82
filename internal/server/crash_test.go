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

	"github.com/tenantbridge/tenantbridge/internal/server"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
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
	srv, err := server.New(context.Background(), server.Config{DataDir: dir, Listen: "127.0.0.1:0",
		StoreURL: os.Getenv(crashStoreEnv), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	// The address is published only once the listener is up.
	tmp := filepath.Join(dir, "addr.tmp")
	if err := os.WriteFile(tmp, []byte(ln.Addr().String()), 0o600); err != nil {
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
	addr    atomic.Pointer[string]
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
			a := string(b)
			c.addr.Store(&a)
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

	// A tenant, a namespace and a queue with the shortest lock Azure
	// allows, and the administrator as Azure Service Bus Data Owner.
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
		r := c.do("PUT", "https://management.azure.com"+path+"?api-version=2022-10-01-preview", armTok, body,
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
	busTok := token("https://servicebus.azure.net")
	queue := "https://crash-bus.servicebus.windows.net/work"

	// The load: senders record what was acknowledged; receivers record
	// what they were given and what they completed with a 200.
	var (
		mu        sync.Mutex
		attempted = map[string]bool{}
		acked     = map[string]bool{}
		completed = map[string]bool{}
		delivered = map[string]int{}
	)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				id := fmt.Sprintf("s%d-%d", w, i)
				mu.Lock()
				attempted[id] = true
				mu.Unlock()
				r := c.do("POST", queue+"/messages", busTok, id, nil)
				if r.err == nil && r.status == http.StatusCreated {
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				} else if r.err != nil {
					time.Sleep(10 * time.Millisecond) // the server is down
				}
			}
		})
	}
	for range 6 {
		wg.Go(func() {
			for !stop.Load() {
				r := c.do("POST", queue+"/messages/head?timeout=1", busTok, "", nil)
				if r.err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				if r.status != http.StatusCreated {
					continue
				}
				mu.Lock()
				delivered[r.body]++
				mu.Unlock()
				d := c.do("DELETE", r.header.Get("Location"), busTok, "", nil)
				if d.err == nil && d.status == http.StatusOK {
					mu.Lock()
					completed[r.body] = true
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(2 * time.Second)
	c.kill() // mid-load
	stop.Store(true)
	wg.Wait()
	mu.Lock()
	t.Logf("before the kill: %d sends attempted, %d acknowledged, %d deliveries, %d completes acknowledged",
		len(attempted), len(acked), len(delivered), len(completed))
	if len(acked) == 0 || len(completed) == 0 {
		t.Fatal("the load did not get going before the kill")
	}
	mu.Unlock()

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

	unknown := 0
	for id := range acked {
		switch {
		case completed[id] && after[id] > 0:
			t.Errorf("%s was completed before the kill and delivered again after it", id)
		case completed[id]:
		case delivered[id] > 0:
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
		if !attempted[id] {
			t.Errorf("%q delivered after the restart was never sent", id)
		}
		if completed[id] {
			t.Errorf("%s delivered after the restart had been completed", id)
		}
		if n > 1 {
			t.Errorf("%s delivered %d times after the restart", id, n)
		}
	}
	t.Logf("after the restart: %d messages drained (acknowledged but not completed, and sends in flight at the kill); %d completes were in flight at the kill",
		len(after), unknown)
}
