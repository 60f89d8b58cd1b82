package servicebus

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// AMQP over WebSockets: what the SDKs use on port 443 and through an
// HTTPS proxy ("AMQP WebSockets Binding", subprotocol AMQPWSB10, at
// wss://{namespace}.servicebus.windows.net/$servicebus/websocket; the Go
// SDK's ClientOptions.NewWebSocketConn, the JavaScript SDK's
// webSocketOptions). Each binary WebSocket message carries AMQP bytes; the
// connection is then served like an AMQPS one.
//
// The subprotocol is AMQPWSB10 (what the JavaScript, .NET and Python SDKs
// send) or amqp (what azservicebus's own WebSocket example dials with,
// example_websockets_and_proxies_test.go); the one the client offered is
// echoed, AMQPWSB10 first when it offers both.
//
// The WebSocket protocol (RFC 6455) is served here, server side only and
// only what the binding needs: binary messages, fragmented or not, pings
// answered, the close handshake, no extensions. A general WebSocket
// library (coder/websocket before) kept, per connection, its reader's
// and writer's state, locks made of channels, timers and contexts for
// deadlines, and read every frame through half a dozen calls of its own,
// under which each idle connection's reading goroutine parked: two
// connections per customer of a fleet, most of them idle
// (docs/benchmarks.md, "Many customers on one node"). wsConn keeps a few
// words, passes deadlines to the TLS connection, and reads frames one
// call below the AMQP reader.

const webSocketPath = "/$servicebus/websocket"

var webSocketSubprotocols = []string{"AMQPWSB10", "amqp"}

// webSocketGUID is what the server appends to the client's key to prove
// it speaks WebSocket (RFC 6455, section 1.3).
const webSocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// maxWebSocketMessage bounds one WebSocket message the client sends:
// frames are bounded by the AMQP engine, and a message is no larger than
// the biggest frame it accepts plus headroom. A larger one closes the
// connection with 1009 (message too big).
const maxWebSocketMessage = LargestMessageBytes + 64<<10

// serveWebSocket upgrades the request and serves AMQP on it until the
// connection ends. A request that is no AMQP WebSocket upgrade is answered
// in Service Bus's error format.
//
// The connection is served on a goroutine of its own and the handler
// returns: net/http lets go of what it kept for the request (the
// connection's state, its 4 KiB buffers, the request), which a handler
// serving the connection for its whole life kept, with the deep stack of
// the handler's frames under the AMQP reader's. The request's context
// ends when the handler returns, so the connection's is one that does
// not; nothing cancelled it before either (the server's base context is
// never cancelled, and a hijacked connection's request is not cancelled
// when it closes). Nor does the connection keep the request's context
// for its values: a context without cancel (context.WithoutCancel)
// kept the request's whole chain (net/http's, the front door's request
// information and note, about 650 bytes a connection: docs/benchmarks.md,
// "Many customers on one node"), of which the AMQP side reads nothing
// (its links' contexts carry no values, and its spans start from them).
func (s *Service) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	nc, ok := acceptWebSocket(w, r)
	if !ok {
		return
	}
	go func() {
		defer nc.Close()
		_ = s.amqp.ServeConn(context.Background(), nc)
	}()
}

