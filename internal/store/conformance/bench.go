package conformance

import (
	"fmt"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// benchData is a directory document of a typical size (about 1 KiB).
var benchData = []byte(fmt.Sprintf(`{"displayName":"bench","description":%q,"tags":["a","b","c"]}`, make([]byte, 900)))

func benchTenant(b *testing.B, st store.Store) string {
	b.Helper()
	id := newID()
	if err := st.CreateTenant(b.Context(), store.Tenant{ID: id, Name: "bench" + id[:8], Domain: "bench" + id[:8] + ".example"}); err != nil {
		b.Fatal(err)
	}
	return id
}

// BenchmarkCreateObject measures creating a user with one unique name: an
// object row and a name row in one transaction.
func BenchmarkCreateObject(b *testing.B, st store.Store) {
	tenantID := benchTenant(b, st)
	i := 0
	for b.Loop() {
		id := newID()
		err := st.CreateObject(b.Context(), store.Object{TenantID: tenantID, ID: id, Kind: store.KindUser,
			DisplayName: "user", Names: []string{fmt.Sprintf("user%d@bench.example", i)}, Data: benchData})
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkGetObject measures reading an object by its key.
func BenchmarkGetObject(b *testing.B, st store.Store) {
	tenantID := benchTenant(b, st)
	ids := make([]string, 200)
	err := st.InTx(b.Context(), func(tx store.Store) error {
		for i := range ids {
			ids[i] = newID()
			if err := tx.CreateObject(b.Context(), store.Object{TenantID: tenantID, ID: ids[i], Kind: store.KindUser,
				DisplayName: "user", Data: benchData}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		if _, err := st.GetObject(b.Context(), tenantID, store.KindUser, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
