package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"
)

func u8(v uint8) *uint8    { return &v }
func u16(v uint16) *uint16 { return &v }
func u32(v uint32) *uint32 { return &v }
func u64(v uint64) *uint64 { return &v }
func bp(v bool) *bool      { return &v }

// fullPerformatives has every performative and composite with every
// field set to a non-default value, and with none set.
func fullPerformatives() []any {
	props := Map{{Symbol("com.microsoft:x"), "y"}}
	caps := []Symbol{"cap1", "cap2"}
	e := &Error{Condition: ErrNotFound, Description: "no such queue", Info: Map{{Symbol("k"), int32(1)}}}
	src := &Source{
		Address: "q1", Durable: DurableUnsettled, ExpiryPolicy: ExpiryNever, Timeout: 30, Dynamic: true,
		DynamicNodeProperties: Map{{Symbol("lifetime-policy"), Described{Descriptor: DescDeleteOnClose, Value: []any{}}}},
		DistributionMode:      "copy",
		Filter:                Map{{Symbol("com.microsoft:session-filter"), Described{Descriptor: Symbol("com.microsoft:session-filter"), Value: "s1"}}},
		DefaultOutcome:        &Released{},
		Outcomes:              []Symbol{"amqp:accepted:list"},
		Capabilities:          caps,
	}
	tgt := &Target{Address: "q2", Durable: 1, ExpiryPolicy: ExpiryLinkDetach, Timeout: 5, Dynamic: true,
		DynamicNodeProperties: Map{{Symbol("a"), "b"}}, Capabilities: caps}
	return []any{
		&Open{ContainerID: "c", Hostname: "ns.servicebus.windows.net", MaxFrameSize: 65536, ChannelMax: 7,
			IdleTimeOut: 60000, OutgoingLocales: []Symbol{"en-US"}, IncomingLocales: []Symbol{"de"},
			OfferedCapabilities: caps, DesiredCapabilities: caps, Properties: props},
		&Open{ContainerID: "", MaxFrameSize: DefaultMaxFrameSize, ChannelMax: DefaultChannelMax},
		&Open{ContainerID: "zero", MaxFrameSize: 0, ChannelMax: 0},
		&Begin{RemoteChannel: u16(3), NextOutgoingID: 1, IncomingWindow: 5000, OutgoingWindow: 6000,
			HandleMax: 255, OfferedCapabilities: caps, DesiredCapabilities: caps, Properties: props},
		&Begin{HandleMax: DefaultHandleMax},
		&Attach{Name: "link", Handle: 4, Role: RoleReceiver, SndSettleMode: u8(SndSettleModeSettled),
			RcvSettleMode: u8(RcvSettleModeSecond), Source: src, Target: tgt,
			Unsettled: Map{{[]byte{1, 2}, &Accepted{}}}, IncompleteUnsettled: true,
			InitialDeliveryCount: u32(9), MaxMessageSize: u64(1 << 20),
			OfferedCapabilities: caps, DesiredCapabilities: caps, Properties: props},
		&Attach{Name: "txn", Role: RoleSender, Source: &Source{ExpiryPolicy: ExpirySessionEnd},
			OtherTarget: Described{Descriptor: DescCoordinator, Value: []any{[]Symbol{"amqp:local-transactions"}}}},
		&Flow{NextIncomingID: u32(1), IncomingWindow: 2, NextOutgoingID: 3, OutgoingWindow: 4, Handle: u32(5),
			DeliveryCount: u32(6), LinkCredit: u32(7), Available: u32(8), Drain: true, Echo: true, Properties: props},
		&Flow{},
		&Transfer{Handle: 1, DeliveryID: u32(2), DeliveryTag: []byte{1, 2, 3}, MessageFormat: u32(MessageFormatBatch),
			Settled: bp(false), More: true, RcvSettleMode: u8(1), State: &Received{SectionNumber: 1, SectionOffset: 2},
			Resume: true, Aborted: true, Batchable: true},
		&Transfer{Handle: 1, State: Described{Descriptor: DescTransactionalState, Value: []any{[]byte("txn")}}},
		&Disposition{Role: RoleReceiver, First: 1, Last: u32(9), Settled: true,
			State: &Rejected{Error: e}, Batchable: true},
		&Disposition{State: &Modified{DeliveryFailed: true, UndeliverableHere: true, MessageAnnotations: Map{{Symbol("x"), "y"}}}},
		&Disposition{State: &Accepted{}},
		&Disposition{State: &Released{}},
		&Detach{Handle: 3, Closed: true, Error: e},
		&Detach{},
		&End{Error: e},
		&End{},
		&Close{Error: &Error{Condition: ErrConnectionForced}},
		&Close{},
		e,
		src, tgt,
		&Received{},
		&Rejected{},
		&Modified{},
		&SASLMechanisms{Mechanisms: []Symbol{SASLAnonymous, SASLMSSBCBS}},
		&SASLInit{Mechanism: SASLAnonymous, InitialResponse: []byte("x"), Hostname: "h"},
		&SASLInit{Mechanism: SASLExternal},
		&SASLChallenge{Challenge: []byte{1}},
		&SASLResponse{Response: []byte{}},
		&SASLOutcome{Code: SASLCodeAuth, AdditionalData: []byte("why")},
		&Header{Durable: true, Priority: 9, TTL: 1000, FirstAcquirer: true, DeliveryCount: 3,
			Present: HeaderDurable | HeaderPriority | HeaderTTL | HeaderFirstAcquirer | HeaderDeliveryCount},
		&Header{Priority: DefaultPriority},
		&Properties{MessageID: "m1", UserID: []byte("u"), To: "t", Subject: "s", ReplyTo: "r",
			CorrelationID: UUID{1}, ContentType: "application/json", ContentEncoding: "gzip",
			AbsoluteExpiryTime: time.UnixMilli(1700000000000).UTC(), CreationTime: time.UnixMilli(1600000000000).UTC(),
			GroupID: "g", GroupSequence: 7, ReplyToGroupID: "rg", Present: 1<<13 - 1},
		&Properties{MessageID: uint64(5), Subject: "", Present: PropMessageID | PropSubject},
	}
}

