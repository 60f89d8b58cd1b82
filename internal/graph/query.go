package graph

import (
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/directory"
)

// OData query options on collections: $filter (one clause of the forms
// Graph's directory supports best), $select, $top and $skiptoken. Anything
// else that starts with '$' is refused rather than ignored, so that a
// client never mistakes an unfiltered answer for a filtered one.

const (
	defaultTop     = 100
	maxTop         = 999
	maxQueryOption = 2048 // characters of one option's value
)

// queryOptions are the parsed options of one request.
type queryOptions struct {
	filter *filter
	sel    []string // canonical property names, in the order given
	top    int
	after  string // decoded $skiptoken: the last id of the previous page

	// The options as given, to carry into @odata.nextLink.
	rawFilter, rawSelect, rawTop string
}

// querySpec is what one endpoint accepts.
type querySpec struct {
	collection bool     // $top and $skiptoken apply
	resource   string   // Graph's type name, for messages, e.g. "Application"
	filterable []string // properties $filter may test; empty: $filter refused
	selectable []string // properties $select may name
}

// parseQuery reads the options of a request's raw query string against
// what the endpoint accepts.
func parseQuery(rawQuery string, spec querySpec) (queryOptions, error) {
	opts := queryOptions{top: defaultTop}
	values, err := url.ParseQuery(rawQuery)
	if err != nil {
		return opts, badRequest("The query string is malformed.")
	}
	for name, vals := range values {
		if !strings.HasPrefix(name, "$") {
			continue // Graph ignores parameters that are not query options
		}
		if len(vals) != 1 {
			return opts, badRequest("Query option '%s' was specified more than once.", safeText(name))
		}
		v := vals[0]
		if len(v) > maxQueryOption || !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
			return opts, badRequest("Query option '%s' is not valid.", safeText(name))
		}
		switch {
		case name == "$select":
			opts.rawSelect = v
			if opts.sel, err = parseSelect(v, spec); err != nil {
				return opts, err
			}
		case name == "$filter" && spec.collection && len(spec.filterable) > 0:
			opts.rawFilter = v
			f, err := parseFilter(v)
			if err != nil {
				return opts, unsupportedQuery("Unsupported or invalid query filter clause specified: %s.", err.Error())
			}
			if !slices.Contains(spec.filterable, f.property) {
				return opts, unsupportedQuery("Unsupported or invalid query filter clause specified for property '%s' of resource '%s'.", f.property, spec.resource)
			}
			opts.filter = &f
		case name == "$top" && spec.collection:
			opts.rawTop = v
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxTop {
				return opts, badRequest("Invalid page size specified: '%s'. Must be between 1 and %d inclusive.", safeText(v), maxTop)
			}
			opts.top = n
		case name == "$skiptoken" && spec.collection:
			after, ok := decodeSkipToken(v)
			if !ok {
				return opts, badRequest("The $skiptoken is not valid.")
			}
			opts.after = after
		default:
			return opts, unsupportedQuery("Query option '%s' is not supported on this resource.", safeText(name))
		}
	}
	return opts, nil
}

// safeText shortens client text quoted in an error message.
func safeText(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// parseSelect reads a $select list: property names separated by commas.
// Names match case-insensitively, as Graph's do; the canonical spelling is
// returned.
func parseSelect(v string, spec querySpec) ([]string, error) {
	var out []string
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		i := slices.IndexFunc(spec.selectable, func(p string) bool { return strings.EqualFold(p, item) })
		if i < 0 {
			return nil, badRequest("Could not find a property named '%s' on type 'microsoft.graph.%s'.", safeText(item), lowerFirst(spec.resource))
		}
		if !slices.Contains(out, spec.selectable[i]) {
			out = append(out, spec.selectable[i])
		}
	}
	return out, nil
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// The $skiptoken is the last object id of the page, base64url-encoded:
// opaque to clients, and checked to be an id when it comes back.
func encodeSkipToken(lastID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(lastID))
}

func decodeSkipToken(tok string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", false
	}
	if _, err := uuid.Parse(string(b)); err != nil {
		return "", false
	}
	return string(b), true
}

