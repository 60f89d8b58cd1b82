package directory

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// DefaultAccessRoleID is the role id of an assignment that grants access to
// a resource without any particular app role.
const DefaultAccessRoleID = "00000000-0000-0000-0000-000000000000"

// AssignAppRole grants principal (a user, group or service principal of the
// tenant) the app role roleID of the resource service principal. Service
// principals may hold only roles that allow Application members; users and
// groups only roles that allow User members, or the default access role.
func (s *Service) AssignAppRole(ctx context.Context, tenantID, principalID, resourceID, roleID string) (store.AppRoleAssignment, error) {
	var out store.AppRoleAssignment
	err := s.inTx(ctx, func(tx *Service) error {
		kind, err := tx.ObjectKind(ctx, tenantID, principalID)
		if errors.Is(err, ErrNotFound) || kind == store.KindApplication {
			return invalidf("Principal %s was not found in the tenant.", principalID)
		}
		if err != nil {
			return err
		}
		resource, err := tx.GetServicePrincipal(ctx, tenantID, resourceID)
		if errors.Is(err, ErrNotFound) {
			return invalidf("Resource service principal %s was not found in the tenant.", resourceID)
		}
		if err != nil {
			return err
		}
		out, err = tx.assignAppRole(ctx, tenantID, principalID, kind, resource, roleID)
		return err
	})
	return out, err
}

// assignAppRole is AssignAppRole once the principal's kind and the
// resource service principal (of tenantID) are known, read in the
// caller's transaction: a new tenant's bootstrap grants reuse the Graph
// service principal they just created instead of decoding it once more
// per permission.
func (s *Service) assignAppRole(ctx context.Context, tenantID, principalID string, kind store.ObjectKind, resource *ServicePrincipal, roleID string) (store.AppRoleAssignment, error) {
	if _, err := uuid.Parse(roleID); err != nil {
		return store.AppRoleAssignment{}, invalidf("appRoleId must be a GUID.")
	}
	memberType := "User"
	if kind == store.KindServicePrincipal {
		memberType = "Application"
	}
	role, ok := resource.AppRole(roleID)
	switch {
	case roleID == DefaultAccessRoleID && memberType == "User":
	case !ok:
		return store.AppRoleAssignment{}, invalidf("Permission being assigned was not found on application '%s'.", resource.AppID)
	case !role.Allows(memberType):
		return store.AppRoleAssignment{}, invalidf("Permission %s of '%s' cannot be assigned to a %s.", role.Value, resource.DisplayName, kind)
	}
	out := store.AppRoleAssignment{TenantID: tenantID, ID: newID(), PrincipalID: principalID, PrincipalType: kind,
		ResourceID: resource.ID, AppRoleID: roleID, Created: s.Now()}
	err := s.st.CreateAppRoleAssignment(ctx, out)
	if errors.Is(err, store.ErrConflict) {
		return store.AppRoleAssignment{}, conflictf("Permission being assigned already exists on the object")
	}
	return out, err
}

// AppRoleAssignment finds one assignment by id.
func (s *Service) AppRoleAssignment(ctx context.Context, tenantID, id string) (store.AppRoleAssignment, error) {
	return s.st.GetAppRoleAssignment(ctx, tenantID, id)
}

// AppRoleAssignmentsOf lists the roles a principal holds directly.
func (s *Service) AppRoleAssignmentsOf(ctx context.Context, tenantID, principalID string) ([]store.AppRoleAssignment, error) {
	return s.st.ListAppRoleAssignmentsByPrincipal(ctx, tenantID, principalID)
}

// AppRoleAssignedTo lists the assignments of a resource's roles.
func (s *Service) AppRoleAssignedTo(ctx context.Context, tenantID, resourceID string) ([]store.AppRoleAssignment, error) {
	return s.st.ListAppRoleAssignmentsByResource(ctx, tenantID, resourceID)
}

// RemoveAppRoleAssignment revokes an assignment.
func (s *Service) RemoveAppRoleAssignment(ctx context.Context, tenantID, id string) error {
	return s.st.DeleteAppRoleAssignment(ctx, tenantID, id)
}

// GrantedRoles returns the values of the app roles of resource that the
// principal, of the given kind, holds: directly, and for users also through
// the groups they are in, directly or nested. These become the token's roles
// claim. The caller names the kind because it always knows it (it just
// authenticated the principal), which spares a lookup on every token.
func (s *Service) GrantedRoles(ctx context.Context, tenantID, principalID string, kind store.ObjectKind, resource *ServicePrincipal) ([]string, error) {
	// The resource's version is part of the key: its role definitions
	// decide which assignments still count.
	k := lookupKey{lookupGrantedRoles, tenantID, rolesKey(kind, principalID, resource)}
	r, err := cached(s, k, func() (*grantedRoles, error) {
		roles, err := s.grantedRoles(ctx, tenantID, principalID, kind, resource)
		return rolesFound(roles), err
	})
	if err != nil {
		return nil, err
	}
	return slices.Clone(r.values), nil
}

// grantedRoles is a cached GrantedRoles result.
type grantedRoles struct{ values []string }

