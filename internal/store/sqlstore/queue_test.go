package sqlstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// BenchmarkApplyQueueOps measures the broker's group commit: batches of 30
// or 120 ops, a third each of sends, locks and completes (of the previous
// batch's locks, so that no locks pile up), one message per
// send (256-byte body), against one queue with duplicate detection and a
// quota; each iteration is one batch, one transaction. msgs/s counts
// messages end to end (send + lock + complete = 3 ops).
func BenchmarkApplyQueueOps(b *testing.B) {
	for _, size := range []int{30, 120} {
		b.Run(fmt.Sprintf("sqlite/batch=%d", size), func(b *testing.B) { benchApplyQueueOps(b, storetest.SQLite(b), size) })
		b.Run(fmt.Sprintf("postgres/batch=%d", size), func(b *testing.B) { benchApplyQueueOps(b, storetest.Postgres(b), size) })
	}
}

func benchApplyQueueOps(b *testing.B, st store.Store, size int) {
	ctx := b.Context()
	tn := store.Tenant{ID: "11111111-1111-4111-8111-111111111111", Name: "bench", Domain: "bench.example", SubscriptionID: "sub"}
	if err := st.CreateTenant(ctx, tn); err != nil {
		b.Fatal(err)
	}
	if err := st.CreateResourceGroup(ctx, store.ResourceGroup{TenantID: tn.ID, SubscriptionID: "sub", Name: "rg", Location: "x"}); err != nil {
		b.Fatal(err)
	}
	q := "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/ns/queues/q"
	for _, r := range []store.Resource{
		{TenantID: tn.ID, ID: "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/ns", Type: "Microsoft.ServiceBus/namespaces", Name: "ns"},
		{TenantID: tn.ID, ID: q, Type: store.QueueResourceType, Name: "q"},
	} {
		if err := st.CreateResource(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
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
		for i, r := range qs.ApplyQueueOps(ctx, now, ops) {
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
