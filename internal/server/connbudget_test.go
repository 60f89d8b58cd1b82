package server_test

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/server"
)

// lockedBuffer is a log sink the server writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestConnectionBudget: the server holds at most Config.MaxConnections
// client connections; past them a new connection is closed at once (the
// client's handshake fails, it does not hang in the backlog) and the
// refusal is logged; once a connection ends, its place is free again.
func TestConnectionBudget(t *testing.T) {
	logs := &lockedBuffer{}
	r := start(t, server.Config{MaxConnections: 2, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	dial := func() (*tls.Conn, error) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", r.addr,
			&tls.Config{RootCAs: r.srv.CA().Pool(), ServerName: "management.azure.com", NextProtos: []string{"http/1.1"}})
		return c, err
	}
	var held []*tls.Conn
	for range 2 {
		c, err := dial()
		if err != nil {
			t.Fatalf("a connection within the budget: %v", err)
		}
		held = append(held, c)
	}
	start := time.Now()
	if c, err := dial(); err == nil {
		c.Close()
		t.Fatal("a third connection was served past a budget of 2")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the refused connection took %v to fail", took)
	}
	if !strings.Contains(logs.String(), "maximum of client connections") {
		t.Errorf("the refusal is not logged: %s", logs.String())
	}
	// One ends; the server sees it end and its place is free again.
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := dial()
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection after one ended: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	held[1].Close()
}
