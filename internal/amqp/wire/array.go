package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// arrayOf recognises the Go slice types that encode as AMQP arrays and
// returns the element constructor, the element count and an accessor.
// Fixed-width integer arrays use the small encodings when every element
// fits, and variable-width ones the 8-bit size when every element does.
func arrayOf(v any) (code byte, n int, elem func(int) any, ok bool) {
	switch s := v.(type) {
	case []bool:
		return TypeBoolean, len(s), func(i int) any { return s[i] }, true
	case []uint16:
		return TypeUshort, len(s), func(i int) any { return s[i] }, true
	case []uint32:
		code = TypeSmallUint
		for _, x := range s {
			if x > 255 {
				code = TypeUint
				break
			}
		}
		return code, len(s), func(i int) any { return s[i] }, true
	case []uint64:
		code = TypeSmallUlong
		for _, x := range s {
			if x > 255 {
				code = TypeUlong
				break
			}
		}
		return code, len(s), func(i int) any { return s[i] }, true
	case []int8:
		return TypeByte, len(s), func(i int) any { return s[i] }, true
	case []int16:
		return TypeShort, len(s), func(i int) any { return s[i] }, true
	case []int32:
		code = TypeSmallInt
		for _, x := range s {
			if x < math.MinInt8 || x > math.MaxInt8 {
				code = TypeInt
				break
			}
		}
		return code, len(s), func(i int) any { return s[i] }, true
	case []int64:
		code = TypeSmallLong
		for _, x := range s {
			if x < math.MinInt8 || x > math.MaxInt8 {
				code = TypeLong
				break
			}
		}
		return code, len(s), func(i int) any { return s[i] }, true
	case []float32:
		return TypeFloat, len(s), func(i int) any { return s[i] }, true
	case []float64:
		return TypeDouble, len(s), func(i int) any { return s[i] }, true
	case []Char:
		return TypeChar, len(s), func(i int) any { return s[i] }, true
	case []time.Time:
		return TypeTimestamp, len(s), func(i int) any { return s[i] }, true
	case []UUID:
		return TypeUUID, len(s), func(i int) any { return s[i] }, true
	case [][]byte:
		code = TypeVbin8
		for _, x := range s {
			if len(x) > 255 {
				code = TypeVbin32
				break
			}
		}
		return code, len(s), func(i int) any { return s[i] }, true
	case []string:
		code = TypeStr8
		for _, x := range s {
			if len(x) > 255 {
				code = TypeStr32
				break
			}
		}
		return code, len(s), func(i int) any { return s[i] }, true
	case []Symbol:
		code = TypeSym8
		for _, x := range s {
			if len(x) > 255 {
				code = TypeSym32
				break
			}
		}
		return code, len(s), func(i int) any { return s[i] }, true
	case [][]any:
		return TypeList32, len(s), func(i int) any { return s[i] }, true
	case []Map:
		return TypeMap32, len(s), func(i int) any { return s[i] }, true
	case Array:
		return widen(s.Code), len(s.Values), func(i int) any { return s.Values[i] }, true
	case *Array:
		if s == nil {
			return 0, 0, nil, false
		}
		return widen(s.Code), len(s.Values), func(i int) any { return s.Values[i] }, true
	}
	return 0, 0, nil, false
}

// widen turns the 8-bit compound element codes into their 32-bit forms.
// An Array's elements are re-encoded by this package, which may choose
// different (if equal-valued) inner encodings than the peer did, so the
// element size is not known to fit in 8 bits any more.
func widen(code byte) byte {
	switch code {
	case TypeList8:
		return TypeList32
	case TypeMap8:
		return TypeMap32
	case TypeArray8:
		return TypeArray32
	}
	return code
}

// writeArray writes a whole array (constructor included), in the 8-bit
// form when it fits.
func (b *Buffer) writeArray(descriptor any, code byte, n int, elem func(int) any, depth int) error {
	start := len(b.buf)
	b.byte1(TypeArray32)
	if err := b.arrayBody(4, descriptor, code, n, elem, depth); err != nil {
		return err
	}
	size := binary.BigEndian.Uint32(b.buf[start+1:])
	if size-3 <= 255 && n <= 255 {
		// size counts the 4-byte count; the 8-bit form's counts 1 byte.
		small := size - 3
		b.buf[start] = TypeArray8
		b.buf[start+1] = byte(small)
		b.buf[start+2] = byte(n)
		copy(b.buf[start+3:], b.buf[start+9:])
		b.buf = b.buf[:len(b.buf)-6]
	}
	return nil
}

