package graph

// $orderby on directory object collections, held to Graph's table
// "Support for sorting by properties of Microsoft Entra ID (directory)
// objects" (https://learn.microsoft.com/graph/aad-advanced-queries):
//
//	application       displayName        advanced query parameters only
//	servicePrincipal  displayName        advanced query parameters only
//	group             displayName        by default
//	user              displayName, userPrincipalName   by default
//
// and "Use of $filter and $orderby in the same query for directory objects
// always requires advanced query parameters" (ConsistencyLevel: eventual
// and $count=true). One property, ascending (the default) or descending;
// anything else is Request_UnsupportedQuery "Sorting not supported for
// current query.", Graph's answer to a sort it does not serve. $search
// with $orderby is held to the same advanced parameters as $filter.
// (createdDateTime and deletedDateTime, which Graph sorts on in advanced
// queries, are not served here yet: they are refused the same way.)
//
// Values sort without regard to case, then by id, so that the order is
// total and the $skiptoken (the last item's value and id) resumes exactly
// where the page ended even when items come and go between pages.

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// orderable maps the properties a collection sorts on to whether sorting
// on it needs the advanced query parameters.
type orderable map[string]bool

var (
	applicationOrder      = orderable{"displayName": true}
	servicePrincipalOrder = orderable{"displayName": true}
	groupOrder            = orderable{"displayName": false}
	userOrder             = orderable{"displayName": false, "userPrincipalName": false}
)

// sortingNotSupported is Graph's refusal of a $orderby.
func sortingNotSupported() *graphError {
	return unsupportedQuery("Sorting not supported for current query.")
}

// parseOrderBy reads "$orderby=prop[ asc| desc]" against the collection's
// orderable properties (matched without case, as Graph's names are).
func parseOrderBy(v string, spec querySpec, opts *queryOptions) error {
	fields := strings.Fields(v)
	if len(fields) == 0 || len(fields) > 2 || strings.Contains(v, ",") {
		return sortingNotSupported()
	}
	if len(fields) == 2 {
		switch strings.ToLower(fields[1]) {
		case "asc":
		case "desc":
			opts.desc = true
		default:
			return sortingNotSupported()
		}
	}
	for name, advanced := range spec.orderable {
		if strings.EqualFold(name, fields[0]) {
			opts.orderBy, opts.orderAdvanced = name, advanced
			return nil
		}
	}
	return sortingNotSupported()
}

// checkOrderBy holds a sorted request to the advanced query parameters
// where Graph needs them; advanced tells whether the request has them.
func (o *queryOptions) checkOrderBy(advanced bool) error {
	if o.orderBy == "" || advanced {
		return nil
	}
	if o.orderAdvanced || o.filter != nil || o.search != nil {
		return sortingNotSupported()
	}
	return nil
}

// sortedItem is one object of a sorted collection.
type sortedItem struct {
	id, key string
	e       entity
}

// sortKey is the value an object sorts by: its property, without case
// ("" for null).
func sortKey(e entity, prop string) string {
	var s string
	if raw, ok := e[prop]; ok {
		_ = json.Unmarshal(raw, &s) // null and non-strings sort as ""
	}
	return strings.ToLower(s)
}

// compareSorted orders by key, then id, reversed for desc.
func compareSorted(a, b sortedItem, desc bool) int {
	c := cmp.Or(strings.Compare(a.key, b.key), strings.Compare(a.id, b.id))
	if desc {
		return -c
	}
	return c
}

// sortedPicker gathers the page of a sorted collection while it is
// scanned: of the objects after the cursor, only the top+1 first in sort
// order are kept (one more than the page, to know that another follows),
// so that a page costs memory for its own items, not the collection's.
type sortedPicker struct {
	opts  queryOptions
	items []sortedItem
}

// add offers one matching object.
func (s *sortedPicker) add(it sortedItem) {
	if s.opts.after != "" && compareSorted(it, sortedItem{id: s.opts.after, key: s.opts.afterKey}, s.opts.desc) <= 0 {
		return // on an earlier page
	}
	s.items = append(s.items, it)
	if len(s.items) >= 2*(s.opts.top+1) {
		s.trim()
	}
}

// trim sorts the items kept and drops all but the top+1 first.
func (s *sortedPicker) trim() {
	slices.SortFunc(s.items, func(a, b sortedItem) int { return compareSorted(a, b, s.opts.desc) })
	clear(s.items[min(len(s.items), s.opts.top+1):])
	s.items = s.items[:min(len(s.items), s.opts.top+1)]
}

// page returns the page after the cursor: at most top items, whether more
// follow, and the next cursor.
func (s *sortedPicker) page() page {
	s.trim()
	var p page
	for _, it := range s.items {
		if len(p.items) == s.opts.top {
			p.more = true
			break
		}
		p.items = append(p.items, it.e)
		p.last, p.lastKey = it.id, it.key
	}
	return p
}

// A sorted collection's $skiptoken is base64url("~" + id + key): the
// marker keeps it apart from an id-only token, and the id comes first
// because its length is fixed.
const sortedTokenMark = "~"

func encodeSortedToken(id, key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(sortedTokenMark + id + key))
}

// decodeSortedToken reads a sorted collection's token.
func decodeSortedToken(tok string) (id, key string, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	s := string(b)
	if err != nil || !strings.HasPrefix(s, sortedTokenMark) || len(s) < 1+36 || !utf8.ValidString(s) {
		return "", "", false
	}
	id, key = s[1:37], s[37:]
	if _, err := uuid.Parse(id); err != nil {
		return "", "", false
	}
	return id, key, true
}
