package arm

import (
	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// ownProviders are the providers still served from this package:
// Solutions (managed applications). Key Vault, Service Bus and Managed
// Identity register from their own packages (vault, servicebus,
// managedidentity) through Config.Providers.
func (h *Handler) ownProviders() []*rp.Provider {
	all := rp.AllRegions()
	return []*rp.Provider{
		{Namespace: solutionsNamespace, Types: []rp.ResourceType{
			{Name: "applicationDefinitions", Listed: true, APIVersions: solutionsVersions, Locations: all, Capabilities: rp.TrackedCapabilities},
			{Name: "applications", Listed: true, View: func(res store.Resource) (any, error) { return appViewOf(res) },
				APIVersions: solutionsVersions, Locations: all, Capabilities: rp.TrackedCapabilities}},
			Parse: func(segs []string) (rp.Path, bool, error) {
				if ap, ok, err := appDefinitionPath(segs); ok {
					return ap, ok, err
				}
				return applicationPath(segs)
			},
			Serve: h.solutions, GroupManagers: applicationGroups},
	}
}

// The api-versions of Microsoft.Solutions' types, newest first: the
// published versions of its REST spec (azure-rest-api-specs,
// specification/solutions/resource-manager), which include what the
// current SDK sends (armmanagedapplications v1.1.1: 2021-07-01) and what
// Debian's az 2.45 sends (2019-07-01).
var solutionsVersions = []string{"2023-12-01-preview", "2021-07-01", "2021-02-01-preview", "2020-08-21-preview", "2019-07-01",
	"2018-09-01-preview", "2018-06-01", "2018-03-01", "2018-02-01", "2017-12-01", "2017-09-01"}