// noRoles is every cached lookup's that found no roles (nil values).
var noRoles = &grantedRoles{}

// rolesFound is what the cache holds for roles.
func rolesFound(roles []string) *grantedRoles {
	if roles == nil {
		return noRoles
	}
	return &grantedRoles{roles}
}

// rolesKey is GrantedRoles' key within a tenant: the principal's kind and
// id and the resource's id and version. A key of a user's, a group's or a
// service principal's ids written as Go's uuid package writes them
// (lowercase, the store's form) holds their 16 bytes each, and is 48
// bytes on the heap where the text took 96; any other is that text, so
// that ids that differ only in case keep apart, as the store's reads
// keep them. The two forms begin with different bytes, and the binary
// one has a fixed length before the version.
func rolesKey(kind store.ObjectKind, principalID string, resource *ServicePrincipal) string {
	var code byte
	switch kind {
	case store.KindUser:
		code = 'u'
	case store.KindGroup:
		code = 'g'
	case store.KindServicePrincipal:
		code = 's'
	}
	p, okP := lowercaseUUID(principalID)
	r, okR := lowercaseUUID(resource.ID)
	if code == 0 || !okP || !okR {
		return fmt.Sprintf("t%s/%s/%s/%d", kind, principalID, resource.ID, resource.Version)
	}
	b := make([]byte, 0, 2+2*len(p)+binary.MaxVarintLen64)
	b = append(append(append(b, 'b', code), p[:]...), r[:]...)
	return string(binary.AppendVarint(b, resource.Version))
}

// lowercaseUUID parses an id written exactly as uuid.UUID.String writes
// it, so that the bytes stand for that one string.
func lowercaseUUID(s string) (uuid.UUID, bool) {
	if len(s) != 36 || strings.ContainsAny(s, "ABCDEF") {
		return uuid.UUID{}, false
	}
	id, err := uuid.Parse(s)
	return id, err == nil
}

func (s *Service) grantedRoles(ctx context.Context, tenantID, principalID string, kind store.ObjectKind, resource *ServicePrincipal) ([]string, error) {
	holders := []string{principalID}
	if kind == store.KindUser {
		groups, err := s.TransitiveMemberOf(ctx, tenantID, principalID)
		if err != nil {
			return nil, err
		}
		holders = append(holders, groups...)
	}
	var roles []string
	seen := map[string]bool{}
	for _, h := range holders {
		as, err := s.st.ListAppRoleAssignmentsByPrincipal(ctx, tenantID, h)
		if err != nil {
			return nil, err
		}
		for _, a := range as {
			if a.ResourceID != resource.ID {
				continue
			}
			if r, ok := resource.AppRole(a.AppRoleID); ok && r.Value != "" && !seen[r.Value] {
				seen[r.Value] = true
				roles = append(roles, r.Value)
			}
		}
	}
	return roles, nil
}

// AddOwner makes a user or service principal an owner of an application,
// service principal or group.
func (s *Service) AddOwner(ctx context.Context, tenantID, objectID, ownerID string) error {
	return s.inTx(ctx, func(tx *Service) error {
		if _, err := tx.ObjectKind(ctx, tenantID, objectID); err != nil {
			return err
		}
		kind, err := tx.ObjectKind(ctx, tenantID, ownerID)
		if err != nil {
			return err
		}
		if kind != store.KindUser && kind != store.KindServicePrincipal {
			return invalidf("Only users and service principals can be owners.")
		}
		err = tx.st.AddLink(ctx, store.Link{TenantID: tenantID, Kind: store.LinkOwner, From: objectID, To: ownerID, ToKind: kind, Created: tx.Now()})
		if errors.Is(err, store.ErrConflict) {
			return conflictf("One or more added object references already exist for the following modified properties: 'owners'")
		}
		return err
	})
}

// RemoveOwner removes an owner.
func (s *Service) RemoveOwner(ctx context.Context, tenantID, objectID, ownerID string) error {
	return s.st.RemoveLink(ctx, tenantID, store.LinkOwner, objectID, ownerID)
}

// Owners lists an object's owners.
func (s *Service) Owners(ctx context.Context, tenantID, objectID string) ([]store.Link, error) {
	return s.st.ListLinksFrom(ctx, tenantID, store.LinkOwner, objectID)
}

// IsOwner reports whether ownerID owns objectID.
func (s *Service) IsOwner(ctx context.Context, tenantID, objectID, ownerID string) (bool, error) {
	links, err := s.st.ListLinksTo(ctx, tenantID, store.LinkOwner, ownerID)
	if err != nil {
		return false, err
	}
	for _, l := range links {
		if l.From == objectID {
			return true, nil
		}
	}
	return false, nil
}

// OwnedObjects lists the ids of the objects ownerID owns.
func (s *Service) OwnedObjects(ctx context.Context, tenantID, ownerID string) ([]string, error) {
	links, err := s.st.ListLinksTo(ctx, tenantID, store.LinkOwner, ownerID)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(links))
	for i, l := range links {
		out[i] = l.From
	}
	return out, nil
}
