package store

import (
	"context"
	"errors"
	"time"
)

// Errors of the Service Bus message store (Queues).
var (
	// ErrQuotaExceeded means a send would take the queue's stored messages
	// (its dead-letter queue included) over QueueLimits.MaxSizeBytes.
	// Service Bus answers 403.
	ErrQuotaExceeded = errors.New("store: queue quota exceeded")
	// ErrLockLost means the message exists but the caller's lock on it
	// does not: the lock token is wrong, the lock expired (and perhaps
	// another receiver holds it now) or the message was dead-lettered
	// meanwhile. ErrNotFound on a settle operation means there is no
	// message with that sequence number in the queue. Service Bus REST
	// answers 404 to both ("no such MessageId/LockToken"); 410 is for a
	// queue that does not exist.
	ErrLockLost = errors.New("store: message lock lost")
)

// QueueResourceType is the ARM resource type a queue's messages hang off:
// a queue exists for the message store while its arm_resources record of
// this type (case-insensitively) does.
const QueueResourceType = "Microsoft.ServiceBus/namespaces/queues"

// DefaultDuplicateWindow is the duplicate detection history used when
// QueueLimits.DuplicateWindow is zero: the 10 minutes of Azure's
// duplicate-detection article (the .NET SDK documents 1 minute; the two
// disagree, this is the one the service documents).
const DefaultDuplicateWindow = 10 * time.Minute

// QueueLimits are the queue's properties that govern the store's
// decisions. The broker reads them from the queue's ARM resource and passes
// them with every operation, so that the store never parses ARM
// properties.
type QueueLimits struct {
	// LockDuration is how long a peek-lock or a renewal holds a message.
	// Lock and Renew require it to be positive.
	LockDuration time.Duration
	// MaxDeliveryCount is how many times a message may be locked: one
	// whose DeliveryCount has reached it is dead-lettered with reason
	// MaxDeliveryCountExceeded when it is abandoned or its lock expires.
	// Lock, ReceiveAndDelete and Abandon require it to be at least 1.
	MaxDeliveryCount int
	// DefaultTimeToLive is the ceiling on a message's TimeToLive; zero is
	// unlimited (Azure's TimeSpan.MaxValue).
	DefaultTimeToLive time.Duration
	// DuplicateDetection turns on duplicate detection by MessageID over
	// DuplicateWindow (DefaultDuplicateWindow when zero).
	DuplicateDetection bool
	DuplicateWindow    time.Duration
	// DeadLetterOnExpiration moves expired messages to the dead-letter
	// queue (reason TTLExpiredException) instead of dropping them.
	DeadLetterOnExpiration bool
	// MaxSizeBytes is the queue's quota: the sum of QueueMessage.Size over
	// every stored message, active, scheduled and dead-lettered alike
	// (Azure counts the dead-letter queue against its entity's size), and
	// of every session's state. Zero is unlimited.
	MaxSizeBytes int64
	// RequiresSession: the queue's messages are received only by
	// accepting their session (Lock and ReceiveAndDelete on the queue
	// proper need a SessionID and its session lock; the dead-letter
	// queue has no sessions). Service Bus, "Message sessions": "When
	// Sessions are enabled on a queue or a subscription, the client
	// applications can no longer send/receive regular messages."
	RequiresSession bool
}

// Dead-letter reasons the store sets (Azure's system reasons).
const (
	DeadLetterTTLExpired       = "TTLExpiredException"
	DeadLetterMaxDeliveryCount = "MaxDeliveryCountExceeded"
)

