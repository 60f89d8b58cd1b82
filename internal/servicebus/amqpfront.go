package servicebus

// The AMQP 1.0 front-end of the queues: what every Service Bus SDK speaks.
// It is a second front door to the same Broker and the same stored
// messages as REST, and decides access with the same checks (access.go):
// a connection puts tokens on its $cbs node (an Entra token for
// https://servicebus.azure.net, or a Shared Access Signature), and each
// link to a queue is allowed by the token that covers it, checked again
// for every message it carries, so that an expired token or a revoked
// trust stops the link (it is detached with amqp:unauthorized-access).
//
// Sources for the wire conventions: Microsoft's "AMQP 1.0 in Azure Service
// Bus: request-response-based operations" and "AMQP 1.0 protocol guide"
// (CBS put-token, the $management node, message annotations), and the Go
// SDK's internal/cbs.go, internal/rpc.go and message.go (what a reply must
// carry: an int32 status-code and the request's message-id as a string
// correlation-id).

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/tenantbridge/tenantbridge/internal/amqp"
	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// The CBS token types (service-bus-amqp-request-response, "put-token").
const (
	cbsTypeJWT = "jwt"
	cbsTypeSAS = "servicebus.windows.net:sastoken"
)

// amqpReceiveWait bounds one wait of a receiving link for a message, so
// that the link's credential is checked again at least this often.
const amqpReceiveWait = 30 * time.Second

// ConnectAMQP is the amqp.Server's Connect: it finds the namespace the
// connection is for (the open's hostname, {namespace}.servicebus.…, or
// else the SASL hostname or the TLS server name) and returns the handler
// of the connection's links.
func (s *Service) ConnectAMQP(ctx context.Context, c *amqp.Conn) (amqp.Handler, error) {
	var names []string
	if c.PeerOpen != nil {
		names = append(names, c.PeerOpen.Hostname)
	}
	names = append(names, c.Hostname)
	if c.TLS != nil {
		names = append(names, c.TLS.ServerName)
	}
	host := ""
	for _, n := range names {
		if host = namespaceHost(n); host != "" {
			break
		}
	}
	name, _, _ := strings.Cut(host, ".")
	if name == "" {
		return nil, &wire.Error{Condition: wire.ErrNotFound, Description: "The connection names no messaging namespace: set the open's hostname to {namespace}.servicebus.windows.net."}
	}
	ns, err := s.namespace(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &wire.Error{Condition: wire.ErrNotFound, Description: fmt.Sprintf("The messaging namespace '%s' could not be found.", name)}
	}
	if err != nil {
		return nil, err
	}
	return &amqpConn{s: s, ns: refOf(ns), host: host}, nil
}

// namespaceHost is name (a host name, perhaps with a port) lower-cased,
// or "" when it cannot name a namespace: empty, an IP address, localhost.
// The JavaScript SDK with customEndpointAddress amqps://127.0.0.1:5671
// sends no SNI and 127.0.0.1 as its SASL hostname, and the namespace only
// in the open (@azure/service-bus 7.9 dist/index.js
// setCustomEndpointAddress: amqpHostname = the namespace, host = the
// endpoint's; @azure/core-amqp 4.4 ConnectionContextBase.js: hostname:
// amqpHostname ?? host; rhea 3.0 connection.js: the SASL hostname is
// servername || host).
func namespaceHost(name string) string {
	host := strings.ToLower(strings.TrimSuffix(name, "."))
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if host == "" || host == "localhost" || net.ParseIP(host) != nil {
		return ""
	}
	return host
}

// amqpConn is one connection's state: its namespace, and the tokens put
// on its $cbs node, which live and die with it.
type amqpConn struct {
	s *Service
	// ns is what the checks read of the namespace, not its whole record
	// (its resource group, location, tags, properties and times were two
	// fifths of an idle connection's state: docs/benchmarks.md).
	ns   nsRef
	host string

	mu sync.Mutex
	// tokens are the tokens put, sorted by audience (lower-cased): a
	// connection has one or two, which a slice holds in 64 bytes each
	// and a map in 500 (docs/benchmarks.md, "Many customers on one
	// node"); found by binary search, as many as maxConnTokens.
	tokens []audToken

	// The links on which $cbs and $management answer, found by a
	// request's reply-to: the link's target address (azservicebus:
	// "$cbs$$cbs-reply-to-<uuid>"; the JavaScript SDK's $management
	// link, whose target is its name), or else the link's name (the
	// JavaScript SDK's $cbs reply link has no target; amqp.Replies).
	cbsReplies  amqp.Replies
	mgmtReplies amqp.Replies

	expiry expiryWatch // of the links to queues (detachOnExpiry)

	// held are the messages this connection's receivers hold locks on,
	// by lock token, so that $management's renew-lock can name them by
	// token alone, as the SDKs do.
	heldMu sync.Mutex
	held   map[string]heldLock
	// sessions are the sessions this connection's receivers hold, so
	// that $management's session operations (which name a session, not
	// its lock) find their lock.
	sessions map[sessionRef]heldSession
	// heldSweep is when a full held may next have a lapsed lock to drop.
	heldSweep time.Time
}

// heldLock is a message a receiver of the connection locked.
type heldLock struct {
	q          linkQueue
	deadLetter bool
	seq        int64
	until      time.Time // the lock's expiry, as last locked or renewed
	session    string    // the session it was locked under, "" for none
}

// maxHeldLocks bounds the locks one connection remembers for renew-lock.
// A full connection drops the locks that have lapsed (a receiver that
// lets its locks lapse rather than settling them must not lose renew-lock
// for good), at most once per lapse, so that a full map of live locks
// costs no sweep per message.
const maxHeldLocks = 100_000

func (c *amqpConn) hold(token string, h heldLock) {
	c.heldMu.Lock()
	defer c.heldMu.Unlock()
	if c.held == nil {
		c.held = map[string]heldLock{}
	}
	if now := c.s.broker.now(); len(c.held) >= maxHeldLocks && !now.Before(c.heldSweep) {
		var next time.Time
		for t, o := range c.held {
			if !now.Before(o.until) {
				delete(c.held, t)
			} else if next.IsZero() || o.until.Before(next) {
				next = o.until
			}
		}
		c.heldSweep = next
	}
	if _, ok := c.held[token]; ok || len(c.held) < maxHeldLocks {
		c.held[token] = h
	}
}

// renewed records a held lock's new expiry.
func (c *amqpConn) renewed(token string, until time.Time) {
	c.heldMu.Lock()
	if h, ok := c.held[token]; ok {
		h.until = until
		c.held[token] = h
	}
	c.heldMu.Unlock()
}

// release forgets a held lock; the table goes with its last lock (a
// Go map keeps its storage when emptied: an idle connection's would be
// kept for good).
func (c *amqpConn) release(token string) {
	c.heldMu.Lock()
	delete(c.held, token)
	if len(c.held) == 0 {
		c.held = nil
	}
	c.heldMu.Unlock()
}

func (c *amqpConn) heldBy(token string) (heldLock, bool) {
	c.heldMu.Lock()
	defer c.heldMu.Unlock()
	h, ok := c.held[token]
	return h, ok
}

// heldIn is the lock token's message if this connection holds it in the
// queue (or dead-letter queue) a $management node names: a node settles
// and renews only its own entity's locks, as a link does.
func (c *amqpConn) heldIn(token, queue string, deadLetter bool) (heldLock, bool) {
	h, ok := c.heldBy(token)
	if !ok || h.deadLetter != deadLetter || !strings.EqualFold(h.q.id, c.ns.ID+"/queues/"+queue) {
		return heldLock{}, false
	}
	return h, true
}

// cbsToken is a credential put on $cbs for an audience.
type cbsToken struct {
	typ     string
	raw     string
	expires time.Time
}

// audToken is a token and the audience it was put for.
type audToken struct {
	aud string
	cbsToken
}

// tokenAt is where aud's token is in c.tokens, or would be, and whether
// it is there (c.mu held).
func (c *amqpConn) tokenAt(aud string) (int, bool) {
	return slices.BinarySearchFunc(c.tokens, aud, func(t audToken, aud string) int { return strings.Compare(t.aud, aud) })
}

// Attach routes a link by its address: $cbs, or a queue (or its
// dead-letter queue) to send to or receive from; traced, in a span
// (tracedAttach).
func (c *amqpConn) Attach(ctx context.Context, l *amqp.Link) (*amqp.Accept, error) {
	if c.s.tracer != nil {
		return c.tracedAttach(ctx, l)
	}
	return c.attach(ctx, l)
}

