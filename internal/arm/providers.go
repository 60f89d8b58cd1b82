package arm

// The provider registry as Resource Manager serves it (Providers - List,
// Get, Register, Unregister, at a subscription and at the tenant), and the
// subscription's locations (Subscriptions - List Locations). Shapes and
// status codes as the REST spec armresources v1.2.0 and armsubscriptions
// v1.3.0 are generated from (Microsoft.Resources 2021-04-01 and
// 2022-12-01): every operation answers 200 with the provider (or a list
// of them in "value"), the locations in "value"; $expand
// (resourceTypes/aliases, metadata) asks for what tenantbridge does not
// have and is ignored, as includeExtendedLocations is (no extended
// locations).

import (
	"errors"
	"net/http"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// The targets of the paths in this file.
const (
	targetProviders      target = 160 // /providers, /subscriptions/{sub}/providers
	targetProvider       target = 161 // /providers/{ns}, /subscriptions/{sub}/providers/{ns}
	targetProviderAction target = 162 // /subscriptions/{sub}/providers/{ns}/register|unregister
	targetLocations      target = 163 // /subscriptions/{sub}/locations
)

// The actions of the operations in this file. Reading the registry and
// the locations takes what reading the subscription takes
// (subscriptionVisible); registering takes the namespace's own
// {ns}/register/action (and unregister/action), as Azure's RBAC
// operations list them.
const (
	actionProvidersRead = "Microsoft.Resources/subscriptions/providers/read"
	actionLocationsRead = "Microsoft.Resources/subscriptions/locations/read"
)

// Registration states and policies, as the registry shows them.
const (
	stateRegistered    = "Registered"
	stateNotRegistered = "NotRegistered"
	policyRequired     = "RegistrationRequired"
	policyFree         = "RegistrationFree"
)

// providersPath recognises the paths of this file (segments without the
// leading slash).
func providersPath(segs []string) (rp.Path, bool, error) {
	is := func(i int, s string) bool { return i < len(segs) && strings.EqualFold(segs[i], s) }
	n := len(segs)
	root, _ := rp.ParseScopeText("/")
	switch {
	case n == 1 && is(0, "providers"):
		return rp.Path{Target: targetProviders, Scope: root}, true, nil
	case n == 2 && is(0, "providers"):
		if segs[1] == "" {
			return rp.Path{}, true, rp.BadPath("the resource id has an empty namespace")
		}
		return rp.Path{Target: targetProvider, Scope: root, Name: segs[1]}, true, nil
	}
	if n < 3 || !is(0, "subscriptions") || (!is(2, "providers") && !is(2, "locations")) {
		return rp.Path{}, false, nil
	}
	if n == 5 && !is(4, "register") && !is(4, "unregister") {
		return rp.Path{}, false, nil // a provider's own list: /subscriptions/{sub}/providers/{ns}/{type}
	}
	if n > 5 || (is(2, "locations") && n != 3) {
		return rp.Path{}, false, nil
	}
	sc, err := rp.ParseScopeText("/subscriptions/" + segs[1])
	if err != nil {
		return rp.Path{}, true, err
	}
	ap := rp.Path{Scope: sc, Sub: sc.SubscriptionID()}
	switch n {
	case 3:
		ap.Target = targetProviders
		if is(2, "locations") {
			ap.Target = targetLocations
		}
	case 4:
		ap.Target, ap.Name = targetProvider, segs[3]
	case 5:
		ap.Target, ap.Name, ap.Op = targetProviderAction, segs[3], strings.ToLower(segs[4])
	}
	if n >= 4 && ap.Name == "" {
		return rp.Path{}, true, rp.BadPath("the resource id has an empty namespace")
	}
	return ap, true, nil
}

// providersSurface routes the paths of this file.
func (h *Handler) providersSurface(rq *rp.Request) error {
	switch rq.Path.Target {
	case targetProviders:
		return rp.Only(rq, http.MethodGet, h.listProviders)
	case targetProvider:
		return rp.Only(rq, http.MethodGet, h.getProvider)
	case targetProviderAction:
		return rp.Only(rq, http.MethodPost, h.registerProvider)
	case targetLocations:
		return rp.Only(rq, http.MethodGet, h.listLocations)
	}
	return rp.MethodNotAllowed(rq.R.Method)
}

// catalog is every namespace the registry lists: the door's own, then the
// registered providers in registration order.
func (h *Handler) catalog() []*rp.Provider {
	return append(append([]*rp.Provider{}, doorProviders...), h.providers...)
}

// findProvider is the namespace's provider (any letter case), or
// InvalidResourceNamespace, Azure's 404 for a namespace it does not know
// (as az provider show -n answers it).
func (h *Handler) findProvider(ns string) (*rp.Provider, error) {
	for _, p := range h.catalog() {
		if strings.EqualFold(p.Namespace, ns) {
			return p, nil
		}
	}
	return nil, rp.NewError(http.StatusNotFound, "InvalidResourceNamespace", "The resource namespace '%s' is invalid.", rp.SafeText(ns))
}

// isDoorNamespace reports whether p is one of the door's own namespaces,
// which take no registration.
func isDoorNamespace(p *rp.Provider) bool {
	for _, d := range doorProviders {
		if d == p {
			return true
		}
	}
	return false
}

type providerView struct {
	ID                 string             `json:"id"`
	Namespace          string             `json:"namespace"`
	RegistrationState  string             `json:"registrationState,omitempty"`
	RegistrationPolicy string             `json:"registrationPolicy,omitempty"`
	ResourceTypes      []resourceTypeView `json:"resourceTypes"`
}

type resourceTypeView struct {
	ResourceType      string   `json:"resourceType"`
	Locations         []string `json:"locations"`
	APIVersions       []string `json:"apiVersions"`
	DefaultAPIVersion string   `json:"defaultApiVersion,omitempty"`
	Capabilities      string   `json:"capabilities"`
}

// providerOf is p's view; sub is "" at the tenant, where a provider has
// no registration state, else the subscription whose state is state.
func providerOf(p *rp.Provider, sub, state string) providerView {
	v := providerView{ID: "/providers/" + p.Namespace, Namespace: p.Namespace, ResourceTypes: []resourceTypeView{}}
	if sub != "" {
		v.ID = "/subscriptions/" + sub + "/providers/" + p.Namespace
		v.RegistrationState, v.RegistrationPolicy = state, policyRequired
		if isDoorNamespace(p) {
			v.RegistrationPolicy = policyFree
		}
	}
	for _, t := range p.Types {
		tv := resourceTypeView{ResourceType: t.Name, Locations: t.Locations, APIVersions: t.APIVersions, Capabilities: t.Capabilities}
		if tv.Locations == nil {
			tv.Locations = []string{}
		}
		if tv.APIVersions == nil {
			tv.APIVersions = []string{}
		}
		if len(t.APIVersions) > 0 {
			tv.DefaultAPIVersion = t.APIVersions[0]
		}
		if tv.Capabilities == "" {
			tv.Capabilities = "None"
		}
		v.ResourceTypes = append(v.ResourceTypes, tv)
	}
	return v
}

// registryAt checks that the caller may read the path's subscription's
// registry (as it may read the subscription) and returns the tenant that
// owns it with its namespaces' states ("" at the tenant's root).
func (h *Handler) registryAt(rq *rp.Request, action string) (string, map[string]string, error) {
	rq.Action = action
	if rq.Path.Sub == "" {
		return rq.TenantID, nil, nil
	}
	tenantID, err := rq.ScopeTenant()
	if err != nil {
		return "", nil, err
	}
	visible, err := h.subscriptionVisible(rq, rq.Path.Sub)
	if err != nil {
		return "", nil, err
	}
	if !visible {
		if err := rq.Authorize(action, rq.Path.Scope.String()); err != nil {
			return "", nil, err
		}
	}
	regs, err := h.st.ListProviderRegistrations(rq.Ctx, rq.Path.Sub)
	if err != nil {
		return "", nil, rp.InternalError(err)
	}
	states := map[string]string{}
	for _, r := range regs {
		states[strings.ToLower(r.Namespace)] = r.State
	}
	return tenantID, states, nil
}

// registrationOf is the namespace's state in a subscription: its record's, else
// Registered. A subscription of tenantbridge comes with every provider it
// serves registered, as if its tenant's setup had registered them, so
// that clients which do not register namespaces (az, curl) work.
func registrationOf(states map[string]string, p *rp.Provider) string {
	if s, ok := states[strings.ToLower(p.Namespace)]; ok && !isDoorNamespace(p) {
		return s
	}
	return stateRegistered
}

func (h *Handler) listProviders(rq *rp.Request) error {
	_, states, err := h.registryAt(rq, actionProvidersRead)
	if err != nil {
		return err
	}
	out := []providerView{}
	for _, p := range h.catalog() {
		out = append(out, providerOf(p, rq.Path.Sub, registrationOf(states, p)))
	}
	return rp.WriteJSON(rq, http.StatusOK, rp.List[providerView]{Value: out})
}

func (h *Handler) getProvider(rq *rp.Request) error {
	_, states, err := h.registryAt(rq, actionProvidersRead)
	if err != nil {
		return err
	}
	p, err := h.findProvider(rq.Path.Name)
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, http.StatusOK, providerOf(p, rq.Path.Sub, registrationOf(states, p)))
}

