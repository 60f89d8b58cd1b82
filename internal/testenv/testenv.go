// Package testenv builds the real test environment that the HTTP surfaces'
// tests share: a store, the directory with its first-party applications,
// signing keys, the audit log and the token service, behind one TLS
// listener that any host name reaches, with tokens from the real token
// endpoint.
//
// It is used only by tests (the external test packages of graph, sts, arm
// and vault). It is an ordinary package rather than a _test.go file because
// test files cannot be imported across packages; each of those tests wired
// the same environment by hand, and this keeps one copy of it. Each test
// package mounts its own surface with Env.Route and keeps only what is
// specific to it.
package testenv

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/pki"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/sts"
)

// Env is a running environment. Requests reach the listener through
// Client (any host name) or Server.Client (its own address); the front
// door gives each a request id and the base URL the client used, then
// hands it to the surface Route picks, or to the token service.
type Env struct {
	Store    store.Store
	Dir      *directory.Service
	Keys     *pki.KeySet
	Audit    *audit.Log
	Logger   *slog.Logger
	STS      *sts.Service
	Verifier *sts.Verifier
	// KEK is the key-encryption key the token service opens
	// authorization codes with (userauth).
	KEK    []byte
	Server *httptest.Server

	// LoginURL is the base URL of the token endpoint Token calls; the
	// server's own URL unless the LoginURL option says otherwise.
	LoginURL string

	route  func(*http.Request) http.Handler
	client *http.Client
}

type config struct {
	loginHosts      []string
	loginURL        string
	cert            *tls.Certificate
	roots           *x509.CertPool
	federation      bool
	resourceAliases map[string]string
}

// Option changes how New wires the environment.
type Option func(*config)

// LoginHosts are the host names (without port) the token service takes as
// its own; 127.0.0.1 unless given.
func LoginHosts(hosts ...string) Option {
	return func(c *config) { c.loginHosts = hosts }
}

// LoginURL is the base URL Token sends its requests to (through Client);
// the server's URL unless given.
func LoginURL(base string) Option {
	return func(c *config) { c.loginURL = base }
}

// Certificate makes the listener present cert, which roots verifies,
// instead of httptest's certificate for example.com; Client then checks
// it against the host name asked for.
func Certificate(cert tls.Certificate, roots *x509.CertPool) Option {
	return func(c *config) { c.cert, c.roots = &cert, roots }
}

// Federation gives the token service the server's own client to fetch
// federated issuers' documents with. Every httptest TLS server presents
// the same test certificate, so it trusts test issuers started with
// httptest.NewTLSServer.
func Federation() Option {
	return func(c *config) { c.federation = true }
}

// ResourceAliases gives the token service other names of first-party
// resources (sts.Config.ResourceAliases), as a server with its own domain
// does.
func ResourceAliases(aliases map[string]string) Option {
	return func(c *config) { c.resourceAliases = aliases }
}

// New starts an environment over st. The listener is closed when the test
// ends.
func New(t testing.TB, st store.Store, opts ...Option) *Env {
	t.Helper()
	cfg := config{loginHosts: []string{"127.0.0.1"}}
	for _, o := range opts {
		o(&cfg)
	}
	ctx := context.Background()
	e := &Env{Store: st, Logger: slog.New(slog.DiscardHandler)}
	var err error
	e.Dir, err = directory.New(st, RandomKey(t), RandomKey(t))
	Must(t, err)
	Must(t, e.Dir.EnsureFirstParty(ctx))
	e.Keys, err = pki.LoadOrCreateKeySet(t.TempDir())
	Must(t, err)
	e.Audit = audit.New(st, e.Logger)

	// The front door's part: a request id, the base URL, the surface.
	e.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(httpx.WithInfo(r.Context(), httpx.Info{RequestID: uuid.NewString(), ClientAddr: r.RemoteAddr, BaseURL: "https://" + r.Host}))
		if e.route != nil {
			if h := e.route(r); h != nil {
				h.ServeHTTP(w, r)
				return
			}
		}
		e.STS.ServeHTTP(w, r)
	}))
	if cfg.cert != nil {
		e.Server.TLS = &tls.Config{Certificates: []tls.Certificate{*cfg.cert}}
	}
	e.Server.StartTLS()
	t.Cleanup(e.Server.Close)
	clientTLS := &tls.Config{RootCAs: cfg.roots}
	if cfg.cert == nil {
		// httptest's certificate is for example.com; the Host header
		// still says which service is meant.
		clientTLS = &tls.Config{RootCAs: e.Server.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs, ServerName: "example.com"}
	}
	addr := e.Server.Listener.Addr().String()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	e.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: clientTLS,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
	}}
	e.LoginURL = e.Server.URL
	if cfg.loginURL != "" {
		e.LoginURL = cfg.loginURL
	}

	loginHosts := cfg.loginHosts
	e.KEK = RandomKey(t)
	sc := sts.Config{Directory: e.Dir, Keys: e.Keys, Audit: e.Audit, Logger: e.Logger, ResourceAliases: cfg.resourceAliases, KEK: e.KEK,
		IsLoginHost: func(h string) bool {
			for _, l := range loginHosts {
				if h == l {
					return true
				}
			}
			return false
		}}
	if cfg.federation {
		sc.FederationClient = e.Server.Client()
	}
	e.STS = sts.New(sc)
	e.Verifier = e.STS.Verifier()
	return e
}

