package servicebus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/tenantbridge/tenantbridge/internal/amqp"
	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/gencache"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/token"
)

// Service Bus's resource identifiers: the audience of its tokens and its
// first-party application id (the v2 audience).
const (
	Resource = "https://servicebus.azure.net"
	AppID    = "80369ed6-5f11-4dd9-bef3-692475845e77"
)

// The data actions of the messaging data plane, as Azure RBAC names them.
const (
	ActionSend    = "Microsoft.ServiceBus/namespaces/messages/send/action"
	ActionReceive = "Microsoft.ServiceBus/namespaces/messages/receive/action"
)

// Resource types of the management plane this data plane serves.
const (
	NamespaceType = "Microsoft.ServiceBus/namespaces"
	QueueType     = store.QueueResourceType
)

// Limits.
const (
	// MaxMessageBytes is the Standard tier's largest message (body and
	// properties) and largest batch: 256 KiB. A queue of a Premium
	// namespace takes up to LargestMessageBytes (Config.MessageLimit).
	MaxMessageBytes = 256 << 10
	// LargestMessageBytes is the largest message any queue takes: 1 MiB.
	LargestMessageBytes = 1 << 20
	// DefaultReceiveTimeout is the long-poll of a receive without a
	// timeout parameter; MaxReceiveTimeout caps the parameter.
	DefaultReceiveTimeout = 60 * time.Second
	MaxReceiveTimeout     = 5 * time.Minute
)

// Verifier checks bearer tokens (sts.Verifier satisfies it).
type Verifier interface {
	Verify(ctx context.Context, raw string, audiences ...string) (token.Claims, error)
}

// Access is one request for a data action, as the Authorizer sees it.
type Access struct {
	PrincipalID       string // the caller's object id (oid)
	PrincipalTenantID string // the tenant the token was issued in
	TenantID          string // the namespace's tenant
	DataAction        string // ActionSend or ActionReceive
	Scope             string // the queue's resource id
}

// Authorizer decides data actions (Azure RBAC). An error means "could not
// decide" and is answered as a failure, never as allowed.
type Authorizer interface {
	Authorize(ctx context.Context, a Access) (allowed bool, reason string, err error)
}

// Config holds the dependencies of Service.
type Config struct {
	Store      store.Store
	Broker     *Broker
	Verifier   Verifier
	Authorizer Authorizer
	// Limits reads a queue's properties (lock duration, delivery count,
	// TTL, duplicate detection, size) from its ARM resource; the resource
	// control plane owns that format (QueueLimits, provider.go).
	Limits func(store.Resource) (store.QueueLimits, error)
	// MessageLimit reads the largest message a queue takes
	// (QueueMaxMessageBytes, from its namespace's tier); at most
	// LargestMessageBytes. Nil: MaxMessageBytes for every queue.
	MessageLimit func(store.Resource) (int, error)
	Audit        *audit.Log
	Logger       *slog.Logger
	// KEK (32 bytes) opens the sealed keys of the authorization rules
	// that SharedAccessSignature tokens are checked against; without it
	// only Bearer tokens are accepted.
	KEK []byte
	// Tracer, if set, gives the AMQP front-end its spans (amqptrace.go);
	// nil is tracing off, a nil check on the hot path.
	Tracer trace.Tracer
}

// Service serves https://{namespace}.servicebus.windows.net (or
// {namespace}.servicebus.{custom domain}): the queues' REST data plane.
type Service struct {
	st           store.Store
	broker       *Broker
	verify       Verifier
	authz        Authorizer
	limits       func(store.Resource) (store.QueueLimits, error)
	messageLimit func(store.Resource) (int, error)
	audit        *audit.Log
	log          *slog.Logger
	byName       *gencache.Cache[string, store.Resource]
	queueOf      *gencache.Cache[string, queueInfo]
	kek          []byte
	rules        *gencache.Cache[string, sasRule] // sasauth.go
	// amqp serves the AMQP 1.0 front-end (amqpfront.go) on the
	// connections the server hands it: AMQPS, and WebSockets here.
	amqp *amqp.Server
	// tracer starts the AMQP front-end's spans; nil: tracing off.
	tracer trace.Tracer
}

// queueInfo is a queue's record and the limits read from it.
type queueInfo struct {
	res    store.Resource
	limits store.QueueLimits
	// maxMessage is the largest message (or batch) the queue takes.
	maxMessage int
}

