package servicebus

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// maxBatchOps bounds the operations one commit carries; more wait for the
// next commit.
const maxBatchOps = 256

// commitTimeout bounds one ApplyQueueOps call. It does not take a
// request's context: one client going away must not fail the others that
// share its commit.
const commitTimeout = 30 * time.Second

// ErrNoMessage means a receive found no message within its timeout.
var ErrNoMessage = errors.New("servicebus: no message within the timeout")

// Broker runs queue operations against the message store. It gathers the
// operations of concurrent requests into one store.Queues.ApplyQueueOps
// call, so that one durable commit (one fsync) answers many requests: a
// send is acknowledged only once committed, and throughput grows with
// concurrency instead of being capped by the disk's sync latency.
//
// Receivers that find nothing wait without polling: a commit that makes
// messages deliverable (a send, an abandon) wakes as many waiting
// receivers of that queue as it made messages available, and a receiver
// sets one timer for the queue's next scheduled message or lock expiry
// (store.Queues.NextQueueEvent). On a PostgreSQL store shared by several
// servers, the store tells each broker of the other servers' commits
// (store.QueueWakeFeed, WakeFromElsewhere), so a receiver on one server is
// woken by a send through another as by its own.
type Broker struct {
	st  store.Queues
	now func() time.Time
	log *slog.Logger
	obs BrokerObserver // nil: none
	// sole: no other process writes the store (WithSoleWriter).
	sole bool

	submit chan *pending
	stop   chan struct{}
	done   chan struct{}

	mu      sync.Mutex
	waiting map[waitKey][]*waiter
	next    map[waitKey]*nextEvent // queue and dead-letter keys only; lapsed entries swept (nextEntryLocked)
	// nextSweepAt is the size of next at which lapsed entries are swept.
	nextSweepAt int
}

// emptyTTL bounds how long receivers trust that a queue is empty without
// asking the store (nextEvent.empty): within this process every commit
// that may give the queue a message ends it at once, and another server's
// commit on a shared PostgreSQL store when its wake-up arrives
// (WakeFromElsewhere); a wake-up that arrived just before a receive here
// found the queue empty, or one sent while this process was not
// listening, leaves a message waiting this long at most.
const emptyTTL = 200 * time.Millisecond

// nextEventTTL bounds how long a receiver trusts a NextQueueEvent answer
// that the broker remembers: long enough that receivers finding an empty
// queue do not each read the store, short enough that a change this
// broker did not make (another server on a shared PostgreSQL store) is
// seen about as soon as a waiting receiver's timer would see it. A
// broker that is its store's sole writer (WithSoleWriter) has no such
// change to wait for and keeps an answer until a commit forgets it.
const nextEventTTL = time.Second

// nextEvent is a remembered store.Queues.NextQueueEvent answer for a
// queue (or its dead-letter queue): the earliest time one of its
// messages is or becomes deliverable, a lower bound for as long as no
// commit lowers it. Commits that may make a message deliverable sooner
// than at (a scheduled send, an abandon, a renewal, a dead-letter, a
// session's release) forget it and move gen, so that an answer read
// from the store while such a commit ran is not kept. Commits that only
// take messages away or lock them (sends due at once, locks, completes)
// leave it, and sends wake the waiting receivers themselves. A lock taken
// after the answer was read ends after readAt plus the lock duration, so
// an answer is used only when at is no later than that, and only when
// there were messages (ok).
type nextEvent struct {
	// empty: the last commit that could tell found no deliverable
	// message (a Lock or ReceiveAndDelete failed with store.ErrNotFound),
	// at emptyAt (wall clock), and no commit since could have given it one.
	empty   bool
	emptyAt time.Time

	gen    uint64
	set    bool
	none   bool // the queue had no message: no event, good until at
	at     time.Time
	readAt time.Time // the broker's clock (now) when it was read
	read   time.Time // the wall clock when it was read
}

// waiter is one receiver waiting on a waitKey for a commit that may give
// it something: a goroutine in await, on ch, or a receiver that holds no
// goroutine while it waits (an AMQP receiving link), called back by f.
type waiter struct {
	ch chan struct{}
	f  func() // called by wake outside b.mu; it must not block
	// woken: wake took the waiter off its key (under b.mu) and signals
	// it, or has.
	woken bool
}

// notify signals w, once wake has taken it off its key.
func (w *waiter) notify() {
	if w.f != nil {
		w.f()
		return
	}
	w.ch <- struct{}{}
}

