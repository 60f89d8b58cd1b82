package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// QueueTests are the store.Queues tests, in the form Run lists its tests.
var QueueTests = []struct {
	Name string
	Fn   func(t *testing.T, st store.Store)
}{
	{"QueueSendLockComplete", testQueueSendLockComplete},
	{"QueueLockExpiry", testQueueLockExpiry},
	{"QueueAbandonRenew", testQueueAbandonRenew},
	{"QueueDeadLetter", testQueueDeadLetter},
	{"QueueCancelScheduled", testQueueCancelScheduled},
	{"QueueDefer", testQueueDefer},
	{"QueueDeferSettle", testQueueDeferSettle},
	{"QueueDeferTTL", testQueueDeferTTL},
	{"QueueMaxDeliveryCount", testQueueMaxDeliveryCount},
	{"QueueTTL", testQueueTTL},
	{"QueueDuplicates", testQueueDuplicates},
	{"QueueScheduled", testQueueScheduled},
	{"QueueQuota", testQueueQuota},
	{"QueueBatchIsolation", testQueueBatchIsolation},
	{"QueueReceiveAndDelete", testQueueReceiveAndDelete},
	{"QueuePeekStats", testQueuePeekStats},
	{"QueueLockConcurrent", testQueueLockConcurrent},
	{"QueueCascade", testQueueCascade},
	{"QueueSessions", testQueueSessions},
}

// t0 is the tests' clock: every queue operation gets an explicit now.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// queueLimits are Azure's defaults (lock 60 s, 10 deliveries).
var queueLimits = store.QueueLimits{LockDuration: time.Minute, MaxDeliveryCount: 10}

type queueFixture struct {
	*fixture
	qs   store.Queues
	tn   store.Tenant
	rgID string
	ns   string // the namespace's id
	q    string // a queue's id
}

func newQueueFixture(t *testing.T, st store.Store) *queueFixture {
	t.Helper()
	qs, ok := st.(store.Queues)
	if !ok {
		t.Fatalf("%T does not implement store.Queues", st)
	}
	f := &queueFixture{fixture: newFixture(t, st), qs: qs}
	f.tn = f.tenant()
	f.rgID = "/subscriptions/" + f.tn.SubscriptionID + "/resourceGroups/RG"
	must(t, st.CreateResourceGroup(f.ctx, store.ResourceGroup{TenantID: f.tn.ID, SubscriptionID: f.tn.SubscriptionID, Name: "RG", Location: "westeurope"}), "create group")
	f.ns = f.rgID + "/providers/Microsoft.ServiceBus/namespaces/Bus"
	must(t, st.CreateResource(f.ctx, store.Resource{TenantID: f.tn.ID, ID: f.ns, Type: "Microsoft.ServiceBus/namespaces", Name: "Bus"}), "create namespace")
	f.q = f.queue("commands")
	return f
}

// queue creates a queue of the fixture's namespace and returns its id.
func (f *queueFixture) queue(name string) string {
	f.t.Helper()
	id := f.ns + "/queues/" + name
	must(f.t, f.st.CreateResource(f.ctx, store.Resource{TenantID: f.tn.ID, ID: id, Type: store.QueueResourceType, Name: name}), "create queue "+name)
	return id
}

func (f *queueFixture) apply(now time.Time, ops ...store.QueueOp) []store.QueueResult {
	f.t.Helper()
	rs := f.qs.ApplyQueueOps(f.ctx, now, ops)
	if len(rs) != len(ops) {
		f.t.Fatalf("ApplyQueueOps: %d results for %d ops", len(rs), len(ops))
	}
	return rs
}

func (f *queueFixture) one(now time.Time, op store.QueueOp) store.QueueResult {
	f.t.Helper()
	return f.apply(now, op)[0]
}

func msg(id, body string) store.QueueMessage {
	return store.QueueMessage{MessageID: id, Body: []byte(body), Properties: []byte(`{"Label":"` + id + `"}`)}
}

// send sends msgs to queue q, which must succeed, and returns them as stored.
func (f *queueFixture) send(now time.Time, q string, lim store.QueueLimits, msgs ...store.QueueMessage) []store.QueueMessage {
	f.t.Helper()
	r := f.one(now, store.QueueOp{Kind: store.QueueSend, QueueID: q, Limits: lim, Messages: msgs})
	must(f.t, r.Err, "send")
	if len(r.Messages) != len(msgs) {
		f.t.Fatalf("send: %d messages back, want %d", len(r.Messages), len(msgs))
	}
	return r.Messages
}

func (f *queueFixture) lock(now time.Time, q string, dl bool, lim store.QueueLimits, token string) (store.QueueMessage, error) {
	f.t.Helper()
	r := f.one(now, store.QueueOp{Kind: store.QueueLock, QueueID: q, DeadLetter: dl, Limits: lim, LockToken: token})
	if r.Err != nil {
		return store.QueueMessage{}, r.Err
	}
	if len(r.Messages) != 1 {
		f.t.Fatalf("lock: %d messages, want 1", len(r.Messages))
	}
	return r.Messages[0], nil
}

// mustLock locks the head of q and checks it is the message seq.
func (f *queueFixture) mustLock(now time.Time, q string, dl bool, lim store.QueueLimits, token string, seq int64) store.QueueMessage {
	f.t.Helper()
	m, err := f.lock(now, q, dl, lim, token)
	must(f.t, err, "lock")
	if m.SequenceNumber != seq {
		f.t.Fatalf("locked message %d, want %d", m.SequenceNumber, seq)
	}
	return m
}

func (f *queueFixture) noLock(now time.Time, q string, dl bool, lim store.QueueLimits, what string) {
	f.t.Helper()
	m, err := f.lock(now, q, dl, lim, newID())
	wantErr(f.t, err, store.ErrNotFound, what+fmt.Sprintf(" (got message %d)", m.SequenceNumber))
}

func (f *queueFixture) settle(now time.Time, kind store.QueueOpKind, q string, dl bool, lim store.QueueLimits, seq int64, token string) store.QueueResult {
	f.t.Helper()
	return f.one(now, store.QueueOp{Kind: kind, QueueID: q, DeadLetter: dl, Limits: lim, SequenceNumber: seq, LockToken: token})
}

func (f *queueFixture) peek(q string, dl bool) []store.QueueMessage {
	f.t.Helper()
	ms, err := f.qs.PeekQueueMessages(f.ctx, q, dl, 0, 1000)
	must(f.t, err, "peek")
	return ms
}

func (f *queueFixture) stats(q string, now time.Time) store.QueueStats {
	f.t.Helper()
	s, err := f.qs.QueueStats(f.ctx, q, now)
	must(f.t, err, "stats")
	return s
}

func seqs(ms []store.QueueMessage) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = fmt.Sprint(m.SequenceNumber)
	}
	return out
}