// arrayDescriptorOf returns the element descriptor of an Array (nil for
// typed slices).
func arrayDescriptorOf(v any) any {
	switch a := v.(type) {
	case Array:
		return a.Descriptor
	case *Array:
		if a != nil {
			return a.Descriptor
		}
	}
	return nil
}

// arrayBody writes size, count, element constructor and elements, with
// size and count of the given width (1 or 4 bytes).
func (b *Buffer) arrayBody(width int, descriptor any, code byte, n int, elem func(int) any, depth int) error {
	if depth > maxEncodeDepth {
		return &EncodeError{What: "value nested too deeply"}
	}
	start := len(b.buf)
	b.buf = append(b.buf, make([]byte, 2*width)...)
	if descriptor != nil {
		b.byte1(TypeDescribed)
		if err := b.encode(descriptor, depth+1); err != nil {
			return err
		}
	}
	if !validElementCode(code) {
		return &EncodeError{What: fmt.Sprintf("invalid array element code 0x%02x", code)}
	}
	b.byte1(code)
	for i := 0; i < n; i++ {
		if err := b.writeBody(code, elem(i), depth+1); err != nil {
			return err
		}
	}
	return b.patchSize(start, width, n)
}

// patchSize fills in the size and count fields reserved at start: size
// counts every byte after the size field itself.
func (b *Buffer) patchSize(start, width, count int) error {
	size := len(b.buf) - start - width
	if width == 1 {
		if size > 255 || count > 255 {
			return &EncodeError{What: "compound too large for its 8-bit encoding"}
		}
		b.buf[start] = byte(size)
		b.buf[start+1] = byte(count)
		return nil
	}
	if uint64(size) > math.MaxUint32 || uint64(count) > math.MaxUint32 {
		return &EncodeError{What: "compound value larger than 4 GiB"}
	}
	binary.BigEndian.PutUint32(b.buf[start:], uint32(size))
	binary.BigEndian.PutUint32(b.buf[start+4:], uint32(count))
	return nil
}

func validElementCode(c byte) bool {
	switch c {
	case TypeNull, TypeTrue, TypeFalse, TypeBoolean, TypeUbyte, TypeUshort,
		TypeUint, TypeSmallUint, TypeUint0, TypeUlong, TypeSmallUlong, TypeUlong0,
		TypeByte, TypeShort, TypeInt, TypeSmallInt, TypeLong, TypeSmallLong,
		TypeFloat, TypeDouble, TypeDecimal32, TypeDecimal64, TypeDecimal128,
		TypeChar, TypeTimestamp, TypeUUID, TypeVbin8, TypeVbin32, TypeStr8,
		TypeStr32, TypeSym8, TypeSym32, TypeList0, TypeList8, TypeList32,
		TypeMap8, TypeMap32, TypeArray8, TypeArray32:
		return true
	}
	return false
}

func typeErr(code byte, v any) error {
	return &EncodeError{What: fmt.Sprintf("array element %T does not fit code 0x%02x", v, code)}
}