// QueueMessage is one stored Service Bus message.
type QueueMessage struct {
	// QueueID is the queue's ARM resource id; compared case-insensitively.
	// The store returns it as the caller spelled it in the operation.
	QueueID string
	// DeadLetter is set when the message is in the queue's
	// $DeadLetterQueue.
	DeadLetter bool
	// SequenceNumber is assigned by the store when the message is sent,
	// unique and increasing across all queues; a message keeps it in the
	// dead-letter queue.
	SequenceNumber int64
	MessageID      string // the duplicate detection key; may be empty (never a duplicate)
	// SessionID is the message's session (AMQP group-id), "" for none.
	// The store only files messages by it; whether a queue needs it is
	// the caller's rule.
	SessionID string
	Body      []byte
	// Properties is opaque JSON owned by package servicebus (broker and
	// user properties).
	Properties []byte
	// Size is what the message counts against the quota:
	// len(Body)+len(Properties). Set by the store.
	Size int64
	// EnqueuedAt is when it was sent (the now of the send). Set by the store.
	EnqueuedAt time.Time
	// ScheduledAt: the message is not deliverable before it; zero means at
	// once.
	ScheduledAt time.Time
	// TimeToLive is an input of Send only: the message's own TTL, zero
	// for none. The store clamps it to QueueLimits.DefaultTimeToLive and
	// sets ExpiresAt from it.
	TimeToLive time.Duration
	// ExpiresAt is when the message expires: the later of EnqueuedAt and
	// ScheduledAt (when it becomes active), plus the clamped TTL. Zero is
	// never. Set by the store.
	ExpiresAt     time.Time
	DeliveryCount int    // incremented by every lock
	LockToken     string // "" unless locked
	LockedUntil   time.Time
	// DeadLetterReason and DeadLetterDescription say why the message was
	// dead-lettered.
	DeadLetterReason      string
	DeadLetterDescription string
	// Deferred is set when a receiver set the message aside (QueueDefer):
	// it stays in its queue (or dead-letter queue) and counts as active
	// there, but Lock and ReceiveAndDelete never deliver it again; only
	// QueueLockDeferred, by its sequence number, does. Service Bus's
	// "message deferral" article: "The message remains in the queue or
	// subscription, but it's set aside", received again only by sequence
	// number.
	Deferred bool
}

// QueueOpKind names an operation of ApplyQueueOps.
type QueueOpKind int