func (c *amqpConn) attach(ctx context.Context, l *amqp.Link) (*amqp.Accept, error) {
	a := l.PeerAttach
	var addr string
	if l.PeerSends() {
		if a.Target != nil {
			addr = a.Target.Address
		}
	} else if a.Source != nil {
		addr = a.Source.Address
	}
	if a.OtherTarget != nil {
		// A transaction coordinator (the SDKs' transactions): not served.
		return nil, &wire.Error{Condition: wire.ErrNotImplemented, Description: "Transactions are not supported by this Service Bus."}
	}
	path := c.entityPath(addr)
	switch {
	case path == "$cbs":
		if l.PeerSends() {
			return &amqp.Accept{OnDelivery: c.putToken}, nil
		}
		c.cbsReplies.Add(l)
		return replyAccept, nil
	case strings.HasSuffix(strings.ToLower(path), "/$management"):
		entity := path[:len(path)-len("/$management")]
		if l.PeerSends() {
			return &amqp.Accept{OnDelivery: func(ctx context.Context, d *amqp.Delivery) wire.DeliveryState {
				return c.management(ctx, entity, d)
			}}, nil
		}
		c.mgmtReplies.Add(l)
		return replyAccept, nil
	}
	queue, deadLetter := path, false
	if q, sub, ok := strings.Cut(path, "/"); ok {
		if !strings.EqualFold(sub, "$DeadLetterQueue") {
			return nil, c.notFound(path)
		}
		queue, deadLetter = q, true
	}
	if !validEntityName(queue) {
		return nil, &wire.Error{Condition: wire.ErrInvalidField, Description: fmt.Sprintf("The entity name '%s' is not valid: 1 to 260 letters, digits, periods, hyphens and underscores.", clip(queue, 300))}
	}
	action := ActionReceive
	if l.PeerSends() {
		action = ActionSend
		if deadLetter {
			return nil, &wire.Error{Condition: wire.ErrNotAllowed, Description: "Messages cannot be sent to a dead-letter queue."}
		}
	}
	if err := c.allowedCrossTenant(ctx, queue, action, "link attach"); err != nil {
		return nil, err
	}
	info, err := c.queueOf(ctx, queue)
	if err != nil {
		return nil, err
	}
	if l.PeerSends() {
		c.detachOnExpiry(l, queue)
		sl := &sendLink{c: c, l: l, queue: queue, q: linkQueueOf(info)}
		return &amqp.Accept{OnDelivery: sl.deliver, MaxMessageSize: uint64(info.maxMessage), Credit: sendCredit(info.maxMessage), OnEnd: sl.linkEnded}, nil
	}
	rl := &receiveLink{c: c, l: l, queue: queue, deadLetter: deadLetter, q: linkQueueOf(info)}
	// The link receives when the peer gives credit (OnCredit, from the
	// attach on) and finishes when it ends (OnEnd); between the two it
	// holds no goroutine (receiveLink.poke).
	// A sender settle mode of "settled" is receive-and-delete; anything
	// else is peek-lock (the SDKs send "unsettled" for peek-lock).
	rl.receiveAndDelete = a.SndSettleMode != nil && *a.SndSettleMode == 1
	acc := &amqp.Accept{ManualDrain: true}
	wantSession, session, err := sessionFilterOf(a.Source)
	switch {
	case err != nil:
		return nil, err
	case wantSession && (deadLetter || !info.limits.RequiresSession):
		// Service Bus's words (its InvalidOperationException).
		return nil, &wire.Error{Condition: wire.ErrNotAllowed, Description: "A sessionful message receiver cannot be created on an entity that does not require sessions. Ensure RequiresSession is set to true when creating a Queue or Subscription to enable sessionful behavior."}
	case !wantSession && !deadLetter && info.limits.RequiresSession:
		return nil, &wire.Error{Condition: wire.ErrNotAllowed, Description: "It is not possible for an entity that requires sessions to create a non-sessionful message receiver."}
	case wantSession:
		if acc, err = c.acceptSession(ctx, rl, session); err != nil {
			return nil, err
		}
		rl.watchSession()
	}
	// Watched once accepted: OnEnd lets go of it.
	c.detachOnExpiry(l, queue)
	acc.OnDisposition = rl.disposition
	acc.OnCredit = rl.poke
	acc.OnEnd = rl.linkEnded
	return acc, nil
}

// replyAccept answers the attach of every reply link ($cbs's and
// $management's): the engine only reads an Accept, so one serves them
// all instead of one per link.
var replyAccept = &amqp.Accept{}

// sendLinkCredit is how many messages a sender may have in flight on one
// link: enough to keep a busy sender's pipe full, small enough that a
// connection's links cannot hold more message bytes than the engine lets
// a connection hold (its limit closes the connection). Queues that take
// larger messages get less (sendCredit), so that a link's credit never
// covers more than sendLinkBytes.
const (
	sendLinkCredit = 32
	sendLinkBytes  = sendLinkCredit * MaxMessageBytes
)

// sendCredit is the credit of a sender link to a queue whose messages
// are at most maxMessage bytes.
func sendCredit(maxMessage int) uint32 {
	return uint32(min(sendLinkCredit, max(1, sendLinkBytes/max(maxMessage, 1))))
}

// detachOnExpiry detaches l once no unexpired token on $cbs covers its
// queue: a link whose token lapses without renewal stops, as Service Bus
// stops it; a token put again in time (the SDKs renew before expiry)
// keeps it going. The link is watched until it ends (unwatch, from its
// Accept.OnEnd).
//
// The connection watches all its links with one timer, set for the
// expiry of the earliest token one of them depends on: a timer, a watch
// and a context.AfterFunc per link were a tenth of what a fleet's idle
// links cost (docs/benchmarks.md, "Many customers on one node"), and a
// goroutine per link before them a third of its goroutines. The first
// look is on the timer too, after the attach has been answered.
func (c *amqpConn) detachOnExpiry(l *amqp.Link, queue string) {
	w := &c.expiry
	w.mu.Lock()
	defer w.mu.Unlock()
	w.links = append(w.links, watchedLink{l: l, queue: queue})
	c.expiryAtLocked(c.s.broker.now())
}

// expiryWatch is a connection's watch of its queue links' tokens.
type expiryWatch struct {
	mu    sync.Mutex
	links []watchedLink // the links watched, in no order
	t     *time.Timer   // made for the first link watched, then reused
	at    time.Time     // when t fires; zero: it is off
}

// watchedLink is a link detachOnExpiry watches, and its queue.
type watchedLink struct {
	l     *amqp.Link
	queue string
}

// expiryAtLocked sets the timer to fire at when, unless it fires before.
func (c *amqpConn) expiryAtLocked(when time.Time) {
	w := &c.expiry
	switch {
	case w.t == nil:
		w.t = time.AfterFunc(when.Sub(c.s.broker.now()), c.checkExpiry)
	case w.at.IsZero() || when.Before(w.at):
		w.t.Reset(when.Sub(c.s.broker.now()))
	default:
		return
	}
	w.at = when
}

// unwatch stops watching l, which ended.
func (c *amqpConn) unwatch(l *amqp.Link) {
	w := &c.expiry
	w.mu.Lock()
	defer w.mu.Unlock()
	w.links = slices.DeleteFunc(w.links, func(x watchedLink) bool { return x.l == l })
	if len(w.links) == 0 {
		w.links = nil
		w.t.Stop()
		w.at = time.Time{}
	}
}

// checkExpiry runs when the timer fires: it detaches the links no token
// covers any more, and sets the timer for the expiry of the earliest of
// the tokens that cover the others (10 ms after it, so that the token
// has expired by then).
func (c *amqpConn) checkExpiry() {
	w := &c.expiry
	var expired []watchedLink
	w.mu.Lock()
	w.at = time.Time{}
	var next time.Time
	kept := w.links[:0]
	for _, x := range w.links {
		tok, ok := c.tokenFor(x.queue)
		if !ok {
			expired = append(expired, x)
			continue
		}
		kept = append(kept, x)
		if next.IsZero() || tok.expires.Before(next) {
			next = tok.expires
		}
	}
	clear(w.links[len(kept):])
	w.links = kept
	if len(kept) == 0 {
		w.links = nil
	}
	if !next.IsZero() {
		c.expiryAtLocked(next.Add(10 * time.Millisecond))
	}
	w.mu.Unlock()
	for _, x := range expired {
		x.l.Detach(&wire.Error{Condition: wire.ErrUnauthorizedAccess, Description: fmt.Sprintf(
			"The token for 'sb://%s/%s' has expired. Put a new token on $cbs before the old one expires.", c.host, x.queue)})
	}
}

