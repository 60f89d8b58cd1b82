package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Message sessions (store.QueueLockSession and the other session ops).
//
// A session is a queue_sessions row: its lock (token and expiry) and its
// state. Messages name their session in queue_messages.session_id. A
// message that a session's holder locks is locked until the session's
// lock ends, and renewing or releasing the session moves the locks of its
// locked messages with it, so that a message lock never outlives the
// session lock it was taken under.

// opErrIf is err when it is a database failure, and else the op's own
// failure kind.
func opErrIf(op store.QueueOp, kind, err error) (store.QueueResult, error) {
	if err != nil {
		return store.QueueResult{}, err
	}
	return opErr(op, kind), nil
}

// sessionHeld is the expiry of the op's session lock (SessionID held with
// SessionLockToken), or zero when that lock is not held.
func (q *queueTx) sessionHeld(op store.QueueOp) (time.Time, error) {
	var until time.Time
	query := `SELECT locked_until FROM queue_sessions WHERE queue_key = ? AND session_id = ? AND lock_token = ? AND locked_until > ?`
	if q.pg() {
		query += ` FOR UPDATE`
	}
	err := q.queryRow(query, fold(op.QueueID), op.SessionID, op.SessionLockToken, q.time(q.now)).Scan(nullTimeCol{&until})
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	return until, err
}

// lockSession accepts the named session, or the next available one.
func (q *queueTx) lockSession(g *queueGroup, op store.QueueOp) (store.QueueResult, error) {
	if !g.exists {
		return opErr(op, store.ErrNotFound), nil
	}
	sid := op.SessionID
	if sid == "" {
		// The session of the first deliverable message that no one holds.
		err := q.queryRow(`SELECT m.session_id FROM queue_messages m
WHERE m.queue_key = ? AND m.dead_letter = 0 AND m.visible <= ? AND m.session_id <> ''
 AND NOT EXISTS (SELECT 1 FROM queue_sessions s WHERE s.queue_key = m.queue_key AND s.session_id = m.session_id AND s.locked_until > ?)
ORDER BY m.seq LIMIT 1`, g.key, q.time(q.now), q.time(q.now)).Scan(&sid)
		if errors.Is(err, sql.ErrNoRows) {
			return opErr(op, store.ErrNotFound), nil
		}
		if err != nil {
			return store.QueueResult{}, err
		}
	} else {
		var until time.Time
		query := `SELECT locked_until FROM queue_sessions WHERE queue_key = ? AND session_id = ?`
		if q.pg() {
			query += ` FOR UPDATE`
		}
		err := q.queryRow(query, g.key, sid).Scan(nullTimeCol{&until})
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return store.QueueResult{}, err
		}
		if until.After(q.now) {
			return opErr(op, store.ErrLockLost), nil
		}
	}
	until := normTime(q.now.Add(op.Limits.LockDuration))
	if _, err := q.exec(`INSERT INTO queue_sessions (queue_key, session_id, lock_token, locked_until) VALUES (?, ?, ?, ?)
ON CONFLICT (queue_key, session_id) DO UPDATE SET lock_token = excluded.lock_token, locked_until = excluded.locked_until`,
		g.key, sid, op.LockToken, q.time(until)); err != nil {
		return store.QueueResult{}, err
	}
	return store.QueueResult{SessionID: sid, LockedUntil: until}, nil
}

// heldSession is the condition "the op's session, locked with its token,
// and the lock still valid", with its arguments.
func (q *queueTx) heldSession(op store.QueueOp) (string, []any) {
	return `queue_key = ? AND session_id = ? AND lock_token = ? AND locked_until > ?`,
		[]any{fold(op.QueueID), op.SessionID, op.SessionLockToken, q.time(q.now)}
}

// sessionMessagesLocked is the condition "a message of the op's session
// that is validly locked", which under a held session means locked by
// its holder.
const sessionMessagesLocked = `queue_key = ? AND dead_letter = 0 AND session_id = ? AND session_id <> '' AND lock_token IS NOT NULL AND locked_until > ?`

func (q *queueTx) renewSession(op store.QueueOp) (store.QueueResult, error) {
	until := normTime(q.now.Add(op.Limits.LockDuration))
	cond, args := q.heldSession(op)
	res, err := q.exec(`UPDATE queue_sessions SET locked_until = ? WHERE `+cond, append([]any{q.time(until)}, args...)...)
	if err != nil {
		return store.QueueResult{}, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return opErrIf(op, store.ErrLockLost, err)
	}
	// A deferred message keeps its visible: when its lock ends it is
	// deferred again, not deliverable.
	if _, err := q.exec(`UPDATE queue_messages SET locked_until = ?, visible = CASE WHEN deferred = 1 THEN visible ELSE ? END WHERE `+sessionMessagesLocked,
		q.time(until), q.time(until), fold(op.QueueID), op.SessionID, q.time(q.now)); err != nil {
		return store.QueueResult{}, err
	}
	return store.QueueResult{SessionID: op.SessionID, LockedUntil: until}, nil
}

