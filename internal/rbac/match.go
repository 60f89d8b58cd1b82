package rbac

import "strings"

// Match reports whether operation matches pattern as Azure matches
// permission strings: case-insensitively, with each `*` matching any run of
// characters, `/` included (so Microsoft.ServiceBus/*/send/action matches
// Microsoft.ServiceBus/namespaces/messages/send/action).
func Match(pattern, operation string) bool {
	return glob(strings.ToLower(pattern), strings.ToLower(operation))
}

// glob is the classic linear-time wildcard match with one backtrack point.
func glob(p, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && p[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// matchAny reports whether any pattern matches operation.
func matchAny(patterns []string, operation string) bool {
	for _, p := range patterns {
		if Match(p, operation) {
			return true
		}
	}
	return false
}
