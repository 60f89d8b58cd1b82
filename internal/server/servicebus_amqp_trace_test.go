package server_test

// OpenTelemetry traces of the Service Bus AMQP front-end, exported over
// OTLP/HTTP to the test's receiver (otlpReceiver, trace_test.go) from a
// server started as an operator starts it: the real azservicebus client
// puts its token on $cbs, sends a message carrying a W3C traceparent,
// peeks, receives and completes it, and a principal without a role is
// refused its link. Each is a server span with the messaging conventions'
// attributes; the send continues the producer's trace; the RBAC and store
// work sits beneath the AMQP spans; and no token or lock token is in any.

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/google/uuid"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/server"
)

func TestAMQPTraces(t *testing.T) {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50") // export within 50 ms
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	defer collector.Close()
	w := newBusWorldConfig(t, server.Config{AMQPListen: "127.0.0.1:0", OTLPEndpoint: collector.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, sender, receiver := w.ordersClient(t)

	// The producer's trace: https://www.w3.org/TR/trace-context/#traceparent-header
	traceID, parentID := "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	mustBus(t, sender.SendMessage(ctx, &azservicebus.Message{Body: []byte("traced"), MessageID: ptrTo("traced-1"),
		ApplicationProperties: map[string]any{"traceparent": "00-" + traceID + "-" + parentID + "-01"}}, nil))
	peeked, err := receiver.PeekMessages(ctx, 1, nil)
	mustBus(t, err)
	if len(peeked) != 1 {
		t.Fatalf("peeked %d messages", len(peeked))
	}
	got := receiveN(t, ctx, receiver, 1)[0]
	mustBus(t, receiver.CompleteMessage(ctx, got, nil))
	lockToken := uuid.UUID(got.LockToken)

	// A principal of the tenant without a role on the namespace: its
	// sender's attach is refused.
	dir := w.r.srv.Directory()
	app, err := dir.CreateApplication(ctx, w.tc.TenantID, directory.Application{DisplayName: "no role"})
	mustBus(t, err)
	sp, err := dir.CreateServicePrincipal(ctx, w.tc.TenantID, app.AppID)
	mustBus(t, err)
	secret, err := dir.AddApplicationPassword(ctx, w.tc.TenantID, app.ID, "s", time.Time{}, time.Time{})
	mustBus(t, err)
	cred, err := azidentity.NewClientSecretCredential(w.tc.TenantID, app.AppID, secret.SecretText,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: policy.ClientOptions{Transport: w.r.client()}})
	mustBus(t, err)
	noRole, err := azservicebus.NewClient(w.fqdn, cred, w.amqpsOptions())
	mustBus(t, err)
	defer noRole.Close(ctx)
	refusedSender, err := noRole.NewSender("orders", nil)
	mustBus(t, err)
	var sbErr *azservicebus.Error
	if err := refusedSender.SendMessage(ctx, &azservicebus.Message{Body: []byte("x")}, nil); !errors.As(err, &sbErr) || sbErr.Code != azservicebus.CodeUnauthorizedAccess {
		t.Fatalf("send without a role: %v, want CodeUnauthorizedAccess", err)
	}

	// The spans arrive in batches; wait for each kind of them.
	find := func(spans []*tracepb.Span, name string, match func(*tracepb.Span) bool) *tracepb.Span {
		for _, s := range spans {
			if s.Name == name && (match == nil || match(s)) {
				return s
			}
		}
		return nil
	}
	refused := func(s *tracepb.Span) bool { return spanAttr(s, "enduser.id").GetStringValue() == sp.ID }
	var all []*tracepb.Span
	var send, peek, deliver, complete, attachRefused, putToken *tracepb.Span
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		recv.mu.Lock()
		all = append(all[:0], recv.spans...)
		recv.mu.Unlock()
		send, peek = find(all, "send orders", nil), find(all, "peek orders", nil)
		deliver, complete = find(all, "receive orders", nil), find(all, "complete orders", nil)
		attachRefused = find(all, "attach orders", refused)
		putToken = find(all, "put-token $cbs", nil)
		if send != nil && peek != nil && deliver != nil && complete != nil && attachRefused != nil && putToken != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("in 20 s: send %v, peek %v, receive %v, complete %v, refused attach %v, put-token %v among %d spans",
				send != nil, peek != nil, deliver != nil, complete != nil, attachRefused != nil, putToken != nil, len(all))
		}
	}
	byID := map[string]*tracepb.Span{}
	for _, s := range all {
		byID[string(s.SpanId)] = s
	}
	// under reports whether s descends from anc.
	under := func(s, anc *tracepb.Span) bool {
		for p := byID[string(s.ParentSpanId)]; p != nil; p = byID[string(p.ParentSpanId)] {
			if p == anc {
				return true
			}
		}
		return false
	}
	wantAttrs := func(s *tracepb.Span, want map[string]any) {
		t.Helper()
		if s.Kind != tracepb.Span_SPAN_KIND_SERVER {
			t.Errorf("%s: kind %v, want server", s.Name, s.Kind)
		}
		for k, v := range want {
			a := spanAttr(s, k)
			switch v := v.(type) {
			case string:
				if a.GetStringValue() != v {
					t.Errorf("%s: %s = %q, want %q", s.Name, k, a.GetStringValue(), v)
				}
			case int64:
				if a.GetIntValue() != v {
					t.Errorf("%s: %s = %d, want %d", s.Name, k, a.GetIntValue(), v)
				}
			}
		}
	}
	common := map[string]any{"messaging.system": "servicebus", "tenantbridge.tenant_id": w.tc.TenantID, "server.address": w.fqdn}
	with := func(m map[string]any) map[string]any {
		for k, v := range common {
			m[k] = v
		}
		return m
	}

	// The send continues the producer's trace: the traceparent's span is
	// its parent.
	wantTrace, _ := hex.DecodeString(traceID)
	wantParent, _ := hex.DecodeString(parentID)
	if !bytes.Equal(send.TraceId, wantTrace) || !bytes.Equal(send.ParentSpanId, wantParent) {
		t.Errorf("send span in trace %x under %x, want the message's traceparent %s / %s", send.TraceId, send.ParentSpanId, traceID, parentID)
	}
	wantAttrs(send, with(map[string]any{"messaging.operation.name": "send", "messaging.operation.type": "send",
		"messaging.destination.name": "orders", "messaging.message.id": "traced-1", "tenantbridge.amqp.outcome": "accepted",
		"enduser.id": w.tc.Admin.ServicePrincipalID}))
	rbacUnderSend := false
	for _, s := range all {
		rbacUnderSend = rbacUnderSend || (strings.HasPrefix(s.Name, "rbac.") && bytes.Equal(s.ParentSpanId, send.SpanId))
	}
	if !rbacUnderSend {
		t.Errorf("no RBAC decision span beneath the send span")
	}
	// The sender's attach: allowed, with the store's reads beneath it
	// (the queue's record, the RBAC decision's role assignments).
	attachSend := find(all, "attach orders", func(s *tracepb.Span) bool {
		return spanAttr(s, "tenantbridge.amqp.link.role").GetStringValue() == "sender" &&
			spanAttr(s, "enduser.id").GetStringValue() == w.tc.Admin.ServicePrincipalID
	})
	if attachSend == nil {
		t.Fatal("no span of the sender's attach")
	}
	wantAttrs(attachSend, with(map[string]any{"messaging.destination.name": "orders", "tenantbridge.amqp.outcome": "attached"}))
	storeUnderAttach := false
	for _, s := range all {
		storeUnderAttach = storeUnderAttach || (strings.HasPrefix(s.Name, "store.") && under(s, attachSend))
	}
	if !storeUnderAttach {
		t.Errorf("no store span beneath the sender's attach")
	}

	wantAttrs(putToken, with(map[string]any{"tenantbridge.servicebus.token_type": "jwt", "tenantbridge.servicebus.status_code": int64(202)}))
	if aud := spanAttr(putToken, "tenantbridge.servicebus.audience").GetStringValue(); !strings.Contains(aud, w.fqdn) {
		t.Errorf("put-token's audience %q does not name the namespace", aud)
	}
	if id := spanAttr(putToken, "enduser.id").GetStringValue(); id != w.tc.Admin.ServicePrincipalID && id != sp.ID {
		t.Errorf("put-token's principal %q", id)
	}

	wantAttrs(peek, with(map[string]any{"messaging.operation.name": "peek", "messaging.destination.name": "orders",
		"tenantbridge.servicebus.status_code": int64(200)}))
	wantAttrs(deliver, with(map[string]any{"messaging.operation.name": "receive", "messaging.operation.type": "receive",
		"messaging.message.id": "traced-1", "tenantbridge.servicebus.sequence_number": got.SequenceNumber, "tenantbridge.amqp.outcome": "sent"}))
	// The delivery links to the producer's trace, as the conventions
	// link a consumer's span to the message's creation context.
	if len(deliver.Links) != 1 || !bytes.Equal(deliver.Links[0].TraceId, wantTrace) || !bytes.Equal(deliver.Links[0].SpanId, wantParent) {
		t.Errorf("the receive span's links %v, want one to the message's traceparent", deliver.Links)
	}
	wantAttrs(complete, with(map[string]any{"messaging.operation.name": "complete", "messaging.operation.type": "settle",
		"azure.servicebus.disposition_status": "complete", "tenantbridge.servicebus.sequence_number": got.SequenceNumber,
		"tenantbridge.amqp.outcome": "settled"}))

	// The refused attach: its principal, the AMQP condition, an error.
	wantAttrs(attachRefused, with(map[string]any{"tenantbridge.amqp.link.role": "sender", "tenantbridge.amqp.outcome": "refused",
		"error.type": "amqp:unauthorized-access"}))
	if attachRefused.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("the refused attach's span status %v, want an error", attachRefused.Status)
	}

	// No token, signature or lock token in any span.
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://servicebus.azure.net/.default"}})
	mustBus(t, err)
	secrets := []string{lockToken.String(), strings.ReplaceAll(lockToken.String(), "-", ""), tok.Token,
		tok.Token[strings.LastIndexByte(tok.Token, '.')+1:], secret.SecretText, w.tc.Admin.ClientSecret}
	for _, s := range all {
		values := []string{s.Name}
		for _, a := range s.Attributes {
			values = append(values, a.Value.String())
		}
		for _, v := range values {
			if strings.Contains(v, "eyJ") {
				t.Errorf("span %s carries what looks like a JWT: %q", s.Name, v)
			}
			for _, sec := range secrets {
				if strings.Contains(strings.ToLower(v), strings.ToLower(sec)) {
					t.Errorf("span %s carries a secret or lock token in %q", s.Name, v)
				}
			}
		}
	}
}

func ptrTo[T any](v T) *T { return &v }
