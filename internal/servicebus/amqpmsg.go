package servicebus

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// A message is stored once, whichever protocol sent it, and read by
// either. The stored form is REST's (storedProps and the body); a message
// that came over AMQP also keeps its application-properties, body and
// footer sections exactly as the sender encoded them (storedProps.AMQP),
// so that an AMQP receiver gets every AMQP type back unchanged, while a
// REST receiver sees the properties REST can express and the body's data.
//
// The message annotations are Service Bus's (service-bus-amqp-protocol-guide,
// "Message annotations"; the SDKs' message.go); a dead-lettered message's
// reason and description travel as the application properties
// DeadLetterReason and DeadLetterErrorDescription.
const (
	annSequenceNumber   = wire.Symbol("x-opt-sequence-number")
	annEnqueuedTime     = wire.Symbol("x-opt-enqueued-time")
	annLockedUntil      = wire.Symbol("x-opt-locked-until")
	annScheduledEnqueue = wire.Symbol("x-opt-scheduled-enqueue-time")
	annPartitionKey     = wire.Symbol("x-opt-partition-key")
	annViaPartitionKey  = wire.Symbol("x-opt-via-partition-key")
	annDeadLetterSource = wire.Symbol("x-opt-deadletter-source")
	annLockToken        = wire.Symbol("x-opt-lock-token")
	annMessageState     = wire.Symbol("x-opt-message-state")
)

// The message states of x-opt-message-state (azservicebus MessageState:
// active 0, deferred 1, scheduled 2).
const (
	stateDeferred  = int64(1)
	stateScheduled = int64(2)
)

// messageFromAMQP is the stored form of a message a sender transferred.
// It fails (an amqp:invalid-field for the sender) on what Service Bus
// refuses: a message id or session id longer than 128 characters.
func messageFromAMQP(m *wire.Message) (store.QueueMessage, error) {
	var p storedProps
	var q store.QueueMessage
	if pr := m.Properties; pr != nil {
		q.MessageID = idString(pr.MessageID)
		p.CorrelationID = idString(pr.CorrelationID)
		p.Label, p.ReplyTo, p.To = pr.Subject, pr.ReplyTo, pr.To
		p.ContentType = string(pr.ContentType)
		p.SessionID, p.ReplyToSessionID = pr.GroupID, pr.ReplyToGroupID
	}
	// Service Bus: "MessageId ... maximum length 128"; SessionId likewise
	// (Message.MessageId / SessionId property docs).
	if len(q.MessageID) > 128 || len(p.SessionID) > 128 {
		return q, fmt.Errorf("the message id and session id may be at most 128 characters")
	}
	q.SessionID = p.SessionID
	if q.MessageID == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		q.MessageID = hex.EncodeToString(b[:])
	}
	if h := m.Header; h != nil && h.TTL > 0 {
		q.TimeToLive = time.Duration(h.TTL) * time.Millisecond
		p.TimeToLive = q.TimeToLive.Seconds()
	}
	if v, ok := m.MessageAnnotations.Get(annScheduledEnqueue); ok {
		if t, ok := v.(time.Time); ok && !t.IsZero() {
			t = t.UTC()
			q.ScheduledAt, p.ScheduledEnqueueTimeUtc = t, &t
		}
	}
	if v, ok := m.MessageAnnotations.Get(annPartitionKey); ok {
		p.PartitionKey, _ = v.(string)
	}
	if v, ok := m.MessageAnnotations.Get(annViaPartitionKey); ok {
		p.ViaPartitionKey, _ = v.(string)
	}
	if user := userPropertiesOf(m.ApplicationProperties); len(user) > 0 {
		u, err := MarshalUserProperties(user)
		if err != nil {
			return q, err
		}
		p.User = u
	}
	for _, d := range m.Data {
		q.Body = append(q.Body, d...)
	}
	// A body of one data section is kept once, as Body; another body (an
	// amqp-value, amqp-sequence, or several data sections, whose
	// boundaries the receiver must get back) also in its encoded form.
	raw := append([]byte(nil), m.Raw.ApplicationProperties...)
	if len(m.Data) != 1 {
		raw = append(raw, m.Raw.Body...)
	}
	raw = append(raw, m.Raw.Footer...)
	if len(raw) > 0 {
		p.AMQP = raw
	}
	props, err := json.Marshal(p)
	if err != nil {
		return q, err
	}
	q.Properties = props
	return q, nil
}