// maxCachedEntities bounds each of the namespace, queue and SAS rule
// caches. A queue is looked up for every message a connected link moves,
// so the caches must hold every entity in steady use: a fan-out of
// 10,000 customers has 10,000 namespaces and 20,000 queues.
const maxCachedEntities = 50_000

// New returns a Service. It panics when a dependency is missing: that is a
// wiring bug, and failing closed beats serving without checks.
func New(cfg Config) *Service {
	if cfg.Store == nil || cfg.Broker == nil || cfg.Verifier == nil || cfg.Authorizer == nil || cfg.Limits == nil || cfg.Audit == nil {
		panic("servicebus: Config needs Store, Broker, Verifier, Authorizer, Limits and Audit")
	}
	if len(cfg.KEK) != 0 && len(cfg.KEK) != 32 {
		panic("servicebus: Config.KEK must be 32 bytes")
	}
	s := &Service{st: cfg.Store, broker: cfg.Broker, verify: cfg.Verifier, authz: cfg.Authorizer, limits: cfg.Limits, messageLimit: cfg.MessageLimit,
		audit: cfg.Audit, log: cfg.Logger,
		byName:  gencache.New[string, store.Resource](cfg.Store, maxCachedEntities),
		queueOf: gencache.New[string, queueInfo](cfg.Store, maxCachedEntities),
		kek:     cfg.KEK, rules: gencache.New[string, sasRule](cfg.Store, maxCachedEntities), tracer: cfg.Tracer}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	// The SDKs open a session for every sender and receiver of a client
	// (azservicebus asks for up to 65535), so a connection may carry as
	// many sessions as links: a client with more than 64 of them must
	// not lose its connection here when it keeps it on Azure. Both
	// transports buffer what they read (TLS, and the WebSocket over TLS),
	// so a connection holds no read buffer of its own beyond a frame
	// header (docs/benchmarks.md, "Many customers on one node").
	s.amqp = &amqp.Server{Connect: s.ConnectAMQP, MaxMessageSize: LargestMessageBytes + 64<<10, Logger: s.log,
		MaxSessions: 1024, MaxLinks: 1024, ReadBufferSize: 16}
	return s
}

// AMQP is the AMQP 1.0 server of the queues, for the listener that accepts
// AMQPS connections (port 5671).
func (s *Service) AMQP() *amqp.Server { return s.amqp }

// route is a parsed data-plane path.
type route struct {
	queue      string
	deadLetter bool
	op         operation
	messageRef string // sequence number (or message id) of a settle
	lockToken  string
}

type operation int

const (
	opNone operation = iota
	opSend
	opPeekLock
	opReceiveAndDelete
	opUnlock
	opComplete
	opRenew
	opPeek
)

// parseRoute reads /{queue}[/$DeadLetterQueue]/messages[/head | /{ref}/{lock}].
func parseRoute(method, path string) (route, bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	var rt route
	if len(segs) < 2 || segs[0] == "" {
		return rt, false
	}
	rt.queue, segs = segs[0], segs[1:]
	if strings.EqualFold(segs[0], "$DeadLetterQueue") {
		rt.deadLetter, segs = true, segs[1:]
	}
	if len(segs) == 0 || !strings.EqualFold(segs[0], "messages") {
		return rt, false
	}
	segs = segs[1:]
	switch {
	case len(segs) == 0 && method == http.MethodPost && !rt.deadLetter:
		rt.op = opSend
	case len(segs) == 0 && method == http.MethodGet:
		rt.op = opPeek
	case len(segs) == 1 && strings.EqualFold(segs[0], "head") && method == http.MethodPost:
		rt.op = opPeekLock
	case len(segs) == 1 && strings.EqualFold(segs[0], "head") && method == http.MethodDelete:
		rt.op = opReceiveAndDelete
	case len(segs) == 2 && segs[0] != "" && segs[1] != "":
		rt.messageRef, rt.lockToken = segs[0], segs[1]
		switch method {
		case http.MethodPut:
			rt.op = opUnlock
		case http.MethodDelete:
			rt.op = opComplete
		case http.MethodPost:
			rt.op = opRenew
		}
	}
	return rt, rt.op != opNone
}

// request is one data-plane request once its caller and queue are known.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	rt     route
	ns     store.Resource
	queue  queueInfo
	host   string // the namespace's host as the client addressed it
	actor  string
	tenant string // the caller's tenant (the token's tid)
}

