package server_test

// OpenTelemetry traces, exported over OTLP/HTTP to a receiver in the test
// (a real HTTP server decoding the protobuf export requests): an ARM call
// carrying a W3C traceparent gives a server span in the caller's trace,
// with the RBAC decision and the store reads beneath it, and no secret in
// any span.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/tenantbridge/tenantbridge/internal/server"
)

// otlpReceiver is a collector's OTLP/HTTP trace endpoint: it decodes each
// export request and keeps its spans.
type otlpReceiver struct {
	mu       sync.Mutex
	spans    []*tracepb.Span
	services []string // each batch's service.name
	bad      []string // requests it could not take
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(why string) {
		o.mu.Lock()
		o.bad = append(o.bad, why)
		o.mu.Unlock()
		http.Error(w, why, http.StatusBadRequest)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		fail(r.Method + " " + r.URL.Path + " " + r.Header.Get("Content-Type"))
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			fail("gzip: " + err.Error())
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(io.LimitReader(body, 16<<20))
	if err != nil {
		fail("read: " + err.Error())
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		fail("decode: " + err.Error())
		return
	}
	o.mu.Lock()
	for _, rs := range req.ResourceSpans {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				o.services = append(o.services, a.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.ScopeSpans {
			o.spans = append(o.spans, ss.Spans...)
		}
	}
	o.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// trace returns the spans received so far of the trace id.
func (o *otlpReceiver) trace(id []byte) []*tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range o.spans {
		if bytes.Equal(s.TraceId, id) {
			out = append(out, s)
		}
	}
	return out
}

func spanAttr(s *tracepb.Span, key string) *commonpb.AnyValue {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a.Value
		}
	}
	return nil
}

