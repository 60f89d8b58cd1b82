package servicebus

import (
	"os"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/sqlstore"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// TestBrokerAnswersDurableOpsAfterSync: on SQLite the broker commits
// without waiting for the disk and answers sends and completes only once
// a sync made them durable. With the WAL file gone, so that no sync can
// vouch for them, a send fails with the sync's error, while a lock (light:
// it never waited for the disk) is still answered.
func TestBrokerAnswersDurableOpsAfterSync(t *testing.T) {
	ctx := t.Context()
	st := storetest.SQLite(t)
	q := syncTestQueue(t, st)
	b := NewBroker(st.(store.Queues), nil, nil)
	defer b.Close()
	if b.syncer == nil {
		t.Fatal("the broker does not defer its syncs on SQLite")
	}
	lim := store.QueueLimits{LockDuration: time.Minute, MaxDeliveryCount: 10}
	send := func(body string) store.QueueResult {
		return b.Do(ctx, store.QueueOp{Kind: store.QueueSend, QueueID: q, Limits: lim, Messages: []store.QueueMessage{{Body: []byte(body)}}})
	}
	if r := send("kept"); r.Err != nil {
		t.Fatal(r.Err)
	}
	r := b.Do(ctx, store.QueueOp{Kind: store.QueueLock, QueueID: q, Limits: lim, LockToken: "t1"})
	if r.Err != nil || len(r.Messages) != 1 || string(r.Messages[0].Body) != "kept" {
		t.Fatalf("lock: %+v", r)
	}
	if r := b.Do(ctx, store.QueueOp{Kind: store.QueueComplete, QueueID: q, Limits: lim, SequenceNumber: r.Messages[0].SequenceNumber, LockToken: "t1"}); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := send("second"); r.Err != nil {
		t.Fatal(r.Err)
	}

	var seq int
	var name, file string
	if err := st.(*sqlstore.Store).DB().QueryRowContext(ctx, "PRAGMA database_list").Scan(&seq, &name, &file); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(file + "-wal"); err != nil {
		t.Fatal(err)
	}
	if r := send("unvouched"); r.Err == nil {
		t.Error("a send was answered as kept with no sync behind it")
	}
	if r := b.Do(ctx, store.QueueOp{Kind: store.QueueLock, QueueID: q, Limits: lim, LockToken: "t2"}); r.Err != nil {
		t.Errorf("a lock waited for the failed sync: %v", r.Err)
	}
}

// syncTestQueue creates a tenant, a namespace and a queue in st and returns
// the queue's id.
func syncTestQueue(t *testing.T, st store.Store) string {
	ctx := t.Context()
	tn := store.Tenant{ID: "22222222-2222-4222-8222-222222222222", Name: "sync", Domain: "sync.example", SubscriptionID: "sub"}
	if err := st.CreateTenant(ctx, tn); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateResourceGroup(ctx, store.ResourceGroup{TenantID: tn.ID, SubscriptionID: "sub", Name: "rg", Location: "x"}); err != nil {
		t.Fatal(err)
	}
	ns := "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/ns"
	q := ns + "/queues/q"
	for _, r := range []store.Resource{
		{TenantID: tn.ID, ID: ns, Type: "Microsoft.ServiceBus/namespaces", Name: "ns"},
		{TenantID: tn.ID, ID: q, Type: store.QueueResourceType, Name: "q"},
	} {
		if err := st.CreateResource(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	return q
}