// ServeHTTP serves one data-plane request.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := strings.ToLower(r.Host)
	if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	if r.URL.Path == webSocketPath {
		s.serveWebSocket(w, r)
		return
	}
	name, _, _ := strings.Cut(host, ".")
	ns, err := s.namespace(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		WriteError(w, http.StatusNotFound, fmt.Sprintf("The messaging namespace '%s' could not be found.", name))
		return
	}
	if err != nil {
		s.internal(w, r, "namespace lookup", err)
		return
	}
	rt, ok := parseRoute(r.Method, r.URL.Path)
	if !ok {
		if r.Method != http.MethodPost && r.Method != http.MethodDelete && r.Method != http.MethodPut && r.Method != http.MethodGet {
			WriteError(w, http.StatusMethodNotAllowed, fmt.Sprintf("The method %s is not allowed on %s.", r.Method, r.URL.Path))
			return
		}
		WriteError(w, http.StatusBadRequest, fmt.Sprintf("The request path %s is not a queue messages path.", r.URL.Path))
		return
	}
	if !validEntityName(rt.queue) {
		s.refuseEntityName(w, r, ns, host, rt)
		return
	}
	q := &request{w: w, r: r, rt: rt, ns: ns, host: host}
	action := ActionReceive
	if rt.op == opSend {
		action = ActionSend
	}
	if !s.authorize(q, action) {
		return
	}
	info, err := s.queueInfo(r.Context(), ns.ID+"/queues/"+rt.queue)
	if errors.Is(err, store.ErrNotFound) {
		WriteError(w, http.StatusGone, fmt.Sprintf("The messaging entity 'sb://%s/%s' could not be found.", host, rt.queue))
		return
	}
	if err != nil {
		s.internal(w, r, "queue lookup", err)
		return
	}
	q.queue = info
	switch rt.op {
	case opSend:
		s.send(q)
	case opPeekLock, opReceiveAndDelete:
		s.receive(q)
	case opPeek:
		s.peek(q)
	default:
		s.settle(q)
	}
}

// namespace finds the namespace a host name names.
func (s *Service) namespace(ctx context.Context, name string) (store.Resource, error) {
	return s.byName.Get(name, func() (store.Resource, error) {
		rs, err := s.st.ResourcesNamed(ctx, NamespaceType, name)
		if err != nil {
			return store.Resource{}, err
		}
		if len(rs) != 1 { // names are global; two would be a corrupt store, and is refused
			return store.Resource{}, store.ErrNotFound
		}
		return rs[0], nil
	})
}

func (s *Service) queueInfo(ctx context.Context, id string) (queueInfo, error) {
	return s.queueOf.Get(strings.ToLower(id), func() (queueInfo, error) {
		res, err := s.st.GetResource(ctx, id)
		if err != nil {
			return queueInfo{}, err
		}
		if !strings.EqualFold(res.Type, QueueType) {
			return queueInfo{}, store.ErrNotFound
		}
		lim, err := s.limits(res)
		if err != nil {
			return queueInfo{}, err
		}
		info := queueInfo{res: res, limits: lim, maxMessage: MaxMessageBytes}
		if s.messageLimit != nil {
			if info.maxMessage, err = s.messageLimit(res); err != nil {
				return queueInfo{}, err
			}
			info.maxMessage = min(max(info.maxMessage, 1), LargestMessageBytes)
		}
		return info, nil
	})
}

// authorize authenticates the caller and decides the data action at the
// queue's scope: a Bearer token through RBAC, a SharedAccessSignature
// against the authorization rules (authorizeSAS). A refusal is answered
// 401, as Service Bus answers a missing claim, and audited.
func (s *Service) authorize(q *request, action string) bool {
	auth := q.r.Header.Get("Authorization")
	scheme, raw, _ := strings.Cut(auth, " ")
	entity := "sb://" + q.host + "/" + q.rt.queue
	if strings.EqualFold(scheme, sasScheme) {
		return s.authorizeSAS(q, action, auth)
	}
	if !strings.EqualFold(scheme, "Bearer") || raw == "" {
		WriteError(q.w, http.StatusUnauthorized, "MissingToken: The request is missing a Bearer token or a SharedAccessSignature. Resource: '"+entity+"'.")
		return false
	}
	who, d, err := s.checkBearer(q.r.Context(), refOf(q.ns), q.host, q.rt.queue, raw, action)
	q.actor, q.tenant = who.actor, who.tenant
	if err != nil {
		s.internal(q.w, q.r, "authorize", err)
		return false
	}
	if d != nil {
		s.writeDenial(q, action, d)
		return false
	}
	if err := s.auditCrossTenant(q.r.Context(), refOf(q.ns), q.rt.queue, action, who, "REST "+q.r.Method); err != nil {
		s.internal(q.w, q.r, "audit", err)
		return false
	}
	return true
}

