package conformance

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

func testInTx(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	ctx := f.ctx
	newTenant := func() store.Tenant {
		id := newID()
		return store.Tenant{ID: id, Name: "tx" + id[:8], Domain: "tx" + id[:8] + ".example", SubscriptionID: newID()}
	}
	exists := func(tn store.Tenant) bool {
		t.Helper()
		_, err := st.GetTenant(ctx, tn.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("get tenant: %v", err)
		}
		return err == nil
	}
	objectExists := func(tenantID, id string) bool {
		t.Helper()
		_, err := st.GetObject(ctx, tenantID, store.KindUser, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("get object: %v", err)
		}
		return err == nil
	}
	user := func(tenantID string) store.Object {
		return store.Object{TenantID: tenantID, ID: newID(), Kind: store.KindUser, DisplayName: "u"}
	}

	t.Run("commit", func(t *testing.T) {
		tn, u := newTenant(), user("")
		u.TenantID = tn.ID
		err := st.InTx(ctx, func(tx store.Store) error {
			if err := tx.CreateTenant(ctx, tn); err != nil {
				return err
			}
			if err := tx.CreateObject(ctx, u); err != nil {
				return err
			}
			// The transaction sees its own writes ...
			if _, err := tx.GetObject(ctx, tn.ID, store.KindUser, u.ID); err != nil {
				return fmt.Errorf("read own write: %w", err)
			}
			// ... and nobody else does before the commit.
			if exists(tn) {
				t.Error("uncommitted tenant visible outside the transaction")
			}
			return nil
		})
		must(t, err, "InTx")
		if !exists(tn) || !objectExists(tn.ID, u.ID) {
			t.Error("committed writes not visible")
		}
	})

	t.Run("rollback returns the error unchanged", func(t *testing.T) {
		tn := newTenant()
		err := st.InTx(ctx, func(tx store.Store) error {
			if err := tx.CreateTenant(ctx, tn); err != nil {
				return err
			}
			return errBoom
		})
		if err != errBoom {
			t.Errorf("InTx returned %v, want errBoom itself", err)
		}
		if exists(tn) {
			t.Error("rolled back tenant exists")
		}
	})

	t.Run("nested commits with the outer transaction", func(t *testing.T) {
		tn, u := newTenant(), user("")
		u.TenantID = tn.ID
		err := st.InTx(ctx, func(tx store.Store) error {
			if err := tx.CreateTenant(ctx, tn); err != nil {
				return err
			}
			return tx.InTx(ctx, func(inner store.Store) error {
				if _, err := inner.GetTenant(ctx, tn.ID); err != nil {
					return fmt.Errorf("nested transaction does not see the outer one: %w", err)
				}
				return inner.CreateObject(ctx, u)
			})
		})
		must(t, err, "InTx")
		if !exists(tn) || !objectExists(tn.ID, u.ID) {
			t.Error("nested writes not committed")
		}
	})

	t.Run("nested failure propagated rolls back everything", func(t *testing.T) {
		tn, u := newTenant(), user("")
		u.TenantID = tn.ID
		err := st.InTx(ctx, func(tx store.Store) error {
			if err := tx.CreateTenant(ctx, tn); err != nil {
				return err
			}
			return tx.InTx(ctx, func(inner store.Store) error {
				if err := inner.CreateObject(ctx, u); err != nil {
					return err
				}
				return errInner
			})
		})
		if err != errInner {
			t.Errorf("InTx returned %v, want errInner itself", err)
		}
		if exists(tn) {
			t.Error("tenant of a failed transaction exists")
		}
	})

	t.Run("nested failure handled undoes only the nested writes", func(t *testing.T) {
		tn, u1, u2 := newTenant(), user(""), user("")
		u1.TenantID, u2.TenantID = tn.ID, tn.ID
		err := st.InTx(ctx, func(tx store.Store) error {
			if err := tx.CreateTenant(ctx, tn); err != nil {
				return err
			}
			err := tx.InTx(ctx, func(inner store.Store) error {
				if err := inner.CreateObject(ctx, u1); err != nil {
					return err
				}
				return errInner
			})
			if err != errInner {
				return fmt.Errorf("nested InTx returned %v, want errInner itself", err)
			}
			if _, err := tx.GetObject(ctx, tn.ID, store.KindUser, u1.ID); !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("write of the failed nested transaction still visible: %v", err)
			}
			return tx.CreateObject(ctx, u2)
		})
		must(t, err, "InTx")
		if !exists(tn) || !objectExists(tn.ID, u2.ID) {
			t.Error("outer writes not committed")
		}
		if objectExists(tn.ID, u1.ID) {
			t.Error("write of the failed nested transaction committed")
		}
	})

	t.Run("store errors leave the transaction usable", func(t *testing.T) {
		taken := f.tenant()
		tn, u := newTenant(), user("")
		u.TenantID = tn.ID
		err := st.InTx(ctx, func(tx store.Store) error {
			if err := tx.CreateTenant(ctx, tn); err != nil {
				return err
			}
			dup := taken
			dup.ID = newID()
			if err := tx.CreateTenant(ctx, dup); !errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("duplicate tenant name: got %v, want ErrConflict", err)
			}
			if _, err := tx.GetObject(ctx, tn.ID, store.KindUser, newID()); !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("get unknown: got %v, want ErrNotFound", err)
			}
			if err := tx.DeleteObject(ctx, tn.ID, store.KindUser, newID()); !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("delete unknown: got %v, want ErrNotFound", err)
			}
			return tx.CreateObject(ctx, u)
		})
		must(t, err, "InTx")
		if !exists(tn) || !objectExists(tn.ID, u.ID) {
			t.Error("writes after a handled error not committed")
		}
	})

	t.Run("panic rolls back", func(t *testing.T) {
		tn := newTenant()
		func() {
			defer func() {
				if recover() == nil {
					t.Error("panic was swallowed")
				}
			}()
			_ = st.InTx(ctx, func(tx store.Store) error {
				if err := tx.CreateTenant(ctx, tn); err != nil {
					return err
				}
				panic("boom")
			})
		}()
		if exists(tn) {
			t.Error("tenant of a panicking transaction exists")
		}
		// The store is not left locked.
		f.tenant()
	})

	t.Run("transaction store is dead after InTx", func(t *testing.T) {
		var kept store.Store
		must(t, st.InTx(ctx, func(tx store.Store) error { kept = tx; return nil }), "InTx")
		if err := kept.CreateTenant(ctx, newTenant()); err == nil {
			t.Error("write through a finished transaction succeeded")
		}
	})
}

