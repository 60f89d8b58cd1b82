package rp

// The generic resource records (store.Resource) and the checks every
// tracked resource's PUT makes.

import (
	"errors"
	"net/http"
	"strings"
	"unicode"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// PathGroup returns the path's resource group, or ResourceGroupNotFound.
func PathGroup(rq *Request, st store.Store) (store.ResourceGroup, error) {
	g, err := st.GetResourceGroup(rq.Ctx, rq.Path.Sub, rq.Path.RG)
	if errors.Is(err, store.ErrNotFound) {
		return store.ResourceGroup{}, ResourceGroupNotFound(rq.Path.RG)
	} else if err != nil {
		return store.ResourceGroup{}, InternalError(err)
	}
	return g, nil
}

// RecordOf returns the generic record with the id, or nil if there is
// none.
func RecordOf(rq *Request, st store.Store, id string) (*store.Resource, error) {
	res, err := st.GetResource(rq.Ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, InternalError(err)
	}
	return &res, nil
}

// FindTyped returns the generic resource of type typ with the id, of the
// tenant, or store.ErrNotFound.
func FindTyped(rq *Request, st store.Store, tenantID, id, typ string) (store.Resource, error) {
	res, err := st.GetResource(rq.Ctx, id)
	if err != nil {
		return store.Resource{}, err
	}
	if !strings.EqualFold(res.TenantID, tenantID) || !strings.EqualFold(res.Type, typ) {
		return store.Resource{}, store.ErrNotFound
	}
	return res, nil
}

// TypedID is the id of the resource of type typ the path names in group g.
func TypedID(rq *Request, g store.ResourceGroup, typ string) string {
	return "/subscriptions/" + g.SubscriptionID + "/resourceGroups/" + g.Name + "/providers/" + typ + "/" + rq.Path.Name
}

// FindTypedAt returns the resource of type typ the path names:
// ResourceGroupNotFound or ResourceNotFound otherwise.
func FindTypedAt(rq *Request, st store.Store, tenantID, typ string) (store.Resource, error) {
	g, err := PathGroup(rq, st)
	if err != nil {
		return store.Resource{}, err
	}
	res, err := FindTyped(rq, st, tenantID, TypedID(rq, g, typ), typ)
	if errors.Is(err, store.ErrNotFound) {
		return store.Resource{}, ResourceNotFound(typ, rq.Path.RG, rq.Path.Name)
	} else if err != nil {
		return store.Resource{}, InternalError(err)
	}
	return res, nil
}

// SaveRecord creates res, or updates the record of its id keeping its
// creation time once check (if not nil) accepts it.
func SaveRecord(rq *Request, tx store.Store, res *store.Resource, check func(old store.Resource) error) error {
	old, err := tx.GetResource(rq.Ctx, res.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		err = tx.CreateResource(rq.Ctx, *res)
	case err != nil:
	default:
		if check != nil {
			if err := check(old); err != nil {
				return err
			}
		}
		res.Created = old.Created
		err = tx.UpdateResource(rq.Ctx, *res)
	}
	if err != nil {
		return InternalError(err)
	}
	return nil
}

// WriteRecord updates prev with res, keeping prev's id, name and creation
// time, or, when prev is nil, creates res (conflict if its id is taken);
// it returns the record as stored.
func WriteRecord(rq *Request, tx store.Store, res store.Resource, prev *store.Resource, conflict error) (store.Resource, error) {
	if prev != nil {
		res.ID, res.Name, res.Created = prev.ID, prev.Name, prev.Created
		if err := tx.UpdateResource(rq.Ctx, res); err != nil {
			return store.Resource{}, InternalError(err)
		}
	} else if err := tx.CreateResource(rq.Ctx, res); errors.Is(err, store.ErrConflict) {
		return store.Resource{}, conflict
	} else if err != nil {
		return store.Resource{}, InternalError(err)
	}
	out, err := tx.GetResource(rq.Ctx, res.ID)
	if err != nil {
		return store.Resource{}, InternalError(err)
	}
	return out, nil
}

// DeleteRecord deletes the generic record with the id, the records below
// it and the role assignments at its scope; a missing record is no error.
func DeleteRecord(rq *Request, tx store.Store, id string) error {
	if err := tx.DeleteResource(rq.Ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return InternalError(err)
	}
	return nil
}

// ResourceID is a generic record's id.
func ResourceID(res store.Resource) string { return res.ID }

// TagsOf is the resource's tags, empty rather than nil.
func TagsOf(res store.Resource) map[string]string {
	if res.Tags == nil {
		return map[string]string{}
	}
	return res.Tags
}

// NonNil is s, or an empty slice for nil (a JSON [] rather than null).
func NonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// IDIn reports whether resource id is in subscription sub and, if rg is
// not empty, resource group rg.
func IDIn(id, sub, rg string) bool {
	segs := strings.Split(strings.TrimPrefix(id, "/"), "/")
	if len(segs) < 4 || !strings.EqualFold(segs[0], "subscriptions") || !strings.EqualFold(segs[1], sub) || !strings.EqualFold(segs[2], "resourceGroups") {
		return false
	}
	return rg == "" || strings.EqualFold(segs[3], rg)
}

// NormalizeLocation is ARM's form of a location: lower case, no spaces
// ("West Europe" → "westeurope").
func NormalizeLocation(l string) string {
	return strings.ToLower(strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, l))
}

// CheckTags refuses more than 50 tags and tag names ARM does not take.
func CheckTags(tags map[string]string) error {
	if len(tags) > 50 {
		return NewError(http.StatusBadRequest, "InvalidTag", "The resource has more than 50 tags.")
	}
	for k, v := range tags {
		if k == "" || len(k) > 512 || len(v) > 256 || strings.ContainsAny(k, "<>%&\\?/") {
			return NewError(http.StatusBadRequest, "InvalidTagNameCharacters", "The tag name '%s' has invalid characters or length.", SafeText(k))
		}
	}
	return nil
}

// CheckLocation normalizes a PUT body's location for a resource of type
// typ: LocationRequired if there is none.
func CheckLocation(location, typ string) (string, error) {
	location = NormalizeLocation(location)
	if location == "" {
		return "", NewError(http.StatusBadRequest, "LocationRequired", "The location property is required for this definition.")
	}
	if len(location) > 64 {
		return "", NewError(http.StatusBadRequest, "LocationNotAvailableForResourceType", "The provided location '%s' is not available for resource type '%s'.", SafeText(location), typ)
	}
	return location, nil
}

// CheckPut checks what a PUT body of a resource of type typ carries besides
// its properties' own fields: a location (returned normalized), at most 50
// tags and the properties.
func CheckPut[P any](typ, location string, tags map[string]string, props *P) (string, error) {
	location, err := CheckLocation(location, typ)
	if err != nil {
		return "", err
	}
	if err := CheckTags(tags); err != nil {
		return "", err
	}
	if props == nil {
		return "", BadRequest("The parameter properties is required.")
	}
	return location, nil
}

// DeleteAndWrite runs fn with its audit record in one transaction and
// answers 200, or 204 when fn returns ErrNothingToDo.
func (rq *Request) DeleteAndWrite(tenantID string, fn func(tx store.Store, dir *directory.Service) error) error {
	gone := false
	err := rq.Change(tenantID, func(tx store.Store, dir *directory.Service) error {
		err := fn(tx, dir)
		gone = errors.Is(err, ErrNothingToDo)
		return err
	})
	if gone {
		rq.W.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	rq.W.WriteHeader(http.StatusOK)
	return nil
}
