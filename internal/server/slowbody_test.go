package server_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/server"
)

// slowBodyRequest declares a 1000-byte form body to the token endpoint and
// sends the first bytes of it.
const slowBodyRequest = "POST /organizations/oauth2/v2.0/token HTTP/1.1\r\nHost: login.microsoftonline.com\r\n" +
	"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type="

// trickle writes one byte every interval until stop is closed or a write
// fails (the server closed the connection).
func trickle(c net.Conn, interval time.Duration, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(interval):
			_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
		}
	}
}

// expectCut reads what the server answers a trickling client: a 408 and
// then the end of the connection, within limit.
func expectCut(c net.Conn, limit time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(limit))
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestTimeout || !res.Close || !strings.Contains(string(body), `"code":"RequestTimeout"`) {
		return errors.New("answer " + res.Status + " " + string(body) + ", want 408 RequestTimeout and Connection: close")
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) && !isReset(err) {
		return errors.New("the connection stayed open after the 408: " + errString(err))
	}
	return nil
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

func errString(err error) string {
	if err == nil {
		return "more bytes"
	}
	return err.Error()
}

// A hundred clients that each declare a body and trickle it a byte a
// second hold no connection past the body deadline: each is answered 408
// and disconnected, and a normal request is served meanwhile. The deadline
// is 2 s; the margin allowed is ten times that (a correctness check, not
// a measure of speed).
func TestSlowBodiesAreCut(t *testing.T) {
	const n = 100
	r := start(t, server.Config{BodyTimeout: 2 * time.Second})
	stop := make(chan struct{})
	defer close(stop)
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := tls.Dial("tcp", r.addr, &tls.Config{RootCAs: r.srv.CA().Pool(), ServerName: "login.microsoftonline.com", NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, slowBodyRequest); err != nil {
			t.Fatal(err)
		}
		go trickle(c, time.Second, stop)
		conns[i] = c
	}

	// The server still serves while they trickle.
	res, err := r.client().Get("https://login.microsoftonline.com/common/discovery/instance?api-version=1.1&authorization_endpoint=" +
		url.QueryEscape("https://login.microsoftonline.com/common/oauth2/v2.0/authorize"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("a normal request while %d clients trickle: %s", n, res.Status)
	}

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, c := range conns {
		wg.Go(func() {
			if err := expectCut(c, 20*time.Second); err != nil {
				errs <- fmt.Errorf("connection %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if failed++; failed <= 3 {
			t.Error(err)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d trickling connections were not cut", failed, n)
	}
}

// Inside a proxy tunnel, which ends in the same handler, a trickling body
// is cut the same way.
func TestSlowBodyInTunnelIsCut(t *testing.T) {
	r := start(t, server.Config{BodyTimeout: 2 * time.Second, ProxyListen: "127.0.0.1:0"})
	proxyURL, err := url.Parse(r.srv.ProxyURL())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.DialTimeout("tcp", proxyURL.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(raw, "CONNECT login.microsoftonline.com:443 HTTP/1.1\r\nHost: login.microsoftonline.com:443\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(raw)
	res, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT: %v %v", res, err)
	}
	_ = raw.SetDeadline(time.Time{})
	c := tls.Client(raw, &tls.Config{RootCAs: r.srv.CA().Pool(), ServerName: "login.microsoftonline.com"})
	if _, err := io.WriteString(c, slowBodyRequest); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go trickle(c, time.Second, stop)
	if err := expectCut(c, 20*time.Second); err != nil {
		t.Fatal(err)
	}
}
