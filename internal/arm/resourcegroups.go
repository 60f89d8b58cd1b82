package arm

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
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
func (h *Handler) listSubscriptions(rq *rp.Request) error {
	rq.Action = actionSubscriptionRead
	t, err := h.st.GetTenant(rq.Ctx, rq.TenantID)
	if errors.Is(err, store.ErrNotFound) {
		return rp.WriteJSON(rq, http.StatusOK, map[string]any{"count": map[string]any{"type": "Total", "value": 0}, "value": []any{}})
	} else if err != nil {
		return rp.InternalError(err)
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
	return rp.WriteJSON(rq, http.StatusOK, map[string]any{"count": map[string]any{"type": "Total", "value": len(out)}, "value": out})
}

// subscriptionVisible reports whether the caller sees subscription sub of
// the token's tenant in GET /subscriptions and may GET it. As in Azure,
// any role assignment of the caller (directly or through its groups) at
// the subscription, above it or anywhere below it makes it visible: a
// principal that holds Key Vault Secrets User on one vault, or Reader on
// one resource group, lists the subscription (az login, az account list)
// although it may not read the subscription's other resources. Otherwise
// Microsoft.Resources/subscriptions/read must be granted there.
func (h *Handler) subscriptionVisible(rq *rp.Request, sub string) (bool, error) {
	scope := "/subscriptions/" + sub
	d, err := rq.Decide(actionSubscriptionRead, scope)
	if err != nil || d.Allowed {
		return d.Allowed, err
	}
	groups, err := h.dir.TransitiveMemberOf(rq.Ctx, rq.TenantID, rq.OID)
	if err != nil {
		return false, rp.InternalError(fmt.Errorf("groups of %s: %w", rq.OID, err))
	}
	ids := append([]string{rq.OID}, groups...)
	for _, q := range []store.RoleAssignmentQuery{
		{TenantID: rq.TenantID, ScopePrefix: scope, PrincipalIDs: ids, Limit: 1},
		{TenantID: rq.TenantID, Scopes: []string{"/"}, PrincipalIDs: ids, Limit: 1},
	} {
		as, err := h.st.ListRoleAssignments(rq.Ctx, q)
		if err != nil {
			return false, rp.InternalError(err)
		}
		if len(as) > 0 {
			return true, nil
		}
	}
	return false, nil
}

func (h *Handler) getSubscription(rq *rp.Request) error {
	tenantID, err := rq.ScopeTenant()
	if err != nil {
		return err
	}
	visible, err := h.subscriptionVisible(rq, rq.Path.Sub)
	if err != nil {
		return err
	}
	if !visible {
		// authorize refuses it with AuthorizationFailed and its explanation.
		if err := rq.Authorize(actionSubscriptionRead, rq.Path.Scope.String()); err != nil {
			return err
		}
	}
	rq.Action = actionSubscriptionRead
	t, err := h.st.GetTenant(rq.Ctx, tenantID)
	if err != nil {
		return rp.InternalError(err)
	}
	return rp.WriteJSON(rq, http.StatusOK, subscriptionOf(t))
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

// managedGroups maps the lower-cased ids of the subscription's resource
// groups that a resource manages (a managed application's managed
// resource group) to that resource's id: the providers' GroupManagers.
func (h *Handler) managedGroups(rq *rp.Request, subscriptionID string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range h.providers {
		if p.GroupManagers == nil {
			continue
		}
		m, err := p.GroupManagers(rq, subscriptionID)
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			out[k] = v
		}
	}
	return out, nil
}

// listResourceGroups lists the groups the caller may read, by name
// (case-insensitively), a page at a time ($top, $skiptoken, nextLink).
func (h *Handler) listResourceGroups(rq *rp.Request) error {
	if _, err := rq.ScopeTenant(); err != nil {
		return err
	}
	rq.Action = actionGroupRead
	p, err := rq.PageOf("$skiptoken", true)
	if err != nil {
		return err
	}
	gs, err := h.st.ListResourceGroups(rq.Ctx, rq.Path.Sub)
	if err != nil {
		return rp.InternalError(err)
	}
	key := func(g store.ResourceGroup) string { return strings.ToLower(g.Name) }
	slices.SortFunc(gs, func(a, b store.ResourceGroup) int { return strings.Compare(key(a), key(b)) })
	readable, next, err := rp.Page(p, gs, key, func(g store.ResourceGroup) (bool, error) {
		d, err := rq.Decide(actionGroupRead, "/subscriptions/"+g.SubscriptionID+"/resourceGroups/"+g.Name)
		return d.Allowed, err
	})
	if err != nil {
		return err
	}
	managedBy, err := h.managedGroups(rq, rq.Path.Sub)
	if err != nil {
		return err
	}
	out := make([]groupView, 0, len(readable))
	for _, g := range readable {
		out = append(out, groupOf(g, managedBy))
	}
	return rp.WriteJSON(rq, http.StatusOK, rp.List[groupView]{Value: out, NextLink: rp.NextLink(rq, p, next)})
}

func (h *Handler) getResourceGroup(rq *rp.Request) error {
	if _, err := rq.ScopeTenant(); err != nil {
		return err
	}
	if err := rq.Authorize(actionGroupRead, rq.Path.Scope.String()); err != nil {
		return err
	}
	g, err := h.st.GetResourceGroup(rq.Ctx, rq.Path.Sub, rq.Path.RG)
	if errors.Is(err, store.ErrNotFound) {
		return rp.ResourceGroupNotFound(rq.Path.RG)
	} else if err != nil {
		return rp.InternalError(err)
	}
	managedBy, err := h.managedGroups(rq, rq.Path.Sub)
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, http.StatusOK, groupOf(g, managedBy))
}

