package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// User sign-in tokens (store.RefreshTokens, store.DeviceCodes). Nothing
// caches them, so every write goes through appendLog and leaves the
// generation alone.
//
// Rotation and reuse detection rest on one conditional UPDATE: the
// redemption marks the token redeemed only WHERE it is still unredeemed,
// unrevoked and unexpired, so exactly one of concurrent redemptions sees a
// row, and every other one finds the token redeemed and revokes its
// family. SQLite runs one writer at a time, so that is all. On PostgreSQL
// a redemption first takes a transaction-level advisory lock on the token's
// family: redemptions and reuse revocations of one family then take turns,
// rather than taking row locks in an order of their own (a waiting UPDATE
// keeps the lock of the row it re-checked), which deadlocked. Revocations
// that span families lock rows in id order instead (revokeRefreshTokens).

const refreshTokenCols = `id, family_id, tenant_id, client_id, user_id, scope, auth_time, amr, created, expires, redeemed_at, revoked_at`

func scanRefreshToken(sc interface{ Scan(...any) error }) (store.RefreshToken, error) {
	var t store.RefreshToken
	err := sc.Scan(&t.ID, &t.FamilyID, &t.TenantID, &t.ClientID, &t.UserID, &t.Scope, nullTimeCol{&t.AuthTime},
		jsonCol[string]{&t.AMR}, timeCol{&t.Created}, timeCol{&t.Expires}, nullTimeCol{&t.RedeemedAt}, nullTimeCol{&t.RevokedAt})
	return t, err
}

// encodeAMR keeps authentication methods as a JSON array.
func encodeAMR(amr []string) (string, error) {
	if len(amr) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(amr)
	return string(b), err
}

// failToken is fail that also passes the user-token sentinels through
// unchanged.
func (s *Store) failToken(op string, err error) error {
	for _, e := range []error{store.ErrRefreshTokenReused, store.ErrRevoked, store.ErrExpired} {
		if errors.Is(err, e) {
			return fmt.Errorf("sqlstore: %s: %w", op, err)
		}
	}
	return s.fail(op, err)
}

// isPostgres reports whether rows must be locked explicitly (FOR UPDATE);
// SQLite's one writer at a time needs no row locks.
func (s *Store) isPostgres() bool { return s.d.Name == "postgres" }

// doneAt is the SQL that moves done_at (when a refresh token stopped being
// redeemable) back to the bound time if that is earlier.
const doneAt = `done_at = CASE WHEN done_at > ? THEN ? ELSE done_at END`

func checkRefreshToken(op string, t store.RefreshToken) error {
	if err := required(op, [2]string{"id", t.ID}, [2]string{"family id", t.FamilyID}, [2]string{"tenant id", t.TenantID},
		[2]string{"client id", t.ClientID}, [2]string{"user id", t.UserID}); err != nil {
		return err
	}
	if t.Expires.IsZero() {
		return fmt.Errorf("sqlstore: %s: expires is required", op)
	}
	return checkText(op, append([]string{t.ID, t.FamilyID, t.TenantID, t.ClientID, t.UserID, t.Scope}, t.AMR...)...)
}

