package servicebus

// OpenTelemetry spans of the AMQP front-end: a server span for each
// put-token on $cbs, each link attach, each $management request, each
// transfer a sender makes to a queue, each settlement a receiver applies
// and each delivery sent to a receiver. The RBAC decisions and store
// reads an operation makes are its children (the span's context is what
// the operation passes down).
//
// With Service.tracer nil (tracing off, the default) every span is
// behind a nil check at its call site, so that the hot path neither
// allocates nor does any other work for tracing: no variadic attribute
// list is built, no context is derived (BenchmarkAMQPFrontSendReceive).
//
// Attribute names follow OpenTelemetry's messaging semantic conventions
// and their Azure Service Bus page
// (https://opentelemetry.io/docs/specs/semconv/messaging/azure-messaging/):
// messaging.system "servicebus", messaging.operation.name and .type,
// messaging.destination.name, messaging.message.id,
// messaging.batch.message_count, and the settlement's
// azure.servicebus.disposition_status (named
// messaging.servicebus.disposition_status before semconv 1.33). What the
// conventions do not name is tenantbridge.*. Nothing secret is an
// attribute: no token (put-token's body), no lock token, no SAS
// signature, no message body or property but the message id.

import (
	"context"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/tenantbridge/tenantbridge/internal/amqp"
	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Attribute keys of the AMQP spans.
const (
	attrSystem          = attribute.Key("messaging.system")
	attrOpName          = attribute.Key("messaging.operation.name")
	attrOpType          = attribute.Key("messaging.operation.type")
	attrDestination     = attribute.Key("messaging.destination.name")
	attrMessageID       = attribute.Key("messaging.message.id")
	attrBatchCount      = attribute.Key("messaging.batch.message_count")
	attrDisposition     = attribute.Key("azure.servicebus.disposition_status")
	attrDeliveryCount   = attribute.Key("azure.servicebus.message.delivery_count")
	attrServerAddress   = attribute.Key("server.address")
	attrErrorType       = attribute.Key("error.type")
	attrEndUser         = attribute.Key("enduser.id")
	attrTenant          = attribute.Key("tenantbridge.tenant_id")
	attrPrincipalTenant = attribute.Key("tenantbridge.principal_tenant_id")
	attrSASRule         = attribute.Key("tenantbridge.servicebus.sas_rule")
	attrSequence        = attribute.Key("tenantbridge.servicebus.sequence_number")
	attrStatusCode      = attribute.Key("tenantbridge.servicebus.status_code")
	attrTokenType       = attribute.Key("tenantbridge.servicebus.token_type")
	attrAudience        = attribute.Key("tenantbridge.servicebus.audience")
	attrLinkRole        = attribute.Key("tenantbridge.amqp.link.role")
	attrSettleMode      = attribute.Key("tenantbridge.amqp.link.snd_settle_mode")
	attrOutcome         = attribute.Key("tenantbridge.amqp.outcome")
)

// maxSpanLinks bounds the links a batch's send span carries (one per
// message that names its producer's trace).
const maxSpanLinks = 128

// startSpan starts an AMQP server span under ctx (a remote parent, or
// none: a link's context carries no span). Callers check c.s.tracer
// first.
func (c *amqpConn) startSpan(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	opts = append(opts, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attrSystem.String("servicebus"), attrServerAddress.String(c.host), attrTenant.String(c.ns.TenantID)))
	return c.s.tracer.Start(ctx, name, opts...)
}

// spanName is the conventions' "{operation} {destination}", the
// destination clipped: it comes from the peer.
func spanName(op, destination string) string {
	return op + " " + clip(destination, maxSpanText)
}

// maxSpanText bounds the text a peer chooses (an entity path, an
// audience) in a span's name or attributes.
const maxSpanText = 260

// noteCaller puts on ctx's span who a credential names, when tracing is
// on and the span records: the principal's object id (or the SAS rule)
// and its tenant when that is not the namespace's.
func (c *amqpConn) noteCaller(ctx context.Context, who caller) {
	if c.s.tracer == nil {
		return
	}
	sp := trace.SpanFromContext(ctx)
	if !sp.IsRecording() {
		return
	}
	if rule, ok := strings.CutPrefix(who.actor, "sas:"); ok {
		sp.SetAttributes(attrSASRule.String(clip(rule, maxSpanText)))
		return
	}
	if who.actor != "" {
		sp.SetAttributes(attrEndUser.String(who.actor))
	}
	if who.tenant != "" && who.tenant != c.ns.TenantID {
		sp.SetAttributes(attrPrincipalTenant.String(who.tenant))
	}
}

