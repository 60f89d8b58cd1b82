package store

import (
	"context"
	"errors"
	"time"
)

// Errors of the user sign-in tokens (RefreshTokens, DeviceCodes).
var (
	// ErrRefreshTokenReused means a refresh token that had already been
	// redeemed was presented again: someone holds a copy of it, so its
	// whole family is now revoked.
	ErrRefreshTokenReused = errors.New("store: refresh token already redeemed")
	// ErrRevoked means the refresh token was revoked (by an administrator,
	// by a revocation of its client or user, or by reuse detection).
	ErrRevoked = errors.New("store: revoked")
	// ErrExpired means the token or code has expired.
	ErrExpired = errors.New("store: expired")
)

// RefreshToken is the stored record of a refresh token. The token's value
// is never stored, only its ID, the SHA-256 of the value in lower-case hex,
// so a copy of the database redeems nothing.
//
// Refresh tokens rotate: each redemption spends the token and issues the
// next one of its family. A spent token presented again means the token
// leaked (the legitimate client would present the newest one), so the
// whole family is revoked, the newest token included.
type RefreshToken struct {
	ID       string // hex SHA-256 of the token value; compared exactly
	FamilyID string // every token rotated from one sign-in shares it
	TenantID string
	ClientID string // the client application's appId
	UserID   string // the user's object id
	Scope    string // the consented scopes, space-separated, as granted at sign-in
	AuthTime time.Time
	AMR      []string // authentication methods ("pwd", "mfa"); nil when none
	Created  time.Time
	// Expires is the inactivity expiry: a redemption issues the next token
	// with a new Expires.
	Expires    time.Time
	RedeemedAt time.Time // zero until redeemed
	RevokedAt  time.Time // zero unless revoked
}

// RefreshTokenQuery selects refresh tokens of one tenant. TenantID is
// required; empty other fields do not filter.
type RefreshTokenQuery struct {
	TenantID string
	ClientID string
	UserID   string
	FamilyID string
}

// RefreshTokens stores refresh tokens. Their writes do not move the
// generation: nothing caches them.
type RefreshTokens interface {
	// CreateRefreshToken stores a new token, typically the first of a
	// family. It fails with ErrConflict on a duplicate ID and with
	// ErrNotFound when the tenant does not exist. A zero Created is set
	// to the store's clock; Expires is required. Deleting the tenant
	// deletes its tokens.
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// RedeemRefreshToken spends the token id at now and stores next, the
	// token that replaces it, in one transaction, and returns the
	// redeemed record (RedeemedAt set). next needs a new ID and an
	// Expires; its FamilyID, TenantID, ClientID, UserID, Scope, AuthTime
	// and AMR are taken from the redeemed token where empty, and must
	// match it where they are identity (FamilyID, TenantID, ClientID,
	// UserID); a zero Created is now. A next that is refused (a plain
	// error, or ErrConflict on a taken ID) leaves the token unredeemed.
	//
	// If the token had already been redeemed, every token of its family
	// is revoked (RevokedAt=now), nothing else changes, and the error is
	// ErrRefreshTokenReused. Otherwise a revoked token fails with
	// ErrRevoked, an expired one (Expires at or before now) with
	// ErrExpired, an unknown one with ErrNotFound, and none of them
	// changes anything. Of concurrent redemptions of one token exactly
	// one succeeds; the others are reuse, and revoke the family.
	//
	// Inside InTx, the revocation of a reused family is part of the
	// caller's transaction: a caller that rolls back on
	// ErrRefreshTokenReused undoes it, so it should commit instead.
	RedeemRefreshToken(ctx context.Context, id string, now time.Time, next RefreshToken) (RefreshToken, error)
	// RevokeRefreshTokens marks the matching tokens that are not yet
	// revoked as revoked at now and returns how many. A token that a
	// concurrent redemption issues from a matching one is revoked too.
	RevokeRefreshTokens(ctx context.Context, q RefreshTokenQuery, now time.Time) (int64, error)
	// ListRefreshTokens lists the matching tokens, ordered by Created
	// (then ID), for administration and tests.
	ListRefreshTokens(ctx context.Context, q RefreshTokenQuery) ([]RefreshToken, error)
	// PruneRefreshTokens deletes the tokens that expired, were redeemed
	// or were revoked more than a day before now, and returns how many.
	// The day keeps spent tokens long enough for reuse detection to catch
	// a copy replayed soon after; after it, a replay is merely unknown.
	PruneRefreshTokens(ctx context.Context, now time.Time) (int64, error)
}