// pending is one operation waiting for its commit.
type pending struct {
	op  store.QueueOp
	res chan store.QueueResult
}

// waitKey names what a receiver waits for: a queue or its dead-letter
// queue; on a queue that requires sessions, one session's messages, or
// (nextSession) a message in a session no one holds.
type waitKey struct {
	queue       string // lower-cased resource id
	deadLetter  bool
	session     string
	nextSession bool
}

func keyOf(queueID string, deadLetter bool) waitKey {
	return waitKey{queue: strings.ToLower(queueID), deadLetter: deadLetter}
}

// sessionKey is the key of a session's receiver.
func sessionKey(queueID, session string) waitKey {
	return waitKey{queue: strings.ToLower(queueID), session: session}
}

// nextSessionKey is the key of receivers waiting to accept a session.
func nextSessionKey(queueID string) waitKey {
	return waitKey{queue: strings.ToLower(queueID), nextSession: true}
}

// BrokerObserver is told what each commit did, for the operator's
// metrics (sends, receives, dead-letters, lost locks per queue):
// results[i] is ops[i]'s. It is called on the commit loop, once per
// commit, and must be quick and must not keep the slices.
type BrokerObserver interface {
	QueueOpsApplied(ops []store.QueueOp, results []store.QueueResult)
}

// BrokerOption configures a Broker.
type BrokerOption func(*Broker)

// WithBrokerObserver makes the broker report its commits to o.
func WithBrokerObserver(o BrokerObserver) BrokerOption { return func(b *Broker) { b.obs = o } }

// WithSoleWriter tells the broker that every change to its queues goes
// through it: no other process writes the store (the embedded SQLite
// store, whose data directory one server holds). A remembered
// NextQueueEvent answer then stays good for as long as no commit of this
// broker moved it, with no nextEventTTL: the store is read again only
// when a commit may have made a message due sooner or the answer's time
// has come. In a fan-out, where every customer's receiver asks after each
// message it takes, that was a store read per message (a tenth of the
// server's CPU).
func WithSoleWriter() BrokerOption { return func(b *Broker) { b.sole = true } }

// NewBroker starts a broker over st; Close stops it. now is the clock the
// store decides by (time.Now when nil).
func NewBroker(st store.Queues, now func() time.Time, log *slog.Logger, opts ...BrokerOption) *Broker {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Broker{st: st, now: now, log: log, submit: make(chan *pending, maxBatchOps),
		stop: make(chan struct{}), done: make(chan struct{}), waiting: map[waitKey][]*waiter{},
		next: map[waitKey]*nextEvent{}, nextSweepAt: minNextSweep}
	for _, o := range opts {
		o(b)
	}
	go b.commitLoop()
	return b
}

// Close stops the commit loop after the operations already submitted.
func (b *Broker) Close() {
	close(b.stop)
	<-b.done
}

// Do runs one operation in the next commit and returns its result. It
// waits for the commit even if ctx ends: the operation may already be
// durable, and its caller must learn the outcome.
func (b *Broker) Do(ctx context.Context, op store.QueueOp) store.QueueResult {
	p := &pending{op: op, res: make(chan store.QueueResult, 1)}
	select {
	case b.submit <- p:
	case <-b.stop:
		return store.QueueResult{Err: errors.New("servicebus: broker stopped")}
	case <-ctx.Done():
		return store.QueueResult{Err: ctx.Err()} // never submitted: nothing happened
	}
	return <-p.res
}

// commitLoop takes whatever operations are waiting, up to maxBatchOps,
// commits them together, and answers each. Operations that arrive during
// a commit form the next batch: no timer, no linger.
//
// The light operations of a batch (locks, renewals, abandons:
// store.QueueOpKind.Light) commit first, on their own, and are answered
// before the rest: their commit does not wait for the disk, so a receiver
// gets its message without waiting for the fsync that the batch's sends
// and completes need. The operations of one batch were submitted
// concurrently, so running the light ones first breaks no order a client
// could see.
//
// (Committing the rest without waiting for the disk either, and answering
// it after an fsync of the WAL run beside the loop, was measured and did
// not pay: the loop then commits smaller batches, and on a machine short of
// CPU the statements and WAL writes per message cost more than the fsync
// wait it saved. See docs/benchmarks.md.)
func (b *Broker) commitLoop() {
	defer close(b.done)
	batch := make([]*pending, 0, maxBatchOps)
	light := make([]*pending, 0, maxBatchOps)
	durable := make([]*pending, 0, maxBatchOps)
	ops := make([]store.QueueOp, 0, maxBatchOps)
	for {
		select {
		case p := <-b.submit:
			batch = append(batch[:0], p)
		case <-b.stop:
			b.drain()
			return
		}
	gather:
		for len(batch) < maxBatchOps {
			select {
			case p := <-b.submit:
				batch = append(batch, p)
			default:
				break gather
			}
		}
		light, durable = light[:0], durable[:0]
		for _, p := range batch {
			if p.op.Kind.Light() {
				light = append(light, p)
			} else {
				durable = append(durable, p)
			}
		}
		ops = b.commit(light, ops)
		ops = b.commit(durable, ops)
		clear(batch)
		clear(light)
		clear(durable)
	}
}

