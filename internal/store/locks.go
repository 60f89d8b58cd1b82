package store

import (
	"context"
	"time"
)

// ManagementLock is a Resource Manager management lock
// (Microsoft.Authorization/locks) at a subscription, a resource group or a
// resource: while it exists, the front door refuses deletes (CanNotDelete)
// or every write (ReadOnly) at its scope and below it.
type ManagementLock struct {
	TenantID       string // the tenant that owns the subscription
	SubscriptionID string
	// Scope is the locked scope's id as given at creation
	// (/subscriptions/{s}[/resourceGroups/{rg}[/providers/…]]); it is
	// matched case-insensitively.
	Scope string
	// Name is the lock's name, unique per scope case-insensitively.
	Name  string
	Level string // CanNotDelete or ReadOnly
	Notes string
	// Owners are the application ids of the lock's owners, as given.
	Owners  []string
	Created time.Time
	Updated time.Time
}

// ManagementLocks stores management locks. Nothing caches them (the door
// reads them at each write), so their writes do not move the generation.
type ManagementLocks interface {
	// PutManagementLock creates the lock or replaces the Level, Notes,
	// Owners and Updated of the one of its scope and name
	// (case-insensitively), keeping the first spelling and Created.
	// ErrNotFound when the tenant does not exist.
	PutManagementLock(ctx context.Context, l ManagementLock) error
	// GetManagementLock fails with ErrNotFound when the scope has no lock
	// of that name.
	GetManagementLock(ctx context.Context, scope, name string) (ManagementLock, error)
	// DeleteManagementLock fails with ErrNotFound when there is no such lock.
	DeleteManagementLock(ctx context.Context, scope, name string) error
	// ListManagementLocks lists the subscription's locks at every scope,
	// ordered by scope and then name, case-insensitively.
	ListManagementLocks(ctx context.Context, subscriptionID string) ([]ManagementLock, error)
}
