package servicebus

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tenantbridge/tenantbridge/internal/amqp"
	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
)

// wsEchoServer upgrades each request with acceptWebSocket and echoes
// what it reads, a Read's worth per message.
func wsEchoServer(t *testing.T) *httptest.Server {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, ok := acceptWebSocket(w, r)
		if !ok {
			return
		}
		go func() {
			defer nc.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := nc.Read(buf)
				if err != nil {
					return
				}
				if _, err := nc.Write(buf[:n]); err != nil {
					return
				}
			}
		}()
	}))
	t.Cleanup(ts.Close)
	return ts
}

func wsURL(ts *httptest.Server) string {
	return "wss" + strings.TrimPrefix(ts.URL, "https") + webSocketPath
}

// TestWebSocketProtocol: a real WebSocket client (coder/websocket) gets
// its binary messages back, whole or fragmented, with pings answered
// meanwhile; a text message is refused with 1003 and a message over the
// limit with 1009.
func TestWebSocketProtocol(t *testing.T) {
	ts := wsEchoServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dial := func(protos ...string) *websocket.Conn {
		t.Helper()
		c, resp, err := websocket.Dial(ctx, wsURL(ts), &websocket.DialOptions{HTTPClient: ts.Client(), Subprotocols: protos})
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != protos[0] {
			t.Errorf("subprotocol %q, want %q", got, protos[0])
		}
		return c
	}
	c := dial("AMQPWSB10", "amqp")
	c.SetReadLimit(-1)
	read := func(want []byte) {
		t.Helper()
		var got []byte
		for len(got) < len(want) {
			typ, p, err := c.Read(ctx)
			if err != nil || typ != websocket.MessageBinary {
				t.Fatalf("read: %v %v", typ, err)
			}
			got = append(got, p...)
		}
		if string(got) != string(want) {
			t.Fatalf("echo of %d bytes differs", len(want))
		}
	}
	small := []byte("AMQP\x03\x01\x00\x00")
	if err := c.Write(ctx, websocket.MessageBinary, small); err != nil {
		t.Fatal(err)
	}
	read(small)
	// A large message (several TLS records, and a 64-bit length).
	large := make([]byte, 200<<10)
	for i := range large {
		large[i] = byte(i * 7)
	}
	if err := c.Write(ctx, websocket.MessageBinary, large); err != nil {
		t.Fatal(err)
	}
	read(large)
	// A message in three frames.
	mw, err := c.Writer(ctx, websocket.MessageBinary)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{"one ", "two ", "three"} {
		if _, err := mw.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
		if f, ok := mw.(interface{ Flush() error }); ok {
			_ = f.Flush()
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	read([]byte("one two three"))

	// A ping is answered while the connection is read.
	p := dial("amqp")
	p.CloseRead(ctx)
	if err := p.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	p.CloseNow()

	// Text is refused: AMQP rides on binary messages.
	tc := dial("AMQPWSB10")
	if err := tc.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tc.Read(ctx); websocket.CloseStatus(err) != websocket.StatusUnsupportedData {
		t.Errorf("after a text message: %v, want close 1003", err)
	}
	// So is a message over the limit, by its length alone.
	bc := dial("AMQPWSB10")
	big := make([]byte, maxWebSocketMessage+1)
	go func() { _ = bc.Write(ctx, websocket.MessageBinary, big) }()
	if _, _, err := bc.Read(ctx); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Errorf("after a message over the limit: %v, want close 1009", err)
	}
	c.Close(websocket.StatusNormalClosure, "")
}

// TestWebSocketUpgradeRefused: what is no AMQP WebSocket upgrade gets
// Service Bus's error, and the status RFC 6455 gives.
func TestWebSocketUpgradeRefused(t *testing.T) {
	ts := wsEchoServer(t)
	good := http.Header{}
	good.Set("Connection", "Upgrade")
	good.Set("Upgrade", "websocket")
	good.Set("Sec-WebSocket-Version", "13")
	good.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(make([]byte, 16)))
	good.Set("Sec-WebSocket-Protocol", "AMQPWSB10")
	for _, tc := range []struct {
		name   string
		set    map[string]string
		status int
	}{
		{"no upgrade", map[string]string{"Upgrade": ""}, http.StatusBadRequest},
		{"version 8", map[string]string{"Sec-WebSocket-Version": "8"}, http.StatusBadRequest},
		{"short key", map[string]string{"Sec-WebSocket-Key": "c2hvcnQ="}, http.StatusBadRequest},
		{"other subprotocol", map[string]string{"Sec-WebSocket-Protocol": "mqtt"}, http.StatusBadRequest},
		{"foreign origin", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
	} {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+webSocketPath, nil)
		req.Header = good.Clone()
		for k, v := range tc.set {
			req.Header.Set(k, v)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != ErrorContentType {
			t.Errorf("%s: %d %q, want %d in Service Bus's error format", tc.name, resp.StatusCode, resp.Header.Get("Content-Type"), tc.status)
		}
		if tc.name == "version 8" && resp.Header.Get("Sec-WebSocket-Version") != "13" {
			t.Errorf("a refused version is not answered with the one spoken (13)")
		}
	}
}

// idleWebSocketConns is how many idle AMQP connections over WebSockets
// TestWebSocketIdleConnectionStack opens.
const idleWebSocketConns = 32

// An idle AMQP connection over a WebSocket holds one goroutine, its
// reader, parked in a read of the TLS connection; this test counts the
// stack that goroutine keeps once collections have shrunk it. The
// clients are raw TLS connections that hold no goroutine, so that the
// stacks counted are the server's.
func TestWebSocketIdleConnectionStack(t *testing.T) {
	opened := make(chan struct{}, idleWebSocketConns)
	srv := &amqp.Server{Connect: func(context.Context, *amqp.Conn) (amqp.Handler, error) {
		opened <- struct{}{}
		return amqp.HandlerFunc(func(context.Context, *amqp.Link) (*amqp.Accept, error) { return &amqp.Accept{}, nil }), nil
	}}
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, ok := acceptWebSocket(w, r)
		if !ok {
			return
		}
		go func() {
			defer nc.Close()
			_ = srv.ServeConn(context.Background(), nc)
		}()
	}))
	defer ts.Close()
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())

	settle := func() (goroutines int, stack, heap uint64) {
		time.Sleep(50 * time.Millisecond)
		var ms runtime.MemStats
		for range 4 {
			runtime.GC() // parked stacks shrink at collections, halving each time
		}
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.StackInuse, ms.HeapAlloc
	}
	// One connection first, so that what is made once is in the baseline.
	var conns []*tls.Conn
	open := func() {
		t.Helper()
		nc, err := tls.Dial("tcp", ts.Listener.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
		key := base64.StdEncoding.EncodeToString(make([]byte, 16))
		_, err = nc.Write([]byte("GET " + webSocketPath + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Protocol: AMQPWSB10\r\n\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		// SASL ANONYMOUS and the open, each in a masked frame; the
		// server's answers are left unread (the socket buffers them).
		init, _ := wire.AppendFrame(nil, wire.Frame{Type: wire.FrameSASL, Body: &wire.SASLInit{Mechanism: amqp.MechAnonymous}})
		op, _ := wire.AppendFrame(nil, wire.Frame{Type: wire.FrameAMQP, Body: &wire.Open{ContainerID: "idle", MaxFrameSize: 65536}})
		for _, p := range [][]byte{[]byte(wire.ProtoSASL), init, []byte(wire.ProtoAMQP), op} {
			if _, err := nc.Write(clientFrame(p)); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-opened:
		case <-time.After(10 * time.Second):
			t.Fatal("the connection did not open")
		}
	}
	open()
	g0, s0, h0 := settle()
	for range idleWebSocketConns {
		open()
	}
	g1, s1, h1 := settle()
	perConnGoroutines := float64(g1-g0) / idleWebSocketConns
	perConnStack := (int64(s1) - int64(s0)) / idleWebSocketConns
	perConnHeap := (int64(h1) - int64(h0)) / idleWebSocketConns
	t.Logf("%d idle AMQP connections over WebSockets: %.2f goroutines, %d bytes of goroutine stack and %d bytes of live heap per connection (both ends: the client's TLS state too)",
		idleWebSocketConns, perConnGoroutines, perConnStack, perConnHeap)
	if perConnGoroutines > 1.25 {
		t.Errorf("%.2f goroutines per idle connection, want 1, its reader's", perConnGoroutines)
	}
	// The reader parks under crypto/tls's read (about 1.2 KiB of
	// frames) and the engine's and wsConn's: its stack shrinks to 8 KiB,
	// at times 4. Through coder/websocket's reader, half a dozen frames
	// deeper, a fleet's readers kept 12 KiB on average
	// (docs/benchmarks.md, "Many customers on one node").
	if perConnStack > 10<<10 && !raceEnabled {
		t.Errorf("%d bytes of goroutine stack per idle connection, want at most 10 KiB (8 KiB and the spans' slack)", perConnStack)
	}
	for _, c := range conns {
		c.Close()
	}
}

// clientFrame is p in one final binary frame, masked as a client's are.
func clientFrame(p []byte) []byte {
	key := [4]byte{1, 2, 3, 4}
	b := []byte{0x82}
	switch {
	case len(p) < 126:
		b = append(b, 0x80|byte(len(p)))
	default:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
	}
	b = append(b, key[:]...)
	for i, c := range p {
		b = append(b, c^key[i&3])
	}
	return b
}

// requestKey marks a WebSocket upgrade request's context in
// TestWebSocketConnectionKeepsNoRequestContext.
type requestKey struct{}

// TestWebSocketConnectionKeepsNoRequestContext: a connection served over
// a WebSocket is served under a context of its own, which neither ends
// nor carries the upgrade request's values: it does not keep the
// request's context chain for the connection's life.
func TestWebSocketConnectionKeepsNoRequestContext(t *testing.T) {
	seen := make(chan context.Context, 1)
	s := &Service{amqp: &amqp.Server{Connect: func(ctx context.Context, _ *amqp.Conn) (amqp.Handler, error) {
		seen <- ctx
		return amqp.HandlerFunc(func(context.Context, *amqp.Link) (*amqp.Accept, error) { return &amqp.Accept{}, nil }), nil
	}}}
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serveWebSocket(w, r.WithContext(context.WithValue(r.Context(), requestKey{}, "upgrade")))
	}))
	defer ts.Close()
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	nc, err := tls.Dial("tcp", ts.Listener.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	key := base64.StdEncoding.EncodeToString(make([]byte, 16))
	_, err = nc.Write([]byte("GET " + webSocketPath + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Protocol: AMQPWSB10\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := http.ReadResponse(bufio.NewReader(nc), nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	init, _ := wire.AppendFrame(nil, wire.Frame{Type: wire.FrameSASL, Body: &wire.SASLInit{Mechanism: amqp.MechAnonymous}})
	op, _ := wire.AppendFrame(nil, wire.Frame{Type: wire.FrameAMQP, Body: &wire.Open{ContainerID: "ctx", MaxFrameSize: 65536}})
	for _, p := range [][]byte{[]byte(wire.ProtoSASL), init, []byte(wire.ProtoAMQP), op} {
		if _, err := nc.Write(clientFrame(p)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case ctx := <-seen:
		if v := ctx.Value(requestKey{}); v != nil {
			t.Errorf("the connection's context carries the upgrade request's value %v", v)
		}
		if ctx.Done() != nil {
			t.Error("the connection's context can end")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the connection did not open")
	}
}
