package fanout_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/bench"
	"github.com/tenantbridge/tenantbridge/internal/broker/fanout"
	"github.com/tenantbridge/tenantbridge/internal/server"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fleet is a running server and a fleet built on it.
type fleet struct {
	*bench.Fleet
	srv *server.Server
}

// newFleet starts a real server (with its AMQPS listener) and builds,
// through its public APIs, a provider with a multi-tenant application and
// three customers that consented to it (its service principal provisioned
// in each, Data Sender on the command queue and Data Receiver on the
// status queue).
func newFleet(t *testing.T) fleet {
	t.Helper()
	ctx := context.Background()
	srv, err := server.New(ctx, server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", AMQPListen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	ln, err := srv.Listen()
	must(t, err)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	cred, err := azclient.ReadOperatorCredential(srv.OperatorFile())
	must(t, err)
	f, err := bench.NewFleet(ctx, bench.FleetOptions{Server: cred, Customers: 3, Name: "fleet"})
	must(t, err)
	return fleet{f, srv}
}

// webSockets reaches the server's HTTPS listener over AMQP over
// WebSockets, as the CLI does.
func (f fleet) webSockets(t *testing.T) fanout.ClientOptionsFunc {
	t.Helper()
	tr, err := f.Transport()
	must(t, err)
	return fanout.WebSockets(tr)
}

// amqps reaches the server's AMQPS listener, as a program on the host
// does.
func (f fleet) amqps() fanout.ClientOptionsFunc {
	return fanout.AMQPS(f.srv.AMQPAddr(), f.srv.CA().Pool())
}

func messenger(t *testing.T, f fleet, copts fanout.ClientOptionsFunc) *fanout.Messenger {
	t.Helper()
	m, err := fanout.New(fanout.Config{Credential: f.ProviderCredential, ClientOptions: copts})
	must(t, err)
	t.Cleanup(m.Close)
	return m
}

// startWorkers runs one worker per customer, as its administrator, over
// WebSockets.
func startWorkers(t *testing.T, f fleet) []*fanout.Worker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	var ws []*fanout.Worker
	for _, c := range f.Customers {
		w, err := fanout.NewWorker(fanout.WorkerConfig{Credential: c.Admin, CommandQueue: c.CommandQueue, StatusQueue: c.StatusQueue,
			ClientOptions: f.webSockets(t)})
		must(t, err)
		ws = append(ws, w)
		wg.Go(func() { _ = w.Run(ctx) })
	}
	return ws
}

