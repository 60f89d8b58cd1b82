package store

import (
	"context"
	"time"
)

// SignedOutSessions remembers browser sessions signed out before their
// sealed cookies expire, so that every server sharing the store refuses
// a cookie copied before the sign-out (the sign-in pages' session and the
// console's). An entry lasts until the cookie would have expired anyway;
// after that the cookie is refused for its expiry and the entry is
// deleted, which keeps the table as small as the sign-outs of one
// session lifetime. Writes move the generation, so readers may cache
// the answer per generation.
type SignedOutSessions interface {
	// SignOutSession records that the session id is signed out until
	// expires, and deletes the entries whose expiry is at or before now,
	// in one transaction. Recording an id again keeps the later expiry.
	SignOutSession(ctx context.Context, id string, expires, now time.Time) error
	// SessionSignedOut reports whether id is recorded with an expiry
	// after now.
	SessionSignedOut(ctx context.Context, id string, now time.Time) (bool, error)
}
