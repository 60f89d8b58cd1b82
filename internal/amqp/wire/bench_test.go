package wire

import (
	"bufio"
	"bytes"
	"testing"
	"time"
)

// benchMessage is a typical Service Bus message: annotations the broker
// adds, a few application properties and a 1 KiB body.
func benchMessage() *Message {
	return &Message{
		Header:                &Header{Durable: true},
		MessageAnnotations:    Map{{Symbol("x-opt-sequence-number"), int64(12345)}, {Symbol("x-opt-enqueued-time"), time.UnixMilli(1700000000000).UTC()}},
		Properties:            &Properties{MessageID: "0f6b3c2e-1", ContentType: "application/json"},
		ApplicationProperties: Map{{"tenant", "contoso"}, {"attempt", int32(1)}},
		Data:                  [][]byte{bytes.Repeat([]byte("x"), 1024)},
	}
}

func BenchmarkTransferFrameEncode(b *testing.B) {
	m := benchMessage()
	var body Buffer
	var out []byte
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		body.Reset()
		_ = m.MarshalAMQP(&body)
		id := uint32(i)
		out, _ = AppendFrame(out[:0], Frame{Channel: 1, Body: &Transfer{Handle: 0, DeliveryID: &id, DeliveryTag: []byte{1, 2, 3, 4}}, Payload: body.Bytes()})
	}
}

func BenchmarkTransferFrameDecode(b *testing.B) {
	payload, _ := benchMessage().Encoded()
	id := uint32(1)
	frame, _ := AppendFrame(nil, Frame{Channel: 1, Body: &Transfer{Handle: 0, DeliveryID: &id, DeliveryTag: []byte{1, 2, 3, 4}}, Payload: payload})
	r := bytes.NewReader(frame)
	br := bufio.NewReader(r)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r.Reset(frame)
		br.Reset(r)
		f, err := ReadFrame(br, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := DecodeMessage(f.Payload); err != nil {
			b.Fatal(err)
		}
	}
}

// benchFrames are the frames of a message's round trip besides the
// transfer: a link flow and a receiver's disposition.
func benchFrames() []Frame {
	next, h, count, credit := uint32(70000), uint32(3), uint32(69990), uint32(100)
	last := uint32(70001)
	return []Frame{
		{Channel: 1, Body: &Flow{NextIncomingID: &next, IncomingWindow: 2048, NextOutgoingID: 71000, OutgoingWindow: 2048, Handle: &h, DeliveryCount: &count, LinkCredit: &credit}},
		{Channel: 1, Body: &Disposition{Role: true, First: 70000, Last: &last, Settled: true, State: &Accepted{}}},
	}
}

// BenchmarkFrameEncode: a flow and a disposition into one kept Buffer,
// as the engine writes them.
func BenchmarkFrameEncode(b *testing.B) {
	frames := benchFrames()
	var out Buffer
	b.ReportAllocs()
	for b.Loop() {
		out.Reset()
		for _, f := range frames {
			if err := out.AppendFrame(f); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkFrameDecode: reading a flow and a disposition, as the
// engine's reader does.
func BenchmarkFrameDecode(b *testing.B) {
	var data []byte
	for _, f := range benchFrames() {
		data, _ = AppendFrame(data, f)
	}
	r := bytes.NewReader(data)
	br := bufio.NewReader(r)
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(data)
		br.Reset(r)
		for range 2 {
			if _, err := ReadFrame(br, 1<<20); err != nil {
				b.Fatal(err)
			}
		}
	}
}
