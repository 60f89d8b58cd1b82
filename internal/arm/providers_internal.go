package arm

import (
	"errors"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// ownProviders are the providers still served from this package.
func (h *Handler) ownProviders() []*rp.Provider {
	all := rp.AllRegions()
	return []*rp.Provider{
		{Namespace: "Microsoft.KeyVault", Types: []rp.ResourceType{{Name: "vaults", Listed: true, APIVersions: keyVaultVersions, Locations: all, Capabilities: trackedCapabilities},
			{Name: "checkNameAvailability", APIVersions: keyVaultVersions}},
			Parse: vaultPath, Serve: h.vaults,
			DeleteGroup: func(rq *rp.Request, tx store.Store, _ *directory.Service, g store.ResourceGroup) error {
				return deleteGroupVaults(rq, tx, g)
			}},
		{Namespace: identityNamespace, Types: []rp.ResourceType{
			{Name: "userAssignedIdentities", Listed: true, APIVersions: identityVersions, Locations: all, Capabilities: trackedCapabilities},
			{Name: "userAssignedIdentities/federatedIdentityCredentials", APIVersions: ficVersions}},
			Parse: identityPath, Serve: h.identities,
			DeleteGroup: func(rq *rp.Request, _ store.Store, dir *directory.Service, g store.ResourceGroup) error {
				return deleteGroupIdentities(rq, dir, g)
			},
			Unrecorded: unrecordedIdentities},
		{Namespace: sbNamespace, Types: []rp.ResourceType{
			{Name: "namespaces", Listed: true, View: func(res store.Resource) (any, error) { return namespaceViewOf(res) },
				APIVersions: serviceBusVersions, Locations: all, Capabilities: trackedCapabilities},
			{Name: "namespaces/queues", APIVersions: serviceBusVersions},
			{Name: "namespaces/authorizationRules", APIVersions: serviceBusVersions},
			{Name: "namespaces/queues/authorizationRules", APIVersions: serviceBusVersions},
			{Name: "checkNameAvailability", APIVersions: serviceBusVersions}},
			Parse: serviceBusPath, Serve: h.serviceBus},
		{Namespace: solutionsNamespace, Types: []rp.ResourceType{
			{Name: "applicationDefinitions", Listed: true, APIVersions: solutionsVersions, Locations: all, Capabilities: trackedCapabilities},
			{Name: "applications", Listed: true, View: func(res store.Resource) (any, error) { return appViewOf(res) },
				APIVersions: solutionsVersions, Locations: all, Capabilities: trackedCapabilities}},
			Parse: func(segs []string) (rp.Path, bool, error) {
				if ap, ok, err := appDefinitionPath(segs); ok {
					return ap, ok, err
				}
				return applicationPath(segs)
			},
			Serve: h.solutions, GroupManagers: applicationGroups},
	}
}

// trackedCapabilities are what the registry says of a tracked type that
// tenantbridge serves: tags and a location (no moves between groups).
const trackedCapabilities = "SupportsTags, SupportsLocation"

// The api-versions of the providers' types, newest first: the published
// versions of each REST spec (azure-rest-api-specs, specification/…/
// resource-manager), which include what the current SDKs send (armkeyvault
// v1.5.0 2024-11-01, armmsi v1.3.0 2024-11-30, armmanagedapplications
// v1.1.1 2021-07-01, armservicebus v1 2021-11-01 and v2
// 2022-10-01-preview) and what Debian's az 2.45 sends (Key Vault
// 2022-07-01, Service Bus 2022-01-01-preview, Managed Identity
// 2022-01-31-preview, managed applications 2019-07-01).
var (
	keyVaultVersions = []string{"2024-11-01", "2023-07-01", "2023-02-01", "2022-11-01", "2022-07-01", "2021-10-01", "2019-09-01",
		"2018-02-14", "2016-10-01", "2015-06-01"}
	identityVersions = []string{"2024-11-30", "2023-07-31-preview", "2023-01-31", "2022-01-31-preview", "2021-09-30-preview", "2018-11-30",
		"2015-08-31-preview"}
	// ficVersions: federated identity credentials came with 2022-01-31-preview.
	ficVersions        = []string{"2024-11-30", "2023-07-31-preview", "2023-01-31", "2022-01-31-preview"}
	serviceBusVersions = []string{"2024-01-01", "2023-01-01-preview", "2022-10-01-preview", "2022-01-01-preview", "2021-11-01",
		"2021-06-01-preview", "2021-01-01-preview", "2018-01-01-preview", "2017-04-01", "2015-08-01"}
	solutionsVersions = []string{"2023-12-01-preview", "2021-07-01", "2021-02-01-preview", "2020-08-21-preview", "2019-07-01",
		"2018-09-01-preview", "2018-06-01", "2018-03-01", "2018-02-01", "2017-12-01", "2017-09-01"}
)

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
		} else if !errors.Is(err, store.ErrNotFound) {
			// A failed read is not "no record": listing it here too would
			// show the identity twice.
			return nil, rp.InternalError(err)
		}
		segs := strings.Split(strings.TrimPrefix(id, "/"), "/")
		out = append(out, store.Resource{TenantID: tenantID, SubscriptionID: segs[1], ResourceGroup: rp.ResourceGroupOf(segs), ID: id,
			Name: identityName(sp), Type: identityType, Created: sp.CreatedDateTime, Updated: sp.CreatedDateTime})
	}
	return out, nil
}
