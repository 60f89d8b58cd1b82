package amqp

import (
	"context"
	"fmt"

	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
)

// session is one session the peer began (part 2.5). All of it is owned by
// the connection's loop.
type session struct {
	c       *Conn
	ch      uint16
	endSent bool // we sent end; we wait for the peer's

	handleMax uint32
	links     map[uint32]*Link // by handle; we use the peer's handle as ours

	// Incoming transfers (part 2.5.6): the peer may send incomingWindow
	// more transfer frames; we reopen the window when half is used.
	nextIncomingID     uint32
	incomingWindow     uint32 // what is left of the window we gave
	fullIncomingWindow uint32

	// Outgoing transfers: we send only while the peer's window is open.
	nextOutgoingID       uint32
	outgoingWindow       uint32
	remoteIncomingWindow uint32
	nextDeliveryID       uint32

	// Unsettled deliveries, by delivery-id: the peer's (we receive) and
	// ours (we send). Dispositions name them by id, for the whole session.
	incoming map[uint32]*inDelivery
	outgoing map[uint32]*outDelivery
}

// inDelivery is an unsettled delivery the peer sent us.
type inDelivery struct {
	link      *Link
	handled   bool               // OnDelivery returned
	stateSent wire.DeliveryState // our outcome, sent unsettled (receiver settle mode second)
}

// outDelivery is an unsettled delivery we sent.
type outDelivery struct {
	link     *Link
	tag      []byte
	reported bool // the application was told its outcome
}

func newSession(c *Conn, ch uint16, b *wire.Begin) *session {
	w := c.srv.incomingWindow()
	return &session{
		c:                    c,
		ch:                   ch,
		handleMax:            min(c.srv.maxLinks()-1, b.HandleMax),
		links:                make(map[uint32]*Link),
		nextIncomingID:       b.NextOutgoingID,
		incomingWindow:       w,
		fullIncomingWindow:   w,
		outgoingWindow:       w,
		remoteIncomingWindow: b.IncomingWindow,
		incoming:             make(map[uint32]*inDelivery),
		outgoing:             make(map[uint32]*outDelivery),
	}
}

// handle dispatches a frame of this session.
func (s *session) handle(body any, payload []byte) {
	if s.endSent {
		// After our end only the peer's end matters.
		if _, ok := body.(*wire.End); ok {
			delete(s.c.sessions, s.ch)
		}
		return
	}
	switch b := body.(type) {
	case *wire.Attach:
		s.attach(b)
	case *wire.Flow:
		s.flow(b)
	case *wire.Transfer:
		s.transfer(b, payload)
	case *wire.Disposition:
		s.disposition(b)
	case *wire.Detach:
		l := s.links[b.Handle]
		if l == nil {
			s.end(&wire.Error{Condition: wire.ErrSessionUnattachedHandle, Description: fmt.Sprintf("detach of handle %d, not attached", b.Handle)})
			return
		}
		l.peerDetach(b)
	case *wire.End:
		s.endAll(peerError(b.Error, ErrSessionEnded))
		s.c.writeFrame(s.ch, &wire.End{}, nil)
		delete(s.c.sessions, s.ch)
	default:
		s.c.closeWith(&wire.Error{Condition: wire.ErrConnectionFraming, Description: fmt.Sprintf("unexpected %T on a session", body)})
	}
}

// ended reports whether the session is over (loop): we sent our end, or
// the connection no longer holds it.
func (s *session) ended() bool {
	return s.endSent || s.c.sessions[s.ch] != s
}

// end ends the session with an error (part 2.5.5): every link ends, and
// we ignore the peer's frames until its end arrives.
func (s *session) end(e *wire.Error) {
	if s.endSent {
		return
	}
	s.c.writeFrame(s.ch, &wire.End{Error: e}, nil)
	s.endSent = true
	s.endAll(e)
}

// endAll ends every link of the session locally (no detach is sent: the
// session or the connection is going).
func (s *session) endAll(err error) {
	for h, l := range s.links {
		l.end(err)
		delete(s.links, h)
		s.c.links--
	}
}

