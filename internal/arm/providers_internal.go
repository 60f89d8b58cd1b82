package arm

import (
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// ownProviders are the providers still served from this package.
func (h *Handler) ownProviders() []*rp.Provider {
	return []*rp.Provider{
		{Namespace: "Microsoft.KeyVault", Types: []rp.ResourceType{{Name: "vaults", Listed: true}},
			Parse: vaultPath, Serve: h.vaults,
			DeleteGroup: func(rq *rp.Request, tx store.Store, _ *directory.Service, g store.ResourceGroup) error {
				return deleteGroupVaults(rq, tx, g)
			}},
		{Namespace: identityNamespace, Types: []rp.ResourceType{{Name: "userAssignedIdentities", Listed: true}, {Name: "userAssignedIdentities/federatedIdentityCredentials"}},
			Parse: identityPath, Serve: h.identities,
			DeleteGroup: func(rq *rp.Request, _ store.Store, dir *directory.Service, g store.ResourceGroup) error {
				return deleteGroupIdentities(rq, dir, g)
			},
			Unrecorded: unrecordedIdentities},
		{Namespace: sbNamespace, Types: []rp.ResourceType{
			{Name: "namespaces", Listed: true, View: func(res store.Resource) (any, error) { return namespaceViewOf(res) }},
			{Name: "namespaces/queues"}, {Name: "namespaces/authorizationRules"}, {Name: "namespaces/queues/authorizationRules"}},
			Parse: serviceBusPath, Serve: h.serviceBus},
		{Namespace: solutionsNamespace, Types: []rp.ResourceType{
			{Name: "applicationDefinitions", Listed: true},
			{Name: "applications", Listed: true, View: func(res store.Resource) (any, error) { return appViewOf(res) }}},
			Parse: func(segs []string) (rp.Path, bool, error) {
				if ap, ok, err := appDefinitionPath(segs); ok {
					return ap, ok, err
				}
				return applicationPath(segs)
			},
			Serve: h.solutions, GroupManagers: applicationGroups},
	}
}

// unrecordedIdentities are the tenant's user-assigned identities without a
// generic record (those made through the operator API).
func unrecordedIdentities(rq *rp.Request, tenantID string) ([]store.Resource, error) {
	sps, err := rq.Directory().ListManagedIdentities(rq.Ctx, tenantID)
	if err != nil {
		return nil, rp.InternalError(err)
	}
	var out []store.Resource
	for _, sp := range sps {
		if !sp.IsUserAssigned() {
			continue
		}
		id := sp.ManagedIdentityResourceID()
		if _, err := rq.Store().GetResource(rq.Ctx, id); err == nil {
			continue
		}
		segs := strings.Split(strings.TrimPrefix(id, "/"), "/")
		out = append(out, store.Resource{TenantID: tenantID, SubscriptionID: segs[1], ResourceGroup: rp.ResourceGroupOf(segs), ID: id,
			Name: identityName(sp), Type: identityType, Created: sp.CreatedDateTime, Updated: sp.CreatedDateTime})
	}
	return out, nil
}
