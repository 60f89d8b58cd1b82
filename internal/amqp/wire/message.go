package wire

import (
	"time"
)

// MessageFormatBatch is the message format of a Service Bus batched
// transfer: the payload is a message whose Data sections each hold one
// encoded message (see DecodeBatch).
const MessageFormatBatch uint32 = 0x80013700

// HeaderField flags the Header fields present on the wire.
type HeaderField uint8

// Header fields, for Header.Present.
const (
	HeaderDurable HeaderField = 1 << iota
	HeaderPriority
	HeaderTTL
	HeaderFirstAcquirer
	HeaderDeliveryCount
)

// DefaultPriority is the priority of a message without one.
const DefaultPriority uint8 = 4

// Header (0x70) is the message header. A field is encoded when its bit is
// set in Present or when it differs from its absent value (false, 0, and
// for Priority 0 or the default 4), so a Header built in Go sends what is
// set and a decoded one re-encodes exactly. Decoding sets Present for each
// field found and gives an absent Priority the default, 4.
type Header struct {
	Durable       bool
	Priority      uint8
	TTL           uint32 // milliseconds
	FirstAcquirer bool
	DeliveryCount uint32
	Present       HeaderField
}

// MarshalAMQP implements Marshaler.
func (h *Header) MarshalAMQP(b *Buffer) error {
	l := b.beginComposite(DescHeader)
	l.boolean(h.Durable, h.Durable || h.Present&HeaderDurable != 0)
	l.ubyte(h.Priority, h.Present&HeaderPriority != 0 || (h.Priority != 0 && h.Priority != DefaultPriority))
	l.uint(h.TTL, h.TTL != 0 || h.Present&HeaderTTL != 0)
	l.boolean(h.FirstAcquirer, h.FirstAcquirer || h.Present&HeaderFirstAcquirer != 0)
	l.uint(h.DeliveryCount, h.DeliveryCount != 0 || h.Present&HeaderDeliveryCount != 0)
	return l.finish()
}

func decodeHeader(f *fields) any {
	h := &Header{Priority: DefaultPriority}
	h.Durable = f.boolean(0)
	if p, ok := field[uint8](f, 1, "ubyte"); ok {
		h.Priority = p
	}
	h.TTL = f.uint(2, 0)
	h.FirstAcquirer = f.boolean(3)
	h.DeliveryCount = f.uint(4, 0)
	for i := 0; i < 5; i++ {
		if f.present(i) {
			h.Present |= 1 << i
		}
	}
	return h
}

// PropertiesField flags the Properties fields present on the wire.
type PropertiesField uint16

// Properties fields, for Properties.Present.
const (
	PropMessageID PropertiesField = 1 << iota
	PropUserID
	PropTo
	PropSubject
	PropReplyTo
	PropCorrelationID
	PropContentType
	PropContentEncoding
	PropAbsoluteExpiryTime
	PropCreationTime
	PropGroupID
	PropGroupSequence
	PropReplyToGroupID
)

// Properties (0x73) are the immutable properties of a message. As for
// Header, a field is encoded when its bit is set in Present or when it is
// not its zero value (nil, "", the zero time.Time, 0), and decoding sets
// Present for each field found, so that an empty string that was sent is
// sent again. MessageID and CorrelationID are uint64, UUID, []byte or
// string in practice; any type is carried.
type Properties struct {
	MessageID          any
	UserID             []byte
	To                 string
	Subject            string
	ReplyTo            string
	CorrelationID      any
	ContentType        Symbol
	ContentEncoding    Symbol
	AbsoluteExpiryTime time.Time
	CreationTime       time.Time
	GroupID            string
	GroupSequence      uint32
	ReplyToGroupID     string
	Present            PropertiesField
}

// MarshalAMQP implements Marshaler.
func (p *Properties) MarshalAMQP(b *Buffer) error {
	has := func(f PropertiesField) bool { return p.Present&f != 0 }
	l := b.beginComposite(DescProperties)
	l.value(p.MessageID)
	if p.UserID != nil || has(PropUserID) {
		l.b.writeBinary(p.UserID)
		l.kept()
	} else {
		l.skip()
	}
	l.str(p.To, p.To != "" || has(PropTo))
	l.str(p.Subject, p.Subject != "" || has(PropSubject))
	l.str(p.ReplyTo, p.ReplyTo != "" || has(PropReplyTo))
	l.value(p.CorrelationID)
	l.sym(p.ContentType, p.ContentType != "" || has(PropContentType))
	l.sym(p.ContentEncoding, p.ContentEncoding != "" || has(PropContentEncoding))
	l.timestamp(p.AbsoluteExpiryTime, !p.AbsoluteExpiryTime.IsZero() || has(PropAbsoluteExpiryTime))
	l.timestamp(p.CreationTime, !p.CreationTime.IsZero() || has(PropCreationTime))
	l.str(p.GroupID, p.GroupID != "" || has(PropGroupID))
	l.uint(p.GroupSequence, p.GroupSequence != 0 || has(PropGroupSequence))
	l.str(p.ReplyToGroupID, p.ReplyToGroupID != "" || has(PropReplyToGroupID))
	return l.finish()
}

