package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// The durable outbox (store.Outbox). Nothing caches it, so every write
// goes through appendLog and leaves the generation alone.
//
// DueOutbox claims what it returns with one UPDATE ... RETURNING that
// moves the messages' next_attempt to now + OutboxLease: until the lease
// runs out (or the attempt is recorded) no DueOutbox returns them again,
// and, because a claimed message is still the oldest pending one of its
// Key, none returns the next message of that Key either. SQLite runs one
// writer at a time, so that is all. On PostgreSQL the subquery that picks
// the messages locks them FOR UPDATE SKIP LOCKED: a concurrent DueOutbox
// in another process passes over rows being claimed instead of waiting
// for them, and one that reaches a row after its claim committed re-checks
// it and finds it no longer due. Both backends thus behave the same from
// the caller's view: one message goes to one caller per lease.

// OutboxLease is how long DueOutbox claims the messages it returns. It is
// longer than any delivery attempt may take (the deliverer's are bounded
// at 30 s), so a message is never delivered by two callers at once; when
// a deliverer dies mid-attempt, its messages are due again after it.
const OutboxLease = 2 * time.Minute

const (
	// outboxListDefault and outboxListMax bound ListOutbox.
	outboxListDefault = 100
	outboxListMax     = 1000
	// outboxDueMax bounds one DueOutbox.
	outboxDueMax = 1000
)

const outboxCols = `seq, id, tenant_id, topic, order_key, url, content_type, body, auth_ref, created, next_attempt, deadline,
attempts, state, last_status, last_error, delivered_at`

func scanOutboxMessage(sc interface{ Scan(...any) error }) (store.OutboxMessage, error) {
	var (
		m     store.OutboxMessage
		state string
	)
	err := sc.Scan(&m.Seq, &m.ID, &m.TenantID, &m.Topic, &m.Key, &m.URL, &m.ContentType, &m.Body, &m.AuthRef, timeCol{&m.Created},
		timeCol{&m.NextAttempt}, nullTimeCol{&m.Deadline}, &m.Attempts, &state, &m.LastStatus, &m.LastError, nullTimeCol{&m.DeliveredAt})
	m.State = store.OutboxState(state)
	if len(m.Body) == 0 {
		m.Body = nil
	}
	return m, err
}

// outboxHead is the condition that message m is the oldest pending
// message of its key.
const outboxHead = `NOT EXISTS (SELECT 1 FROM outbox_messages p
WHERE p.tenant_id = m.tenant_id AND p.order_key = m.order_key AND p.state = 'pending' AND p.seq < m.seq)`

// EnqueueOutbox implements store.Outbox.
func (s *Store) EnqueueOutbox(ctx context.Context, m store.OutboxMessage) (store.OutboxMessage, error) {
	const op = "enqueue outbox message"
	if err := required(op, [2]string{"id", m.ID}, [2]string{"tenant id", m.TenantID}, [2]string{"url", m.URL}); err != nil {
		return store.OutboxMessage{}, err
	}
	if err := checkText(op, m.ID, m.TenantID, m.Topic, m.Key, m.URL, m.ContentType, m.AuthRef); err != nil {
		return store.OutboxMessage{}, err
	}
	at := now()
	if !m.Created.IsZero() {
		at = normTime(m.Created)
	}
	m.Created = at
	if m.Key == "" {
		m.Key = m.ID
	}
	if m.NextAttempt.IsZero() {
		m.NextAttempt = at
	}
	m.NextAttempt = normTime(m.NextAttempt)
	if !m.Deadline.IsZero() {
		m.Deadline = normTime(m.Deadline)
	}
	m.Attempts, m.State, m.LastStatus, m.LastError, m.DeliveredAt = 0, store.OutboxPending, 0, "", time.Time{}
	if len(m.Body) == 0 {
		m.Body = nil
	}
	err := s.appendLog(ctx, false, func(r runner) error {
		return r.queryRow(ctx, `INSERT INTO outbox_messages (id, tenant_id, topic, order_key, url, content_type, body, auth_ref,
created, next_attempt, deadline, attempts, state, last_status, last_error, delivered_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 'pending', 0, '', NULL) RETURNING seq`,
			m.ID, m.TenantID, m.Topic, m.Key, m.URL, m.ContentType, nonNil(m.Body), m.AuthRef,
			s.d.BindTime(m.Created), s.d.BindTime(m.NextAttempt), s.nullTime(m.Deadline)).Scan(&m.Seq)
	})
	if err != nil {
		return store.OutboxMessage{}, s.fail(op, err)
	}
	return m, nil
}

