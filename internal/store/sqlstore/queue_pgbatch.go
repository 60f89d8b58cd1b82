package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Set-based queue ops on PostgreSQL (issue 16).
//
// On PostgreSQL every statement is a network round trip, and the broker's
// one commit loop waits for each in turn: a batch that applied its ops one
// statement at a time (a send's INSERT, a lock's SELECT … FOR UPDATE SKIP
// LOCKED and UPDATE, a complete's DELETE) spent its time waiting for
// round trips, not for the disk or the CPU, and on a loaded machine each
// round trip costs a scheduling delay on both sides. So, on PostgreSQL,
// a run of consecutive ops of one kind on one queue is applied with a
// statement per run instead of per op: the run's sends as one INSERT …
// SELECT FROM unnest(…), its locks as one SELECT of the queue's head
// rows and one UPDATE, its completes as one DELETE … USING unnest(…).
// Each run decides exactly as the op-at-a-time path (queue.go) would,
// op after op in the batch's order, and writes only what those decisions
// call for, so the outcome is the same; only consecutive ops are joined,
// so an op still sees every op before it. SQLite keeps the op-at-a-time
// path: its statements are function calls on a prepared statement, with
// no round trip to save.

// pgRunLen is how many ops from idx[0] on form one set-based run: ops of
// idx[0]'s kind that a run applies, in a row. 0 means idx[0] runs alone
// through the op-at-a-time path.
func pgRunLen(ops []store.QueueOp, idx []int) int {
	first := ops[idx[0]]
	var same func(op store.QueueOp) bool
	switch first.Kind {
	case store.QueueSend:
		same = func(op store.QueueOp) bool { return op.Kind == store.QueueSend }
	case store.QueueLock:
		// A session's holder locks its session's messages, for as long
		// as the session is held: that stays op at a time.
		if first.SessionID != "" {
			return 0
		}
		same = func(op store.QueueOp) bool {
			return op.Kind == store.QueueLock && op.SessionID == "" && op.DeadLetter == first.DeadLetter
		}
	case store.QueueComplete:
		same = func(op store.QueueOp) bool { return op.Kind == store.QueueComplete }
	default:
		return 0
	}
	n := 1
	for n < len(idx) && same(ops[idx[n]]) {
		n++
	}
	return n
}

// applySendsAndCompletes applies, when idx starts with sends and
// completes mixed (as concurrent requests arrive), all of them up to the
// first op of another kind as two runs, the completes' and the sends',
// and returns how many it applied; 0 when it applied none. That gives the
// same results as applying them in order only when no send can meet its
// queue's quota whatever the order (completes only shrink the queue, and
// sends change nothing that a complete reads): so only when the queue's
// size now plus every one of those sends' messages stays within each
// send's MaxSizeBytes. Sends keep their order among themselves, and
// completes theirs.
func (q *queueTx) applySendsAndCompletes(g *queueGroup, ops []store.QueueOp, idx []int, results []store.QueueResult) (int, error) {
	n := 0
	var sends, completes []int
	var total int64
	for n < len(idx) {
		op := ops[idx[n]]
		switch op.Kind {
		case store.QueueSend:
			sends = append(sends, idx[n])
			for _, m := range op.Messages {
				total += int64(len(m.Body) + len(m.Properties))
			}
		case store.QueueComplete:
			completes = append(completes, idx[n])
		default:
			goto done
		}
		n++
	}
done:
	if len(sends) == 0 || len(completes) == 0 {
		return 0, nil
	}
	for _, i := range sends {
		if limit := ops[i].Limits.MaxSizeBytes; limit > 0 && g.size+g.delta+total > limit {
			return 0, nil
		}
	}
	if err := q.completeRun(g, ops, completes, results); err != nil {
		return 0, err
	}
	if err := q.sendRun(g, ops, sends, results); err != nil {
		return 0, err
	}
	return n, nil
}

// applyRun applies the run run (pgRunLen ops) of the group g.
func (q *queueTx) applyRun(g *queueGroup, ops []store.QueueOp, run []int, results []store.QueueResult) error {
	switch ops[run[0]].Kind {
	case store.QueueSend:
		return q.sendRun(g, ops, run, results)
	case store.QueueLock:
		return q.lockRun(g, ops, run, results)
	default:
		return q.completeRun(g, ops, run, results)
	}
}

