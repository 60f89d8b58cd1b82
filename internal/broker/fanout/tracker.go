package fanout

import (
	"context"
	"sync"
)

// Tracker matches replies to the commands they answer, by CorrelationId:
// Expect registers a command before it is sent, Deliver (a Handler) routes
// each reply to the command's channel.
type Tracker struct {
	mu      sync.Mutex
	pending map[string]*Call
	// Unmatched counts replies to no pending command (late, duplicate or
	// foreign); they are completed and dropped.
	unmatched int
}

// Call is one command awaiting replies.
type Call struct {
	ID      string
	Replies chan Reply // buffered for every expected reply
	want    map[string]bool
}

// NewTracker returns an empty Tracker.
func NewTracker() *Tracker { return &Tracker{pending: map[string]*Call{}} }

// Expect registers command id as awaiting one reply from each of
// tenantIDs. Replies from other tenants, and second replies, are not
// delivered.
func (t *Tracker) Expect(id string, tenantIDs []string) *Call {
	c := &Call{ID: id, Replies: make(chan Reply, len(tenantIDs)), want: make(map[string]bool, len(tenantIDs))}
	for _, tid := range tenantIDs {
		c.want[tid] = true
	}
	t.mu.Lock()
	t.pending[id] = c
	t.mu.Unlock()
	return c
}

// Done forgets command id.
func (t *Tracker) Done(id string) {
	t.mu.Lock()
	delete(t.pending, id)
	t.mu.Unlock()
}

// Deliver routes r to its command's Call; it never fails, so the reply is
// completed whether or not anything awaited it.
func (t *Tracker) Deliver(_ context.Context, r Reply) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.pending[r.CorrelationID]
	if c == nil || !c.want[r.Customer.TenantID] {
		t.unmatched++
		return nil
	}
	delete(c.want, r.Customer.TenantID)
	c.Replies <- r // never blocks: buffered for every expected reply
	return nil
}

// Unmatched is the count of replies that matched no pending command.
func (t *Tracker) Unmatched() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.unmatched
}

// Outstanding lists the tenants of command id that have not replied.
func (t *Tracker) Outstanding(id string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.pending[id]
	if c == nil {
		return nil
	}
	out := make([]string, 0, len(c.want))
	for tid := range c.want {
		out = append(out, tid)
	}
	return out
}
