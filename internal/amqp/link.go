package amqp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
)

// Link is one link the peer attached, as the application sees it. Its
// exported fields never change (but PeerAttach, dropped once the attach
// is answered); its methods may be called from any goroutine. Its name
// is PeerAttach.Name, for the application's Attach.
type Link struct {
	Conn *Conn
	// PeerAttach is the peer's attach, read only: its source (with
	// Service Bus's filters), target, properties and settle modes. It is
	// the application's to read in Handler.Attach: once the attach is
	// answered the engine lets go of it (nil), so that an open link does
	// not keep the decoded attach, most of what an idle link costs
	// (docs/benchmarks.md, "Many customers on one node").
	PeerAttach *wire.Attach

	// The fields are grouped so that they pack: a link is 208 bytes,
	// 256 in any other order (an idle link's size is what a fleet's
	// connections hold per link: docs/benchmarks.md, "Many customers on
	// one node").
	mu       sync.Mutex
	done     chan struct{} // its context's Done, made by the first Done (an idle link is seldom asked), closed when it ends
	afterEnd *afterEnd     // what the link's context runs when it ends (linkContext.AfterFunc), in order
	replies  *Replies      // the Replies the link is registered in, which its end leaves
	err      error         // why the link ended
	creditCh chan struct{} // signalled when credit or a drain arrives; made by the first CreditChanged
	credit   uint32        // a copy of peerCredit, for Credit
	ended    bool          // the link has ended
	draining bool          // a copy of drain, for Draining

	// Everything below is owned by the connection's loop.
	s         *session
	acc       *Accept
	callbacks *callbacks // the application's callbacks, run in order; made by the first post
	handle    uint32
	peerSends bool
	state     linkState
	rcvSecond bool  // receiver settle mode second (we or the peer settle last)
	sndMode   uint8 // the sender settle mode agreed

	// When the peer sends:
	cur           *Delivery // the delivery being reassembled
	maxMessage    uint64    // the largest message the peer may send
	unsettledIn   int
	deliveryCount uint32 // the sender's delivery-count as we know it
	linkCredit    uint32 // what is left of the credit we gave
	window        uint32 // Accept.Credit
	held          uint32 // deliveries using the window (in progress, in OnDelivery, unsettled)

	// When we send:
	pending        []*outMsg
	unsettledOut   int
	peerMaxMessage uint64
	sendCount      uint32 // our delivery-count
	peerCredit     uint32 // link-credit (sender's view)
	available      uint32
	drain          bool

	counted bool // Server.Observer was told of the attach, and is told of the end
}

type linkState uint8

const (
	linkAttaching  linkState = iota // the application is deciding
	linkAttached                    // in use
	linkDetachSent                  // we detached; we wait for the peer's detach
	linkEnded                       // gone from the session
)

// ErrSessionEnded and ErrLinkDetached are the errors of links that ended
// with their session, or were detached by the peer, without an error.
var (
	ErrSessionEnded = errors.New("amqp: session ended")
	ErrLinkDetached = errors.New("amqp: link detached")
)

func newLink(s *session, a *wire.Attach) *Link {
	l := &Link{
		Conn:       s.c,
		PeerAttach: a,
		s:          s,
		handle:     a.Handle,
		peerSends:  !a.Role, // role false: the peer is the sender
		sndMode:    a.SndSettle(),
		rcvSecond:  a.RcvSettle() == wire.RcvSettleModeSecond,
	}
	if a.MaxMessageSize != nil {
		l.peerMaxMessage = *a.MaxMessageSize
	}
	return l
}

// PeerSends reports whether the peer sends on this link (it attached as
// sender, to one of our targets); otherwise we send (it receives from one
// of our sources).
func (l *Link) PeerSends() bool { return l.peerSends }

// Context is cancelled when the link ends.
func (l *Link) Context() context.Context { return (*linkContext)(l) }

