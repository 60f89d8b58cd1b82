package servicebus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/tenantbridge/tenantbridge/internal/amqp"
	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Message sessions over AMQP (Service Bus "Message sessions";
// service-bus-amqp-request-response, "Session operations").
//
// A receiver accepts a session by attaching with the source filter
// com.microsoft:session-filter: a session id, or null for the next
// available session. We lock the session in the store (its lock is the
// umbrella of its messages' locks), answer the attach with the session
// granted in the filter and com.microsoft:locked-until-utc in the link
// properties, and the link then delivers that session's messages only,
// in order. The session is released when the link ends and lost when its
// lock lapses without renewal (the link is detached with
// com.microsoft:session-lock-lost). $management serves
// renew-session-lock, get-session-state, set-session-state and
// get-message-sessions.

// sessionFilterName is the source filter that asks for a session, and
// sessionFilterCode its descriptor (azservicebus session_receiver.go:
// amqp.NewLinkFilter("com.microsoft:session-filter", 0x00000137000000C, …)).
const (
	sessionFilterName = wire.Symbol("com.microsoft:session-filter")
	sessionFilterCode = uint64(0x00000137000000C)
)

// Session $management operations.
const (
	opRenewSessionLock = "com.microsoft:renew-session-lock"
	opGetSessionState  = "com.microsoft:get-session-state"
	opSetSessionState  = "com.microsoft:set-session-state"
	opGetSessions      = "com.microsoft:get-message-sessions"
)

// Service Bus's AMQP error conditions for sessions (azservicebus
// internal/errors.go lists both).
const (
	condSessionCannotBeLocked = wire.Symbol("com.microsoft:session-cannot-be-locked")
	condSessionLockLost       = wire.Symbol("com.microsoft:session-lock-lost")
	condTimeout               = wire.Symbol("com.microsoft:timeout")
)

// Accepting the next available session waits up to the link property
// com.microsoft:timeout (milliseconds; the SDKs send their operation's
// deadline), defaultAcceptWait without it, and never beyond maxAcceptWait:
// a waiting attach holds a goroutine.
const (
	defaultAcceptWait = 60 * time.Second
	maxAcceptWait     = 10 * time.Minute
)

// maxSessionPage bounds the session ids of one get-message-sessions reply.
const maxSessionPage = 1000

// sessionMissing says why messages cannot be sent to a queue, "" when
// they can: a session id must be valid text, and a queue that requires
// sessions takes only messages that name one. Service Bus's words for the
// latter (its InvalidOperationException, as the SDKs report it).
func sessionMissing(info queueInfo, msgs []store.QueueMessage) string {
	return sessionMissingIn(info.limits.RequiresSession, msgs)
}

// sessionMissingIn is sessionMissing for a queue that requires sessions
// or not.
func sessionMissingIn(requiresSession bool, msgs []store.QueueMessage) string {
	for _, m := range msgs {
		if !utf8.ValidString(m.SessionID) || strings.ContainsRune(m.SessionID, 0) {
			return "The SessionId is not valid: it must be text without NUL characters."
		}
		if requiresSession && m.SessionID == "" {
			return "The SessionId was not set on a message, and it cannot be sent to the entity. Entities that have session support enabled can only receive messages that have the SessionId set to a valid value."
		}
	}
	return ""
}

// sessionFilterOf reads a receiver's session filter: whether there is
// one, and the session it names ("" for the next available).
func sessionFilterOf(src *wire.Source) (present bool, session string, err error) {
	if src == nil {
		return false, "", nil
	}
	v, ok := src.Filter.Get(sessionFilterName)
	if !ok {
		return false, "", nil
	}
	if d, ok := v.(wire.Described); ok {
		v = d.Value
	} else if d, ok := v.(*wire.Described); ok {
		v = d.Value
	}
	switch s := v.(type) {
	case nil:
		return true, "", nil
	case string:
		if s == "" || len(s) > MaxIDLength || !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			break
		}
		return true, s, nil
	}
	return true, "", &wire.Error{Condition: wire.ErrInvalidField, Description: fmt.Sprintf(
		"The session filter must name a session (1 to %d characters) or be null for the next available session.", MaxIDLength)}
}