// commit applies the operations of batch in one ApplyQueueOps call,
// answers each and wakes the receivers they gave something to. ops is
// scratch space, returned for reuse.
func (b *Broker) commit(batch []*pending, ops []store.QueueOp) []store.QueueOp {
	if len(batch) == 0 {
		return ops
	}
	ops = ops[:0]
	for _, p := range batch {
		ops = append(ops, p.op)
	}
	now := b.now()
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	results := b.st.ApplyQueueOps(ctx, now, ops)
	cancel()
	if b.obs != nil {
		// Before the answers, which hand the results' messages to their
		// callers: a map read and an atomic add per op.
		b.obs.QueueOpsApplied(ops, results)
	}
	for i, p := range batch {
		p.res <- results[i]
	}
	b.wakeAfter(ops, results, now)
	clear(ops)
	return ops
}

// drain answers what was submitted before Close.
func (b *Broker) drain() {
	for {
		select {
		case p := <-b.submit:
			p.res <- store.QueueResult{Err: errors.New("servicebus: broker stopped")}
		default:
			return
		}
	}
}

// wakeAfter wakes the receivers that a commit's operations gave something
// to receive (store.EachQueueWake).
func (b *Broker) wakeAfter(ops []store.QueueOp, results []store.QueueResult, now time.Time) {
	for i, op := range ops {
		b.noteEmpty(op, results[i])
		b.forgetNext(op, results[i], now)
	}
	store.EachQueueWake(ops, results, now, b.applyWake)
}

// applyWake wakes the receivers w names.
func (b *Broker) applyWake(w store.QueueWake) {
	switch {
	case w.Session != "":
		b.wake(sessionKey(w.QueueID, w.Session), w.N)
	case w.NextSession:
		b.wake(nextSessionKey(w.QueueID), w.N)
	default:
		b.wake(keyOf(w.QueueID, w.DeadLetter), w.N)
	}
}

// WakeFromElsewhere applies the wake-ups of another process's commits
// (store.QueueWakeFeed): what that commit may have given a queue is no
// longer known to be absent here, and the receivers waiting for it here
// are woken as that process woke its own. nil wakes every receiver, which
// then looks again: wake-ups may have been missed.
func (b *Broker) WakeFromElsewhere(ws []store.QueueWake) {
	if ws == nil {
		b.mu.Lock()
		for _, e := range b.next {
			e.empty = false
			e.gen++
			e.set = false
		}
		var all []*waiter
		for k, ws := range b.waiting {
			for _, w := range ws {
				w.woken = true
			}
			all = append(all, ws...)
			delete(b.waiting, k)
		}
		b.mu.Unlock()
		for _, w := range all {
			w.notify()
		}
		return
	}
	for _, w := range ws {
		b.mu.Lock()
		for _, dl := range []bool{false, true} {
			b.forgetEmptyLocked(keyOf(w.QueueID, dl))
			b.forgetNextLocked(keyOf(w.QueueID, dl))
		}
		b.mu.Unlock()
		b.applyWake(w)
	}
}

// noteEmpty records, after op's commit, whether its queue and dead-letter
// queue are known to have no deliverable message (nextEvent.empty): a
// receive that found none says so; anything else that took effect, but a
// complete, a deferral or a cancelled schedule (which only take messages
// away), may have given them one.
func (b *Broker) noteEmpty(op store.QueueOp, r store.QueueResult) {
	receive := (op.Kind == store.QueueLock || op.Kind == store.QueueReceiveAndDelete) && op.SessionID == ""
	switch {
	case receive && errors.Is(r.Err, store.ErrNotFound):
		b.mu.Lock()
		e := b.nextEntryLocked(keyOf(op.QueueID, op.DeadLetter))
		e.empty, e.emptyAt = true, time.Now()
		if !op.DeadLetter {
			// On its way it may have dead-lettered messages.
			b.forgetEmptyLocked(keyOf(op.QueueID, true))
		}
		b.mu.Unlock()
	case r.Err != nil && !r.DeadLettered:
	case op.Kind == store.QueueComplete, op.Kind == store.QueueDefer, op.Kind == store.QueueCancelScheduled:
	default:
		b.mu.Lock()
		b.forgetEmptyLocked(keyOf(op.QueueID, false))
		b.forgetEmptyLocked(keyOf(op.QueueID, true))
		b.mu.Unlock()
	}
}