// idString is a message or correlation id as Service Bus keeps it: a
// string (the SDKs send strings; a UUID, number or binary id is written
// in its usual text form).
func idString(v any) string {
	switch id := v.(type) {
	case nil:
		return ""
	case string:
		return id
	case wire.UUID:
		return uuid.UUID(id).String()
	case uint64:
		return strconv.FormatUint(id, 10)
	case []byte:
		return hex.EncodeToString(id)
	}
	return fmt.Sprint(v)
}

// userPropertiesOf is the part of the application properties REST can
// express: string keys with string, boolean, integer, floating point and
// timestamp values.
func userPropertiesOf(ap wire.Map) map[string]PropertyValue {
	out := map[string]PropertyValue{}
	for _, e := range ap {
		k, ok := e.Key.(string)
		if !ok {
			continue
		}
		switch v := e.Value.(type) {
		case string:
			out[k] = StringValue(v)
		case bool:
			out[k] = BoolValue(v)
		case int8:
			out[k] = IntValue(int64(v))
		case int16:
			out[k] = IntValue(int64(v))
		case int32:
			out[k] = IntValue(int64(v))
		case int64:
			out[k] = IntValue(v)
		case uint8:
			out[k] = IntValue(int64(v))
		case uint16:
			out[k] = IntValue(int64(v))
		case uint32:
			out[k] = IntValue(int64(v))
		case uint64:
			if v <= math.MaxInt64 {
				out[k] = IntValue(int64(v))
			}
		case float32:
			out[k] = DoubleValue(float64(v))
		case float64:
			out[k] = DoubleValue(v)
		case time.Time:
			out[k] = TimeValue(v)
		}
	}
	return out
}

// deliveryFacts are what a delivery adds to a stored message: its lock,
// and the sub-queue it was read from.
type deliveryFacts struct {
	lockToken   string // "" for receive-and-delete
	lockedUntil time.Time
	deadLetter  bool   // read from the dead-letter sub-queue
	queue       string // the queue's name, for x-opt-deadletter-source
	// now, when set, tells a message that is still scheduled (a peek)
	// from one that is due.
	now time.Time
}