// attach handles the peer's attach: a new link, decided on by the
// application in a goroutine of its own.
func (s *session) attach(a *wire.Attach) {
	switch {
	case a.Handle > s.handleMax:
		s.c.closeWith(&wire.Error{Condition: wire.ErrConnectionFraming, Description: fmt.Sprintf("handle %d above handle-max %d", a.Handle, s.handleMax)})
		return
	case s.links[a.Handle] != nil:
		s.end(&wire.Error{Condition: wire.ErrSessionHandleInUse, Description: fmt.Sprintf("handle %d in use", a.Handle)})
		return
	}
	l := newLink(s, a)
	s.links[a.Handle] = l
	c := s.c
	c.links++
	// Attach calls of links the peer detached meanwhile count too, until
	// they return: attaching and detaching again cannot pile them up.
	if c.links > c.srv.maxConnLinks() || c.attaching >= c.srv.maxConnLinks() {
		l.attached(nil, &wire.Error{Condition: wire.ErrResourceLimitExceeded, Description: "too many links on this connection"})
		return
	}
	c.attaching++
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		acc, err := callAttach(l.ctx, c.handler, l)
		c.call(func() {
			c.attaching--
			l.attached(acc, err)
		})
	}()
}

// callAttach calls the application, turning a panic into a refusal so
// that one bad link cannot take the process down.
func callAttach(ctx context.Context, h Handler, l *Link) (acc *Accept, err error) {
	defer func() {
		if r := recover(); r != nil {
			acc, err = nil, &wire.Error{Condition: wire.ErrInternalError, Description: "attach failed"}
		}
	}()
	acc, err = h.Attach(ctx, l)
	if err == nil && acc == nil {
		err = &wire.Error{Condition: wire.ErrInternalError, Description: "attach not answered"}
	}
	return acc, err
}

// flow handles a flow frame: the session part always, the link part when
// it names a handle.
func (s *session) flow(f *wire.Flow) {
	// part 2.5.6: remote-incoming-window = next-incoming-id(flow) +
	// incoming-window(flow) - next-outgoing-id(ours); a peer that has not
	// seen our begin yet counts from our initial id, 0.
	var next uint32
	if f.NextIncomingID != nil {
		next = *f.NextIncomingID
	}
	s.remoteIncomingWindow = next + f.IncomingWindow - s.nextOutgoingID
	if f.Handle == nil {
		if f.Echo {
			s.c.writeFrame(s.ch, s.flowFrame(nil), nil)
		}
		s.pumpAll()
		return
	}
	l := s.links[*f.Handle]
	if l == nil {
		s.end(&wire.Error{Condition: wire.ErrSessionUnattachedHandle, Description: fmt.Sprintf("flow for handle %d, not attached", *f.Handle)})
		return
	}
	l.peerFlow(f)
	s.pumpAll()
}

// pumpAll sends what the links of the session have waiting, now that the
// session window may have opened.
func (s *session) pumpAll() {
	for _, l := range s.links {
		if len(l.pending) > 0 {
			l.pump()
		}
	}
}

// flowFrame is a flow carrying the session's state, and the link's when l
// is not nil.
func (s *session) flowFrame(l *Link) *wire.Flow {
	next := s.nextIncomingID
	f := &wire.Flow{
		NextIncomingID: &next,
		IncomingWindow: s.incomingWindow,
		NextOutgoingID: s.nextOutgoingID,
		OutgoingWindow: s.outgoingWindow,
	}
	if l != nil {
		h := l.handle
		f.Handle = &h
		var count, credit uint32
		if l.peerSends {
			count, credit = l.deliveryCount, l.linkCredit
		} else {
			count, credit = l.sendCount, l.peerCredit
			avail := l.available
			f.Available = &avail
		}
		f.DeliveryCount = &count
		f.LinkCredit = &credit
	}
	return f
}