// acceptWebSocket checks an AMQP WebSocket upgrade request, answers it
// (101 Switching Protocols) and takes the connection over. A request it
// refuses is answered with the reason, and ok is false.
func acceptWebSocket(w http.ResponseWriter, r *http.Request) (nc net.Conn, ok bool) {
	refuse := func(status int, detail string) (net.Conn, bool) {
		WriteError(w, status, detail)
		return nil, false
	}
	if r.Method != http.MethodGet || !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		return refuse(http.StatusBadRequest, "The request to "+webSocketPath+" is not a WebSocket upgrade.")
	}
	if r.ProtoMajor != 1 {
		return refuse(http.StatusBadRequest, "A WebSocket upgrade needs HTTP/1.1.")
	}
	proto := ""
	for _, p := range webSocketSubprotocols {
		if proto == "" && headerHasToken(r.Header, "Sec-WebSocket-Protocol", p) {
			proto = p
		}
	}
	if proto == "" {
		return refuse(http.StatusBadRequest, "The WebSocket subprotocol must be AMQPWSB10 or amqp.")
	}
	if v := r.Header.Get("Sec-WebSocket-Version"); v != "13" {
		// RFC 6455, section 4.4: the versions we speak, in the answer.
		w.Header().Set("Sec-WebSocket-Version", "13")
		return refuse(http.StatusBadRequest, "The WebSocket version must be 13.")
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	if k, err := base64.StdEncoding.DecodeString(key); err != nil || len(k) != 16 {
		return refuse(http.StatusBadRequest, "The Sec-WebSocket-Key header must be 16 bytes in base64.")
	}
	// A browser's page may open a WebSocket to any host: one from another
	// origin is refused, as coder/websocket's Accept did (RFC 6455,
	// section 10.2). Clients outside browsers send no Origin.
	if origin := r.Header.Get("Origin"); origin != "" {
		if u, err := url.Parse(origin); err != nil || !strings.EqualFold(u.Host, r.Host) {
			return refuse(http.StatusForbidden, fmt.Sprintf("The WebSocket's Origin %q is not this host.", clip(origin, 200)))
		}
	}
	raw, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return refuse(http.StatusInternalServerError, "The connection cannot be taken over for a WebSocket.")
	}
	// A client may send its first frames right after the request: what
	// net/http read ahead is read first; its buffers are let go.
	var ahead []byte
	if n := brw.Reader.Buffered(); n > 0 {
		p, _ := brw.Reader.Peek(n)
		ahead = bytes.Clone(p)
	}
	sum := sha1.Sum([]byte(key + webSocketGUID))
	answer := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n" +
		"Sec-WebSocket-Protocol: " + proto + "\r\n\r\n"
	// net/http may have left its own deadlines on the connection; the
	// answer gets one, then the AMQP engine sets its own.
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(raw, answer); err != nil {
		_ = raw.Close()
		return nil, false
	}
	_ = raw.SetDeadline(time.Time{})
	return &wsConn{nc: raw, ahead: ahead}, true
}

// WebSocket opcodes (RFC 6455, section 5.2).
const (
	wsContinuation = 0x0
	wsText         = 0x1
	wsBinary       = 0x2
	wsClose        = 0x8
	wsPing         = 0x9
	wsPong         = 0xa
)

// WebSocket close codes (RFC 6455, section 7.4.1).
const (
	wsNormalClosure   = 1000
	wsProtocolError   = 1002
	wsUnsupportedData = 1003
	wsMessageTooBig   = 1009
)

// wsConn is an AMQP connection's WebSocket, server side: Read returns the
// payload of the client's binary messages, Write sends each call's bytes
// as one binary message. Read is called by one goroutine at a time (the
// AMQP reader), Write and Close by any; a ping is answered from Read.
type wsConn struct {
	nc    net.Conn // the TLS connection (or TCP) the upgrade came over
	ahead []byte   // what net/http read ahead of the upgrade, read first

	// The reader's state.
	hdr       [8]byte // a frame header's first bytes, then its extended length
	hn        int     // bytes of the next frame's first two in hdr
	mask      [4]byte // the current frame's masking key
	maskPos   uint64  // where in the payload the next byte is, for the key
	remaining uint64  // bytes of the current data frame not read yet
	message   uint64  // bytes of the current message read so far
	inMessage bool    // the current message goes on in a later frame
	readErr   error   // what ended reading

	wmu       sync.Mutex
	closeSent bool
}

// wsWriteBuffers hold a frame's header and payload for one write while a
// Write is under way, so that a message goes out in one TLS record; an
// idle connection holds none.
var wsWriteBuffers = sync.Pool{New: func() any { b := make([]byte, 0, wsCoalesce+10); return &b }}

