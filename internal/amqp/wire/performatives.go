package wire

import (
	"fmt"
	"math"
)

// isComposite reports whether convertComposite knows code.
func isComposite(code uint64) bool {
	switch code {
	case DescOpen, DescBegin, DescAttach, DescFlow, DescTransfer, DescDisposition, DescDetach, DescEnd, DescClose,
		DescError, DescReceived, DescAccepted, DescRejected, DescReleased, DescModified, DescSource, DescTarget,
		DescSASLMechanisms, DescSASLInit, DescSASLChallenge, DescSASLResponse, DescSASLOutcome,
		DescHeader, DescProperties:
		return true
	}
	return false
}

// compositeName names a composite in decoding errors.
func compositeName(code uint64) string {
	switch code {
	case DescOpen:
		return "open"
	case DescBegin:
		return "begin"
	case DescAttach:
		return "attach"
	case DescFlow:
		return "flow"
	case DescTransfer:
		return "transfer"
	case DescDisposition:
		return "disposition"
	case DescDetach:
		return "detach"
	case DescEnd:
		return "end"
	case DescClose:
		return "close"
	case DescError:
		return "error"
	case DescReceived:
		return "received"
	case DescRejected:
		return "rejected"
	case DescModified:
		return "modified"
	case DescSource:
		return "source"
	case DescTarget:
		return "target"
	case DescSASLMechanisms:
		return "sasl-mechanisms"
	case DescSASLInit:
		return "sasl-init"
	case DescSASLChallenge:
		return "sasl-challenge"
	case DescSASLResponse:
		return "sasl-response"
	case DescSASLOutcome:
		return "sasl-outcome"
	case DescHeader:
		return "header"
	case DescProperties:
		return "properties"
	}
	return fmt.Sprintf("0x%02x", code)
}

// convertComposite turns the decoded field list of a composite this
// package decodes to a struct into it. A switch, not a table of
// functions, so that f stays on the decoder's stack.
func convertComposite(code uint64, f *fields) any {
	f.code = code
	switch code {
	case DescOpen:
		return decodeOpen(f)
	case DescBegin:
		return decodeBegin(f)
	case DescAttach:
		return decodeAttach(f)
	case DescFlow:
		return decodeFlow(f)
	case DescTransfer:
		return decodeTransfer(f)
	case DescDisposition:
		return decodeDisposition(f)
	case DescDetach:
		return decodeDetach(f)
	case DescEnd:
		return decodeEnd(f)
	case DescClose:
		return decodeClose(f)
	case DescError:
		return decodeError(f)
	case DescReceived:
		return decodeReceived(f)
	case DescAccepted:
		return &Accepted{}
	case DescRejected:
		return decodeRejected(f)
	case DescReleased:
		return &Released{}
	case DescModified:
		return decodeModified(f)
	case DescSource:
		return decodeSource(f)
	case DescTarget:
		return decodeTarget(f)
	case DescSASLMechanisms:
		return decodeSASLMechanisms(f)
	case DescSASLInit:
		return decodeSASLInit(f)
	case DescSASLChallenge:
		return decodeSASLChallenge(f)
	case DescSASLResponse:
		return decodeSASLResponse(f)
	case DescSASLOutcome:
		return decodeSASLOutcome(f)
	case DescHeader:
		return decodeHeader(f)
	case DescProperties:
		return decodeProperties(f)
	}
	panic("wire: convertComposite of an unknown code") // isComposite said yes
}

// Link roles (attach and disposition "role").
const (
	RoleSender   = false
	RoleReceiver = true
)

// Sender settle modes (attach "snd-settle-mode").
const (
	SndSettleModeUnsettled uint8 = 0
	SndSettleModeSettled   uint8 = 1
	SndSettleModeMixed     uint8 = 2
)

// Receiver settle modes (attach and transfer "rcv-settle-mode").
const (
	RcvSettleModeFirst  uint8 = 0
	RcvSettleModeSecond uint8 = 1
)

// Spec defaults of the open and begin fields that are not zero.
const (
	DefaultMaxFrameSize uint32 = math.MaxUint32
	DefaultChannelMax   uint16 = math.MaxUint16
	DefaultHandleMax    uint32 = math.MaxUint32
)

// Open (0x10) negotiates connection parameters. Decoding fills absent
// fields with the spec defaults. Encoding writes every field as given
// (set MaxFrameSize and ChannelMax: their zero value means 0, not the
// default) and leaves out those equal to the default.
type Open struct {
	ContainerID         string
	Hostname            string
	MaxFrameSize        uint32
	ChannelMax          uint16
	IdleTimeOut         uint32 // milliseconds; 0 is none
	OutgoingLocales     []Symbol
	IncomingLocales     []Symbol
	OfferedCapabilities []Symbol
	DesiredCapabilities []Symbol
	Properties          Map
}

