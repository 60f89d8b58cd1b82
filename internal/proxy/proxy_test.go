package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/tenantbridge/tenantbridge/internal/pki"
)

// pkiOnce shares one CA and server certificate between tests: issuing them
// is the slow part and nothing here changes them.
var (
	pkiOnce sync.Once
	pkiCA   *pki.CA
	pkiCert tls.Certificate
	pkiErr  error
)

func testPKI(t *testing.T) (*pki.CA, tls.Certificate) {
	t.Helper()
	pkiOnce.Do(func() {
		dir, err := tempDir()
		if err != nil {
			pkiErr = err
			return
		}
		hosts := pki.Hosts{ListenHosts: []string{"127.0.0.1"}}
		if pkiCA, pkiErr = pki.LoadOrCreateCA(dir, hosts); pkiErr != nil {
			return
		}
		pkiCert, pkiErr = pki.LoadOrCreateServerCert(dir, pkiCA, hosts)
	})
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	return pkiCA, pkiCert
}

// echo is what the test handler answers: what it saw of the request.
type echo struct {
	Host       string `json:"host"`
	Path       string `json:"path"`
	RemoteAddr string `json:"remote"`
	Proto      string `json:"proto"`
	TLS        bool   `json:"tls"`
}

// proxyEnv is a proxy serving for one test, in front of an echo handler.
type proxyEnv struct {
	t        *testing.T
	ca       *pki.CA
	url      *url.URL
	addr     string
	accepted atomic.Int64 // TCP connections the proxy accepted
	handled  atomic.Int64 // requests that reached the handler
	logs     *syncBuffer
	cancel   context.CancelFunc
	done     chan error
	// slow, if set, is waited on by requests for /slow.
	slow chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func startProxy(t *testing.T, tune func(*Proxy)) *proxyEnv {
	t.Helper()
	ca, cert := testPKI(t)
	e := &proxyEnv{t: t, ca: ca, logs: &syncBuffer{}, done: make(chan error, 1), slow: make(chan struct{})}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.handled.Add(1)
		if r.URL.Path == "/slow" {
			<-e.slow
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echo{Host: r.Host, Path: r.URL.Path, RemoteAddr: r.RemoteAddr, Proto: r.Proto, TLS: r.TLS != nil})
	})
	p := New(Config{
		Allowed: ServedHosts(""),
		TLS:     &tls.Config{Certificates: []tls.Certificate{cert}},
		Handler: handler,
		Logger:  slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if tune != nil {
		tune(p)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	e.url = &url.URL{Scheme: "http", Host: e.addr}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() { e.done <- p.Serve(ctx, countingListener{ln, &e.accepted}) }()
	t.Cleanup(func() {
		select {
		case <-e.slow:
		default:
			close(e.slow)
		}
		cancel()
		select {
		case <-e.done:
		case <-time.After(30 * time.Second):
			t.Error("proxy did not stop")
		}
	})
	return e
}

// client returns an http.Client that uses the proxy and trusts only the CA,
// and a counter of the CONNECTs it sent.
func (e *proxyEnv) client() (*http.Client, *atomic.Int64, *atomic.Int64) {
	var connects, lastStatus atomic.Int64
	tr := &http.Transport{
		Proxy:           http.ProxyURL(e.url),
		TLSClientConfig: &tls.Config{RootCAs: e.ca.Pool()},
		// As azcore's default transport does: offer h2 too.
		ForceAttemptHTTP2: true,
		OnProxyConnectResponse: func(_ context.Context, _ *url.URL, _ *http.Request, res *http.Response) error {
			connects.Add(1)
			lastStatus.Store(int64(res.StatusCode))
			return nil
		},
	}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}, &connects, &lastStatus
}

func getEcho(t *testing.T, c *http.Client, req *http.Request) (int, echo, string) {
	t.Helper()
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var got echo
	if res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%s: %v in %q", req.URL, err, body)
		}
	}
	return res.StatusCode, got, string(body)
}