// The operations.
const (
	// QueueSend stores Messages, all or none.
	QueueSend QueueOpKind = iota + 1
	// QueueLock peek-locks the queue's first deliverable message with
	// LockToken for Limits.LockDuration.
	QueueLock
	// QueueReceiveAndDelete removes and returns the first deliverable
	// message.
	QueueReceiveAndDelete
	// QueueComplete deletes the message SequenceNumber locked with
	// LockToken.
	QueueComplete
	// QueueAbandon unlocks the message SequenceNumber locked with
	// LockToken, or dead-letters it if its DeliveryCount has reached
	// Limits.MaxDeliveryCount.
	QueueAbandon
	// QueueRenew extends the lock on the message SequenceNumber held with
	// LockToken to now+Limits.LockDuration.
	QueueRenew
	// QueueDeadLetter moves the message SequenceNumber locked with
	// LockToken to the queue's dead-letter queue, with DeadLetterReason
	// and DeadLetterDescription (a receiver's dead-letter settlement). A
	// message already in the dead-letter queue cannot be dead-lettered
	// again: ErrNotFound, as for any message the op does not hold.
	QueueDeadLetter
	// QueueCancelScheduled deletes the message SequenceNumber if it is
	// still scheduled (not yet deliverable): Service Bus's
	// cancel-scheduled-message. ErrNotFound when there is no such
	// scheduled message.
	QueueCancelScheduled
	// QueueDefer sets aside the message SequenceNumber locked with
	// LockToken (a peek-locked message, or a deferred one locked by
	// QueueLockDeferred): it becomes Deferred and unlocked, its
	// DeliveryCount unchanged. Service Bus's DeferMessage (AMQP: modified
	// with undeliverable-here, or update-disposition "defered").
	QueueDefer
	// QueueLockDeferred locks the deferred message SequenceNumber with
	// LockToken for Limits.LockDuration, counting a delivery as Lock does
	// (Service Bus's receive-by-sequence-number in peek-lock mode). It
	// fails with ErrNotFound when the queue (or dead-letter queue, per
	// DeadLetter) has no deferred message with that sequence number, and
	// with ErrLockLost when one is validly locked already. Once locked, the
	// message is settled like any locked message: Complete deletes it,
	// DeadLetter moves it to the dead-letter queue (no longer deferred),
	// Renew extends the lock, Defer sets it aside again, and Abandon (or
	// the lock's expiry) leaves it deferred and unlocked — unless Abandon
	// finds its DeliveryCount at Limits.MaxDeliveryCount, which
	// dead-letters it as for any message.
	//
	// Deferred messages do not expire while set aside: Service Bus checks
	// a deferred message's expiry only when it is received by sequence
	// number ("message deferral": "Deferred messages aren't expired and
	// automatically moved to a dead-letter queue until a client app
	// attempts to receive them using an API and the sequence number").
	// So this op, finding the message past ExpiresAt (in the queue proper),
	// dead-letters it (TTLExpiredException) or drops it as
	// Limits.DeadLetterOnExpiration says, and fails with ErrNotFound; this
	// is the one failure that has an effect, reported by DeadLettered.
	QueueLockDeferred

	// QueueLockSession accepts a session of a RequiresSession queue:
	// the session SessionID, or, when SessionID is "", the session of
	// the first deliverable message (lowest sequence number) whose
	// session no one holds. It locks the session with LockToken for
	// Limits.LockDuration; the result names the session and its
	// LockedUntil. A named session need not have messages (Service Bus
	// lets a receiver accept any session id). It fails with ErrLockLost
	// when another lock on the session is valid, and with ErrNotFound
	// when no session is available (next available) or the queue does
	// not exist. While held, only Lock, ReceiveAndDelete and LockDeferred
	// ops carrying the session's SessionID and SessionLockToken deliver
	// its messages, and a message locked so is locked until the
	// session's lock ends ("The session lock held by the session
	// receiver is an umbrella for the message locks").
	QueueLockSession
	// QueueRenewSession extends the session SessionID held with
	// SessionLockToken, and the locks of its messages, to
	// now+Limits.LockDuration. ErrLockLost when the lock is not held.
	QueueRenewSession
	// QueueReleaseSession ends the session lock SessionID held with
	// SessionLockToken (the receiver closed): the session is free, and
	// its messages locked under it are unlocked without counting that
	// delivery ("Message sessions", delivery count: a session closed
	// with messages locked and not completed does not increment their
	// delivery count; a session lock that expires does). ErrLockLost when
	// the lock is not held.
	QueueReleaseSession
	// QueueGetSessionState returns the state of the session SessionID
	// held with SessionLockToken, in QueueResult.SessionState (nil when
	// none was set). ErrLockLost when the lock is not held.
	QueueGetSessionState
	// QueueSetSessionState sets the state of the session SessionID held
	// with SessionLockToken to SessionState (nil clears it). The state
	// counts against the queue's MaxSizeBytes ("Message sessions": "The
	// session state held in a queue or in a subscription counts towards
	// that entity's storage quota"): ErrQuotaExceeded when it would not
	// fit. ErrLockLost when the lock is not held.
	QueueSetSessionState
)

// Light reports whether an op of kind k holds nothing that a client must
// find durable: ApplyQueueOps may commit a batch made only of light ops
// without waiting for the disk (SQLite synchronous=NORMAL, PostgreSQL
// synchronous_commit off), so that it survives a crash of the process but
// perhaps not a power cut; the next durable commit makes it durable too.
//
// Light are the ops that take, extend or give up a lock — a message's
// (Lock, LockDeferred, Renew, Abandon) or a session's (LockSession,
// RenewSession, ReleaseSession) — and GetSessionState, which writes
// nothing. Losing one to a power cut loses a lock, an extension or a
// release: the message is delivered again once the lock last made
// durable ends, its DeliveryCount perhaps one lower, and a settlement
// under the lost lock fails with ErrLockLost. At-least-once delivery
// holds. The expired and over-delivered messages a Lock sweeps on its way
// are swept again. Everything else is what a client is told is kept and
// commits durably, with any batch it is in: a send, a complete, a
// dead-letter, a deferral, a receive-and-delete (at-most-once: its message
// must never come back), a cancelled schedule, a session's state.
func (k QueueOpKind) Light() bool {
	switch k {
	case QueueLock, QueueLockSession, QueueLockDeferred, QueueRenew, QueueRenewSession,
		QueueAbandon, QueueReleaseSession, QueueGetSessionState:
		return true
	}
	return false
}

