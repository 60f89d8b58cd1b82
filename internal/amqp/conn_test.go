package amqp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"

	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
)

// sendRecv sends n messages through the queue app and receives them back,
// accepting each.
func sendRecv(t *testing.T, c *goamqp.Conn, n int, settled bool) {
	t.Helper()
	s := openSession(t, c)
	mode := goamqp.SenderSettleModeUnsettled
	if settled {
		mode = goamqp.SenderSettleModeSettled
	}
	snd, err := s.NewSender(ctxT(t), "q", &goamqp.SenderOptions{SettlementMode: &mode})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := snd.Send(ctxT(t), goamqp.NewMessage(fmt.Appendf(nil, "m%d", i)), nil); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	rcv, err := s.NewReceiver(ctxT(t), "q", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		m, err := rcv.Receive(ctxT(t), nil)
		if err != nil {
			t.Fatalf("receive %d: %v", i, err)
		}
		if got, want := string(m.GetData()), fmt.Sprintf("m%d", i); got != want {
			t.Fatalf("message %d is %q, want %q", i, got, want)
		}
		if err := rcv.AcceptMessage(ctxT(t), m); err != nil {
			t.Fatal(err)
		}
	}
	if err := snd.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := rcv.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

func TestSendReceive(t *testing.T) {
	app := newQueueApp()
	ts := startServer(t, app.server(), nil)
	c := dial(t, ts, nil)
	t.Run("unsettled", func(t *testing.T) { sendRecv(t, c, 20, false) })
	t.Run("settled", func(t *testing.T) { sendRecv(t, c, 20, true) })
}

func TestTLS(t *testing.T) {
	srvCfg, cliCfg := testTLS(t)
	app := newQueueApp()
	srv := app.server()
	sni := make(chan string, 1)
	srv.Connect = func(_ context.Context, c *Conn) (Handler, error) {
		if c.TLS != nil {
			sni <- c.TLS.ServerName
		}
		return app, nil
	}
	ts := startServer(t, srv, srvCfg)
	cliCfg.ServerName = "ns1.servicebus.windows.net"
	c := dial(t, ts, &goamqp.ConnOptions{TLSConfig: cliCfg})
	sendRecv(t, c, 5, false)
	select {
	case name := <-sni:
		if name != "ns1.servicebus.windows.net" {
			t.Errorf("SNI %q", name)
		}
	default:
		t.Error("Connect saw no TLS state")
	}
}

// TestDispositions: the outcomes a receiver gives reach the application,
// in both receiver settle modes.
func TestDispositions(t *testing.T) {
	for _, mode := range []goamqp.ReceiverSettleMode{goamqp.ReceiverSettleModeFirst, goamqp.ReceiverSettleModeSecond} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			app := newQueueApp()
			ts := startServer(t, app.server(), nil)
			s := openSession(t, dial(t, ts, nil))
			for i := range 4 {
				app.msgs <- encodeMessage(t, fmt.Sprint(i))
			}
			rcv, err := s.NewReceiver(ctxT(t), "q", &goamqp.ReceiverOptions{SettlementMode: &mode})
			if err != nil {
				t.Fatal(err)
			}
			ctx := ctxT(t)
			settle := []func(m *goamqp.Message) error{
				func(m *goamqp.Message) error { return rcv.AcceptMessage(ctx, m) },
				func(m *goamqp.Message) error {
					return rcv.RejectMessage(ctx, m, &goamqp.Error{Condition: "test:bad", Description: "no"})
				},
				func(m *goamqp.Message) error { return rcv.ReleaseMessage(ctx, m) },
				func(m *goamqp.Message) error {
					return rcv.ModifyMessage(ctx, m, &goamqp.ModifyMessageOptions{DeliveryFailed: true, UndeliverableHere: true})
				},
			}
			var ids []uint32
			for i, f := range settle {
				m, err := rcv.Receive(ctx, nil)
				if err != nil {
					t.Fatalf("receive %d: %v", i, err)
				}
				if err := f(m); err != nil {
					t.Fatalf("settling %d: %v", i, err)
				}
				d := <-app.dispositions
				ids = append(ids, d.ID)
				if !d.Settled && mode == goamqp.ReceiverSettleModeFirst {
					t.Errorf("disposition %d not settled in mode first", i)
				}
				switch st := d.State.(type) {
				case *wire.Accepted:
					if i != 0 {
						t.Errorf("%d: accepted", i)
					}
				case *wire.Rejected:
					if i != 1 || st.Error == nil || st.Error.Condition != "test:bad" {
						t.Errorf("%d: rejected %+v", i, st.Error)
					}
				case *wire.Released:
					if i != 2 {
						t.Errorf("%d: released", i)
					}
				case *wire.Modified:
					if i != 3 || !st.DeliveryFailed || !st.UndeliverableHere {
						t.Errorf("%d: modified %+v", i, st)
					}
				default:
					t.Errorf("%d: state %T", i, d.State)
				}
			}
			if ids[0] == ids[1] || ids[1] == ids[2] {
				t.Errorf("delivery ids %v", ids)
			}
		})
	}
}

