// Package server is tenantbridge's front door: it prepares the data
// directory (CA, certificates, keys, store), listens on one HTTPS address
// (and, optionally, on an HTTPS proxy address whose tunnels end here), gives
// every request an id and limits, and routes it by host name to the surface
// that owns it. It holds no surface logic of its own; besides routing it
// only keeps the signing keys current (reload and prune in the background).
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/arm"
	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/console"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/dnsserve"
	"github.com/tenantbridge/tenantbridge/internal/fleet"
	"github.com/tenantbridge/tenantbridge/internal/graph"
	"github.com/tenantbridge/tenantbridge/internal/managedidentity"
	"github.com/tenantbridge/tenantbridge/internal/observe"
	"github.com/tenantbridge/tenantbridge/internal/operator"
	"github.com/tenantbridge/tenantbridge/internal/outbox"
	"github.com/tenantbridge/tenantbridge/internal/pki"
	"github.com/tenantbridge/tenantbridge/internal/proxy"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/servicebus"
	"github.com/tenantbridge/tenantbridge/internal/signin"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/backends"
	"github.com/tenantbridge/tenantbridge/internal/sts"
	"github.com/tenantbridge/tenantbridge/internal/vault"
)

// Config is what `tenantbridge serve` takes.
type Config struct {
	// DataDir holds the CA, certificates, keys, the operator credential and
	// the embedded store. Created 0700 if missing.
	DataDir string
	// Listen is the HTTPS address, e.g. 127.0.0.1:8443 (port 0 picks one).
	Listen string
	// StoreURL selects the store: sqlite://PATH or postgres://...; empty
	// means the embedded store in DataDir.
	StoreURL string
	// CustomDomain, if set, makes tenantbridge also answer as login.D,
	// graph.D, management.D, {vault}.vault.D and {ns}.servicebus.D, for
	// deployments with their own DNS.
	CustomDomain string
	// ProxyListen, if set, is the address of an HTTPS proxy
	// (HTTPS_PROXY=http://ADDR) whose CONNECT tunnels to the Azure names
	// tenantbridge serves end in this server, so that unmodified programs
	// reach it with no change to DNS. Empty means no proxy.
	ProxyListen string
	// AMQPListen, if set, is the address of the Service Bus AMQPS
	// listener (AMQP 1.0 over TLS, Service Bus's port 5671): the protocol
	// every Service Bus SDK speaks. The connection's hostname (SNI, SASL
	// or open) names the namespace. Empty means none; AMQP over
	// WebSockets is always served on the HTTPS listener.
	AMQPListen string
	// DNSListen, if set, is the address (UDP and TCP) of a DNS responder
	// that answers the names the proxy tunnels with DNSAnswer and refuses
	// every other name: what a container is given as its resolver so that
	// unmodified programs in it reach tenantbridge by Azure's names. Empty
	// means no DNS.
	DNSListen string
	// DNSAnswer is the address the DNS responder gives: the one clients
	// reach this server's HTTPS listener at. Empty means DNSListen's IP,
	// which must then be a specific address, not 0.0.0.0 or ::.
	DNSAnswer string
	// RefreshTokenLifetime is how long a refresh token may go unused
	// before it expires; zero means Entra's 90 days.
	RefreshTokenLifetime time.Duration
	// BodyTimeout is how long a client has to send a request's body, from
	// the moment the request reaches the front door (on the listen address
	// and inside proxy tunnels alike); zero means DefaultBodyTimeout (30 s).
	// A request whose body is late is answered 408 and its connection
	// closed. It does not bound how long a request may take once its body
	// is in: long polls (Service Bus receives) wait minutes after it.
	BodyTimeout time.Duration
	// NotificationRetryFor is how long a managed application's lifecycle
	// notification is retried before it is given up; zero means 10 hours,
	// as Azure.
	NotificationRetryFor time.Duration
	// ManagedAppPackages says where a managed application definition's
	// packageFileUri may point (the zero value: nowhere).
	ManagedAppPackages arm.PackageFetch
	// FederationRoots are certificate authorities trusted, besides the
	// system's roots, when fetching the OpenID discovery documents and JWK
	// Sets of the external issuers that federated credentials trust: the
	// private PKI of a self-hosted issuer (a publisher's broker, a
	// Kubernetes cluster's service-account issuer). The system's roots
	// already honour SSL_CERT_FILE and SSL_CERT_DIR; this adds authorities
	// for this server's fetches only. tenantbridge's own CA is never among
	// them: it vouches only for names this server answers as.
	FederationRoots []*x509.Certificate
	// MetricsListen, if set, is a plain-HTTP address serving the
	// Prometheus metrics without authorization, and /healthz and /readyz,
	// for a scraper and probes on a network the operator trusts. The
	// metrics are always served on the HTTPS listener too, at /metrics,
	// to the operator key. Empty means no such listener.
	MetricsListen string
	// MaxQueueSeries bounds the Service Bus queues that get metrics of
	// their own; zero means observe.DefaultMaxQueues.
	MaxQueueSeries int
	// MaxConnections bounds the client connections held at once over the
	// HTTPS, proxy and AMQPS listeners (connBudget); zero means the
	// process's open-file limit less a reserve, negative no bound.
	MaxConnections int
	// NodeKey, if set, makes this server a node of a fleet: several
	// servers on one store (StoreURL) that share their key material
	// through the store, sealed under this key (package fleet). Every
	// node is given the same key. Nil: the keys stay in DataDir alone.
	NodeKey []byte
	// OTLPEndpoint, if set, switches OpenTelemetry tracing on and sends
	// the spans over OTLP/HTTP to this base URL (http://collector:4318;
	// the spans go to /v1/traces under it). Empty leaves it to the
	// standard OTEL_* environment variables, and tracing is off unless
	// they configure it (observe.StartTracing).
	OTLPEndpoint string
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultListen and DefaultDataDir are serve's defaults.
const (
	DefaultListen  = "127.0.0.1:8443"
	DefaultDataDir = ".tenantbridge"
)

// Limits on what a client may send, before any surface looks at it.
const (
	maxHeaderBytes = 64 << 10
	maxBodyBytes   = 8 << 20

	// readHeaderTimeout bounds the TLS handshake and the request line and
	// headers; the body has BodyTimeout more.
	readHeaderTimeout = 10 * time.Second
	// idleTimeout closes a keep-alive connection with no request in
	// flight. It never applies while a handler runs, so it does not cut a
	// long poll; it only decides how long an idle client keeps a
	// connection (and the goroutine serving it).
	idleTimeout = 2 * time.Minute
)

// MaxTokenLifetime is the longest lifetime of any token the server signs;
// today only the token service signs. A retired signing key stays
// published this long after it stops signing, so that every token it
// signed still verifies until it expires.
const MaxTokenLifetime = sts.MaxTokenLifetime

// keysInterval is how often the server re-reads the signing keys (another
// instance or the CLI may have rotated them) and prunes the retired ones no
// token can need any more.
const keysInterval = 30 * time.Second

// Server is a prepared tenantbridge: everything loaded, not yet listening.
type Server struct {
	cfg      Config
	lock     *dataDirLock // held from New to the end of Serve
	logger   *slog.Logger
	hosts    pki.Hosts
	ca       *pki.CA
	cert     tls.Certificate
	keys     *pki.KeySet
	store    store.Store
	dir      *directory.Service
	audit    *audit.Log
	operator operator.Credential
	kek      []byte
	vaults   *vault.Service
	broker   *servicebus.Broker
	// notifications delivers the outbox (managed applications' lifecycle
	// notifications to their publishers).
	notifications *outbox.Deliverer
	soleStore     bool // the embedded SQLite store, which no other server writes (several nodes need PostgreSQL)
	routes        *router
	conns         *connBudget  // the client connections' budget (nil: none)
	proxyLn       net.Listener // set by Listen when cfg.ProxyListen is
	amqpLn        net.Listener // set by Listen when cfg.AMQPListen is
	amqpAddr      string
	metricsLn     net.Listener // set by Listen when cfg.MetricsListen is
	metricsAddr   string
	// metrics is every family the server exports (package observe);
	// timed is the store as the components use it, its main calls timed
	// into the metrics (s.store is the store itself, for Close, health
	// and the accessors).
	metrics   *observe.Metrics
	timed     store.Store
	tracing   *observe.Tracing // nil: tracing off
	messaging *servicebus.Service
	// dns answers the served names when cfg.DNSListen is set; dnsPC and
	// dnsLn are its sockets, opened by Listen.
	dns     *dnsserve.Server
	dnsPC   net.PacketConn
	dnsLn   net.Listener
	dnsAddr string
	// bodyTimeout is Config.BodyTimeout, or DefaultBodyTimeout.
	bodyTimeout time.Duration
	// fleet is the fleet's shared key material when Config.NodeKey is
	// set; nil for a server on its own.
	fleet *fleet.Keys
}

// New prepares the data directory and every component. On first start it
// creates the CA, the server certificate, the signing keys, the symmetric
// keys, the store and the operator credential; later starts reuse them.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cfg.DataDir = abs
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	listenHost, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", cfg.Listen, err)
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	ready := false
	defer func() {
		if !ready {
			lock.release()
		}
	}()
	s := &Server{cfg: cfg, logger: cfg.Logger, bodyTimeout: cfg.BodyTimeout, lock: lock}
	if s.bodyTimeout <= 0 {
		s.bodyTimeout = DefaultBodyTimeout
	}
	s.hosts = pki.Hosts{CustomDomain: strings.ToLower(cfg.CustomDomain), ListenHosts: listenHosts(listenHost)}
	storeURL := cfg.StoreURL
	if storeURL == "" {
		storeURL = "sqlite://" + filepath.Join(cfg.DataDir, "tenantbridge.db")
	}
	if b, _, err := backends.Parse(storeURL); err == nil && b == backends.SQLite {
		s.soleStore = true
	}
	if len(cfg.NodeKey) > 0 {
		// A fleet node takes its keys from the store: open it first.
		if s.store, err = backends.Open(ctx, storeURL); err != nil {
			return nil, err
		}
		if s.fleet, err = fleet.New(s.store, cfg.NodeKey, cfg.DataDir); err != nil {
			s.store.Close()
			return nil, err
		}
	}
	secrets, err := s.loadKeys(ctx)
	if err != nil {
		if s.store != nil {
			s.store.Close()
		}
		return nil, err
	}
	s.kek = secrets.KEK
	if s.store == nil {
		if s.store, err = backends.Open(ctx, storeURL); err != nil {
			return nil, err
		}
	}
	if s.tracing, err = observe.StartTracing(ctx, observe.TracingConfig{Endpoint: cfg.OTLPEndpoint, Getenv: os.Getenv, Logger: s.logger}); err != nil {
		s.store.Close()
		return nil, err
	}
	defer func() {
		if !ready {
			s.tracing.Shutdown(context.Background())
		}
	}()
	s.metrics = observe.New(observe.Options{Store: s.store, MaxQueues: cfg.MaxQueueSeries, Tracer: s.tracing.Tracer()})
	s.conns = newConnBudget(cfg.MaxConnections, s.logger)
	s.timed = s.metrics.Store(s.store)
	if s.dir, err = directory.New(s.timed, secrets.HashKey, secrets.KEK, directory.WithReservedHosts(s.servesUnderCustomDomain)); err != nil {
		s.store.Close()
		return nil, err
	}
	if err := s.dir.EnsureFirstParty(ctx); err != nil {
		s.store.Close()
		return nil, fmt.Errorf("first-party applications: %w", err)
	}
	s.audit = audit.NewBatching(s.timed, s.logger, audit.WithObserver(s.metrics))
	if s.operator, err = operator.LoadOrCreateCredential(cfg.DataDir, "https://"+cfg.Listen, s.ca.CertFile(), ""); err != nil {
		s.audit.Close()
		s.store.Close()
		return nil, err
	}
	// Authorize resolves a registration call's AuthRef
	// (arm.RegistrationAuthRef: "{publisher tenant id} {secret URI}") at
	// send time: the bootstrap secret is read from the publisher's vault
	// as the platform, so the outbox never holds it.
	authorize := func(ctx context.Context, ref string) (string, error) {
		tenantID, uri, ok := arm.ParseRegistrationAuthRef(ref)
		if !ok {
			return "", errors.New("the message's AuthRef is not a registration reference")
		}
		v, err := s.vaults.ResolveReference(ctx, tenantID, uri)
		if err != nil {
			return "", err
		}
		return "Bootstrap " + v, nil
	}
	if s.notifications, err = outbox.New(outbox.Config{Store: s.timed, Client: notificationClient(), Logger: s.logger, Authorize: authorize,
		Observer: s.metrics, LookEvery: s.outboxLookEvery()}); err != nil {
		s.audit.Close()
		s.store.Close()
		return nil, err
	}
	s.routes = s.buildRouter()
	if cfg.DNSListen != "" {
		if s.dns, err = s.newDNS(); err != nil {
			s.audit.Close()
			s.store.Close()
			return nil, err
		}
	}
	ready = true
	return s, nil
}