func newRequest(t *testing.T, method, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestTunnelReachesHandler(t *testing.T) {
	e := startProxy(t, nil)
	c, connects, _ := e.client()
	for _, tc := range []struct{ url, host, path string }{
		{"https://login.microsoftonline.com/x", "login.microsoftonline.com", "/x"},
		{"https://graph.microsoft.com/v1.0/applications?$top=1", "graph.microsoft.com", "/v1.0/applications"},
		{"https://management.azure.com/subscriptions", "management.azure.com", "/subscriptions"},
		{"https://myvault.vault.azure.net/secrets/s1", "myvault.vault.azure.net", "/secrets/s1"},
		{"https://ns1.servicebus.windows.net/q/messages", "ns1.servicebus.windows.net", "/q/messages"},
	} {
		req := newRequest(t, http.MethodGet, tc.url)
		var local string
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { local = info.Conn.LocalAddr().String() },
		}))
		status, got, body := getEcho(t, c, req)
		if status != http.StatusOK {
			t.Fatalf("%s: status %d: %s", tc.url, status, body)
		}
		if got.Host != tc.host || got.Path != tc.path || !got.TLS || got.Proto != "HTTP/1.1" {
			t.Errorf("%s: handler saw %+v, want host %s path %s over TLS, HTTP/1.1", tc.url, got, tc.host, tc.path)
		}
		if got.RemoteAddr != local {
			t.Errorf("%s: handler saw RemoteAddr %s, want the proxy client's %s", tc.url, got.RemoteAddr, local)
		}
	}
	if n := connects.Load(); n != 5 {
		t.Errorf("%d CONNECTs for 5 hosts, want 5", n)
	}
}

func TestTunnelIsReused(t *testing.T) {
	e := startProxy(t, nil)
	c, connects, _ := e.client()
	for i := range 5 {
		status, got, body := getEcho(t, c, newRequest(t, http.MethodGet, "https://login.microsoftonline.com/common/discovery/instance?i="+string(rune('0'+i))))
		if status != http.StatusOK || got.Host != "login.microsoftonline.com" {
			t.Fatalf("request %d: %d %+v %s", i, status, got, body)
		}
	}
	if n := connects.Load(); n != 1 {
		t.Errorf("5 requests to one host used %d CONNECTs, want 1", n)
	}
	if n := e.accepted.Load(); n != 1 {
		t.Errorf("5 requests to one host used %d TCP connections, want 1", n)
	}
	// Another host needs, and gets, its own tunnel.
	if status, _, body := getEcho(t, c, newRequest(t, http.MethodGet, "https://graph.microsoft.com/v1.0/me")); status != http.StatusOK {
		t.Fatalf("graph: %d %s", status, body)
	}
	if n := connects.Load(); n != 2 {
		t.Errorf("after a second host: %d CONNECTs, want 2", n)
	}
}

func TestConnectRefused(t *testing.T) {
	e := startProxy(t, nil)
	for _, tc := range []struct {
		url, want string
	}{
		{"https://example.com/x", "CONNECT to example.com:443 refused: " + servedMessage},
		{"https://graph.microsoft.com:80/x", "CONNECT to graph.microsoft.com:80 refused: tenantbridge serves HTTPS on port 443 only"},
		{"https://graph.microsoft.com:8443/x", "CONNECT to graph.microsoft.com:8443 refused"},
		{"https://a.b.vault.azure.net/x", "CONNECT to a.b.vault.azure.net:443 refused"},
		{"https://windows.net/x", "CONNECT to windows.net:443 refused"},
		{"https://sts.windows.net.evil.example/x", "CONNECT to sts.windows.net.evil.example:443 refused"},
	} {
		c, connects, status := e.client()
		res, err := c.Get(tc.url)
		if err == nil {
			res.Body.Close()
			t.Errorf("%s: got %s, want an error", tc.url, res.Status)
			continue
		}
		// What an unmodified Go program prints: the reason phrase.
		if msg := err.Error(); !strings.Contains(msg, "Forbidden") || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: error %q, want Forbidden and %q", tc.url, msg, tc.want)
		}
		if connects.Load() != 1 || status.Load() != http.StatusForbidden {
			t.Errorf("%s: %d CONNECTs, last status %d; want 1 and 403", tc.url, connects.Load(), status.Load())
		}
	}
	if n := e.handled.Load(); n != 0 {
		t.Errorf("%d refused requests reached the handler", n)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "proxy: CONNECT refused") || !strings.Contains(logs, "example.com:443") {
		t.Errorf("refusals not logged:\n%s", logs)
	}
}

// rawConnect sends one CONNECT line on a fresh connection and returns the
// parsed response and the connection (positioned after the header).
func rawConnect(t *testing.T, addr, target string) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	return res, conn, br
}

