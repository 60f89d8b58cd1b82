package sqlstore

import (
	"context"
	"encoding/json"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

const lockCols = `tenant_id, subscription_id, scope, name, level, notes, owners, created, updated`

func scanLock(sc interface{ Scan(...any) error }) (store.ManagementLock, error) {
	var l store.ManagementLock
	var owners string
	if err := sc.Scan(&l.TenantID, &l.SubscriptionID, &l.Scope, &l.Name, &l.Level, &l.Notes, &owners, timeCol{&l.Created}, timeCol{&l.Updated}); err != nil {
		return l, err
	}
	if err := json.Unmarshal([]byte(owners), &l.Owners); err != nil {
		return l, err
	}
	return l, nil
}

// PutManagementLock implements store.ManagementLocks: one upsert
// statement, so that concurrent writes of one lock never fail on the
// primary key.
func (s *Store) PutManagementLock(ctx context.Context, l store.ManagementLock) error {
	const op = "put management lock"
	if err := required(op, [2]string{"tenant id", l.TenantID}, [2]string{"subscription id", l.SubscriptionID},
		[2]string{"scope", l.Scope}, [2]string{"name", l.Name}, [2]string{"level", l.Level}); err != nil {
		return err
	}
	if err := checkText(op, l.TenantID, l.SubscriptionID, l.Scope, l.Name, l.Level, l.Notes); err != nil {
		return err
	}
	if err := checkText(op, l.Owners...); err != nil {
		return err
	}
	owners := l.Owners
	if owners == nil {
		owners = []string{}
	}
	ownersJSON, err := json.Marshal(owners)
	if err != nil {
		return err
	}
	err = s.appendLog(ctx, false, func(r runner) error {
		_, err := r.exec(ctx, `INSERT INTO management_locks (scope_key, name_key, sub_key, `+lockCols+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (scope_key, name_key) DO UPDATE SET level = excluded.level, notes = excluded.notes, owners = excluded.owners, updated = excluded.updated`,
			fold(l.Scope), fold(l.Name), fold(l.SubscriptionID), l.TenantID, l.SubscriptionID, l.Scope, l.Name, l.Level, l.Notes, string(ownersJSON),
			s.bindTime(l.Created, now()), s.bindTime(l.Updated, now()))
		return err
	})
	return s.fail(op+" "+l.Name, err)
}

// GetManagementLock implements store.ManagementLocks.
func (s *Store) GetManagementLock(ctx context.Context, scope, name string) (store.ManagementLock, error) {
	const op = "get management lock"
	var l store.ManagementLock
	if !textOK(scope, name) {
		return l, notFound(op)
	}
	err := s.read(func(r runner) error {
		var err error
		l, err = scanLock(r.queryRow(ctx, `SELECT `+lockCols+` FROM management_locks WHERE scope_key = ? AND name_key = ?`, fold(scope), fold(name)))
		return err
	})
	return l, s.fail(op+" "+name, err)
}

// DeleteManagementLock implements store.ManagementLocks.
func (s *Store) DeleteManagementLock(ctx context.Context, scope, name string) error {
	const op = "delete management lock"
	if !textOK(scope, name) {
		return notFound(op)
	}
	err := s.appendLog(ctx, false, func(r runner) error {
		rs, err := r.exec(ctx, `DELETE FROM management_locks WHERE scope_key = ? AND name_key = ?`, fold(scope), fold(name))
		if err != nil {
			return err
		}
		return mustAffect(rs)
	})
	return s.fail(op+" "+name, err)
}

// ListManagementLocks implements store.ManagementLocks.
func (s *Store) ListManagementLocks(ctx context.Context, subscriptionID string) ([]store.ManagementLock, error) {
	const op = "list management locks"
	if err := required(op, [2]string{"subscription id", subscriptionID}); err != nil {
		return nil, err
	}
	if !textOK(subscriptionID) {
		return nil, nil
	}
	var out []store.ManagementLock
	err := s.read(func(r runner) error {
		rows, err := r.query(ctx, `SELECT `+lockCols+` FROM management_locks WHERE sub_key = ? ORDER BY scope_key, name_key`, fold(subscriptionID))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			l, err := scanLock(rows)
			if err != nil {
				return err
			}
			out = append(out, l)
		}
		return rows.Err()
	})
	return out, s.fail(op, err)
}
