package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantbridge/tenantbridge/internal/arm"
	"github.com/tenantbridge/tenantbridge/internal/fleet"
	"github.com/tenantbridge/tenantbridge/internal/server"
)

func (c *cli) serveCommand() *cobra.Command {
	var listen, proxyListen, amqpListen, dnsListen, dnsAnswer, store, domain, logLevel, logFormat, brokerListen, metricsListen, otlpEndpoint string
	var refreshLifetime, notifyFor time.Duration
	var nodeKeyFile string
	var packageHosts []string
	var maxConns int
	var memoryLimit string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the tenantbridge cloud: token service, Graph, Resource Manager, Key Vault, Service Bus (HTTPS and AMQPS) and the operator API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			logger, err := newFormatLogger(c.stderr, logLevel, logFormat)
			if err != nil {
				return err
			}
			nodeKey, err := fleet.LoadNodeKey(nodeKeyFile, c.getenv)
			if err != nil {
				return err
			}
			limit, err := setMemoryLimit(memoryLimit)
			if err != nil {
				return fmt.Errorf("--memory-limit: %w", err)
			}
			if limit < math.MaxInt64 {
				logger.Info("memory limit", "bytes", limit)
			}
			if nodeKey != nil && !strings.HasPrefix(store, "postgres://") && !strings.HasPrefix(store, "postgresql://") {
				return fmt.Errorf("a node key (--node-key-file or %s) is for several servers on one PostgreSQL store: give --store postgres://…", fleet.NodeKeyEnv)
			}
			srv, err := server.New(cmd.Context(), server.Config{NodeKey: nodeKey, DataDir: c.dataDir, Listen: listen, ProxyListen: proxyListen, AMQPListen: amqpListen,
				DNSListen: dnsListen, DNSAnswer: dnsAnswer, StoreURL: store, CustomDomain: domain, RefreshTokenLifetime: refreshLifetime,
				NotificationRetryFor: notifyFor, MetricsListen: metricsListen, OTLPEndpoint: otlpEndpoint, Logger: logger,
				ManagedAppPackages: arm.PackageFetch{AllowedHosts: packageHosts}, MaxConnections: maxConns})
			if err != nil {
				return err
			}
			ln, err := srv.Listen()
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			c.printServing(srv, ln, domain)
			ctx, stop := context.WithCancel(cmd.Context())
			defer stop()
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ctx, ln) }()
			brokered := make(chan error, 1)
			if brokerListen != "" {
				// The broker in the same process, configured as broker
				// serve is (its TENANTBRIDGE_BROKER_* and
				// TENANTBRIDGE_PUBLISHER_* variables), reaching this server
				// through the wire APIs as it would reach Azure.
				_, f := c.newBrokerCommand()
				go func() { brokered <- c.runBroker(ctx, f, brokerListen, time.Hour) }()
			}
			select {
			case err = <-served:
			case err = <-brokered:
				stop() // a broker that cannot run takes the server down with it
				if serr := <-served; err == nil {
					err = serr
				}
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			logger.Info("tenantbridge stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", server.DefaultListen, "HTTPS listen address (port 0 picks a free port)")
	cmd.Flags().StringVar(&proxyListen, "proxy-listen", "", "also run an HTTPS proxy here (e.g. 127.0.0.1:8444) whose tunnels to Azure's names end in tenantbridge, for unmodified programs (HTTPS_PROXY; see tenantbridge env)")
	cmd.Flags().StringVar(&amqpListen, "amqp-listen", "127.0.0.1:5671", "the Service Bus AMQPS listener (AMQP 1.0 over TLS, what every Service Bus SDK speaks; \"\" for none); AMQP over WebSockets is served on --listen")
	cmd.Flags().StringVar(&dnsListen, "dns-listen", "", "also answer DNS here (UDP and TCP, e.g. 0.0.0.0:53) for the Azure names tenantbridge serves, refusing every other name: the resolver of containers whose programs are unmodified (see tenantbridge env --help)")
	cmd.Flags().StringVar(&dnsAnswer, "dns-answer", "", "the address DNS answers give, where clients reach --listen (default: --dns-listen's address; required when that is 0.0.0.0 or ::)")
	cmd.Flags().StringVar(&nodeKeyFile, "node-key-file", "", "run as a node of a fleet: several servers on one PostgreSQL --store sharing the CA, signing keys, secret-hash key, KEK and operator key through the store, sealed under the node key in this file (base64 of 32 bytes, the same for every node; or "+fleet.NodeKeyEnv+")")
	cmd.Flags().StringVar(&store, "store", "", "store URL: sqlite://PATH or postgres://... (default: the embedded store in the data directory)")
	cmd.Flags().StringVar(&domain, "domain", "", "also answer as login.D, graph.D, management.D, *.vault.D and *.servicebus.D")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "log format: text (key=value lines) or json (one JSON object a line, for log collectors)")
	cmd.Flags().StringSliceVar(&packageHosts, "managed-app-package-host", nil, "a host a managed application definition's packageFileUri may name (https only; repeat, or *.example.com for its subdomains; default: none, every packageFileUri is refused); addresses of this machine and private networks are never fetched")
	cmd.Flags().StringVar(&metricsListen, "metrics-listen", "", "also serve the Prometheus metrics, /healthz and /readyz here over plain HTTP without authorization (e.g. 127.0.0.1:9464), for a scraper on a trusted network; /metrics on --listen always answers the operator key")
	cmd.Flags().StringVar(&otlpEndpoint, "otlp-endpoint", "", "send OpenTelemetry traces over OTLP/HTTP to this collector base URL (e.g. http://127.0.0.1:4318; spans go to /v1/traces); unset, the OTEL_* environment variables decide and tracing is off unless they configure it")
	cmd.Flags().StringVar(&brokerListen, "broker-listen", "", "also run the broker here (HTTP, e.g. 127.0.0.1:8500), configured by its environment variables as tenantbridge broker serve")
	cmd.Flags().StringVar(&memoryLimit, "memory-limit", "", "a soft limit on the memory the Go runtime holds (e.g. 900MiB; GOMEMLIMIT's syntax): the garbage collector works harder as the process nears it instead of letting the heap grow to twice what is live, which a server holding many idle connections, mostly live memory, is sized by; a live heap above it is not refused (default: GOMEMLIMIT, else none)")
	cmd.Flags().IntVar(&maxConns, "max-connections", 0, "the most client connections held at once over --listen, --proxy-listen and --amqp-listen; past it a new one is closed at once (default: the process's open-file limit less a twentieth, at least 256 kept for the store and outbound calls; -1: no bound)")
	cmd.Flags().DurationVar(&notifyFor, "notification-retry-for", 0, "how long a managed application's lifecycle notification is retried (default 10h, as Azure)")
	cmd.Flags().DurationVar(&refreshLifetime, "refresh-token-lifetime", 0, "how long a refresh token may go unused before it expires (default 2160h, Entra's 90 days)")
	return cmd
}

