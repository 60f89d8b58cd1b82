package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func enc(t *testing.T, v any) []byte {
	t.Helper()
	var b Buffer
	if err := Encode(&b, v); err != nil {
		t.Fatalf("Encode(%#v): %v", v, err)
	}
	return b.Bytes()
}

func unhex(s string) []byte {
	p, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return p
}

// TestEncodeVectors checks the exact (smallest) encodings against bytes
// written out by hand from part 1 of the spec.
func TestEncodeVectors(t *testing.T) {
	ts := time.UnixMilli(1311704463521).UTC()
	tests := []struct {
		v    any
		want string
	}{
		{nil, "40"},
		{true, "41"},
		{false, "42"},
		{uint8(7), "50 07"},
		{uint16(0x1234), "60 1234"},
		{uint32(0), "43"},
		{uint32(5), "52 05"},
		{uint32(300), "70 0000012c"},
		{uint64(0), "44"},
		{uint64(255), "53 ff"},
		{uint64(1 << 40), "80 0000010000000000"},
		{int8(-2), "51 fe"},
		{int16(-2), "61 fffe"},
		{int32(-1), "54 ff"},
		{int32(128), "71 00000080"},
		{int64(-128), "55 80"},
		{int64(1000), "81 00000000000003e8"},
		{float32(1.5), "72 3fc00000"},
		{float64(1.5), "82 3ff8000000000000"},
		{Char('a'), "73 00000061"},
		{ts, "83 0000013167adb8a1"},
		{UUID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, "98 0102030405060708090a0b0c0d0e0f10"},
		{[]byte{1, 2}, "a0 02 0102"},
		{"hi", "a1 02 6869"},
		{Symbol("a"), "a3 01 61"},
		{[]any{}, "45"},
		{[]any{uint32(1)}, "c0 03 01 52 01"},
		{Map{{"a", true}}, "c1 05 02 a1 01 61 41"},
		{Map{}, "c1 01 00"},
		{[]int32{1, 2}, "e0 04 02 54 01 02"},
		{[]Symbol{"a", "bc"}, "e0 07 02 a3 01 61 02 62 63"},
		{[]uint32{1, 1000}, "e0 0a 02 70 00000001 000003e8"},
		{Described{Descriptor: Symbol("x:y"), Value: "v"}, "00 a3 03 783a79 a1 01 76"},
		{&Accepted{}, "00 53 24 45"},
		{&Released{}, "00 53 26 45"},
		{&Open{ContainerID: "c", MaxFrameSize: DefaultMaxFrameSize, ChannelMax: DefaultChannelMax}, "00 53 10 c0 04 01 a1 01 63"},
		{&Close{}, "00 53 18 45"},
		{&SASLOutcome{Code: SASLCodeOK}, "00 53 44 c0 03 01 50 00"},
	}
	for _, tt := range tests {
		got := enc(t, tt.v)
		if want := unhex(tt.want); !bytes.Equal(got, want) {
			t.Errorf("Encode(%#v) = % x, want % x", tt.v, got, want)
		}
	}
}

