package outbox

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/postgres"
	"github.com/tenantbridge/tenantbridge/internal/store/sqlite"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// clock is a test clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// endpoint is a notification receiver: respond decides each answer (nil:
// 204); it records what it received, per key, in order.
type endpoint struct {
	srv *httptest.Server

	mu       sync.Mutex
	respond  func(n int, w http.ResponseWriter, r *http.Request) bool // n counts requests from 1; true when it answered
	requests int
	got      map[string][]string // key -> bodies
	types    []string
}

func newEndpoint(t *testing.T, l net.Listener) *endpoint {
	e := &endpoint{got: map[string][]string{}}
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(e.serve))
	if l != nil {
		e.srv.Listener.Close()
		e.srv.Listener = l
	}
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	return e
}

func (e *endpoint) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	e.mu.Lock()
	e.requests++
	n, respond := e.requests, e.respond
	e.mu.Unlock()
	if respond != nil && respond(n, w, r) {
		return
	}
	key, _, _ := strings.Cut(string(body), "/")
	e.mu.Lock()
	e.got[key] = append(e.got[key], string(body))
	e.types = append(e.types, r.Header.Get("Content-Type"))
	e.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (e *endpoint) setRespond(fn func(n int, w http.ResponseWriter, r *http.Request) bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.respond = fn
}

func (e *endpoint) received(key string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.got[key]...)
}

func status(code int, header ...string) func(int, http.ResponseWriter, *http.Request) bool {
	return func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		return true
	}
}

type world struct {
	t     *testing.T
	st    store.Store
	clock *clock
	tn    store.Tenant
}

func newWorld(t *testing.T, st store.Store) *world {
	w := &world{t: t, st: st, clock: newClock()}
	id := newID()
	w.tn = store.Tenant{ID: id, Name: "p" + id[:8], Domain: "p" + id[:8] + ".example", SubscriptionID: newID()}
	if err := st.CreateTenant(t.Context(), w.tn); err != nil {
		t.Fatal(err)
	}
	return w
}

// enqueue stores a message whose body is "key/n", created now.
func (w *world) enqueue(url, key string, n int, mod ...func(*store.OutboxMessage)) store.OutboxMessage {
	w.t.Helper()
	m := store.OutboxMessage{ID: newID(), TenantID: w.tn.ID, Topic: "def", Key: key, URL: url, ContentType: "text/plain",
		Body: fmt.Appendf(nil, "%s/%d", key, n), Created: w.clock.Now()}
	for _, f := range mod {
		f(&m)
	}
	m, err := w.st.EnqueueOutbox(w.t.Context(), m)
	if err != nil {
		w.t.Fatal(err)
	}
	return m
}

