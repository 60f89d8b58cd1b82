package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// OutboxTests are the store.Outbox tests, in the form Run lists its tests.
var OutboxTests = []struct {
	Name string
	Fn   func(t *testing.T, st store.Store)
}{
	{"OutboxEnqueue", testOutboxEnqueue},
	{"OutboxDueOrder", testOutboxDueOrder},
	{"OutboxLease", testOutboxLease},
	{"OutboxRecord", testOutboxRecord},
	{"OutboxList", testOutboxList},
	{"OutboxInTx", testOutboxInTx},
	{"OutboxTenantCascade", testOutboxTenantCascade},
	{"OutboxConcurrentDue", testOutboxConcurrentDue},
	{"OutboxBacklog", testOutboxBacklog},
}

// outboxLease is how long DueOutbox claims a message (store.Outbox).
const outboxLease = 2 * time.Minute

type outboxFixture struct {
	*fixture
	tn store.Tenant
	t0 time.Time
}

func newOutboxFixture(t *testing.T, st store.Store) *outboxFixture {
	f := &outboxFixture{fixture: newFixture(t, st), t0: stored(time.Date(2025, 3, 4, 5, 6, 7, 891234567, time.UTC))}
	f.tn = f.tenant()
	return f
}

// enqueue stores a message of key in f's tenant, created at at.
func (f *outboxFixture) enqueue(topic, key string, at time.Time) store.OutboxMessage {
	f.t.Helper()
	id := newID()
	m, err := f.st.EnqueueOutbox(f.ctx, store.OutboxMessage{ID: id, TenantID: f.tn.ID, Topic: topic, Key: key,
		URL: "https://publisher.example/hook/resource?sig=s3cret", ContentType: "application/json",
		Body: []byte(`{"id":"` + id + `"}`), Created: at})
	must(f.t, err, "enqueue")
	return m
}

// due calls DueOutbox and returns the ids.
func (f *outboxFixture) due(at time.Time, limit int) []string {
	f.t.Helper()
	ms, err := f.st.DueOutbox(f.ctx, at, limit)
	must(f.t, err, "due outbox")
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
		if m.State != store.OutboxPending {
			f.t.Errorf("due message %s is %s, want pending", m.ID, m.State)
		}
		checkTime(f.t, "due message's NextAttempt (the lease)", m.NextAttempt, stored(at).Add(outboxLease))
	}
	return ids
}

func (f *outboxFixture) record(id string, at time.Time, state store.OutboxState, status int, next time.Time) {
	f.t.Helper()
	must(f.t, f.st.RecordOutboxAttempt(f.ctx, store.OutboxAttempt{MessageID: id, At: at, Status: status, Duration: time.Millisecond},
		state, next), "record attempt of "+id)
}

func (f *outboxFixture) nextDue() (time.Time, bool) {
	f.t.Helper()
	at, ok, err := f.st.NextOutboxDue(f.ctx)
	must(f.t, err, "next outbox due")
	return at, ok
}

func (f *outboxFixture) get(id string) store.OutboxMessage {
	f.t.Helper()
	ms, err := f.st.ListOutbox(f.ctx, store.OutboxQuery{TenantID: f.tn.ID, Limit: 1000})
	must(f.t, err, "list outbox")
	for _, m := range ms {
		if m.ID == id {
			return m
		}
	}
	f.t.Fatalf("message %s is not listed", id)
	return store.OutboxMessage{}
}

