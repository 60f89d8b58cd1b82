package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

// Message deferral with the real azservicebus over AMQPS: DeferMessage
// (a modified disposition with undeliverable-here) sets a message aside,
// ordinary receives pass it by, ReceiveDeferredMessages
// ($management receive-by-sequence-number) locks it by its sequence
// number, and the SDK settles such a message on $management
// (update-disposition): complete, renew, abandon (deferred again) and
// dead-letter, read back from the dead-letter queue.
func TestAzservicebusDeferral(t *testing.T) {
	w := newBusWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client, sender, receiver := w.ordersClient(t)

	for _, body := range []string{"later", "refused"} {
		mustBus(t, sender.SendMessage(ctx, &azservicebus.Message{Body: []byte(body)}, nil))
	}
	got := receiveN(t, ctx, receiver, 2)
	if string(got[0].Body) != "later" || string(got[1].Body) != "refused" {
		t.Fatalf("received %q and %q", got[0].Body, got[1].Body)
	}
	for _, m := range got {
		mustBus(t, receiver.DeferMessage(ctx, m, nil))
	}
	// An ordinary receive does not get them.
	mustBus(t, sender.SendMessage(ctx, &azservicebus.Message{Body: []byte("plain")}, nil))
	if m := receiveN(t, ctx, receiver, 1)[0]; string(m.Body) != "plain" {
		t.Fatalf("an ordinary receive got %q", m.Body)
	} else {
		mustBus(t, receiver.CompleteMessage(ctx, m, nil))
	}
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	left, err := receiver.ReceiveMessages(short, 1, nil)
	cancelShort()
	if err == nil && len(left) > 0 {
		t.Fatalf("an ordinary receive got the deferred %q", left[0].Body)
	}
	// They are still in the queue: peek shows both.
	peeked, err := receiver.PeekMessages(ctx, 10, nil)
	mustBus(t, err)
	if len(peeked) != 2 || peeked[0].State != azservicebus.MessageStateDeferred || peeked[1].State != azservicebus.MessageStateDeferred {
		t.Fatalf("peek: %d messages, want the 2 deferred, in state deferred", len(peeked))
	}

	// Received by sequence number, with a lock; completed on $management.
	later, err := receiver.ReceiveDeferredMessages(ctx, []int64{*got[0].SequenceNumber}, nil)
	mustBus(t, err)
	if len(later) != 1 || string(later[0].Body) != "later" || later[0].LockToken == ([16]byte{}) || later[0].LockedUntil == nil ||
		later[0].SequenceNumber == nil || *later[0].SequenceNumber != *got[0].SequenceNumber {
		t.Fatalf("received deferred %+v", later)
	}
	if _, err := receiver.ReceiveDeferredMessages(ctx, []int64{*got[0].SequenceNumber}, nil); err == nil {
		t.Fatal("a deferred message locked already was received again")
	}
	before := *later[0].LockedUntil
	time.Sleep(1100 * time.Millisecond)
	mustBus(t, receiver.RenewMessageLock(ctx, later[0], nil))
	if !later[0].LockedUntil.After(before) {
		t.Fatalf("renewed the deferred lock until %v, was %v", later[0].LockedUntil, before)
	}
	mustBus(t, receiver.CompleteMessage(ctx, later[0], nil))
	if err := receiver.CompleteMessage(ctx, later[0], nil); err == nil {
		t.Fatal("a completed deferred message was completed again")
	}
	if again, err := receiver.ReceiveDeferredMessages(ctx, []int64{*got[0].SequenceNumber}, nil); err == nil && len(again) > 0 {
		t.Fatalf("a completed deferred message was received again: %q", again[0].Body)
	}
	if _, err := receiver.ReceiveDeferredMessages(ctx, []int64{*got[0].SequenceNumber + 1000}, nil); err == nil {
		t.Fatal("an unknown sequence number was received")
	}

	// The second: abandoned (deferred again, its delivery counted), then
	// dead-lettered with a reason.
	seq := *got[1].SequenceNumber
	refused, err := receiver.ReceiveDeferredMessages(ctx, []int64{seq}, nil)
	mustBus(t, err)
	if len(refused) != 1 || string(refused[0].Body) != "refused" {
		t.Fatalf("received deferred %+v", refused)
	}
	mustBus(t, receiver.AbandonMessage(ctx, refused[0], nil))
	again, err := receiver.ReceiveDeferredMessages(ctx, []int64{seq}, nil)
	mustBus(t, err)
	if len(again) != 1 || again[0].DeliveryCount != refused[0].DeliveryCount+1 {
		t.Fatalf("after abandon, received deferred %+v (delivery count was %d)", again, refused[0].DeliveryCount)
	}
	reason, desc := "Unprocessable", "deferred, then refused"
	mustBus(t, receiver.DeadLetterMessage(ctx, again[0], &azservicebus.DeadLetterOptions{Reason: &reason, ErrorDescription: &desc}))
	dlq, err := client.NewReceiverForQueue("orders", &azservicebus.ReceiverOptions{SubQueue: azservicebus.SubQueueDeadLetter})
	mustBus(t, err)
	defer dlq.Close(ctx)
	dead := receiveN(t, ctx, dlq, 1)[0]
	if string(dead.Body) != "refused" || dead.DeadLetterReason == nil || *dead.DeadLetterReason != reason ||
		dead.DeadLetterErrorDescription == nil || *dead.DeadLetterErrorDescription != desc || *dead.SequenceNumber != seq {
		t.Fatalf("dead-lettered deferred message %+v", dead)
	}
	mustBus(t, dlq.CompleteMessage(ctx, dead, nil))
	if peeked, err := receiver.PeekMessages(ctx, 10, nil); err != nil || len(peeked) != 0 {
		t.Fatalf("left in the queue: %d messages (%v)", len(peeked), err)
	}

	// Receive-and-delete by sequence number: gone once received.
	mustBus(t, sender.SendMessage(ctx, &azservicebus.Message{Body: []byte("rad")}, nil))
	m := receiveN(t, ctx, receiver, 1)[0]
	mustBus(t, receiver.DeferMessage(ctx, m, nil))
	rad, err := client.NewReceiverForQueue("orders", &azservicebus.ReceiverOptions{ReceiveMode: azservicebus.ReceiveModeReceiveAndDelete})
	mustBus(t, err)
	defer rad.Close(ctx)
	gone, err := rad.ReceiveDeferredMessages(ctx, []int64{*m.SequenceNumber}, nil)
	mustBus(t, err)
	if len(gone) != 1 || string(gone[0].Body) != "rad" {
		t.Fatalf("received and deleted deferred %+v", gone)
	}
	if peeked, err := receiver.PeekMessages(ctx, 10, nil); err != nil || len(peeked) != 0 {
		t.Fatalf("left after receive-and-delete: %d messages (%v)", len(peeked), err)
	}
}
