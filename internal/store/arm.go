package store

import (
	"context"
	"time"
)

// ResourceGroup is an Azure Resource Manager resource group of a tenant's
// subscription. Its name is unique per subscription, case-insensitively.
type ResourceGroup struct {
	TenantID       string // the tenant that owns the subscription
	SubscriptionID string
	Name           string // as given at creation
	Location       string
	Tags           map[string]string
	Created        time.Time
	Updated        time.Time
}

// Resource is one ARM resource inside a resource group, of any type
// (Microsoft.KeyVault/vaults, Microsoft.ServiceBus/namespaces/queues,
// Microsoft.ManagedIdentity/userAssignedIdentities, …): the generic record
// later resource providers keep their state in.
type Resource struct {
	TenantID       string
	SubscriptionID string
	ResourceGroup  string // the resource group's name, any case
	// ID is the canonical resource id
	// (/subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/…]);
	// it is unique case-insensitively.
	ID         string
	Type       string // e.g. Microsoft.ServiceBus/namespaces/queues
	Name       string // the last segment
	Location   string
	Tags       map[string]string
	Properties []byte // JSON; empty means {}
	Created    time.Time
	Updated    time.Time
}

// ResourceQuery selects resources of one subscription, ordered by id
// (case-insensitively). Empty fields do not filter.
type ResourceQuery struct {
	SubscriptionID string // required
	ResourceGroup  string // case-insensitive
	Type           string // case-insensitive
	// IDPrefix selects the resource with this id and those below it
	// (its child resources), case-insensitively, on whole segments.
	IDPrefix string
}

// ARM stores resource groups and generic resources. A resource group
// belongs to a tenant and goes with it; a resource belongs to a resource
// group and goes with it.
type ARM interface {
	// CreateResourceGroup fails with ErrConflict when the subscription
	// already has a group of that name (in any case), ErrNotFound when the
	// tenant does not exist.
	CreateResourceGroup(ctx context.Context, g ResourceGroup) error
	// UpdateResourceGroup replaces Location and Tags and sets Updated.
	UpdateResourceGroup(ctx context.Context, g ResourceGroup) error
	GetResourceGroup(ctx context.Context, subscriptionID, name string) (ResourceGroup, error)
	// ListResourceGroups lists a subscription's groups ordered by name,
	// case-insensitively.
	ListResourceGroups(ctx context.Context, subscriptionID string) ([]ResourceGroup, error)
	// DeleteResourceGroup removes the group, its resources, and the role
	// and deny assignments of the owning tenant at the group's scope or
	// below it.
	DeleteResourceGroup(ctx context.Context, subscriptionID, name string) error

	// CreateResource fails with ErrConflict when the id is taken (in any
	// case), ErrNotFound when the resource group does not exist.
	CreateResource(ctx context.Context, r Resource) error
	// UpdateResource replaces Location, Tags and Properties and sets Updated.
	UpdateResource(ctx context.Context, r Resource) error
	GetResource(ctx context.Context, id string) (Resource, error)
	ListResources(ctx context.Context, q ResourceQuery) ([]Resource, error)
	// DeleteResource removes the resource, the resources below it (ids
	// that extend its id by whole segments) and the owning tenant's role
	// and deny assignments at its scope or below it.
	DeleteResource(ctx context.Context, id string) error
	// ResourcesNamed lists the resources of type typ whose name is name
	// (both case-insensitively), in every subscription of every tenant,
	// ordered by id: how a data plane finds the globally named resource
	// (a Service Bus namespace) its host name names.
	ResourcesNamed(ctx context.Context, typ, name string) ([]Resource, error)
}
