package audit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

func TestRecordFillsRequestInfo(t *testing.T) {
	st := storetest.SQLite(t)
	log := audit.New(st, slog.New(slog.DiscardHandler))
	ctx := httpx.WithInfo(context.Background(), httpx.Info{RequestID: "req-1", ClientAddr: "192.0.2.7"})
	if err := log.Record(ctx, store.AuditRecord{Actor: "a", Action: "x.create", TargetTenant: "t1", Result: audit.Success}); err != nil {
		t.Fatal(err)
	}
	recs, err := log.List(ctx, store.AuditQuery{TenantID: "t1"})
	if err != nil || len(recs) != 1 {
		t.Fatalf("records = %v, %v", recs, err)
	}
	if r := recs[0]; r.RequestID != "req-1" || r.ClientAddr != "192.0.2.7" || r.Time.IsZero() {
		t.Fatalf("record = %+v", r)
	}
}

// Concurrent records are committed in groups, and every caller's record is
// stored by the time Record returns, hostile text included.
func TestBatchingCommitsEveryRecord(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		log := audit.NewBatching(st, slog.New(slog.DiscardHandler))
		ctx := context.Background()
		const n = 300
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := store.AuditRecord{Actor: fmt.Sprintf("actor-%d", i), Action: "token.issue", TargetTenant: "t", Result: audit.Success}
				if i == 7 {
					r.Detail = "bad\x00record" // the store refuses NUL bytes: Record replaces them
				}
				if err := log.Record(ctx, r); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		recs, err := log.List(ctx, store.AuditQuery{TenantID: "t"})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != n {
			t.Fatalf("stored %d records, want %d", len(recs), n)
		}
		for _, r := range recs {
			if r.Actor == "actor-7" && r.Detail != "bad\uFFFDrecord" {
				t.Fatalf("the NUL record was stored as %q", r.Detail)
			}
		}
		log.Close()
		if err := log.Record(ctx, store.AuditRecord{Actor: "late", Action: "x", Result: audit.Success}); !errors.Is(err, audit.ErrClosed) {
			t.Fatalf("Record after Close: %v", err)
		}
		log.Close() // twice is fine
	})
}

// A refusal of a request whose name is not UTF-8, or is absurdly long, is
// still recorded: the fields are made storable, not rejected (PostgreSQL
// refuses invalid UTF-8 and NUL, and the store screens them on every
// backend).
func TestRecordSanitizesText(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		for _, mode := range []string{"direct", "batching"} {
			t.Run(mode, func(t *testing.T) {
				log := audit.New(st, slog.New(slog.DiscardHandler))
				if mode == "batching" {
					log = audit.NewBatching(st, slog.New(slog.DiscardHandler))
					defer log.Close()
				}
				tenant := "t-sanitize-" + mode
				long := strings.Repeat("é", 5000) // 10,000 bytes of two-byte characters
				in := store.AuditRecord{Actor: "sas:\xff\xfe", Action: "servicebus.send", TargetTenant: tenant,
					Target: "ns/q\xc3", Result: "Unauthorized", Detail: long}
				if err := log.Record(context.Background(), in); err != nil {
					t.Fatalf("Record: %v", err)
				}
				recs, err := log.List(context.Background(), store.AuditQuery{TenantID: tenant})
				if err != nil || len(recs) != 1 {
					t.Fatalf("records = %v, %v", recs, err)
				}
				r := recs[0]
				if r.Actor != "sas:\uFFFD" && r.Actor != "sas:\uFFFD\uFFFD" {
					t.Errorf("actor stored as %q", r.Actor)
				}
				if r.Target != "ns/q\uFFFD" {
					t.Errorf("target stored as %q", r.Target)
				}
				if len(r.Detail) > 1024 || !utf8.ValidString(r.Detail) || !strings.HasSuffix(r.Detail, "…") || !strings.HasPrefix(r.Detail, "éé") {
					t.Errorf("detail stored as %d bytes, valid=%v, ends %q", len(r.Detail), utf8.ValidString(r.Detail), r.Detail[max(0, len(r.Detail)-8):])
				}
			})
		}
	})
}

// A client that hangs up cancels its request's context; the refusal it
// provoked is still recorded.
func TestRecordSurvivesCancelledContext(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		for _, mode := range []string{"direct", "batching"} {
			t.Run(mode, func(t *testing.T) {
				log := audit.New(st, slog.New(slog.DiscardHandler))
				if mode == "batching" {
					log = audit.NewBatching(st, slog.New(slog.DiscardHandler))
					defer log.Close()
				}
				tenant := "t-cancel-" + mode
				ctx, cancel := context.WithCancel(httpx.WithInfo(context.Background(), httpx.Info{RequestID: "req-gone"}))
				cancel()
				// Many records, so that the batching log's queue and the
				// cancelled context race (a select picks either at random).
				const n = 50
				for i := range n {
					if err := log.Record(ctx, store.AuditRecord{Actor: fmt.Sprint(i), Action: "vault.getSecret", TargetTenant: tenant, Result: "ForbiddenByRbac"}); err != nil {
						t.Fatalf("Record with a cancelled context: %v", err)
					}
				}
				recs, err := log.List(context.Background(), store.AuditQuery{TenantID: tenant})
				if err != nil || len(recs) != n {
					t.Fatalf("stored %d records (%v), want %d", len(recs), err, n)
				}
				if recs[0].RequestID != "req-gone" {
					t.Errorf("request id %q: the request's information was lost", recs[0].RequestID)
				}
			})
		}
	})
}

func BenchmarkRecord(b *testing.B) {
	for _, mode := range []string{"direct", "batching"} {
		b.Run(mode, func(b *testing.B) {
			st := storetest.SQLite(b)
			log := audit.New(st, slog.New(slog.DiscardHandler))
			if mode == "batching" {
				log = audit.NewBatching(st, slog.New(slog.DiscardHandler))
				defer log.Close()
			}
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := log.Record(context.Background(), store.AuditRecord{Actor: "a", Action: "token.issue", TargetTenant: "t", Result: audit.Success}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
