package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"time"
)

// Buffer is an append-only encoding buffer. The zero value is ready to
// use; Reset keeps the allocation so one Buffer can serve a connection.
type Buffer struct {
	buf []byte
}

// NewBuffer returns a Buffer that appends to b (which may be nil).
func NewBuffer(b []byte) *Buffer { return &Buffer{buf: b} }

// Bytes returns the encoded bytes; they alias the Buffer until Reset.
func (b *Buffer) Bytes() []byte { return b.buf }

// Len returns the number of bytes encoded so far.
func (b *Buffer) Len() int { return len(b.buf) }

// Reset empties the buffer, keeping its capacity.
func (b *Buffer) Reset() { b.buf = b.buf[:0] }

// Truncate cuts the buffer to its first n bytes (n at most Len).
func (b *Buffer) Truncate(n int) { b.buf = b.buf[:n] }

// SetBytes makes p the buffer's contents, to be appended to: a connection
// hands its encoded bytes to a writer and goes on in another array.
func (b *Buffer) SetBytes(p []byte) { b.buf = p }

// Write appends raw bytes (already encoded AMQP, such as a kept message
// section). It never fails; the error is there to satisfy io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *Buffer) byte1(c byte) { b.buf = append(b.buf, c) }
func (b *Buffer) u16(v uint16) { b.buf = binary.BigEndian.AppendUint16(b.buf, v) }
func (b *Buffer) u32(v uint32) { b.buf = binary.BigEndian.AppendUint32(b.buf, v) }
func (b *Buffer) u64(v uint64) { b.buf = binary.BigEndian.AppendUint64(b.buf, v) }

func (b *Buffer) writeNull() { b.byte1(TypeNull) }

func (b *Buffer) writeBool(v bool) {
	if v {
		b.byte1(TypeTrue)
	} else {
		b.byte1(TypeFalse)
	}
}

func (b *Buffer) writeUint(v uint32) {
	switch {
	case v == 0:
		b.byte1(TypeUint0)
	case v < 256:
		b.buf = append(b.buf, TypeSmallUint, byte(v))
	default:
		b.byte1(TypeUint)
		b.u32(v)
	}
}

func (b *Buffer) writeUlong(v uint64) {
	switch {
	case v == 0:
		b.byte1(TypeUlong0)
	case v < 256:
		b.buf = append(b.buf, TypeSmallUlong, byte(v))
	default:
		b.byte1(TypeUlong)
		b.u64(v)
	}
}

func (b *Buffer) writeInt(v int32) {
	if v >= math.MinInt8 && v <= math.MaxInt8 {
		b.buf = append(b.buf, TypeSmallInt, byte(int8(v)))
		return
	}
	b.byte1(TypeInt)
	b.u32(uint32(v))
}

func (b *Buffer) writeLong(v int64) {
	if v >= math.MinInt8 && v <= math.MaxInt8 {
		b.buf = append(b.buf, TypeSmallLong, byte(int8(v)))
		return
	}
	b.byte1(TypeLong)
	b.u64(uint64(v))
}

func (b *Buffer) writeTimestamp(t time.Time) {
	b.byte1(TypeTimestamp)
	b.u64(uint64(t.UnixMilli()))
}

// writeVar writes a variable-width value (binary, string, symbol) with the
// one-byte size code when it fits.
func (b *Buffer) writeVar(code8, code32 byte, s string, p []byte) error {
	n := len(s) + len(p)
	if uint64(n) > math.MaxUint32 {
		return &EncodeError{What: "variable-width value longer than 4 GiB"}
	}
	if n < 256 {
		b.buf = append(b.buf, code8, byte(n))
	} else {
		b.byte1(code32)
		b.u32(uint32(n))
	}
	b.buf = append(b.buf, s...)
	b.buf = append(b.buf, p...)
	return nil
}

func (b *Buffer) writeString(s string) { _ = b.writeVar(TypeStr8, TypeStr32, s, nil) }
func (b *Buffer) writeSymbol(s Symbol) { _ = b.writeVar(TypeSym8, TypeSym32, string(s), nil) }
func (b *Buffer) writeBinary(p []byte) { _ = b.writeVar(TypeVbin8, TypeVbin32, "", p) }

// writeDescriptor writes the described-type constructor with a numeric
// descriptor.
func (b *Buffer) writeDescriptor(code uint64) {
	b.byte1(TypeDescribed)
	b.writeUlong(code)
}

// compound starts a list or map whose size and count are filled in by end.
// It reserves the 32-bit form and, in end, moves the body back when the
// 8-bit form fits, so callers need not know the size in advance.
type compound struct {
	b     *Buffer
	start int // offset of the constructor
}

