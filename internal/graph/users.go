package graph

import (
	"errors"
	"net/http"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

var (
	userListQuery = querySpec{collection: true, resource: "User",
		filterable: userFilter, selectable: userProperties, advanced: true, searchable: userSearch, orderable: userOrder}
	userGetQuery = querySpec{resource: "User", selectable: userProperties}
	// memberOfQuery: a user's groups, shown as directory objects.
	memberOfQuery = querySpec{collection: true, resource: "DirectoryObject", selectable: directoryObjectProperties}
)

// loadUser finds the user the path names, by object id or by
// userPrincipalName, as Graph's /users/{id | userPrincipalName} does.
func (h *Handler) loadUser(rq *request, dir *directory.Service) (*directory.User, error) {
	ref := rq.pathID("id")
	var u *directory.User
	var err error
	switch {
	case rq.path.byAppID:
		err = directory.ErrNotFound
	case validID(ref):
		u, err = dir.GetUser(rq.ctx, rq.tenant(), strings.ToLower(ref))
	case strings.Contains(ref, "@"):
		u, err = dir.UserByName(rq.ctx, rq.tenant(), ref)
	default:
		err = directory.ErrNotFound
	}
	if errors.Is(err, directory.ErrNotFound) {
		return nil, notFound(ref)
	}
	if err != nil {
		return nil, err
	}
	rq.target = u.ID
	return u, nil
}

func (h *Handler) listUsers(rq *request) error {
	return listCollection(h, rq, "users", userListQuery, false,
		func(q directory.Query) ([]*directory.User, error) { return h.dir.ListUsers(rq.ctx, rq.tenant(), q) },
		func(u *directory.User) (string, any) { return u.ID, userToView(u) })
}

func (h *Handler) getUser(rq *request) error {
	opts, err := parseQuery(rq.r.URL.RawQuery, userGetQuery)
	if err != nil {
		return err
	}
	u, err := h.loadUser(rq, h.dir)
	if err != nil {
		return err
	}
	return h.writeEntity(rq, http.StatusOK, "users", opts.sel, userToView(u))
}

func (h *Handler) createUser(rq *request) error {
	body, err := readBody(rq, false)
	if err != nil {
		return err
	}
	var in userInput
	if err := decodeBody(body, &in, userCreateReadOnly); err != nil {
		return err
	}
	nu, err := in.newUser()
	if err != nil {
		return err
	}
	var created *directory.User
	err = h.change(rq, func(tx *directory.Service) (string, error) {
		u, err := tx.CreateUser(rq.ctx, rq.tenant(), nu)
		if err != nil {
			return "", err
		}
		created = u
		return u.ID, nil
	})
	if err != nil {
		return err
	}
	return h.writeEntity(rq, http.StatusCreated, "users", nil, userToView(created))
}

func (h *Handler) updateUser(rq *request) error {
	body, err := readBody(rq, false)
	if err != nil {
		return err
	}
	var in userInput
	if err := decodeBody(body, &in, userUpdateReadOnly); err != nil {
		return err
	}
	changes, err := in.changes()
	if err != nil {
		return err
	}
	if changes.Password != nil {
		rq.detail = "password changed"
	}
	err = h.change(rq, func(tx *directory.Service) (string, error) {
		u, err := h.loadUser(rq, tx)
		if err != nil {
			return "", err
		}
		_, err = tx.UpdateUser(rq.ctx, rq.tenant(), u.ID, changes)
		return u.ID, err
	})
	if err != nil {
		return err
	}
	return noContent(rq)
}

func (h *Handler) deleteUser(rq *request) error {
	err := h.change(rq, func(tx *directory.Service) (string, error) {
		u, err := h.loadUser(rq, tx)
		if err != nil {
			return "", err
		}
		return u.ID, tx.DeleteUser(rq.ctx, rq.tenant(), u.ID)
	})
	if err != nil {
		return err
	}
	return noContent(rq)
}

// listMemberOf handles GET /users/{id}/memberOf: the groups the user is a
// direct member of.
func (h *Handler) listMemberOf(rq *request) error {
	opts, err := parseQuery(rq.r.URL.RawQuery, memberOfQuery)
	if err != nil {
		return err
	}
	u, err := h.loadUser(rq, h.dir)
	if err != nil {
		return err
	}
	groups, err := h.dir.MemberOf(rq.ctx, rq.tenant(), u.ID)
	if err != nil {
		return err
	}
	refs := make([]objectRef, len(groups))
	for i, g := range groups {
		refs[i] = objectRef{id: g, kind: store.KindGroup}
	}
	return h.writeDirectoryObjects(rq, opts, refs)
}
