package arm

// The Tags API: Microsoft.Resources/tags/default, the tags of one scope
// as a resource of their own (Tags - Create Or Update At Scope, Update At
// Scope, Get At Scope, Delete At Scope; armresources TagsClient), and the
// subscription's tag names (Tags - List, GET /subscriptions/{id}/tagNames).
//
// Tags live where they always did: on the resource group's record and on
// each resource's generic record, which every type's view reads, so a
// resource's GET shows what the Tags API wrote and a later PUT of the
// resource replaces them, as in Azure. Only types that take tags in Azure
// do here: resource groups and the tracked types the providers list
// ("SupportsTags"); a child or proxy resource (a queue, a rule) has none.
// Subscription tags are not kept: the Tags API refuses a subscription.

import (
	"errors"
	"net/http"
	"sort"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

const (
	// targetTags is {scope}/providers/Microsoft.Resources/tags/default.
	targetTags target = 175
	// targetTagNames is /subscriptions/{sub}/tagNames.
	targetTagNames target = 176
)

// groupWriteAction is what writing a resource group takes.
const groupWriteAction = "Microsoft.Resources/subscriptions/resourceGroups/write"

// tagsPath recognises the Tags API's paths.
func tagsPath(segs []string) (rp.Path, bool, error) {
	n := len(segs)
	if n == 3 && strings.EqualFold(segs[0], "subscriptions") && strings.EqualFold(segs[2], "tagNames") {
		sc, err := rp.ParseScopeText("/subscriptions/" + segs[1])
		if err != nil {
			return rp.Path{}, true, err
		}
		return rp.Path{Target: targetTagNames, Scope: sc, Sub: sc.SubscriptionID()}, true, nil
	}
	if n < 6 || !strings.EqualFold(segs[n-4], "providers") || !strings.EqualFold(segs[n-3], "Microsoft.Resources") || !strings.EqualFold(segs[n-2], "tags") {
		return rp.Path{}, false, nil
	}
	if !strings.EqualFold(segs[n-1], "default") {
		// The tags resource has one name (the REST spec's path fixes it).
		return rp.Path{}, true, rp.BadPath("the tags resource is named 'default'")
	}
	sc, err := rp.ParseScopeText("/" + strings.Join(segs[:n-4], "/"))
	if err != nil {
		return rp.Path{}, true, err
	}
	if sc.SubscriptionID() == "" {
		return rp.Path{}, true, rp.BadPath("tags are served at a resource group or a resource")
	}
	return rp.Path{Target: targetTags, Scope: sc, Sub: sc.SubscriptionID(), RG: rp.ResourceGroupOf(segs[:n-4])}, true, nil
}

// tagsResource is TagsResource.
type tagsResource struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Properties struct {
		Tags map[string]string `json:"tags"`
	} `json:"properties"`
}

// tagsBody is TagsResource and TagsPatchResource as clients send them;
// a tag's value may come as null (armresources' map[string]*string),
// which is the empty value.
type tagsBody struct {
	Operation  string `json:"operation"`
	Properties *struct {
		Tags map[string]*string `json:"tags"`
	} `json:"properties"`
}

// tagged is the record the Tags API reads and writes: a group or a resource.
type tagged struct {
	group *store.ResourceGroup
	res   *store.Resource
}

func (t tagged) tags() map[string]string {
	if t.group != nil {
		return t.group.Tags
	}
	return t.res.Tags
}

// writeAction is the write action of the tagged record's own type, which
// lets its holder write the tags too (Azure: "the Contributor role also
// grants the required access to apply tags to any entity").
func (t tagged) writeAction() string {
	if t.group != nil {
		return groupWriteAction
	}
	return t.res.Type + "/write"
}

func (t tagged) readAction() string {
	if t.group != nil {
		return "Microsoft.Resources/subscriptions/resourceGroups/read"
	}
	return t.res.Type + "/read"
}

// taggedAt finds the record of the path's scope in st.
func (h *Handler) taggedAt(rq *rp.Request, st store.Store) (tagged, error) {
	if rq.Path.RG == "" {
		return tagged{}, rp.BadRequest("tenantbridge keeps no tags of a subscription: tag a resource group or a resource.")
	}
	g, err := rp.PathGroup(rq, st)
	if err != nil {
		return tagged{}, err
	}
	sc := rq.Path.Scope.String()
	if strings.EqualFold(sc, "/subscriptions/"+rq.Path.Sub+"/resourceGroups/"+rq.Path.RG) {
		return tagged{group: &g}, nil
	}
	res, err := st.GetResource(rq.Ctx, sc)
	if errors.Is(err, store.ErrNotFound) {
		return tagged{}, rp.NewError(http.StatusNotFound, "ResourceNotFound", "The Resource '%s' was not found.", rp.SafeText(sc))
	} else if err != nil {
		return tagged{}, rp.InternalError(err)
	}
	if !h.takesTags(res.Type) {
		return tagged{}, rp.BadRequest("The resource type '%s' does not support tags.", rp.SafeText(res.Type))
	}
	return tagged{res: &res}, nil
}

