// Package amqp is tenantbridge's AMQP 1.0 server engine: the connection,
// SASL, session and link state machines of the OASIS AMQP 1.0 standard,
// part 2, on top of the type system and frames of package wire. It knows
// nothing of Service Bus: an application (the Service Bus front-end) gives
// it a Handler per connection, which decides on each link the peer
// attaches, takes the messages the peer sends and sends messages within the
// credit the peer grants.
//
// The engine is built for untrusted peers: every table it keeps
// (sessions, links, unsettled deliveries, messages being reassembled) has
// a limit; an idle connection holds one goroutine, the one reading it
// (ServeConn's), and the loop that owns its state, its writer and each
// link's application callbacks run on goroutines started while they have
// work, plus one per pending attach; and a silent peer is cut at the
// idle timeout.
package amqp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
)

// Server holds the settings shared by the connections it serves. The zero
// value works: SASL required (ANONYMOUS, EXTERNAL, MSSBCBS all succeed)
// and every link refused with amqp:not-found.
type Server struct {
	// ContainerID is sent in our open; empty means "tenantbridge".
	ContainerID string
	// MaxFrameSize is the largest frame we accept (0: 65536; at least 512).
	MaxFrameSize uint32
	// MaxSessions bounds the sessions of one connection (0: 64).
	MaxSessions uint16
	// MaxLinksPerSession bounds the links of one session (0: 256).
	MaxLinksPerSession uint32
	// MaxLinks bounds the links of one connection, all sessions together
	// (0: 1024); an attach beyond it is refused with
	// amqp:resource-limit-exceeded.
	MaxLinks int
	// MaxMessageSize bounds one message the peer sends, all frames
	// together (0: 1 MiB). Larger ones detach the link with
	// amqp:link:message-size-exceeded.
	MaxMessageSize uint64
	// MaxBufferedBytes bounds the bytes of incoming messages one
	// connection holds at once: messages being reassembled plus those
	// OnDelivery has not returned from (0: 64 MiB, and at least four
	// messages of MaxMessageSize). Beyond it the connection is closed
	// with amqp:resource-limit-exceeded; a peer only gets there with more
	// credit than the application takes messages, so give a link the
	// credit its messages' size allows.
	MaxBufferedBytes int64
	// MaxUnsettled bounds the unsettled deliveries of one link in each
	// direction (0: 5000). Send waits while our side is at the limit.
	MaxUnsettled int
	// IdleTimeout is how long the peer may stay silent before we close
	// the connection (0: 60 s). We advertise half of it, as go-amqp does,
	// so that a peer sending at its advertised rate is well within it.
	IdleTimeout time.Duration
	// HandshakeTimeout bounds the protocol headers, SASL and open
	// (0: 30 s).
	HandshakeTimeout time.Duration
	// IncomingWindow is the session window we give the peer, in transfer
	// frames (0: 2048).
	IncomingWindow uint32
	// ReadBufferSize is the size of the buffer a connection reads its
	// transport through (0: 4096; at least 16). A connection keeps it
	// for as long as it is open, idle or not. A transport that buffers
	// what it reads itself (TLS decrypts a whole record at a time; a
	// WebSocket connection reads through its own buffer) needs only a
	// frame header's worth: with 16 bytes, each frame's body is read
	// straight into the slice that frame keeps, at the cost of one more
	// Read of the transport per frame.
	ReadBufferSize int

	// NoSASL serves the AMQP header directly. By default a peer must
	// negotiate SASL first (a bare AMQP header is answered with the SASL
	// header and the connection closed, as the standard says).
	NoSASL bool
	// SASLMechanisms are offered in this order; nil offers
	// MSSBCBS, ANONYMOUS and EXTERNAL.
	SASLMechanisms []wire.Symbol
	// Authenticate may refuse a SASL exchange (the peer gets SASL code
	// auth). It returns the identity the connection carries. Nil accepts
	// every offered mechanism: with Service Bus the authentication that
	// counts comes later, through CBS tokens.
	Authenticate func(ctx context.Context, s SASL) (identity string, err error)

	// Connect is called once the peer's open arrived, and returns the
	// handler for the connection's links. An error refuses the connection
	// (its *wire.Error, or amqp:unauthorized-access, goes in our close).
	Connect func(ctx context.Context, c *Conn) (Handler, error)

	// Logger receives one line per connection that ends in error; nil
	// discards.
	Logger *slog.Logger

	// Observer, if set, is told of connections and links as they begin
	// and end, for the operator's metrics. Set it before serving.
	Observer Observer
}

