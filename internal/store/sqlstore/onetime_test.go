package sqlstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// TestPruneUsedBatches: PruneUsed deletes in batches and counts them all.
func TestPruneUsedBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("writes thousands of records")
	}
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		ctx := t.Context()
		const n = 5000*2 + 7 // more than two batches
		exp := time.Now().Add(time.Hour)
		err := st.InTx(ctx, func(tx store.Store) error {
			for i := range n {
				if err := tx.UseOnce(ctx, fmt.Sprintf("batch:%d", i), exp); err != nil {
					return err
				}
			}
			return tx.UseOnce(ctx, "batch:later", exp.Add(time.Hour))
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := st.PruneUsed(ctx, exp)
		if err != nil || got != n {
			t.Fatalf("PruneUsed = %d, %v; want %d", got, err, n)
		}
		got, err = st.PruneUsed(ctx, exp.Add(2*time.Hour))
		if err != nil || got != 1 {
			t.Fatalf("PruneUsed of the last = %d, %v; want 1", got, err)
		}
	})
}