// queueOf is the queue's record, or amqp:not-found naming it.
func (c *amqpConn) queueOf(ctx context.Context, queue string) (queueInfo, error) {
	info, err := c.s.queueInfo(ctx, c.ns.ID+"/queues/"+queue)
	if errors.Is(err, store.ErrNotFound) {
		return info, c.notFound(queue)
	}
	return info, err
}

// mgmtQueue is queueOf for a $management operation: status 0 and the
// queue's record, or the reply's status and description.
func (c *amqpConn) mgmtQueue(ctx context.Context, queue string) (queueInfo, int32, string) {
	info, err := c.queueOf(ctx, queue)
	var we *wire.Error
	switch {
	case err == nil:
		return info, 0, ""
	case errors.As(err, &we):
		return info, 404, we.Description
	}
	return info, 500, "The server could not read the queue."
}

// notFound is Service Bus's answer for an entity path of the namespace
// that names no entity.
func (c *amqpConn) notFound(path string) *wire.Error {
	return &wire.Error{Condition: wire.ErrNotFound, Description: fmt.Sprintf("The messaging entity 'sb://%s/%s' could not be found.", c.host, path)}
}

// entityPath is a link address without its scheme and host:
// "amqps://ns.servicebus.windows.net/orders" and "orders" are both
// "orders".
func (c *amqpConn) entityPath(addr string) string {
	if i := strings.Index(addr, "://"); i >= 0 {
		rest := addr[i+3:]
		_, p, _ := strings.Cut(rest, "/")
		addr = p
	}
	return strings.Trim(addr, "/")
}

// allowed checks the token that covers queue for action, and says why not
// as an AMQP error (audited as REST's refusals are).
func (c *amqpConn) allowed(ctx context.Context, queue, action string) error {
	_, err := c.allowedAs(ctx, queue, action)
	return err
}

// allowedCrossTenant is allowed for an act that is audited when the
// caller is a principal of another tenant (auditCrossTenant): a link's
// attach, or a $management operation that sends or reads messages without
// a link.
func (c *amqpConn) allowedCrossTenant(ctx context.Context, queue, action, what string) error {
	who, err := c.allowedAs(ctx, queue, action)
	if err != nil {
		return err
	}
	return c.s.auditCrossTenant(ctx, c.ns, queue, action, who, "AMQP "+what)
}

// allowedAs is allowed, and who the token names.
func (c *amqpConn) allowedAs(ctx context.Context, queue, action string) (caller, error) {
	tok, ok := c.tokenFor(queue)
	entity := "sb://" + c.host + "/" + queue
	if !ok {
		return caller{}, &wire.Error{Condition: wire.ErrUnauthorizedAccess, Description: fmt.Sprintf(
			"Unauthorized access. '%s' claim(s) are required to perform this operation. No token covering '%s' was put on $cbs.", claimOf(action), entity)}
	}
	var who caller
	var d *denial
	var err error
	switch tok.typ {
	case cbsTypeJWT:
		who, d, err = c.s.checkBearer(ctx, c.ns, c.host, queue, tok.raw, action)
	default:
		sas, perr := ParseSAS(tok.raw)
		if perr != nil {
			d = &denial{audited: true, reason: perr.Error(), message: "MalformedToken: " + perr.Error() + "."}
			who = caller{actor: "sas:", tenant: c.ns.TenantID}
		} else {
			who, d, err = c.s.checkSAS(ctx, c.ns, c.host, queue, sas, "https://"+c.host+"/"+queue, action)
		}
	}
	if c.s.tracer != nil {
		c.noteCaller(ctx, who)
	}
	if err != nil {
		return who, err
	}
	if d != nil {
		if d.audited {
			c.s.auditDenial(ctx, c.ns, queue, action, who, d)
		}
		return who, &wire.Error{Condition: wire.ErrUnauthorizedAccess, Description: d.message}
	}
	return who, nil
}

// linkGrant remembers, for one link, that its token was allowed under a
// store generation. While neither the generation nor the token changes
// (and the token has not expired: tokenFor drops it), the decision stands,
// exactly as the verifier's and RBAC's caches would give it again, so a
// message costs no check; any committed change to principals, roles or
// rules moves the generation and the next message is checked afresh.
type linkGrant struct {
	gen uint64
	raw string // the token allowed; "" for none
}

// allowedFor is allowed, remembered in g (owned by one link's goroutine).
func (c *amqpConn) allowedFor(ctx context.Context, g *linkGrant, queue, action string) error {
	gen := c.s.st.Generation() // before the check: a change during it invalidates
	if tok, ok := c.tokenFor(queue); ok && g.raw != "" && g.raw == tok.raw && g.gen == gen {
		return nil
	}
	g.raw = ""
	if err := c.allowed(ctx, queue, action); err != nil {
		return err
	}
	if tok, ok := c.tokenFor(queue); ok {
		g.gen, g.raw = gen, tok.raw
	}
	return nil
}

// tokenFor is the unexpired token put for the queue's audience, or else
// for the namespace's ("amqps://{host}/{queue}", "sb://…", with or
// without the scheme; Service Bus accepts a namespace-wide token for
// every entity).
func (c *amqpConn) tokenFor(queue string) (cbsToken, bool) {
	now := c.s.broker.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, aud := range []string{c.host + "/" + queue, c.host} {
		if i, ok := c.tokenAt(strings.ToLower(aud)); ok && now.Before(c.tokens[i].expires) {
			return c.tokens[i].cbsToken, true
		}
	}
	return cbsToken{}, false
}

// audienceKey is a put-token name without its scheme and trailing slash.
func audienceKey(name string) string {
	if i := strings.Index(name, "://"); i >= 0 {
		name = name[i+3:]
	}
	return strings.ToLower(strings.TrimRight(name, "/"))
}

// putToken answers a request on $cbs. The token is not judged here
// beyond its form and its own expiry: a token is judged per entity and
// action when a link uses it, as Service Bus does.
func (c *amqpConn) putToken(ctx context.Context, d *amqp.Delivery) wire.DeliveryState {
	if c.s.tracer != nil {
		return c.tracedPutToken(ctx, d)
	}
	st, _ := c.putTokenAs(ctx, d, nil)
	return st
}

// putTokenAs is putToken, noting the request on sp (nil: not traced); it
// returns the reply's status too (0: none, the request did not decode).
func (c *amqpConn) putTokenAs(ctx context.Context, d *amqp.Delivery, sp trace.Span) (wire.DeliveryState, int32) {
	req, err := wire.DecodeMessage(d.Payload)
	if err != nil {
		return &wire.Rejected{Error: &wire.Error{Condition: wire.ErrDecodeError, Description: err.Error()}}, 0
	}
	status, desc := int32(202), "Accepted"
	op, _ := req.ApplicationProperties.Get("operation")
	typ, _ := req.ApplicationProperties.Get("type")
	name, _ := req.ApplicationProperties.Get("name")
	raw, _ := req.Value.(string)
	typS, _ := typ.(string)
	nameS, _ := name.(string)
	if sp != nil {
		notePutToken(sp, typS, nameS)
	}
	switch {
	case op != "put-token":
		status, desc = 400, fmt.Sprintf("The operation '%v' is not supported on $cbs; only put-token is.", op)
	case typS != cbsTypeJWT && typS != cbsTypeSAS:
		status, desc = 400, fmt.Sprintf("The token type '%v' is not supported: use jwt or servicebus.windows.net:sastoken.", typ)
	case nameS == "" || raw == "":
		status, desc = 400, "A put-token request needs a name (the audience) and the token as its body."
	default:
		expires, ok := c.tokenExpiry(ctx, typS, raw)
		if !ok {
			status, desc = 401, "The token is not valid: it is malformed, expired or not for Service Bus."
			break
		}
		key := audienceKey(nameS)
		c.mu.Lock()
		i, renewal := c.tokenAt(key)
		if !renewal && len(c.tokens) >= maxConnTokens {
			// Full: the lapsed tokens go first (they cover nothing).
			now := c.s.broker.now()
			c.tokens = slices.DeleteFunc(c.tokens, func(t audToken) bool { return !now.Before(t.expires) })
			i, renewal = c.tokenAt(key)
		}
		if !renewal && len(c.tokens) >= maxConnTokens {
			c.mu.Unlock()
			status, desc = 403, "Too many tokens on one connection."
			break
		}
		for _, t := range c.tokens {
			if t.raw == raw {
				// The SDKs put one token for every link's audience
				// (azservicebus: one Entra token for the namespace, put
				// for each entity): the connection keeps one copy.
				raw = t.raw
				break
			}
		}
		t := audToken{aud: key, cbsToken: cbsToken{typ: typS, raw: raw, expires: expires}}
		if renewal {
			c.tokens[i] = t
		} else {
			c.tokens = slices.Insert(c.tokens, i, t)
		}
		c.mu.Unlock()
	}
	c.reply(ctx, &c.cbsReplies, req, "status-code", status, desc, nil)
	return &wire.Accepted{}, status
}