// writeDenial answers a refused credential with 401 and Service Bus's
// message, auditing it when it is a refusal of who the caller is or what
// it may do; a revoked trust gets the claims challenge azcore follows.
func (s *Service) writeDenial(q *request, action string, d *denial) {
	if d.audited {
		s.auditDenial(q.r.Context(), refOf(q.ns), q.rt.queue, action, caller{actor: q.actor, tenant: q.tenant}, d)
	}
	if d.revoked {
		q.w.Header().Set("WWW-Authenticate", token.ClaimsChallenge("https://login.microsoftonline.com/common/oauth2/authorize", AppID, time.Now()))
	}
	WriteError(q.w, http.StatusUnauthorized, d.message)
}

// internal answers an unexpected error: 500, or 503 ServerBusy for store
// contention (WriteInternal).
func (s *Service) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.ErrorContext(r.Context(), "servicebus: "+what, "err", err)
	WriteInternal(w, err)
}

// storedProps is what a message keeps besides its body and MessageId:
// QueueMessage.Properties.
type storedProps struct {
	ContentType             string          `json:"ct,omitempty"`
	CorrelationID           string          `json:"cid,omitempty"`
	Label                   string          `json:"label,omitempty"`
	ReplyTo                 string          `json:"replyTo,omitempty"`
	ReplyToSessionID        string          `json:"replyToSid,omitempty"`
	SessionID               string          `json:"sid,omitempty"`
	PartitionKey            string          `json:"pk,omitempty"`
	ViaPartitionKey         string          `json:"viaPk,omitempty"`
	To                      string          `json:"to,omitempty"`
	ForcePersistence        bool            `json:"persist,omitempty"`
	TimeToLive              float64         `json:"ttl,omitempty"`
	ScheduledEnqueueTimeUtc *time.Time      `json:"scheduled,omitempty"`
	User                    json.RawMessage `json:"user,omitempty"`
	// AMQP holds, for a message sent over AMQP, its application-properties,
	// body and footer sections as the sender encoded them (amqpmsg.go).
	AMQP []byte `json:"amqp,omitempty"`
}

// newMessage builds the stored form of one message.
func newMessage(body []byte, contentType string, bp BrokerProperties, user map[string]PropertyValue) (store.QueueMessage, error) {
	p := storedProps{ContentType: contentType, CorrelationID: bp.CorrelationId, Label: bp.Label, ReplyTo: bp.ReplyTo,
		ReplyToSessionID: bp.ReplyToSessionId, SessionID: bp.SessionId, PartitionKey: bp.PartitionKey, ViaPartitionKey: bp.ViaPartitionKey,
		To: bp.To, ForcePersistence: bp.ForcePersistence, TimeToLive: bp.TimeToLive}
	m := store.QueueMessage{MessageID: bp.MessageId, SessionID: bp.SessionId, Body: body}
	if m.MessageID == "" {
		// Service Bus gives a message without a MessageId a new GUID,
		// written without dashes.
		var b [16]byte
		_, _ = rand.Read(b[:])
		m.MessageID = hex.EncodeToString(b[:])
	}
	if !bp.ScheduledEnqueueTimeUtc.IsZero() {
		t := bp.ScheduledEnqueueTimeUtc.UTC()
		p.ScheduledEnqueueTimeUtc, m.ScheduledAt = &t, t
	}
	if bp.TimeToLive > 0 {
		if bp.TimeToLive >= math.MaxInt64/float64(time.Second) {
			m.TimeToLive = 0 // beyond time.Duration: forever, as TimeSpan.MaxValue is
		} else {
			m.TimeToLive = time.Duration(bp.TimeToLive * float64(time.Second))
		}
	}
	if len(user) > 0 {
		u, err := MarshalUserProperties(user)
		if err != nil {
			return m, err
		}
		p.User = u
	}
	props, err := json.Marshal(p)
	if err != nil {
		return m, err
	}
	m.Properties = props
	return m, nil
}