// messageToAMQP encodes a stored message for an AMQP receiver: header,
// Service Bus's message annotations, properties, then the sections the
// sender encoded (or, for a message sent over REST, its custom properties
// and its body as one data section).
func messageToAMQP(m store.QueueMessage, f deliveryFacts) ([]byte, error) {
	var p storedProps
	if len(m.Properties) > 0 {
		if err := json.Unmarshal(m.Properties, &p); err != nil {
			return nil, fmt.Errorf("servicebus: stored properties of message %d: %w", m.SequenceNumber, err)
		}
	}
	// The delivery count is always on the wire, 0 included: the JavaScript
	// SDK reports the header's field as is (@azure/service-bus 7.9
	// dist/index.js: deliveryCount: rheaMessage.delivery_count), so an
	// absent field would be undefined rather than 0.
	out := &wire.Message{Header: &wire.Header{Durable: true, DeliveryCount: uint32(max(m.DeliveryCount-1, 0)), Present: wire.HeaderDeliveryCount}}
	if !m.ExpiresAt.IsZero() {
		start := m.EnqueuedAt
		if m.ScheduledAt.After(start) {
			start = m.ScheduledAt
		}
		if ttl := m.ExpiresAt.Sub(start); ttl > 0 && ttl/time.Millisecond <= math.MaxUint32 {
			out.Header.TTL = uint32(ttl / time.Millisecond)
		}
	}
	ann := wire.Map{}
	switch {
	case m.Deferred:
		ann.Set(annMessageState, stateDeferred)
	case !f.now.IsZero() && m.ScheduledAt.After(f.now):
		ann.Set(annMessageState, stateScheduled)
	}
	ann.Set(annSequenceNumber, m.SequenceNumber)
	ann.Set(annEnqueuedTime, m.EnqueuedAt.UTC())
	if f.lockToken != "" {
		ann.Set(annLockedUntil, f.lockedUntil.UTC())
	}
	if !m.ScheduledAt.IsZero() {
		ann.Set(annScheduledEnqueue, m.ScheduledAt.UTC())
	}
	if p.PartitionKey != "" {
		ann.Set(annPartitionKey, p.PartitionKey)
	}
	if p.ViaPartitionKey != "" {
		ann.Set(annViaPartitionKey, p.ViaPartitionKey)
	}
	if f.deadLetter {
		ann.Set(annDeadLetterSource, f.queue)
	}
	out.MessageAnnotations = ann
	out.Properties = &wire.Properties{MessageID: m.MessageID, To: p.To, Subject: p.Label, ReplyTo: p.ReplyTo,
		ContentType: wire.Symbol(p.ContentType), GroupID: p.SessionID, ReplyToGroupID: p.ReplyToSessionID}
	if p.CorrelationID != "" {
		out.Properties.CorrelationID = p.CorrelationID
	}
	if !m.ExpiresAt.IsZero() {
		out.Properties.AbsoluteExpiryTime = m.ExpiresAt.UTC()
	}
	out.Properties.CreationTime = m.EnqueuedAt.UTC()

	// The application properties: the sender's (its exact bytes, unless
	// a dead-letter reason joins them), or REST's custom properties.
	var sent *wire.Message
	if len(p.AMQP) > 0 {
		var err error
		if sent, err = wire.DecodeMessage(p.AMQP); err != nil {
			return nil, fmt.Errorf("servicebus: stored sections of message %d: %w", m.SequenceNumber, err)
		}
	}
	var ap wire.Map
	if sent != nil {
		ap = sent.ApplicationProperties
	} else if len(p.User) > 0 {
		user, err := UnmarshalUserProperties(p.User)
		if err != nil {
			return nil, fmt.Errorf("servicebus: custom properties of message %d: %w", m.SequenceNumber, err)
		}
		for k, v := range user {
			ap.Set(k, amqpValueOf(v))
		}
	}
	deadLettered := m.DeadLetterReason != "" || m.DeadLetterDescription != ""
	if deadLettered {
		ap = append(wire.Map(nil), ap...)
		if m.DeadLetterReason != "" {
			ap.Set("DeadLetterReason", m.DeadLetterReason)
		}
		if m.DeadLetterDescription != "" {
			ap.Set("DeadLetterErrorDescription", m.DeadLetterDescription)
		}
	}
	var b wire.Buffer
	if sent == nil {
		out.ApplicationProperties = ap
		out.Data = [][]byte{m.Body}
		if err := out.MarshalAMQP(&b); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	if deadLettered {
		out.ApplicationProperties = ap
	}
	if err := out.MarshalAMQP(&b); err != nil {
		return nil, err
	}
	enc := b.Bytes()
	if !deadLettered {
		enc = append(enc, sent.Raw.ApplicationProperties...)
	}
	if sent.Raw.Body != nil {
		enc = append(enc, sent.Raw.Body...)
	} else {
		body, err := (&wire.Message{Data: [][]byte{m.Body}}).Encoded()
		if err != nil {
			return nil, err
		}
		enc = append(enc, body...)
	}
	return append(enc, sent.Raw.Footer...), nil
}

// amqpValueOf is a custom property as an AMQP value: plainValue's, but a
// time stays an AMQP timestamp.
func amqpValueOf(v PropertyValue) any {
	if v.Kind == KindTime {
		return v.Time.UTC()
	}
	return plainValue(v)
}
