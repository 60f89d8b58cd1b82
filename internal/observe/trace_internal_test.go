package observe

import (
	"context"
	"net/http"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Tracing is off unless a flag or the OTEL_* environment configures it.
func TestTracingWanted(t *testing.T) {
	for _, c := range []struct {
		name     string
		endpoint string
		env      map[string]string
		on       bool
		err      bool
	}{
		{name: "nothing configured"},
		{name: "the flag", endpoint: "http://127.0.0.1:4318", on: true},
		{name: "the flag beats OTEL_TRACES_EXPORTER=none", endpoint: "http://c:4318", env: map[string]string{envTracesExporter: "none"}, on: true},
		{name: "an endpoint in the environment", env: map[string]string{envEndpoint: "http://c:4318"}, on: true},
		{name: "a traces endpoint in the environment", env: map[string]string{envTracesEndpoint: "http://c:4318/v1/traces"}, on: true},
		{name: "OTEL_TRACES_EXPORTER=otlp alone", env: map[string]string{envTracesExporter: "otlp"}, on: true},
		{name: "OTEL_TRACES_EXPORTER=none", env: map[string]string{envTracesExporter: "none", envEndpoint: "http://c:4318"}},
		{name: "the SDK disabled", env: map[string]string{envSDKDisabled: "true", envEndpoint: "http://c:4318"}},
		{name: "an exporter not spoken", env: map[string]string{envTracesExporter: "zipkin"}, err: true},
		{name: "gRPC", env: map[string]string{envEndpoint: "http://c:4317", envProtocol: "grpc"}, err: true},
		{name: "gRPC for traces only", endpoint: "http://c:4317", env: map[string]string{envTracesProtocol: "grpc"}, err: true},
		{name: "http/protobuf named", env: map[string]string{envEndpoint: "http://c:4318", envProtocol: "http/protobuf"}, on: true},
	} {
		on, err := tracingWanted(TracingConfig{Endpoint: c.endpoint, Getenv: func(k string) string { return c.env[k] }})
		if on != c.on || (err != nil) != c.err {
			t.Errorf("%s: on %v, err %v; want on %v, an error %v", c.name, on, err, c.on, c.err)
		}
	}
}

func TestTracesURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:4318":         "http://127.0.0.1:4318/v1/traces",
		"http://127.0.0.1:4318/":        "http://127.0.0.1:4318/v1/traces",
		"https://otel.example:443/otlp": "https://otel.example:443/otlp/v1/traces",
		"ftp://c:21":                    "",
		"127.0.0.1:4318":                "",
		"http://user:pw@c:4318":         "",
		"http://c:4318/?x=1":            "",
		"http://":                       "",
	} {
		got, err := tracesURL(in)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("tracesURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// A nil Tracing is tracing off: no span, the context unchanged.
func TestNilTracingStartsNothing(t *testing.T) {
	var tr *Tracing
	ctx := context.Background()
	r, _ := http.NewRequest("GET", "https://graph.microsoft.com/v1.0/me", nil)
	r.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	got, span := tr.StartRequest(ctx, r)
	if span != nil || got != ctx || tr.Tracer() != nil || tr.Shutdown(ctx) != nil {
		t.Fatalf("a nil Tracing started something")
	}
	EndRequest(nil, RequestOutcome{}) // must not panic
}

// tenantStore answers GetTenant from memory: the store under the wrapper,
// so that what is measured is the wrapper's own cost.
type tenantStore struct{ store.Store }

func (tenantStore) GetTenant(context.Context, string) (store.Tenant, error) {
	return store.Tenant{ID: "t"}, nil
}

// The store's calls are child spans of a recording span, and cost no
// allocation without one: tracing off (no tracer), or on but outside a
// traced request (the broker's loop, the outbox).
func TestStoreSpansOnlyUnderARecordingSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tracer := tp.Tracer("test")
	off := New(Options{}).Store(tenantStore{})
	on := New(Options{Tracer: tracer}).Store(tenantStore{})
	ctx := context.Background()
	for name, st := range map[string]store.Store{"off": off, "on, no parent": on} {
		if n := testing.AllocsPerRun(200, func() { _, _ = st.GetTenant(ctx, "t") }); n != 0 {
			t.Errorf("GetTenant with tracing %s: %v allocations", name, n)
		}
	}
	if got := len(rec.Ended()); got != 0 {
		t.Fatalf("%d spans without a parent", got)
	}
	pctx, parent := tracer.Start(ctx, "request", trace.WithSpanKind(trace.SpanKindServer))
	if _, err := on.GetTenant(pctx, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := off.GetTenant(pctx, "t"); err != nil {
		t.Fatal(err)
	}
	parent.End()
	ended := rec.Ended()
	if len(ended) != 2 || ended[0].Name() != "store.GetTenant" || ended[0].Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("spans %v, want store.GetTenant under the request and nothing from the untraced store", ended)
	}
}

// BenchmarkStoreCall is the wrapper's cost on a hot read: tracing off, on
// outside a traced request, and on inside one.
func BenchmarkStoreCall(b *testing.B) {
	tp := sdktrace.NewTracerProvider() // no exporter: spans are recorded and dropped
	tracer := tp.Tracer("bench")
	traced, parent := tracer.Start(context.Background(), "request")
	defer parent.End()
	for _, c := range []struct {
		name string
		st   store.Store
		ctx  context.Context
	}{
		{"bare", tenantStore{}, context.Background()},
		{"tracing off", New(Options{}).Store(tenantStore{}), context.Background()},
		{"tracing on, untraced call", New(Options{Tracer: tracer}).Store(tenantStore{}), context.Background()},
		{"tracing on, traced call", New(Options{Tracer: tracer}).Store(tenantStore{}), traced},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = c.st.GetTenant(c.ctx, "t")
			}
		})
	}
}

// A WebSocket upgrade (AMQP over WebSockets, a connection of hours) is
// not traced; an ordinary request is, in the traceparent's trace.
func TestUpgradesAreNotTraced(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tr := &Tracing{provider: tp, tracer: tp.Tracer("test")}
	ws, _ := http.NewRequest("GET", "https://ns.servicebus.windows.net/$servicebus/websocket", nil)
	ws.Header.Set("Connection", "Upgrade")
	ws.Header.Set("Upgrade", "websocket")
	if _, span := tr.StartRequest(context.Background(), ws); span != nil {
		t.Fatalf("a WebSocket upgrade got a span")
	}
	plain, _ := http.NewRequest("GET", "https://graph.microsoft.com/v1.0/me", nil)
	plain.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	_, span := tr.StartRequest(context.Background(), plain)
	if span == nil {
		t.Fatalf("an ordinary request got no span")
	}
	EndRequest(span, RequestOutcome{Method: "GET", Surface: "graph", Status: 503})
	ended := rec.Ended()
	if len(ended) != 1 || ended[0].Name() != "GET graph" || ended[0].SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" ||
		ended[0].Status().Code.String() != "Error" {
		t.Fatalf("spans %+v", ended)
	}
}