// newLogger returns a text logger on w at the named level.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	return newFormatLogger(w, level, "text")
}

// newFormatLogger returns a logger on w at the named level, writing text
// (key=value) or JSON lines, which log collectors parse without a pattern.
func newFormatLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q is not one of debug, info, warn, error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q is not text or json", format)
}

// printServing tells a person what they need next: where the server is,
// which files to use, and how to point clients at it.
func (c *cli) printServing(srv *server.Server, ln net.Listener, domain string) {
	url := srv.Operator().URL
	caFile := srv.CA().CertFile()
	w := c.stdout
	fmt.Fprintf(w, "tenantbridge is serving on %s\n\n", url)
	fmt.Fprintf(w, "  data directory       %s\n", dataDirOf(srv))
	fmt.Fprintf(w, "  CA certificate       %s\n", caFile)
	fmt.Fprintf(w, "  operator credential  %s   (url, CA and the operator key; keep it private)\n", srv.OperatorFile())
	fmt.Fprintf(w, "  answers as           %s (at %s)\n", strings.Join(srv.ServedHosts(), ", "), ln.Addr())
	if p := srv.ProxyURL(); p != "" {
		fmt.Fprintf(w, "  proxy                %s   (HTTPS_PROXY; tunnels to %s end here)\n", p, strings.Join(srv.ProxiedHosts(), ", "))
	}
	if a := srv.AMQPAddr(); a != "" {
		fmt.Fprintf(w, "  Service Bus AMQPS    %s   (SNI or open hostname {namespace}.servicebus.windows.net; WebSockets at wss://{namespace}.servicebus.windows.net/$servicebus/websocket)\n", a)
	}
	fmt.Fprintf(w, "  metrics              %s/metrics   (Prometheus; Authorization: Bearer <operator key>); health %s/healthz, %s/readyz\n", url, url, url)
	if a := srv.MetricsAddr(); a != "" {
		fmt.Fprintf(w, "  metrics (plain HTTP) http://%s/metrics   (no authorization; also /healthz and /readyz)\n", a)
	}
	if a := srv.DNSAddr(); a != "" {
		fmt.Fprintf(w, "  DNS                  %s   (UDP and TCP; answers %s, refuses other names)\n", a, strings.Join(srv.ProxiedHosts(), ", "))
		if _, port, _ := net.SplitHostPort(ln.Addr().String()); port != "443" {
			fmt.Fprintf(w, "                       clients resolving by it connect to port 443: serve with --listen ADDR:443 (or forward 443 to %s)\n", port)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Next, in another terminal:\n")
	fmt.Fprintf(w, "  export SSL_CERT_FILE=%s\n", caFile)
	fmt.Fprintf(w, "  export TENANTBRIDGE_DATA=%s\n", dataDirOf(srv))
	fmt.Fprintf(w, "  tenantbridge tenant create contoso\n")
	fmt.Fprintf(w, "  tenantbridge ad app list --tenant contoso\n\n")
	if p := srv.ProxyURL(); p != "" {
		fmt.Fprintf(w, "Unmodified programs (DefaultAzureCredential) reach it through the proxy:\n")
		fmt.Fprintf(w, "  export HTTPS_PROXY=%s\n", p)
		fmt.Fprintf(w, "with a CA bundle that includes %s; tenantbridge env prints all of it, e.g.\n", caFile)
		fmt.Fprintf(w, "  eval \"$(tenantbridge env --tenant contoso --app APPID --secret)\"\n\n")
	} else {
		fmt.Fprintf(w, "Azure SDK clients reach it with the token authority %s and a transport that\n", url)
		fmt.Fprintf(w, "dials %s for the Azure host names (or DNS/hosts entries pointing them here);\n", ln.Addr())
		fmt.Fprintf(w, "with --proxy-listen, unmodified programs reach it through HTTPS_PROXY (see tenantbridge env).\n")
	}
	fmt.Fprintf(w, "Press Ctrl-C to stop.\n")
}

// dataDirOf is the server's absolute data directory (the operator file's directory).
func dataDirOf(srv *server.Server) string {
	return filepath.Dir(srv.OperatorFile())
}

// serveInBackground serves srv on ln until ctx ends; the returned function
// stops it and waits.
func serveInBackground(ctx context.Context, srv *server.Server, ln net.Listener) (stop func() error) {
	ctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, ln) }()
	return func() error {
		cancel()
		err := <-errc
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		return err
	}
}