func testOutboxEnqueue(t *testing.T, st store.Store) {
	f := newOutboxFixture(t, st)
	created := time.Date(2025, 1, 2, 3, 4, 5, 678912345, time.FixedZone("UTC+2", 2*3600))
	in := store.OutboxMessage{ID: newID(), TenantID: f.tn.ID, Topic: "definition-1", Key: "app-1", URL: "https://p.example/resource?sig=x",
		ContentType: "application/json", Body: []byte("{\"a\":\"\x00\xff\"}"), Created: created, Deadline: created.Add(10 * time.Hour),
		AuthRef: "tenant-1 https://kv1.vault.azure.net/secrets/bootstrap"}
	got, err := st.EnqueueOutbox(f.ctx, in)
	must(t, err, "enqueue")
	if got.Seq <= 0 || got.State != store.OutboxPending || got.Attempts != 0 {
		t.Errorf("enqueued: seq %d state %q attempts %d, want seq > 0, pending, 0", got.Seq, got.State, got.Attempts)
	}
	checkTime(t, "Created", got.Created, stored(created))
	checkTime(t, "NextAttempt defaults to Created", got.NextAttempt, stored(created))
	if got.AuthRef != in.AuthRef {
		t.Errorf("enqueued: AuthRef %q, want %q", got.AuthRef, in.AuthRef)
	}
	// The round trip, AuthRef included: checkOutboxMessage compares every field.
	listed := f.get(in.ID)
	want := in
	want.Seq, want.State = got.Seq, store.OutboxPending
	want.Created, want.NextAttempt, want.Deadline = stored(created), stored(created), stored(in.Deadline)
	checkOutboxMessage(t, listed, want)

	// The store sets Created when it is zero, and Key to the id when empty.
	before := time.Now()
	m2, err := st.EnqueueOutbox(f.ctx, store.OutboxMessage{ID: newID(), TenantID: f.tn.ID, URL: "https://p.example/"})
	after := time.Now()
	must(t, err, "enqueue with defaults")
	checkNow(t, "Created set by the store", m2.Created, before, after)
	if m2.Key != m2.ID || m2.Seq <= got.Seq || !m2.Deadline.IsZero() {
		t.Errorf("defaults: key %q (id %q), seq %d (after %d), deadline %v", m2.Key, m2.ID, m2.Seq, got.Seq, m2.Deadline)
	}
	l2 := f.get(m2.ID)
	checkOutboxMessage(t, l2, m2)
	if l2.AuthRef != "" {
		t.Errorf("a message enqueued without AuthRef reads back with %q", l2.AuthRef)
	}
	// DueOutbox returns AuthRef too.
	due, err := st.DueOutbox(f.ctx, created.Add(time.Hour), 1000)
	must(t, err, "due")
	found := false
	for _, m := range due {
		if m.ID == in.ID {
			found = true
			if m.AuthRef != in.AuthRef {
				t.Errorf("due: AuthRef %q, want %q", m.AuthRef, in.AuthRef)
			}
		}
	}
	if !found {
		t.Errorf("due: message %s not returned", in.ID)
	}

	_, err = st.EnqueueOutbox(f.ctx, store.OutboxMessage{ID: in.ID, TenantID: f.tn.ID, URL: "https://p.example/"})
	wantErr(t, err, store.ErrConflict, "enqueue with a taken id")
	_, err = st.EnqueueOutbox(f.ctx, store.OutboxMessage{ID: newID(), TenantID: newID(), URL: "https://p.example/"})
	wantErr(t, err, store.ErrNotFound, "enqueue in an unknown tenant")
	for name, m := range map[string]store.OutboxMessage{
		"no id":     {TenantID: f.tn.ID, URL: "https://p.example/"},
		"no tenant": {ID: newID(), URL: "https://p.example/"},
		"no url":    {ID: newID(), TenantID: f.tn.ID},
		"NUL topic": {ID: newID(), TenantID: f.tn.ID, URL: "https://p.example/", Topic: "a\x00b"},
		"NUL auth":  {ID: newID(), TenantID: f.tn.ID, URL: "https://p.example/", AuthRef: "a\x00b"},
		"bad UTF-8": {ID: newID(), TenantID: f.tn.ID, URL: "https://p.example/\xff"},
	} {
		_, err := st.EnqueueOutbox(f.ctx, m)
		wantPlainErr(t, err, "enqueue with "+name)
	}
}

