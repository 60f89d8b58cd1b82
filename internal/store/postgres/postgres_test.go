package postgres_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/conformance"
	"github.com/tenantbridge/tenantbridge/internal/store/postgres"
	"github.com/tenantbridge/tenantbridge/internal/store/sqlstore"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.RequirePostgres(t)
	conformance.Run(t, func(t *testing.T) store.Store { return storetest.Postgres(t) })
}

func migrationCount(t *testing.T, st store.Store) int {
	t.Helper()
	var n int
	if err := st.(*sqlstore.Store).DB().QueryRowContext(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatalf("count migrations: %v", err)
	}
	return n
}

// TestConcurrentOpen: several processes starting against one new schema at
// once migrate it exactly once (the advisory lock), and reopening is a
// no-op.
func TestConcurrentOpen(t *testing.T) {
	dsn := storetest.PostgresSchemaDSN(t)
	d, err := postgres.Dialect()
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	stores := make([]store.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = postgres.Open(t.Context(), dsn)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	if got := migrationCount(t, stores[0]); got != len(d.Migrations) {
		t.Errorf("%d migrations recorded, want %d", got, len(d.Migrations))
	}
	if err := stores[0].CreateTenant(t.Context(), store.Tenant{ID: "t1", Name: "c", Domain: "c.example"}); err != nil {
		t.Fatal(err)
	}
	again, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer again.Close()
	if got := migrationCount(t, again); got != len(d.Migrations) {
		t.Errorf("after reopen: %d migrations recorded, want %d", got, len(d.Migrations))
	}
	if _, err := again.GetTenant(t.Context(), "t1"); err != nil {
		t.Errorf("after reopen: %v", err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	// Port 1 on loopback: nothing listens, so the connect fails at once.
	st, err := postgres.Open(t.Context(), "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=5")
	if err == nil {
		st.Close()
		t.Fatal("Open of an unreachable server succeeded")
	}
	if _, err := postgres.Open(t.Context(), "postgres://[bad"); err == nil {
		t.Fatal("Open of a malformed DSN succeeded")
	}
}

func BenchmarkCreateObject(b *testing.B) { conformance.BenchmarkCreateObject(b, storetest.Postgres(b)) }
func BenchmarkGetObject(b *testing.B)    { conformance.BenchmarkGetObject(b, storetest.Postgres(b)) }

// TestGenerationHearsOtherProcesses: two stores over one schema stand for
// two servers. A commit through one moves the other's generation (the
// triggers of migration 0006 and the listener), a write to the audit log
// moves neither, and a store over another schema ignores both.
func TestGenerationHearsOtherProcesses(t *testing.T) {
	ctx := t.Context()
	dsn := storetest.PostgresSchemaDSN(t)
	open := func(dsn string) store.Store {
		st, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	a, b := open(dsn), open(dsn)
	elsewhere := open(storetest.PostgresSchemaDSN(t))

	// A store that hears is not deaf: its generation holds still.
	if g := b.Generation(); b.Generation() != g {
		t.Fatal("generation moves on every call: the listener is not listening")
	}
	waitForChange := func(st store.Store, before uint64, what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for st.Generation() == before {
			if time.Now().After(deadline) {
				t.Fatalf("%s: generation still %d after 5 s", what, before)
			}
			time.Sleep(time.Millisecond)
		}
	}

	before, beforeElsewhere := b.Generation(), elsewhere.Generation()
	tenant := store.Tenant{ID: "8b1a9953-c461-4c1d-9a2e-3f6a1d2e7c01", Name: "heard", Domain: "heard.example", SubscriptionID: "9c1a9953-c461-4c1d-9a2e-3f6a1d2e7c01"}
	if err := a.CreateTenant(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	waitForChange(b, before, "another process's tenant")

	// Audit records are not cached by anyone and notify no one.
	time.Sleep(50 * time.Millisecond) // let any notification of the tenant arrive first
	quiet := b.Generation()
	if _, err := a.AppendAudit(ctx, store.AuditRecord{Actor: "x", Action: "test", Target: "t", Result: "ok"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if b.Generation() != quiet {
		t.Fatal("an audit record moved another process's generation")
	}
	if elsewhere.Generation() != beforeElsewhere {
		t.Fatal("a store over another schema heard this schema's change")
	}
}

// TestBusyIsErrBusy: a write that gives up waiting for a lock another
// transaction holds, at lock_timeout or statement_timeout, fails with
// store.ErrBusy, so that the surfaces answer it as retriable.
func TestBusyIsErrBusy(t *testing.T) {
	dsn := storetest.PostgresSchemaDSN(t)
	if !strings.Contains(dsn, "://") {
		t.Skip("the test sets timeouts as URL parameters")
	}
	ctx := t.Context()
	base, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { base.Close() })
	holder, err := base.(*sqlstore.Store).DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.ExecContext(ctx, "LOCK TABLE tenants IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	for i, param := range []string{"lock_timeout=100", "statement_timeout=100"} {
		st, err := postgres.Open(ctx, dsn+"&"+param)
		if err != nil {
			t.Fatal(err)
		}
		err = st.CreateTenant(ctx, store.Tenant{ID: fmt.Sprint("t", i), Name: fmt.Sprint("n", i), Domain: fmt.Sprint("d", i, ".example")})
		st.Close()
		if !errors.Is(err, store.ErrBusy) {
			t.Errorf("%s: write waiting for a held lock: %v, want store.ErrBusy", param, err)
		}
	}
}
