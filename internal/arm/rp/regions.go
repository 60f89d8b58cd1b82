package rp

// Region is an Azure public-cloud region, as Subscriptions - List
// Locations (GET /subscriptions/{id}/locations) shows it.
type Region struct {
	// Name is the programmatic name (westeurope), what a resource's
	// location holds once normalized.
	Name string
	// DisplayName is what the provider registry lists (West Europe).
	DisplayName string
	// Geography is the group RegionalDisplayName starts with (Europe).
	Geography string
	// Recommended regions come first in Azure's list; the others are
	// regionCategory Other.
	Recommended bool
}

// RegionalDisplayName is "(Europe) West Europe".
func (r Region) RegionalDisplayName() string { return "(" + r.Geography + ") " + r.DisplayName }

// Regions are the physical regions of Azure's public cloud that a
// subscription lists, in Azure's order: the recommended ones, then the
// others. Names, display names and geographies are as
// armsubscriptions' ListLocations answers them (a recorded answer of
// 2023: cloud-barista/cb-spider, drivers/azure/resources/RegionZoneHandler.go);
// the logical regions (europe, global…), the stage and EUAP regions are
// left out, as no resource is created there. A type's Locations name
// these by DisplayName.
var Regions = []Region{
	{"eastus", "East US", "US", true},
	{"eastus2", "East US 2", "US", true},
	{"southcentralus", "South Central US", "US", true},
	{"westus2", "West US 2", "US", true},
	{"westus3", "West US 3", "US", true},
	{"australiaeast", "Australia East", "Asia Pacific", true},
	{"southeastasia", "Southeast Asia", "Asia Pacific", true},
	{"northeurope", "North Europe", "Europe", true},
	{"swedencentral", "Sweden Central", "Europe", true},
	{"uksouth", "UK South", "Europe", true},
	{"westeurope", "West Europe", "Europe", true},
	{"centralus", "Central US", "US", true},
	{"southafricanorth", "South Africa North", "Africa", true},
	{"centralindia", "Central India", "Asia Pacific", true},
	{"eastasia", "East Asia", "Asia Pacific", true},
	{"japaneast", "Japan East", "Asia Pacific", true},
	{"koreacentral", "Korea Central", "Asia Pacific", true},
	{"canadacentral", "Canada Central", "Canada", true},
	{"francecentral", "France Central", "Europe", true},
	{"germanywestcentral", "Germany West Central", "Europe", true},
	{"italynorth", "Italy North", "Europe", true},
	{"norwayeast", "Norway East", "Europe", true},
	{"polandcentral", "Poland Central", "Europe", true},
	{"switzerlandnorth", "Switzerland North", "Europe", true},
	{"uaenorth", "UAE North", "Middle East", true},
	{"brazilsouth", "Brazil South", "South America", true},
	{"qatarcentral", "Qatar Central", "Middle East", true},
	{"northcentralus", "North Central US", "US", false},
	{"westus", "West US", "US", false},
	{"westcentralus", "West Central US", "US", false},
	{"southafricawest", "South Africa West", "Africa", false},
	{"australiacentral", "Australia Central", "Asia Pacific", false},
	{"australiacentral2", "Australia Central 2", "Asia Pacific", false},
	{"australiasoutheast", "Australia Southeast", "Asia Pacific", false},
	{"japanwest", "Japan West", "Asia Pacific", false},
	{"koreasouth", "Korea South", "Asia Pacific", false},
	{"southindia", "South India", "Asia Pacific", false},
	{"westindia", "West India", "Asia Pacific", false},
	{"canadaeast", "Canada East", "Canada", false},
	{"francesouth", "France South", "Europe", false},
	{"germanynorth", "Germany North", "Europe", false},
	{"norwaywest", "Norway West", "Europe", false},
	{"switzerlandwest", "Switzerland West", "Europe", false},
	{"ukwest", "UK West", "Europe", false},
	{"uaecentral", "UAE Central", "Middle East", false},
	{"brazilsoutheast", "Brazil Southeast", "South America", false},
}

// AllRegions are the display names of every region, for a tracked type
// that may be created anywhere.
func AllRegions() []string {
	out := make([]string, len(Regions))
	for i, r := range Regions {
		out[i] = r.DisplayName
	}
	return out
}