func checkOutboxMessage(t testing.TB, got, want store.OutboxMessage) {
	t.Helper()
	what := "outbox message " + want.ID
	checkTime(t, what+" Created", got.Created, want.Created)
	checkTime(t, what+" NextAttempt", got.NextAttempt, want.NextAttempt)
	if !want.Deadline.IsZero() || !got.Deadline.IsZero() {
		checkTime(t, what+" Deadline", got.Deadline, want.Deadline)
	}
	if !want.DeliveredAt.IsZero() || !got.DeliveredAt.IsZero() {
		checkTime(t, what+" DeliveredAt", got.DeliveredAt, want.DeliveredAt)
	}
	if !bytes.Equal(got.Body, want.Body) {
		t.Errorf("%s: Body: got %q, want %q", what, got.Body, want.Body)
	}
	got.Created, got.NextAttempt, got.Deadline, got.DeliveredAt, got.Body = time.Time{}, time.Time{}, time.Time{}, time.Time{}, nil
	want.Created, want.NextAttempt, want.Deadline, want.DeliveredAt, want.Body = time.Time{}, time.Time{}, time.Time{}, time.Time{}, nil
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

func testOutboxDueOrder(t *testing.T, st store.Store) {
	f := newOutboxFixture(t, st)
	t0 := f.t0
	if _, ok := f.nextDue(); ok {
		t.Errorf("NextOutboxDue of an empty outbox: got one")
	}
	checkIDs(t, "due of an empty outbox", f.due(t0, 10), nil)

	a1 := f.enqueue("def", "app-a", t0)
	b1 := f.enqueue("def", "app-b", t0.Add(time.Second))
	a2 := f.enqueue("def", "app-a", t0)
	c1 := f.enqueue("def", "", t0.Add(time.Hour)) // not due yet
	// Another tenant's message of the same key is ordered apart.
	other := &outboxFixture{fixture: f.fixture, tn: f.tenant(), t0: t0}
	o1 := other.enqueue("def", "app-a", t0)

	if at, ok := f.nextDue(); !ok || !at.Equal(t0) {
		t.Errorf("NextOutboxDue: got %v %v, want %v", at, ok, t0)
	}
	checkIDs(t, "due with limit 2", f.due(t0.Add(time.Second), 2), []string{a1.ID, b1.ID})
	checkIDs(t, "due at t0: the other tenant's key is its own", f.due(t0.Add(time.Second), 10), []string{o1.ID})
	checkIDs(t, "due again: all claimed, a2 waits for a1", f.due(t0.Add(time.Second), 10), nil)
	// Only key heads count for NextOutboxDue: a2 is due but waits for a1.
	at, ok := f.nextDue()
	if want := t0.Add(time.Second + outboxLease); !ok || !at.Equal(want) {
		t.Errorf("NextOutboxDue while claimed: got %v %v, want %v", at, ok, want)
	}

	f.record(a1.ID, t0.Add(2*time.Second), store.OutboxDelivered, 204, time.Time{})
	checkIDs(t, "a1 delivered: a2 is next", f.due(t0.Add(2*time.Second), 10), []string{a2.ID})
	// A retry of a2 keeps it the head of its key: nothing of app-a is due
	// until its next attempt.
	f.record(a2.ID, t0.Add(3*time.Second), store.OutboxPending, 503, t0.Add(time.Minute))
	a3 := f.enqueue("def", "app-a", t0.Add(3*time.Second))
	checkIDs(t, "a2 backing off: a3 waits", f.due(t0.Add(30*time.Second), 10), nil)
	checkIDs(t, "a2 due again", f.due(t0.Add(time.Minute), 10), []string{a2.ID})
	f.record(a2.ID, t0.Add(time.Minute), store.OutboxFailed, 400, time.Time{})
	// Two hours on, the claims of b1 and o1 have run out too; oldest first.
	checkIDs(t, "a2 failed: a3 is next; c1 is due", f.due(t0.Add(2*time.Hour), 10), []string{b1.ID, c1.ID, o1.ID, a3.ID})
}

func testOutboxLease(t *testing.T, st store.Store) {
	f := newOutboxFixture(t, st)
	t0 := f.t0
	m := f.enqueue("def", "k", t0)
	checkIDs(t, "claim", f.due(t0, 1), []string{m.ID})
	checkTime(t, "claimed NextAttempt", f.get(m.ID).NextAttempt, t0.Add(outboxLease))
	checkIDs(t, "just before the lease ends", f.due(t0.Add(outboxLease-time.Microsecond), 1), nil)
	checkIDs(t, "the lease ended: due again", f.due(t0.Add(outboxLease), 1), []string{m.ID})
	// The first claimant's late record still counts while the message is pending.
	f.record(m.ID, t0.Add(outboxLease+time.Second), store.OutboxDelivered, 200, time.Time{})
	err := st.RecordOutboxAttempt(f.ctx, store.OutboxAttempt{MessageID: m.ID, At: t0.Add(outboxLease + 2*time.Second), Status: 200},
		store.OutboxDelivered, time.Time{})
	wantErr(t, err, store.ErrNotFound, "the second claimant records a delivered message")
	as, err := st.ListOutboxAttempts(f.ctx, m.ID)
	must(t, err, "list attempts")
	if len(as) != 1 {
		t.Errorf("%d attempts logged, want 1 (a refused record logs nothing)", len(as))
	}
	if _, ok := f.nextDue(); ok {
		t.Errorf("NextOutboxDue after delivery: got one")
	}
}

func testOutboxRecord(t *testing.T, st store.Store) {
	f := newOutboxFixture(t, st)
	t0 := f.t0
	m := f.enqueue("def", "k", t0)
	f.due(t0, 1)
	must(t, st.RecordOutboxAttempt(f.ctx, store.OutboxAttempt{MessageID: m.ID, At: t0.Add(time.Second), Error: "dial tcp 127.0.0.1:9: connection refused",
		Duration: 1500 * time.Microsecond}, store.OutboxPending, t0.Add(6*time.Second)), "record a refused connection")
	got := f.get(m.ID)
	if got.State != store.OutboxPending || got.Attempts != 1 || got.LastStatus != 0 || got.LastError != "dial tcp 127.0.0.1:9: connection refused" {
		t.Errorf("after a failed attempt: %+v", got)
	}
	checkTime(t, "NextAttempt after a failed attempt", got.NextAttempt, t0.Add(6*time.Second))
	if _, ok := f.nextDue(); !ok {
		t.Errorf("NextOutboxDue: none")
	}
	f.due(t0.Add(6*time.Second), 1)
	must(t, st.RecordOutboxAttempt(f.ctx, store.OutboxAttempt{MessageID: m.ID, At: t0.Add(7 * time.Second), Status: 503, Error: "503 Service Unavailable",
		Duration: time.Second}, store.OutboxPending, t0.Add(20*time.Second)), "record a 503")
	f.due(t0.Add(20*time.Second), 1)
	must(t, st.RecordOutboxAttempt(f.ctx, store.OutboxAttempt{MessageID: m.ID, At: t0.Add(21 * time.Second), Status: 200, Duration: 2 * time.Millisecond},
		store.OutboxDelivered, time.Time{}), "record the delivery")
	got = f.get(m.ID)
	if got.State != store.OutboxDelivered || got.Attempts != 3 || got.LastStatus != 200 || got.LastError != "" {
		t.Errorf("after delivery: %+v", got)
	}
	checkTime(t, "DeliveredAt", got.DeliveredAt, t0.Add(21*time.Second))
	as, err := st.ListOutboxAttempts(f.ctx, m.ID)
	must(t, err, "list attempts")
	want := []store.OutboxAttempt{
		{MessageID: m.ID, At: t0.Add(time.Second), Error: "dial tcp 127.0.0.1:9: connection refused", Duration: 1500 * time.Microsecond},
		{MessageID: m.ID, At: t0.Add(7 * time.Second), Status: 503, Error: "503 Service Unavailable", Duration: time.Second},
		{MessageID: m.ID, At: t0.Add(21 * time.Second), Status: 200, Duration: 2 * time.Millisecond},
	}
	if len(as) != len(want) {
		t.Fatalf("attempts: got %+v, want %+v", as, want)
	}
	for i := range want {
		checkTime(t, "attempt At", as[i].At, want[i].At)
		as[i].At, want[i].At = time.Time{}, time.Time{}
		if as[i] != want[i] {
			t.Errorf("attempt %d: got %+v, want %+v", i, as[i], want[i])
		}
	}

	// Terminal states do not move; unknown messages are not found.
	for _, state := range []store.OutboxState{store.OutboxPending, store.OutboxFailed, store.OutboxDelivered} {
		err := st.RecordOutboxAttempt(f.ctx, store.OutboxAttempt{MessageID: m.ID, Status: 200}, state, t0)
		wantErr(t, err, store.ErrNotFound, "record on a delivered message, to "+string(state))
	}
	wantErr(t, st.RecordOutboxAttempt(f.ctx, store.OutboxAttempt{MessageID: newID()}, store.OutboxFailed, t0), store.ErrNotFound, "record on an unknown message")
	as, err = st.ListOutboxAttempts(f.ctx, newID())
	must(t, err, "attempts of an unknown message")
	if len(as) != 0 {
		t.Errorf("attempts of an unknown message: %+v", as)
	}

	// Failed is terminal too, and the zero At is now.
	m2 := f.enqueue("def", "k2", t0)
	before := time.Now()
	must(t, st.RecordOutboxAttempt(f.ctx, store.OutboxAttempt{MessageID: m2.ID, Status: 410, Error: "410 Gone"}, store.OutboxFailed, time.Time{}), "fail")
	after := time.Now()
	got = f.get(m2.ID)
	if got.State != store.OutboxFailed || got.LastStatus != 410 || !got.DeliveredAt.IsZero() {
		t.Errorf("failed: %+v", got)
	}
	as, err = st.ListOutboxAttempts(f.ctx, m2.ID)
	must(t, err, "list attempts")
	if len(as) != 1 {
		t.Fatalf("attempts: %+v", as)
	}
	checkNow(t, "attempt At set by the store", as[0].At, before, after)
	wantErr(t, st.RecordOutboxAttempt(f.ctx, store.OutboxAttempt{MessageID: m2.ID}, store.OutboxPending, t0), store.ErrNotFound, "record on a failed message")
	wantPlainErr(t, st.RecordOutboxAttempt(f.ctx, store.OutboxAttempt{MessageID: f.enqueue("def", "k3", t0).ID}, "lost", t0), "record an unknown state")
}

func testOutboxList(t *testing.T, st store.Store) {
	f := newOutboxFixture(t, st)
	t0 := f.t0
	var all []string
	for i := range 6 {
		topic, key := "def-1", fmt.Sprintf("app-%d", i%2)
		if i >= 4 {
			topic = "def-2"
		}
		all = append(all, f.enqueue(topic, key, t0).ID)
	}
	other := &outboxFixture{fixture: f.fixture, tn: f.tenant(), t0: t0}
	other.enqueue("def-1", "app-0", t0)
	list := func(q store.OutboxQuery) []string {
		t.Helper()
		ms, err := st.ListOutbox(f.ctx, q)
		must(t, err, "list outbox")
		ids := make([]string, len(ms))
		for i, m := range ms {
			ids[i] = m.ID
		}
		return ids
	}
	rev := func(ids ...string) []string { out := slices.Clone(ids); slices.Reverse(out); return out }
	checkIDs(t, "all, newest first", list(store.OutboxQuery{TenantID: f.tn.ID}), rev(all...))
	checkIDs(t, "topic def-1", list(store.OutboxQuery{TenantID: f.tn.ID, Topic: "def-1"}), rev(all[:4]...))
	checkIDs(t, "key app-1", list(store.OutboxQuery{TenantID: f.tn.ID, Key: "app-1"}), rev(all[1], all[3], all[5]))
	checkIDs(t, "topic and key", list(store.OutboxQuery{TenantID: f.tn.ID, Topic: "def-2", Key: "app-0"}), []string{all[4]})
	checkIDs(t, "limit", list(store.OutboxQuery{TenantID: f.tn.ID, Limit: 2}), rev(all[4:]...))
	checkIDs(t, "unknown tenant", list(store.OutboxQuery{TenantID: newID()}), nil)
	checkIDs(t, "hostile topic", list(store.OutboxQuery{TenantID: f.tn.ID, Topic: "\xff"}), nil)
	_, err := st.ListOutbox(f.ctx, store.OutboxQuery{})
	wantPlainErr(t, err, "list without a tenant")
}

func testOutboxInTx(t *testing.T, st store.Store) {
	f := newOutboxFixture(t, st)
	var kept, dropped store.OutboxMessage
	err := st.InTx(f.ctx, func(tx store.Store) error {
		var err error
		kept, err = tx.EnqueueOutbox(f.ctx, store.OutboxMessage{ID: newID(), TenantID: f.tn.ID, URL: "https://p.example/"})
		return err
	})
	must(t, err, "enqueue in a committed transaction")
	err = st.InTx(f.ctx, func(tx store.Store) error {
		var err error
		dropped, err = tx.EnqueueOutbox(f.ctx, store.OutboxMessage{ID: newID(), TenantID: f.tn.ID, URL: "https://p.example/"})
		if err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx: %v", err)
	}
	ms, err := st.ListOutbox(f.ctx, store.OutboxQuery{TenantID: f.tn.ID})
	must(t, err, "list")
	if len(ms) != 1 || ms[0].ID != kept.ID {
		t.Errorf("after commit and rollback: %d messages, want only %s (not %s)", len(ms), kept.ID, dropped.ID)
	}
}

func testOutboxTenantCascade(t *testing.T, st store.Store) {
	f := newOutboxFixture(t, st)
	m := f.enqueue("def", "k", f.t0)
	f.record(m.ID, f.t0, store.OutboxPending, 503, f.t0.Add(time.Minute))
	keep := &outboxFixture{fixture: f.fixture, tn: f.tenant(), t0: f.t0}
	k := keep.enqueue("def", "k", f.t0.Add(time.Hour))
	must(t, st.DeleteTenant(f.ctx, f.tn.ID), "delete tenant")
	ms, err := st.ListOutbox(f.ctx, store.OutboxQuery{TenantID: f.tn.ID})
	must(t, err, "list")
	as, err := st.ListOutboxAttempts(f.ctx, m.ID)
	must(t, err, "attempts")
	if len(ms) != 0 || len(as) != 0 {
		t.Errorf("after deleting the tenant: %d messages, %d attempts", len(ms), len(as))
	}
	if at, ok := f.nextDue(); !ok || !at.Equal(k.NextAttempt) {
		t.Errorf("NextOutboxDue: got %v %v, want the other tenant's %v", at, ok, k.NextAttempt)
	}
	checkIDs(t, "due after the delete", f.due(f.t0.Add(2*time.Hour), 10), []string{k.ID})
}

// testOutboxConcurrentDue claims from many goroutines at once: every
// message goes to exactly one of them, and one key's messages never to
// two at once.
func testOutboxConcurrentDue(t *testing.T, st store.Store) {
	f := newOutboxFixture(t, st)
	const n = 60
	for i := range n {
		f.enqueue("def", fmt.Sprintf("k%d", i%20), f.t0)
	}
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		keys = map[string]int{}
		wg   sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			ms, err := st.DueOutbox(f.ctx, f.t0, 7)
			if err != nil {
				t.Errorf("due: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, m := range ms {
				seen[m.ID]++
				keys[m.Key]++
			}
		})
	}
	wg.Wait()
	for id, c := range seen {
		if c != 1 {
			t.Errorf("message %s claimed %d times", id, c)
		}
	}
	for k, c := range keys {
		if c != 1 {
			t.Errorf("key %s: %d messages claimed at once", k, c)
		}
	}
	if len(seen) != 20 {
		t.Errorf("%d messages claimed, want 20 (one per key)", len(seen))
	}
}