// insertRefreshToken writes t, which checkRefreshToken accepted.
func (s *Store) insertRefreshToken(ctx context.Context, r runner, t store.RefreshToken, at time.Time) error {
	amr, err := encodeAMR(t.AMR)
	if err != nil {
		return err
	}
	created := normTime(t.Created)
	if t.Created.IsZero() {
		created = at
	}
	done := normTime(t.Expires)
	for _, end := range []time.Time{t.RedeemedAt, t.RevokedAt} {
		if !end.IsZero() && normTime(end).Before(done) {
			done = normTime(end)
		}
	}
	_, err = r.exec(ctx, `INSERT INTO refresh_tokens (`+refreshTokenCols+`, done_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.FamilyID, t.TenantID, t.ClientID, t.UserID, t.Scope, s.nullTime(t.AuthTime), amr,
		s.d.BindTime(created), s.d.BindTime(normTime(t.Expires)), s.nullTime(t.RedeemedAt), s.nullTime(t.RevokedAt),
		s.d.BindTime(done))
	return err
}

// CreateRefreshToken implements store.RefreshTokens.
func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	const op = "create refresh token"
	if err := checkRefreshToken(op, t); err != nil {
		return err
	}
	at := now()
	err := s.appendLog(ctx, false, func(r runner) error { return s.insertRefreshToken(ctx, r, t, at) })
	return s.fail(op, err)
}

// RedeemRefreshToken implements store.RefreshTokens. When the token was
// already redeemed, the transaction commits the family's revocation and
// the error is returned after it.
func (s *Store) RedeemRefreshToken(ctx context.Context, id string, now time.Time, next store.RefreshToken) (store.RefreshToken, error) {
	const op = "redeem refresh token"
	if id == "" || !textOK(id) {
		return store.RefreshToken{}, notFound(op)
	}
	if next.ID == id {
		return store.RefreshToken{}, fmt.Errorf("sqlstore: %s: the next token needs a new id", op)
	}
	// The identity fields may be left to be inherited; the rest must be
	// right already.
	check := next
	check.FamilyID, check.TenantID, check.ClientID, check.UserID = "-", "-", "-", "-"
	if err := checkRefreshToken(op+": next token", check); err != nil {
		return store.RefreshToken{}, err
	}
	if err := checkText(op+": next token", next.FamilyID, next.TenantID, next.ClientID, next.UserID); err != nil {
		return store.RefreshToken{}, err
	}
	at := normTime(now)
	var (
		got    store.RefreshToken
		reused bool
	)
	err := s.retryRolledBack(ctx, func() error {
		return s.appendLog(ctx, true, func(r runner) error {
			reused = false
			if err := s.lockRefreshTokenFamily(ctx, r, id); err != nil {
				return err
			}
			var err error
			got, err = scanRefreshToken(r.queryRow(ctx, `UPDATE refresh_tokens SET redeemed_at = ?, `+doneAt+`
WHERE id = ? AND redeemed_at IS NULL AND revoked_at IS NULL AND expires > ?
RETURNING `+refreshTokenCols, s.d.BindTime(at), s.d.BindTime(at), s.d.BindTime(at), id, s.d.BindTime(at)))
			if errors.Is(err, sql.ErrNoRows) {
				return s.refuseRedemption(ctx, r, id, at, &reused)
			}
			if err != nil {
				return err
			}
			n, err := nextRefreshToken(got, next)
			if err != nil {
				return err
			}
			if n.Created.IsZero() {
				n.Created = at
			}
			return s.insertRefreshToken(ctx, r, n, at)
		})
	})
	if err == nil && reused {
		err = store.ErrRefreshTokenReused
	}
	if err != nil {
		return store.RefreshToken{}, s.failToken(op, err)
	}
	return got, nil
}

// retryRolledBack runs tx, a whole transaction, again when PostgreSQL
// rolled it back as a deadlock's victim or a serialization failure (or a
// lock or statement timeout: all classified busy), up to three times in
// all, unless it runs inside a caller's transaction, which PostgreSQL
// aborted whole. A user-wide revocation locks
// its rows in id order, but the rows a pass finds only once it runs (the
// tokens redemptions committed meanwhile) can still meet a reuse
// revocation's in another order; PostgreSQL then aborts one of the two,
// and its documentation's remedy is to retry it
// (https://www.postgresql.org/docs/current/mvcc-serialization-failure-handling.html).
// SQLite, one writer at a time, never needs it.
func (s *Store) retryRolledBack(ctx context.Context, tx func() error) error {
	const attempts = 3
	var err error
	for attempt := range attempts {
		if err = tx(); err == nil || !s.isPostgres() || s.tx != nil || s.d.Classify(err) != Busy || ctx.Err() != nil || attempt == attempts-1 {
			return err
		}
		// A short, growing pause, so that the two do not meet again at once.
		t := time.NewTimer(time.Duration(attempt+1) * 5 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
	return err
}

// familyLockClass is the first key of the advisory locks that serialise
// the redemptions of one refresh token family on PostgreSQL; the second is
// a hash of the family id. (The two-key space is apart from the one-key
// space of the migration lock.) Two families whose hashes collide merely
// take turns.
const familyLockClass = 0x7462_5254 // "tbRT"

// lockRefreshTokenFamily takes the family lock of token id on PostgreSQL,
// until the transaction ends. A family id never changes, so reading it
// before the lock is safe.
func (s *Store) lockRefreshTokenFamily(ctx context.Context, r runner, id string) error {
	if !s.isPostgres() {
		return nil
	}
	var family string
	if err := r.queryRow(ctx, `SELECT family_id FROM refresh_tokens WHERE id = ?`, id).Scan(&family); err != nil {
		return err
	}
	_, err := r.exec(ctx, `SELECT pg_advisory_xact_lock(?, hashtext(?))`, familyLockClass, family)
	return err
}

// refuseRedemption explains why the token id could not be redeemed at at.
// A redeemed token revokes its family: then it sets *reused and returns
// nil, so that the revocation commits.
func (s *Store) refuseRedemption(ctx context.Context, r runner, id string, at time.Time, reused *bool) error {
	cur, err := scanRefreshToken(r.queryRow(ctx, `SELECT `+refreshTokenCols+` FROM refresh_tokens WHERE id = ?`, id))
	if err != nil {
		return err
	}
	switch {
	case !cur.RedeemedAt.IsZero():
		if _, err := s.revokeRefreshTokens(ctx, r, "family_id = ?", []any{cur.FamilyID}, at); err != nil {
			return err
		}
		*reused = true
		return nil
	case !cur.RevokedAt.IsZero():
		return store.ErrRevoked
	case !cur.Expires.After(at):
		return store.ErrExpired
	}
	// The row failed the redemption's condition but passes it now:
	// impossible, since none of the three ever reverts.
	return errors.New("the refresh token changed during its redemption")
}

// nextRefreshToken completes next from the token it replaces.
func nextRefreshToken(prev, next store.RefreshToken) (store.RefreshToken, error) {
	for _, f := range []struct {
		name      string
		prev, got *string
	}{
		{"family id", &prev.FamilyID, &next.FamilyID},
		{"tenant id", &prev.TenantID, &next.TenantID},
		{"client id", &prev.ClientID, &next.ClientID},
		{"user id", &prev.UserID, &next.UserID},
	} {
		if *f.got == "" {
			*f.got = *f.prev
		} else if *f.got != *f.prev {
			return next, fmt.Errorf("the next token's %s differs from the redeemed token's", f.name)
		}
	}
	if next.Scope == "" {
		next.Scope = prev.Scope
	}
	if next.AuthTime.IsZero() {
		next.AuthTime = prev.AuthTime
	}
	if len(next.AMR) == 0 {
		next.AMR = prev.AMR
	}
	next.RedeemedAt, next.RevokedAt = time.Time{}, time.Time{}
	return next, nil
}

// revokeRefreshTokens revokes the unrevoked tokens that match cond at at,
// and returns how many. It repeats until a pass finds none: on PostgreSQL
// a redemption that commits while a pass waits for its row inserts the
// next token after that pass's snapshot, and the following pass catches
// it. Rows are locked in id order first, so that concurrent revocations of
// overlapping sets take their locks in one order and cannot deadlock.
func (s *Store) revokeRefreshTokens(ctx context.Context, r runner, cond string, args []any, at time.Time) (int64, error) {
	var total int64
	for {
		if s.isPostgres() {
			rows, err := r.query(ctx, `SELECT id FROM refresh_tokens WHERE `+cond+` AND revoked_at IS NULL ORDER BY id FOR UPDATE`, args...)
			if err != nil {
				return total, err
			}
			// Reading the rows is what takes their locks.
			var locked string
			for rows.Next() {
				if err := rows.Scan(&locked); err != nil {
					_ = rows.Close()
					return total, err
				}
			}
			if err := rows.Err(); err != nil {
				_ = rows.Close()
				return total, err
			}
			if err := rows.Close(); err != nil {
				return total, err
			}
		}
		res, err := r.exec(ctx, `UPDATE refresh_tokens SET revoked_at = ?, `+doneAt+` WHERE `+cond+` AND revoked_at IS NULL`,
			append([]any{s.d.BindTime(at), s.d.BindTime(at), s.d.BindTime(at)}, args...)...)
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, nil
		}
		total += n
	}
}

// refreshTokenFilter turns q into a condition, or reports that nothing can
// match it.
func refreshTokenFilter(op string, q store.RefreshTokenQuery) (cond string, args []any, none bool, err error) {
	if err := required(op, [2]string{"tenant id", q.TenantID}); err != nil {
		return "", nil, false, err
	}
	if !textOK(q.TenantID, q.ClientID, q.UserID, q.FamilyID) {
		return "", nil, true, nil
	}
	conds := []string{"tenant_id = ?"}
	args = []any{q.TenantID}
	for _, f := range []struct{ col, v string }{{"client_id", q.ClientID}, {"user_id", q.UserID}, {"family_id", q.FamilyID}} {
		if f.v != "" {
			conds = append(conds, f.col+" = ?")
			args = append(args, f.v)
		}
	}
	return strings.Join(conds, " AND "), args, false, nil
}

// RevokeRefreshTokens implements store.RefreshTokens.
func (s *Store) RevokeRefreshTokens(ctx context.Context, q store.RefreshTokenQuery, now time.Time) (int64, error) {
	const op = "revoke refresh tokens"
	cond, args, none, err := refreshTokenFilter(op, q)
	if err != nil || none {
		return 0, err
	}
	var n int64
	err = s.retryRolledBack(ctx, func() error {
		return s.appendLog(ctx, true, func(r runner) error {
			var err error
			n, err = s.revokeRefreshTokens(ctx, r, cond, args, normTime(now))
			return err
		})
	})
	if err != nil {
		return 0, s.fail(op, err)
	}
	return n, nil
}

// ListRefreshTokens implements store.RefreshTokens.
func (s *Store) ListRefreshTokens(ctx context.Context, q store.RefreshTokenQuery) ([]store.RefreshToken, error) {
	const op = "list refresh tokens"
	cond, args, none, err := refreshTokenFilter(op, q)
	if err != nil || none {
		return nil, err
	}
	var out []store.RefreshToken
	err = s.read(func(r runner) error {
		rows, err := r.query(ctx, `SELECT `+refreshTokenCols+` FROM refresh_tokens WHERE `+cond+` ORDER BY created, id`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			t, err := scanRefreshToken(rows)
			if err != nil {
				return err
			}
			out = append(out, t)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

// refreshTokenGrace is how long a spent token is kept for reuse detection.
const refreshTokenGrace = 24 * time.Hour

// PruneRefreshTokens implements store.RefreshTokens, deleting in batches.
// On PostgreSQL it skips rows that a revocation holds locked, rather than
// taking their locks in an order of its own; the next prune gets them.
func (s *Store) PruneRefreshTokens(ctx context.Context, now time.Time) (int64, error) {
	skip := ""
	if s.isPostgres() {
		skip = " FOR UPDATE SKIP LOCKED"
	}
	return s.prune(ctx, "prune refresh tokens", `DELETE FROM refresh_tokens WHERE id IN
(SELECT id FROM refresh_tokens WHERE done_at < ? LIMIT ?`+skip+`)`, normTime(now).Add(-refreshTokenGrace))
}

// prune runs a batched delete of rows older than cutoff until a batch
// comes up short.
func (s *Store) prune(ctx context.Context, op, query string, cutoff time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := s.appendLog(ctx, false, func(r runner) error {
			res, err := r.exec(ctx, query, s.d.BindTime(cutoff), pruneBatch)
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

const deviceCodeCols = `id, user_code, tenant_id, client_id, scope, created, expires, poll_interval, state, user_id, approved_tenant_id, auth_time, amr, last_poll`

func scanDeviceCode(sc interface{ Scan(...any) error }) (store.DeviceCode, error) {
	var (
		d                store.DeviceCode
		tenant, approved sql.NullString
		state            string
	)
	err := sc.Scan(&d.ID, &d.UserCode, &tenant, &d.ClientID, &d.Scope, timeCol{&d.Created}, timeCol{&d.Expires}, &d.Interval,
		&state, &d.UserID, &approved, nullTimeCol{&d.AuthTime}, jsonCol[string]{&d.AMR}, nullTimeCol{&d.LastPoll})
	d.TenantID, d.ApprovedTenantID, d.State = tenant.String, approved.String, store.DeviceCodeState(state)
	return d, err
}

// userCodeKey is how user codes are compared: case-insensitively, without
// the '-' and spaces people type or leave out.
func userCodeKey(code string) string {
	return fold(strings.NewReplacer("-", "", " ", "").Replace(code))
}

// CreateDeviceCode implements store.DeviceCodes.
func (s *Store) CreateDeviceCode(ctx context.Context, d store.DeviceCode) error {
	const op = "create device code"
	if err := required(op, [2]string{"id", d.ID}, [2]string{"user code", userCodeKey(d.UserCode)}, [2]string{"client id", d.ClientID}); err != nil {
		return err
	}
	if d.Expires.IsZero() {
		return fmt.Errorf("sqlstore: %s: expires is required", op)
	}
	if d.Interval < 0 {
		return fmt.Errorf("sqlstore: %s: negative interval", op)
	}
	if err := checkText(op, d.ID, d.UserCode, d.TenantID, d.ClientID, d.Scope); err != nil {
		return err
	}
	err := s.appendLog(ctx, false, func(r runner) error {
		_, err := r.exec(ctx, `INSERT INTO device_codes (id, user_code, user_code_key, tenant_id, client_id, scope, created,
expires, poll_interval, state, user_id, approved_tenant_id, auth_time, amr, last_poll)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', NULL, NULL, '[]', NULL)`,
			d.ID, d.UserCode, userCodeKey(d.UserCode), nullable(d.TenantID), d.ClientID, d.Scope,
			s.bindTime(d.Created, now()), s.d.BindTime(normTime(d.Expires)), d.Interval, string(store.DeviceCodePending))
		return err
	})
	return s.fail(op, err)
}