// MarshalAMQP implements Marshaler.
func (o *Open) MarshalAMQP(b *Buffer) error {
	l := b.beginComposite(DescOpen)
	l.str(o.ContainerID, true)
	l.str(o.Hostname, o.Hostname != "")
	l.uint(o.MaxFrameSize, o.MaxFrameSize != DefaultMaxFrameSize)
	l.ushort(o.ChannelMax, o.ChannelMax != DefaultChannelMax)
	l.uint(o.IdleTimeOut, o.IdleTimeOut != 0)
	l.symbols(o.OutgoingLocales)
	l.symbols(o.IncomingLocales)
	l.symbols(o.OfferedCapabilities)
	l.symbols(o.DesiredCapabilities)
	l.mapField(o.Properties)
	return l.finish()
}

func decodeOpen(f *fields) any {
	f.mandatory(0)
	return &Open{
		ContainerID:         f.str(0),
		Hostname:            f.str(1),
		MaxFrameSize:        f.uint(2, DefaultMaxFrameSize),
		ChannelMax:          f.ushort(3, DefaultChannelMax),
		IdleTimeOut:         f.uint(4, 0),
		OutgoingLocales:     f.symbols(5),
		IncomingLocales:     f.symbols(6),
		OfferedCapabilities: f.symbols(7),
		DesiredCapabilities: f.symbols(8),
		Properties:          f.mapField(9),
	}
}

// Begin (0x11) starts a session. HandleMax is encoded as given (its zero
// value means 0) and left out when it is the default.
type Begin struct {
	RemoteChannel       *uint16
	NextOutgoingID      uint32
	IncomingWindow      uint32
	OutgoingWindow      uint32
	HandleMax           uint32
	OfferedCapabilities []Symbol
	DesiredCapabilities []Symbol
	Properties          Map
}

// MarshalAMQP implements Marshaler.
func (o *Begin) MarshalAMQP(b *Buffer) error {
	l := b.beginComposite(DescBegin)
	l.ushortp(o.RemoteChannel)
	l.uint(o.NextOutgoingID, true)
	l.uint(o.IncomingWindow, true)
	l.uint(o.OutgoingWindow, true)
	l.uint(o.HandleMax, o.HandleMax != DefaultHandleMax)
	l.symbols(o.OfferedCapabilities)
	l.symbols(o.DesiredCapabilities)
	l.mapField(o.Properties)
	return l.finish()
}

func decodeBegin(f *fields) any {
	f.mandatory(1)
	f.mandatory(2)
	f.mandatory(3)
	return &Begin{
		RemoteChannel:       f.ushortp(0),
		NextOutgoingID:      f.uint(1, 0),
		IncomingWindow:      f.uint(2, 0),
		OutgoingWindow:      f.uint(3, 0),
		HandleMax:           f.uint(4, DefaultHandleMax),
		OfferedCapabilities: f.symbols(5),
		DesiredCapabilities: f.symbols(6),
		Properties:          f.mapField(7),
	}
}

// Attach (0x12) attaches a link. A nil SndSettleMode means mixed and a nil
// RcvSettleMode first, per the spec defaults (see SndSettle and RcvSettle).
// A target that is not a 0x29 target, such as a transaction coordinator
// (0x30), is kept in OtherTarget as a Described so the engine can refuse it.
type Attach struct {
	Name                 string
	Handle               uint32
	Role                 bool
	SndSettleMode        *uint8
	RcvSettleMode        *uint8
	Source               *Source
	Target               *Target
	OtherTarget          any
	Unsettled            Map
	IncompleteUnsettled  bool
	InitialDeliveryCount *uint32
	MaxMessageSize       *uint64 // nil or 0: no limit
	OfferedCapabilities  []Symbol
	DesiredCapabilities  []Symbol
	Properties           Map
}

// SndSettle returns the sender settle mode with the default applied.
func (o *Attach) SndSettle() uint8 {
	if o.SndSettleMode == nil {
		return SndSettleModeMixed
	}
	return *o.SndSettleMode
}

// RcvSettle returns the receiver settle mode with the default applied.
func (o *Attach) RcvSettle() uint8 {
	if o.RcvSettleMode == nil {
		return RcvSettleModeFirst
	}
	return *o.RcvSettleMode
}

