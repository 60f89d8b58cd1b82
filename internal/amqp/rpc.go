package amqp

import (
	"context"
	"slices"
	"sync"

	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
)

// Replies pairs the two links of a request/response node such as $cbs or
// $management. The peer attaches a sender to the node for its requests
// and a receiver from it for the replies; the receiver's target address is
// the reply-to its requests carry, or else (a reply-to no target names)
// the receiver's link name: rhea's clients, @azure/core-amqp's among them,
// attach their $cbs reply link without a target and send its name as the
// reply-to (@azure/core-amqp 4.4, dist/commonjs/cbs.js:
// createReceiver({source: {address: "$cbs"}, name: this.replyTo}) and
// reply_to: this.replyTo). Add each such receiver link; Send finds it by
// reply-to. One Replies per connection (links of other connections must
// not be reachable), the zero value ready to use.
//
// A registration is one entry in a slice, dropped by the link's end
// itself: no map and no watch of the link's context per link, which in a
// fleet's idle connections cost more than the reply link's own state
// (docs/benchmarks.md, "Many customers on one node"). A connection has a
// few reply links; Server.MaxLinks bounds the slice, and so the scans.
type Replies struct {
	mu    sync.Mutex
	links []replyLink
}

// replyLink is one reply link's registration.
type replyLink struct {
	l      *Link
	addr   string // its target address
	name   string // its link name
	byAddr bool   // addr finds it: no later link took the address
	byName bool   // name finds it: no later link took the name
}

// Add registers l, a link on which we send, under its target address and
// its name, until it ends. A later link with the same address (or name)
// replaces it there. A link is in one Replies at a time: adding it to
// another takes it out of the first.
func (r *Replies) Add(l *Link) {
	e := replyLink{l: l, name: l.PeerAttach.Name, byAddr: true, byName: true}
	if t := l.PeerAttach.Target; t != nil {
		e.addr = t.Address
	}
	// Under the link's lock, so that the link's end (which takes it
	// first) either sees the registration and drops it, or has ended
	// and none is made.
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return
	}
	if old := l.replies; old != nil && old != r {
		old.drop(l)
	}
	l.replies = r
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.links {
		x := &r.links[i]
		x.byAddr = x.byAddr && x.addr != e.addr
		x.byName = x.byName && x.name != e.name
	}
	r.links = slices.DeleteFunc(r.links, func(x replyLink) bool { return x.l == l || !x.byAddr && !x.byName })
	r.links = append(r.links, e)
}

// drop forgets l (its end).
func (r *Replies) drop(l *Link) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.links = slices.DeleteFunc(r.links, func(x replyLink) bool { return x.l == l })
	if len(r.links) == 0 {
		r.links = nil
	}
}

// find is the link replyTo names: by target address, or else by name.
func (r *Replies) find(replyTo string) *Link {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range r.links {
		if x.byAddr && x.addr == replyTo {
			return x.l
		}
	}
	for _, x := range r.links {
		if x.byName && x.name == replyTo {
			return x.l
		}
	}
	return nil
}

// Send sends reply, settled, on the link registered for replyTo. It
// returns false when there is none: a request whose reply cannot be
// delivered is dropped, as Service Bus does.
func (r *Replies) Send(ctx context.Context, replyTo string, reply *wire.Message) (bool, error) {
	l := r.find(replyTo)
	if l == nil {
		return false, nil
	}
	payload, err := reply.Encoded()
	if err != nil {
		return true, err
	}
	_, err = l.Send(ctx, nil, 0, payload, true)
	return true, err
}
