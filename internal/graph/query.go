package graph

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// OData query options on collections: $filter (an expression, see
// filter.go), $search, $count, $orderby (orderby.go), $select, $top and
// $skiptoken. Anything else
// that starts with '$' is refused rather than ignored, so that a client
// never mistakes an unfiltered answer for a filtered one.

const (
	defaultTop     = 100
	maxTop         = 999
	maxQueryOption = 2048 // characters of one option's value
)

// queryOptions are the parsed options of one request.
type queryOptions struct {
	filter *filterNode
	// advanced is the first operator of the filter that Graph serves only
	// in advanced queries ("" when none does).
	advanced string
	terms    int
	search   *searchExpr
	count    bool     // $count=true
	sel      []string // canonical property names, in the order given
	top      int
	after    string // decoded $skiptoken: the last id of the previous page
	// orderBy is the $orderby property (canonical name), "" for id order;
	// orderAdvanced tells that Graph sorts on it only in advanced
	// queries, desc a descending sort, and afterKey the sort key of the
	// previous page's last item (orderby.go).
	orderBy       string
	orderAdvanced bool
	desc          bool
	afterKey      string

	// The options as given, to carry into @odata.nextLink.
	rawFilter, rawSelect, rawTop, rawCount, rawSearch, rawOrderBy string
}

// querySpec is what one endpoint accepts.
type querySpec struct {
	collection bool         // $top and $skiptoken apply
	resource   string       // Graph's type name, for messages, e.g. "Application"
	filterable []filterProp // properties $filter may test; empty: $filter refused
	selectable []string     // properties $select may name
	// advanced: the collection takes Graph's advanced query parameters
	// ($count, $search with ConsistencyLevel: eventual).
	advanced   bool
	searchable []string  // properties $search may name
	orderable  orderable // properties $orderby may name; empty: $orderby refused
}

// parseQuery reads the options of a request's raw query string against
// what the endpoint accepts.
func parseQuery(rawQuery string, spec querySpec) (queryOptions, error) {
	opts := queryOptions{top: defaultTop}
	skipToken := ""
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
			n, err := parseFilterExpr(v)
			if err != nil {
				return opts, err
			}
			c, err := checkFilter(n, spec.resource, spec.filterable)
			if err != nil {
				return opts, err
			}
			opts.filter, opts.advanced, opts.terms = n, c.advanced, c.terms
		case name == "$count" && spec.collection && spec.advanced:
			opts.rawCount = v
			switch strings.ToLower(v) {
			case "true":
				opts.count = true
			case "false":
			default:
				return opts, badRequest("Invalid value '%s' for query option '$count': expected true or false.", safeText(v))
			}
		case name == "$search" && spec.collection && len(spec.searchable) > 0:
			opts.rawSearch = v
			if opts.search, err = parseSearch(v, spec); err != nil {
				return opts, err
			}
		case name == "$top" && spec.collection:
			opts.rawTop = v
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxTop {
				return opts, badRequest("Invalid page size specified: '%s'. Must be between 1 and %d inclusive.", safeText(v), maxTop)
			}
			opts.top = n
		case name == "$orderby" && spec.collection && len(spec.orderable) > 0:
			opts.rawOrderBy = v
			if err := parseOrderBy(v, spec, &opts); err != nil {
				return opts, err
			}
		case name == "$skiptoken" && spec.collection:
			skipToken = v // read below: its form depends on $orderby
		default:
			return opts, unsupportedQuery("Query option '%s' is not supported on this resource.", safeText(name))
		}
	}
	if skipToken != "" {
		ok := false
		if opts.orderBy != "" {
			opts.after, opts.afterKey, ok = decodeSortedToken(skipToken)
		} else {
			opts.after, ok = decodeSkipToken(skipToken)
		}
		if !ok {
			return opts, badRequest("The $skiptoken is not valid.")
		}
	}
	return opts, nil
}

// eventual reports whether the request carries ConsistencyLevel: eventual.
func eventual(h http.Header) bool {
	return strings.EqualFold(strings.TrimSpace(h.Get("ConsistencyLevel")), "eventual")
}

// applyAdvanced holds the options to Graph's rules on advanced query
// parameters (https://learn.microsoft.com/graph/aad-advanced-queries,
// "Error handling for advanced queries on directory objects"):
//
//   - $count=true without ConsistencyLevel: eventual is "silently
//     ignored": no @odata.count;
//   - $search without the header is Request_UnsupportedQuery "Request with
//     $search query parameter only works through MSGraph with a special
//     request header: 'ConsistencyLevel: eventual'";
//   - a filter with an operator that is "supported only in advanced
//     queries" needs both the header and $count=true, or is
//     Request_UnsupportedQuery "Operator 'endsWith' is not supported
//     because the required parameters might be missing. …";
//   - without them, at most 15 expressions (known issues).
func (o *queryOptions) applyAdvanced(h http.Header) error {
	ev := eventual(h)
	if o.search != nil && !ev {
		return unsupportedQuery("Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'")
	}
	if !ev {
		o.count = false
	}
	advanced := ev && o.count
	if err := o.checkOrderBy(advanced); err != nil {
		return err
	}
	if o.advanced != "" && !advanced {
		return unsupportedQuery("Operator '%s' is not supported because the required parameters might be missing. Try adding $count=true query parameter and ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for more information", o.advanced)
	}
	if o.terms > defaultFilterTerms && !advanced {
		return unsupportedQuery("The filter has %d expressions; at most %d are supported without advanced query parameters ($count=true and ConsistencyLevel:eventual).", o.terms, defaultFilterTerms)
	}
	return nil
}

// matches reports whether an object, as its decoded Graph view, passes
// the filter and the search.
func (o *queryOptions) matches(obj map[string]any) bool {
	if o.filter != nil && !o.filter.matches(obj) {
		return false
	}
	if o.search != nil && !o.search.matches(obj) {
		return false
	}
	return true
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
// options with the cursor of the next page (the last item's id, and its
// sort key when the collection is sorted).
func (o queryOptions) nextLinkQuery(lastID, lastKey string) string {
	var parts []string
	add := func(name, value string) {
		if value != "" {
			parts = append(parts, name+"="+url.QueryEscape(value))
		}
	}
	add("$filter", o.rawFilter)
	add("$search", o.rawSearch)
	add("$count", o.rawCount)
	add("$select", o.rawSelect)
	add("$top", o.rawTop)
	add("$orderby", o.rawOrderBy)
	if o.orderBy != "" {
		add("$skiptoken", encodeSortedToken(lastID, lastKey))
	} else {
		add("$skiptoken", encodeSkipToken(lastID))
	}
	return strings.Join(parts, "&")
}

// cutIdentifier splits a leading run of letters and digits off s.
func cutIdentifier(s string) (ident, rest string) {
	i := 0
	for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9') {
		i++
	}
	return s[:i], s[i:]
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