// send stores one message, or a batch (Content-Type
// application/vnd.microsoft.servicebus.json), and answers 201 once it is
// durable.
func (s *Service) send(q *request) {
	limit := q.queue.maxMessage
	body, err := io.ReadAll(http.MaxBytesReader(q.w, q.r.Body, int64(limit)))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		WriteError(q.w, http.StatusForbidden, fmt.Sprintf("The message size exceeds the limit of %d bytes for entity 'sb://%s/%s'.", limit, q.host, q.rt.queue))
		return
	}
	if err != nil {
		WriteError(q.w, http.StatusBadRequest, "The request body could not be read: "+err.Error())
		return
	}
	var msgs []store.QueueMessage
	ct := q.r.Header.Get("Content-Type")
	if mt, _, _ := strings.Cut(ct, ";"); strings.EqualFold(strings.TrimSpace(mt), "application/vnd.microsoft.servicebus.json") {
		batch, err := ParseBatch(body)
		if err != nil {
			WriteError(q.w, http.StatusBadRequest, err.Error())
			return
		}
		for _, bm := range batch {
			m, err := newMessage(bm.Body, "", bm.Properties, bm.UserProperties)
			if err != nil {
				WriteError(q.w, http.StatusBadRequest, err.Error())
				return
			}
			msgs = append(msgs, m)
		}
	} else {
		bp, err := ParseBrokerProperties(q.r.Header.Get("BrokerProperties"))
		if err != nil {
			WriteError(q.w, http.StatusBadRequest, "Invalid BrokerProperties header: "+err.Error())
			return
		}
		user, err := ParseUserProperties(q.r.Header)
		if err != nil {
			WriteError(q.w, http.StatusBadRequest, err.Error())
			return
		}
		m, err := newMessage(body, ct, bp, user)
		if err != nil {
			WriteError(q.w, http.StatusBadRequest, err.Error())
			return
		}
		msgs = append(msgs, m)
	}
	if msg := sessionMissing(q.queue, msgs); msg != "" {
		WriteError(q.w, http.StatusBadRequest, msg)
		return
	}
	total := 0
	for _, m := range msgs {
		total += len(m.Body) + len(m.Properties)
	}
	if total > limit {
		WriteError(q.w, http.StatusForbidden, fmt.Sprintf("The message size (%d bytes with its properties) exceeds the limit of %d bytes for entity 'sb://%s/%s'.", total, limit, q.host, q.rt.queue))
		return
	}
	res := s.broker.Do(q.r.Context(), store.QueueOp{Kind: store.QueueSend, QueueID: q.queue.res.ID, Limits: q.queue.limits, Messages: msgs})
	switch {
	case res.Err == nil:
		q.w.WriteHeader(http.StatusCreated)
	case errors.Is(res.Err, store.ErrQuotaExceeded):
		WriteError(q.w, http.StatusForbidden, fmt.Sprintf("QuotaExceeded: the entity 'sb://%s/%s' has reached its maximum size.", q.host, q.rt.queue))
	case errors.Is(res.Err, store.ErrNotFound):
		WriteError(q.w, http.StatusGone, fmt.Sprintf("The messaging entity 'sb://%s/%s' could not be found.", q.host, q.rt.queue))
	default:
		s.internal(q.w, q.r, "send", res.Err)
	}
}

// receiveTimeout reads the timeout parameter (seconds).
func receiveTimeout(r *http.Request) (time.Duration, error) {
	v := r.URL.Query().Get("timeout")
	if v == "" {
		return DefaultReceiveTimeout, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("the timeout %q is not a whole number of seconds", v)
	}
	return min(time.Duration(n)*time.Second, MaxReceiveTimeout), nil
}

