// Package proxy lets unmodified Azure SDK programs reach tenantbridge under
// Azure's real host names without any change to DNS. Such a program, run with
// HTTPS_PROXY=http://127.0.0.1:PORT and a certificate bundle that includes
// tenantbridge's CA (SSL_CERT_FILE), asks this proxy to
// `CONNECT login.microsoftonline.com:443`; instead of dialling Microsoft, the
// proxy answers the tunnel itself: it terminates TLS with tenantbridge's
// certificate and hands each request inside to the front door's handler,
// exactly as if the client had connected to the front door directly.
//
// Nothing is ever forwarded anywhere: a name tenantbridge does not serve is
// refused, so the proxy cannot be used to reach the internet, and a tunnel
// opened for one name cannot carry requests for another.
package proxy

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Config is what a Proxy needs. Allowed, TLS and Handler are required: a
// proxy missing one of them refuses to serve rather than guess.
type Config struct {
	// Allowed reports whether tenantbridge serves host (lower-case, no
	// port). Only those may be tunnelled. ServedHosts builds one.
	Allowed func(host string) bool
	// TLS is the server TLS config (certificate from the local CA) used to
	// terminate each tunnel. The proxy uses a copy that offers HTTP/1.1 only.
	TLS *tls.Config
	// Handler serves the requests that arrive inside a tunnel (the front
	// door's handler).
	Handler http.Handler
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
	// BodyTimeout is how long a request inside a tunnel may take to send
	// its body (after its headers); zero means DefaultBodyTimeout. The
	// front door's handler sets the same deadline per request; this one
	// is the inner server's backstop, as ReadTimeout is the front door's.
	BodyTimeout time.Duration
	// MaxTunnelsPerClient caps the tunnels one client address may hold
	// open at once; zero means DefaultMaxTunnelsPerClient.
	MaxTunnelsPerClient int
}

// Limits, the same as the front door's where both have one.
const (
	// DefaultMaxTunnels caps the tunnels open at once; a CONNECT beyond it
	// is answered 503.
	DefaultMaxTunnels = 1024
	// DefaultMaxTunnelsPerClient caps the tunnels one client (one source
	// IP address) may hold open at once, so that a single program cannot
	// take every tunnel and leave the others with 503; a CONNECT beyond it
	// is answered 429. An SDK client needs one tunnel per host name and a
	// few more under concurrency (Go's transport opens one connection per
	// request in flight): 64 is far above that, and 16 clients can still
	// use the whole pool.
	DefaultMaxTunnelsPerClient = 64
	// DefaultBodyTimeout is the front door's body deadline (see
	// server.DefaultBodyTimeout).
	DefaultBodyTimeout = 30 * time.Second

	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	shutdownTimeout   = 15 * time.Second
)

// httpsPort is the only port a tunnel may name. The port in a CONNECT is
// the port the client believes it is dialling on the real service, not one
// the proxy dials: the tunnel ends here, in-process, so tenantbridge's own
// listen port (8443, or whatever :0 picked) plays no part. Every Azure
// endpoint tenantbridge imitates is https on 443 and the SDKs never name
// another port. Accepting, say, graph.microsoft.com:8443 would let a client
// believe it reached an origin that does not exist in Azure, and would make
// the "one tunnel, one origin" check below meaningless.
const httpsPort = 443

// servedMessage lists what may be tunnelled, for the 403 a refused CONNECT
// gets.
const servedMessage = "tenantbridge serves only login.microsoftonline.com, graph.microsoft.com, management.azure.com, *.vault.azure.net, *.servicebus.windows.net (and its custom domain)"

// Proxy is an HTTPS_PROXY endpoint whose tunnels end in tenantbridge.
type Proxy struct {
	cfg       Config
	logger    *slog.Logger
	tlsConfig *tls.Config

	// Settable by tests in this package.
	maxTunnels        int
	maxPerClient      int
	readHeaderTimeout time.Duration
	bodyTimeout       time.Duration
	idleTimeout       time.Duration
	shutdownTimeout   time.Duration

	once  sync.Once
	slots chan struct{} // one token per open tunnel

	mu       sync.Mutex
	byClient map[string]int // open tunnels per client IP; no entry at zero
}

