package arm

// The types of the services whose providers live in their own packages
// that Solutions (managedapps*.go) names: a managed application's
// deployment spec creates them.

const (
	vaultType       = "Microsoft.KeyVault/vaults"
	identityType    = "Microsoft.ManagedIdentity/userAssignedIdentities"
	sbNamespaceType = "Microsoft.ServiceBus/namespaces"
	sbQueueType     = sbNamespaceType + "/queues"
)