func testQueueSendLockComplete(t *testing.T, st store.Store) {
	f := newQueueFixture(t, st)
	// Any case of the id addresses the queue.
	sent := f.send(t0, strings.ToUpper(f.q), queueLimits, msg("a", "one"), msg("b", "two"), msg("c", ""))
	for i, m := range sent {
		if m.SequenceNumber <= 0 || (i > 0 && m.SequenceNumber <= sent[i-1].SequenceNumber) {
			t.Errorf("sequence numbers not increasing: %s", seqs(sent))
		}
		checkTime(t, "EnqueuedAt", m.EnqueuedAt, t0)
		if m.Size != int64(len(m.Body)+len(m.Properties)) || !m.ExpiresAt.IsZero() || m.DeliveryCount != 0 || m.DeadLetter {
			t.Errorf("sent %+v", m)
		}
	}
	m := f.mustLock(at(time.Second), f.q, false, queueLimits, "tok-a", sent[0].SequenceNumber)
	if m.DeliveryCount != 1 || m.LockToken != "tok-a" || m.MessageID != "a" || string(m.Body) != "one" || !bytes.Equal(m.Properties, sent[0].Properties) || m.QueueID != f.q {
		t.Errorf("locked %+v", m)
	}
	checkTime(t, "LockedUntil", m.LockedUntil, at(61*time.Second))
	checkTime(t, "EnqueuedAt of locked", m.EnqueuedAt, t0)
	m2 := f.mustLock(at(time.Second), f.q, false, queueLimits, "tok-b", sent[1].SequenceNumber)
	must(t, f.settle(at(2*time.Second), store.QueueComplete, strings.ToLower(f.q), false, queueLimits, m.SequenceNumber, "tok-a").Err, "complete")
	wantErr(t, f.settle(at(2*time.Second), store.QueueComplete, f.q, false, queueLimits, m.SequenceNumber, "tok-a").Err, store.ErrNotFound, "complete twice")
	wantErr(t, f.settle(at(2*time.Second), store.QueueComplete, f.q, false, queueLimits, m2.SequenceNumber, "tok-a").Err, store.ErrLockLost, "complete with another's token")
	wantErr(t, f.settle(at(2*time.Second), store.QueueComplete, f.q, false, queueLimits, sent[2].SequenceNumber, "").Err, store.ErrLockLost, "complete an unlocked message")
	wantErr(t, f.settle(at(2*time.Second), store.QueueComplete, f.q, false, queueLimits, sent[2].SequenceNumber, "x\x00").Err, store.ErrLockLost, "complete with a hostile token")
	wantErr(t, f.settle(at(2*time.Second), store.QueueComplete, f.q, true, queueLimits, m2.SequenceNumber, "tok-b").Err, store.ErrLockLost, "complete in the dead-letter queue")
	wantErr(t, f.settle(at(2*time.Second), store.QueueComplete, f.q, false, queueLimits, 1<<50, "tok-b").Err, store.ErrNotFound, "complete an unknown message")
	other := f.queue("other")
	wantErr(t, f.settle(at(2*time.Second), store.QueueComplete, other, false, queueLimits, m2.SequenceNumber, "tok-b").Err, store.ErrNotFound, "complete in another queue")
	checkIDs(t, "left after complete", seqs(f.peek(f.q, false)), seqs(sent[1:]))
	must(t, f.settle(at(2*time.Second), store.QueueComplete, f.q, false, queueLimits, m2.SequenceNumber, "tok-b").Err, "complete second")
	f.mustLock(at(3*time.Second), f.q, false, queueLimits, "tok-c", sent[2].SequenceNumber)
	f.noLock(at(3*time.Second), f.q, false, queueLimits, "all locked")

	// Send to what is not a queue.
	for _, id := range []string{f.ns, f.ns + "/queues/missing", "", "x\x00"} {
		r := f.one(t0, store.QueueOp{Kind: store.QueueSend, QueueID: id, Limits: queueLimits, Messages: []store.QueueMessage{msg("m", "b")}})
		wantErr(t, r.Err, store.ErrNotFound, "send to "+id)
	}
}

func testQueueLockExpiry(t *testing.T, st store.Store) {
	f := newQueueFixture(t, st)
	sent := f.send(t0, f.q, queueLimits, msg("a", "one"))
	seq := sent[0].SequenceNumber
	f.mustLock(t0, f.q, false, queueLimits, "a", seq)
	f.noLock(at(30*time.Second), f.q, false, queueLimits, "locked")
	next, ok, err := f.qs.NextQueueEvent(f.ctx, f.q, false)
	must(t, err, "next event")
	if !ok {
		t.Fatal("no next event")
	}
	checkTime(t, "next event is the lock's expiry", next, at(time.Minute))
	// The lock ends at LockedUntil exactly.
	wantErr(t, f.settle(at(time.Minute), store.QueueComplete, f.q, false, queueLimits, seq, "a").Err, store.ErrLockLost, "complete at expiry")
	m := f.mustLock(at(time.Minute), f.q, false, queueLimits, "b", seq)
	if m.DeliveryCount != 2 {
		t.Errorf("redelivered with DeliveryCount %d, want 2", m.DeliveryCount)
	}
	wantErr(t, f.settle(at(61*time.Second), store.QueueComplete, f.q, false, queueLimits, seq, "a").Err, store.ErrLockLost, "complete with the expired lock")
	wantErr(t, f.settle(at(61*time.Second), store.QueueRenew, f.q, false, queueLimits, seq, "a").Err, store.ErrLockLost, "renew the expired lock")
	wantErr(t, f.settle(at(61*time.Second), store.QueueAbandon, f.q, false, queueLimits, seq, "a").Err, store.ErrLockLost, "abandon the expired lock")
	must(t, f.settle(at(61*time.Second), store.QueueComplete, f.q, false, queueLimits, seq, "b").Err, "complete with the new lock")
	if _, ok, err := f.qs.NextQueueEvent(f.ctx, f.q, false); err != nil || ok {
		t.Errorf("next event of an empty queue: %v %v", ok, err)
	}
}

func testQueueAbandonRenew(t *testing.T, st store.Store) {
	f := newQueueFixture(t, st)
	seq := f.send(t0, f.q, queueLimits, msg("a", "one"))[0].SequenceNumber
	f.mustLock(t0, f.q, false, queueLimits, "a", seq)
	r := f.settle(at(50*time.Second), store.QueueRenew, f.q, false, queueLimits, seq, "a")
	must(t, r.Err, "renew")
	checkTime(t, "renewed LockedUntil", r.LockedUntil, at(110*time.Second))
	f.noLock(at(70*time.Second), f.q, false, queueLimits, "renewed lock holds")
	if ms := f.peek(f.q, false); len(ms) != 1 || !ms[0].LockedUntil.Equal(at(110*time.Second)) || ms[0].LockToken != "a" {
		t.Errorf("peek after renew: %+v", ms)
	}
	wantErr(t, f.settle(at(80*time.Second), store.QueueRenew, f.q, false, queueLimits, seq, "b").Err, store.ErrLockLost, "renew with a wrong token")
	wantErr(t, f.settle(at(80*time.Second), store.QueueAbandon, f.q, false, queueLimits, seq, "b").Err, store.ErrLockLost, "abandon with a wrong token")
	r = f.settle(at(80*time.Second), store.QueueAbandon, f.q, false, queueLimits, seq, "a")
	must(t, r.Err, "abandon")
	if r.DeadLettered {
		t.Error("abandon dead-lettered below MaxDeliveryCount")
	}
	if ms := f.peek(f.q, false); len(ms) != 1 || ms[0].LockToken != "" || !ms[0].LockedUntil.IsZero() {
		t.Errorf("peek after abandon: %+v", ms)
	}
	wantErr(t, f.settle(at(80*time.Second), store.QueueComplete, f.q, false, queueLimits, seq, "a").Err, store.ErrLockLost, "complete after abandon")
	m := f.mustLock(at(80*time.Second), f.q, false, queueLimits, "c", seq)
	if m.DeliveryCount != 2 {
		t.Errorf("DeliveryCount after abandon and lock: %d, want 2", m.DeliveryCount)
	}
}