// queryOutbox runs a query of outboxCols and appends the messages it
// returns to out.
func queryOutbox(ctx context.Context, r runner, out []store.OutboxMessage, query string, args ...any) ([]store.OutboxMessage, error) {
	rows, err := r.query(ctx, query, args...)
	if err != nil {
		return out, err
	}
	defer rows.Close()
	for rows.Next() {
		m, err := scanOutboxMessage(rows)
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// DueOutbox implements store.Outbox: it claims the messages it returns
// until now + OutboxLease (their NextAttempt, as returned).
func (s *Store) DueOutbox(ctx context.Context, now time.Time, limit int) ([]store.OutboxMessage, error) {
	const op = "due outbox messages"
	if limit <= 0 {
		return nil, nil
	}
	limit = min(limit, outboxDueMax)
	at := normTime(now)
	lock := ""
	if s.isPostgres() {
		lock = " FOR UPDATE OF m SKIP LOCKED"
	}
	var out []store.OutboxMessage
	err := s.appendLog(ctx, false, func(r runner) error {
		var err error
		out, err = queryOutbox(ctx, r, out[:0], `UPDATE outbox_messages SET next_attempt = ? WHERE seq IN (
SELECT m.seq FROM outbox_messages m WHERE m.state = 'pending' AND m.next_attempt <= ? AND `+outboxHead+`
ORDER BY m.seq LIMIT ?`+lock+`)
RETURNING `+outboxCols, s.d.BindTime(at.Add(OutboxLease)), s.d.BindTime(at), limit)
		return err
	})
	if err != nil {
		return nil, s.fail(op, err)
	}
	// RETURNING follows no ORDER BY.
	slices.SortFunc(out, func(a, b store.OutboxMessage) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// RecordOutboxAttempt implements store.Outbox.
func (s *Store) RecordOutboxAttempt(ctx context.Context, a store.OutboxAttempt, state store.OutboxState, next time.Time) error {
	const op = "record outbox attempt"
	if a.MessageID == "" || !textOK(a.MessageID) {
		return notFound(op)
	}
	switch state {
	case store.OutboxPending, store.OutboxDelivered, store.OutboxFailed:
	default:
		return fmt.Errorf("sqlstore: %s: unknown state %q", op, state)
	}
	if err := checkText(op, a.Error); err != nil {
		return err
	}
	at := now()
	if !a.At.IsZero() {
		at = normTime(a.At)
	}
	if next.IsZero() {
		next = at
	}
	var delivered any
	if state == store.OutboxDelivered {
		delivered = s.d.BindTime(at)
	}
	err := s.appendLog(ctx, true, func(r runner) error {
		// Only a pending message moves; the update is what decides a race
		// between two deliverers recording the same message.
		res, err := r.exec(ctx, `UPDATE outbox_messages SET state = ?, next_attempt = ?,
attempts = attempts + 1, last_status = ?, last_error = ?, delivered_at = ?
WHERE id = ? AND state = 'pending'`,
			string(state), s.d.BindTime(normTime(next)), a.Status, a.Error, delivered, a.MessageID)
		if err != nil {
			return err
		}
		if err := mustAffect(res); err != nil {
			return err
		}
		_, err = r.exec(ctx, `INSERT INTO outbox_attempts (message_id, at, status, error, duration_ns) VALUES (?, ?, ?, ?, ?)`,
			a.MessageID, s.d.BindTime(at), a.Status, a.Error, int64(a.Duration))
		return err
	})
	return s.fail(op, err)
}

// NextOutboxDue implements store.Outbox. Only the oldest pending message
// of each key counts: a later one cannot be returned before it, and
// counting it would wake a deliverer to find nothing due.
func (s *Store) NextOutboxDue(ctx context.Context) (time.Time, bool, error) {
	const op = "next outbox due"
	var at time.Time
	err := s.read(func(r runner) error {
		return r.queryRow(ctx, `SELECT MIN(m.next_attempt) FROM outbox_messages m WHERE m.state = 'pending' AND `+outboxHead).
			Scan(nullTimeCol{&at})
	})
	if err != nil {
		return time.Time{}, false, s.fail(op, err)
	}
	return at, !at.IsZero(), nil
}

// OutboxBacklog implements store.Outbox; the (state, next_attempt) index
// serves it.
func (s *Store) OutboxBacklog(ctx context.Context) (int64, time.Time, error) {
	const op = "outbox backlog"
	var n int64
	var oldest time.Time
	err := s.read(func(r runner) error {
		return r.queryRow(ctx, `SELECT COUNT(*), MIN(created) FROM outbox_messages WHERE state = 'pending'`).
			Scan(&n, nullTimeCol{&oldest})
	})
	if err != nil {
		return 0, time.Time{}, s.fail(op, err)
	}
	return n, oldest, nil
}

// ListOutbox implements store.Outbox.
func (s *Store) ListOutbox(ctx context.Context, q store.OutboxQuery) ([]store.OutboxMessage, error) {
	const op = "list outbox messages"
	if err := required(op, [2]string{"tenant id", q.TenantID}); err != nil {
		return nil, err
	}
	if !textOK(q.TenantID, q.Topic, q.Key) {
		return nil, nil
	}
	conds := []string{"tenant_id = ?"}
	args := []any{q.TenantID}
	if q.Topic != "" {
		conds = append(conds, "topic = ?")
		args = append(args, q.Topic)
	}
	if q.Key != "" {
		conds = append(conds, "order_key = ?")
		args = append(args, q.Key)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = outboxListDefault
	}
	args = append(args, min(limit, outboxListMax))
	var out []store.OutboxMessage
	err := s.read(func(r runner) error {
		var err error
		out, err = queryOutbox(ctx, r, out, `SELECT `+outboxCols+` FROM outbox_messages WHERE `+strings.Join(conds, " AND ")+
			` ORDER BY seq DESC LIMIT ?`, args...)
		return err
	})
	if err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

// ListOutboxAttempts implements store.Outbox.
func (s *Store) ListOutboxAttempts(ctx context.Context, messageID string) ([]store.OutboxAttempt, error) {
	const op = "list outbox attempts"
	if messageID == "" || !textOK(messageID) {
		return nil, nil
	}
	var out []store.OutboxAttempt
	err := s.read(func(r runner) error {
		rows, err := r.query(ctx, `SELECT message_id, at, status, error, duration_ns FROM outbox_attempts WHERE message_id = ? ORDER BY id`, messageID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				a  store.OutboxAttempt
				ns int64
			)
			if err := rows.Scan(&a.MessageID, timeCol{&a.At}, &a.Status, &a.Error, &ns); err != nil {
				return err
			}
			a.Duration = time.Duration(ns)
			out = append(out, a)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}