func (w *world) deliverer(cfg Config) *Deliverer {
	w.t.Helper()
	if cfg.Store == nil {
		cfg.Store = w.st
	}
	if cfg.Now == nil {
		cfg.Now = w.clock.Now
	}
	d, err := New(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	return d
}

// run starts d and returns a function that stops it and waits for it.
func run(t *testing.T, d *Deliverer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(40 * time.Second):
				t.Error("Run did not return after its context was cancelled")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func (w *world) messages() map[string]store.OutboxMessage {
	w.t.Helper()
	ms, err := w.st.ListOutbox(context.Background(), store.OutboxQuery{TenantID: w.tn.ID, Limit: 1000})
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]store.OutboxMessage{}
	for _, m := range ms {
		out[m.ID] = m
	}
	return out
}

func (w *world) message(id string) store.OutboxMessage { return w.messages()[id] }

func (w *world) attempts() int {
	n := 0
	for _, m := range w.messages() {
		n += m.Attempts
	}
	return n
}

func (w *world) settled() bool {
	for _, m := range w.messages() {
		if m.State == store.OutboxPending {
			return false
		}
	}
	return true
}

// waitFor polls cond until it holds, failing the test after a while.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// advanceUntil moves the clock by step and wakes d until cond holds,
// waiting after each step for an attempt to be recorded.
func (w *world) advanceUntil(d *Deliverer, step time.Duration, maxSteps int, what string, cond func() bool) {
	w.t.Helper()
	if cond == nil { // just take the steps
		cond = func() bool { return false }
		what = ""
	}
	for range maxSteps {
		if cond() {
			return
		}
		before := w.attempts()
		w.clock.Advance(step)
		d.Notify()
		waitFor(w.t, "an attempt", func() bool { return cond() || w.attempts() > before })
	}
	if what != "" && !cond() {
		w.t.Fatalf("%s: not after %d steps of %v", what, maxSteps, step)
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestDeliver(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		w := newWorld(t, st)
		e := newEndpoint(t, nil)
		d := w.deliverer(Config{})
		run(t, d)
		var ids []string
		for i := range 3 {
			ids = append(ids, w.enqueue(e.srv.URL+"/resource?sig=abc", "app", i).ID)
		}
		noType := w.enqueue(e.srv.URL+"/resource", "other", 0, func(m *store.OutboxMessage) { m.ContentType = "" })
		d.Notify()
		waitFor(t, "delivery", w.settled)
		for _, id := range append(ids, noType.ID) {
			m := w.message(id)
			if m.State != store.OutboxDelivered || m.Attempts != 1 || m.LastStatus != 204 || m.DeliveredAt.IsZero() {
				t.Errorf("message %s: %+v", id, m)
			}
			as, err := st.ListOutboxAttempts(t.Context(), id)
			if err != nil || len(as) != 1 || as[0].Status != 204 || as[0].Error != "" {
				t.Errorf("attempts of %s: %+v %v", id, as, err)
			}
		}
		if got := e.received("app"); strings.Join(got, " ") != "app/0 app/1 app/2" {
			t.Errorf("received %q, want app/0 app/1 app/2 in order", got)
		}
		e.mu.Lock()
		types := strings.Join(e.types, ",")
		e.mu.Unlock()
		if strings.Count(types, "text/plain") != 3 || !strings.Contains(types, "application/json") {
			t.Errorf("content types %q: want the message's, application/json by default", types)
		}
	})
}

// TestEndpointDownThenBack: refused connections, then 503s and a 429
// with Retry-After, then success: every message arrives, in order per key.
func TestEndpointDownThenBack(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		w := newWorld(t, st)
		addr := closedAddr(t)
		url := "http://" + addr + "/resource?sig=TOPSECRET"
		d := w.deliverer(Config{})
		run(t, d)
		for i := range 3 {
			w.enqueue(url, "app-a", i)
			w.enqueue(url, "app-b", i)
		}
		d.Notify()
		waitFor(t, "the first attempts", func() bool { return w.attempts() >= 2 })
		for _, m := range w.messages() {
			if m.State != store.OutboxPending {
				t.Fatalf("message %s is %s after a refused connection, want pending", m.ID, m.State)
			}
			if m.Attempts > 0 && (m.LastStatus != 0 || m.LastError == "" || strings.Contains(m.LastError, "TOPSECRET")) {
				t.Errorf("after a refused connection: status %d, error %q (must be set, without the query)", m.LastStatus, m.LastError)
			}
		}
		// Refused for a while: a few more attempts with the clock moving.
		w.advanceUntil(d, 20*time.Minute, 3, "", nil)

		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("cannot listen on %s again: %v", addr, err)
		}
		e := newEndpoint(t, l)
		e.setRespond(func(n int, rw http.ResponseWriter, r *http.Request) bool {
			switch {
			case n <= 2:
				return status(http.StatusServiceUnavailable)(n, rw, r)
			case n == 3:
				return status(http.StatusTooManyRequests, "Retry-After", "7")(n, rw, r)
			}
			return false
		})
		w.advanceUntil(d, 20*time.Minute, 60, "every message delivered", w.settled)

		// At least once, in order: the test's clock jumps minutes at a
		// time, past the two-minute lease of an attempt in flight, so a
		// message may arrive twice in a row; never out of order, never lost.
		for _, key := range []string{"app-a", "app-b"} {
			want := key + "/0 " + key + "/1 " + key + "/2"
			if got := strings.Join(slices.Compact(e.received(key)), " "); got != want {
				t.Errorf("%s received %q, want %q", key, got, want)
			}
		}
		statuses := map[int]bool{}
		for id, m := range w.messages() {
			if m.State != store.OutboxDelivered {
				t.Errorf("message %s is %s", id, m.State)
			}
			as, err := st.ListOutboxAttempts(t.Context(), id)
			if err != nil || len(as) != m.Attempts {
				t.Errorf("message %s: %d attempts logged (%v), Attempts %d", id, len(as), err, m.Attempts)
			}
			for _, a := range as {
				statuses[a.Status] = true
				if strings.Contains(a.Error, "TOPSECRET") {
					t.Errorf("attempt error carries the query: %q", a.Error)
				}
			}
		}
		for _, s := range []int{0, 503, 429, 204} {
			if !statuses[s] {
				t.Errorf("no attempt logged with status %d (%v)", s, statuses)
			}
		}
	})
}