// nextLinkQuery is the query string of @odata.nextLink: the request's own
// options with the cursor of the next page.
func (o queryOptions) nextLinkQuery(lastID string) string {
	var parts []string
	add := func(name, value string) {
		if value != "" {
			parts = append(parts, name+"="+url.QueryEscape(value))
		}
	}
	add("$filter", o.rawFilter)
	add("$select", o.rawSelect)
	add("$top", o.rawTop)
	add("$skiptoken", encodeSkipToken(lastID))
	return strings.Join(parts, "&")
}

// filter is one $filter clause.
type filter struct {
	property string // canonical name: appId, displayName or id
	op       string // "eq" or "startswith"
	value    string
}

// filterProperties are the properties a clause may test, by their
// canonical spelling; matching is case-insensitive, as Graph's is.
var filterProperties = []string{"appId", "displayName", "id"}

// filterError says what is wrong with a $filter, for the 400 message.
type filterError string

func (e filterError) Error() string { return string(e) }

// parseFilter reads one clause of these forms (whitespace between tokens
// is free, keywords and property names are case-insensitive):
//
//	PROPERTY eq 'literal'
//	startswith(PROPERTY, 'literal')
//
// Literals follow OData: single quotes, with ” for a quote inside.
func parseFilter(s string) (filter, error) {
	var f filter
	in := strings.TrimSpace(s)
	if rest, ok := cutPrefixFold(in, "startswith"); ok {
		rest = strings.TrimLeft(rest, " ")
		if !strings.HasPrefix(rest, "(") {
			return f, filterError("expected '(' after startswith")
		}
		prop, rest := cutIdentifier(strings.TrimLeft(rest[1:], " "))
		rest = strings.TrimLeft(rest, " ")
		if !strings.HasPrefix(rest, ",") {
			return f, filterError("expected startswith(property, 'value')")
		}
		value, rest, ok := parseStringLiteral(strings.TrimLeft(rest[1:], " "))
		if !ok {
			return f, filterError("expected a string literal in single quotes")
		}
		if strings.TrimSpace(rest) != ")" {
			return f, filterError("expected ')' to end startswith")
		}
		f.op, f.value = "startswith", value
		if f.property = canonicalProperty(prop); f.property != "displayName" {
			return f, filterError("startswith is supported on displayName only")
		}
		return f, nil
	}
	prop, rest := cutIdentifier(in)
	if prop == "" {
		return f, filterError("expected a property name")
	}
	op, rest := cutIdentifier(strings.TrimLeft(rest, " "))
	if !strings.EqualFold(op, "eq") {
		return f, filterError("only the eq operator and the startswith function are supported")
	}
	value, rest, ok := parseStringLiteral(strings.TrimLeft(rest, " "))
	if !ok {
		return f, filterError("expected a string literal in single quotes")
	}
	if strings.TrimSpace(rest) != "" {
		return f, filterError("only a single clause is supported")
	}
	f.op, f.value = "eq", value
	if f.property = canonicalProperty(prop); f.property == "" {
		return f, filterError("property '" + safeText(prop) + "' cannot be filtered on")
	}
	return f, nil
}

// cutIdentifier splits a leading run of letters and digits off s.
func cutIdentifier(s string) (ident, rest string) {
	i := 0
	for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9') {
		i++
	}
	return s[:i], s[i:]
}

func canonicalProperty(p string) string {
	for _, c := range filterProperties {
		if strings.EqualFold(c, p) {
			return c
		}
	}
	return ""
}

// parseStringLiteral reads an OData string literal at the start of s and
// returns its value and what follows it. Two quotes (”) inside stand
// for one.
func parseStringLiteral(s string) (value, rest string, ok bool) {
	if !strings.HasPrefix(s, "'") {
		return "", s, false
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '\'' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '\'' {
			b.WriteByte('\'')
			i++
			continue
		}
		return b.String(), s[i+1:], true
	}
	return "", s, false
}

// apply narrows a directory query by the filter. It reports false when the
// filter can match nothing (an empty value for eq: every id, appId and
// display name is non-empty), which the caller answers with an empty page
// instead of a query that would match everything.
func (f *filter) apply(q *directory.Query) bool {
	if f == nil {
		return true
	}
	if f.op == "eq" && f.value == "" {
		return false
	}
	switch {
	case f.property == "appId":
		q.AppID = strings.ToLower(f.value)
	case f.property == "id":
		q.IDs = []string{strings.ToLower(f.value)}
	case f.op == "startswith":
		q.DisplayNamePrefix = f.value
	default:
		q.DisplayName = f.value
	}
	return true
}