func TestConnectStatusCodes(t *testing.T) {
	e := startProxy(t, nil)
	for _, tc := range []struct {
		target string
		status int
		body   string
	}{
		{"example.com:443", 403, "tenantbridge proxy: CONNECT to example.com:443 refused: " + servedMessage + "\n"},
		{"graph.microsoft.com:80", 403, "tenantbridge proxy: CONNECT to graph.microsoft.com:80 refused: tenantbridge serves HTTPS on port 443 only\n"},
		{"127.0.0.1:443", 403, ""},
		{"[::1]:443", 403, ""},
		{"graph.microsoft.com", 400, "tenantbridge proxy: malformed CONNECT target 'graph.microsoft.com': " + errAuthority.Error() + "\n"},
		{"graph.microsoft.com:0", 400, ""},
		{"graph.microsoft.com:+443", 400, ""},
		{"graph.microsoft.com:65536", 400, ""},
		{"[graph.microsoft.com]:443", 400, ""},
		{"gr_aph.microsoft.com:443", 400, ""},
		{"/graph.microsoft.com:443", 400, ""},
		{"GRAPH.Microsoft.COM.:443", 200, ""},
	} {
		res, _, br := rawConnect(t, e.addr, tc.target)
		if res.StatusCode != tc.status {
			t.Errorf("CONNECT %s: %s, want %d", tc.target, res.Status, tc.status)
			continue
		}
		if tc.status == 200 {
			if res.Status != "200 Connection Established" {
				t.Errorf("CONNECT %s: status line %q", tc.target, res.Status)
			}
			continue
		}
		if !res.Close {
			t.Errorf("CONNECT %s: refusal keeps the connection open", tc.target)
		}
		body, err := io.ReadAll(io.MultiReader(res.Body, br))
		if err != nil {
			t.Errorf("CONNECT %s: reading body: %v", tc.target, err)
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("CONNECT %s: Content-Type %q", tc.target, ct)
		}
		if tc.body != "" && string(body) != tc.body {
			t.Errorf("CONNECT %s: body %q, want %q", tc.target, body, tc.body)
		}
		// Some malformed targets are refused by net/http before the proxy
		// sees them; those that reach the proxy carry its message in the
		// status line too.
		if want := http.StatusText(tc.status) + " (" + strings.TrimSuffix(string(body), "\n") + ")"; tc.body != "" && !strings.HasSuffix(res.Status, want) {
			t.Errorf("CONNECT %s: status line %q does not carry the message %q", tc.target, res.Status, want)
		}
	}
}

func TestPlainHTTPRefused(t *testing.T) {
	e := startProxy(t, nil)
	c, _, _ := e.client()
	res, err := c.Get("http://graph.microsoft.com/v1.0/me?sig=hunter2")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(string(body), "only HTTPS through CONNECT is supported") || res.Header.Get("Allow") != "CONNECT" {
		t.Errorf("plain GET through the proxy: %s Allow=%q %q", res.Status, res.Header.Get("Allow"), body)
	}
	// A request made to the proxy directly, as if it were a web server.
	res, err = http.Post(e.url.String()+"/token", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("direct POST: %s, want 405", res.Status)
	}
	if e.handled.Load() != 0 {
		t.Error("a non-CONNECT request reached the handler")
	}
	if logs := e.logs.String(); strings.Contains(logs, "hunter2") || strings.Contains(logs, "/v1.0/me") {
		t.Errorf("the log has a path or query string:\n%s", logs)
	}
}

func TestTunnelHostMustMatch(t *testing.T) {
	e := startProxy(t, nil)
	for _, tc := range []struct {
		name, url, host, sni string
		status               int
	}{
		{"other surface", "https://login.microsoftonline.com/x", "graph.microsoft.com", "", 421},
		{"other port", "https://login.microsoftonline.com/x", "login.microsoftonline.com:8443", "", 421},
		{"explicit 443", "https://login.microsoftonline.com/x", "login.microsoftonline.com:443", "", 200},
		{"case and dot", "https://login.microsoftonline.com/x", "LOGIN.MicrosoftOnline.com.", "", 200},
		{"other vault", "https://v1.vault.azure.net/secrets/a", "v2.vault.azure.net", "", 421},
		{"other SNI", "https://login.microsoftonline.com/x", "", "graph.microsoft.com", 421},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, _ := e.client()
			if tc.sni != "" {
				c.Transport.(*http.Transport).TLSClientConfig.ServerName = tc.sni
			}
			before := e.handled.Load()
			req := newRequest(t, http.MethodGet, tc.url)
			req.Host = tc.host
			status, _, body := getEcho(t, c, req)
			if status != tc.status {
				t.Fatalf("Host %q through a tunnel to %s: %d %s, want %d", tc.host, tc.url, status, body, tc.status)
			}
			reached := e.handled.Load() != before
			if reached != (tc.status == 200) {
				t.Errorf("handler reached: %v", reached)
			}
			if status == 421 && !strings.Contains(body, `"code":"MisdirectedRequest"`) {
				t.Errorf("421 body %s", body)
			}
		})
	}
}

