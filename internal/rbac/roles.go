package rbac

import (
	"slices"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Ids of the built-in roles, as in Azure.
const (
	RoleOwner                   = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
	RoleContributor             = "b24988ac-6180-42a0-ab88-20f7382dd24c"
	RoleReader                  = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
	RoleUserAccessAdministrator = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
	RoleKeyVaultAdministrator   = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
	RoleKeyVaultSecretsOfficer  = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
	RoleKeyVaultSecretsUser     = "4633458b-17de-408a-b874-0445c86b69e6"
	RoleKeyVaultReader          = "21090545-7ca7-4776-b22c-e363652d74d2"
	RoleKeyVaultCryptoOfficer   = "14b46e9e-c2b7-41b4-b07b-48a6ebf60603"
	RoleKeyVaultCryptoUser      = "12338af0-0e69-4776-bea7-57ae8d297424"
	// RoleKeyVaultCryptoServiceEncryptionUser is the role Azure services
	// (and a provider's customer-managed-key pattern) are given to wrap and
	// unwrap with a customer's key.
	RoleKeyVaultCryptoServiceEncryptionUser = "e147488a-f6f5-4113-8e2d-b22465e65bf6"
	RoleServiceBusDataOwner                 = "090c5cfd-751d-490a-894a-3ce6f1109419"
	RoleServiceBusDataSender                = "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"
	RoleServiceBusDataReceiver              = "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"
	RoleManagedIdentityOperator             = "f1a07417-d97a-45cb-824c-7a7467783830"
	RoleManagedApplicationOperator          = "c7393b34-138c-406f-901b-d8cf2b17e6ae"
)

// keyVaultReadActions are the control-plane actions the Key Vault data
// roles that carry any share (Administrator, Secrets Officer, Crypto
// Officer, Reader).
var keyVaultReadActions = []string{
	"Microsoft.Authorization/*/read",
	"Microsoft.Insights/alertRules/*",
	"Microsoft.Resources/deployments/*",
	"Microsoft.Resources/subscriptions/resourceGroups/read",
	"Microsoft.Support/*",
	"Microsoft.KeyVault/checkNameAvailability/read",
	"Microsoft.KeyVault/deletedVaults/read",
	"Microsoft.KeyVault/locations/*/read",
	"Microsoft.KeyVault/vaults/*/read",
	"Microsoft.KeyVault/operations/read",
}

var serviceBusReads = []string{
	"Microsoft.ServiceBus/*/queues/read",
	"Microsoft.ServiceBus/*/topics/read",
	"Microsoft.ServiceBus/*/topics/subscriptions/read",
}

// builtIns are the built-in roles tenantbridge knows, transcribed from
// Azure's documentation (learn.microsoft.com/azure/role-based-access-control/built-in-roles/*).
var builtIns = []store.RoleDefinition{
	{ID: RoleOwner, Name: "Owner",
		Description: "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
		Permissions: []store.Permission{{Actions: []string{"*"}}}},
	{ID: RoleContributor, Name: "Contributor",
		Description: "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.",
		Permissions: []store.Permission{{Actions: []string{"*"}, NotActions: []string{
			"Microsoft.Authorization/*/Delete",
			"Microsoft.Authorization/*/Write",
			"Microsoft.Authorization/elevateAccess/Action",
			"Microsoft.Blueprint/blueprintAssignments/write",
			"Microsoft.Blueprint/blueprintAssignments/delete",
			"Microsoft.Compute/galleries/share/action",
			"Microsoft.Purview/consents/write",
			"Microsoft.Purview/consents/delete",
		}}}},
	{ID: RoleReader, Name: "Reader",
		Description: "View all resources, but does not allow you to make any changes.",
		Permissions: []store.Permission{{Actions: []string{"*/read"}}}},
	{ID: RoleUserAccessAdministrator, Name: "User Access Administrator",
		Description: "Lets you manage user access to Azure resources.",
		Permissions: []store.Permission{{Actions: []string{"*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"}}}},
	{ID: RoleKeyVaultAdministrator, Name: "Key Vault Administrator",
		Description: "Perform all data plane operations on a key vault and all objects in it, including certificates, keys, and secrets. Cannot manage key vault resources or manage role assignments. Only works for key vaults that use the 'Azure role-based access control' permission model.",
		Permissions: []store.Permission{{Actions: keyVaultReadActions, DataActions: []string{"Microsoft.KeyVault/vaults/*"}}}},
	{ID: RoleKeyVaultSecretsOfficer, Name: "Key Vault Secrets Officer",
		Description: "Perform any action on the secrets of a key vault, except manage permissions. Only works for key vaults that use the 'Azure role-based access control' permission model.",
		Permissions: []store.Permission{{Actions: keyVaultReadActions, DataActions: []string{"Microsoft.KeyVault/vaults/secrets/*"}}}},
	{ID: RoleKeyVaultSecretsUser, Name: "Key Vault Secrets User",
		Description: "Read secret contents. Only works for key vaults that use the 'Azure role-based access control' permission model.",
		Permissions: []store.Permission{{DataActions: []string{
			"Microsoft.KeyVault/vaults/secrets/getSecret/action",
			"Microsoft.KeyVault/vaults/secrets/readMetadata/action",
		}}}},
	// The key roles, as learn.microsoft.com/azure/role-based-access-control/built-in-roles/security
	// lists them (Key Vault Crypto Officer, Crypto User, Crypto Service
	// Encryption User, Reader); Key Vault Administrator's
	// Microsoft.KeyVault/vaults/* covers keys too.
	{ID: RoleKeyVaultCryptoOfficer, Name: "Key Vault Crypto Officer",
		Description: "Perform any action on the keys of a key vault, except manage permissions. Only works for key vaults that use the 'Azure role-based access control' permission model.",
		Permissions: []store.Permission{{Actions: keyVaultReadActions, DataActions: []string{
			"Microsoft.KeyVault/vaults/keys/*",
			"Microsoft.KeyVault/vaults/keyrotationpolicies/*",
		}}}},
	{ID: RoleKeyVaultCryptoUser, Name: "Key Vault Crypto User",
		Description: "Perform cryptographic operations using keys. Only works for key vaults that use the 'Azure role-based access control' permission model.",
		Permissions: []store.Permission{{DataActions: []string{
			"Microsoft.KeyVault/vaults/keys/read",
			"Microsoft.KeyVault/vaults/keys/update/action",
			"Microsoft.KeyVault/vaults/keys/backup/action",
			"Microsoft.KeyVault/vaults/keys/encrypt/action",
			"Microsoft.KeyVault/vaults/keys/decrypt/action",
			"Microsoft.KeyVault/vaults/keys/wrap/action",
			"Microsoft.KeyVault/vaults/keys/unwrap/action",
			"Microsoft.KeyVault/vaults/keys/sign/action",
			"Microsoft.KeyVault/vaults/keys/verify/action",
		}}}},
	{ID: RoleKeyVaultCryptoServiceEncryptionUser, Name: "Key Vault Crypto Service Encryption User",
		Description: "Read metadata of keys and perform wrap/unwrap operations. Only works for key vaults that use the 'Azure role-based access control' permission model.",
		Permissions: []store.Permission{{
			Actions: []string{
				"Microsoft.EventGrid/eventSubscriptions/write",
				"Microsoft.EventGrid/eventSubscriptions/read",
				"Microsoft.EventGrid/eventSubscriptions/delete",
			},
			DataActions: []string{
				"Microsoft.KeyVault/vaults/keys/read",
				"Microsoft.KeyVault/vaults/keys/wrap/action",
				"Microsoft.KeyVault/vaults/keys/unwrap/action",
			}}}},
	{ID: RoleKeyVaultReader, Name: "Key Vault Reader",
		Description: "Read metadata of key vaults and its certificates, keys, and secrets. Cannot read sensitive values such as secret contents or key material. Only works for key vaults that use the 'Azure role-based access control' permission model.",
		Permissions: []store.Permission{{Actions: keyVaultReadActions, DataActions: []string{
			"Microsoft.KeyVault/vaults/*/read",
			"Microsoft.KeyVault/vaults/secrets/readMetadata/action",
		}}}},
	{ID: RoleServiceBusDataOwner, Name: "Azure Service Bus Data Owner",
		Description: "Allows for full access to Azure Service Bus resources.",
		Permissions: []store.Permission{{Actions: []string{"Microsoft.ServiceBus/*"}, DataActions: []string{"Microsoft.ServiceBus/*"}}}},
	{ID: RoleServiceBusDataSender, Name: "Azure Service Bus Data Sender",
		Description: "Allows for send access to Azure Service Bus resources.",
		Permissions: []store.Permission{{Actions: serviceBusReads, DataActions: []string{"Microsoft.ServiceBus/*/send/action"}}}},
	{ID: RoleServiceBusDataReceiver, Name: "Azure Service Bus Data Receiver",
		Description: "Allows for receive access to Azure Service Bus resources.",
		Permissions: []store.Permission{{Actions: serviceBusReads, DataActions: []string{"Microsoft.ServiceBus/*/receive/action"}}}},
	{ID: RoleManagedIdentityOperator, Name: "Managed Identity Operator",
		Description: "Read and Assign User Assigned Identity",
		Permissions: []store.Permission{{Actions: []string{
			"Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
			"Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
			"Microsoft.Authorization/*/read",
			"Microsoft.Insights/alertRules/*",
			"Microsoft.Resources/subscriptions/resourceGroups/read",
			"Microsoft.Resources/deployments/*",
			"Microsoft.Support/*",
		}}}},
	{ID: RoleManagedApplicationOperator, Name: "Managed Application Operator Role",
		Description: "Lets you read and perform actions on Managed Application resources",
		Permissions: []store.Permission{{Actions: []string{"*/read", "Microsoft.Solutions/applications/read", "Microsoft.Solutions/*/action"}}}},
}

// explainedBuiltIns are copies of builtIns, same order, that decisions'
// explanations point to (Explanation.Role). Every decision granted by a
// built-in role shares its one copy: a cached decision used to hold its
// own clone of the role's permission lists, the largest part of an allowed
// decision (issue 16, a few kilobytes per customer). A copy and not
// builtIns itself, so that a caller modifying an explanation, which it
// must not do, could not change what the engine decides.
var explainedBuiltIns []store.RoleDefinition

func init() {
	for i := range builtIns {
		builtIns[i].AssignableScopes = []string{"/"}
	}
	explainedBuiltIns = make([]store.RoleDefinition, len(builtIns))
	for i, r := range builtIns {
		explainedBuiltIns[i] = cloneRole(r)
	}
}

// explainedRole is the role an explanation names for r: a built-in role's
// shared copy, or a copy of a role read from the store.
func explainedRole(r *store.RoleDefinition) *store.RoleDefinition {
	for i := range builtIns {
		if r == &builtIns[i] {
			return &explainedBuiltIns[i]
		}
	}
	c := cloneRole(*r)
	return &c
}

// BuiltInRoles returns copies of the built-in role definitions (TenantID
// empty), ordered by name.
func BuiltInRoles() []store.RoleDefinition {
	out := make([]store.RoleDefinition, len(builtIns))
	for i, r := range builtIns {
		out[i] = cloneRole(r)
	}
	slices.SortFunc(out, func(a, b store.RoleDefinition) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// BuiltInRole finds a built-in role by id (case-insensitive) or by its
// exact-but-case-insensitive name.
func BuiltInRole(idOrName string) (store.RoleDefinition, bool) {
	for _, r := range builtIns {
		if strings.EqualFold(r.ID, idOrName) || strings.EqualFold(r.Name, idOrName) {
			return cloneRole(r), true
		}
	}
	return store.RoleDefinition{}, false
}

func builtInByID(id string) (*store.RoleDefinition, bool) {
	for i := range builtIns {
		if strings.EqualFold(builtIns[i].ID, id) {
			return &builtIns[i], true
		}
	}
	return nil, false
}

func cloneRole(r store.RoleDefinition) store.RoleDefinition {
	r.Permissions = slices.Clone(r.Permissions)
	for i, p := range r.Permissions {
		r.Permissions[i] = store.Permission{
			Actions: slices.Clone(p.Actions), NotActions: slices.Clone(p.NotActions),
			DataActions: slices.Clone(p.DataActions), NotDataActions: slices.Clone(p.NotDataActions),
		}
	}
	r.AssignableScopes = slices.Clone(r.AssignableScopes)
	return r
}

// Permits reports whether a set of permission blocks allows operation: some
// block lists it in Actions (DataActions for a data action) and the same
// block does not exclude it in NotActions (NotDataActions). NotActions only
// narrows its own block; it is not a deny.
func Permits(perms []store.Permission, operation string, dataAction bool) bool {
	for _, p := range perms {
		allow, except := p.Actions, p.NotActions
		if dataAction {
			allow, except = p.DataActions, p.NotDataActions
		}
		if matchAny(allow, operation) && !matchAny(except, operation) {
			return true
		}
	}
	return false
}
