package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// The Service Bus message store (store.Queues).
//
// ApplyQueueOps is the hot path: the broker gathers the ops of concurrent
// requests and applies them in one transaction, so that many sends share
// one durable commit. It runs its own transaction on the pool, not through
// write or InTx, and never uses savepoints: every op first reads what it
// needs to decide (the queue, the lock, the quota, the duplicate history)
// and writes only once it knows it will succeed, so an op that fails has
// written nothing. A statement that fails anyway is a database failure, and
// it fails the whole transaction (PostgreSQL could not go on after it).
//
// Ops are applied grouped by queue, in queue key order, keeping their order
// within a queue. On PostgreSQL each group first locks its queue_state row
// (FOR UPDATE; with BEGIN when no op of the batch reads a size): batches
// that change one queue's size take turns, which keeps the size exact and,
// because every batch locks queues in the same order, two batches cannot
// deadlock on them. A group of Locks only takes no such lock (lockOnly),
// or only one it need not wait for. The receive query uses SKIP LOCKED so
// that no message is ever handed to two lockers. On PostgreSQL runs of
// sends, locks and completes are applied a statement per run, not per op,
// and writes that nothing reads back go with the COMMIT
// (queue_pgbatch.go): the broker's commit loop waits for every round trip.

// queueType is the folded store.QueueResourceType.
var queueType = fold(store.QueueResourceType)

// queueMessageCols are read by scanQueueMessage, in its order.
const queueMessageCols = `seq, dead_letter, message_id, body, properties, size, enqueued, scheduled, expires, delivery_count, lock_token, locked_until, dl_reason, dl_description, deferred, session_id`

// deferredVisible is the visible time of a deferred message, locked or
// not (migration 0012): never reached, so that the receive path skips it
// on the index and NextQueueEvent leaves it out.
var deferredVisible = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

func scanQueueMessage(sc interface{ Scan(...any) error }, queueID string) (store.QueueMessage, error) {
	var (
		m       store.QueueMessage
		dl, def int64
		token   sql.NullString
	)
	err := sc.Scan(&m.SequenceNumber, &dl, &m.MessageID, &m.Body, &m.Properties, &m.Size, timeCol{&m.EnqueuedAt},
		nullTimeCol{&m.ScheduledAt}, nullTimeCol{&m.ExpiresAt}, &m.DeliveryCount, &token, nullTimeCol{&m.LockedUntil},
		&m.DeadLetterReason, &m.DeadLetterDescription, &def, &m.SessionID)
	m.QueueID, m.DeadLetter, m.LockToken, m.Deferred = queueID, dl != 0, token.String, def != 0
	return m, err
}

// pending is a valid op of an ApplyQueueOps call: its index and its
// queue's key.
type pending struct {
	i   int
	key string
}

// ApplyQueueOps implements store.Queues.
func (s *Store) ApplyQueueOps(ctx context.Context, now time.Time, ops []store.QueueOp) []store.QueueResult {
	results := make([]store.QueueResult, len(ops))
	failAll := func(err error) []store.QueueResult {
		for i := range results {
			results[i] = store.QueueResult{Err: err}
		}
		return results
	}
	if s.tx != nil {
		return failAll(errors.New("sqlstore: apply queue ops: not possible inside InTx (call it on the Store itself)"))
	}
	now = normTime(now)
	// Validate first; the valid ops are applied grouped by queue.
	var todo []pending
	for i, op := range ops {
		if err := checkQueueOp(op); err != nil {
			results[i].Err = err
			continue
		}
		todo = append(todo, pending{i, fold(op.QueueID)})
	}
	if len(todo) == 0 {
		return results
	}
	slices.SortStableFunc(todo, func(a, b pending) int { return cmp.Compare(a.key, b.key) })

	light := true
	for _, p := range todo {
		light = light && ops[p.i].Kind.Light()
	}
	var qt *queueTx
	var finish func(commit bool) error
	if s.d.Name == "postgres" {
		// A queue whose ops are all Locks outside sessions does not lock
		// its queue_state row (see lockOnly). Of the others: when none
		// reads its queue's size (completes, say), BEGIN locks their
		// queue_state rows; otherwise each group reads and locks its own
		// as it starts. Either way they are locked in key order.
		var locked []string
		for k, p := range todo {
			if readsSize(ops[p.i].Kind) {
				locked = nil
				break
			}
			if (k == 0 || todo[k-1].key != p.key) && !lockOnly(ops, todo[k:]) {
				locked = append(locked, p.key)
			}
		}
		conn, err := beginPGQueueTx(ctx, s.db, light, locked)
		if err != nil {
			return failAll(s.txFail("apply queue ops: begin", err))
		}
		qt = &queueTx{s: s, ctx: ctx, tx: conn, now: now, stateLocked: locked}
		finish = func(commit bool) error {
			if !commit {
				return endPGQueueTx(conn, false, "")
			}
			// The size changes, and the wake-ups that tell other
			// processes' receivers what this commit gives them when, and
			// only if, it commits (queuewake.go), go with the COMMIT.
			return endPGQueueTx(conn, true, qt.atCommit.String()+queueWakeNotifies(ops, results, now))
		}
	} else {
		w := s.queueWriter
		w.mu.Lock()
		defer w.mu.Unlock()
		if err := w.begin(ctx, s.db, light); err != nil {
			return failAll(s.txFail("apply queue ops: begin", err))
		}
		qt = &queueTx{s: s, ctx: ctx, w: w, now: now}
		finish = w.end
	}
	for start := 0; start < len(todo); {
		end := start + 1
		for end < len(todo) && todo[end].key == todo[start].key {
			end++
		}
		idx := make([]int, 0, end-start)
		for _, p := range todo[start:end] {
			idx = append(idx, p.i)
		}
		if err := qt.applyQueue(todo[start].key, ops, idx, results); err != nil {
			_ = finish(false)
			return failAll(s.txFail("apply queue ops: "+s.d.Name, err))
		}
		start = end
	}
	if err := finish(true); err != nil {
		return failAll(s.txFail("apply queue ops: commit", err))
	}
	return results
}