// pendingDeviceCode finds the pending, unexpired code by its user code.
func (s *Store) pendingDeviceCode(ctx context.Context, r runner, key string, at time.Time) (store.DeviceCode, error) {
	d, err := scanDeviceCode(r.queryRow(ctx, `SELECT `+deviceCodeCols+` FROM device_codes WHERE user_code_key = ?`, key))
	switch {
	case err != nil:
		return d, err
	case d.State != store.DeviceCodePending:
		return d, store.ErrNotFound
	case !d.Expires.After(at):
		return d, store.ErrExpired
	}
	return d, nil
}

// DeviceCodeByUserCode implements store.DeviceCodes.
func (s *Store) DeviceCodeByUserCode(ctx context.Context, userCode string, now time.Time) (store.DeviceCode, error) {
	const op = "device code by user code"
	key := userCodeKey(userCode)
	if key == "" || !textOK(userCode) {
		return store.DeviceCode{}, notFound(op)
	}
	var d store.DeviceCode
	err := s.read(func(r runner) error {
		var err error
		d, err = s.pendingDeviceCode(ctx, r, key, normTime(now))
		return err
	})
	if err != nil {
		return store.DeviceCode{}, s.failToken(op, err)
	}
	return d, nil
}

// DecideDeviceCode implements store.DeviceCodes with one conditional
// update, so that of concurrent decisions exactly one finds the code
// pending.
func (s *Store) DecideDeviceCode(ctx context.Context, userCode string, now time.Time, approve bool, userID, tenantID string, authTime time.Time, amr []string) error {
	const op = "decide device code"
	key := userCodeKey(userCode)
	if key == "" || !textOK(userCode) {
		return notFound(op)
	}
	if approve {
		if err := required(op, [2]string{"user id", userID}, [2]string{"tenant id", tenantID}); err != nil {
			return err
		}
	}
	if err := checkText(op, append([]string{userID, tenantID}, amr...)...); err != nil {
		return err
	}
	encAMR, err := encodeAMR(amr)
	if err != nil {
		return fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	state, tenant := store.DeviceCodeDenied, any(nil)
	if approve {
		state, tenant = store.DeviceCodeApproved, tenantID
	}
	at := normTime(now)
	err = s.appendLog(ctx, true, func(r runner) error {
		res, err := r.exec(ctx, `UPDATE device_codes SET state = ?, user_id = ?, approved_tenant_id = ?,
tenant_id = COALESCE(tenant_id, ?), auth_time = ?, amr = ?
WHERE user_code_key = ? AND state = ? AND expires > ?`,
			string(state), userID, nullable(tenantID), tenant, s.nullTime(authTime), encAMR,
			key, string(store.DeviceCodePending), s.d.BindTime(at))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			_, err := s.pendingDeviceCode(ctx, r, key, at)
			if err == nil {
				err = errors.New("device code changed during the decision")
			}
			return err
		}
		return nil
	})
	return s.failToken(op, err)
}