func decodeProperties(f *fields) any {
	p := &Properties{
		MessageID:          f.get(0),
		UserID:             f.bin(1),
		To:                 f.str(2),
		Subject:            f.str(3),
		ReplyTo:            f.str(4),
		CorrelationID:      f.get(5),
		ContentType:        f.sym(6),
		ContentEncoding:    f.sym(7),
		AbsoluteExpiryTime: f.timestamp(8),
		CreationTime:       f.timestamp(9),
		GroupID:            f.str(10),
		GroupSequence:      f.uint(11, 0),
		ReplyToGroupID:     f.str(12),
	}
	for i := 0; i < 13; i++ {
		if f.present(i) {
			p.Present |= 1 << i
		}
	}
	return p
}

// Message is an AMQP message (part 3.2): the sections in their wire order.
// Nil maps and pointers are absent sections; a non-nil empty Map is an
// empty section. The body is exactly one of Data (one or more data
// sections), Sequence (amqp-sequence sections) or Value (one amqp-value
// section, present when HasValue is true or Value is not nil, so a null
// amqp-value survives a round trip).
type Message struct {
	Header                *Header
	DeliveryAnnotations   Map
	MessageAnnotations    Map
	Properties            *Properties
	ApplicationProperties Map
	Data                  [][]byte
	Sequence              [][]any
	Value                 any
	HasValue              bool
	Footer                Map

	// Raw holds the encoded sections as DecodeMessage found them
	// (sub-slices of its input). MarshalAMQP ignores it; it lets a store
	// keep the bytes it was given and re-encode only what it edits.
	Raw RawSections
}

// RawSections are the encoded bytes of each section of a decoded message;
// Body spans every body section. A nil slice is an absent section.
type RawSections struct {
	Header, DeliveryAnnotations, MessageAnnotations, Properties,
	ApplicationProperties, Body, Footer []byte
}

// MarshalAMQP implements Marshaler: it writes the sections in order.
func (m *Message) MarshalAMQP(b *Buffer) error {
	hasValue := m.HasValue || m.Value != nil
	kinds := 0
	for _, has := range []bool{m.Data != nil, m.Sequence != nil, hasValue} {
		if has {
			kinds++
		}
	}
	if kinds > 1 {
		return &EncodeError{What: "message has more than one kind of body"}
	}
	if m.Header != nil {
		if err := m.Header.MarshalAMQP(b); err != nil {
			return err
		}
	}
	if err := writeMapSection(b, DescDeliveryAnnotations, m.DeliveryAnnotations); err != nil {
		return err
	}
	if err := writeMapSection(b, DescMessageAnnotations, m.MessageAnnotations); err != nil {
		return err
	}
	if m.Properties != nil {
		if err := m.Properties.MarshalAMQP(b); err != nil {
			return err
		}
	}
	if err := writeMapSection(b, DescApplicationProperties, m.ApplicationProperties); err != nil {
		return err
	}
	for _, d := range m.Data {
		b.writeDescriptor(DescData)
		if d == nil {
			d = []byte{}
		}
		if err := b.writeVar(TypeVbin8, TypeVbin32, "", d); err != nil {
			return err
		}
	}
	for _, s := range m.Sequence {
		b.writeDescriptor(DescAMQPSequence)
		if s == nil {
			s = []any{}
		}
		if err := b.writeList(s, 1); err != nil {
			return err
		}
	}
	if hasValue {
		b.writeDescriptor(DescAMQPValue)
		if err := b.encode(m.Value, 1); err != nil {
			return err
		}
	}
	return writeMapSection(b, DescFooter, m.Footer)
}

func writeMapSection(b *Buffer, code uint64, m Map) error {
	if m == nil {
		return nil
	}
	b.writeDescriptor(code)
	return b.writeMap(m, 1)
}