// writeBody writes v without its constructor, in the encoding of code
// (the element encoding of an array).
func (b *Buffer) writeBody(code byte, v any, depth int) error {
	switch code {
	case TypeNull:
		if v != nil {
			return typeErr(code, v)
		}
	case TypeTrue, TypeFalse:
		x, ok := v.(bool)
		if !ok || x != (code == TypeTrue) {
			return typeErr(code, v)
		}
	case TypeBoolean:
		x, ok := v.(bool)
		if !ok {
			return typeErr(code, v)
		}
		if x {
			b.byte1(1)
		} else {
			b.byte1(0)
		}
	case TypeUbyte:
		x, ok := v.(uint8)
		if !ok {
			return typeErr(code, v)
		}
		b.byte1(x)
	case TypeUshort:
		x, ok := v.(uint16)
		if !ok {
			return typeErr(code, v)
		}
		b.u16(x)
	case TypeUint, TypeSmallUint, TypeUint0:
		x, ok := v.(uint32)
		if !ok || (code == TypeSmallUint && x > 255) || (code == TypeUint0 && x != 0) {
			return typeErr(code, v)
		}
		if code == TypeUint {
			b.u32(x)
		} else if code == TypeSmallUint {
			b.byte1(byte(x))
		}
	case TypeUlong, TypeSmallUlong, TypeUlong0:
		x, ok := v.(uint64)
		if !ok || (code == TypeSmallUlong && x > 255) || (code == TypeUlong0 && x != 0) {
			return typeErr(code, v)
		}
		if code == TypeUlong {
			b.u64(x)
		} else if code == TypeSmallUlong {
			b.byte1(byte(x))
		}
	case TypeByte:
		x, ok := v.(int8)
		if !ok {
			return typeErr(code, v)
		}
		b.byte1(byte(x))
	case TypeShort:
		x, ok := v.(int16)
		if !ok {
			return typeErr(code, v)
		}
		b.u16(uint16(x))
	case TypeInt, TypeSmallInt:
		x, ok := v.(int32)
		if !ok || (code == TypeSmallInt && (x < math.MinInt8 || x > math.MaxInt8)) {
			return typeErr(code, v)
		}
		if code == TypeInt {
			b.u32(uint32(x))
		} else {
			b.byte1(byte(int8(x)))
		}
	case TypeLong, TypeSmallLong:
		x, ok := v.(int64)
		if !ok || (code == TypeSmallLong && (x < math.MinInt8 || x > math.MaxInt8)) {
			return typeErr(code, v)
		}
		if code == TypeLong {
			b.u64(uint64(x))
		} else {
			b.byte1(byte(int8(x)))
		}
	case TypeFloat:
		x, ok := v.(float32)
		if !ok {
			return typeErr(code, v)
		}
		b.u32(math.Float32bits(x))
	case TypeDouble:
		x, ok := v.(float64)
		if !ok {
			return typeErr(code, v)
		}
		b.u64(math.Float64bits(x))
	case TypeDecimal32:
		x, ok := v.(Decimal32)
		if !ok {
			return typeErr(code, v)
		}
		b.buf = append(b.buf, x[:]...)
	case TypeDecimal64:
		x, ok := v.(Decimal64)
		if !ok {
			return typeErr(code, v)
		}
		b.buf = append(b.buf, x[:]...)
	case TypeDecimal128:
		x, ok := v.(Decimal128)
		if !ok {
			return typeErr(code, v)
		}
		b.buf = append(b.buf, x[:]...)
	case TypeChar:
		x, ok := v.(Char)
		if !ok {
			return typeErr(code, v)
		}
		b.u32(uint32(x))
	case TypeTimestamp:
		x, ok := v.(time.Time)
		if !ok {
			return typeErr(code, v)
		}
		b.u64(uint64(x.UnixMilli()))
	case TypeUUID:
		x, ok := v.(UUID)
		if !ok {
			return typeErr(code, v)
		}
		b.buf = append(b.buf, x[:]...)
	case TypeVbin8, TypeVbin32, TypeStr8, TypeStr32, TypeSym8, TypeSym32:
		var s string
		var p []byte
		var ok bool
		switch code {
		case TypeVbin8, TypeVbin32:
			p, ok = v.([]byte)
		case TypeStr8, TypeStr32:
			s, ok = v.(string)
		default:
			var y Symbol
			y, ok = v.(Symbol)
			s = string(y)
		}
		n := len(s) + len(p)
		if !ok || (code&0xf0 == 0xa0 && n > 255) || uint64(n) > math.MaxUint32 {
			return typeErr(code, v)
		}
		if code&0xf0 == 0xa0 {
			b.byte1(byte(n))
		} else {
			b.u32(uint32(n))
		}
		b.buf = append(b.buf, s...)
		b.buf = append(b.buf, p...)
	case TypeList0:
		x, ok := v.([]any)
		if !ok || len(x) != 0 {
			return typeErr(code, v)
		}
	case TypeList8, TypeList32, TypeMap8, TypeMap32:
		width := 4
		if code == TypeList8 || code == TypeMap8 {
			width = 1
		}
		start := len(b.buf)
		b.buf = append(b.buf, make([]byte, 2*width)...)
		count := 0
		switch x := v.(type) {
		case []any:
			if code == TypeMap8 || code == TypeMap32 {
				return typeErr(code, v)
			}
			for _, e := range x {
				if err := b.encode(e, depth+1); err != nil {
					return err
				}
			}
			count = len(x)
		case Map:
			if code == TypeList8 || code == TypeList32 {
				return typeErr(code, v)
			}
			for _, e := range x {
				if err := b.encode(e.Key, depth+1); err != nil {
					return err
				}
				if err := b.encode(e.Value, depth+1); err != nil {
					return err
				}
			}
			count = 2 * len(x)
		default:
			return typeErr(code, v)
		}
		return b.patchSize(start, width, count)
	case TypeArray8, TypeArray32:
		width := 4
		if code == TypeArray8 {
			width = 1
		}
		desc := arrayDescriptorOf(v)
		ecode, n, elem, ok := arrayOf(v)
		if !ok {
			return typeErr(code, v)
		}
		return b.arrayBody(width, desc, ecode, n, elem, depth+1)
	default:
		return &EncodeError{What: fmt.Sprintf("invalid array element code 0x%02x", code)}
	}
	return nil
}
