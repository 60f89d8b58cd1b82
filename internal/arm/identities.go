package arm

// Microsoft.ManagedIdentity/userAssignedIdentities and their
// federatedIdentityCredentials.
//
// The directory's managed identity (a service principal of type
// ManagedIdentity whose alternativeNames hold the resource id) IS the
// resource: PUT creates it through the directory, DELETE deletes it there,
// and its principal id and client id are the service principal's object
// id and appId. Location and tags are kept in a generic ARM Resource of the
// same id, written in the same transaction. Federated identity credentials
// live on the identity's service principal; the directory applies Entra's
// rules (names, https issuer, one audience, at most 20, unique name and
// issuer+subject). Deleting a resource group deletes its identities through
// the directory in the group's transaction (deleteGroupIdentities).

import (
	"errors"
	"net/http"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

const (
	// targetIdentities is a userAssignedIdentities id or collection.
	targetIdentities target = 110
	// targetIdentityCredentials is a federatedIdentityCredentials id or
	// collection below an identity.
	targetIdentityCredentials target = 111
)

const (
	identityNamespace    = "Microsoft.ManagedIdentity"
	identityType         = "Microsoft.ManagedIdentity/userAssignedIdentities"
	ficType              = identityType + "/federatedIdentityCredentials"
	actionIdentityRead   = identityType + "/read"
	actionIdentityWrite  = identityType + "/write"
	actionIdentityDelete = identityType + "/delete"
	actionFICRead        = ficType + "/read"
	actionFICWrite       = ficType + "/write"
	actionFICDelete      = ficType + "/delete"
)

// parseProviderPath recognises, for resource type ns/typ with an optional
// child type,
//
//	/subscriptions/{sub}/providers/{ns}/{typ}
//	/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{typ}[/{name}]
//	/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{typ}/{name}/{child}[/{childName}]
//
// (segments without the leading slash) and builds the scope the request
// acts at: the subscription or group for a list, the parent for a child
// list, else the resource's id. isChild tells a child path.
func parseProviderPath(segs []string, ns, typ, child string) (ap armPath, isChild, ok bool, err error) {
	is := func(i int, s string) bool { return strings.EqualFold(segs[i], s) }
	n := len(segs)
	if n < 5 || !is(0, "subscriptions") || segs[1] == "" {
		return armPath{}, false, false, nil
	}
	switch {
	case n == 5 && is(2, "providers") && is(3, ns) && is(4, typ):
		ap = armPath{sub: segs[1]}
	case n >= 7 && n <= 10 && is(2, "resourceGroups") && segs[3] != "" && is(4, "providers") && is(5, ns) && is(6, typ):
		ap = armPath{sub: segs[1], rg: segs[3]}
		if n >= 8 {
			if segs[7] == "" {
				return armPath{}, false, false, nil
			}
			ap.name = segs[7]
		}
		if n >= 9 {
			if child == "" || !is(8, child) {
				return armPath{}, false, false, nil
			}
			isChild = true
		}
		if n == 10 {
			if segs[9] == "" {
				return armPath{}, false, false, nil
			}
			ap.child = segs[9]
		}
	default:
		return armPath{}, false, false, nil
	}
	scopeText := "/subscriptions/" + ap.sub
	if ap.rg != "" {
		scopeText += "/resourceGroups/" + ap.rg
	}
	if ap.name != "" {
		scopeText += "/providers/" + ns + "/" + typ + "/" + ap.name
	}
	if ap.child != "" {
		scopeText += "/" + child + "/" + ap.child
	}
	sc, err := parseScopeText(scopeText)
	if err != nil {
		return armPath{}, isChild, true, err
	}
	ap.scope, ap.sub = sc, sc.SubscriptionID()
	return ap, isChild, true, nil
}

// identityPath recognises the Microsoft.ManagedIdentity paths.
func identityPath(segs []string) (armPath, bool, error) {
	ap, isChild, ok, err := parseProviderPath(segs, identityNamespace, "userAssignedIdentities", "federatedIdentityCredentials")
	if !ok || err != nil {
		return armPath{}, ok, err
	}
	ap.target = targetIdentities
	if isChild {
		ap.target = targetIdentityCredentials
	}
	return ap, true, nil
}

// identities serves the Microsoft.ManagedIdentity paths.
func (h *Handler) identities(rq *request) error {
	m := rq.r.Method
	if rq.path.target == targetIdentityCredentials {
		if rq.path.child == "" {
			return h.only(rq, m, http.MethodGet, h.listIdentityCredentials)
		}
		switch m {
		case http.MethodGet, http.MethodHead:
			return h.getIdentityCredential(rq)
		case http.MethodPut:
			return h.putIdentityCredential(rq)
		case http.MethodDelete:
			return h.deleteIdentityCredential(rq)
		}
		return methodNotAllowed(m)
	}
	if rq.path.name == "" {
		return h.only(rq, m, http.MethodGet, h.listIdentities)
	}
	switch m {
	case http.MethodGet, http.MethodHead:
		return h.getIdentity(rq)
	case http.MethodPut:
		return h.putIdentity(rq)
	case http.MethodDelete:
		return h.deleteIdentity(rq)
	}
	return methodNotAllowed(m)
}

func methodNotAllowed(m string) error {
	return newError(http.StatusMethodNotAllowed, "MethodNotAllowed", "The requested method '%s' is not allowed for this resource.", safeText(m))
}

// directoryError turns a directory refusal into ARM's shape: an invalid
// request is 400, a conflict 409, anything else a 500.
func directoryError(err error) error {
	if msg, ok := directory.IsInvalid(err); ok {
		return newError(http.StatusBadRequest, "BadRequest", "%s", safeText(msg))
	}
	if msg, ok := directory.ConflictMessage(err); ok {
		return newError(http.StatusConflict, "Conflict", "%s", safeText(msg))
	}
	return internalError(err)
}

// ---- wire shapes ----

type identityProperties struct {
	TenantID    string `json:"tenantId"`
	PrincipalID string `json:"principalId"`
	ClientID    string `json:"clientId"`
}

type identityView struct {
	ID         string             `json:"id"`
	Name       string             `json:"name"`
	Type       string             `json:"type"`
	Location   string             `json:"location"`
	Tags       map[string]string  `json:"tags"`
	Properties identityProperties `json:"properties"`
}

type ficProperties struct {
	Issuer    string   `json:"issuer"`
	Subject   string   `json:"subject"`
	Audiences []string `json:"audiences"`
}

type ficView struct {
	ID         string        `json:"id"`
	Name       string        `json:"name"`
	Type       string        `json:"type"`
	Properties ficProperties `json:"properties"`
}

// identityName is the last segment of an identity's resource id.
func identityName(sp *directory.ServicePrincipal) string {
	id := sp.ManagedIdentityResourceID()
	return id[strings.LastIndexByte(id, '/')+1:]
}

func identityViewOf(tenantID string, sp *directory.ServicePrincipal, res *store.Resource) identityView {
	v := identityView{ID: sp.ManagedIdentityResourceID(), Name: identityName(sp), Type: identityType, Tags: map[string]string{},
		Properties: identityProperties{TenantID: tenantID, PrincipalID: sp.ID, ClientID: sp.AppID}}
	if res != nil {
		v.Location = res.Location
		if res.Tags != nil {
			v.Tags = res.Tags
		}
	}
	return v
}

func ficViewOf(identityID string, f directory.FederatedIdentityCredential) ficView {
	aud := f.Audiences
	if aud == nil {
		aud = []string{}
	}
	return ficView{ID: identityID + "/federatedIdentityCredentials/" + f.Name, Name: f.Name, Type: ficType,
		Properties: ficProperties{Issuer: f.Issuer, Subject: f.Subject, Audiences: aud}}
}

// idIn reports whether resource id is in subscription sub and, if rg is
// not empty, resource group rg.
func idIn(id, sub, rg string) bool {
	segs := strings.Split(strings.TrimPrefix(id, "/"), "/")
	if len(segs) < 4 || !strings.EqualFold(segs[0], "subscriptions") || !strings.EqualFold(segs[1], sub) || !strings.EqualFold(segs[2], "resourceGroups") {
		return false
	}
	return rg == "" || strings.EqualFold(segs[3], rg)
}

func resourceNotFound(typ, rg, name string) error {
	return newError(http.StatusNotFound, "ResourceNotFound", "The Resource '%s/%s' under resource group '%s' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
		typ, safeText(name), safeText(rg))
}

func parentNotFound(typ, name string) error {
	return newError(http.StatusNotFound, "ParentResourceNotFound", "Can not perform requested operation on nested resource. Parent resource '%s' of type '%s' not found.", safeText(name), typ)
}

// identityIDOf is the id the path names, in the path's case.
func identityIDOf(rq *request) string {
	return directory.UserAssignedIdentityID(rq.path.sub, rq.path.rg, rq.path.name)
}

// findIdentity returns the user-assigned identity the path names, with its
// generic record if there is one: ResourceGroupNotFound, or
// ResourceNotFound.
func findIdentity(rq *request, dir *directory.Service, tenantID string) (*directory.ServicePrincipal, *store.Resource, error) {
	st := dir.Store()
	if _, err := st.GetResourceGroup(rq.ctx, rq.path.sub, rq.path.rg); errors.Is(err, store.ErrNotFound) {
		return nil, nil, rgNotFound(rq.path.rg)
	} else if err != nil {
		return nil, nil, internalError(err)
	}
	sp, err := dir.ManagedIdentityByResourceID(rq.ctx, tenantID, identityIDOf(rq))
	if errors.Is(err, directory.ErrNotFound) || (err == nil && !sp.IsUserAssigned()) {
		return nil, nil, resourceNotFound(identityType, rq.path.rg, rq.path.name)
	} else if err != nil {
		return nil, nil, internalError(err)
	}
	res, err := st.GetResource(rq.ctx, sp.ManagedIdentityResourceID())
	if errors.Is(err, store.ErrNotFound) {
		return sp, nil, nil
	} else if err != nil {
		return nil, nil, internalError(err)
	}
	return sp, &res, nil
}

// ---- identities ----

func (h *Handler) getIdentity(rq *request) error {
	tenantID, err := h.scopeTenant(rq)
	if err != nil {
		return err
	}
	if err := h.authorize(rq, actionIdentityRead, rq.path.scope.String()); err != nil {
		return err
	}
	sp, res, err := findIdentity(rq, h.dir, tenantID)
	if err != nil {
		return err
	}
	return writeJSON(rq, http.StatusOK, identityViewOf(tenantID, sp, res))
}

// listIdentities lists the user-assigned identities of a group or
// subscription that the caller may read.
func (h *Handler) listIdentities(rq *request) error {
	tenantID, err := h.scopeTenant(rq)
	if err != nil {
		return err
	}
	rq.action = actionIdentityRead
	if rq.path.rg != "" {
		if _, err := h.st.GetResourceGroup(rq.ctx, rq.path.sub, rq.path.rg); errors.Is(err, store.ErrNotFound) {
			return rgNotFound(rq.path.rg)
		} else if err != nil {
			return internalError(err)
		}
	}
	sps, err := h.dir.ListManagedIdentities(rq.ctx, tenantID)
	if err != nil {
		return internalError(err)
	}
	out := []identityView{}
	for _, sp := range sps {
		id := sp.ManagedIdentityResourceID()
		if !sp.IsUserAssigned() || !idIn(id, rq.path.sub, rq.path.rg) {
			continue
		}
		d, err := h.decide(rq, actionIdentityRead, id)
		if err != nil {
			return err
		}
		if !d.Allowed {
			continue
		}
		var res *store.Resource
		if r, err := h.st.GetResource(rq.ctx, id); err == nil {
			res = &r
		} else if !errors.Is(err, store.ErrNotFound) {
			return internalError(err)
		}
		out = append(out, identityViewOf(tenantID, sp, res))
	}
	return writeJSON(rq, http.StatusOK, list[identityView]{Value: out})
}

func (h *Handler) putIdentity(rq *request) error {
	tenantID, err := h.scopeTenant(rq)
	if err != nil {
		return err
	}
	if err := h.authorize(rq, actionIdentityWrite, rq.path.scope.String()); err != nil {
		return err
	}
	var body struct {
		Location string            `json:"location"`
		Tags     map[string]string `json:"tags"`
	}
	if err := readBody(rq, &body); err != nil {
		return err
	}
	location := normalizeLocation(body.Location)
	if location == "" {
		return newError(http.StatusBadRequest, "LocationRequired", "The location property is required for this definition.")
	}
	if len(location) > 64 {
		return newError(http.StatusBadRequest, "LocationNotAvailableForResourceType", "The provided location '%s' is not available for resource type '%s'.", safeText(location), identityType)
	}
	if err := checkTags(body.Tags); err != nil {
		return err
	}
	status := http.StatusOK
	var out identityView
	err = h.change(rq, tenantID, func(tx store.Store, dir *directory.Service) error {
		now := h.now().UTC()
		g, err := tx.GetResourceGroup(rq.ctx, rq.path.sub, rq.path.rg)
		if errors.Is(err, store.ErrNotFound) {
			return rgNotFound(rq.path.rg)
		} else if err != nil {
			return internalError(err)
		}
		sp, err := dir.ManagedIdentityByResourceID(rq.ctx, tenantID, identityIDOf(rq))
		switch {
		case errors.Is(err, directory.ErrNotFound):
			t, err := tx.GetTenant(rq.ctx, tenantID)
			if err != nil {
				return internalError(err)
			}
			if !strings.EqualFold(t.SubscriptionID, g.SubscriptionID) {
				return newError(http.StatusBadRequest, "BadRequest", "User-assigned identities can be created only in the tenant's default subscription '%s'.", t.SubscriptionID)
			}
			status = http.StatusCreated
			if sp, err = dir.CreateUserAssignedIdentity(rq.ctx, tenantID, g.Name, rq.path.name); err != nil {
				return directoryError(err)
			}
		case err != nil:
			return internalError(err)
		case !sp.IsUserAssigned():
			return newError(http.StatusConflict, "Conflict", "The resource id '%s' belongs to a system-assigned identity.", safeText(identityIDOf(rq)))
		}
		id := sp.ManagedIdentityResourceID()
		rq.target = id
		res := store.Resource{TenantID: tenantID, SubscriptionID: g.SubscriptionID, ResourceGroup: g.Name, ID: id,
			Type: identityType, Name: identityName(sp), Location: location, Tags: body.Tags, Created: now, Updated: now}
		if old, err := tx.GetResource(rq.ctx, id); err == nil {
			if old.Location != "" && old.Location != location {
				return newError(http.StatusBadRequest, "InvalidResourceLocation", "The resource '%s' already exists in location '%s' in resource group '%s'. A resource with the same name cannot be created in location '%s'.",
					safeText(res.Name), old.Location, g.Name, safeText(location))
			}
			res.Created = old.Created
			if err := tx.UpdateResource(rq.ctx, res); err != nil {
				return internalError(err)
			}
		} else if errors.Is(err, store.ErrNotFound) {
			if err := tx.CreateResource(rq.ctx, res); err != nil {
				return internalError(err)
			}
		} else {
			return internalError(err)
		}
		out = identityViewOf(tenantID, sp, &res)
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(rq, status, out)
}

func (h *Handler) deleteIdentity(rq *request) error {
	tenantID, err := h.scopeTenant(rq)
	if err != nil {
		return err
	}
	if err := h.authorize(rq, actionIdentityDelete, rq.path.scope.String()); err != nil {
		return err
	}
	gone := false
	err = h.change(rq, tenantID, func(tx store.Store, dir *directory.Service) error {
		sp, _, err := findIdentity(rq, dir, tenantID)
		var ae *armError
		if errors.As(err, &ae) && ae.code == "ResourceNotFound" {
			gone = true
			return errNothingToDo
		} else if err != nil {
			return err
		}
		rq.target = sp.ManagedIdentityResourceID()
		return deleteIdentityRecords(rq, dir, tenantID, sp)
	})
	if gone {
		rq.w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	rq.w.WriteHeader(http.StatusOK)
	return nil
}

// deleteIdentityRecords deletes the identity in the directory (its role
// assignments go with it), its generic record and the role assignments at
// its scope.
func deleteIdentityRecords(rq *request, dir *directory.Service, tenantID string, sp *directory.ServicePrincipal) error {
	if err := dir.DeleteManagedIdentity(rq.ctx, tenantID, sp.ID); err != nil && !errors.Is(err, directory.ErrNotFound) {
		return internalError(err)
	}
	if err := dir.Store().DeleteResource(rq.ctx, sp.ManagedIdentityResourceID()); err != nil && !errors.Is(err, store.ErrNotFound) {
		return internalError(err)
	}
	return nil
}

// deleteGroupIdentities deletes the user-assigned identities of group g,
// inside the transaction that deletes the group.
func deleteGroupIdentities(rq *request, dir *directory.Service, g store.ResourceGroup) error {
	sps, err := dir.ListManagedIdentities(rq.ctx, g.TenantID)
	if err != nil {
		return internalError(err)
	}
	for _, sp := range sps {
		if sp.IsUserAssigned() && idIn(sp.ManagedIdentityResourceID(), g.SubscriptionID, g.Name) {
			if err := deleteIdentityRecords(rq, dir, g.TenantID, sp); err != nil {
				return err
			}
		}
	}
	return nil
}

// ---- federated identity credentials ----

// findCredential finds the credential the path names on sp.
func findCredential(rq *request, sp *directory.ServicePrincipal) (directory.FederatedIdentityCredential, error) {
	for _, f := range sp.FederatedCredentials {
		if strings.EqualFold(f.Name, rq.path.child) {
			return f, nil
		}
	}
	return directory.FederatedIdentityCredential{}, resourceNotFound(ficType, rq.path.rg, rq.path.name+"/"+rq.path.child)
}

// findParentIdentity is findIdentity for a child path: a missing identity
// is ParentResourceNotFound.
func findParentIdentity(rq *request, dir *directory.Service, tenantID string) (*directory.ServicePrincipal, error) {
	sp, _, err := findIdentity(rq, dir, tenantID)
	var ae *armError
	if errors.As(err, &ae) && ae.code == "ResourceNotFound" {
		return nil, parentNotFound(identityType, rq.path.name)
	}
	return sp, err
}

func (h *Handler) getIdentityCredential(rq *request) error {
	tenantID, err := h.scopeTenant(rq)
	if err != nil {
		return err
	}
	if err := h.authorize(rq, actionFICRead, rq.path.scope.String()); err != nil {
		return err
	}
	sp, err := findParentIdentity(rq, h.dir, tenantID)
	if err != nil {
		return err
	}
	f, err := findCredential(rq, sp)
	if err != nil {
		return err
	}
	return writeJSON(rq, http.StatusOK, ficViewOf(sp.ManagedIdentityResourceID(), f))
}

func (h *Handler) listIdentityCredentials(rq *request) error {
	tenantID, err := h.scopeTenant(rq)
	if err != nil {
		return err
	}
	if err := h.authorize(rq, actionFICRead, rq.path.scope.String()); err != nil {
		return err
	}
	sp, err := findParentIdentity(rq, h.dir, tenantID)
	if err != nil {
		return err
	}
	out := []ficView{}
	for _, f := range sp.FederatedCredentials {
		out = append(out, ficViewOf(sp.ManagedIdentityResourceID(), f))
	}
	return writeJSON(rq, http.StatusOK, list[ficView]{Value: out})
}

func (h *Handler) putIdentityCredential(rq *request) error {
	tenantID, err := h.scopeTenant(rq)
	if err != nil {
		return err
	}
	if err := h.authorize(rq, actionFICWrite, rq.path.scope.String()); err != nil {
		return err
	}
	var body struct {
		Properties *struct {
			Issuer    string   `json:"issuer"`
			Subject   string   `json:"subject"`
			Audiences []string `json:"audiences"`
		} `json:"properties"`
	}
	if err := readBody(rq, &body); err != nil {
		return err
	}
	if body.Properties == nil {
		return newError(http.StatusBadRequest, "BadRequest", "The parameter properties is required.")
	}
	f := directory.FederatedIdentityCredential{Name: rq.path.child, Issuer: body.Properties.Issuer, Subject: body.Properties.Subject, Audiences: body.Properties.Audiences}
	status := http.StatusCreated
	var out ficView
	err = h.change(rq, tenantID, func(_ store.Store, dir *directory.Service) error {
		sp, err := findParentIdentity(rq, dir, tenantID)
		if err != nil {
			return err
		}
		id := sp.ManagedIdentityResourceID()
		if old, err := findCredential(rq, sp); err == nil {
			// An update: replace the credential, keeping its name.
			status = http.StatusOK
			f.Name = old.Name
			if err := dir.RemoveIdentityFederatedCredential(rq.ctx, tenantID, sp.ID, old.ID); err != nil {
				return directoryError(err)
			}
		}
		rq.target = id + "/federatedIdentityCredentials/" + f.Name
		added, err := dir.AddIdentityFederatedCredential(rq.ctx, tenantID, sp.ID, f)
		if err != nil {
			return directoryError(err)
		}
		out = ficViewOf(id, added)
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(rq, status, out)
}

func (h *Handler) deleteIdentityCredential(rq *request) error {
	tenantID, err := h.scopeTenant(rq)
	if err != nil {
		return err
	}
	if err := h.authorize(rq, actionFICDelete, rq.path.scope.String()); err != nil {
		return err
	}
	gone := false
	err = h.change(rq, tenantID, func(_ store.Store, dir *directory.Service) error {
		sp, err := findParentIdentity(rq, dir, tenantID)
		if err != nil {
			return err
		}
		f, err := findCredential(rq, sp)
		if err != nil {
			gone = true
			return errNothingToDo
		}
		rq.target = sp.ManagedIdentityResourceID() + "/federatedIdentityCredentials/" + f.Name
		if err := dir.RemoveIdentityFederatedCredential(rq.ctx, tenantID, sp.ID, f.ID); err != nil {
			return directoryError(err)
		}
		return nil
	})
	if gone {
		rq.w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	rq.w.WriteHeader(http.StatusOK)
	return nil
}