// loadKeys loads the CA, the server certificate, the signing keys and the
// symmetric keys from the data directory, making those missing. A fleet
// node first takes the fleet's (fleet.Keys.Pull), then offers the fleet
// what it made and the operator's key; should another node have made the
// fleet's keys at the same moment, it drops its own and takes theirs.
func (s *Server) loadKeys(ctx context.Context) (*pki.Secrets, error) {
	dir := s.cfg.DataDir
	for attempt := 0; ; attempt++ {
		var before map[string]bool
		var err error
		if s.fleet != nil {
			if before, err = s.fleet.Pull(ctx); err != nil {
				return nil, err
			}
		}
		if s.ca, err = pki.LoadOrCreateCA(dir, s.hosts); err != nil {
			return nil, err
		}
		if s.cert, err = pki.LoadOrCreateServerCert(dir, s.ca, s.hosts); err != nil {
			return nil, err
		}
		if s.keys, err = pki.LoadOrCreateKeySet(dir); err != nil {
			return nil, err
		}
		secrets, err := pki.LoadOrCreateSecrets(dir)
		if err != nil {
			return nil, err
		}
		if s.fleet == nil {
			return secrets, nil
		}
		err = s.fleet.Publish(ctx, before)
		if errors.Is(err, fleet.ErrStartRace) && attempt == 0 {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := s.fleet.ShareOperatorKey(ctx); err != nil {
			return nil, err
		}
		s.keys.SetPublisher(s.fleet.PublishSigningKey)
		return secrets, nil
	}
}

// newDNS prepares the DNS responder of Config.DNSListen. It answers
// exactly the names the proxy tunnels (proxyAllows: served by the router
// and vouched for by the certificate), since a name that resolved here but
// failed TLS or got 421 would only be a worse error than REFUSED.
func (s *Server) newDNS() (*dnsserve.Server, error) {
	answer := s.cfg.DNSAnswer
	if answer == "" {
		host, _, err := net.SplitHostPort(s.cfg.DNSListen)
		if err != nil {
			return nil, fmt.Errorf("DNS listen address %q: %w", s.cfg.DNSListen, err)
		}
		answer = host
	}
	ip := net.ParseIP(answer)
	if ip == nil || ip.IsUnspecified() {
		return nil, fmt.Errorf("DNS answer %q is not an address clients can reach: give the server's address with --dns-answer", answer)
	}
	return dnsserve.New(dnsserve.Config{Serves: s.proxyAllows, Answer: ip, Logger: s.logger})
}

// listenHosts are the names the bare listener answers to.
func listenHosts(h string) []string {
	out := []string{"localhost", "127.0.0.1", "::1"}
	if h != "" && h != "0.0.0.0" && h != "::" {
		out = append(out, h)
	}
	return out
}

func (s *Server) buildRouter() *router {
	r := &router{bareHosts: map[string]bool{}, byHost: map[string]http.Handler{}, byParent: map[string]http.Handler{}}
	for _, h := range s.hosts.ListenHosts {
		r.bareHosts[h] = true
	}
	// Entra's login host and its older names (pki.LegacyLoginHosts).
	loginHosts := map[string]bool{"login.microsoftonline.com": true, "login.windows.net": true, "sts.windows.net": true}
	if d := s.hosts.CustomDomain; d != "" {
		loginHosts["login."+d] = true
	}
	isLogin := func(host string) bool {
		host = strings.ToLower(host)
		return loginHosts[host] || r.bareHosts[host]
	}

	miIssuer := "https://login.microsoftonline.com"
	if d := s.hosts.CustomDomain; d != "" {
		miIssuer = "https://login." + d // a deployment with its own domain is its own cloud
	}
	var aliases map[string]string
	if d := s.hosts.CustomDomain; d != "" {
		// {vault}.vault.D challenges for the resource https://vault.D.
		aliases = map[string]string{"https://vault." + d: directory.KeyVaultResource}
	}
	tokens := sts.New(sts.Config{Directory: s.dir, Keys: s.keys, Audit: s.audit, Logger: s.logger, IsLoginHost: isLogin,
		FederationClient: federationClient(s.cfg.FederationRoots), ManagedIdentityIssuerBase: miIssuer, ResourceAliases: aliases, KEK: s.kek, RefreshTokenInactivity: s.cfg.RefreshTokenLifetime,
		Observer: s.metrics})
	verifier := tokens.Verifier()
	pages := signin.New(signin.Config{Directory: s.dir, Audit: s.audit, Logger: s.logger, KEK: s.kek,
		Devices: deviceApprover{s.timed}})
	login := loginSurface{pages: tagged{surfaceSignin, pages}, tokens: tagged{surfaceToken, tokens}}
	graphAPI := graph.New(graph.Config{Directory: s.dir, Verifier: verifier, Audit: s.audit, Logger: s.logger})
	access := rbac.New(s.timed, s.dir, rbac.WithObserver(s.metrics), rbac.WithTracer(s.tracing.Tracer()))
	s.vaults = vault.New(vault.Config{Store: s.timed, KEK: s.kek, Verifier: verifier,
		Authorizer: vaultAuthorizer{access}, Audit: s.audit, Logger: s.logger,
		LoginBase: func(*http.Request) string { return miIssuer }})
	brokerOpts := []servicebus.BrokerOption{servicebus.WithBrokerObserver(s.metrics)}
	if s.soleStore {
		// Every queue change goes through this server's broker.
		brokerOpts = append(brokerOpts, servicebus.WithSoleWriter())
	}
	s.broker = servicebus.NewBroker(s.timed, nil, s.logger, brokerOpts...)
	if feed, ok := s.store.(store.QueueWakeFeed); ok {
		// A send through another server sharing the store wakes the
		// receivers waiting here (PostgreSQL's LISTEN/NOTIFY).
		feed.OnQueueWakes(s.broker.WakeFromElsewhere)
	}
	s.messaging = servicebus.New(servicebus.Config{Store: s.timed, Broker: s.broker, Verifier: verifier,
		Authorizer: busAuthorizer{access}, Limits: servicebus.QueueLimits, MessageLimit: servicebus.QueueMaxMessageBytes, Audit: s.audit, Logger: s.logger, KEK: s.kek,
		Tracer: s.tracing.Tracer()})
	s.messaging.AMQP().Observer = s.metrics // AMQPS and WebSockets alike
	resources := arm.New(arm.Config{Directory: s.dir, Store: s.timed, RBAC: access, Verifier: verifier,
		Audit: s.audit, Logger: s.logger, TokenMinter: tokens, Secrets: s.vaults.ResolveReference, Packages: s.cfg.ManagedAppPackages, Notify: s.notifications.Notify,
		NotificationDeadline: s.cfg.NotificationRetryFor,
		// Each service's control plane, from its own package.
		Providers: []*rp.Provider{vault.Provider(s.kek), managedidentity.Provider(), servicebus.Provider(s.kek)}})
	ops := operator.New(operator.Config{Directory: s.dir, Audit: s.audit, Key: s.operator.Key, Keys: s.keys,
		MaxTokenLifetime: MaxTokenLifetime, MinPublishAhead: s.minPublishAhead(), Logger: s.logger, Marketplace: resources})

	bare := http.NewServeMux()
	bare.Handle("/_operator/", tagged{surfaceOperator, ops})
	bare.Handle("GET /healthz", tagged{surfaceHealth, http.HandlerFunc(s.healthz)})
	bare.Handle("GET /readyz", tagged{surfaceHealth, http.HandlerFunc(s.readyz)})
	bare.Handle("GET /metrics", tagged{surfaceMetrics, http.HandlerFunc(s.serveMetrics)})
	// The web console (package console), on the listen address next to
	// the sign-in pages whose session it uses.
	bare.Handle(console.Prefix, tagged{surfaceConsole, console.New(console.Config{Directory: s.dir, Store: s.timed, RBAC: access,
		Roles: resources, Audit: s.audit, Logger: s.logger, KEK: s.kek, OperatorKey: s.operator.Key, IsLoginHost: isLogin})})
	bare.Handle("/", login)
	r.bare = bare

	// Each surface is tagged with its name, for the request's log line
	// and metrics.
	graphSurface := tagged{surfaceGraph, graphAPI}
	armSurface := tagged{surfaceARM, resources}
	vaultSurface := tagged{surfaceKeyVault, s.vaults}
	busSurface := tagged{surfaceServiceBus, s.messaging}
	for h := range loginHosts {
		r.byHost[h] = login
	}
	r.byHost["graph.microsoft.com"] = graphSurface
	r.byHost["management.azure.com"] = armSurface
	r.byParent["vault.azure.net"] = vaultSurface
	r.byParent["servicebus.windows.net"] = busSurface
	if d := s.hosts.CustomDomain; d != "" {
		r.byHost["graph."+d] = graphSurface
		r.byHost["management."+d] = armSurface
		r.byParent["vault."+d] = vaultSurface
		r.byParent["servicebus."+d] = busSurface
	}
	return r
}

// notificationClient posts managed applications' lifecycle notifications
// to their publishers' endpoints: the system's roots and the environment's
// proxy settings, as any webhook sender on this host would use; it follows
// no redirect (a notification goes where the publisher registered it).
func notificationClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	return &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// federationClient fetches the discovery documents and JWK Sets of the
// external issuers that federated credentials trust (a Kubernetes
// service-account issuer, a CI system's, a publisher's broker): the
// system's roots (plus Config.FederationRoots) and the environment's proxy
// settings, as any relying party on this host would use, and never
// tenantbridge's own CA, which vouches only for names this server answers
// as (its own issuers are resolved in process).
func federationClient(extra []*x509.Certificate) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if len(extra) > 0 {
		roots, err := x509.SystemCertPool()
		if err != nil || roots == nil {
			roots = x509.NewCertPool()
		}
		for _, c := range extra {
			roots.AddCert(c)
		}
		t.TLSClientConfig.RootCAs = roots
	}
	t.ResponseHeaderTimeout = 10 * time.Second
	return &http.Client{Transport: t, Timeout: 15 * time.Second}
}

