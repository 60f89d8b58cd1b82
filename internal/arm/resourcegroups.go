package arm

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// The actions of the operations in this file.
const (
	actionSubscriptionRead = "Microsoft.Resources/subscriptions/read"
	actionGroupRead        = "Microsoft.Resources/subscriptions/resourceGroups/read"
	actionGroupWrite       = "Microsoft.Resources/subscriptions/resourceGroups/write"
	actionGroupDelete      = "Microsoft.Resources/subscriptions/resourceGroups/delete"
)

type subscriptionView struct {
	ID                   string         `json:"id"`
	AuthorizationSource  string         `json:"authorizationSource"`
	ManagedByTenants     []any          `json:"managedByTenants"`
	SubscriptionID       string         `json:"subscriptionId"`
	TenantID             string         `json:"tenantId"`
	DisplayName          string         `json:"displayName"`
	State                string         `json:"state"`
	SubscriptionPolicies map[string]any `json:"subscriptionPolicies"`
}

func subscriptionOf(t store.Tenant) subscriptionView {
	return subscriptionView{
		ID: "/subscriptions/" + t.SubscriptionID, AuthorizationSource: "RoleBased", ManagedByTenants: []any{},
		SubscriptionID: t.SubscriptionID, TenantID: t.ID, DisplayName: t.Name, State: "Enabled",
		SubscriptionPolicies: map[string]any{"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"},
	}
}

// listSubscriptions lists the token tenant's subscription if the caller
// can see it (subscriptionVisible).
func (h *Handler) listSubscriptions(rq *request) error {
	rq.action = actionSubscriptionRead
	t, err := h.st.GetTenant(rq.ctx, rq.tenantID)
	if errors.Is(err, store.ErrNotFound) {
		return writeJSON(rq, http.StatusOK, map[string]any{"count": map[string]any{"type": "Total", "value": 0}, "value": []any{}})
	} else if err != nil {
		return internalError(err)
	}
	out := []subscriptionView{}
	if t.SubscriptionID != "" {
		visible, err := h.subscriptionVisible(rq, t.SubscriptionID)
		if err != nil {
			return err
		}
		if visible {
			out = append(out, subscriptionOf(t))
		}
	}
	return writeJSON(rq, http.StatusOK, map[string]any{"count": map[string]any{"type": "Total", "value": len(out)}, "value": out})
}

// subscriptionVisible reports whether the caller sees subscription sub of
// the token's tenant in GET /subscriptions and may GET it. As in Azure,
// any role assignment of the caller (directly or through its groups) at
// the subscription, above it or anywhere below it makes it visible: a
// principal that holds Key Vault Secrets User on one vault, or Reader on
// one resource group, lists the subscription (az login, az account list)
// although it may not read the subscription's other resources. Otherwise
// Microsoft.Resources/subscriptions/read must be granted there.
func (h *Handler) subscriptionVisible(rq *request, sub string) (bool, error) {
	scope := "/subscriptions/" + sub
	d, err := h.decide(rq, actionSubscriptionRead, scope)
	if err != nil || d.Allowed {
		return d.Allowed, err
	}
	groups, err := h.dir.TransitiveMemberOf(rq.ctx, rq.tenantID, rq.oid)
	if err != nil {
		return false, internalError(fmt.Errorf("groups of %s: %w", rq.oid, err))
	}
	ids := append([]string{rq.oid}, groups...)
	for _, q := range []store.RoleAssignmentQuery{
		{TenantID: rq.tenantID, ScopePrefix: scope, PrincipalIDs: ids, Limit: 1},
		{TenantID: rq.tenantID, Scopes: []string{"/"}, PrincipalIDs: ids, Limit: 1},
	} {
		as, err := h.st.ListRoleAssignments(rq.ctx, q)
		if err != nil {
			return false, internalError(err)
		}
		if len(as) > 0 {
			return true, nil
		}
	}
	return false, nil
}

func (h *Handler) getSubscription(rq *request) error {
	tenantID, err := h.scopeTenant(rq)
	if err != nil {
		return err
	}
	visible, err := h.subscriptionVisible(rq, rq.path.sub)
	if err != nil {
		return err
	}
	if !visible {
		// authorize refuses it with AuthorizationFailed and its explanation.
		if err := h.authorize(rq, actionSubscriptionRead, rq.path.scope.String()); err != nil {
			return err
		}
	}
	rq.action = actionSubscriptionRead
	t, err := h.st.GetTenant(rq.ctx, tenantID)
	if err != nil {
		return internalError(err)
	}
	return writeJSON(rq, http.StatusOK, subscriptionOf(t))
}

