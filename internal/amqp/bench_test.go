package amqp

import (
	"context"
	"sync"
	"testing"

	goamqp "github.com/Azure/go-amqp"

	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
)

// benchServer accepts every message the peer sends and, on links where
// the peer receives, sends a 100-byte message for every credit.
func benchServer(tb testing.TB) *Server {
	msg := encodeMessage(tb, string(make([]byte, 100)))
	return &Server{Connect: func(context.Context, *Conn) (Handler, error) {
		return HandlerFunc(func(ctx context.Context, l *Link) (*Accept, error) {
			if l.PeerSends() {
				return &Accept{Credit: 1000, OnDelivery: func(context.Context, *Delivery) wire.DeliveryState {
					return &wire.Accepted{}
				}}, nil
			}
			go func() {
				for {
					if _, err := l.Send(l.Context(), nil, 0, msg, true); err != nil {
						return
					}
				}
			}()
			return &Accept{}, nil
		}), nil
	}}
}

// BenchmarkPeerSends: 8 goroutines sending unsettled 100-byte messages
// on one link, each waiting for its outcome.
func BenchmarkPeerSends(b *testing.B) {
	ts := startServer(b, benchServer(b), nil)
	s := openSession(b, dial(b, ts, nil))
	snd, err := s.NewSender(ctxT(b), "q", nil)
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 100)
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N/8 + 1
	for range 8 {
		wg.Go(func() {
			for range per {
				if err := snd.Send(context.Background(), goamqp.NewMessage(body), nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkPeerReceives: a receiver with 1000 credit taking settled
// messages.
func BenchmarkPeerReceives(b *testing.B) {
	ts := startServer(b, benchServer(b), nil)
	s := openSession(b, dial(b, ts, nil))
	rcv, err := s.NewReceiver(ctxT(b), "q", &goamqp.ReceiverOptions{Credit: 1000})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := rcv.Receive(context.Background(), nil); err != nil {
			b.Fatal(err)
		}
	}
}
