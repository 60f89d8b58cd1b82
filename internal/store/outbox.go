package store

import (
	"context"
	"time"
)

// OutboxState is where an outbox message is in its life.
type OutboxState string

// The outbox states.
const (
	OutboxPending   OutboxState = "pending"   // waiting for its (next) attempt
	OutboxDelivered OutboxState = "delivered" // the endpoint answered 2xx
	OutboxFailed    OutboxState = "failed"    // its deadline passed without a delivery, or the endpoint refused it for good
)

// OutboxMessage is an HTTP POST that must reach an endpoint outside
// tenantbridge at least once: a managed application's lifecycle
// notification to its publisher. It is written in the same transaction as
// the change it reports, so a committed change always has its message and
// a rolled-back one never does; a deliverer sends it afterwards, retrying
// until it is delivered or its deadline passes.
type OutboxMessage struct {
	ID       string // GUID, set by the caller
	TenantID string // the tenant that reads the delivery log (the publisher's); the message goes with it
	// Topic groups messages for reading (e.g. the application definition's
	// resource id); Key orders them: a tenant's messages with one Key are
	// delivered one at a time in Seq order (e.g. one managed application's
	// events). An empty Key orders the message with no other: the store
	// sets it to ID.
	Topic       string
	Key         string
	Seq         int64 // assigned by the store, increasing
	URL         string
	ContentType string
	Body        []byte
	// AuthRef is an opaque reference that the deliverer resolves, at send
	// time, into the request's Authorization header (outbox.Config's
	// Authorize): the secret itself is never stored with the message.
	// Empty: no Authorization header.
	AuthRef     string
	Created     time.Time
	NextAttempt time.Time // not before; while a deliverer holds the message (DueOutbox), when its claim runs out
	Deadline    time.Time // no attempt after; zero: the deliverer's default age limit applies
	Attempts    int
	State       OutboxState
	LastStatus  int    // the last attempt's HTTP status; 0 when it got none
	LastError   string // the last attempt's failure, without secrets
	DeliveredAt time.Time
}

// OutboxAttempt is one try at delivering a message, for the delivery log.
type OutboxAttempt struct {
	MessageID string
	At        time.Time
	Status    int    // HTTP status; 0 when none was received
	Error     string // why it failed; empty on success
	Duration  time.Duration
}

// OutboxQuery selects messages of one tenant, newest first. Empty fields
// do not filter; Limit 0 means a default of 100.
type OutboxQuery struct {
	TenantID string // required
	Topic    string
	Key      string
	Limit    int
}

// Outbox stores the messages to deliver and their delivery log.
type Outbox interface {
	// EnqueueOutbox stores a new pending message and returns it with Seq
	// and Created set; NextAttempt defaults to now. Use it on the Store
	// of the transaction that makes the change it reports. ErrNotFound
	// when the tenant does not exist.
	EnqueueOutbox(ctx context.Context, m OutboxMessage) (OutboxMessage, error)
	// DueOutbox returns up to limit pending messages whose NextAttempt is
	// at or before now and which are the oldest pending message of their
	// Key (so one key's messages go in order), oldest first.
	//
	// It claims what it returns: in the same atomic step it moves their
	// NextAttempt to now + a lease of two minutes, longer than any
	// attempt may take, and returns them so. Until the attempt is
	// recorded or the lease runs out, no DueOutbox (in this process or
	// another sharing the database) returns them, nor the next message of
	// their Key; so a message is never delivered by two deliverers at
	// once, and one whose deliverer died mid-attempt is due again when
	// the lease ends.
	DueOutbox(ctx context.Context, now time.Time, limit int) ([]OutboxMessage, error)
	// RecordOutboxAttempt logs an attempt and moves the message: to
	// delivered, to failed, or pending again with next as NextAttempt.
	// It counts the attempt in Attempts and keeps its Status and Error
	// as LastStatus and LastError. A zero a.At means now.
	// ErrNotFound when the message does not exist or is no longer pending;
	// then nothing is logged.
	RecordOutboxAttempt(ctx context.Context, a OutboxAttempt, state OutboxState, next time.Time) error
	// NextOutboxDue is the earliest NextAttempt of a message that
	// DueOutbox could return: the oldest pending message of each Key.
	// The bool is false when nothing is pending.
	NextOutboxDue(ctx context.Context) (time.Time, bool, error)
	// OutboxBacklog counts the pending messages of every tenant and
	// returns the Created time of the oldest (zero when none is pending):
	// what an operator watches to see deliveries fall behind.
	OutboxBacklog(ctx context.Context) (pending int64, oldest time.Time, err error)
	// ListOutbox reads a tenant's messages, newest first: the delivery
	// log's summary.
	ListOutbox(ctx context.Context, q OutboxQuery) ([]OutboxMessage, error)
	// ListOutboxAttempts reads a message's attempts, oldest first; none
	// for an unknown message.
	ListOutboxAttempts(ctx context.Context, messageID string) ([]OutboxAttempt, error)
}