func TestPerformativesRoundTrip(t *testing.T) {
	for _, v := range fullPerformatives() {
		b := enc(t, v)
		got, n, err := Decode(b)
		if err != nil {
			t.Errorf("Decode(Encode(%T)): %v", v, err)
			continue
		}
		if n != len(b) {
			t.Errorf("%T: decoded %d of %d", v, n, len(b))
		}
		if !reflect.DeepEqual(got, v) {
			t.Errorf("round trip:\n got %#v\nwant %#v", got, v)
		}
	}
}

// TestDefaults decodes performatives whose optional fields are absent or
// null and checks the spec defaults.
func TestDefaults(t *testing.T) {
	// open with container-id and explicit nulls, then nothing.
	v, _, err := Decode(unhex("00 53 10 c0 07 04 a1 01 63 40 40 40"))
	if err != nil {
		t.Fatal(err)
	}
	o := v.(*Open)
	if o.MaxFrameSize != DefaultMaxFrameSize || o.ChannelMax != DefaultChannelMax || o.IdleTimeOut != 0 {
		t.Errorf("open defaults: %+v", o)
	}
	// begin with only the mandatory fields.
	v, _, err = Decode(unhex("00 53 11 c0 07 04 40 43 52 05 52 06"))
	if err != nil {
		t.Fatal(err)
	}
	if b := v.(*Begin); b.HandleMax != DefaultHandleMax || b.RemoteChannel != nil || b.IncomingWindow != 5 {
		t.Errorf("begin defaults: %+v", b)
	}
	// attach with name, handle, role only.
	v, _, err = Decode(unhex("00 53 12 c0 06 03 a1 01 6c 43 41"))
	if err != nil {
		t.Fatal(err)
	}
	a := v.(*Attach)
	if a.SndSettle() != SndSettleModeMixed || a.RcvSettle() != RcvSettleModeFirst || a.Role != RoleReceiver {
		t.Errorf("attach defaults: %+v", a)
	}
	// source with nothing: expiry policy session-end.
	v, _, err = Decode(unhex("00 53 28 45"))
	if err != nil {
		t.Fatal(err)
	}
	if s := v.(*Source); s.ExpiryPolicy != ExpirySessionEnd {
		t.Errorf("source default expiry %q", s.ExpiryPolicy)
	}
	// header with nothing: priority 4, re-encoded without it.
	v, _, err = Decode(unhex("00 53 70 45"))
	if err != nil {
		t.Fatal(err)
	}
	if h := v.(*Header); h.Priority != DefaultPriority || h.Present != 0 {
		t.Errorf("header defaults: %+v", h)
	}
	if b := enc(t, v); !bytes.Equal(b, unhex("00 53 70 45")) {
		t.Errorf("header re-encoded as % x", b)
	}
	// A capability sent as a single symbol.
	v, _, err = Decode(unhex("00 53 10 c0 0d 08 a1 01 63 40 40 40 40 40 40 a3 01 78"))
	if err != nil {
		t.Fatal(err)
	}
	if c := v.(*Open).OfferedCapabilities; !reflect.DeepEqual(c, []Symbol{"x"}) {
		t.Errorf("single-symbol capability = %v", c)
	}
}