// A receiver dead-letters the message it holds, with its reason: the
// message leaves the queue for the dead-letter queue at once, unlocked,
// keeping its sequence number; a wrong lock or a dead-lettered message
// cannot be dead-lettered.
func testQueueDeadLetter(t *testing.T, st store.Store) {
	f := newQueueFixture(t, st)
	seq := f.send(t0, f.q, queueLimits, msg("a", "one"))[0].SequenceNumber
	f.mustLock(t0, f.q, false, queueLimits, "a", seq)
	dl := func(now time.Time, dlq bool, token string) store.QueueResult {
		return f.one(now, store.QueueOp{Kind: store.QueueDeadLetter, QueueID: f.q, DeadLetter: dlq, Limits: queueLimits,
			SequenceNumber: seq, LockToken: token, DeadLetterReason: "BadOrder", DeadLetterDescription: "no such product"})
	}
	wantErr(t, dl(at(time.Second), false, "b").Err, store.ErrLockLost, "dead-letter with a wrong token")
	r := dl(at(time.Second), false, "a")
	must(t, r.Err, "dead-letter")
	if !r.DeadLettered {
		t.Error("DeadLettered not reported")
	}
	if ms := f.peek(f.q, false); len(ms) != 0 {
		t.Errorf("queue after dead-letter: %+v", ms)
	}
	m := f.mustLock(at(2*time.Second), f.q, true, queueLimits, "c", seq)
	if m.DeadLetterReason != "BadOrder" || m.DeadLetterDescription != "no such product" {
		t.Errorf("dead-lettered message: %+v", m)
	}
	wantErr(t, f.one(at(3*time.Second), store.QueueOp{Kind: store.QueueDeadLetter, QueueID: f.q, DeadLetter: true, Limits: queueLimits,
		SequenceNumber: seq, LockToken: "c"}).Err, store.ErrNotFound, "dead-letter a dead-lettered message")
	wantErr(t, dl(at(3*time.Second), false, "a").Err, store.ErrLockLost, "dead-letter again with the lock it no longer has")
}

// A scheduled message can be cancelled until it is due; a due one, an
// unknown one or one of another queue cannot.
func testQueueCancelScheduled(t *testing.T, st store.Store) {
	f := newQueueFixture(t, st)
	later := msg("later", "scheduled")
	later.ScheduledAt = at(time.Hour)
	soon := msg("soon", "scheduled soon")
	soon.ScheduledAt = at(time.Minute)
	sent := f.send(t0, f.q, queueLimits, later, soon, msg("now", "at once"))
	cancel := func(now time.Time, q string, seq int64) error {
		return f.one(now, store.QueueOp{Kind: store.QueueCancelScheduled, QueueID: q, Limits: queueLimits, SequenceNumber: seq}).Err
	}
	must(t, cancel(at(time.Second), f.q, sent[0].SequenceNumber), "cancel a scheduled message")
	wantErr(t, cancel(at(time.Second), f.q, sent[0].SequenceNumber), store.ErrNotFound, "cancel it again")
	wantErr(t, cancel(at(time.Second), f.q, sent[2].SequenceNumber), store.ErrNotFound, "cancel a message that was never scheduled")
	wantErr(t, cancel(at(2*time.Minute), f.q, sent[1].SequenceNumber), store.ErrNotFound, "cancel a message already due")
	other := f.queue("other")
	wantErr(t, cancel(at(time.Second), other, sent[1].SequenceNumber), store.ErrNotFound, "cancel through another queue")
	if ms := f.peek(f.q, false); len(ms) != 2 {
		t.Errorf("after cancelling one of three: %d messages", len(ms))
	}
	if s := f.stats(f.q, at(time.Second)); s.SizeBytes != sent[1].Size+sent[2].Size {
		t.Errorf("size after the cancel: %d, want %d", s.SizeBytes, sent[1].Size+sent[2].Size)
	}
}

func (f *queueFixture) lockDeferred(now time.Time, q string, dl bool, lim store.QueueLimits, seq int64, token string) store.QueueResult {
	f.t.Helper()
	return f.one(now, store.QueueOp{Kind: store.QueueLockDeferred, QueueID: q, DeadLetter: dl, Limits: lim, SequenceNumber: seq, LockToken: token})
}

// lockAndDefer locks the head of q, which must be seq, and defers it.
func (f *queueFixture) lockAndDefer(now time.Time, q string, dl bool, lim store.QueueLimits, seq int64) {
	f.t.Helper()
	tok := newID()
	f.mustLock(now, q, dl, lim, tok, seq)
	must(f.t, f.settle(now, store.QueueDefer, q, dl, lim, seq, tok).Err, "defer")
}

// A peek-locked message is deferred by its lock: it stays in the queue,
// counted as active and shown by peek, but no ordinary receive delivers
// it again; it is locked only by its sequence number, and that lock is
// renewed, abandoned (deferred again, unlocked), lost at its expiry (still
// deferred) and completed like any lock.
func testQueueDefer(t *testing.T, st store.Store) {
	f := newQueueFixture(t, st)
	sent := f.send(t0, f.q, queueLimits, msg("a", "one"), msg("b", "two"), msg("c", "three"))
	a, b, c := sent[0].SequenceNumber, sent[1].SequenceNumber, sent[2].SequenceNumber
	f.mustLock(t0, f.q, false, queueLimits, "tok-a", a)
	wantErr(t, f.settle(at(time.Second), store.QueueDefer, f.q, false, queueLimits, a, "tok-x").Err, store.ErrLockLost, "defer with a wrong token")
	wantErr(t, f.settle(at(time.Second), store.QueueDefer, f.q, false, queueLimits, b, "").Err, store.ErrLockLost, "defer an unlocked message")
	must(t, f.settle(at(time.Second), store.QueueDefer, f.q, false, queueLimits, a, "tok-a").Err, "defer")
	wantErr(t, f.settle(at(time.Second), store.QueueComplete, f.q, false, queueLimits, a, "tok-a").Err, store.ErrLockLost, "complete with the lock the deferral released")
	// Ordinary receives pass it by.
	f.mustLock(at(2*time.Second), f.q, false, queueLimits, "tok-b", b)
	must(t, f.settle(at(2*time.Second), store.QueueComplete, f.q, false, queueLimits, b, "tok-b").Err, "complete b")
	r := f.one(at(2*time.Second), store.QueueOp{Kind: store.QueueReceiveAndDelete, QueueID: f.q, Limits: queueLimits})
	must(t, r.Err, "receive and delete c")
	if len(r.Messages) != 1 || r.Messages[0].SequenceNumber != c {
		t.Fatalf("receive and delete took %s, want %d", seqs(r.Messages), c)
	}
	f.noLock(at(2*time.Second), f.q, false, queueLimits, "only a deferred message left")
	if _, ok, err := f.qs.NextQueueEvent(f.ctx, f.q, false); err != nil || ok {
		t.Errorf("next event with only a deferred message: %v %v", ok, err)
	}
	ms := f.peek(f.q, false)
	if len(ms) != 1 || ms[0].SequenceNumber != a || !ms[0].Deferred || ms[0].LockToken != "" || !ms[0].LockedUntil.IsZero() || ms[0].DeliveryCount != 1 {
		t.Fatalf("peek of the deferred message: %+v", ms)
	}
	if s := f.stats(f.q, at(2*time.Second)); s.ActiveCount != 1 || s.DeadLetterCount != 0 || s.SizeBytes != sent[0].Size {
		t.Errorf("stats with a deferred message: %+v (it counts as active)", s)
	}

	// Only a deferred message is locked by sequence number.
	wantErr(t, f.lockDeferred(at(3*time.Second), f.q, false, queueLimits, b, "d0").Err, store.ErrNotFound, "lock a completed message by sequence number")
	d := f.send(at(3*time.Second), f.q, queueLimits, msg("d", "not deferred"))[0].SequenceNumber
	wantErr(t, f.lockDeferred(at(3*time.Second), f.q, false, queueLimits, d, "d0").Err, store.ErrNotFound, "lock a message that is not deferred by sequence number")
	wantErr(t, f.lockDeferred(at(3*time.Second), f.q, true, queueLimits, a, "d0").Err, store.ErrNotFound, "lock it through the dead-letter queue")
	other := f.queue("other")
	wantErr(t, f.lockDeferred(at(3*time.Second), other, false, queueLimits, a, "d0").Err, store.ErrNotFound, "lock it through another queue")
	if r := f.one(at(3*time.Second), store.QueueOp{Kind: store.QueueLockDeferred, QueueID: f.q, Limits: queueLimits, SequenceNumber: a}); r.Err == nil {
		t.Error("lock deferred without a lock token succeeded")
	}
	r = f.lockDeferred(at(3*time.Second), f.q, false, queueLimits, a, "d1")
	must(t, r.Err, "lock deferred")
	if len(r.Messages) != 1 || r.Messages[0].SequenceNumber != a || !r.Messages[0].Deferred || r.Messages[0].LockToken != "d1" || r.Messages[0].DeliveryCount != 2 || string(r.Messages[0].Body) != "one" {
		t.Fatalf("locked deferred: %+v", r.Messages)
	}
	checkTime(t, "LockedUntil of the deferred lock", r.LockedUntil, at(63*time.Second))
	wantErr(t, f.lockDeferred(at(4*time.Second), f.q, false, queueLimits, a, "d2").Err, store.ErrLockLost, "lock a locked deferred message")
	f.mustLock(at(4*time.Second), f.q, false, queueLimits, "tok-d", d) // the ordinary receive takes d, never a
	must(t, f.settle(at(4*time.Second), store.QueueComplete, f.q, false, queueLimits, d, "tok-d").Err, "complete d")
	rr := f.settle(at(50*time.Second), store.QueueRenew, f.q, false, queueLimits, a, "d1")
	must(t, rr.Err, "renew the deferred lock")
	checkTime(t, "renewed LockedUntil", rr.LockedUntil, at(110*time.Second))
	wantErr(t, f.lockDeferred(at(70*time.Second), f.q, false, queueLimits, a, "d2").Err, store.ErrLockLost, "lock a renewed deferred message")
	ab := f.settle(at(80*time.Second), store.QueueAbandon, f.q, false, queueLimits, a, "d1")
	must(t, ab.Err, "abandon the deferred lock")
	if ab.DeadLettered {
		t.Error("abandon dead-lettered below MaxDeliveryCount")
	}
	f.noLock(at(80*time.Second), f.q, false, queueLimits, "abandoned deferred message")
	if ms := f.peek(f.q, false); len(ms) != 1 || !ms[0].Deferred || ms[0].LockToken != "" {
		t.Fatalf("after abandoning the deferred lock: %+v", ms)
	}
	// Its lock lapses: deferred still, and locked again by its number.
	r = f.lockDeferred(at(90*time.Second), f.q, false, queueLimits, a, "d3")
	must(t, r.Err, "lock deferred again")
	if r.Messages[0].DeliveryCount != 3 {
		t.Errorf("DeliveryCount after abandon and lock by sequence number: %d, want 3", r.Messages[0].DeliveryCount)
	}
	f.noLock(at(200*time.Second), f.q, false, queueLimits, "deferred message after its lock lapsed")
	if _, ok, err := f.qs.NextQueueEvent(f.ctx, f.q, false); err != nil || ok {
		t.Errorf("next event with a locked deferred message: %v %v", ok, err)
	}
	wantErr(t, f.settle(at(200*time.Second), store.QueueComplete, f.q, false, queueLimits, a, "d3").Err, store.ErrLockLost, "complete with the lapsed lock")
	must(t, f.lockDeferred(at(200*time.Second), f.q, false, queueLimits, a, "d4").Err, "lock deferred after the lapse")
	must(t, f.settle(at(201*time.Second), store.QueueComplete, f.q, false, queueLimits, a, "d4").Err, "complete the deferred message")
	if ms := f.peek(f.q, false); len(ms) != 0 {
		t.Errorf("after completing: %+v", ms)
	}
	if s := f.stats(f.q, at(201*time.Second)); s.ActiveCount != 0 || s.SizeBytes != 0 {
		t.Errorf("stats after completing: %+v", s)
	}
	wantErr(t, f.lockDeferred(at(202*time.Second), f.q, false, queueLimits, a, "d5").Err, store.ErrNotFound, "lock a completed deferred message")
}

