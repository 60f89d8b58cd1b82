package wire

// Terminus durability (source and target "durable").
const (
	DurableNone          uint32 = 0
	DurableConfiguration uint32 = 1
	DurableUnsettled     uint32 = 2
)

// Terminus expiry policies (source and target "expiry-policy").
const (
	ExpiryLinkDetach      Symbol = "link-detach"
	ExpirySessionEnd      Symbol = "session-end"
	ExpiryConnectionClose Symbol = "connection-close"
	ExpiryNever           Symbol = "never"
)

// Source (0x28) is the source terminus of a link. Decoding fills an absent
// ExpiryPolicy with its default, session-end; encoding leaves out an empty
// or default ExpiryPolicy and an empty Address (absent: a dynamic node).
// Filter values are Described (e.g. Service Bus's
// apache.org:selector-filter:string and com.microsoft:session-filter).
type Source struct {
	Address               string
	Durable               uint32
	ExpiryPolicy          Symbol
	Timeout               uint32 // seconds
	Dynamic               bool
	DynamicNodeProperties Map
	DistributionMode      Symbol
	Filter                Map
	DefaultOutcome        any
	Outcomes              []Symbol
	Capabilities          []Symbol
}

// MarshalAMQP implements Marshaler.
func (s *Source) MarshalAMQP(b *Buffer) error {
	l := b.beginComposite(DescSource)
	l.str(s.Address, s.Address != "")
	l.uint(s.Durable, s.Durable != 0)
	l.sym(s.ExpiryPolicy, s.ExpiryPolicy != "" && s.ExpiryPolicy != ExpirySessionEnd)
	l.uint(s.Timeout, s.Timeout != 0)
	l.boolean(s.Dynamic, s.Dynamic)
	l.mapField(s.DynamicNodeProperties)
	l.sym(s.DistributionMode, s.DistributionMode != "")
	l.mapField(s.Filter)
	l.value(s.DefaultOutcome)
	l.symbols(s.Outcomes)
	l.symbols(s.Capabilities)
	return l.finish()
}

func decodeSource(f *fields) any {
	s := &Source{
		Address:               f.str(0),
		Durable:               f.uint(1, 0),
		ExpiryPolicy:          f.sym(2),
		Timeout:               f.uint(3, 0),
		Dynamic:               f.boolean(4),
		DynamicNodeProperties: f.mapField(5),
		DistributionMode:      f.sym(6),
		Filter:                f.mapField(7),
		DefaultOutcome:        f.get(8),
		Outcomes:              f.symbols(9),
		Capabilities:          f.symbols(10),
	}
	if !f.present(2) {
		s.ExpiryPolicy = ExpirySessionEnd
	}
	return s
}

// Target (0x29) is the target terminus of a link; see Source for the
// encoding of defaults.
type Target struct {
	Address               string
	Durable               uint32
	ExpiryPolicy          Symbol
	Timeout               uint32 // seconds
	Dynamic               bool
	DynamicNodeProperties Map
	Capabilities          []Symbol
}

// MarshalAMQP implements Marshaler.
func (t *Target) MarshalAMQP(b *Buffer) error {
	l := b.beginComposite(DescTarget)
	l.str(t.Address, t.Address != "")
	l.uint(t.Durable, t.Durable != 0)
	l.sym(t.ExpiryPolicy, t.ExpiryPolicy != "" && t.ExpiryPolicy != ExpirySessionEnd)
	l.uint(t.Timeout, t.Timeout != 0)
	l.boolean(t.Dynamic, t.Dynamic)
	l.mapField(t.DynamicNodeProperties)
	l.symbols(t.Capabilities)
	return l.finish()
}

func decodeTarget(f *fields) any {
	t := &Target{
		Address:               f.str(0),
		Durable:               f.uint(1, 0),
		ExpiryPolicy:          f.sym(2),
		Timeout:               f.uint(3, 0),
		Dynamic:               f.boolean(4),
		DynamicNodeProperties: f.mapField(5),
		Capabilities:          f.symbols(6),
	}
	if !f.present(2) {
		t.ExpiryPolicy = ExpirySessionEnd
	}
	return t
}

// DeliveryState is the state of a delivery carried by transfer and
// disposition: *Received, *Accepted, *Rejected, *Released, *Modified, or
// a Described for states this package does not model (transactional-state
// 0x34, declared 0x33), which the engine can refuse.
type DeliveryState interface {
	Marshaler
	deliveryState()
}

// Received (0x23) is the non-terminal state that says how much of a
// message was received, for resuming.
type Received struct {
	SectionNumber uint32
	SectionOffset uint64
}

// Accepted (0x24) is the outcome "processed": Service Bus completes the
// message.
type Accepted struct{}

// Rejected (0x25) is the outcome "invalid": Service Bus dead-letters the
// message, reading the reason and description from Error.
type Rejected struct {
	Error *Error
}

// Released (0x26) is the outcome "not processed": Service Bus abandons.
type Released struct{}

// Modified (0x27) is "not processed, with changes": Service Bus abandons
// (or defers when UndeliverableHere), applying MessageAnnotations.
type Modified struct {
	DeliveryFailed     bool
	UndeliverableHere  bool
	MessageAnnotations Map
}

func (*Received) deliveryState() {}
func (*Accepted) deliveryState() {}
func (*Rejected) deliveryState() {}
func (*Released) deliveryState() {}
func (*Modified) deliveryState() {}
func (Described) deliveryState() {}

// MarshalAMQP implements Marshaler.
func (s *Received) MarshalAMQP(b *Buffer) error {
	l := b.beginComposite(DescReceived)
	l.uint(s.SectionNumber, true)
	l.ulong(s.SectionOffset, true)
	return l.finish()
}

func decodeReceived(f *fields) any {
	f.mandatory(0)
	f.mandatory(1)
	off, _ := field[uint64](f, 1, "ulong")
	return &Received{SectionNumber: f.uint(0, 0), SectionOffset: off}
}

// MarshalAMQP implements Marshaler.
func (*Accepted) MarshalAMQP(b *Buffer) error {
	l := b.beginComposite(DescAccepted)
	return l.finish()
}

// MarshalAMQP implements Marshaler.
func (*Released) MarshalAMQP(b *Buffer) error {
	l := b.beginComposite(DescReleased)
	return l.finish()
}

// MarshalAMQP implements Marshaler.
func (s *Rejected) MarshalAMQP(b *Buffer) error {
	return marshalErrorOnly(b, DescRejected, s.Error)
}

func decodeRejected(f *fields) any {
	return &Rejected{Error: f.errorField(0)}
}

// MarshalAMQP implements Marshaler.
func (s *Modified) MarshalAMQP(b *Buffer) error {
	l := b.beginComposite(DescModified)
	l.boolean(s.DeliveryFailed, s.DeliveryFailed)
	l.boolean(s.UndeliverableHere, s.UndeliverableHere)
	l.mapField(s.MessageAnnotations)
	return l.finish()
}

func decodeModified(f *fields) any {
	return &Modified{
		DeliveryFailed:     f.boolean(0),
		UndeliverableHere:  f.boolean(1),
		MessageAnnotations: f.mapField(2),
	}
}

// MarshalAMQP implements Marshaler, so a Described can stand wherever an
// encodable value (or a DeliveryState) is expected.
func (d Described) MarshalAMQP(b *Buffer) error { return b.writeDescribed(d, 0) }