// endDelivery ends the span of a transfer's handling with its outcome: a
// rejection is an error, its AMQP condition the error.type.
func endDelivery(sp trace.Span, st wire.DeliveryState) {
	switch s := st.(type) {
	case *wire.Accepted:
		sp.SetAttributes(attrOutcome.String("accepted"))
	case *wire.Rejected:
		sp.SetAttributes(attrOutcome.String("rejected"))
		failSpan(sp, s.Error)
	case nil:
		sp.SetAttributes(attrOutcome.String("settled"))
	default:
		sp.SetAttributes(attrOutcome.String("released"))
	}
	sp.End()
}

// failSpan marks sp failed with e's condition (never its description,
// which may quote what the peer sent).
func failSpan(sp trace.Span, e *wire.Error) {
	cond := "_OTHER"
	if e != nil && e.Condition != "" {
		cond = clip(string(e.Condition), maxSpanText)
	}
	sp.SetAttributes(attrErrorType.String(cond))
	sp.SetStatus(codes.Error, cond)
}

// endStatus ends a request/response node's span with its reply's
// status: 400 and up is an error, the status its error.type.
func endStatus(sp trace.Span, status int32) {
	sp.SetAttributes(attrStatusCode.Int(int(status)))
	if status >= 400 {
		s := statusText(status)
		sp.SetAttributes(attrErrorType.String(s))
		sp.SetStatus(codes.Error, s)
	}
	sp.End()
}

func statusText(status int32) string { return strconv.Itoa(int(status)) }

// tracedPutToken is putToken in a span "put-token $cbs": the token's type
// and audience, the tenant and principal it names (tokenExpiry notes
// them), and the reply's status. The token itself is never an attribute.
func (c *amqpConn) tracedPutToken(ctx context.Context, d *amqp.Delivery) wire.DeliveryState {
	ctx, sp := c.startSpan(ctx, "put-token $cbs", trace.WithAttributes(attrOpName.String("put-token")))
	st, status := c.putTokenAs(ctx, d, sp)
	if status != 0 {
		endStatus(sp, status)
	} else {
		endDelivery(sp, st)
	}
	return st
}

// notePutToken puts a put-token's type and audience on its span (nil:
// not traced).
func notePutToken(sp trace.Span, typ, audience string) {
	if sp == nil {
		return
	}
	t := "other"
	switch typ {
	case cbsTypeJWT:
		t = "jwt"
	case cbsTypeSAS:
		t = "sas"
	}
	sp.SetAttributes(attrTokenType.String(t), attrAudience.String(clip(audience, maxSpanText)))
}

// tracedAttach is attach in a span "attach {entity}": the entity, the
// peer's role and settle mode, the tenant and principal whose token
// allowed or refused it, and the outcome with the AMQP condition of a
// refusal.
func (c *amqpConn) tracedAttach(ctx context.Context, l *amqp.Link) (*amqp.Accept, error) {
	a := l.PeerAttach
	addr, role := "", "receiver"
	if l.PeerSends() {
		role = "sender"
		if a.Target != nil {
			addr = a.Target.Address
		}
	} else if a.Source != nil {
		addr = a.Source.Address
	}
	path := c.entityPath(addr)
	mode := "mixed"
	if a.SndSettleMode != nil {
		switch *a.SndSettleMode {
		case 0:
			mode = "unsettled"
		case 1:
			mode = "settled"
		}
	}
	ctx, sp := c.startSpan(ctx, spanName("attach", path), trace.WithAttributes(attrOpName.String("attach"),
		attrDestination.String(clip(path, maxSpanText)), attrLinkRole.String(role), attrSettleMode.String(mode)))
	defer sp.End()
	acc, err := c.attach(ctx, l)
	if err != nil {
		sp.SetAttributes(attrOutcome.String("refused"))
		failSpan(sp, asError(err))
		return acc, err
	}
	sp.SetAttributes(attrOutcome.String("attached"))
	return acc, nil
}