func (b *Buffer) beginCompound() compound {
	c := compound{b: b, start: len(b.buf)}
	b.buf = append(b.buf, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	return c
}

// end finishes the compound holding count elements; the body ends at
// len(b.buf). isMap selects map8/map32 instead of list0/list8/list32.
func (c compound) end(count int, isMap bool) error {
	buf := c.b.buf
	body := len(buf) - c.start - 9
	if !isMap && count == 0 {
		c.b.buf = append(buf[:c.start], TypeList0)
		return nil
	}
	if body+1 <= 255 && count <= 255 {
		code := TypeList8
		if isMap {
			code = TypeMap8
		}
		buf[c.start] = code
		buf[c.start+1] = byte(body + 1)
		buf[c.start+2] = byte(count)
		copy(buf[c.start+3:], buf[c.start+9:])
		c.b.buf = buf[:len(buf)-6]
		return nil
	}
	if uint64(body)+4 > math.MaxUint32 || uint64(count) > math.MaxUint32 {
		return &EncodeError{What: "compound value larger than 4 GiB"}
	}
	code := TypeList32
	if isMap {
		code = TypeMap32
	}
	buf[c.start] = code
	binary.BigEndian.PutUint32(buf[c.start+1:], uint32(body+4))
	binary.BigEndian.PutUint32(buf[c.start+5:], uint32(count))
	return nil
}

// Encode appends the AMQP encoding of v to b, choosing the smallest
// encoding of each value. See the package documentation of the Go types
// for the mapping; Go int and uint are encoded as long and ulong for
// convenience.
func Encode(b *Buffer, v any) error {
	return b.encode(v, 0)
}

// maxEncodeDepth bounds recursion when encoding (a []any can contain
// itself). It is well above MaxDepth so that whatever decodes re-encodes,
// whichever way each side counts arrays and descriptors.
const maxEncodeDepth = 4 * MaxDepth

func (b *Buffer) encode(v any, depth int) error {
	if depth > maxEncodeDepth {
		return &EncodeError{What: "value nested too deeply"}
	}
	switch v := v.(type) {
	case nil:
		b.writeNull()
	case bool:
		b.writeBool(v)
	case uint8:
		b.buf = append(b.buf, TypeUbyte, v)
	case uint16:
		b.byte1(TypeUshort)
		b.u16(v)
	case uint32:
		b.writeUint(v)
	case uint64:
		b.writeUlong(v)
	case uint:
		b.writeUlong(uint64(v))
	case int8:
		b.buf = append(b.buf, TypeByte, byte(v))
	case int16:
		b.byte1(TypeShort)
		b.u16(uint16(v))
	case int32:
		b.writeInt(v)
	case int64:
		b.writeLong(v)
	case int:
		b.writeLong(int64(v))
	case float32:
		b.byte1(TypeFloat)
		b.u32(math.Float32bits(v))
	case float64:
		b.byte1(TypeDouble)
		b.u64(math.Float64bits(v))
	case Char:
		b.byte1(TypeChar)
		b.u32(uint32(v))
	case time.Time:
		b.writeTimestamp(v)
	case UUID:
		b.byte1(TypeUUID)
		b.buf = append(b.buf, v[:]...)
	case Decimal32:
		b.byte1(TypeDecimal32)
		b.buf = append(b.buf, v[:]...)
	case Decimal64:
		b.byte1(TypeDecimal64)
		b.buf = append(b.buf, v[:]...)
	case Decimal128:
		b.byte1(TypeDecimal128)
		b.buf = append(b.buf, v[:]...)
	case []byte:
		return b.writeVar(TypeVbin8, TypeVbin32, "", v)
	case string:
		return b.writeVar(TypeStr8, TypeStr32, v, nil)
	case Symbol:
		return b.writeVar(TypeSym8, TypeSym32, string(v), nil)
	case []any:
		return b.writeList(v, depth)
	case Map:
		return b.writeMap(v, depth)
	case Described:
		return b.writeDescribed(v, depth)
	case *Described:
		if v == nil {
			b.writeNull()
			return nil
		}
		return b.writeDescribed(*v, depth)
	case Marshaler:
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
			// A typed nil (*Error)(nil) is absent, not a panic.
			b.writeNull()
			return nil
		}
		return v.MarshalAMQP(b)
	default:
		code, n, elem, ok := arrayOf(v)
		if !ok {
			return &EncodeError{What: fmt.Sprintf("unsupported Go type %T", v)}
		}
		return b.writeArray(arrayDescriptorOf(v), code, n, elem, depth)
	}
	return nil
}

func (b *Buffer) writeList(l []any, depth int) error {
	if len(l) == 0 {
		b.byte1(TypeList0)
		return nil
	}
	c := b.beginCompound()
	for _, e := range l {
		if err := b.encode(e, depth+1); err != nil {
			return err
		}
	}
	return c.end(len(l), false)
}

func (b *Buffer) writeMap(m Map, depth int) error {
	c := b.beginCompound()
	for _, e := range m {
		if err := b.encode(e.Key, depth+1); err != nil {
			return err
		}
		if err := b.encode(e.Value, depth+1); err != nil {
			return err
		}
	}
	return c.end(2*len(m), true)
}

func (b *Buffer) writeDescribed(d Described, depth int) error {
	b.byte1(TypeDescribed)
	if err := b.encode(d.Descriptor, depth+1); err != nil {
		return err
	}
	return b.encode(d.Value, depth+1)
}