// maxConnTokens bounds the audiences one connection holds unexpired
// tokens for.
const maxConnTokens = 1000

// tokenExpiry reads when a token lapses, refusing one that cannot be a
// token of this service or has lapsed already.
func (c *amqpConn) tokenExpiry(ctx context.Context, typ, raw string) (time.Time, bool) {
	if typ == cbsTypeSAS {
		sas, err := ParseSAS(raw)
		if err != nil || !c.s.broker.now().Before(sas.Expiry) {
			return time.Time{}, false
		}
		if c.s.tracer != nil {
			c.noteCaller(ctx, caller{actor: "sas:" + sas.KeyName})
		}
		return sas.Expiry, true
	}
	claims, err := c.s.verify.Verify(ctx, raw, Resource, AppID, "https://"+c.host, "https://"+c.host+"/")
	if err != nil {
		return time.Time{}, false
	}
	if c.s.tracer != nil {
		c.noteCaller(ctx, caller{actor: claims.ObjectID, tenant: claims.TenantID})
	}
	return time.Unix(claims.Expires, 0), true
}

// reply sends a request/response node's answer: the status under key
// (status-code on $cbs, statusCode on $management), as an int32, and the
// request's message-id as a string correlation-id.
func (c *amqpConn) reply(ctx context.Context, to *amqp.Replies, req *wire.Message, key string, status int32, desc string, body any) {
	if req.Properties == nil || req.Properties.ReplyTo == "" {
		return
	}
	ap := wire.Map{}
	ap.Set(key, status)
	descKey := "status-description"
	if key == "statusCode" {
		descKey = "statusDescription"
	}
	ap.Set(descKey, desc)
	out := &wire.Message{Properties: &wire.Properties{CorrelationID: idString(req.Properties.MessageID)}, ApplicationProperties: ap}
	if body != nil {
		out.Value = body
	}
	// A reply to no link is dropped, as Service Bus does.
	_, _ = to.Send(ctx, req.Properties.ReplyTo, out)
}

// sendLink is a link on which the peer sends to a queue.
type sendLink struct {
	c     *amqpConn
	l     *amqp.Link
	queue string
	q     linkQueue
	grant linkGrant
}

// linkQueue is what a link, and a lock it took, keep of their queue's
// record (queueInfo): its id, limits and largest message. Not the whole
// record: the resource's names, tags, properties and times were two
// thirds of an idle link's state (docs/benchmarks.md, "Many customers
// on one node").
type linkQueue struct {
	id         string
	limits     store.QueueLimits
	maxMessage int
}

func linkQueueOf(info queueInfo) linkQueue {
	return linkQueue{id: info.res.ID, limits: info.limits, maxMessage: info.maxMessage}
}

// linkEnded is the link's end: the expiry watch lets go of it.
func (sl *sendLink) linkEnded() { sl.c.unwatch(sl.l) }

// deliver stores one transfer (a message, or a Service Bus batch) and
// answers accepted once it is durable; traced, in a span (tracedSend).
func (sl *sendLink) deliver(ctx context.Context, d *amqp.Delivery) wire.DeliveryState {
	if sl.c.s.tracer != nil {
		return sl.tracedSend(ctx, d)
	}
	return sl.put(ctx, d, nil, nil, nil)
}

// decodeTransfer is a transfer's messages: one, or a batch's (for the
// traced path; put decodes its own).
func decodeTransfer(d *amqp.Delivery) ([]*wire.Message, error) {
	if d.Format == wire.MessageFormatBatch {
		return wire.DecodeBatch(d.Payload)
	}
	m, err := wire.DecodeMessage(d.Payload)
	return []*wire.Message{m}, err
}

// put is deliver, with the transfer's messages (or the error decoding
// them) when the caller decoded them already (msgs nil and err nil: not
// yet), noting the message id on sp (nil: not traced).
func (sl *sendLink) put(ctx context.Context, d *amqp.Delivery, msgs []*wire.Message, err error, sp trace.Span) wire.DeliveryState {
	if err := sl.c.allowedFor(ctx, &sl.grant, sl.queue, ActionSend); err != nil {
		sl.l.Detach(asError(err))
		return &wire.Rejected{Error: asError(err)}
	}
	if msgs == nil && err == nil {
		// Decoded here, not by decodeTransfer, so that one message's
		// slice stays on the stack.
		if d.Format == wire.MessageFormatBatch {
			msgs, err = wire.DecodeBatch(d.Payload)
		} else {
			var m *wire.Message
			m, err = wire.DecodeMessage(d.Payload)
			msgs = []*wire.Message{m}
		}
	}
	if err != nil {
		return &wire.Rejected{Error: &wire.Error{Condition: wire.ErrDecodeError, Description: err.Error()}}
	}
	stored := make([]store.QueueMessage, 0, len(msgs))
	total := 0
	for _, m := range msgs {
		q, err := messageFromAMQP(m)
		if err != nil {
			return &wire.Rejected{Error: &wire.Error{Condition: wire.ErrInvalidField, Description: err.Error()}}
		}
		total += len(q.Body) + len(q.Properties)
		stored = append(stored, q)
	}
	if sp != nil && d.Format != wire.MessageFormatBatch && len(stored) == 1 {
		sp.SetAttributes(attrMessageID.String(stored[0].MessageID))
	}
	if msg := sessionMissingIn(sl.q.limits.RequiresSession, stored); msg != "" {
		return &wire.Rejected{Error: &wire.Error{Condition: wire.ErrNotAllowed, Description: msg}}
	}
	if total > sl.q.maxMessage {
		return &wire.Rejected{Error: &wire.Error{Condition: wire.ErrLinkMessageSizeExceeded, Description: fmt.Sprintf(
			"The message size (%d bytes with its properties) exceeds the limit of %d bytes for entity 'sb://%s/%s'.", total, sl.q.maxMessage, sl.c.host, sl.queue)}}
	}
	res := sl.c.s.broker.Do(ctx, store.QueueOp{Kind: store.QueueSend, QueueID: sl.q.id, Limits: sl.q.limits, Messages: stored})
	switch {
	case res.Err == nil:
		return &wire.Accepted{}
	case errors.Is(res.Err, store.ErrQuotaExceeded):
		return &wire.Rejected{Error: &wire.Error{Condition: wire.ErrResourceLimitExceeded, Description: fmt.Sprintf("QuotaExceeded: the entity 'sb://%s/%s' has reached its maximum size.", sl.c.host, sl.queue)}}
	case errors.Is(res.Err, store.ErrNotFound):
		err := sl.c.notFound(sl.queue)
		sl.l.Detach(err)
		return &wire.Rejected{Error: err}
	default:
		sl.c.s.log.ErrorContext(ctx, "servicebus: amqp send", "queue", sl.q.id, "err", res.Err)
		return &wire.Rejected{Error: storeError(res.Err, "The server could not store the message; retry.")}
	}
}

// storeError is the AMQP error for a store failure: under contention
// com.microsoft:server-busy, which the SDKs retry (AMQPCondition), else
// amqp:internal-error with desc.
func storeError(err error, desc string) *wire.Error {
	cond, d := AMQPCondition(err, desc)
	return &wire.Error{Condition: wire.Symbol(cond), Description: d}
}

// asError is err as an AMQP error.
func asError(err error) *wire.Error {
	var we *wire.Error
	if errors.As(err, &we) {
		return we
	}
	return &wire.Error{Condition: wire.ErrInternalError, Description: "internal error"}
}

// receiveLink is a link on which we deliver a queue's messages.
type receiveLink struct {
	c                *amqpConn
	l                *amqp.Link
	queue            string
	deadLetter       bool
	q                linkQueue
	receiveAndDelete bool
	grant            linkGrant
	// session and sessionToken name the session the link holds, "" for
	// a link of a queue without sessions (set before run starts).
	session, sessionToken string

	mu sync.Mutex
	// locks maps a delivery tag to its sequence number, for messages
	// locked and not settled. It exists only while it holds one: a Go
	// map keeps its storage when emptied, and a fleet's idle receivers
	// would each keep one for good (docs/benchmarks.md, "Many customers
	// on one node").
	locks map[string]int64

	// The link's turns (poke): at most one goroutine runs them, and only
	// while there is something to do.
	turnMu  sync.Mutex
	running bool          // a goroutine runs turns
	again   bool          // poked while it ran: it takes another turn
	gen     uint64        // the current wait's; a wake-up of an older one is ignored
	wait    *receiverWait // the broker wait, nil when none
	timer   *time.Timer   // when the wait ends at the latest, nil when none
	ended   bool          // the link ended and finish ran
}

