// Package audit records who did what, in which tenant, on behalf of which
// tenant: every token issued or refused and every directory change. The
// record is append-only and lives in the store, so both sides of a
// cross-tenant act can read it.
package audit

import (
	"context"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

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
	obs    Observer // nil: none
}

// Observer is told how long each record took to commit (what its caller
// waited), or that it failed, for the operator's metrics.
type Observer interface {
	AuditCommitted(took time.Duration, err error)
}

// Option configures a Log.
type Option func(*Log)

// WithObserver makes the Log report its commits to o.
func WithObserver(o Observer) Option { return func(l *Log) { l.obs = o } }

// New returns a Log writing each record to st as it comes; logger receives
// a line for each record that could not be stored. Pass a transaction's
// store to make the record part of the change it describes.
func New(st store.Audit, logger *slog.Logger) *Log {
	return &Log{st: st, logger: logger, now: time.Now}
}

// writeTimeout bounds how long Record waits for its record to be stored once
// the caller's context no longer does (see Record).
const writeTimeout = 10 * time.Second

// maxFieldBytes bounds each text field of a record. Fields often carry what
// a client sent (a queue name, a SAS key name, a client id); the log keeps
// enough of it to tell what happened, never an arbitrary amount.
const maxFieldBytes = 1024

// Record appends r, filling in the time and, from ctx, the request id and
// client address. An audit record that cannot be written is an error the
// caller must not ignore for changes (the change should fail with it); for
// refusals it is logged.
//
// Two things must not cost a record. Hostile text: the fields are
// sanitized (invalid UTF-8 and NUL become U+FFFD, over-long fields are
// clipped), because the store refuses such text and a refusal of a request
// with a malformed name is exactly what the log is for. A caller that goes
// away: the write ignores the cancellation of ctx (a client hanging up
// mid-request must not erase the record of what it tried) and is bounded by
// writeTimeout instead.
func (l *Log) Record(ctx context.Context, r store.AuditRecord) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
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
	r = Sanitize(r)
	start := time.Now()
	var err error
	if l.batch != nil {
		err = l.batch.enqueue(ctx, r)
	} else {
		_, err = l.st.AppendAudit(ctx, r)
	}
	if l.obs != nil {
		l.obs.AuditCommitted(time.Since(start), err)
	}
	if err != nil {
		l.logger.ErrorContext(ctx, "audit record not stored", "action", r.Action, "target_tenant", r.TargetTenant, "err", err)
		return err
	}
	return nil
}

// Sanitize returns r with every text field made storable: invalid UTF-8
// and NUL bytes replaced by U+FFFD, and each field clipped to maxFieldBytes
// (on a character boundary, ending in "…"). Record applies it; it is
// exported for surfaces that build records ahead of time and for tests.
func Sanitize(r store.AuditRecord) store.AuditRecord {
	for _, f := range []*string{&r.Actor, &r.ActorTenant, &r.TargetTenant, &r.Action, &r.Target, &r.Result,
		&r.ClientAddr, &r.RequestID, &r.Detail} {
		*f = sanitizeText(*f)
	}
	return r
}

// sanitizeText makes one field storable (see Sanitize).
func sanitizeText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 && len(s) <= maxFieldBytes {
		return s // the common case: nothing to copy
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if len(s) <= maxFieldBytes {
		return s
	}
	const ellipsis = "…"
	cut := maxFieldBytes - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut-- // never split a character
	}
	return s[:cut] + ellipsis
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
