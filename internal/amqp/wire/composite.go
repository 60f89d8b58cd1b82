package wire

import (
	"fmt"
	"time"
)

// listWriter encodes the field list of a composite type (a described
// list). Absent fields are written as null, and the nulls after the last
// present field are cut off at the end, as part 1.4 allows and every
// implementation expects.
type listWriter struct {
	b     *Buffer
	c     compound
	n     int // fields written
	count int // fields up to the last present one
	end   int // buffer length after the last present field
	err   error
}

// beginComposite returns the writer by value, so that it stays on the
// caller's stack: composites are encoded for every frame.
func (b *Buffer) beginComposite(code uint64) listWriter {
	b.writeDescriptor(code)
	c := b.beginCompound()
	return listWriter{b: b, c: c, end: len(b.buf)}
}

func (l *listWriter) skip() {
	l.b.writeNull()
	l.n++
}

func (l *listWriter) kept() {
	l.n++
	l.count = l.n
	l.end = len(l.b.buf)
}

func (l *listWriter) finish() error {
	if l.err != nil {
		return l.err
	}
	l.b.buf = l.b.buf[:l.end]
	return l.c.end(l.count, false)
}

func (l *listWriter) str(s string, present bool) {
	if !present {
		l.skip()
		return
	}
	l.b.writeString(s)
	l.kept()
}

func (l *listWriter) sym(s Symbol, present bool) {
	if !present {
		l.skip()
		return
	}
	l.b.writeSymbol(s)
	l.kept()
}

func (l *listWriter) bin(p []byte) {
	if p == nil {
		l.skip()
		return
	}
	l.b.writeBinary(p)
	l.kept()
}

func (l *listWriter) boolean(v, present bool) {
	if !present {
		l.skip()
		return
	}
	l.b.writeBool(v)
	l.kept()
}

func (l *listWriter) boolp(v *bool) {
	if v == nil {
		l.skip()
		return
	}
	l.boolean(*v, true)
}

func (l *listWriter) ubyte(v uint8, present bool) {
	if !present {
		l.skip()
		return
	}
	l.b.buf = append(l.b.buf, TypeUbyte, v)
	l.kept()
}

func (l *listWriter) ubytep(v *uint8) {
	if v == nil {
		l.skip()
		return
	}
	l.ubyte(*v, true)
}

func (l *listWriter) ushortp(v *uint16) {
	if v == nil {
		l.skip()
		return
	}
	l.b.byte1(TypeUshort)
	l.b.u16(*v)
	l.kept()
}

func (l *listWriter) ushort(v uint16, present bool) {
	if !present {
		l.skip()
		return
	}
	l.ushortp(&v)
}

func (l *listWriter) uint(v uint32, present bool) {
	if !present {
		l.skip()
		return
	}
	l.b.writeUint(v)
	l.kept()
}

func (l *listWriter) uintp(v *uint32) {
	if v == nil {
		l.skip()
		return
	}
	l.uint(*v, true)
}

func (l *listWriter) ulong(v uint64, present bool) {
	if !present {
		l.skip()
		return
	}
	l.b.writeUlong(v)
	l.kept()
}

func (l *listWriter) ulongp(v *uint64) {
	if v == nil {
		l.skip()
		return
	}
	l.ulong(*v, true)
}

func (l *listWriter) timestamp(t time.Time, present bool) {
	if !present {
		l.skip()
		return
	}
	l.b.writeTimestamp(t)
	l.kept()
}

// symbols writes a "multiple" symbol field as an array (nil is absent).
func (l *listWriter) symbols(s []Symbol) {
	if s == nil {
		l.skip()
		return
	}
	l.value(s)
}

func (l *listWriter) mapField(m Map) {
	if m == nil {
		l.skip()
		return
	}
	l.value(m)
}

// value writes any encodable value; nil is absent.
func (l *listWriter) value(v any) {
	if v == nil || l.err != nil {
		l.skip()
		return
	}
	if err := l.b.encode(v, 1); err != nil {
		l.err = err
		return
	}
	l.kept()
}

