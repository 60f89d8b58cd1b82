package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/Azure/go-amqp"
)

// The $management operations the SDK calls through its sender and
// receiver: schedule and cancel, peek (which sees scheduled messages),
// and lock renewal.
func TestAzservicebusManagement(t *testing.T) {
	w := newBusWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, sender, receiver := w.ordersClient(t)

	at := time.Now().Add(2 * time.Second)
	seqs, err := sender.ScheduleMessages(ctx, []*azservicebus.Message{{Body: []byte("keep")}, {Body: []byte("cancel me")}}, at, nil)
	mustBus(t, err)
	if len(seqs) != 2 || seqs[0] == seqs[1] {
		t.Fatalf("sequence numbers %v", seqs)
	}
	mustBus(t, sender.CancelScheduledMessages(ctx, seqs[1:], nil))
	if err := sender.CancelScheduledMessages(ctx, seqs[1:], nil); err == nil {
		t.Fatal("a cancelled message was cancelled again")
	}
	peeked, err := receiver.PeekMessages(ctx, 10, nil)
	mustBus(t, err)
	if len(peeked) != 1 || string(peeked[0].Body) != "keep" || peeked[0].ScheduledEnqueueTime == nil || peeked[0].State != azservicebus.MessageStateScheduled {
		t.Fatalf("peek: %d messages %+v", len(peeked), peeked)
	}
	// The scheduled message arrives at its time, not before.
	got := receiveN(t, ctx, receiver, 1)[0]
	if string(got.Body) != "keep" || time.Now().Before(at.Add(-500*time.Millisecond)) {
		t.Fatalf("received %q at %v, scheduled for %v", got.Body, time.Now(), at)
	}
	before := *got.LockedUntil
	time.Sleep(1100 * time.Millisecond)
	mustBus(t, receiver.RenewMessageLock(ctx, got, nil))
	if !got.LockedUntil.After(before) {
		t.Fatalf("renewed lock until %v, was %v", got.LockedUntil, before)
	}
	mustBus(t, receiver.CompleteMessage(ctx, got, nil))
	if err := receiver.RenewMessageLock(ctx, got, nil); err == nil {
		t.Fatal("the lock of a completed message was renewed")
	}
}

// A link whose token lapses, with no new token put on $cbs, is detached
// with amqp:unauthorized-access; the raw go-amqp client shows what the
// SDKs hide behind their token renewal.
func TestAMQPLinkDetachedWhenTokenExpires(t *testing.T) {
	w := newBusWorld(t)
	key, _ := w.listenSendKeys(t, "short")["primaryKey"].(string)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cbs := w.cbsClient(t, ctx)
	cbs.putSAS("put-1", "amqps://"+w.fqdn+"/orders", "short", key, time.Now().Add(2*time.Second))
	receiver, err := cbs.session.NewReceiver(ctx, "orders", nil)
	mustBus(t, err)
	_, err = receiver.Receive(ctx, nil) // no message comes; the token lapses meanwhile
	var linkErr *amqp.LinkError
	if !errors.As(err, &linkErr) || linkErr.RemoteErr == nil || linkErr.RemoteErr.Condition != amqp.ErrCondUnauthorizedAccess {
		t.Fatalf("receive past the token's expiry: %v, want the link detached with amqp:unauthorized-access", err)
	}
}
