package servicebus

import (
	"context"
	"testing"

	goamqp "github.com/Azure/go-amqp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkAMQPFrontSendReceive is one message's round trip through the
// AMQP front-end on a real go-amqp client (in the same process: its
// allocations count too) and a SQLite store: a send to the queue, a
// peek-lock receive, and the complete (accepted). It is the front-end's
// hot path, and shows what tracing costs on it: nothing with tracing off
// (the default), and the spans' own cost with it on (an SDK tracer
// provider recording in memory, sampling every span).
func BenchmarkAMQPFrontSendReceive(b *testing.B) {
	b.Run("tracing=off", func(b *testing.B) {
		benchSendReceive(b, newFrontFuzz(b))
	})
	b.Run("tracing=on", func(b *testing.B) {
		h := newFrontFuzz(b)
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		h.s.tracer = tp.Tracer("bench")
		benchSendReceive(b, h)
		if len(rec.Ended()) < 3*b.N {
			b.Fatalf("%d spans ended for %d round trips", len(rec.Ended()), b.N)
		}
	})
}

func benchSendReceive(b *testing.B, h *frontFuzz) {
	ctx := context.Background()
	tx, err := h.sess.NewSender(ctx, "work", nil)
	if err != nil {
		b.Fatal(err)
	}
	rx, err := h.sess.NewReceiver(ctx, "work", &goamqp.ReceiverOptions{SettlementMode: goamqp.ReceiverSettleModeSecond.Ptr(), Credit: 1})
	if err != nil {
		b.Fatal(err)
	}
	body := [][]byte{[]byte("benchmark message")}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := tx.Send(ctx, &goamqp.Message{Data: body, ApplicationProperties: map[string]any{"n": int64(1)}}, nil); err != nil {
			b.Fatal(err)
		}
		m, err := rx.Receive(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := rx.AcceptMessage(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
}