// linkContext is a link's context: the link itself, done when the link
// ends, with no value and no deadline. It costs the link nothing of its
// own (but the done channel, once something asks for it): a context.WithCancel per link cost a context, its done channel
// (besides the link's) and, once anything watched it (context.AfterFunc:
// the expiry watch, the reply links' tables), a table of its children;
// about a third of the heap of an idle link (docs/benchmarks.md, "Many
// customers on one node"). Its AfterFunc method is what the context
// package looks for in a parent it does not know, so that the contexts
// and AfterFuncs derived from it are told of the end without a goroutine
// each.
type linkContext Link

// afterEnd is one function a link's context runs when the link ends, in
// a list (a link has few, most none).
type afterEnd struct {
	f    func()
	next *afterEnd
}

func (c *linkContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *linkContext) Done() <-chan struct{}       { return (*Link)(c).Done() }
func (c *linkContext) Value(any) any               { return nil }

// Err is context.Canceled once the link has ended.
func (c *linkContext) Err() error {
	l := (*Link)(c)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return context.Canceled
	}
	return nil
}

// AfterFunc arranges for f to run when the link ends (at once, on a
// goroutine of its own, when it has ended already: the context package
// calls this holding a lock that f takes). The stop function it returns
// unregisters f, reporting whether it had not run yet.
func (c *linkContext) AfterFunc(f func()) (stop func() bool) {
	l := (*Link)(c)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		go f()
		return func() bool { return false }
	}
	e := &afterEnd{f: f}
	p := &l.afterEnd
	for *p != nil {
		p = &(*p).next
	}
	*p = e
	return func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for p := &l.afterEnd; *p != nil; p = &(*p).next {
			if *p == e {
				*p = e.next
				return true
			}
		}
		return false
	}
}

// Done is closed when the link has ended.
func (l *Link) Done() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done == nil {
		if l.ended {
			return closedChan
		}
		// Made on first use: most links' ends are never waited for
		// (a reply link's, say), and a channel was a quarter of what an
		// idle link cost (docs/benchmarks.md, "Many customers on one
		// node").
		l.done = make(chan struct{})
	}
	return l.done
}

// closedChan is the Done of a link that ended before anything asked.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// Err says why the link ended: the peer's *wire.Error, the one we
// detached with, ErrLinkDetached, ErrSessionEnded or the connection's.
func (l *Link) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Detach detaches the link from our side with the error e (nil for a
// clean detach), e.g. amqp:unauthorized-access when the token it was
// authorised by expired. It does not wait.
func (l *Link) Detach(e *wire.Error) {
	l.Conn.call(func() { l.detach(e) })
}

// Credit is how many more deliveries we may send now (links on which we
// send).
func (l *Link) Credit() uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.credit
}

// Draining reports whether the peer asked to drain its credit and the
// engine waits for DrainDone (Accept.ManualDrain).
func (l *Link) Draining() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.draining
}

// CreditChanged receives a value when the peer grants credit or asks to
// drain: the application's wake-up to send. It is one signal for any
// number of flows, so read Credit after it.
func (l *Link) CreditChanged() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.creditCh == nil {
		// Made on first use (most links are never asked: an idle one
		// keeps no channel), with the signal it would hold already.
		l.creditCh = make(chan struct{}, 1)
		if l.credit > 0 || l.draining {
			l.creditCh <- struct{}{}
		}
	}
	return l.creditCh
}

// SetAvailable sets the number of messages we tell the peer are
// available (the flow's available field), sent with our next flow.
func (l *Link) SetAvailable(n uint32) {
	l.Conn.call(func() { l.available = n })
}

// DrainDone answers a drain the peer asked for (Accept.ManualDrain): the
// credit left is used up and the peer told so. It does nothing when no
// drain is in progress.
func (l *Link) DrainDone() {
	l.Conn.call(func() {
		if l.state == linkAttached && l.drainable() {
			l.finishDrain()
		}
	})
}

