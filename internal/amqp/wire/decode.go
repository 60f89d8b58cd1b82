package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// MaxZeroWidthElements bounds the elements of zero-width arrays (arrays of
// null, true, false, uint0, ulong0 or list0, whose elements occupy no
// bytes, so their declared count cannot be checked against the bytes
// present) that one decoding call accepts in total. It is a constant, not
// a multiple of the input size, so that a value's re-encoding (which may
// be shorter than what the peer sent) always decodes again.
const MaxZeroWidthElements = 1 << 16

// decoder reads AMQP values from data. Offsets in errors are relative to
// data. budget is shared by every sub-decoder of one call and counts down
// from MaxZeroWidthElements.
type decoder struct {
	data   []byte
	off    int
	depth  int
	budget *int
}

// Decode decodes one AMQP value from the start of data and returns it with
// the number of bytes it occupied. Described values with a descriptor this
// package knows decode to their struct (*Open, *Attach, *Source,
// *Accepted, *Header, *Properties, ...); others decode to Described.
func Decode(data []byte) (v any, n int, err error) {
	budget := MaxZeroWidthElements
	d := decoder{data: data, budget: &budget}
	v, err = d.value()
	if err != nil {
		return nil, d.off, err
	}
	return v, d.off, nil
}

func (d *decoder) errorf(off int, format string, args ...any) error {
	return &DecodeError{What: fmt.Sprintf(format, args...), Offset: off}
}

// need checks that n more bytes are present.
func (d *decoder) need(n int) error {
	if n < 0 || len(d.data)-d.off < n {
		return d.errorf(d.off, "need %d bytes, have %d", n, len(d.data)-d.off)
	}
	return nil
}

func (d *decoder) next(n int) ([]byte, error) {
	if err := d.need(n); err != nil {
		return nil, err
	}
	p := d.data[d.off : d.off+n]
	d.off += n
	return p, nil
}

// value decodes one value, constructor included.
func (d *decoder) value() (any, error) {
	start := d.off
	c, err := d.next(1)
	if err != nil {
		return nil, err
	}
	if c[0] == TypeDescribed {
		return d.described(start)
	}
	return d.body(c[0])
}

func (d *decoder) enter() error {
	if d.depth >= MaxDepth {
		return d.errorf(d.off, "values nested deeper than %d", MaxDepth)
	}
	d.depth++
	return nil
}

func (d *decoder) described(start int) (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer func() { d.depth-- }()
	desc, err := d.value()
	if err != nil {
		return nil, err
	}
	valStart := d.off
	if code, ok := descriptorCode(desc); ok && isComposite(code) && d.off < len(d.data) {
		switch c := d.data[d.off]; c {
		case TypeList0, TypeList8, TypeList32:
			d.off++
			list, err := d.list(c)
			if err != nil {
				return nil, err
			}
			f := fields{v: list, off: start}
			out := convertComposite(code, &f)
			if f.err != nil {
				return nil, f.err
			}
			return out, nil
		}
		val, err := d.value()
		if err != nil {
			return nil, err
		}
		return nil, d.errorf(valStart, "descriptor 0x%02x needs a list, got %s", code, typeName(val))
	}
	val, err := d.value()
	if err != nil {
		return nil, err
	}
	return Described{Descriptor: desc, Value: val}, nil
}

