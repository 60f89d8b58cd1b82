package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// testGeneration: every committed write a cache could have read moves the
// generation, after the commit; appending to the audit log or using a
// one-time key does not; a failed transaction may move it (that is only
// conservative) but a read never does.
func testGeneration(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	tn := f.tenant()
	moved := func(what string, fn func()) {
		t.Helper()
		before := st.Generation()
		fn()
		if st.Generation() == before {
			t.Errorf("%s did not move the generation", what)
		}
	}
	still := func(what string, fn func()) {
		t.Helper()
		before := st.Generation()
		fn()
		if got := st.Generation(); got != before {
			t.Errorf("%s moved the generation from %d to %d", what, before, got)
		}
	}
	var o store.Object
	moved("creating an object", func() { o = f.object(tn.ID, store.KindGroup, "", nil) })
	still("reading", func() {
		_, err := st.GetObject(f.ctx, tn.ID, store.KindGroup, o.ID)
		must(t, err, "get")
	})
	still("appending audit", func() {
		_, err := st.AppendAudit(f.ctx, store.AuditRecord{Actor: "a", Action: "x", Target: "y", Result: "ok"})
		must(t, err, "audit")
		must(t, st.AppendAudits(f.ctx, []store.AuditRecord{{Actor: "a", Action: "x", Target: "y", Result: "ok"}}), "audits")
	})
	still("using a one-time key", func() {
		must(t, st.UseOnce(f.ctx, "gen-"+newID(), time.Now().Add(time.Hour)), "use once")
	})
	moved("a committed transaction", func() {
		must(t, st.InTx(f.ctx, func(tx store.Store) error {
			before := st.Generation()
			if err := tx.DeleteObject(f.ctx, tn.ID, store.KindGroup, o.ID); err != nil {
				return err
			}
			if st.Generation() != before {
				t.Error("the generation moved before the transaction committed")
			}
			return nil
		}), "tx")
	})
	boom := errors.New("boom")
	_ = st.InTx(f.ctx, func(tx store.Store) error { return boom })
	moved("deleting the tenant", func() { must(t, st.DeleteTenant(f.ctx, tn.ID), "delete tenant") })
}
