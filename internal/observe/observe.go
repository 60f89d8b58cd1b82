// Package observe is what operators watch tenantbridge with: the
// Prometheus metrics of every surface and of the machinery behind them
// (token issuance, RBAC, Service Bus queues, the outbox, the store, the
// audit log, AMQP). One Metrics holds one registry (no global state: two
// servers in one test process count apart) and implements the small
// Observer interfaces that the feature packages declare (rbac.Observer,
// servicebus.BrokerObserver, amqp.Observer, sts.Observer,
// outbox.Observer, audit.Observer), so that none of them imports
// Prometheus, and each counts with an interface call and an atomic add.
//
// It also holds the server's OpenTelemetry tracing (trace.go): off unless
// configured, a server span per request at the front door, and child
// spans for RBAC decisions (rbac.WithTracer) and the store calls that
// Store times.
//
// Label values are bounded, so that no client can grow the registry:
// surfaces are the front door's fixed names, error codes are the server's
// own (and folded to "other" past maxErrorCodes or when not code-shaped),
// and queues are resource ids, folded to "_other" past Options.MaxQueues.
package observe

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Options tune a Metrics.
type Options struct {
	// MaxQueues bounds the queues that get series of their own (sends,
	// receives, depth, …); the operations of queues past it are counted
	// under queue="_other" and their depth is not read. Zero means
	// DefaultMaxQueues.
	MaxQueues int
	// Store, when set, is read at each scrape for the depth of the
	// tracked queues (QueueStats) and the outbox backlog. Nil exports
	// neither.
	Store store.Store
	// Tracer, when set, makes the store calls that Store times child
	// spans of the request or decision they serve (Tracing.Tracer); nil
	// traces nothing.
	Tracer trace.Tracer
}

// DefaultMaxQueues is Options.MaxQueues' default: a scrape reads the depth
// of at most this many queues, one small query each.
const DefaultMaxQueues = 500

// Metrics is the server's registry and its families.
type Metrics struct {
	reg *prometheus.Registry

	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	requestSeries   sync.Map // requestKey → prometheus.Counter
	errorCodes      *bounded

	tokens *prometheus.CounterVec
	rbac   [2][2][3]prometheus.Counter // [cached][allowed][0 ok, 1 error]; see RBACDecision

	queues *queueSet

	outboxAttempts *prometheus.CounterVec

	storeDuration *prometheus.HistogramVec
	auditDuration prometheus.Histogram
	auditFailures prometheus.Counter

	amqpConns      prometheus.Gauge
	amqpConnsTotal prometheus.Counter
	amqpLinks      [2]prometheus.Gauge   // [sender]: 0 the client receives, 1 it sends
	amqpLinksTotal [2]prometheus.Counter // likewise

	tracer trace.Tracer // Options.Tracer
}

// requestKey names one series of tenantbridge_http_requests_total.
type requestKey struct {
	surface string
	status  int
	code    string
}