// knownEmpty reports whether k's queue is known to be empty
// (nextEvent.empty), and for how much longer that may be trusted.
func (b *Broker) knownEmpty(k waitKey) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.next[k]
	if e == nil || !e.empty {
		return false, 0
	}
	left := emptyTTL - time.Since(e.emptyAt)
	return left > 0, left
}

func (b *Broker) forgetEmpty(k waitKey) {
	b.mu.Lock()
	b.forgetEmptyLocked(k)
	b.mu.Unlock()
}

func (b *Broker) forgetEmptyLocked(k waitKey) {
	if e := b.next[k]; e != nil {
		e.empty = false
	}
}

// forgetNext forgets the remembered next events that op's commit may
// have made too late (see nextEvent).
func (b *Broker) forgetNext(op store.QueueOp, r store.QueueResult, now time.Time) {
	if r.Err != nil && !r.DeadLettered {
		return // it took no effect
	}
	queue, dl := true, true
	switch op.Kind {
	case store.QueueLock, store.QueueReceiveAndDelete:
		// Locks and deletes only move its own queue's times later, but
		// on its way the receive may have dead-lettered messages.
		queue, dl = false, !op.DeadLetter
	case store.QueueComplete, store.QueueDefer, store.QueueCancelScheduled, store.QueueGetSessionState:
		return
	case store.QueueSend:
		scheduled := false
		for _, m := range op.Messages {
			scheduled = scheduled || m.ScheduledAt.After(now)
		}
		if !scheduled {
			return
		}
		dl = false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if queue {
		b.forgetNextLocked(keyOf(op.QueueID, false))
	}
	if dl {
		b.forgetNextLocked(keyOf(op.QueueID, true))
	}
}

// nextEntryLocked is k's remembered entry, made if there is none. An
// entry is worth something for nextEventTTL at most, so when the map has
// grown past nextSweepAt (queues received from and since deleted, say)
// the entries that have lapsed go: the map stays the size of the queues
// in use, not of every queue ever used. A read in flight for a deleted
// entry only writes to that entry, which nothing reads any more.
func (b *Broker) nextEntryLocked(k waitKey) *nextEvent {
	if e := b.next[k]; e != nil {
		return e
	}
	if len(b.next) >= b.nextSweepAt {
		for key, e := range b.next {
			if time.Since(e.emptyAt) >= emptyTTL && time.Since(e.read) >= nextEventTTL {
				delete(b.next, key)
			}
		}
		b.nextSweepAt = max(minNextSweep, 2*len(b.next))
	}
	e := &nextEvent{}
	b.next[k] = e
	return e
}

// minNextSweep is the size of the remembered next events at which lapsed
// entries are first swept.
const minNextSweep = 4096

func (b *Broker) forgetNextLocked(k waitKey) {
	if e := b.next[k]; e != nil {
		e.gen++
		e.set = false
	}
}

// nextQueueEvent is store.Queues.NextQueueEvent for the queue of k,
// answered from memory when a recent answer is remembered and still in
// the future (an answer already come means: try the store again).
func (b *Broker) nextQueueEvent(ctx context.Context, k waitKey, op store.QueueOp) (time.Time, bool, error) {
	b.mu.Lock()
	e := b.nextEntryLocked(k)
	if e.set && (b.sole || time.Since(e.read) < nextEventTTL) && e.at.After(b.now()) && !e.at.After(e.readAt.Add(op.Limits.LockDuration)) {
		at, none := e.at, e.none
		b.mu.Unlock()
		if none {
			return time.Time{}, false, nil
		}
		return at, true, nil
	}
	gen := e.gen
	b.mu.Unlock()
	read, readAt := time.Now(), b.now()
	at, ok, err := b.st.NextQueueEvent(ctx, op.QueueID, op.DeadLetter)
	if err != nil {
		return at, ok, err
	}
	// An empty queue's answer ("none") is remembered as good until the
	// earliest that a lock taken after the read could end: until then
	// nothing can come due without a commit that forgets it.
	horizon := at
	if !ok {
		horizon = readAt.Add(op.Limits.LockDuration)
	}
	b.mu.Lock()
	if e.gen == gen {
		e.set, e.none, e.at, e.readAt, e.read = true, !ok, horizon, readAt, read
	}
	b.mu.Unlock()
	return at, ok, nil
}

// listen registers a waiter on k, first in, first woken: a channel
// await waits on, or (f not nil) a callback.
func (b *Broker) listen(k waitKey, f func()) *waiter {
	w := &waiter{f: f}
	if f == nil {
		w.ch = make(chan struct{}, 1)
	}
	b.mu.Lock()
	b.waiting[k] = append(b.waiting[k], w)
	b.mu.Unlock()
	return w
}

// unlisten removes a waiter. A waiter that was woken but leaves without
// receiving hands its wake-up on, so that no available message is left
// with a receiver waiting for it.
func (b *Broker) unlisten(k waitKey, w *waiter) {
	if b.dropWaiter(k, w) {
		b.wake(k, 1)
	}
}

// dropWaiter removes a waiter, and reports whether it was woken: a
// wake-up its owner should hand on (wake(k, 1)) unless it goes on to
// try for a message itself.
func (b *Broker) dropWaiter(k waitKey, w *waiter) (woken bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if w.woken {
		return true
	}
	ws := b.waiting[k]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(b.waiting, k)
	} else {
		b.waiting[k] = ws
	}
	return false
}