func TestTunnelLimit(t *testing.T) {
	e := startProxy(t, func(p *Proxy) { p.maxTunnels = 1 })
	res, first, _ := rawConnect(t, e.addr, "graph.microsoft.com:443")
	if res.StatusCode != 200 {
		t.Fatalf("first CONNECT: %s", res.Status)
	}
	res, _, _ = rawConnect(t, e.addr, "graph.microsoft.com:443")
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("CONNECT beyond the limit: %s Retry-After=%q, want 503 with Retry-After", res.Status, res.Header.Get("Retry-After"))
	}
	// Closing the first tunnel frees its slot (asynchronously: the server
	// has to notice the close).
	first.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, conn, _ := rawConnect(t, e.addr, "graph.microsoft.com:443")
		conn.Close()
		if res.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot never freed: %s", res.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitClosed reads from conn until the server closes it.
func waitClosed(t *testing.T, conn net.Conn, what string) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the proxy did not close the tunnel", what)
	}
}

func TestIdleTunnelsClosed(t *testing.T) {
	e := startProxy(t, func(p *Proxy) {
		p.idleTimeout = 200 * time.Millisecond
		p.readHeaderTimeout = 300 * time.Millisecond
	})

	// A tunnel whose client never starts TLS.
	res, silent, _ := rawConnect(t, e.addr, "graph.microsoft.com:443")
	if res.StatusCode != 200 {
		t.Fatal(res.Status)
	}
	waitClosed(t, silent, "tunnel without a handshake")

	// A tunnel that served a request, then sits idle.
	res, conn, _ := rawConnect(t, e.addr, "graph.microsoft.com:443")
	if res.StatusCode != 200 {
		t.Fatal(res.Status)
	}
	tc := tls.Client(conn, &tls.Config{RootCAs: e.ca.Pool(), ServerName: "graph.microsoft.com"})
	if _, err := io.WriteString(tc, "GET /v1.0/me HTTP/1.1\r\nHost: graph.microsoft.com\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(tc)
	inner, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, inner.Body)
	inner.Body.Close()
	if inner.StatusCode != 200 || inner.Close {
		t.Fatalf("request in the tunnel: %s close=%v", inner.Status, inner.Close)
	}
	waitClosed(t, tc, "idle tunnel")
}

func TestEarlyClientHello(t *testing.T) {
	// A client that sends its TLS ClientHello in the same write as the
	// CONNECT, without waiting for the 200: those bytes reach the proxy
	// buffered behind the request and must not be lost.
	e := startProxy(t, nil)
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	pw := &prefixWriter{Conn: conn, prefix: []byte("CONNECT graph.microsoft.com:443 HTTP/1.1\r\nHost: graph.microsoft.com:443\r\n\r\n")}
	rd := &skipResponse{r: bufio.NewReader(conn)}
	tc := tls.Client(&rwConn{Conn: conn, r: rd, w: pw}, &tls.Config{RootCAs: e.ca.Pool(), ServerName: "graph.microsoft.com"})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake through a pipelined CONNECT: %v", err)
	}
	if _, err := io.WriteString(tc, "GET /early HTTP/1.1\r\nHost: graph.microsoft.com\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.Contains(string(body), `"path":"/early"`) {
		t.Fatalf("%s %s", res.Status, body)
	}
}

// prefixWriter sends prefix together with the first write.
type prefixWriter struct {
	net.Conn
	prefix []byte
}