// takesTags reports whether a resource type is one of the tracked types
// the providers list, which are the ones that take tags.
func (h *Handler) takesTags(typ string) bool {
	ns, name, ok := strings.Cut(typ, "/")
	if !ok {
		return false
	}
	p := h.byNamespace[strings.ToLower(ns)]
	if p == nil {
		return false
	}
	t := p.Type(name)
	return t != nil && t.Listed
}

// authorizeTags lets the caller in with the Tags API's own action
// (Microsoft.Resources/tags/…, the Tag Contributor role's) or with the
// tagged record's own action; a refusal names the tags action.
func authorizeTags(rq *rp.Request, tagsAction, ownAction string) error {
	scope := rq.Path.Scope.String()
	for _, action := range []string{tagsAction, ownAction} {
		d, err := rq.Decide(action, scope)
		if err != nil {
			return err
		}
		if d.Allowed {
			rq.Action = action
			return nil
		}
	}
	return rq.Authorize(tagsAction, scope)
}

func tagsViewOf(rq *rp.Request, tags map[string]string) tagsResource {
	v := tagsResource{ID: rq.Path.Scope.String() + "/providers/Microsoft.Resources/tags/default", Name: "default", Type: "Microsoft.Resources/tags"}
	v.Properties.Tags = map[string]string{}
	for k, val := range tags {
		v.Properties.Tags[k] = val
	}
	return v
}

// tags serves {scope}/providers/Microsoft.Resources/tags/default.
func (h *Handler) tags(rq *rp.Request) error {
	tenantID, err := rq.ScopeTenant()
	if err != nil {
		return err
	}
	t, err := h.taggedAt(rq, h.st)
	if err != nil {
		return err
	}
	switch m := rq.R.Method; m {
	case http.MethodGet:
		if err := authorizeTags(rq, "Microsoft.Resources/tags/read", t.readAction()); err != nil {
			return err
		}
		return rp.WriteJSON(rq, http.StatusOK, tagsViewOf(rq, t.tags()))
	case http.MethodPut, http.MethodPatch:
		var body tagsBody
		if err := rp.ReadBody(rq, &body); err != nil {
			return err
		}
		if body.Properties == nil {
			return rp.BadRequest("The parameter properties is required.")
		}
		given, err := tagsOfBody(body.Properties.Tags)
		if err != nil {
			return err
		}
		op := "Replace"
		if m == http.MethodPatch {
			if op, err = patchOperation(body.Operation); err != nil {
				return err
			}
		}
		if err := authorizeTags(rq, "Microsoft.Resources/tags/write", t.writeAction()); err != nil {
			return err
		}
		return h.writeTags(rq, tenantID, func(old map[string]string) map[string]string { return applyTags(op, old, given) })
	case http.MethodDelete:
		if err := authorizeTags(rq, "Microsoft.Resources/tags/delete", t.writeAction()); err != nil {
			return err
		}
		return h.writeTags(rq, tenantID, func(map[string]string) map[string]string { return map[string]string{} })
	default:
		return rp.MethodNotAllowed(m)
	}
}

