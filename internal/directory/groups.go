package directory

import (
	"context"
	"errors"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// CreateGroup adds a security group.
func (s *Service) CreateGroup(ctx context.Context, tenantID string, g Group) (*Group, error) {
	if _, err := s.st.GetTenant(ctx, tenantID); err != nil {
		return nil, err
	}
	g.DisplayName = strings.TrimSpace(g.DisplayName)
	if g.DisplayName == "" || len(g.DisplayName) > 256 {
		return nil, invalidf("Property 'displayName' is required (at most 256 characters).")
	}
	if g.MailNickname == "" {
		g.MailNickname = strings.Map(func(r rune) rune {
			if r == ' ' || r > 127 || strings.ContainsRune("@()\\[]\";:<>,", r) {
				return -1
			}
			return r
		}, g.DisplayName)
	}
	if g.MailEnabled {
		return nil, invalidf("Only security groups (mailEnabled false) are supported.")
	}
	g.SecurityEnabled = true
	g.ID, g.TenantID, g.CreatedDateTime = newID(), tenantID, s.Now()
	if err := create(ctx, s.st, tenantID, &g); err != nil {
		return nil, err
	}
	return &g, nil
}

// GetGroup finds a group by object id.
func (s *Service) GetGroup(ctx context.Context, tenantID, id string) (*Group, error) {
	return get[Group](ctx, s.st, tenantID, store.KindGroup, id)
}

// ListGroups lists a tenant's groups.
func (s *Service) ListGroups(ctx context.Context, tenantID string, q Query) ([]*Group, error) {
	return list[Group](ctx, s.st, q.store(tenantID, store.KindGroup))
}

// UpdateGroup changes a group's display name or description.
func (s *Service) UpdateGroup(ctx context.Context, tenantID, id string, displayName, description *string) (*Group, error) {
	return update[Group](ctx, s.st, tenantID, store.KindGroup, id, func(g *Group) error {
		if displayName != nil {
			if strings.TrimSpace(*displayName) == "" {
				return invalidf("Property 'displayName' is required.")
			}
			g.DisplayName = strings.TrimSpace(*displayName)
		}
		if description != nil {
			g.Description = *description
		}
		return nil
	})
}

// DeleteGroup removes a group, its memberships and its role assignments.
func (s *Service) DeleteGroup(ctx context.Context, tenantID, id string) error {
	return s.st.DeleteObject(ctx, tenantID, store.KindGroup, id)
}

// ObjectKind returns the kind of a user, group or service principal of the
// tenant by its object id.
func (s *Service) ObjectKind(ctx context.Context, tenantID, id string) (store.ObjectKind, error) {
	for _, k := range []store.ObjectKind{store.KindUser, store.KindServicePrincipal, store.KindGroup, store.KindApplication} {
		_, err := s.st.GetObject(ctx, tenantID, k, id)
		if err == nil {
			return k, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
	}
	return "", ErrNotFound
}

// AddMember adds a user, service principal or group to a group. A group may
// not become a member of itself, directly or through other groups.
func (s *Service) AddMember(ctx context.Context, tenantID, groupID, memberID string) error {
	return s.inTx(ctx, func(tx *Service) error {
		if _, err := tx.GetGroup(ctx, tenantID, groupID); err != nil {
			return err
		}
		kind, err := tx.ObjectKind(ctx, tenantID, memberID)
		if err != nil {
			return err
		}
		if kind == store.KindApplication {
			return invalidf("An application cannot be a group member; add its service principal instead.")
		}
		if kind == store.KindGroup {
			if memberID == groupID {
				return invalidf("A group cannot be a member of itself.")
			}
			above, err := tx.TransitiveMemberOf(ctx, tenantID, groupID)
			if err != nil {
				return err
			}
			for _, g := range above {
				if g == memberID {
					return invalidf("Adding the group would create a membership cycle.")
				}
			}
		}
		err = tx.st.AddLink(ctx, store.Link{TenantID: tenantID, Kind: store.LinkMember, From: groupID, To: memberID, ToKind: kind, Created: tx.Now()})
		if errors.Is(err, store.ErrConflict) {
			return conflictf("One or more added object references already exist for the following modified properties: 'members'")
		}
		return err
	})
}

// RemoveMember removes a direct member from a group.
func (s *Service) RemoveMember(ctx context.Context, tenantID, groupID, memberID string) error {
	return s.st.RemoveLink(ctx, tenantID, store.LinkMember, groupID, memberID)
}

// Members lists a group's direct members.
func (s *Service) Members(ctx context.Context, tenantID, groupID string) ([]store.Link, error) {
	if _, err := s.GetGroup(ctx, tenantID, groupID); err != nil {
		return nil, err
	}
	return s.st.ListLinksFrom(ctx, tenantID, store.LinkMember, groupID)
}

// MemberOf lists the groups an object is a direct member of.
func (s *Service) MemberOf(ctx context.Context, tenantID, id string) ([]string, error) {
	links, err := s.st.ListLinksTo(ctx, tenantID, store.LinkMember, id)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(links))
	for i, l := range links {
		out[i] = l.From
	}
	return out, nil
}

// TransitiveMemberOf lists every group the object belongs to, directly or
// through nested groups, each once. Access decisions use it: a role granted
// to a group reaches the members of its member groups.
func (s *Service) TransitiveMemberOf(ctx context.Context, tenantID, id string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	queue := []string{id}
	for len(queue) > 0 {
		next := queue[0]
		queue = queue[1:]
		parents, err := s.MemberOf(ctx, tenantID, next)
		if err != nil {
			return nil, err
		}
		for _, p := range parents {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
				queue = append(queue, p)
			}
		}
	}
	return out, nil
}