type groupView struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Type     string            `json:"type"`
	Location string            `json:"location"`
	Tags     map[string]string `json:"tags,omitempty"`
	// ManagedBy is the managed application whose managed resource group
	// this is, as Resource Manager shows it.
	ManagedBy  string            `json:"managedBy,omitempty"`
	Properties map[string]string `json:"properties"`
}

// groupOf is g's view; managedBy maps lower-cased group ids to the
// managed applications that manage them (managedGroups).
func groupOf(g store.ResourceGroup, managedBy map[string]string) groupView {
	id := "/subscriptions/" + g.SubscriptionID + "/resourceGroups/" + g.Name
	return groupView{ID: id, Name: g.Name, Type: "Microsoft.Resources/resourceGroups", Location: g.Location, Tags: g.Tags,
		ManagedBy: managedBy[strings.ToLower(id)], Properties: map[string]string{"provisioningState": "Succeeded"}}
}

// managedGroups maps the managed resource groups of the subscription's
// managed applications (lower-cased ids) to the applications' ids.
func (h *Handler) managedGroups(rq *request, subscriptionID string) (map[string]string, error) {
	apps, err := h.st.ListResources(rq.ctx, store.ResourceQuery{SubscriptionID: subscriptionID, Type: applicationType})
	if err != nil {
		return nil, internalError(err)
	}
	out := map[string]string{}
	for _, a := range apps {
		st, err := stateOf(a)
		if err != nil {
			return nil, err
		}
		if st.ManagedResourceGroupID != "" {
			out[strings.ToLower(st.ManagedResourceGroupID)] = a.ID
		}
	}
	return out, nil
}

func rgNotFound(name string) error {
	return newError(http.StatusNotFound, "ResourceGroupNotFound", "Resource group '%s' could not be found.", safeText(name))
}

// listResourceGroups lists the groups the caller may read, by name
// (case-insensitively), a page at a time ($top, $skiptoken, nextLink).
func (h *Handler) listResourceGroups(rq *request) error {
	if _, err := h.scopeTenant(rq); err != nil {
		return err
	}
	rq.action = actionGroupRead
	p, err := h.pageOf(rq, "$skiptoken", true)
	if err != nil {
		return err
	}
	gs, err := h.st.ListResourceGroups(rq.ctx, rq.path.sub)
	if err != nil {
		return internalError(err)
	}
	key := func(g store.ResourceGroup) string { return strings.ToLower(g.Name) }
	slices.SortFunc(gs, func(a, b store.ResourceGroup) int { return strings.Compare(key(a), key(b)) })
	readable, next, err := page(p, gs, key, func(g store.ResourceGroup) (bool, error) {
		d, err := h.decide(rq, actionGroupRead, "/subscriptions/"+g.SubscriptionID+"/resourceGroups/"+g.Name)
		return d.Allowed, err
	})
	if err != nil {
		return err
	}
	managedBy, err := h.managedGroups(rq, rq.path.sub)
	if err != nil {
		return err
	}
	out := make([]groupView, 0, len(readable))
	for _, g := range readable {
		out = append(out, groupOf(g, managedBy))
	}
	return writeJSON(rq, http.StatusOK, list[groupView]{Value: out, NextLink: nextLink(rq, p, next)})
}

func (h *Handler) getResourceGroup(rq *request) error {
	if _, err := h.scopeTenant(rq); err != nil {
		return err
	}
	if err := h.authorize(rq, actionGroupRead, rq.path.scope.String()); err != nil {
		return err
	}
	g, err := h.st.GetResourceGroup(rq.ctx, rq.path.sub, rq.path.rg)
	if errors.Is(err, store.ErrNotFound) {
		return rgNotFound(rq.path.rg)
	} else if err != nil {
		return internalError(err)
	}
	managedBy, err := h.managedGroups(rq, rq.path.sub)
	if err != nil {
		return err
	}
	return writeJSON(rq, http.StatusOK, groupOf(g, managedBy))
}

// normalizeLocation is ARM's form of a location: lower case, no spaces
// ("West Europe" → "westeurope").
func normalizeLocation(l string) string {
	return strings.ToLower(strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, l))
}

