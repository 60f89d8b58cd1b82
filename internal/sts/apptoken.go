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

// issueAppToken resolves the resource in the tenant, collects the app
// roles the client's principal holds on it, and mints the token in the
// version the resource accepts.
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
	claims := appToken{
		baseURL:      r.baseURL,
		tenantID:     r.tenant.ID,
		client:       r.client,
		resourceName: r.resourceName,
		resource:     resource,
		version:      tokenVersion(resource),
		roles:        roles,
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