// outMsg is a delivery handed to Send, waiting for credit or being split
// into transfer frames.
type outMsg struct {
	tag     []byte
	format  uint32
	payload []byte
	settled bool

	started bool
	id      uint32
	off     int
	result  chan sendResult // answered exactly once
}

type sendResult struct {
	id  uint32
	err error
}

// Send sends one delivery on a link where we send: it waits until the
// peer has given credit (and the session window is open), then writes the
// transfer frames, split to the frame size the peer takes. It returns the
// delivery-id once the last frame is written. An unsettled delivery's
// outcome comes later through Accept.OnDisposition. Deliveries of one
// link go out in the order Send is called. payload must not change until
// Send returns.
//
// When ctx ends first, a delivery not yet started is withdrawn and one
// partly sent is aborted (part 2.6.14); either way Send returns ctx's
// error.
func (l *Link) Send(ctx context.Context, tag []byte, format uint32, payload []byte, settled bool) (uint32, error) {
	if l.peerSends {
		return 0, errors.New("amqp: Send on a link where the peer sends")
	}
	if len(tag) > 32 {
		return 0, errors.New("amqp: delivery tag longer than 32 bytes")
	}
	m := &outMsg{tag: tag, format: format, payload: payload, settled: settled, result: make(chan sendResult, 1)}
	if !l.Conn.call(func() { l.enqueue(m) }) {
		return 0, ErrConnClosed
	}
	if ctx == l.Context() {
		// The link's own context ends with the link, which answers what
		// it has queued (with why it ended): no need to wait for it too,
		// nor to make its done channel.
		r := <-m.result
		return r.id, r.err
	}
	select {
	case r := <-m.result:
		return r.id, r.err
	case <-ctx.Done():
		l.Conn.call(func() { l.withdraw(m, ctx.Err()) })
		r := <-m.result // enqueued messages are always answered, at the latest when the link ends
		return r.id, r.err
	}
}

// enqueue queues a Send (loop). A Send made while the application is
// still deciding on the attach waits for the link to be attached.
func (l *Link) enqueue(m *outMsg) {
	if l.state != linkAttached && l.state != linkAttaching {
		m.result <- sendResult{err: l.endErr()}
		return
	}
	if l.peerMaxMessage != 0 && uint64(len(m.payload)) > l.peerMaxMessage {
		m.result <- sendResult{err: &wire.Error{Condition: wire.ErrLinkMessageSizeExceeded,
			Description: fmt.Sprintf("message of %d bytes, the peer takes %d", len(m.payload), l.peerMaxMessage)}}
		return
	}
	switch l.sndMode {
	case wire.SndSettleModeUnsettled:
		m.settled = false
	case wire.SndSettleModeSettled:
		m.settled = true
	}
	l.pending = append(l.pending, m)
	l.pump()
}

// withdraw takes back a Send whose context ended (loop).
func (l *Link) withdraw(m *outMsg, err error) {
	for i, p := range l.pending {
		if p != m {
			continue
		}
		if m.started {
			// Part of it is out: abort the delivery (part 2.6.14).
			h := l.handle
			l.s.c.writeFrame(l.s.ch, &wire.Transfer{Handle: h, More: false, Aborted: true}, nil)
			l.s.nextOutgoingID++
			if l.s.remoteIncomingWindow > 0 {
				l.s.remoteIncomingWindow--
			}
			if _, ok := l.s.outgoing[m.id]; ok {
				l.s.dropOutgoing(m.id)
				l.unsettledOut--
			}
		}
		l.pending = append(l.pending[:i], l.pending[i+1:]...)
		m.result <- sendResult{err: err}
		l.pump()
		return
	}
}