// poke asks the link to take a turn: the peer gave credit or asked to
// drain, the broker woke the link's wait, the wait's timer fired, or the
// link ended. A turn runs on a goroutine started for it, which takes
// turns until none is asked for and returns; an idle link (credit given,
// no message) is a waiter in the broker and a timer, and holds no
// goroutine nor its stack: a goroutine per waiting link was most of the
// goroutines of a server holding a fleet's idle receivers
// (docs/benchmarks.md, "Many customers on one node").
//
// poke never blocks: the engine calls it on the connection's goroutine
// (Accept.OnCredit) and the broker on its commit loop.
func (rl *receiveLink) poke() {
	rl.turnMu.Lock()
	defer rl.turnMu.Unlock()
	rl.pokeLocked()
}

func (rl *receiveLink) pokeLocked() {
	switch {
	case rl.ended:
	case rl.running:
		rl.again = true
	default:
		rl.running = true
		go rl.turns()
	}
}

// linkEnded is the link's end: the expiry watch lets go of it, and a turn
// finishes the link.
func (rl *receiveLink) linkEnded() {
	rl.c.unwatch(rl.l)
	rl.poke()
}

// pokeWait pokes the link if its wait gen is still the current one: a
// wake-up or timer of a wait the link has left is not a reason to look.
func (rl *receiveLink) pokeWait(gen uint64) {
	rl.turnMu.Lock()
	defer rl.turnMu.Unlock()
	if gen == rl.gen {
		rl.pokeLocked()
	}
}

// turns takes turns while pokes ask for them.
func (rl *receiveLink) turns() {
	for {
		rl.turn()
		rl.turnMu.Lock()
		if !rl.again || rl.ended {
			rl.running = false
			rl.turnMu.Unlock()
			return
		}
		rl.again = false
		rl.turnMu.Unlock()
	}
}

// turn leaves the link's wait, and delivers messages while the peer
// gives credit, one broker receive per credit; when none is at hand it
// answers a drain, or waits again (a broker waiter and a timer, at most
// amqpReceiveWait, so that the link's credential is checked again at
// least that often), and returns. An ended link finishes.
func (rl *receiveLink) turn() {
	b := rl.c.s.broker
	rl.turnMu.Lock()
	rl.again = false
	rl.gen++
	w, t := rl.wait, rl.timer
	rl.wait, rl.timer = nil, nil
	rl.turnMu.Unlock()
	if t != nil {
		t.Stop()
	}
	// A wake-up of the wait left is this turn's: it tries for a message,
	// or if it leaves without trying, hands the wake-up on to another
	// receiver of the queue.
	if w != nil && b.leave(w) {
		defer func() {
			if w != nil {
				b.wake(w.k, 1)
			}
		}()
	}

	ctx := rl.l.Context()
	for {
		if ctx.Err() != nil {
			rl.finish()
			return
		}
		if rl.l.Credit() == 0 {
			if rl.l.Draining() {
				rl.l.DrainDone()
			}
			return // the peer's next credit pokes the link
		}
		if !rl.allowed(ctx) {
			return // detached: its end pokes the link
		}
		maxWait := amqpReceiveWait
		if rl.l.Draining() {
			maxWait = 0 // a drain: what is at hand, then the answer
		}
		rl.turnMu.Lock()
		rl.gen++
		gen := rl.gen
		rl.turnMu.Unlock()
		w = nil // trying: a wake-up it had is used
		m, wait, d, err := b.poll(ctx, rl.receiveOp(), maxWait, func() { rl.pokeWait(gen) })
		switch {
		case err != nil:
			rl.receiveFailed(ctx, err)
			return
		case m != nil:
			if err := rl.deliver(ctx, *m); err != nil {
				return // the link ended; a locked message's lock lapses and it is delivered again
			}
		case wait == nil:
			if rl.l.Draining() {
				rl.l.DrainDone()
			}
		default:
			rl.turnMu.Lock()
			rl.wait = wait
			rl.timer = time.AfterFunc(d, func() { rl.pokeWait(gen) })
			rl.turnMu.Unlock()
			return
		}
	}
}

// finish ends an ended link's turns for good, and releases the session
// it held.
func (rl *receiveLink) finish() {
	rl.turnMu.Lock()
	rl.ended = true
	rl.turnMu.Unlock()
	rl.endSession()
}

// allowed is whether the link's grant still lets it receive; it detaches
// the link when not.
func (rl *receiveLink) allowed(ctx context.Context) bool {
	if err := rl.c.allowedFor(ctx, &rl.grant, rl.queue, ActionReceive); err != nil {
		rl.l.Detach(asError(err))
		return false
	}
	return true
}

// receiveFailed detaches the link after a receive failed, as Service Bus
// would.
func (rl *receiveLink) receiveFailed(ctx context.Context, err error) {
	switch {
	case errors.Is(err, store.ErrLockLost) && rl.session != "":
		rl.l.Detach(sessionLost(rl.session))
	case ctx.Err() == nil:
		rl.c.s.log.ErrorContext(ctx, "servicebus: amqp receive", "queue", rl.q.id, "err", err)
		rl.l.Detach(storeError(err, "The server could not read the queue; attach again."))
	}
}

// receiveOp is the broker operation of one receive on the link.
func (rl *receiveLink) receiveOp() *store.QueueOp {
	op := &store.QueueOp{Kind: store.QueueReceiveAndDelete, QueueID: rl.q.id, DeadLetter: rl.deadLetter, Limits: rl.q.limits,
		SessionID: rl.session, SessionLockToken: rl.sessionToken}
	if !rl.receiveAndDelete {
		op.Kind, op.LockToken = store.QueueLock, uuid.NewString()
	}
	return op
}

// deliver sends one received message. Its delivery tag is its lock
// token in .NET's GUID byte order, which is how the SDKs read lock
// tokens (azservicebus message.go: the tag's bytes reordered into an RFC
// UUID).
func (rl *receiveLink) deliver(ctx context.Context, m store.QueueMessage) (err error) {
	var sp trace.Span // nil: not traced
	if rl.c.s.tracer != nil {
		ctx, sp = rl.startDelivery(ctx, &m)
		defer func() { endDeliverySent(sp, err) }()
	}
	f := deliveryFacts{deadLetter: rl.deadLetter, queue: rl.queue}
	var tag []byte
	if m.LockToken != "" {
		f.lockToken, f.lockedUntil = m.LockToken, m.LockedUntil
		u, err := uuid.Parse(m.LockToken)
		if err != nil {
			return err
		}
		tag = dotNetGUIDBytes(u)
	} else {
		u := uuid.New()
		tag = u[:]
	}
	payload, err := messageToAMQP(m, f)
	if err != nil {
		rl.c.s.log.ErrorContext(ctx, "servicebus: amqp encode", "queue", rl.q.id, "seq", m.SequenceNumber, "err", err)
		return nil // skipped; a locked message comes back after its lock
	}
	if sp != nil {
		linkProducer(sp, payload)
	}
	if m.LockToken != "" {
		rl.mu.Lock()
		if rl.locks == nil {
			rl.locks = make(map[string]int64)
		}
		rl.locks[string(tag)] = m.SequenceNumber
		rl.mu.Unlock()
		rl.c.hold(m.LockToken, heldLock{q: rl.q, deadLetter: rl.deadLetter, seq: m.SequenceNumber, until: m.LockedUntil, session: rl.session})
	}
	_, err = rl.l.Send(ctx, tag, 0, payload, rl.receiveAndDelete)
	return err
}

// dotNetGUIDBytes writes a UUID as .NET's Guid.ToByteArray does: the first
// three groups little-endian.
func dotNetGUIDBytes(u uuid.UUID) []byte {
	b := make([]byte, 16)
	copy(b, u[:])
	b[0], b[1], b[2], b[3] = u[3], u[2], u[1], u[0]
	b[4], b[5] = u[5], u[4]
	b[6], b[7] = u[7], u[6]
	return b
}

// lockTokenOf is the lock token a .NET-ordered delivery tag carries.
func lockTokenOf(tag []byte) string {
	if len(tag) != 16 {
		return ""
	}
	var u uuid.UUID
	copy(u[:], tag)
	u[0], u[1], u[2], u[3] = tag[3], tag[2], tag[1], tag[0]
	u[4], u[5] = tag[5], tag[4]
	u[6], u[7] = tag[7], tag[6]
	return u.String()
}