// Light batches. A batch whose ops are all light (store.QueueOpKind.Light)
// commits without waiting for the disk.
//
// SQLite: in WAL mode a commit with synchronous=NORMAL appends the
// transaction's frames to the WAL without an fsync; it survives a crash
// of the process (the frames are in the operating system's cache), and
// only a power loss or an operating system crash can roll it back
// (https://www.sqlite.org/pragma.html#pragma_synchronous: "WAL mode is
// always consistent with synchronous=NORMAL, but WAL mode does lose
// durability. A transaction committed in WAL mode with synchronous=NORMAL
// might roll back following a power loss or system crash."). The WAL is
// appended in order, and a synchronous=FULL commit fsyncs the WAL file
// (https://www.sqlite.org/wal.html), so the next durable commit makes
// every earlier light commit durable too: a power cut can lose only a
// trailing run of light commits, never a durable one nor anything before
// it. PostgreSQL: SET LOCAL synchronous_commit = off is the same trade for
// one transaction ("the most recent transactions … may be lost", but the
// database stays consistent and later commits flush the WAL in order:
// https://www.postgresql.org/docs/current/wal-async-commit.html).

// checkQueueOp rejects an op that cannot succeed, before the transaction.
func checkQueueOp(op store.QueueOp) error {
	what := queueOpName(op.Kind)
	if what == "" {
		return fmt.Errorf("sqlstore: queue op: unknown kind %d", op.Kind)
	}
	if op.QueueID == "" || !textOK(op.QueueID) {
		return fmt.Errorf("sqlstore: queue %s %q: %w", what, op.QueueID, store.ErrNotFound)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("sqlstore: queue %s %s: "+format, append([]any{what, op.QueueID}, args...)...)
	}
	// On a session queue, only a session's holder receives, and only that
	// session's messages; elsewhere there are no sessions to name.
	needSession := func() error {
		switch {
		case op.Limits.RequiresSession && !op.DeadLetter && (op.SessionID == "" || op.SessionLockToken == ""):
			return bad("the queue requires sessions: a held session is required")
		case (!op.Limits.RequiresSession || op.DeadLetter) && op.SessionID != "":
			return bad("the queue (or its dead-letter queue) has no sessions")
		case !textOK(op.SessionID, op.SessionLockToken):
			return bad("session id and lock token must be valid UTF-8 without NUL")
		}
		return nil
	}
	needDelivery := func() error {
		if !op.DeadLetter && op.Limits.MaxDeliveryCount < 1 {
			return bad("MaxDeliveryCount %d is not at least 1", op.Limits.MaxDeliveryCount)
		}
		return nil
	}
	switch op.Kind {
	case store.QueueSend:
		if op.DeadLetter {
			return bad("cannot send to a dead-letter queue")
		}
		if len(op.Messages) == 0 {
			return bad("no messages")
		}
		for _, m := range op.Messages {
			if !textOK(m.MessageID, m.SessionID) {
				return bad("message and session ids must be valid UTF-8 without NUL")
			}
			if m.TimeToLive < 0 {
				return bad("negative time to live")
			}
		}
		if op.Limits.DefaultTimeToLive < 0 || op.Limits.DuplicateWindow < 0 || op.Limits.MaxSizeBytes < 0 {
			return bad("negative limit")
		}
	case store.QueueLock:
		if op.LockToken == "" || !textOK(op.LockToken) {
			return bad("a lock token is required")
		}
		if op.Limits.LockDuration <= 0 {
			return bad("LockDuration must be positive")
		}
		if err := needSession(); err != nil {
			return err
		}
		return needDelivery()
	case store.QueueReceiveAndDelete:
		if err := needSession(); err != nil {
			return err
		}
		return needDelivery()
	case store.QueueAbandon:
		return needDelivery()
	case store.QueueLockSession:
		if !op.Limits.RequiresSession || op.DeadLetter {
			return bad("sessions are accepted only on a queue that requires them, not on its dead-letter queue")
		}
		if op.LockToken == "" || !textOK(op.LockToken, op.SessionID) {
			return bad("a lock token is required")
		}
		if op.Limits.LockDuration <= 0 {
			return bad("LockDuration must be positive")
		}
	case store.QueueRenewSession, store.QueueReleaseSession, store.QueueGetSessionState, store.QueueSetSessionState:
		if op.DeadLetter || op.SessionID == "" || op.SessionLockToken == "" || !textOK(op.SessionID, op.SessionLockToken) {
			return bad("a held session (its id and lock token) is required")
		}
		if op.Kind == store.QueueRenewSession && op.Limits.LockDuration <= 0 {
			return bad("LockDuration must be positive")
		}
		if op.Limits.MaxSizeBytes < 0 {
			return bad("negative limit")
		}
	case store.QueueRenew:
		if op.Limits.LockDuration <= 0 {
			return bad("LockDuration must be positive")
		}
	case store.QueueLockDeferred:
		if op.LockToken == "" || !textOK(op.LockToken) {
			return bad("a lock token is required")
		}
		if op.Limits.LockDuration <= 0 {
			return bad("LockDuration must be positive")
		}
		if op.SequenceNumber <= 0 {
			return bad("a deferred message's sequence number is required")
		}
		if err := needSession(); err != nil {
			return err
		}
	case store.QueueCancelScheduled:
		if op.DeadLetter || op.SequenceNumber <= 0 {
			return bad("a scheduled message of the queue itself, by its sequence number, is required")
		}
	case store.QueueDeadLetter:
		if op.DeadLetter {
			return fmt.Errorf("sqlstore: queue %s %s: a dead-lettered message cannot be dead-lettered again: %w", what, op.QueueID, store.ErrNotFound)
		}
		if !textOK(op.DeadLetterReason, op.DeadLetterDescription) || len(op.DeadLetterReason) > 4096 || len(op.DeadLetterDescription) > 4096 {
			return bad("the dead-letter reason and description must be text of at most 4096 bytes")
		}
	}
	return nil
}