// pump sends what is pending while credit, the unsettled limit and the
// session window allow (loop).
func (l *Link) pump() {
	if l.state != linkAttached {
		return // Sends made while attaching wait; ended links have none
	}
	s := l.s
	c := s.c
	for len(l.pending) > 0 && l.state == linkAttached && !c.finished {
		m := l.pending[0]
		if !m.started {
			if l.peerCredit == 0 || (!m.settled && l.unsettledOut >= c.srv.maxUnsettled()) || s.remoteIncomingWindow == 0 {
				break
			}
			m.started = true
			m.id = s.nextDeliveryID
			s.nextDeliveryID++
			l.sendCount++
			l.peerCredit--
			if !m.settled {
				s.putOutgoing(m.id, outDelivery{link: l, tag: m.tag})
				l.unsettledOut++
			}
			if !l.sendFrames(m, true) {
				break
			}
		} else if !l.sendFrames(m, false) {
			break
		}
		l.pending[0] = nil
		if len(l.pending) == 1 {
			l.pending = l.pending[:0] // the next Send uses the array again
		} else {
			l.pending = l.pending[1:]
		}
		m.result <- sendResult{id: m.id}
	}
	if len(l.pending) == 0 && cap(l.pending) > 64 {
		l.pending = nil // let a long queue's array go
	}
	l.publishCredit()
	if l.drainable() && (l.acc == nil || !l.acc.ManualDrain) {
		l.finishDrain()
	}
}

// drainable reports whether a drain the peer asked for can be answered:
// nothing waits that the credit left could carry (loop).
func (l *Link) drainable() bool {
	return l.drain && (len(l.pending) == 0 || (l.peerCredit == 0 && !l.pending[0].started))
}

// sendFrames writes m's transfer frames while the session window is open.
// It reports whether the whole delivery is out.
func (l *Link) sendFrames(m *outMsg, first bool) bool {
	s := l.s
	c := s.c
	for {
		if s.remoteIncomingWindow == 0 {
			return false
		}
		// The performative is the connection's, reused frame after frame
		// (encoding does not keep it).
		sc := c.scratch()
		t := &sc.transfer
		*t = wire.Transfer{Handle: l.handle, Settled: c.transferSettled(m.settled)}
		if first {
			sc.transferID, sc.transferFormat = m.id, m.format
			t.DeliveryID = &sc.transferID
			t.DeliveryTag = m.tag
			if t.DeliveryTag == nil {
				t.DeliveryTag = []byte{}
			}
			t.MessageFormat = &sc.transferFormat
		}
		n := c.writeTransfer(s.ch, t, m.payload[m.off:])
		if n < 0 {
			return false
		}
		m.off += n
		first = false
		s.nextOutgoingID++
		s.remoteIncomingWindow--
		if !t.More {
			return true
		}
	}
}

// finishDrain ends a drain: the credit left is used up by advancing the
// delivery-count, and the peer is told with drain set (part 2.6.7), which
// is what go-amqp's DrainCredit waits for (loop).
func (l *Link) finishDrain() {
	l.sendCount += l.peerCredit
	l.peerCredit = 0
	l.drain = false
	f := l.s.flowFrame(l)
	f.Drain = true
	l.s.c.writeFrame(l.s.ch, f, nil)
	l.publishCredit()
}

// publishCredit copies the loop's credit for Credit and Draining, and
// wakes the application when there is something to send into.
func (l *Link) publishCredit() {
	l.mu.Lock()
	grew := l.peerCredit > l.credit
	l.credit = l.peerCredit
	l.draining = l.drain
	ch := l.creditCh
	l.mu.Unlock()
	if !grew && !l.drain {
		return
	}
	if ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	if l.acc != nil && l.acc.OnCredit != nil {
		l.acc.OnCredit()
	}
}

