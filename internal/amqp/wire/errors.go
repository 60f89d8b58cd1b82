package wire

import (
	"errors"
	"fmt"
)

// MaxDepth bounds the nesting of compound and described values a decoder
// follows, so a hostile peer cannot exhaust the stack.
const MaxDepth = 64

// DecodeError reports bytes that are not valid AMQP: What says what was
// wrong and Offset where (relative to the start of the slice given to the
// decoding function). The engine answers it with amqp:decode-error.
type DecodeError struct {
	What   string
	Offset int
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("amqp decode: %s at offset %d", e.What, e.Offset)
}

// EncodeError reports a Go value that cannot be encoded (an unsupported
// type, a value that does not fit its AMQP type, more than one kind of
// message body, ...).
type EncodeError struct {
	What string
}

func (e *EncodeError) Error() string { return "amqp encode: " + e.What }

// FrameError reports a frame header that breaks part 2.3 (size below 8,
// data offset below 2 or beyond the frame) or a frame larger than the
// agreed maximum (TooLarge). The engine closes the connection with
// Condition.
type FrameError struct {
	What      string
	Size      uint32
	TooLarge  bool
	Condition Symbol
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("amqp frame: %s (size %d)", e.What, e.Size)
}

// ErrorCondition maps an error from this package to the AMQP condition a
// peer should be told: amqp:connection:framing-error for frame errors,
// amqp:decode-error for decode errors, amqp:internal-error otherwise.
func ErrorCondition(err error) Symbol {
	var fe *FrameError
	if errors.As(err, &fe) {
		return fe.Condition
	}
	var de *DecodeError
	if errors.As(err, &de) {
		return ErrDecodeError
	}
	return ErrInternalError
}