// sendRun is send (queue.go) for a run of sends: at most one read of the
// duplicate detection history, one INSERT of every stored message and one
// upsert of the history.
func (q *queueTx) sendRun(g *queueGroup, ops []store.QueueOp, run []int, results []store.QueueResult) error {
	if !g.exists {
		for _, i := range run {
			results[i] = opErr(ops[i], store.ErrNotFound)
		}
		return nil
	}
	// The history this batch has not written: one read for every id the
	// run's ops might look up.
	var ask []string
	asked := map[string]bool{}
	for _, i := range run {
		op := ops[i]
		if !op.Limits.DuplicateDetection {
			continue
		}
		for _, m := range op.Messages {
			if m.MessageID != "" && !g.seenIDs[m.MessageID] && !asked[m.MessageID] {
				asked[m.MessageID] = true
				ask = append(ask, m.MessageID)
			}
		}
	}
	stored := map[string]bool{}
	if len(ask) > 0 {
		rows, err := q.query(`SELECT message_id FROM queue_dedup WHERE queue_key = ? AND message_id = ANY(?::text[]) AND expires > ?`,
			g.key, ask, q.time(q.now))
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			stored[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}

	// Decide, op after op, as send does.
	type row struct {
		op, msg int // index in ops, in the op's Messages
		m       store.QueueMessage
	}
	var (
		rows               []row
		dedupIDs           []string
		dedupExpires       []time.Time
		outs               = map[int][]store.QueueMessage{}
		visible            []time.Time
		scheduled, expires []*time.Time
		msgIDs, sessionIDs []string
		bodies, props      [][]byte
		sizes              []int64
	)
	for _, i := range run {
		op := ops[i]
		lim := op.Limits
		window := lim.DuplicateWindow
		if window == 0 {
			window = store.DefaultDuplicateWindow
		}
		plan, _ := decideSend(g, op, func(id string) (bool, error) { return stored[id], nil }) // read above: no error
		if !plan.fits {
			results[i] = opErr(op, store.ErrQuotaExceeded)
			continue
		}
		dups := plan.dups
		out := duplicatesAnswered(op, dups)
		d := 0
		for k, m := range op.Messages {
			if d < len(dups) && dups[d] == k {
				d++
				continue
			}
			m = q.stampSent(op, m)
			rows = append(rows, row{op: i, msg: k, m: m})
			active := m.EnqueuedAt // when it becomes deliverable, as in send
			if !m.ScheduledAt.IsZero() {
				active = m.ScheduledAt
			}
			visible = append(visible, active)
			msgIDs = append(msgIDs, m.MessageID)
			bodies = append(bodies, m.Body)
			props = append(props, m.Properties)
			sizes = append(sizes, m.Size)
			scheduled = append(scheduled, timePtr(m.ScheduledAt))
			expires = append(expires, timePtr(m.ExpiresAt))
			sessionIDs = append(sessionIDs, m.SessionID)
			if lim.DuplicateDetection && m.MessageID != "" {
				dedupIDs = append(dedupIDs, m.MessageID)
				dedupExpires = append(dedupExpires, normTime(q.now.Add(window)))
			}
			out[k] = m
		}
		plan.record(g)
		outs[i] = out
		results[i] = store.QueueResult{Messages: out, Duplicates: dups}
	}

	// Write. The rows are inserted in the order given (ORDER BY ord), so
	// their sequence numbers rise in that order; RETURNING gives them in
	// that order too, which the loop below checks.
	if len(rows) > 0 {
		res, err := q.query(`INSERT INTO queue_messages (queue_key, dead_letter, visible, message_id, body, properties, size, enqueued, scheduled, expires, delivery_count, lock_token, locked_until, dl_reason, dl_description, session_id)
SELECT ?, 0, u.visible, u.message_id, u.body, u.properties, u.size, ?, u.scheduled, u.expires, 0, NULL, NULL, '', '', u.session_id
FROM unnest(?::timestamptz[], ?::text[], ?::bytea[], ?::bytea[], ?::bigint[], ?::timestamptz[], ?::timestamptz[], ?::text[])
 WITH ORDINALITY AS u(visible, message_id, body, properties, size, scheduled, expires, session_id, ord)
ORDER BY u.ord
RETURNING seq, size`,
			g.key, q.time(q.now), visible, msgIDs, bodies, props, sizes, scheduled, expires, sessionIDs)
		if err != nil {
			return err
		}
		n := 0
		var last int64
		for res.Next() {
			var seq, size int64
			if err := res.Scan(&seq, &size); err != nil {
				res.Close()
				return err
			}
			if n >= len(rows) || seq <= last || size != rows[n].m.Size {
				res.Close()
				return fmt.Errorf("insert of %d messages returned an unexpected row %d (seq %d)", len(rows), n, seq)
			}
			r := rows[n]
			outs[r.op][r.msg].SequenceNumber = seq
			last = seq
			n++
		}
		res.Close()
		if err := res.Err(); err != nil {
			return err
		}
		if n != len(rows) {
			return fmt.Errorf("insert of %d messages returned %d rows", len(rows), n)
		}
	}
	if len(dedupIDs) > 0 {
		if _, err := q.exec(`INSERT INTO queue_dedup (queue_key, message_id, expires)
SELECT ?, u.message_id, u.expires FROM unnest(?::text[], ?::timestamptz[]) AS u(message_id, expires)
ON CONFLICT (queue_key, message_id) DO UPDATE SET expires = excluded.expires`,
			g.key, dedupIDs, dedupExpires); err != nil {
			return err
		}
	}
	return nil
}

// stampSent is what send stores of the message m of op: its queue, size,
// times and a fresh delivery state.
func (q *queueTx) stampSent(op store.QueueOp, m store.QueueMessage) store.QueueMessage {
	lim := op.Limits
	m.QueueID, m.DeadLetter = op.QueueID, false
	m.Body, m.Properties = nonNil(m.Body), nonNil(m.Properties)
	m.Size = int64(len(m.Body) + len(m.Properties))
	m.EnqueuedAt = q.now
	m.ScheduledAt = normZero(m.ScheduledAt)
	active := m.EnqueuedAt
	if m.ScheduledAt.After(active) {
		active = m.ScheduledAt
	} else {
		m.ScheduledAt = time.Time{} // due already: not scheduled
	}
	ttl := m.TimeToLive
	if lim.DefaultTimeToLive > 0 && (ttl == 0 || ttl > lim.DefaultTimeToLive) {
		ttl = lim.DefaultTimeToLive
	}
	m.ExpiresAt = time.Time{}
	if ttl > 0 {
		m.ExpiresAt = normTime(active.Add(ttl))
	}
	m.TimeToLive, m.DeliveryCount, m.LockToken, m.LockedUntil = 0, 0, "", time.Time{}
	m.DeadLetterReason, m.DeadLetterDescription = "", ""
	return m
}

// timePtr is t for a nullable timestamp array: nil when zero.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = normTime(t)
	return &t
}