// QueueOp is one operation of ApplyQueueOps.
type QueueOp struct {
	Kind    QueueOpKind
	QueueID string // the queue's ARM resource id, any case
	// DeadLetter addresses the queue's dead-letter queue (not for Send).
	DeadLetter bool
	Limits     QueueLimits
	// Messages are what Send stores: MessageID, Body, Properties,
	// ScheduledAt and TimeToLive are read, the rest is set by the store.
	Messages []QueueMessage
	// SequenceNumber names the message that Complete, Abandon, Renew,
	// DeadLetter and Defer settle, that CancelScheduled cancels and that
	// LockDeferred locks.
	SequenceNumber int64
	// LockToken is the new lock's token for Lock and LockDeferred
	// (generated by the caller, unguessable), and the held lock's for
	// Complete, Abandon, Renew, DeadLetter and Defer.
	LockToken string
	// DeadLetterReason and DeadLetterDescription are what DeadLetter
	// records.
	DeadLetterReason      string
	DeadLetterDescription string
	// SessionID names the session of the session ops, and, for Lock,
	// ReceiveAndDelete and LockDeferred on a RequiresSession queue, the
	// session whose messages they take, held with SessionLockToken.
	SessionID        string
	SessionLockToken string
	// SessionState is what SetSessionState stores.
	SessionState []byte
}

// QueueResult is the outcome of one QueueOp.
type QueueResult struct {
	// Err is nil when the op took full effect; otherwise it took none.
	// Lock and ReceiveAndDelete fail with ErrNotFound when no message is
	// deliverable; Send fails with ErrNotFound when the queue does not
	// exist and ErrQuotaExceeded when it is full; Complete, Abandon and
	// Renew fail with ErrNotFound or ErrLockLost. Invalid ops get a plain
	// error.
	Err error
	// Messages: for Send, one entry per sent message, in order, as stored
	// (a duplicate that was dropped keeps SequenceNumber 0); for Lock and
	// ReceiveAndDelete, the one message delivered, with its new
	// DeliveryCount (and, for Lock, LockToken and LockedUntil).
	Messages []QueueMessage
	// Duplicates lists the indexes into QueueOp.Messages of the messages
	// that duplicate detection accepted but did not store.
	Duplicates []int
	// LockedUntil is the lock's new expiry after Lock or Renew.
	LockedUntil time.Time
	// SessionID is the session LockSession accepted.
	SessionID string
	// SessionState is what GetSessionState read (nil: none set).
	SessionState []byte
	// DeadLettered reports that Abandon moved the message to the
	// dead-letter queue (MaxDeliveryCountExceeded) instead of unlocking
	// it, that DeadLetter moved it, or that LockDeferred found it expired
	// and moved it (TTLExpiredException).
	DeadLettered bool
	// LockExpired reports that Lock, ReceiveAndDelete or LockDeferred
	// delivered a message whose previous lock had lapsed unsettled (its
	// receiver was too slow for the queue's lock duration, or gone): a
	// lock expiry, for the operator's metrics.
	LockExpired bool
}

// QueueStats describe a queue for ARM's queue GET (countDetails,
// messageCount, sizeInBytes).
type QueueStats struct {
	ActiveCount     int64 // deliverable, locked or deferred, not dead-lettered
	ScheduledCount  int64 // scheduled after now, not dead-lettered
	DeadLetterCount int64
	SizeBytes       int64 // sum of Size over every stored message
}