// TestDecodeEveryEncoding decodes the encodings an encoder of ours never
// picks but a peer may send.
func TestDecodeEveryEncoding(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{"56 01", true},
		{"56 00", false},
		{"70 00000005", uint32(5)},
		{"80 0000000000000005", uint64(5)},
		{"71 00000001", int32(1)},
		{"81 0000000000000001", int64(1)},
		{"b0 00000002 0102", []byte{1, 2}},
		{"b1 00000002 6869", "hi"},
		{"b3 00000001 61", Symbol("a")},
		{"d0 00000005 00000001 41", []any{true}},
		{"d0 00000004 00000000", []any{}},
		{"c0 01 00", []any{}},
		{"d1 00000008 00000002 a3 01 6b 43", Map{{Symbol("k"), uint32(0)}}},
		{"f0 00000007 00000002 54 01 02", []int32{1, 2}},
		{"e0 02 03 43", []uint32{0, 0, 0}},
		{"e0 02 02 41", []bool{true, true}},
		{"e0 04 02 56 01 00", []bool{true, false}},
		{"e0 02 00 a1", []string{}},
		{"e0 03 01 50 09", Array{Code: TypeUbyte, Values: []any{uint8(9)}}},
		{"e0 05 02 00 53 99 45", Array{Descriptor: uint64(0x99), Code: TypeList0, Values: []any{[]any{}, []any{}}}},
		{"e0 08 02 e0 02 00 52 02 00 52", Array{Code: TypeArray8, Values: []any{[]uint32{}, []uint32{}}}},
		{"74 01020304", Decimal32{1, 2, 3, 4}},
		{"84 0102030405060708", Decimal64{1, 2, 3, 4, 5, 6, 7, 8}},
		{"00 a3 12 616d71703a61636365707465643a6c697374 45", &Accepted{}},
		{"00 80 0000000000000024 c0 01 00", &Accepted{}},
		{"00 53 33 45", Described{Descriptor: uint64(0x33), Value: []any{}}},
	}
	for _, tt := range tests {
		in := unhex(tt.in)
		got, n, err := Decode(in)
		if err != nil {
			t.Errorf("Decode(%s): %v", tt.in, err)
			continue
		}
		if n != len(in) {
			t.Errorf("Decode(%s) used %d of %d bytes", tt.in, n, len(in))
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Decode(%s) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

// TestRoundTrip encodes every Go type of the mapping and decodes it back.
func TestRoundTrip(t *testing.T) {
	long := strings.Repeat("x", 300)
	ts := time.Date(2024, 5, 6, 7, 8, 9, 123e6, time.UTC)
	values := []any{
		nil, true, false,
		uint8(0), uint8(255), uint16(0), uint16(65535),
		uint32(0), uint32(255), uint32(256), uint32(math.MaxUint32),
		uint64(0), uint64(255), uint64(256), uint64(math.MaxUint64),
		int8(-128), int8(127), int16(-32768), int16(32767),
		int32(-128), int32(127), int32(-129), int32(math.MinInt32), int32(math.MaxInt32),
		int64(-128), int64(127), int64(128), int64(math.MinInt64), int64(math.MaxInt64),
		float32(-0.25), float32(math.Inf(1)), float64(math.Pi), math.Inf(-1),
		Char('é'), Char(-1), ts, time.UnixMilli(-1).UTC(), time.UnixMilli(0).UTC(),
		UUID{0xff}, Decimal32{1}, Decimal64{2}, Decimal128{3},
		[]byte{}, []byte(long), "", "héllo", long, Symbol(""), Symbol(long),
		[]any{}, []any{nil, uint32(1), "a", []any{Symbol("nested")}, Map{{uint64(1), nil}}},
		[]any{long, long},
		Map{}, Map{{Symbol("a"), int32(1)}, {"a", int64(2)}, {[]byte{1}, []any{}}, {nil, UUID{}}},
		[]bool{true, false}, []uint16{1, 2}, []uint32{1, 2}, []uint32{1, 1 << 20},
		[]uint64{3}, []uint64{1 << 40}, []int8{-1}, []int16{-1}, []int32{-1, 1000},
		[]int64{-1}, []int64{1 << 40}, []float32{1}, []float64{2}, []Char{'x'},
		[]time.Time{ts}, []UUID{{1}}, [][]byte{{1}, {}}, [][]byte{[]byte(long)},
		[]string{"a", ""}, []string{long}, []Symbol{"a"}, []Symbol{Symbol(long)},
		[][]any{{uint32(1)}, {}}, []Map{{{"k", "v"}}},
		Array{Code: TypeUbyte, Values: []any{uint8(1), uint8(2)}},
		Array{Code: TypeNull, Values: []any{nil, nil}},
		Array{Descriptor: Symbol("d"), Code: TypeStr8, Values: []any{"x"}},
		Array{Code: TypeArray32, Values: []any{[]int32{1}, []int32{}}},
		Array{Code: TypeDecimal64, Values: []any{Decimal64{1}}},
		Described{Descriptor: uint64(0x1234), Value: Map{{Symbol("k"), "v"}}},
		Described{Descriptor: Symbol("com.microsoft:session-filter"), Value: "sess"},
		Described{Descriptor: uint64(DescTransactionalState), Value: []any{[]byte{1}}},
		[]any{strings.Repeat("y", 70000)},
	}
	for _, v := range values {
		b := enc(t, v)
		got, n, err := Decode(b)
		if err != nil {
			t.Errorf("Decode(Encode(%#v)): %v", v, err)
			continue
		}
		if n != len(b) {
			t.Errorf("%#v: decoded %d of %d bytes", v, n, len(b))
		}
		if !valuesEqual(got, v) {
			t.Errorf("round trip of %#v gave %#v", v, got)
		}
	}
}

// valuesEqual is reflect.DeepEqual that treats NaNs as equal, for fuzzed
// floats.
func valuesEqual(a, b any) bool {
	var ba, bb Buffer
	if Encode(&ba, a) != nil || Encode(&bb, b) != nil {
		return false
	}
	return reflect.DeepEqual(a, b) || (bytes.Equal(ba.Bytes(), bb.Bytes()) && reflect.TypeOf(a) == reflect.TypeOf(b))
}

func TestEncodeErrors(t *testing.T) {
	bad := []any{
		struct{}{},
		map[string]any{"a": 1},
		[]any{make(chan int)},
		Array{Code: 0x99, Values: []any{1}},
		Array{Code: TypeSmallUint, Values: []any{uint32(300)}},
		Array{Code: TypeStr8, Values: []any{Symbol("x")}},
		&Message{Data: [][]byte{{1}}, Value: "x"},
	}
	for _, v := range bad {
		var b Buffer
		err := Encode(&b, v)
		var ee *EncodeError
		if !errors.As(err, &ee) {
			t.Errorf("Encode(%#v) = %v, want *EncodeError", v, err)
		}
	}
	// Too deep.
	var v any = "x"
	for i := 0; i < maxEncodeDepth+2; i++ {
		v = []any{v}
	}
	var b Buffer
	if err := Encode(&b, v); err == nil {
		t.Error("Encode of a value nested too deeply succeeded")
	}
}

func TestDecodeErrors(t *testing.T) {
	deep := bytes.Repeat([]byte{0xc0, 0x02, 0x01}, MaxDepth+1)
	deep = append(deep, 0x40)
	bad := []string{
		"",
		"ff",
		"01",
		"52",
		"70 0000",
		"a1 05 6869",
		"b1 ffffffff 00",
		"c0 05 03 40",                   // size beyond the data
		"c0 02 09 40",                   // count beyond the body
		"d0 ffffff00 00000001 40",       // huge size
		"d0 00000004 7fffffff",          // huge count
		"c1 03 01 40 40",                // odd map count
		"c0 03 01 40 40",                // byte left over in the list
		"c0 00",                         // size smaller than its count
		"e0 02 01 99",                   // invalid element constructor
		"e0 02 10 70",                   // count beyond the body
		"f0 00000005 7fffffff 43",       // zero-width array beyond the budget
		"e0 02 01 00",                   // described array without descriptor
		"56 02",                         // boolean byte other than 0 or 1
		"00",                            // described without descriptor
		"00 53 10 c0 01 00",             // open without container-id
		"00 53 10 c0 03 01 52 01",       // open container-id of the wrong type
		"00 53 10 a1 00",                // open is not a list
		"00 53 12 c0 04 03 a1 00 43 40", // attach without role
		"00 53 14 c0 03 01 a1 00",       // transfer handle of the wrong type
		"00 53 14 c0 04 02 43 43 ",      // fine so far...
	}
	bad = bad[:len(bad)-1]
	bad = append(bad, hex.EncodeToString(deep))
	for _, s := range bad {
		_, _, err := Decode(unhex(s))
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("Decode(%s) = %v, want *DecodeError", s, err)
		}
	}
}

func TestMap(t *testing.T) {
	var m Map
	m.Set(Symbol("a"), 1)
	m.Set("a", 2)
	m.Set([]byte{1}, 3)
	m.Set(Symbol("a"), 4)
	if v, ok := m.Get(Symbol("a")); !ok || v != 4 {
		t.Errorf("Get(Symbol a) = %v %v", v, ok)
	}
	if v, ok := m.Get("a"); !ok || v != 2 {
		t.Errorf("Get(a) = %v %v", v, ok)
	}
	if v, ok := m.Get([]byte{1}); !ok || v != 3 {
		t.Errorf("Get([]byte) = %v %v", v, ok)
	}
	if _, ok := m.Get([]any{}); ok {
		t.Error("Get of an absent uncomparable key found something")
	}
	m.Delete("a")
	if len(m) != 2 {
		t.Errorf("after Delete len = %d", len(m))
	}
}
