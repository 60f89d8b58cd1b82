package proxy

import (
	"net"
	"sync"
)

// tunnelConn is the client's connection after a CONNECT was accepted: the
// TLS stream to terminate. It remembers the origin the tunnel was opened for
// and gives its tunnel slot back when closed. RemoteAddr is the proxy
// client's, so the handler sees the real client.
type tunnelConn struct {
	net.Conn
	host    string
	port    int
	pending []byte // bytes the client sent before our 200; read first

	closeOnce sync.Once
	release   func()
}

func (t *tunnelConn) Read(b []byte) (int, error) {
	if len(t.pending) > 0 {
		n := copy(b, t.pending)
		t.pending = t.pending[n:]
		return n, nil
	}
	return t.Conn.Read(b)
}

func (t *tunnelConn) Close() error {
	err := net.ErrClosed
	t.closeOnce.Do(func() {
		err = t.Conn.Close()
		t.release()
	})
	return err
}

// tunnelListener hands accepted tunnels to the inner http.Server, which
// treats each as an accepted connection: it does the TLS handshake, keeps the
// connection alive between requests, closes it when idle, and drains it on
// Shutdown.
type tunnelListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newTunnelListener(addr net.Addr) *tunnelListener {
	return &tunnelListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// push gives c to the server, or reports false if the listener is closed.
func (l *tunnelListener) push(c net.Conn) bool {
	select {
	case <-l.done:
		return false
	default:
	}
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *tunnelListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *tunnelListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *tunnelListener) Addr() net.Addr { return l.addr }