// New returns a proxy for cfg. It does not listen; see Serve.
func New(cfg Config) *Proxy {
	p := &Proxy{
		cfg:               cfg,
		logger:            cfg.Logger,
		maxTunnels:        DefaultMaxTunnels,
		maxPerClient:      cfg.MaxTunnelsPerClient,
		readHeaderTimeout: readHeaderTimeout,
		bodyTimeout:       cfg.BodyTimeout,
		idleTimeout:       idleTimeout,
		shutdownTimeout:   shutdownTimeout,
		byClient:          map[string]int{},
	}
	if p.maxPerClient <= 0 {
		p.maxPerClient = DefaultMaxTunnelsPerClient
	}
	if p.bodyTimeout <= 0 {
		p.bodyTimeout = DefaultBodyTimeout
	}
	if p.logger == nil {
		p.logger = slog.Default()
	}
	if cfg.TLS != nil {
		c := cfg.TLS.Clone()
		// HTTP/1.1 only: with HTTP/2 a client may coalesce requests for
		// several names the certificate covers onto one connection, which
		// the one-tunnel-one-origin rule would then have to refuse.
		c.NextProtos = []string{"http/1.1"}
		if c.MinVersion < tls.VersionTLS12 {
			c.MinVersion = tls.VersionTLS12
		}
		p.tlsConfig = c
	}
	return p
}

// Serve accepts proxy connections on ln (plain HTTP, as in
// HTTPS_PROXY=http://...) until ctx is done, then shuts down gracefully: it
// stops accepting, lets requests in flight inside tunnels finish (up to 15
// seconds), and closes every connection. It closes ln. It returns nil after a
// clean shutdown; a Proxy serves once.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	if p.cfg.Allowed == nil || p.tlsConfig == nil || p.cfg.Handler == nil {
		ln.Close()
		return errors.New("proxy: Config needs Allowed, TLS and Handler")
	}
	first := false
	p.once.Do(func() { first = true })
	if !first {
		ln.Close()
		return errors.New("proxy: Serve called twice")
	}
	p.slots = make(chan struct{}, p.maxTunnels)

	base := func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	errorLog := slog.NewLogLogger(p.logger.Handler(), slog.LevelWarn)
	tunnels := newTunnelListener(ln.Addr())

	// inner serves the requests inside every tunnel. One server for all
	// tunnels, fed by tunnels, so that its Shutdown drains them all. Its
	// timeouts are the front door's: ReadTimeout bounds headers and body
	// (net/http clears it once the body is in, so long polls run on), and
	// there is no WriteTimeout, which would cut them.
	inner := &http.Server{
		Handler:           p.sameOrigin(p.cfg.Handler),
		ReadHeaderTimeout: p.readHeaderTimeout, // also bounds the TLS handshake
		ReadTimeout:       p.readHeaderTimeout + p.bodyTimeout,
		IdleTimeout:       p.idleTimeout, // closes idle tunnels
		MaxHeaderBytes:    maxHeaderBytes,
		// A non-nil, empty map turns HTTP/2 off.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:     errorLog,
		BaseContext:  base,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(*tls.Conn); ok {
				if t, ok := tc.NetConn().(*tunnelConn); ok {
					return context.WithValue(ctx, tunnelKey{}, t)
				}
			}
			return ctx
		},
	}
	// outer speaks the proxy protocol: CONNECT, and a 405 for anything else.
	outer := &http.Server{
		Handler:                      http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serveProxy(w, r, tunnels) }),
		ReadHeaderTimeout:            p.readHeaderTimeout,
		IdleTimeout:                  p.idleTimeout,
		MaxHeaderBytes:               maxHeaderBytes,
		DisableGeneralOptionsHandler: true, // OPTIONS * gets the 405 too
		ErrorLog:                     errorLog,
		BaseContext:                  base,
	}

	innerErr := make(chan error, 1)
	outerErr := make(chan error, 1)
	go func() { innerErr <- inner.Serve(tunnels) }()
	go func() { outerErr <- outer.Serve(ln) }()

	select {
	case err := <-outerErr: // the listener failed
		inner.Close()
		<-innerErr
		return err
	case err := <-innerErr: // cannot happen before Shutdown, but never hang
		outer.Close()
		<-outerErr
		return err
	case <-ctx.Done():
	}

	sctx, cancel := context.WithTimeout(context.Background(), p.shutdownTimeout)
	defer cancel()
	// Outer first: no new tunnels, then drain the ones open.
	err := outer.Shutdown(sctx)
	if e := inner.Shutdown(sctx); err == nil {
		err = e
	}
	if err != nil {
		// Out of time: close whatever is left.
		outer.Close()
		inner.Close()
	}
	for _, c := range []chan error{outerErr, innerErr} {
		if e := <-c; !errors.Is(e, http.ErrServerClosed) && err == nil {
			err = e
		}
	}
	return err
}

