package amqp

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"

	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
)

// TestIdleKeepsAlive: with short idle timeouts on both sides, a quiet
// connection stays up on heartbeats alone and works afterwards.
func TestIdleKeepsAlive(t *testing.T) {
	app := newQueueApp()
	srv := app.server()
	srv.IdleTimeout = 400 * time.Millisecond
	ts := startServer(t, srv, nil)
	c := dial(t, ts, &goamqp.ConnOptions{IdleTimeout: 400 * time.Millisecond})
	s := openSession(t, c)
	time.Sleep(2 * time.Second)
	snd, err := s.NewSender(ctxT(t), "q", nil)
	if err != nil {
		t.Fatalf("after a quiet 2 s: %v", err)
	}
	if err := snd.Send(ctxT(t), goamqp.NewMessage([]byte("still here")), nil); err != nil {
		t.Fatal(err)
	}
}

// TestShutdownForcesClose: cancelling ServeConn's context closes the
// connection with amqp:connection:forced.
func TestShutdownForcesClose(t *testing.T) {
	app := newQueueApp()
	ts := startServer(t, app.server(), nil)
	c := dial(t, ts, nil)
	s := openSession(t, c)
	rcv, err := s.NewReceiver(ctxT(t), "q", nil)
	if err != nil {
		t.Fatal(err)
	}
	ts.cancel()
	_, err = rcv.Receive(ctxT(t), nil)
	var ce *goamqp.ConnError
	if !errors.As(err, &ce) || ce.RemoteErr == nil || ce.RemoteErr.Condition != goamqp.ErrCondConnectionForced {
		t.Fatalf("receive after shutdown: %v", err)
	}
}