// managementOps are the $management operations by the conventions'
// operation names (snake case of the SDKs' methods where they name
// none); an operation not served is "_OTHER", never the peer's text.
var managementOps = map[string]string{
	opRenewLock:        "renew_message_lock",
	opPeekMessage:      "peek",
	opSchedule:         "schedule",
	opCancelScheduled:  "cancel_scheduled",
	opReceiveBySeq:     "receive_deferred",
	opDisposition:      "update_disposition",
	opRenewSessionLock: "renew_session_lock",
	opGetSessionState:  "get_session_state",
	opSetSessionState:  "set_session_state",
	opGetSessions:      "get_message_sessions",
}

// tracedManagement is the $management request in a span "{operation}
// {entity}" with the reply's status code.
func (c *amqpConn) tracedManagement(ctx context.Context, entity string, d *amqp.Delivery) wire.DeliveryState {
	req, err := wire.DecodeMessage(d.Payload)
	if err != nil {
		_, sp := c.startSpan(ctx, spanName("management", entity), trace.WithAttributes(attrOpName.String("_OTHER"),
			attrDestination.String(clip(entity, maxSpanText))))
		st := &wire.Rejected{Error: &wire.Error{Condition: wire.ErrDecodeError, Description: err.Error()}}
		endDelivery(sp, st)
		return st
	}
	opS := managementOp(req)
	name, ok := managementOps[opS]
	if !ok {
		name = "_OTHER"
	}
	ctx, sp := c.startSpan(ctx, spanName(name, entity), trace.WithAttributes(attrOpName.String(name),
		attrDestination.String(clip(entity, maxSpanText))))
	status := c.manageAndReply(ctx, entity, opS, req)
	endStatus(sp, status)
	return &wire.Accepted{}
}

// tracedSend is a sender's transfer in a span "send {queue}": the
// message id (one message) or the batch's size, the tenant and
// principal when the link's grant was checked again, and the outcome.
// The W3C trace context a producer put in a message's application
// properties is the span's parent (one message) or one of its links (a
// batch: the conventions link a batch's span to each message's creation
// context), so that the producer's trace continues here.
func (sl *sendLink) tracedSend(ctx context.Context, d *amqp.Delivery) wire.DeliveryState {
	msgs, derr := decodeTransfer(d)
	attrs := []attribute.KeyValue{attrOpName.String("send"), attrOpType.String("send"),
		attrDestination.String(sl.queue)}
	var opts []trace.SpanStartOption
	if derr == nil {
		if d.Format == wire.MessageFormatBatch {
			attrs = append(attrs, attrBatchCount.Int(len(msgs)))
			var links []trace.Link
			for _, m := range msgs {
				if sc := producerContext(m); sc.IsValid() && len(links) < maxSpanLinks {
					links = append(links, trace.Link{SpanContext: sc})
				}
			}
			if len(links) > 0 {
				opts = append(opts, trace.WithLinks(links...))
			}
		} else if len(msgs) == 1 {
			if sc := producerContext(msgs[0]); sc.IsValid() {
				ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
			}
		}
	}
	opts = append(opts, trace.WithAttributes(attrs...))
	ctx, sp := sl.c.startSpan(ctx, spanName("send", sl.queue), opts...)
	st := sl.put(ctx, d, msgs, derr, sp)
	endDelivery(sp, st)
	return st
}

// producerContext is the W3C trace context a producer put in the
// message's application properties: traceparent (and tracestate), or
// else Diagnostic-Id, where the Azure SDKs put it
// (https://learn.microsoft.com/azure/service-bus-messaging/service-bus-end-to-end-tracing:
// "Diagnostic-Id ... W3C traceparent format"; @azure/service-bus's
// instrumentMessage sets applicationProperties["Diagnostic-Id"] to the
// traceparent header; azservicebus v1.11 sets none, so a Go producer
// sets traceparent itself). An invalid or absent one is the zero
// SpanContext.
func producerContext(m *wire.Message) trace.SpanContext {
	if m == nil || len(m.ApplicationProperties) == 0 {
		return trace.SpanContext{}
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), appPropsCarrier(m.ApplicationProperties))
	return trace.SpanContextFromContext(ctx)
}

