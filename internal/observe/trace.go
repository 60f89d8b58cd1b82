package observe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Tracing is the server's OpenTelemetry tracing: a tracer provider that
// exports spans over OTLP/HTTP (protobuf) in batches, and the W3C Trace
// Context propagator with which a request's incoming traceparent is
// honoured. A nil *Tracing is tracing switched off, and every method is
// then a nil check: nothing is started, allocated or exported.
//
// Like Metrics it is no global state (otel.SetTracerProvider is never
// called), so that two servers in one process trace apart; only the SDK's
// error handler is process-wide (StartTracing).
type Tracing struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	prop     propagation.TraceContext
}

// TracingConfig says whether and where to export traces.
type TracingConfig struct {
	// Endpoint is the OTLP/HTTP collector's base URL
	// (http://collector:4318), as OTEL_EXPORTER_OTLP_ENDPOINT: spans go
	// to its path + /v1/traces. Set, it switches tracing on whatever the
	// environment says. Empty leaves the decision to the environment
	// (TracingFromEnv).
	Endpoint string
	// Getenv reads the environment; nil means none is read (tracing is
	// then on only with Endpoint).
	Getenv func(string) string
	// Logger, if set, receives the exporter's failures (a collector
	// down or refusing), in the server's log format; nil leaves them to
	// the SDK's own plain-text line on standard error.
	Logger *slog.Logger
}

// The environment variables of the OpenTelemetry specification that
// decide whether tracing is on
// (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/).
// The exporter reads the rest itself (headers, certificate, timeout,
// compression), and the SDK the sampler and the batch processor's.
const (
	envSDKDisabled     = "OTEL_SDK_DISABLED"
	envTracesExporter  = "OTEL_TRACES_EXPORTER"
	envEndpoint        = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint  = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envProtocol        = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesProtocol  = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	tracerName         = "github.com/tenantbridge/tenantbridge"
	defaultServiceName = "tenantbridge"
)

// tracingWanted decides from cfg whether tracing is on. Off unless
// configured: a flag's endpoint, OTEL_TRACES_EXPORTER=otlp, or an OTLP
// endpoint in the environment; OTEL_SDK_DISABLED=true and
// OTEL_TRACES_EXPORTER=none switch the environment's off. Only OTLP over
// HTTP with protobuf is spoken: any other exporter or protocol named is
// an error, not a silent nothing.
func tracingWanted(cfg TracingConfig) (bool, error) {
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if p := firstSet(getenv(envTracesProtocol), getenv(envProtocol)); p != "" && p != "http/protobuf" {
		return false, fmt.Errorf("tracing: OTLP protocol %q is not supported; tenantbridge exports http/protobuf", p)
	}
	if cfg.Endpoint != "" {
		return true, nil
	}
	if strings.EqualFold(strings.TrimSpace(getenv(envSDKDisabled)), "true") {
		return false, nil
	}
	switch exp := strings.ToLower(strings.TrimSpace(getenv(envTracesExporter))); exp {
	case "none":
		return false, nil
	case "otlp":
		return true, nil
	case "":
		return getenv(envEndpoint) != "" || getenv(envTracesEndpoint) != "", nil
	default:
		return false, fmt.Errorf("tracing: %s=%q is not supported; tenantbridge exports otlp (or none)", envTracesExporter, exp)
	}
}

func firstSet(vs ...string) string {
	for _, v := range vs {
		if v = strings.ToLower(strings.TrimSpace(v)); v != "" {
			return v
		}
	}
	return ""
}

// tracesURL turns a base endpoint (scheme, host, optional path prefix)
// into the URL spans are posted to, as the specification does with
// OTEL_EXPORTER_OTLP_ENDPOINT: the path + /v1/traces.
func tracesURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("tracing: the OTLP endpoint %q must be an http or https URL with a host (and no credentials, query or fragment)", endpoint)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	u.RawPath = ""
	return u.String(), nil
}

// StartTracing returns the server's tracing, or nil when cfg leaves it
// off. The exporter connects lazily: a collector that is down costs
// dropped spans (and the SDK's error log), never a failed start.
func StartTracing(ctx context.Context, cfg TracingConfig) (*Tracing, error) {
	on, err := tracingWanted(cfg)
	if err != nil || !on {
		return nil, err
	}
	var opts []otlptracehttp.Option
	if cfg.Endpoint != "" {
		u, err := tracesURL(cfg.Endpoint)
		if err != nil {
			return nil, err
		}
		opts = append(opts, otlptracehttp.WithEndpointURL(u))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	// service.name first, so that OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES (resource.WithFromEnv) override it.
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", defaultServiceName)),
		resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	if cfg.Logger != nil {
		// The SDK reports export failures to one process-wide handler;
		// the last server started in a process gets them (one, outside
		// tests).
		logger := cfg.Logger
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			logger.Warn("tracing: spans not exported", "err", err)
		}))
	}
	// The sampler is the SDK's default, parent-based always-on, unless
	// OTEL_TRACES_SAMPLER names another (the SDK reads it).
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Tracing{provider: tp, tracer: tp.Tracer(tracerName)}, nil
}