func queueOpName(k store.QueueOpKind) string {
	switch k {
	case store.QueueSend:
		return "send"
	case store.QueueLock:
		return "lock"
	case store.QueueReceiveAndDelete:
		return "receive and delete"
	case store.QueueComplete:
		return "complete"
	case store.QueueAbandon:
		return "abandon"
	case store.QueueRenew:
		return "renew"
	case store.QueueDeadLetter:
		return "dead-letter"
	case store.QueueCancelScheduled:
		return "cancel scheduled"
	case store.QueueDefer:
		return "defer"
	case store.QueueLockDeferred:
		return "lock deferred"
	case store.QueueLockSession:
		return "lock session"
	case store.QueueRenewSession:
		return "renew session"
	case store.QueueReleaseSession:
		return "release session"
	case store.QueueGetSessionState:
		return "get session state"
	case store.QueueSetSessionState:
		return "set session state"
	}
	return ""
}

// queueTx is one ApplyQueueOps transaction.
type queueTx struct {
	s   *Store
	ctx context.Context
	tx  *sql.Conn // PostgreSQL: the connection the batch's transaction is open on
	// PostgreSQL: the queue keys whose queue_state rows BEGIN locked.
	stateLocked []string
	// PostgreSQL: writes (statements without arguments, each ended by
	// "; ") held back to go with the COMMIT in its round trip, or before
	// the next statement (flush), which might read what they write.
	atCommit strings.Builder
	w        *queueWriter // SQLite: the connection the batch's transaction is open on
	now      time.Time
}

// queueWriter is the one SQLite connection that queue batches run on, with
// its statements prepared once for the life of the store. A batch is one
// BEGIN IMMEDIATE … COMMIT on it: database/sql would prepare a
// transaction's statements anew for every transaction (Tx.StmtContext
// re-prepares a statement that belongs to a connection), and preparing
// cost more than a tenth of the broker's CPU. Batches take turns (mu);
// only the broker's one commit loop calls ApplyQueueOps in practice.
//
// A light batch commits with synchronous=NORMAL; the
// connection is back at synchronous=FULL, the pool's setting (package
// sqlite's connParams), as soon as it ends.
type queueWriter struct {
	mu    sync.Mutex
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
	light bool // the open transaction commits with synchronous=NORMAL
}

// begin opens the batch's transaction, taking SQLite's write lock at once.
func (w *queueWriter) begin(ctx context.Context, db *sql.DB, light bool) error {
	if w.conn == nil {
		conn, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		w.conn, w.stmts = conn, map[string]*sql.Stmt{}
	}
	if light {
		if _, err := w.conn.ExecContext(ctx, "PRAGMA synchronous = NORMAL"); err != nil {
			w.discard()
			return err
		}
		w.light = true
	}
	if _, err := w.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		w.discard()
		return err
	}
	return nil
}

// end commits or rolls back. The request that started the batch may be
// gone: ending the transaction does not depend on its context. A
// connection whose transaction could not be ended is discarded, never
// reused with a transaction open.
func (w *queueWriter) end(commit bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	if commit {
		if _, err = w.conn.ExecContext(ctx, "COMMIT"); err != nil {
			if _, rerr := w.conn.ExecContext(ctx, "ROLLBACK"); rerr != nil {
				w.discard()
				return err
			}
		}
	} else if _, err = w.conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		w.discard()
		return err
	}
	if w.light {
		// A connection that might still commit without syncing is never
		// used again.
		if _, serr := w.conn.ExecContext(ctx, "PRAGMA synchronous = FULL"); serr != nil {
			w.discard()
		}
		w.light = false
	}
	return err
}

// discard closes the connection for good (its driver connection is marked
// bad, so the pool does not get it back) and forgets its statements.
func (w *queueWriter) discard() {
	for _, st := range w.stmts {
		st.Close()
	}
	_ = w.conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = w.conn.Close()
	w.conn, w.stmts, w.light = nil, nil, false
}

// close releases the connection when the store closes.
func (w *queueWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		return
	}
	for _, st := range w.stmts {
		st.Close()
	}
	_ = w.conn.Close()
	w.conn, w.stmts = nil, nil
}

func (q *queueTx) pg() bool { return q.tx != nil }

func (q *queueTx) stmt(query string) (*sql.Stmt, error) {
	if st, ok := q.w.stmts[query]; ok {
		return st, nil
	}
	st, err := q.w.conn.PrepareContext(q.ctx, q.s.d.rebind(query))
	if err != nil {
		return nil, err
	}
	q.w.stmts[query] = st
	return st, nil
}

// flush sends the writes held back for the commit (PostgreSQL's
// atCommit) before a statement that might read what they write. A
// failure leaves the transaction failed: the next statement, or the
// commit, fails with it.
func (q *queueTx) flush() {
	if q.atCommit.Len() == 0 {
		return
	}
	stmts := q.atCommit.String()
	q.atCommit.Reset()
	_, _ = q.tx.ExecContext(q.ctx, stmts)
}

// query runs a PostgreSQL query of the batch.
func (q *queueTx) query(query string, args ...any) (*sql.Rows, error) {
	q.flush()
	return q.tx.QueryContext(q.ctx, q.s.d.rebind(query), args...)
}

func (q *queueTx) exec(query string, args ...any) (sql.Result, error) {
	if q.pg() {
		q.flush()
		return q.tx.ExecContext(q.ctx, q.s.d.rebind(query), args...)
	}
	st, err := q.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(q.ctx, args...)
}

// queryRow runs a query of at most one row; a failure to prepare shows
// up as the row's error.
func (q *queueTx) queryRow(query string, args ...any) *sql.Row {
	if q.pg() {
		q.flush()
		return q.tx.QueryRowContext(q.ctx, q.s.d.rebind(query), args...)
	}
	st, err := q.stmt(query)
	if err != nil {
		return q.w.conn.QueryRowContext(q.ctx, q.s.d.rebind(query), args...)
	}
	return st.QueryRowContext(q.ctx, args...)
}

