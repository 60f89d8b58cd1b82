package servicebus

import (
	"context"
	"crypto/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// nextEventReads counts the store's NextQueueEvent reads of the real
// store it wraps.
type nextEventReads struct {
	store.Queues
	n atomic.Int64
}

func (r *nextEventReads) NextQueueEvent(ctx context.Context, queueID string, deadLetter bool) (time.Time, bool, error) {
	r.n.Add(1)
	return r.Queues.NextQueueEvent(ctx, queueID, deadLetter)
}

// TestSoleWriterKeepsNextEvent: a broker that is its store's sole writer
// (the embedded store) keeps a NextQueueEvent answer past nextEventTTL
// until a commit forgets it, and remembers that a queue had no message
// at all; a broker sharing its store (PostgreSQL) reads it again after
// nextEventTTL. The answers are the ones the store gives.
func TestSoleWriterKeepsNextEvent(t *testing.T) {
	ctx := t.Context()
	st := storetest.SQLite(t)
	tn := store.Tenant{ID: rand.Text(), Name: "sole", Domain: "sole.onmicrosoft.com", SubscriptionID: rand.Text()}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.CreateTenant(ctx, tn))
	must(st.CreateResourceGroup(ctx, store.ResourceGroup{TenantID: tn.ID, SubscriptionID: tn.SubscriptionID, Name: "RG", Location: "westeurope"}))
	ns := "/subscriptions/" + tn.SubscriptionID + "/resourceGroups/RG/providers/Microsoft.ServiceBus/namespaces/Bus"
	must(st.CreateResource(ctx, store.Resource{TenantID: tn.ID, ID: ns, Type: NamespaceType, Name: "Bus"}))
	lim := store.QueueLimits{LockDuration: time.Minute, MaxDeliveryCount: 10}

	for _, sole := range []bool{true, false} {
		name := map[bool]string{true: "sole", false: "shared"}[sole]
		t.Run(name, func(t *testing.T) {
			q := ns + "/queues/" + name
			must(st.CreateResource(ctx, store.Resource{TenantID: tn.ID, ID: q, Type: QueueType, Name: name}))
			reads := &nextEventReads{Queues: st.(store.Queues)}
			var opts []BrokerOption
			if sole {
				opts = append(opts, WithSoleWriter())
			}
			b := NewBroker(reads, nil, nil, opts...)
			t.Cleanup(b.Close)
			k := keyOf(q, false)
			op := store.QueueOp{Kind: store.QueueLock, QueueID: q, Limits: lim, LockToken: "t"}
			age := func() { // as if nextEventTTL had passed since the last read
				b.mu.Lock()
				b.next[k].read = time.Now().Add(-2 * nextEventTTL)
				b.mu.Unlock()
			}

			// An empty queue: no event, remembered (as good until the
			// earliest a lock taken after the read could end).
			at, ok, err := b.nextQueueEvent(ctx, k, op)
			if err != nil || ok {
				t.Fatalf("empty queue: %v %v %v; want no event", at, ok, err)
			}
			if _, ok, _ = b.nextQueueEvent(ctx, k, op); ok || reads.n.Load() != 1 {
				t.Fatalf("%d reads for two questions in a row (event %v)", reads.n.Load(), ok)
			}
			age()
			_, _, _ = b.nextQueueEvent(ctx, k, op)
			if want := map[bool]int64{true: 1, false: 2}[sole]; reads.n.Load() != want {
				t.Fatalf("%d reads after nextEventTTL; want %d", reads.n.Load(), want)
			}
			// Past the lock duration a lock taken after the read may have
			// ended: the store is asked again.
			n0 := reads.n.Load()
			b.mu.Lock()
			b.next[k].at = time.Now().Add(-time.Millisecond)
			b.mu.Unlock()
			if _, _, _ = b.nextQueueEvent(ctx, k, op); reads.n.Load() != n0+1 {
				t.Fatalf("the store was not asked again once an empty answer's horizon passed")
			}

			// A message sent and locked: the lock's end is the answer.
			if r := b.Do(ctx, store.QueueOp{Kind: store.QueueSend, QueueID: q, Limits: lim, Messages: []store.QueueMessage{{Body: []byte("m")}}}); r.Err != nil {
				t.Fatal(r.Err)
			}
			r := b.Do(ctx, op)
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			b.forgetNext(store.QueueOp{Kind: store.QueueAbandon, QueueID: q}, store.QueueResult{}, time.Now()) // as an abandon would
			n := reads.n.Load()
			at, ok, err = b.nextQueueEvent(ctx, k, op)
			if err != nil || !ok || !at.Equal(r.LockedUntil) || reads.n.Load() != n+1 {
				t.Fatalf("after a lock: %v %v %v (%d reads); want the lock's end %v from the store", at, ok, err, reads.n.Load()-n, r.LockedUntil)
			}
			age()
			at2, _, _ := b.nextQueueEvent(ctx, k, op)
			if want := map[bool]int64{true: n + 1, false: n + 2}[sole]; reads.n.Load() != want || !at2.Equal(at) {
				t.Fatalf("%d reads after nextEventTTL (want %d), answer %v (want %v)", reads.n.Load(), want, at2, at)
			}
		})
	}
}
