package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

var _ store.SignedOutSessions = (*Store)(nil)

// maxSessionIDLen bounds a signed-out session's id: the ids recorded are
// hashes or random tokens of a few dozen characters.
const maxSessionIDLen = 128

// SignOutSession implements store.SignedOutSessions. The purge and the
// insert are one transaction, so on PostgreSQL other nodes hear of both
// in one notification; the write moves the generation, which is what
// makes every node's cached "not signed out" answer stale.
func (s *Store) SignOutSession(ctx context.Context, id string, expires, at time.Time) error {
	const op = "sign out session"
	if err := required(op, [2]string{"id", id}); err != nil {
		return err
	}
	if len(id) > maxSessionIDLen {
		return fmt.Errorf("sqlstore: %s: id longer than %d", op, maxSessionIDLen)
	}
	if err := checkText(op, id); err != nil {
		return err
	}
	if expires.IsZero() || at.IsZero() {
		return fmt.Errorf("sqlstore: %s: expiry and now are required", op)
	}
	err := s.write(ctx, true, func(r runner) error {
		if _, err := r.exec(ctx, `DELETE FROM signed_out_sessions WHERE expires <= ?`, s.bindTime(at, at)); err != nil {
			return err
		}
		_, err := r.exec(ctx, `INSERT INTO signed_out_sessions (id, expires) VALUES (?, ?)
ON CONFLICT (id) DO UPDATE SET expires = CASE WHEN excluded.expires > signed_out_sessions.expires
THEN excluded.expires ELSE signed_out_sessions.expires END`, id, s.bindTime(expires, expires))
		return err
	})
	return s.fail(op, err)
}

// SessionSignedOut implements store.SignedOutSessions.
func (s *Store) SessionSignedOut(ctx context.Context, id string, at time.Time) (bool, error) {
	if id == "" || len(id) > maxSessionIDLen || !textOK(id) {
		return false, nil // nothing can be stored under such an id
	}
	var n int
	err := s.read(func(r runner) error {
		return r.queryRow(ctx, `SELECT COUNT(*) FROM signed_out_sessions WHERE id = ? AND expires > ?`,
			id, s.bindTime(at, now())).Scan(&n)
	})
	if err != nil {
		return false, s.fail("session signed out", err)
	}
	return n > 0, nil
}
