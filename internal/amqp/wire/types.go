// Package wire is the AMQP 1.0 wire format: the type system (OASIS AMQP 1.0
// part 1), the performatives and frames of the transport (part 2), the
// message format (part 3) and SASL (part 5.3). It knows nothing about
// connections, sessions or links; internal/amqp builds those on top of it.
//
// Decoding is written for hostile input: every error is a *DecodeError or a
// *FrameError, nothing panics, nesting is bounded and no count or size read
// from the wire is trusted before it is checked against the bytes actually
// present, so memory use stays proportional to the input.
package wire

import (
	"bytes"
	"fmt"
	"reflect"
)

// Symbol is an AMQP symbol: an ASCII string from a constrained domain
// (condition names, capabilities, annotation keys). It is a distinct Go type
// so that a symbol and a string, which are different on the wire, stay
// different after a round trip.
type Symbol string

// Char is an AMQP char: a single UTF-32BE code unit. Any 32-bit value is
// carried unchanged, even one that is not a valid Unicode scalar, so that
// re-encoding is lossless.
type Char rune

// UUID is an AMQP uuid: 16 bytes in network (RFC 4122) order.
type UUID [16]byte

// String formats the UUID in the canonical 8-4-4-4-12 form.
func (u UUID) String() string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Decimal32, Decimal64 and Decimal128 carry the IEEE 754 decimal encodings
// as raw bytes (network order). Nothing in Service Bus computes with them;
// they only need to survive a round trip.
type (
	Decimal32  [4]byte
	Decimal64  [8]byte
	Decimal128 [16]byte
)

// Described is a described value whose descriptor this package does not
// map to a Go struct (filters, lifetime policies, transaction states,
// message sections other than header and properties, ...). Descriptor is
// normally a uint64 or a Symbol.
type Described struct {
	Descriptor any
	Value      any
}

// MapEntry is one key/value pair of a Map.
type MapEntry struct {
	Key, Value any
}

// Map is an AMQP map. It is a slice, not a Go map, because AMQP maps are
// ordered on the wire, their keys may be of any type (including
// uncomparable ones such as binary), and a lossless re-encoding must keep
// both the order and the key types.
//
// A nil Map is "absent"; a non-nil empty Map is an empty map.
type Map []MapEntry

// Get returns the value of the first entry whose key equals key (same AMQP
// type and value: Symbol("a") and "a" are different keys).
func (m Map) Get(key any) (any, bool) {
	for _, e := range m {
		if keyEqual(e.Key, key) {
			return e.Value, true
		}
	}
	return nil, false
}

// Set replaces the value of the first entry with key, or appends one.
func (m *Map) Set(key, value any) {
	for i := range *m {
		if keyEqual((*m)[i].Key, key) {
			(*m)[i].Value = value
			return
		}
	}
	*m = append(*m, MapEntry{Key: key, Value: value})
}

// Delete removes every entry with key.
func (m *Map) Delete(key any) {
	out := (*m)[:0]
	for _, e := range *m {
		if !keyEqual(e.Key, key) {
			out = append(out, e)
		}
	}
	*m = out
}

// keyEqual compares map keys without panicking on uncomparable dynamic
// types (interface == panics on slices).
func keyEqual(a, b any) bool {
	if ab, ok := a.([]byte); ok {
		bb, ok := b.([]byte)
		return ok && bytes.Equal(ab, bb)
	}
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	if ta != tb {
		return false
	}
	if !ta.Comparable() {
		return reflect.DeepEqual(a, b)
	}
	return a == b
}

// Array is the generic form of an AMQP array, used for element types that
// have no natural Go slice (ubyte, decimals, null, arrays of arrays) and
// for arrays of described values. Code is the element constructor (one of
// the Type* codes) and Values holds one Go value per element, of the type
// Decode would give for that code. Descriptor, when not nil, makes every
// element a described value with that descriptor.
//
// Arrays of the common element types decode to typed slices instead:
// []bool, []uint16, []uint32, []uint64, []int8, []int16, []int32, []int64,
// []float32, []float64, []Char, []time.Time, []UUID, [][]byte, []string,
// []Symbol, [][]any (lists) and []Map.
type Array struct {
	Descriptor any
	Code       byte
	Values     []any
}

// Marshaler is implemented by values that encode themselves, such as the
// performatives and *Message.
type Marshaler interface {
	MarshalAMQP(*Buffer) error
}

