package httpx

import (
	"context"
	"sync"
)

// Note is what a request's handlers tell the front door about it, for the
// request's log line and its metrics: which surface served it, and the
// tenant and principal (object id) the caller's credential named. The
// front door puts an empty Note in every request's context; the surfaces
// fill it as they learn (the router the surface, the token verifier the
// caller), so no surface needs the front door's logger or metrics. A Note
// is safe for concurrent use: an AMQP connection over a WebSocket runs its
// links, and their token checks, in goroutines of its own.
type Note struct {
	mu        sync.Mutex
	surface   string
	tenantID  string
	principal string
}

const noteKey ctxKey = 1

// WithNote returns ctx carrying n.
func WithNote(ctx context.Context, n *Note) context.Context {
	return context.WithValue(ctx, noteKey, n)
}

// NoteFrom returns the Note in ctx, or nil outside the front door (a unit
// test, a background job): every Note method does nothing on nil.
func NoteFrom(ctx context.Context) *Note {
	n, _ := ctx.Value(noteKey).(*Note)
	return n
}

// SetSurface records the surface that serves the request ("graph", "arm",
// "token", …).
func (n *Note) SetSurface(surface string) {
	if n == nil {
		return
	}
	n.mu.Lock()
	n.surface = surface
	n.mu.Unlock()
}

// SetCaller records the tenant and principal a verified credential named.
// The first caller recorded stays: a request is logged as whoever it was
// first verified as, not as a later token (a second CBS token on the same
// AMQP connection) that happened to be checked while it ran.
func (n *Note) SetCaller(tenantID, principal string) {
	if n == nil {
		return
	}
	n.mu.Lock()
	if n.tenantID == "" && n.principal == "" {
		n.tenantID, n.principal = tenantID, principal
	}
	n.mu.Unlock()
}

// Read returns what the Note holds.
func (n *Note) Read() (surface, tenantID, principal string) {
	if n == nil {
		return "", "", ""
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.surface, n.tenantID, n.principal
}
