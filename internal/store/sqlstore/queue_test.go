package sqlstore_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/sqlstore"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// BenchmarkApplyQueueOps measures the broker's group commit: batches of 30
// or 120 ops, a third each of sends, locks and completes (of the previous
// batch's locks, so that no locks pile up), one message per
// send (256-byte body), against one queue with duplicate detection and a
// quota; each iteration is one batch, one transaction, the three kinds
// interleaved. The broker/ variants commit each iteration's ops as the
// broker does (servicebus.Broker.commitLoop): the locks (light) in one
// transaction, then the sends and completes, interleaved, in another.
// msgs/s counts messages end to end (send + lock + complete = 3 ops).
func BenchmarkApplyQueueOps(b *testing.B) {
	for _, size := range []int{30, 120} {
		b.Run(fmt.Sprintf("sqlite/batch=%d", size), func(b *testing.B) { benchApplyQueueOps(b, storetest.SQLite(b), size, false) })
		b.Run(fmt.Sprintf("postgres/batch=%d", size), func(b *testing.B) { benchApplyQueueOps(b, storetest.Postgres(b), size, false) })
		b.Run(fmt.Sprintf("sqlite/broker/batch=%d", size), func(b *testing.B) { benchApplyQueueOps(b, storetest.SQLite(b), size, true) })
		b.Run(fmt.Sprintf("postgres/broker/batch=%d", size), func(b *testing.B) { benchApplyQueueOps(b, storetest.Postgres(b), size, true) })
	}
}

