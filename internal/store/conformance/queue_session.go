package conformance

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// sessionLimits are queueLimits for a queue that requires sessions.
var sessionLimits = store.QueueLimits{LockDuration: time.Minute, MaxDeliveryCount: 10, RequiresSession: true}

func sessionMsg(id, session string) store.QueueMessage {
	m := msg(id, "body of "+id)
	m.SessionID = session
	return m
}

// acceptSession accepts session sid ("" for the next available) and
// returns the session granted and its lock token.
func (f *queueFixture) acceptSession(now time.Time, sid string) (string, string, error) {
	f.t.Helper()
	token := newID()
	r := f.one(now, store.QueueOp{Kind: store.QueueLockSession, QueueID: f.q, Limits: sessionLimits, SessionID: sid, LockToken: token})
	if r.Err != nil {
		return "", "", r.Err
	}
	if sid != "" && r.SessionID != sid {
		f.t.Fatalf("accepted session %q, want %q", r.SessionID, sid)
	}
	if want := now.Add(sessionLimits.LockDuration); !r.LockedUntil.Equal(want) {
		f.t.Fatalf("session locked until %v, want %v", r.LockedUntil, want)
	}
	return r.SessionID, token, nil
}

// sessionOp is an op on the held session sid.
func sessionOp(kind store.QueueOpKind, q, sid, token string) store.QueueOp {
	return store.QueueOp{Kind: kind, QueueID: q, Limits: sessionLimits, SessionID: sid, SessionLockToken: token}
}

// lockInSession peek-locks the next message of the held session.
func (f *queueFixture) lockInSession(now time.Time, sid, token string) (store.QueueMessage, error) {
	f.t.Helper()
	op := sessionOp(store.QueueLock, f.q, sid, token)
	op.LockToken = newID()
	r := f.one(now, op)
	if r.Err != nil {
		return store.QueueMessage{}, r.Err
	}
	return r.Messages[0], nil
}