// wake wakes up to n waiters of k.
func (b *Broker) wake(k waitKey, n int) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	ws := b.waiting[k]
	if n > len(ws) {
		n = len(ws)
	}
	woken := ws[:n:n]
	for _, w := range woken {
		w.woken = true
	}
	if n == len(ws) {
		delete(b.waiting, k)
	} else {
		b.waiting[k] = ws[n:]
	}
	b.mu.Unlock()
	for _, w := range woken {
		w.notify()
	}
}

// Receive takes the first deliverable message of a queue (or of its
// dead-letter queue): peek-lock when op.Kind is store.QueueLock (with
// op.LockToken), receive-and-delete when store.QueueReceiveAndDelete. It
// waits up to timeout for one to arrive; ErrNoMessage when none did.
func (b *Broker) Receive(ctx context.Context, op store.QueueOp, timeout time.Duration) (store.QueueMessage, error) {
	k, next := b.receiveKey(ctx, &op)
	r, err := b.await(ctx, &op, k, next, timeout)
	if err != nil {
		return store.QueueMessage{}, err
	}
	return r.Messages[0], nil
}

// receiveKey is the key a receive of op waits on, and how it learns
// when a message is next due.
func (b *Broker) receiveKey(ctx context.Context, op *store.QueueOp) (waitKey, func() (time.Time, bool, error)) {
	if op.SessionID != "" {
		return sessionKey(op.QueueID, op.SessionID), func() (time.Time, bool, error) {
			return b.st.NextSessionEvent(ctx, op.QueueID, op.SessionID)
		}
	}
	k := keyOf(op.QueueID, op.DeadLetter)
	return k, func() (time.Time, bool, error) { return b.nextQueueEvent(ctx, k, *op) }
}

// AcceptSession runs a store.QueueLockSession op: the named session at
// once, or the next available one, waiting up to timeout for a session to
// become available (ErrNoMessage when none did). A named session held by
// another receiver fails with store.ErrLockLost, without waiting, as
// Service Bus refuses it (com.microsoft:session-cannot-be-locked).
func (b *Broker) AcceptSession(ctx context.Context, op store.QueueOp, timeout time.Duration) (store.QueueResult, error) {
	if op.SessionID != "" {
		r := b.Do(ctx, op)
		return r, r.Err
	}
	next := func() (time.Time, bool, error) { return b.st.NextSessionEvent(ctx, op.QueueID, "") }
	return b.await(ctx, &op, nextSessionKey(op.QueueID), next, timeout)
}