// serveProxy answers one request to the proxy itself.
func (p *Proxy) serveProxy(w http.ResponseWriter, r *http.Request, tunnels *tunnelListener) {
	if r.Method != http.MethodConnect {
		// Not the path: its query string may carry a signature.
		host, _ := hostHeader(r.Host)
		p.logger.LogAttrs(r.Context(), slog.LevelWarn, "proxy: non-CONNECT request refused",
			slog.String("method", r.Method), slog.String("host", quote(host)), slog.String("client", r.RemoteAddr))
		w.Header().Set("Allow", http.MethodConnect)
		http.Error(w, "tenantbridge proxy: only HTTPS through CONNECT is supported; use https:// URLs with HTTPS_PROXY (plain-HTTP proxying and direct requests are not served)", http.StatusMethodNotAllowed)
		return
	}
	host, port, err := parseAuthority(r.RequestURI)
	if err != nil {
		p.refuse(w, r, http.StatusBadRequest, "tenantbridge proxy: malformed CONNECT target "+quote(r.RequestURI)+": "+err.Error())
		return
	}
	authority := net.JoinHostPort(host, strconv.Itoa(port))
	if port != httpsPort {
		p.refuse(w, r, http.StatusForbidden, "tenantbridge proxy: CONNECT to "+authority+" refused: tenantbridge serves HTTPS on port 443 only")
		return
	}
	if !p.cfg.Allowed(host) {
		p.refuse(w, r, http.StatusForbidden, "tenantbridge proxy: CONNECT to "+authority+" refused: "+servedMessage)
		return
	}
	client := clientIP(r.RemoteAddr)
	if !p.acquireClient(client) {
		p.refuse(w, r, http.StatusTooManyRequests, "tenantbridge proxy: CONNECT to "+authority+" refused: this client has "+
			strconv.Itoa(p.maxPerClient)+" tunnels open, the most one client may; close some or try again later")
		return
	}
	select {
	case p.slots <- struct{}{}:
	default:
		p.releaseClient(client)
		p.refuse(w, r, http.StatusServiceUnavailable, "tenantbridge proxy: CONNECT to "+authority+" refused: too many open tunnels, try again later")
		return
	}
	release := func() {
		<-p.slots
		p.releaseClient(client)
	}
	conn, bufrw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		release()
		p.logger.ErrorContext(r.Context(), "proxy: cannot take over the connection", "err", err)
		http.Error(w, "tenantbridge proxy: internal error", http.StatusInternalServerError)
		return
	}
	t := &tunnelConn{Conn: conn, host: host, port: port, release: release}
	if n := bufrw.Reader.Buffered(); n > 0 {
		// A client that sent its ClientHello without waiting for our
		// answer: those bytes belong to the tunnel.
		b, _ := bufrw.Reader.Peek(n)
		t.pending = append([]byte(nil), b...)
	}
	_ = conn.SetDeadline(time.Time{})
	_ = conn.SetWriteDeadline(time.Now().Add(p.readHeaderTimeout))
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection Established\r\n\r\n"); err != nil {
		t.Close()
		return
	}
	_ = conn.SetWriteDeadline(time.Time{})
	p.logger.LogAttrs(r.Context(), slog.LevelDebug, "proxy: tunnel opened",
		slog.String("authority", authority), slog.String("client", r.RemoteAddr))
	tc := tls.Server(t, p.tlsConfig)
	if !tunnels.push(tc) {
		tc.Close() // shutting down
	}
}