// TestCleanup: many connections, sessions and links, some with waiting
// Sends; closing them (by the client, or dropping the transport) leaves
// no goroutine behind.
func TestCleanup(t *testing.T) {
	app := newQueueApp()
	ts := startServer(t, app.server(), nil)
	runtime.GC()
	base := runtime.NumGoroutine()

	for round := range 2 {
		var conns []*goamqp.Conn
		for range 4 {
			c, err := goamqp.Dial(ctxT(t), "amqp://"+ts.addr, &goamqp.ConnOptions{SASLType: goamqp.SASLTypeAnonymous()})
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			for range 3 {
				s := openSession(t, c)
				for range 5 {
					if _, err := s.NewSender(ctxT(t), "q", nil); err != nil {
						t.Fatal(err)
					}
					// Receivers whose feeders wait in Send for credit.
					if _, err := s.NewReceiver(ctxT(t), "q", &goamqp.ReceiverOptions{Credit: -1}); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		for i := range 40 {
			app.msgs <- encodeMessage(t, fmt.Sprint(i))
		}
		// Peers that vanish without a close, mid-message, with links
		// both ways.
		var raws []*rawPeer
		for range 2 * round {
			p := rawDial(t, ts.addr)
			p.open(0)
			p.beginAttachSender()
			id, format := uint32(0), uint32(0)
			p.send(0, &wire.Transfer{Handle: 0, DeliveryID: &id, DeliveryTag: []byte{1}, MessageFormat: &format, More: true}, []byte("partial"))
			p.send(0, &wire.Attach{Name: "r", Handle: 1, Role: true, Source: &wire.Source{Address: "q"}, Target: &wire.Target{}}, nil)
			p.next()
			raws = append(raws, p)
		}
		for _, c := range conns {
			c.Close()
		}
		for _, p := range raws {
			p.nc.Close()
		}
		waitGoroutines(t, base)
		for len(app.msgs) > 0 {
			<-app.msgs
		}
		for len(app.redo) > 0 {
			<-app.redo
		}
	}
}

// TestRequestResponse: a $cbs-like node built on Replies: the client
// attaches a sender to the node and a receiver from it whose target is
// its reply-to; each request gets a reply correlated by message-id.
func TestRequestResponse(t *testing.T) {
	srv := &Server{Connect: func(context.Context, *Conn) (Handler, error) {
		replies := &Replies{} // per connection
		return HandlerFunc(func(ctx context.Context, l *Link) (*Accept, error) {
			if !l.PeerSends() {
				if l.PeerAttach.Source == nil || l.PeerAttach.Source.Address != "$cbs" {
					return nil, &wire.Error{Condition: wire.ErrNotFound}
				}
				replies.Add(l)
				return &Accept{}, nil
			}
			return &Accept{OnDelivery: func(ctx context.Context, d *Delivery) wire.DeliveryState {
				req, err := wire.DecodeMessage(d.Payload)
				if err != nil || req.Properties == nil {
					return &wire.Rejected{Error: &wire.Error{Condition: wire.ErrDecodeError}}
				}
				op, _ := req.ApplicationProperties.Get("operation")
				reply := &wire.Message{
					Properties:            &wire.Properties{CorrelationID: req.Properties.MessageID},
					ApplicationProperties: wire.Map{{Key: "status-code", Value: int32(200)}, {Key: "echo", Value: op}},
				}
				if ok, err := replies.Send(ctx, req.Properties.ReplyTo, reply); !ok || err != nil {
					return &wire.Rejected{Error: &wire.Error{Condition: wire.ErrNotFound, Description: "no reply link"}}
				}
				return &wire.Accepted{}
			}}, nil
		}), nil
	}}
	ts := startServer(t, srv, nil)
	s := openSession(t, dial(t, ts, nil))
	snd, err := s.NewSender(ctxT(t), "$cbs", nil)
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := s.NewReceiver(ctxT(t), "$cbs", &goamqp.ReceiverOptions{TargetAddress: "cbs-reply-1"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		id := fmt.Sprintf("req-%d", i)
		req := &goamqp.Message{
			Properties:            &goamqp.MessageProperties{MessageID: id, ReplyTo: ptr("cbs-reply-1")},
			ApplicationProperties: map[string]any{"operation": "put-token"},
			Value:                 "token",
		}
		if err := snd.Send(ctxT(t), req, nil); err != nil {
			t.Fatal(err)
		}
		resp, err := rcv.Receive(ctxT(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Properties == nil || resp.Properties.CorrelationID != id {
			t.Fatalf("reply %+v", resp.Properties)
		}
		if code, _ := resp.ApplicationProperties["status-code"].(int32); code != 200 || resp.ApplicationProperties["echo"] != "put-token" {
			t.Fatalf("reply properties %v", resp.ApplicationProperties)
		}
		if err := rcv.AcceptMessage(ctxT(t), resp); err != nil {
			t.Fatal(err)
		}
	}
	// A request whose reply-to has no link is rejected by this node.
	req := &goamqp.Message{Properties: &goamqp.MessageProperties{MessageID: "x", ReplyTo: ptr("nobody")}, Value: "t"}
	var ae *goamqp.Error
	if err := snd.Send(ctxT(t), req, nil); !errors.As(err, &ae) || ae.Condition != goamqp.ErrCondNotFound {
		t.Fatalf("send without reply link: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestLinkLimit: an attach beyond Server.MaxLinks is refused with
// amqp:resource-limit-exceeded; a detach makes room again.
func TestLinkLimit(t *testing.T) {
	app := newQueueApp()
	srv := app.server()
	srv.MaxLinks = 2
	ts := startServer(t, srv, nil)
	s := openSession(t, dial(t, ts, nil))
	a, err := s.NewSender(ctxT(t), "q", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.NewSender(ctxT(t), "q", nil); err != nil {
		t.Fatal(err)
	}
	_, err = s.NewSender(ctxT(t), "q", nil)
	var ae *goamqp.Error
	if !errors.As(err, &ae) || ae.Condition != goamqp.ErrCondResourceLimitExceeded {
		t.Fatalf("third attach: %v", err)
	}
	if err := a.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NewSender(ctxT(t), "q", nil); err != nil {
		t.Fatalf("attach after a detach: %v", err)
	}
}

// TestSettleLater: OnDelivery leaves deliveries unsettled and the
// application settles them later, from another goroutine, out of order;
// each client Send completes with its own outcome.
func TestSettleLater(t *testing.T) {
	got := make(chan *Delivery, 10)
	srv := &Server{Connect: func(context.Context, *Conn) (Handler, error) {
		return HandlerFunc(func(ctx context.Context, l *Link) (*Accept, error) {
			return &Accept{OnDelivery: func(ctx context.Context, d *Delivery) wire.DeliveryState {
				got <- d
				return nil
			}}, nil
		}), nil
	}}
	ts := startServer(t, srv, nil)
	s := openSession(t, dial(t, ts, nil))
	snd, err := s.NewSender(ctxT(t), "q", nil)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for i := range 2 {
		go func() { errs <- snd.Send(ctxT(t), goamqp.NewMessage([]byte{byte(i)}), nil) }()
	}
	d1, d2 := <-got, <-got
	d2.Settle(&wire.Rejected{Error: &wire.Error{Condition: "test:no"}})
	d1.Settle(&wire.Accepted{})
	var accepted, rejected int
	for range 2 {
		var ae *goamqp.Error
		switch err := <-errs; {
		case err == nil:
			accepted++
		case errors.As(err, &ae) && ae.Condition == "test:no":
			rejected++
		default:
			t.Fatal(err)
		}
	}
	if accepted != 1 || rejected != 1 {
		t.Fatalf("accepted %d, rejected %d", accepted, rejected)
	}
}
