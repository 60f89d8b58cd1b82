package amqp

import (
	"context"

	"github.com/tenantbridge/tenantbridge/internal/amqp/wire"
)

// Handler decides on the links the peer attaches to one connection. The
// application gives one per connection (Server.Connect), so whatever it
// learns on a connection — the CBS tokens put on $cbs, say — lives in its
// Handler and goes away with the connection.
type Handler interface {
	// Attach is called for every link the peer attaches, on a goroutine of
	// its own, so it may wait (for a session of a session-enabled queue to
	// become free, for instance) without holding up the connection; l's
	// context ends if the peer detaches or the connection ends meanwhile.
	//
	// Returning an *Accept attaches the link. Returning an error refuses
	// it the way brokers do: an attach with no terminus, then a detach
	// carrying the error (a *wire.Error as it is, any other error as
	// amqp:internal-error).
	Attach(ctx context.Context, l *Link) (*Accept, error)
}

// HandlerFunc lets a plain function be a Handler.
type HandlerFunc func(ctx context.Context, l *Link) (*Accept, error)

// Attach calls f.
func (f HandlerFunc) Attach(ctx context.Context, l *Link) (*Accept, error) { return f(ctx, l) }

// Accept is the application's answer to an attach it takes. The engine
// keeps it for the link's life and only reads it, so one Accept may
// answer many links.
type Accept struct {
	// Source and Target are echoed to the peer; nil echoes what the peer
	// sent. Service Bus alters them, e.g. to name the session it granted.
	Source *wire.Source
	Target *wire.Target
	// Properties go into our attach (com.microsoft:locked-until-utc …).
	Properties wire.Map
	// MaxMessageSize is the largest message the peer may send on the
	// link, advertised in our attach (Service Bus: the entity's limit).
	// Zero means Server.MaxMessageSize; it is never above it.
	MaxMessageSize uint64

	// For links on which the peer sends (l.PeerSends()):

	// Credit is how many deliveries the peer may have in flight to us:
	// received but not yet returned from OnDelivery, or left unsettled.
	// The engine grants it after the attach and tops it up as deliveries
	// are handled. Zero means DefaultCredit.
	Credit uint32
	// OnDelivery is called for each complete delivery, in order, on the
	// link's own goroutine (deliveries of one link never overlap). A
	// non-nil state settles the delivery with it; nil leaves it
	// unsettled, to be settled later with Delivery.Settle (or never,
	// when the peer settled it already: d.Settled). Without OnDelivery
	// every delivery is rejected with amqp:not-implemented.
	OnDelivery func(ctx context.Context, d *Delivery) wire.DeliveryState

	// For links on which we send (!l.PeerSends()):

	// OnDisposition is called, on the link's own goroutine, once per
	// unsettled delivery we sent when the peer settles it or gives it an
	// outcome. It may be nil.
	//
	// When the peer gives an outcome without settling (receiver settle
	// mode second), it waits for our settlement: the engine sends it only
	// once OnDisposition has returned, so that the peer learns of the
	// outcome only after the application acted on it (a Service Bus
	// complete is durable first). What OnDisposition returns is the state
	// we settle with: nil confirms the peer's outcome; another state (a
	// Rejected carrying com.microsoft:message-lock-lost, say) tells the
	// peer its outcome did not take effect. For a delivery the peer
	// settled itself, the result is ignored.
	OnDisposition func(d Disposition) wire.DeliveryState
	// OnCredit, if set, is called when the peer grants more credit or
	// asks to drain: the wake-up CreditChanged gives, for an application
	// that sends without a goroutine waiting for it (a Service Bus
	// receiving link, idle, holds none). It is called on the connection's
	// goroutine, so it must return at once and must not call the link's
	// or the connection's methods itself: it may start a goroutine that
	// does.
	OnCredit func()
	// ManualDrain makes the engine wait for Link.DrainDone when the peer
	// asks to drain its credit, so that the application can first send
	// what it has at hand (Service Bus sends the messages that are
	// available, then answers the drain). Without it the engine answers a
	// drain at once when no Send is waiting. (go-amqp's drain flow itself
	// sets the credit to 0, so with it there is nothing left to send.)
	ManualDrain bool

	// OnEnd, if set, is called once when the accepted link ends: it or
	// the peer detached it, or its session or connection ended. Like
	// OnCredit it runs on the connection's goroutine (or, when the
	// connection had ended before the attach was answered, on the
	// Attach call's), so it must return at once. It is what the link's
	// context tells an AfterFunc, without the context package's state
	// per watcher: a fleet's idle links each had two of those
	// (docs/benchmarks.md, "Many customers on one node").
	OnEnd func()
}

// DefaultCredit is the credit granted to a sending peer when Accept.Credit
// is zero.
const DefaultCredit = 100

// Delivery is one complete message the peer sent on a link.
type Delivery struct {
	ID      uint32 // the peer's delivery-id, unique among the session's unsettled deliveries
	Tag     []byte // the delivery-tag; Service Bus senders use it as a lock token only on receive
	Format  uint32 // message-format: 0, or wire.MessageFormatBatch for a Service Bus batch
	Payload []byte // the encoded message sections, all transfer frames joined
	Settled bool   // the peer settled it already (at-most-once): no outcome is sent

	link *Link
}

// Settle gives the outcome of a delivery OnDelivery left unsettled. It
// does nothing for a delivery the peer settled, or one already settled, or
// when the link has ended meanwhile (an unsettled delivery of a link that
// is gone is the peer's to resend).
func (d *Delivery) Settle(state wire.DeliveryState) {
	if d.Settled || state == nil {
		return
	}
	l := d.link
	l.Conn.call(func() { l.settleIncoming(d.ID, state) })
}

// Disposition tells the application what the peer did with a delivery we
// sent.
type Disposition struct {
	ID      uint32             // the delivery-id Send returned
	Tag     []byte             // the delivery-tag given to Send
	State   wire.DeliveryState // the outcome (Accepted, Rejected, Released, Modified) or nil
	Settled bool               // the peer settled it (otherwise it is in mode second; the engine settles it)
}