// appPropsCarrier reads a message's application properties as a W3C
// carrier: traceparent, or Diagnostic-Id in its stead.
type appPropsCarrier wire.Map

func (c appPropsCarrier) Get(key string) string {
	m := wire.Map(c)
	if v, ok := m.Get(key); ok {
		if s, ok := v.(string); ok {
			return s
		}
	}
	if key == "traceparent" {
		if v, ok := m.Get("Diagnostic-Id"); ok {
			if s, ok := v.(string); ok {
				return s
			}
		}
	}
	return ""
}

func (appPropsCarrier) Set(string, string) {}

func (c appPropsCarrier) Keys() []string {
	var keys []string
	for _, e := range c {
		if s, ok := e.Key.(string); ok {
			keys = append(keys, s)
		}
	}
	return keys
}

// dispositionNames are a settlement's operation names (the conventions'
// azure.servicebus.disposition_status values).
var dispositionNames = map[store.QueueOpKind]string{
	store.QueueComplete:   "complete",
	store.QueueAbandon:    "abandon",
	store.QueueDefer:      "defer",
	store.QueueDeadLetter: "dead_letter",
}

// startSettle starts the span "{disposition} {queue}" of a settlement a
// receiver applies: its sequence number, never its lock token.
func (rl *receiveLink) startSettle(ctx context.Context, kind store.QueueOpKind, seq int64) (context.Context, trace.Span) {
	name := dispositionNames[kind]
	return rl.c.startSpan(ctx, spanName(name, rl.path()), trace.WithAttributes(attrOpName.String(name), attrOpType.String("settle"),
		attrDisposition.String(name), attrDestination.String(rl.path()), attrSequence.Int64(seq)))
}

// endSettle ends a settlement's span with its outcome (nil: applied).
func endSettle(sp trace.Span, st *wire.DeliveryState) {
	if r, ok := (*st).(*wire.Rejected); ok {
		sp.SetAttributes(attrOutcome.String("rejected"))
		failSpan(sp, r.Error)
	} else {
		sp.SetAttributes(attrOutcome.String("settled"))
	}
	sp.End()
}

// startDelivery starts the span "receive {queue}" of a message sent to
// a receiver: its message id, sequence number and delivery count (and,
// once the message is encoded, a link to its producer's trace:
// linkProducer).
func (rl *receiveLink) startDelivery(ctx context.Context, m *store.QueueMessage) (context.Context, trace.Span) {
	attrs := []attribute.KeyValue{attrOpName.String("receive"), attrOpType.String("receive"),
		attrDestination.String(rl.path()), attrMessageID.String(m.MessageID), attrSequence.Int64(m.SequenceNumber)}
	if m.DeliveryCount > 0 {
		attrs = append(attrs, attrDeliveryCount.Int(m.DeliveryCount))
	}
	return rl.c.startSpan(ctx, spanName("receive", rl.path()), trace.WithAttributes(attrs...))
}

// linkProducer links a delivery's span to the trace context its
// producer put in the message (producerContext), as the conventions link
// a consumer's spans to a message's creation context: the delivery is
// not part of the producer's operation, but a trace viewer finds one from
// the other.
func linkProducer(sp trace.Span, payload []byte) {
	m, err := wire.DecodeMessage(payload)
	if err != nil {
		return
	}
	if sc := producerContext(m); sc.IsValid() {
		sp.AddLink(trace.Link{SpanContext: sc})
	}
}

// endDeliverySent ends a delivery's span: an error is the link ended
// before the message went out.
func endDeliverySent(sp trace.Span, err error) {
	if err != nil {
		sp.SetAttributes(attrOutcome.String("not_sent"))
		sp.SetStatus(codes.Error, "link ended")
	} else {
		sp.SetAttributes(attrOutcome.String("sent"))
	}
	sp.End()
}

// path is the link's entity path as a destination name.
func (rl *receiveLink) path() string {
	if rl.deadLetter {
		return rl.queue + "/$DeadLetterQueue"
	}
	return rl.queue
}
