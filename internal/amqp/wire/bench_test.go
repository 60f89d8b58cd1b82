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