func testQueueSessions(t *testing.T, st store.Store) {
	f := newQueueFixture(t, st)
	sent := f.send(at(0), f.q, sessionLimits,
		sessionMsg("a1", "A"), sessionMsg("b1", "B"), sessionMsg("a2", "A"), sessionMsg("b2", "B"), sessionMsg("c1", "C"))
	for i, want := range []string{"A", "B", "A", "B", "C"} {
		if sent[i].SessionID != want {
			t.Fatalf("sent message %d has session %q, want %q", i, sent[i].SessionID, want)
		}
	}

	// A queue that requires sessions delivers nothing without one.
	_, err := f.lock(at(time.Second), f.q, false, sessionLimits, newID())
	if err == nil {
		t.Fatal("a lock without a session on a session queue succeeded")
	}

	// Next available: the session of the first message, then the next
	// one no one holds.
	sa, ta, err := f.acceptSession(at(time.Second), "")
	must(t, err, "accept next")
	if sa != "A" {
		t.Fatalf("next available session %q, want A", sa)
	}
	sb, tb, err := f.acceptSession(at(time.Second), "")
	must(t, err, "accept next")
	if sb != "B" {
		t.Fatalf("second next available session %q, want B", sb)
	}
	// A held session cannot be accepted by name.
	_, _, err = f.acceptSession(at(2*time.Second), "A")
	wantErr(t, err, store.ErrLockLost, "accepting a held session")
	// A named session with no messages can be accepted.
	_, tz, err := f.acceptSession(at(2*time.Second), "Z")
	must(t, err, "accept empty named session")
	if _, err := f.lockInSession(at(2*time.Second), "Z", tz); err == nil {
		t.Fatal("an empty session delivered a message")
	}

	// FIFO within a session, each message locked as long as its session.
	m, err := f.lockInSession(at(3*time.Second), "A", ta)
	must(t, err, "lock in A")
	if m.SequenceNumber != sent[0].SequenceNumber || m.SessionID != "A" || !m.LockedUntil.Equal(at(time.Second+time.Minute)) {
		t.Fatalf("first message of A: seq %d session %q locked until %v; want seq %d, A, %v", m.SequenceNumber, m.SessionID, m.LockedUntil, sent[0].SequenceNumber, at(time.Second+time.Minute))
	}
	// Another holder's token, or another session's, takes nothing of A.
	if _, err := f.lockInSession(at(3*time.Second), "A", tb); err == nil {
		t.Fatal("session B's token locked a message of A")
	}
	m2, err := f.lockInSession(at(3*time.Second), "A", ta)
	must(t, err, "second lock in A")
	if m2.SequenceNumber != sent[2].SequenceNumber {
		t.Fatalf("second message of A is %d, want %d", m2.SequenceNumber, sent[2].SequenceNumber)
	}
	// Abandon puts it back at the head of its session.
	must(t, f.settle(at(4*time.Second), store.QueueAbandon, f.q, false, sessionLimits, m.SequenceNumber, m.LockToken).Err, "abandon")
	again, err := f.lockInSession(at(4*time.Second), "A", ta)
	must(t, err, "relock in A")
	if again.SequenceNumber != sent[0].SequenceNumber || again.DeliveryCount != 2 {
		t.Fatalf("after abandon: seq %d delivery count %d, want %d and 2", again.SequenceNumber, again.DeliveryCount, sent[0].SequenceNumber)
	}
	must(t, f.settle(at(5*time.Second), store.QueueComplete, f.q, false, sessionLimits, again.SequenceNumber, again.LockToken).Err, "complete")

	// Renewing the session renews the locks of its messages.
	rr := f.one(at(50*time.Second), sessionOp(store.QueueRenewSession, f.q, "A", ta))
	must(t, rr.Err, "renew session")
	if !rr.LockedUntil.Equal(at(50*time.Second + time.Minute)) {
		t.Fatalf("renewed session until %v", rr.LockedUntil)
	}
	// The message lock outlives its first expiry with the session's.
	must(t, f.settle(at(90*time.Second), store.QueueRenew, f.q, false, sessionLimits, m2.SequenceNumber, m2.LockToken).Err, "message lock after session renewal")
	wantErr(t, f.one(at(50*time.Second), sessionOp(store.QueueRenewSession, f.q, "A", tb)).Err, store.ErrLockLost, "renew with another token")

	// Session state: set, read, counted against the quota, cleared.
	state := sessionOp(store.QueueSetSessionState, f.q, "A", ta)
	state.SessionState = []byte("step 3 of 7")
	must(t, f.one(at(51*time.Second), state).Err, "set state")
	g := f.one(at(51*time.Second), sessionOp(store.QueueGetSessionState, f.q, "A", ta))
	must(t, g.Err, "get state")
	if !bytes.Equal(g.SessionState, []byte("step 3 of 7")) {
		t.Fatalf("state %q", g.SessionState)
	}
	if g := f.one(at(51*time.Second), sessionOp(store.QueueGetSessionState, f.q, "B", tb)); g.Err != nil || g.SessionState != nil {
		t.Fatalf("state of B (none set): %q, %v", g.SessionState, g.Err)
	}
	wantErr(t, f.one(at(51*time.Second), sessionOp(store.QueueGetSessionState, f.q, "A", tb)).Err, store.ErrLockLost, "read A's state with B's token")
	sizeBefore := f.stats(f.q, at(51*time.Second)).SizeBytes
	big := sessionOp(store.QueueSetSessionState, f.q, "B", tb)
	big.Limits.MaxSizeBytes = sizeBefore + 10
	big.SessionState = bytes.Repeat([]byte{'x'}, 11)
	wantErr(t, f.one(at(51*time.Second), big).Err, store.ErrQuotaExceeded, "state over the quota")
	big.SessionState = big.SessionState[:10]
	must(t, f.one(at(51*time.Second), big).Err, "state within the quota")
	if got := f.stats(f.q, at(51*time.Second)).SizeBytes; got != sizeBefore+10 {
		t.Fatalf("size with B's state %d, want %d", got, sizeBefore+10)
	}
	big.SessionState = nil
	must(t, f.one(at(51*time.Second), big).Err, "clear state")
	if got := f.stats(f.q, at(51*time.Second)).SizeBytes; got != sizeBefore {
		t.Fatalf("size after clearing %d, want %d", got, sizeBefore)
	}

	// Peek within a session, and the list of sessions.
	ps, err := f.qs.PeekQueueSession(f.ctx, f.q, "B", 0, 10)
	must(t, err, "peek session")
	if got := seqs(ps); !slices.Equal(got, seqs([]store.QueueMessage{sent[1], sent[3]})) {
		t.Fatalf("peek of B: %v", got)
	}
	ids, err := f.qs.ListQueueSessions(f.ctx, f.q, time.Time{}, 0, 10)
	must(t, err, "list sessions")
	if !slices.Equal(ids, []string{"A", "B", "C"}) { // Z has neither messages nor state
		t.Fatalf("sessions %v, want [A B C]", ids)
	}
	ids, err = f.qs.ListQueueSessions(f.ctx, f.q, time.Time{}, 1, 1)
	must(t, err, "list sessions page")
	if !slices.Equal(ids, []string{"B"}) {
		t.Fatalf("sessions page %v, want [B]", ids)
	}
	ids, err = f.qs.ListQueueSessions(f.ctx, f.q, at(50*time.Second), 0, 10)
	must(t, err, "list updated sessions")
	if !slices.Equal(ids, []string{"A", "B"}) {
		t.Fatalf("sessions updated after 50s %v, want [A B]", ids)
	}

	// Releasing a session frees it and its locked message, whose delivery
	// is not counted; the next holder gets the message again, in order.
	bm, err := f.lockInSession(at(52*time.Second), "B", tb)
	must(t, err, "lock in B")
	must(t, f.one(at(53*time.Second), sessionOp(store.QueueReleaseSession, f.q, "B", tb)).Err, "release B")
	wantErr(t, f.settle(at(53*time.Second), store.QueueComplete, f.q, false, sessionLimits, bm.SequenceNumber, bm.LockToken).Err, store.ErrLockLost, "complete after the session's release")
	sc, tc, err := f.acceptSession(at(54*time.Second), "")
	must(t, err, "accept after release")
	if sc != "B" {
		t.Fatalf("next available after releasing B is %q", sc)
	}
	bm2, err := f.lockInSession(at(54*time.Second), "B", tc)
	must(t, err, "lock in B again")
	if bm2.SequenceNumber != bm.SequenceNumber || bm2.DeliveryCount != 1 {
		t.Fatalf("B's head after release: seq %d delivery count %d, want %d and 1", bm2.SequenceNumber, bm2.DeliveryCount, bm.SequenceNumber)
	}

	// A lapsed session lock frees the session and counts the delivery.
	next, ok, err := f.qs.NextSessionEvent(f.ctx, f.q, "")
	must(t, err, "next session event")
	if !ok || next.After(at(54*time.Second)) {
		// C is free and has a message: available now.
		t.Fatalf("next session event %v %v, want at or before 54s", next, ok)
	}
	_, tcc, err := f.acceptSession(at(55*time.Second), "C")
	must(t, err, "accept C")
	next, ok, err = f.qs.NextSessionEvent(f.ctx, f.q, "")
	must(t, err, "next session event with every session held")
	if !ok || !next.Equal(at(54*time.Second+time.Minute)) { // B's lock ends first (A's at 110 s, C's at 115 s)
		t.Fatalf("next session event %v %v, want %v", next, ok, at(54*time.Second+time.Minute))
	}
	_, _, err = f.acceptSession(at(56*time.Second), "")
	wantErr(t, err, store.ErrNotFound, "next available with every session held")
	sd, _, err := f.acceptSession(at(54*time.Second+time.Minute), "")
	must(t, err, "accept after B's lock lapsed")
	if sd != "B" {
		t.Fatalf("session after a lapse %q, want B", sd)
	}
	_ = tcc
	wantErr(t, f.one(at(54*time.Second+time.Minute), sessionOp(store.QueueGetSessionState, f.q, "B", tc)).Err, store.ErrLockLost, "state with a lapsed lock")

	// The dead-letter queue of a session queue has no sessions.
	r := f.one(at(2*time.Minute), store.QueueOp{Kind: store.QueueLock, QueueID: f.q, DeadLetter: true, Limits: sessionLimits, LockToken: newID()})
	wantErr(t, r.Err, store.ErrNotFound, "lock on the empty dead-letter queue")
}