// MarshalAMQP implements Marshaler.
func (o *Attach) MarshalAMQP(b *Buffer) error {
	l := b.beginComposite(DescAttach)
	l.str(o.Name, true)
	l.uint(o.Handle, true)
	l.boolean(o.Role, true)
	l.ubytep(o.SndSettleMode)
	l.ubytep(o.RcvSettleMode)
	optional(&l, o.Source)
	switch {
	case o.Target != nil:
		l.value(o.Target)
	case o.OtherTarget != nil:
		l.value(o.OtherTarget)
	default:
		l.skip()
	}
	l.mapField(o.Unsettled)
	l.boolean(o.IncompleteUnsettled, o.IncompleteUnsettled)
	l.uintp(o.InitialDeliveryCount)
	l.ulongp(o.MaxMessageSize)
	l.symbols(o.OfferedCapabilities)
	l.symbols(o.DesiredCapabilities)
	l.mapField(o.Properties)
	return l.finish()
}

func decodeAttach(f *fields) any {
	f.mandatory(0)
	f.mandatory(1)
	f.mandatory(2)
	a := &Attach{
		Name:                 f.str(0),
		Handle:               f.uint(1, 0),
		Role:                 f.boolean(2),
		SndSettleMode:        f.ubytep(3),
		RcvSettleMode:        f.ubytep(4),
		Unsettled:            f.mapField(7),
		IncompleteUnsettled:  f.boolean(8),
		InitialDeliveryCount: f.uintp(9),
		MaxMessageSize:       f.ulongp(10),
		OfferedCapabilities:  f.symbols(11),
		DesiredCapabilities:  f.symbols(12),
		Properties:           f.mapField(13),
	}
	a.Source, _ = field[*Source](f, 5, "source")
	switch t := f.get(6).(type) {
	case nil:
	case *Target:
		a.Target = t
	case Described:
		a.OtherTarget = t
	default:
		f.fail(6, "target")
	}
	return a
}

// Flow (0x13) updates session and link flow state. Handle nil makes it a
// session-only flow.
type Flow struct {
	NextIncomingID *uint32
	IncomingWindow uint32
	NextOutgoingID uint32
	OutgoingWindow uint32
	Handle         *uint32
	DeliveryCount  *uint32
	LinkCredit     *uint32
	Available      *uint32
	Drain          bool
	Echo           bool
	Properties     Map
}

// MarshalAMQP implements Marshaler.
func (o *Flow) MarshalAMQP(b *Buffer) error {
	l := b.beginComposite(DescFlow)
	l.uintp(o.NextIncomingID)
	l.uint(o.IncomingWindow, true)
	l.uint(o.NextOutgoingID, true)
	l.uint(o.OutgoingWindow, true)
	l.uintp(o.Handle)
	l.uintp(o.DeliveryCount)
	l.uintp(o.LinkCredit)
	l.uintp(o.Available)
	l.boolean(o.Drain, o.Drain)
	l.boolean(o.Echo, o.Echo)
	l.mapField(o.Properties)
	return l.finish()
}

func decodeFlow(f *fields) any {
	f.mandatory(1)
	f.mandatory(2)
	f.mandatory(3)
	a := new(struct {
		Flow
		v [5]uint32
	})
	a.Flow = Flow{
		NextIncomingID: fieldTo(f, 0, "uint", &a.v[0]),
		IncomingWindow: f.uint(1, 0),
		NextOutgoingID: f.uint(2, 0),
		OutgoingWindow: f.uint(3, 0),
		Handle:         fieldTo(f, 4, "uint", &a.v[1]),
		DeliveryCount:  fieldTo(f, 5, "uint", &a.v[2]),
		LinkCredit:     fieldTo(f, 6, "uint", &a.v[3]),
		Available:      fieldTo(f, 7, "uint", &a.v[4]),
		Drain:          f.boolean(8),
		Echo:           f.boolean(9),
		Properties:     f.mapField(10),
	}
	return &a.Flow
}

// Transfer (0x14) carries (part of) a message; the message bytes follow
// the performative in the frame (Frame.Payload).
type Transfer struct {
	Handle        uint32
	DeliveryID    *uint32
	DeliveryTag   []byte // nil is absent
	MessageFormat *uint32
	Settled       *bool
	More          bool
	RcvSettleMode *uint8
	State         DeliveryState
	Resume        bool
	Aborted       bool
	Batchable     bool
}

// MarshalAMQP implements Marshaler.
func (o *Transfer) MarshalAMQP(b *Buffer) error {
	l := b.beginComposite(DescTransfer)
	l.uint(o.Handle, true)
	l.uintp(o.DeliveryID)
	l.bin(o.DeliveryTag)
	l.uintp(o.MessageFormat)
	l.boolp(o.Settled)
	l.boolean(o.More, o.More)
	l.ubytep(o.RcvSettleMode)
	l.value(o.State)
	l.boolean(o.Resume, o.Resume)
	l.boolean(o.Aborted, o.Aborted)
	l.boolean(o.Batchable, o.Batchable)
	return l.finish()
}