// registerProvider registers the subscription with a namespace, or
// unregisters it, and answers the provider. The door's own namespaces
// take no registration and stay Registered. A namespace is not
// unregistered while the subscription holds resources of it: "You can't
// unregister a resource provider when you still have resource types from
// that resource provider in your subscription"
// (learn.microsoft.com/azure/azure-resource-manager/management/resource-providers-and-types);
// Azure does not document that refusal's code, so it is a 409 Conflict.
func (h *Handler) registerProvider(rq *rp.Request) error {
	tenantID, err := rq.ScopeTenant()
	if err != nil {
		return err
	}
	p, err := h.findProvider(rq.Path.Name)
	if err != nil {
		return err
	}
	state := stateRegistered
	if rq.Path.Op == "unregister" {
		state = stateNotRegistered
	}
	if err := rq.Authorize(p.Namespace+"/"+rq.Path.Op+"/action", rq.Path.Scope.String()); err != nil {
		return err
	}
	if isDoorNamespace(p) {
		return rp.WriteJSON(rq, http.StatusOK, providerOf(p, rq.Path.Sub, stateRegistered))
	}
	if state == stateNotRegistered {
		n, err := h.resourcesOf(rq, tenantID, p)
		if err != nil {
			return err
		}
		if n > 0 {
			return rp.NewError(http.StatusConflict, "Conflict", "The subscription '%s' cannot be unregistered from the resource provider '%s': it still has %d resources of its types.",
				rq.Path.Sub, p.Namespace, n)
		}
	}
	rq.Target, rq.Detail = rq.Path.Scope.String()+"/providers/"+p.Namespace, "registrationState="+state
	err = rq.Change(tenantID, func(tx store.Store, _ *directory.Service) error {
		if err := tx.PutProviderRegistration(rq.Ctx, store.ProviderRegistration{TenantID: tenantID, SubscriptionID: rq.Path.Sub,
			Namespace: p.Namespace, State: state, Updated: h.now().UTC()}); err != nil {
			return rp.InternalError(err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, http.StatusOK, providerOf(p, rq.Path.Sub, state))
}

// resourcesOf counts the subscription's resources of p's types: the
// generic records and those the provider keeps without one.
func (h *Handler) resourcesOf(rq *rp.Request, tenantID string, p *rp.Provider) (int, error) {
	n := 0
	for _, t := range p.Types {
		rs, err := h.st.ListResources(rq.Ctx, store.ResourceQuery{SubscriptionID: rq.Path.Sub, Type: p.Namespace + "/" + t.Name})
		if err != nil {
			return 0, rp.InternalError(err)
		}
		n += len(rs)
	}
	if p.Unrecorded != nil {
		rs, err := p.Unrecorded(rq, tenantID)
		if err != nil {
			return 0, err
		}
		for _, r := range rs {
			if strings.EqualFold(r.SubscriptionID, rq.Path.Sub) {
				n++
			}
		}
	}
	return n, nil
}

// checkRegistered refuses a request to a provider's namespace that the
// subscription is registered with no more: 409
// MissingSubscriptionRegistration, Azure's refusal (documented in
// error-register-resource-provider; azcore's registration policy
// registers the namespace on it and retries). The scope's own checks
// come first, so that another tenant learns nothing of the subscription.
func (h *Handler) checkRegistered(rq *rp.Request, p *rp.Provider) error {
	if rq.Path.Sub == "" {
		return nil
	}
	reg, err := h.st.GetProviderRegistration(rq.Ctx, rq.Path.Sub, p.Namespace)
	if errors.Is(err, store.ErrNotFound) || (err == nil && reg.State != stateNotRegistered) {
		return nil
	} else if err != nil {
		return rp.InternalError(err)
	}
	if _, err := rq.ScopeTenant(); err != nil {
		return err
	}
	return rp.NewError(http.StatusConflict, "MissingSubscriptionRegistration",
		"The subscription is not registered to use namespace '%s'. See https://aka.ms/rps-not-found for how to register subscriptions.", p.Namespace)
}

type locationView struct {
	ID                  string         `json:"id"`
	Type                string         `json:"type"`
	Name                string         `json:"name"`
	DisplayName         string         `json:"displayName"`
	RegionalDisplayName string         `json:"regionalDisplayName"`
	Metadata            map[string]any `json:"metadata"`
}

// listLocations answers Subscriptions - List Locations: every region,
// with the metadata tenantbridge knows (its type, category and
// geography group; no coordinates or pairs, which it has no use for).
func (h *Handler) listLocations(rq *rp.Request) error {
	if _, _, err := h.registryAt(rq, actionLocationsRead); err != nil {
		return err
	}
	out := make([]locationView, 0, len(rp.Regions))
	for _, r := range rp.Regions {
		category := "Other"
		if r.Recommended {
			category = "Recommended"
		}
		out = append(out, locationView{ID: "/subscriptions/" + rq.Path.Sub + "/locations/" + r.Name, Type: "Region", Name: r.Name,
			DisplayName: r.DisplayName, RegionalDisplayName: r.RegionalDisplayName(),
			Metadata: map[string]any{"regionType": "Physical", "regionCategory": category, "geographyGroup": r.Geography}})
	}
	return rp.WriteJSON(rq, http.StatusOK, map[string]any{"value": out})
}