func TestRefused(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		w := newWorld(t, st)
		e := newEndpoint(t, nil)
		e.setRespond(func(n int, rw http.ResponseWriter, r *http.Request) bool {
			if n == 1 {
				return status(http.StatusBadRequest)(n, rw, r)
			}
			return status(http.StatusFound, "Location", "/elsewhere")(n, rw, r)
		})
		d := w.deliverer(Config{})
		run(t, d)
		bad := w.enqueue(e.srv.URL+"/resource", "a", 0)
		waitFor(t, "the 400", func() bool { d.Notify(); return w.message(bad.ID).Attempts > 0 })
		moved := w.enqueue(e.srv.URL+"/resource", "b", 0)
		scheme := w.enqueue("ftp://example.com/x?sig=TOPSECRET", "c", 0)
		d.Notify()
		waitFor(t, "refusals", w.settled)
		for id, want := range map[string]int{bad.ID: 400, moved.ID: 302, scheme.ID: 0} {
			m := w.message(id)
			if m.State != store.OutboxFailed || m.Attempts != 1 || m.LastStatus != want || m.LastError == "" {
				t.Errorf("message %s: state %s attempts %d status %d error %q; want failed after 1 with %d", id, m.State, m.Attempts, m.LastStatus, m.LastError, want)
			}
			if strings.Contains(m.LastError, "TOPSECRET") {
				t.Errorf("error carries the query: %q", m.LastError)
			}
		}
	})
}

func TestDeadline(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		w := newWorld(t, st)
		e := newEndpoint(t, nil)
		e.setRespond(status(http.StatusBadGateway))
		d := w.deliverer(Config{MaxAge: time.Hour})
		run(t, d)
		short := w.enqueue(e.srv.URL, "a", 0, func(m *store.OutboxMessage) { m.Deadline = m.Created.Add(time.Minute) })
		aged := w.enqueue(e.srv.URL, "b", 0)
		d.Notify()
		waitFor(t, "first attempts", func() bool { return w.attempts() >= 2 })
		if m := w.message(short.ID); m.State != store.OutboxPending {
			t.Fatalf("after one 502 the message is %s, want pending", m.State)
		}
		w.advanceUntil(d, 20*time.Minute, 10, "both failed", w.settled)
		for _, id := range []string{short.ID, aged.ID} {
			m := w.message(id)
			if m.State != store.OutboxFailed || m.LastError == "" {
				t.Errorf("message %s: state %s, error %q; want failed with an error", id, m.State, m.LastError)
			}
		}
		if m := w.message(aged.ID); m.Attempts < 3 {
			t.Errorf("the message without a deadline was tried %d times in its hour, want several", m.Attempts)
		}
	})
}