// disposition settles a peek-locked message as the receiver decided:
// accepted completes it; released, or modified without
// undeliverable-here, abandons it (its delivery count was counted when it
// was locked, as Service Bus counts it); modified with undeliverable-here
// defers it (azservicebus messageSettler.go DeferMessage: ModifyMessage
// with UndeliverableHere true; AbandonMessage sends it false); rejected
// dead-letters it with the reason the SDKs put in the error's info
// (DeadLetterReason, DeadLetterErrorDescription). A deferred message is
// received again only by sequence number ($management
// receive-by-sequence-number).
//
// The receiver (settle mode second) learns the outcome only from our
// settlement, which the engine sends after this returns: a complete is
// durable before CompleteMessage returns, and a lock that was lost is
// answered com.microsoft:message-lock-lost, as Service Bus does.
func (rl *receiveLink) disposition(d amqp.Disposition) (state wire.DeliveryState) {
	if rl.receiveAndDelete {
		return nil
	}
	rl.mu.Lock()
	// Any disposition ends the delivery (the engine settles it after
	// this returns), so its entry goes, an outcome-less one's included:
	// otherwise the map would outgrow the engine's unsettled limit.
	seq, ok := rl.locks[string(d.Tag)]
	delete(rl.locks, string(d.Tag))
	if len(rl.locks) == 0 {
		rl.locks = nil
	}
	rl.mu.Unlock()
	token := lockTokenOf(d.Tag)
	if ok {
		rl.c.release(token)
	}
	if !ok || d.State == nil {
		return rl.lostState(token)
	}
	op := store.QueueOp{QueueID: rl.q.id, DeadLetter: rl.deadLetter, Limits: rl.q.limits,
		SequenceNumber: seq, LockToken: token, SessionID: rl.session}
	switch st := d.State.(type) {
	case *wire.Accepted:
		op.Kind = store.QueueComplete
	case *wire.Released:
		op.Kind = store.QueueAbandon
	case *wire.Modified:
		op.Kind = store.QueueAbandon
		if st.UndeliverableHere {
			op.Kind = store.QueueDefer
		}
	case *wire.Rejected:
		op.Kind = store.QueueDeadLetter
		if st.Error != nil {
			setDeadLetter(&op, mapGet(st.Error.Info, "DeadLetterReason"), mapGet(st.Error.Info, "DeadLetterErrorDescription"))
		}
	default:
		return nil
	}
	ctx := rl.l.Context()
	if rl.c.s.tracer != nil {
		var sp trace.Span
		ctx, sp = rl.startSettle(ctx, op.Kind, seq)
		defer endSettle(sp, &state)
	}
	res := rl.c.s.broker.Do(ctx, op)
	switch {
	case res.Err == nil:
		return nil
	case errors.Is(res.Err, store.ErrLockLost), errors.Is(res.Err, store.ErrNotFound):
		return rl.lostState(op.LockToken)
	default:
		rl.c.s.log.ErrorContext(rl.l.Context(), "servicebus: amqp settle", "queue", rl.q.id, "seq", seq, "err", res.Err)
		return &wire.Rejected{Error: storeError(res.Err, "The server could not settle the message; it will be delivered again when its lock lapses.")}
	}
}

// setDeadLetter sets a dead-letter settlement's reason and description,
// as a link's rejected outcome (its error's info) or update-disposition
// carries them: strings, anything else ignored, kept to 4096 characters.
func setDeadLetter(op *store.QueueOp, reason, description any) {
	r, _ := reason.(string)
	d, _ := description.(string)
	op.DeadLetterReason, op.DeadLetterDescription = clip(r, 4096), clip(d, 4096)
}

// lockLost is Service Bus's answer to a settlement whose lock is gone:
// it expired, or the message was settled already.
func lockLost(token string) wire.DeliveryState {
	return &wire.Rejected{Error: &wire.Error{Condition: "com.microsoft:message-lock-lost", Description: lockLostText(token)}}
}

// lockLostText is Service Bus's description of a lost lock, on a link
// and on $management (410).
func lockLostText(token string) string {
	return "The lock supplied is invalid. Either the lock expired, or the message has already been removed from the queue. Reference: " + token + "."
}

// The $management operations served (service-bus-amqp-request-response);
// every other one is answered 501, never left without a reply.
const (
	opRenewLock       = "com.microsoft:renew-lock"
	opPeekMessage     = "com.microsoft:peek-message"
	opSchedule        = "com.microsoft:schedule-message"
	opCancelScheduled = "com.microsoft:cancel-scheduled-message"
	opReceiveBySeq    = "com.microsoft:receive-by-sequence-number"
	opDisposition     = "com.microsoft:update-disposition"
)

// maxDeferredBatch bounds the messages of one receive-by-sequence-number
// request, as MaxPeek bounds a peek: the reply carries them all.
const maxDeferredBatch = MaxPeek

// maxScheduleBatch bounds the messages of one schedule or cancel request.
const maxScheduleBatch = 4500

// management answers one request on {entity}/$management.
// Traced, it runs in a span (tracedManagement).
func (c *amqpConn) management(ctx context.Context, entity string, d *amqp.Delivery) wire.DeliveryState {
	if c.s.tracer != nil {
		return c.tracedManagement(ctx, entity, d)
	}
	req, err := wire.DecodeMessage(d.Payload)
	if err != nil {
		return &wire.Rejected{Error: &wire.Error{Condition: wire.ErrDecodeError, Description: err.Error()}}
	}
	c.manageAndReply(ctx, entity, managementOp(req), req)
	return &wire.Accepted{}
}

// managementOp is a $management request's operation (a string or a
// symbol).
func managementOp(req *wire.Message) string {
	op, _ := req.ApplicationProperties.Get("operation")
	opS, _ := op.(string)
	if s, ok := op.(wire.Symbol); ok {
		opS = string(s)
	}
	return opS
}

// manageAndReply runs the operation and sends its reply; it returns the
// reply's status.
func (c *amqpConn) manageAndReply(ctx context.Context, entity, op string, req *wire.Message) int32 {
	status, desc, body := c.manage(ctx, entity, op, req)
	c.reply(ctx, &c.mgmtReplies, req, "statusCode", status, desc, body)
	return status
}