// Encoded returns the message's encoding in a new slice.
func (m *Message) Encoded() ([]byte, error) {
	var b Buffer
	if err := m.MarshalAMQP(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// sectionOrder is the position of each section in a message; body
// sections share one position.
func sectionOrder(code uint64) int {
	switch code {
	case DescHeader:
		return 0
	case DescDeliveryAnnotations:
		return 1
	case DescMessageAnnotations:
		return 2
	case DescProperties:
		return 3
	case DescApplicationProperties:
		return 4
	case DescData, DescAMQPSequence, DescAMQPValue:
		return 5
	case DescFooter:
		return 6
	}
	return -1
}

// DecodeMessage decodes an encoded message: sections in the order of part
// 3.2, each at most once except data and amqp-sequence, one kind of body.
// A message without a body is accepted (some peers send only properties
// on management replies).
func DecodeMessage(data []byte) (*Message, error) {
	budget := MaxZeroWidthElements
	return decodeMessage(data, &budget)
}

// decodeMessage is DecodeMessage with a zero-width element budget shared
// with the caller (DecodeBatch shares one across the whole batch).
func decodeMessage(data []byte, budget *int) (*Message, error) {
	m := &Message{}
	d := decoder{data: data, budget: budget}
	last, lastBody := -1, uint64(0)
	bodyStart := -1
	for d.off < len(data) {
		start := d.off
		if data[start] != TypeDescribed {
			return nil, d.errorf(start, "message section is not a described value (0x%02x)", data[start])
		}
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		raw := data[start:d.off]
		var code uint64
		var val any
		switch s := v.(type) {
		case *Header:
			code = DescHeader
		case *Properties:
			code = DescProperties
		case Described:
			c, ok := descriptorCode(s.Descriptor)
			if !ok {
				return nil, d.errorf(start, "unknown message section descriptor %v", s.Descriptor)
			}
			code, val = c, s.Value
		default:
			return nil, d.errorf(start, "unknown message section %T", v)
		}
		order := sectionOrder(code)
		if order < 0 {
			return nil, d.errorf(start, "descriptor 0x%02x is not a message section", code)
		}
		if order < last || (order == last && (order != 5 || code != lastBody || code == DescAMQPValue)) {
			return nil, d.errorf(start, "message section 0x%02x out of order or repeated", code)
		}
		last = order
		switch code {
		case DescHeader:
			m.Header = v.(*Header)
			m.Raw.Header = raw
		case DescProperties:
			m.Properties = v.(*Properties)
			m.Raw.Properties = raw
		case DescDeliveryAnnotations, DescMessageAnnotations, DescApplicationProperties, DescFooter:
			mv, ok := val.(Map)
			if !ok && val != nil {
				return nil, d.errorf(start, "message section 0x%02x needs a map, got %s", code, typeName(val))
			}
			if mv == nil {
				break // a null section is the same as an absent one
			}
			switch code {
			case DescDeliveryAnnotations:
				m.DeliveryAnnotations, m.Raw.DeliveryAnnotations = mv, raw
			case DescMessageAnnotations:
				m.MessageAnnotations, m.Raw.MessageAnnotations = mv, raw
			case DescApplicationProperties:
				m.ApplicationProperties, m.Raw.ApplicationProperties = mv, raw
			default:
				m.Footer, m.Raw.Footer = mv, raw
			}
		case DescData:
			p, ok := val.([]byte)
			if !ok {
				return nil, d.errorf(start, "data section needs binary, got %s", typeName(val))
			}
			m.Data = append(m.Data, p)
		case DescAMQPSequence:
			l, ok := val.([]any)
			if !ok {
				return nil, d.errorf(start, "amqp-sequence section needs a list, got %s", typeName(val))
			}
			m.Sequence = append(m.Sequence, l)
		case DescAMQPValue:
			m.Value, m.HasValue = val, true
		}
		if order == 5 {
			lastBody = code
			if bodyStart < 0 {
				bodyStart = start
			}
			m.Raw.Body = data[bodyStart:d.off]
		}
	}
	return m, nil
}

// DecodeBatch decodes the payload of a transfer with message format
// MessageFormatBatch: each Data section of the outer message is one
// message. The outer message's other sections (the SDKs copy the first
// message's properties there) are not returned.
func DecodeBatch(data []byte) ([]*Message, error) {
	budget := MaxZeroWidthElements
	outer, err := decodeMessage(data, &budget)
	if err != nil {
		return nil, err
	}
	if outer.Sequence != nil || outer.HasValue {
		return nil, &DecodeError{What: "batch message body is not data sections"}
	}
	msgs := make([]*Message, 0, len(outer.Data))
	for _, p := range outer.Data {
		m, err := decodeMessage(p, &budget)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// MarshalBatch writes msgs as a batch payload (message format
// MessageFormatBatch): one Data section per message.
func MarshalBatch(b *Buffer, msgs []*Message) error {
	var inner Buffer
	for _, m := range msgs {
		inner.Reset()
		if err := m.MarshalAMQP(&inner); err != nil {
			return err
		}
		b.writeDescriptor(DescData)
		if err := b.writeVar(TypeVbin8, TypeVbin32, "", inner.Bytes()); err != nil {
			return err
		}
	}
	return nil
}
