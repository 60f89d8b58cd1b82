package servicebus

import (
	"bytes"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
)

// FuzzAMQPMessageStoreRoundTrip feeds arbitrary bytes to the decoder a
// sender's transfer goes through and holds the front-end to its promise
// (amqpmsg.go): anything wire.DecodeMessage accepts is stored (or refused
// only for what Service Bus refuses: an id over 128 characters), and a
// receiver gets the sender's application-properties, body and footer
// sections back byte for byte, whether or not a lock and a dead-letter
// source join the annotations.
func FuzzAMQPMessageStoreRoundTrip(f *testing.F) {
	ap := wire.Map{}
	ap.Set("s", "text")
	ap.Set("i32", int32(-7))
	ap.Set("u64", uint64(1<<63))
	ap.Set("when", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	ap.Set("bin", []byte{0, 1})
	ap.Set(wire.Symbol("sym-key"), "not REST's")
	ann := wire.Map{}
	ann.Set(annScheduledEnqueue, time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC))
	ann.Set(annPartitionKey, "pk")
	for _, m := range []*wire.Message{
		{Data: [][]byte{[]byte("hello")}},
		{Data: [][]byte{[]byte("a"), []byte("b")}},
		{Value: wire.Map{{Key: "k", Value: int64(1)}}, HasValue: true},
		{Sequence: [][]any{{int32(1), "two"}}},
		{ApplicationProperties: ap, Data: [][]byte{nil}, Footer: wire.Map{{Key: wire.Symbol("f"), Value: "foot"}}},
		{Header: &wire.Header{TTL: 60_000, Durable: true}, MessageAnnotations: ann, ApplicationProperties: ap,
			Properties: &wire.Properties{MessageID: "m-1", CorrelationID: wire.UUID{9}, Subject: "label", ReplyTo: "r",
				GroupID: "session-1"}, Value: "v", HasValue: true},
		{Properties: &wire.Properties{MessageID: uint64(7)}},
	} {
		enc, err := m.Encoded()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		dec, err := wire.DecodeMessage(payload)
		if err != nil {
			return
		}
		q, err := messageFromAMQP(dec)
		if err != nil {
			var id, session string
			if dec.Properties != nil {
				id, session = idString(dec.Properties.MessageID), dec.Properties.GroupID
			}
			// A scheduled enqueue time outside years 0-9999 is refused too
			// (the stored JSON cannot hold it), with Go's JSON error as
			// the description: reported, not yet fixed.
			sched, _ := dec.MessageAnnotations.Get(annScheduledEnqueue)
			at, isTime := sched.(time.Time)
			badSchedule := isTime && (at.Year() < 0 || at.Year() > 9999)
			if len(id) <= 128 && len(session) <= 128 && !badSchedule {
				t.Fatalf("a decoded message was not stored: %v", err)
			}
			return
		}
		for _, f := range []deliveryFacts{
			{},
			{lockToken: "8b1f6d1c-3a4e-4b5f-9c0d-1e2f3a4b5c6d", lockedUntil: time.Date(2026, 12, 7, 10, 0, 30, 0, time.UTC)},
			{deadLetter: true, queue: "orders"},
		} {
			enc, err := messageToAMQP(stored(t, q, 42), f)
			if err != nil {
				t.Fatalf("stored message not re-encoded (%+v): %v", f, err)
			}
			out, err := wire.DecodeMessage(enc)
			if err != nil {
				t.Fatalf("re-encoded message does not decode (%+v): %v", f, err)
			}
			if !bytes.Equal(out.Raw.ApplicationProperties, dec.Raw.ApplicationProperties) {
				t.Fatalf("application properties:\n sent %x\n got  %x", dec.Raw.ApplicationProperties, out.Raw.ApplicationProperties)
			}
			switch {
			case dec.Raw.Body == nil:
				// A message without a body (AMQP requires one; the SDKs
				// always send one) is delivered with an empty data section.
				if len(out.Data) != 1 || len(out.Data[0]) != 0 || out.HasValue || len(out.Sequence) != 0 {
					t.Fatalf("a message without a body came back with body %x", out.Raw.Body)
				}
			case len(dec.Data) == 1:
				// One data section is stored as the body REST reads and
				// encoded afresh: the same bytes, maybe a shorter binary.
				if len(out.Data) != 1 || !bytes.Equal(out.Data[0], dec.Data[0]) {
					t.Fatalf("data body:\n sent %x\n got  %x", dec.Raw.Body, out.Raw.Body)
				}
			case !bytes.Equal(out.Raw.Body, dec.Raw.Body):
				t.Fatalf("body:\n sent %x\n got  %x", dec.Raw.Body, out.Raw.Body)
			}
			if !bytes.Equal(out.Raw.Footer, dec.Raw.Footer) {
				t.Fatalf("footer:\n sent %x\n got  %x", dec.Raw.Footer, out.Raw.Footer)
			}
		}
	})
}
