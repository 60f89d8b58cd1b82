package amqp

import (
	"context"
	"fmt"
	"slices"

	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
)

// session is one session the peer began (part 2.5). All of it is owned by
// the connection's loop.
type session struct {
	c       *Conn
	ch      uint16
	endSent bool // we sent end; we wait for the peer's

	handleMax uint32
	// links are the session's links, in no order; a link's handle is
	// the peer's, which we use as ours. A slice, searched: the SDKs open
	// a session per link, and a map of one link kept about 180 bytes
	// per idle link (docs/benchmarks.md, "Many customers on one node");
	// a session holds at most handle-max+1 links (Server.MaxLinksPerSession).
	links []*Link

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
	// Held by value: a delivery costs no allocation of its own. A table
	// exists only while it holds a delivery (putIncoming, dropIncoming
	// and their outgoing twins): a Go map keeps its storage when emptied,
	// and an idle session, which a fleet's connections hold one per link,
	// would keep both for good (docs/benchmarks.md, "Many customers on
	// one node").
	incoming map[uint32]inDelivery
	outgoing map[uint32]outDelivery
}

// putIncoming records an unsettled delivery of the peer's (loop).
func (s *session) putIncoming(id uint32, in inDelivery) { putLazy(&s.incoming, id, in) }

// dropIncoming forgets a delivery of the peer's (loop).
func (s *session) dropIncoming(id uint32) { dropLazy(&s.incoming, id) }

// putOutgoing records an unsettled delivery of ours (loop).
func (s *session) putOutgoing(id uint32, od outDelivery) { putLazy(&s.outgoing, id, od) }

// dropOutgoing forgets a delivery of ours (loop).
func (s *session) dropOutgoing(id uint32) { dropLazy(&s.outgoing, id) }

// putLazy sets m[k], making the map on first use; dropLazy deletes k and
// the map with its last entry. A session's delivery tables exist only
// while they hold a delivery, so that an idle session keeps none.
func putLazy[K comparable, V any](m *map[K]V, k K, v V) {
	if *m == nil {
		*m = make(map[K]V)
	}
	(*m)[k] = v
}

func dropLazy[K comparable, V any](m *map[K]V, k K) {
	delete(*m, k)
	if len(*m) == 0 {
		*m = nil
	}
}

// inDelivery is an unsettled delivery the peer sent us.
type inDelivery struct {
	link      *Link
	handled   bool               // OnDelivery returned
	stateSent wire.DeliveryState // our outcome, sent unsettled (receiver settle mode second)
}

// outDelivery is an unsettled delivery we sent.
type outDelivery struct {
	link *Link
	tag  []byte
}

func newSession(c *Conn, ch uint16, b *wire.Begin) *session {
	w := c.srv.incomingWindow()
	return &session{
		c:                    c,
		ch:                   ch,
		handleMax:            min(c.srv.maxLinks()-1, b.HandleMax),
		nextIncomingID:       b.NextOutgoingID,
		incomingWindow:       w,
		fullIncomingWindow:   w,
		outgoingWindow:       w,
		remoteIncomingWindow: b.IncomingWindow,
	}
}

// link is the session's link with handle h, nil if none (loop).
func (s *session) link(h uint32) *Link {
	for _, l := range s.links {
		if l.handle == h {
			return l
		}
	}
	return nil
}