// optional writes the composite p, or null when p is nil (which value
// cannot tell: a nil pointer in an interface is not a nil interface).
func optional[T any, P interface {
	*T
	Marshaler
}](l *listWriter, p P) {
	if p == nil {
		l.skip()
		return
	}
	l.value(p)
}

// fields reads the field list of a decoded composite. The first type
// error is kept in err, so conversion functions read every field and
// check once.
type fields struct {
	v    []any
	off  int
	code uint64 // the composite's descriptor
	err  error
}

func (f *fields) get(i int) any {
	if i < len(f.v) {
		return f.v[i]
	}
	return nil
}

func (f *fields) fail(i int, want string) {
	if f.err == nil {
		f.err = &DecodeError{What: fmt.Sprintf("%s field %d: want %s, got %s", compositeName(f.code), i, want, typeName(f.get(i))), Offset: f.off}
	}
}

// mandatory records an error when field i is absent.
func (f *fields) mandatory(i int) {
	if f.get(i) == nil && f.err == nil {
		f.err = &DecodeError{What: fmt.Sprintf("%s field %d is mandatory", compositeName(f.code), i), Offset: f.off}
	}
}

func (f *fields) present(i int) bool { return f.get(i) != nil }

func field[T any](f *fields, i int, want string) (T, bool) {
	var zero T
	v := f.get(i)
	if v == nil {
		return zero, false
	}
	t, ok := v.(T)
	if !ok {
		f.fail(i, want)
		return zero, false
	}
	return t, true
}

func fieldPtr[T any](f *fields, i int, want string) *T {
	v, ok := field[T](f, i, want)
	if !ok {
		return nil
	}
	return &v
}

// fieldTo is fieldPtr into *p: the pointer fields of the performatives
// of every message (transfer, flow, disposition) point into one
// allocation with their struct, not one each.
func fieldTo[T any](f *fields, i int, want string, p *T) *T {
	v, ok := field[T](f, i, want)
	if !ok {
		return nil
	}
	*p = v
	return p
}

func (f *fields) str(i int) string          { v, _ := field[string](f, i, "string"); return v }
func (f *fields) sym(i int) Symbol          { v, _ := field[Symbol](f, i, "symbol"); return v }
func (f *fields) bin(i int) []byte          { v, _ := field[[]byte](f, i, "binary"); return v }
func (f *fields) boolean(i int) bool        { v, _ := field[bool](f, i, "boolean"); return v }
func (f *fields) ubytep(i int) *uint8       { return fieldPtr[uint8](f, i, "ubyte") }
func (f *fields) ushortp(i int) *uint16     { return fieldPtr[uint16](f, i, "ushort") }
func (f *fields) uintp(i int) *uint32       { return fieldPtr[uint32](f, i, "uint") }
func (f *fields) ulongp(i int) *uint64      { return fieldPtr[uint64](f, i, "ulong") }
func (f *fields) mapField(i int) Map        { v, _ := field[Map](f, i, "map"); return v }
func (f *fields) timestamp(i int) time.Time { v, _ := field[time.Time](f, i, "timestamp"); return v }

func (f *fields) uint(i int, def uint32) uint32 {
	if v, ok := field[uint32](f, i, "uint"); ok {
		return v
	}
	return def
}

func (f *fields) ushort(i int, def uint16) uint16 {
	if v, ok := field[uint16](f, i, "ushort"); ok {
		return v
	}
	return def
}

// symbols reads a "multiple" symbol field, which a peer may send as a
// single symbol or as an array.
func (f *fields) symbols(i int) []Symbol {
	switch v := f.get(i).(type) {
	case nil:
		return nil
	case Symbol:
		return []Symbol{v}
	case []Symbol:
		return v
	case Array:
		// An empty array of some other element type carries no symbols.
		if len(v.Values) == 0 && v.Descriptor == nil {
			return []Symbol{}
		}
	}
	f.fail(i, "symbol or array of symbols")
	return nil
}

func (f *fields) errorField(i int) *Error {
	v, _ := field[*Error](f, i, "error")
	return v
}

func (f *fields) state(i int) DeliveryState {
	v, _ := field[DeliveryState](f, i, "delivery state")
	return v
}