// A deferred message locked by its sequence number is dead-lettered (no
// longer deferred there), deferred again, or dead-lettered by an abandon
// at MaxDeliveryCount; a dead-lettered message can be deferred in the
// dead-letter queue and locked there by its number.
func testQueueDeferSettle(t *testing.T, st store.Store) {
	f := newQueueFixture(t, st)
	lim := queueLimits
	lim.MaxDeliveryCount = 2
	sent := f.send(t0, f.q, lim, msg("a", "one"), msg("b", "two"), msg("c", "three"))
	a, b, c := sent[0].SequenceNumber, sent[1].SequenceNumber, sent[2].SequenceNumber
	f.lockAndDefer(t0, f.q, false, lim, a)
	f.lockAndDefer(t0, f.q, false, lim, b)
	f.lockAndDefer(t0, f.q, false, lim, c)

	must(t, f.lockDeferred(at(time.Second), f.q, false, lim, a, "a1").Err, "lock a")
	r := f.one(at(time.Second), store.QueueOp{Kind: store.QueueDeadLetter, QueueID: f.q, Limits: lim, SequenceNumber: a, LockToken: "a1",
		DeadLetterReason: "Unprocessable", DeadLetterDescription: "deferred, then refused"})
	must(t, r.Err, "dead-letter the deferred message")
	m := f.mustLock(at(2*time.Second), f.q, true, lim, "dl-a", a)
	if m.Deferred || m.DeadLetterReason != "Unprocessable" || m.DeadLetterDescription != "deferred, then refused" {
		t.Errorf("dead-lettered deferred message: %+v", m)
	}

	must(t, f.lockDeferred(at(time.Second), f.q, false, lim, b, "b1").Err, "lock b")
	must(t, f.settle(at(time.Second), store.QueueDefer, f.q, false, lim, b, "b1").Err, "defer b again")
	if ms := f.peek(f.q, false); len(ms) != 2 || ms[0].SequenceNumber != b || !ms[0].Deferred || ms[0].LockToken != "" {
		t.Errorf("after deferring again: %+v", ms)
	}
	must(t, f.lockDeferred(at(2*time.Second), f.q, false, lim, b, "b2").Err, "lock b after deferring it again")

	// c was delivered once; locked by number it reaches MaxDeliveryCount 2,
	// and an abandon dead-letters it.
	must(t, f.lockDeferred(at(time.Second), f.q, false, lim, c, "c1").Err, "lock c")
	r = f.settle(at(time.Second), store.QueueAbandon, f.q, false, lim, c, "c1")
	must(t, r.Err, "abandon c")
	if !r.DeadLettered {
		t.Error("abandon at MaxDeliveryCount did not dead-letter the deferred message")
	}
	ms := f.peek(f.q, true)
	if len(ms) != 2 || ms[1].SequenceNumber != c || ms[1].Deferred || ms[1].DeadLetterReason != store.DeadLetterMaxDeliveryCount {
		t.Errorf("dead-letter queue: %+v", ms)
	}
	if s := f.stats(f.q, at(time.Second)); s.ActiveCount != 1 || s.DeadLetterCount != 2 {
		t.Errorf("stats: %+v", s)
	}

	// In the dead-letter queue: deferred there, locked there by number.
	must(t, f.settle(at(3*time.Second), store.QueueDefer, f.q, true, lim, a, "dl-a").Err, "defer in the dead-letter queue")
	f.mustLock(at(3*time.Second), f.q, true, lim, "dl-c", c)
	f.noLock(at(3*time.Second), f.q, true, lim, "deferred in the dead-letter queue")
	wantErr(t, f.lockDeferred(at(3*time.Second), f.q, false, lim, a, "x").Err, store.ErrNotFound, "lock a dead-letter queue's deferred message through the queue")
	r = f.lockDeferred(at(3*time.Second), f.q, true, lim, a, "dl-a2")
	must(t, r.Err, "lock deferred in the dead-letter queue")
	must(t, f.settle(at(4*time.Second), store.QueueComplete, f.q, true, lim, a, "dl-a2").Err, "complete it")
}

