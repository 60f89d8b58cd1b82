package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// pruneBatch bounds how many records one statement of PruneUsed deletes, so
// that pruning a large backlog never holds SQLite's write lock (or a long
// PostgreSQL transaction) for long.
const pruneBatch = 5000

// UseOnce implements store.OneTimeUse. It is one statement, an insert that
// on a taken key updates only an expired record: the database's unique key
// decides between concurrent callers (PostgreSQL makes the loser wait for
// the winner's row lock and then re-check the condition), so exactly one of
// them gets a row affected. The key never appears in errors: it may be
// derived from a credential.
func (s *Store) UseOnce(ctx context.Context, key string, expires time.Time) error {
	const op = "use once"
	if err := required(op, [2]string{"key", key}); err != nil {
		return err
	}
	if len(key) > store.MaxOneTimeUseKey {
		return fmt.Errorf("sqlstore: %s: key is %d bytes, longer than %d", op, len(key), store.MaxOneTimeUseKey)
	}
	if err := checkText(op, key); err != nil {
		return err
	}
	at, exp := now(), normTime(expires)
	if !exp.After(at) {
		return fmt.Errorf("sqlstore: %s: expires %s is not in the future", op, exp.Format(time.RFC3339Nano))
	}
	err := s.appendLog(ctx, false, func(r runner) error {
		res, err := r.exec(ctx, `INSERT INTO one_time_use (use_key, expires) VALUES (?, ?)
ON CONFLICT (use_key) DO UPDATE SET expires = excluded.expires
WHERE one_time_use.expires <= ?`,
			key, s.d.BindTime(exp), s.d.BindTime(at))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("key already used and not expired: %w", store.ErrConflict)
		}
		return nil
	})
	return s.fail(op, err)
}

// PruneUsed implements store.OneTimeUse, deleting in batches.
func (s *Store) PruneUsed(ctx context.Context, now time.Time) (int64, error) {
	const op = "prune used"
	cutoff := s.d.BindTime(normTime(now))
	var total int64
	for {
		var n int64
		err := s.appendLog(ctx, false, func(r runner) error {
			res, err := r.exec(ctx, `DELETE FROM one_time_use WHERE use_key IN
(SELECT use_key FROM one_time_use WHERE expires <= ? LIMIT ?)`, cutoff, pruneBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, s.fail(op, err)
		}
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}