func (q *queueTx) time(t time.Time) any { return q.s.d.BindTime(normTime(t)) }

// queueGroup is the state of one queue while its ops are applied.
type queueGroup struct {
	key     string
	exists  bool // the queue's resource exists (checked only for sends)
	size    int64
	delta   int64           // size change not yet written to queue_state
	seenIDs map[string]bool // message ids stored by this batch's sends
	// PostgreSQL, a group of Locks only (lockOnly): its queue_state row
	// is not locked; stateTried and stateHeld tell whether it was tried
	// for, and taken, to drop an expired message (lockRun).
	unlocked, stateTried, stateHeld bool
}

// lockOnly tells whether the ops of todo (sorted by key) on todo[0]'s
// queue are all Locks outside sessions. On PostgreSQL such a group does
// not lock its queue_state row: locks change no size, and SKIP LOCKED
// keeps two lockers off one message; so a batch of locks does not wait
// behind another node's commit of sends or completes on the queue (which
// holds the row through its fsync). Only to drop an expired message does
// it need the row, and then it takes it only if no one holds it (SKIP
// LOCKED: it never waits for it, so no lock order is at stake); if
// someone does, it leaves the message for a later receive to drop. An
// expired message is never delivered either way.
func lockOnly(ops []store.QueueOp, todo []pending) bool {
	for _, p := range todo {
		if p.key != todo[0].key {
			break
		}
		if op := ops[p.i]; op.Kind != store.QueueLock || op.SessionID != "" {
			return false
		}
	}
	return true
}

// idxPending is idx, the ops of the queue key, as pending entries.
func idxPending(idx []int, key string) []pending {
	ps := make([]pending, len(idx))
	for k, i := range idx {
		ps[k] = pending{i, key}
	}
	return ps
}

// applyQueue applies the ops idx, all on the queue key, in order. An error
// is a database failure, fatal to the transaction; the ops' own failures go
// to results.
func (q *queueTx) applyQueue(key string, ops []store.QueueOp, idx []int, results []store.QueueResult) error {
	g := &queueGroup{key: key}
	// Ops that create rows of the queue (messages, sessions) first make
	// sure it exists.
	hasSend := false
	for _, i := range idx {
		hasSend = hasSend || readsSize(ops[i].Kind)
	}
	if q.pg() && lockOnly(ops, idxPending(idx, key)) {
		g.unlocked = true
		return q.applyOps(g, ops, idx, results)
	}
	if q.pg() && slices.Contains(q.stateLocked, key) {
		// Locked with BEGIN; nothing here reads the size or whether the
		// queue exists.
		return q.applyOps(g, ops, idx, results)
	}
	stateQuery := `SELECT size_bytes FROM queue_state WHERE queue_key = ?`
	if q.pg() {
		stateQuery += ` FOR UPDATE`
	}
	err := q.queryRow(stateQuery, key).Scan(&g.size)
	switch {
	case err == nil:
		g.exists = true
	case !errors.Is(err, sql.ErrNoRows):
		return err
	case hasSend:
		// The queue's first send creates its state, if the queue exists.
		var typ string
		err := q.queryRow(`SELECT type_key FROM arm_resources WHERE id_key = ?`, key).Scan(&typ)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err == nil && typ == queueType {
			if _, err := q.exec(`INSERT INTO queue_state (queue_key, size_bytes) VALUES (?, 0) ON CONFLICT (queue_key) DO NOTHING`, key); err != nil {
				return err
			}
			// Read it back: on PostgreSQL another transaction may have
			// created it meanwhile, and this also locks it.
			if err := q.queryRow(stateQuery, key).Scan(&g.size); err != nil {
				return err
			}
			g.exists = true
		}
	}
	return q.applyOps(g, ops, idx, results)
}

// readsSize tells whether an op of kind k reads its queue's size or
// whether the queue exists (applyQueue reads both first).
func readsSize(k store.QueueOpKind) bool {
	switch k {
	case store.QueueSend, store.QueueLockSession, store.QueueSetSessionState:
		return true
	}
	return false
}

// applyOps applies the ops idx of the group g, in order, and writes its
// size change.
func (q *queueTx) applyOps(g *queueGroup, ops []store.QueueOp, idx []int, results []store.QueueResult) error {
	key := g.key
	for k := 0; k < len(idx); k++ {
		if q.pg() {
			// PostgreSQL: a run of sends, locks or completes in one
			// statement or two (queue_pgbatch.go).
			if n, err := q.applySendsAndCompletes(g, ops, idx[k:], results); err != nil {
				return err
			} else if n > 0 {
				k += n - 1
				continue
			}
			// A lone lock among other ops runs as receive does: its
			// UPDATE, prepared, costs the round trip that flushing a
			// held-back one would (atCommit).
			if n := pgRunLen(ops, idx[k:]); n > 1 || n == 1 && (g.unlocked || ops[idx[k]].Kind != store.QueueLock) {
				if err := q.applyRun(g, ops, idx[k:k+n], results); err != nil {
					return err
				}
				k += n - 1
				continue
			}
		}
		i := idx[k]
		op := ops[i]
		var (
			r   store.QueueResult
			err error
		)
		switch op.Kind {
		case store.QueueSend:
			r, err = q.send(g, op)
		case store.QueueLock, store.QueueReceiveAndDelete:
			r, err = q.receive(g, op)
		case store.QueueComplete:
			r, err = q.complete(g, op)
		case store.QueueAbandon:
			r, err = q.abandon(op)
		case store.QueueRenew:
			r, err = q.renew(op)
		case store.QueueDeadLetter:
			r, err = q.deadLetterHeld(op)
		case store.QueueCancelScheduled:
			r, err = q.cancelScheduled(g, op)
		case store.QueueDefer:
			r, err = q.deferHeld(op)
		case store.QueueLockDeferred:
			r, err = q.lockDeferred(g, op)
		case store.QueueLockSession:
			r, err = q.lockSession(g, op)
		case store.QueueRenewSession:
			r, err = q.renewSession(op)
		case store.QueueReleaseSession:
			r, err = q.releaseSession(op)
		case store.QueueGetSessionState:
			r, err = q.getSessionState(op)
		case store.QueueSetSessionState:
			r, err = q.setSessionState(g, op)
		}
		if err != nil {
			return err
		}
		results[i] = r
	}
	if g.delta != 0 && q.pg() {
		// With the COMMIT, in its round trip.
		fmt.Fprintf(&q.atCommit, "UPDATE queue_state SET size_bytes = size_bytes + %d WHERE queue_key = %s; ", g.delta, pgLiteral(key))
	} else if g.delta != 0 {
		if _, err := q.exec(`UPDATE queue_state SET size_bytes = size_bytes + ? WHERE queue_key = ?`, g.delta, key); err != nil {
			return err
		}
	}
	return nil
}