// TestRestart: a new Deliverer over the same store continues what the
// last one left pending, and what was enqueued while none ran.
func TestRestart(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		w := newWorld(t, st)
		e := newEndpoint(t, nil)
		e.setRespond(status(http.StatusServiceUnavailable))
		d1 := w.deliverer(Config{})
		stop := run(t, d1)
		first := w.enqueue(e.srv.URL, "k", 0)
		d1.Notify()
		waitFor(t, "a failed attempt", func() bool { return w.message(first.ID).Attempts == 1 })
		stop()
		second := w.enqueue(e.srv.URL, "k", 1)
		e.setRespond(nil)
		w.clock.Advance(time.Minute)

		d2 := w.deliverer(Config{})
		run(t, d2) // no Notify: Run starts with what is due
		waitFor(t, "delivery after the restart", w.settled)
		if m := w.message(first.ID); m.State != store.OutboxDelivered || m.Attempts != 2 {
			t.Errorf("first: %s after %d attempts", m.State, m.Attempts)
		}
		if m := w.message(second.ID); m.State != store.OutboxDelivered {
			t.Errorf("second: %s", m.State)
		}
		if got := strings.Join(e.received("k"), " "); got != "k/0 k/1" {
			t.Errorf("received %q", got)
		}
	})
}

// TestNotifyWakes: Run sleeps until told; there is no polling timer.
func TestNotifyWakes(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		w := newWorld(t, st)
		e := newEndpoint(t, nil)
		d := w.deliverer(Config{})
		run(t, d)
		// Once Run has delivered a first message and gone idle, a new one
		// waits for Notify.
		first := w.enqueue(e.srv.URL, "k", 0)
		d.Notify()
		waitFor(t, "the first delivery", w.settled)
		time.Sleep(100 * time.Millisecond)
		m := w.enqueue(e.srv.URL, "k", 1)
		time.Sleep(300 * time.Millisecond)
		if got := w.message(first.ID); got.State != store.OutboxDelivered {
			t.Fatalf("first: %s", got.State)
		}
		if got := w.message(m.ID); got.Attempts != 0 {
			t.Fatalf("tried without a Notify: the deliverer polls")
		}
		d.Notify()
		waitFor(t, "delivery after Notify", w.settled)
	})
}

// TestNoConcurrentDelivery runs two Deliverers over two Stores of one
// database, as two processes would: no message, and no key, is ever
// delivered by both at once, and each message arrives once, in order.
func TestNoConcurrentDelivery(t *testing.T) {
	open := map[string]func(t *testing.T) (store.Store, store.Store){
		"sqlite": func(t *testing.T) (store.Store, store.Store) {
			path := filepath.Join(t.TempDir(), "tb.db")
			return openTwice(t, func(ctx context.Context) (store.Store, error) { return sqlite.Open(ctx, path) })
		},
		"postgres": func(t *testing.T) (store.Store, store.Store) {
			dsn := storetest.PostgresSchemaDSN(t)
			return openTwice(t, func(ctx context.Context) (store.Store, error) { return postgres.Open(ctx, dsn) })
		},
	}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			st1, st2 := open[name](t)
			w := newWorld(t, st1)
			var (
				mu       sync.Mutex
				inflight = map[string]int{}
				total    = map[string]int{}
				overlap  []string
			)
			e := newEndpoint(t, nil)
			e.setRespond(func(_ int, _ http.ResponseWriter, r *http.Request) bool {
				id := r.URL.Query().Get("id")
				key := r.URL.Query().Get("key")
				mu.Lock()
				inflight[id]++
				inflight["key:"+key]++
				if inflight[id] > 1 || inflight["key:"+key] > 1 {
					overlap = append(overlap, id)
				}
				total[id]++
				mu.Unlock()
				time.Sleep(3 * time.Millisecond)
				mu.Lock()
				inflight[id]--
				inflight["key:"+key]--
				mu.Unlock()
				return false
			})
			var ids []string
			for i := range 60 {
				key := fmt.Sprintf("k%d", i%12)
				id := newID()
				w.enqueue(fmt.Sprintf("%s/resource?id=%s&key=%s", e.srv.URL, id, key), key, i/12, func(m *store.OutboxMessage) { m.ID, m.Created = id, time.Now() })
				ids = append(ids, id)
			}
			d1 := w.deliverer(Config{Now: time.Now})
			d2 := w.deliverer(Config{Store: st2, Now: time.Now})
			run(t, d1)
			run(t, d2)
			d1.Notify()
			d2.Notify()
			waitFor(t, "delivery", func() bool { d1.Notify(); d2.Notify(); return w.settled() })
			mu.Lock()
			defer mu.Unlock()
			if len(overlap) > 0 {
				t.Errorf("delivered concurrently: %v", overlap)
			}
			for _, id := range ids {
				if total[id] != 1 {
					t.Errorf("message %s delivered %d times, want once", id, total[id])
				}
			}
			for k := range 12 {
				key := fmt.Sprintf("k%d", k)
				want := fmt.Sprintf("%[1]s/0 %[1]s/1 %[1]s/2 %[1]s/3 %[1]s/4", key)
				if got := strings.Join(e.received(key), " "); got != want {
					t.Errorf("%s received %q, want %q", key, got, want)
				}
			}
		})
	}
}

