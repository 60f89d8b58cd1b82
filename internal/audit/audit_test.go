package audit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"

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
// stored by the time Record returns.
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
					r.Detail = "bad\x00record" // the store refuses NUL bytes
				}
				if err := log.Record(ctx, r); err != nil && i != 7 {
					errs <- err
				} else if err == nil && i == 7 {
					errs <- errors.New("a record with a NUL byte was accepted")
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
		if len(recs) != n-1 {
			t.Fatalf("stored %d records, want %d: one bad record must not cost the others", len(recs), n-1)
		}
		log.Close()
		if err := log.Record(ctx, store.AuditRecord{Actor: "late", Action: "x", Result: audit.Success}); !errors.Is(err, audit.ErrClosed) {
			t.Fatalf("Record after Close: %v", err)
		}
		log.Close() // twice is fine
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
