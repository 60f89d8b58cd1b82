package rp

import (
	"net/http"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Provider is a resource provider: a namespace (Microsoft.KeyVault) and
// the resource types it serves, registered with the front door.
type Provider struct {
	// Namespace is the provider's namespace as Azure spells it.
	Namespace string
	// Types are its resource types, as GET /providers/{namespace} lists
	// them and as the door checks each request's api-version against.
	Types []ResourceType
	// Parse recognises the provider's paths (segments of the path without
	// its leading slash): ok false for a path that is not the provider's;
	// an error for one that is but is not a valid resource id.
	Parse func(segs []string) (p Path, ok bool, err error)
	// Serve answers a request whose path Parse recognised, once the door
	// has authenticated it and checked its api-version.
	Serve func(rq *Request) error

	// DeleteGroup, if set, deletes inside tx what the provider keeps of
	// group g outside the generic records, when the group is deleted
	// (or a managed application's managed resource group with it).
	DeleteGroup func(rq *Request, tx store.Store, dir *directory.Service, g store.ResourceGroup) error
	// GroupManagers, if set, maps the lower-cased ids of the resource
	// groups of the subscription that a resource of the provider manages
	// to that resource's id: a resource group's managedBy.
	GroupManagers func(rq *Request, subscriptionID string) (map[string]string, error)
	// Unrecorded, if set, lists the tenant's tracked resources of the
	// provider that have no generic record (user-assigned identities made
	// through the operator API), for Resources - List.
	Unrecorded func(rq *Request, tenantID string) ([]store.Resource, error)
}

// ResourceType is one resource type of a provider.
type ResourceType struct {
	// Name is the type below the namespace: "vaults", "namespaces/queues".
	Name string
	// APIVersions are the api-versions the type takes, newest first: every
	// version the current Azure SDKs and the az CLI send. A request with
	// another is refused, as Azure refuses it.
	APIVersions []string
	// Locations are where the type may be created (display names, as the
	// provider registry lists them); empty for a type without a location
	// of its own (a child such as queues, or a proxy resource).
	Locations []string
	// Capabilities is the registry's capabilities string
	// ("SupportsTags, SupportsLocation"), empty for none.
	Capabilities string
	// Listed marks a tracked type that Resources - List returns.
	Listed bool
	// View, if set, is the type's own view of a record, whose kind, sku,
	// plan, identity and managedBy Resources - List shows.
	View func(store.Resource) (any, error)
}

// TypeHandlers are the operations on one resource type. Patch is nil for
// a type whose REST spec has no Update operation (PATCH is then refused
// with 405, as for any method the type does not have).
type TypeHandlers struct {
	List, Get, Put, Patch, Delete func(*Request) error
}

// ServeType routes by method: a collection answers GET with the list; one
// resource answers GET or HEAD, PUT, PATCH (if the type has it) and
// DELETE.
func ServeType(rq *Request, collection bool, ops TypeHandlers) error {
	m := rq.R.Method
	if collection {
		return Only(rq, http.MethodGet, ops.List)
	}
	switch m {
	case http.MethodGet, http.MethodHead:
		return ops.Get(rq)
	case http.MethodPut:
		return ops.Put(rq)
	case http.MethodDelete:
		return ops.Delete(rq)
	case http.MethodPatch:
		if ops.Patch != nil {
			return ops.Patch(rq)
		}
	}
	return MethodNotAllowed(m)
}

// Only serves fn for the method want and refuses every other.
func Only(rq *Request, want string, fn func(*Request) error) error {
	if rq.R.Method != want {
		return MethodNotAllowed(rq.R.Method)
	}
	return fn(rq)
}

// Type is the provider's resource type of that name (any letter case),
// or nil.
func (p *Provider) Type(name string) *ResourceType {
	for i := range p.Types {
		if strings.EqualFold(p.Types[i].Name, name) {
			return &p.Types[i]
		}
	}
	return nil
}