// peerFlow applies the link part of the peer's flow (loop).
func (l *Link) peerFlow(f *wire.Flow) {
	if l.state == linkDetachSent {
		return
	}
	if l.peerSends {
		// The sender tells us its delivery-count, e.g. after using up
		// credit without sending; what it used is no longer ours to count.
		if f.DeliveryCount != nil {
			used := *f.DeliveryCount - l.deliveryCount
			l.linkCredit -= min(used, l.linkCredit)
			l.deliveryCount = *f.DeliveryCount
		}
		if f.Echo && l.state == linkAttached {
			l.s.c.writeFrame(l.s.ch, l.s.flowFrame(l), nil)
		}
		return
	}
	// part 2.6.7: link-credit(snd) := delivery-count(rcv) +
	// link-credit(rcv) - delivery-count(snd). A receiver that has not seen
	// our attach yet counts from our initial delivery-count, 0.
	if f.LinkCredit != nil {
		var dc uint32
		if f.DeliveryCount != nil {
			dc = *f.DeliveryCount
		}
		l.peerCredit = dc + *f.LinkCredit - l.sendCount
		if int32(l.peerCredit) < 0 {
			l.peerCredit = 0 // a count from the future: give nothing
		}
	}
	l.drain = f.Drain
	if l.state != linkAttached {
		return // applied once the application has taken the link
	}
	l.pump()
	if f.Echo {
		l.s.c.writeFrame(l.s.ch, l.s.flowFrame(l), nil)
	}
}

// transfer handles one transfer frame for this link (loop).
func (l *Link) transfer(t *wire.Transfer, payload []byte) {
	c := l.s.c
	switch {
	case l.state == linkDetachSent:
		return // in flight when we detached
	case !l.peerSends:
		l.detach(&wire.Error{Condition: wire.ErrNotAllowed, Description: "transfer on a link where we send"})
		return
	case l.state != linkAttached:
		l.s.end(&wire.Error{Condition: wire.ErrIllegalState, Description: "transfer before the attach was answered"})
		return
	}
	if l.cur == nil {
		if t.DeliveryID == nil {
			l.detach(&wire.Error{Condition: wire.ErrInvalidField, Description: "first transfer without delivery-id"})
			return
		}
		if l.linkCredit == 0 {
			l.detach(&wire.Error{Condition: wire.ErrLinkTransferLimitExceeded, Description: "transfer without credit"})
			return
		}
		l.linkCredit--
		l.deliveryCount++
		l.held++
		d := &Delivery{ID: *t.DeliveryID, Tag: t.DeliveryTag, link: l}
		if t.MessageFormat != nil {
			d.Format = *t.MessageFormat
		}
		l.cur = d
	}
	d := l.cur
	if t.Settled != nil && *t.Settled {
		d.Settled = true
	}
	if t.Aborted {
		l.dropCurrent()
		l.topUpCredit()
		return
	}
	if uint64(len(d.Payload))+uint64(len(payload)) > l.maxMessage {
		l.detach(&wire.Error{Condition: wire.ErrLinkMessageSizeExceeded,
			Description: fmt.Sprintf("message larger than %d bytes", l.maxMessage)})
		return
	}
	if c.buffered+int64(len(payload)) > c.srv.maxConnBuffer() {
		c.closeWith(&wire.Error{Condition: wire.ErrResourceLimitExceeded, Description: "too many message bytes in flight"})
		return
	}
	c.buffered += int64(len(payload))
	if d.Payload == nil && !t.More {
		// A one-frame message: the frame's buffer is ours (ReadFrame
		// allocates one per frame), so it needs no copy.
		d.Payload = payload
	} else {
		d.Payload = append(d.Payload, payload...)
	}
	if t.More {
		return
	}
	l.cur = nil
	if !d.Settled {
		if _, ok := l.s.incoming[d.ID]; ok {
			l.s.end(&wire.Error{Condition: wire.ErrNotAllowed, Description: fmt.Sprintf("delivery-id %d reused while unsettled", d.ID)})
			return
		}
		l.s.putIncoming(d.ID, inDelivery{link: l})
		l.unsettledIn++
	}
	size := int64(len(d.Payload))
	onDelivery := l.acc.OnDelivery
	ctx := l.Context()
	l.post(func() {
		var state wire.DeliveryState
		if onDelivery != nil {
			state = callOnDelivery(ctx, onDelivery, d)
		} else {
			state = &wire.Rejected{Error: &wire.Error{Condition: wire.ErrNotImplemented, Description: "this link takes no messages"}}
		}
		c.call(func() {
			c.buffered -= size
			l.delivered(d, state)
		})
	})
}