func openTwice(t *testing.T, open func(ctx context.Context) (store.Store, error)) (store.Store, store.Store) {
	var out [2]store.Store
	for i := range out {
		st, err := open(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		out[i] = st
	}
	return out[0], out[1]
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{"0", time.Second},
		{"-3", 0},
		{"99999999", MaxRetryAfter},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), time.Second},
		{"soon", 0},
	} {
		if got := retryAfter(tc.in, now); got != tc.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		base    time.Duration
	}{{0, 5 * time.Second}, {1, 5 * time.Second}, {2, 10 * time.Second}, {4, 40 * time.Second}, {9, 15 * time.Minute}, {100, 15 * time.Minute}} {
		for range 20 {
			got := Backoff(tc.attempt)
			if got < tc.base*8/10 || got > tc.base*12/10 {
				t.Errorf("Backoff(%d) = %v, want %v ± 20%%", tc.attempt, got, tc.base)
			}
		}
	}
}

func TestScrub(t *testing.T) {
	for in, want := range map[string]string{
		`Post "https://p.example/resource?sig=abc&x=1": dial tcp: connection refused`: `Post "https://p.example/resource": dial tcp: connection refused`,
		"parse \"http://h/p#frag?sig=1\": bad":                                        "parse \"http://h/p\": bad",
		"a\x00b\xff":                                                                  "ab\uFFFD",
	} {
		if got := scrub(in); got != want {
			t.Errorf("scrub(%q) = %q, want %q", in, got, want)
		}
	}
	if got := redactURL("https://u:p@p.example/resource?sig=abc#f"); got != "https://p.example/resource" {
		t.Errorf("redactURL: %q", got)
	}
}