// manage runs one management operation and returns the reply's status,
// description and body.
func (c *amqpConn) manage(ctx context.Context, entity, op string, req *wire.Message) (int32, string, any) {
	queue, deadLetter := entity, false
	if q, sub, ok := strings.Cut(entity, "/"); ok {
		if !strings.EqualFold(sub, "$DeadLetterQueue") {
			return 404, c.notFound(entity).Description, nil
		}
		queue, deadLetter = q, true
	}
	if !validEntityName(queue) {
		return 400, "The entity name is not valid.", nil
	}
	args, _ := req.Value.(wire.Map)
	switch op {
	case opRenewLock:
		if err := c.allowed(ctx, queue, ActionReceive); err != nil {
			return 401, asError(err).Description, nil
		}
		tokens, _ := mapGet(args, "lock-tokens").([]wire.UUID)
		if len(tokens) == 0 || len(tokens) > 5000 {
			return 400, "renew-lock needs lock-tokens: an array of 1 to 5000 lock tokens.", nil
		}
		expirations := make([]time.Time, 0, len(tokens))
		for _, tok := range tokens {
			token := uuid.UUID(tok).String()
			h, ok := c.heldIn(token, queue, deadLetter)
			if !ok {
				return 410, lockLostText(token), nil
			}
			if h.session != "" {
				// A session's messages are locked by its lock (Message
				// sessions: "The session lock held by the session receiver
				// is an umbrella for the message locks"); the SDKs renew
				// that one, and .NET refuses a message lock renewal on a
				// session receiver.
				return 400, "The lock of a message received from a session is the session's lock: renew it with renew-session-lock.", nil
			}
			res := c.s.broker.Do(ctx, store.QueueOp{Kind: store.QueueRenew, QueueID: h.q.id, DeadLetter: h.deadLetter,
				Limits: h.q.limits, SequenceNumber: h.seq, LockToken: token})
			if res.Err != nil {
				c.release(token)
				return 410, lockLostText(token), nil
			}
			c.renewed(token, res.LockedUntil)
			expirations = append(expirations, res.LockedUntil.UTC())
		}
		return 200, "OK", wire.Map{{Key: "expirations", Value: expirations}}
	case opPeekMessage:
		if err := c.allowedCrossTenant(ctx, queue, ActionReceive, "peek-message"); err != nil {
			return 401, asError(err).Description, nil
		}
		from, _ := mapGet(args, "from-sequence-number").(int64)
		count, _ := mapGet(args, "message-count").(int32)
		if count <= 0 {
			count = 1
		}
		count = min(count, MaxPeek)
		info, status, desc := c.mgmtQueue(ctx, queue)
		if status != 0 {
			return status, desc, nil
		}
		var msgs []store.QueueMessage
		var err error
		if session, _ := mapGet(args, "session-id").(string); session != "" && !deadLetter {
			msgs, err = c.s.st.PeekQueueSession(ctx, info.res.ID, session, from, int(count))
		} else {
			msgs, err = c.s.st.PeekQueueMessages(ctx, info.res.ID, deadLetter, from, int(count))
		}
		if err != nil {
			return 500, "The server could not read the queue.", nil
		}
		if len(msgs) == 0 {
			return 204, "No messages", nil
		}
		// A list (not an array) of maps: the Go SDK reads []any.
		list := make([]any, 0, len(msgs))
		for _, m := range msgs {
			enc, err := messageToAMQP(m, deliveryFacts{deadLetter: deadLetter, queue: queue, now: c.s.broker.now()})
			if err != nil {
				c.s.log.ErrorContext(ctx, "servicebus: amqp encode", "queue", info.res.ID, "seq", m.SequenceNumber, "err", err)
				continue
			}
			list = append(list, wire.Map{{Key: "message", Value: enc}})
		}
		return 200, "OK", wire.Map{{Key: "messages", Value: list}}
	case opSchedule:
		return c.schedule(ctx, queue, deadLetter, args)
	case opCancelScheduled:
		return c.cancelScheduled(ctx, queue, deadLetter, args)
	case opReceiveBySeq:
		return c.receiveBySequence(ctx, queue, deadLetter, req, args)
	case opDisposition:
		return c.updateDisposition(ctx, queue, deadLetter, args)
	case opRenewSessionLock, opGetSessionState, opSetSessionState, opGetSessions:
		return c.manageSession(ctx, queue, deadLetter, op, req, args)
	}
	return 501, fmt.Sprintf("The operation '%s' is not served by this Service Bus yet.", clip(op, 200)), nil
}

// schedule stores messages to be delivered at their
// x-opt-scheduled-enqueue-time, and answers their sequence numbers, by
// which they can be cancelled.
func (c *amqpConn) schedule(ctx context.Context, queue string, deadLetter bool, args wire.Map) (int32, string, any) {
	if deadLetter {
		return 400, "Messages cannot be scheduled on a dead-letter queue.", nil
	}
	if err := c.allowedCrossTenant(ctx, queue, ActionSend, "schedule-message"); err != nil {
		return 401, asError(err).Description, nil
	}
	var entries []wire.Map
	switch v := mapGet(args, "messages").(type) {
	case []wire.Map:
		entries = v
	case []any:
		for _, e := range v {
			m, ok := e.(wire.Map)
			if !ok {
				return 400, "schedule-message: each entry of messages must be a map.", nil
			}
			entries = append(entries, m)
		}
	}
	if len(entries) == 0 || len(entries) > maxScheduleBatch {
		return 400, fmt.Sprintf("schedule-message needs messages: 1 to %d entries, each with its encoded message.", maxScheduleBatch), nil
	}
	msgs := make([]store.QueueMessage, 0, len(entries))
	total := 0
	for _, e := range entries {
		raw, _ := mapGet(e, "message").([]byte)
		m, err := wire.DecodeMessage(raw)
		if err != nil || len(raw) == 0 {
			return 400, "schedule-message: an entry's message is not an encoded AMQP message.", nil
		}
		q, err := messageFromAMQP(m)
		if err != nil {
			return 400, "schedule-message: " + err.Error(), nil
		}
		if q.ScheduledAt.IsZero() {
			return 400, "schedule-message: a message has no x-opt-scheduled-enqueue-time annotation.", nil
		}
		total += len(q.Body) + len(q.Properties)
		msgs = append(msgs, q)
	}
	info, status, desc := c.mgmtQueue(ctx, queue)
	if status != 0 {
		return status, desc, nil
	}
	if total > info.maxMessage {
		return 413, fmt.Sprintf("The messages' size (%d bytes) exceeds the limit of %d bytes.", total, info.maxMessage), nil
	}
	if msg := sessionMissing(info, msgs); msg != "" {
		return 400, msg, nil
	}
	res := c.s.broker.Do(ctx, store.QueueOp{Kind: store.QueueSend, QueueID: info.res.ID, Limits: info.limits, Messages: msgs})
	switch {
	case errors.Is(res.Err, store.ErrQuotaExceeded):
		return 507, fmt.Sprintf("QuotaExceeded: the entity 'sb://%s/%s' has reached its maximum size.", c.host, queue), nil
	case res.Err != nil:
		return 500, "The server could not store the messages; retry.", nil
	}
	seqs := make([]int64, len(res.Messages))
	for i, m := range res.Messages {
		seqs[i] = m.SequenceNumber
	}
	return 200, "OK", wire.Map{{Key: "sequence-numbers", Value: seqs}}
}

// cancelScheduled cancels scheduled messages by sequence number; one that
// is due already, or unknown, is answered 404 after the others are
// cancelled.
func (c *amqpConn) cancelScheduled(ctx context.Context, queue string, deadLetter bool, args wire.Map) (int32, string, any) {
	if deadLetter {
		return 400, "A dead-letter queue has no scheduled messages.", nil
	}
	if err := c.allowed(ctx, queue, ActionSend); err != nil {
		return 401, asError(err).Description, nil
	}
	seqs, _ := mapGet(args, "sequence-numbers").([]int64)
	if len(seqs) == 0 || len(seqs) > maxScheduleBatch {
		return 400, fmt.Sprintf("cancel-scheduled-message needs sequence-numbers: 1 to %d of them.", maxScheduleBatch), nil
	}
	info, status, desc := c.mgmtQueue(ctx, queue)
	if status != 0 {
		return status, desc, nil
	}
	var missing []int64
	for _, seq := range seqs {
		res := c.s.broker.Do(ctx, store.QueueOp{Kind: store.QueueCancelScheduled, QueueID: info.res.ID, Limits: info.limits, SequenceNumber: seq})
		switch {
		case errors.Is(res.Err, store.ErrNotFound):
			missing = append(missing, seq)
		case res.Err != nil:
			return 500, "The server could not cancel the messages; retry.", nil
		}
	}
	if len(missing) > 0 {
		return 404, fmt.Sprintf("No scheduled message with the sequence number(s) %v is in 'sb://%s/%s'.", missing, c.host, queue), nil
	}
	return 200, "OK", nil
}

// mapGet reads a request argument by its string key.
func mapGet(m wire.Map, key string) any {
	v, _ := m.Get(key)
	return v
}

