package sqlstore

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// maxParts bounds the parts whose generation the clock remembers; past
// it, the next write moves every part (see tickParts) and the map starts
// over, so memory stays bounded whatever the number of tenants.
const maxParts = 1 << 16

// changeClock counts the committed writes that can make a cached read
// stale (store.Store.Generation), and remembers for each part of the
// store (store.TenantPart, store.SubscriptionPart) the count at the last
// write that changed it (store.Store.PartGeneration). It is shared by a
// Store and the transaction Stores derived from it.
//
// Every write moves n. A write that names the parts it changed records n
// for each of them; one that cannot name them (and every change heard
// from another process) records n in all, which stands for every part.
// A part's generation is the larger of all and its own entry, so it
// moves with every write that changed the part or might have. Because
// all is at least every entry, the map can be emptied whenever all moves.
//
// A backend whose database other processes also write (PostgreSQL) tells
// the clock about their commits through NoteExternalChange, and while it
// cannot hear them (before its listener connects, after the connection
// drops) it marks the clock deaf: every Generation and PartGeneration
// call then returns a new number, so no cache serves anything until
// hearing resumes. That is the fail-closed choice: slower, never stale.
// The notifications do not say which tenants another process changed,
// so such a change moves every part: other nodes fall back to the
// global generation, never to a stale one.
type changeClock struct {
	n    atomic.Uint64
	deaf atomic.Bool

	mu    sync.RWMutex
	all   uint64            // n at the last write that moved every part
	parts map[string]uint64 // n at the last write that named the part
}

func (c *changeClock) generation() uint64 {
	if c.deaf.Load() {
		return c.n.Add(1)
	}
	return c.n.Load()
}

func (c *changeClock) partGeneration(part string) uint64 {
	if c.deaf.Load() {
		return c.n.Add(1)
	}
	part = strings.ToLower(part)
	c.mu.RLock()
	g := max(c.all, c.parts[part])
	c.mu.RUnlock()
	return g
}

// tick records a write that may have changed anything.
func (c *changeClock) tick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all = c.n.Add(1)
	clear(c.parts)
}

// tickParts records a write that changed nothing outside parts; with no
// parts, it is tick. n moves under the lock, with the entries, so that a
// reader never sees the new n before the parts it moved.
func (c *changeClock) tickParts(parts []string) {
	if len(parts) == 0 {
		c.tick()
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.n.Add(1)
	if c.parts == nil {
		c.parts = map[string]uint64{}
	}
	if len(c.parts)+len(parts) > maxParts {
		c.all = g
		clear(c.parts)
		return
	}
	for _, p := range parts {
		c.parts[strings.ToLower(p)] = g
	}
}

// changes collects the parts a write changed. A write names them before
// running its statements, so that a failure part-way still moves them.
// One that names none, or calls everything, moves every part.
type changes struct {
	parts []string
	all   bool
}

func (ch *changes) tenant(id string)       { ch.parts = append(ch.parts, store.TenantPart(id)) }
func (ch *changes) subscription(id string) { ch.parts = append(ch.parts, store.SubscriptionPart(id)) }
func (ch *changes) tenantRef(ref string)   { ch.parts = append(ch.parts, store.TenantRefPart(ref)) }
func (ch *changes) everything()            { ch.all = true }

// add merges o into ch.
func (ch *changes) add(o *changes) {
	if o.all || len(o.parts) == 0 {
		ch.all = true
		return
	}
	ch.parts = append(ch.parts, o.parts...)
}

// commit moves the clock for a committed (or failed) write that changed ch.
func (c *changeClock) commit(ch *changes) {
	if ch.all {
		c.tick()
		return
	}
	c.tickParts(ch.parts)
}

// Generation implements store.Store.
func (s *Store) Generation() uint64 { return s.clock.generation() }

// PartGeneration implements store.Store.
func (s *Store) PartGeneration(part string) uint64 { return s.clock.partGeneration(part) }

// NoteExternalChange records that another process committed a change to
// the database (PostgreSQL's listener calls it on each notification).
// Notifications do not name tenants, so it moves every part.
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