// Observer counts connections and links. Its methods are called from the
// connections' goroutines and must be quick and safe for concurrent use.
type Observer interface {
	// AMQPConnection is called with true when a transport connection
	// arrives (before its handshake) and with false when it ends.
	AMQPConnection(open bool)
	// AMQPLink is called with attached true when the application accepts
	// a link, and false when that link ends; sender tells whether the
	// peer sends on it.
	AMQPLink(sender, attached bool)
}

// SASL is what the peer said in its sasl-init.
type SASL struct {
	Mechanism       wire.Symbol
	InitialResponse []byte
	Hostname        string
	// TLS is the transport's TLS state when the transport is TLS (for
	// EXTERNAL, the client certificate).
	TLS *tls.ConnectionState
}

// The SASL mechanisms we know. All three succeed at the SASL layer here.
const (
	MechAnonymous = wire.Symbol("ANONYMOUS")
	MechExternal  = wire.Symbol("EXTERNAL")
	MechMSSBCBS   = wire.Symbol("MSSBCBS")
)

func (s *Server) containerID() string { return or(s.ContainerID, "tenantbridge") }
func (s *Server) maxFrameSize() uint32 {
	if s.MaxFrameSize == 0 {
		return 65536
	}
	return max(s.MaxFrameSize, 512)
}
func (s *Server) maxSessions() uint16        { return or(s.MaxSessions, 64) }
func (s *Server) maxLinks() uint32           { return or(s.MaxLinksPerSession, 256) }
func (s *Server) maxConnLinks() int          { return or(s.MaxLinks, 1024) }
func (s *Server) maxMessageSize() uint64     { return or(s.MaxMessageSize, 1<<20) }
func (s *Server) maxUnsettled() int          { return or(s.MaxUnsettled, 5000) }
func (s *Server) idleTimeout() time.Duration { return or(s.IdleTimeout, 60*time.Second) }
func (s *Server) incomingWindow() uint32     { return or(s.IncomingWindow, 2048) }
func (s *Server) handshakeTimeout() time.Duration {
	return or(s.HandshakeTimeout, 30*time.Second)
}
func (s *Server) mechanisms() []wire.Symbol {
	if s.SASLMechanisms != nil {
		return s.SASLMechanisms
	}
	return []wire.Symbol{MechMSSBCBS, MechAnonymous, MechExternal}
}
func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// or returns v, or def when v is the zero value.
func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// errHeader reports a protocol header we do not serve.
var errHeader = errors.New("amqp: unsupported protocol header")

// ServeConn serves one AMQP connection on an established transport (TCP,
// TLS or a WebSocket stream: the caller's) until the peer closes it, it
// fails, or ctx ends (then the peer gets amqp:connection:forced). It
// always closes nc, and returns only when every goroutine it started for
// the connection has ended (the application's Attach and callbacks are
// waited for too, after their context is cancelled).
func (s *Server) ServeConn(ctx context.Context, nc net.Conn) error {
	defer nc.Close()
	if o := s.Observer; o != nil {
		o.AMQPConnection(true)
		defer o.AMQPConnection(false)
	}
	c := &Conn{srv: s, nc: nc, RemoteAddr: nc.RemoteAddr()}
	br := bufio.NewReaderSize(nc, or(s.ReadBufferSize, 4096))

	// The handshake has one deadline for all of it, so that a peer
	// trickling bytes cannot hold a connection open without opening it.
	_ = nc.SetDeadline(time.Now().Add(s.handshakeTimeout()))
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Now()) })
	open, err := s.handshake(ctx, c, br)
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	_ = nc.SetDeadline(time.Time{})
	return c.serve(ctx, br, open)
}

