package amqp

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
)

// idleHeapSessions is how many sessions TestIdleLinkHeap begins, each
// with one link, as the Service Bus SDKs do (a session per link).
const idleHeapSessions = 200

// TestIdleLinkHeap measures the live heap an idle link and its session
// keep, once a message has gone over the link and been settled: what a
// fleet's idle connections hold per link (docs/benchmarks.md, "Many
// customers on one node (issue 16)"). Half the links are the peer's
// senders, half its receivers registered with Replies (as $cbs's reply
// links are, which watch the link's context for its end). The peer is
// the raw one of these tests, which keeps nothing per link, so that the
// heap counted is the server's.
func TestIdleLinkHeap(t *testing.T) {
	var replies Replies
	sent := make(chan struct{}, idleHeapSessions)
	srv := &Server{MaxSessions: 2 * idleHeapSessions, Connect: func(context.Context, *Conn) (Handler, error) {
		return HandlerFunc(func(ctx context.Context, l *Link) (*Accept, error) {
			if l.PeerSends() {
				return &Accept{Credit: 1, OnDelivery: func(context.Context, *Delivery) wire.DeliveryState {
					return &wire.Accepted{}
				}}, nil
			}
			replies.Add(l)
			return &Accept{OnCredit: func() {
				if l.Credit() > 0 {
					go func() {
						_, _ = l.Send(l.Context(), []byte("t"), 0, []byte{0x00, 0x53, 0x77, 0x40}, false)
						sent <- struct{}{}
					}()
				}
			}}, nil
		}), nil
	}}
	ts := startServer(t, srv, nil)
	p := rawDial(t, ts.addr)
	p.write([]byte(wire.ProtoSASL))
	p.expectHeader(wire.ProtoSASL)
	p.next()
	p.sendType(wire.FrameSASL, 0, &wire.SASLInit{Mechanism: MechAnonymous}, nil)
	p.next()
	p.write([]byte(wire.ProtoAMQP))
	p.expectHeader(wire.ProtoAMQP)
	p.send(0, &wire.Open{ContainerID: "raw", MaxFrameSize: 65536, ChannelMax: 2*idleHeapSessions - 1}, nil)
	p.next()

	heap := func() uint64 {
		var ms runtime.MemStats
		for range 3 {
			runtime.GC()
		}
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	// One session of each kind first, so that what is made once (the
	// tables' first growth, the writer's buffers) is in the baseline.
	unit := func(ch uint16) {
		t.Helper()
		zero, one := uint32(0), uint32(1)
		// A sender, which sends one unsettled message.
		p.send(ch, &wire.Begin{IncomingWindow: 100, OutgoingWindow: 100, HandleMax: 10}, nil)
		expect[*wire.Begin](p)
		p.send(ch, &wire.Attach{Name: "s", Handle: 0, Role: false, Target: &wire.Target{Address: "q"}, Source: &wire.Source{}, InitialDeliveryCount: &zero}, nil)
		expect[*wire.Attach](p)
		p.send(ch, &wire.Transfer{Handle: 0, DeliveryID: &zero, DeliveryTag: []byte("d"), MessageFormat: &zero}, []byte{0x00, 0x53, 0x77, 0x40})
		if d := expect[*wire.Disposition](p); !d.Settled {
			t.Fatalf("disposition %+v, want it settled", d)
		}
		// A receiver, which gets one message and settles it.
		rch := ch + idleHeapSessions
		p.send(rch, &wire.Begin{IncomingWindow: 100, OutgoingWindow: 100, HandleMax: 10}, nil)
		expect[*wire.Begin](p)
		p.send(rch, &wire.Attach{Name: "r", Handle: 0, Role: true, Source: &wire.Source{Address: "q"}, Target: &wire.Target{Address: "reply"}}, nil)
		expect[*wire.Attach](p)
		p.send(rch, &wire.Flow{NextIncomingID: &zero, IncomingWindow: 100, NextOutgoingID: 0, OutgoingWindow: 100, Handle: &zero, DeliveryCount: &zero, LinkCredit: &one}, nil)
		tr := expect[*wire.Transfer](p)
		if tr.DeliveryID == nil {
			t.Fatal("a transfer without its delivery-id")
		}
		<-sent
		p.send(rch, &wire.Disposition{Role: true, First: *tr.DeliveryID, Settled: true, State: &wire.Accepted{}}, nil)
		// A flow's echo: the disposition before it has been handled.
		p.send(0, &wire.Flow{NextIncomingID: &one, IncomingWindow: 100, OutgoingWindow: 100, Echo: true}, nil)
		for {
			if f := expect[*wire.Flow](p); f.Handle == nil {
				break
			}
		}
	}
	unit(0)
	time.Sleep(50 * time.Millisecond)
	h0 := heap()
	for ch := uint16(1); ch < idleHeapSessions; ch++ {
		unit(ch)
	}
	time.Sleep(50 * time.Millisecond)
	h1 := heap()
	perLink := (int64(h1) - int64(h0)) / (2 * (idleHeapSessions - 1))
	t.Logf("about %d bytes of live heap per idle link and its session", perLink)
	// About 485 bytes; 540 while each session had its own scratch
	// slices for dispositions; 890 while a reply link was watched through the
	// context package and the link had a done channel from the start,
	// a field per name and callback queue, and its fields in an order
	// that padded it to 256 bytes; 1,710 while each link had a
	// context.WithCancel of its own (with the table of what watched
	// it), each session both delivery tables for good, and its links in
	// a map.
	if perLink > 560 {
		t.Errorf("%d bytes of live heap per idle link and its session, want at most 560 (it was 890 before reply links were registered without the context package, the done channel made on first use and the link packed)", perLink)
	}
	runtime.KeepAlive(&replies)
}

// expect returns the peer's next frame of type T, skipping the server's
// flows (credit it renews) unless T is a flow.
func expect[T any](p *rawPeer) T {
	p.t.Helper()
	for {
		fr := p.next()
		if b, ok := fr.Body.(T); ok {
			return b
		}
		if _, ok := fr.Body.(*wire.Flow); !ok {
			p.t.Fatalf("got %T %+v, want a %T", fr.Body, fr.Body, *new(T))
		}
	}
}

// TestPeerOpenDropped: the peer's decoded open is the application's to
// read in Connect; the connection does not keep it after (a fleet's
// idle connections would each keep their SDK's open, properties and
// all).
func TestPeerOpenDropped(t *testing.T) {
	attached := make(chan *wire.Open, 1)
	srv := &Server{Connect: func(_ context.Context, c *Conn) (Handler, error) {
		if c.PeerOpen == nil || c.PeerOpen.ContainerID != "raw" {
			t.Errorf("Connect sees the open %+v, want the peer's", c.PeerOpen)
		}
		return HandlerFunc(func(_ context.Context, l *Link) (*Accept, error) {
			attached <- l.Conn.PeerOpen
			return &Accept{Credit: 1}, nil
		}), nil
	}}
	ts := startServer(t, srv, nil)
	p := rawDial(t, ts.addr)
	p.open(0)
	p.beginAttachSender()
	if o := <-attached; o != nil {
		t.Errorf("the connection still holds the peer's open after Connect: %+v", o)
	}
}
