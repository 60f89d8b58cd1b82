package arm

// The api-versions Resource Manager takes, per resource type, and how it
// refuses another.

import "github.com/tenantbridge/tenantbridge/internal/arm/rp"

// resourcesVersions are the api-versions of Microsoft.Resources' own
// types (subscriptions, resource groups, resources, providers, locations,
// deployments, tags), newest first, as Azure lists them in
// InvalidApiVersionParameter (recorded in 2024:
// pulumi/pulumi-azure-native#3637, ansible-collections/azure#1739).
// armresources v1.2.0 sends 2021-04-01, armsubscriptions v1.3.0
// 2022-12-01, armkeyvault's vault list (Resources - List) 2015-11-01,
// azcore's provider registration policy 2019-05-01, az 2.45 2022-09-01
// (resources) and 2019-11-01 (subscriptions); @azure/arm-resources 7.x
// sends 2025-04-01, the newest GA.
var resourcesVersions = []string{"2025-04-01", "2024-08-01", "2024-06-01-preview", "2024-03-01", "2023-07-01", "2023-07-01-preview", "2023-03-01-preview",
	"2022-12-01", "2022-11-01-preview", "2022-09-01", "2022-06-01", "2022-05-01", "2022-03-01-preview", "2022-01-01", "2021-04-01", "2021-01-01",
	"2020-10-01", "2020-09-01", "2020-08-01", "2020-07-01", "2020-06-01", "2020-05-01", "2020-01-01", "2019-11-01", "2019-10-01", "2019-09-01",
	"2019-08-01", "2019-07-01", "2019-06-01", "2019-05-10", "2019-05-01", "2019-03-01", "2018-11-01", "2018-09-01", "2018-08-01", "2018-07-01",
	"2018-06-01", "2018-05-01", "2018-02-01", "2018-01-01", "2017-12-01", "2017-08-01", "2017-06-01", "2017-05-10", "2017-05-01", "2017-03-01",
	"2016-09-01", "2016-07-01", "2016-06-01", "2016-02-01", "2015-11-01", "2015-01-01", "2014-04-01-preview", "2014-04-01", "2014-01-01",
	"2013-03-01", "2014-02-26", "2014-04"}

// roleAssignmentVersions are Microsoft.Authorization/roleAssignments'
// api-versions: those Azure listed in NoRegisteredProviderFound in 2022
// (Azure/azure-sdk-for-java#28334) and the GA 2022-04-01 that
// armauthorization v2 and az send, newest first.
var roleAssignmentVersions = []string{"2022-04-01", "2022-01-01-preview", "2021-04-01-preview", "2020-10-01-preview", "2020-08-01-preview",
	"2020-04-01-preview", "2020-03-01-preview", "2019-04-01-preview", "2018-12-01-preview", "2018-09-01-preview", "2018-07-01",
	"2018-01-01-preview", "2017-10-01-preview", "2017-09-01", "2017-05-01", "2016-07-01", "2015-07-01", "2015-06-01", "2015-05-01-preview",
	"2014-10-01-preview", "2014-07-01-preview", "2014-04-01-preview"}

// roleDefinitionVersions are Microsoft.Authorization/roleDefinitions':
// Azure's list of 2022 (Azure/azure-sdk-for-java#28334) with the GA
// 2022-04-01 and 2022-05-01-preview of the REST specs.
var roleDefinitionVersions = []string{"2022-05-01-preview", "2022-04-01", "2018-07-01", "2018-01-01-preview", "2017-09-01", "2017-05-01",
	"2016-07-01", "2015-07-01", "2015-06-01", "2015-05-01-preview", "2014-10-01-preview", "2014-07-01-preview", "2014-04-01-preview"}

// denyAssignmentVersions are Microsoft.Authorization/denyAssignments': the
// REST specs' 2018-07-01-preview and 2022-04-01 (armauthorization v2).
var denyAssignmentVersions = []string{"2022-04-01", "2018-07-01-preview"}

// lockVersions are Microsoft.Authorization/locks': the REST specs'
// 2015-01-01, 2016-09-01 (what az sends), 2017-04-01 and 2020-05-01
// (armlocks v1.2.0).
var lockVersions = []string{"2020-05-01", "2017-04-01", "2016-09-01", "2015-01-01"}

// doorProviders are the front door's own namespaces as the provider
// registry lists them: Microsoft.Resources, Microsoft.Authorization and
// tenantbridge's TenantBridge.Authorization (role explain). They take no
// registration (RegistrationFree) and are served by the door itself.
var doorProviders = func() []*rp.Provider {
	all := rp.AllRegions()
	return []*rp.Provider{
		{Namespace: "Microsoft.Resources", Types: []rp.ResourceType{
			{Name: "tenants", APIVersions: resourcesVersions},
			{Name: "subscriptions", APIVersions: resourcesVersions},
			{Name: "providers", APIVersions: resourcesVersions},
			{Name: "locations", APIVersions: resourcesVersions},
			{Name: "resourceGroups", APIVersions: resourcesVersions, Locations: all, Capabilities: "SupportsTags, SupportsLocation"},
			{Name: "resources", APIVersions: resourcesVersions},
			{Name: "deployments", APIVersions: resourcesVersions, Capabilities: "SupportsTags"},
			{Name: "deployments/operations", APIVersions: resourcesVersions},
			{Name: "subscriptions/resourceGroups", APIVersions: resourcesVersions, Locations: all, Capabilities: "SupportsTags, SupportsLocation"},
			{Name: "subscriptions/resources", APIVersions: resourcesVersions},
			{Name: "subscriptions/providers", APIVersions: resourcesVersions},
			{Name: "subscriptions/locations", APIVersions: resourcesVersions},
			{Name: "tags", APIVersions: resourcesVersions},                   // tags.go
			{Name: "subscriptions/tagNames", APIVersions: resourcesVersions}, // tags.go
		}},
		{Namespace: "Microsoft.Authorization", Types: []rp.ResourceType{
			{Name: "roleAssignments", APIVersions: roleAssignmentVersions},
			{Name: "roleDefinitions", APIVersions: roleDefinitionVersions},
			{Name: "denyAssignments", APIVersions: denyAssignmentVersions},
			{Name: "locks", APIVersions: lockVersions}, // locks.go
		}},
		// tenantbridge's own: the versions its CLI sends.
		{Namespace: "TenantBridge.Authorization", Types: []rp.ResourceType{{Name: "explain", APIVersions: []string{"2022-04-01"}}}},
	}
}()
