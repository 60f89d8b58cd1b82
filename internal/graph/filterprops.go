package graph

// What $filter and $search may use on each directory collection, from the
// resource's page in Microsoft Graph v1.0 ("Supports $filter (eq, ne, not,
// …)" with each property) and the property table of "Advanced query
// capabilities on Microsoft Entra ID objects"
// (https://learn.microsoft.com/graph/aad-advanced-queries). Only properties
// this surface serves are listed; Graph's own list is longer. ne and not
// are advanced everywhere, and so is a comparison with null, where a
// property allows it; endsWith is advanced and only on the user properties
// Graph names (mail, userPrincipalName).

// applicationFilter: https://learn.microsoft.com/graph/api/resources/application
var applicationFilter = []filterProp{
	{name: "appId", typ: typeString, ops: opEq | opNe | opNot | opIn | opStartsWith},
	{name: "createdDateTime", typ: typeDateTime, ops: opEq | opNe | opNot | opGe | opLe | opIn},
	{name: "description", typ: typeString, ops: opEq | opNe | opNot | opGe | opLe | opStartsWith | opNull},
	{name: "displayName", typ: typeString, ops: stringOps | opNull},
	{name: "id", typ: typeString, ops: idOps},
	// "The any operator is required for filter expressions on
	// multi-valued properties." Supports $filter (eq, not, ge, le, startsWith).
	{name: "identifierUris", typ: typeString, collection: true, ops: collOps},
	{name: "publisherDomain", typ: typeString, ops: opEq | opNe | opGe | opLe | opStartsWith},
	{name: "signInAudience", typ: typeString, ops: opEq | opNe | opNot},
	{name: "tags", typ: typeString, collection: true, ops: collOps},
}

// servicePrincipalFilter: https://learn.microsoft.com/graph/api/resources/serviceprincipal
var servicePrincipalFilter = []filterProp{
	{name: "accountEnabled", typ: typeBool, ops: opEq | opNe | opNot | opIn},
	{name: "alternativeNames", typ: typeString, collection: true, ops: collOps},
	{name: "appDisplayName", typ: typeString, ops: stringOps},
	{name: "appId", typ: typeString, ops: opEq | opNe | opNot | opIn | opStartsWith},
	// Edm.Guid: compared with an unquoted GUID (microsoft-graph-explorer-v4#1085).
	{name: "appOwnerOrganizationId", typ: typeGUID, ops: idOps},
	{name: "appRoleAssignmentRequired", typ: typeBool, ops: boolOps},
	{name: "displayName", typ: typeString, ops: stringOps | opNull},
	{name: "id", typ: typeString, ops: idOps},
	{name: "servicePrincipalNames", typ: typeString, collection: true, ops: collOps},
	{name: "servicePrincipalType", typ: typeString, ops: idOps},
	{name: "tags", typ: typeString, collection: true, ops: collOps},
}

// userFilter: https://learn.microsoft.com/graph/api/resources/user and the
// advanced-queries table: "All properties that support the eq operator
// also support the ne or not operators."
var userFilter = []filterProp{
	{name: "accountEnabled", typ: typeBool, ops: opEq | opNe | opNot | opIn},
	{name: "createdDateTime", typ: typeDateTime, ops: opEq | opNe | opNot | opGe | opLe},
	{name: "displayName", typ: typeString, ops: opEq | opNe | opNot | opIn | opStartsWith | opNull},
	{name: "givenName", typ: typeString, ops: stringOps | opNull},
	{name: "id", typ: typeString, ops: idOps},
	{name: "mail", typ: typeString, ops: stringOps | opEndsWith},
	{name: "mailNickname", typ: typeString, ops: stringOps | opNull},
	{name: "surname", typ: typeString, ops: stringOps | opNull},
	{name: "userPrincipalName", typ: typeString, ops: opEq | opNe | opNot | opLe | opIn | opStartsWith | opEndsWith},
}

// groupFilter: https://learn.microsoft.com/graph/api/resources/group.
// createdDateTime is left out: Graph's own example answers
// "Unsupported or invalid query filter clause specified for property
// 'createdDateTime' of resource 'Group'." even in an advanced query.
var groupFilter = []filterProp{
	{name: "description", typ: typeString, ops: opEq | opNe | opNot | opGe | opLe | opStartsWith},
	{name: "displayName", typ: typeString, ops: stringOps | opNull},
	{name: "groupTypes", typ: typeString, collection: true, ops: opEq | opNot},
	{name: "id", typ: typeString, ops: idOps},
	{name: "mail", typ: typeString, ops: stringOps | opNull},
	{name: "mailEnabled", typ: typeBool, ops: boolOps},
	{name: "mailNickname", typ: typeString, ops: stringOps | opNull},
	{name: "securityEnabled", typ: typeBool, ops: opEq | opNe | opNot | opIn},
}

// $search properties: displayName and description on applications and
// service principals, the name properties on users and groups
// (https://learn.microsoft.com/graph/search-query-parameter, "Using
// $search on directory object collections").
var (
	applicationSearch      = []string{"displayName", "description"}
	servicePrincipalSearch = []string{"displayName", "description"}
	userSearch             = []string{"displayName", "givenName", "surname", "mail", "mailNickname", "userPrincipalName"}
	groupSearch            = []string{"displayName", "description", "mail", "mailNickname"}
)
