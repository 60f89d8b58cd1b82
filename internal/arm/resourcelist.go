package arm

// Resources - List and Resources - List By Resource Group
// (Microsoft.Resources, the operations `az resource list` and
// `az keyvault show -n` without -g call):
//
//	GET /subscriptions/{sub}/resources[?$filter=…&$expand=…&$top=…]
//	GET /subscriptions/{sub}/resourceGroups/{rg}/resources[?…]
//
// https://learn.microsoft.com/rest/api/resources/resources/list and
// /list-by-resource-group. The answer is a page of GenericResourceExpanded:
// the tracked (top-level) resources of the subscription or group — vaults,
// user-assigned identities, Service Bus namespaces, managed application
// definitions and applications — not their child or proxy resources
// (queues, federated credentials, authorization rules), as Azure lists
// them. Each is listed only when the caller may read it ({type}/read at its
// id), so a principal with a role on one group sees that group's
// resources, as Resource Manager filters the list by the caller's access.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// targetResourceList is a subscription's or a group's resources collection.
const targetResourceList target = 140

// resourceListPath recognises /subscriptions/{sub}/resources and
// /subscriptions/{sub}/resourceGroups/{rg}/resources (segments without
// the leading slash).
func resourceListPath(segs []string) (rp.Path, bool, error) {
	is := func(i int, s string) bool { return strings.EqualFold(segs[i], s) }
	n := len(segs)
	if n < 3 || !is(0, "subscriptions") || segs[1] == "" || !is(n-1, "resources") {
		return rp.Path{}, false, nil
	}
	scopeText := "/subscriptions/" + segs[1]
	switch {
	case n == 3:
	case n == 5 && is(2, "resourceGroups") && segs[3] != "":
		scopeText += "/resourceGroups/" + segs[3]
	default:
		return rp.Path{}, false, nil
	}
	sc, err := rp.ParseScopeText(scopeText)
	if err != nil {
		return rp.Path{}, true, err
	}
	return rp.Path{Target: targetResourceList, Scope: sc, Sub: sc.SubscriptionID(), RG: rp.ResourceGroupOf(segs)}, true, nil
}

// genericResource is Resource Manager's GenericResourceExpanded as the
// list writes it: what every resource has, plus the kind, plan, sku,
// identity and managedBy of the types that have them, and, when $expand
// asks, createdTime, changedTime and provisioningState.
type genericResource struct {
	ID                string            `json:"id"`
	Name              string            `json:"name"`
	Type              string            `json:"type"`
	Location          string            `json:"location,omitempty"`
	Tags              map[string]string `json:"tags,omitempty"`
	Kind              string            `json:"kind,omitempty"`
	Plan              json.RawMessage   `json:"plan,omitempty"`
	Sku               json.RawMessage   `json:"sku,omitempty"`
	Identity          json.RawMessage   `json:"identity,omitempty"`
	ManagedBy         string            `json:"managedBy,omitempty"`
	CreatedTime       *time.Time        `json:"createdTime,omitempty"`
	ChangedTime       *time.Time        `json:"changedTime,omitempty"`
	ProvisioningState string            `json:"provisioningState,omitempty"`
	// created and changed are the record's times, written only when
	// $expand names them.
	created, changed time.Time
	// record and view give the members of the type's own view (kind,
	// plan, sku, identity, managedBy), rendered by withView for the
	// resources of the page only: the filter reads none of them.
	record *store.Resource
	view   func(store.Resource) (any, error)
}

