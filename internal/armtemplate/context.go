package armtemplate

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"
)

// Context is the deployment a template is evaluated in: where it deploys
// (subscription, resource group), who deploys (tenant), its name, the
// cloud's endpoints for environment(), and the sources of time and new
// GUIDs (utcNow(), newGuid()), which tests fix.
type Context struct {
	TenantID       string
	SubscriptionID string
	// SubscriptionName is subscription().displayName.
	SubscriptionName string
	ResourceGroup    string
	// ResourceGroupLocation and ResourceGroupTags are resourceGroup()'s
	// location and tags; ResourceGroupManagedBy its managedBy.
	ResourceGroupLocation  string
	ResourceGroupTags      map[string]string
	ResourceGroupManagedBy string
	DeploymentName         string
	// Location is the deployment's location (subscription-scope
	// deployments); resource group deployments leave it empty.
	Location    string
	Environment Environment
	Now         func() time.Time
	NewGUID     func() string
	// Resolver answers reference(), list*() and Key Vault parameter
	// references; nil refuses them.
	Resolver Resolver
}

func (c *Context) now() time.Time {
	if c.Now != nil {
		return c.Now().UTC()
	}
	return time.Now().UTC()
}

func (c *Context) newGUID() string {
	if c.NewGUID != nil {
		return c.NewGUID()
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// NestedResolver is a Resolver that answers differently for a nested
// deployment's template than for the deployment's own: Resource Manager
// resolves the Key Vault references of a managed application's package
// (the parameters of a nested deployment in its mainTemplate, where Azure
// requires them) as the managed applications service, and those of the
// application's own parameters as the platform. Nested gives the
// Resolver of the deployments nested in this one.
type NestedResolver interface {
	Resolver
	Nested() Resolver
}

// Resolver is what the evaluator asks of Resource Manager while a
// deployment runs: resources outside the template (reference() of an
// existing resource), list* actions, and secrets for Key Vault parameter
// references. Implementations check the deploying principal's access:
// the evaluator grants nothing by itself.
type Resolver interface {
	// Reference returns a resource's state: its properties, or with full
	// the whole resource (id, name, type, location, properties, …).
	Reference(ctx context.Context, resourceID, apiVersion string, full bool) (map[string]any, error)
	// List invokes a list* action (listKeys, listSecrets, …) on a resource.
	List(ctx context.Context, resourceID, action, apiVersion string, body any) (any, error)
	// KeyVaultSecret reads a secret for a parameter given as a Key Vault
	// reference; version "" is the current one.
	KeyVaultSecret(ctx context.Context, vaultID, secretName, version string) (string, error)
}

// Environment is what environment() returns: the cloud's endpoints. The
// fields and their AzureCloud values follow the documented shape
// (learn.microsoft.com/azure/azure-resource-manager/templates/template-functions-deployment#environment);
// tenantbridge sets its own hosts.
type Environment struct {
	Name                    string
	Gallery                 string
	Graph                   string
	Portal                  string
	GraphAudience           string
	ActiveDirectoryDataLake string
	Batch                   string
	Media                   string
	SQLManagement           string
	VMImageAliasDoc         string
	ResourceManager         string
	LoginEndpoint           string
	Audiences               []string
	Tenant                  string
	IdentityProvider        string
	KeyVaultDNS             string
	SQLServerHostname       string
	Storage                 string
	ACRLoginServer          string
	DataLakeAnalytics       string
	DataLakeStore           string
	FrontDoorEndpoint       string
}

// AzureCloud is environment() in Azure's public cloud, as documented.
func AzureCloud() Environment {
	return Environment{
		Name:                    "AzureCloud",
		Gallery:                 "https://gallery.azure.com/",
		Graph:                   "https://graph.windows.net/",
		Portal:                  "https://portal.azure.com",
		GraphAudience:           "https://graph.windows.net/",
		ActiveDirectoryDataLake: "https://datalake.azure.net/",
		Batch:                   "https://batch.core.windows.net/",
		Media:                   "https://rest.media.azure.net",
		SQLManagement:           "https://management.core.windows.net:8443/",
		VMImageAliasDoc:         "https://raw.githubusercontent.com/Azure/azure-rest-api-specs/master/arm-compute/quickstart-templates/aliases.json",
		ResourceManager:         "https://management.azure.com/",
		LoginEndpoint:           "https://login.microsoftonline.com/",
		Audiences:               []string{"https://management.core.windows.net/", "https://management.azure.com/"},
		Tenant:                  "common",
		IdentityProvider:        "AAD",
		KeyVaultDNS:             ".vault.azure.net",
		SQLServerHostname:       ".database.windows.net",
		Storage:                 "core.windows.net",
		ACRLoginServer:          ".azurecr.io",
		DataLakeAnalytics:       "azuredatalakeanalytics.net",
		DataLakeStore:           "azuredatalakestore.net",
		FrontDoorEndpoint:       "azurefd.net",
	}
}

func (e Environment) value() *Object {
	if e.Name == "" {
		e = AzureCloud()
	}
	o := NewObject()
	o.Set("name", e.Name)
	o.Set("gallery", e.Gallery)
	o.Set("graph", e.Graph)
	o.Set("portal", e.Portal)
	o.Set("graphAudience", e.GraphAudience)
	o.Set("activeDirectoryDataLake", e.ActiveDirectoryDataLake)
	o.Set("batch", e.Batch)
	o.Set("media", e.Media)
	o.Set("sqlManagement", e.SQLManagement)
	o.Set("vmImageAliasDoc", e.VMImageAliasDoc)
	o.Set("resourceManager", e.ResourceManager)
	auth := NewObject()
	auth.Set("loginEndpoint", e.LoginEndpoint)
	aud := make([]any, len(e.Audiences))
	for i, a := range e.Audiences {
		aud[i] = a
	}
	auth.Set("audiences", aud)
	auth.Set("tenant", e.Tenant)
	auth.Set("identityProvider", e.IdentityProvider)
	o.Set("authentication", auth)
	suf := NewObject()
	suf.Set("acrLoginServer", e.ACRLoginServer)
	suf.Set("azureDatalakeAnalyticsCatalogAndJob", e.DataLakeAnalytics)
	suf.Set("azureDatalakeStoreFileSystem", e.DataLakeStore)
	suf.Set("azureFrontDoorEndpointSuffix", e.FrontDoorEndpoint)
	suf.Set("keyvaultDns", e.KeyVaultDNS)
	suf.Set("sqlServerHostname", e.SQLServerHostname)
	suf.Set("storage", e.Storage)
	o.Set("suffixes", suf)
	return o
}
