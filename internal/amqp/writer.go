package amqp

import (
	"net"
	"sync"
	"time"
)

// maxQueuedBytes bounds the encoded frames a connection holds for the
// network: the loop waits while the writer has this much queued behind
// the write under way (a peer that does not read stalls its own
// connection, not the process's memory).
const maxQueuedBytes = 256 << 10

// writer writes a connection's frames on a goroutine of its own. The loop
// hands over what it encoded after each wake-up and goes on; whatever was
// handed over while a write was under way goes out together in the next
// write, so that under load many frames share one TLS record (up to its
// maximum size) and one system call, and the loop never waits for the
// network. Nothing is held back for more to come: an idle writer writes
// what it is handed at once.
//
// The goroutine runs only while there is something to write: hand starts
// it, and it returns once it has written everything queued. A connection
// that is merely open (a fleet's idle receivers, a heartbeat every 15 s)
// holds no writer goroutine, nor its stack, nor the last buffer it wrote
// (docs/benchmarks.md, "Cross-tenant fan-out").
//
// BenchmarkLoopback (8 senders, 8 receivers with credit 1 in settle mode
// second, one connection; three frames of ours per message): 3.0 server
// writes per message when the loop wrote after each event it handled,
// 1.9-2.1 with the writer.
type writer struct {
	nc      net.Conn
	timeout time.Duration // write deadline: a peer that does not read for this long is cut

	mu       sync.Mutex
	room     sync.Cond // signalled when the writer takes what is queued, or fails
	queued   []byte    // handed over, not yet taken
	running  bool      // a goroutine is writing
	closing  bool      // write what is queued, then stop
	finished bool      // done is closed
	err      error     // the write error that stopped the writer

	failed func(error)   // told of the write error that stopped the writer, on its goroutine
	done   chan struct{} // closed once closing and everything queued is written, or a write failed
}

func newWriter(nc net.Conn, timeout time.Duration, failed func(error)) *writer {
	w := &writer{
		nc:      nc,
		timeout: timeout,
		failed:  failed,
		done:    make(chan struct{}),
	}
	w.room.L = &w.mu
	return w
}

// hand queues the frames in out for writing and returns an empty buffer
// for the loop to encode the next ones into (the one the writer was done
// with, when it can). It waits while too much is queued already. After a
// write error it drops out and returns the error.
func (w *writer) hand(out []byte) ([]byte, error) {
	w.mu.Lock()
	for len(w.queued) >= maxQueuedBytes && w.err == nil {
		w.room.Wait()
	}
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return out[:0], err
	}
	if len(w.queued) == 0 {
		out, w.queued = w.queued[:0], out
	} else {
		w.queued = append(w.queued, out...)
		out = out[:0]
	}
	w.startLocked()
	w.mu.Unlock()
	return out, nil
}

// startLocked starts the goroutine unless it runs or the writer has
// finished; w.mu must be held.
func (w *writer) startLocked() {
	if w.running || w.finished {
		return
	}
	w.running = true
	go w.run()
}

// close makes the writer stop once it has written what is queued (or a
// write failed); done is closed then.
func (w *writer) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closing = true
	w.startLocked()
}

// run writes what is queued until nothing is, or a write fails.
func (w *writer) run() {
	var buf []byte
	for {
		w.mu.Lock()
		if len(w.queued) == 0 {
			w.running = false
			if w.closing && !w.finished {
				w.finished = true
				close(w.done)
			}
			w.mu.Unlock()
			return
		}
		buf, w.queued = w.queued, buf[:0]
		w.room.Signal()
		w.mu.Unlock()

		_ = w.nc.SetWriteDeadline(time.Now().Add(w.timeout))
		if _, err := w.nc.Write(buf); err != nil {
			w.mu.Lock()
			w.err = err
			w.queued = nil
			w.running = false
			w.finished = true
			w.room.Broadcast()
			w.mu.Unlock()
			close(w.done)
			w.failed(err)
			return
		}
		if cap(buf) > 1<<20 {
			buf = nil // do not keep a large buffer for a busy moment
		}
	}
}