// listResources answers Resources - List (By Resource Group).
func (h *Handler) listResources(rq *rp.Request) error {
	if rq.R.Method != http.MethodGet {
		return rp.MethodNotAllowed(rq.R.Method)
	}
	action := "Microsoft.Resources/subscriptions/resources/read"
	if rq.Path.RG != "" {
		action = "Microsoft.Resources/subscriptions/resourceGroups/resources/read"
	}
	tenantID, err := rq.ListTenant(action)
	if err != nil {
		return err
	}
	q := rq.R.URL.Query()
	f, err := parseResourceFilter(q.Get("$filter"))
	if err != nil {
		return err
	}
	expand := map[string]bool{}
	// The documented values of $expand are createdTime, changedTime and
	// provisioningState; others add nothing.
	for v := range strings.SplitSeq(q.Get("$expand"), ",") {
		expand[strings.ToLower(strings.TrimSpace(v))] = true
	}
	p, err := rq.PageOf("$skiptoken", true)
	if err != nil {
		return err
	}
	items, err := h.trackedResources(rq, tenantID)
	if err != nil {
		return err
	}
	key := func(g genericResource) string { return strings.ToLower(g.ID) }
	slices.SortFunc(items, func(a, b genericResource) int { return strings.Compare(key(a), key(b)) })
	out, next, err := rp.Page(p, items, key, func(g genericResource) (bool, error) {
		if !f.match(g) {
			return false, nil
		}
		d, err := rq.Decide(g.Type+"/read", g.ID)
		return d.Allowed, err
	})
	if err != nil {
		return err
	}
	if out == nil {
		out = []genericResource{}
	}
	for i := range out {
		if err := out[i].withView(); err != nil {
			return err
		}
		if f.tagged {
			// "When you filter by a tag name and value, the tags for each
			// resource are not returned in the results."
			out[i].Tags = nil
		}
		if expand["createdtime"] {
			out[i].CreatedTime = &out[i].created
		}
		if expand["changedtime"] {
			out[i].ChangedTime = &out[i].changed
		}
		if expand["provisioningstate"] {
			out[i].ProvisioningState = "Succeeded"
		}
	}
	return rp.WriteJSON(rq, http.StatusOK, rp.List[genericResource]{Value: out, NextLink: rp.NextLink(rq, p, next)})
}

// trackedResources are the listed resources of the path's subscription or
// group: the generic records of the providers' listed types (a child type
// such as namespaces/queues is a proxy resource, which Resources - List
// does not return), and the providers' tracked resources that have no
// record (rp.Provider.Unrecorded).
func (h *Handler) trackedResources(rq *rp.Request, tenantID string) ([]genericResource, error) {
	var out []genericResource
	for _, p := range h.providers {
		for _, t := range p.Types {
			if !t.Listed {
				continue
			}
			rs, err := h.st.ListResources(rq.Ctx, store.ResourceQuery{SubscriptionID: rq.Path.Sub, ResourceGroup: rq.Path.RG, Type: p.Namespace + "/" + t.Name})
			if err != nil {
				return nil, rp.InternalError(err)
			}
			for _, res := range rs {
				if !strings.EqualFold(res.TenantID, tenantID) {
					continue
				}
				out = append(out, genericResource{ID: res.ID, Name: res.Name, Type: res.Type, Location: res.Location, Tags: res.Tags,
					created: res.Created.UTC(), changed: res.Updated.UTC(), record: &res, view: t.View})
			}
		}
		if p.Unrecorded == nil {
			continue
		}
		rs, err := p.Unrecorded(rq, tenantID)
		if err != nil {
			return nil, err
		}
		for _, res := range rs {
			if rp.IDIn(res.ID, rq.Path.Sub, rq.Path.RG) {
				out = append(out, genericResource{ID: res.ID, Name: res.Name, Type: res.Type, created: res.Created, changed: res.Updated})
			}
		}
	}
	return out, nil
}

