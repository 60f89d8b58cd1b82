package server_test

// Message sessions with the real azservicebus: a queue that requires
// sessions, named and next-available sessions, FIFO within a session,
// session state, lock renewal, release on close, the refusals Service Bus
// answers, and ListSessions; over AMQPS and over WebSockets.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

func TestAzservicebusSessionsOverAMQPS(t *testing.T) {
	w := newBusWorld(t)
	exerciseSessions(t, w, w.amqpsOptions())
}

func TestAzservicebusSessionsOverWebSockets(t *testing.T) {
	w := newBusWorld(t)
	exerciseSessions(t, w, w.webSocketOptions())
}

func exerciseSessions(t *testing.T, w *busWorld, opts *azservicebus.ClientOptions) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w.arm(t, "PUT", w.namespaceID()+"/queues/fifo", `{"properties":{"requiresSession":true,"lockDuration":"PT10S"}}`)
	client, err := azservicebus.NewClient(w.fqdn, w.adminCredential(t), opts)
	mustBus(t, err)
	defer client.Close(context.Background())
	sender, err := client.NewSender("fifo", nil)
	mustBus(t, err)

	// A message without a session id is refused, as Service Bus refuses it.
	err = sender.SendMessage(ctx, &azservicebus.Message{Body: []byte("no session")}, nil)
	if err == nil {
		t.Fatal("a message without a SessionId was accepted by a queue that requires sessions")
	}
	// Interleaved sessions.
	for i := range 3 {
		for _, s := range []string{"alpha", "beta"} {
			sid := s
			mustBus(t, sender.SendMessage(ctx, &azservicebus.Message{Body: []byte(fmt.Sprintf("%s-%d", s, i)), SessionID: &sid}, nil))
		}
	}
	// A receiver without a session cannot be attached.
	plain, err := client.NewReceiverForQueue("fifo", nil)
	mustBus(t, err)
	if _, err := plain.ReceiveMessages(ctx, 1, nil); err == nil {
		t.Fatal("a non-session receiver received from a queue that requires sessions")
	}
	_ = plain.Close(ctx)

	// Next available: the session of the first message.
	first, err := client.AcceptNextSessionForQueue(ctx, "fifo", nil)
	mustBus(t, err)
	if first.SessionID() != "alpha" || time.Until(first.LockedUntil()) <= 0 {
		t.Fatalf("next session %q locked until %v", first.SessionID(), first.LockedUntil())
	}
	// Named, while another receiver holds alpha.
	beta, err := client.AcceptSessionForQueue(ctx, "fifo", "beta", nil)
	mustBus(t, err)
	// alpha cannot be accepted twice.
	if _, err := client.AcceptSessionForQueue(ctx, "fifo", "alpha", nil); err == nil {
		t.Fatal("a held session was accepted again")
	}
	// Nothing else is available: the next-session accept times out with
	// the SDK's CodeTimeout.
	short, cancelShort := context.WithTimeout(ctx, 1500*time.Millisecond)
	_, err = client.AcceptNextSessionForQueue(short, "fifo", nil)
	cancelShort()
	var sbErr *azservicebus.Error
	if err == nil || !(errors.As(err, &sbErr) && sbErr.Code == azservicebus.CodeTimeout) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("next session with every session held: %v", err)
	}

	// FIFO within each session, each receiver seeing only its session.
	got := func(r *azservicebus.SessionReceiver, n int) []string {
		t.Helper()
		var out []string
		for len(out) < n {
			ms, err := r.ReceiveMessages(ctx, n-len(out), nil)
			mustBus(t, err)
			for _, m := range ms {
				if m.SessionID == nil || *m.SessionID != r.SessionID() {
					t.Fatalf("session %s received a message of session %v", r.SessionID(), m.SessionID)
				}
				out = append(out, string(m.Body))
				mustBus(t, r.CompleteMessage(ctx, m, nil))
			}
		}
		return out
	}
	if a := got(first, 2); !slices.Equal(a, []string{"alpha-0", "alpha-1"}) {
		t.Fatalf("alpha delivered %v", a)
	}
	if b := got(beta, 3); !slices.Equal(b, []string{"beta-0", "beta-1", "beta-2"}) {
		t.Fatalf("beta delivered %v", b)
	}

	// Session state, and renewal of the 10 s lock (10 s, not less: a loaded
	// machine must not lose the lock before the renewal).
	mustBus(t, first.SetSessionState(ctx, []byte("checkpoint 2"), nil))
	state, err := first.GetSessionState(ctx, nil)
	mustBus(t, err)
	if string(state) != "checkpoint 2" {
		t.Fatalf("session state %q", state)
	}
	before := first.LockedUntil()
	time.Sleep(1100 * time.Millisecond)
	mustBus(t, first.RenewSessionLock(ctx, nil))
	if !first.LockedUntil().After(before) {
		t.Fatalf("renewal did not move the lock: %v then %v", before, first.LockedUntil())
	}

	// ListSessions: alpha (a message and state) and beta's none left.
	pager := client.NewListSessionsForQueuePager("fifo", nil)
	var listed []string
	for pager.More() {
		page, err := pager.NextPage(ctx)
		mustBus(t, err)
		listed = append(listed, page.Sessions...)
	}
	if !slices.Equal(listed, []string{"alpha"}) {
		t.Fatalf("sessions listed %v, want [alpha]", listed)
	}

	// An abandoned message comes back first; closing the receiver with a
	// message locked releases the session, and the next holder gets it.
	ms, err := first.ReceiveMessages(ctx, 1, nil)
	mustBus(t, err)
	if string(ms[0].Body) != "alpha-2" {
		t.Fatalf("third alpha message %q", ms[0].Body)
	}
	mustBus(t, first.AbandonMessage(ctx, ms[0], nil))
	ms, err = first.ReceiveMessages(ctx, 1, nil)
	mustBus(t, err)
	if string(ms[0].Body) != "alpha-2" || ms[0].DeliveryCount != 2 {
		t.Fatalf("after abandon: %q delivery count %d", ms[0].Body, ms[0].DeliveryCount)
	}
	mustBus(t, first.Close(ctx))
	mustBus(t, beta.Close(ctx))
	again, err := client.AcceptNextSessionForQueue(ctx, "fifo", nil)
	mustBus(t, err)
	if again.SessionID() != "alpha" {
		t.Fatalf("after release, next session %q", again.SessionID())
	}
	state, err = again.GetSessionState(ctx, nil)
	mustBus(t, err)
	if string(state) != "checkpoint 2" {
		t.Fatalf("state seen by the next holder %q", state)
	}
	ms, err = again.ReceiveMessages(ctx, 1, nil)
	mustBus(t, err)
	// The closed receiver's delivery was not counted (Message sessions,
	// "Impact of delivery count").
	if string(ms[0].Body) != "alpha-2" || ms[0].DeliveryCount != 2 {
		t.Fatalf("after release: %q delivery count %d", ms[0].Body, ms[0].DeliveryCount)
	}
	mustBus(t, again.CompleteMessage(ctx, ms[0], nil))
	mustBus(t, again.SetSessionState(ctx, nil, nil))

	// A lock left to lapse ends the session: settling then fails, and the
	// session is available to others.
	sid := "gamma"
	mustBus(t, sender.SendMessage(ctx, &azservicebus.Message{Body: []byte("gamma-0"), SessionID: &sid}, nil))
	gamma, err := client.AcceptSessionForQueue(ctx, "fifo", "gamma", nil)
	mustBus(t, err)
	ms, err = gamma.ReceiveMessages(ctx, 1, nil)
	mustBus(t, err)
	time.Sleep(time.Until(gamma.LockedUntil()) + 500*time.Millisecond)
	// Settling now fails. (The SDK treats a lost session lock as
	// retryable, accepting the session again and retrying until its
	// context ends: azservicebus GetRecoveryKindForSession.)
	short, cancelShort = context.WithTimeout(ctx, 2*time.Second)
	err = gamma.CompleteMessage(short, ms[0], nil)
	cancelShort()
	if err == nil {
		t.Fatal("a message was completed after its session's lock lapsed")
	}
	// Close reports the detach that ended the session (session-lock-lost).
	_ = gamma.Close(ctx)
	other, err := client.AcceptSessionForQueue(ctx, "fifo", "gamma", nil)
	mustBus(t, err)
	ms, err = other.ReceiveMessages(ctx, 1, nil)
	mustBus(t, err)
	if string(ms[0].Body) != "gamma-0" || ms[0].DeliveryCount != 2 {
		t.Fatalf("after a lapsed session lock: %q delivery count %d", ms[0].Body, ms[0].DeliveryCount)
	}
	mustBus(t, other.CompleteMessage(ctx, ms[0], nil))
}