func (h *Handler) putResourceGroup(rq *rp.Request) error {
	tenantID, err := rq.ScopeTenant()
	if err != nil {
		return err
	}
	if err := rq.Authorize(actionGroupWrite, rq.Path.Scope.String()); err != nil {
		return err
	}
	var body struct {
		Location  string            `json:"location"`
		Tags      map[string]string `json:"tags"`
		ManagedBy string            `json:"managedBy"`
	}
	if err := rp.ReadBody(rq, &body); err != nil {
		return err
	}
	location := rp.NormalizeLocation(body.Location)
	if location == "" {
		return rp.NewError(http.StatusBadRequest, "LocationRequired", "The location property is required for this definition.")
	}
	if len(location) > 64 {
		return rp.NewError(http.StatusBadRequest, "LocationNotAvailableForResourceGroup", "The provided location '%s' is not available for resource group.", rp.SafeText(location))
	}
	if err := rp.CheckTags(body.Tags); err != nil {
		return err
	}
	status := http.StatusOK
	var out store.ResourceGroup
	err = rq.Change(tenantID, func(tx store.Store, _ *directory.Service) error {
		now := h.now().UTC()
		g, err := tx.GetResourceGroup(rq.Ctx, rq.Path.Sub, rq.Path.RG)
		switch {
		case errors.Is(err, store.ErrNotFound) && rq.IsPatch():
			return rp.ResourceGroupNotFound(rq.Path.RG)
		case errors.Is(err, store.ErrNotFound):
			status = http.StatusCreated
			g = store.ResourceGroup{TenantID: tenantID, SubscriptionID: rq.Path.Sub, Name: rq.Path.RG, Location: location, Tags: body.Tags, Created: now, Updated: now}
			rq.Action = "Microsoft.Resources/subscriptions/resourceGroups/write"
			if err := tx.CreateResourceGroup(rq.Ctx, g); err != nil {
				return rp.InternalError(err)
			}
		case err != nil:
			return rp.InternalError(err)
		default:
			if g.Location != location {
				return rp.NewError(http.StatusConflict, "InvalidResourceGroupLocation",
					"Invalid resource group location '%s'. The Resource group already exists in location '%s' in resource group '%s'. A resource group cannot be created with the same name in a different location. Please select a new resource group name.",
					rp.SafeText(location), g.Location, g.Name)
			}
			g.Tags, g.Updated = body.Tags, now
			if err := tx.UpdateResourceGroup(rq.Ctx, g); err != nil {
				return rp.InternalError(err)
			}
		}
		out = g
		rq.Target = groupOf(g, nil).ID
		return nil
	})
	if err != nil {
		return err
	}
	managedBy, err := h.managedGroups(rq, rq.Path.Sub)
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, status, groupOf(out, managedBy))
}

// patchResourceGroup serves Resource Groups - Update (PATCH;
// ResourceGroupPatchable: name, properties, managedBy, tags; 200): "If a
// field is unspecified, the current value is retained." The group's
// location and tags, with the patch's tags over them, are written as a
// PUT would write them; managedBy is the managing application's and
// properties the provisioning state, neither set by a client here, as
// with PUT, and a group is not renamed.
func (h *Handler) patchResourceGroup(rq *rp.Request) error {
	if _, err := rq.ScopeTenant(); err != nil {
		return err
	}
	if err := rq.Authorize(actionGroupWrite, rq.Path.Scope.String()); err != nil {
		return err
	}
	g, err := rp.PathGroup(rq, h.st)
	if err != nil {
		return err
	}
	current := map[string]any{"location": g.Location, "tags": g.Tags}
	return rp.PatchAsPut(rq, current, []string{"tags"}, h.putResourceGroup)
}

func (h *Handler) deleteResourceGroup(rq *rp.Request) error {
	tenantID, err := rq.ScopeTenant()
	if err != nil {
		return err
	}
	if err := rq.Authorize(actionGroupDelete, rq.Path.Scope.String()); err != nil {
		return err
	}
	err = rq.Change(tenantID, func(tx store.Store, dir *directory.Service) error {
		g, err := tx.GetResourceGroup(rq.Ctx, rq.Path.Sub, rq.Path.RG)
		if errors.Is(err, store.ErrNotFound) {
			return rp.ResourceGroupNotFound(rq.Path.RG)
		} else if err != nil {
			return rp.InternalError(err)
		}
		rq.Target = groupOf(g, nil).ID
		// What the providers keep outside the generic records (vaults,
		// identities); the generic resources go with the group below.
		if err := rq.DeleteGroupResources(tx, dir, g); err != nil {
			return err
		}
		if err := tx.DeleteResourceGroup(rq.Ctx, g.SubscriptionID, g.Name); err != nil {
			return rp.InternalError(err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	rq.W.WriteHeader(http.StatusOK)
	return nil
}

// scopeKey is a scope's comparison form; a helper for callers holding text.
func scopeKey(s string) string {
	if sc, err := rbac.ParseScope(s); err == nil {
		return sc.Key()
	}
	return strings.ToLower(s)
}