// receiveBySequence receives deferred messages by their sequence numbers
// (service-bus-amqp-request-response, "Receive by sequence number":
// sequence-numbers, an array of long, and receiver-settle-mode, 0 to
// receive and delete, 1 for peek-lock: azservicebus internal/mgmt.go
// ReceiveDeferred sends uint32 1 for ReceiveModePeekLock, else 0). Only a
// deferred message is received so ("message deferral": received "using
// an API and the sequence number"); an unknown or undeferred one, or one
// locked already, is answered 404 before anything is locked. The reply's
// messages are a list of maps, each with the encoded message and, in
// peek-lock, its lock-token (uuid), which the JavaScript SDK reads; the
// Go SDK reads the lock token from the message's x-opt-lock-token
// delivery annotation (azservicebus message.go newReceivedMessage:
// amqpMsg.DeliveryAnnotations["x-opt-lock-token"] as a UUID), so it is
// there too. The locks are held by the connection for renew-lock and
// update-disposition: such a message has no delivery on a link, and the
// SDKs settle it on $management (azservicebus receiver.go
// ReceiveDeferredMessages sets settleOnMgmtLink).
func (c *amqpConn) receiveBySequence(ctx context.Context, queue string, deadLetter bool, req *wire.Message, args wire.Map) (int32, string, any) {
	if err := c.allowed(ctx, queue, ActionReceive); err != nil {
		return 401, asError(err).Description, nil
	}
	seqs, _ := mapGet(args, "sequence-numbers").([]int64)
	if len(seqs) == 0 || len(seqs) > maxDeferredBatch {
		return 400, fmt.Sprintf("receive-by-sequence-number needs sequence-numbers: 1 to %d of them.", maxDeferredBatch), nil
	}
	mode, ok := settleMode(mapGet(args, "receiver-settle-mode"))
	if !ok {
		return 400, "receive-by-sequence-number needs receiver-settle-mode: 0 (receive and delete) or 1 (peek-lock).", nil
	}
	info, status, desc := c.mgmtQueue(ctx, queue)
	if status != 0 {
		return status, desc, nil
	}
	// On a queue that requires sessions, the deferred messages of the
	// session this connection holds (named by session-id, or by the
	// receiver link the request is associated with).
	var session string
	var held heldSession
	if info.limits.RequiresSession && !deadLetter {
		if session, held, status, desc = c.mgmtSession(info, req, args); status != 0 {
			return status, desc, nil
		}
	}
	now := c.s.broker.now()
	for i, seq := range seqs {
		if slices.Contains(seqs[:i], seq) {
			return 400, fmt.Sprintf("The sequence number %d is named twice.", seq), nil
		}
		ms, err := c.s.st.PeekQueueMessages(ctx, info.res.ID, deadLetter, seq, 1)
		if err != nil {
			return 500, "The server could not read the queue.", nil
		}
		if len(ms) == 0 || ms[0].SequenceNumber != seq || !ms[0].Deferred || ms[0].SessionID != session && session != "" ||
			(ms[0].LockToken != "" && ms[0].LockedUntil.After(now)) {
			return 404, deferredNotFound(seq, c.host, queue), nil
		}
	}
	list := make([]any, 0, len(seqs))
	for _, seq := range seqs {
		token := uuid.New()
		res := c.s.broker.Do(ctx, store.QueueOp{Kind: store.QueueLockDeferred, QueueID: info.res.ID, DeadLetter: deadLetter,
			Limits: info.limits, SequenceNumber: seq, LockToken: token.String(), SessionID: session, SessionLockToken: held.token})
		switch {
		case errors.Is(res.Err, store.ErrNotFound), errors.Is(res.Err, store.ErrLockLost):
			// Taken meanwhile, or found expired: the locks already
			// taken lapse and leave their messages deferred.
			return 404, deferredNotFound(seq, c.host, queue), nil
		case res.Err != nil:
			return 500, "The server could not lock the messages; retry.", nil
		}
		m := res.Messages[0]
		entry := wire.Map{}
		facts := deliveryFacts{deadLetter: deadLetter, queue: queue}
		if mode == 0 {
			// Receive and delete: delivered once it is gone.
			done := c.s.broker.Do(ctx, store.QueueOp{Kind: store.QueueComplete, QueueID: info.res.ID, DeadLetter: deadLetter,
				Limits: info.limits, SequenceNumber: seq, LockToken: m.LockToken})
			if done.Err != nil {
				return 500, "The server could not remove the messages; retry.", nil
			}
			m.LockToken, m.LockedUntil = "", time.Time{}
		} else {
			facts.lockToken, facts.lockedUntil = m.LockToken, m.LockedUntil
		}
		enc, err := messageToAMQP(m, facts)
		if err == nil && mode != 0 {
			enc, err = withLockToken(enc, token)
		}
		if err != nil {
			c.s.log.ErrorContext(ctx, "servicebus: amqp encode", "queue", info.res.ID, "seq", seq, "err", err)
			return 500, "The server could not encode a message.", nil
		}
		if mode != 0 {
			c.hold(m.LockToken, heldLock{q: linkQueueOf(info), deadLetter: deadLetter, seq: seq, until: m.LockedUntil, session: session})
			entry.Set("lock-token", wire.UUID(token))
		}
		entry.Set("message", enc)
		list = append(list, entry)
	}
	// A list (not an array) of maps, as for peek: the Go SDK reads []any.
	return 200, "OK", wire.Map{{Key: "messages", Value: list}}
}

func deferredNotFound(seq int64, host, queue string) string {
	return fmt.Sprintf("MessageNotFound: no deferred message with the sequence number %d is available in 'sb://%s/%s'.", seq, host, queue)
}

// settleMode reads receiver-settle-mode, an unsigned integer of any width
// (the Go SDK sends uint32): 0 or 1.
func settleMode(v any) (uint64, bool) {
	switch v.(type) {
	case uint8, uint16, uint32, uint64: // an AMQP ubyte or uint, as the SDKs send it; a signed one is refused
	default:
		return 0, false
	}
	n, _ := wholeNumber(v)
	return uint64(n), n <= 1
}

// wholeNumber reads an AMQP integer of any width and sign as an int64 (an
// unsigned one beyond it as math.MaxInt64); ok is false for anything else.
func wholeNumber(v any) (int64, bool) {
	switch x := v.(type) {
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		return int64(min(x, math.MaxInt64)), true
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	}
	return 0, false
}

// withLockToken adds the x-opt-lock-token delivery annotation to an
// encoded message: its section follows the header, which messageToAMQP
// always writes first.
func withLockToken(enc []byte, token uuid.UUID) ([]byte, error) {
	m, err := wire.DecodeMessage(enc)
	if err != nil {
		return nil, err
	}
	if m.Raw.DeliveryAnnotations != nil {
		return nil, errors.New("servicebus: the encoded message has delivery annotations already")
	}
	da, err := (&wire.Message{DeliveryAnnotations: wire.Map{{Key: annLockToken, Value: wire.UUID(token)}}}).Encoded()
	if err != nil {
		return nil, err
	}
	n := len(m.Raw.Header)
	out := make([]byte, 0, len(enc)+len(da))
	out = append(append(append(out, enc[:n]...), da...), enc[n:]...)
	return out, nil
}

// updateDisposition settles messages by lock token on $management
// (service-bus-amqp-request-response, "Update disposition status":
// disposition-status completed, abandoned, suspended (dead-letter, with
// deadletter-reason and deadletter-description) or defered, as Service
// Bus spells it (azservicebus internal/mgmt.go DeferredDisposition);
// lock-tokens, an array of uuid). It settles the locks this connection
// holds on the node's entity: those of receive-by-sequence-number, which
// the SDKs always settle here (azservicebus messageSettler.go
// shouldSettleOnMgmtLink), and those of its receive links. A lock that is
// not held, or lost, is answered 410 like renew-lock, after the ones
// before it were settled. properties-to-modify is not applied.
func (c *amqpConn) updateDisposition(ctx context.Context, queue string, deadLetter bool, args wire.Map) (int32, string, any) {
	if err := c.allowed(ctx, queue, ActionReceive); err != nil {
		return 401, asError(err).Description, nil
	}
	status, _ := mapGet(args, "disposition-status").(string)
	if s, ok := mapGet(args, "disposition-status").(wire.Symbol); ok {
		status = string(s)
	}
	var kind store.QueueOpKind
	switch status {
	case "completed":
		kind = store.QueueComplete
	case "abandoned":
		kind = store.QueueAbandon
	case "suspended":
		kind = store.QueueDeadLetter
		if deadLetter {
			return 400, "A message of a dead-letter queue cannot be dead-lettered.", nil
		}
	case "defered":
		kind = store.QueueDefer
	default:
		return 400, fmt.Sprintf("update-disposition: the disposition-status '%s' is not one of completed, abandoned, suspended and defered.", clip(status, 100)), nil
	}
	tokens, _ := mapGet(args, "lock-tokens").([]wire.UUID)
	if len(tokens) == 0 || len(tokens) > 5000 {
		return 400, "update-disposition needs lock-tokens: an array of 1 to 5000 lock tokens.", nil
	}
	for _, tok := range tokens {
		token := uuid.UUID(tok).String()
		h, ok := c.heldIn(token, queue, deadLetter)
		if !ok {
			return 410, lockLostText(token), nil
		}
		op := store.QueueOp{Kind: kind, QueueID: h.q.id, DeadLetter: h.deadLetter, Limits: h.q.limits,
			SequenceNumber: h.seq, LockToken: token, SessionID: h.session}
		if kind == store.QueueDeadLetter {
			setDeadLetter(&op, mapGet(args, "deadletter-reason"), mapGet(args, "deadletter-description"))
		}
		res := c.s.broker.Do(ctx, op)
		switch {
		case res.Err == nil:
			c.release(token)
		case errors.Is(res.Err, store.ErrLockLost), errors.Is(res.Err, store.ErrNotFound):
			c.release(token)
			return 410, lockLostText(token), nil
		default:
			c.s.log.ErrorContext(ctx, "servicebus: amqp update-disposition", "queue", h.q.id, "seq", h.seq, "err", res.Err)
			return 500, "The server could not settle the message; retry.", nil
		}
	}
	return 200, "OK", nil
}