func TestMessageRoundTrip(t *testing.T) {
	allPrims := Map{
		{"null", nil}, {"bool", true}, {"ubyte", uint8(1)}, {"ushort", uint16(2)}, {"uint", uint32(3)},
		{"ulong", uint64(4)}, {"byte", int8(-5)}, {"short", int16(-6)}, {"int", int32(-7)}, {"long", int64(-8)},
		{"float", float32(9.5)}, {"double", 10.25}, {"char", Char('c')}, {"ts", time.UnixMilli(12345).UTC()},
		{"uuid", UUID{7}}, {"bin", []byte{1}}, {"str", "s"}, {"sym", Symbol("y")},
		{"d32", Decimal32{1}}, {"d64", Decimal64{1}}, {"d128", Decimal128{1}},
		{"list", []any{uint32(1)}}, {"map", Map{{"a", "b"}}}, {"arr", []int64{1, 2}},
	}
	msgs := []*Message{
		{
			Header:                &Header{Durable: true, Priority: DefaultPriority, DeliveryCount: 2},
			DeliveryAnnotations:   Map{{Symbol("x-opt-lock-token"), UUID{1}}},
			MessageAnnotations:    Map{{Symbol("x-opt-sequence-number"), int64(42)}, {Symbol("x-opt-enqueued-time"), time.UnixMilli(1).UTC()}},
			Properties:            &Properties{MessageID: "id", Present: PropMessageID},
			ApplicationProperties: allPrims,
			Data:                  [][]byte{[]byte("hello"), make([]byte, 1000)},
			Footer:                Map{{Symbol("f"), "v"}},
		},
		{Sequence: [][]any{{"a"}, {uint32(1)}}},
		{Value: Map{{"k", "v"}}, HasValue: true},
		{HasValue: true},
		{ApplicationProperties: Map{}},
		{},
	}
	for _, m := range msgs {
		b := enc(t, m)
		got, err := DecodeMessage(b)
		if err != nil {
			t.Errorf("DecodeMessage: %v", err)
			continue
		}
		// Raw aliases the input; compare it separately.
		raw := got.Raw
		got.Raw = RawSections{}
		if m.Header != nil && got.Header != nil {
			got.Header.Present = 0 // set by decoding
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("message round trip:\n got %#v\nwant %#v", got, m)
		}
		// The raw sections put together are the whole message.
		var all []byte
		for _, s := range [][]byte{raw.Header, raw.DeliveryAnnotations, raw.MessageAnnotations, raw.Properties, raw.ApplicationProperties, raw.Body, raw.Footer} {
			all = append(all, s...)
		}
		if !bytes.Equal(all, b) {
			t.Errorf("raw sections % x != message % x", all, b)
		}
	}
}

func TestMessageErrors(t *testing.T) {
	bad := []string{
		"40",                            // not described
		"00 53 75 a0 01 01 00 53 70 45", // header after the body
		"00 53 70 45 00 53 70 45",       // header twice
		"00 53 75 a0 01 01 00 53 77 40", // data then value
		"00 53 77 40 00 53 77 40",       // two values
		"00 53 75 40",                   // data without binary
		"00 53 74 45",                   // application-properties not a map
		"00 53 10 c0 03 01 a1 00",       // a performative
		"00 53 99 45",                   // unknown section
		"00 53 76 a1 00",                // sequence not a list
	}
	for _, s := range bad {
		_, err := DecodeMessage(unhex(s))
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("DecodeMessage(%s) = %v, want *DecodeError", s, err)
		}
	}
}