// Tracer is the tracer the components start their spans with; nil when
// tracing is off.
func (t *Tracing) Tracer() trace.Tracer {
	if t == nil {
		return nil
	}
	return t.tracer
}

// Shutdown exports the spans still buffered and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// ForceFlush exports the spans buffered so far.
func (t *Tracing) ForceFlush(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.ForceFlush(ctx)
}

// maxAttrLen bounds the attribute values taken from a request.
const maxAttrLen = 255

// StartRequest starts the server span of an HTTP request at the front
// door, as the child of the request's W3C traceparent when it carries a
// valid one (https://www.w3.org/TR/trace-context/). Only traceparent and
// tracestate are read: baggage is not honoured. It returns ctx and nil
// when tracing is off.
//
// The span carries nothing secret: no path (Service Bus REST puts lock
// tokens in it), no query (SAS signatures), no header but the two above.
// A protocol upgrade gets no span (isUpgrade).
func (t *Tracing) StartRequest(ctx context.Context, r *http.Request) (context.Context, trace.Span) {
	if t == nil || isUpgrade(r) {
		return ctx, nil
	}
	ctx = t.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
	host := r.Host
	if len(host) > maxAttrLen {
		host = host[:maxAttrLen]
	}
	return t.tracer.Start(ctx, "HTTP "+knownMethod(r.Method), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", knownMethod(r.Method)),
			attribute.String("server.address", host)))
}

// isUpgrade reports a protocol upgrade (AMQP over WebSockets): its
// "request" lasts the connection, hours of AMQP traffic that would all be
// one span's children, so it is not traced, as AMQPS connections are not.
func isUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != ""
}

// knownMethod is the method, or "_OTHER" for one HTTP does not define, as
// the semantic conventions ask (a client's made-up method is not a
// label value of ours).
func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

// RequestOutcome is what the front door knows of a request once it is
// answered, for its span.
type RequestOutcome struct {
	Method, Surface, TenantID, Principal, RequestID, ErrorCode string
	Status                                                     int
	Client                                                     string
}

// EndRequest names and ends a request's server span (nil: tracing off):
// "GET graph", with the surface, the tenant and principal (object ids)
// the caller's credential named, the status and the error code. A 5xx
// marks the span an error, as the HTTP conventions do for servers.
func EndRequest(span trace.Span, o RequestOutcome) {
	if span == nil {
		return
	}
	span.SetName(knownMethod(o.Method) + " " + o.Surface)
	attrs := []attribute.KeyValue{
		attribute.String("tenantbridge.surface", o.Surface),
		attribute.Int("http.response.status_code", o.Status),
		attribute.String("tenantbridge.request_id", o.RequestID),
		attribute.String("client.address", o.Client),
	}
	if o.TenantID != "" {
		attrs = append(attrs, attribute.String("tenantbridge.tenant_id", o.TenantID))
	}
	if o.Principal != "" {
		attrs = append(attrs, attribute.String("enduser.id", o.Principal))
	}
	if o.ErrorCode != "" {
		attrs = append(attrs, attribute.String("error.type", o.ErrorCode))
	}
	span.SetAttributes(attrs...)
	if o.Status >= 500 {
		span.SetStatus(codes.Error, "")
	}
	span.End()
}

// TraceAttr is the request log's trace_id: the span's trace id, or the
// empty attribute, which slog's handlers leave out, when span is nil
// (tracing off, an upgrade).
func TraceAttr(span trace.Span) slog.Attr {
	if span == nil {
		return slog.Attr{}
	}
	return slog.String("trace_id", span.SpanContext().TraceID().String())
}

// childSpan starts a span under ctx's span when that one is recording,
// and returns nil otherwise: work outside a traced request (the broker's
// commit loop, the outbox, a scrape) starts no root spans of its own, and
// with tracing off (tracer nil) this is one nil check.
func childSpan(ctx context.Context, tracer trace.Tracer, name string) (context.Context, trace.Span) {
	if tracer == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, nil
	}
	return tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient))
}
