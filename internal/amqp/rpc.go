package amqp

import (
	"context"
	"sync"

	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
)

// Replies pairs the two links of a request/response node such as $cbs or
// $management. The peer attaches a sender to the node for its requests
// and a receiver from it for the replies; the receiver's target address is
// the reply-to its requests carry. Add each such receiver link; Send finds
// it by reply-to. One Replies per connection (links of other connections
// must not be reachable), the zero value ready to use.
type Replies struct {
	mu    sync.Mutex
	links map[string]*Link
}

// Add registers l, a link on which we send, under its target address,
// until it ends. A later link with the same address replaces it.
func (r *Replies) Add(l *Link) {
	var addr string
	if t := l.PeerAttach.Target; t != nil {
		addr = t.Address
	}
	r.mu.Lock()
	if r.links == nil {
		r.links = make(map[string]*Link)
	}
	r.links[addr] = l
	r.mu.Unlock()
	context.AfterFunc(l.Context(), func() {
		r.mu.Lock()
		if r.links[addr] == l {
			delete(r.links, addr)
		}
		r.mu.Unlock()
	})
}

// Send sends reply, settled, on the link registered for replyTo. It
// returns false when there is none: a request whose reply cannot be
// delivered is dropped, as Service Bus does.
func (r *Replies) Send(ctx context.Context, replyTo string, reply *wire.Message) (bool, error) {
	r.mu.Lock()
	l := r.links[replyTo]
	r.mu.Unlock()
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
