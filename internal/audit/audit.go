// Package audit records who did what, in which tenant, on behalf of which
// tenant: every token issued or refused and every directory change. The
// record is append-only and lives in the store, so both sides of a
// cross-tenant act can read it.
package audit

import (
	"context"
	"log/slog"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Results other than success are the failure's code (e.g. "AADSTS7000215",
// "Authorization_RequestDenied").
const Success = "success"

// Log appends audit records.
type Log struct {
	st     store.Audit
	logger *slog.Logger
	now    func() time.Time
	batch  *batcher // nil: each record is written at once
}

// New returns a Log writing each record to st as it comes; logger receives
// a line for each record that could not be stored. Pass a transaction's
// store to make the record part of the change it describes.
func New(st store.Audit, logger *slog.Logger) *Log {
	return &Log{st: st, logger: logger, now: time.Now}
}

// Record appends r, filling in the time and, from ctx, the request id and
// client address. An audit record that cannot be written is an error the
// caller must not ignore for changes (the change should fail with it); for
// refusals it is logged.
func (l *Log) Record(ctx context.Context, r store.AuditRecord) error {
	info := httpx.InfoFrom(ctx)
	if r.Time.IsZero() {
		r.Time = l.now().UTC()
	}
	if r.RequestID == "" {
		r.RequestID = info.RequestID
	}
	if r.ClientAddr == "" {
		r.ClientAddr = info.ClientAddr
	}
	var err error
	if l.batch != nil {
		err = l.batch.enqueue(ctx, r)
	} else {
		_, err = l.st.AppendAudit(ctx, r)
	}
	if err != nil {
		l.logger.ErrorContext(ctx, "audit record not stored", "action", r.Action, "target_tenant", r.TargetTenant, "err", err)
		return err
	}
	return nil
}

// List returns the records that involve a tenant, as actor's or target's.
func (l *Log) List(ctx context.Context, q store.AuditQuery) ([]store.AuditRecord, error) {
	return l.st.ListAudit(ctx, q)
}

// Close stops a batching Log after committing every record already
// handed to it. It does nothing for a Log made by New.
func (l *Log) Close() {
	if l.batch != nil {
		l.batch.close()
	}
}
