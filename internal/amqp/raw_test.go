package amqp

import (
	"bufio"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
)

// rawPeer speaks frames to the server by hand, to do what no well-behaved
// client does: stay silent, break the rules.
type rawPeer struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func rawDial(t testing.TB, addr string) *rawPeer {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawPeer{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// open does SASL ANONYMOUS and exchanges opens, with the given idle
// timeout in our open.
func (p *rawPeer) open(idleMillis uint32) *wire.Open {
	p.t.Helper()
	p.write([]byte(wire.ProtoSASL))
	p.expectHeader(wire.ProtoSASL)
	if _, ok := p.next().Body.(*wire.SASLMechanisms); !ok {
		p.t.Fatal("no sasl-mechanisms")
	}
	p.sendType(wire.FrameSASL, 0, &wire.SASLInit{Mechanism: MechAnonymous}, nil)
	if o, ok := p.next().Body.(*wire.SASLOutcome); !ok || o.Code != wire.SASLCodeOK {
		p.t.Fatalf("sasl outcome %+v", o)
	}
	p.write([]byte(wire.ProtoAMQP))
	p.expectHeader(wire.ProtoAMQP)
	p.send(0, &wire.Open{ContainerID: "raw", MaxFrameSize: 65536, ChannelMax: 10, IdleTimeOut: idleMillis}, nil)
	o, ok := p.next().Body.(*wire.Open)
	if !ok {
		p.t.Fatal("no open")
	}
	return o
}

// beginAttachSender begins channel 0 and attaches handle 0 as a sender to
// "q"; it returns the server's flow granting credit.
func (p *rawPeer) beginAttachSender() *wire.Flow {
	p.t.Helper()
	p.send(0, &wire.Begin{IncomingWindow: 100, OutgoingWindow: 100, HandleMax: 10}, nil)
	if _, ok := p.next().Body.(*wire.Begin); !ok {
		p.t.Fatal("no begin")
	}
	zero := uint32(0)
	p.send(0, &wire.Attach{Name: "s", Handle: 0, Role: false, Target: &wire.Target{Address: "q"}, Source: &wire.Source{}, InitialDeliveryCount: &zero}, nil)
	if _, ok := p.next().Body.(*wire.Attach); !ok {
		p.t.Fatal("no attach")
	}
	f, ok := p.next().Body.(*wire.Flow)
	if !ok {
		p.t.Fatal("no flow")
	}
	return f
}

func (p *rawPeer) write(b []byte) {
	p.t.Helper()
	if _, err := p.nc.Write(b); err != nil {
		p.t.Fatal(err)
	}
}

func (p *rawPeer) expectHeader(want string) {
	p.t.Helper()
	_ = p.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := wire.ReadProtoHeader(p.br)
	if err != nil || got != want {
		p.t.Fatalf("header %q, %v; want %q", got, err, want)
	}
}

func (p *rawPeer) send(ch uint16, body any, payload []byte) {
	p.t.Helper()
	p.sendType(wire.FrameAMQP, ch, body, payload)
}

func (p *rawPeer) sendType(typ uint8, ch uint16, body any, payload []byte) {
	p.t.Helper()
	b, err := wire.AppendFrame(nil, wire.Frame{Type: typ, Channel: ch, Body: body, Payload: payload})
	if err != nil {
		p.t.Fatal(err)
	}
	p.write(b)
}

// next returns the next non-empty frame (5 s at most).
func (p *rawPeer) next() wire.Frame {
	p.t.Helper()
	_ = p.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	fr, err := readNonEmptyFrame(p.br, 1<<20)
	if err != nil {
		p.t.Fatalf("reading a frame: %v", err)
	}
	return fr
}

// TestWrongHeader: a peer that skips SASL gets the SASL header back and
// the connection closes (part 2.2); so does garbage.
func TestWrongHeader(t *testing.T) {
	ts := startServer(t, newQueueApp().server(), nil)
	for _, hdr := range []string{wire.ProtoAMQP, wire.ProtoTLS, "HTTP/1.1"} {
		p := rawDial(t, ts.addr)
		p.write([]byte(hdr))
		p.expectHeader(wire.ProtoSASL)
		if _, err := p.br.ReadByte(); err != io.EOF {
			t.Errorf("after %q: %v, want EOF", hdr, err)
		}
	}
}

// TestSASLRefused: the Authenticate hook refuses; the peer gets code auth.
func TestSASLRefused(t *testing.T) {
	srv := newQueueApp().server()
	srv.Authenticate = func(_ context.Context, s SASL) (string, error) {
		return "", &wire.Error{Condition: wire.ErrUnauthorizedAccess}
	}
	ts := startServer(t, srv, nil)
	p := rawDial(t, ts.addr)
	p.write([]byte(wire.ProtoSASL))
	p.expectHeader(wire.ProtoSASL)
	p.next()
	p.sendType(wire.FrameSASL, 0, &wire.SASLInit{Mechanism: MechMSSBCBS}, nil)
	if o, ok := p.next().Body.(*wire.SASLOutcome); !ok || o.Code != wire.SASLCodeAuth {
		t.Fatalf("outcome %+v", o)
	}
}

// TestSilentPeerCut: a peer that sends nothing past our idle timeout gets
// a close with amqp:resource-limit-exceeded and loses the connection.
func TestSilentPeerCut(t *testing.T) {
	srv := newQueueApp().server()
	srv.IdleTimeout = 500 * time.Millisecond
	ts := startServer(t, srv, nil)
	p := rawDial(t, ts.addr)
	o := p.open(0)
	if o.IdleTimeOut != 250 {
		t.Errorf("advertised idle timeout %d ms, want 250", o.IdleTimeOut)
	}
	start := time.Now()
	c, ok := p.next().Body.(*wire.Close)
	if !ok || c.Error == nil || c.Error.Condition != wire.ErrResourceLimitExceeded {
		t.Fatalf("close %+v", c)
	}
	if d := time.Since(start); d < 400*time.Millisecond || d > 3*time.Second {
		t.Errorf("cut after %v", d)
	}
}

// TestHeartbeats: the server sends empty frames at half the idle timeout
// the peer advertised.
func TestHeartbeats(t *testing.T) {
	srv := newQueueApp().server()
	ts := startServer(t, srv, nil)
	p := rawDial(t, ts.addr)
	p.open(400)
	var n int
	deadline := time.Now().Add(1100 * time.Millisecond)
	for time.Now().Before(deadline) {
		_ = p.nc.SetReadDeadline(deadline)
		fr, err := wire.ReadFrame(p.br, 1<<20)
		if err != nil {
			break
		}
		if fr.Body != nil {
			t.Fatalf("unexpected %T", fr.Body)
		}
		n++
	}
	if n < 3 || n > 7 {
		t.Errorf("%d heartbeats in 1.1 s at a 400 ms idle timeout, want about 5", n)
	}
}

// TestProtocolErrors: the spec's answers to errant frames.
func TestProtocolErrors(t *testing.T) {
	app := newQueueApp()
	srv := app.server()
	srv.MaxMessageSize = 1000
	ts := startServer(t, srv, nil)

	t.Run("unknown channel", func(t *testing.T) {
		p := rawDial(t, ts.addr)
		p.open(0)
		p.send(3, &wire.Flow{IncomingWindow: 1}, nil)
		if c, ok := p.next().Body.(*wire.Close); !ok || c.Error == nil || c.Error.Condition != wire.ErrNotFound {
			t.Fatalf("close %+v", c)
		}
	})
	t.Run("unknown handle", func(t *testing.T) {
		p := rawDial(t, ts.addr)
		p.open(0)
		p.send(0, &wire.Begin{IncomingWindow: 100, OutgoingWindow: 100}, nil)
		p.next()
		h := uint32(7)
		p.send(0, &wire.Flow{IncomingWindow: 1, Handle: &h}, nil)
		if e, ok := p.next().Body.(*wire.End); !ok || e.Error == nil || e.Error.Condition != wire.ErrSessionUnattachedHandle {
			t.Fatalf("end %+v", e)
		}
	})
	t.Run("message too large", func(t *testing.T) {
		p := rawDial(t, ts.addr)
		p.open(0)
		f := p.beginAttachSender()
		if f.LinkCredit == nil || *f.LinkCredit != DefaultCredit {
			t.Fatalf("flow %+v", f)
		}
		id, format := uint32(0), uint32(0)
		p.send(0, &wire.Transfer{Handle: 0, DeliveryID: &id, DeliveryTag: []byte{1}, MessageFormat: &format, More: true}, make([]byte, 600))
		p.send(0, &wire.Transfer{Handle: 0, More: false}, make([]byte, 600))
		if d, ok := p.next().Body.(*wire.Detach); !ok || d.Error == nil || d.Error.Condition != wire.ErrLinkMessageSizeExceeded {
			t.Fatalf("detach %+v", d)
		}
	})
	t.Run("beyond credit", func(t *testing.T) {
		app.credit = 1
		app.hold = make(chan struct{})
		defer func() {
			app.credit = 0
			close(app.hold)
			app.hold = nil
		}()
		p := rawDial(t, ts.addr)
		p.open(0)
		p.beginAttachSender()
		format := uint32(0)
		for i := range uint32(2) {
			id := i
			settled := true
			p.send(0, &wire.Transfer{Handle: 0, DeliveryID: &id, DeliveryTag: []byte{byte(i)}, MessageFormat: &format, Settled: &settled}, encodeMessage(t, "x"))
		}
		if d, ok := p.next().Body.(*wire.Detach); !ok || d.Error == nil || d.Error.Condition != wire.ErrLinkTransferLimitExceeded {
			t.Fatalf("detach %+v", d)
		}
	})
	t.Run("aborted transfer", func(t *testing.T) {
		p := rawDial(t, ts.addr)
		p.open(0)
		p.beginAttachSender()
		id, format := uint32(0), uint32(0)
		p.send(0, &wire.Transfer{Handle: 0, DeliveryID: &id, DeliveryTag: []byte{1}, MessageFormat: &format, More: true}, []byte("partial"))
		p.send(0, &wire.Transfer{Handle: 0, Aborted: true}, nil)
		id = 1
		p.send(0, &wire.Transfer{Handle: 0, DeliveryID: &id, DeliveryTag: []byte{2}, MessageFormat: &format}, encodeMessage(t, "whole"))
		d, ok := p.next().Body.(*wire.Disposition)
		if !ok || d.First != 1 || !d.Settled {
			t.Fatalf("disposition %+v", d)
		}
		if _, ok := d.State.(*wire.Accepted); !ok {
			t.Fatalf("state %T", d.State)
		}
		// (The previous subtest's held delivery may land here too.)
		for got := range app.msgs {
			if string(got) == string(encodeMessage(t, "whole")) {
				break
			}
			if string(got) == "partial" {
				t.Fatal("the aborted delivery was queued")
			}
		}
	})
}

// TestBufferLimit: messages in flight on several links together may not
// hold more than MaxBufferedBytes; the connection is closed beyond it.
func TestBufferLimit(t *testing.T) {
	app := newQueueApp()
	srv := app.server()
	srv.MaxMessageSize = 8000
	srv.MaxBufferedBytes = 10000
	ts := startServer(t, srv, nil)
	p := rawDial(t, ts.addr)
	p.open(0)
	p.beginAttachSender()
	zero := uint32(0)
	p.send(0, &wire.Attach{Name: "s2", Handle: 1, Target: &wire.Target{Address: "q"}, Source: &wire.Source{}, InitialDeliveryCount: &zero}, nil)
	p.next() // attach
	p.next() // flow
	format := uint32(0)
	for h := range uint32(2) {
		id := h
		p.send(0, &wire.Transfer{Handle: h, DeliveryID: &id, DeliveryTag: []byte{1}, MessageFormat: &format, More: true}, make([]byte, 6000))
	}
	if c, ok := p.next().Body.(*wire.Close); !ok || c.Error == nil || c.Error.Condition != wire.ErrResourceLimitExceeded {
		t.Fatalf("close %+v", c)
	}
}

// TestAttachChurnBounded: Attach calls still running for links the peer
// detached count against Server.MaxLinks, so a peer that attaches and
// detaches again and again cannot pile up goroutines in a slow Attach.
func TestAttachChurnBounded(t *testing.T) {
	release := make(chan struct{})
	srv := &Server{MaxLinks: 2, Connect: func(context.Context, *Conn) (Handler, error) {
		return HandlerFunc(func(context.Context, *Link) (*Accept, error) {
			<-release // ignores its context, as a slow application might
			return &Accept{}, nil
		}), nil
	}}
	ts := startServer(t, srv, nil)
	t.Cleanup(func() { close(release) }) // before the server waits for Attach
	p := rawDial(t, ts.addr)
	p.open(0)
	p.send(0, &wire.Begin{IncomingWindow: 100, OutgoingWindow: 100, HandleMax: 10}, nil)
	if _, ok := p.next().Body.(*wire.Begin); !ok {
		t.Fatal("no begin")
	}
	zero := uint32(0)
	attach := &wire.Attach{Name: "s", Handle: 0, Target: &wire.Target{Address: "q"}, Source: &wire.Source{}, InitialDeliveryCount: &zero}
	for range 2 {
		p.send(0, attach, nil)
		p.send(0, &wire.Detach{Handle: 0, Closed: true}, nil)
		if a, ok := p.next().Body.(*wire.Attach); !ok || a.Target != nil {
			t.Fatalf("attach answer %+v", a)
		}
		if d, ok := p.next().Body.(*wire.Detach); !ok || d.Error != nil {
			t.Fatalf("detach answer %+v", d)
		}
	}
	p.send(0, attach, nil)
	if a, ok := p.next().Body.(*wire.Attach); !ok || a.Target != nil {
		t.Fatalf("third attach answer %+v", a)
	}
	if d, ok := p.next().Body.(*wire.Detach); !ok || d.Error == nil || d.Error.Condition != wire.ErrResourceLimitExceeded {
		t.Fatalf("third attach: detach %+v", d)
	}
}