// callOnDelivery calls the application, turning a panic into a rejection.
func callOnDelivery(ctx context.Context, f func(context.Context, *Delivery) wire.DeliveryState, d *Delivery) (st wire.DeliveryState) {
	defer func() {
		if r := recover(); r != nil {
			st = &wire.Rejected{Error: &wire.Error{Condition: wire.ErrInternalError, Description: "delivery failed"}}
		}
	}()
	return f(ctx, d)
}

// dropCurrent discards the delivery being reassembled.
func (l *Link) dropCurrent() {
	if l.cur == nil {
		return
	}
	l.s.c.buffered -= int64(len(l.cur.Payload))
	l.cur = nil
	l.held--
}

// delivered runs on the loop once OnDelivery returned.
func (l *Link) delivered(d *Delivery, state wire.DeliveryState) {
	if l.state == linkEnded {
		return
	}
	if d.Settled {
		l.held--
	} else if in, ok := l.s.incoming[d.ID]; !ok || in.link != l {
		l.held-- // settled meanwhile
	} else {
		in.handled = true
		l.s.incoming[d.ID] = in
		if state != nil {
			l.settleIncoming(d.ID, state)
		}
	}
	l.topUpCredit()
}

// settleIncoming sends our outcome for a delivery the peer sent (loop).
// In receiver settle mode first we settle at once; in mode second we send
// the outcome unsettled and settle when the peer has (part 2.6.12).
func (l *Link) settleIncoming(id uint32, state wire.DeliveryState) {
	in, ok := l.s.incoming[id]
	if !ok || in.link != l || in.stateSent != nil || l.state != linkAttached {
		return
	}
	if l.rcvSecond {
		in.stateSent = state
		l.s.incoming[id] = in
		l.s.c.writeDisposition(l.s.ch, true, id, nil, false, state)
		return
	}
	l.s.c.writeDisposition(l.s.ch, true, id, nil, true, state)
	l.s.dropIncoming(id)
	l.unsettledIn--
	if in.handled {
		l.held--
	}
	l.topUpCredit()
}

// topUpCredit gives the sending peer credit back as deliveries leave the
// window, in steps of half the window so that flows stay rare (loop).
func (l *Link) topUpCredit() {
	if !l.peerSends || l.state != linkAttached {
		return
	}
	room := int64(l.window) - int64(l.held)
	if u := int64(l.s.c.srv.maxUnsettled()) - int64(l.unsettledIn); u < room {
		room = u
	}
	if room <= int64(l.linkCredit) {
		return
	}
	step := max(int64(l.window)/2, 1)
	if room-int64(l.linkCredit) < step && l.linkCredit > 0 {
		return
	}
	l.linkCredit = uint32(room)
	l.s.c.writeFrame(l.s.ch, l.s.flowFrame(l), nil)
}

// reportDisposition hands the peer's outcome of one of our deliveries to
// the application (loop).
func (l *Link) reportDisposition(d Disposition) {
	if l.acc != nil && l.acc.OnDisposition != nil && l.state == linkAttached {
		f := l.acc.OnDisposition
		l.post(func() { f(d) })
	}
}

// settleAfterReport reports an outcome the receiver has not settled
// (receiver settle mode second) and settles the delivery once the
// application's OnDisposition has returned, with the state it chose (or
// the receiver's). Without OnDisposition it settles at once.
func (l *Link) settleAfterReport(d Disposition) {
	settle := func(state wire.DeliveryState) {
		l.s.c.writeDisposition(l.s.ch, false, d.ID, nil, true, state)
	}
	if l.acc == nil || l.acc.OnDisposition == nil || l.state != linkAttached {
		settle(confirmed(d.State))
		return
	}
	f := l.acc.OnDisposition
	l.post(func() {
		state := f(d)
		if state == nil {
			state = confirmed(d.State)
		}
		l.Conn.call(func() {
			if !l.s.ended() {
				settle(state)
			}
		})
	})
}

