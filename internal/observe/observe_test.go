package observe_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/observe"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// queueLabels returns the queue label values of a family, with the values.
func queueLabels(t *testing.T, m *observe.Metrics, family string) map[string]float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "queue" {
					out[l.GetValue()] = s.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

func send(queue string, n int) ([]store.QueueOp, []store.QueueResult) {
	return []store.QueueOp{{Kind: store.QueueSend, QueueID: queue, Messages: make([]store.QueueMessage, n)}},
		[]store.QueueResult{{}}
}

// The first MaxQueues queues get series of their own, named by their
// lower-cased id; the rest share "_other"; ids differing only in case are
// one queue.
func TestQueueSeriesAreBounded(t *testing.T) {
	m := observe.New(observe.Options{MaxQueues: 2})
	for i, q := range []string{"/Q/A", "/q/a", "/q/b", "/q/c", "/q/d"} {
		m.QueueOpsApplied(send(q, i+1))
	}
	got := queueLabels(t, m, "tenantbridge_servicebus_messages_sent_total")
	want := map[string]float64{"/q/a": 1 + 2, "/q/b": 3, "_other": 4 + 5}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("sent by queue: %v, want %v", got, want)
	}
}

// A scrape reads the depth of the queues with series and forgets those
// the store no longer has, series and all: a deleted queue frees its place
// under the bound.
func TestDeletedQueuesAreForgotten(t *testing.T) {
	st := storetest.SQLite(t)
	ctx := t.Context()
	tn := store.Tenant{ID: uuid.NewString(), Name: "observed", Domain: "observed.onmicrosoft.com", SubscriptionID: uuid.NewString()}
	if err := st.CreateTenant(ctx, tn); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateResourceGroup(ctx, store.ResourceGroup{TenantID: tn.ID, SubscriptionID: tn.SubscriptionID, Name: "rg", Location: "westeurope"}); err != nil {
		t.Fatal(err)
	}
	ns := "/subscriptions/" + tn.SubscriptionID + "/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/bus"
	if err := st.CreateResource(ctx, store.Resource{TenantID: tn.ID, ID: ns, Type: "Microsoft.ServiceBus/namespaces", Name: "bus"}); err != nil {
		t.Fatal(err)
	}
	kept := ns + "/queues/kept"
	if err := st.CreateResource(ctx, store.Resource{TenantID: tn.ID, ID: kept, Type: store.QueueResourceType, Name: "kept"}); err != nil {
		t.Fatal(err)
	}
	if r := st.ApplyQueueOps(ctx, time.Now(), []store.QueueOp{{Kind: store.QueueSend, QueueID: kept,
		Limits:   store.QueueLimits{LockDuration: time.Minute, MaxDeliveryCount: 10, MaxSizeBytes: 1 << 20},
		Messages: []store.QueueMessage{{MessageID: "m1", Body: []byte("hello")}}}}); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}

	m := observe.New(observe.Options{MaxQueues: 2, Store: st})
	m.QueueOpsApplied(send(kept, 1))
	m.QueueOpsApplied(send(ns+"/queues/gone", 1)) // no such queue in the store
	m.QueueOpsApplied(send(ns+"/queues/third", 1))
	if got := queueLabels(t, m, "tenantbridge_servicebus_messages_sent_total"); got["_other"] != 1 {
		t.Fatalf("before the scrape, the third queue is past the bound: %v", got)
	}
	// That Gather read the depths: kept's, and found "gone" gone.
	depth := gaugeValue(t, m, "tenantbridge_servicebus_queue_messages", strings.ToLower(kept), "active")
	if depth != 1 {
		t.Fatalf("kept's active depth: %v, want 1", depth)
	}
	// "gone" freed its place: a new queue gets one, not "_other".
	m.QueueOpsApplied(send(ns+"/queues/fourth", 2))
	got := queueLabels(t, m, "tenantbridge_servicebus_messages_sent_total")
	if _, ok := got[strings.ToLower(ns+"/queues/gone")]; ok || got[strings.ToLower(kept)] != 1 || got["_other"] != 1 {
		t.Fatalf("after the deleted queue's scrape: %v", got)
	}
}