// Type codes (format codes) of part 1, section 1.6.
const (
	TypeDescribed  byte = 0x00
	TypeNull       byte = 0x40
	TypeTrue       byte = 0x41
	TypeFalse      byte = 0x42
	TypeBoolean    byte = 0x56
	TypeUbyte      byte = 0x50
	TypeUshort     byte = 0x60
	TypeUint       byte = 0x70
	TypeSmallUint  byte = 0x52
	TypeUint0      byte = 0x43
	TypeUlong      byte = 0x80
	TypeSmallUlong byte = 0x53
	TypeUlong0     byte = 0x44
	TypeByte       byte = 0x51
	TypeShort      byte = 0x61
	TypeInt        byte = 0x71
	TypeSmallInt   byte = 0x54
	TypeLong       byte = 0x81
	TypeSmallLong  byte = 0x55
	TypeFloat      byte = 0x72
	TypeDouble     byte = 0x82
	TypeDecimal32  byte = 0x74
	TypeDecimal64  byte = 0x84
	TypeDecimal128 byte = 0x94
	TypeChar       byte = 0x73
	TypeTimestamp  byte = 0x83
	TypeUUID       byte = 0x98
	TypeVbin8      byte = 0xa0
	TypeVbin32     byte = 0xb0
	TypeStr8       byte = 0xa1
	TypeStr32      byte = 0xb1
	TypeSym8       byte = 0xa3
	TypeSym32      byte = 0xb3
	TypeList0      byte = 0x45
	TypeList8      byte = 0xc0
	TypeList32     byte = 0xd0
	TypeMap8       byte = 0xc1
	TypeMap32      byte = 0xd1
	TypeArray8     byte = 0xe0
	TypeArray32    byte = 0xf0
)

// Descriptor codes of the described types this package maps to structs
// (and a few it does not, for reference).
const (
	DescOpen        uint64 = 0x10
	DescBegin       uint64 = 0x11
	DescAttach      uint64 = 0x12
	DescFlow        uint64 = 0x13
	DescTransfer    uint64 = 0x14
	DescDisposition uint64 = 0x15
	DescDetach      uint64 = 0x16
	DescEnd         uint64 = 0x17
	DescClose       uint64 = 0x18
	DescError       uint64 = 0x1d
	DescReceived    uint64 = 0x23
	DescAccepted    uint64 = 0x24
	DescRejected    uint64 = 0x25
	DescReleased    uint64 = 0x26
	DescModified    uint64 = 0x27
	DescSource      uint64 = 0x28
	DescTarget      uint64 = 0x29

	DescDeleteOnClose             uint64 = 0x2b
	DescDeleteOnNoLinks           uint64 = 0x2c
	DescDeleteOnNoMessages        uint64 = 0x2d
	DescDeleteOnNoLinksOrMessages uint64 = 0x2e
	DescCoordinator               uint64 = 0x30
	DescDeclare                   uint64 = 0x31
	DescDischarge                 uint64 = 0x32
	DescDeclared                  uint64 = 0x33
	DescTransactionalState        uint64 = 0x34

	DescSASLMechanisms uint64 = 0x40
	DescSASLInit       uint64 = 0x41
	DescSASLChallenge  uint64 = 0x42
	DescSASLResponse   uint64 = 0x43
	DescSASLOutcome    uint64 = 0x44

	DescHeader                uint64 = 0x70
	DescDeliveryAnnotations   uint64 = 0x71
	DescMessageAnnotations    uint64 = 0x72
	DescProperties            uint64 = 0x73
	DescApplicationProperties uint64 = 0x74
	DescData                  uint64 = 0x75
	DescAMQPSequence          uint64 = 0x76
	DescAMQPValue             uint64 = 0x77
	DescFooter                uint64 = 0x78
)

// symbolicDescriptors maps the symbolic form of the descriptors a peer may
// use instead of the numeric code ("amqp:open:list") to the code.
var symbolicDescriptors = map[Symbol]uint64{
	"amqp:open:list":                  DescOpen,
	"amqp:begin:list":                 DescBegin,
	"amqp:attach:list":                DescAttach,
	"amqp:flow:list":                  DescFlow,
	"amqp:transfer:list":              DescTransfer,
	"amqp:disposition:list":           DescDisposition,
	"amqp:detach:list":                DescDetach,
	"amqp:end:list":                   DescEnd,
	"amqp:close:list":                 DescClose,
	"amqp:error:list":                 DescError,
	"amqp:received:list":              DescReceived,
	"amqp:accepted:list":              DescAccepted,
	"amqp:rejected:list":              DescRejected,
	"amqp:released:list":              DescReleased,
	"amqp:modified:list":              DescModified,
	"amqp:source:list":                DescSource,
	"amqp:target:list":                DescTarget,
	"amqp:sasl-mechanisms:list":       DescSASLMechanisms,
	"amqp:sasl-init:list":             DescSASLInit,
	"amqp:sasl-challenge:list":        DescSASLChallenge,
	"amqp:sasl-response:list":         DescSASLResponse,
	"amqp:sasl-outcome:list":          DescSASLOutcome,
	"amqp:header:list":                DescHeader,
	"amqp:delivery-annotations:map":   DescDeliveryAnnotations,
	"amqp:message-annotations:map":    DescMessageAnnotations,
	"amqp:properties:list":            DescProperties,
	"amqp:application-properties:map": DescApplicationProperties,
	"amqp:data:binary":                DescData,
	"amqp:amqp-sequence:list":         DescAMQPSequence,
	"amqp:amqp-value:*":               DescAMQPValue,
	"amqp:footer:map":                 DescFooter,
}

// descriptorCode returns the numeric code of a descriptor given either as a
// ulong or in symbolic form.
func descriptorCode(d any) (uint64, bool) {
	switch d := d.(type) {
	case uint64:
		return d, true
	case Symbol:
		c, ok := symbolicDescriptors[d]
		return c, ok
	}
	return 0, false
}
