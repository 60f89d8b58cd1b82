package sqlstore_test

import (
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// A delivery reports a lock expiry exactly when the message's previous
// lock lapsed unsettled: not on a first delivery, not after an abandon or
// a deferral, but on a peek-lock or a receive-and-delete that takes a
// message whose lock ran out, and on a deferred message's lock that ran
// out.
func TestDeliveryReportsLockExpiry(t *testing.T) {
	for name, open := range map[string]func(testing.TB) store.Store{"sqlite": storetest.SQLite, "postgres": storetest.Postgres} {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			q := benchQueue(t, st)
			qs := st.(store.Queues)
			lim := store.QueueLimits{LockDuration: time.Minute, MaxDeliveryCount: 10}
			now := time.Now()
			apply := func(at time.Time, op store.QueueOp) store.QueueResult {
				t.Helper()
				op.QueueID, op.Limits = q, lim
				r := qs.ApplyQueueOps(t.Context(), at, []store.QueueOp{op})[0]
				if r.Err != nil {
					t.Fatalf("%v: %v", op.Kind, r.Err)
				}
				return r
			}
			apply(now, store.QueueOp{Kind: store.QueueSend, Messages: []store.QueueMessage{{Body: []byte("a")}, {Body: []byte("b")}}})

			first := apply(now, store.QueueOp{Kind: store.QueueLock, LockToken: "t1"})
			if first.LockExpired {
				t.Errorf("a first delivery reports a lock expiry")
			}
			seq := first.Messages[0].SequenceNumber
			// Abandoned, then delivered again: no expiry.
			apply(now, store.QueueOp{Kind: store.QueueAbandon, SequenceNumber: seq, LockToken: "t1"})
			if r := apply(now, store.QueueOp{Kind: store.QueueLock, LockToken: "t2"}); r.LockExpired || r.Messages[0].SequenceNumber != seq {
				t.Errorf("the abandoned message's delivery: seq %d, expired %v", r.Messages[0].SequenceNumber, r.LockExpired)
			}
			// t2's lock lapses: the next peek-lock reports it.
			later := now.Add(2 * time.Minute)
			if r := apply(later, store.QueueOp{Kind: store.QueueLock, LockToken: "t3"}); !r.LockExpired || r.Messages[0].SequenceNumber != seq {
				t.Errorf("delivery after the lock lapsed: seq %d, expired %v", r.Messages[0].SequenceNumber, r.LockExpired)
			}
			// The other message, locked for the first time.
			other := apply(later, store.QueueOp{Kind: store.QueueLock, LockToken: "t4"})
			if other.LockExpired {
				t.Errorf("a first delivery of the second message reports a lock expiry")
			}
			// Both locks lapse; a receive-and-delete takes the first.
			muchLater := later.Add(2 * time.Minute)
			if r := apply(muchLater, store.QueueOp{Kind: store.QueueReceiveAndDelete}); !r.LockExpired {
				t.Errorf("receive-and-delete of a message whose lock lapsed: no expiry reported")
			}
			// The second is deferred under a fresh lock; locked by sequence
			// number it is no expiry, and once that lock lapses it is.
			r := apply(muchLater, store.QueueOp{Kind: store.QueueLock, LockToken: "t5"})
			if !r.LockExpired {
				t.Errorf("the second message's lapsed lock: no expiry reported")
			}
			seq = r.Messages[0].SequenceNumber
			apply(muchLater, store.QueueOp{Kind: store.QueueDefer, SequenceNumber: seq, LockToken: "t5"})
			if r := apply(muchLater, store.QueueOp{Kind: store.QueueLockDeferred, SequenceNumber: seq, LockToken: "t6"}); r.LockExpired {
				t.Errorf("a deferred message's first lock reports an expiry")
			}
			if r := apply(muchLater.Add(2*time.Minute), store.QueueOp{Kind: store.QueueLockDeferred, SequenceNumber: seq, LockToken: "t7"}); !r.LockExpired {
				t.Errorf("a deferred message's lapsed lock: no expiry reported")
			}
		})
	}
}
