package graph

import (
	"errors"
	"net/http"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

var (
	groupListQuery = querySpec{collection: true, resource: "Group",
		filterable: []string{"displayName", "id"}, selectable: groupProperties}
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
	opts, err := parseQuery(rq.r.URL.RawQuery, groupGetQuery)
	if err != nil {
		return err
	}
	g, err := h.loadGroup(rq, h.dir)
	if err != nil {
		return err
	}
	return h.writeEntity(rq, http.StatusOK, "groups", opts.sel, groupToView(g))
}

func (h *Handler) createGroup(rq *request) error {
	body, err := readBody(rq, false)
	if err != nil {
		return err
	}
	var in groupInput
	if err := decodeBody(body, &in, groupCreateReadOnly); err != nil {
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
	body, err := readBody(rq, false)
	if err != nil {
		return err
	}
	var in groupInput
	if err := decodeBody(body, &in, groupUpdateReadOnly); err != nil {
		return err
	}
	err = h.change(rq, func(tx *directory.Service) (string, error) {
		g, err := h.loadGroup(rq, tx)
		if err != nil {
			return "", err
		}
		_, err = tx.UpdateGroup(rq.ctx, rq.tenant(), g.ID, in.DisplayName, in.Description)
		return g.ID, err
	})
	if err != nil {
		return err
	}
	return noContent(rq)
}

func (h *Handler) deleteGroup(rq *request) error {
	err := h.change(rq, func(tx *directory.Service) (string, error) {
		g, err := h.loadGroup(rq, tx)
		if err != nil {
			return "", err
		}
		return g.ID, tx.DeleteGroup(rq.ctx, rq.tenant(), g.ID)
	})
	if err != nil {
		return err
	}
	return noContent(rq)
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
	rq.detail = "member=" + memberID
	err = h.change(rq, func(tx *directory.Service) (string, error) {
		g, err := h.loadGroup(rq, tx)
		if err != nil {
			return "", err
		}
		err = tx.AddMember(rq.ctx, rq.tenant(), g.ID, memberID)
		if errors.Is(err, directory.ErrNotFound) {
			return "", notFound(memberID)
		}
		return g.ID, err
	})
	if err != nil {
		return err
	}
	return noContent(rq)
}

// removeMember handles DELETE /groups/{id}/members/{memberId}/$ref.
func (h *Handler) removeMember(rq *request) error {
	memberID := normalizeID(rq.pathID("ref"))
	rq.detail = "member=" + memberID
	err := h.change(rq, func(tx *directory.Service) (string, error) {
		g, err := h.loadGroup(rq, tx)
		if err != nil {
			return "", err
		}
		err = tx.RemoveMember(rq.ctx, rq.tenant(), g.ID, memberID)
		if errors.Is(err, directory.ErrNotFound) {
			return "", notFound(memberID)
		}
		return g.ID, err
	})
	if err != nil {
		return err
	}
	return noContent(rq)
}