// withSession is the source to answer an attach with: the peer's, its
// session filter naming the session granted, in the form the peer sent
// it (go-amqp reads back a described value, the JavaScript SDK a plain
// string).
func withSession(src *wire.Source, session string) *wire.Source {
	out := *src
	out.Filter = make(wire.Map, len(src.Filter))
	copy(out.Filter, src.Filter)
	for i, e := range out.Filter {
		if k, ok := e.Key.(wire.Symbol); !ok || k != sessionFilterName {
			continue
		}
		switch d := e.Value.(type) {
		case wire.Described:
			out.Filter[i].Value = wire.Described{Descriptor: d.Descriptor, Value: session}
		case *wire.Described:
			out.Filter[i].Value = wire.Described{Descriptor: d.Descriptor, Value: session}
		default:
			out.Filter[i].Value = session
		}
	}
	return &out
}

// dotNetTicks is t as .NET DateTime ticks (100 ns since 0001-01-01 UTC),
// the form of com.microsoft:locked-until-utc (azservicebus reads it with
// ticksToUnixTime).
func dotNetTicks(t time.Time) int64 {
	const unixEpochTicks = 621355968000000000
	return unixEpochTicks + t.UnixNano()/100
}

// sessionRef names a session of a queue held by a receiver of the
// connection.
type sessionRef struct {
	queue   string // lower-cased queue resource id
	session string
}

// heldSession is a session a receiver of the connection holds.
type heldSession struct {
	token string
	until time.Time
	link  string // the receiver link's name (associated-link-name)
}

// sessionTimeout is how long an attach may wait for the next available
// session.
func sessionTimeout(props wire.Map) time.Duration {
	v, ok := props.Get(wire.Symbol("com.microsoft:timeout"))
	if !ok {
		v, ok = props.Get("com.microsoft:timeout")
	}
	if !ok {
		return defaultAcceptWait
	}
	ms, ok := wholeNumber(v)
	if !ok {
		return defaultAcceptWait
	}
	return time.Duration(min(max(ms, 0), int64(maxAcceptWait/time.Millisecond))) * time.Millisecond
}

// acceptSession locks the session a receiver's filter asks for and
// returns the answer to its attach, or the error Service Bus refuses it
// with.
func (c *amqpConn) acceptSession(ctx context.Context, rl *receiveLink, session string) (*amqp.Accept, error) {
	a := rl.l.PeerAttach
	op := store.QueueOp{Kind: store.QueueLockSession, QueueID: rl.q.id, Limits: rl.q.limits,
		SessionID: session, LockToken: uuid.NewString()}
	r, err := c.s.broker.AcceptSession(ctx, op, sessionTimeout(a.Properties))
	switch {
	case err == nil:
	case errors.Is(err, ErrNoMessage):
		return nil, &wire.Error{Condition: condTimeout, Description: fmt.Sprintf(
			"No unlocked session of 'sb://%s/%s' became available within the timeout.", c.host, rl.queue)}
	case errors.Is(err, store.ErrLockLost):
		return nil, &wire.Error{Condition: condSessionCannotBeLocked, Description: fmt.Sprintf(
			"The requested session '%s' cannot be accepted. It may be locked by another receiver.", session)}
	case errors.Is(err, store.ErrNotFound):
		return nil, c.notFound(rl.queue)
	case ctx.Err() != nil:
		return nil, ctx.Err()
	default:
		c.s.log.ErrorContext(ctx, "servicebus: amqp accept session", "queue", rl.q.id, "err", err)
		return nil, storeError(err, "The server could not lock the session; attach again.")
	}
	rl.session, rl.sessionToken = r.SessionID, op.LockToken
	c.holdSession(sessionRef{strings.ToLower(rl.q.id), r.SessionID}, heldSession{token: op.LockToken, until: r.LockedUntil, link: a.Name})
	return &amqp.Accept{
		Source:      withSession(a.Source, r.SessionID),
		Properties:  wire.Map{{Key: wire.Symbol("com.microsoft:locked-until-utc"), Value: dotNetTicks(r.LockedUntil)}},
		ManualDrain: true,
	}, nil
}

func (c *amqpConn) holdSession(ref sessionRef, h heldSession) {
	c.heldMu.Lock()
	defer c.heldMu.Unlock()
	if c.sessions == nil {
		c.sessions = map[sessionRef]heldSession{}
	}
	c.sessions[ref] = h
}

// sessionHeld is the connection's hold on a session of a queue.
func (c *amqpConn) sessionHeld(queueID, session string) (heldSession, bool) {
	c.heldMu.Lock()
	defer c.heldMu.Unlock()
	h, ok := c.sessions[sessionRef{strings.ToLower(queueID), session}]
	return h, ok
}

