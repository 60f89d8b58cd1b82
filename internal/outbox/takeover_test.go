package outbox

import (
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// TestIdleDelivererTakesOverADeadOnesClaim: a message enqueued and
// claimed by another process, which then died holding the claim, is
// delivered by an idle deliverer with LookEvery once the claim has run
// out, without a Notify (the dead process's Notify never reached this
// one); without LookEvery it is not, since the idle deliverer never looks.
func TestIdleDelivererTakesOverADeadOnesClaim(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, st store.Store) {
		for _, every := range []time.Duration{0, 50 * time.Millisecond} {
			w := newWorld(t, st)
			e := newEndpoint(t, nil)
			m := w.enqueue(e.srv.URL, "k", 0)
			// The other process claims it and dies. (Claimed before this
			// deliverer starts: a running one with LookEvery could take
			// it first.)
			if got, err := st.DueOutbox(t.Context(), w.clock.Now(), 1); err != nil || len(got) != 1 || got[0].ID != m.ID {
				t.Fatalf("claim: %v %v", got, err)
			}
			d := w.deliverer(Config{LookEvery: every})
			run(t, d)
			time.Sleep(100 * time.Millisecond) // idle: the one message is claimed
			if got := w.message(m.ID); got.Attempts != 0 {
				t.Fatal("the deliverer took a message another process holds a claim on")
			}
			w.clock.Advance(10 * time.Minute) // the claim has run out
			if every == 0 {
				time.Sleep(500 * time.Millisecond)
				if got := w.message(m.ID); got.Attempts != 0 {
					t.Fatal("an idle deliverer without LookEvery looked at the store")
				}
				continue
			}
			waitFor(t, "the dead process's message delivered by the idle deliverer", func() bool {
				return w.message(m.ID).State == store.OutboxDelivered
			})
		}
	})
}
