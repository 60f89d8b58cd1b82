package graph

import (
	"context"
	"errors"
	"net/http"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

var (
	groupListQuery = querySpec{collection: true, resource: "Group",
		filterable: groupFilter, selectable: groupProperties, advanced: true, searchable: groupSearch, orderable: groupOrder}
	groupGetQuery = querySpec{resource: "Group", selectable: groupProperties}
)

// loadGroup finds the group the path names in the caller's tenant.
func (h *Handler) loadGroup(rq *request, dir *directory.Service) (*directory.Group, error) {
	id := rq.pathID("id")
	if rq.path.byAppID {
		return nil, notFound(id)
	}
	g, err := dir.GetGroup(rq.ctx, rq.tenant(), normalizeID(id))
	if errors.Is(err, directory.ErrNotFound) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, err
	}
	rq.target = g.ID
	return g, nil
}

// groupObject is loadGroup for the shared owners endpoints.
func (h *Handler) groupObject(rq *request, dir *directory.Service) (string, error) {
	g, err := h.loadGroup(rq, dir)
	if err != nil {
		return "", err
	}
	return g.ID, nil
}

func (h *Handler) listGroups(rq *request) error {
	return listCollection(h, rq, "groups", groupListQuery, false,
		func(q directory.Query) ([]*directory.Group, error) { return h.dir.ListGroups(rq.ctx, rq.tenant(), q) },
		func(g *directory.Group) (string, any) { return g.ID, groupToView(g) })
}

func (h *Handler) getGroup(rq *request) error {
	return getEntity(h, rq, groupGetQuery, "groups", h.loadGroup, groupToView)
}

// getEntity handles GET of one entity of set: the query, the entity the
// path names (load), and its view.
func getEntity[T any, V any](h *Handler, rq *request, q querySpec, set string,
	load func(*request, *directory.Service) (T, error), view func(T) V) error {
	opts, err := parseQuery(rq.r.URL.RawQuery, q)
	if err != nil {
		return err
	}
	e, err := load(rq, h.dir)
	if err != nil {
		return err
	}
	return h.writeEntity(rq, http.StatusOK, set, opts.sel, view(e))
}

// readInput reads the request body into in, refusing the readOnly
// properties.
func readInput(rq *request, in any, readOnly []string) error {
	body, err := readBody(rq, false)
	if err != nil {
		return err
	}
	return decodeBody(body, in, readOnly)
}

// changeEntity loads the object the path names with tx, changes it with
// fn (id is its id, the audit target) and answers 204.
func changeEntity[T any](h *Handler, rq *request, load func(*request, *directory.Service) (T, error), id func(T) string,
	fn func(tx *directory.Service, e T) error) error {
	err := h.change(rq, func(tx *directory.Service) (string, error) {
		e, err := load(rq, tx)
		if err != nil {
			return "", err
		}
		return id(e), fn(tx, e)
	})
	if err != nil {
		return err
	}
	return noContent(rq)
}

// changeGroup is changeEntity on the group the path names.
func (h *Handler) changeGroup(rq *request, fn func(tx *directory.Service, g *directory.Group) error) error {
	return changeEntity(h, rq, h.loadGroup, func(g *directory.Group) string { return g.ID }, fn)
}

func (h *Handler) createGroup(rq *request) error {
	var in groupInput
	if err := readInput(rq, &in, groupCreateReadOnly); err != nil {
		return err
	}
	g, err := in.newGroup()
	if err != nil {
		return err
	}
	var created *directory.Group
	err = h.change(rq, func(tx *directory.Service) (string, error) {
		c, err := tx.CreateGroup(rq.ctx, rq.tenant(), g)
		if err != nil {
			return "", err
		}
		created = c
		return c.ID, nil
	})
	if err != nil {
		return err
	}
	return h.writeEntity(rq, http.StatusCreated, "groups", nil, groupToView(created))
}

func (h *Handler) updateGroup(rq *request) error {
	var in groupInput
	if err := readInput(rq, &in, groupUpdateReadOnly); err != nil {
		return err
	}
	return h.changeGroup(rq, func(tx *directory.Service, g *directory.Group) error {
		_, err := tx.UpdateGroup(rq.ctx, rq.tenant(), g.ID, in.DisplayName, in.Description)
		return err
	})
}

func (h *Handler) deleteGroup(rq *request) error {
	return h.changeGroup(rq, func(tx *directory.Service, g *directory.Group) error {
		return tx.DeleteGroup(rq.ctx, rq.tenant(), g.ID)
	})
}

// listMembers handles /members (direct) and /transitiveMembers (direct,
// and the members of member groups, to any depth, each once).
func (h *Handler) listMembers(transitive bool) func(*request) error {
	return func(rq *request) error {
		opts, err := parseQuery(rq.r.URL.RawQuery, directoryObjectQuery)
		if err != nil {
			return err
		}
		g, err := h.loadGroup(rq, h.dir)
		if err != nil {
			return err
		}
		var refs []objectRef
		seen := map[string]bool{g.ID: true}
		queue := []string{g.ID}
		for len(queue) > 0 {
			links, err := h.dir.Members(rq.ctx, rq.tenant(), queue[0])
			if err != nil && !errors.Is(err, directory.ErrNotFound) {
				return err
			}
			queue = queue[1:]
			for _, ref := range linkRefs(links, false) {
				if seen[ref.id] {
					continue
				}
				seen[ref.id] = true
				refs = append(refs, ref)
				if transitive && ref.kind == store.KindGroup {
					queue = append(queue, ref.id)
				}
			}
		}
		return h.writeDirectoryObjects(rq, opts, refs)
	}
}

// addMember handles POST /groups/{id}/members/$ref.
func (h *Handler) addMember(rq *request) error {
	memberID, err := readReference(rq)
	if err != nil {
		return err
	}
	return h.changeMember(rq, memberID, (*directory.Service).AddMember)
}

// removeMember handles DELETE /groups/{id}/members/{memberId}/$ref.
func (h *Handler) removeMember(rq *request) error {
	return h.changeMember(rq, normalizeID(rq.pathID("ref")), (*directory.Service).RemoveMember)
}

// changeMember adds or removes memberID of the group the path names; an
// unknown member is not found.
func (h *Handler) changeMember(rq *request, memberID string,
	op func(tx *directory.Service, ctx context.Context, tenant, groupID, memberID string) error) error {
	rq.detail = "member=" + memberID
	return h.changeGroup(rq, func(tx *directory.Service, g *directory.Group) error {
		err := op(tx, rq.ctx, rq.tenant(), g.ID, memberID)
		if errors.Is(err, directory.ErrNotFound) {
			return notFound(memberID)
		}
		return err
	})
}
