package amqp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
)

// Conn is one AMQP connection, as the application sees it: who the peer
// is, and a way to close it (when the trust it was admitted under is
// revoked, say). Its exported fields are set before Server.Connect is
// called and never change after (but PeerOpen, dropped once Connect
// returned).
type Conn struct {
	RemoteAddr  net.Addr
	TLS         *tls.ConnectionState // nil unless the transport is TLS
	Mechanism   wire.Symbol          // the SASL mechanism, empty without SASL
	Identity    string               // what Server.Authenticate returned
	Hostname    string               // the SASL hostname, or else the open's
	ContainerID string               // the peer's container-id
	// PeerOpen is the peer's open, read only: its hostname and
	// properties. It is the application's to read in Server.Connect;
	// then the engine lets go of it (nil), so that an open connection
	// does not keep the decoded open, as a link does not keep its attach.
	PeerOpen *wire.Open

	srv     *Server
	nc      net.Conn
	w       *writer
	handler Handler

	// The loop's queue: what the reader read and what other goroutines
	// ask of it (call), taken by the goroutine that runs the loop.
	mu      sync.Mutex
	room    sync.Cond // signalled when the loop takes the queue, or stops
	events  []event
	spare   []event       // an empty array for the next queue
	frames  int           // frames in events
	running bool          // a goroutine runs the loop
	stopped bool          // the loop has stopped: nothing more is queued
	done    chan struct{} // closed when the loop has stopped
	wg      sync.WaitGroup

	// Everything below is owned by the loop.
	out          wire.Buffer // frames encoded and not yet handed to the writer
	outFrameSize uint32      // the largest frame we may send
	channelMax   uint16
	sessions     map[uint16]*session
	closeSent    bool
	closeTimer   *time.Timer // the peer's time to answer our close
	heartbeat    *time.Timer // our next empty frame, nil when the peer wants none
	heartbeatGap time.Duration
	stopCtx      func() bool // stops serve's context.AfterFunc
	finished     bool        // the loop stops after this event
	err          error
	buffered     int64 // bytes of incoming messages held (reassembly and handlers)
	links        int   // links in all sessions
	attaching    int   // Handler.Attach calls running

	// sc is what the loop reuses, while it runs: taken from scratchPool
	// when it needs it, given back when the loop stops.
	sc *loopScratch
}

// loopScratch is what a connection's loop reuses from frame to frame. A
// loop holds one only while it runs: an idle connection, whose loop
// has stopped, holds none (they were 300 of its 740 bytes:
// docs/benchmarks.md, "Many customers on one node").
type loopScratch struct {
	// The performatives of a message's round trip, reused frame after
	// frame (encoding keeps nothing of them), and the values their
	// pointer fields point to.
	transfer                   wire.Transfer
	transferID, transferFormat uint32
	flow                       wire.Flow
	flowVals                   [5]uint32 // next-incoming-id, handle, delivery-count, link-credit, available
	disposition                wire.Disposition

	// Reused by the sessions' dispositions (one at a time): the ids of
	// a range found in a table, and the links they touched.
	ids     []uint32
	touched []*Link
}

var scratchPool = sync.Pool{New: func() any { return new(loopScratch) }}

// scratch is the loop's scratch, taken from the pool on first use in a
// run of the loop (loop).
func (c *Conn) scratch() *loopScratch {
	if c.sc == nil {
		c.sc = scratchPool.Get().(*loopScratch)
	}
	return c.sc
}

// dropScratch gives the scratch back as the loop stops, keeping nothing
// of the connection's in it (loop).
func (c *Conn) dropScratch() {
	sc := c.sc
	if sc == nil {
		return
	}
	c.sc = nil
	sc.transfer = wire.Transfer{}
	sc.flow = wire.Flow{}
	sc.disposition = wire.Disposition{}
	scratchPool.Put(sc)
}

// doneTouching empties touched after a disposition, so that an ended
// link is not kept by the last one, and lets a long array go.
func (c *Conn) doneTouching() {
	sc := c.scratch()
	clear(sc.touched)
	sc.touched = sc.touched[:0]
	if cap(sc.touched) > 64 {
		sc.touched = nil
	}
	if cap(sc.ids) > 1024 {
		sc.ids = nil
	}
}

// settledTrue is what a settled transfer's Settled points to.
var settledTrue = true

func (c *Conn) transferSettled(settled bool) *bool {
	if settled {
		return &settledTrue
	}
	return nil
}

