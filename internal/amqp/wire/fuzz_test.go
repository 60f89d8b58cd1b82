package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// seedValues are encoded into the fuzz corpora as starting points.
func seedValues() []any {
	vals := fullPerformatives()
	vals = append(vals,
		[]any{nil, true, uint8(1), uint16(2), uint32(300), uint64(1 << 40), int8(-1), int16(-2),
			int32(-3), int64(-4), float32(1), 2.0, Char('x'), time.UnixMilli(5).UTC(), UUID{1},
			[]byte("b"), "s", Symbol("y"), Decimal32{}, Decimal64{}, Decimal128{}},
		Map{{Symbol("k"), []int32{1, 2}}, {"s", []string{"a"}}, {uint64(1), [][]any{{"x"}}}},
		Array{Descriptor: uint64(9), Code: TypeList0, Values: []any{[]any{}}},
		Array{Code: TypeArray32, Values: []any{[]Symbol{"a"}}},
		Described{Descriptor: Symbol("apache.org:selector-filter:string"), Value: "a = 1"},
	)
	return vals
}

func seedMessages() []*Message {
	return []*Message{
		{
			Header:                &Header{Durable: true, TTL: 1000},
			DeliveryAnnotations:   Map{{Symbol("x-opt-lock-token"), UUID{1}}},
			MessageAnnotations:    Map{{Symbol("x-opt-sequence-number"), int64(1)}},
			Properties:            &Properties{MessageID: "m", CorrelationID: uint64(1), CreationTime: time.UnixMilli(1).UTC()},
			ApplicationProperties: Map{{"a", int32(1)}, {"b", []byte{1}}},
			Data:                  [][]byte{[]byte("one"), []byte("two")},
			Footer:                Map{{Symbol("f"), nil}},
		},
		{Sequence: [][]any{{uint32(1)}}},
		{Value: "v"},
	}
}

// fixedPoint checks that what decoded re-encodes, decodes again and
// re-encodes to the same bytes.
func fixedPoint(t *testing.T, v any) {
	t.Helper()
	var b1 Buffer
	if err := Encode(&b1, v); err != nil {
		t.Fatalf("re-encoding %#v: %v", v, err)
	}
	v2, n, err := Decode(b1.Bytes())
	if err != nil {
		t.Fatalf("decoding our own encoding % x of %#v: %v", b1.Bytes(), v, err)
	}
	if n != b1.Len() {
		t.Fatalf("decoded %d of %d bytes of our own encoding", n, b1.Len())
	}
	var b2 Buffer
	if err := Encode(&b2, v2); err != nil {
		t.Fatalf("re-encoding %#v: %v", v2, err)
	}
	if !bytes.Equal(b1.Bytes(), b2.Bytes()) {
		t.Fatalf("not a fixed point:\n% x\n% x", b1.Bytes(), b2.Bytes())
	}
}

func checkDecodeErr(t *testing.T, err error) {
	t.Helper()
	var de *DecodeError
	if err != nil && !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, v := range seedValues() {
		var b Buffer
		if err := Encode(&b, v); err == nil {
			f.Add(b.Bytes())
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, n, err := Decode(data)
		checkDecodeErr(t, err)
		if err != nil {
			return
		}
		if n < 1 || n > len(data) {
			t.Fatalf("n = %d of %d", n, len(data))
		}
		fixedPoint(t, v)
	})
}

func messageFixedPoint(t *testing.T, m *Message) {
	t.Helper()
	b1, err := m.Encoded()
	if err != nil {
		t.Fatalf("re-encoding %#v: %v", m, err)
	}
	m2, err := DecodeMessage(b1)
	if err != nil {
		t.Fatalf("decoding our own message % x: %v", b1, err)
	}
	b2, err := m2.Encoded()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1, b2) {
		t.Fatalf("message not a fixed point:\n% x\n% x", b1, b2)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	for _, m := range seedMessages() {
		b, _ := m.Encoded()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeMessage(data)
		checkDecodeErr(t, err)
		if err != nil {
			return
		}
		messageFixedPoint(t, m)
	})
}

func FuzzDecodeBatch(f *testing.F) {
	var b Buffer
	_ = MarshalBatch(&b, seedMessages())
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, err := DecodeBatch(data)
		checkDecodeErr(t, err)
		for _, m := range msgs {
			messageFixedPoint(t, m)
		}
	})
}

const fuzzMaxFrame = 1 << 16

func FuzzReadFrame(f *testing.F) {
	var stream []byte
	for _, v := range seedValues() {
		typ := FrameAMQP
		switch v.(type) {
		case *SASLMechanisms, *SASLInit, *SASLChallenge, *SASLResponse, *SASLOutcome:
			typ = FrameSASL
		}
		if !isPerformative(typ, v) {
			continue
		}
		fr := Frame{Type: typ, Channel: 1, Body: v}
		if _, ok := v.(*Transfer); ok {
			fr.Payload = []byte("payload")
		}
		one, err := AppendFrame(nil, fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(one)
		stream = append(stream, one...)
	}
	f.Add(stream)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for {
			fr, err := ReadFrame(r, fuzzMaxFrame)
			if err != nil {
				var fe *FrameError
				var de *DecodeError
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.As(err, &fe) && !errors.As(err, &de) {
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				return
			}
			b1, err := AppendFrame(nil, fr)
			if err != nil {
				t.Fatalf("re-encoding frame %#v: %v", fr, err)
			}
			fr2, err := ReadFrame(bufio.NewReader(bytes.NewReader(b1)), uint32(len(b1)))
			if err != nil {
				t.Fatalf("reading our own frame % x: %v", b1, err)
			}
			b2, err := AppendFrame(nil, fr2)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b1, b2) {
				t.Fatalf("frame not a fixed point:\n% x\n% x", b1, b2)
			}
		}
	})
}

func FuzzPerformative(f *testing.F) {
	for _, v := range fullPerformatives() {
		var b Buffer
		if err := Encode(&b, v); err == nil {
			f.Add(uint8(0), b.Bytes())
			f.Add(uint8(1), b.Bytes())
		}
	}
	f.Fuzz(func(t *testing.T, typ uint8, body []byte) {
		typ &= 1
		fr, err := DecodeFrameBody(typ, body)
		checkDecodeErr(t, err)
		if err != nil || fr.Body == nil {
			return
		}
		fixedPoint(t, fr.Body)
	})
}