// post queues a callback for the link's goroutine. What the protocol
// allows in flight (credit, the unsettled limit) bounds the queue, so a
// longer one means a broken count: the link is detached.
func (l *Link) post(f func()) {
	if l.callbacks == nil {
		l.callbacks = &callbacks{} // a link that never calls back (a reply link) has none
	}
	if n := l.callbacks.push(f, &l.s.c.wg); n > int(l.window)+l.s.c.srv.maxUnsettled()+1 {
		l.detach(&wire.Error{Condition: wire.ErrResourceLimitExceeded, Description: "too many deliveries in flight"})
	}
}

// callbacks runs a link's application callbacks in order, on at most one
// goroutine at a time, started when there is work and gone when there is
// none: an idle link costs no goroutine, and a queue costs only what is
// in it. The goroutine takes the queue a batch at a time, and the arrays
// of small batches are used again.
type callbacks struct {
	mu      sync.Mutex
	queue   []func()
	spare   []func() // an empty array for the next queue
	running bool
}

// push queues f and returns the queue's length (what the goroutine has
// not taken yet).
func (q *callbacks) push(f func(), wg *sync.WaitGroup) int {
	q.mu.Lock()
	if q.queue == nil {
		q.queue, q.spare = q.spare, nil
	}
	q.queue = append(q.queue, f)
	n := len(q.queue)
	start := !q.running
	q.running = true
	q.mu.Unlock()
	if start {
		wg.Add(1)
		go q.run(wg)
	}
	return n
}

func (q *callbacks) run(wg *sync.WaitGroup) {
	defer wg.Done()
	var batch []func()
	for {
		q.mu.Lock()
		if cap(batch) <= 64 && q.spare == nil {
			q.spare = batch[:0]
		}
		if len(q.queue) == 0 {
			q.running = false
			if cap(q.queue) > 64 {
				q.queue = nil // let a long queue's array go
			}
			q.mu.Unlock()
			return
		}
		batch, q.queue, q.spare = q.queue, q.spare, nil
		q.mu.Unlock()
		for i, f := range batch {
			batch[i] = nil
			f()
		}
	}
}

// attached applies the application's decision on the attach (loop).
func (l *Link) attached(acc *Accept, err error) {
	if l.state == linkEnded {
		if err == nil && acc != nil && acc.OnEnd != nil {
			acc.OnEnd() // ended while the application decided
		}
		return
	}
	a := l.PeerAttach
	defer func() { l.PeerAttach = nil }() // the answer is encoded: nothing reads it after
	resp := &wire.Attach{Name: a.Name, Handle: l.handle, Role: !a.Role}
	if err != nil {
		// Refused: an attach without a terminus, then a detach with the
		// error (part 2.6.3), as brokers do and go-amqp expects.
		l.s.c.writeFrame(l.s.ch, resp, nil)
		l.state = linkAttached // so that detach sends
		l.detach(asWireError(err, wire.ErrInternalError))
		return
	}
	l.acc = acc
	resp.SndSettleMode = a.SndSettleMode
	resp.RcvSettleMode = a.RcvSettleMode
	resp.Source, resp.Target = a.Source, a.Target
	if acc.Source != nil {
		resp.Source = acc.Source
	}
	if acc.Target != nil {
		resp.Target = acc.Target
	}
	if resp.Source == nil {
		resp.Source = &wire.Source{}
	}
	if resp.Target == nil {
		resp.Target = &wire.Target{}
	}
	resp.Properties = acc.Properties
	l.maxMessage = l.s.c.srv.maxMessageSize()
	if acc.MaxMessageSize != 0 {
		l.maxMessage = min(acc.MaxMessageSize, l.maxMessage)
	}
	maxMsg := l.maxMessage
	resp.MaxMessageSize = &maxMsg
	if l.peerSends {
		if a.InitialDeliveryCount != nil {
			l.deliveryCount = *a.InitialDeliveryCount
		}
		l.window = or(acc.Credit, DefaultCredit)
	} else {
		zero := uint32(0)
		resp.InitialDeliveryCount = &zero
	}
	l.s.c.writeFrame(l.s.ch, resp, nil)
	l.state = linkAttached
	if o := l.s.c.srv.Observer; o != nil {
		o.AMQPLink(l.peerSends, true)
		l.counted = true
	}
	if l.peerSends {
		l.topUpCredit()
	} else {
		l.pump() // credit may have come with the attach
	}
}

