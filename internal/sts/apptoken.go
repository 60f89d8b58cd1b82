package sts

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/token"
)

// appTokenRequest is what an app-only token is made from, whichever way
// the client came: the token endpoint's client credentials grant or the
// managed identity endpoint.
type appTokenRequest struct {
	baseURL      string
	tenant       store.Tenant // the token's tenant
	tenantName   string       // how errors name the tenant
	resourceName string       // the resource as the client named it
	client       *client      // authenticated, with its service principal in tenant
	capabilities []string     // xms_cc
	now          time.Time
}

// appOnlyWID is in the wids claim of every app-only token Entra issues,
// after the directory roles the service principal holds (recorded tokens:
// ["0997a1d0-0d1d-4acb-b408-d5ca73121e90"] alone for a principal without
// a role, [Global Reader's template id, it] for one that is Global
// Reader). It is not a directory role: no role definition has its id.
const appOnlyWID = "0997a1d0-0d1d-4acb-b408-d5ca73121e90"

// issueAppToken resolves the resource in the tenant, collects the app
// roles the client's principal holds on it and the directory roles it
// holds in the tenant (wids, as Entra's app-only tokens carry them), and
// mints the token in the version the resource accepts.
func (s *Service) issueAppToken(ctx context.Context, r appTokenRequest) (*issuedToken, *Error) {
	name := r.resourceName
	if target, ok := s.aliases[strings.ToLower(strings.TrimSuffix(name, "/"))]; ok {
		name = target
	}
	resource, err := s.dir.ServicePrincipalByName(ctx, r.tenant.ID, name)
	if errors.Is(err, directory.ErrNotFound) {
		return nil, aadError(codeResourceNotFound, clip(r.resourceName, 256), r.tenantName)
	}
	if err != nil {
		return nil, serverError(err)
	}
	if !resource.AccountEnabled {
		return nil, aadError(codeClientDisabled, resource.AppID, resource.DisplayName)
	}
	roles, err := s.dir.GrantedRoles(ctx, r.tenant.ID, r.client.sp.ID, store.KindServicePrincipal, resource)
	if err != nil {
		return nil, serverError(err)
	}
	wids, err := s.dir.EnabledServicePrincipalRoles(ctx, r.tenant.ID, r.client.sp.ID)
	if err != nil && !errors.Is(err, directory.ErrNotFound) {
		return nil, serverError(err)
	}
	claims := appToken{
		baseURL:      r.baseURL,
		tenantID:     r.tenant.ID,
		client:       r.client,
		resourceName: r.resourceName,
		resource:     resource,
		version:      tokenVersion(resource),
		roles:        roles,
		wids:         append(wids, appOnlyWID),
		capabilities: r.capabilities,
		now:          r.now,
		lifetime:     tokenLifetime(),
	}.claims()
	signed, err := token.Mint(s.keys.Current(), claims)
	if err != nil {
		return nil, serverError(err)
	}
	return &issuedToken{accessToken: signed, claims: claims}, nil
}
