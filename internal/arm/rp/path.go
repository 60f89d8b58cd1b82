package rp

import (
	"fmt"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
)

// Target is what a request path names. The door's own targets are small
// numbers; each provider picks its own, from 100 up, for its paths.
type Target int

// Path is a parsed request path.
type Path struct {
	Target Target
	// Scope is the scope the request acts at: the subscription, the
	// resource group, a resource's id, or the scope an extension
	// resource (Microsoft.Authorization/…) hangs below. The root "/" for
	// /providers/… paths.
	Scope rbac.Scope
	// Sub and RG are the scope's subscription and resource group, if any.
	Sub, RG string
	// Name is the resource's name, empty for a list.
	Name string
	// Child is a child resource's name (a federated identity credential,
	// a queue) below the resource called Name; empty for a child list.
	Child string
	// Grandchild is the name of a resource below the child or the
	// resource (a Service Bus authorization rule), empty for its list.
	Grandchild string
	// Op is a POST operation on the resource the path names (listKeys,
	// regenerateKeys).
	Op string
}

// PathError is a path that is not a resource id (InvalidResourceId).
type PathError struct{ Msg string }

func (e *PathError) Error() string { return e.Msg }

// BadPath is a PathError.
func BadPath(format string, args ...any) error { return &PathError{fmt.Sprintf(format, args...)} }

// ParseScopeText parses a scope as a path error.
func ParseScopeText(s string) (rbac.Scope, error) {
	sc, err := rbac.ParseScope(s)
	if err != nil {
		return rbac.Scope{}, BadPath("%s", strings.TrimPrefix(err.Error(), rbac.ErrInvalidScope.Error()+": "))
	}
	return sc, nil
}

// ResourceGroupOf is the resource group named by segments that start
// subscriptions/{sub}/resourceGroups/{rg}, else "".
func ResourceGroupOf(segs []string) string {
	if len(segs) >= 4 && strings.EqualFold(segs[0], "subscriptions") && strings.EqualFold(segs[2], "resourceGroups") {
		return segs[3]
	}
	return ""
}

// ParseProviderPath recognises, for resource type ns/typ with an optional
// child type,
//
//	/subscriptions/{sub}/providers/{ns}/{typ}
//	/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{typ}[/{name}]
//	/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{typ}/{name}/{child}[/{childName}]
//
// (segments without the leading slash) and builds the scope the request
// acts at: the subscription or group for a list, the parent for a child
// list, else the resource's id. isChild tells a child path.
func ParseProviderPath(segs []string, ns, typ, child string) (ap Path, isChild, ok bool, err error) {
	is := func(i int, s string) bool { return strings.EqualFold(segs[i], s) }
	n := len(segs)
	if n < 5 || !is(0, "subscriptions") || segs[1] == "" {
		return Path{}, false, false, nil
	}
	switch {
	case n == 5 && is(2, "providers") && is(3, ns) && is(4, typ):
		ap = Path{Sub: segs[1]}
	case n >= 7 && n <= 10 && is(2, "resourceGroups") && segs[3] != "" && is(4, "providers") && is(5, ns) && is(6, typ):
		ap = Path{Sub: segs[1], RG: segs[3]}
		if n >= 8 {
			if segs[7] == "" {
				return Path{}, false, false, nil
			}
			ap.Name = segs[7]
		}
		if n >= 9 {
			if child == "" || !is(8, child) {
				return Path{}, false, false, nil
			}
			isChild = true
		}
		if n == 10 {
			if segs[9] == "" {
				return Path{}, false, false, nil
			}
			ap.Child = segs[9]
		}
	default:
		return Path{}, false, false, nil
	}
	scopeText := "/subscriptions/" + ap.Sub
	if ap.RG != "" {
		scopeText += "/resourceGroups/" + ap.RG
	}
	if ap.Name != "" {
		scopeText += "/providers/" + ns + "/" + typ + "/" + ap.Name
	}
	if ap.Child != "" {
		scopeText += "/" + child + "/" + ap.Child
	}
	sc, err := ParseScopeText(scopeText)
	if err != nil {
		return Path{}, isChild, true, err
	}
	ap.Scope, ap.Sub = sc, sc.SubscriptionID()
	return ap, isChild, true, nil
}

// TypedPath recognises the paths of resource type ns/typ and of its child
// type (ParseProviderPath), with parent or childTarget as the target.
func TypedPath(segs []string, ns, typ, child string, parent, childTarget Target) (Path, bool, error) {
	ap, isChild, ok, err := ParseProviderPath(segs, ns, typ, child)
	if !ok || err != nil {
		return Path{}, ok, err
	}
	ap.Target = parent
	if isChild {
		ap.Target = childTarget
	}
	return ap, true, nil
}