// latencyBuckets suit the store and the audit log: from a cached read
// (tens of microseconds) to a slow fsync (a second).
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// New returns a Metrics with every family registered, and Go's runtime
// and the process's own metrics beside them.
func New(opts Options) *Metrics {
	if opts.MaxQueues <= 0 {
		opts.MaxQueues = DefaultMaxQueues
	}
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg, errorCodes: newBounded(maxErrorCodes), tracer: opts.Tracer}
	f := promauto.With(reg)
	m.requests = f.NewCounterVec(prometheus.CounterOpts{Name: "tenantbridge_http_requests_total", Help: "HTTP requests answered, by surface (token, signin, graph, arm, keyvault, servicebus, operator, health, metrics, other), status and the answer's error code (AADSTS code, Graph/ARM/Key Vault code, Service Bus status; empty on success)."}, []string{"surface", "status", "error_code"})
	m.requestDuration = f.NewHistogramVec(prometheus.HistogramOpts{Name: "tenantbridge_http_request_duration_seconds", Help: "Time from a request's arrival at the front door to the end of its answer, by surface. Service Bus receives include their long poll.", Buckets: prometheus.DefBuckets}, []string{"surface"})
	m.tokens = f.NewCounterVec(prometheus.CounterOpts{Name: "tenantbridge_tokens_issued_total", Help: "Access tokens issued, by grant type (client_credentials, authorization_code, refresh_token, …, managed_identity) and the kind of credential the client proved itself with (secret, certificate, federated, managed_identity, none)."}, []string{"grant", "credential"})
	rbac := f.NewCounterVec(prometheus.CounterOpts{Name: "tenantbridge_rbac_decisions_total", Help: "RBAC access decisions, by result (allowed, denied, error: undecidable, a refusal) and whether the decision cache answered (hit) or the store was read (miss)."}, []string{"result", "cache"})
	for cached, cache := range []string{"miss", "hit"} {
		for allowed, result := range []string{"denied", "allowed"} {
			m.rbac[cached][allowed][0] = rbac.WithLabelValues(result, cache)
			m.rbac[cached][allowed][1] = rbac.WithLabelValues("error", cache)
		}
	}
	m.queues = newQueueSet(f, opts.MaxQueues)
	m.outboxAttempts = f.NewCounterVec(prometheus.CounterOpts{Name: "tenantbridge_outbox_attempts_total", Help: "Delivery attempts of the outbox (managed applications' notifications), by outcome: delivered, retry (failed, tried again later) or failed (given up)."}, []string{"result"})
	m.storeDuration = f.NewHistogramVec(prometheus.HistogramOpts{Name: "tenantbridge_store_operation_duration_seconds", Help: "Latency of the store's main calls, by operation (transaction, ApplyQueueOps, reads on the hot paths).", Buckets: latencyBuckets}, []string{"op"})
	m.auditDuration = f.NewHistogram(prometheus.HistogramOpts{Name: "tenantbridge_audit_commit_duration_seconds", Help: "Time a request waits for its audit record to be committed (the group commit's linger and the store's write).", Buckets: latencyBuckets})
	m.auditFailures = f.NewCounter(prometheus.CounterOpts{Name: "tenantbridge_audit_failures_total", Help: "Audit records that could not be stored (the action they record failed with them)."})
	m.amqpConns = f.NewGauge(prometheus.GaugeOpts{Name: "tenantbridge_amqp_connections", Help: "AMQP connections open (AMQPS and AMQP over WebSockets), handshake included."})
	m.amqpConnsTotal = f.NewCounter(prometheus.CounterOpts{Name: "tenantbridge_amqp_connections_total", Help: "AMQP connections accepted since the server started."})
	links := f.NewGaugeVec(prometheus.GaugeOpts{Name: "tenantbridge_amqp_links", Help: "AMQP links attached, by the client's role: sender (it sends to a queue) or receiver."}, []string{"role"})
	linksTotal := f.NewCounterVec(prometheus.CounterOpts{Name: "tenantbridge_amqp_links_total", Help: "AMQP links attached since the server started, by the client's role."}, []string{"role"})
	for i, role := range []string{"receiver", "sender"} {
		m.amqpLinks[i], m.amqpLinksTotal[i] = links.WithLabelValues(role), linksTotal.WithLabelValues(role)
	}
	if opts.Store != nil {
		reg.MustRegister(&depthCollector{st: opts.Store, queues: m.queues})
		reg.MustRegister(newOutboxCollector(opts.Store))
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in Prometheus's text (or OpenMetrics)
// format. It does no authorization of its own: the front door decides who
// may scrape.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the registry, for tests that read values directly.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Request counts one answered request. code is the answer's error code
// ("" for success); a code that is not code-shaped, or beyond the first
// maxErrorCodes distinct ones, is counted as "other". It allocates only
// the first time a combination is seen.
func (m *Metrics) Request(surface string, status int, code string, took time.Duration) {
	code = m.errorCodes.fold(code)
	k := requestKey{surface, status, code}
	c, ok := m.requestSeries.Load(k)
	if !ok {
		c, _ = m.requestSeries.LoadOrStore(k, m.requests.WithLabelValues(surface, strconv.Itoa(status), code))
	}
	c.(prometheus.Counter).Inc()
	m.requestDuration.WithLabelValues(surface).Observe(took.Seconds())
}

// TokenIssued counts an issued access token (sts.Observer). grant and
// credential come from the token service's own fixed names.
func (m *Metrics) TokenIssued(grant, credential string) {
	m.tokens.WithLabelValues(grant, credential).Inc()
}

// RBACDecision counts a decision (rbac.Observer): cached when the decision
// cache answered; err when no decision could be made (a refusal).
func (m *Metrics) RBACDecision(allowed, cached bool, err error) {
	i := 0
	if err != nil {
		i = 1
	}
	m.rbac[b2i(cached)][b2i(allowed)][i].Inc()
}

// OutboxAttempt counts a delivery attempt's outcome (outbox.Observer):
// the state the message was left in.
func (m *Metrics) OutboxAttempt(state store.OutboxState) {
	result := "failed"
	switch state {
	case store.OutboxDelivered:
		result = "delivered"
	case store.OutboxPending:
		result = "retry"
	}
	m.outboxAttempts.WithLabelValues(result).Inc()
}

// AuditCommitted observes how long a record took to commit
// (audit.Observer).
func (m *Metrics) AuditCommitted(took time.Duration, err error) {
	if err != nil {
		m.auditFailures.Inc()
		return
	}
	m.auditDuration.Observe(took.Seconds())
}

// AMQPConnection counts a connection opening or ending (amqp.Observer).
func (m *Metrics) AMQPConnection(open bool) {
	if open {
		m.amqpConns.Inc()
		m.amqpConnsTotal.Inc()
		return
	}
	m.amqpConns.Dec()
}

// AMQPLink counts a link attaching or ending (amqp.Observer); sender is
// the client's role.
func (m *Metrics) AMQPLink(sender, attached bool) {
	if attached {
		m.amqpLinks[b2i(sender)].Inc()
		m.amqpLinksTotal[b2i(sender)].Inc()
		return
	}
	m.amqpLinks[b2i(sender)].Dec()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
