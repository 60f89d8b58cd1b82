package arm

import (
	"fmt"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
)

// target is what a request path names.
type target int

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

// armPath is a parsed request path.
type armPath struct {
	target target
	// scope is the scope the request acts at: the subscription, the
	// resource group, or the scope an extension resource
	// (Microsoft.Authorization/…) hangs below. The root "/" for
	// /providers/Microsoft.Authorization/… and for explain.
	scope rbac.Scope
	// name is the extension resource's name (a GUID), empty for a list.
	name string
	// sub and rg are the scope's subscription and resource group, if any.
	sub, rg string
	// child is a child resource's name (a federated identity credential,
	// a queue) below the resource called name; empty for a child list.
	child string
	// rules marks a Service Bus authorization rules path
	// (servicebus_sas.go) below the namespace name or its queue child;
	// rule is the rule's name (empty for the list) and ruleOp its POST
	// operation (listKeys or regenerateKeys), if any.
	rules        bool
	rule, ruleOp string
}

// authorizationTypes maps the lower-cased Microsoft.Authorization resource
// types this surface serves to their targets.
var authorizationTypes = map[string]target{
	"roledefinitions": targetRoleDefinitions,
	"roleassignments": targetRoleAssignments,
	"denyassignments": targetDenyAssignments,
}

// errBadPath is returned, wrapped, for a path that is not a resource id.
type pathError struct{ msg string }

func (e *pathError) Error() string { return e.msg }

func badPath(format string, args ...any) error { return &pathError{fmt.Sprintf(format, args...)} }

// parsePath parses the (unescaped) request path. A single trailing slash
// is ignored; anything that is not a resource id this surface knows is an
// error (InvalidResourceId for the client).
func parsePath(p string) (armPath, error) {
	if len(p) > rbac.MaxScopeLength {
		return armPath{}, badPath("the resource id is longer than %d bytes", rbac.MaxScopeLength)
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
		return armPath{}, badPath("the resource id must start with '/'")
	}
	segs := strings.Split(p[1:], "/")
	n := len(segs)
	if n == 1 && strings.EqualFold(segs[0], "subscriptions") {
		return armPath{target: targetSubscriptions}, nil
	}
	if n == 3 && strings.EqualFold(segs[0], "providers") && strings.EqualFold(segs[1], "TenantBridge.Authorization") && strings.EqualFold(segs[2], "explain") {
		root, _ := rbac.ParseScope("/")
		return armPath{target: targetExplain, scope: root}, nil
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
		sc, err := rbac.ParseScope(scopeText)
		if err != nil {
			return armPath{}, badPath("%s", strings.TrimPrefix(err.Error(), rbac.ErrInvalidScope.Error()+": "))
		}
		ap := armPath{target: t, scope: sc, sub: sc.SubscriptionID(), rg: resourceGroupOf(segs[:i])}
		if n == i+4 {
			if segs[i+3] == "" {
				return armPath{}, badPath("the resource id has an empty name")
			}
			ap.name = segs[i+3]
		}
		return ap, nil
	}
	// Resources - List (resourcelist.go).
	if ap, ok, err := resourceListPath(segs); ok {
		return ap, err
	}
	// Microsoft.KeyVault/vaults (vaults.go).
	if ap, ok, err := vaultPath(segs); ok {
		return ap, err
	}
	// Microsoft.ManagedIdentity (identities.go), Microsoft.ServiceBus (servicebus.go).
	if ap, ok, err := identityPath(segs); ok {
		return ap, err
	}
	if ap, ok, err := serviceBusPath(segs); ok {
		return ap, err
	}
	// Microsoft.Solutions (managedapps.go).
	if ap, ok, err := appDefinitionPath(segs); ok {
		return ap, err
	}
	if ap, ok, err := applicationPath(segs); ok {
		return ap, err
	}
	// /subscriptions/{sub}/resourceGroups is a collection, not a scope.
	if n == 3 && strings.EqualFold(segs[0], "subscriptions") && strings.EqualFold(segs[2], "resourceGroups") {
		sc, err := rbac.ParseScope("/subscriptions/" + segs[1])
		if err != nil {
			return armPath{}, badPath("%s", strings.TrimPrefix(err.Error(), rbac.ErrInvalidScope.Error()+": "))
		}
		return armPath{target: targetResourceGroups, scope: sc, sub: sc.SubscriptionID()}, nil
	}
	sc, err := rbac.ParseScope(p)
	if err != nil {
		return armPath{}, badPath("%s", strings.TrimPrefix(err.Error(), rbac.ErrInvalidScope.Error()+": "))
	}
	if sc.SubscriptionID() == "" {
		return armPath{}, badPath("the resource id %q is not one this service serves", p)
	}
	ap := armPath{scope: sc, sub: sc.SubscriptionID(), rg: resourceGroupOf(segs)}
	switch {
	case n == 2:
		ap.target = targetSubscription
	case n == 4 && ap.rg != "":
		ap.target = targetResourceGroup
	default:
		ap.target = targetResource
	}
	return ap, nil
}

// resourceGroupOf is the resource group named by segments that start
// subscriptions/{sub}/resourceGroups/{rg}, else "".
func resourceGroupOf(segs []string) string {
	if len(segs) >= 4 && strings.EqualFold(segs[0], "subscriptions") && strings.EqualFold(segs[2], "resourceGroups") {
		return segs[3]
	}
	return ""
}