// opErr is an op's own failure.
func opErr(op store.QueueOp, err error) store.QueueResult {
	return store.QueueResult{Err: fmt.Errorf("sqlstore: queue %s %s: %w", queueOpName(op.Kind), op.QueueID, err)}
}

// sendPlan is a send decided as Service Bus decides it, for the
// op-at-a-time path and the PostgreSQL batch alike (decideSend).
type sendPlan struct {
	dups  []int           // indexes of op's messages that are duplicates
	ids   map[string]bool // the ids the others store, under duplicate detection
	total int64           // the others' size
	fits  bool            // whether they fit the queue's MaxSizeBytes
}

// decideSend decides op: with duplicate detection on, a message is a
// duplicate if this batch sent its id, stored says the queue's history
// window holds it, or op carries it twice; the others must fit the
// queue's MaxSizeBytes.
func decideSend(g *queueGroup, op store.QueueOp, stored func(id string) (bool, error)) (sendPlan, error) {
	var p sendPlan
	for i, m := range op.Messages {
		if op.Limits.DuplicateDetection && m.MessageID != "" {
			dup := g.seenIDs[m.MessageID] || p.ids[m.MessageID]
			if !dup {
				var err error
				if dup, err = stored(m.MessageID); err != nil {
					return sendPlan{}, err
				}
			}
			if dup {
				p.dups = append(p.dups, i)
				continue
			}
			if p.ids == nil {
				p.ids = map[string]bool{}
			}
			p.ids[m.MessageID] = true
		}
		p.total += int64(len(m.Body) + len(m.Properties))
	}
	p.fits = op.Limits.MaxSizeBytes <= 0 || g.size+g.delta+p.total <= op.Limits.MaxSizeBytes
	return p, nil
}

// record counts a stored plan in its group: its size, and its ids as sent
// by this batch.
func (p sendPlan) record(g *queueGroup) {
	g.delta += p.total
	if len(p.ids) > 0 && g.seenIDs == nil {
		g.seenIDs = map[string]bool{}
	}
	for id := range p.ids {
		g.seenIDs[id] = true
	}
}

// duplicatesAnswered is a send's answer before its stored messages are
// filled in: each duplicate as it was given, as accepted and not stored.
func duplicatesAnswered(op store.QueueOp, dups []int) []store.QueueMessage {
	out := make([]store.QueueMessage, len(op.Messages))
	for _, i := range dups {
		out[i] = op.Messages[i]
		out[i].QueueID, out[i].TimeToLive = op.QueueID, 0
	}
	return out
}

func (q *queueTx) send(g *queueGroup, op store.QueueOp) (store.QueueResult, error) {
	if !g.exists {
		return opErr(op, store.ErrNotFound), nil
	}
	lim := op.Limits
	window := lim.DuplicateWindow
	if window == 0 {
		window = store.DefaultDuplicateWindow
	}
	// Decide: which messages are duplicates, and does the rest fit.
	plan, err := decideSend(g, op, func(id string) (bool, error) {
		var one int
		err := q.queryRow(`SELECT 1 FROM queue_dedup WHERE queue_key = ? AND message_id = ? AND expires > ?`,
			g.key, id, q.time(q.now)).Scan(&one)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return false, err
		}
		return err == nil, nil
	})
	if err != nil {
		return store.QueueResult{}, err
	}
	if !plan.fits {
		return opErr(op, store.ErrQuotaExceeded), nil
	}
	dups := plan.dups
	// Write.
	out := duplicatesAnswered(op, dups)
	d := 0
	for i, m := range op.Messages {
		if d < len(dups) && dups[d] == i {
			d++
			continue
		}
		m = q.stampSent(op, m)
		active := m.EnqueuedAt // when it becomes deliverable
		if !m.ScheduledAt.IsZero() {
			active = m.ScheduledAt
		}
		err := q.queryRow(`INSERT INTO queue_messages (queue_key, dead_letter, visible, message_id, body, properties, size, enqueued, scheduled, expires, delivery_count, lock_token, locked_until, dl_reason, dl_description, session_id)
VALUES (?, 0, ?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, NULL, '', '', ?) RETURNING seq`,
			g.key, q.time(active), m.MessageID, m.Body, m.Properties, m.Size, q.time(m.EnqueuedAt),
			q.s.nullTime(m.ScheduledAt), q.s.nullTime(m.ExpiresAt), m.SessionID).Scan(&m.SequenceNumber)
		if err != nil {
			return store.QueueResult{}, err
		}
		if lim.DuplicateDetection && m.MessageID != "" {
			if _, err := q.exec(`INSERT INTO queue_dedup (queue_key, message_id, expires) VALUES (?, ?, ?)
ON CONFLICT (queue_key, message_id) DO UPDATE SET expires = excluded.expires`,
				g.key, m.MessageID, q.time(q.now.Add(window))); err != nil {
				return store.QueueResult{}, err
			}
		}
		out[i] = m
	}
	plan.record(g)
	return store.QueueResult{Messages: out, Duplicates: dups}, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// receive is Lock and ReceiveAndDelete: the head of the queue, after
