package server

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/pki"
)

// longPollEnv is the front door's http.Server and middleware, on real TLS,
// around a handler that reads the whole body and then waits, as a Service
// Bus receive does, for longer than every read timeout the server has.
type longPollEnv struct {
	addr string
	ca   *pki.CA
	wait time.Duration
}

func startLongPoll(t *testing.T) *longPollEnv {
	t.Helper()
	dir := t.TempDir()
	hosts := pki.Hosts{ListenHosts: []string{"127.0.0.1"}}
	ca, err := pki.LoadOrCreateCA(dir, hosts)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.LoadOrCreateServerCert(dir, ca, hosts)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{logger: slog.New(slog.DiscardHandler), bodyTimeout: 500 * time.Millisecond}
	e := &longPollEnv{ca: ca, wait: 3 * time.Second}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.URL.Path != "/noread" { // a receive without a body may never read it
			var err error
			if body, err = io.ReadAll(r.Body); err != nil {
				http.Error(w, "read: "+err.Error(), http.StatusBadRequest)
				return
			}
		}
		select {
		case <-time.After(e.wait):
			_, _ = io.WriteString(w, "waited, body "+string(body))
		case <-r.Context().Done():
			// The client never sees this if the connection was cut; the
			// test sees an error or this text, both failures.
			http.Error(w, "request context cancelled while waiting", http.StatusServiceUnavailable)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	hs := s.httpServer(ctx, s.middleware(handler), &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	// Short header and whole-request timeouts too, so that the wait
	// outlasts every one of them.
	hs.ReadHeaderTimeout = 500 * time.Millisecond
	hs.ReadTimeout = hs.ReadHeaderTimeout + s.bodyTimeout
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	go func() { _ = hs.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		cancel()
		_ = hs.Close()
	})
	return e
}

// A long poll is not cut by the body deadline or the server's read
// timeouts: not without a body, not after a body that was read whole
// (with a length or chunked), on HTTP/1.1 and HTTP/2. The wait is six
// times the body deadline; nothing here measures speed.
func TestLongPollOutlivesBodyDeadline(t *testing.T) {
	e := startLongPoll(t)
	var wg sync.WaitGroup
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.ca.Pool()}, ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		for _, tc := range []struct {
			name string
			req  func() *http.Request
			want string
		}{
			{"no body", func() *http.Request {
				r, _ := http.NewRequest(http.MethodPost, "https://"+e.addr+"/q/messages/head", nil)
				return r
			}, "waited, body "},
			{"no body, never read", func() *http.Request {
				r, _ := http.NewRequest(http.MethodDelete, "https://"+e.addr+"/noread", nil)
				return r
			}, "waited, body "},
			{"sized body", func() *http.Request {
				r, _ := http.NewRequest(http.MethodPost, "https://"+e.addr+"/q/messages/head", strings.NewReader("hello"))
				return r
			}, "waited, body hello"},
			{"chunked body", func() *http.Request {
				r, _ := http.NewRequest(http.MethodPost, "https://"+e.addr+"/q/messages/head", io.MultiReader(strings.NewReader("hel"), strings.NewReader("lo")))
				r.ContentLength = -1
				return r
			}, "waited, body hello"},
		} {
			wg.Go(func() {
				res, err := c.Do(tc.req())
				if err != nil {
					t.Errorf("%s (h2=%v): %v", tc.name, h2, err)
					return
				}
				defer res.Body.Close()
				body, err := io.ReadAll(res.Body)
				if err != nil || res.StatusCode != http.StatusOK || string(body) != tc.want {
					t.Errorf("%s (h2=%v): %d %q %v, want 200 %q", tc.name, h2, res.StatusCode, body, err, tc.want)
				}
				if h2 != (res.ProtoMajor == 2) {
					t.Errorf("%s: served over %s", tc.name, res.Proto)
				}
			})
		}
	}
	wg.Wait()
}

// Over HTTP/2, where the deadline is the stream's, a body that stops
// coming is answered 408 too, and the connection's other streams go on.
func TestSlowBodyHTTP2(t *testing.T) {
	e := startLongPoll(t)
	e.wait = 0
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.ca.Pool()}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte("first bytes, then nothing")) }()
	req, _ := http.NewRequest(http.MethodPost, "https://"+e.addr+"/slow", pr)
	req.ContentLength = 1000
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestTimeout || res.ProtoMajor != 2 || !strings.Contains(string(body), `"code":"RequestTimeout"`) {
		t.Fatalf("stalled body over %s: %d %s, want 408 RequestTimeout", res.Proto, res.StatusCode, body)
	}
	res, err = c.Post("https://"+e.addr+"/after", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || string(body) != "waited, body x" {
		t.Fatalf("next request: %d %q", res.StatusCode, body)
	}
}