// Deferred messages do not expire while set aside: an ordinary receive
// leaves them in the queue past their expiry; a lock by sequence number
// finds them expired and dead-letters or drops them, as the queue says.
func testQueueDeferTTL(t *testing.T, st store.Store) {
	f := newQueueFixture(t, st)
	lim := queueLimits
	lim.DefaultTimeToLive = time.Minute
	sent := f.send(t0, f.q, lim, msg("a", "one"), msg("b", "two"), msg("c", "three"))
	a, b := sent[0].SequenceNumber, sent[1].SequenceNumber
	f.lockAndDefer(t0, f.q, false, lim, a)
	f.lockAndDefer(t0, f.q, false, lim, b)
	f.noLock(at(2*time.Minute), f.q, false, lim, "only expired messages") // sweeps c, leaves a and b
	if ms := f.peek(f.q, false); len(seqs(ms)) != 2 || ms[0].SequenceNumber != a || ms[1].SequenceNumber != b {
		t.Fatalf("after the sweep: %s, want the deferred %d and %d", seqs(ms), a, b)
	}
	if s := f.stats(f.q, at(2*time.Minute)); s.ActiveCount != 2 || s.SizeBytes != sent[0].Size+sent[1].Size {
		t.Errorf("stats with expired deferred messages: %+v", s)
	}
	dlLim := lim
	dlLim.DeadLetterOnExpiration = true
	r := f.lockDeferred(at(2*time.Minute), f.q, false, dlLim, a, "a1")
	wantErr(t, r.Err, store.ErrNotFound, "lock an expired deferred message")
	if !r.DeadLettered {
		t.Error("the expired deferred message was not reported dead-lettered")
	}
	m := f.mustLock(at(2*time.Minute), f.q, true, lim, "dl", a)
	if m.Deferred || m.DeadLetterReason != store.DeadLetterTTLExpired {
		t.Errorf("expired deferred message in the dead-letter queue: %+v", m)
	}
	r = f.lockDeferred(at(2*time.Minute), f.q, false, lim, b, "b1")
	wantErr(t, r.Err, store.ErrNotFound, "lock an expired deferred message (dropped)")
	if r.DeadLettered {
		t.Error("dropped, yet reported dead-lettered")
	}
	if ms := f.peek(f.q, false); len(ms) != 0 {
		t.Errorf("queue after both expired: %+v", ms)
	}
	if s := f.stats(f.q, at(2*time.Minute)); s.SizeBytes != sent[0].Size {
		t.Errorf("size after the drop: %d, want %d (the dead-lettered one)", s.SizeBytes, sent[0].Size)
	}
}

func testQueueMaxDeliveryCount(t *testing.T, st store.Store) {
	f := newQueueFixture(t, st)
	lim := queueLimits
	lim.MaxDeliveryCount = 2
	sent := f.send(t0, f.q, lim, msg("a", "one"), msg("b", "two"))
	a, b := sent[0].SequenceNumber, sent[1].SequenceNumber
	// Abandoning the last allowed delivery dead-letters.
	f.mustLock(t0, f.q, false, lim, "1", a)
	if r := f.settle(t0, store.QueueAbandon, f.q, false, lim, a, "1"); r.Err != nil || r.DeadLettered {
		t.Fatalf("first abandon: %+v", r)
	}
	f.mustLock(t0, f.q, false, lim, "2", a)
	if r := f.settle(t0, store.QueueAbandon, f.q, false, lim, a, "2"); r.Err != nil || !r.DeadLettered {
		t.Fatalf("second abandon: %+v", r)
	}
	// So does a lock expiring on the last delivery.
	f.mustLock(t0, f.q, false, lim, "3", b)
	f.noLock(at(30*time.Second), f.q, false, lim, "b is locked, a dead-lettered")
	if m := f.mustLock(at(2*time.Minute), f.q, false, lim, "4", b); m.DeliveryCount != 2 {
		t.Errorf("b redelivered with DeliveryCount %d, want 2", m.DeliveryCount)
	}
	f.noLock(at(4*time.Minute), f.q, false, lim, "b's second lock expired: dead-lettered")
	dlq := f.peek(f.q, true)
	checkIDs(t, "dead-letter queue", seqs(dlq), []string{fmt.Sprint(a), fmt.Sprint(b)})
	for _, m := range dlq {
		if !m.DeadLetter || m.DeadLetterReason != store.DeadLetterMaxDeliveryCount || m.DeadLetterDescription == "" || m.LockToken != "" {
			t.Errorf("dead-lettered %+v", m)
		}
	}
	if len(f.peek(f.q, false)) != 0 {
		t.Error("queue not empty")
	}
	// The dead-letter queue is received from like a queue, and its messages
	// are never dead-lettered again, however often delivered.
	for i := range 4 {
		tok := fmt.Sprint("d", i)
		m := f.mustLock(at(5*time.Minute), f.q, true, lim, tok, a)
		if m.DeliveryCount != 3+i || !m.DeadLetter {
			t.Errorf("DLQ delivery %d: %+v", i, m)
		}
		must(t, f.settle(at(5*time.Minute), store.QueueAbandon, f.q, true, lim, a, tok).Err, "abandon in DLQ")
	}
	f.mustLock(at(5*time.Minute), f.q, true, lim, "d", a)
	must(t, f.settle(at(5*time.Minute), store.QueueComplete, f.q, true, lim, a, "d").Err, "complete in DLQ")
	checkIDs(t, "dead-letter queue after complete", seqs(f.peek(f.q, true)), []string{fmt.Sprint(b)})
}

func testQueueTTL(t *testing.T, st store.Store) {
	f := newQueueFixture(t, st)
	lim := queueLimits
	lim.DefaultTimeToLive = 10 * time.Minute
	ttl := func(id string, d time.Duration) store.QueueMessage { m := msg(id, id); m.TimeToLive = d; return m }
	sched := ttl("s", time.Minute)
	sched.ScheduledAt = at(time.Hour)
	sent := f.send(t0, f.q, lim, ttl("long", time.Hour), ttl("short", time.Minute), ttl("none", 0), sched)
	checkTime(t, "TTL clamped to the queue's default", sent[0].ExpiresAt, at(10*time.Minute))
	checkTime(t, "own TTL", sent[1].ExpiresAt, at(time.Minute))
	checkTime(t, "default TTL", sent[2].ExpiresAt, at(10*time.Minute))
	checkTime(t, "scheduled: TTL from the scheduled time", sent[3].ExpiresAt, at(61*time.Minute))
	checkTime(t, "scheduled time", sent[3].ScheduledAt, at(time.Hour))
	forever := f.send(t0, f.q, queueLimits, ttl("forever", 0))[0]
	if !forever.ExpiresAt.IsZero() {
		t.Errorf("no TTL and no default: expires %v", forever.ExpiresAt)
	}

	// Dropped on expiry: "short" is gone when a receive passes it.
	f.mustLock(at(2*time.Minute), f.q, false, lim, "l", sent[0].SequenceNumber)
	f.mustLock(at(2*time.Minute), f.q, false, lim, "n", sent[2].SequenceNumber)
	checkIDs(t, "after dropping the expired", seqs(f.peek(f.q, false)), []string{fmt.Sprint(sent[0].SequenceNumber), fmt.Sprint(sent[2].SequenceNumber), fmt.Sprint(sent[3].SequenceNumber), fmt.Sprint(forever.SequenceNumber)})
	if len(f.peek(f.q, true)) != 0 {
		t.Error("dropped message went to the dead-letter queue")
	}
	// A locked message does not expire until its lock ends.
	long := lim
	long.LockDuration = 30 * time.Minute
	q2 := f.queue("locked")
	m := f.send(t0, q2, lim, ttl("x", time.Minute))[0]
	f.mustLock(t0, q2, false, long, "x", m.SequenceNumber)
	must(t, f.settle(at(20*time.Minute), store.QueueRenew, q2, false, long, m.SequenceNumber, "x").Err, "renew past the TTL")
	must(t, f.settle(at(40*time.Minute), store.QueueComplete, q2, false, long, m.SequenceNumber, "x").Err, "complete past the TTL while locked")

	// Dead-lettered on expiry, and never expiring there.
	dl := lim
	dl.DeadLetterOnExpiration = true
	q3 := f.queue("deadletter")
	m = f.send(t0, q3, dl, ttl("y", time.Minute))[0]
	f.noLock(at(time.Minute), q3, false, dl, "expired at ExpiresAt")
	dlq := f.peek(q3, true)
	if len(dlq) != 1 || dlq[0].SequenceNumber != m.SequenceNumber || dlq[0].DeadLetterReason != store.DeadLetterTTLExpired || dlq[0].DeadLetterDescription == "" {
		t.Fatalf("dead-letter queue: %+v", dlq)
	}
	got := f.mustLock(at(1000*time.Hour), q3, true, dl, "z", m.SequenceNumber)
	if string(got.Body) != "y" || got.DeliveryCount != 1 {
		t.Errorf("from the DLQ: %+v", got)
	}
}