// Route mounts a surface: route picks the handler of a request (after the
// front door), or returns nil to leave it to the token service.
func (e *Env) Route(route func(*http.Request) http.Handler) {
	e.route = route
}

// Client is a client whose every connection, whatever the host, goes to
// the listener.
func (e *Env) Client() *http.Client { return e.client }

// Token gets an app-only token from the real token endpoint (v2,
// client_credentials with a client secret) at LoginURL.
func (e *Env) Token(t testing.TB, tenantID, clientID, secret, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID},
		"client_secret": {secret}, "scope": {scope}}
	resp, err := e.Client().Post(e.LoginURL+"/"+tenantID+"/oauth2/v2.0/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	Must(t, err)
	defer resp.Body.Close()
	var doc map[string]any
	Must(t, json.NewDecoder(resp.Body).Decode(&doc))
	tok, _ := doc["access_token"].(string)
	if resp.StatusCode != 200 || tok == "" {
		t.Fatalf("token for %s in %s: %d %v", clientID, tenantID, resp.StatusCode, doc)
	}
	return tok
}

// Tenants creates the two tenants the surfaces' tests work in, contoso and
// fabrikam, each with its bootstrap administrator.
func (e *Env) Tenants(t testing.TB) (contoso, fabrikam *directory.TenantBootstrap) {
	t.Helper()
	ctx := context.Background()
	contoso, err := e.Dir.CreateTenant(ctx, "contoso")
	Must(t, err)
	fabrikam, err = e.Dir.CreateTenant(ctx, "fabrikam")
	Must(t, err)
	return contoso, fabrikam
}

// RandomKey is a random 32-byte key.
func RandomKey(t testing.TB) []byte {
	k := make([]byte, 32)
	_, err := rand.Read(k)
	Must(t, err)
	return k
}

// Must fails the test on an error.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// ARMAPIVersion is an api-version that Resource Manager takes for the
// resource type the path (or URL) names, as a client generated for that
// type sends: the front door refuses any other (arm's apiversion_check.go).
func ARMAPIVersion(path string) string {
	if i := strings.Index(path, "://"); i >= 0 {
		path = path[i+3:]
		if j := strings.IndexByte(path, '/'); j >= 0 {
			path = path[j:]
		}
	}
	p, _, _ := strings.Cut(path, "?")
	segs := strings.Split(p, "/")
	ns, typ := "Microsoft.Resources", ""
	for i := len(segs) - 2; i >= 0; i-- {
		if strings.EqualFold(segs[i], "providers") {
			// The registry (…/providers/{ns}[/register]) is Microsoft.Resources'.
			if i+2 < len(segs) && !strings.EqualFold(segs[i+2], "register") && !strings.EqualFold(segs[i+2], "unregister") {
				ns, typ = segs[i+1], segs[i+2]
			}
			break
		}
	}
	switch strings.ToLower(ns) {
	case "microsoft.authorization":
		if strings.EqualFold(typ, "locks") {
			return "2020-05-01"
		}
		return "2022-04-01"
	case "tenantbridge.authorization":
		return "2022-04-01"
	case "microsoft.keyvault":
		return "2023-07-01"
	case "microsoft.servicebus":
		return "2022-10-01-preview"
	case "microsoft.managedidentity":
		return "2023-01-31"
	case "microsoft.solutions":
		return "2021-07-01"
	}
	return "2021-04-01"
}

// AnyARMVersion stands for "the api-version of this URL's resource type"
// in a test's Resource Manager URL; WithARMVersion puts the real one in.
const AnyARMVersion = "api-version=ANY"

// WithARMVersion replaces AnyARMVersion in u with ARMAPIVersion of u.
func WithARMVersion(u string) string {
	if !strings.Contains(u, AnyARMVersion) {
		return u
	}
	return strings.Replace(u, AnyARMVersion, "api-version="+ARMAPIVersion(u), 1)
}