// gaugeValue reads one series of a gauge family with the given queue and
// state labels.
func gaugeValue(t *testing.T, m *observe.Metrics, family, queue, state string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, s := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["queue"] == queue && labels["state"] == state {
				return s.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("%s{queue=%q,state=%q} not found", family, queue, state)
	return 0
}

// What each commit counts: stored sends without duplicates, deliveries
// and redeliveries, lock expiries, settlements refused for a lost lock,
// dead-letters.
func TestQueueOpsCounted(t *testing.T) {
	m := observe.New(observe.Options{})
	const q = "/q"
	ops := []store.QueueOp{
		{Kind: store.QueueSend, QueueID: q, Messages: make([]store.QueueMessage, 3)},
		{Kind: store.QueueLock, QueueID: q},
		{Kind: store.QueueReceiveAndDelete, QueueID: q},
		{Kind: store.QueueComplete, QueueID: q},
		{Kind: store.QueueLock, QueueID: q},
		{Kind: store.QueueAbandon, QueueID: q},
		{Kind: store.QueueDeadLetter, QueueID: q},
	}
	results := []store.QueueResult{
		{Duplicates: []int{1}},
		{Messages: []store.QueueMessage{{DeliveryCount: 2}}, LockExpired: true},
		{Messages: []store.QueueMessage{{DeliveryCount: 1}}},
		{Err: fmt.Errorf("settle: %w", store.ErrLockLost)},
		{Err: store.ErrNotFound},
		{DeadLettered: true},
		{DeadLettered: true},
	}
	m.QueueOpsApplied(ops, results)
	for family, want := range map[string]float64{
		"tenantbridge_servicebus_messages_sent_total":     2,
		"tenantbridge_servicebus_messages_received_total": 2,
		"tenantbridge_servicebus_redeliveries_total":      1,
		"tenantbridge_servicebus_lock_expired_total":      1,
		"tenantbridge_servicebus_lock_lost_total":         1,
		"tenantbridge_servicebus_dead_lettered_total":     2,
	} {
		if got := queueLabels(t, m, family)[q]; got != want {
			t.Errorf("%s: %v, want %v", family, got, want)
		}
	}
}

// Counting a commit allocates nothing once its queue has series: the
// broker's commit loop pays an atomic add per operation.
func TestQueueOpsCountedWithoutAllocating(t *testing.T) {
	m := observe.New(observe.Options{})
	ops, results := send("/subscriptions/s/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/n/queues/Q", 10)
	ops = append(ops, store.QueueOp{Kind: store.QueueLock, QueueID: ops[0].QueueID})
	results = append(results, store.QueueResult{Messages: []store.QueueMessage{{DeliveryCount: 1}}})
	m.QueueOpsApplied(ops, results)
	if n := testing.AllocsPerRun(100, func() { m.QueueOpsApplied(ops, results) }); n != 0 {
		t.Fatalf("QueueOpsApplied allocates %v times per commit", n)
	}
	if n := testing.AllocsPerRun(100, func() { m.Request("graph", 404, "Request_ResourceNotFound", 1) }); n > 1 {
		t.Fatalf("Request allocates %v times per request", n)
	}
}

// Error codes become label values only when they look like codes, and
// only up to a bound; past it, and for anything else, "other".
func TestErrorCodesAreBounded(t *testing.T) {
	m := observe.New(observe.Options{})
	m.Request("graph", 400, "Request_BadRequest", 0)
	m.Request("graph", 400, "a sentence, with <markup>", 0)
	for i := range 400 {
		m.Request("arm", 400, fmt.Sprintf("Code%d", i), 0)
	}
	codes := map[string]float64{}
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "tenantbridge_http_requests_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "error_code" {
					codes[l.GetValue()] += s.GetCounter().GetValue()
				}
			}
		}
	}
	if len(codes) > 301 || codes["Request_BadRequest"] != 1 || codes["Code0"] != 1 {
		t.Fatalf("%d error codes; Request_BadRequest %v, Code0 %v", len(codes), codes["Request_BadRequest"], codes["Code0"])
	}
	// The sentence, and the code-shaped ones past the bound (401 seen,
	// 300 admitted).
	if want := float64(1 + 401 - 300); codes["other"] != want {
		t.Fatalf("other: %v, want %v", codes["other"], want)
	}
}
