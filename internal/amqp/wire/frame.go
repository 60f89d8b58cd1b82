package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"reflect"
)

// Protocol headers (part 2.2 and 5.2): the 8 bytes each side sends before
// the frames of a layer.
const (
	ProtoAMQP = "AMQP\x00\x01\x00\x00"
	ProtoTLS  = "AMQP\x02\x01\x00\x00"
	ProtoSASL = "AMQP\x03\x01\x00\x00"
)

// Frame types (part 2.3).
const (
	FrameAMQP uint8 = 0
	FrameSASL uint8 = 1
)

// MinMaxFrameSize is the smallest max-frame-size a peer may announce, and
// the largest frame either side may send before open has been exchanged.
const MinMaxFrameSize = 512

// frameHeaderSize is the fixed part of a frame header (data offset 2).
const frameHeaderSize = 8

// Frame is one AMQP or SASL frame. Body is the performative (*Open ...
// *Close for FrameAMQP, *SASLMechanisms ... *SASLOutcome for FrameSASL),
// or nil for an empty frame (a heartbeat). Payload is the message data
// after a *Transfer; it is empty for every other performative.
type Frame struct {
	Type    uint8
	Channel uint16
	Body    any
	Payload []byte
}

// ReadProtoHeader reads the 8-byte protocol header and returns it; the
// caller compares it with ProtoAMQP, ProtoSASL or ProtoTLS.
func ReadProtoHeader(r io.Reader) (string, error) {
	var h [8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return "", err
	}
	return string(h[:]), nil
}

// ReadFrame reads one frame. The declared size is checked (at least 8, at
// most maxFrameSize) before anything is allocated, and at most that many
// bytes are. A malformed or oversized header is a *FrameError, a body that
// does not decode a *DecodeError; a connection that ends between frames
// gives io.EOF and one that ends inside a frame io.ErrUnexpectedEOF.
//
// A frame that fits r's buffer is decoded where it lies, and only a
// transfer's payload is copied out: the frames of a message's round trip
// (transfer, flow, disposition) cost no buffer of their own.
func ReadFrame(r *bufio.Reader, maxFrameSize uint32) (Frame, error) {
	h, err := r.Peek(frameHeaderSize)
	if err != nil {
		if len(h) > 0 && err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	size := binary.BigEndian.Uint32(h[0:4])
	doff := uint32(h[4])
	f := Frame{Type: h[5], Channel: binary.BigEndian.Uint16(h[6:8])}
	switch {
	case size < frameHeaderSize:
		return Frame{}, &FrameError{What: "frame size below 8", Size: size, Condition: ErrConnectionFraming}
	case size > maxFrameSize:
		return Frame{}, &FrameError{What: fmt.Sprintf("frame larger than the maximum %d", maxFrameSize), Size: size, TooLarge: true, Condition: ErrConnectionFraming}
	case doff < 2:
		return Frame{}, &FrameError{What: fmt.Sprintf("data offset %d below 2", doff), Size: size, Condition: ErrConnectionFraming}
	case doff*4 > size:
		return Frame{}, &FrameError{What: fmt.Sprintf("data offset %d beyond the frame", doff), Size: size, Condition: ErrConnectionFraming}
	case f.Type != FrameAMQP && f.Type != FrameSASL:
		return Frame{}, &FrameError{What: fmt.Sprintf("unknown frame type %d", f.Type), Size: size, Condition: ErrConnectionFraming}
	}
	_, _ = r.Discard(frameHeaderSize)
	n := int(size - frameHeaderSize)
	if n <= r.Size() {
		rest, err := r.Peek(n)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return Frame{}, err
		}
		err = decodeFrameBody(&f, rest[doff*4-frameHeaderSize:])
		_, _ = r.Discard(n)
		if err != nil {
			return Frame{}, err
		}
		if f.Payload != nil {
			f.Payload = bytes.Clone(f.Payload) // rest is r's buffer
		}
		return f, nil
	}
	rest := make([]byte, n)
	if _, err := io.ReadFull(r, rest); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	// The payload keeps rest: a large transfer is not copied again.
	if err := decodeFrameBody(&f, rest[doff*4-frameHeaderSize:]); err != nil {
		return Frame{}, err
	}
	return f, nil
}

// DecodeFrameBody decodes the body of a frame (after the extended header)
// into f.Body and f.Payload. It is ReadFrame without the reading, for
// transports that deliver whole frames (and for fuzzing).
func DecodeFrameBody(frameType uint8, body []byte) (Frame, error) {
	f := Frame{Type: frameType}
	err := decodeFrameBody(&f, body)
	return f, err
}

func decodeFrameBody(f *Frame, body []byte) error {
	if len(body) == 0 {
		return nil // heartbeat
	}
	v, n, err := Decode(body)
	if err != nil {
		return err
	}
	if !isPerformative(f.Type, v) {
		return &DecodeError{What: fmt.Sprintf("frame type %d body is %T, not a performative", f.Type, v), Offset: 0}
	}
	f.Body = v
	if n < len(body) {
		if _, ok := v.(*Transfer); !ok {
			return &DecodeError{What: fmt.Sprintf("%d bytes after a %T performative", len(body)-n, v), Offset: n}
		}
		f.Payload = body[n:]
	}
	return nil
}

func isPerformative(frameType uint8, v any) bool {
	switch v.(type) {
	case *Open, *Begin, *Attach, *Flow, *Transfer, *Disposition, *Detach, *End, *Close:
		return frameType == FrameAMQP
	case *SASLMechanisms, *SASLInit, *SASLChallenge, *SASLResponse, *SASLOutcome:
		return frameType == FrameSASL
	}
	return false
}

// AppendFrame appends the encoding of f to dst (data offset 2, no
// extended header). A nil Body makes an empty (heartbeat) frame. It does
// not check the agreed max-frame-size: the engine splits transfers before
// they get here and can compare len of the result.
func AppendFrame(dst []byte, f Frame) ([]byte, error) {
	b := Buffer{buf: dst}
	err := b.AppendFrame(f)
	return b.buf, err
}

// AppendFrame appends the encoding of f to b, like the function
// AppendFrame; on an error b is left as it was. A Buffer kept for a
// connection encodes its frames without allocating.
func (b *Buffer) AppendFrame(f Frame) error {
	start := len(b.buf)
	b.buf = append(b.buf, 0, 0, 0, 0, 2, f.Type, byte(f.Channel>>8), byte(f.Channel))
	if f.Body != nil {
		if _, ok := f.Body.(Marshaler); !ok || !isPerformative(f.Type, f.Body) || reflect.ValueOf(f.Body).IsNil() {
			b.buf = b.buf[:start]
			return &EncodeError{What: fmt.Sprintf("frame body %T is not a performative of frame type %d", f.Body, f.Type)}
		}
		if err := Encode(b, f.Body); err != nil {
			b.buf = b.buf[:start]
			return err
		}
	}
	b.buf = append(b.buf, f.Payload...)
	size := len(b.buf) - start
	if uint64(size) > math.MaxUint32 {
		b.buf = b.buf[:start]
		return &EncodeError{What: "frame larger than 4 GiB"}
	}
	binary.BigEndian.PutUint32(b.buf[start:], uint32(size))
	return nil
}
