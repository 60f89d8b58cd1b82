package arm

// The flow the resource-type handlers (vaults, identities, Service Bus)
// share: authorize the action at the path's scope, find the parent group
// or answer 404, make the change with its audit record in one transaction,
// write the ARM response. Each type's file keeps only what is its own.

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// ---- paths and methods ----

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

// typedPath recognises the paths of resource type ns/typ and of its child
// type (parseProviderPath), with parent or childTarget as the target.
func typedPath(segs []string, ns, typ, child string, parent, childTarget target) (armPath, bool, error) {
	ap, isChild, ok, err := parseProviderPath(segs, ns, typ, child)
	if !ok || err != nil {
		return armPath{}, ok, err
	}
	ap.target = parent
	if isChild {
		ap.target = childTarget
	}
	return ap, true, nil
}

// typeHandlers are the operations on one resource type.
type typeHandlers struct {
	list, get, put, del func(*request) error
}

// serveType routes by method: a collection answers GET with the list; one
// resource answers GET or HEAD, PUT and DELETE.
func (h *Handler) serveType(rq *request, collection bool, ops typeHandlers) error {
	m := rq.r.Method
	if collection {
		return h.only(rq, m, http.MethodGet, ops.list)
	}
	switch m {
	case http.MethodGet, http.MethodHead:
		return ops.get(rq)
	case http.MethodPut:
		return ops.put(rq)
	case http.MethodDelete:
		return ops.del(rq)
	}
	return methodNotAllowed(m)
}

// ---- typed errors ----

func methodNotAllowed(m string) error {
	return newError(http.StatusMethodNotAllowed, "MethodNotAllowed", "The requested method '%s' is not allowed for this resource.", safeText(m))
}

func badRequest(format string, args ...any) error {
	return newError(http.StatusBadRequest, "BadRequest", format, args...)
}

func resourceNotFound(typ, rg, name string) error {
	return newError(http.StatusNotFound, "ResourceNotFound", "The Resource '%s/%s' under resource group '%s' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
		typ, safeText(name), safeText(rg))
}

func parentNotFound(typ, name string) error {
	return newError(http.StatusNotFound, "ParentResourceNotFound", "Can not perform requested operation on nested resource. Parent resource '%s' of type '%s' not found.", safeText(name), typ)
}

// isResourceNotFound reports whether err is a ResourceNotFound refusal.
func isResourceNotFound(err error) bool {
	var ae *armError
	return errors.As(err, &ae) && ae.code == "ResourceNotFound"
}

// asParent turns a ResourceNotFound of the parent of a child path into
// ParentResourceNotFound; other errors pass unchanged.
func asParent(err error, typ, name string) error {
	if isResourceNotFound(err) {
		return parentNotFound(typ, name)
	}
	return err
}

// locationMoved refuses to move an existing resource to another location.
func locationMoved(name, old, rg, location string) error {
	return newError(http.StatusBadRequest, "InvalidResourceLocation", "The resource '%s' already exists in location '%s' in resource group '%s'. A resource with the same name cannot be created in location '%s'.",
		name, old, rg, safeText(location))
}

// checkLocation normalizes a PUT body's location for a resource of type
// typ: LocationRequired if there is none.
func checkLocation(location, typ string) (string, error) {
	location = normalizeLocation(location)
	if location == "" {
		return "", newError(http.StatusBadRequest, "LocationRequired", "The location property is required for this definition.")
	}
	if len(location) > 64 {
		return "", newError(http.StatusBadRequest, "LocationNotAvailableForResourceType", "The provided location '%s' is not available for resource type '%s'.", safeText(location), typ)
	}
	return location, nil
}

// ---- the shared flow ----

// authorizeAt returns the tenant that owns the path's subscription once
// the caller may perform action at the path's scope.
func (h *Handler) authorizeAt(rq *request, action string) (string, error) {
	tenantID, err := h.scopeTenant(rq)
	if err != nil {
		return "", err
	}
	if err := h.authorize(rq, action, rq.path.scope.String()); err != nil {
		return "", err
	}
	return tenantID, nil
}

// pathGroup returns the path's resource group, or ResourceGroupNotFound.
func pathGroup(rq *request, st store.Store) (store.ResourceGroup, error) {
	g, err := st.GetResourceGroup(rq.ctx, rq.path.sub, rq.path.rg)
	if errors.Is(err, store.ErrNotFound) {
		return store.ResourceGroup{}, rgNotFound(rq.path.rg)
	} else if err != nil {
		return store.ResourceGroup{}, internalError(err)
	}
	return g, nil
}

// listTenant starts a list of the path's group or subscription: the
// tenant that owns it, with action named for the audit record, or
// ResourceGroupNotFound.
func (h *Handler) listTenant(rq *request, action string) (string, error) {
	tenantID, err := h.scopeTenant(rq)
	if err != nil {
		return "", err
	}
	rq.action = action
	if rq.path.rg != "" {
		if _, err := pathGroup(rq, h.st); err != nil {
			return "", err
		}
	}
	return tenantID, nil
}

