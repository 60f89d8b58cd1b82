package directory

import (
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// An identifier URI (Application ID URI) names a resource application: a
// token whose audience is that URI is accepted by the resource. Whoever can
// register a URI can therefore mint audiences, so the URI must be bound to
// its owner. Entra allows only the formats of "Restrictions on identifier
// URIs of Microsoft Entra applications"
// (https://learn.microsoft.com/entra/identity-platform/identifier-uri-restrictions):
//
//	api://<appId>
//	api://<tenantId>/<appId>
//	api://<tenantId>/<string>
//	api://<string>/<appId>
//	https://<tenantInitialDomain>.onmicrosoft.com/<string>
//	https://<verifiedCustomDomain>/<string>
//	https://<string>.<verifiedCustomDomain>[/<string>]
//	api://<string>.<verifiedCustomDomainOrInitialDomain>/<string>
//
// where appId is the application's own, and tenantId and the domains are
// its home tenant's own. Each form therefore contains something unique to
// the owner (its tenant id, its appId or one of its domains), which is what
// makes an identifier URI unique across the whole directory: two tenants
// can never register the same one, and no tenant can register a name of
// Microsoft's first-party resources or of another tenant. Graph refuses
// anything else with 400 HostNameNotOnVerifiedDomain, "Values of
// identifierUris property must use a verified domain of the organization
// or its subdomain: '<uri>'" (seen in Graph's answers, e.g.
// Azure/azure-powershell#16097, dotnet/sign#423).
//
// tenantbridge's tenants have one verified domain, the initial
// <name>.onmicrosoft.com; custom domains are not verifiable here, so the
// custom-domain forms never match.

// maxIdentifierURILength is Entra's limit on an identifierUris value, and
// maxIdentifierURIs on how many an application holds (AzureADMyOrg and
// AzureADMultipleOrgs: 50, "Validation differences by supported account
// types", https://learn.microsoft.com/entra/identity-platform/supported-accounts-validation).
const (
	maxIdentifierURILength = 255
	maxIdentifierURIs      = 50
)

// CodeHostNameNotOnVerifiedDomain is Graph's error code for an identifier
// URI outside the formats above.
const CodeHostNameNotOnVerifiedDomain = "HostNameNotOnVerifiedDomain"

// reservedHosts are the host names of Microsoft's first-party resources and
// of the endpoints tenantbridge serves under Azure's names. No customer
// application may use them, or a name under them, in an identifier URI,
// whatever its tenant's domains (an operator's tenant name could never
// make one of these its domain, but the rule does not rely on that).
var reservedHosts = []string{
	"graph.microsoft.com", "graph.windows.net",
	"management.azure.com", "management.core.windows.net",
	"vault.azure.net", "servicebus.azure.net", "servicebus.windows.net",
	"login.microsoftonline.com", "login.windows.net", "sts.windows.net", "login.microsoft.com",
	"azureadtokenexchange",
}

// isReservedHost reports whether host is one of reservedHosts, or a name
// under one, or one of extra (the server's own custom-domain hosts).
func isReservedHost(host string, extra func(string) bool) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, r := range reservedHosts {
		if host == r || strings.HasSuffix(host, "."+r) {
			return true
		}
	}
	return extra != nil && extra(host)
}

// firstPartyURIOwners maps each first-party identifier URI (lower case,
// without trailing slashes) to the appId of the application that owns it,
// and firstPartyAppIDs holds those appIds (lower case). Both are built once:
// they are consulted on every resource lookup and identifier URI check.
var firstPartyURIOwners, firstPartyAppIDs = func() (map[string]string, map[string]bool) {
	owners, ids := map[string]string{}, map[string]bool{}
	for _, a := range firstPartyApps() {
		ids[strings.ToLower(a.AppID)] = true
		for _, u := range a.IdentifierURIs {
			owners[strings.ToLower(strings.TrimRight(u, "/"))] = a.AppID
		}
	}
	return owners, ids
}()

// firstPartyURIOwner returns the appId of the first-party application that
// owns name (an identifier URI compared without case and trailing
// slashes), or "" when name is no first-party identifier URI.
func firstPartyURIOwner(name string) string {
	return firstPartyURIOwners[strings.ToLower(strings.TrimRight(name, "/"))]
}

// CheckIdentifierURI reports whether uri may be an identifier URI of the
// application appID whose home tenant is owner. It returns an
// *InvalidError with Graph's code, or nil. reserved, when not nil, names
// further hosts that no application may use (the server's own).
func CheckIdentifierURI(uri string, owner store.Tenant, appID string, reserved func(string) bool) error {
	refuse := func() error {
		return &InvalidError{Code: CodeHostNameNotOnVerifiedDomain, Msg: "Values of identifierUris property must use a verified domain of the organization or its subdomain: '" + clipForMessage(uri) + "'"}
	}
	if uri == "" || len(uri) > maxIdentifierURILength || !utf8.ValidString(uri) || strings.ContainsAny(uri, "*\\ \t\r\n") {
		return invalidf("Values of identifierUris property must be absolute URIs without wildcards or fragments: %q.", clipForMessage(uri))
	}
	if firstPartyURIOwner(uri) != "" {
		return refuse()
	}
	u, err := url.Parse(uri)
	if err != nil || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(uri, "#") || u.Port() != "" {
		return invalidf("Values of identifierUris property must be absolute URIs without wildcards or fragments: %q.", clipForMessage(uri))
	}
	host := u.Hostname()
	if host == "" || isReservedHost(host, reserved) {
		return refuse()
	}
	if strings.ContainsAny(host, "%") || strings.Contains(u.Path, "//") {
		return refuse()
	}
	// path is the <string> or <appId> after the host: empty, or a
	// non-empty rest after one slash.
	path := strings.TrimPrefix(u.Path, "/")
	domain := strings.ToLower(owner.Domain)
	isOwnDomain := func(h string) bool { return domain != "" && strings.EqualFold(h, domain) }
	underOwnDomain := func(h string) bool {
		return domain != "" && len(h) > len(domain)+1 && strings.HasSuffix(strings.ToLower(h), "."+domain) &&
			!strings.HasPrefix(h, ".")
	}
	sameID := func(a, b string) bool {
		_, err := uuid.Parse(a)
		return err == nil && len(a) == 36 && strings.EqualFold(a, b)
	}
	switch u.Scheme {
	case "api":
		switch {
		case sameID(host, appID) && u.Path == "":
			return nil // api://<appId>
		case sameID(host, owner.ID) && path != "":
			return nil // api://<tenantId>/<appId> and api://<tenantId>/<string>
		case sameID(path, appID):
			return nil // api://<string>/<appId>
		case (isOwnDomain(host) || underOwnDomain(host)) && path != "":
			// api://<string>.<verifiedCustomDomainOrInitialDomain>/<string>;
			// the domain itself counts as well: the doc's own example of
			// this form is api://contoso.com/productsapi.
			return nil
		}
	case "https":
		// https://<tenantInitialDomain>.onmicrosoft.com/<string>. The
		// custom-domain forms need a verified custom domain, which no
		// tenant here has.
		if isOwnDomain(host) && path != "" {
			return nil
		}
	}
	return refuse()
}

// clipForMessage keeps a refused value short and printable in an error
// message.
func clipForMessage(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
