package observe_test

import (
	"fmt"
	"testing"

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

// A scrape forgets the queues the store no longer has, and their series:
// a deleted queue frees its place under the bound.
func TestDeletedQueuesAreForgotten(t *testing.T) {
	m := observe.New(observe.Options{MaxQueues: 1, Store: storetest.SQLite(t)})
	m.QueueOpsApplied(send("/gone/1", 1))
	if got := queueLabels(t, m, "tenantbridge_servicebus_messages_sent_total"); got["/gone/1"] != 1 {
		t.Fatalf("before the scrape: %v", got)
	}
	// That Gather read the queue's depth and found no queue.
	m.QueueOpsApplied(send("/gone/2", 2))
	got := queueLabels(t, m, "tenantbridge_servicebus_messages_sent_total")
	if _, ok := got["/gone/1"]; ok || got["/gone/2"] != 2 || got["_other"] != 0 {
		t.Fatalf("after the deleted queue's scrape: %v", got)
	}
}

// What each commit counts: stored sends without duplicates, deliveries
// and redeliveries, settlements refused for a lost lock, dead-letters.
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
		{Messages: []store.QueueMessage{{DeliveryCount: 2}}},
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
