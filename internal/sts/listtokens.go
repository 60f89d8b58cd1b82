package sts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// ErrIdentityUnavailable is returned by ManagedIdentityToken when the
// identity does not exist, is not a managed identity, or is disabled.
var ErrIdentityUnavailable = errors.New("sts: managed identity unavailable")

// ErrUnknownAudience is returned by ManagedIdentityToken when the audience
// names no resource of the tenant.
var ErrUnknownAudience = errors.New("sts: unknown audience")

// ManagedIdentityToken mints a token of a managed identity of the tenant
// (by object id) for audience, exactly as the identity endpoint does
// (managed_identity.go): an app-only token whose appid is the identity's
// client id, oid its object id, xms_mirid its resource id, with the app
// roles it holds on the resource. It is how Resource Manager answers a
// managed application's listTokens, where the caller is authorized by
// RBAC on the application rather than by a workload's header. The token
// is audited as the identity's.
func (s *Service) ManagedIdentityToken(ctx context.Context, tenantID, identityObjectID, audience string) (string, time.Time, error) {
	audience, _ = cutSuffixFold(strings.TrimSpace(audience), "/.default")
	if audience == "" {
		return "", time.Time{}, fmt.Errorf("%w: empty", ErrUnknownAudience)
	}
	t, err := s.dir.Store().GetTenant(ctx, tenantID)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sts: tenant %s: %w", tenantID, err)
	}
	mi, err := s.dir.GetServicePrincipal(ctx, t.ID, identityObjectID)
	if errors.Is(err, directory.ErrNotFound) || (err == nil && (!mi.IsManagedIdentity() || !mi.AccountEnabled)) {
		return "", time.Time{}, ErrIdentityUnavailable
	}
	if err != nil {
		return "", time.Time{}, err
	}
	issued, e := s.issueAppToken(ctx, appTokenRequest{
		baseURL:      s.miIssuer,
		tenant:       t,
		tenantName:   t.Name,
		resourceName: audience,
		client:       &client{appID: mi.AppID, homeTenant: t.ID, sp: mi, acr: "2", method: "managed_identity"},
		now:          s.now(),
	})
	result := audit.Success
	if e != nil {
		result = e.Result()
	}
	if err := s.audit.Record(ctx, store.AuditRecord{Actor: mi.ID, ActorTenant: t.ID, TargetTenant: t.ID,
		Action: "token.issue", Target: clip(audience, 256), Result: result, Detail: "managed identity (listTokens)"}); err != nil && e == nil {
		return "", time.Time{}, err
	}
	if e != nil {
		if e.Code == codeResourceNotFound {
			return "", time.Time{}, fmt.Errorf("%w: %s", ErrUnknownAudience, e.Description)
		}
		if e.Code == codeClientDisabled {
			return "", time.Time{}, ErrIdentityUnavailable
		}
		return "", time.Time{}, e
	}
	s.issued(ctx, grantListTokens, "managed_identity", "", issued)
	return issued.accessToken, time.Unix(issued.claims.Expires, 0).UTC(), nil
}
