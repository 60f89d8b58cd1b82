package arm

// What Solutions (managedapps*.go) uses of the services whose providers
// live in their own packages: the names of their types and the checks a
// managed application's deployment spec makes before its template runs.
// The managed applications code calls these under their former names.

import (
	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/servicebus"
)

const (
	vaultType       = "Microsoft.KeyVault/vaults"
	identityType    = "Microsoft.ManagedIdentity/userAssignedIdentities"
	sbNamespaceType = "Microsoft.ServiceBus/namespaces"
	sbQueueType     = sbNamespaceType + "/queues"
)

// queueBodyProps are a queue's properties in a deployment spec.
type queueBodyProps = servicebus.QueueBody

var (
	validNamespaceName = servicebus.ValidNamespaceName
	validQueueName     = servicebus.ValidQueueName
	skuTier            = servicebus.SkuTier
)

// queueCheck checks a spec's queue properties (servicebus.CheckQueueBody)
// once the namespace's tier is known.
type queueCheck struct{}

func queueSettingsOf(*queueBodyProps) (queueCheck, error) { return queueCheck{}, nil }

func (queueCheck) forTier(tier string, p *queueBodyProps) error {
	return servicebus.CheckQueueBody(tier, p)
}

// directoryError is rp.DirectoryError.
var directoryError = rp.DirectoryError