func testQueueDuplicates(t *testing.T, st store.Store) {
	f := newQueueFixture(t, st)
	lim := queueLimits
	lim.DuplicateDetection, lim.DuplicateWindow = true, 10*time.Minute
	first := f.send(t0, f.q, lim, msg("x", "1"))[0]
	r := f.one(at(5*time.Minute), store.QueueOp{Kind: store.QueueSend, QueueID: f.q, Limits: lim, Messages: []store.QueueMessage{msg("x", "2")}})
	must(t, r.Err, "duplicate send succeeds")
	if len(r.Duplicates) != 1 || r.Duplicates[0] != 0 || r.Messages[0].SequenceNumber != 0 {
		t.Errorf("duplicate send: %+v", r)
	}
	// Within one send, and within one batch.
	r = f.one(at(5*time.Minute), store.QueueOp{Kind: store.QueueSend, QueueID: f.q, Limits: lim, Messages: []store.QueueMessage{msg("y", "1"), msg("y", "2"), msg("z", "1"), msg("", "no id"), msg("", "no id")}})
	must(t, r.Err, "batch")
	if fmt.Sprint(r.Duplicates) != "[1]" {
		t.Errorf("batch duplicates %v, want [1]", r.Duplicates)
	}
	rs := f.apply(at(5*time.Minute),
		store.QueueOp{Kind: store.QueueSend, QueueID: f.q, Limits: lim, Messages: []store.QueueMessage{msg("w", "1")}},
		store.QueueOp{Kind: store.QueueSend, QueueID: strings.ToUpper(f.q), Limits: lim, Messages: []store.QueueMessage{msg("w", "2")}})
	if rs[0].Err != nil || rs[1].Err != nil || len(rs[0].Duplicates) != 0 || fmt.Sprint(rs[1].Duplicates) != "[0]" {
		t.Errorf("two sends in one batch: %+v", rs)
	}
	// Scheduled messages count.
	s := msg("s", "1")
	s.ScheduledAt = at(time.Hour)
	f.send(at(5*time.Minute), f.q, lim, s)
	if r := f.one(at(6*time.Minute), store.QueueOp{Kind: store.QueueSend, QueueID: f.q, Limits: lim, Messages: []store.QueueMessage{msg("s", "2")}}); len(r.Duplicates) != 1 {
		t.Errorf("duplicate of a scheduled message stored: %+v", r)
	}
	// Another queue has its own history.
	other := f.queue("other")
	f.send(at(5*time.Minute), other, lim, msg("x", "1"))
	// After the window, the id is new again; without detection, always.
	if r := f.one(at(10*time.Minute), store.QueueOp{Kind: store.QueueSend, QueueID: f.q, Limits: lim, Messages: []store.QueueMessage{msg("x", "3")}}); r.Err != nil || len(r.Duplicates) != 0 || r.Messages[0].SequenceNumber <= first.SequenceNumber {
		t.Errorf("send after the window: %+v", r)
	}
	if r := f.one(at(10*time.Minute), store.QueueOp{Kind: store.QueueSend, QueueID: f.q, Limits: queueLimits, Messages: []store.QueueMessage{msg("x", "4")}}); r.Err != nil || len(r.Duplicates) != 0 {
		t.Errorf("send without detection: %+v", r)
	}
	if n := len(f.peek(f.q, false)); n != 9 {
		t.Errorf("%d messages stored, want 9 (x, y, z, 2 without id, w, s, x, x)", n)
	}
	n, err := f.qs.PruneDuplicateIDs(f.ctx, at(15*time.Minute))
	must(t, err, "prune")
	if n < 4 { // y, z, w of this queue at t0+5m, x of the other; x (t0+10m) stays
		t.Errorf("pruned %d, want at least 4", n)
	}
	if r := f.one(at(15*time.Minute), store.QueueOp{Kind: store.QueueSend, QueueID: f.q, Limits: lim, Messages: []store.QueueMessage{msg("x", "5")}}); len(r.Duplicates) != 1 {
		t.Errorf("prune removed a live entry: %+v", r)
	}
}

func testQueueScheduled(t *testing.T, st store.Store) {
	f := newQueueFixture(t, st)
	s := msg("s", "later")
	s.ScheduledAt = at(time.Hour)
	sent := f.send(t0, f.q, queueLimits, s, msg("n", "now"))
	f.mustLock(t0, f.q, false, queueLimits, "n", sent[1].SequenceNumber)
	f.noLock(t0, f.q, false, queueLimits, "scheduled is invisible")
	next, ok, err := f.qs.NextQueueEvent(f.ctx, strings.ToUpper(f.q), false)
	if err != nil || !ok || !next.Equal(at(time.Minute)) {
		t.Errorf("next event %v %v %v, want the lock's expiry", next, ok, err)
	}
	must(t, f.settle(t0, store.QueueComplete, f.q, false, queueLimits, sent[1].SequenceNumber, "n").Err, "complete")
	next, ok, err = f.qs.NextQueueEvent(f.ctx, f.q, false)
	if err != nil || !ok || !next.Equal(at(time.Hour)) {
		t.Errorf("next event %v %v %v, want the scheduled time", next, ok, err)
	}
	if st := f.stats(f.q, t0); st.ActiveCount != 0 || st.ScheduledCount != 1 || st.DeadLetterCount != 0 {
		t.Errorf("stats before due: %+v", st)
	}
	f.noLock(at(time.Hour-time.Microsecond), f.q, false, queueLimits, "just before due")
	m := f.mustLock(at(time.Hour), f.q, false, queueLimits, "s", sent[0].SequenceNumber)
	checkTime(t, "ScheduledAt", m.ScheduledAt, at(time.Hour))
	if st := f.stats(f.q, at(time.Hour)); st.ActiveCount != 1 || st.ScheduledCount != 0 {
		t.Errorf("stats when due: %+v", st)
	}
	// A scheduled time in the past is at once.
	p := msg("p", "past")
	p.ScheduledAt = at(-time.Hour)
	if m := f.send(at(2*time.Hour), f.q, queueLimits, p)[0]; !m.ScheduledAt.IsZero() {
		t.Errorf("past schedule kept: %v", m.ScheduledAt)
	}
}