func checkTags(tags map[string]string) error {
	if len(tags) > 50 {
		return newError(http.StatusBadRequest, "InvalidTag", "The resource has more than 50 tags.")
	}
	for k, v := range tags {
		if k == "" || len(k) > 512 || len(v) > 256 || strings.ContainsAny(k, "<>%&\\?/") {
			return newError(http.StatusBadRequest, "InvalidTagNameCharacters", "The tag name '%s' has invalid characters or length.", safeText(k))
		}
	}
	return nil
}

func (h *Handler) putResourceGroup(rq *request) error {
	tenantID, err := h.scopeTenant(rq)
	if err != nil {
		return err
	}
	if err := h.authorize(rq, actionGroupWrite, rq.path.scope.String()); err != nil {
		return err
	}
	var body struct {
		Location  string            `json:"location"`
		Tags      map[string]string `json:"tags"`
		ManagedBy string            `json:"managedBy"`
	}
	if err := readBody(rq, &body); err != nil {
		return err
	}
	location := normalizeLocation(body.Location)
	if location == "" {
		return newError(http.StatusBadRequest, "LocationRequired", "The location property is required for this definition.")
	}
	if len(location) > 64 {
		return newError(http.StatusBadRequest, "LocationNotAvailableForResourceGroup", "The provided location '%s' is not available for resource group.", safeText(location))
	}
	if err := checkTags(body.Tags); err != nil {
		return err
	}
	status := http.StatusOK
	var out store.ResourceGroup
	err = h.change(rq, tenantID, func(tx store.Store, _ *directory.Service) error {
		now := h.now().UTC()
		g, err := tx.GetResourceGroup(rq.ctx, rq.path.sub, rq.path.rg)
		switch {
		case errors.Is(err, store.ErrNotFound):
			status = http.StatusCreated
			g = store.ResourceGroup{TenantID: tenantID, SubscriptionID: rq.path.sub, Name: rq.path.rg, Location: location, Tags: body.Tags, Created: now, Updated: now}
			rq.action = "Microsoft.Resources/subscriptions/resourceGroups/write"
			if err := tx.CreateResourceGroup(rq.ctx, g); err != nil {
				return internalError(err)
			}
		case err != nil:
			return internalError(err)
		default:
			if g.Location != location {
				return newError(http.StatusConflict, "InvalidResourceGroupLocation",
					"Invalid resource group location '%s'. The Resource group already exists in location '%s' in resource group '%s'. A resource group cannot be created with the same name in a different location. Please select a new resource group name.",
					safeText(location), g.Location, g.Name)
			}
			g.Tags, g.Updated = body.Tags, now
			if err := tx.UpdateResourceGroup(rq.ctx, g); err != nil {
				return internalError(err)
			}
		}
		out = g
		rq.target = groupOf(g, nil).ID
		return nil
	})
	if err != nil {
		return err
	}
	managedBy, err := h.managedGroups(rq, rq.path.sub)
	if err != nil {
		return err
	}
	return writeJSON(rq, status, groupOf(out, managedBy))
}

func (h *Handler) deleteResourceGroup(rq *request) error {
	tenantID, err := h.scopeTenant(rq)
	if err != nil {
		return err
	}
	if err := h.authorize(rq, actionGroupDelete, rq.path.scope.String()); err != nil {
		return err
	}
	err = h.change(rq, tenantID, func(tx store.Store, dir *directory.Service) error {
		g, err := tx.GetResourceGroup(rq.ctx, rq.path.sub, rq.path.rg)
		if errors.Is(err, store.ErrNotFound) {
			return rgNotFound(rq.path.rg)
		} else if err != nil {
			return internalError(err)
		}
		rq.target = groupOf(g, nil).ID
		if err := deleteGroupVaults(rq, tx, g); err != nil { // vaults.go
			return err
		}
		if err := deleteGroupIdentities(rq, dir, g); err != nil { // identities.go
			return err
		}
		// Service Bus namespaces and queues are generic resources: the
		// group's delete below removes them.
		if err := tx.DeleteResourceGroup(rq.ctx, g.SubscriptionID, g.Name); err != nil {
			return internalError(err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	rq.w.WriteHeader(http.StatusOK)
	return nil
}

// scopeKey is a scope's comparison form; a helper for callers holding text.
func scopeKey(s string) string {
	if sc, err := rbac.ParseScope(s); err == nil {
		return sc.Key()
	}
	return strings.ToLower(s)
}
