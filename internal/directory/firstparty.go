package directory

// Microsoft's own tenant: the home of the first-party applications. Every
// tenant holds a service principal of each, exactly as in Entra, so that
// token requests for Graph, ARM, Key Vault and Service Bus resolve the same
// way as requests for a customer's own API.
const (
	MicrosoftTenantID     = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
	MicrosoftTenantName   = "microsoftservices"
	MicrosoftTenantDomain = "microsoftservices.onmicrosoft.com"
)

// The first-party application ids.
const (
	GraphAppID         = "00000003-0000-0000-c000-000000000000"
	ARMAppID           = "797f4846-ba00-4fd7-ba43-dac1f8f63013"
	KeyVaultAppID      = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"
	ServiceBusAppID    = "80369ed6-5f11-4dd9-bef3-692475845e77"
	TokenExchangeAppID = "fb60f99c-7a34-4190-8149-302f77469936"
	// ApplianceRPAppID is tenantbridge's own id for the "Appliance
	// Resource Provider", the managed applications service's principal
	// (Microsoft.Solutions), which deploys an application's package and,
	// once a publisher grants it Microsoft.KeyVault/vaults/deploy/action
	// on a vault with enabledForTemplateDeployment, reads that vault's
	// secrets for the package's Key Vault references
	// (learn.microsoft.com/azure/azure-resource-manager/managed-applications/key-vault-access).
	// Azure's real appId for it is in no reference this project could
	// consult; tools find the principal by its display name
	// (az ad sp list --display-name "Appliance Resource Provider"), as
	// Azure's documentation does, so this id is tenantbridge's and not
	// Azure's.
	ApplianceRPAppID = "5c3b4ae2-6f0e-4c2a-9d1b-7e8a1f2c4b90"
)

// ApplianceRPName is the Appliance Resource Provider's display name, by
// which Azure's documentation finds its service principal in a tenant.
const ApplianceRPName = "Appliance Resource Provider"

// Their identifier URIs: the resource names clients ask tokens for.
const (
	GraphResource         = "https://graph.microsoft.com"
	ARMResource           = "https://management.azure.com/"
	ARMLegacyResource     = "https://management.core.windows.net/"
	KeyVaultResource      = "https://vault.azure.net"
	ServiceBusResource    = "https://servicebus.azure.net"
	TokenExchangeAudience = "api://AzureADTokenExchange"
)

// The Microsoft Graph application permissions tenantbridge enforces, with
// their real ids.
const (
	PermApplicationReadAll         = "Application.Read.All"
	PermApplicationReadWriteAll    = "Application.ReadWrite.All"
	PermApplicationReadWriteOwned  = "Application.ReadWrite.OwnedBy"
	PermAppRoleAssignmentReadWrite = "AppRoleAssignment.ReadWrite.All"
	PermDelegatedGrantReadAll      = "DelegatedPermissionGrant.Read.All"
	PermDelegatedGrantReadWriteAll = "DelegatedPermissionGrant.ReadWrite.All"
	PermDirectoryReadAll           = "Directory.Read.All"
	PermDirectoryReadWriteAll      = "Directory.ReadWrite.All"
	PermGroupReadAll               = "Group.Read.All"
	PermGroupReadWriteAll          = "Group.ReadWrite.All"
	PermGroupMemberReadAll         = "GroupMember.Read.All"
	PermGroupMemberReadWriteAll    = "GroupMember.ReadWrite.All"
	PermUserReadAll                = "User.Read.All"
	PermUserReadWriteAll           = "User.ReadWrite.All"
	PermRoleManagementRead         = "RoleManagement.Read.Directory"
	PermRoleManagementReadWrite    = "RoleManagement.ReadWrite.Directory"
	PermAuthMethodReadAll          = "UserAuthenticationMethod.Read.All"
)

var graphAppRoles = []AppRole{
	appPermission("9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30", PermApplicationReadAll, "Read all applications"),
	appPermission("1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9", PermApplicationReadWriteAll, "Read and write all applications"),
	appPermission("18a4783c-866b-4cc7-a460-3d5e5662c884", PermApplicationReadWriteOwned, "Manage apps that this app creates or owns"),
	appPermission("06b708a9-e830-4db3-a914-8e69da51d44f", PermAppRoleAssignmentReadWrite, "Manage app permission grants and app role assignments"),
	appPermission("81b4724a-58aa-41c1-8a55-84ef97466587", PermDelegatedGrantReadAll, "Read all delegated permission grants"),
	appPermission("8e8e4742-1d95-4f68-9d56-6ee75648c72a", PermDelegatedGrantReadWriteAll, "Manage all delegated permission grants"),
	appPermission("7ab1d382-f21e-4acd-a863-ba3e13f7da61", PermDirectoryReadAll, "Read directory data"),
	appPermission("19dbc75e-c2e2-444c-a770-ec69d8559fc7", PermDirectoryReadWriteAll, "Read and write directory data"),
	appPermission("5b567255-7703-4780-807c-7be8301ae99b", PermGroupReadAll, "Read all groups"),
	appPermission("62a82d76-70ea-41e2-9197-370581804d09", PermGroupReadWriteAll, "Read and write all groups"),
	appPermission("98830695-27a2-44f7-8c18-0c3ebc9698f6", PermGroupMemberReadAll, "Read all group memberships"),
	appPermission("dbaae8cf-10b5-4b86-a4a1-f871c94c6695", PermGroupMemberReadWriteAll, "Read and write all group memberships"),
	appPermission("df021288-bdef-4463-88db-98f22de89214", PermUserReadAll, "Read all users' full profiles"),
	appPermission("741f803b-c850-494e-b5df-cde7c675a1ca", PermUserReadWriteAll, "Read and write all users' full profiles"),
	appPermission("483bed4a-2ad3-4361-a73b-c83ccdbdc53c", PermRoleManagementRead, "Read all directory RBAC settings"),
	appPermission("9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8", PermRoleManagementReadWrite, "Read and write all directory RBAC settings"),
	appPermission("38d9df27-64da-44fd-b7c5-a6fbac20248f", PermAuthMethodReadAll, "Read all users' authentication methods"),
}