// writeDisposition writes a disposition of the deliveries first to last
// (last nil: first only).
func (c *Conn) writeDisposition(ch uint16, role bool, first uint32, last *uint32, settled bool, state wire.DeliveryState) {
	sc := c.scratch()
	sc.disposition = wire.Disposition{Role: role, First: first, Last: last, Settled: settled, State: state}
	c.writeFrame(ch, &sc.disposition, nil)
}

// maxConnBuffer is Server.MaxBufferedBytes with its default.
func (s *Server) maxConnBuffer() int64 {
	if s.MaxBufferedBytes > 0 {
		return s.MaxBufferedBytes
	}
	return max(64<<20, 4*int64(s.maxMessageSize()))
}

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Close closes the connection with the error e (nil for a clean close):
// the peer gets it in our close frame. It does not wait.
func (c *Conn) Close(e *wire.Error) {
	c.call(func() { c.closeWith(e) })
}

// call runs f on the connection's loop, which owns all state, and does
// not wait for it. It returns false, without running f, when the loop
// has stopped; an f it took runs, if the connection ends meanwhile with
// the connection's state ended (links ended, nothing more written).
func (c *Conn) call(f func()) bool {
	return c.post(event{f: f}, false)
}

// event is one thing for the loop to do: a frame the peer sent (f nil)
// or a function to run.
type event struct {
	fr wire.Frame
	f  func()
}

// maxQueuedFrames is how many frames the reader reads ahead of the loop;
// then it waits, and so does the peer (TCP's window).
const maxQueuedFrames = 8

// post queues ev for the loop and starts a goroutine to run it unless
// one runs: the loop runs only while there is something to do, so that
// an idle connection holds one goroutine, the reader's, and the loop's
// stack only while it works (docs/benchmarks.md, "Many customers on one
// node"). A frame waits while maxQueuedFrames are queued. It returns
// false when the loop has stopped.
func (c *Conn) post(ev event, frame bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for frame && c.frames >= maxQueuedFrames && !c.stopped {
		c.room.Wait()
	}
	if c.stopped {
		return false
	}
	if c.events == nil {
		c.events, c.spare = c.spare, nil
	}
	c.events = append(c.events, ev)
	if frame {
		c.frames++
	}
	if !c.running {
		c.running = true
		c.wg.Add(1)
		go c.run()
	}
	return true
}

// run is the loop: it handles what is queued, a batch at a time, and
// returns when nothing is (or the connection has finished: it stops the
// loop). Frames and calls queued together are handled before what they
// made us write goes to the writer, so that it shares a write (up to 64
// of them).
func (c *Conn) run() {
	defer c.wg.Done()
	var batch []event
	for {
		c.mu.Lock()
		if cap(batch) <= maxQueuedFrames && c.spare == nil {
			c.spare = batch[:0] // small: an idle connection keeps it
		}
		if c.finished {
			c.mu.Unlock()
			c.stop() // running stays set: no other goroutine runs the loop again
			c.dropScratch()
			return
		}
		if len(c.events) == 0 {
			// The scratch goes back before the loop is given up: once
			// running is false another goroutine may run it.
			c.dropScratch()
			c.running = false
			c.mu.Unlock()
			return
		}
		batch, c.events, c.spare = c.events, c.spare, nil
		c.frames = 0
		c.room.Broadcast()
		c.mu.Unlock()
		for i, ev := range batch {
			batch[i] = event{}
			switch {
			case ev.f != nil:
				ev.f()
			case !c.finished:
				c.handleFrame(ev.fr)
			}
			if i%64 == 63 {
				c.flush()
			}
		}
		c.flush()
	}
}

// stop tears the connection down once the loop has finished: every link
// and session ends (their contexts are cancelled, waiting Sends fail),
// what was queued for the loop runs (on the ended state), the writer
// writes what is left (our close), and the transport closes, so that
// the reader returns. It runs once, on the loop, which stays marked
// running.
func (c *Conn) stop() {
	for _, s := range c.sessions {
		s.endAll(c.errOrClosed())
	}
	c.mu.Lock()
	c.stopped = true
	rest := c.events
	c.events, c.spare, c.frames = nil, nil, 0
	c.room.Broadcast()
	c.mu.Unlock()
	for _, ev := range rest {
		if ev.f != nil {
			ev.f()
		}
	}
	if c.heartbeat != nil {
		c.heartbeat.Stop()
	}
	if c.closeTimer != nil {
		c.closeTimer.Stop()
	}
	if c.stopCtx != nil {
		c.stopCtx()
	}
	close(c.done)
	c.w.close()
	<-c.w.done
	_ = c.nc.Close()
}