// receive answers a peek-lock (201 with a Location to settle by) or a
// receive-and-delete (200), or 204 when no message came in time.
func (s *Service) receive(q *request) {
	timeout, err := receiveTimeout(q.r)
	if err != nil {
		WriteError(q.w, http.StatusBadRequest, err.Error())
		return
	}
	if q.queue.limits.RequiresSession && !q.rt.deadLetter {
		WriteError(q.w, http.StatusBadRequest, fmt.Sprintf("The queue 'sb://%s/%s' requires sessions, which are received over AMQP: accept a session with a Service Bus SDK. Its $DeadLetterQueue can be received here.", q.host, q.rt.queue))
		return
	}
	op := store.QueueOp{Kind: store.QueueReceiveAndDelete, QueueID: q.queue.res.ID, DeadLetter: q.rt.deadLetter, Limits: q.queue.limits}
	if q.rt.op == opPeekLock {
		op.Kind, op.LockToken = store.QueueLock, uuid.NewString() // Service Bus's lock tokens are GUIDs
	}
	m, err := s.broker.Receive(q.r.Context(), op, timeout)
	switch {
	case errors.Is(err, ErrNoMessage):
		q.w.WriteHeader(http.StatusNoContent)
		return
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return // the client left
	case err != nil:
		s.internal(q.w, q.r, "receive", err)
		return
	}
	status := http.StatusOK
	if op.Kind == store.QueueLock {
		status = http.StatusCreated
		path := q.rt.queue
		if q.rt.deadLetter {
			path += "/$DeadLetterQueue"
		}
		q.w.Header().Set("Location", "https://"+q.r.Host+"/"+path+"/messages/"+strconv.FormatInt(m.SequenceNumber, 10)+"/"+m.LockToken)
	}
	if err := writeMessage(q.w, status, m); err != nil {
		s.log.ErrorContext(q.r.Context(), "servicebus: stored message", "queue", q.queue.res.ID, "seq", m.SequenceNumber, "err", err)
	}
}

// received is a stored message as a receiver sees it.
type received struct {
	contentType string
	props       BrokerProperties
	user        map[string]PropertyValue
}

// receivedOf reads a stored message's properties. The message was stored
// by this package: properties that do not decode are a corrupt record,
// returned as an error for the log with what could be read, since the
// message is already locked or removed and its body is the client's.
func receivedOf(m store.QueueMessage) (received, error) {
	var p storedProps
	decodeErr := json.Unmarshal(m.Properties, &p)
	user := map[string]PropertyValue{}
	if len(p.User) > 0 {
		u, err := UnmarshalUserProperties(p.User)
		if err != nil {
			decodeErr = errors.Join(decodeErr, err)
		} else {
			user = u
		}
	}
	if m.DeadLetterReason != "" {
		user["DeadLetterReason"] = StringValue(m.DeadLetterReason)
		user["DeadLetterErrorDescription"] = StringValue(m.DeadLetterDescription)
	}
	bp := BrokerProperties{CorrelationId: p.CorrelationID, ForcePersistence: p.ForcePersistence, Label: p.Label, MessageId: m.MessageID,
		PartitionKey: p.PartitionKey, ReplyTo: p.ReplyTo, ReplyToSessionId: p.ReplyToSessionID, SessionId: p.SessionID, To: p.To,
		ViaPartitionKey: p.ViaPartitionKey, TimeToLive: p.TimeToLive,
		DeliveryCount: int64(m.DeliveryCount), EnqueuedTimeUtc: m.EnqueuedAt, LockToken: m.LockToken, LockedUntilUtc: m.LockedUntil,
		SequenceNumber: m.SequenceNumber, State: StateActive}
	if p.ScheduledEnqueueTimeUtc != nil {
		bp.ScheduledEnqueueTimeUtc = *p.ScheduledEnqueueTimeUtc
	}
	if !m.ExpiresAt.IsZero() {
		// The TTL in force: the message's own, or the queue's default
		// where that is shorter, counted from when the message became
		// active.
		start := m.EnqueuedAt
		if m.ScheduledAt.After(start) {
			start = m.ScheduledAt
		}
		bp.TimeToLive = m.ExpiresAt.Sub(start).Seconds()
	}
	return received{contentType: p.ContentType, props: bp, user: user}, decodeErr
}

// writeMessage answers with a received message: its body, its content
// type, BrokerProperties, and its custom properties as headers.
func writeMessage(w http.ResponseWriter, status int, m store.QueueMessage) error {
	rc, err := receivedOf(m)
	h := w.Header()
	if rc.contentType != "" {
		h.Set("Content-Type", rc.contentType)
	}
	h.Set("BrokerProperties", rc.props.Header())
	WriteUserProperties(h, rc.user)
	w.WriteHeader(status)
	_, _ = w.Write(m.Body)
	return err
}