var graphScopes = []PermissionScope{
	delegatedScope("e1fe6dd8-ba31-4d61-89e7-88639da4683d", "User.Read", "User", "Sign in and read user profile"),
	delegatedScope("37f7f235-527c-4136-accd-4a02d197296e", "openid", "User", "Sign users in"),
	delegatedScope("14dad69e-099b-42c9-810b-d002981feec1", "profile", "User", "View users' basic profile"),
	delegatedScope("64a6cdd6-aab1-4aaf-94b8-3cc8405e90d0", "email", "User", "View users' email address"),
	delegatedScope("7427e0e9-2fba-42fe-b0c0-848c9e6a8182", "offline_access", "User", "Maintain access to data you have given it access to"),
	delegatedScope("b340eb25-3456-403f-be2f-af7a0d370277", "User.ReadBasic.All", "User", "Read all users' basic profiles"),
	delegatedScope("570282fd-fa5c-430d-a7fd-fc8dc98a9dca", "Mail.Read", "User", "Read user mail"),
	delegatedScope("a154be20-db9c-4678-8ab7-66f6cc099a59", "User.Read.All", "Admin", "Read all users' full profiles"),
	delegatedScope("c79f8feb-a9db-4090-85f9-90d820caa0eb", "Application.Read.All", "Admin", "Read applications"),
	delegatedScope("bdfbf15f-ee85-4955-8675-146e8e5296b5", "Application.ReadWrite.All", "Admin", "Read and write all applications"),
	delegatedScope("0e263e50-5827-48a4-b97c-d940288653c7", "Directory.AccessAsUser.All", "Admin", "Access directory as the signed in user"),
	delegatedScope("741c54c3-0c1e-44a1-818b-3f97ab4e8c83", PermRoleManagementRead, "Admin", "Read your company's directory RBAC settings"),
	delegatedScope("d01b97e9-cbc0-49fe-810a-750afd5527a3", PermRoleManagementReadWrite, "Admin", "Read and write directory RBAC settings"),
	delegatedScope("aec28ec7-4d02-4e8c-b864-50163aea77eb", PermAuthMethodReadAll, "Admin", "Read all users' authentication methods"),
}

func appPermission(id, value, name string) AppRole {
	return AppRole{ID: id, Value: value, DisplayName: name, Description: name + ".",
		AllowedMemberTypes: []string{"Application"}, IsEnabled: true}
}

func delegatedScope(id, value, typ, name string) PermissionScope {
	return PermissionScope{ID: id, Value: value, Type: typ, AdminConsentDisplayName: name,
		AdminConsentDescription: name + ".", UserConsentDisplayName: name, UserConsentDescription: name + ".", IsEnabled: true}
}

// firstPartyApps are Microsoft's resource applications that every tenant holds.
func firstPartyApps() []Application {
	// Tokens for the token-exchange audience are v2: a federated credential
	// that trusts another tenant names that tenant's v2 issuer
	// (https://login.microsoftonline.com/{tid}/v2.0).
	v2 := 2
	return []Application{
		{AppID: GraphAppID, DisplayName: "Microsoft Graph", IdentifierURIs: []string{GraphResource},
			AppRoles: graphAppRoles, OAuth2PermissionScopes: graphScopes},
		{AppID: ARMAppID, DisplayName: "Windows Azure Service Management API",
			IdentifierURIs: []string{ARMResource, ARMLegacyResource},
			OAuth2PermissionScopes: []PermissionScope{delegatedScope("41094075-9dad-400e-a0bd-54e686782033",
				"user_impersonation", "User", "Access Azure Service Management as organization users")}},
		{AppID: KeyVaultAppID, DisplayName: "Azure Key Vault", IdentifierURIs: []string{KeyVaultResource},
			OAuth2PermissionScopes: []PermissionScope{delegatedScope("f53da476-18e3-4152-8e01-aec403e6edc0",
				"user_impersonation", "User", "Have full access to the Azure Key Vault service")}},
		{AppID: ServiceBusAppID, DisplayName: "Microsoft.ServiceBus", IdentifierURIs: []string{ServiceBusResource}},
		{AppID: TokenExchangeAppID, DisplayName: "AAD Token Exchange Endpoint",
			IdentifierURIs: []string{TokenExchangeAudience}, AccessTokenAcceptedVersion: &v2},
		{AppID: ApplianceRPAppID, DisplayName: ApplianceRPName},
	}
}