// serve answers the peer's open and runs the connection until it ends.
// Its goroutine reads the frames; the loop that handles them and owns
// the connection's state runs on goroutines of its own, started when
// there is something to handle (post).
func (c *Conn) serve(ctx context.Context, br *bufio.Reader, open *wire.Open) error {
	s := c.srv
	c.done = make(chan struct{})
	c.room.L = &c.mu
	c.sessions = make(map[uint16]*session)
	c.w = newWriter(c.nc, s.idleTimeout(), func(err error) {
		c.call(func() { c.finish(err) })
	})
	c.PeerOpen = open
	c.ContainerID = open.ContainerID
	if c.Hostname == "" {
		c.Hostname = open.Hostname
	}
	// The open is the loop's first event: nothing the peer sends next is
	// handled before it.
	c.call(func() { c.opened(ctx, open) })

	// The reader turns bytes into frames for the loop. Its deadline is
	// our idle timeout: a peer that sends nothing for that long (not
	// even an empty frame) is cut.
	for {
		_ = c.nc.SetReadDeadline(time.Now().Add(s.idleTimeout()))
		// An idle connection's reader waits for the next frame's first
		// byte here, not under ReadFrame's frame: a collection shrinks a
		// parked goroutine's stack only while it uses less than a quarter
		// of it, and every frame the wait is under counts (over
		// WebSockets, a deeper transport, it kept 8 KiB instead of 4;
		// docs/benchmarks.md, "Many customers on one node").
		if br.Buffered() == 0 {
			if _, err := br.Peek(1); err != nil {
				c.call(func() { c.readFailed(err) })
				break
			}
		}
		fr, err := wire.ReadFrame(br, s.maxFrameSize())
		if err != nil {
			c.call(func() { c.readFailed(err) })
			break
		}
		if !c.post(event{fr: fr}, true) {
			break
		}
	}
	<-c.done
	c.wg.Wait()
	if c.err != nil {
		s.logger().Debug("amqp connection ended", "remote", c.RemoteAddr, "err", c.err)
	}
	return c.err
}

// opened answers the peer's open (loop).
func (c *Conn) opened(ctx context.Context, open *wire.Open) {
	s := c.srv
	// Negotiate (part 2.7.1). We send frames no larger than the peer
	// takes, nor than we take ourselves (a bound on our own buffers).
	c.outFrameSize = s.maxFrameSize()
	if open.MaxFrameSize != 0 {
		c.outFrameSize = min(c.outFrameSize, open.MaxFrameSize)
	}
	c.channelMax = min(open.ChannelMax, s.maxSessions()-1)
	ours := &wire.Open{
		ContainerID:  s.containerID(),
		MaxFrameSize: s.maxFrameSize(),
		ChannelMax:   c.channelMax,
		IdleTimeOut:  durationMillis(s.idleTimeout() / 2),
	}
	c.writeFrame(0, ours, nil)
	if open.MaxFrameSize != 0 && open.MaxFrameSize < 512 {
		c.closeWith(&wire.Error{Condition: wire.ErrInvalidField, Description: "max-frame-size below 512"})
	}
	if !c.closeSent {
		h, err := c.connect(ctx)
		if err != nil {
			c.closeWith(asWireError(err, wire.ErrUnauthorizedAccess))
		}
		c.handler = h
	}
	c.PeerOpen = nil

	// Heartbeats: the peer wants a frame at least every IdleTimeout it
	// advertised; we send an empty one at half that, as go-amqp does (8
	// bytes; skipping it when other frames went out could leave a gap of
	// almost the whole timeout). A tiny timeout is raised to 100 ms, so
	// that a peer cannot make us spin. The timer holds no goroutine.
	if peerIdle := time.Duration(open.IdleTimeOut) * time.Millisecond; peerIdle > 0 {
		c.heartbeatGap = max(peerIdle/2, 100*time.Millisecond)
		c.heartbeat = time.AfterFunc(c.heartbeatGap, func() { c.call(c.beat) })
	}
	// A server shutting down closes the connection. A context that
	// never ends (a WebSocket's: the server's base context is never
	// cancelled) needs no watch, which each connection would keep.
	if ctx.Done() != nil {
		c.stopCtx = context.AfterFunc(ctx, func() {
			c.call(func() {
				c.closeWith(&wire.Error{Condition: wire.ErrConnectionForced, Description: "the server is shutting down"})
			})
		})
	}
}

