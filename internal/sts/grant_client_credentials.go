package sts

import (
	"context"
	"strings"
)

const grantTypeClientCredentials = "client_credentials"

// clientCredentialsGrant is the client credentials grant (RFC 6749 §4.4): a
// confidential client gets an app-only token for one resource in one
// tenant, carrying the app roles the tenant granted its service principal.
// It is how a provider reads a customer tenant it was consented into.
type clientCredentialsGrant struct{ s *Service }

func (clientCredentialsGrant) clientCredentialRequired() bool { return true }

// oidcScopes are the scopes MSAL appends to every request (openid
// offline_access profile); they mean nothing for an app-only token.
var oidcScopes = map[string]bool{"openid": true, "offline_access": true, "profile": true}

// prepare reads the resource: v2 takes it from scope ("{resource}/.default",
// exactly one), v1 from resource. An app has no user to pick a tenant by,
// so the request must name one.
func (clientCredentialsGrant) prepare(req *tokenRequest) *Error {
	if req.tenant.ID == "" {
		return aadError(codeNoTenantInformation)
	}
	if req.endpoint == v1 {
		req.resource = req.form.get("resource")
		if req.resource == "" {
			return aadError(codeMissingParameter, "resource")
		}
		return nil
	}
	raw := req.form.get("scope")
	if raw == "" {
		return aadError(codeMissingParameter, "scope")
	}
	var scopes []string
	for _, sc := range strings.Fields(raw) {
		if !oidcScopes[strings.ToLower(sc)] {
			scopes = append(scopes, sc)
		}
	}
	switch {
	case len(scopes) == 0:
		return aadError(codeClientCredentialsScope, clip(raw, 256))
	case len(scopes) > 1:
		return aadError(codeInvalidScope, clip(strings.Join(scopes, " "), 256))
	}
	resource, ok := cutSuffixFold(scopes[0], "/.default")
	if !ok || resource == "" {
		return aadError(codeClientCredentialsScope, clip(scopes[0], 256))
	}
	req.resource = resource
	return nil
}

// issue mints the app token for the resource in the request's tenant.
func (g clientCredentialsGrant) issue(ctx context.Context, req *tokenRequest, c *client) (*issuedToken, *Error) {
	return g.s.issueAppToken(ctx, appTokenRequest{
		baseURL:      req.baseURL,
		tenant:       req.tenant,
		tenantName:   req.tenantDisplayName(),
		resourceName: req.resource,
		client:       c,
		capabilities: clientCapabilities(req.form.get("claims")),
		now:          req.now,
	})
}

// cutSuffixFold is strings.CutSuffix, ignoring case: Entra accepts ".Default".
func cutSuffixFold(s, suffix string) (string, bool) {
	if len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix) {
		return s[:len(s)-len(suffix)], true
	}
	return s, false
}
