package fanout_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

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

// newFleet starts a real server and builds, through its public APIs, a
// provider with a multi-tenant application and three customers that
// consented to it (its service principal provisioned in each, Data Sender
// on the command queue and Data Receiver on the status queue).
func newFleet(t *testing.T) *bench.Fleet {
	t.Helper()
	ctx := context.Background()
	srv, err := server.New(ctx, server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
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
	return f
}

// countingTransport counts requests by method and path suffix.
type countingTransport struct {
	rt       http.RoundTripper
	mu       sync.Mutex
	receives map[string]int // host → peek-locks
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/messages/head") {
		c.mu.Lock()
		c.receives[r.URL.Host]++
		c.mu.Unlock()
	}
	return c.rt.RoundTrip(r)
}

func messenger(t *testing.T, f *bench.Fleet, timeout time.Duration, wrap func(http.RoundTripper) http.RoundTripper) *fanout.Messenger {
	t.Helper()
	tr, err := f.Transport()
	must(t, err)
	var rt http.RoundTripper = tr
	if wrap != nil {
		rt = wrap(tr)
	}
	m, err := fanout.New(fanout.Config{Credential: f.ProviderCredential, Transport: rt, ReceiveTimeout: timeout})
	must(t, err)
	return m
}

// startWorkers runs one worker per customer, as its administrator.
func startWorkers(t *testing.T, f *bench.Fleet) []*fanout.Worker {
	t.Helper()
	tr, err := f.Transport()
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	var ws []*fanout.Worker
	for _, c := range f.Customers {
		w, err := fanout.NewWorker(fanout.WorkerConfig{Credential: c.Admin, CommandQueue: c.CommandQueue, StatusQueue: c.StatusQueue, Transport: tr})
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
	m := messenger(t, f, 0, nil)
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
	if err := res[1].Err; !errors.Is(err, fanout.ErrRefused) || !errors.As(err, &fe) || fe.Status != http.StatusUnauthorized || fe.TenantID != tids[1] {
		t.Errorf("without the Sender role: %v, want a 401 refusal from %s", err, tids[1])
	}
	must(t, res[0].Err)
	must(t, res[2].Err)
	await(t, call, 2)

	// Customer 2 revokes consent: it deletes the provider's service principal.
	c2 := f.Customers[2]
	g, err := c2.Graph(f)
	must(t, err)
	must(t, g.DeleteServicePrincipal(ctx, c2.ProviderSP))
	res = m.Send(ctx, all[2:], fanout.Command{ID: "cmd-5", Name: "ping"})
	if err := res[0].Err; !errors.Is(err, fanout.ErrRefused) {
		t.Errorf("after revocation: %v, want a refusal", err)
	}
	// A fresh messenger (no cached token) is refused a token at all.
	res = messenger(t, f, 0, nil).Send(ctx, all[2:], fanout.Command{ID: "cmd-6", Name: "ping"})
	if err := res[0].Err; !errors.As(err, &fe) || fe.Op != "token" {
		t.Errorf("after revocation, a new token: %v, want the token service's refusal", err)
	}
	if u := tr.Unmatched(); u != 0 {
		t.Errorf("%d unmatched replies", u)
	}
}

// TestIdleFleetCost: with nothing to receive, each customer's status queue
// costs one request per long-poll, and no more.
func TestIdleFleetCost(t *testing.T) {
	f := newFleet(t)
	ct := &countingTransport{receives: map[string]int{}}
	m := messenger(t, f, time.Second, func(rt http.RoundTripper) http.RoundTripper { ct.rt = rt; return ct })
	window := 3500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), window)
	defer cancel()
	_ = m.Listen(ctx, f.List(), func(context.Context, fanout.Reply) error { return nil }, func(c fanout.Customer, err error) { t.Error(err) })
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if len(ct.receives) != 3 {
		t.Fatalf("receives on %d status queues, want 3: %v", len(ct.receives), ct.receives)
	}
	// 3.5 long-polls of 1 s: the 4th is still waiting when the window ends.
	for host, n := range ct.receives {
		if n < 3 || n > 4 {
			t.Errorf("%s: %d receive requests in %s with a 1 s long-poll, want 3 or 4", host, n, window)
		}
	}
}

// TestReplyWithoutPollingDelay: a reply sent while the provider's 60 s
// long-poll is waiting reaches it at once.
func TestReplyWithoutPollingDelay(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	m := messenger(t, f, 0, nil)
	got := make(chan time.Time, 1)
	var n atomic.Int32
	errs := listen(t, m, f.List(), func(_ context.Context, r fanout.Reply) error {
		if n.Add(1) == 1 {
			got <- time.Now()
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond) // the long-polls are waiting
	// The customer's side sends a status message as its administrator.
	c := f.Customers[1]
	tr, err := f.Transport()
	must(t, err)
	cust, err := fanout.New(fanout.Config{Credential: func(string) (azcore.TokenCredential, error) { return c.Admin, nil }, Transport: tr})
	must(t, err)
	status := c.Customer
	status.CommandQueue = status.StatusQueue
	t0 := time.Now()
	must(t, cust.SendOne(ctx, status, fanout.Command{ID: "status-1", Name: "ok", Body: []byte(`{}`)}))
	select {
	case at := <-got:
		if d := at.Sub(t0); d >= time.Second {
			t.Errorf("the reply took %s", d)
		}
		t.Logf("reply received %s after its send", at.Sub(t0))
	case <-time.After(5 * time.Second):
		t.Fatalf("no reply within 5 s (long-poll is 60 s); errors: %v", errs())
	}
}
