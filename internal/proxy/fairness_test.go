package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// connectFrom sends a CONNECT from the local address ip (any 127.0.0.0/8
// address is loopback on Linux, so each stands for another client).
func connectFrom(t *testing.T, ip, addr, target string) (*http.Response, net.Conn) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot dial from %s (needs the 127.0.0.0/8 loopback): %v", ip, err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("CONNECT %s from %s: %v", target, ip, err)
	}
	return res, conn
}

func TestDefaultPerClientLimit(t *testing.T) {
	if p := New(Config{}); p.maxPerClient != DefaultMaxTunnelsPerClient || p.bodyTimeout != DefaultBodyTimeout {
		t.Fatalf("defaults: %d tunnels per client, body timeout %v", p.maxPerClient, p.bodyTimeout)
	}
	if DefaultMaxTunnelsPerClient >= DefaultMaxTunnels {
		t.Fatal("one client could take every tunnel")
	}
}

// One client holding its limit of tunnels gets 429 for another, while a
// second client still gets in; closing a tunnel gives the first client its
// slot back.
func TestPerClientTunnelLimit(t *testing.T) {
	e := startProxy(t, func(p *Proxy) {
		p.maxTunnels = 10
		p.maxPerClient = 3
	})
	var held []net.Conn
	for i := range 3 {
		res, conn := connectFrom(t, "127.0.0.1", e.addr, "graph.microsoft.com:443")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("CONNECT %d of client A: %s", i+1, res.Status)
		}
		held = append(held, conn)
	}
	res, _ := connectFrom(t, "127.0.0.1", e.addr, "graph.microsoft.com:443")
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" || !res.Close {
		t.Fatalf("CONNECT beyond client A's limit: %s Retry-After=%q close=%v, want 429 with Retry-After, closed", res.Status, res.Header.Get("Retry-After"), res.Close)
	}
	if !strings.Contains(res.Status, "tunnels open, the most one client may") {
		t.Errorf("the status line does not say why: %q", res.Status)
	}
	res, _ = connectFrom(t, "127.0.0.2", e.addr, "login.microsoftonline.com:443")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("client B while client A is at its limit: %s", res.Status)
	}

	held[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, conn := connectFrom(t, "127.0.0.1", e.addr, "graph.microsoft.com:443")
		if res.StatusCode == http.StatusOK {
			break
		}
		conn.Close()
		if res.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("client A after closing a tunnel: %s", res.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A request inside a tunnel whose body trickles in is cut once the body
// deadline passes: the tunnel is closed rather than held by a slow client.
func TestTunnelSlowBodyCut(t *testing.T) {
	e := startProxy(t, func(p *Proxy) {
		p.bodyTimeout = time.Second
		p.readHeaderTimeout = 2 * time.Second
	})
	res, conn, _ := rawConnect(t, e.addr, "graph.microsoft.com:443")
	if res.StatusCode != http.StatusOK {
		t.Fatal(res.Status)
	}
	tc := tls.Client(conn, &tls.Config{RootCAs: e.ca.Pool(), ServerName: "graph.microsoft.com"})
	if _, err := io.WriteString(tc, "POST /v1.0/applications HTTP/1.1\r\nHost: graph.microsoft.com\r\nContent-Length: 1000\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() { // one byte every 300 ms: 5 minutes for the whole body
		for {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
				if _, err := tc.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	waitClosed(t, tc, "tunnel with a trickling body")
}
