// Package bench loads a running tenantbridge and measures it, through the
// public wire APIs only (the operator API, Graph and the token service), so
// that what it measures is what any client sees.
//
// RunToken measures the token service: it sets up a throwaway tenant with
// an application holding a client secret, a certificate and a federated
// credential (trusting a managed identity of the same tenant), hammers the
// v2 token endpoint with client-credentials requests for each credential
// kind from a fixed number of goroutines over one kept-alive transport, and
// reports throughput, errors and latency percentiles per kind.
package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

// Kind is a kind of client credential.
type Kind string

// The credential kinds RunToken measures.
const (
	// KindSecret is a client secret (client_secret).
	KindSecret Kind = "secret"
	// KindCertificate is a certificate: a PS256 client assertion the client signs.
	KindCertificate Kind = "certificate"
	// KindFederated is a federated identity credential: the client
	// assertion is a managed identity's token for api://AzureADTokenExchange.
	KindFederated Kind = "federated"
)

// AllKinds are the kinds in the order they are run.
var AllKinds = []Kind{KindSecret, KindCertificate, KindFederated}

// ParseKinds reads a --credential value: a kind, a comma-separated list of
// kinds, or "all".
func ParseKinds(s string) ([]Kind, error) {
	var out []Kind
	for part := range strings.SplitSeq(s, ",") {
		part = strings.ToLower(strings.TrimSpace(part))
		if part == "all" {
			return AllKinds, nil
		}
		k := Kind(part)
		switch k {
		case KindSecret, KindCertificate, KindFederated:
		default:
			return nil, fmt.Errorf("credential kind %q is not known: use secret, certificate, federated or all", part)
		}
		if !containsKind(out, k) {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no credential kind given: use secret, certificate, federated or all")
	}
	return out, nil
}

func containsKind(ks []Kind, k Kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// Defaults of TokenOptions.
const (
	DefaultConcurrency = 16
	DefaultDuration    = 20 * time.Second
	DefaultPresignRate = 2000
	// MaxPresigned bounds how many assertions Presign makes (about 1 KiB each).
	MaxPresigned = 500_000
)

// TokenOptions says how to run the token benchmark.
type TokenOptions struct {
	// Server is how to reach the running server: the content of its data
	// directory's operator.json.
	Server azclient.OperatorCredential
	// Kinds are the credential kinds to measure, in order; empty for all.
	Kinds []Kind
	// Concurrency is the number of goroutines sending requests back to
	// back; 0 means DefaultConcurrency.
	Concurrency int
	// Duration is each kind's measured window; 0 means DefaultDuration.
	Duration time.Duration
	// Warmup is how long each kind runs, uncounted, before its window; 0
	// for none.
	Warmup time.Duration
	// Presign makes the certificate kind's assertions before the clock
	// starts instead of signing one per request, so that the client's
	// signing (about a millisecond of CPU each) does not compete with the
	// server. At most (Warmup+Duration) × PresignRate are made; when they
	// run out the window ends early.
	Presign bool
	// PresignRate caps the presigned assertions per second of run; 0 means
	// DefaultPresignRate.
	PresignRate int
	// HTTP2 sends every request over one HTTP/2 connection; otherwise each
	// goroutine keeps its own HTTP/1.1 connection alive.
	HTTP2 bool
	// Keep leaves the bench tenant in place instead of deleting it.
	Keep bool
	// TenantName names the bench tenant; empty for "bench" and random digits.
	TenantName string
	// Log receives progress lines; nil for none.
	Log io.Writer
}

// ServerMemory is the server's memory as the operator API reports it
// (GET /_operator/v1/stats).
type ServerMemory struct {
	RSSBytes       uint64 `json:"rssBytes"`
	HeapInuseBytes uint64 `json:"heapInuseBytes"`
	Goroutines     int    `json:"goroutines,omitempty"`
}

// KindResult is what one credential kind measured.
type KindResult struct {
	Kind Kind
	// Mode says how requests were made: "client_secret", "signed per
	// request", "presigned", "reused managed identity token".
	Mode string
	// SetupError is set when the kind could not be set up (or its probe
	// request was refused); nothing was measured then.
	SetupError string
	// Window is the measured time: from the first request to the last
	// response.
	Window time.Duration
	// Tokens is the number of tokens issued in the window, Failed the
	// number of refused or failed requests, Errors those by AADSTS code
	// and status (or transport failure).
	Tokens int
	Failed int
	Errors map[string]int
	// Rate is Tokens per second of Window.
	Rate float64
	// Latency is over the successful requests of the window.
	Latency Latency
	// Connections is how many connections the transport opened during the
	// window (0 when every request reused a kept-alive one).
	Connections int64
	// ClientCPU is the CPU time this process (the load generator) used
	// during the window, when known: on a shared machine it is taken from
	// the server.
	ClientCPU time.Duration
	// Presigned is how many assertions were made in advance (Presign).
	Presigned int
	// Notes say what else a reader should know (the window ended early…).
	Notes []string
}

// TokenReport is the result of RunToken.
type TokenReport struct {
	Server      string // the token service's base URL
	Tenant      string // the bench tenant's name
	TenantID    string
	Concurrency int
	Duration    time.Duration
	Warmup      time.Duration
	// Protocol is what the transport negotiated, e.g. HTTP/1.1 or HTTP/2.0.
	Protocol string
	// ClientCPUs is GOMAXPROCS of the load generator.
	ClientCPUs int
	// MemoryAtRest is the server's memory before the bench touched it,
	// MemoryAfter after the load (before cleanup); nil when the server
	// does not report it (MemoryNote says why).
	MemoryAtRest *ServerMemory
	MemoryAfter  *ServerMemory
	MemoryNote   string
	Results      []KindResult
	// Interrupted is set when the context ended before every kind ran.
	Interrupted bool
	// TenantDeleted says the bench tenant was deleted; CleanupError why not.
	TenantDeleted bool
	CleanupError  string
}

// RunToken sets up a bench tenant on the server, measures the token
// endpoint for each kind, deletes the tenant (unless Keep) and reports. A
// kind that cannot be set up is reported with its SetupError and the
// others still run; the error then names it. When ctx ends during the load
// the kinds measured so far are reported, with Interrupted set, and the
// tenant is still deleted.
func RunToken(ctx context.Context, opts TokenOptions) (rep TokenReport, err error) {
	opts = opts.withDefaults()
	rep = TokenReport{Concurrency: opts.Concurrency, Duration: opts.Duration, Warmup: opts.Warmup, ClientCPUs: runtime.GOMAXPROCS(0)}
	b, err := openBench(opts)
	if err != nil {
		return rep, err
	}
	rep.Server = b.authority

	rep.MemoryAtRest, rep.MemoryNote = b.serverMemory(ctx)

	ten, _, err := b.createTenant(ctx, opts.TenantName)
	if err != nil {
		return rep, err
	}
	rep.Tenant, rep.TenantID = ten.Name, ten.TenantID
	defer func() { rep.TenantDeleted, rep.CleanupError = b.releaseTenant(ctx, ten, opts.Keep) }()

	if err := b.setupTenant(ctx, ten); err != nil {
		return rep, interrupted(ctx, err)
	}

	var setupErrs []error
	for _, kind := range opts.Kinds {
		if ctx.Err() != nil {
			rep.Interrupted = true
			break
		}
		res := KindResult{Kind: kind}
		src, err := b.setupKind(ctx, kind, &res)
		if err != nil {
			if ctx.Err() != nil {
				rep.Interrupted = true
				break
			}
			res.SetupError = err.Error()
			setupErrs = append(setupErrs, err)
			rep.Results = append(rep.Results, res)
			b.logf("%s", err)
			continue
		}
		b.measure(ctx, src, &res)
		rep.Results = append(rep.Results, res)
		if ctx.Err() != nil {
			rep.Interrupted = true
			break
		}
	}
	rep.Protocol, rep.MemoryAfter = b.finish(ctx, rep.MemoryAtRest)
	return rep, errors.Join(setupErrs...)
}

// interrupted says so when ctx ending is why err happened.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted during setup: %w", ctx.Err())
	}
	return err
}

