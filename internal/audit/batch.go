package audit

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// maxBatch bounds one group commit, so that one transaction stays short.
const maxBatch = 256

// The writer lingers for more records when it has only a few: under load
// that turns many commits (each an fsync) into one. It stops lingering as
// soon as arrivals pause for lingerGap — every caller that was going to
// join is in — and never waits longer than linger in all, so a lone
// record is delayed by lingerGap at most and a busy moment by linger.
// (A fixed 2 ms wait cost throughput whenever fewer than lingerBelow
// callers were waiting: docs/benchmarks.md.)
const (
	linger      = 2 * time.Millisecond
	lingerGap   = 200 * time.Microsecond
	lingerBelow = 32 // records: a batch this large is written at once
)

// ErrClosed is returned by Record on a batching Log after Close.
var ErrClosed = errors.New("audit: log is closed")

// NewBatching returns a Log that commits records in groups: every record
// waiting when the writer is free goes into one transaction. A caller still
// returns only once its own record is durable, so nothing is acknowledged
// that the log could lose; what the grouping saves is a commit (an fsync on
// the embedded store) per record, which would otherwise bound how many
// tokens a second the server can issue. Close stops the writer.
func NewBatching(st store.Audit, logger *slog.Logger, opts ...Option) *Log {
	b := &batcher{st: st, logger: logger, queue: make(chan pending, 4*maxBatch), stopped: make(chan struct{})}
	go b.run()
	l := &Log{st: st, logger: logger, now: time.Now, batch: b}
	for _, o := range opts {
		o(l)
	}
	return l
}

type pending struct {
	rec  store.AuditRecord
	done chan error
}

type batcher struct {
	st      store.Audit
	logger  *slog.Logger
	queue   chan pending
	mu      sync.RWMutex // held for reading while enqueueing, for writing by Close
	closed  bool
	stopped chan struct{}
}

// enqueue hands r to the writer and waits for its commit.
func (b *batcher) enqueue(ctx context.Context, r store.AuditRecord) error {
	p := pending{rec: r, done: make(chan error, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return ErrClosed
	}
	select {
	case b.queue <- p:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err() // the record is still written
	}
}

func (b *batcher) run() {
	defer close(b.stopped)
	deadline := time.NewTimer(linger)
	gap := time.NewTimer(lingerGap)
	deadline.Stop()
	gap.Stop()
	for p := range b.queue {
		batch := []pending{p}
		deadline.Reset(linger)
	gather:
		for len(batch) < maxBatch {
			// Take what is waiting; when that runs out, linger only while
			// the batch is small and records keep arriving.
			select {
			case more, ok := <-b.queue:
				if !ok {
					break gather
				}
				batch = append(batch, more)
				continue
			default:
			}
			if len(batch) >= lingerBelow {
				break
			}
			gap.Reset(lingerGap)
			select {
			case more, ok := <-b.queue:
				if !ok {
					break gather
				}
				batch = append(batch, more)
			case <-gap.C:
				break gather
			case <-deadline.C:
				break gather
			}
		}
		deadline.Stop()
		gap.Stop()
		b.write(batch)
	}
}

// write commits a batch in one transaction. If that fails, each record is
// tried alone, so that one bad record cannot cost the others.
func (b *batcher) write(batch []pending) {
	ctx := context.Background()
	recs := make([]store.AuditRecord, len(batch))
	for i, p := range batch {
		recs[i] = p.rec
	}
	err := b.st.AppendAudits(ctx, recs)
	if err == nil || len(batch) == 1 {
		for _, p := range batch {
			p.done <- err
		}
		return
	}
	for _, p := range batch {
		_, err := b.st.AppendAudit(ctx, p.rec)
		p.done <- err
	}
}

// close stops accepting records, lets the writer commit what is queued, and waits for it.
func (b *batcher) close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.queue)
	}
	b.mu.Unlock()
	<-b.stopped
}