// DeviceCodeState is where a device-code sign-in stands.
type DeviceCodeState string

// The device code states. A code starts pending; the signing-in user
// approves or denies it; the first poll after approval redeems it.
const (
	DeviceCodePending  DeviceCodeState = "pending"
	DeviceCodeApproved DeviceCodeState = "approved"
	DeviceCodeDenied   DeviceCodeState = "denied"
	DeviceCodeRedeemed DeviceCodeState = "redeemed"
)

// DeviceCode is a pending device-code sign-in (RFC 8628): the device polls
// with the device code, whose SHA-256 is the ID, while the user enters
// UserCode on the sign-in page.
type DeviceCode struct {
	ID string // hex SHA-256 of the device_code value; compared exactly
	// UserCode is the code as shown, e.g. "F3KQ-9TZM". It is looked up
	// case-insensitively, ignoring '-' and spaces, and is unique among
	// the stored codes (until pruned).
	UserCode string
	// TenantID is the tenant of the authorize request ("common" and
	// "organizations" resolved before storing), or empty when the
	// signing-in user decides it: then approval sets it to the user's
	// tenant. When set, the tenant must exist, and deleting it deletes
	// the code.
	TenantID string
	ClientID string
	Scope    string
	Created  time.Time
	Expires  time.Time
	Interval int // seconds the device must wait between polls
	State    DeviceCodeState
	// Set by approval (UserID and ApprovedTenantID also by a denial that
	// names the user).
	UserID           string
	ApprovedTenantID string // the user's tenant
	AuthTime         time.Time
	AMR              []string
	// LastPoll is when the device last polled; zero before the first poll.
	LastPoll time.Time
}

// DeviceCodes stores device-code sign-ins. Their writes do not move the
// generation: nothing caches them.
type DeviceCodes interface {
	// CreateDeviceCode stores a new pending code. It fails with
	// ErrConflict when the ID or the user code (as looked up) is taken,
	// and with ErrNotFound when TenantID names no tenant. The code is
	// stored pending and undecided (State, the approval fields and
	// LastPoll are ignored); a zero Created is set to the store's clock;
	// Expires is required.
	CreateDeviceCode(ctx context.Context, d DeviceCode) error
	// DeviceCodeByUserCode finds a pending code by its user code. It
	// fails with ErrExpired when the code is pending but expired (Expires
	// at or before now), and with ErrNotFound when there is no such code
	// or it has been decided.
	DeviceCodeByUserCode(ctx context.Context, userCode string, now time.Time) (DeviceCode, error)
	// DecideDeviceCode approves or denies a pending, unexpired code on
	// behalf of the signed-in user userID of tenantID; approval requires
	// both. It fails like DeviceCodeByUserCode, and with ErrNotFound when
	// approval names a tenant that does not exist. Of concurrent
	// decisions on one code exactly one succeeds. Whether this user may
	// approve for the code's tenant is the caller's decision.
	DecideDeviceCode(ctx context.Context, userCode string, now time.Time, approve bool, userID, tenantID string, authTime time.Time, amr []string) error
	// PollDeviceCode records a poll by the device at now and returns the
	// record as it was before this poll: LastPoll is the previous poll
	// (zero on the first), for slow_down, and State is what this poll
	// found. An approved code is atomically moved to redeemed, so that
	// exactly one poll finds it approved and gets tokens; later polls find
	// it redeemed. It fails with ErrExpired once the code has expired
	// (whatever its state; nothing is recorded) and with ErrNotFound for
	// an unknown code.
	PollDeviceCode(ctx context.Context, id string, now time.Time) (DeviceCode, error)
	// PruneDeviceCodes deletes the codes that expired at or before now,
	// whatever their state, and returns how many.
	PruneDeviceCodes(ctx context.Context, now time.Time) (int64, error)
}