// writeReadable writes one page of the ARM list of the views of the items
// whose id the caller may perform action on, in the order of their ids
// (case-insensitively), with $top and the skip token honoured and a
// nextLink when more follow. Only the items the page needs are decided.
func writeReadable[T, V any](h *Handler, rq *request, action string, items []T, idOf func(T) string, view func(T) (V, error)) error {
	p, err := h.pageOf(rq, "$skiptoken", true)
	if err != nil {
		return err
	}
	key := func(it T) string { return strings.ToLower(idOf(it)) }
	items = slices.Clone(items)
	slices.SortFunc(items, func(a, b T) int { return strings.Compare(key(a), key(b)) })
	items = slices.CompactFunc(items, func(a, b T) bool { return key(a) == key(b) })
	readable, next, err := page(p, items, key, func(it T) (bool, error) {
		d, err := h.decide(rq, action, idOf(it))
		return d.Allowed, err
	})
	if err != nil {
		return err
	}
	out := make([]V, 0, len(readable))
	for _, it := range readable {
		v, err := view(it)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	return writeJSON(rq, http.StatusOK, list[V]{Value: out, NextLink: nextLink(rq, p, next)})
}

// errNothingToDo rolls back a change that found nothing to change.
var errNothingToDo = errors.New("arm: nothing to do")

// nothingIfNotFound is errNothingToDo for a ResourceNotFound, else err.
func nothingIfNotFound(err error) error {
	if isResourceNotFound(err) {
		return errNothingToDo
	}
	return err
}

// deleteAndWrite runs fn with its audit record in one transaction and
// answers 200, or 204 when fn returns errNothingToDo.
func (h *Handler) deleteAndWrite(rq *request, tenantID string, fn func(tx store.Store, dir *directory.Service) error) error {
	gone := false
	err := h.change(rq, tenantID, func(tx store.Store, dir *directory.Service) error {
		err := fn(tx, dir)
		gone = errors.Is(err, errNothingToDo)
		return err
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

// ---- generic resource records ----

// recordOf returns the generic record with the id, or nil if there is
// none.
func recordOf(rq *request, st store.Store, id string) (*store.Resource, error) {
	res, err := st.GetResource(rq.ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, internalError(err)
	}
	return &res, nil
}

// findTyped returns the generic resource of type typ with the id, of the
// tenant, or ErrNotFound.
func findTyped(rq *request, st store.Store, tenantID, id, typ string) (store.Resource, error) {
	res, err := st.GetResource(rq.ctx, id)
	if err != nil {
		return store.Resource{}, err
	}
	if !strings.EqualFold(res.TenantID, tenantID) || !strings.EqualFold(res.Type, typ) {
		return store.Resource{}, store.ErrNotFound
	}
	return res, nil
}

// saveRecord creates res, or updates the record of its id keeping its
// creation time once check (if not nil) accepts it.
func saveRecord(rq *request, tx store.Store, res *store.Resource, check func(old store.Resource) error) error {
	old, err := tx.GetResource(rq.ctx, res.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		err = tx.CreateResource(rq.ctx, *res)
	case err != nil:
	default:
		if check != nil {
			if err := check(old); err != nil {
				return err
			}
		}
		res.Created = old.Created
		err = tx.UpdateResource(rq.ctx, *res)
	}
	if err != nil {
		return internalError(err)
	}
	return nil
}

// writeRecord updates prev with res, keeping prev's id, name and creation
// time, or, when prev is nil, creates res (conflict if its id is taken);
// it returns the record as stored.
func writeRecord(rq *request, tx store.Store, res store.Resource, prev *store.Resource, conflict error) (store.Resource, error) {
	if prev != nil {
		res.ID, res.Name, res.Created = prev.ID, prev.Name, prev.Created
		if err := tx.UpdateResource(rq.ctx, res); err != nil {
			return store.Resource{}, internalError(err)
		}
	} else if err := tx.CreateResource(rq.ctx, res); errors.Is(err, store.ErrConflict) {
		return store.Resource{}, conflict
	} else if err != nil {
		return store.Resource{}, internalError(err)
	}
	out, err := tx.GetResource(rq.ctx, res.ID)
	if err != nil {
		return store.Resource{}, internalError(err)
	}
	return out, nil
}

// deleteRecord deletes the generic record with the id, the records below
// it and the role assignments at its scope; a missing record is no error.
func deleteRecord(rq *request, tx store.Store, id string) error {
	if err := tx.DeleteResource(rq.ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return internalError(err)
	}
	return nil
}

// resourceID is a generic record's id.
func resourceID(res store.Resource) string { return res.ID }
