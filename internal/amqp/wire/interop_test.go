package wire

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"reflect"
	"testing"
	"time"

	amqp "github.com/Azure/go-amqp"
)

// fakePeer is the smallest AMQP server that can serve the real go-amqp
// client: SASL ANONYMOUS, open, begin, attach, credit, one transfer each
// way, disposition, detach, end, close, all with this package's codec. It
// proves the codec's bytes are the ones a real client writes and reads.
type fakePeer struct {
	conn     net.Conn
	r        *bufio.Reader
	toClient *Message      // sent on the first receiver link
	got      chan *Message // messages the client sent
	settled  chan DeliveryState
}

func (p *fakePeer) write(f Frame) error {
	b, err := AppendFrame(nil, f)
	if err != nil {
		return err
	}
	_, err = p.conn.Write(b)
	return err
}

func (p *fakePeer) read() (Frame, error) { return ReadFrame(p.r, 1<<20) }

func (p *fakePeer) serve() error {
	if h, err := ReadProtoHeader(p.r); err != nil || h != ProtoSASL {
		return fmt.Errorf("sasl header %q: %v", h, err)
	}
	if _, err := p.conn.Write([]byte(ProtoSASL)); err != nil {
		return err
	}
	if err := p.write(Frame{Type: FrameSASL, Body: &SASLMechanisms{Mechanisms: []Symbol{SASLAnonymous}}}); err != nil {
		return err
	}
	f, err := p.read()
	if err != nil {
		return err
	}
	if in, ok := f.Body.(*SASLInit); !ok || in.Mechanism != SASLAnonymous {
		return fmt.Errorf("sasl init: %#v", f.Body)
	}
	if err := p.write(Frame{Type: FrameSASL, Body: &SASLOutcome{Code: SASLCodeOK}}); err != nil {
		return err
	}
	if h, err := ReadProtoHeader(p.r); err != nil || h != ProtoAMQP {
		return fmt.Errorf("amqp header %q: %v", h, err)
	}
	if _, err := p.conn.Write([]byte(ProtoAMQP)); err != nil {
		return err
	}
	weSend := map[uint32]bool{} // handles on which the peer is the sender
	var outID uint32
	for {
		f, err := p.read()
		if err != nil {
			return err
		}
		ch := f.Channel
		var reply []any
		switch b := f.Body.(type) {
		case nil: // heartbeat
		case *Open:
			reply = append(reply, &Open{ContainerID: "fake-peer", MaxFrameSize: 1 << 20, ChannelMax: 16})
		case *Begin:
			reply = append(reply, &Begin{RemoteChannel: &ch, IncomingWindow: 5000, OutgoingWindow: 5000, HandleMax: 255})
		case *Attach:
			a := &Attach{Name: b.Name, Handle: b.Handle, Role: !b.Role, SndSettleMode: b.SndSettleMode,
				RcvSettleMode: b.RcvSettleMode, Source: b.Source, Target: b.Target}
			if b.Role == RoleReceiver {
				weSend[b.Handle] = true
				a.InitialDeliveryCount = u32(0)
				reply = append(reply, a)
			} else {
				h := b.Handle
				reply = append(reply, a, &Flow{NextIncomingID: u32(0), IncomingWindow: 5000, OutgoingWindow: 5000,
					Handle: &h, DeliveryCount: u32(0), LinkCredit: u32(10)})
			}
		case *Flow:
			if b.Handle != nil && weSend[*b.Handle] && b.LinkCredit != nil && *b.LinkCredit > 0 && p.toClient != nil {
				payload, err := p.toClient.Encoded()
				if err != nil {
					return err
				}
				p.toClient = nil
				id := outID
				outID++
				if err := p.write(Frame{Channel: ch, Body: &Transfer{Handle: *b.Handle, DeliveryID: &id,
					DeliveryTag: []byte{1, 2, 3, 4}, MessageFormat: u32(0)}, Payload: payload}); err != nil {
					return err
				}
			}
		case *Transfer:
			m, err := DecodeMessage(f.Payload)
			if err != nil {
				return err
			}
			p.got <- m
			reply = append(reply, &Disposition{Role: RoleReceiver, First: *b.DeliveryID, Settled: true, State: &Accepted{}})
		case *Disposition:
			p.settled <- b.State
		case *Detach:
			reply = append(reply, &Detach{Handle: b.Handle, Closed: b.Closed})
		case *End:
			reply = append(reply, &End{})
		case *Close:
			if err := p.write(Frame{Body: &Close{}}); err != nil {
				return err
			}
			// Like a TCP peer, read until the client hangs up.
			_, _ = p.r.WriteTo(io.Discard)
			return p.conn.Close()
		default:
			return fmt.Errorf("unexpected %T", b)
		}
		for _, r := range reply {
			if err := p.write(Frame{Channel: ch, Body: r}); err != nil {
				return err
			}
		}
	}
}