// sessionOfLink is the session the connection's receiver link named
// holds on the queue: what a $management request that names its link
// (associated-link-name) and not its session is about.
func (c *amqpConn) sessionOfLink(queueID, link string) (string, bool) {
	c.heldMu.Lock()
	defer c.heldMu.Unlock()
	q := strings.ToLower(queueID)
	for ref, h := range c.sessions {
		if ref.queue == q && h.link == link && link != "" {
			return ref.session, true
		}
	}
	return "", false
}

// sessionRenewed records a held session's new expiry.
func (c *amqpConn) sessionRenewed(queueID, session string, until time.Time) {
	c.heldMu.Lock()
	defer c.heldMu.Unlock()
	ref := sessionRef{strings.ToLower(queueID), session}
	if h, ok := c.sessions[ref]; ok {
		h.until = until
		c.sessions[ref] = h
	}
}

// dropSession forgets the session hold with token.
func (c *amqpConn) dropSession(queueID, session, token string) {
	c.heldMu.Lock()
	defer c.heldMu.Unlock()
	ref := sessionRef{strings.ToLower(queueID), session}
	if h, ok := c.sessions[ref]; ok && h.token == token {
		delete(c.sessions, ref)
	}
}

// sessionLost is the detach of a session receiver whose lock is gone.
func sessionLost(session string) *wire.Error {
	return &wire.Error{Condition: condSessionLockLost, Description: fmt.Sprintf(
		"The session lock has expired on the session '%s'. Accept a new session.", session)}
}

// watchSession detaches a session receiver once its session's lock lapses
// without renewal, as Service Bus ends a session whose lock expired. It
// watches with a timer, not a goroutine, as detachOnExpiry does.
func (rl *receiveLink) watchSession() {
	w := &sessionWatch{rl: rl}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t = time.AfterFunc(0, w.check)
	context.AfterFunc(rl.l.Context(), w.stop)
}

// sessionWatch is the timer of one session receiver's watchSession.
type sessionWatch struct {
	rl *receiveLink

	mu    sync.Mutex
	t     *time.Timer
	ended bool // the link ended, or the session is no longer its: the timer stays off
}

// check detaches the link if its session's lock has lapsed, and otherwise
// sets the timer for when it lapses as last renewed.
func (w *sessionWatch) check() {
	rl := w.rl
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended {
		return
	}
	h, ok := rl.c.sessionHeld(rl.q.id, rl.session)
	if !ok || h.token != rl.sessionToken {
		w.ended = true
		return
	}
	wait := h.until.Sub(rl.c.s.broker.now())
	if wait > 0 {
		w.t.Reset(wait + 10*time.Millisecond)
		return
	}
	w.ended = true
	rl.c.dropSession(rl.q.id, rl.session, rl.sessionToken)
	rl.l.Detach(sessionLost(rl.session))
}

// stop turns the timer off for good once the link has ended.
func (w *sessionWatch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ended = true
	w.t.Stop()
}

// endSession releases the receiver's session when its link ends: the
// session is free for the next receiver, and its messages locked and not
// settled are delivered again without counting this delivery.
func (rl *receiveLink) endSession() {
	if rl.session == "" {
		return
	}
	rl.c.dropSession(rl.q.id, rl.session, rl.sessionToken)
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	r := rl.c.s.broker.Do(ctx, store.QueueOp{Kind: store.QueueReleaseSession, QueueID: rl.q.id, Limits: rl.q.limits,
		SessionID: rl.session, SessionLockToken: rl.sessionToken})
	if r.Err != nil && !errors.Is(r.Err, store.ErrLockLost) {
		rl.c.s.log.Error("servicebus: amqp release session", "queue", rl.q.id, "err", r.Err)
	}
}

// lostState is how a settlement on a session receiver whose lock is lost
// is answered: session-lock-lost once the session's lock is gone,
// message-lock-lost otherwise.
func (rl *receiveLink) lostState(token string) wire.DeliveryState {
	if rl.session != "" {
		if h, ok := rl.c.sessionHeld(rl.q.id, rl.session); !ok || h.token != rl.sessionToken || !rl.c.s.broker.now().Before(h.until) {
			return &wire.Rejected{Error: sessionLost(rl.session)}
		}
	}
	return lockLost(token)
}

// mgmtSession finds the session a $management request is about (its
// session-id, or the session of its associated link) and this
// connection's hold on it. status is 0, or the reply's status and
// description.
func (c *amqpConn) mgmtSession(info queueInfo, req *wire.Message, args wire.Map) (string, heldSession, int32, string) {
	session, _ := mapGet(args, "session-id").(string)
	if session == "" {
		link, _ := req.ApplicationProperties.Get("associated-link-name")
		name, _ := link.(string)
		session, _ = c.sessionOfLink(info.res.ID, name)
	}
	if session == "" {
		return "", heldSession{}, 400, "The request needs session-id: the session it is about."
	}
	h, ok := c.sessionHeld(info.res.ID, session)
	if !ok {
		return session, h, 410, sessionLost(session).Description
	}
	return session, h, 0, ""
}