// detach detaches the link from our side (loop).
func (l *Link) detach(e *wire.Error) {
	if l.state != linkAttached {
		return
	}
	l.s.c.writeFrame(l.s.ch, &wire.Detach{Handle: l.handle, Closed: true, Error: e}, nil)
	var err error = ErrLinkDetached
	if e != nil {
		err = e
	}
	l.end(err)
	l.state = linkDetachSent // stays in the session until the peer's detach
}

// peerDetach handles the peer's detach (loop).
func (l *Link) peerDetach(d *wire.Detach) {
	switch l.state {
	case linkDetachSent:
		// The answer to ours (or both detached at once).
	case linkAttaching:
		// The application is still deciding: answer the attach without a
		// terminus, then the detach, and let the decision be dropped.
		l.s.c.writeFrame(l.s.ch, &wire.Attach{Name: l.PeerAttach.Name, Handle: l.handle, Role: !l.PeerAttach.Role}, nil)
		l.s.c.writeFrame(l.s.ch, &wire.Detach{Handle: l.handle, Closed: d.Closed}, nil)
		l.end(peerError(d.Error, ErrLinkDetached))
	default:
		l.s.c.writeFrame(l.s.ch, &wire.Detach{Handle: l.handle, Closed: d.Closed}, nil)
		l.end(peerError(d.Error, ErrLinkDetached))
	}
	l.state = linkEnded
	l.s.dropLink(l)
	l.s.c.links--
}

// peerError is the peer's error, or def when it sent none.
func peerError(e *wire.Error, def error) error {
	if e != nil {
		return e
	}
	return def
}

// end ends the link for the application: its context is cancelled (the
// callbacks queued still run, with it), waiting Sends fail,
// and its unsettled deliveries are forgotten (loop).
func (l *Link) end(err error) {
	if l.state == linkEnded || l.state == linkDetachSent {
		return
	}
	l.state = linkEnded
	if l.counted {
		l.s.c.srv.Observer.AMQPLink(l.peerSends, false)
		l.counted = false
	}
	// The context ends: what watches it runs, here on the loop (the
	// context package's cancellations and AfterFunc starts, all quick).
	l.mu.Lock()
	l.err = err
	after := l.afterEnd
	l.afterEnd = nil
	replies := l.replies
	l.replies = nil
	l.ended = true
	if l.done != nil {
		close(l.done)
	}
	l.mu.Unlock()
	if replies != nil {
		replies.drop(l)
	}
	for e := after; e != nil; e = e.next {
		e.f()
	}
	if l.acc != nil && l.acc.OnEnd != nil {
		l.acc.OnEnd()
	}
	for _, m := range l.pending {
		m.result <- sendResult{err: err}
	}
	l.pending = nil
	for id, od := range l.s.outgoing {
		if od.link == l {
			l.s.dropOutgoing(id)
		}
	}
	for id, in := range l.s.incoming {
		if in.link == l {
			l.s.dropIncoming(id)
		}
	}
	if l.cur != nil {
		l.s.c.buffered -= int64(len(l.cur.Payload))
		l.cur = nil
	}
}

// endErr is the error a Send gets on a link that is not in use.
func (l *Link) endErr() error {
	if err := l.Err(); err != nil {
		return err
	}
	return errors.New("amqp: link not attached")
}