func testQueueQuota(t *testing.T, st store.Store) {
	f := newQueueFixture(t, st)
	lim := queueLimits
	lim.MaxSizeBytes = 100
	sized := func(n int) store.QueueMessage {
		return store.QueueMessage{Body: bytes.Repeat([]byte("x"), n-2), Properties: []byte("{}")}
	}
	a := f.send(t0, f.q, lim, sized(60))[0]
	if a.Size != 60 {
		t.Errorf("size %d, want 60", a.Size)
	}
	wantErr(t, f.one(t0, store.QueueOp{Kind: store.QueueSend, QueueID: f.q, Limits: lim, Messages: []store.QueueMessage{sized(20), sized(21)}}).Err, store.ErrQuotaExceeded, "over quota")
	if n := len(f.peek(f.q, false)); n != 1 {
		t.Errorf("a refused batch stored %d messages", n-1)
	}
	f.send(t0, f.q, lim, sized(20), sized(20))
	if s := f.stats(f.q, t0); s.SizeBytes != 100 || s.ActiveCount != 3 {
		t.Errorf("stats at quota: %+v", s)
	}
	wantErr(t, f.one(t0, store.QueueOp{Kind: store.QueueSend, QueueID: f.q, Limits: lim, Messages: []store.QueueMessage{sized(2)}}).Err, store.ErrQuotaExceeded, "full")
	// Dead-lettered messages still count; completed ones free space.
	one := lim
	one.MaxDeliveryCount = 1
	f.mustLock(t0, f.q, false, one, "a", a.SequenceNumber)
	must(t, f.settle(t0, store.QueueAbandon, f.q, false, one, a.SequenceNumber, "a").Err, "abandon to the DLQ")
	if s := f.stats(f.q, t0); s.SizeBytes != 100 || s.ActiveCount != 2 || s.DeadLetterCount != 1 {
		t.Errorf("stats after dead-lettering: %+v", s)
	}
	wantErr(t, f.one(t0, store.QueueOp{Kind: store.QueueSend, QueueID: f.q, Limits: lim, Messages: []store.QueueMessage{sized(2)}}).Err, store.ErrQuotaExceeded, "DLQ counts")
	f.mustLock(t0, f.q, true, lim, "d", a.SequenceNumber)
	must(t, f.settle(t0, store.QueueComplete, f.q, true, lim, a.SequenceNumber, "d").Err, "complete from DLQ")
	// Space freed in one batch is usable by a later op of the same batch.
	rs := f.apply(t0,
		store.QueueOp{Kind: store.QueueReceiveAndDelete, QueueID: f.q, Limits: lim},
		store.QueueOp{Kind: store.QueueSend, QueueID: f.q, Limits: lim, Messages: []store.QueueMessage{sized(80)}})
	if rs[0].Err != nil || rs[1].Err != nil {
		t.Errorf("receive then send in one batch: %v, %v", rs[0].Err, rs[1].Err)
	}
	if s := f.stats(f.q, t0); s.SizeBytes != 100 || s.ActiveCount != 2 {
		t.Errorf("final stats: %+v", s)
	}
	// No quota: unlimited.
	f.send(t0, f.q, queueLimits, sized(1000))
}

func testQueueBatchIsolation(t *testing.T, st store.Store) {
	f := newQueueFixture(t, st)
	other := f.queue("other")
	lim := queueLimits
	lim.MaxSizeBytes = 50
	held := f.send(t0, f.q, lim, msg("h", "held"))[0]
	f.mustLock(t0, f.q, false, lim, "h", held.SequenceNumber)
	big := store.QueueMessage{Body: make([]byte, 100)}
	ops := []store.QueueOp{
		{Kind: store.QueueSend, QueueID: f.q, Limits: lim, Messages: []store.QueueMessage{msg("ok1", "1")}},
		{Kind: store.QueueComplete, QueueID: f.q, Limits: lim, SequenceNumber: held.SequenceNumber, LockToken: "wrong"},
		{Kind: store.QueueSend, QueueID: f.ns + "/queues/missing", Limits: lim, Messages: []store.QueueMessage{msg("m", "1")}},
		{Kind: store.QueueSend, QueueID: f.q, Limits: lim, Messages: []store.QueueMessage{msg("q1", "1"), big}},
		{Kind: store.QueueLock, QueueID: f.q, Limits: lim, LockToken: "new"},
		{Kind: 0, QueueID: f.q},
		{Kind: store.QueueLock, QueueID: f.q, Limits: store.QueueLimits{}, LockToken: "x"},
		{Kind: store.QueueSend, QueueID: other, Limits: lim, Messages: []store.QueueMessage{msg("ok2", "2")}},
		{Kind: store.QueueSend, QueueID: f.q, DeadLetter: true, Limits: lim, Messages: []store.QueueMessage{msg("d", "1")}},
		{Kind: store.QueueComplete, QueueID: f.q, Limits: lim, SequenceNumber: held.SequenceNumber, LockToken: "h"},
	}
	rs := f.apply(at(time.Second), ops...)
	must(t, rs[0].Err, "send")
	wantErr(t, rs[1].Err, store.ErrLockLost, "wrong token")
	wantErr(t, rs[2].Err, store.ErrNotFound, "missing queue")
	wantErr(t, rs[3].Err, store.ErrQuotaExceeded, "over quota")
	must(t, rs[4].Err, "lock")
	if len(rs[4].Messages) != 1 || rs[4].Messages[0].SequenceNumber != rs[0].Messages[0].SequenceNumber {
		t.Errorf("lock in the batch took %+v, want the message sent earlier in the batch", rs[4].Messages)
	}
	wantPlainErr(t, rs[5].Err, "unknown kind")
	wantPlainErr(t, rs[6].Err, "lock without limits")
	must(t, rs[7].Err, "send to another queue")
	wantPlainErr(t, rs[8].Err, "send to the DLQ")
	must(t, rs[9].Err, "complete with the right token")
	checkIDs(t, "queue after the batch", seqs(f.peek(f.q, false)), seqs(rs[0].Messages))
	checkIDs(t, "other queue after the batch", seqs(f.peek(other, false)), seqs(rs[7].Messages))

	// Not inside InTx.
	err := st.InTx(f.ctx, func(tx store.Store) error {
		rs := tx.(store.Queues).ApplyQueueOps(f.ctx, t0, []store.QueueOp{{Kind: store.QueueSend, QueueID: f.q, Limits: lim, Messages: []store.QueueMessage{msg("t", "1")}}})
		if rs[0].Err == nil {
			t.Error("ApplyQueueOps inside InTx succeeded")
		}
		return nil
	})
	must(t, err, "InTx")
	// A cancelled context fails every op, and nothing takes effect.
	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	rs = f.qs.ApplyQueueOps(ctx, t0, []store.QueueOp{{Kind: store.QueueSend, QueueID: other, Limits: queueLimits, Messages: []store.QueueMessage{msg("c", "1")}}, {Kind: store.QueueLock, QueueID: other, Limits: queueLimits, LockToken: "c"}})
	if rs[0].Err == nil || rs[1].Err == nil {
		t.Errorf("cancelled batch: %v, %v", rs[0].Err, rs[1].Err)
	}
	if n := len(f.peek(other, false)); n != 1 {
		t.Errorf("other queue has %d messages after a failed batch, want 1", n)
	}
}

func testQueueReceiveAndDelete(t *testing.T, st store.Store) {
	f := newQueueFixture(t, st)
	sent := f.send(t0, f.q, queueLimits, msg("a", "one"), msg("b", "two"))
	r := f.one(t0, store.QueueOp{Kind: store.QueueReceiveAndDelete, QueueID: f.q, Limits: queueLimits})
	must(t, r.Err, "receive and delete")
	if len(r.Messages) != 1 || r.Messages[0].SequenceNumber != sent[0].SequenceNumber || string(r.Messages[0].Body) != "one" || r.Messages[0].DeliveryCount != 1 || r.Messages[0].LockToken != "" {
		t.Errorf("received %+v", r.Messages)
	}
	checkIDs(t, "left", seqs(f.peek(f.q, false)), seqs(sent[1:]))
	if s := f.stats(f.q, t0); s.SizeBytes != sent[1].Size || s.ActiveCount != 1 {
		t.Errorf("stats: %+v", s)
	}
	f.mustLock(t0, f.q, false, queueLimits, "b", sent[1].SequenceNumber)
	wantErr(t, f.one(t0, store.QueueOp{Kind: store.QueueReceiveAndDelete, QueueID: f.q, Limits: queueLimits}).Err, store.ErrNotFound, "locked message is not received")
	wantErr(t, f.one(t0, store.QueueOp{Kind: store.QueueReceiveAndDelete, QueueID: f.q, DeadLetter: true, Limits: queueLimits}).Err, store.ErrNotFound, "empty DLQ")
}