// testConcurrentUpdate races writers that all start from version 1:
// optimistic concurrency must let exactly one of them win.
func testConcurrentUpdate(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	tn := f.tenant()
	o := f.object(tn.ID, store.KindGroup, "", nil)
	const writers = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
		errs    []error
	)
	start := make(chan struct{})
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			upd := o
			upd.DisplayName = fmt.Sprintf("writer %d", i)
			<-start
			_, err := st.UpdateObject(f.ctx, upd)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				winners = append(winners, upd.DisplayName)
			} else {
				errs = append(errs, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d updates from the same version succeeded, want exactly 1 (%v); errors: %v", len(winners), winners, errs)
	}
	for _, err := range errs {
		if !errors.Is(err, store.ErrPrecondition) {
			t.Errorf("losing update: got %v, want ErrPrecondition", err)
		}
	}
	got, err := st.GetObject(f.ctx, tn.ID, store.KindGroup, o.ID)
	must(t, err, "get")
	if got.Version != 2 || got.DisplayName != winners[0] {
		t.Errorf("after the race: version %d display name %q, want 2 %q", got.Version, got.DisplayName, winners[0])
	}
}

// testConcurrentCreate races creates of applications with one appId in
// different tenants: the global unique key must let exactly one win.
func testConcurrentCreate(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	const writers = 6
	tenants := make([]store.Tenant, writers)
	for i := range tenants {
		tenants[i] = f.tenant()
	}
	appID := newID()
	var (
		wg   sync.WaitGroup
		errs = make([]error, writers)
	)
	start := make(chan struct{})
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = st.CreateObject(f.ctx, store.Object{TenantID: tenants[i].ID, ID: newID(), Kind: store.KindApplication, AppID: appID, DisplayName: "app"})
		}()
	}
	close(start)
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("losing create: got %v, want ErrConflict", err)
		}
	}
	if won != 1 {
		t.Errorf("%d creates of one appId succeeded, want exactly 1", won)
	}
	if got := f.list(store.ObjectQuery{Kind: store.KindApplication, AppID: appID}); len(got) != 1 {
		t.Errorf("%d applications with the appId, want 1", len(got))
	}
}
