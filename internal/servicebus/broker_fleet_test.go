package servicebus

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/postgres"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// TestBrokersOnOneStoreWakeEachOther: two brokers, as two servers of a
// fleet, each over its own connection to one PostgreSQL schema. A receiver
// waiting on broker A (with a timeout far longer than the test allows) is
// woken by a send committed through broker B: by the store's queue
// wake-ups (store.QueueWakeFeed), not by a timer. Receivers of a session
// and of the dead-letter queue likewise.
func TestBrokersOnOneStoreWakeEachOther(t *testing.T) {
	dsn := storetest.PostgresSchemaDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	open := func() store.Store {
		st, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	stA, stB := open(), open()
	tn := store.Tenant{ID: rand.Text(), Name: "fleet", Domain: "fleet.onmicrosoft.com", SubscriptionID: rand.Text()}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(stA.CreateTenant(ctx, tn))
	must(stA.CreateResourceGroup(ctx, store.ResourceGroup{TenantID: tn.ID, SubscriptionID: tn.SubscriptionID, Name: "RG", Location: "westeurope"}))
	ns := "/subscriptions/" + tn.SubscriptionID + "/resourceGroups/RG/providers/Microsoft.ServiceBus/namespaces/Bus"
	must(stA.CreateResource(ctx, store.Resource{TenantID: tn.ID, ID: ns, Type: "Microsoft.ServiceBus/namespaces", Name: "Bus"}))
	queue := func(name string) string {
		id := ns + "/queues/" + name
		must(stA.CreateResource(ctx, store.Resource{TenantID: tn.ID, ID: id, Type: store.QueueResourceType, Name: name}))
		return id
	}
	plain, sessions := queue("plain"), queue("sessions")
	lim := store.QueueLimits{LockDuration: time.Minute, MaxDeliveryCount: 1}
	slim := lim
	slim.RequiresSession = true

	brokerOf := func(st store.Store) *Broker {
		b := NewBroker(st.(store.Queues), nil, nil)
		st.(store.QueueWakeFeed).OnQueueWakes(b.WakeFromElsewhere)
		t.Cleanup(b.Close)
		return b
	}
	a, b := brokerOf(stA), brokerOf(stB)

	const wait = 2 * time.Minute // a receiver that is not woken outlives the test
	receive := func(op store.QueueOp) <-chan error {
		done := make(chan error, 1)
		go func() {
			m, err := a.Receive(ctx, op, wait)
			if err == nil && string(m.Body) != "hello" {
				err = fmt.Errorf("received %q", m.Body)
			}
			done <- err
		}()
		return done
	}
	woken := func(what string, done <-chan error, send func()) {
		t.Helper()
		time.Sleep(300 * time.Millisecond) // let the receiver find nothing and sleep
		send()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: the receiver on broker A was not woken by the commit on broker B", what)
		}
	}
	sendOn := func(queueID string, l store.QueueLimits, m store.QueueMessage) func() {
		return func() {
			if r := b.Do(ctx, store.QueueOp{Kind: store.QueueSend, QueueID: queueID, Limits: l, Messages: []store.QueueMessage{m}}); r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	hello := store.QueueMessage{MessageID: "m1", Body: []byte("hello")}

	woken("queue", receive(store.QueueOp{Kind: store.QueueReceiveAndDelete, QueueID: plain, Limits: lim}),
		sendOn(plain, lim, hello))

	// A dead-letter receiver on A, woken by a dead-lettering on B.
	dl := receive(store.QueueOp{Kind: store.QueueReceiveAndDelete, QueueID: plain, DeadLetter: true, Limits: lim})
	woken("dead-letter queue", dl, func() {
		sendOn(plain, lim, hello)()
		r := b.Do(ctx, store.QueueOp{Kind: store.QueueLock, QueueID: plain, Limits: lim, LockToken: rand.Text()})
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		m := r.Messages[0]
		if r := b.Do(ctx, store.QueueOp{Kind: store.QueueDeadLetter, QueueID: plain, Limits: lim, SequenceNumber: m.SequenceNumber,
			LockToken: m.LockToken}); r.Err != nil {
			t.Fatal(r.Err)
		}
	})

	// Accepting the next session on A, woken by a send in a session on B.
	accepted := make(chan error, 1)
	go func() {
		r, err := a.AcceptSession(ctx, store.QueueOp{Kind: store.QueueLockSession, QueueID: sessions, Limits: slim, LockToken: rand.Text()}, wait)
		if err == nil && r.SessionID != "s1" {
			err = fmt.Errorf("accepted session %q", r.SessionID)
		}
		accepted <- err
	}()
	sm := hello
	sm.MessageID, sm.SessionID = "m2", "s1"
	woken("next session", accepted, sendOn(sessions, slim, sm))
}