// dealing with the expired and over-delivered messages in front of it.
func (q *queueTx) receive(g *queueGroup, op store.QueueOp) (store.QueueResult, error) {
	head := `SELECT ` + queueMessageCols + ` FROM queue_messages`
	if !q.pg() {
		// Without statistics SQLite might otherwise pick the visible index
		// and sort the whole queue.
		head += ` INDEXED BY queue_messages_head`
	}
	args := []any{g.key, boolInt(op.DeadLetter), q.time(q.now)}
	lim := op.Limits
	// A session's holder takes its session's messages, each locked for as
	// long as the session is.
	var sessionUntil time.Time
	if op.SessionID != "" {
		var err error
		if sessionUntil, err = q.sessionHeld(op); err != nil || sessionUntil.IsZero() {
			return opErrIf(op, store.ErrLockLost, err)
		}
		head = `SELECT ` + queueMessageCols + ` FROM queue_messages`
		if !q.pg() {
			head += ` INDEXED BY queue_messages_session`
		}
		// session_id <> '' lets the planner use the partial session
		// index (migration 0021); op.SessionID is never empty here.
		head += ` WHERE queue_key = ? AND dead_letter = ? AND visible <= ? AND session_id = ? AND session_id <> ''`
		args = append(args, op.SessionID)
	} else {
		head += ` WHERE queue_key = ? AND dead_letter = ? AND visible <= ?`
	}
	head += ` ORDER BY seq LIMIT 1`
	if q.pg() {
		head += ` FOR UPDATE SKIP LOCKED`
	}
	for swept := 0; ; swept++ {
		if swept >= store.QueueSweepLimit {
			return opErr(op, store.ErrNotFound), nil
		}
		m, err := scanQueueMessage(q.queryRow(head, args...), op.QueueID)
		if errors.Is(err, sql.ErrNoRows) {
			return opErr(op, store.ErrNotFound), nil
		}
		if err != nil {
			return store.QueueResult{}, err
		}
		if !op.DeadLetter {
			switch {
			case !m.ExpiresAt.IsZero() && !m.ExpiresAt.After(q.now):
				if lim.DeadLetterOnExpiration {
					err = q.deadLetter(m.SequenceNumber, store.DeadLetterTTLExpired, "The message expired and was dead lettered.")
				} else {
					err = q.drop(g, m)
				}
				if err != nil {
					return store.QueueResult{}, err
				}
				continue
			case m.DeliveryCount >= lim.MaxDeliveryCount:
				if err := q.deadLetter(m.SequenceNumber, store.DeadLetterMaxDeliveryCount,
					fmt.Sprintf("Message could not be consumed after %d delivery attempts.", lim.MaxDeliveryCount)); err != nil {
					return store.QueueResult{}, err
				}
				continue
			}
		}
		m.DeliveryCount++
		lapsed := m.LockToken != "" // a visible message still holding a token: its lock expired unsettled
		if op.Kind == store.QueueReceiveAndDelete {
			if err := q.drop(g, m); err != nil {
				return store.QueueResult{}, err
			}
			m.LockToken, m.LockedUntil = "", time.Time{}
			return store.QueueResult{Messages: []store.QueueMessage{m}, LockExpired: lapsed}, nil
		}
		m.LockToken, m.LockedUntil = op.LockToken, normTime(q.now.Add(lim.LockDuration))
		if !sessionUntil.IsZero() {
			m.LockedUntil = sessionUntil
		}
		until := q.time(m.LockedUntil)
		if _, err := q.exec(`UPDATE queue_messages SET delivery_count = delivery_count + 1, lock_token = ?, locked_until = ?, visible = ? WHERE seq = ?`,
			m.LockToken, until, until, m.SequenceNumber); err != nil {
			return store.QueueResult{}, err
		}
		return store.QueueResult{Messages: []store.QueueMessage{m}, LockedUntil: m.LockedUntil, LockExpired: lapsed}, nil
	}
}

// deadLetter moves a message to its queue's dead-letter queue, unlocked,
// not deferred and deliverable there at once, keeping its sequence number.
func (q *queueTx) deadLetter(seq int64, reason, description string) error {
	_, err := q.exec(`UPDATE queue_messages SET dead_letter = 1, deferred = 0, lock_token = NULL, locked_until = NULL, visible = ?, dl_reason = ?, dl_description = ? WHERE seq = ?`,
		q.time(q.now), reason, description, seq)
	return err
}

func (q *queueTx) drop(g *queueGroup, m store.QueueMessage) error {
	if _, err := q.exec(`DELETE FROM queue_messages WHERE seq = ?`, m.SequenceNumber); err != nil {
		return err
	}
	g.delta -= m.Size
	return nil
}

// held is the condition "the op's message, locked with the op's token, and
// the lock still valid", with its arguments.
func (q *queueTx) held(op store.QueueOp) (string, []any) {
	token := op.LockToken
	if !textOK(token) {
		token = "" // matches no lock (locks have tokens), and PostgreSQL could not take it
	}
	return `seq = ? AND queue_key = ? AND dead_letter = ? AND lock_token = ? AND locked_until > ?`,
		[]any{op.SequenceNumber, fold(op.QueueID), boolInt(op.DeadLetter), token, q.time(q.now)}
}

// lost tells why a settle op matched no message: there is none with that
// sequence number in the queue (ErrNotFound), or the lock is not the op's
// (ErrLockLost).
func (q *queueTx) lost(op store.QueueOp) (store.QueueResult, error) {
	var one int
	err := q.queryRow(`SELECT 1 FROM queue_messages WHERE seq = ? AND queue_key = ?`, op.SequenceNumber, fold(op.QueueID)).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return opErr(op, store.ErrNotFound), nil
	case err != nil:
		return store.QueueResult{}, err
	}
	return opErr(op, store.ErrLockLost), nil
}

