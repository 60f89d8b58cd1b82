package directory

import (
	"context"
	"errors"
	"sort"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Directory roles as Graph shows them: a role is "activated" in a tenant
// (a directoryRole object, created from its template the first time it is
// assigned) and users and service principals hold it through member
// links; see AssignDirectoryRole.

// DirectoryRole is an activated directory role of a tenant.
type DirectoryRole struct {
	ID             string
	RoleTemplateID string
	DisplayName    string
}

// DirectoryRoleID is the object id of a role template's activated role in
// a tenant.
func DirectoryRoleID(tenantID, templateID string) string {
	return directoryRoleID(tenantID, strings.ToLower(templateID))
}

// ActivatedDirectoryRoles lists the roles activated in the tenant, by id.
func (s *Service) ActivatedDirectoryRoles(ctx context.Context, tenantID string) ([]DirectoryRole, error) {
	var out []DirectoryRole
	for tmpl, name := range DirectoryRoleNames {
		id := directoryRoleID(tenantID, tmpl)
		_, err := s.st.GetObject(ctx, tenantID, store.KindDirectoryRole, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, DirectoryRole{ID: id, RoleTemplateID: tmpl, DisplayName: name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// ActivatedDirectoryRole finds an activated role by its object id or,
// when byTemplate, by its role template id.
func (s *Service) ActivatedDirectoryRole(ctx context.Context, tenantID, ref string, byTemplate bool) (DirectoryRole, error) {
	ref = strings.ToLower(ref)
	roles, err := s.ActivatedDirectoryRoles(ctx, tenantID)
	if err != nil {
		return DirectoryRole{}, err
	}
	for _, r := range roles {
		if (!byTemplate && r.ID == ref) || (byTemplate && r.RoleTemplateID == ref) {
			return r, nil
		}
	}
	return DirectoryRole{}, ErrNotFound
}

// ActivateDirectoryRole activates a role from its template (Graph's POST
// /directoryRoles); activating an active role returns it.
func (s *Service) ActivateDirectoryRole(ctx context.Context, tenantID, templateID string) (DirectoryRole, error) {
	templateID = strings.ToLower(templateID)
	name, ok := DirectoryRoleNames[templateID]
	if !ok {
		return DirectoryRole{}, invalidf("Role template %s is not a directory role tenantbridge supports.", templateID)
	}
	id := directoryRoleID(tenantID, templateID)
	err := s.inTx(ctx, func(tx *Service) error {
		_, err := tx.st.GetObject(ctx, tenantID, store.KindDirectoryRole, id)
		if errors.Is(err, store.ErrNotFound) {
			return create(ctx, tx.st, tenantID, &directoryRole{ID: id, RoleTemplateID: templateID, DisplayName: name})
		}
		return err
	})
	return DirectoryRole{ID: id, RoleTemplateID: templateID, DisplayName: name}, err
}

// DirectoryRoleMember is a holder of a directory role: a user or a
// service principal.
type DirectoryRoleMember struct {
	ID   string
	Kind store.ObjectKind
}

// DirectoryRoleMembers lists the holders of an activated role, sorted by id.
func (s *Service) DirectoryRoleMembers(ctx context.Context, tenantID, roleID string) ([]DirectoryRoleMember, error) {
	links, err := s.st.ListLinksFrom(ctx, tenantID, store.LinkDirectoryRoleMember, roleID)
	if err != nil {
		return nil, err
	}
	out := make([]DirectoryRoleMember, 0, len(links))
	for _, l := range links {
		out = append(out, DirectoryRoleMember{ID: l.To, Kind: l.ToKind})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