func encodeMessage(t testing.TB, body string) []byte {
	b, err := (&wire.Message{Data: [][]byte{[]byte(body)}}).Encoded()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLargeMessage: a 1 MiB message both ways with 512-byte frames.
func TestLargeMessage(t *testing.T) {
	app := newQueueApp()
	srv := app.server()
	srv.MaxFrameSize = 512
	srv.MaxMessageSize = 2 << 20
	ts := startServer(t, srv, nil)
	c := dial(t, ts, &goamqp.ConnOptions{MaxFrameSize: 512})
	s := openSession(t, c)
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	snd, err := s.NewSender(ctxT(t), "q", nil)
	if err != nil {
		t.Fatal(err)
	}
	if snd.MaxMessageSize() != 2<<20 {
		t.Errorf("max message size %d", snd.MaxMessageSize())
	}
	if err := snd.Send(ctxT(t), goamqp.NewMessage(body), nil); err != nil {
		t.Fatal(err)
	}
	rcv, err := s.NewReceiver(ctxT(t), "q", &goamqp.ReceiverOptions{MaxMessageSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	m, err := rcv.Receive(ctxT(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.GetData(), body) {
		t.Fatalf("got %d bytes back", len(m.GetData()))
	}
	if err := rcv.AcceptMessage(ctxT(t), m); err != nil {
		t.Fatal(err)
	}

}

// TestCredit: the server sends no more than the credit the receiver
// gave, and answers a drain.
func TestCredit(t *testing.T) {
	app := newQueueApp()
	app.settled = true
	ts := startServer(t, app.server(), nil)
	s := openSession(t, dial(t, ts, nil))
	for i := range 10 {
		app.msgs <- encodeMessage(t, fmt.Sprint(i))
	}
	rcv, err := s.NewReceiver(ctxT(t), "q", &goamqp.ReceiverOptions{Credit: -1})
	if err != nil {
		t.Fatal(err)
	}
	l := <-app.links
	if err := rcv.IssueCredit(3); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := rcv.Receive(ctxT(t), nil); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing more comes: the app's Send waits for credit.
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if m, err := rcv.Receive(short, nil); err == nil {
		t.Fatalf("received %q beyond credit", m.GetData())
	}
	if got := l.Credit(); got != 0 {
		t.Errorf("credit %d after 3 of 3", got)
	}
	// More credit, then a drain with credit left and the queue empty.
	if err := rcv.IssueCredit(2); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := rcv.Receive(ctxT(t), nil); err != nil {
			t.Fatal(err)
		}
	}
	for len(app.msgs) > 0 { // empty the queue (the feeder may hold one more)
		<-app.msgs
	}
	if err := rcv.IssueCredit(5); err != nil {
		t.Fatal(err)
	}
	app.msgs <- encodeMessage(t, "last")
	if _, err := rcv.Receive(ctxT(t), nil); err != nil {
		t.Fatal(err)
	}
	if err := rcv.DrainCredit(ctxT(t), nil); err != nil {
		t.Fatal(err)
	}
	if got := l.Credit(); got != 0 {
		t.Errorf("credit %d after drain", got)
	}
}

// TestServerDetach: the application detaches a link with an error; the
// client sees exactly that error.
func TestServerDetach(t *testing.T) {
	app := newQueueApp()
	ts := startServer(t, app.server(), nil)
	c := dial(t, ts, nil)
	s := openSession(t, c)
	rcv, err := s.NewReceiver(ctxT(t), "q", nil)
	if err != nil {
		t.Fatal(err)
	}
	l := <-app.links
	l.Detach(&wire.Error{Condition: wire.ErrUnauthorizedAccess, Description: "token expired"})
	_, err = rcv.Receive(ctxT(t), nil)
	var le *goamqp.LinkError
	if !errors.As(err, &le) || le.RemoteErr == nil || le.RemoteErr.Condition != goamqp.ErrCondUnauthorizedAccess || le.RemoteErr.Description != "token expired" {
		t.Fatalf("receive after detach: %v", err)
	}
	select {
	case <-l.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("link not done")
	}
	// The connection stays usable.
	sendRecv(t, c, 1, true)
}

// TestRefusedAttach: the application refuses; the client's attach fails
// with the application's error.
func TestRefusedAttach(t *testing.T) {
	app := newQueueApp()
	app.refuse = &wire.Error{Condition: wire.ErrNotFound, Description: "no queue q"}
	ts := startServer(t, app.server(), nil)
	s := openSession(t, dial(t, ts, nil))
	_, err := s.NewSender(ctxT(t), "q", nil)
	var ae *goamqp.Error
	if !errors.As(err, &ae) || ae.Condition != goamqp.ErrCondNotFound || ae.Description != "no queue q" {
		t.Fatalf("sender attach: %v", err)
	}
	_, err = s.NewReceiver(ctxT(t), "q", nil)
	if !errors.As(err, &ae) || ae.Condition != goamqp.ErrCondNotFound {
		t.Fatalf("receiver attach: %v", err)
	}
}

// TestReceiverSettleSecond: a sender asking us to settle second gets our
// outcome unsettled, settles, and gets our final settlement.
func TestReceiverSettleSecond(t *testing.T) {
	app := newQueueApp()
	ts := startServer(t, app.server(), nil)
	s := openSession(t, dial(t, ts, nil))
	second := goamqp.ReceiverSettleModeSecond
	snd, err := s.NewSender(ctxT(t), "q", &goamqp.SenderOptions{RequestedReceiverSettleMode: &second})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := snd.Send(ctxT(t), goamqp.NewMessage([]byte{byte(i)}), nil); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if len(app.msgs) != 3 {
		t.Fatalf("%d queued", len(app.msgs))
	}
}

// TestManualDrain: with Accept.ManualDrain the peer's drain is answered
// when the application says so.
func TestManualDrain(t *testing.T) {
	app := newQueueApp()
	app.manualDrain = true
	ts := startServer(t, app.server(), nil)
	s := openSession(t, dial(t, ts, nil))
	rcv, err := s.NewReceiver(ctxT(t), "q", &goamqp.ReceiverOptions{Credit: -1})
	if err != nil {
		t.Fatal(err)
	}
	l := <-app.links
	if err := rcv.IssueCredit(5); err != nil {
		t.Fatal(err)
	}
	drained := make(chan error, 1)
	go func() { drained <- rcv.DrainCredit(ctxT(t), nil) }()
	deadline := time.Now().Add(5 * time.Second)
	for !l.Draining() {
		if time.Now().After(deadline) {
			t.Fatal("no drain seen")
		}
		<-l.CreditChanged()
	}
	select {
	case err := <-drained:
		t.Fatalf("drain answered before DrainDone: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	// go-amqp's drain flow carries link-credit 0 (other clients keep
	// theirs, and the application may still use it here).
	l.DrainDone()
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	if l.Credit() != 0 {
		t.Errorf("credit %d after drain", l.Credit())
	}
}