func (q *queueTx) complete(g *queueGroup, op store.QueueOp) (store.QueueResult, error) {
	cond, args := q.held(op)
	var size int64
	err := q.queryRow(`DELETE FROM queue_messages WHERE `+cond+` RETURNING size`, args...).Scan(&size)
	if errors.Is(err, sql.ErrNoRows) {
		return q.lost(op)
	}
	if err != nil {
		return store.QueueResult{}, err
	}
	g.delta -= size
	return store.QueueResult{}, nil
}

// abandon unlocks the held message: deliverable again, or, if it was
// deferred, deferred again; or dead-lettered, deferred or not, once its
// delivery count has reached MaxDeliveryCount. A deferred message keeps
// its visible (deferredVisible) while locked, so it keeps it here too.
func (q *queueTx) abandon(op store.QueueOp) (store.QueueResult, error) {
	cond, args := q.held(op)
	// SET expressions all see the row as it was.
	over := `dead_letter = 0 AND delivery_count >= ?`
	maxDC := op.Limits.MaxDeliveryCount
	var dl int64
	err := q.queryRow(`UPDATE queue_messages SET lock_token = NULL, locked_until = NULL,
 visible = CASE WHEN deferred = 1 AND NOT (`+over+`) THEN visible ELSE ? END,
 deferred = CASE WHEN `+over+` THEN 0 ELSE deferred END,
 dl_reason = CASE WHEN `+over+` THEN ? ELSE dl_reason END,
 dl_description = CASE WHEN `+over+` THEN ? ELSE dl_description END,
 dead_letter = CASE WHEN `+over+` THEN 1 ELSE dead_letter END
WHERE `+cond+` RETURNING dead_letter`,
		append([]any{maxDC, q.time(q.now),
			maxDC,
			maxDC, store.DeadLetterMaxDeliveryCount,
			maxDC, fmt.Sprintf("Message could not be consumed after %d delivery attempts.", maxDC),
			maxDC}, args...)...).Scan(&dl)
	if errors.Is(err, sql.ErrNoRows) {
		return q.lost(op)
	}
	if err != nil {
		return store.QueueResult{}, err
	}
	return store.QueueResult{DeadLettered: dl != 0 && !op.DeadLetter}, nil
}

// cancelScheduled deletes a message that is scheduled and not yet due.
func (q *queueTx) cancelScheduled(g *queueGroup, op store.QueueOp) (store.QueueResult, error) {
	var size int64
	err := q.queryRow(`DELETE FROM queue_messages WHERE seq = ? AND queue_key = ? AND dead_letter = 0 AND deferred = 0 AND scheduled IS NOT NULL AND scheduled > ? AND lock_token IS NULL RETURNING size`,
		op.SequenceNumber, fold(op.QueueID), q.time(q.now)).Scan(&size)
	if errors.Is(err, sql.ErrNoRows) {
		return opErr(op, store.ErrNotFound), nil
	}
	if err != nil {
		return store.QueueResult{}, err
	}
	g.delta -= size
	return store.QueueResult{}, nil
}

// deadLetterHeld moves the message the op holds to the dead-letter queue
// with the receiver's reason.
func (q *queueTx) deadLetterHeld(op store.QueueOp) (store.QueueResult, error) {
	cond, args := q.held(op)
	res, err := q.exec(`UPDATE queue_messages SET dead_letter = 1, deferred = 0, lock_token = NULL, locked_until = NULL, visible = ?, dl_reason = ?, dl_description = ? WHERE `+cond,
		append([]any{q.time(q.now), op.DeadLetterReason, op.DeadLetterDescription}, args...)...)
	if err != nil {
		return store.QueueResult{}, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return store.QueueResult{}, err
	}
	if n == 0 {
		return q.lost(op)
	}
	return store.QueueResult{DeadLettered: true}, nil
}

// deferHeld sets aside the message the op holds: deferred and unlocked,
// out of the receive path's reach.
func (q *queueTx) deferHeld(op store.QueueOp) (store.QueueResult, error) {
	cond, args := q.held(op)
	res, err := q.exec(`UPDATE queue_messages SET deferred = 1, lock_token = NULL, locked_until = NULL, visible = ? WHERE `+cond,
		append([]any{q.time(deferredVisible)}, args...)...)
	if err != nil {
		return store.QueueResult{}, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return store.QueueResult{}, err
	} else if n == 0 {
		return q.lost(op)
	}
	return store.QueueResult{}, nil
}

// lockDeferred locks a deferred message by its sequence number, after
// checking its expiry (the one time a deferred message is checked for it).
func (q *queueTx) lockDeferred(g *queueGroup, op store.QueueOp) (store.QueueResult, error) {
	query := `SELECT ` + queueMessageCols + ` FROM queue_messages WHERE seq = ? AND queue_key = ? AND dead_letter = ? AND deferred = 1`
	if q.pg() {
		query += ` FOR UPDATE`
	}
	m, err := scanQueueMessage(q.queryRow(query, op.SequenceNumber, g.key, boolInt(op.DeadLetter)), op.QueueID)
	if errors.Is(err, sql.ErrNoRows) {
		return opErr(op, store.ErrNotFound), nil
	}
	if err != nil {
		return store.QueueResult{}, err
	}
	// On a session queue, a session's holder receives only its own
	// session's deferred messages, locked for as long as the session is.
	var sessionUntil time.Time
	if op.SessionID != "" {
		if m.SessionID != op.SessionID {
			return opErr(op, store.ErrNotFound), nil
		}
		if sessionUntil, err = q.sessionHeld(op); err != nil || sessionUntil.IsZero() {
			return opErrIf(op, store.ErrLockLost, err)
		}
	}
	if m.LockToken != "" && m.LockedUntil.After(q.now) {
		return opErr(op, store.ErrLockLost), nil
	}
	lim := op.Limits
	if !op.DeadLetter && !m.ExpiresAt.IsZero() && !m.ExpiresAt.After(q.now) {
		if lim.DeadLetterOnExpiration {
			if err := q.deadLetter(m.SequenceNumber, store.DeadLetterTTLExpired, "The message expired and was dead lettered."); err != nil {
				return store.QueueResult{}, err
			}
			r := opErr(op, store.ErrNotFound)
			r.DeadLettered = true
			return r, nil
		}
		if err := q.drop(g, m); err != nil {
			return store.QueueResult{}, err
		}
		return opErr(op, store.ErrNotFound), nil
	}
	m.DeliveryCount++
	lapsed := m.LockToken != "" // locked before, and the lock is past (checked above)
	m.LockToken, m.LockedUntil = op.LockToken, normTime(q.now.Add(lim.LockDuration))
	if !sessionUntil.IsZero() {
		m.LockedUntil = sessionUntil
	}
	if _, err := q.exec(`UPDATE queue_messages SET delivery_count = delivery_count + 1, lock_token = ?, locked_until = ? WHERE seq = ?`,
		m.LockToken, q.time(m.LockedUntil), m.SequenceNumber); err != nil {
		return store.QueueResult{}, err
	}
	return store.QueueResult{Messages: []store.QueueMessage{m}, LockedUntil: m.LockedUntil, LockExpired: lapsed}, nil
}

