package sqlstore_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// TestSecretVersionsConcurrent: concurrent sets of one name never store
// two versions with one sequence number; a loser gets ErrConflict (which
// the vault service retries), never another error.
func TestSecretVersionsConcurrent(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		tn := store.Tenant{ID: "11111111-1111-4111-8111-111111111111", Name: "t1", Domain: "t1.example", SubscriptionID: "s"}
		if err := st.CreateTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateVault(ctx, store.Vault{TenantID: tn.ID, Name: "kv1", SoftDeleteRetentionDays: 90, EnableSoftDelete: true}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for i := range 8 {
			wg.Go(func() {
				_, err := st.CreateSecretVersion(ctx, store.Secret{Vault: "kv1", Name: "s", Version: fmt.Sprintf("%032x", i), Value: []byte("v"), Enabled: true})
				if err != nil && !errors.Is(err, store.ErrConflict) {
					t.Errorf("set: %v", err)
				}
				if err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		vs, err := st.ListSecretVersions(ctx, store.SecretQuery{Vault: "kv1", Name: "s"})
		if err != nil || len(vs) != ok || ok == 0 {
			t.Fatalf("%d versions stored, %d sets succeeded: %v", len(vs), ok, err)
		}
		seen := map[int64]bool{}
		for _, v := range vs {
			if seen[v.Seq] {
				t.Fatalf("duplicate seq %d", v.Seq)
			}
			seen[v.Seq] = true
		}
		_, err = st.UpdateSecret(ctx, store.Secret{Vault: "kv1", Name: "s", Version: vs[0].Version, Tags: map[string]string{"a": "b\x00"}})
		if err == nil || errors.Is(err, store.ErrNotFound) {
			t.Errorf("tag with NUL: %v", err)
		}
	})
}