// Listen opens the HTTPS listener, and the proxy listener if
// Config.ProxyListen is set, and records their addresses in the operator
// credential, so that `:0` in tests and the CLI agree on the ports.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return nil, err
	}
	proxyURL := ""
	if s.cfg.ProxyListen != "" {
		pln, err := net.Listen("tcp", s.cfg.ProxyListen)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("proxy listener: %w", err)
		}
		if s.proxyLn != nil {
			s.proxyLn.Close()
		}
		s.proxyLn = pln
		proxyURL = "http://" + dialable(pln.Addr())
	}
	closeAll := func() {
		ln.Close()
		if s.proxyLn != nil {
			s.proxyLn.Close()
			s.proxyLn = nil
		}
		if s.amqpLn != nil {
			s.amqpLn.Close()
			s.amqpLn = nil
		}
		if s.metricsLn != nil {
			s.metricsLn.Close()
			s.metricsLn = nil
		}
	}
	if s.cfg.AMQPListen != "" {
		aln, err := net.Listen("tcp", s.cfg.AMQPListen)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("AMQP listener: %w", err)
		}
		if s.amqpLn != nil {
			s.amqpLn.Close()
		}
		s.amqpLn, s.amqpAddr = aln, dialable(aln.Addr())
	}
	if s.cfg.MetricsListen != "" {
		mln, err := net.Listen("tcp", s.cfg.MetricsListen)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("metrics listener: %w", err)
		}
		if s.metricsLn != nil {
			s.metricsLn.Close()
		}
		s.metricsLn, s.metricsAddr = mln, dialable(mln.Addr())
	}
	if s.dns != nil {
		pc, dln, err := dnsserve.Listen(s.cfg.DNSListen)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("DNS listener: %w", err)
		}
		s.closeDNS()
		s.dnsPC, s.dnsLn, s.dnsAddr = pc, dln, dln.Addr().String()
	}
	url := "https://" + ln.Addr().String()
	if s.operator, err = operator.LoadOrCreateCredential(s.cfg.DataDir, url, s.ca.CertFile(), proxyURL); err != nil {
		closeAll()
		s.closeDNS()
		return nil, err
	}
	return ln, nil
}

