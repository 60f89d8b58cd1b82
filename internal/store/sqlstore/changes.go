package sqlstore

import "sync/atomic"

// changeClock counts the committed writes that can make a cached read
// stale (store.Store.Generation). It is shared by a Store and the
// transaction Stores derived from it.
//
// A backend whose database other processes also write (PostgreSQL) tells
// the clock about their commits through NoteExternalChange, and while it
// cannot hear them (before its listener connects, after the connection
// drops) it marks the clock deaf: every Generation call then returns a new
// number, so no cache serves anything until hearing resumes. That is the
// fail-closed choice: slower, never stale.
type changeClock struct {
	n    atomic.Uint64
	deaf atomic.Bool
}

func (c *changeClock) generation() uint64 {
	if c.deaf.Load() {
		return c.n.Add(1)
	}
	return c.n.Load()
}

func (c *changeClock) tick() { c.n.Add(1) }

// Generation implements store.Store.
func (s *Store) Generation() uint64 { return s.clock.generation() }

// NoteExternalChange records that another process committed a change to
// the database (PostgreSQL's listener calls it on each notification).
func (s *Store) NoteExternalChange() { s.clock.tick() }

// SetHearing says whether changes by other processes are being heard. A
// backend whose database other processes may write (postgres.Open) makes
// its store deaf at once, sets hearing when its listener listens, and
// clears it when the listener loses its connection. Every call starts a
// new generation.
func (s *Store) SetHearing(hearing bool) {
	s.clock.deaf.Store(!hearing)
	s.clock.tick()
}

// AddCloser registers fn to run when the Store is closed, before the
// database is: a backend's listener stops with its store.
func (s *Store) AddCloser(fn func()) {
	s.closersMu.Lock()
	defer s.closersMu.Unlock()
	s.closers = append(s.closers, fn)
}