// TestLightBatchSynchronous: a batch of locks (light) commits with
// synchronous=NORMAL, and the queue connection is back at FULL after it,
// so that the next batch of sends is durable at its commit.
func TestLightBatchSynchronous(t *testing.T) {
	ctx := t.Context()
	st := storetest.SQLite(t)
	q := benchQueue(t, st)
	qs := st.(store.Queues)
	lim := store.QueueLimits{LockDuration: time.Minute, MaxDeliveryCount: 10}
	now := time.Now()
	level := func() int {
		t.Helper()
		n, err := sqlstore.WriterSynchronous(ctx, st.(*sqlstore.Store))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	send := store.QueueOp{Kind: store.QueueSend, QueueID: q, Limits: lim, Messages: []store.QueueMessage{{Body: []byte("a")}, {Body: []byte("b")}}}
	if r := qs.ApplyQueueOps(ctx, now, []store.QueueOp{send}); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	if n := level(); n != 2 {
		t.Fatalf("synchronous after a send = %d, want 2 (FULL)", n)
	}
	rs := qs.ApplyQueueOps(ctx, now, []store.QueueOp{
		{Kind: store.QueueLock, QueueID: q, Limits: lim, LockToken: "t1"},
		{Kind: store.QueueLock, QueueID: q, Limits: lim, LockToken: "t2"},
	})
	for _, r := range rs {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if n := level(); n != 2 {
		t.Fatalf("synchronous after a light batch = %d, want 2 (FULL)", n)
	}
	// A failed light batch (nothing to lock) leaves it FULL too.
	if r := qs.ApplyQueueOps(ctx, now, []store.QueueOp{{Kind: store.QueueLock, QueueID: q, Limits: lim, LockToken: "t3"}}); r[0].Err == nil {
		t.Fatal("locked a third message of two")
	}
	if n := level(); n != 2 {
		t.Fatalf("synchronous after an empty light batch = %d, want 2 (FULL)", n)
	}
	if n, err := sqlstore.LightSynchronous(ctx, st.(*sqlstore.Store)); err != nil || n != 1 {
		t.Fatalf("synchronous inside a light batch = %d, %v; want 1 (NORMAL)", n, err)
	}
	if n := level(); n != 2 {
		t.Fatalf("synchronous after a light batch rolled back = %d, want 2 (FULL)", n)
	}
	// The locks took effect: the messages complete under them.
	rs = qs.ApplyQueueOps(ctx, now, []store.QueueOp{
		{Kind: store.QueueComplete, QueueID: q, Limits: lim, SequenceNumber: rs[0].Messages[0].SequenceNumber, LockToken: "t1"},
		{Kind: store.QueueComplete, QueueID: q, Limits: lim, SequenceNumber: rs[1].Messages[0].SequenceNumber, LockToken: "t2"},
	})
	for _, r := range rs {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
}

// benchQueue creates a tenant, a namespace and a queue in st and returns
// the queue's id.
func benchQueue(tb testing.TB, st store.Store) string {
	ctx := tb.Context()
	tn := store.Tenant{ID: "11111111-1111-4111-8111-111111111111", Name: "bench", Domain: "bench.example", SubscriptionID: "sub"}
	if err := st.CreateTenant(ctx, tn); err != nil {
		tb.Fatal(err)
	}
	if err := st.CreateResourceGroup(ctx, store.ResourceGroup{TenantID: tn.ID, SubscriptionID: "sub", Name: "rg", Location: "x"}); err != nil {
		tb.Fatal(err)
	}
	q := "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/ns/queues/q"
	for _, r := range []store.Resource{
		{TenantID: tn.ID, ID: "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/ns", Type: "Microsoft.ServiceBus/namespaces", Name: "ns"},
		{TenantID: tn.ID, ID: q, Type: store.QueueResourceType, Name: "q"},
	} {
		if err := st.CreateResource(ctx, r); err != nil {
			tb.Fatal(err)
		}
	}
	return q
}

func benchApplyQueueOps(b *testing.B, st store.Store, size int, split bool) {
	ctx := b.Context()
	q := benchQueue(b, st)
	qs := st.(store.Queues)
	lim := store.QueueLimits{LockDuration: time.Minute, MaxDeliveryCount: 10, DuplicateDetection: true, DuplicateWindow: 10 * time.Minute, MaxSizeBytes: 1 << 30}
	body := make([]byte, 256)
	props := []byte(`{"BrokerProperties":{"Label":"cmd"},"UserProperties":{"Priority":"High"}}`)
	now := time.Now()
	type held struct {
		seq   int64
		token string
	}
	var locked []held
	n := 0
	b.ResetTimer()
	for b.Loop() {
		now = now.Add(time.Millisecond)
		ops := make([]store.QueueOp, 0, size)
		for i := range size {
			n++
			switch i % 3 {
			case 0:
				ops = append(ops, store.QueueOp{Kind: store.QueueSend, QueueID: q, Limits: lim,
					Messages: []store.QueueMessage{{MessageID: fmt.Sprint("m", n), Body: body, Properties: props}}})
			case 1:
				ops = append(ops, store.QueueOp{Kind: store.QueueLock, QueueID: q, Limits: lim, LockToken: fmt.Sprint("t", n)})
			case 2:
				if len(locked) > 0 {
					h := locked[0]
					locked = locked[1:]
					ops = append(ops, store.QueueOp{Kind: store.QueueComplete, QueueID: q, Limits: lim, SequenceNumber: h.seq, LockToken: h.token})
				} else {
					ops = append(ops, store.QueueOp{Kind: store.QueueRenew, QueueID: q, Limits: lim, SequenceNumber: 1, LockToken: "none"})
				}
			}
		}
		results := make([]store.QueueResult, len(ops))
		if split {
			var light, durable []int
			for i, op := range ops {
				if op.Kind.Light() {
					light = append(light, i)
				} else {
					durable = append(durable, i)
				}
			}
			for _, part := range [][]int{light, durable} {
				batch := make([]store.QueueOp, len(part))
				for k, i := range part {
					batch[k] = ops[i]
				}
				for k, r := range qs.ApplyQueueOps(ctx, now, batch) {
					results[part[k]] = r
				}
			}
		} else {
			results = qs.ApplyQueueOps(ctx, now, ops)
		}
		for i, r := range results {
			switch ops[i].Kind {
			case store.QueueSend:
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			case store.QueueLock:
				if r.Err == nil {
					locked = append(locked, held{r.Messages[0].SequenceNumber, r.Messages[0].LockToken})
				}
			case store.QueueComplete:
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
		}
	}
	b.ReportMetric(float64(b.N)*float64(size)/3/b.Elapsed().Seconds(), "msgs/s")
}

// TestResourcesNamedUsesItsIndex: finding a namespace or vault by name
// reads the index of migration 0022, not every resource (which made each
// new AMQP connection of a large fleet scan the whole table).
func TestResourcesNamedUsesItsIndex(t *testing.T) {
	st := storetest.SQLite(t)
	plan, err := sqlstore.ResourcesNamedPlan(t.Context(), st.(*sqlstore.Store))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "arm_resources_named") || strings.Contains(plan, "SCAN arm_resources") {
		t.Fatalf("ResourcesNamed's plan does not search arm_resources_named:\n%s", plan)
	}
}