func TestInteropGoAMQP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A loopback TCP connection rather than net.Pipe: go-amqp expects
	// net.ErrClosed from its own Close, which a pipe does not return.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	created := time.UnixMilli(1700000000123).UTC()
	peer := &fakePeer{
		conn: server, r: bufio.NewReader(server),
		got: make(chan *Message, 1), settled: make(chan DeliveryState, 1),
		toClient: &Message{
			Header:             &Header{Durable: true, DeliveryCount: 1},
			MessageAnnotations: Map{{Symbol("x-opt-sequence-number"), int64(42)}},
			Properties:         &Properties{MessageID: "from-peer", CreationTime: created, GroupID: "session-1"},
			ApplicationProperties: Map{{"i32", int32(-5)}, {"u64", uint64(1 << 40)}, {"s", "str"},
				{"b", true}, {"f", 1.5}, {"ts", created}, {"bin", []byte{9}}},
			Data: [][]byte{[]byte("hello client")},
		},
	}
	done := make(chan error, 1)
	go func() { done <- peer.serve() }()

	conn, err := amqp.NewConn(ctx, client, &amqp.ConnOptions{SASLType: amqp.SASLTypeAnonymous(), ContainerID: "go-amqp"})
	if err != nil {
		t.Fatalf("NewConn: %v", err)
	}
	sess, err := conn.NewSession(ctx, nil)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}

	// Client to peer: the peer decodes what go-amqp encoded.
	snd, err := sess.NewSender(ctx, "queue1", nil)
	if err != nil {
		t.Fatalf("NewSender: %v", err)
	}
	out := amqp.NewMessage([]byte("hello peer"))
	subject := "subj"
	out.Properties = &amqp.MessageProperties{MessageID: "m-1", Subject: &subject, CorrelationID: uint64(7)}
	out.ApplicationProperties = map[string]any{"n": int32(3)}
	out.Annotations = amqp.Annotations{"x-opt-partition-key": "pk"}
	if err := snd.Send(ctx, out, nil); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := <-peer.got
	if got.Properties == nil || got.Properties.MessageID != "m-1" || got.Properties.Subject != "subj" ||
		got.Properties.CorrelationID != uint64(7) || len(got.Data) != 1 || string(got.Data[0]) != "hello peer" {
		t.Errorf("peer got %#v", got)
	}
	if v, _ := got.ApplicationProperties.Get("n"); v != int32(3) {
		t.Errorf("application property n = %#v", v)
	}
	if v, _ := got.MessageAnnotations.Get(Symbol("x-opt-partition-key")); v != "pk" {
		t.Errorf("annotation = %#v", v)
	}
	if err := snd.Close(ctx); err != nil {
		t.Fatalf("sender Close: %v", err)
	}

	// Peer to client: go-amqp decodes what this package encoded.
	rcv, err := sess.NewReceiver(ctx, "queue1", &amqp.ReceiverOptions{Credit: 5})
	if err != nil {
		t.Fatalf("NewReceiver: %v", err)
	}
	msg, err := rcv.Receive(ctx, nil)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if string(msg.GetData()) != "hello client" || msg.Properties == nil || msg.Properties.MessageID != "from-peer" ||
		msg.Properties.CreationTime == nil || !msg.Properties.CreationTime.Equal(created) ||
		msg.Header == nil || !msg.Header.Durable || msg.Header.DeliveryCount != 1 || msg.Header.Priority != 4 {
		t.Errorf("client got %#v %#v %#v", msg, msg.Properties, msg.Header)
	}
	want := map[string]any{"i32": int32(-5), "u64": uint64(1 << 40), "s": "str", "b": true, "f": 1.5,
		"ts": created, "bin": []byte{9}}
	for k, v := range want {
		if g := msg.ApplicationProperties[k]; !reflect.DeepEqual(g, v) && !(k == "ts" && g.(time.Time).Equal(created)) {
			t.Errorf("client application property %s = %#v, want %#v", k, g, v)
		}
	}
	if v := msg.Annotations[int64(0)]; v != nil {
		t.Errorf("unexpected annotation %v", v)
	}
	if msg.Annotations["x-opt-sequence-number"] != int64(42) {
		t.Errorf("annotations %#v", msg.Annotations)
	}
	if err := rcv.AcceptMessage(ctx, msg); err != nil {
		t.Fatalf("AcceptMessage: %v", err)
	}
	if st := <-peer.settled; !reflect.DeepEqual(st, &Accepted{}) {
		t.Errorf("disposition state %#v", st)
	}
	if err := rcv.Close(ctx); err != nil {
		t.Fatalf("receiver Close: %v", err)
	}
	if err := sess.Close(ctx); err != nil {
		t.Fatalf("session Close: %v", err)
	}
	if err := conn.Close(); err != nil {
		t.Fatalf("conn Close: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("peer: %v", err)
	}
}