// body decodes the bytes that follow constructor code.
func (d *decoder) body(code byte) (any, error) {
	start := d.off - 1
	switch code {
	case TypeNull:
		return nil, nil
	case TypeTrue:
		return true, nil
	case TypeFalse:
		return false, nil
	case TypeUint0:
		return uint32(0), nil
	case TypeUlong0:
		return uint64(0), nil
	}
	switch code {
	case TypeBoolean, TypeUbyte, TypeSmallUint, TypeSmallUlong, TypeByte, TypeSmallInt, TypeSmallLong:
		p, err := d.next(1)
		if err != nil {
			return nil, err
		}
		switch code {
		case TypeBoolean:
			if p[0] > 1 {
				return nil, d.errorf(start, "boolean byte 0x%02x", p[0])
			}
			return p[0] == 1, nil
		case TypeUbyte:
			return p[0], nil
		case TypeSmallUint:
			return uint32(p[0]), nil
		case TypeSmallUlong:
			return uint64(p[0]), nil
		case TypeByte:
			return int8(p[0]), nil
		case TypeSmallInt:
			return int32(int8(p[0])), nil
		default:
			return int64(int8(p[0])), nil
		}
	case TypeUshort, TypeShort:
		p, err := d.next(2)
		if err != nil {
			return nil, err
		}
		v := binary.BigEndian.Uint16(p)
		if code == TypeShort {
			return int16(v), nil
		}
		return v, nil
	case TypeUint, TypeInt, TypeFloat, TypeChar, TypeDecimal32:
		p, err := d.next(4)
		if err != nil {
			return nil, err
		}
		v := binary.BigEndian.Uint32(p)
		switch code {
		case TypeUint:
			return v, nil
		case TypeInt:
			return int32(v), nil
		case TypeFloat:
			return math.Float32frombits(v), nil
		case TypeChar:
			return Char(v), nil
		default:
			return Decimal32(p), nil
		}
	case TypeUlong, TypeLong, TypeDouble, TypeTimestamp, TypeDecimal64:
		p, err := d.next(8)
		if err != nil {
			return nil, err
		}
		v := binary.BigEndian.Uint64(p)
		switch code {
		case TypeUlong:
			return v, nil
		case TypeLong:
			return int64(v), nil
		case TypeDouble:
			return math.Float64frombits(v), nil
		case TypeTimestamp:
			return time.UnixMilli(int64(v)).UTC(), nil
		default:
			return Decimal64(p), nil
		}
	case TypeUUID, TypeDecimal128:
		p, err := d.next(16)
		if err != nil {
			return nil, err
		}
		if code == TypeUUID {
			return UUID(p), nil
		}
		return Decimal128(p), nil
	case TypeVbin8, TypeStr8, TypeSym8, TypeVbin32, TypeStr32, TypeSym32:
		n, err := d.size(code&0xf0 == 0xa0)
		if err != nil {
			return nil, err
		}
		p, err := d.next(n)
		if err != nil {
			return nil, err
		}
		switch code {
		case TypeVbin8, TypeVbin32:
			// Copy: the caller's buffer (a frame) is reused.
			return append([]byte{}, p...), nil
		case TypeStr8, TypeStr32:
			return string(p), nil
		default:
			return Symbol(p), nil
		}
	case TypeList0, TypeList8, TypeList32:
		return d.list(code)
	case TypeMap8, TypeMap32:
		return d.compound(code)
	case TypeArray8, TypeArray32:
		return d.array(code == TypeArray8)
	}
	return nil, d.errorf(start, "invalid format code 0x%02x", code)
}

// size reads a 1- or 4-byte size or count.
func (d *decoder) size(small bool) (int, error) {
	if small {
		p, err := d.next(1)
		if err != nil {
			return 0, err
		}
		return int(p[0]), nil
	}
	p, err := d.next(4)
	if err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint32(p)
	if uint64(v) > uint64(len(d.data)) {
		// Larger than everything we were given: cannot be valid, and
		// rejecting it here keeps int conversions safe on 32-bit.
		return 0, d.errorf(d.off-4, "size or count %d beyond the %d bytes present", v, len(d.data))
	}
	return int(v), nil
}

// count reads a 1- or 4-byte element count. Unlike a size it may exceed
// the bytes present (zero-width array elements); callers check it against
// the body or the zero-width budget before allocating.
func (d *decoder) count(small bool) (int, error) {
	if small {
		return d.size(true)
	}
	p, err := d.next(4)
	if err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint32(p)
	if v > math.MaxInt32 {
		return 0, d.errorf(d.off-4, "count %d too large", v)
	}
	return int(v), nil
}

