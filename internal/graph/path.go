package graph

import (
	"errors"
	"net/url"
	"strings"
	"unicode/utf8"
)

// apiVersion is the one Graph version served.
const apiVersion = "/v1.0"

// Limits on a request path, well above anything Graph itself accepts, so
// that a hostile path costs little to refuse.
const (
	maxPathLength = 2048
	maxSegments   = 16
)

// graphPath is a request path under /v1.0/ with Graph's key syntax turned
// into plain segments, so that ServeMux patterns can route it:
//
//	/v1.0/applications(appId='A')/owners  →  segments [applications A owners], byAppID
//	/v1.0/applications('ID')              →  segments [applications ID]
//	/v1.0/groups/G/members/$ref           →  segments [groups G members $ref]
type graphPath struct {
	segments []string // unescaped; never empty, ".", ".." or containing '/'
	// byAppID says that segments[1] came from (appId='…') and is an
	// application id, not an object id.
	byAppID bool
}

// canonical is the path ServeMux sees: /v1.0/ and the segments, each
// escaped as a path segment.
func (p graphPath) canonical() string {
	var b strings.Builder
	b.WriteString(apiVersion)
	for _, s := range p.segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// errBadPath is returned for every path parsePath refuses; the caller
// answers 400, as Graph does for a URL it cannot read.
var errBadPath = errors.New("the request URI is not valid")

// parsePath reads an escaped request path (r.URL.EscapedPath()). It is the
// only place Graph's URL syntax is interpreted, and it is strict: empty,
// "." and ".." segments, encoded slashes, NUL and other control characters,
// and invalid UTF-8 are refused, so that nothing later (the mux, the store)
// has to cope with them.
//
// The key syntax is accepted on the first segment only: NAME('key') for
// any collection, and NAME(appId='key') for applications and
// servicePrincipals. Keys are OData string literals (” escapes a quote).
func parsePath(escaped string) (graphPath, error) {
	if len(escaped) > maxPathLength {
		return graphPath{}, errBadPath
	}
	rest, ok := strings.CutPrefix(escaped, apiVersion)
	if !ok || (rest != "" && rest[0] != '/') {
		return graphPath{}, errBadPath
	}
	rest = strings.TrimPrefix(rest, "/")
	rest = strings.TrimSuffix(rest, "/") // Graph tolerates one trailing slash
	if rest == "" {
		return graphPath{}, nil
	}
	raw := strings.Split(rest, "/")
	if len(raw) > maxSegments {
		return graphPath{}, errBadPath
	}
	var p graphPath
	for i, r := range raw {
		seg, err := url.PathUnescape(r)
		if err != nil || !cleanSegment(seg) {
			return graphPath{}, errBadPath
		}
		if i == 0 {
			name, key, byAppID, hasKey, err := splitKey(seg)
			if err != nil {
				return graphPath{}, err
			}
			p.segments = append(p.segments, name)
			if hasKey {
				p.segments = append(p.segments, key)
				p.byAppID = byAppID
			}
			continue
		}
		p.segments = append(p.segments, seg)
	}
	return p, nil
}

// cleanSegment reports whether an unescaped segment is safe to route and to
// pass to the store as an id or name.
func cleanSegment(s string) bool {
	if s == "" || s == "." || s == ".." || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '/' {
			return false
		}
	}
	return true
}

// splitKey splits "applications(appId='x')" into its collection name and
// key. A segment without parentheses is returned as the name.
func splitKey(seg string) (name, key string, byAppID, hasKey bool, err error) {
	open := strings.IndexByte(seg, '(')
	if open < 0 {
		return seg, "", false, false, nil
	}
	if open == 0 || !strings.HasSuffix(seg, ")") {
		return "", "", false, false, errBadPath
	}
	name, inner := seg[:open], seg[open+1:len(seg)-1]
	if k, ok := cutPrefixFold(inner, "appId="); ok {
		if name != "applications" && name != "servicePrincipals" {
			return "", "", false, false, errBadPath
		}
		inner, byAppID = k, true
	}
	key, after, ok := parseStringLiteral(inner)
	if !ok || after != "" || !cleanSegment(key) {
		return "", "", false, false, errBadPath
	}
	return name, key, byAppID, true, nil
}

// cutPrefixFold is strings.CutPrefix, ignoring ASCII case.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}
