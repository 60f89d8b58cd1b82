package sqlstore_test

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// TestResourceGroupsConcurrent: concurrent creates of one group, in
// different cases, store it once; the losers get ErrConflict, nothing else.
// Hostile text finds nothing and stores nothing.
func TestResourceGroupsConcurrent(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		tn := store.Tenant{ID: "22222222-2222-4222-8222-222222222222", Name: "t2", Domain: "t2.example", SubscriptionID: "33333333-3333-4333-8333-333333333333"}
		if err := st.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
		var (
			wg sync.WaitGroup
			mu sync.Mutex
			ok int
		)
		for i := range 8 {
			wg.Go(func() {
				name := "Group"
				if i%2 == 1 {
					name = strings.ToUpper(name)
				}
				err := st.CreateResourceGroup(ctx, store.ResourceGroup{TenantID: tn.ID, SubscriptionID: tn.SubscriptionID, Name: name, Location: "westeurope"})
				if err != nil && !errors.Is(err, store.ErrConflict) {
					t.Errorf("create: %v", err)
				}
				if err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if ok != 1 {
			t.Errorf("%d creates succeeded, want 1", ok)
		}
		for _, bad := range []string{"a\x00b", "\xff"} {
			if _, err := st.GetResourceGroup(ctx, tn.SubscriptionID, bad); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("get %q: %v", bad, err)
			}
			if _, err := st.GetResource(ctx, bad); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("get resource %q: %v", bad, err)
			}
			if err := st.DeleteResourceGroup(ctx, tn.SubscriptionID, bad); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("delete %q: %v", bad, err)
			}
			err := st.CreateResourceGroup(ctx, store.ResourceGroup{TenantID: tn.ID, SubscriptionID: tn.SubscriptionID, Name: bad, Location: "x"})
			if err == nil || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
				t.Errorf("create %q: %v", bad, err)
			}
		}
		// Inside a transaction that rolls back, nothing stays.
		boom := errors.New("boom")
		err := st.InTx(ctx, func(tx store.Store) error {
			if err := tx.CreateResourceGroup(ctx, store.ResourceGroup{TenantID: tn.ID, SubscriptionID: tn.SubscriptionID, Name: "rolled-back", Location: "x"}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if _, err := st.GetResourceGroup(ctx, tn.SubscriptionID, "rolled-back"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("rolled-back group: %v", err)
		}
	})
}