// testOutboxBacklog: the backlog counts pending messages of every tenant,
// claimed or not, and names the oldest's creation; delivered and failed
// ones leave it.
func testOutboxBacklog(t *testing.T, st store.Store) {
	f := newOutboxFixture(t, st)
	backlog := func(wantN int64, wantOldest time.Time) {
		t.Helper()
		n, oldest, err := st.OutboxBacklog(f.ctx)
		must(t, err, "outbox backlog")
		if n != wantN {
			t.Errorf("backlog: %d pending, want %d", n, wantN)
		}
		checkTime(t, "backlog's oldest", oldest, wantOldest)
	}
	backlog(0, time.Time{})
	a := f.enqueue("def", "a", f.t0.Add(time.Minute))
	b := f.enqueue("def", "b", f.t0)
	other := &outboxFixture{fixture: f.fixture, tn: f.tenant(), t0: f.t0}
	c := other.enqueue("def", "c", f.t0.Add(2*time.Minute))
	backlog(3, f.t0)
	f.due(f.t0.Add(time.Hour), 10) // claimed messages are still pending
	backlog(3, f.t0)
	f.record(b.ID, f.t0.Add(time.Hour), store.OutboxDelivered, 200, time.Time{})
	backlog(2, f.t0.Add(time.Minute))
	f.record(a.ID, f.t0.Add(time.Hour), store.OutboxFailed, 410, time.Time{})
	backlog(1, f.t0.Add(2*time.Minute))
	f.record(c.ID, f.t0.Add(time.Hour), store.OutboxDelivered, 200, time.Time{})
	backlog(0, time.Time{})
}