// TestAuthorize: a message's AuthRef is resolved at send time into the
// Authorization header; a failure to resolve is retried with backoff;
// without Authorize such a message fails at once; the secret never
// reaches the delivery log or the logger.
func TestAuthorize(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		const secret = "Bootstrap TOPSECRET-value"
		w := newWorld(t, st)
		e := newEndpoint(t, nil)
		var (
			mu    sync.Mutex
			auths []string
			refs  []string
			calls int
		)
		e.setRespond(func(_ int, _ http.ResponseWriter, r *http.Request) bool {
			mu.Lock()
			auths = append(auths, r.Header.Get("Authorization"))
			mu.Unlock()
			return false
		})
		var logs strings.Builder
		var logMu sync.Mutex
		logger := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		d := w.deliverer(Config{Logger: logger, Backoff: func(int) time.Duration { return time.Minute },
			Authorize: func(_ context.Context, ref string) (string, error) {
				mu.Lock()
				defer mu.Unlock()
				calls++
				refs = append(refs, ref)
				if calls == 1 {
					return "", errors.New("vault kv1 is unreachable")
				}
				return secret, nil
			}})
		run(t, d)
		plain := w.enqueue(e.srv.URL+"/plain", "plain", 0)
		authed := w.enqueue(e.srv.URL+"/register", "reg", 0, func(m *store.OutboxMessage) { m.AuthRef = "tenant-1 https://kv1.vault.azure.net/secrets/boot" })
		d.Notify()
		waitFor(t, "the first attempts", func() bool { return w.message(authed.ID).Attempts >= 1 && w.message(plain.ID).Attempts >= 1 })
		m := w.message(authed.ID)
		if m.State != store.OutboxPending || m.LastStatus != 0 || !strings.Contains(m.LastError, "unreachable") {
			t.Fatalf("after a failed Authorize: state %s status %d error %q; want pending, no status, the error", m.State, m.LastStatus, m.LastError)
		}
		w.advanceUntil(d, time.Minute, 5, "delivered", func() bool { return w.message(authed.ID).State == store.OutboxDelivered })
		if m := w.message(authed.ID); m.Attempts != 2 {
			t.Errorf("attempts %d, want 2", m.Attempts)
		}
		mu.Lock()
		gotAuths, gotRefs := slices.Clone(auths), slices.Clone(refs)
		mu.Unlock()
		// The plain message has no Authorization header; the other has the resolved value.
		if len(gotAuths) != 2 || !slices.Contains(gotAuths, "") || !slices.Contains(gotAuths, secret) {
			t.Errorf("Authorization headers received %q, want one empty and one %q", gotAuths, secret)
		}
		if len(gotRefs) != 2 || gotRefs[0] != authed.AuthRef || gotRefs[1] != authed.AuthRef {
			t.Errorf("Authorize called with %q, want the AuthRef twice", gotRefs)
		}
		as, err := st.ListOutboxAttempts(t.Context(), authed.ID)
		if err != nil || len(as) != 2 || as[1].Status != 204 {
			t.Errorf("attempts: %+v %v", as, err)
		}
		for _, a := range as {
			if strings.Contains(a.Error, "TOPSECRET") {
				t.Errorf("the delivery log carries the secret: %q", a.Error)
			}
		}
		logMu.Lock()
		out := logs.String()
		logMu.Unlock()
		if strings.Contains(out, "TOPSECRET") {
			t.Errorf("the log carries the secret:\n%s", out)
		}
	})
}

// TestAuthRefWithoutAuthorize: with no Config.Authorize, a message with an
// AuthRef fails at once, without being sent; others are delivered.
func TestAuthRefWithoutAuthorize(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		w := newWorld(t, st)
		e := newEndpoint(t, nil)
		d := w.deliverer(Config{})
		run(t, d)
		authed := w.enqueue(e.srv.URL+"/register", "reg", 0, func(m *store.OutboxMessage) { m.AuthRef = "ref" })
		plain := w.enqueue(e.srv.URL+"/plain", "plain", 0)
		d.Notify()
		waitFor(t, "settled", w.settled)
		if m := w.message(authed.ID); m.State != store.OutboxFailed || m.Attempts != 1 || m.LastStatus != 0 || !strings.Contains(m.LastError, "Authorize") {
			t.Errorf("message with an AuthRef: state %s attempts %d status %d error %q; want failed at once", m.State, m.Attempts, m.LastStatus, m.LastError)
		}
		if m := w.message(plain.ID); m.State != store.OutboxDelivered {
			t.Errorf("plain message: %s, want delivered", m.State)
		}
		if got := e.received("reg"); len(got) != 0 {
			t.Errorf("the endpoint received %q", got)
		}
	})
}

// lockedWriter serialises writes to a strings.Builder.
type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
