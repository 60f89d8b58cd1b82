package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// GetLockout implements store.Lockouts.
func (s *Store) GetLockout(ctx context.Context, tenantID, userID string) (store.Lockout, error) {
	const op = "get lockout"
	l := store.Lockout{TenantID: tenantID, UserID: userID}
	if !textOK(tenantID, userID) {
		return l, nil // nothing can be stored under such keys
	}
	var recent string
	err := s.read(func(r runner) error {
		return r.queryRow(ctx, `SELECT failures, lockouts, locked_until, last_failure, recent, version
FROM sign_in_lockouts WHERE tenant_id = ? AND user_id = ?`, tenantID, userID).
			Scan(&l.Failures, &l.Lockouts, nullTimeCol{&l.LockedUntil}, nullTimeCol{&l.LastFailure}, &recent, &l.Version)
	})
	err = s.fail(op, err)
	if errors.Is(err, store.ErrNotFound) {
		return store.Lockout{TenantID: tenantID, UserID: userID}, nil
	}
	if err != nil {
		return store.Lockout{}, err
	}
	l.Recent = strings.Fields(recent)
	return l, nil
}

// PutLockout implements store.Lockouts. Each case is one statement, so the
// database decides between concurrent writers: the first insert wins the
// primary key (the others affect no row), and an update applies only to
// the version it was based on.
func (s *Store) PutLockout(ctx context.Context, l store.Lockout) (store.Lockout, error) {
	const op = "put lockout"
	if err := required(op, [2]string{"tenant id", l.TenantID}, [2]string{"user id", l.UserID}); err != nil {
		return store.Lockout{}, err
	}
	for _, d := range l.Recent {
		if d == "" || strings.ContainsAny(d, " \t\r\n") {
			return store.Lockout{}, fmt.Errorf("sqlstore: %s: a recent digest is empty or holds a space", op)
		}
	}
	recent := strings.Join(l.Recent, " ")
	if err := checkText(op, l.TenantID, l.UserID, recent); err != nil {
		return store.Lockout{}, err
	}
	if l.Failures < 0 || l.Lockouts < 0 || l.Version < 0 {
		return store.Lockout{}, fmt.Errorf("sqlstore: %s: negative count or version", op)
	}
	err := s.appendLog(ctx, false, func(r runner) error {
		var res interface{ RowsAffected() (int64, error) }
		var err error
		if l.Version == 0 {
			res, err = r.exec(ctx, `INSERT INTO sign_in_lockouts
(tenant_id, user_id, failures, lockouts, locked_until, last_failure, recent, version)
VALUES (?, ?, ?, ?, ?, ?, ?, 1) ON CONFLICT (tenant_id, user_id) DO NOTHING`,
				l.TenantID, l.UserID, l.Failures, l.Lockouts, s.nullTime(l.LockedUntil), s.nullTime(l.LastFailure), recent)
		} else {
			res, err = r.exec(ctx, `UPDATE sign_in_lockouts
SET failures = ?, lockouts = ?, locked_until = ?, last_failure = ?, recent = ?, version = version + 1
WHERE tenant_id = ? AND user_id = ? AND version = ?`,
				l.Failures, l.Lockouts, s.nullTime(l.LockedUntil), s.nullTime(l.LastFailure), recent, l.TenantID, l.UserID, l.Version)
		}
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("lockout state changed since version %d: %w", l.Version, store.ErrPrecondition)
		}
		return nil
	})
	if err != nil {
		return store.Lockout{}, s.fail(op, err)
	}
	l.Version++
	l.LockedUntil, l.LastFailure = normIfSet(l.LockedUntil), normIfSet(l.LastFailure)
	return l, nil
}

// normIfSet is normTime for a time that may be zero (never).
func normIfSet(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return normTime(t)
}