func (o TokenOptions) withDefaults() TokenOptions {
	if len(o.Kinds) == 0 {
		o.Kinds = AllKinds
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.PresignRate == 0 {
		o.PresignRate = DefaultPresignRate
	}
	return o
}

func (o TokenOptions) validate() error {
	switch {
	case o.Concurrency < 1 || o.Concurrency > 4096:
		return fmt.Errorf("concurrency %d is out of range: use 1 to 4096", o.Concurrency)
	case o.Duration < 0 || o.Warmup < 0:
		return errors.New("duration and warm-up must not be negative")
	case o.PresignRate < 1:
		return errors.New("the presign rate must be positive")
	case o.Presign && o.Warmup+o.Duration > assertionLifetime-time.Minute:
		return fmt.Errorf("presigned assertions live %s: with --presign, warm-up plus duration must stay under %s", assertionLifetime, assertionLifetime-time.Minute)
	}
	for _, k := range o.Kinds {
		if !containsKind(AllKinds, k) {
			return fmt.Errorf("credential kind %q is not known", k)
		}
	}
	return nil
}

// randomTenantName is "bench" and ten random digits.
func randomTenantName() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1e10))
	if err != nil {
		return fmt.Sprintf("bench%010d", time.Now().UnixNano()%1e10)
	}
	return fmt.Sprintf("bench%010d", n.Int64())
}