// handshake exchanges the protocol headers, runs SASL when it is
// required, and reads the peer's open.
func (s *Server) handshake(ctx context.Context, c *Conn, br *bufio.Reader) (*wire.Open, error) {
	// A TLS transport finishes its handshake first, so that SASL
	// EXTERNAL and the application see the client certificate and SNI.
	if tc, ok := c.nc.(*tls.Conn); ok {
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("amqp: tls handshake: %w", err)
		}
		st := tc.ConnectionState()
		c.TLS = &st
	}
	hdr, err := wire.ReadProtoHeader(br)
	if err != nil {
		return nil, fmt.Errorf("amqp: reading protocol header: %w", err)
	}
	if !s.NoSASL {
		// We require SASL first. Any other header (AMQP, TLS, garbage)
		// gets ours back and the connection closes (part 2.2).
		if hdr != wire.ProtoSASL {
			_, _ = io.WriteString(c.nc, wire.ProtoSASL)
			return nil, errHeader
		}
		if _, err := io.WriteString(c.nc, wire.ProtoSASL); err != nil {
			return nil, err
		}
		if err := s.sasl(ctx, c, br); err != nil {
			return nil, err
		}
		if hdr, err = wire.ReadProtoHeader(br); err != nil {
			return nil, fmt.Errorf("amqp: reading protocol header: %w", err)
		}
	}
	if hdr != wire.ProtoAMQP {
		_, _ = io.WriteString(c.nc, wire.ProtoAMQP)
		return nil, errHeader
	}
	if _, err := io.WriteString(c.nc, wire.ProtoAMQP); err != nil {
		return nil, err
	}

	// The first frame must be the open. Until it is exchanged the standard
	// limits frames to 512 bytes; we accept up to our own maximum, as some
	// clients send long properties in their open.
	fr, err := readNonEmptyFrame(br, s.maxFrameSize())
	if err != nil {
		return nil, fmt.Errorf("amqp: reading open: %w", err)
	}
	open, ok := fr.Body.(*wire.Open)
	if fr.Type != wire.FrameAMQP || !ok {
		return nil, fmt.Errorf("amqp: first frame is %T, not open", fr.Body)
	}
	return open, nil
}

// readNonEmptyFrame reads the next frame that is not an empty (heartbeat)
// frame.
func readNonEmptyFrame(br *bufio.Reader, maxSize uint32) (wire.Frame, error) {
	for {
		fr, err := wire.ReadFrame(br, maxSize)
		if err != nil || fr.Body != nil {
			return fr, err
		}
	}
}

// sasl runs the SASL layer (part 5.3): we offer our mechanisms, the peer
// picks one in its init, and we answer with the outcome. None of our
// mechanisms needs a challenge.
func (s *Server) sasl(ctx context.Context, c *Conn, br *bufio.Reader) error {
	mechs := s.mechanisms()
	if err := writeFrame(c.nc, wire.Frame{Type: wire.FrameSASL, Body: &wire.SASLMechanisms{Mechanisms: mechs}}); err != nil {
		return err
	}
	fr, err := wire.ReadFrame(br, 512)
	if err != nil {
		return fmt.Errorf("amqp: reading sasl-init: %w", err)
	}
	init, ok := fr.Body.(*wire.SASLInit)
	if fr.Type != wire.FrameSASL || !ok {
		return fmt.Errorf("amqp: expected sasl-init, got %T", fr.Body)
	}
	code := wire.SASLCodeAuth
	for _, m := range mechs {
		if m == init.Mechanism {
			code = wire.SASLCodeOK
		}
	}
	info := SASL{Mechanism: init.Mechanism, InitialResponse: init.InitialResponse, Hostname: init.Hostname, TLS: c.TLS}
	var authErr error
	if code == wire.SASLCodeOK && s.Authenticate != nil {
		c.Identity, authErr = s.Authenticate(ctx, info)
		if authErr != nil {
			code = wire.SASLCodeAuth
		}
	}
	if err := writeFrame(c.nc, wire.Frame{Type: wire.FrameSASL, Body: &wire.SASLOutcome{Code: code}}); err != nil {
		return err
	}
	if code != wire.SASLCodeOK {
		if authErr != nil {
			return fmt.Errorf("amqp: sasl %s refused: %w", init.Mechanism, authErr)
		}
		return fmt.Errorf("amqp: sasl mechanism %q not offered", init.Mechanism)
	}
	c.Mechanism = init.Mechanism
	c.Hostname = init.Hostname
	return nil
}

// writeFrame encodes and writes one frame straight to w (used before the
// connection's loop runs).
func writeFrame(w io.Writer, fr wire.Frame) error {
	b, err := wire.AppendFrame(nil, fr)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}
