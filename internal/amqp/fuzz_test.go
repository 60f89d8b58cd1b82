package amqp

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
)

// fuzzPrefix is what a well-behaved peer sends before its frames: the
// SASL header, an ANONYMOUS init, the AMQP header and an open.
func fuzzPrefix(t testing.TB) []byte {
	var b []byte
	b = append(b, wire.ProtoSASL...)
	b = appendFrame(t, b, wire.FrameSASL, 0, &wire.SASLInit{Mechanism: MechAnonymous}, nil)
	b = append(b, wire.ProtoAMQP...)
	return appendFrame(t, b, wire.FrameAMQP, 0, &wire.Open{ContainerID: "fuzz", MaxFrameSize: 512, ChannelMax: 4}, nil)
}

func appendFrame(t testing.TB, b []byte, typ uint8, ch uint16, body any, payload []byte) []byte {
	b, err := wire.AppendFrame(b, wire.Frame{Type: typ, Channel: ch, Body: body, Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fuzzSeeds are frame sequences that reach deep into the engine: links
// both ways, transfers (whole, split, aborted), flows with drain and
// echo, dispositions with ranges, detaches and ends.
func fuzzSeeds(t testing.TB) [][]byte {
	u32 := func(v uint32) *uint32 { return &v }
	yes := true
	msg := encodeMessage(t, "hello")
	begin := appendFrame(t, nil, wire.FrameAMQP, 0, &wire.Begin{IncomingWindow: 10, OutgoingWindow: 10, HandleMax: 4}, nil)
	sender := appendFrame(t, begin, wire.FrameAMQP, 0, &wire.Attach{Name: "s", Handle: 0, Target: &wire.Target{Address: "q"}, Source: &wire.Source{}, InitialDeliveryCount: u32(0)}, nil)
	receiver := appendFrame(t, begin, wire.FrameAMQP, 0, &wire.Attach{Name: "r", Handle: 1, Role: true, Source: &wire.Source{Address: "q"}, Target: &wire.Target{}, RcvSettleMode: ptr(uint8(1))}, nil)

	var seeds [][]byte
	seeds = append(seeds, begin, sender, receiver)
	s := appendFrame(t, sender, wire.FrameAMQP, 0, &wire.Transfer{Handle: 0, DeliveryID: u32(0), DeliveryTag: []byte{1}, MessageFormat: u32(0)}, msg)
	s = appendFrame(t, s, wire.FrameAMQP, 0, &wire.Transfer{Handle: 0, DeliveryID: u32(1), DeliveryTag: []byte{2}, MessageFormat: u32(wire.MessageFormatBatch), More: true}, msg[:3])
	s = appendFrame(t, s, wire.FrameAMQP, 0, &wire.Transfer{Handle: 0}, msg[3:])
	s = appendFrame(t, s, wire.FrameAMQP, 0, &wire.Transfer{Handle: 0, DeliveryID: u32(2), DeliveryTag: []byte{3}, MessageFormat: u32(0), More: true}, msg)
	s = appendFrame(t, s, wire.FrameAMQP, 0, &wire.Transfer{Handle: 0, Aborted: true}, nil)
	s = appendFrame(t, s, wire.FrameAMQP, 0, &wire.Disposition{Role: false, First: 0, Last: u32(0xffffffff), Settled: true, State: &wire.Accepted{}}, nil)
	s = appendFrame(t, s, wire.FrameAMQP, 0, &wire.Flow{NextIncomingID: u32(0), IncomingWindow: 10, OutgoingWindow: 10, Handle: u32(0), DeliveryCount: u32(7), Echo: true}, nil)
	s = appendFrame(t, s, wire.FrameAMQP, 0, &wire.Detach{Handle: 0, Closed: true}, nil)
	seeds = append(seeds, s)
	r := appendFrame(t, receiver, wire.FrameAMQP, 0, &wire.Flow{NextIncomingID: u32(0), IncomingWindow: 1, OutgoingWindow: 10, Handle: u32(1), DeliveryCount: u32(0), LinkCredit: u32(5), Echo: true}, nil)
	r = appendFrame(t, r, wire.FrameAMQP, 0, &wire.Disposition{Role: true, First: 0, Last: u32(3), State: &wire.Rejected{}}, nil)
	r = appendFrame(t, r, wire.FrameAMQP, 0, &wire.Flow{NextIncomingID: u32(1), IncomingWindow: 100, OutgoingWindow: 10, Handle: u32(1), DeliveryCount: u32(1), LinkCredit: u32(100), Drain: true}, nil)
	r = appendFrame(t, r, wire.FrameAMQP, 0, &wire.Transfer{Handle: 1, DeliveryID: u32(0), Settled: &yes}, msg)
	r = appendFrame(t, r, wire.FrameAMQP, 0, &wire.End{}, nil)
	r = appendFrame(t, r, wire.FrameAMQP, 0, &wire.Close{}, nil)
	seeds = append(seeds, r)
	return seeds
}

// FuzzServeConn feeds arbitrary bytes after valid headers and open into
// ServeConn: it must not panic, and must return within a bound. The peer
// hangs up after its bytes, or — one input in eight — keeps the
// transport open, so that only the server's own limits (idle timeout,
// close deadline) end the connection.
func FuzzServeConn(f *testing.F) {
	prefix := fuzzPrefix(f)
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	msg := encodeMessage(f, "hello")
	srv := &Server{
		IdleTimeout:      200 * time.Millisecond,
		HandshakeTimeout: time.Second,
		MaxMessageSize:   4096,
		MaxFrameSize:     512,
		Connect: func(context.Context, *Conn) (Handler, error) {
			return HandlerFunc(func(ctx context.Context, l *Link) (*Accept, error) {
				if l.PeerSends() {
					return &Accept{Credit: 5, OnDelivery: func(context.Context, *Delivery) wire.DeliveryState {
						return &wire.Accepted{}
					}}, nil
				}
				// We send: unsettled deliveries while the link lives.
				go func() {
					for {
						if _, err := l.Send(l.Context(), []byte{1}, 0, msg, false); err != nil {
							return
						}
					}
				}()
				return &Accept{OnDisposition: func(Disposition) wire.DeliveryState { return nil }}, nil
			}), nil
		},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		defer client.Close()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		go func() {
			_, _ = client.Write(append(append([]byte{}, prefix...), data...))
			if len(data)%8 != 0 {
				client.Close()
			}
		}()

		done := make(chan error, 1)
		go func() { done <- srv.ServeConn(context.Background(), server) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("ServeConn did not return")
		}
	})
}
