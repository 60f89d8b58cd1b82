package arm

import (
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
)

// target is what a request path names: the door's own targets.
type target = rp.Target

const (
	targetSubscriptions   target = iota + 1 // /subscriptions
	targetSubscription                      // /subscriptions/{sub}
	targetResourceGroups                    // /subscriptions/{sub}/resourceGroups
	targetResourceGroup                     // /subscriptions/{sub}/resourceGroups/{rg}
	targetRoleDefinitions                   // {scope}/providers/Microsoft.Authorization/roleDefinitions[/{id}]
	targetRoleAssignments                   // {scope}/providers/Microsoft.Authorization/roleAssignments[/{id}]
	targetDenyAssignments                   // {scope}/providers/Microsoft.Authorization/denyAssignments[/{id}]
	targetExplain                           // /providers/TenantBridge.Authorization/explain
	targetResource                          // any other resource id: not served in this slice
)

// authorizationTypes maps the lower-cased Microsoft.Authorization resource
// types this surface serves to their targets.
var authorizationTypes = map[string]target{
	"roledefinitions": targetRoleDefinitions,
	"roleassignments": targetRoleAssignments,
	"denyassignments": targetDenyAssignments,
}

// parsePath parses the (unescaped) request path. A single trailing slash
// is ignored; anything that is not a resource id this surface knows is an
// error (InvalidResourceId for the client).
func (h *Handler) parsePath(p string) (rp.Path, *rp.Provider, error) {
	if len(p) > rbac.MaxScopeLength {
		return rp.Path{}, nil, rp.BadPath("the resource id is longer than %d bytes", rbac.MaxScopeLength)
	}
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	// A resource id joined to a base URL ending in '/' gives "//subscriptions/…":
	// clients send it (az's and the SDKs' id-based calls) and Resource
	// Manager takes it as the id it names.
	if strings.HasPrefix(p, "//") && !strings.HasPrefix(p, "///") {
		p = p[1:]
	}
	if p == "" || p[0] != '/' {
		return rp.Path{}, nil, rp.BadPath("the resource id must start with '/'")
	}
	segs := strings.Split(p[1:], "/")
	n := len(segs)
	if n == 1 && strings.EqualFold(segs[0], "subscriptions") {
		return rp.Path{Target: targetSubscriptions}, nil, nil
	}
	if n == 3 && strings.EqualFold(segs[0], "providers") && strings.EqualFold(segs[1], "TenantBridge.Authorization") && strings.EqualFold(segs[2], "explain") {
		root, _ := rbac.ParseScope("/")
		return rp.Path{Target: targetExplain, Scope: root}, nil, nil
	}
	// An extension resource of Microsoft.Authorization below any scope:
	// the last "providers/Microsoft.Authorization/{type}" of the path.
	for i := n - 2; i >= 0; i-- {
		if !strings.EqualFold(segs[i], "providers") || !strings.EqualFold(segs[i+1], "Microsoft.Authorization") {
			continue
		}
		if i+2 >= n {
			break
		}
		t, ok := authorizationTypes[strings.ToLower(segs[i+2])]
		if !ok || n > i+4 {
			break
		}
		scopeText := "/" + strings.Join(segs[:i], "/")
		sc, err := rp.ParseScopeText(scopeText)
		if err != nil {
			return rp.Path{}, nil, err
		}
		ap := rp.Path{Target: t, Scope: sc, Sub: sc.SubscriptionID(), RG: rp.ResourceGroupOf(segs[:i])}
		if n == i+4 {
			if segs[i+3] == "" {
				return rp.Path{}, nil, rp.BadPath("the resource id has an empty name")
			}
			ap.Name = segs[i+3]
		}
		return ap, nil, nil
	}
	// Management locks (locks.go) and the Tags API (tags.go).
	if ap, ok, err := locksPath(segs); ok {
		return ap, nil, err
	}
	if ap, ok, err := tagsPath(segs); ok {
		return ap, nil, err
	}
	// Microsoft.Resources/deployments (deployments.go).
	if ap, ok, err := deploymentPath(segs); ok {
		return ap, nil, err
	}
	// The provider registry and the locations (providers.go).
	if ap, ok, err := providersPath(segs); ok {
		return ap, nil, err
	}
	// Resources - List (resourcelist.go).
	if ap, ok, err := resourceListPath(segs); ok {
		return ap, nil, err
	}
	// The providers' own paths.
	for _, pr := range h.providers {
		if ap, ok, err := pr.Parse(segs); ok {
			return ap, pr, err
		}
	}
	// /subscriptions/{sub}/resourceGroups is a collection, not a scope.
	if n == 3 && strings.EqualFold(segs[0], "subscriptions") && strings.EqualFold(segs[2], "resourceGroups") {
		sc, err := rp.ParseScopeText("/subscriptions/" + segs[1])
		if err != nil {
			return rp.Path{}, nil, err
		}
		return rp.Path{Target: targetResourceGroups, Scope: sc, Sub: sc.SubscriptionID()}, nil, nil
	}
	sc, err := rp.ParseScopeText(p)
	if err != nil {
		return rp.Path{}, nil, err
	}
	if sc.SubscriptionID() == "" {
		return rp.Path{}, nil, rp.BadPath("the resource id %q is not one this service serves", p)
	}
	ap := rp.Path{Scope: sc, Sub: sc.SubscriptionID(), RG: rp.ResourceGroupOf(segs)}
	switch {
	case n == 2:
		ap.Target = targetSubscription
	case n == 4 && ap.RG != "":
		ap.Target = targetResourceGroup
	default:
		ap.Target = targetResource
	}
	return ap, nil, nil
}