// beat sends a heartbeat and sets the timer for the next (loop).
func (c *Conn) beat() {
	c.writeFrame(0, nil, nil)
	if !c.finished {
		c.heartbeat.Reset(c.heartbeatGap)
	}
}

// connect asks the application for the connection's handler. Without
// Server.Connect every link is refused.
func (c *Conn) connect(ctx context.Context) (Handler, error) {
	if c.srv.Connect == nil {
		return HandlerFunc(func(context.Context, *Link) (*Accept, error) {
			return nil, &wire.Error{Condition: wire.ErrNotFound, Description: "no such node"}
		}), nil
	}
	h, err := c.srv.Connect(ctx, c)
	if err == nil && h == nil {
		err = errors.New("amqp: Connect returned no handler")
	}
	return h, err
}

// readFailed ends the connection after the reader's error: a silent peer
// past our idle timeout gets a close saying so, a malformed frame a close
// with the decoder's complaint.
func (c *Conn) readFailed(err error) {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		if !c.closeSent {
			c.closeWith(&wire.Error{Condition: wire.ErrResourceLimitExceeded, Description: "idle timeout: the peer sent nothing"})
		}
		c.finish(err)
	case c.closeSent:
		c.finish(nil) // the peer hung up after our close: expected
	default:
		var we *wire.Error
		if !errors.As(err, &we) {
			we = &wire.Error{Condition: wire.ErrorCondition(err), Description: err.Error()}
		}
		if !isEOF(err) {
			c.closeWith(we)
		}
		c.finish(err)
	}
}