func TestBatch(t *testing.T) {
	msgs := []*Message{
		{Properties: &Properties{MessageID: "1"}, Data: [][]byte{[]byte("a")}},
		{ApplicationProperties: Map{{"k", int32(1)}}, Value: "b"},
	}
	var b Buffer
	if err := MarshalBatch(&b, msgs); err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBatch(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Properties.MessageID != "1" || got[1].Value != "b" {
		t.Fatalf("batch = %#v", got)
	}
	if _, err := DecodeBatch(unhex("00 53 77 40")); err == nil {
		t.Error("batch with an amqp-value body decoded")
	}
	if _, err := DecodeBatch(unhex("00 53 75 a0 01 40")); err == nil {
		t.Error("batch with an invalid inner message decoded")
	}
}

func TestFrames(t *testing.T) {
	frames := []Frame{
		{Type: FrameAMQP, Channel: 0, Body: &Open{ContainerID: "c", MaxFrameSize: 1 << 16, ChannelMax: 1}},
		{Type: FrameAMQP, Channel: 7, Body: &Transfer{Handle: 1, DeliveryID: u32(0), DeliveryTag: []byte{1}}, Payload: []byte("payload")},
		{Type: FrameAMQP, Channel: 3},
		{Type: FrameSASL, Body: &SASLMechanisms{Mechanisms: []Symbol{SASLAnonymous}}},
	}
	var stream []byte
	for _, f := range frames {
		var err error
		if stream, err = AppendFrame(stream, f); err != nil {
			t.Fatal(err)
		}
	}
	// Heartbeat is exactly the 8-byte header.
	if hb, _ := AppendFrame(nil, Frame{Channel: 3}); !bytes.Equal(hb, unhex("00000008 02 00 0003")) {
		t.Errorf("heartbeat % x", hb)
	}
	r := bufio.NewReader(bytes.NewReader(stream))
	for _, want := range frames {
		got, err := ReadFrame(r, 1<<16)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("frame:\n got %#v\nwant %#v", got, want)
		}
	}
	if _, err := ReadFrame(r, 1<<16); err != io.EOF {
		t.Errorf("at end: %v, want io.EOF", err)
	}
	// An extended header is skipped.
	ext := unhex("0000000c 03 00 0000 01020304 00531845")
	ext[3] = byte(len(ext))
	f, err := ReadFrame(bufio.NewReader(bytes.NewReader(ext)), 512)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Body.(*Close); !ok {
		t.Errorf("extended header frame body %#v", f.Body)
	}
	// A SASL init read with ReadProtoHeader first.
	p, _ := AppendFrame([]byte(ProtoSASL), Frame{Type: FrameSASL, Body: &SASLInit{Mechanism: SASLAnonymous}})
	br := bufio.NewReader(bytes.NewReader(p))
	if h, err := ReadProtoHeader(br); err != nil || h != ProtoSASL {
		t.Fatalf("proto header %q %v", h, err)
	}
	if f, err := ReadFrame(br, 512); err != nil || f.Body.(*SASLInit).Mechanism != SASLAnonymous {
		t.Fatalf("sasl init %#v %v", f, err)
	}
}

func TestFrameErrors(t *testing.T) {
	tests := []struct {
		in       string
		tooLarge bool
		decode   bool
		eof      bool
	}{
		{in: "00000007 02 00 0000"},
		{in: "ffffffff 02 00 0000", tooLarge: true},
		{in: "00000201 02 00 0000", tooLarge: true},
		{in: "00000008 01 00 0000"},
		{in: "00000008 03 00 0000"},
		{in: "00000008 02 05 0000"},
		{in: "0000000c 02 00 0000 00531045", decode: true},       // open without container-id
		{in: "0000000c 02 01 0000 00531845", decode: true},       // close in a SASL frame
		{in: "0000000d 02 00 0000 00531845 ff", decode: true},    // bytes after close
		{in: "0000000d 02 00 0000 40 00 00 00 00", decode: true}, // not a performative
		{in: "00000010 02 00 0000 0053", eof: true},              // cut short
		{in: "000000", eof: true},                                // cut inside the header
	}
	for _, tt := range tests {
		_, err := ReadFrame(bufio.NewReader(bytes.NewReader(unhex(tt.in))), 512)
		var fe *FrameError
		var de *DecodeError
		switch {
		case tt.eof:
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("%s: %v, want unexpected EOF", tt.in, err)
			}
		case tt.decode:
			if !errors.As(err, &de) || ErrorCondition(err) != ErrDecodeError {
				t.Errorf("%s: %v, want *DecodeError", tt.in, err)
			}
		default:
			if !errors.As(err, &fe) || fe.TooLarge != tt.tooLarge || ErrorCondition(err) != ErrConnectionFraming {
				t.Errorf("%s: %v, want *FrameError (too large %v)", tt.in, err, tt.tooLarge)
			}
		}
	}
}

func TestAppendFrameErrors(t *testing.T) {
	for _, f := range []Frame{
		{Body: (*Open)(nil)},
		{Body: "not a performative"},
		{Type: FrameSASL, Body: &Open{}},
		{Type: FrameAMQP, Body: &SASLInit{}},
	} {
		if _, err := AppendFrame(nil, f); err == nil {
			t.Errorf("AppendFrame(%#v) succeeded", f)
		}
	}
	// A typed nil inside a performative is absent.
	var e *Error
	if b := enc(t, &Detach{Handle: 1, Error: e}); !bytes.Equal(b, unhex("00 53 16 c0 03 01 52 01")) {
		t.Errorf("detach with typed nil error % x", b)
	}
}

func TestErrorInterface(t *testing.T) {
	var err error = &Error{Condition: ErrMessageLockLost, Description: "lock lost"}
	if err.Error() != "com.microsoft:message-lock-lost: lock lost" {
		t.Errorf("Error() = %q", err.Error())
	}
}
