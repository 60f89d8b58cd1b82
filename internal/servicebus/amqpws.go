package servicebus

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/coder/websocket"
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

const webSocketPath = "/$servicebus/websocket"

var webSocketSubprotocols = []string{"AMQPWSB10", "amqp"}

// serveWebSocket upgrades the request and serves AMQP on it until the
// connection ends. A request that is no AMQP WebSocket upgrade is answered
// 400 in Service Bus's error format.
func (s *Service) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		WriteError(w, http.StatusBadRequest, "The request to "+webSocketPath+" is not a WebSocket upgrade.")
		return
	}
	offered := false
	for _, p := range webSocketSubprotocols {
		offered = offered || headerHasToken(r.Header, "Sec-WebSocket-Protocol", p)
	}
	if !offered {
		WriteError(w, http.StatusBadRequest, "The WebSocket subprotocol must be AMQPWSB10 or amqp.")
		return
	}
	c, err := websocket.Accept(smallBuffers{w}, r, &websocket.AcceptOptions{Subprotocols: webSocketSubprotocols})
	if err != nil {
		return // Accept has answered
	}
	// Frames are bounded by the AMQP engine; a message no larger than the
	// biggest frame it accepts plus headroom.
	c.SetReadLimit(LargestMessageBytes + 64<<10)
	// The connection is served on a goroutine of its own and the handler
	// returns: net/http lets go of what it kept for the request (the
	// connection's state, its 4 KiB buffers, the request), which a
	// handler serving the connection for its whole life kept, with the
	// deep stack of the handler's frames under the AMQP reader's
	// (docs/benchmarks.md, "Many customers on one node"). The request's
	// context ends when the handler returns, so the connection's is one
	// that does not; nothing cancelled it before either (the server's
	// base context is never cancelled, and a hijacked connection's
	// request is not cancelled when it closes).
	ctx := context.WithoutCancel(r.Context())
	nc := websocket.NetConn(ctx, c, websocket.MessageBinary)
	go func() {
		defer nc.Close()
		_ = s.amqp.ServeConn(ctx, nc)
	}()
}

// The buffers a WebSocket connection reads and writes its TLS connection
// through, for as long as it is open. TLS buffers what it reads itself (a
// record at a time), so the reader needs no more than a frame header's
// worth; the writer's buffer carries a WebSocket frame's header and as
// much of its payload as fits into the same TLS record, and a larger
// payload is written straight after it: 1 KiB holds most of what an AMQP
// connection writes at once (flows, dispositions, a small message).
const (
	webSocketReadBuffer  = 64
	webSocketWriteBuffer = 1 << 10
)

// smallBuffers is the response writer the WebSocket upgrade takes over
// the connection through. net/http hands a hijacked connection over with
// its 4 KiB reader and writer, which the WebSocket connection would keep
// for its whole life: a quarter of the live heap of a server holding a
// fleet's idle connections (docs/benchmarks.md, "Many customers on one
// node"). Hijack hands it over with webSocketReadBuffer and
// webSocketWriteBuffer instead, and lets net/http's go.
type smallBuffers struct {
	http.ResponseWriter
}

// Hijack takes the connection over; the bytes net/http had read ahead
// (a client may send its first frames right after the upgrade request)
// are read first.
func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	var r io.Reader = nc
	if n := brw.Reader.Buffered(); n > 0 {
		ahead, _ := brw.Reader.Peek(n)
		r = io.MultiReader(bytes.NewReader(bytes.Clone(ahead)), nc)
	}
	return nc, bufio.NewReadWriter(bufio.NewReaderSize(r, webSocketReadBuffer), bufio.NewWriterSize(nc, webSocketWriteBuffer)), nil
}

// Unwrap is the response writer underneath (http.ResponseController).
func (w smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

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