// wsCoalesce is the largest payload written together with its header
// (one TLS record's worth); a larger one follows its header in a write of
// its own.
const wsCoalesce = 16<<10 - 10

func (c *wsConn) Read(p []byte) (int, error) {
	for c.remaining == 0 {
		if c.readErr != nil {
			return 0, c.readErr
		}
		// The first two bytes of the next frame are read here, in Read's
		// own small frame, and the rest of the header in nextFrame: an
		// idle connection's reader parks in this read, and a collection
		// shrinks a parked goroutine's stack only while it uses less than
		// a quarter of it. Under nextFrame's frames and the engine's, the
		// stack stayed at 8 KiB; here it shrinks to 4 KiB, as an AMQPS
		// connection's does (TestWebSocketIdleConnectionStack).
		if c.hn < 2 {
			var n int
			var err error
			if len(c.ahead) == 0 {
				n, err = c.nc.Read(c.hdr[c.hn:2])
			} else {
				n, err = c.src(c.hdr[c.hn:2])
			}
			c.hn += n
			if err != nil {
				if c.hn > 0 {
					err = unexpected(err)
				}
				c.readErr = err
			}
			continue
		}
		c.hn = 0
		if err := c.nextFrame(); err != nil {
			c.readErr = err
		}
	}
	if uint64(len(p)) > c.remaining {
		p = p[:c.remaining]
	}
	n, err := c.src(p)
	c.unmask(p[:n])
	c.remaining -= uint64(n)
	if err != nil {
		c.readErr = unexpected(err) // in the middle of a frame
	}
	return n, err
}

// nextFrame reads the rest of a frame's header, whose first two bytes
// are in c.hdr: a data frame's payload is what Read returns next; a
// control frame is handled here, whole.
func (c *wsConn) nextFrame() error {
	b0, b1 := c.hdr[0], c.hdr[1]
	fin, op := b0&0x80 != 0, b0&0x0f
	if b0&0x70 != 0 {
		return c.fail(wsProtocolError, "a frame with reserved bits set (no extension was agreed)")
	}
	if b1&0x80 == 0 {
		// RFC 6455, section 5.1: a client masks every frame.
		return c.fail(wsProtocolError, "an unmasked frame from the client")
	}
	n := uint64(b1 & 0x7f)
	switch n {
	case 126:
		if err := c.readFull(c.hdr[:2]); err != nil {
			return unexpected(err)
		}
		n = uint64(binary.BigEndian.Uint16(c.hdr[:2]))
	case 127:
		if err := c.readFull(c.hdr[:8]); err != nil {
			return unexpected(err)
		}
		n = binary.BigEndian.Uint64(c.hdr[:8])
	}
	if err := c.readFull(c.mask[:]); err != nil {
		return unexpected(err)
	}
	c.maskPos = 0
	switch op {
	case wsBinary, wsContinuation:
		if (op == wsContinuation) != c.inMessage {
			return c.fail(wsProtocolError, "a continuation frame outside a message, or a new message inside one")
		}
		if op == wsBinary {
			c.message = 0
		}
		if c.message += n; c.message > maxWebSocketMessage || c.message < n {
			return c.fail(wsMessageTooBig, fmt.Sprintf("a message over %d bytes", maxWebSocketMessage))
		}
		c.inMessage = !fin
		c.remaining = n
		return nil
	case wsText:
		return c.fail(wsUnsupportedData, "a text message: AMQP over WebSockets sends binary messages")
	case wsClose, wsPing, wsPong:
		if !fin || n > 125 {
			return c.fail(wsProtocolError, "a control frame fragmented or over 125 bytes")
		}
		return c.control(op, int(n))
	default:
		return c.fail(wsProtocolError, fmt.Sprintf("opcode %#x", op))
	}
}