// withView adds to g the top-level members its own type's view (none
// without a record or a view) has besides properties.
func (g *genericResource) withView() error {
	if g.record == nil || g.view == nil {
		return nil
	}
	typed, err := g.view(*g.record)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(typed)
	if err != nil {
		return rp.InternalError(err)
	}
	var top struct {
		Kind      string          `json:"kind"`
		Plan      json.RawMessage `json:"plan"`
		Sku       json.RawMessage `json:"sku"`
		Identity  json.RawMessage `json:"identity"`
		ManagedBy string          `json:"managedBy"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		return rp.InternalError(err)
	}
	g.Kind, g.ManagedBy = top.Kind, top.ManagedBy
	for dst, src := range map[*json.RawMessage]json.RawMessage{&g.Plan: top.Plan, &g.Sku: top.Sku, &g.Identity: top.Identity} {
		if len(src) > 0 && string(src) != "null" {
			*dst = src
		}
	}
	return nil
}

// ---- $filter ----

// maxFilterTerms bounds the terms of one $filter.
const maxFilterTerms = 32

// resourceFilter is a parsed $filter of Resources - List: terms joined by
// and/or ("and" binds tighter), or one tag condition.
type resourceFilter struct {
	// any is a disjunction of conjunctions; empty matches everything.
	any [][]filterTerm
	// tagged is set when the filter is a tag condition, which Azure
	// answers without the resources' tags.
	tagged bool
}

// filterTerm is one condition: prop eq/ne value, substringof(value, prop),
// or a tag condition (prop "tagname" or "tagvalue", op "eq" or "startswith").
type filterTerm struct {
	prop, op, value string
}

func (f resourceFilter) match(g genericResource) bool {
	if len(f.any) == 0 {
		return true
	}
	for _, all := range f.any {
		if f.matchAll(all, g) {
			return true
		}
	}
	return false
}

func (f resourceFilter) matchAll(all []filterTerm, g genericResource) bool {
	if f.tagged {
		return matchTag(all, g.Tags)
	}
	for _, t := range all {
		var v string
		switch t.prop {
		case "name":
			v = g.Name
		case "resourcetype":
			v = g.Type
		case "resourcegroup":
			v = rp.ResourceGroupOf(strings.Split(strings.TrimPrefix(g.ID, "/"), "/"))
		case "location":
			v, t.value = rp.NormalizeLocation(g.Location), rp.NormalizeLocation(t.value)
		}
		var ok bool
		switch t.op {
		case "eq":
			ok = strings.EqualFold(v, t.value)
		case "ne":
			ok = !strings.EqualFold(v, t.value)
		case "substringof":
			ok = strings.Contains(strings.ToLower(v), strings.ToLower(t.value))
		}
		if !ok {
			return false
		}
	}
	return true
}

// matchTag matches a tag condition (tagName eq, tagName eq and tagValue
// eq, startswith(tagName, …)): tag names compare without case, values
// exactly.
func matchTag(all []filterTerm, tags map[string]string) bool {
	var name, value, prefix string
	hasValue := false
	for _, t := range all {
		switch {
		case t.prop == "tagname" && t.op == "startswith":
			prefix = t.value
		case t.prop == "tagname":
			name = t.value
		default:
			value, hasValue = t.value, true
		}
	}
	for k, v := range tags {
		switch {
		case prefix != "" && strings.HasPrefix(strings.ToLower(k), strings.ToLower(prefix)):
			return true
		case prefix == "" && strings.EqualFold(k, name) && (!hasValue || v == value):
			return true
		}
	}
	return false
}

// invalidFilter is Resource Manager's refusal of a $filter
// (InvalidFilterInQueryString, as in Azure/azure-sdk-for-go#2480).
func invalidFilter(filter, why string) error {
	return rp.NewError(http.StatusBadRequest, "InvalidFilterInQueryString", "Invalid $filter '%s' specified in the query string: %s.", rp.SafeText(filter), why)
}

// parseResourceFilter parses the $filter forms Resources - List documents:
//
//	prop eq 'v' | prop ne 'v'       prop: name, resourceType, resourceGroup, location
//	substringof('v', name|resourceGroup)
//	… and … | … or …
//	tagName eq 'k' [and tagValue eq 'v'] | startswith(tagName, 'k')   (alone)
//
// The documented identity and plan properties are refused (no resource
// here has a plan, and identities are not indexed), as is every other
// form. An empty filter (az sends "$filter=") matches everything.
func parseResourceFilter(s string) (resourceFilter, error) {
	var f resourceFilter
	if strings.TrimSpace(s) == "" {
		return f, nil
	}
	if len(s) > 2048 {
		return f, invalidFilter(s[:64]+"…", "it is longer than 2048 characters")
	}
	toks, err := filterTokens(s)
	if err != nil {
		return f, invalidFilter(s, err.Error())
	}
	var all []filterTerm
	terms := 0
	for i := 0; ; {
		t, n, err := filterTermAt(toks[i:])
		if err != nil {
			return f, invalidFilter(s, err.Error())
		}
		if terms++; terms > maxFilterTerms {
			return f, invalidFilter(s, fmt.Sprintf("a filter has at most %d conditions", maxFilterTerms))
		}
		all = append(all, t)
		i += n
		if i == len(toks) {
			f.any = append(f.any, all)
			break
		}
		switch op := strings.ToLower(toks[i].text); {
		case toks[i].quoted:
			return f, invalidFilter(s, "expected 'and' or 'or'")
		case op == "and":
		case op == "or":
			f.any = append(f.any, all)
			all = nil
		default:
			return f, invalidFilter(s, fmt.Sprintf("expected 'and' or 'or' at '%s'", toks[i].text))
		}
		if i++; i == len(toks) {
			return f, invalidFilter(s, "it ends with an operator")
		}
	}
	return f, checkTagFilter(s, &f)
}

// checkTagFilter enforces that a tag condition stands alone, in one of the
// documented forms; it sets f.tagged for one.
func checkTagFilter(s string, f *resourceFilter) error {
	tagTerms := 0
	for _, all := range f.any {
		for _, t := range all {
			if t.prop == "tagname" || t.prop == "tagvalue" {
				tagTerms++
			}
		}
	}
	if tagTerms == 0 {
		return nil
	}
	bad := invalidFilter(s, "a tag filter is tagName eq 'name' [and tagValue eq 'value'] or startswith(tagName, 'prefix'), alone")
	if len(f.any) != 1 {
		return bad
	}
	all := f.any[0]
	switch {
	case len(all) == 1 && all[0].prop == "tagname":
	case len(all) == 2 && all[0].prop == "tagname" && all[0].op == "eq" && all[1].prop == "tagvalue":
	default:
		return bad
	}
	f.tagged = true
	return nil
}

// filterToken is a word, a punctuation mark ("(", ")", ","), or a quoted
// string (its value unescaped).
type filterToken struct {
	text   string
	quoted bool
}

func filterTokens(s string) ([]filterToken, error) {
	var toks []filterToken
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '(' || c == ')' || c == ',':
			toks = append(toks, filterToken{text: string(c)})
			i++
		case c == '\'':
			var b strings.Builder
			i++
			for {
				if i >= len(s) {
					return nil, errors.New("a quoted value is not closed")
				}
				if s[i] == '\'' {
					if i+1 < len(s) && s[i+1] == '\'' {
						b.WriteByte('\'')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			toks = append(toks, filterToken{text: b.String(), quoted: true})
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t(),'", rune(s[j])) {
				j++
			}
			toks = append(toks, filterToken{text: s[i:j]})
			i = j
		}
	}
	return toks, nil
}

// filterProps are the properties eq and ne take, by their lower-case name.
var filterProps = map[string]string{"name": "name", "resourcetype": "resourcetype", "resourcegroup": "resourcegroup",
	"location": "location", "tagname": "tagname", "tagvalue": "tagvalue"}

// filterTermAt parses the condition that toks start with and returns it
// with the number of tokens it took.
func filterTermAt(toks []filterToken) (filterTerm, int, error) {
	word := func(i int) string {
		if i < len(toks) && !toks[i].quoted {
			return strings.ToLower(toks[i].text)
		}
		return ""
	}
	quoted := func(i int) (string, bool) {
		if i < len(toks) && toks[i].quoted {
			return toks[i].text, true
		}
		return "", false
	}
	switch fn := word(0); fn {
	case "substringof", "startswith":
		// substringof('value', name|resourceGroup); startswith(tagName, 'prefix').
		if word(1) != "(" || word(3) != "," || word(5) != ")" {
			return filterTerm{}, 0, fmt.Errorf("expected %s(…, …)", toks[0].text)
		}
		if fn == "substringof" {
			v, ok := quoted(2)
			if p := word(4); !ok || (p != "name" && p != "resourcegroup") {
				return filterTerm{}, 0, errors.New("substringof takes a quoted value and name or resourceGroup")
			}
			return filterTerm{prop: word(4), op: "substringof", value: v}, 6, nil
		}
		v, ok := quoted(4)
		if word(2) != "tagname" || !ok {
			return filterTerm{}, 0, errors.New("startswith takes tagName and a quoted prefix")
		}
		return filterTerm{prop: "tagname", op: "startswith", value: v}, 6, nil
	}
	prop, known := filterProps[word(0)]
	if !known {
		if len(toks) == 0 {
			return filterTerm{}, 0, errors.New("a condition is missing")
		}
		return filterTerm{}, 0, fmt.Errorf("the property '%s' cannot be filtered on here; the properties are name, resourceType, resourceGroup, location, tagName and tagValue", toks[0].text)
	}
	op := word(1)
	v, ok := quoted(2)
	if (op != "eq" && op != "ne") || !ok {
		return filterTerm{}, 0, fmt.Errorf("expected %s eq 'value' or %s ne 'value'", toks[0].text, toks[0].text)
	}
	if op == "ne" && (prop == "tagname" || prop == "tagvalue") {
		return filterTerm{}, 0, errors.New("tags are filtered with eq only")
	}
	return filterTerm{prop: prop, op: op, value: v}, 3, nil
}