// sized reads the size and count of a compound or array and returns a
// sub-decoder limited to its body (after the count).
func (d *decoder) sized(small bool) (sub decoder, count int, err error) {
	start := d.off - 1
	size, err := d.size(small)
	if err != nil {
		return decoder{}, 0, err
	}
	if err := d.need(size); err != nil {
		return decoder{}, 0, d.errorf(start, "declared size %d beyond the %d bytes present", size, len(d.data)-d.off)
	}
	end := d.off + size
	width := 4
	if small {
		width = 1
	}
	if size < width {
		return decoder{}, 0, d.errorf(start, "size %d smaller than its count field", size)
	}
	sub = decoder{data: d.data[:end], off: d.off, depth: d.depth, budget: d.budget}
	count, err = sub.count(small)
	if err != nil {
		return decoder{}, 0, err
	}
	d.off = end
	return sub, count, nil
}

// list decodes a list (its constructor code read).
func (d *decoder) list(code byte) ([]any, error) {
	if code == TypeList0 {
		return []any{}, nil
	}
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer func() { d.depth-- }()
	sub, count, err := d.listBody(code)
	if err != nil {
		return nil, err
	}
	l := make([]any, count)
	if err := sub.elements(l); err != nil {
		return nil, err
	}
	return l, nil
}

// listBody reads a list's size and count (code list8 or list32) and
// returns a decoder of its elements.
func (d *decoder) listBody(code byte) (sub decoder, count int, err error) {
	start := d.off - 1
	sub, count, err = d.sized(code == TypeList8)
	if err != nil {
		return decoder{}, 0, err
	}
	// Every element takes at least one byte.
	if count > len(sub.data)-sub.off {
		return decoder{}, 0, d.errorf(start, "count %d beyond the %d bytes of the body", count, len(sub.data)-sub.off)
	}
	return sub, count, nil
}

// elements decodes the len(l) elements of a list into l, which must use
// up the list's body.
func (d *decoder) elements(l []any) error {
	var err error
	for i := range l {
		if l[i], err = d.value(); err != nil {
			return err
		}
	}
	if d.off != len(d.data) {
		return d.errorf(d.off, "%d bytes left over in a compound value", len(d.data)-d.off)
	}
	return nil
}

// compound decodes a map (its constructor code read).
func (d *decoder) compound(code byte) (any, error) {
	start := d.off - 1
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer func() { d.depth-- }()
	sub, count, err := d.sized(code == TypeMap8)
	if err != nil {
		return nil, err
	}
	// Every element takes at least one byte.
	if count > len(sub.data)-sub.off {
		return nil, d.errorf(start, "count %d beyond the %d bytes of the body", count, len(sub.data)-sub.off)
	}
	if count%2 != 0 {
		return nil, d.errorf(start, "map with an odd count %d", count)
	}
	m := make(Map, count/2)
	for i := range m {
		if m[i].Key, err = sub.value(); err != nil {
			return nil, err
		}
		if m[i].Value, err = sub.value(); err != nil {
			return nil, err
		}
	}
	if sub.off != len(sub.data) {
		return nil, d.errorf(sub.off, "%d bytes left over in a compound value", len(sub.data)-sub.off)
	}
	return m, nil
}

// elementWidth is the minimum encoded width of one array element of code
// (its exact width for fixed-width codes).
func elementWidth(code byte) (width int, ok bool) {
	switch code {
	case TypeNull, TypeTrue, TypeFalse, TypeUint0, TypeUlong0, TypeList0:
		return 0, true
	case TypeBoolean, TypeUbyte, TypeSmallUint, TypeSmallUlong, TypeByte, TypeSmallInt, TypeSmallLong:
		return 1, true
	case TypeUshort, TypeShort:
		return 2, true
	case TypeUint, TypeInt, TypeFloat, TypeChar, TypeDecimal32:
		return 4, true
	case TypeUlong, TypeLong, TypeDouble, TypeTimestamp, TypeDecimal64:
		return 8, true
	case TypeUUID, TypeDecimal128:
		return 16, true
	case TypeVbin8, TypeStr8, TypeSym8:
		return 1, true
	case TypeVbin32, TypeStr32, TypeSym32:
		return 4, true
	case TypeList8, TypeMap8:
		return 2, true
	case TypeList32, TypeMap32:
		return 8, true
	case TypeArray8:
		return 3, true
	case TypeArray32:
		return 9, true
	}
	return 0, false
}

