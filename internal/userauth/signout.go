package userauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/gencache"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// ID identifies the session for sign-out: a hash of its anti-forgery
// token, which is random per session and never leaves the browser's
// cookie and forms. The hash, not the token, is what the store records.
func (s Session) ID() string {
	sum := sha256.Sum256([]byte("browser session|" + s.CSRF))
	return hex.EncodeToString(sum[:16])
}

// maxCachedSignOuts bounds the answers a SignOuts keeps per generation.
const maxCachedSignOuts = 10_000

// SignOuts tells which sessions were signed out before their cookies
// expire. The store holds them (store.SignedOutSessions), so a sign-out
// on one server counts on every server sharing the store; answers are
// cached per store generation, which a sign-out anywhere moves, so the
// common case (a session not signed out, asked again and again) costs no
// database read. It is safe for concurrent use.
type SignOuts struct {
	st    store.Store
	cache *gencache.Cache[string, bool]
}

// NewSignOuts returns the sign-outs of st.
func NewSignOuts(st store.Store) *SignOuts {
	return &SignOuts{st: st, cache: gencache.New[string, bool](st, maxCachedSignOuts)}
}

// SignOut records that session id is signed out until expires, when its
// cookie would have expired anyway.
func (s *SignOuts) SignOut(ctx context.Context, id string, expires, now time.Time) error {
	return s.st.SignOutSession(ctx, id, expires, now)
}

// SignedOut reports whether session id is signed out. An error means the
// store could not say: callers refuse the session (fail closed).
func (s *SignOuts) SignedOut(ctx context.Context, id string, now time.Time) (bool, error) {
	return s.cache.Get(id, func() (bool, error) { return s.st.SessionSignedOut(ctx, id, now) })
}
