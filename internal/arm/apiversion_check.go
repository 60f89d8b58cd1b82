package arm

// The door's check of each request's api-version against its resource
// type's (the lists are in apiversion.go).

import (
	"net/http"
	"slices"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
)

// requestType is the provider and resource type a request addresses, for
// its api-version: nil for a path of no known type (answered 404 later).
func (h *Handler) requestType(rq *rp.Request, path rp.Path, provider *rp.Provider) (*rp.Provider, *rp.ResourceType) {
	door := func(ns, typ string) (*rp.Provider, *rp.ResourceType) {
		for _, p := range doorProviders {
			if strings.EqualFold(p.Namespace, ns) {
				return p, p.Type(typ)
			}
		}
		return nil, nil
	}
	switch path.Target {
	case targetRoleAssignments:
		return door("Microsoft.Authorization", "roleAssignments")
	case targetRoleDefinitions:
		return door("Microsoft.Authorization", "roleDefinitions")
	case targetDenyAssignments:
		return door("Microsoft.Authorization", "denyAssignments")
	case targetLocks:
		return door("Microsoft.Authorization", "locks")
	case targetExplain:
		return door("TenantBridge.Authorization", "explain")
	case targetResource:
		return nil, nil
	}
	if provider == nil {
		// Subscriptions, groups, Resources - List, providers, locations,
		// deployments: Microsoft.Resources answers them all.
		return door("Microsoft.Resources", "resources")
	}
	typ := providerTypeOf(rq, provider.Namespace)
	if t := provider.Type(typ); t != nil {
		return provider, t
	}
	// A path below a type that is not itself a registered type (a
	// definition's notifications) takes its top-level type's versions.
	top, _, _ := strings.Cut(typ, "/")
	return provider, provider.Type(top)
}

// providerTypeOf is the resource type below namespace ns that the
// request's path names: the types of …/providers/{ns}/{type}/{name}/
// {child}/{name}…, without a trailing POST action (listKeys).
func providerTypeOf(rq *rp.Request, ns string) string {
	segs := strings.Split(strings.Trim(rq.R.URL.Path, "/"), "/")
	i := len(segs) - 2
	for ; i >= 0; i-- {
		if strings.EqualFold(segs[i], "providers") && strings.EqualFold(segs[i+1], ns) {
			break
		}
	}
	if i < 0 {
		return ""
	}
	rest := segs[i+2:]
	if rq.R.Method == http.MethodPost && len(rest) > 1 && len(rest)%2 == 1 {
		rest = rest[:len(rest)-1]
	}
	var types []string
	for j := 0; j < len(rest); j += 2 {
		types = append(types, rest[j])
	}
	return strings.Join(types, "/")
}

// checkAPIVersion refuses an api-version that the request's resource type
// does not take, as Resource Manager does: for Microsoft.Resources' own
// types 400 InvalidApiVersionParameter listing the versions (comma
// separated); for a provider's 400 NoRegisteredProviderFound naming the
// location, the version, the type, its versions and its locations (see
// learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-register-resource-provider;
// wordings as Azure answers them, e.g. Azure/azure-cli#28496 and
// MicrosoftDocs/azure-docs#82469). Versions compare case-insensitively.
func (h *Handler) checkAPIVersion(rq *rp.Request, path rp.Path, provider *rp.Provider) error {
	v := rq.R.URL.Query().Get("api-version")
	p, t := h.requestType(rq, path, provider)
	if t == nil || len(t.APIVersions) == 0 || slices.ContainsFunc(t.APIVersions, func(s string) bool { return strings.EqualFold(s, v) }) {
		return nil
	}
	if strings.EqualFold(p.Namespace, "Microsoft.Resources") {
		return rp.NewError(http.StatusBadRequest, "InvalidApiVersionParameter", "The api-version '%s' is invalid. The supported versions are '%s'.",
			rp.SafeText(v), strings.Join(t.APIVersions, ","))
	}
	locations := make([]string, len(t.Locations))
	for i, l := range t.Locations {
		locations[i] = rp.NormalizeLocation(l)
	}
	return rp.NewError(http.StatusBadRequest, "NoRegisteredProviderFound",
		"No registered resource provider found for location '%s' and API version '%s' for type '%s'. The supported api-versions are '%s'. The supported locations are '%s'.",
		h.requestLocation(rq, path), rp.SafeText(v), t.Name, strings.Join(t.APIVersions, ", "), strings.Join(locations, ", "))
}

// requestLocation is the location Resource Manager routes a refused
// request by: the addressed resource's, else its resource group's, else
// none. Only the caller's own tenant's are named: the refusal comes
// before authorization and must not tell another tenant where a
// resource is.
func (h *Handler) requestLocation(rq *rp.Request, path rp.Path) string {
	if res, err := h.st.GetResource(rq.Ctx, path.Scope.String()); err == nil && strings.EqualFold(res.TenantID, rq.TenantID) {
		return res.Location
	}
	if path.RG == "" {
		return ""
	}
	g, err := h.st.GetResourceGroup(rq.Ctx, path.Sub, path.RG)
	if err != nil || !strings.EqualFold(g.TenantID, rq.TenantID) {
		return ""
	}
	return g.Location
}

// latestAPIVersion is the newest api-version of the registered resource
// type typ ("Microsoft.KeyVault/vaults"), what Resource Manager itself
// uses where no request names one (a Complete deployment's deletes); ""
// for a type it does not know.
func (h *Handler) latestAPIVersion(typ string) string {
	ns, name, _ := strings.Cut(typ, "/")
	for _, p := range h.catalog() {
		if !strings.EqualFold(p.Namespace, ns) {
			continue
		}
		if t := p.Type(name); t != nil && len(t.APIVersions) > 0 {
			return t.APIVersions[0]
		}
	}
	return ""
}
