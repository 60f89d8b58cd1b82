package sts

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/directory"
)

// client is who a token request comes from, identified and (for
// confidential clients) authenticated, as seen in the request's tenant. It
// is an application (with its application object) or a managed identity,
// which has no application object: a token needs only the client's app id,
// its home tenant, its service principal in the token's tenant and how it
// authenticated.
type client struct {
	appID      string // the client id: an application's appId or a managed identity's client id
	homeTenant string // the application's home tenant, or the managed identity's tenant
	// app is the application object; nil for a managed identity.
	app *directory.Application
	// sp is the client's service principal in the request's tenant: what
	// roles are granted to and what the token's oid is (a managed
	// identity's own principal). It is nil only when the request names no
	// tenant (common), which app-only grants refuse before authentication.
	sp *directory.ServicePrincipal
	// acr is how the client authenticated, Entra's appidacr/azpacr: "0"
	// public client (none), "1" client secret, "2" certificate or
	// federated credential.
	acr string
	// method names the authentication method, for the audit record.
	method string
}

// displayName is how error messages name the client.
func (c *client) displayName() string {
	if c.app != nil {
		return c.app.DisplayName
	}
	if c.sp != nil {
		return c.sp.DisplayName
	}
	return c.appID
}

// isManagedIdentity reports whether the client is a managed identity.
func (c *client) isManagedIdentity() bool {
	return c.app == nil && c.sp != nil && c.sp.IsManagedIdentity()
}

// keyCredentials are the certificates that may sign the client's
// assertions: the application's, and its service principal's in the
// request's tenant (where Entra also keeps keys).
func (c *client) keyCredentials() []directory.KeyCredential {
	var out []directory.KeyCredential
	if c.app != nil {
		out = slices.Clone(c.app.KeyCredentials)
	}
	if c.sp != nil {
		out = append(out, c.sp.KeyCredentials...)
	}
	return out
}

// federatedCredentials are the federated identity credentials that trust
// external tokens for the client: an application's, or a user-assigned
// managed identity's own.
func (c *client) federatedCredentials() []directory.FederatedIdentityCredential {
	if c.app != nil {
		return c.app.FederatedCredentials
	}
	if c.isManagedIdentity() && c.sp.IsUserAssigned() {
		return c.sp.FederatedCredentials
	}
	return nil
}

// clientAuthMethod is one way a client proves who it is at the token
// endpoint (RFC 6749 §2.3, RFC 7523 §2.2). Each method recognises its own
// credential in the request and checks it; the token endpoint makes sure a
// request presents at most one. Adding a method is a new type in New's list.
type clientAuthMethod interface {
	// name is the method's name, as in token_endpoint_auth_methods_supported.
	name() string
	// presented reports whether the request carries this method's credential.
	presented(req *tokenRequest) bool
	// claimedClientID is the client id the credential itself names, "" if
	// it names none (a secret in the body does not; Basic auth does).
	claimedClientID(req *tokenRequest) string
	// authenticate checks the credential for the identified client and
	// returns the acr value it earns.
	authenticate(ctx context.Context, s *Service, req *tokenRequest, c *client) (acr string, e *Error)
}

// authenticateClient identifies the caller in the request's tenant and
// checks its credential. g says whether the grant admits public clients
// (no credential at all).
func (s *Service) authenticateClient(ctx context.Context, req *tokenRequest, g grant) (*client, *Error) {
	var method clientAuthMethod
	var names []string
	for _, m := range s.clientAuth {
		if m.presented(req) {
			method = m
			names = append(names, m.name())
		}
	}
	if len(names) > 1 {
		// RFC 6749 §2.3: "The client MUST NOT use more than one authentication method in each request."
		return nil, aadError(codeInvalidRequest, "The request presents more than one client credential ("+strings.Join(names, ", ")+"); use exactly one.")
	}

	clientID := req.form.get("client_id")
	if method != nil {
		claimed := method.claimedClientID(req)
		switch {
		case clientID == "":
			clientID = claimed
		case claimed != "" && !strings.EqualFold(claimed, clientID):
			return nil, aadError(codeInvalidRequest, "The client_id parameter does not match the client the credential was issued to.")
		}
	}
	if clientID == "" {
		return nil, aadError(codeMissingParameter, "client_id")
	}
	req.audit.clientID = clientID

	c, e := s.findClient(ctx, req, clientID)
	if e != nil {
		return nil, e
	}
	if method == nil {
		if g.clientCredentialRequired() {
			return nil, aadError(codeNoClientCredential)
		}
		if c.app == nil {
			// A managed identity is never a public client.
			return nil, aadError(codeNoClientCredential)
		}
		c.acr, c.method = "0", "none"
		return c, nil
	}
	acr, e := method.authenticate(ctx, s, req, c)
	if e != nil {
		return nil, e
	}
	c.acr, c.method = acr, method.name()
	return c, nil
}

// findClient resolves a client id: an application (whose service principal
// must be in the request's tenant), else a managed identity of the
// request's tenant, which is its own service principal and can only
// authenticate with its federated credentials.
func (s *Service) findClient(ctx context.Context, req *tokenRequest, clientID string) (*client, *Error) {
	app, err := s.dir.ApplicationByAppID(ctx, clientID)
	if errors.Is(err, directory.ErrNotFound) {
		return s.findManagedIdentityClient(ctx, req, clientID)
	}
	if err != nil {
		return nil, serverError(err)
	}
	req.audit.clientID, req.audit.clientTenant = app.AppID, app.TenantID
	c := &client{appID: app.AppID, homeTenant: app.TenantID, app: app}
	if req.tenant.ID == "" {
		return c, nil
	}
	// The application answers in a tenant only through its service
	// principal there: its home tenant's, or one an administrator of
	// another tenant provisioned (admin consent). A single-tenant app's
	// principal elsewhere (left from when it was multi-tenant) does not count.
	if app.TenantID != req.tenant.ID && !app.IsMultiTenant() {
		return nil, aadError(codeClientNotFound, app.AppID, req.tenantDisplayName())
	}
	sp, err := s.dir.ServicePrincipalByAppID(ctx, req.tenant.ID, app.AppID)
	if errors.Is(err, directory.ErrNotFound) {
		return nil, aadError(codeClientNotFound, app.AppID, req.tenantDisplayName())
	}
	if err != nil {
		return nil, serverError(err)
	}
	if !sp.AccountEnabled {
		return nil, aadError(codeClientDisabled, app.AppID, app.DisplayName)
	}
	c.sp = sp
	return c, nil
}

// findManagedIdentityClient finds a managed identity of the request's
// tenant by client id. Another tenant's identity is not found: a managed
// identity gets tokens only in its own tenant.
func (s *Service) findManagedIdentityClient(ctx context.Context, req *tokenRequest, clientID string) (*client, *Error) {
	notFound := aadError(codeClientNotFound, safeName(clientID), req.tenantDisplayName())
	if req.tenant.ID == "" {
		return nil, notFound
	}
	sp, err := s.dir.ServicePrincipalByAppID(ctx, req.tenant.ID, clientID)
	if errors.Is(err, directory.ErrNotFound) || (err == nil && !sp.IsManagedIdentity()) {
		return nil, notFound
	}
	if err != nil {
		return nil, serverError(err)
	}
	req.audit.clientID, req.audit.clientTenant = sp.AppID, req.tenant.ID
	if !sp.AccountEnabled {
		return nil, aadError(codeClientDisabled, sp.AppID, sp.DisplayName)
	}
	return &client{appID: sp.AppID, homeTenant: req.tenant.ID, sp: sp}, nil
}