func isEOF(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// finish marks the loop to stop after this iteration, keeping the first
// error.
func (c *Conn) finish(err error) {
	if c.err == nil {
		c.err = err
	}
	c.finished = true
}

// errOrClosed is the error links see when the connection takes them down.
func (c *Conn) errOrClosed() error {
	if c.err != nil {
		return c.err
	}
	return ErrConnClosed
}

// ErrConnClosed is the error of a link whose connection ended cleanly.
var ErrConnClosed = errors.New("amqp: connection closed")

// closeWith sends our close (once) and gives the peer a moment to answer
// with its own before we hang up.
func (c *Conn) closeWith(e *wire.Error) {
	if c.closeSent {
		return
	}
	c.writeFrame(0, &wire.Close{Error: e}, nil)
	c.closeSent = true
	if e != nil && c.err == nil {
		c.err = e
	}
	c.closeTimer = time.AfterFunc(2*time.Second, func() { c.call(func() { c.finish(nil) }) })
	for _, s := range c.sessions {
		s.endAll(c.errOrClosed())
	}
}

// handleFrame dispatches one frame from the peer.
func (c *Conn) handleFrame(fr wire.Frame) {
	if fr.Body == nil {
		return // an empty frame: the peer's heartbeat
	}
	if fr.Type != wire.FrameAMQP {
		c.closeWith(&wire.Error{Condition: wire.ErrConnectionFraming, Description: "SASL frame after SASL"})
		c.finish(nil)
		return
	}
	if c.closeSent {
		// After our close only the peer's close matters (part 2.4.3).
		if _, ok := fr.Body.(*wire.Close); ok {
			c.finish(nil)
		}
		return
	}
	switch b := fr.Body.(type) {
	case *wire.Open:
		c.closeWith(&wire.Error{Condition: wire.ErrIllegalState, Description: "second open"})
	case *wire.Close:
		if b.Error != nil && c.err == nil {
			c.err = b.Error
		}
		c.writeFrame(0, &wire.Close{}, nil)
		c.closeSent = true
		c.finish(nil)
	case *wire.Begin:
		c.begin(fr.Channel, b)
	default:
		s := c.sessions[fr.Channel]
		if s == nil {
			c.closeWith(&wire.Error{Condition: wire.ErrNotFound, Description: fmt.Sprintf("no session on channel %d", fr.Channel)})
			return
		}
		s.handle(fr.Body, fr.Payload)
	}
}

// begin starts a session the peer began (part 2.5.1). We use the peer's
// channel number as ours: both are below channel-max and unique.
func (c *Conn) begin(ch uint16, b *wire.Begin) {
	switch {
	case ch > c.channelMax:
		c.closeWith(&wire.Error{Condition: wire.ErrConnectionFraming, Description: fmt.Sprintf("channel %d above channel-max %d", ch, c.channelMax)})
		return
	case c.sessions[ch] != nil:
		c.closeWith(&wire.Error{Condition: wire.ErrConnectionFraming, Description: fmt.Sprintf("channel %d already in use", ch)})
		return
	case b.RemoteChannel != nil:
		c.closeWith(&wire.Error{Condition: wire.ErrNotAllowed, Description: "begin answers a begin we never sent"})
		return
	}
	s := newSession(c, ch, b)
	c.sessions[ch] = s
	remote := ch
	c.writeFrame(ch, &wire.Begin{
		RemoteChannel:  &remote,
		NextOutgoingID: s.nextOutgoingID,
		IncomingWindow: s.incomingWindow,
		OutgoingWindow: s.outgoingWindow,
		HandleMax:      s.handleMax,
	}, nil)
}

// writeFrame encodes one frame into the output buffer, handed to the
// writer at the end of the loop's iteration (or earlier when it grows
// large). A body nil is an empty frame.
func (c *Conn) writeFrame(ch uint16, body any, payload []byte) {
	if c.finished || c.closeSent {
		return // nothing follows our close (part 2.4.3)
	}
	if err := c.out.AppendFrame(wire.Frame{Type: wire.FrameAMQP, Channel: ch, Body: body, Payload: payload}); err != nil {
		// Only our own values are encoded here; one that does not encode
		// is a bug or an application value wire cannot carry.
		c.finish(fmt.Errorf("amqp: encoding %T: %w", body, err))
		return
	}
	if c.out.Len() >= maxQueuedBytes {
		c.flush()
	}
}

// writeTransfer encodes one transfer frame carrying as much of payload as
// fits the peer's frame size, and returns how much that is; t.More is set
// when that is not all of it. It returns -1 when the connection failed.
// The performative is encoded once when the payload fits, as it mostly
// does, and again with more set (its longest form) to find the room left
// when it does not.
func (c *Conn) writeTransfer(ch uint16, t *wire.Transfer, payload []byte) int {
	if c.finished || c.closeSent {
		return len(payload) // nothing follows our close (part 2.4.3)
	}
	start := c.out.Len()
	t.More = false
	fr := wire.Frame{Type: wire.FrameAMQP, Channel: ch, Body: t, Payload: payload}
	err := c.out.AppendFrame(fr)
	n := len(payload)
	if err == nil && c.out.Len()-start > int(c.outFrameSize) {
		c.out.Truncate(start)
		t.More = true
		fr.Payload = nil
		err = c.out.AppendFrame(fr)
		n = int(c.outFrameSize) - (c.out.Len() - start)
		c.out.Truncate(start)
		if err == nil && n <= 0 {
			c.closeWith(&wire.Error{Condition: wire.ErrFrameSizeTooSmall, Description: "transfer does not fit the peer's frame size"})
			return -1
		}
		if err == nil {
			fr.Payload = payload[:n]
			err = c.out.AppendFrame(fr)
		}
	}
	if err != nil {
		c.finish(fmt.Errorf("amqp: encoding transfer: %w", err))
		return -1
	}
	if c.out.Len() >= maxQueuedBytes {
		c.flush()
	}
	return n
}

// flush hands the output buffer to the writer. A peer that does not read
// for the idle timeout loses the connection.
func (c *Conn) flush() {
	if c.out.Len() == 0 {
		return
	}
	out, err := c.w.hand(c.out.Bytes())
	if cap(out) > 1<<20 {
		out = nil // do not keep a large buffer for an idle connection
	}
	c.out.SetBytes(out)
	if err != nil {
		c.finish(err)
	}
}

// durationMillis converts d to the milliseconds the open carries.
func durationMillis(d time.Duration) uint32 {
	return uint32(min(d.Milliseconds(), 1<<32-1))
}

// asWireError turns an application's error into the AMQP error sent to
// the peer: a *wire.Error as it is, anything else under cond.
func asWireError(err error, cond wire.Symbol) *wire.Error {
	var we *wire.Error
	if errors.As(err, &we) {
		return we
	}
	return &wire.Error{Condition: cond, Description: err.Error()}
}
