package directory

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// A managed identity is a service principal of type ManagedIdentity with no
// application object behind it: Azure creates and rotates its credentials,
// and a workload proves it runs as the identity through the identity
// endpoint, never with a secret of its own. A user-assigned identity is a
// resource of its own; a system-assigned one lives and dies with the
// resource it belongs to.

// DefaultIdentityResourceGroup holds identities created without one.
const DefaultIdentityResourceGroup = "identities"

// resourceName is what Azure allows for a resource group or identity name.
var resourceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._()-]{0,89}$`)

// UserAssignedIdentityID is the resource id of a user-assigned identity, in ARM's canonical case.
func UserAssignedIdentityID(subscriptionID, resourceGroup, name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ManagedIdentity/userAssignedIdentities/%s",
		subscriptionID, resourceGroup, name)
}

// CreateUserAssignedIdentity creates a user-assigned managed identity in the
// tenant's default subscription. Its client id (appId) and principal id
// (object id) are what workloads and role assignments name it by.
func (s *Service) CreateUserAssignedIdentity(ctx context.Context, tenantID, resourceGroup, name string) (*ServicePrincipal, error) {
	if resourceGroup == "" {
		resourceGroup = DefaultIdentityResourceGroup
	}
	if !resourceName.MatchString(name) || !resourceName.MatchString(resourceGroup) || strings.HasSuffix(name, ".") {
		return nil, invalidf("Identity and resource group names are 1 to 90 letters, digits, '.', '_', '-', '(' or ')', not ending in '.'.")
	}
	t, err := s.st.GetTenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	return s.createManagedIdentity(ctx, tenantID, name, UserAssignedIdentityID(t.SubscriptionID, resourceGroup, name), true)
}

// CreateSystemAssignedIdentity creates the system-assigned identity of the
// resource with the given id and display name.
func (s *Service) CreateSystemAssignedIdentity(ctx context.Context, tenantID, resourceID, displayName string) (*ServicePrincipal, error) {
	if !strings.HasPrefix(resourceID, "/") {
		return nil, invalidf("A system-assigned identity needs the resource id of its resource.")
	}
	return s.createManagedIdentity(ctx, tenantID, displayName, resourceID, false)
}

func (s *Service) createManagedIdentity(ctx context.Context, tenantID, name, resourceID string, userAssigned bool) (*ServicePrincipal, error) {
	explicit := "isExplicit=False"
	if userAssigned {
		explicit = "isExplicit=True"
	}
	clientID := newID()
	sp := &ServicePrincipal{
		ID:                     newID(),
		AppID:                  clientID,
		AppDisplayName:         name,
		DisplayName:            name,
		AppOwnerOrganizationID: tenantID,
		ServicePrincipalType:   SPTypeManagedIdentity,
		ServicePrincipalNames:  []string{clientID, "https://identity.azure.net/" + newID()},
		AlternativeNames:       []string{explicit, resourceID},
		AccountEnabled:         true,
		CreatedDateTime:        s.Now(),
	}
	if err := create(ctx, s.st, tenantID, sp); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, conflictf("A managed identity for %s already exists", resourceID)
		}
		return nil, err
	}
	return sp, nil
}

// ManagedIdentityByResourceID finds a managed identity by its resource id
// (compared case-insensitively, as ARM ids are).
func (s *Service) ManagedIdentityByResourceID(ctx context.Context, tenantID, resourceID string) (*ServicePrincipal, error) {
	sps, err := list[ServicePrincipal](ctx, s.st, store.ObjectQuery{TenantID: tenantID, Kind: store.KindServicePrincipal, Name: resourceID, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(sps) == 0 || !sps[0].IsManagedIdentity() {
		return nil, ErrNotFound
	}
	return sps[0], nil
}

// ManagedIdentity finds a managed identity of the tenant by object id,
// client id, resource id or (for user-assigned ones) name.
func (s *Service) ManagedIdentity(ctx context.Context, tenantID, ref string) (*ServicePrincipal, error) {
	if strings.HasPrefix(ref, "/") {
		return s.ManagedIdentityByResourceID(ctx, tenantID, ref)
	}
	if sp, err := s.GetServicePrincipal(ctx, tenantID, ref); err == nil && sp.IsManagedIdentity() {
		return sp, nil
	}
	if sp, err := s.ServicePrincipalByAppID(ctx, tenantID, ref); err == nil && sp.IsManagedIdentity() {
		return sp, nil
	}
	all, err := s.ListManagedIdentities(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	var found *ServicePrincipal
	for _, sp := range all {
		if sp.IsUserAssigned() && strings.EqualFold(sp.DisplayName, ref) {
			if found != nil {
				return nil, invalidf("More than one identity is named %q; name it by client id or resource id.", ref)
			}
			found = sp
		}
	}
	if found == nil {
		return nil, ErrNotFound
	}
	return found, nil
}

// ListManagedIdentities lists the tenant's managed identities.
func (s *Service) ListManagedIdentities(ctx context.Context, tenantID string) ([]*ServicePrincipal, error) {
	var out []*ServicePrincipal
	after := ""
	for {
		page, err := list[ServicePrincipal](ctx, s.st, store.ObjectQuery{TenantID: tenantID, Kind: store.KindServicePrincipal, After: after, Limit: 500})
		if err != nil {
			return nil, err
		}
		for _, sp := range page {
			if sp.IsManagedIdentity() {
				out = append(out, sp)
			}
		}
		if len(page) < 500 {
			return out, nil
		}
		after = page[len(page)-1].ID
	}
}

// DeleteManagedIdentity deletes a managed identity: its role assignments go
// with it, and workloads can no longer get tokens as it.
func (s *Service) DeleteManagedIdentity(ctx context.Context, tenantID, id string) error {
	sp, err := s.GetServicePrincipal(ctx, tenantID, id)
	if err != nil {
		return err
	}
	if !sp.IsManagedIdentity() {
		return ErrNotFound
	}
	return s.st.DeleteObject(ctx, tenantID, store.KindServicePrincipal, id)
}

// updateUserAssignedIdentity changes a user-assigned identity's federated credentials.
func (s *Service) updateUserAssignedIdentity(ctx context.Context, tenantID, id string, mutate func(*ServicePrincipal) error) (*ServicePrincipal, error) {
	return update[ServicePrincipal](ctx, s.st, tenantID, store.KindServicePrincipal, id, func(sp *ServicePrincipal) error {
		if !sp.IsManagedIdentity() || !sp.IsUserAssigned() {
			return invalidf("Federated identity credentials can be added only to user-assigned managed identities.")
		}
		return mutate(sp)
	})
}

// AddIdentityFederatedCredential adds a federated identity credential to a user-assigned identity.
func (s *Service) AddIdentityFederatedCredential(ctx context.Context, tenantID, id string, f FederatedIdentityCredential) (FederatedIdentityCredential, error) {
	f.ID = newID()
	if err := validateFederatedCredential(&f); err != nil {
		return f, err
	}
	_, err := s.updateUserAssignedIdentity(ctx, tenantID, id, func(sp *ServicePrincipal) error {
		return addFederated(&sp.FederatedCredentials, f)
	})
	return f, err
}

// RemoveIdentityFederatedCredential deletes a user-assigned identity's federated credential by name or id.
func (s *Service) RemoveIdentityFederatedCredential(ctx context.Context, tenantID, id, ref string) error {
	_, err := s.updateUserAssignedIdentity(ctx, tenantID, id, func(sp *ServicePrincipal) error {
		return removeFederated(&sp.FederatedCredentials, ref)
	})
	return err
}