// closeDNS closes the DNS sockets Listen opened and Serve did not take.
func (s *Server) closeDNS() {
	if s.dnsPC != nil {
		s.dnsPC.Close()
		s.dnsLn.Close()
		s.dnsPC, s.dnsLn = nil, nil
	}
}

// AMQPAddr is the AMQPS listener's address once Listen has opened it;
// "" without one.
func (s *Server) AMQPAddr() string { return s.amqpAddr }

// MetricsAddr is the plain-HTTP metrics listener's address once Listen
// has opened it; "" without one.
func (s *Server) MetricsAddr() string { return s.metricsAddr }

// DNSAddr is the DNS responder's address (UDP and TCP) once Listen has
// opened it; "" without one.
func (s *Server) DNSAddr() string { return s.dnsAddr }

// dialable is a listener's address as a client dials it: an unspecified
// address (0.0.0.0, ::) is reached on loopback.
func dialable(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port)
}

// ProxyURL is the proxy's URL (http://ADDR) once Listen has opened it; ""
// without a proxy.
func (s *Server) ProxyURL() string { return s.operator.ProxyURL }

// Serve answers HTTPS on ln, and proxy tunnels on the proxy listener Listen
// opened, until ctx is done, while keeping the signing keys current. Then it
// shuts down gracefully: the listeners (and the DNS responder) stop
// accepting, requests in flight finish (up to 15 seconds), and the store is
// closed. If any listener fails, all stop.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Each server its own TLS config: net/http adds its protocols to the
	// one it is given.
	tlsConfig := func() *tls.Config {
		return &tls.Config{Certificates: []tls.Certificate{s.cert}, MinVersion: tls.VersionTLS12}
	}
	hs := s.httpServer(ctx, s.Handler(), tlsConfig())
	runCtx, stop := context.WithCancel(ctx)
	defer stop()

	var wg sync.WaitGroup
	wg.Go(func() { s.maintainKeys(runCtx) })
	wg.Go(func() { s.pruneDuplicateIDs(runCtx) })
	wg.Go(func() {
		if err := s.notifications.Run(runCtx); err != nil && runCtx.Err() == nil {
			s.logger.ErrorContext(runCtx, "notification deliverer stopped", "err", err)
		}
	})

	errc := make(chan error, 1)
	ln = s.conns.listener(ln)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()

	proxyErr := make(chan error, 1)
	if pln := s.proxyLn; pln != nil {
		s.proxyLn = nil // a listener serves once
		p := proxy.New(proxy.Config{Allowed: s.proxyAllows, TLS: tlsConfig(), Handler: s.Handler(), Logger: s.logger,
			BodyTimeout: s.bodyTimeout})
		go func() {
			err := p.Serve(runCtx, s.conns.listener(pln))
			if err != nil {
				err = fmt.Errorf("proxy: %w", err)
			}
			proxyErr <- err
			stop() // a failed proxy takes the server down with it
		}()
	} else {
		proxyErr <- nil
	}
	amqpErr := make(chan error, 1)
	if aln := s.amqpLn; aln != nil {
		s.amqpLn = nil // a listener serves once
		go func() {
			err := s.serveAMQP(runCtx, tls.NewListener(s.conns.listener(aln), tlsConfig()))
			if err != nil {
				err = fmt.Errorf("amqp: %w", err)
			}
			amqpErr <- err
			stop()
		}()
	} else {
		amqpErr <- nil
	}
	metricsErr := make(chan error, 1)
	if mln := s.metricsLn; mln != nil {
		s.metricsLn = nil // a listener serves once
		go func() {
			err := s.serveMetricsListener(runCtx, mln)
			if err != nil {
				err = fmt.Errorf("metrics: %w", err)
			}
			metricsErr <- err
			stop()
		}()
	} else {
		metricsErr <- nil
	}
	dnsErr := make(chan error, 1)
	if s.dnsPC != nil {
		pc, dln := s.dnsPC, s.dnsLn
		s.dnsPC, s.dnsLn = nil, nil // sockets serve once
		go func() {
			err := s.dns.Serve(runCtx, pc, dln)
			if err != nil {
				err = fmt.Errorf("dns: %w", err)
			}
			dnsErr <- err
			stop() // a failed responder takes the server down with it
		}()
	} else {
		dnsErr <- nil
	}

	var err error
	select {
	case err = <-errc: // the HTTPS listener failed
		stop()
		errc = nil
	case <-runCtx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if errc != nil {
		if e := hs.Shutdown(shutdownCtx); err == nil {
			err = e
		}
		if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
			err = e
		}
	}
	if e := <-proxyErr; err == nil {
		err = e
	}
	if e := <-dnsErr; err == nil {
		err = e
	}
	if e := <-amqpErr; err == nil {
		err = e
	}
	if e := <-metricsErr; err == nil {
		err = e
	}
	wg.Wait()
	s.broker.Close() // after the last request: nothing submits any more
	s.audit.Close()  // commits the records of requests that finished
	if cerr := s.store.Close(); err == nil {
		err = cerr
	}
	if terr := s.tracing.Shutdown(shutdownCtx); terr != nil { // the spans still buffered
		s.logger.Warn("tracing: exporting the last spans failed", "err", terr)
	}
	s.lock.release() // the last thing: the data directory is free for the next server
	return err
}

