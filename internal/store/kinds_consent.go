package store

// The directory object and link kinds of the consent model: delegated
// permission grants, directory roles and their members, and each tenant's
// sign-in policy. They are ordinary objects and links; the backends store
// any kind.
const (
	// KindOAuth2PermissionGrant is a delegated permission grant (Graph's
	// oauth2PermissionGrant): a client may act for one user, or for all,
	// with some scopes of a resource.
	KindOAuth2PermissionGrant ObjectKind = "oauth2PermissionGrant"
	// KindDirectoryRole is a directory role activated in a tenant from its
	// role template (Global Administrator, Application Administrator, ...).
	KindDirectoryRole ObjectKind = "directoryRole"
	// KindTenantPolicy is a tenant's sign-in and consent policy; a tenant
	// holds at most one.
	KindTenantPolicy ObjectKind = "tenantPolicy"
)

// LinkDirectoryRoleMember: From is a directory role, To is a user who holds it.
const LinkDirectoryRoleMember LinkKind = "directoryRoleMember"