// lockRun is receive (queue.go) for a run of Locks on one queue (or its
// dead-letter queue), outside sessions: it reads the queue's head rows a
// run at a time (SKIP LOCKED, after the last row it dealt with), hands
// them out in sequence order, one per op, moving or dropping the expired
// and over-delivered ones in front as receive does (each op gives up
// after store.QueueSweepLimit of those), and writes every lock in one
// UPDATE.
func (q *queueTx) lockRun(g *queueGroup, ops []store.QueueOp, run []int, results []store.QueueResult) error {
	first := ops[run[0]]
	head := `SELECT ` + queueMessageCols + ` FROM queue_messages WHERE queue_key = ? AND dead_letter = ? AND visible <= ? AND seq > ? ORDER BY seq LIMIT ? FOR UPDATE SKIP LOCKED`
	var (
		seqs   []int64
		tokens []string
		untils []time.Time
		after  int64 // the last row read
		k      int   // the op being served: run[k]
		swept  int   // expired or over-delivered rows that op dealt with
	)
	for k < len(run) {
		want := len(run) - k
		rows, err := q.query(head, g.key, boolInt(first.DeadLetter), q.time(q.now), after, want)
		if err != nil {
			return err
		}
		var got []store.QueueMessage
		for rows.Next() {
			m, err := scanQueueMessage(rows, first.QueueID)
			if err != nil {
				rows.Close()
				return err
			}
			got = append(got, m)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, m := range got {
			after = m.SequenceNumber
			if k == len(run) {
				break // rows read for ops that gave up: left as they are
			}
			op := ops[run[k]]
			lim := op.Limits
			if !op.DeadLetter {
				var err error
				handled := true
				switch {
				case !m.ExpiresAt.IsZero() && !m.ExpiresAt.After(q.now):
					if lim.DeadLetterOnExpiration {
						err = q.deadLetter(m.SequenceNumber, store.DeadLetterTTLExpired, "The message expired and was dead lettered.")
						break
					}
					var held bool
					if held, err = q.holdState(g); err == nil && held {
						err = q.drop(g, m)
					} // else left for a later receive (lockOnly)
				case m.DeliveryCount >= lim.MaxDeliveryCount:
					err = q.deadLetter(m.SequenceNumber, store.DeadLetterMaxDeliveryCount,
						fmt.Sprintf("Message could not be consumed after %d delivery attempts.", lim.MaxDeliveryCount))
				default:
					handled = false
				}
				if err != nil {
					return err
				}
				if handled {
					// receive gives up once it has dealt with
					// QueueSweepLimit rows, before reading another.
					if swept++; swept >= store.QueueSweepLimit {
						results[run[k]] = opErr(op, store.ErrNotFound)
						k, swept = k+1, 0
					}
					continue
				}
			}
			m.DeliveryCount++
			lapsed := m.LockToken != ""
			m.LockToken, m.LockedUntil = op.LockToken, normTime(q.now.Add(lim.LockDuration))
			seqs = append(seqs, m.SequenceNumber)
			tokens = append(tokens, m.LockToken)
			untils = append(untils, m.LockedUntil)
			results[run[k]] = store.QueueResult{Messages: []store.QueueMessage{m}, LockedUntil: m.LockedUntil, LockExpired: lapsed}
			k, swept = k+1, 0
		}
		if len(got) < want {
			break // the queue has nothing more to give now
		}
	}
	for ; k < len(run); k++ {
		results[run[k]] = opErr(ops[run[k]], store.ErrNotFound)
	}
	if len(seqs) == 0 {
		return nil
	}
	// The locks' UPDATE is a write only: it goes with the COMMIT, or
	// before the batch's next statement (atCommit). Its values are
	// constants: sequence numbers, tokens (textOK: checkQueueOp) and
	// times in RFC 3339, which timestamptz reads to the microsecond.
	var b strings.Builder
	b.WriteString("UPDATE queue_messages AS m SET delivery_count = m.delivery_count + 1, lock_token = u.token, locked_until = u.until, visible = u.until FROM (VALUES ")
	for k := range seqs {
		if k > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(%d::bigint, %s, %s::timestamptz)", seqs[k], pgLiteral(tokens[k]), pgLiteral(untils[k].UTC().Format(time.RFC3339Nano)))
	}
	b.WriteString(") AS u(seq, token, until) WHERE m.seq = u.seq; ")
	q.atCommit.WriteString(b.String())
	return nil
}

// holdState tells whether the group g holds its queue_state row, which
// dropping a message (a size change) needs. A group of Locks only
// (lockOnly) takes it now if no one holds it, and never waits for it.
func (q *queueTx) holdState(g *queueGroup) (bool, error) {
	if !g.unlocked {
		return true, nil
	}
	if !g.stateTried {
		g.stateTried = true
		var one int
		err := q.queryRow(`SELECT 1 FROM queue_state WHERE queue_key = ? FOR UPDATE SKIP LOCKED`, g.key).Scan(&one)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return false, err
		}
		g.stateHeld = err == nil
	}
	return g.stateHeld, nil
}

