package store

import (
	"context"
	"time"
)

// ProviderRegistration is the registrationState of a resource provider's
// namespace in one subscription, as the providers' register and
// unregister operations leave it. A namespace with no record has the
// state Resource Manager gives it by default.
type ProviderRegistration struct {
	TenantID       string
	SubscriptionID string
	// Namespace is the provider's namespace as Azure spells it
	// (Microsoft.KeyVault); it is matched case-insensitively.
	Namespace string
	// State is Registered or NotRegistered.
	State   string
	Updated time.Time
}

// ProviderRegistrations stores provider registrations. Nothing caches
// them, so their writes do not move the generation.
type ProviderRegistrations interface {
	// PutProviderRegistration creates the record or replaces the State
	// and Updated of the one of its subscription and namespace
	// (case-insensitively), keeping the namespace's first spelling.
	// ErrNotFound when the tenant does not exist.
	PutProviderRegistration(ctx context.Context, r ProviderRegistration) error
	// GetProviderRegistration fails with ErrNotFound when the namespace
	// has no record in the subscription.
	GetProviderRegistration(ctx context.Context, subscriptionID, namespace string) (ProviderRegistration, error)
	// ListProviderRegistrations lists the subscription's records, ordered
	// by namespace case-insensitively.
	ListProviderRegistrations(ctx context.Context, subscriptionID string) ([]ProviderRegistration, error)
}