// settle completes, abandons or renews a locked message.
func (s *Service) settle(q *request) {
	seq, err := strconv.ParseInt(q.rt.messageRef, 10, 64)
	if err != nil || seq <= 0 {
		WriteError(q.w, http.StatusNotFound, fmt.Sprintf("The message %s with lock token %s was not found in 'sb://%s/%s'; settle a message by the sequence number of its Location.",
			q.rt.messageRef, q.rt.lockToken, q.host, q.rt.queue))
		return
	}
	kind := map[operation]store.QueueOpKind{opUnlock: store.QueueAbandon, opComplete: store.QueueComplete, opRenew: store.QueueRenew}[q.rt.op]
	res := s.broker.Do(q.r.Context(), store.QueueOp{Kind: kind, QueueID: q.queue.res.ID, DeadLetter: q.rt.deadLetter,
		Limits: q.queue.limits, SequenceNumber: seq, LockToken: q.rt.lockToken})
	switch {
	case res.Err == nil:
		if kind == store.QueueRenew {
			q.w.Header().Set("BrokerProperties", BrokerProperties{LockedUntilUtc: res.LockedUntil}.Header())
		}
		q.w.WriteHeader(http.StatusOK)
	case errors.Is(res.Err, store.ErrNotFound), errors.Is(res.Err, store.ErrLockLost):
		WriteError(q.w, http.StatusNotFound, fmt.Sprintf("The lock supplied is invalid: it expired, or the message %d was already settled or never locked with %s in 'sb://%s/%s'.",
			seq, q.rt.lockToken, q.host, q.rt.queue))
	default:
		s.internal(q.w, q.r, "settle", res.Err)
	}
}

// MaxPeek bounds the messages one peek returns.
const MaxPeek = 100

// peekedMessage is one message of a peek: the batch format, with the
// broker's properties filled in.
type peekedMessage struct {
	Body             *string         `json:"Body,omitempty"`
	BodyBase64       []byte          `json:"BodyBase64,omitempty"`
	ContentType      string          `json:"ContentType,omitempty"`
	BrokerProperties json.RawMessage `json:"BrokerProperties"`
	UserProperties   map[string]any  `json:"UserProperties,omitempty"`
}

// plainValue is a custom property as a plain JSON value, as the batch
// format writes them: dates as RFC 1123 strings.
func plainValue(v PropertyValue) any {
	switch v.Kind {
	case KindBool:
		return v.Bool
	case KindInt:
		return v.Int
	case KindDouble:
		return v.Double
	case KindTime:
		return FormatTime(v.Time)
	}
	return v.Str
}

// peek lists messages without locking or changing them: GET
// /{queue}[/$DeadLetterQueue]/messages?top=N&fromSequenceNumber=S. Service
// Bus's REST API has no browse (its SDKs peek over AMQP); this is
// tenantbridge's own addition, in the shape of the batch format, for the
// CLI and for diagnostics, and needs the same right as a receive. A body
// that is valid UTF-8 is given as Body, any other as BodyBase64.
func (s *Service) peek(q *request) {
	qs := q.r.URL.Query()
	top, from := 1, int64(0)
	if v := qs.Get("top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPeek {
			WriteError(q.w, http.StatusBadRequest, fmt.Sprintf("top must be a whole number from 1 to %d.", MaxPeek))
			return
		}
		top = n
	}
	if v := qs.Get("fromSequenceNumber"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			WriteError(q.w, http.StatusBadRequest, "fromSequenceNumber must be a whole number.")
			return
		}
		from = n
	}
	msgs, err := s.st.PeekQueueMessages(q.r.Context(), q.queue.res.ID, q.rt.deadLetter, from, top)
	if err != nil {
		s.internal(q.w, q.r, "peek", err)
		return
	}
	out := make([]peekedMessage, 0, len(msgs))
	for _, m := range msgs {
		rc, err := receivedOf(m)
		if err != nil {
			s.log.ErrorContext(q.r.Context(), "servicebus: stored message", "queue", q.queue.res.ID, "seq", m.SequenceNumber, "err", err)
		}
		if m.ScheduledAt.After(s.broker.now()) {
			rc.props.State = StateScheduled
		}
		pm := peekedMessage{ContentType: rc.contentType, BrokerProperties: json.RawMessage(rc.props.Header())}
		if len(rc.user) > 0 {
			pm.UserProperties = map[string]any{}
			for k, v := range rc.user {
				pm.UserProperties[k] = plainValue(v)
			}
		}
		if utf8.Valid(m.Body) {
			b := string(m.Body)
			pm.Body = &b
		} else {
			pm.BodyBase64 = m.Body
		}
		out = append(out, pm)
	}
	q.w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(q.w).Encode(out)
}