func (w *prefixWriter) Write(b []byte) (int, error) {
	if w.prefix != nil {
		all := append(w.prefix, b...)
		w.prefix = nil
		if _, err := w.Conn.Write(all); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return w.Conn.Write(b)
}

// skipResponse reads past the proxy's CONNECT response header first.
type skipResponse struct {
	r       *bufio.Reader
	skipped bool
}

func (s *skipResponse) Read(b []byte) (int, error) {
	if !s.skipped {
		res, err := http.ReadResponse(s.r, &http.Request{Method: http.MethodConnect})
		if err != nil {
			return 0, err
		}
		if res.StatusCode != 200 {
			return 0, errors.New("CONNECT: " + res.Status)
		}
		s.skipped = true
	}
	return s.r.Read(b)
}

type rwConn struct {
	net.Conn
	r io.Reader
	w io.Writer
}

func (c *rwConn) Read(b []byte) (int, error)  { return c.r.Read(b) }
func (c *rwConn) Write(b []byte) (int, error) { return c.w.Write(b) }

func TestGracefulShutdown(t *testing.T) {
	e := startProxy(t, nil)
	c, _, _ := e.client()
	// An idle tunnel, and one with a request in flight.
	if status, _, body := getEcho(t, c, newRequest(t, http.MethodGet, "https://graph.microsoft.com/warm")); status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	type result struct {
		status int
		err    error
	}
	slow := make(chan result, 1)
	go func() {
		res, err := c.Get("https://login.microsoftonline.com/slow")
		if err != nil {
			slow <- result{err: err}
			return
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		slow <- result{status: res.StatusCode}
	}()
	for e.handled.Load() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	e.cancel()

	// New tunnels are refused once shutdown has begun.
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", e.addr, time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("the proxy still accepts connections after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-e.done:
		t.Fatalf("Serve returned (%v) while a request was in flight", err)
	case r := <-slow:
		t.Fatalf("the request in flight ended early: %+v", r)
	default:
	}
	close(e.slow)
	if r := <-slow; r.err != nil || r.status != 200 {
		t.Fatalf("request in flight during shutdown: %+v, want 200", r)
	}
	select {
	case err := <-e.done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
		e.done <- nil // for the cleanup
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return after the last request")
	}
}

func TestShutdownTimeout(t *testing.T) {
	e := startProxy(t, func(p *Proxy) { p.shutdownTimeout = 200 * time.Millisecond })
	c, _, _ := e.client()
	errc := make(chan error, 1)
	go func() {
		res, err := c.Get("https://login.microsoftonline.com/slow")
		if err == nil {
			_, err = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		errc <- err
	}()
	for e.handled.Load() < 1 {
		time.Sleep(5 * time.Millisecond)
	}
	e.cancel()
	select {
	case err := <-e.done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Serve after the shutdown timeout: %v, want context.DeadlineExceeded", err)
		}
		e.done <- nil
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not give up on a stuck request")
	}
	if err := <-errc; err == nil {
		t.Error("the stuck request succeeded after its tunnel was closed")
	}
}

func TestServeNeedsConfig(t *testing.T) {
	_, cert := testPKI(t)
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}}
	for name, cfg := range map[string]Config{
		"no Allowed": {TLS: tlsConfig, Handler: http.NotFoundHandler()},
		"no TLS":     {Allowed: ServedHosts(""), Handler: http.NotFoundHandler()},
		"no Handler": {Allowed: ServedHosts(""), TLS: tlsConfig},
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if err := New(cfg).Serve(context.Background(), ln); err == nil {
			t.Errorf("%s: Serve succeeded", name)
		}
		if _, err := ln.Accept(); err == nil {
			t.Errorf("%s: listener left open", name)
		}
	}
}

// TestHTTPSProxyFromEnvironment checks the environment semantics an
// unmodified program relies on (net/http's ProxyFromEnvironment is this
// package, vendored; it caches the environment once per process, so it is
// driven through httpproxy directly): HTTPS_PROXY routes https:// Azure URLs
// into the proxy, and the whole exchange then works with nothing else set.
func TestHTTPSProxyFromEnvironment(t *testing.T) {
	e := startProxy(t, nil)
	t.Setenv("HTTPS_PROXY", e.url.String())
	t.Setenv("https_proxy", e.url.String())
	t.Setenv("HTTP_PROXY", "")
	t.Setenv("http_proxy", "")
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	proxyFor := httpproxy.FromEnvironment().ProxyFunc()
	tr := &http.Transport{
		Proxy:           func(r *http.Request) (*url.URL, error) { return proxyFor(r.URL) },
		TLSClientConfig: &tls.Config{RootCAs: e.ca.Pool()},
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	status, got, body := getEcho(t, c, newRequest(t, http.MethodGet, "https://myvault.vault.azure.net/secrets/s1?api-version=7.5"))
	if status != 200 || got.Host != "myvault.vault.azure.net" || got.Path != "/secrets/s1" {
		t.Fatalf("through HTTPS_PROXY: %d %+v %s", status, got, body)
	}
	if u, _ := proxyFor(&url.URL{Scheme: "http", Host: "graph.microsoft.com"}); u != nil {
		t.Errorf("http:// URL proxied via %v with HTTP_PROXY unset", u)
	}
	if e.accepted.Load() != 1 {
		t.Errorf("%d connections to the proxy, want 1", e.accepted.Load())
	}
}