// manageSession answers the session operations of $management.
func (c *amqpConn) manageSession(ctx context.Context, queue string, deadLetter bool, op string, req *wire.Message, args wire.Map) (int32, string, any) {
	if err := c.allowed(ctx, queue, ActionReceive); err != nil {
		return 401, asError(err).Description, nil
	}
	info, status, desc := c.mgmtQueue(ctx, queue)
	if status != 0 {
		return status, desc, nil
	}
	if deadLetter || !info.limits.RequiresSession {
		return 400, fmt.Sprintf("The entity 'sb://%s/%s' does not require sessions: it has no session operations.", c.host, queue), nil
	}
	if op == opGetSessions {
		return c.listSessions(ctx, info, args)
	}
	session, h, status, desc := c.mgmtSession(info, req, args)
	if status != 0 {
		return status, desc, nil
	}
	sop := store.QueueOp{QueueID: info.res.ID, Limits: info.limits, SessionID: session, SessionLockToken: h.token}
	switch op {
	case opRenewSessionLock:
		sop.Kind = store.QueueRenewSession
	case opGetSessionState:
		sop.Kind = store.QueueGetSessionState
	case opSetSessionState:
		sop.Kind = store.QueueSetSessionState
		switch st := mapGet(args, "session-state").(type) {
		case nil:
		case []byte:
			// "the message session state is an opaque binary object that
			// can hold data of the size of one message" (Message sessions).
			if len(st) > info.maxMessage {
				return 400, fmt.Sprintf("The session state (%d bytes) exceeds the limit of %d bytes, the size of one message.", len(st), info.maxMessage), nil
			}
			sop.SessionState = st
		default:
			return 400, "set-session-state needs session-state: binary, or null to clear it.", nil
		}
	}
	r := c.s.broker.Do(ctx, sop)
	switch {
	case r.Err == nil:
	case errors.Is(r.Err, store.ErrLockLost):
		c.dropSession(info.res.ID, session, h.token)
		return 410, sessionLost(session).Description, nil
	case errors.Is(r.Err, store.ErrQuotaExceeded):
		return 403, fmt.Sprintf("QuotaExceeded: the entity 'sb://%s/%s' has reached its maximum size.", c.host, queue), nil
	default:
		c.s.log.ErrorContext(ctx, "servicebus: amqp session operation", "queue", info.res.ID, "op", op, "err", r.Err)
		return 500, "The server could not run the session operation; retry.", nil
	}
	switch op {
	case opRenewSessionLock:
		c.sessionRenewed(info.res.ID, session, r.LockedUntil)
		return 200, "OK", wire.Map{{Key: "expiration", Value: r.LockedUntil.UTC()}}
	case opGetSessionState:
		var state any // null: no state set
		if r.SessionState != nil {
			state = r.SessionState
		}
		return 200, "OK", wire.Map{{Key: "session-state", Value: state}}
	}
	return 200, "OK", nil
}

// listSessions answers get-message-sessions: a page of the queue's
// sessions with messages or state, or with state updated after
// last-updated-time. The SDKs ask for the default listing with
// DateTime.MaxValue, which arrives as 10000-01-01 (azservicebus
// client.go, newListSessionsPager).
func (c *amqpConn) listSessions(ctx context.Context, info queueInfo, args wire.Map) (int32, string, any) {
	skip, _ := mapGet(args, "skip").(int32)
	top, _ := mapGet(args, "top").(int32)
	if skip < 0 || top <= 0 {
		return 400, "get-message-sessions needs skip (0 or more) and top (1 or more).", nil
	}
	top = min(top, maxSessionPage)
	var after time.Time
	if t, ok := mapGet(args, "last-updated-time").(time.Time); ok && t.Year() < 9999 {
		after = t
	}
	ids, err := c.s.st.ListQueueSessions(ctx, info.res.ID, after, int(skip), int(top))
	if err != nil {
		return 500, "The server could not list the sessions.", nil
	}
	if len(ids) == 0 {
		return 204, "No sessions", nil
	}
	return 200, "OK", wire.Map{{Key: "skip", Value: skip + int32(len(ids))}, {Key: "sessions-ids", Value: ids}}
}