// Queues is the durable message store of the Service Bus data plane. A
// queue's messages belong to its ARM resource (QueueResourceType) and go
// with it, with its namespace, its resource group and its tenant. Times are
// the caller's: every method that decides by time takes now.
//
// Delivery rules: a message is deliverable when it is due (ScheduledAt at
// or before now), not Deferred, and not validly locked (no lock, or LockedUntil at or
// before now); Lock and ReceiveAndDelete take the deliverable message with
// the lowest SequenceNumber. On their way to it, in the queue proper (never
// in its dead-letter queue), they first deal with what is not deliverable
// any more: a message past ExpiresAt is dead-lettered (TTLExpiredException)
// or dropped, as DeadLetterOnExpiration says, and one whose DeliveryCount
// has reached MaxDeliveryCount is dead-lettered (MaxDeliveryCountExceeded).
// A validly locked message does not expire until its lock ends. At most
// QueueSweepLimit such messages are handled per op; an op that reaches the
// limit reports ErrNotFound, and NextQueueEvent then reports a time that
// has come, so the caller tries again.
type Queues interface {
	// ApplyQueueOps runs ops in one database transaction (one durable
	// commit for many requests, or a light one when every op is
	// QueueOpKind.Light) and returns one result per op, in order.
	// Each op takes full effect or none; one failing op does not fail the
	// others. Ops on one queue run in the given order. If the transaction
	// itself fails, every result carries that error and nothing took
	// effect. It must be called on the Store itself, not inside InTx.
	ApplyQueueOps(ctx context.Context, now time.Time, ops []QueueOp) []QueueResult
	// PeekQueueMessages returns up to limit messages of the queue (or its
	// dead-letter queue) with SequenceNumber >= fromSequence, in order,
	// whatever their state (scheduled, locked, expired), without locking
	// them.
	PeekQueueMessages(ctx context.Context, queueID string, deadLetter bool, fromSequence int64, limit int) ([]QueueMessage, error)
	// QueueStats counts the queue's messages as of now. ErrNotFound if
	// the queue does not exist.
	QueueStats(ctx context.Context, queueID string, now time.Time) (QueueStats, error)
	// NextQueueEvent returns the earliest time at which a message of the
	// queue (or its dead-letter queue) is or becomes deliverable: its
	// scheduled time, its lock's expiry, or its enqueue time. Deferred
	// messages never become deliverable and are not counted. A time at
	// or before now means a Lock may succeed at once. ok is false when
	// there are no messages.
	NextQueueEvent(ctx context.Context, queueID string, deadLetter bool) (at time.Time, ok bool, err error)
	// PeekQueueSession is PeekQueueMessages for the messages of one
	// session of the queue proper.
	PeekQueueSession(ctx context.Context, queueID, sessionID string, fromSequence int64, limit int) ([]QueueMessage, error)
	// NextSessionEvent is NextQueueEvent for a session receiver of the
	// queue proper: for the session sessionID, the earliest time one of
	// its messages is or becomes deliverable; for sessionID "" (a
	// receiver waiting to accept the next available session), the
	// earliest time a message is or becomes deliverable in a session no
	// one holds, or a held session's lock ends.
	NextSessionEvent(ctx context.Context, queueID, sessionID string) (at time.Time, ok bool, err error)
	// ListQueueSessions returns, in session id order from skip, up to top
	// sessions of the queue proper: when updatedAfter is zero, those with
	// messages that are not dead-lettered and those with a state set;
	// otherwise those whose state was set after updatedAfter (Service
	// Bus's get-message-sessions).
	ListQueueSessions(ctx context.Context, queueID string, updatedAfter time.Time, skip, top int) ([]string, error)
	// PruneDuplicateIDs deletes the duplicate detection entries that have
	// expired by now and returns how many. It also forgets the sessions
	// whose lock has lapsed and that have no state (nothing to keep).
	PruneDuplicateIDs(ctx context.Context, now time.Time) (int64, error)
}

// QueueSweepLimit bounds how many expired or over-delivered messages one
// Lock or ReceiveAndDelete op moves or drops before it gives up.
const QueueSweepLimit = 64