// control reads and handles a control frame's payload of n bytes.
func (c *wsConn) control(op byte, n int) error {
	payload := make([]byte, n)
	if err := c.readFull(payload); err != nil {
		return unexpected(err)
	}
	c.unmask(payload)
	switch op {
	case wsPing:
		c.wmu.Lock()
		defer c.wmu.Unlock()
		if !c.closeSent {
			return c.writeFrameLocked(wsPong, payload)
		}
	case wsClose:
		// The client's close: ours echoes its code (RFC 6455, section
		// 5.5.1), and the stream ends.
		code := uint16(wsNormalClosure)
		if len(payload) >= 2 {
			code = binary.BigEndian.Uint16(payload)
		}
		c.sendClose(code)
		return io.EOF
	}
	return nil
}

// unexpected is a read error in the middle of a frame.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// fail sends a close with code and returns the error reading ends with.
func (c *wsConn) fail(code uint16, reason string) error {
	c.sendClose(code)
	return fmt.Errorf("websocket: %s", reason)
}

// src reads what net/http read ahead, then the connection.
func (c *wsConn) src(p []byte) (int, error) {
	if len(c.ahead) > 0 {
		n := copy(p, c.ahead)
		if c.ahead = c.ahead[n:]; len(c.ahead) == 0 {
			c.ahead = nil
		}
		return n, nil
	}
	return c.nc.Read(p)
}

func (c *wsConn) readFull(p []byte) error {
	for len(p) > 0 {
		n, err := c.src(p)
		p = p[n:]
		if err != nil && (len(p) > 0 || !errors.Is(err, io.EOF)) {
			return err
		}
	}
	return nil
}

// unmask applies the client's masking key to b, the next bytes of the
// current frame (RFC 6455, section 5.3).
func (c *wsConn) unmask(b []byte) {
	for i := range b {
		b[i] ^= c.mask[(c.maskPos+uint64(i))&3]
	}
	c.maskPos += uint64(len(b))
}

// Write sends p as one binary message.
func (c *wsConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return 0, net.ErrClosed
	}
	if err := c.writeFrameLocked(wsBinary, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeFrameLocked writes one final frame, unmasked (a server's); c.wmu
// is held.
func (c *wsConn) writeFrameLocked(op byte, p []byte) error {
	var h [10]byte
	h[0] = 0x80 | op
	hn := 2
	switch {
	case len(p) < 126:
		h[1] = byte(len(p))
	case len(p) <= 0xffff:
		h[1] = 126
		binary.BigEndian.PutUint16(h[2:], uint16(len(p)))
		hn = 4
	default:
		h[1] = 127
		binary.BigEndian.PutUint64(h[2:], uint64(len(p)))
		hn = 10
	}
	if len(p) > wsCoalesce {
		if _, err := c.nc.Write(h[:hn]); err != nil {
			return err
		}
		_, err := c.nc.Write(p)
		return err
	}
	bp := wsWriteBuffers.Get().(*[]byte)
	b := append(append((*bp)[:0], h[:hn]...), p...)
	_, err := c.nc.Write(b)
	*bp = b[:0]
	wsWriteBuffers.Put(bp)
	return err
}

// sendClose sends our close frame once, with code.
func (c *wsConn) sendClose(code uint16) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return
	}
	c.closeSent = true
	_ = c.writeFrameLocked(wsClose, binary.BigEndian.AppendUint16(nil, code))
}

// Close sends our close (normal closure), unless one went already, and
// closes the connection.
func (c *wsConn) Close() error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.sendClose(wsNormalClosure)
	return c.nc.Close()
}

func (c *wsConn) LocalAddr() net.Addr                { return c.nc.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr               { return c.nc.RemoteAddr() }
func (c *wsConn) SetDeadline(t time.Time) error      { return c.nc.SetDeadline(t) }
func (c *wsConn) SetReadDeadline(t time.Time) error  { return c.nc.SetReadDeadline(t) }
func (c *wsConn) SetWriteDeadline(t time.Time) error { return c.nc.SetWriteDeadline(t) }

// headerHasToken reports whether a comma-separated header holds token,
// without regard to case.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