// PollDeviceCode implements store.DeviceCodes. It reads the code (locking
// its row on PostgreSQL; SQLite's transaction already holds the write
// lock) and then records the poll, so that concurrent polls take turns and
// only the first after approval finds it approved.
func (s *Store) PollDeviceCode(ctx context.Context, id string, now time.Time) (store.DeviceCode, error) {
	const op = "poll device code"
	if id == "" || !textOK(id) {
		return store.DeviceCode{}, notFound(op)
	}
	at := normTime(now)
	lock := ""
	if s.isPostgres() {
		lock = " FOR UPDATE"
	}
	var d store.DeviceCode
	err := s.appendLog(ctx, true, func(r runner) error {
		var err error
		d, err = scanDeviceCode(r.queryRow(ctx, `SELECT `+deviceCodeCols+` FROM device_codes WHERE id = ?`+lock, id))
		if err != nil {
			return err
		}
		if !d.Expires.After(at) {
			return store.ErrExpired
		}
		next := d.State
		if next == store.DeviceCodeApproved {
			next = store.DeviceCodeRedeemed
		}
		_, err = r.exec(ctx, `UPDATE device_codes SET last_poll = ?, state = ? WHERE id = ?`, s.d.BindTime(at), string(next), id)
		return err
	})
	if err != nil {
		return store.DeviceCode{}, s.failToken(op, err)
	}
	return d, nil
}

// PruneDeviceCodes implements store.DeviceCodes, deleting in batches.
func (s *Store) PruneDeviceCodes(ctx context.Context, now time.Time) (int64, error) {
	return s.prune(ctx, "prune device codes", `DELETE FROM device_codes WHERE id IN
(SELECT id FROM device_codes WHERE expires <= ? LIMIT ?)`, normTime(now))
}