// maxAMQPConns bounds the AMQPS connections served at once when the
// server has no connection budget (serve --max-connections -1, or an
// unknown open-file limit); beyond it a new connection waits in the
// listen backlog. With a budget, the budget alone bounds them: a fan-out
// of 10,000 customers over AMQPS holds 20,000 connections.
const maxAMQPConns = 10_000

// amqpConnSlots is how many AMQPS connections serveAMQP serves at once.
func (s *Server) amqpConnSlots() int {
	if s.conns != nil {
		return int(max(s.conns.max, 1))
	}
	return maxAMQPConns
}

// serveAMQP accepts AMQPS connections on ln until ctx ends, and serves each
// with the Service Bus front-end's AMQP server. Connections still open
// when ctx ends are closed by the engine (amqp:connection:forced); it
// returns once they all have ended.
func (s *Server) serveAMQP(ctx context.Context, ln net.Listener) error {
	context.AfterFunc(ctx, func() { ln.Close() })
	slots := make(chan struct{}, s.amqpConnSlots())
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		nc, err := ln.Accept()
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		conns.Go(func() {
			defer func() { <-slots }()
			defer nc.Close()
			if err := s.messaging.AMQP().ServeConn(ctx, nc); err != nil && ctx.Err() == nil {
				s.logger.DebugContext(ctx, "amqp connection ended", "remote", nc.RemoteAddr().String(), "err", err)
			}
		})
	}
}