func listen(t *testing.T, m *fanout.Messenger, customers []fanout.Customer, h fanout.Handler) (errs func() []error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var mu sync.Mutex
	var got []error
	go func() {
		defer close(done)
		_ = m.Listen(ctx, customers, h, func(c fanout.Customer, err error) { mu.Lock(); got = append(got, err); mu.Unlock() })
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() []error { mu.Lock(); defer mu.Unlock(); return append([]error(nil), got...) }
}

func await(t *testing.T, call *fanout.Call, n int) map[string]fanout.Reply {
	t.Helper()
	out := map[string]fanout.Reply{}
	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	for len(out) < n {
		select {
		case r := <-call.Replies:
			out[r.Customer.TenantID] = r
		case <-timer.C:
			t.Fatalf("%d of %d replies to %s came", len(out), n, call.ID)
		}
	}
	return out
}

func body(t *testing.T, r fanout.Reply) fanout.ReplyBody {
	t.Helper()
	var b fanout.ReplyBody
	must(t, json.Unmarshal(r.Body, &b))
	return b
}

// TestFleet: a command reaches every customer and every reply comes back,
// matched by CorrelationId; a customer without the Sender role refuses; a
// customer that deletes the provider's service principal cuts it off.
func TestFleet(t *testing.T) {
	ctx := context.Background()
	f := newFleet(t)
	ws := startWorkers(t, f)
	m := messenger(t, f, f.amqps())
	tr := fanout.NewTracker()
	listen(t, m, f.List(), tr.Deliver)
	all := f.List()
	tids := []string{all[0].TenantID, all[1].TenantID, all[2].TenantID}

	// Every customer.
	call := tr.Expect("cmd-1", tids)
	for _, r := range m.Send(ctx, all, fanout.Command{ID: "cmd-1", Name: "ping"}) {
		must(t, r.Err)
	}
	for tid, r := range await(t, call, 3) {
		if r.CorrelationID != "cmd-1" || r.Label != fanout.LabelOK {
			t.Errorf("%s: reply %+v", tid, r)
		}
		if b := body(t, r); b.Result["pong"] == nil {
			t.Errorf("%s: ping answered %s", tid, r.Body)
		}
	}

	// One customer; an unknown command is answered with an error.
	call = tr.Expect("cmd-2", tids[:1])
	must(t, m.Send(ctx, all[:1], fanout.Command{ID: "cmd-2", Name: "reboot"})[0].Err)
	r := await(t, call, 1)[tids[0]]
	if b := body(t, r); r.Label != fanout.LabelError || !strings.Contains(b.Error, "unknown command") {
		t.Errorf("unknown command answered %s %s", r.Label, r.Body)
	}

	// The same command sent twice is executed once (idempotent on MessageId).
	call = tr.Expect("cmd-3", tids[:1])
	must(t, m.Send(ctx, all[:1], fanout.Command{ID: "cmd-3", Name: "ping"})[0].Err)
	must(t, m.Send(ctx, all[:1], fanout.Command{ID: "cmd-3", Name: "ping"})[0].Err)
	await(t, call, 1)
	deadline := time.Now().Add(10 * time.Second)
	for ws[0].Dropped() < 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if ws[0].Dropped() != 1 {
		t.Errorf("the duplicate command was dropped %d times, want 1", ws[0].Dropped())
	}

	// Customer 1 removes the Sender role: it refuses, and is reported.
	c1 := f.Customers[1]
	if _, err := c1.ARM(ctx, http.MethodDelete, c1.SenderRole, bench.RoleAssignmentAPIVersion, nil, nil); err != nil {
		t.Fatal(err)
	}
	call = tr.Expect("cmd-4", tids)
	res := m.Send(ctx, all, fanout.Command{ID: "cmd-4", Name: "ping"})
	var fe *fanout.Error
	if err := res[1].Err; !errors.Is(err, fanout.ErrRefused) || !errors.As(err, &fe) || fe.Code != azservicebus.CodeUnauthorizedAccess || fe.TenantID != tids[1] {
		t.Errorf("without the Sender role: %v, want an unauthorized-access refusal from %s", err, tids[1])
	}
	must(t, res[0].Err)
	must(t, res[2].Err)
	await(t, call, 2)

	// Customer 2 revokes consent: it deletes the provider's service principal.
	c2 := f.Customers[2]
	g, err := c2.Graph(f.Fleet)
	must(t, err)
	must(t, g.DeleteServicePrincipal(ctx, c2.ProviderSP))
	res = m.Send(ctx, all[2:], fanout.Command{ID: "cmd-5", Name: "ping"})
	if err := res[0].Err; !errors.Is(err, fanout.ErrRefused) {
		t.Errorf("after revocation: %v, want a refusal", err)
	}
	// A fresh messenger (no cached token) is refused a token at all.
	res = messenger(t, f, f.webSockets(t)).Send(ctx, all[2:], fanout.Command{ID: "cmd-6", Name: "ping"})
	if err := res[0].Err; !errors.As(err, &fe) || fe.Op != "token" {
		t.Errorf("after revocation, a new token: %v, want the token service's refusal", err)
	}
	if u := tr.Unmatched(); u != 0 {
		t.Errorf("%d unmatched replies", u)
	}
}

// countingConn counts what goes through one AMQP connection: every
// write (go-amqp writes a frame per Write; a heartbeat is an empty frame
// of 8 bytes) and the bytes read.
type countingConn struct {
	net.Conn
	writes, heartbeats, read atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	if len(p) == 8 {
		c.heartbeats.Add(1)
	}
	return c.Conn.Write(p)
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// TestIdleFleetCost: with nothing to receive, a status queue's receiver
// costs nothing on the wire: no flow, no transfer, no request from the
// provider and nothing from the server, only the connection's heartbeats
// (an empty frame each way at half the peer's idle timeout: every 15 s
// with tenantbridge's 60 s and go-amqp's 60 s, so 4 frames of 8 bytes each
// way per customer per minute), where the REST messenger cost a long-poll
// request per customer per minute.
func TestIdleFleetCost(t *testing.T) {
	f := newFleet(t)
	var mu sync.Mutex
	var conns []*countingConn
	ws := f.webSockets(t)
	m := messenger(t, f, func(host string) *azservicebus.ClientOptions {
		opts := ws(host)
		dial := opts.NewWebSocketConn
		opts.NewWebSocketConn = func(ctx context.Context, args azservicebus.NewWebSocketConnArgs) (net.Conn, error) {
			c, err := dial(ctx, args)
			if err != nil {
				return nil, err
			}
			cc := &countingConn{Conn: c}
			mu.Lock()
			conns = append(conns, cc)
			mu.Unlock()
			return cc, nil
		}
		return opts
	})
	got := make(chan fanout.Reply, 3)
	errs := listen(t, m, f.List(), func(_ context.Context, r fanout.Reply) error { got <- r; return nil })
	// One status message per customer, as its administrator: every
	// receiver is attached, has handled one and waits again.
	for _, c := range f.Customers {
		cust, err := fanout.New(fanout.Config{Credential: func(string) (azcore.TokenCredential, error) { return c.Admin, nil }, ClientOptions: f.amqps()})
		must(t, err)
		status := c.Customer
		status.CommandQueue = status.StatusQueue
		must(t, cust.SendOne(context.Background(), status, fanout.Command{ID: "warm", Name: "ok"}))
		cust.Close()
	}
	for range 3 {
		select {
		case <-got:
		case <-time.After(20 * time.Second):
			t.Fatalf("the status receivers did not start; errors: %v", errs())
		}
	}
	time.Sleep(500 * time.Millisecond) // the completes and the next credit went out
	mu.Lock()
	defer mu.Unlock()
	if len(conns) != 3 {
		t.Fatalf("%d connections for 3 customers, want one per namespace", len(conns))
	}
	type counts struct{ writes, heartbeats, read int64 }
	snap := func() []counts {
		out := make([]counts, len(conns))
		for i, c := range conns {
			out[i] = counts{c.writes.Load(), c.heartbeats.Load(), c.read.Load()}
		}
		return out
	}
	window := 3 * time.Second
	before := snap()
	time.Sleep(window)
	after := snap()
	for i := range after {
		w, hb, rd := after[i].writes-before[i].writes, after[i].heartbeats-before[i].heartbeats, after[i].read-before[i].read
		// At most one heartbeat each way fits in the window (15 s apart).
		if w != hb || hb > 1 || rd%8 != 0 || rd > 8 {
			t.Errorf("connection %d, idle for %s: %d frames written (%d heartbeats), %d bytes read; want heartbeats only", i, window, w, hb, rd)
		}
		t.Logf("connection %d idle for %s: %d heartbeat(s) written, %d bytes read", i, window, hb, rd)
	}
	if e := errs(); len(e) != 0 {
		t.Errorf("listen errors: %v", e)
	}
}

// TestReplyWithoutPollingDelay: a reply sent while the provider's
// receiver waits (no deadline, no timer) reaches it at once.
func TestReplyWithoutPollingDelay(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	m := messenger(t, f, f.amqps())
	got := make(chan time.Time, 1)
	var n atomic.Int32
	errs := listen(t, m, f.List(), func(_ context.Context, r fanout.Reply) error {
		if n.Add(1) == 1 {
			got <- time.Now()
		}
		return nil
	})
	time.Sleep(time.Second) // the receivers are waiting
	// The customer's side sends a status message as its administrator.
	c := f.Customers[1]
	cust, err := fanout.New(fanout.Config{Credential: func(string) (azcore.TokenCredential, error) { return c.Admin, nil }, ClientOptions: f.webSockets(t)})
	must(t, err)
	defer cust.Close()
	status := c.Customer
	status.CommandQueue = status.StatusQueue
	t0 := time.Now()
	must(t, cust.SendOne(ctx, status, fanout.Command{ID: "status-1", Name: "ok", Body: []byte(`{}`)}))
	select {
	case at := <-got:
		if d := at.Sub(t0); d >= 3*time.Second {
			t.Errorf("the reply took %s", d)
		}
		t.Logf("reply received %s after its send", at.Sub(t0))
	case <-time.After(10 * time.Second):
		t.Fatalf("no reply within 10 s; errors: %v", errs())
	}
}
