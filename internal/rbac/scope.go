package rbac

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxScopeLength is the longest scope, in bytes, that ParseScope accepts.
const MaxScopeLength = 2048

// ErrInvalidScope is wrapped by every error of ParseScope.
var ErrInvalidScope = errors.New("rbac: invalid scope")

// Scope is a parsed Azure Resource Manager scope: the root ("/"), a
// management group, a subscription, a resource group or a resource
// (nested types and extension resources included). Its String is
// canonical: the fixed segments (subscriptions, resourceGroups, providers,
// Microsoft.Management/managementGroups) in Azure's case, everything else
// as given.
type Scope struct {
	canonical string
	// ends are the lengths of canonical at which each ancestor ends, from
	// the subscription (or management group) down to the scope itself.
	ends         []int
	subscription string
	mgmtGroup    string
}

var (
	guidRE      = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	namespaceRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z0-9]+)+$`)
	typeRE      = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*$`)
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidScope, fmt.Sprintf(format, args...))
}

// ParseScope parses and validates s. Matching of the fixed segments is
// case-insensitive; empty segments (a doubled or trailing slash) are
// refused rather than cleaned up, so that one scope has one spelling.
func ParseScope(s string) (Scope, error) {
	if s == "" {
		return Scope{}, invalidf("the scope is empty")
	}
	if len(s) > MaxScopeLength {
		return Scope{}, invalidf("the scope is longer than %d bytes", MaxScopeLength)
	}
	if !utf8.ValidString(s) {
		return Scope{}, invalidf("the scope is not valid UTF-8")
	}
	if s[0] != '/' {
		return Scope{}, invalidf("%q does not start with '/'", s)
	}
	if s == "/" {
		return Scope{canonical: "/"}, nil
	}
	segs := strings.Split(s[1:], "/")
	for i, seg := range segs {
		if seg == "" {
			return Scope{}, invalidf("%q has an empty segment at position %d", s, i+1)
		}
		if strings.IndexFunc(seg, func(r rune) bool { return unicode.IsControl(r) || strings.ContainsRune("?#\\", r) }) >= 0 {
			return Scope{}, invalidf("segment %q holds a character a resource id may not", seg)
		}
	}
	var (
		sc Scope
		b  strings.Builder
	)
	b.Grow(len(s))
	mark := func() { sc.ends = append(sc.ends, b.Len()) }
	switch {
	case strings.EqualFold(segs[0], "providers"):
		if len(segs) != 4 || !strings.EqualFold(segs[1], "Microsoft.Management") || !strings.EqualFold(segs[2], "managementGroups") {
			return Scope{}, invalidf("%q: the only tenant-level scope is /providers/Microsoft.Management/managementGroups/{name}", s)
		}
		sc.mgmtGroup = segs[3]
		b.WriteString("/providers/Microsoft.Management/managementGroups/" + segs[3])
		mark()
		sc.canonical = b.String()
		return sc, nil
	case strings.EqualFold(segs[0], "subscriptions"):
	default:
		return Scope{}, invalidf("%q: a scope starts with /subscriptions/{id} or /providers/Microsoft.Management/managementGroups/{name}", s)
	}
	if len(segs) < 2 {
		return Scope{}, invalidf("%q: /subscriptions needs a subscription id", s)
	}
	if !guidRE.MatchString(segs[1]) {
		return Scope{}, invalidf("subscription id %q is not a GUID", segs[1])
	}
	sc.subscription = segs[1]
	b.WriteString("/subscriptions/" + segs[1])
	mark()
	i := 2
	if i < len(segs) && strings.EqualFold(segs[i], "resourceGroups") {
		if i+1 >= len(segs) {
			return Scope{}, invalidf("%q: resourceGroups needs a resource group name", s)
		}
		if err := checkResourceGroup(segs[i+1]); err != nil {
			return Scope{}, err
		}
		b.WriteString("/resourceGroups/" + segs[i+1])
		mark()
		i += 2
	}
	if i == len(segs) {
		sc.canonical = b.String()
		return sc, nil
	}
	if !strings.EqualFold(segs[i], "providers") {
		return Scope{}, invalidf("%q: expected 'providers' or 'resourceGroups', found %q", s, segs[i])
	}
	for i < len(segs) {
		// providers/{namespace}/{type}/{name}[/{type}/{name}...]
		if i+1 >= len(segs) || !namespaceRE.MatchString(segs[i+1]) {
			return Scope{}, invalidf("%q: 'providers' must be followed by a resource provider namespace such as Microsoft.KeyVault", s)
		}
		b.WriteString("/providers/" + segs[i+1])
		i += 2
		pairs := 0
		for i < len(segs) && !strings.EqualFold(segs[i], "providers") {
			if !typeRE.MatchString(segs[i]) {
				return Scope{}, invalidf("%q: %q is not a resource type", s, segs[i])
			}
			if i+1 >= len(segs) {
				return Scope{}, invalidf("%q: resource type %q has no name", s, segs[i])
			}
			if len(segs[i+1]) > 260 {
				return Scope{}, invalidf("resource name %.20q… is longer than 260 characters", segs[i+1])
			}
			b.WriteString("/" + segs[i] + "/" + segs[i+1])
			mark()
			i += 2
			pairs++
		}
		if pairs == 0 {
			return Scope{}, invalidf("%q: provider namespace %q has no resource type and name", s, segs[i-1])
		}
	}
	sc.canonical = b.String()
	return sc, nil
}

// checkResourceGroup applies Azure's resource group naming rules: 1 to 90
// letters, digits, underscores, parentheses, hyphens and periods, not
// ending in a period.
func checkResourceGroup(name string) error {
	if utf8.RuneCountInString(name) > 90 {
		return invalidf("resource group name %.20q… is longer than 90 characters", name)
	}
	if strings.HasSuffix(name, ".") {
		return invalidf("resource group name %q ends in a period", name)
	}
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("_()-.", r) {
			return invalidf("resource group name %q holds %q: use letters, digits, '_', '(', ')', '-' and '.'", name, r)
		}
	}
	return nil
}

// String returns the canonical form.
func (s Scope) String() string { return s.canonical }

// IsRoot reports whether s is the root scope "/".
func (s Scope) IsRoot() bool { return s.canonical == "/" }

// SubscriptionID is the scope's subscription, empty for the root and
// management groups.
func (s Scope) SubscriptionID() string { return s.subscription }

// ManagementGroup is the management group's name for a management-group scope.
func (s Scope) ManagementGroup() string { return s.mgmtGroup }

// Ancestors lists the scopes whose assignments reach s, from the root "/"
// down to s itself, in canonical form. A subscription's management groups
// are not modelled: its parent is the root.
func (s Scope) Ancestors() []string {
	out := make([]string, 0, len(s.ends)+1)
	out = append(out, "/")
	for _, e := range s.ends {
		out = append(out, s.canonical[:e])
	}
	return out
}

// Key is the case-insensitive form of the scope: what comparisons and the
// store's scope_key use.
func (s Scope) Key() string { return strings.ToLower(s.canonical) }