// bench is one run's clients and state.
type bench struct {
	opts      TokenOptions
	op        *azclient.Operator
	cred      azclient.OperatorCredential
	setupHTTP *http.Client // setup calls: Graph, the operator API, the identity endpoint
	authority string       // https://LISTEN
	load      *target

	tenant   *azclient.Tenant
	admin    *adminClient
	app      *azclient.Application
	endpoint string // the tenant's v2 token endpoint at the listen address
}

func newBench(opts TokenOptions) (*bench, error) {
	b := &bench{opts: opts, cred: opts.Server}
	local, err := opts.Server.Local()
	if err != nil {
		return nil, err
	}
	if b.authority, err = opts.Server.AuthorityURL(); err != nil {
		return nil, err
	}
	if b.op, err = azclient.NewOperatorFromCredential(opts.Server); err != nil {
		return nil, err
	}
	if b.setupHTTP, err = local.HTTPClient(); err != nil {
		return nil, err
	}
	tr, err := local.Transport()
	if err != nil {
		return nil, err
	}
	b.load = &target{dials: new(atomic.Int64)}
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		b.load.dials.Add(1)
		return dial(ctx, network, addr)
	}
	n := opts.Concurrency
	tr.MaxIdleConns = 2 * n
	tr.MaxIdleConnsPerHost = n
	tr.MaxConnsPerHost = 0
	tr.IdleConnTimeout = 2 * time.Minute
	tr.Protocols = new(http.Protocols)
	if opts.HTTP2 {
		tr.Protocols.SetHTTP2(true)
	} else {
		tr.Protocols.SetHTTP1(true)
	}
	b.load.client = &http.Client{Transport: tr, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return b, nil
}

func (b *bench) logf(format string, args ...any) {
	if b.opts.Log != nil {
		fmt.Fprintf(b.opts.Log, format+"\n", args...)
	}
}

// measure runs the warm-up and the measured window of one kind.
func (b *bench) measure(ctx context.Context, src bodySource, res *KindResult) {
	n := b.opts.Concurrency
	if b.opts.Warmup > 0 {
		b.logf("%s: warming up for %s...", res.Kind, b.opts.Warmup)
		w := b.load.run(ctx, n, b.opts.Warmup, src, 1024)
		if w.exhausted {
			res.Notes = append(res.Notes, "the presigned assertions ran out during the warm-up; raise --presign-rate")
			return
		}
		if ctx.Err() != nil {
			res.Notes = append(res.Notes, "interrupted during the warm-up: nothing measured")
			return
		}
	}
	b.logf("%s: measuring for %s at concurrency %d...", res.Kind, b.opts.Duration, n)
	// Room for 20,000 tokens/s in all before a worker's slice grows.
	capHint := int(min(b.opts.Duration.Seconds()*20000/float64(n), 1<<20)) + 256
	cpu0, cpuOK := processCPU()
	p := b.load.run(ctx, n, b.opts.Duration, src, capHint)
	if cpu1, ok := processCPU(); ok && cpuOK {
		res.ClientCPU = cpu1 - cpu0
	}
	res.Window, res.Tokens, res.Failed, res.Errors, res.Connections = p.elapsed, len(p.samples), p.failed, p.errors, p.dials
	if p.elapsed > 0 {
		res.Rate = float64(len(p.samples)) / p.elapsed.Seconds()
	}
	res.Latency = summarize(p.samples)
	if p.exhausted {
		res.Notes = append(res.Notes, fmt.Sprintf("the presigned assertions ran out after %s of %s; raise --presign-rate", p.elapsed.Round(time.Millisecond), b.opts.Duration))
	}
	if p.interrupted {
		res.Notes = append(res.Notes, fmt.Sprintf("interrupted after %s of %s", p.elapsed.Round(time.Millisecond), b.opts.Duration))
	}
	b.logf("%s: %d tokens in %s (%.1f/s), %d errors", res.Kind, res.Tokens, p.elapsed.Round(time.Millisecond), res.Rate, res.Failed)
}

// formPrefix is the start of a client-credentials request body for the
// app; the credential's parameters follow.
func (b *bench) formPrefix() string {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {b.app.AppID}, "scope": {azclient.GraphScope}}.Encode()
}