// httpServer is the front door's http.Server for handler h.
//
// Its timeouts bound what a client can hold without ever cutting a long
// poll. ReadHeaderTimeout bounds the handshake and the headers; the
// middleware's body deadline (BodyTimeout) bounds the body, and
// ReadTimeout repeats the two as a backstop for a connection the
// middleware cannot set a deadline on. None of them runs once the body is
// in: net/http clears the read deadline when the body reaches its end (or
// at once, for a request without one). There is no WriteTimeout: it would
// run from the end of the headers and cut a Service Bus receive that
// rightly waits up to MaxReceiveTimeout (5 minutes) for a message.
func (s *Server) httpServer(ctx context.Context, h http.Handler, tlsConfig *tls.Config) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readHeaderTimeout + s.bodyTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
}

// proxyAllows is the proxy's Allowed: the Azure names the router sends to
// a surface and the server certificate vouches for. A name the router does
// not serve would only get 421, and one the certificate lacks only a TLS
// error; neither is worth a tunnel. The listen address's own names are not
// tunnelled: clients reach them directly.
func (s *Server) proxyAllows(host string) bool {
	host = hostOnly(host)
	if !s.routes.serves(host) {
		return false
	}
	leaf := s.cert.Leaf
	if leaf == nil {
		c, err := x509.ParseCertificate(s.cert.Certificate[0])
		if err != nil {
			return false
		}
		leaf = c
	}
	return leaf.VerifyHostname(host) == nil
}

