package server

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// connBudget bounds the client connections the server holds at once over
// its HTTPS, proxy and AMQPS listeners, so that a flood of clients cannot
// take the file descriptors that the store, the key files and outbound
// calls need. A fleet of customers each holding connections can reach the
// process's open-file limit: at that point accept fails with EMFILE in a
// loop, the clients wait in the kernel's backlog, and the store can no
// longer open what it needs (seen with 9,800 fan-out customers, two
// connections each, against a limit of 20,000; docs/benchmarks.md).
//
// Past the budget a new connection is accepted and closed at once: the
// client sees its connection reset and its SDK retries, rather than
// hanging in the backlog, and the descriptor is free again.
type connBudget struct {
	max     int64
	open    atomic.Int64
	refused atomic.Int64
	log     *slog.Logger
	logged  atomic.Int64 // unix nanoseconds of the last warning
}

// budgetReserve is what the budget leaves of the open-file limit for
// everything else: a twentieth of it, and at least 256 descriptors.
func budgetReserve(limit uint64) uint64 { return max(256, limit/20) }

// newConnBudget sizes the budget: most if it is positive, else the
// process's open-file limit less budgetReserve; nil (no budget) when most
// is negative or the limit is unknown or too small to leave a reserve.
func newConnBudget(most int, log *slog.Logger) *connBudget {
	switch {
	case most < 0:
		return nil
	case most == 0:
		limit, ok := openFileLimit()
		if !ok || limit <= 2*budgetReserve(limit) {
			return nil
		}
		most = int(limit - budgetReserve(limit))
	}
	return &connBudget{max: int64(most), log: log}
}

// listener counts ln's connections against the budget (ln itself when
// there is none).
func (b *connBudget) listener(ln net.Listener) net.Listener {
	if b == nil {
		return ln
	}
	return &budgetListener{Listener: ln, b: b}
}

type budgetListener struct {
	net.Listener
	b *connBudget
}

func (l *budgetListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.b.open.Add(1) <= l.b.max {
			return &budgetConn{Conn: c, b: l.b}, nil
		}
		l.b.open.Add(-1)
		n := l.b.refused.Add(1)
		// A warning at most every 10 s, with the count so far.
		now := time.Now().UnixNano()
		if last := l.b.logged.Load(); now-last >= int64(10*time.Second) && l.b.logged.CompareAndSwap(last, now) {
			l.b.log.Warn("connection refused: the server holds its maximum of client connections",
				"max", l.b.max, "refusedSoFar", n, "listener", l.Addr().String())
		}
		_ = c.Close()
	}
}

// budgetConn gives its place back once, when it is first closed.
type budgetConn struct {
	net.Conn
	b    *connBudget
	once sync.Once
}

func (c *budgetConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.b.open.Add(-1) })
	return err
}
