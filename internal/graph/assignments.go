package graph

import (
	"errors"
	"net/http"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// assignmentSide says which end of an app role assignment the path's
// service principal is: the principal holding the role
// (/servicePrincipals/{id}/appRoleAssignments) or the resource defining it
// (/servicePrincipals/{id}/appRoleAssignedTo).
type assignmentSide int

const (
	byPrincipal assignmentSide = iota
	byResource
)

func (s assignmentSide) segment() string {
	if s == byResource {
		return "appRoleAssignedTo"
	}
	return "appRoleAssignments"
}

var assignmentListQuery = querySpec{collection: true, resource: "AppRoleAssignment", selectable: appRoleAssignmentProperties}

func (h *Handler) listAssignments(side assignmentSide) func(*request) error {
	return func(rq *request) error {
		opts, err := parseQuery(rq.r.URL.RawQuery, assignmentListQuery)
		if err != nil {
			return err
		}
		sp, err := h.loadServicePrincipal(rq, h.dir)
		if err != nil {
			return err
		}
		var as []store.AppRoleAssignment
		if side == byPrincipal {
			as, err = h.dir.AppRoleAssignmentsOf(rq.ctx, rq.tenant(), sp.ID)
		} else {
			as, err = h.dir.AppRoleAssignedTo(rq.ctx, rq.tenant(), sp.ID)
		}
		if err != nil {
			return err
		}
		return h.writeAssignments(rq, "servicePrincipals('"+sp.ID+"')/"+side.segment(), opts, as)
	}
}

// listUserAssignments handles GET /users/{id}/appRoleAssignments.
func (h *Handler) listUserAssignments(rq *request) error {
	opts, err := parseQuery(rq.r.URL.RawQuery, assignmentListQuery)
	if err != nil {
		return err
	}
	u, err := h.loadUser(rq, h.dir)
	if err != nil {
		return err
	}
	as, err := h.dir.AppRoleAssignmentsOf(rq.ctx, rq.tenant(), u.ID)
	if err != nil {
		return err
	}
	return h.writeAssignments(rq, "users('"+u.ID+"')/appRoleAssignments", opts, as)
}

func (h *Handler) writeAssignments(rq *request, set string, opts queryOptions, as []store.AppRoleAssignment) error {
	var p page
	as, p.more = pageOf(as, func(a store.AppRoleAssignment) string { return a.ID }, opts)
	names := map[string]*string{}
	for _, a := range as {
		v, err := h.assignmentToView(rq, a, names)
		if err != nil {
			return err
		}
		if err := p.add(a.ID, v); err != nil {
			return err
		}
	}
	return h.writeCollection(rq, set, opts, p)
}

// assignmentToView shows an assignment with the display names of both
// ends, which Graph includes; names caches them across one page.
func (h *Handler) assignmentToView(rq *request, a store.AppRoleAssignment, names map[string]*string) (appRoleAssignmentView, error) {
	principal, err := h.displayName(rq, objectRef{a.PrincipalID, a.PrincipalType}, names)
	if err != nil {
		return appRoleAssignmentView{}, err
	}
	resource, err := h.displayName(rq, objectRef{a.ResourceID, store.KindServicePrincipal}, names)
	if err != nil {
		return appRoleAssignmentView{}, err
	}
	return appRoleAssignmentView{ID: a.ID, AppRoleID: a.AppRoleID, CreatedDateTime: graphTime(a.Created),
		PrincipalDisplayName: principal, PrincipalID: a.PrincipalID, PrincipalType: principalTypes[a.PrincipalType],
		ResourceDisplayName: resource, ResourceID: a.ResourceID}, nil
}

// displayName is an object's display name, or null if it is gone.
func (h *Handler) displayName(rq *request, ref objectRef, cache map[string]*string) (*string, error) {
	if name, ok := cache[ref.id]; ok {
		return name, nil
	}
	view, err := h.directoryObject(rq, ref)
	var name *string
	switch v := view.(type) {
	case userView:
		name = nullable(v.DisplayName)
	case groupView:
		name = nullable(v.DisplayName)
	case servicePrincipalView:
		name = nullable(v.DisplayName)
	}
	if err != nil && !errors.Is(err, directory.ErrNotFound) {
		return nil, err
	}
	cache[ref.id] = name
	return name, nil
}

// createAssignment grants an app role. The path's service principal must
// be the end of the assignment the path names: the principal for
// appRoleAssignments, the resource for appRoleAssignedTo.
func (h *Handler) createAssignment(side assignmentSide) func(*request) error {
	return func(rq *request) error {
		body, err := readBody(rq, false)
		if err != nil {
			return err
		}
		var in appRoleAssignmentInput
		if err := decodeBody(body, &in, appRoleAssignmentReadOnly); err != nil {
			return err
		}
		principalID, resourceID, roleID := normalizeID(in.PrincipalID), normalizeID(in.ResourceID), normalizeID(in.AppRoleID)
		rq.detail = "principal=" + principalID + " resource=" + resourceID + " appRole=" + roleID
		var created store.AppRoleAssignment
		var spID string
		err = h.change(rq, func(tx *directory.Service) (string, error) {
			sp, err := h.loadServicePrincipal(rq, tx)
			if err != nil {
				return "", err
			}
			spID = sp.ID
			if side == byPrincipal && principalID != sp.ID {
				return "", badRequest("Property 'principalId' must be the service principal '%s' of the request URI.", sp.ID)
			}
			if side == byResource && resourceID != sp.ID {
				return "", badRequest("Property 'resourceId' must be the service principal '%s' of the request URI.", sp.ID)
			}
			created, err = tx.AssignAppRole(rq.ctx, rq.tenant(), principalID, resourceID, roleID)
			return created.ID, err
		})
		if err != nil {
			return err
		}
		v, err := h.assignmentToView(rq, created, map[string]*string{})
		if err != nil {
			return err
		}
		return h.writeEntity(rq, http.StatusCreated, "servicePrincipals('"+spID+"')/"+side.segment(), nil, v)
	}
}

func (h *Handler) deleteAssignment(side assignmentSide) func(*request) error {
	return func(rq *request) error {
		ref := normalizeID(rq.pathID("ref"))
		err := h.change(rq, func(tx *directory.Service) (string, error) {
			sp, err := h.loadServicePrincipal(rq, tx)
			if err != nil {
				return "", err
			}
			a, err := tx.AppRoleAssignment(rq.ctx, rq.tenant(), ref)
			if errors.Is(err, directory.ErrNotFound) {
				return "", notFound(ref)
			}
			if err != nil {
				return "", err
			}
			end := a.PrincipalID
			if side == byResource {
				end = a.ResourceID
			}
			if end != sp.ID {
				return "", notFound(ref) // an assignment, but not one of this principal's
			}
			rq.detail = "principal=" + a.PrincipalID + " resource=" + a.ResourceID + " appRole=" + a.AppRoleID
			return a.ID, tx.RemoveAppRoleAssignment(rq.ctx, rq.tenant(), a.ID)
		})
		if err != nil {
			return err
		}
		return noContent(rq)
	}
}

// normalizeID lower-cases a GUID, the form ids are stored in; other text
// is returned as it is (and will not be found).
func normalizeID(s string) string {
	if validID(s) {
		return strings.ToLower(s)
	}
	return s
}
