package amqp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	goamqp "github.com/Azure/go-amqp"

	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
)

// testServer runs srv on a loopback listener (TLS when cfg is not nil)
// until the test ends, then cancels every connection and waits for each
// ServeConn to return.
type testServer struct {
	addr   string
	errs   chan error // what ServeConn returned, per connection
	cancel context.CancelFunc
}

func startServer(t testing.TB, srv *Server, cfg *tls.Config) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{addr: ln.Addr().String(), errs: make(chan error, 1000), cancel: cancel}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := srv.ServeConn(ctx, nc)
				select {
				case ts.errs <- err:
				default:
				}
			}()
		}
	}()
	t.Cleanup(func() {
		cancel()
		ln.Close()
		wg.Wait()
	})
	return ts
}

// dial connects the real go-amqp client with SASL ANONYMOUS.
func dial(t testing.TB, ts *testServer, opts *goamqp.ConnOptions) *goamqp.Conn {
	t.Helper()
	if opts == nil {
		opts = &goamqp.ConnOptions{}
	}
	if opts.SASLType == nil {
		opts.SASLType = goamqp.SASLTypeAnonymous()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	scheme := "amqp://"
	if opts.TLSConfig != nil {
		scheme = "amqps://"
	}
	c, err := goamqp.Dial(ctx, scheme+ts.addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func openSession(t testing.TB, c *goamqp.Conn) *goamqp.Session {
	t.Helper()
	s, err := c.NewSession(ctxT(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ctxT is a context for one step of a test.
func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// queueApp is an in-test broker: peers send to the target "q" and
// receive from the source "q". It records what happens so that tests can
// look.
type queueApp struct {
	msgs         chan []byte      // the queue
	redo         chan []byte      // taken from the queue but not sent
	dispositions chan Disposition // outcomes the receivers gave
	links        chan *Link       // every link attached
	settled      bool             // send to receivers settled
	credit       uint32
	manualDrain  bool
	refuse       *wire.Error   // refuse every attach with it
	hold         chan struct{} // OnDelivery waits for it to close
}

func newQueueApp() *queueApp {
	return &queueApp{
		msgs:         make(chan []byte, 10000),
		redo:         make(chan []byte, 100),
		dispositions: make(chan Disposition, 10000),
		links:        make(chan *Link, 10000),
	}
}

func (a *queueApp) server() *Server {
	return &Server{Connect: func(context.Context, *Conn) (Handler, error) { return a, nil }}
}

func (a *queueApp) Attach(ctx context.Context, l *Link) (*Accept, error) {
	if a.refuse != nil {
		return nil, a.refuse
	}
	select {
	case a.links <- l:
	default:
	}
	if l.PeerSends() {
		hold := a.hold
		return &Accept{
			Credit: a.credit,
			OnDelivery: func(ctx context.Context, d *Delivery) wire.DeliveryState {
				if hold != nil {
					select {
					case <-hold:
					case <-ctx.Done():
					}
				}
				a.msgs <- d.Payload
				return &wire.Accepted{}
			},
		}, nil
	}
	// We send: one goroutine per link feeds it from the queue while it
	// has credit.
	go func() {
		for {
			var p []byte
			select {
			case <-l.Done():
				return
			case p = <-a.redo:
			default:
				select {
				case <-l.Done():
					return
				case p = <-a.redo:
				case p = <-a.msgs:
				}
			}
			if _, err := l.Send(l.Context(), nil, 0, p, a.settled); err != nil {
				a.redo <- p // not sent: the next receiver gets it first
				return
			}
		}
	}()
	return &Accept{
		OnDisposition: func(d Disposition) wire.DeliveryState { a.dispositions <- d; return nil },
		ManualDrain:   a.manualDrain,
	}, nil
}

// waitGoroutines waits until the goroutine count is back to n (or fails
// after a few seconds).
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := runtime.NumGoroutine()
		if got <= n {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want %d:\n%s", got, n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testTLS returns a server config with a fresh self-signed certificate
// for 127.0.0.1 and ns1.servicebus.windows.net, and a client config
// trusting it.
func testTLS(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "amqp test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"ns1.servicebus.windows.net"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	return server, client
}
