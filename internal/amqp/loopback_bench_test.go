package amqp

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	goamqp "github.com/Azure/go-amqp"

	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
)

// countingConn counts the writes (system calls, under TLS: records
// written one by one) and reads a server connection makes.
type countingConn struct {
	net.Conn
	writes, reads *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

func (c countingConn) Read(p []byte) (int, error) {
	c.reads.Add(1)
	return c.Conn.Read(p)
}

// loopbackServer serves srv on a loopback listener, with TLS when cfg is
// not nil, counting the server's writes and reads on the TCP connection.
func loopbackServer(tb testing.TB, srv *Server, cfg *tls.Config) (addr string, writes, reads *atomic.Int64) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	writes, reads = new(atomic.Int64), new(atomic.Int64)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			var c net.Conn = countingConn{Conn: nc, writes: writes, reads: reads}
			if cfg != nil {
				c = tls.Server(c, cfg)
			}
			wg.Go(func() { _ = srv.ServeConn(ctx, c) })
		}
	})
	tb.Cleanup(func() {
		cancel()
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String(), writes, reads
}

// relayApp is a queue in memory shaped like Service Bus's use of the
// engine: senders' deliveries are accepted once queued; a receiver link
// gets one unsettled delivery with a 16-byte tag per credit, and the
// receiver's outcome is confirmed once OnDisposition returns.
func relayApp() *Server {
	q := make(chan []byte, 1<<16)
	return &Server{Connect: func(context.Context, *Conn) (Handler, error) {
		return HandlerFunc(func(ctx context.Context, l *Link) (*Accept, error) {
			if l.PeerSends() {
				return &Accept{Credit: 100, OnDelivery: func(_ context.Context, d *Delivery) wire.DeliveryState {
					q <- d.Payload
					return &wire.Accepted{}
				}}, nil
			}
			go func() {
				tag := make([]byte, 16)
				for {
					select {
					case p := <-q:
						tag[0]++
						if _, err := l.Send(l.Context(), append([]byte(nil), tag...), 0, p, false); err != nil {
							return
						}
					case <-l.Done():
						return
					}
				}
			}()
			return &Accept{OnDisposition: func(Disposition) wire.DeliveryState { return nil }}, nil
		}), nil
	}}
}

// BenchmarkLoopback is a Service Bus-like load through the real go-amqp
// client on one connection: 8 senders each sending unsettled 256-byte
// messages and waiting for the outcome, 8 receivers each with credit 1
// in receiver settle mode second, accepting each message (as
// azservicebus's peek-lock receivers do), one session per link. An op is
// one message sent and received. writes/msg and reads/msg are the
// server's system calls on the TCP connection per message.
func BenchmarkLoopback(b *testing.B) {
	b.Run("tcp", func(b *testing.B) { benchLoopback(b, false) })
	b.Run("tls", func(b *testing.B) { benchLoopback(b, true) })
}

func benchLoopback(b *testing.B, useTLS bool) {
	const senders, receivers = 8, 8
	var srvCfg, cliCfg *tls.Config
	if useTLS {
		srvCfg, cliCfg = testTLS(b)
	}
	addr, writes, reads := loopbackServer(b, relayApp(), srvCfg)
	scheme := "amqp://"
	if useTLS {
		scheme = "amqps://"
	}
	conn, err := goamqp.Dial(ctxT(b), scheme+addr, &goamqp.ConnOptions{SASLType: goamqp.SASLTypeAnonymous(), TLSConfig: cliCfg})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	var snds []*goamqp.Sender
	var rcvs []*goamqp.Receiver
	second := goamqp.ReceiverSettleModeSecond
	for range senders {
		snd, err := openSession(b, conn).NewSender(ctxT(b), "q", nil)
		if err != nil {
			b.Fatal(err)
		}
		snds = append(snds, snd)
	}
	for range receivers {
		rcv, err := openSession(b, conn).NewReceiver(ctxT(b), "q", &goamqp.ReceiverOptions{Credit: 1, SettlementMode: &second})
		if err != nil {
			b.Fatal(err)
		}
		rcvs = append(rcvs, rcv)
	}
	body := make([]byte, 256)
	var left atomic.Int64
	left.Store(int64(b.N))
	var toSend atomic.Int64
	toSend.Store(int64(b.N))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	w0, r0 := writes.Load(), reads.Load()
	b.ResetTimer()
	var wg sync.WaitGroup
	for _, snd := range snds {
		wg.Go(func() {
			for toSend.Add(-1) >= 0 {
				// A message may be received and accepted before its
				// sender has the outcome: the last Sends see ctx end.
				if err := snd.Send(ctx, goamqp.NewMessage(body), nil); err != nil && ctx.Err() == nil {
					b.Error(err)
					return
				}
			}
		})
	}
	for _, rcv := range rcvs {
		wg.Go(func() {
			for {
				m, err := rcv.Receive(ctx, nil)
				if err != nil {
					return // cancelled once every message is in
				}
				if err := rcv.AcceptMessage(ctx, m); err != nil && ctx.Err() == nil {
					b.Error(err)
					return
				}
				if left.Add(-1) == 0 {
					cancel()
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(writes.Load()-w0)/float64(b.N), "writes/msg")
	b.ReportMetric(float64(reads.Load()-r0)/float64(b.N), "reads/msg")
}