// clientIP is the client part of a remote address: tunnels are counted
// per IP address, whatever the source port.
func clientIP(remoteAddr string) string {
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return h
	}
	return remoteAddr
}

// acquireClient counts one more tunnel for client, unless it already holds
// maxPerClient.
func (p *Proxy) acquireClient(client string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byClient[client] >= p.maxPerClient {
		return false
	}
	p.byClient[client]++
	return true
}

// releaseClient counts one tunnel of client closed.
func (p *Proxy) releaseClient(client string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byClient[client] <= 1 {
		delete(p.byClient, client) // the map holds only clients with tunnels open
		return
	}
	p.byClient[client]--
}

// refuse answers a CONNECT that will not be tunnelled and closes the
// connection. The explanation goes into the reason phrase as well as the
// body, because most clients show only the status line of a failed CONNECT:
// Go's net/http reports the reason phrase as the error ("Forbidden
// (tenantbridge proxy: ...)"), Python says "Tunnel connection failed: 403
// Forbidden (...)". msg must be printable ASCII (see quote).
func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	p.logger.LogAttrs(r.Context(), slog.LevelWarn, "proxy: CONNECT refused",
		slog.Int("status", code), slog.String("client", r.RemoteAddr), slog.String("reason", msg))
	body := msg + "\n"
	conn, bufrw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		w.Header().Set("Connection", "close")
		http.Error(w, msg, code)
		return
	}
	defer conn.Close()
	_ = conn.SetWriteDeadline(time.Now().Add(p.readHeaderTimeout))
	extra := ""
	if code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests {
		extra = "Retry-After: 1\r\n"
	}
	fmt.Fprintf(bufrw, "HTTP/1.1 %d %s (%s)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n%sConnection: close\r\n\r\n%s",
		code, http.StatusText(code), msg, len(body), extra, body)
	_ = bufrw.Flush()
}

type tunnelKey struct{}

// sameOrigin enforces one tunnel, one origin: every request inside a tunnel
// must name the host (and, if it gives one, the port) of the CONNECT that
// opened it, and so must the TLS server name, if the client sent one.
// Otherwise a tunnel opened to graph.microsoft.com could reach the token
// service by sending Host: login.microsoftonline.com. Mismatches get 421
// Misdirected Request, which tells a client to use a connection of its own.
func (p *Proxy) sameOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, _ := r.Context().Value(tunnelKey{}).(*tunnelConn)
		host, port := hostHeader(r.Host)
		ok := t != nil && host == t.host && (port == "" || port == strconv.Itoa(t.port))
		if ok && r.TLS != nil && r.TLS.ServerName != "" && normalizeHost(r.TLS.ServerName) != t.host {
			ok = false
		}
		if !ok {
			tunnel := "?"
			if t != nil {
				tunnel = net.JoinHostPort(t.host, strconv.Itoa(t.port))
			}
			p.logger.LogAttrs(r.Context(), slog.LevelWarn, "proxy: request host does not match its tunnel",
				slog.String("tunnel", tunnel), slog.String("host", quote(r.Host)), slog.String("client", r.RemoteAddr))
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusMisdirectedRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{
				"code":    "MisdirectedRequest",
				"message": "tenantbridge proxy: this tunnel was opened to " + tunnel + "; a request for host " + quote(r.Host) + " needs a tunnel of its own.",
			}})
			return
		}
		next.ServeHTTP(w, r)
	})
}