// dropLink takes l out of the session (loop).
func (s *session) dropLink(l *Link) {
	if i := slices.Index(s.links, l); i >= 0 {
		s.links = slices.Delete(s.links, i, i+1)
	}
	if len(s.links) == 0 {
		s.links = nil
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
		l := s.link(b.Handle)
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
	links := s.links
	s.links = nil
	for _, l := range links {
		l.end(err)
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
	case s.link(a.Handle) != nil:
		s.end(&wire.Error{Condition: wire.ErrSessionHandleInUse, Description: fmt.Sprintf("handle %d in use", a.Handle)})
		return
	}
	l := newLink(s, a)
	s.links = append(s.links, l)
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
		acc, err := callAttach(l.Context(), c.handler, l)
		if !c.call(func() {
			c.attaching--
			l.attached(acc, err)
		}) && err == nil && acc.OnEnd != nil {
			acc.OnEnd() // the connection ended, and the link with it
		}
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
	l := s.link(*f.Handle)
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
// is not nil. It is the connection's, valid until the next flowFrame.
func (s *session) flowFrame(l *Link) *wire.Flow {
	c := s.c
	sc := c.scratch()
	v := &sc.flowVals
	v[0] = s.nextIncomingID
	f := &sc.flow
	*f = wire.Flow{
		NextIncomingID: &v[0],
		IncomingWindow: s.incomingWindow,
		NextOutgoingID: s.nextOutgoingID,
		OutgoingWindow: s.outgoingWindow,
	}
	if l != nil {
		v[1] = l.handle
		f.Handle = &v[1]
		if l.peerSends {
			v[2], v[3] = l.deliveryCount, l.linkCredit
		} else {
			v[2], v[3], v[4] = l.sendCount, l.peerCredit, l.available
			f.Available = &v[4]
		}
		f.DeliveryCount = &v[2]
		f.LinkCredit = &v[3]
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
	l := s.link(t.Handle)
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
	defer s.c.doneTouching()

	if d.Role { // from the receiver: about deliveries we sent
		if !d.Settled && !isTerminal(d.State) {
			// e.g. received: progress, not an outcome; the links may
			// still send more.
			for _, id := range rangeIDs(s, first, span, s.outgoing) {
				s.touch(s.outgoing[id].link)
			}
		} else {
			for _, id := range rangeIDs(s, first, span, s.outgoing) {
				od, ok := s.outgoing[id]
				if !ok {
					continue // its link ended meanwhile (a callback queue overflowed)
				}
				s.touch(od.link)
				s.dropOutgoing(id)
				od.link.unsettledOut--
				if d.Settled {
					od.link.reportDisposition(Disposition{ID: id, Tag: od.tag, State: d.State, Settled: true})
				} else {
					// Receiver settle mode second: the receiver waits for
					// our settlement, which follows the application's
					// action.
					od.link.settleAfterReport(Disposition{ID: id, Tag: od.tag, State: d.State})
				}
			}
		}
		for _, l := range s.c.scratch().touched {
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
	for _, id := range rangeIDs(s, first, span, s.incoming) {
		in, ok := s.incoming[id]
		if !ok {
			continue
		}
		if in.stateSent != nil {
			confirm = true
			state = in.stateSent
		}
		s.dropIncoming(id)
		in.link.unsettledIn--
		if in.handled {
			in.link.held--
		}
		s.touch(in.link)
	}
	if confirm {
		s.c.writeDisposition(s.ch, true, d.First, d.Last, true, state)
	}
	for _, l := range s.c.scratch().touched {
		l.topUpCredit()
	}
}

// rangeIDs returns the ids of the span deliveries from first that are in
// table, in the connection's ids: the range walked when it is no longer than the table,
// the table otherwise.
func rangeIDs[V any](s *session, first uint32, span uint64, table map[uint32]V) []uint32 {
	ids := s.c.scratch().ids[:0]
	if span <= uint64(len(table)) {
		for i := uint64(0); i < span; i++ {
			if _, ok := table[first+uint32(i)]; ok {
				ids = append(ids, first+uint32(i))
			}
		}
	} else {
		for id := range table {
			if uint64(id-first) < span {
				ids = append(ids, id)
			}
		}
	}
	s.c.scratch().ids = ids
	return ids
}

// touch adds l to the links the disposition touched, once. A
// disposition names few links, mostly one.
func (s *session) touch(l *Link) {
	sc := s.c.scratch()
	for _, t := range sc.touched {
		if t == l {
			return
		}
	}
	sc.touched = append(sc.touched, l)
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