// await runs op until it finds what it takes: it tries, and while op
// fails with store.ErrNotFound waits on k for a commit that may give it
// something, or for the time next reports, up to timeout (ErrNoMessage).
func (b *Broker) await(ctx context.Context, op *store.QueueOp, k waitKey, next func() (time.Time, bool, error), timeout time.Duration) (store.QueueResult, error) {
	deadline := time.Now().Add(timeout)
	for {
		// Listen before trying, so that a send committed between the
		// try and the wait still wakes this receiver.
		w := b.listen(k, nil)
		r, wait, retry, err := b.try(ctx, op, k, next, time.Until(deadline))
		switch {
		case retry:
			b.unlisten(k, w)
			continue
		case err != nil:
			b.unlisten(k, w)
			return r, err
		case r.Err == nil:
			b.unlisten(k, w)
			return r, nil
		case wait <= 0:
			b.unlisten(k, w)
			return r, ErrNoMessage
		}
		woken, err := sleep(ctx, w.ch, wait)
		if woken {
			continue // a message: it is ours to try for; w is spent
		}
		b.unlisten(k, w)
		if err != nil {
			return r, err
		}
	}
}

// try runs op once for a receiver listening on k. When op took nothing
// (r.Err is store.ErrNotFound, err nil), wait is how long the receiver
// may wait before it tries again: at most maxWait, less when next says a
// message becomes due sooner (a scheduled message, a lock that ends) or
// the queue is only trusted to be empty for less; 0 when maxWait is.
// retry asks to try again at once.
func (b *Broker) try(ctx context.Context, op *store.QueueOp, k waitKey, next func() (time.Time, bool, error), maxWait time.Duration) (r store.QueueResult, wait time.Duration, retry bool, err error) {
	// A queue the last commit found empty, with no commit since that
	// could have given it a message, is not asked again: this receiver
	// waits as if it had asked (see emptyTTL).
	empty, emptyFor := b.knownEmpty(k)
	r = store.QueueResult{Err: store.ErrNotFound}
	if !empty {
		r = b.Do(ctx, *op)
	}
	if r.Err == nil {
		return r, 0, false, nil
	}
	if !errors.Is(r.Err, store.ErrNotFound) {
		return r, 0, false, r.Err
	}
	if maxWait <= 0 {
		return r, 0, false, nil
	}
	at, ok, err := next()
	if err != nil {
		return r, 0, false, err
	}
	wait = maxWait
	if ok {
		if empty && !at.After(b.now()) {
			// A lock has ended or a scheduled message is due since: ask
			// the store.
			b.forgetEmpty(k)
			return r, 0, true, nil
		}
		// A time already come means the store stopped at its sweep
		// limit: try again soon, not in a tight loop.
		wait = min(wait, max(at.Sub(b.now()), time.Millisecond))
	}
	if empty {
		wait = min(wait, emptyFor)
	}
	return r, wait, false, nil
}

// sleep waits up to wait for a wake-up on ch (woken) or for ctx to end
// (its error); neither when the time passed.
func sleep(ctx context.Context, ch <-chan struct{}, wait time.Duration) (woken bool, err error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ch:
		return true, nil
	case <-timer.C:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// receiverWait is the wait of a receiver that holds no goroutine while
// it waits (poll): its waiter on a key.
type receiverWait struct {
	k waitKey
	w *waiter
}

// poll is one receive of a receiver that waits without a goroutine (an
// AMQP receiving link). It registers wake on the queue's key, then tries
// op: it returns the message taken, or else (err nil) the registered
// wait, whose wake-up calls wake, and how long the receiver may wait
// before it polls again (its timer's: at most maxWait; see try). With
// maxWait 0 (a drain) nothing is registered and no message is nil.
// The receiver ends a wait with cancel, whether or not it was woken.
func (b *Broker) poll(ctx context.Context, op *store.QueueOp, maxWait time.Duration, wake func()) (*store.QueueMessage, *receiverWait, time.Duration, error) {
	k, next := b.receiveKey(ctx, op)
	for {
		w := b.listen(k, wake)
		r, wait, retry, err := b.try(ctx, op, k, next, maxWait)
		switch {
		case retry:
			b.unlisten(k, w)
			continue
		case err != nil:
			b.unlisten(k, w)
			return nil, nil, 0, err
		case r.Err == nil:
			b.unlisten(k, w)
			return &r.Messages[0], nil, 0, nil
		case wait <= 0:
			b.unlisten(k, w)
			return nil, nil, 0, nil
		}
		return nil, &receiverWait{k: k, w: w}, wait, nil
	}
}

// leave ends a poll's wait, and reports whether it was woken: a wake-up
// the receiver uses by polling again, or else hands on (wake(rw.k, 1)).
func (b *Broker) leave(rw *receiverWait) (woken bool) {
	return b.dropWaiter(rw.k, rw.w)
}