func (q *queueTx) renew(op store.QueueOp) (store.QueueResult, error) {
	cond, args := q.held(op)
	until := normTime(q.now.Add(op.Limits.LockDuration))
	// A deferred message keeps its visible (deferredVisible): when the
	// lock ends it is deferred again, not deliverable.
	res, err := q.exec(`UPDATE queue_messages SET locked_until = ?, visible = CASE WHEN deferred = 1 THEN visible ELSE ? END WHERE `+cond,
		append([]any{q.time(until), q.time(until)}, args...)...)
	if err != nil {
		return store.QueueResult{}, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return store.QueueResult{}, err
	} else if n == 0 {
		return q.lost(op)
	}
	return store.QueueResult{LockedUntil: until}, nil
}

// PeekQueueMessages implements store.Queues.
func (s *Store) PeekQueueMessages(ctx context.Context, queueID string, deadLetter bool, fromSequence int64, limit int) ([]store.QueueMessage, error) {
	if !textOK(queueID) || limit <= 0 {
		return nil, nil
	}
	return s.peekQueue(ctx, "peek queue messages "+queueID, queueID,
		`SELECT `+queueMessageCols+` FROM queue_messages WHERE queue_key = ? AND dead_letter = ? AND seq >= ? ORDER BY seq LIMIT ?`,
		fold(queueID), boolInt(deadLetter), fromSequence, limit)
}

// peekQueue reads the messages query selects (queueMessageCols) of the
// queue queueID; what names the read in errors.
func (s *Store) peekQueue(ctx context.Context, what, queueID, query string, args ...any) ([]store.QueueMessage, error) {
	var out []store.QueueMessage
	err := s.read(func(r runner) error {
		rows, err := r.query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			m, err := scanQueueMessage(rows, queueID)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return rows.Err()
	})
	return out, s.fail(what, err)
}

// QueueStats implements store.Queues.
func (s *Store) QueueStats(ctx context.Context, queueID string, now time.Time) (store.QueueStats, error) {
	var st store.QueueStats
	if !textOK(queueID) || queueID == "" {
		return st, notFound("queue stats")
	}
	key := fold(queueID)
	at := s.d.BindTime(normTime(now))
	err := s.read(func(r runner) error {
		err := r.queryRow(ctx, `SELECT size_bytes FROM queue_state WHERE queue_key = ?`, key).Scan(&st.SizeBytes)
		if errors.Is(err, sql.ErrNoRows) {
			// Never sent to: it must still be a queue.
			var typ string
			if err := r.queryRow(ctx, `SELECT type_key FROM arm_resources WHERE id_key = ?`, key).Scan(&typ); err != nil {
				return err
			}
			if typ != queueType {
				return store.ErrNotFound
			}
			return nil
		}
		if err != nil {
			return err
		}
		return r.queryRow(ctx, `SELECT
 COALESCE(SUM(CASE WHEN dead_letter = 0 AND (scheduled IS NULL OR scheduled <= ?) THEN 1 ELSE 0 END), 0),
 COALESCE(SUM(CASE WHEN dead_letter = 0 AND scheduled > ? THEN 1 ELSE 0 END), 0),
 COALESCE(SUM(dead_letter), 0)
FROM queue_messages WHERE queue_key = ?`, at, at, key).Scan(&st.ActiveCount, &st.ScheduledCount, &st.DeadLetterCount)
	})
	return st, s.fail("queue stats "+queueID, err)
}

// NextQueueEvent implements store.Queues.
func (s *Store) NextQueueEvent(ctx context.Context, queueID string, deadLetter bool) (time.Time, bool, error) {
	var at time.Time
	if !textOK(queueID) {
		return at, false, nil
	}
	err := s.read(func(r runner) error {
		return r.queryRow(ctx, `SELECT MIN(visible) FROM queue_messages WHERE queue_key = ? AND dead_letter = ? AND visible < ?`,
			fold(queueID), boolInt(deadLetter), s.d.BindTime(deferredVisible)).Scan(nullTimeCol{&at})
	})
	if err != nil {
		return time.Time{}, false, s.fail("next queue event "+queueID, err)
	}
	return at, !at.IsZero(), nil
}

// PruneDuplicateIDs implements store.Queues. It is one statement, run on
// the pool (or the caller's transaction).
func (s *Store) PruneDuplicateIDs(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.read(func(r runner) error {
		res, err := r.exec(ctx, `DELETE FROM queue_dedup WHERE expires <= ?`, s.d.BindTime(normTime(now)))
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		// Sessions accepted and left to lapse, with no state to keep, are
		// bookkeeping only: a later accept creates them again.
		_, err = r.exec(ctx, `DELETE FROM queue_sessions WHERE state IS NULL AND (locked_until IS NULL OR locked_until <= ?)`, s.d.BindTime(normTime(now)))
		return err
	})
	return n, s.fail("prune duplicate ids", err)
}