// maintainKeys keeps the signing keys current until ctx is done: it
// re-reads them (another instance sharing the data directory, or the CLI,
// may have rotated) and prunes the retired keys that no unexpired token can
// need any more.
func (s *Server) maintainKeys(ctx context.Context) {
	t := time.NewTicker(keysInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.refreshKeys(ctx, time.Now())
		}
	}
}

// refreshKeys is one round of maintainKeys, at now.
func (s *Server) refreshKeys(ctx context.Context, now time.Time) {
	if s.fleet != nil {
		// Another node may have rotated: its key is in the store.
		if _, err := s.fleet.Pull(ctx); err != nil {
			s.logger.WarnContext(ctx, "signing keys: reading the fleet's keys failed", "err", err)
		}
	}
	if err := s.keys.Reload(); err != nil {
		s.logger.WarnContext(ctx, "signing keys: reload failed; keeping the keys loaded before", "err", err)
	}
	removed, err := s.keys.Prune(now, MaxTokenLifetime)
	for _, kid := range removed {
		s.logger.InfoContext(ctx, "signing key pruned: every token it signed has expired", "kid", kid)
		if s.fleet != nil {
			if err := s.fleet.ForgetSigningKey(ctx, kid); err != nil {
				s.logger.WarnContext(ctx, "signing keys: removing a pruned key from the fleet failed", "kid", kid, "err", err)
			}
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = s.audit.Record(actx, store.AuditRecord{Actor: "tenantbridge", Action: "keys.prune", Target: kid, Result: audit.Success})
		cancel()
	}
	if err != nil {
		s.logger.ErrorContext(ctx, "signing keys: prune failed", "err", err)
	}
}

// outboxLookEvery is how often an idle outbox deliverer looks at the
// store: on a fleet another node may have enqueued a message, or died
// holding the claim on one, and its Notify never reaches this node.
func (s *Server) outboxLookEvery() time.Duration {
	if s.fleet == nil {
		return 0
	}
	return 30 * time.Second
}

// minPublishAhead is the shortest publish-ahead of a rotation: none for a
// server on its own; in a fleet, two rounds of the key timer, so that
// every node has read the new key from the store, and publishes it, before
// any node signs with it.
func (s *Server) minPublishAhead() time.Duration {
	if s.fleet == nil {
		return 0
	}
	return 2 * keysInterval
}

// Handler is the whole front door as an http.Handler.
func (s *Server) Handler() http.Handler {
	return s.middleware(s.routes)
}

// Accessors for the CLI and for tests.

// CA returns the local certificate authority.
func (s *Server) CA() *pki.CA { return s.ca }

// Directory returns the directory service.
func (s *Server) Directory() *directory.Service { return s.dir }

// Store returns the store.
func (s *Server) Store() store.Store { return s.store }

// Operator returns the operator credential.
func (s *Server) Operator() operator.Credential { return s.operator }

// OperatorFile returns the path of the operator credential file.
func (s *Server) OperatorFile() string { return filepath.Join(s.cfg.DataDir, operator.FileName) }

// Keys returns the token-signing keys.
func (s *Server) Keys() *pki.KeySet { return s.keys }

// ServedHosts lists, sorted, the host names the router sends to a surface,
// besides the listen address's own names: what the server answers as.
func (s *Server) ServedHosts() []string {
	return s.routes.hosts()
}

// servesUnderCustomDomain reports whether host is the custom domain or a
// name under it: tenantbridge answers there (login., graph., management.,
// vault., servicebus.), so no application may put such a name in an
// identifier URI.
func (s *Server) servesUnderCustomDomain(host string) bool {
	d := s.hosts.CustomDomain
	return d != "" && (host == d || strings.HasSuffix(host, "."+d))
}

// ProxiedHosts lists, sorted, the names the proxy tunnels (see ProxyAllows).
func (s *Server) ProxiedHosts() []string {
	var out []string
	for _, h := range s.routes.hosts() {
		// A "*.parent" name is checked as one concrete name under it.
		if s.proxyAllows(strings.Replace(h, "*", "probe", 1)) {
			out = append(out, h)
		}
	}
	return out
}

// ProxyAllows reports whether the proxy tunnels CONNECTs to host: a name
// the router serves and the server certificate vouches for.
func (s *Server) ProxyAllows(host string) bool { return s.proxyAllows(host) }

// vaultAuthorizer and busAuthorizer answer the data planes' questions with
// the RBAC engine: may this principal perform this data action at this
// scope?
type vaultAuthorizer struct{ rbac *rbac.Engine }

func (a vaultAuthorizer) Authorize(ctx context.Context, acc vault.Access) (bool, string, error) {
	return decideData(ctx, a.rbac, rbac.Request{PrincipalID: acc.PrincipalID, PrincipalTenantID: acc.PrincipalTenantID,
		TenantID: acc.TenantID, Action: acc.DataAction, DataAction: true, Scope: acc.Scope})
}

type busAuthorizer struct{ rbac *rbac.Engine }

func (a busAuthorizer) Authorize(ctx context.Context, acc servicebus.Access) (bool, string, error) {
	return decideData(ctx, a.rbac, rbac.Request{PrincipalID: acc.PrincipalID, PrincipalTenantID: acc.PrincipalTenantID,
		TenantID: acc.TenantID, Action: acc.DataAction, DataAction: true, Scope: acc.Scope})
}

// decideData decides a data action; a scope that no tenant owns, or that
// is malformed, is a refusal, as any undecidable request is.
func decideData(ctx context.Context, engine *rbac.Engine, req rbac.Request) (bool, string, error) {
	d, err := engine.Decide(ctx, req)
	if errors.Is(err, rbac.ErrUnknownScope) || errors.Is(err, rbac.ErrInvalidScope) {
		return false, err.Error(), nil
	}
	if err != nil {
		return false, "", err
	}
	return d.Allowed, d.Because.String(), nil
}

// pruneDuplicateIDs forgets, every minute, the message ids whose
// duplicate-detection window has passed.
func (s *Server) pruneDuplicateIDs(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.store.PruneDuplicateIDs(ctx, time.Now()); err != nil && ctx.Err() == nil {
				s.logger.WarnContext(ctx, "servicebus: pruning duplicate-detection ids failed", "err", err)
			}
		}
	}
}

// Vaults returns the Key Vault service, through which the resource manager
// (and tests) create vaults.
func (s *Server) Vaults() *vault.Service { return s.vaults }