func (q *queueTx) releaseSession(op store.QueueOp) (store.QueueResult, error) {
	cond, args := q.heldSession(op)
	res, err := q.exec(`UPDATE queue_sessions SET lock_token = NULL, locked_until = NULL WHERE `+cond, args...)
	if err != nil {
		return store.QueueResult{}, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return opErrIf(op, store.ErrLockLost, err)
	}
	// The session's locked messages are free again, their delivery not
	// counted.
	if _, err := q.exec(`UPDATE queue_messages SET lock_token = NULL, locked_until = NULL,
 delivery_count = CASE WHEN delivery_count > 0 THEN delivery_count - 1 ELSE 0 END,
 visible = CASE WHEN deferred = 1 THEN visible ELSE ? END
WHERE `+sessionMessagesLocked, q.time(q.now), fold(op.QueueID), op.SessionID, q.time(q.now)); err != nil {
		return store.QueueResult{}, err
	}
	// A session with no state and no lock is only its messages again.
	if _, err := q.exec(`DELETE FROM queue_sessions WHERE queue_key = ? AND session_id = ? AND state IS NULL`, fold(op.QueueID), op.SessionID); err != nil {
		return store.QueueResult{}, err
	}
	return store.QueueResult{SessionID: op.SessionID}, nil
}

func (q *queueTx) getSessionState(op store.QueueOp) (store.QueueResult, error) {
	cond, args := q.heldSession(op)
	var state []byte
	err := q.queryRow(`SELECT state FROM queue_sessions WHERE `+cond, args...).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return opErr(op, store.ErrLockLost), nil
	}
	if err != nil {
		return store.QueueResult{}, err
	}
	return store.QueueResult{SessionID: op.SessionID, SessionState: state}, nil
}

func (q *queueTx) setSessionState(g *queueGroup, op store.QueueOp) (store.QueueResult, error) {
	cond, args := q.heldSession(op)
	var old []byte
	err := q.queryRow(`SELECT state FROM queue_sessions WHERE `+cond, args...).Scan(&old)
	if errors.Is(err, sql.ErrNoRows) {
		return opErr(op, store.ErrLockLost), nil
	}
	if err != nil {
		return store.QueueResult{}, err
	}
	delta := int64(len(op.SessionState) - len(old))
	if lim := op.Limits.MaxSizeBytes; lim > 0 && delta > 0 && g.size+g.delta+delta > lim {
		return opErr(op, store.ErrQuotaExceeded), nil
	}
	var state any // NULL clears it
	if op.SessionState != nil {
		state = op.SessionState
	}
	if _, err := q.exec(`UPDATE queue_sessions SET state = ?, state_updated = ? WHERE `+cond,
		append([]any{state, q.time(q.now)}, args...)...); err != nil {
		return store.QueueResult{}, err
	}
	g.delta += delta
	return store.QueueResult{SessionID: op.SessionID}, nil
}

// PeekQueueSession implements store.Queues.
func (s *Store) PeekQueueSession(ctx context.Context, queueID, sessionID string, fromSequence int64, limit int) ([]store.QueueMessage, error) {
	if !textOK(queueID, sessionID) || limit <= 0 {
		return nil, nil
	}
	return s.peekQueue(ctx, "peek queue session "+queueID, queueID,
		`SELECT `+queueMessageCols+` FROM queue_messages WHERE queue_key = ? AND dead_letter = 0 AND session_id = ? AND session_id <> '' AND seq >= ? ORDER BY seq LIMIT ?`,
		fold(queueID), sessionID, fromSequence, limit)
}

// NextSessionEvent implements store.Queues.
func (s *Store) NextSessionEvent(ctx context.Context, queueID, sessionID string) (time.Time, bool, error) {
	var at time.Time
	if !textOK(queueID, sessionID) {
		return at, false, nil
	}
	err := s.read(func(r runner) error {
		if sessionID != "" {
			return r.queryRow(ctx, `SELECT MIN(visible) FROM queue_messages WHERE queue_key = ? AND dead_letter = 0 AND session_id = ? AND session_id <> '' AND visible < ?`,
				fold(queueID), sessionID, s.d.BindTime(deferredVisible)).Scan(nullTimeCol{&at})
		}
		// A message of a held session waits for the session's lock to end.
		return r.queryRow(ctx, `SELECT MIN(CASE WHEN s.locked_until IS NOT NULL AND s.locked_until > m.visible THEN s.locked_until ELSE m.visible END)
FROM queue_messages m LEFT JOIN queue_sessions s ON s.queue_key = m.queue_key AND s.session_id = m.session_id
WHERE m.queue_key = ? AND m.dead_letter = 0 AND m.session_id <> '' AND m.visible < ?`,
			fold(queueID), s.d.BindTime(deferredVisible)).Scan(nullTimeCol{&at})
	})
	if err != nil {
		return time.Time{}, false, s.fail("next session event "+queueID, err)
	}
	return at, !at.IsZero(), nil
}

// ListQueueSessions implements store.Queues.
func (s *Store) ListQueueSessions(ctx context.Context, queueID string, updatedAfter time.Time, skip, top int) ([]string, error) {
	if !textOK(queueID) || top <= 0 || skip < 0 {
		return nil, nil
	}
	var out []string
	err := s.read(func(r runner) error {
		var rows *sql.Rows
		var err error
		if updatedAfter.IsZero() {
			rows, err = r.query(ctx, `SELECT session_id FROM (
 SELECT DISTINCT session_id FROM queue_messages WHERE queue_key = ? AND dead_letter = 0 AND session_id <> ''
 UNION SELECT session_id FROM queue_sessions WHERE queue_key = ? AND state IS NOT NULL) AS sessions
ORDER BY session_id LIMIT ? OFFSET ?`, fold(queueID), fold(queueID), top, skip)
		} else {
			rows, err = r.query(ctx, `SELECT session_id FROM queue_sessions WHERE queue_key = ? AND state_updated > ? ORDER BY session_id LIMIT ? OFFSET ?`,
				fold(queueID), s.d.BindTime(normTime(updatedAfter)), top, skip)
		}
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			out = append(out, id)
		}
		return rows.Err()
	})
	return out, s.fail("list queue sessions "+queueID, err)
}