func TestTracesFollowARequestThroughRBACAndTheStore(t *testing.T) {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50") // export within 50 ms, not the default 5 s
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	defer collector.Close()
	logs := &browserOutput{}
	r := start(t, server.Config{OTLPEndpoint: collector.URL, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	tc := r.createTenant(t, "traced")
	cred, err := azidentity.NewClientSecretCredential(tc.TenantID, tc.Admin.ClientID, tc.Admin.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: policy.ClientOptions{Transport: r.client()}})
	if err != nil {
		t.Fatal(err)
	}
	rg := "/subscriptions/" + tc.SubscriptionID + "/resourceGroups/traced-rg?api-version=2021-04-01"
	if status, body := armCall(t, r, cred, "PUT", rg, `{"location":"westeurope"}`); status/100 != 2 {
		t.Fatalf("resource group: %d %s", status, body)
	}
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	if err != nil {
		t.Fatal(err)
	}

	// The caller's trace: https://www.w3.org/TR/trace-context/#traceparent-header
	traceID, parentID := "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequest("GET", "https://management.azure.com"+rg, nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	resp, err := r.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET resource group: %d", resp.StatusCode)
	}

	wantTrace, _ := hex.DecodeString(traceID)
	wantParent, _ := hex.DecodeString(parentID)
	var (
		spans []*tracepb.Span
		front *tracepb.Span
	)
	// children counts, under each span id, the children by name prefix.
	children := func(parent *tracepb.Span, prefix string) []*tracepb.Span {
		var out []*tracepb.Span
		for _, s := range spans {
			if bytes.Equal(s.ParentSpanId, parent.SpanId) && strings.HasPrefix(s.Name, prefix) {
				out = append(out, s)
			}
		}
		return out
	}
	var rbacSpans []*tracepb.Span
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		spans = recv.trace(wantTrace)
		front = nil
		for _, s := range spans {
			if s.Kind == tracepb.Span_SPAN_KIND_SERVER {
				front = s
			}
		}
		if front != nil {
			rbacSpans = children(front, "rbac.")
		}
		if front != nil && len(rbacSpans) > 0 && len(children(rbacSpans[0], "store.")) > 0 {
			break
		}
		if time.Now().After(deadline) {
			recv.mu.Lock()
			t.Fatalf("no server span with RBAC and store children in 15 s: %d spans of the trace, %d in all, refused exports %v",
				len(spans), len(recv.spans), recv.bad)
		}
	}

	// The server span: a child of the caller's span, named by method and
	// surface, carrying the surface, tenant, caller and status.
	if !bytes.Equal(front.ParentSpanId, wantParent) {
		t.Errorf("server span's parent %x, want the traceparent's %s", front.ParentSpanId, parentID)
	}
	if front.Name != "GET arm" {
		t.Errorf("server span's name %q, want \"GET arm\"", front.Name)
	}
	for key, want := range map[string]string{"tenantbridge.surface": "arm", "tenantbridge.tenant_id": tc.TenantID,
		"enduser.id": tc.Admin.ServicePrincipalID, "http.request.method": "GET", "server.address": "management.azure.com"} {
		if got := spanAttr(front, key).GetStringValue(); got != want {
			t.Errorf("server span's %s = %q, want %q", key, got, want)
		}
	}
	if got := spanAttr(front, "http.response.status_code").GetIntValue(); got != 200 {
		t.Errorf("server span's status code %d", got)
	}
	if front.EndTimeUnixNano < front.StartTimeUnixNano {
		t.Errorf("server span ends before it starts")
	}

	// The RBAC decision of the read, computed from the store (the PUT's
	// decision was for another action), and its store reads beneath it.
	var read *tracepb.Span
	for _, s := range rbacSpans {
		if spanAttr(s, "tenantbridge.rbac.action").GetStringValue() == "Microsoft.Resources/subscriptions/resourceGroups/read" {
			read = s
		}
	}
	if read == nil {
		t.Fatalf("no rbac.Decide span for the resource group read among %d", len(rbacSpans))
	}
	if got := spanAttr(read, "tenantbridge.rbac.result").GetStringValue(); got != "allowed" {
		t.Errorf("RBAC span's result %q, want allowed", got)
	}
	if spanAttr(read, "tenantbridge.rbac.cached").GetBoolValue() {
		t.Errorf("RBAC span says the cache answered a first read")
	}
	names := map[string]bool{}
	for _, s := range children(read, "store.") {
		names[s.Name] = true
		if s.StartTimeUnixNano < read.StartTimeUnixNano || s.EndTimeUnixNano > read.EndTimeUnixNano {
			t.Errorf("%s lies outside its RBAC span", s.Name)
		}
	}
	if !names["store.ListRoleAssignments"] {
		t.Errorf("the RBAC decision's store spans %v lack store.ListRoleAssignments", names)
	}

	// A request without a traceparent starts a trace of its own: the
	// token requests are roots.
	recv.mu.Lock()
	all := append([]*tracepb.Span(nil), recv.spans...)
	services := recv.services
	recv.mu.Unlock()
	roots := 0
	for _, s := range all {
		if s.Kind == tracepb.Span_SPAN_KIND_SERVER && spanAttr(s, "tenantbridge.surface").GetStringValue() == "token" {
			if len(s.ParentSpanId) != 0 || bytes.Equal(s.TraceId, wantTrace) {
				t.Errorf("a token request's span has a parent %x in trace %x", s.ParentSpanId, s.TraceId)
			}
			roots++
		}
	}
	if roots == 0 {
		t.Errorf("no server span for the token requests among %d spans", len(all))
	}
	if len(services) == 0 || services[0] != "tenantbridge" {
		t.Errorf("service.name %v, want tenantbridge", services)
	}

	// Nothing secret in any span: not the client secret, the access
	// token (nor its signature), the operator key.
	secrets := []string{tc.Admin.ClientSecret, tok.Token, tok.Token[strings.LastIndexByte(tok.Token, '.')+1:], r.srv.Operator().Key}
	for _, s := range all {
		values := []string{s.Name}
		for _, a := range s.Attributes {
			values = append(values, a.Value.String())
		}
		for _, v := range values {
			for _, secret := range secrets {
				if strings.Contains(v, secret) {
					t.Errorf("span %s carries a secret in %q", s.Name, v)
				}
			}
		}
	}
	// The request's log line names its trace.
	logged := false
	for _, l := range strings.Split(string(logs.Bytes()), "\n") {
		logged = logged || (strings.Contains(l, `"msg":"request"`) && strings.Contains(l, `"surface":"arm"`) &&
			strings.Contains(l, `"method":"GET"`) && strings.Contains(l, `"trace_id":"`+traceID+`"`))
	}
	if !logged {
		t.Errorf("no request log line for the GET with trace_id %s", traceID)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if len(recv.bad) > 0 {
		t.Errorf("the receiver refused exports: %v", recv.bad)
	}
}

// A collector that is down costs spans, not requests: the server answers
// as usual and says in its own log format that spans were not exported.
func TestTracesToACollectorThatIsDown(t *testing.T) {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	t.Setenv("OTEL_BSP_EXPORT_TIMEOUT", "500")
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "500")
	gone := httptest.NewServer(http.NotFoundHandler())
	url := gone.URL
	gone.Close() // nothing listens there any more
	logs := &browserOutput{}
	r := start(t, server.Config{OTLPEndpoint: url, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(string(logs.Bytes()), `"msg":"tracing: spans not exported"`); time.Sleep(50 * time.Millisecond) {
		resp, err := r.client().Get("https://" + r.addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("/healthz with the collector down: %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line about unexported spans in 20 s:\n%s", logs.Bytes())
		}
	}
}
