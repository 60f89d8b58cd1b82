package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

const auditCols = `seq, at, actor, actor_tenant, target_tenant, action, target, result, client_addr, request_id, detail`

// AppendAudit implements store.Audit and returns the record's Seq. A zero
// Time is set to now. Seq increases in the order records are inserted;
// on PostgreSQL, concurrent transactions may commit in a different order,
// so a reader tailing by AfterSeq can see a lower Seq appear late.
func (s *Store) AppendAudit(ctx context.Context, r store.AuditRecord) (int64, error) {
	const op = "append audit"
	if err := checkText(op, r.Actor, r.ActorTenant, r.TargetTenant, r.Action, r.Target, r.Result, r.ClientAddr, r.RequestID, r.Detail); err != nil {
		return 0, err
	}
	var seq int64
	err := s.appendLog(ctx, false, func(rn runner) error {
		return rn.queryRow(ctx, `INSERT INTO audit (at, actor, actor_tenant, target_tenant, action, target, result, client_addr, request_id, detail)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
RETURNING seq`,
			s.bindTime(r.Time, now()), r.Actor, r.ActorTenant, r.TargetTenant, r.Action, r.Target, r.Result, r.ClientAddr, r.RequestID, r.Detail,
		).Scan(&seq)
	})
	if err != nil {
		return 0, s.fail(op, err)
	}
	return seq, nil
}

// auditRowsPerInsert is how many records one INSERT statement carries in
// AppendAudits: enough that a batch of a few hundred costs a handful of
// statements, well under SQLite's limit of 32,766 bound parameters.
const auditRowsPerInsert = 64

// AppendAudits implements store.Audit: one transaction, multi-row INSERTs,
// no savepoint per record. It is what lets the audit log commit many
// records for the price of one; the multi-row statements halve the cost
// per record against one statement execution per record.
func (s *Store) AppendAudits(ctx context.Context, rs []store.AuditRecord) error {
	const op = "append audit batch"
	for _, r := range rs {
		if err := checkText(op, r.Actor, r.ActorTenant, r.TargetTenant, r.Action, r.Target, r.Result, r.ClientAddr, r.RequestID, r.Detail); err != nil {
			return err
		}
	}
	if len(rs) == 0 {
		return nil
	}
	err := s.appendLog(ctx, true, func(rn runner) error {
		at := now()
		args := make([]any, 0, 10*min(len(rs), auditRowsPerInsert))
		for start := 0; start < len(rs); start += auditRowsPerInsert {
			chunk := rs[start:min(start+auditRowsPerInsert, len(rs))]
			args = args[:0]
			for _, r := range chunk {
				args = append(args, s.bindTime(r.Time, at), r.Actor, r.ActorTenant, r.TargetTenant, r.Action,
					r.Target, r.Result, r.ClientAddr, r.RequestID, r.Detail)
			}
			if _, err := rn.q.ExecContext(ctx, s.d.rebind(auditInsert(len(chunk))), args...); err != nil {
				return err
			}
		}
		return nil
	})
	return s.fail(op, err)
}

// auditInserts holds the INSERT text for each row count, built once.
var auditInserts [auditRowsPerInsert + 1]string

func init() {
	const row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	for n := 1; n <= auditRowsPerInsert; n++ {
		auditInserts[n] = "INSERT INTO audit (at, actor, actor_tenant, target_tenant, action, target, result, client_addr, request_id, detail) VALUES " +
			strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
	}
}

func auditInsert(rows int) string { return auditInserts[rows] }

// ListAudit implements store.Audit.
func (s *Store) ListAudit(ctx context.Context, q store.AuditQuery) ([]store.AuditRecord, error) {
	const op = "list audit"
	if q.Limit < 0 {
		return nil, fmt.Errorf("sqlstore: %s: negative limit %d", op, q.Limit)
	}
	if !textOK(q.TenantID, q.ByTenantID) {
		return nil, nil
	}
	if q.ByTenantID != "" && q.TenantID == "" {
		return nil, fmt.Errorf("sqlstore: %s: ByTenantID needs TenantID", op)
	}
	var (
		w    strings.Builder
		args []any
	)
	w.WriteString(`SELECT ` + auditCols + ` FROM audit WHERE seq > ?`)
	args = append(args, q.AfterSeq)
	switch {
	case q.ByTenantID != "":
		w.WriteString(` AND actor_tenant = ? AND target_tenant = ?`)
		args = append(args, q.ByTenantID, q.TenantID)
	case q.TenantID != "":
		w.WriteString(` AND (actor_tenant = ? OR target_tenant = ?)`)
		args = append(args, q.TenantID, q.TenantID)
	}
	if q.BeforeSeq != 0 {
		w.WriteString(` AND seq < ?`)
		args = append(args, q.BeforeSeq)
	}
	w.WriteString(` ORDER BY seq`)
	if q.Newest {
		w.WriteString(` DESC`)
	}
	if q.Limit > 0 {
		w.WriteString(` LIMIT ?`)
		args = append(args, q.Limit)
	}
	var out []store.AuditRecord
	err := s.read(func(rn runner) error {
		rows, err := rn.query(ctx, w.String(), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var a store.AuditRecord
			if err := rows.Scan(&a.Seq, timeCol{&a.Time}, &a.Actor, &a.ActorTenant, &a.TargetTenant, &a.Action,
				&a.Target, &a.Result, &a.ClientAddr, &a.RequestID, &a.Detail); err != nil {
				return err
			}
			out = append(out, a)
		}
		return rows.Err()
	})
	return out, s.fail(op, err)
}