func decodeTransfer(f *fields) any {
	f.mandatory(0)
	a := new(struct {
		Transfer
		id, format    uint32
		settled       bool
		rcvSettleMode uint8
	})
	a.Transfer = Transfer{
		Handle:        f.uint(0, 0),
		DeliveryID:    fieldTo(f, 1, "uint", &a.id),
		DeliveryTag:   f.bin(2),
		MessageFormat: fieldTo(f, 3, "uint", &a.format),
		Settled:       fieldTo(f, 4, "boolean", &a.settled),
		More:          f.boolean(5),
		RcvSettleMode: fieldTo(f, 6, "ubyte", &a.rcvSettleMode),
		State:         f.state(7),
		Resume:        f.boolean(8),
		Aborted:       f.boolean(9),
		Batchable:     f.boolean(10),
	}
	return &a.Transfer
}

// Disposition (0x15) settles or updates the state of deliveries First to
// Last (Last nil means First only).
type Disposition struct {
	Role      bool
	First     uint32
	Last      *uint32
	Settled   bool
	State     DeliveryState
	Batchable bool
}

// MarshalAMQP implements Marshaler.
func (o *Disposition) MarshalAMQP(b *Buffer) error {
	l := b.beginComposite(DescDisposition)
	l.boolean(o.Role, true)
	l.uint(o.First, true)
	l.uintp(o.Last)
	l.boolean(o.Settled, o.Settled)
	l.value(o.State)
	l.boolean(o.Batchable, o.Batchable)
	return l.finish()
}

func decodeDisposition(f *fields) any {
	f.mandatory(0)
	f.mandatory(1)
	a := new(struct {
		Disposition
		last uint32
	})
	a.Disposition = Disposition{
		Role:      f.boolean(0),
		First:     f.uint(1, 0),
		Last:      fieldTo(f, 2, "uint", &a.last),
		Settled:   f.boolean(3),
		State:     f.state(4),
		Batchable: f.boolean(5),
	}
	return &a.Disposition
}

// Detach (0x16) detaches a link; Closed also closes it.
type Detach struct {
	Handle uint32
	Closed bool
	Error  *Error
}

// MarshalAMQP implements Marshaler.
func (o *Detach) MarshalAMQP(b *Buffer) error {
	l := b.beginComposite(DescDetach)
	l.uint(o.Handle, true)
	l.boolean(o.Closed, o.Closed)
	optional(&l, o.Error)
	return l.finish()
}

func decodeDetach(f *fields) any {
	f.mandatory(0)
	return &Detach{Handle: f.uint(0, 0), Closed: f.boolean(1), Error: f.errorField(2)}
}

// End (0x17) ends a session.
type End struct {
	Error *Error
}

// MarshalAMQP implements Marshaler.
func (o *End) MarshalAMQP(b *Buffer) error {
	return marshalErrorOnly(b, DescEnd, o.Error)
}

func decodeEnd(f *fields) any {
	return &End{Error: f.errorField(0)}
}

// Close (0x18) closes the connection.
type Close struct {
	Error *Error
}

// MarshalAMQP implements Marshaler.
func (o *Close) MarshalAMQP(b *Buffer) error {
	return marshalErrorOnly(b, DescClose, o.Error)
}

func decodeClose(f *fields) any {
	return &Close{Error: f.errorField(0)}
}

func marshalErrorOnly(b *Buffer, code uint64, e *Error) error {
	l := b.beginComposite(code)
	optional(&l, e)
	return l.finish()
}

// Error (0x1d) is an AMQP error: a condition (see the Err* constants), a
// human-readable description and extra information. It implements the Go
// error interface so the engine can return it.
type Error struct {
	Condition   Symbol
	Description string
	Info        Map
}

func (e *Error) Error() string {
	if e.Description == "" {
		return string(e.Condition)
	}
	return string(e.Condition) + ": " + e.Description
}

// MarshalAMQP implements Marshaler.
func (e *Error) MarshalAMQP(b *Buffer) error {
	l := b.beginComposite(DescError)
	l.sym(e.Condition, true)
	l.str(e.Description, e.Description != "")
	l.mapField(e.Info)
	return l.finish()
}

func decodeError(f *fields) any {
	f.mandatory(0)
	return &Error{Condition: f.sym(0), Description: f.str(1), Info: f.mapField(2)}
}