// completeRun is complete (queue.go) for a run of completes: one DELETE
// of every message held as its op says, then, for the ops that deleted
// nothing, lost's reason. A run naming one sequence number twice runs op
// at a time, so that the second op's answer is the one complete gives.
func (q *queueTx) completeRun(g *queueGroup, ops []store.QueueOp, run []int, results []store.QueueResult) error {
	seen := make(map[int64]bool, len(run))
	for _, i := range run {
		if seen[ops[i].SequenceNumber] {
			for _, i := range run {
				r, err := q.complete(g, ops[i])
				if err != nil {
					return err
				}
				results[i] = r
			}
			return nil
		}
		seen[ops[i].SequenceNumber] = true
	}
	seqs := make([]int64, len(run))
	tokens := make([]string, len(run))
	dls := make([]int64, len(run))
	for k, i := range run {
		op := ops[i]
		token := op.LockToken
		if !textOK(token) {
			token = "" // matches no lock, as in held
		}
		seqs[k], tokens[k], dls[k] = op.SequenceNumber, token, boolInt(op.DeadLetter)
	}
	rows, err := q.query(`DELETE FROM queue_messages AS m USING unnest(?::bigint[], ?::text[], ?::integer[]) AS c(seq, token, dl)
WHERE m.seq = c.seq AND m.queue_key = ? AND m.dead_letter = c.dl AND m.lock_token = c.token AND m.locked_until > ?
RETURNING m.seq, m.size`, seqs, tokens, dls, g.key, q.time(q.now))
	if err != nil {
		return err
	}
	deleted := make(map[int64]int64, len(run))
	for rows.Next() {
		var seq, size int64
		if err := rows.Scan(&seq, &size); err != nil {
			rows.Close()
			return err
		}
		deleted[seq] = size
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, i := range run {
		size, ok := deleted[ops[i].SequenceNumber]
		if !ok {
			r, err := q.lost(ops[i])
			if err != nil {
				return err
			}
			results[i] = r
			continue
		}
		g.delta -= size
		results[i] = store.QueueResult{}
	}
	return nil
}

// beginPGQueueTx opens a queue batch's transaction on a connection of its
// own, in one round trip: BEGIN; for a light batch SET LOCAL
// synchronous_commit = off; and the locks of the queue_state rows of
// locked. A statement without arguments goes to the server as one
// simple-protocol query (pgx's Exec), which may hold several statements;
// database/sql's BeginTx would spend a round trip on BEGIN alone.
// endPGQueueTx must end it.
func beginPGQueueTx(ctx context.Context, db *sql.DB, light bool, locked []string) (*sql.Conn, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("BEGIN; ")
	if light {
		// Only this transaction: the session keeps its setting.
		b.WriteString("SET LOCAL synchronous_commit = off; ")
	}
	for _, key := range locked {
		fmt.Fprintf(&b, "SELECT 1 FROM queue_state WHERE queue_key = %s FOR UPDATE; ", pgLiteral(key))
	}
	if _, err := conn.ExecContext(ctx, b.String()); err != nil {
		_ = endPGQueueTx(conn, false, "")
		return nil, err
	}
	return conn, nil
}

// endPGQueueTx commits (after the statements stmts, each ended by "; ")
// or rolls back, in one round trip, and gives the connection back to the
// pool. The batch's caller may be gone: ending does not depend on its
// context. PostgreSQL answers a COMMIT of a failed transaction with
// ROLLBACK and no error, so a commit goes after SELECT 1, which fails in a
// failed transaction. A connection whose transaction may still be open is
// closed for good instead (driver.ErrBadConn), never reused.
func endPGQueueTx(conn *sql.Conn, commit bool, stmts string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	end := "ROLLBACK"
	if commit {
		end = "SELECT 1; " + stmts + "COMMIT"
	}
	_, err := conn.ExecContext(ctx, end)
	if err != nil && commit {
		// The transaction is still open if a statement before the COMMIT
		// failed; after a failed COMMIT this is a no-op.
		_, err2 := conn.ExecContext(ctx, "ROLLBACK")
		if err2 != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	} else if err != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	_ = conn.Close()
	return err
}

// pgLiteral is s as a PostgreSQL escape string constant (E'…'), for the
// statements sent without arguments: backslashes and quotes doubled, which
// means the same whatever standard_conforming_strings says
// (https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-STRINGS-ESCAPE).
// s must be valid UTF-8 without NUL (textOK), as every queue key and
// encoding/json's output are.
func pgLiteral(s string) string {
	return "E'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", "''") + "'"
}