// transfer handles one transfer frame, after the session window check.
func (s *session) transfer(t *wire.Transfer, payload []byte) {
	if s.incomingWindow == 0 {
		s.end(&wire.Error{Condition: wire.ErrSessionWindowViolation, Description: "transfer beyond the incoming window"})
		return
	}
	s.incomingWindow--
	s.nextIncomingID++
	l := s.links[t.Handle]
	if l == nil {
		s.end(&wire.Error{Condition: wire.ErrSessionUnattachedHandle, Description: fmt.Sprintf("transfer on handle %d, not attached", t.Handle)})
		return
	}
	l.transfer(t, payload)
	if s.incomingWindow <= s.fullIncomingWindow/2 && !s.endSent {
		s.incomingWindow = s.fullIncomingWindow
		s.c.writeFrame(s.ch, s.flowFrame(nil), nil)
	}
}

// disposition applies the peer's disposition to each delivery of its
// range. A range is walked over the unsettled table when that is shorter,
// so that first=0, last=2^32-1 costs no more than the table.
func (s *session) disposition(d *wire.Disposition) {
	first, last := d.First, d.First
	if d.Last != nil {
		last = *d.Last
	}
	span := uint64(last-first) + 1 // serial arithmetic: last may wrap
	ids := func(n int, each func(id uint32), table func(func(id uint32))) {
		if span <= uint64(n) {
			for i := uint64(0); i < span; i++ {
				each(first + uint32(i))
			}
			return
		}
		table(func(id uint32) {
			if uint64(id-first) < span {
				each(id)
			}
		})
	}

	if d.Role { // from the receiver: about deliveries we sent
		var echo bool
		touched := map[*Link]bool{}
		ids(len(s.outgoing), func(id uint32) {
			od := s.outgoing[id]
			if od == nil {
				return
			}
			touched[od.link] = true
			if !d.Settled && !isTerminal(d.State) {
				return // e.g. received: progress, not an outcome
			}
			switch {
			case od.reported:
				echo = echo || !d.Settled
			case d.Settled:
				od.reported = true
				od.link.reportDisposition(Disposition{ID: id, Tag: od.tag, State: d.State, Settled: true})
			default:
				// Receiver settle mode second: the receiver waits for our
				// settlement, which follows the application's action.
				od.reported = true
				od.link.settleAfterReport(Disposition{ID: id, Tag: od.tag, State: d.State})
			}
			delete(s.outgoing, id)
			od.link.unsettledOut--
		}, func(each func(uint32)) {
			for id := range s.outgoing {
				each(id)
			}
		})
		if echo {
			s.c.writeFrame(s.ch, &wire.Disposition{Role: false, First: d.First, Last: d.Last, Settled: true, State: confirmed(d.State)}, nil)
		}
		for l := range touched {
			l.pump() // room for more unsettled deliveries
		}
		return
	}

	// From the sender: it settles deliveries we gave an outcome in mode
	// second. We confirm with a settled disposition, which go-amqp's
	// sender waits for.
	if !d.Settled {
		return
	}
	var confirm bool
	var state wire.DeliveryState
	touched := map[*Link]bool{}
	ids(len(s.incoming), func(id uint32) {
		in := s.incoming[id]
		if in == nil {
			return
		}
		if in.stateSent != nil {
			confirm = true
			state = in.stateSent
		}
		delete(s.incoming, id)
		in.link.unsettledIn--
		if in.handled {
			in.link.held--
		}
		touched[in.link] = true
	}, func(each func(uint32)) {
		for id := range s.incoming {
			each(id)
		}
	})
	if confirm {
		s.c.writeFrame(s.ch, &wire.Disposition{Role: true, First: d.First, Last: d.Last, Settled: true, State: state}, nil)
	}
	for l := range touched {
		l.topUpCredit()
	}
}

// isTerminal reports whether a delivery state is an outcome (part 3.4):
// received is only progress.
func isTerminal(st wire.DeliveryState) bool {
	switch st.(type) {
	case nil, *wire.Received:
		return false
	}
	return true
}

// confirmed is the state we settle with to confirm a receiver's outcome.
// A rejection's error is the receiver's reason, not ours: go-amqp would
// report it as a failure of the settlement, so it is not repeated.
func confirmed(state wire.DeliveryState) wire.DeliveryState {
	if _, ok := state.(*wire.Rejected); ok {
		return &wire.Rejected{}
	}
	return state
}
