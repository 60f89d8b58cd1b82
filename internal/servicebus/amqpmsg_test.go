package servicebus

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/amqp"
	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// stored is what the store hands back for a sent message: the send's
// fields plus what the store sets.
func stored(t *testing.T, q store.QueueMessage, seq int64) store.QueueMessage {
	t.Helper()
	q.SequenceNumber, q.EnqueuedAt, q.DeliveryCount = seq, time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), 1
	if q.TimeToLive > 0 {
		q.ExpiresAt = q.EnqueuedAt.Add(q.TimeToLive)
		if q.ScheduledAt.After(q.EnqueuedAt) {
			q.ExpiresAt = q.ScheduledAt.Add(q.TimeToLive)
		}
	}
	return q
}

// A message sent over AMQP comes back to an AMQP receiver with every
// application property of every type and its body unchanged, with
// Service Bus's annotations; a REST receiver sees what REST can express.
func TestAMQPMessageRoundTrip(t *testing.T) {
	ap := wire.Map{}
	ap.Set("s", "text")
	ap.Set("i32", int32(-7))
	ap.Set("u64", uint64(42))
	ap.Set("f", 1.5)
	ap.Set("b", true)
	ap.Set("when", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	ap.Set("id", wire.UUID{1, 2, 3})
	ap.Set("bin", []byte{0, 1})
	ann := wire.Map{}
	sched := time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC)
	ann.Set(annScheduledEnqueue, sched)
	ann.Set(annPartitionKey, "pk")
	for name, body := range map[string]*wire.Message{
		"data":  {Data: [][]byte{[]byte("hello")}},
		"value": {Value: wire.Map{{Key: "k", Value: int64(1)}}},
		"seq":   {Sequence: [][]any{{int32(1), "two"}}},
	} {
		t.Run(name, func(t *testing.T) {
			in := *body
			in.Header = &wire.Header{TTL: 60_000, Durable: true}
			in.MessageAnnotations = ann
			in.Properties = &wire.Properties{MessageID: "m-1", CorrelationID: wire.UUID{9}, Subject: "label", ReplyTo: "replies",
				To: "to", ContentType: "text/plain", GroupID: "session-1", ReplyToGroupID: "rs"}
			in.ApplicationProperties = ap
			in.Footer = wire.Map{{Key: wire.Symbol("f"), Value: "foot"}}
			enc, err := in.Encoded()
			if err != nil {
				t.Fatal(err)
			}
			dec, err := wire.DecodeMessage(enc)
			if err != nil {
				t.Fatal(err)
			}
			q, err := messageFromAMQP(dec)
			if err != nil {
				t.Fatal(err)
			}
			if q.MessageID != "m-1" || !q.ScheduledAt.Equal(sched) || q.TimeToLive != time.Minute {
				t.Fatalf("stored: %+v", q)
			}
			got, err := messageToAMQP(stored(t, q, 77), deliveryFacts{lockToken: "x", lockedUntil: sched})
			if err != nil {
				t.Fatal(err)
			}
			out, err := wire.DecodeMessage(got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Raw.ApplicationProperties, dec.Raw.ApplicationProperties) || !bytes.Equal(out.Raw.Body, dec.Raw.Body) ||
				!bytes.Equal(out.Raw.Footer, dec.Raw.Footer) {
				t.Fatalf("sections changed:\n%x\n%x", got, enc)
			}
			if v, _ := out.MessageAnnotations.Get(annSequenceNumber); v != int64(77) {
				t.Fatalf("sequence number annotation %v", v)
			}
			if v, _ := out.MessageAnnotations.Get(annLockedUntil); v != sched {
				t.Fatalf("locked-until annotation %v", v)
			}
			if v, _ := out.MessageAnnotations.Get(annPartitionKey); v != "pk" {
				t.Fatalf("partition key annotation %v", v)
			}
			p := out.Properties
			if p.MessageID != "m-1" || p.CorrelationID != "09000000-0000-0000-0000-000000000000" || p.Subject != "label" ||
				p.GroupID != "session-1" || p.ContentType != "text/plain" || out.Header.TTL != 60_000 {
				t.Fatalf("properties %+v header %+v", p, out.Header)
			}
			rc, err := receivedOf(stored(t, q, 77))
			if err != nil {
				t.Fatal(err)
			}
			if rc.user["s"].Str != "text" || rc.user["i32"].Int != -7 || rc.user["u64"].Int != 42 || !rc.user["b"].Bool ||
				rc.props.Label != "label" || rc.props.SessionId != "session-1" {
				t.Fatalf("REST view: %+v %+v", rc.user, rc.props)
			}
		})
	}
}

// A message with nothing but a body (no custom properties) encodes.
func TestPlainMessageToAMQP(t *testing.T) {
	for _, body := range [][]byte{[]byte("x"), nil} {
		q, err := newMessage(body, "", BrokerProperties{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := messageToAMQP(stored(t, q, 1), deliveryFacts{})
		if err != nil {
			t.Fatal(err)
		}
		if out, err := wire.DecodeMessage(got); err != nil || len(out.Data) != 1 || string(out.Data[0]) != string(body) {
			t.Fatalf("plain message: %+v %v", out, err)
		}
		dec, _ := wire.DecodeMessage(got)
		if q2, err := messageFromAMQP(dec); err != nil || string(q2.Body) != string(body) {
			t.Fatalf("back: %+v %v", q2, err)
		}
	}
}

// A message sent over REST reaches an AMQP receiver with its custom
// properties as application properties and its body as one data
// section; a dead-lettered one carries the reason.
func TestRESTMessageToAMQP(t *testing.T) {
	q, err := newMessage([]byte("body"), "application/json", BrokerProperties{MessageId: "r-1", Label: "l", SessionId: "s"},
		map[string]PropertyValue{"n": IntValue(5), "t": StringValue("x")})
	if err != nil {
		t.Fatal(err)
	}
	m := stored(t, q, 3)
	m.DeadLetterReason, m.DeadLetterDescription = "MaxDeliveryCountExceeded", "too many"
	got, err := messageToAMQP(m, deliveryFacts{deadLetter: true, queue: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := wire.DecodeMessage(got)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Data) != 1 || string(out.Data[0]) != "body" || out.Properties.MessageID != "r-1" || out.Properties.GroupID != "s" {
		t.Fatalf("message %+v", out)
	}
	for k, want := range map[string]any{"n": int64(5), "t": "x", "DeadLetterReason": "MaxDeliveryCountExceeded", "DeadLetterErrorDescription": "too many"} {
		if v, _ := out.ApplicationProperties.Get(k); v != want {
			t.Errorf("application property %s = %#v, want %#v", k, v, want)
		}
	}
	if v, _ := out.MessageAnnotations.Get(annDeadLetterSource); v != "orders" {
		t.Errorf("dead-letter source %v", v)
	}
}

// Attaching a transaction coordinator is answered amqp:not-implemented:
// the SDKs' transactions are not served, and say so.
func TestAMQPTransactionsRefused(t *testing.T) {
	c := &amqpConn{s: &Service{}, host: "ns.servicebus.windows.net"}
	l := &amqp.Link{PeerAttach: &wire.Attach{Name: "txn", Role: true, OtherTarget: wire.Described{Descriptor: uint64(0x30), Value: []any{}}}}
	_, err := c.Attach(t.Context(), l)
	var we *wire.Error
	if !errors.As(err, &we) || we.Condition != wire.ErrNotImplemented {
		t.Fatalf("coordinator attach: %v, want amqp:not-implemented", err)
	}
}