func (d *decoder) array(small bool) (any, error) {
	start := d.off - 1
	if err := d.enter(); err != nil {
		return nil, err
	}
	defer func() { d.depth-- }()
	sub, count, err := d.sized(small)
	if err != nil {
		return nil, err
	}
	var desc any
	ctor, err := sub.next(1)
	if err != nil {
		return nil, err
	}
	code := ctor[0]
	if code == TypeDescribed {
		if err := sub.enter(); err != nil {
			return nil, err
		}
		if desc, err = sub.value(); err != nil {
			return nil, err
		}
		if ctor, err = sub.next(1); err != nil {
			return nil, err
		}
		code = ctor[0]
	}
	width, ok := elementWidth(code)
	if !ok {
		return nil, d.errorf(sub.off-1, "invalid array element constructor 0x%02x", code)
	}
	if width == 0 {
		*d.budget -= count
		if *d.budget < 0 {
			return nil, d.errorf(start, "zero-width array of %d elements exceeds the decoding budget", count)
		}
	} else if count > (len(sub.data)-sub.off)/width {
		return nil, d.errorf(start, "array count %d beyond the %d bytes of the body", count, len(sub.data)-sub.off)
	}
	vals := make([]any, count)
	for i := range vals {
		if vals[i], err = sub.body(code); err != nil {
			return nil, err
		}
	}
	if sub.off != len(sub.data) {
		return nil, d.errorf(sub.off, "%d bytes left over in an array", len(sub.data)-sub.off)
	}
	if desc != nil {
		return Array{Descriptor: desc, Code: code, Values: vals}, nil
	}
	return typedArray(code, vals), nil
}

// typedArray turns decoded elements into the Go slice for their type, or
// an Array when there is no natural slice.
func typedArray(code byte, vals []any) any {
	switch code {
	case TypeBoolean, TypeTrue, TypeFalse:
		return convert[bool](vals)
	case TypeUshort:
		return convert[uint16](vals)
	case TypeUint, TypeSmallUint, TypeUint0:
		return convert[uint32](vals)
	case TypeUlong, TypeSmallUlong, TypeUlong0:
		return convert[uint64](vals)
	case TypeByte:
		return convert[int8](vals)
	case TypeShort:
		return convert[int16](vals)
	case TypeInt, TypeSmallInt:
		return convert[int32](vals)
	case TypeLong, TypeSmallLong:
		return convert[int64](vals)
	case TypeFloat:
		return convert[float32](vals)
	case TypeDouble:
		return convert[float64](vals)
	case TypeChar:
		return convert[Char](vals)
	case TypeTimestamp:
		return convert[time.Time](vals)
	case TypeUUID:
		return convert[UUID](vals)
	case TypeVbin8, TypeVbin32:
		return convert[[]byte](vals)
	case TypeStr8, TypeStr32:
		return convert[string](vals)
	case TypeSym8, TypeSym32:
		return convert[Symbol](vals)
	case TypeList0, TypeList8, TypeList32:
		return convert[[]any](vals)
	case TypeMap8, TypeMap32:
		return convert[Map](vals)
	}
	return Array{Code: code, Values: vals}
}

func convert[T any](vals []any) []T {
	out := make([]T, len(vals))
	for i, v := range vals {
		out[i] = v.(T)
	}
	return out
}

// typeName names the AMQP type of a decoded value for error messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "list"
	case Map:
		return "map"
	case Symbol:
		return "symbol"
	case string:
		return "string"
	case []byte:
		return "binary"
	}
	return fmt.Sprintf("%T", v)
}
