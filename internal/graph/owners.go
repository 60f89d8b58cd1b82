package graph

import (
	"errors"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Owners work the same way on applications, service principals and groups;
// the handlers here take an objectLoader that resolves (and, for
// owned-only callers, checks) the object the path names.
type objectLoader func(rq *request, dir *directory.Service) (objectID string, err error)

// directoryObjectQuery is what collections of mixed directory objects
// (owners, members, memberOf) accept: paging and $select, no $filter.
var directoryObjectQuery = querySpec{collection: true, resource: "DirectoryObject", selectable: directoryObjectProperties}

func (h *Handler) ownersOf(load objectLoader) func(*request) error {
	return func(rq *request) error {
		opts, err := parseQuery(rq.r.URL.RawQuery, directoryObjectQuery)
		if err != nil {
			return err
		}
		id, err := load(rq, h.dir)
		if err != nil {
			return err
		}
		links, err := h.dir.Owners(rq.ctx, rq.tenant(), id)
		if err != nil {
			return err
		}
		return h.writeDirectoryObjects(rq, opts, linkRefs(links, false))
	}
}

// addOwner handles POST …/owners/$ref {"@odata.id": ".../directoryObjects/{id}"}.
func (h *Handler) addOwner(load objectLoader) func(*request) error {
	return func(rq *request) error {
		ownerID, err := readReference(rq)
		if err != nil {
			return err
		}
		rq.detail = "owner=" + ownerID
		err = h.change(rq, func(tx *directory.Service) (string, error) {
			id, err := load(rq, tx)
			if err != nil {
				return "", err
			}
			err = tx.AddOwner(rq.ctx, rq.tenant(), id, ownerID)
			if errors.Is(err, directory.ErrNotFound) {
				return "", notFound(ownerID)
			}
			return id, err
		})
		if err != nil {
			return err
		}
		return noContent(rq)
	}
}

// removeOwner handles DELETE …/owners/{ownerId}/$ref.
func (h *Handler) removeOwner(load objectLoader) func(*request) error {
	return func(rq *request) error {
		ownerID := normalizeID(rq.pathID("ref"))
		rq.detail = "owner=" + ownerID
		err := h.change(rq, func(tx *directory.Service) (string, error) {
			id, err := load(rq, tx)
			if err != nil {
				return "", err
			}
			err = tx.RemoveOwner(rq.ctx, rq.tenant(), id, ownerID)
			if errors.Is(err, directory.ErrNotFound) {
				return "", notFound(ownerID)
			}
			return id, err
		})
		if err != nil {
			return err
		}
		return noContent(rq)
	}
}

// readReference reads a $ref body and returns the object id it names.
func readReference(rq *request) (string, error) {
	body, err := readBody(rq, false)
	if err != nil {
		return "", err
	}
	var in refInput
	if err := decodeBody(body, &in, nil); err != nil {
		return "", err
	}
	return in.referencedID()
}

// objectRef names a directory object of the caller's tenant and its kind.
type objectRef struct {
	id   string
	kind store.ObjectKind
}

// linkRefs turns owner or member links into the objects at their far end:
// the To side, or the From side when reverse (memberOf).
func linkRefs(links []store.Link, reverse bool) []objectRef {
	out := make([]objectRef, 0, len(links))
	for _, l := range links {
		if reverse {
			out = append(out, objectRef{id: l.From, kind: store.KindGroup})
		} else {
			out = append(out, objectRef{id: l.To, kind: l.ToKind})
		}
	}
	return out
}

// writeDirectoryObjects sends a page of mixed directory objects, each
// with its @odata.type, as Graph's directoryObject collections do.
func (h *Handler) writeDirectoryObjects(rq *request, opts queryOptions, refs []objectRef) error {
	var p page
	var items []objectRef
	items, p.more = pageOf(refs, func(r objectRef) string { return r.id }, opts)
	for _, ref := range items {
		view, err := h.directoryObject(rq, ref)
		if errors.Is(err, directory.ErrNotFound) {
			continue // removed since the list was read
		}
		if err != nil {
			return err
		}
		if err := p.add(ref.id, view); err != nil {
			return err
		}
		p.items[len(p.items)-1].annotate("@odata.type", odataTypes[ref.kind])
	}
	if len(items) > 0 {
		// The cursor is the page's last id even if that object was
		// skipped, so that the next page starts after it.
		p.last = items[len(items)-1].id
	}
	return h.writeCollection(rq, "directoryObjects", opts, p)
}

// directoryObject loads one object of the caller's tenant as its view.
func (h *Handler) directoryObject(rq *request, ref objectRef) (any, error) {
	switch ref.kind {
	case store.KindUser:
		u, err := h.dir.GetUser(rq.ctx, rq.tenant(), ref.id)
		if err != nil {
			return nil, err
		}
		return userToView(u), nil
	case store.KindGroup:
		g, err := h.dir.GetGroup(rq.ctx, rq.tenant(), ref.id)
		if err != nil {
			return nil, err
		}
		return groupToView(g), nil
	case store.KindServicePrincipal:
		sp, err := h.dir.GetServicePrincipal(rq.ctx, rq.tenant(), ref.id)
		if err != nil {
			return nil, err
		}
		return servicePrincipalToView(sp), nil
	case store.KindApplication:
		a, err := h.dir.GetApplication(rq.ctx, rq.tenant(), ref.id)
		if err != nil {
			return nil, err
		}
		return applicationToView(a), nil
	}
	return nil, directory.ErrNotFound
}