func testQueuePeekStats(t *testing.T, st store.Store) {
	f := newQueueFixture(t, st)
	var msgs []store.QueueMessage
	for i := range 5 {
		msgs = append(msgs, msg(fmt.Sprint(i), fmt.Sprint("body", i)))
	}
	sent := f.send(t0, f.q, queueLimits, msgs...)
	ms, err := f.qs.PeekQueueMessages(f.ctx, strings.ToUpper(f.q), false, sent[1].SequenceNumber, 2)
	must(t, err, "peek")
	checkIDs(t, "peek from the second, two", seqs(ms), seqs(sent[1:3]))
	if string(ms[0].Body) != "body1" || ms[0].MessageID != "1" || !bytes.Equal(ms[0].Properties, sent[1].Properties) || ms[0].QueueID != strings.ToUpper(f.q) {
		t.Errorf("peeked %+v", ms[0])
	}
	// Peek does not lock.
	f.mustLock(t0, f.q, false, queueLimits, "a", sent[0].SequenceNumber)
	var size int64
	for _, m := range sent {
		size += m.Size
	}
	if s := f.stats(f.q, t0); s != (store.QueueStats{ActiveCount: 5, SizeBytes: size}) {
		t.Errorf("stats %+v", s)
	}
	empty := f.queue("empty")
	if s := f.stats(empty, t0); s != (store.QueueStats{}) {
		t.Errorf("stats of an empty queue %+v", s)
	}
	for _, id := range []string{f.ns, f.ns + "/queues/missing", "a\x00"} {
		_, err := f.qs.QueueStats(f.ctx, id, t0)
		wantErr(t, err, store.ErrNotFound, "stats of "+id)
	}
	if ms, err := f.qs.PeekQueueMessages(f.ctx, f.ns+"/queues/missing", false, 0, 10); err != nil || len(ms) != 0 {
		t.Errorf("peek of a missing queue: %v %v", ms, err)
	}
}

func testQueueLockConcurrent(t *testing.T, st store.Store) {
	f := newQueueFixture(t, st)
	const n = 60
	var msgs []store.QueueMessage
	for i := range n {
		msgs = append(msgs, msg(fmt.Sprint(i), "b"))
	}
	f.send(t0, f.q, queueLimits, msgs...)
	var (
		mu  sync.Mutex
		got = map[int64]string{}
		wg  sync.WaitGroup
	)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				// Two locks per call: batches lock within themselves too.
				tok1, tok2 := fmt.Sprintf("w%d-%d-a", w, i), fmt.Sprintf("w%d-%d-b", w, i)
				rs := f.qs.ApplyQueueOps(f.ctx, at(time.Second), []store.QueueOp{
					{Kind: store.QueueLock, QueueID: f.q, Limits: queueLimits, LockToken: tok1},
					{Kind: store.QueueLock, QueueID: f.q, Limits: queueLimits, LockToken: tok2},
				})
				done := false
				for j, r := range rs {
					if r.Err != nil {
						if !errors.Is(r.Err, store.ErrNotFound) {
							t.Errorf("lock: %v", r.Err)
						}
						done = true
						continue
					}
					m := r.Messages[0]
					mu.Lock()
					if prev, ok := got[m.SequenceNumber]; ok {
						t.Errorf("message %d locked by %s and %s", m.SequenceNumber, prev, []string{tok1, tok2}[j])
					}
					got[m.SequenceNumber] = m.LockToken
					mu.Unlock()
				}
				if done {
					return
				}
			}
		})
	}
	wg.Wait()
	if len(got) != n {
		t.Errorf("%d messages locked, want %d", len(got), n)
	}
	// After the locks expire, each comes back once, to one new locker.
	for seq, tok := range got {
		wantErr(t, f.settle(at(2*time.Minute), store.QueueComplete, f.q, false, queueLimits, seq, tok).Err, store.ErrLockLost, "complete after expiry")
	}
	for range n {
		m, err := f.lock(at(2*time.Minute), f.q, false, queueLimits, newID())
		must(t, err, "relock")
		if m.DeliveryCount != 2 {
			t.Errorf("relocked %d with DeliveryCount %d", m.SequenceNumber, m.DeliveryCount)
		}
	}
	f.noLock(at(2*time.Minute), f.q, false, queueLimits, "all relocked")
}

func testQueueCascade(t *testing.T, st store.Store) {
	f := newQueueFixture(t, st)
	lim := queueLimits
	lim.DuplicateDetection = true
	fill := func(q string) {
		f.send(t0, q, lim, msg("a", "1"), msg("b", "2"))
		one := lim
		one.MaxDeliveryCount = 1
		m, err := f.lock(t0, q, false, one, "x")
		must(t, err, "lock")
		must(t, f.settle(t0, store.QueueAbandon, q, false, one, m.SequenceNumber, "x").Err, "dead-letter")
	}
	// gone checks that q's messages, size and duplicate history went with
	// it: recreated under the same id, the queue is empty and new.
	gone := func(q, what string) {
		t.Helper()
		_, err := f.qs.QueueStats(f.ctx, q, t0)
		wantErr(t, err, store.ErrNotFound, what+": stats")
		if len(f.peek(q, false))+len(f.peek(q, true)) != 0 {
			t.Errorf("%s: messages left", what)
		}
		if _, ok, err := f.qs.NextQueueEvent(f.ctx, q, false); ok || err != nil {
			t.Errorf("%s: next event %v %v", what, ok, err)
		}
	}
	recreated := func(q, what string) {
		t.Helper()
		name := q[strings.LastIndex(q, "/")+1:]
		must(t, f.st.CreateResource(f.ctx, store.Resource{TenantID: f.tn.ID, ID: q, Type: store.QueueResourceType, Name: name}), what+": recreate")
		if s := f.stats(q, t0); s != (store.QueueStats{}) {
			t.Errorf("%s: recreated queue has stats %+v", what, s)
		}
		if r := f.one(t0, store.QueueOp{Kind: store.QueueSend, QueueID: q, Limits: lim, Messages: []store.QueueMessage{msg("a", "new")}}); r.Err != nil || len(r.Duplicates) != 0 {
			t.Errorf("%s: send to the recreated queue: %+v", what, r)
		}
	}

	q1, q2 := f.q, f.queue("second")
	fill(q1)
	fill(q2)
	must(t, st.DeleteResource(f.ctx, strings.ToUpper(q1)), "delete queue")
	gone(q1, "queue deleted")
	if s := f.stats(q2, t0); s.ActiveCount != 1 || s.DeadLetterCount != 1 {
		t.Errorf("sibling queue after delete: %+v", s)
	}
	recreated(q1, "queue deleted")

	must(t, st.DeleteResource(f.ctx, f.ns), "delete namespace")
	gone(q1, "namespace deleted")
	gone(q2, "namespace deleted")

	must(t, st.CreateResource(f.ctx, store.Resource{TenantID: f.tn.ID, ID: f.ns, Type: "Microsoft.ServiceBus/namespaces", Name: "Bus"}), "recreate namespace")
	q3 := f.queue("third")
	fill(q3)
	must(t, st.DeleteResourceGroup(f.ctx, f.tn.SubscriptionID, "rg"), "delete group")
	gone(q3, "group deleted")

	must(t, st.CreateResourceGroup(f.ctx, store.ResourceGroup{TenantID: f.tn.ID, SubscriptionID: f.tn.SubscriptionID, Name: "RG", Location: "x"}), "recreate group")
	must(t, st.CreateResource(f.ctx, store.Resource{TenantID: f.tn.ID, ID: f.ns, Type: "Microsoft.ServiceBus/namespaces", Name: "Bus"}), "recreate namespace")
	q4 := f.queue("fourth")
	fill(q4)
	must(t, st.DeleteTenant(f.ctx, f.tn.ID), "delete tenant")
	gone(q4, "tenant deleted")
}