// patchOperation is a PATCH's operation: Merge, Replace or Delete (the
// TagsPatchOperation enum; Azure refuses any other value).
func patchOperation(op string) (string, error) {
	for _, o := range []string{"Merge", "Replace", "Delete"} {
		if strings.EqualFold(op, o) {
			return o, nil
		}
	}
	return "", rp.NewError(http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: the operation '%s' is not one of Merge, Replace and Delete.", rp.SafeText(op))
}

// tagsOfBody takes the body's tags: a null value is the empty one, and a
// name given twice in different letter case is refused (tag names are
// case-insensitive in Azure).
func tagsOfBody(in map[string]*string) (map[string]string, error) {
	out := make(map[string]string, len(in))
	seen := map[string]bool{}
	for k, v := range in {
		if seen[strings.ToLower(k)] {
			return nil, rp.NewError(http.StatusBadRequest, "InvalidTag", "The tag name '%s' is given more than once.", rp.SafeText(k))
		}
		seen[strings.ToLower(k)] = true
		if v != nil {
			out[k] = *v
		} else {
			out[k] = ""
		}
	}
	return out, nil
}

// applyTags computes the new tags (Tags - Update At Scope): Replace
// replaces them all; Merge adds the given tags, a given name replacing
// the old one of any letter case; Delete removes the given names, or,
// where a value is given, the name only while it holds that value.
func applyTags(op string, old, given map[string]string) map[string]string {
	if op == "Replace" {
		return given
	}
	out := map[string]string{}
	for k, v := range old {
		out[k] = v
	}
	for gk, gv := range given {
		for k, v := range out {
			if !strings.EqualFold(k, gk) {
				continue
			}
			if op == "Merge" || gv == "" || gv == v {
				delete(out, k)
			}
		}
		if op == "Merge" {
			out[gk] = gv
		}
	}
	return out
}

// writeTags sets the tags of the path's record to what change makes of
// them, within Azure's limits, and answers the tags resource.
func (h *Handler) writeTags(rq *rp.Request, tenantID string, change func(old map[string]string) map[string]string) error {
	rq.Target = rq.Path.Scope.String()
	var after map[string]string
	err := rq.Change(tenantID, func(tx store.Store, _ *directory.Service) error {
		t, err := h.taggedAt(rq, tx)
		if err != nil {
			return err
		}
		after = change(t.tags())
		// Azure's limits (learn.microsoft.com/azure/azure-resource-manager/
		// management/tag-resources#limitations): 50 tags, names of 512
		// characters (128 for storage accounts, which tenantbridge does not
		// serve), values of 256, none of <, >, %, &, \, ?, / in a name.
		if err := rp.CheckTags(after); err != nil {
			return err
		}
		now := h.now().UTC()
		if t.group != nil {
			t.group.Tags, t.group.Updated = after, now
			return tx.UpdateResourceGroup(rq.Ctx, *t.group)
		}
		t.res.Tags, t.res.Updated = after, now
		return tx.UpdateResource(rq.Ctx, *t.res)
	})
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, http.StatusOK, tagsViewOf(rq, after))
}

// tagDetails is TagDetails of Tags - List.
type tagDetails struct {
	ID      string     `json:"id"`
	TagName string     `json:"tagName"`
	Count   tagCount   `json:"count"`
	Values  []tagValue `json:"values"`
}

type tagValue struct {
	ID       string   `json:"id"`
	TagValue string   `json:"tagValue"`
	Count    tagCount `json:"count"`
}

type tagCount struct {
	Type  string `json:"type"`
	Value int    `json:"value"`
}

// tagNames lists the subscription's tag names and values, with how many
// of its resource groups and tagged resources carry each (Tags - List;
// Microsoft.Resources/subscriptions/tagNames/read). Names are grouped
// case-insensitively, as Azure's tag names are.
func (h *Handler) tagNames(rq *rp.Request) error {
	if _, err := rq.AuthorizeAt("Microsoft.Resources/subscriptions/tagNames/read"); err != nil {
		return err
	}
	groups, err := h.st.ListResourceGroups(rq.Ctx, rq.Path.Sub)
	if err != nil {
		return rp.InternalError(err)
	}
	resources, err := h.st.ListResources(rq.Ctx, store.ResourceQuery{SubscriptionID: rq.Path.Sub})
	if err != nil {
		return rp.InternalError(err)
	}
	var all []map[string]string
	for _, g := range groups {
		all = append(all, g.Tags)
	}
	for _, r := range resources {
		if h.takesTags(r.Type) {
			all = append(all, r.Tags)
		}
	}
	type entry struct {
		name   string
		count  int
		values map[string]int
	}
	byName := map[string]*entry{}
	for _, tags := range all {
		for k, v := range tags {
			e := byName[strings.ToLower(k)]
			if e == nil {
				e = &entry{name: k, values: map[string]int{}}
				byName[strings.ToLower(k)] = e
			}
			e.count++
			e.values[v]++
		}
	}
	base := "/subscriptions/" + rq.Path.Sub + "/tagNames/"
	var views []tagDetails
	for _, e := range byName {
		d := tagDetails{ID: base + e.name, TagName: e.name, Count: tagCount{Type: "Total", Value: e.count}, Values: []tagValue{}}
		for v, c := range e.values {
			d.Values = append(d.Values, tagValue{ID: base + e.name + "/tagValues/" + v, TagValue: v, Count: tagCount{Type: "Total", Value: c}})
		}
		sort.Slice(d.Values, func(i, j int) bool { return d.Values[i].TagValue < d.Values[j].TagValue })
		views = append(views, d)
	}
	sort.Slice(views, func(i, j int) bool { return strings.ToLower(views[i].TagName) < strings.ToLower(views[j].TagName) })
	p, err := rq.PageOf("$skiptoken", false)
	if err != nil {
		return err
	}
	return rp.WritePage(rq, p, views, func(d tagDetails) string { return strings.ToLower(d.TagName) })
}
