package sts

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
)

const grantTypePassword = "password"

// The refusals only the password grant makes. The codes and texts are
// Entra's for the same situations:
//   - 50126 and 50034: the responses quoted in the ROPC doc's issues
//     (MicrosoftDocs/azure-docs#55028, #67454) and the error-code
//     reference (reference-error-codes.md: InvalidUserNameOrPassword,
//     UserAccountNotFound, whose text hides the name as {EmailHidden});
//   - 50053: reference-error-codes.md IdsLocked, as Entra sends it
//     (AzureAD/microsoft-authentication-library-for-python#211); smart
//     lockout's doc names the code for a locked account;
//   - 50076 and 50079: the ROPC doc ("If users need to use multifactor
//     authentication (MFA) to log in to the application, they will be
//     blocked instead"), with the texts the sign-in pages use.
const (
	codeBadUserPassword = 50126
	codeAccountLocked   = 50053
	codeMFARequired     = 50076
	codeMFAEnrollment   = 50079
)

func init() {
	for code, spec := range map[int]errorSpec{
		codeBadUserPassword: {http.StatusBadRequest, "invalid_grant", "Error validating credentials due to invalid username or password."},
		codeAccountLocked: {http.StatusBadRequest, "invalid_grant",
			"The account is locked, you've tried to sign in too many times with an incorrect user ID or password."},
		codeMFARequired: {http.StatusBadRequest, "invalid_grant",
			"Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '%s'."},
		codeMFAEnrollment: {http.StatusBadRequest, "invalid_grant",
			"Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access '%s'."},
	} {
		errorTable[code] = spec
	}
}

// passwordGrant is the resource owner password credentials grant (RFC 6749
// §4.3), as Entra serves it
// (https://learn.microsoft.com/entra/identity-platform/v2-oauth-ropc):
// the client sends the user's name and password. It works for public
// clients that allow public client flows and for confidential clients;
// it cannot do MFA, so a user who would be asked for a second factor is
// refused; the consent must already be in force (no page can ask for it);
// and every attempt goes through smart lockout like the sign-in page's
// password step, with the password hashed in one of the directory's
// bounded slots.
type passwordGrant struct{ s *Service }

func (passwordGrant) clientCredentialRequired() bool { return false }

// prepare checks the parameters and, at common or organizations, names
// the tenant by the sign-in name's domain (Entra finds the user's home
// tenant the same way; the doc asks for a tenant or organizations).
func (passwordGrant) prepare(req *tokenRequest) *Error {
	for _, p := range []string{"username", "password"} {
		if req.form.get(p) == "" {
			return aadError(codeMissingParameter, p)
		}
	}
	if req.endpoint == v1 && req.form.get("resource") == "" && req.form.get("scope") == "" {
		return aadError(codeMissingParameter, "resource")
	}
	if req.endpoint == v2 && req.form.get("scope") == "" {
		return aadError(codeMissingParameter, "scope")
	}
	if req.tenant.ID == "" {
		_, domain, ok := strings.Cut(req.form.get("username"), "@")
		if !ok || domain == "" || !tenantSegment.MatchString(domain) || !strings.Contains(domain, ".") {
			return aadError(codeNoTenantInformation)
		}
		req.impliedTenant = domain
	}
	return nil
}

func (g passwordGrant) issue(ctx context.Context, req *tokenRequest, c *client) (*issuedToken, *Error) {
	if c.app == nil {
		return nil, aadError(codeUnsupportedGrantType, grantTypePassword) // a managed identity has no users
	}
	if c.acr == "0" && !c.app.IsFallbackPublicClient {
		// A public client must allow public client flows (the doc's
		// "Allow public client flows"); otherwise Entra asks for a
		// client credential.
		return nil, aadError(codeNoClientCredential)
	}
	tenantID := req.tenant.ID
	user, err := g.s.dir.UserByName(ctx, tenantID, req.form.get("username"))
	if errors.Is(err, directory.ErrNotFound) {
		return nil, aadError(codeUserNotFound, "{EmailHidden}")
	}
	if err != nil {
		return nil, serverError(err)
	}
	switch err := g.s.dir.CheckPasswordSignIn(ctx, user, req.form.get("password")); {
	case errors.Is(err, directory.ErrAccountLocked):
		return nil, aadError(codeAccountLocked)
	case errors.Is(err, directory.ErrBadPassword):
		return nil, aadError(codeBadUserPassword)
	case errors.Is(err, directory.ErrPasswordBusy):
		// Retryable, and not our failure: no cause to log as one.
		return nil, aadError(codeTransient)
	case err != nil:
		return nil, serverError(err)
	}
	if !user.AccountEnabled {
		return nil, aadError(codeUserDisabled)
	}
	u := userSignIn{tenantID: tenantID, userID: user.ID, authTime: req.now, amr: []string{"pwd"}}
	resource := req.form.get("resource")
	if req.endpoint == v1 && resource != "" {
		u.resource = resource
	} else {
		u.scopes = strings.Fields(req.form.get("scope"))
		us, e := parseUserScopes(u.scopes)
		if e != nil {
			return nil, e
		}
		resource = us.resource
		u.offline = us.oidc["offline_access"]
	}
	policy, err := g.s.dir.SignInPolicy(ctx, tenantID)
	if err != nil {
		return nil, serverError(err)
	}
	switch {
	case user.HasTOTP():
		return nil, aadError(codeMFARequired, clip(resource, 256))
	case policy.RequireMFA:
		return nil, aadError(codeMFAEnrollment, clip(resource, 256))
	}
	return g.s.issueUserTokens(ctx, req, c, u)
}

// userRealm is the answer of /common/UserRealm/{name}, which MSAL (and so
// azidentity's UsernamePasswordCredential) asks before a password grant to
// learn whether the account is managed (a password grant here) or
// federated (WS-Trust elsewhere). Its shape is MSAL's authority.UserRealm.
type userRealm struct {
	Ver               string `json:"ver"`
	AccountType       string `json:"account_type"`
	DomainName        string `json:"domain_name,omitempty"`
	CloudInstanceName string `json:"cloud_instance_name"`
	CloudAudienceURN  string `json:"cloud_audience_urn,omitempty"`
}

// handleUserRealm serves GET /common/UserRealm/{name}. It answers by the
// name's domain only, as Entra does: Managed for a tenant's domain,
// Unknown otherwise, never whether the user exists.
func (s *Service) handleUserRealm(w http.ResponseWriter, r *http.Request) {
	realm := userRealm{Ver: "1.0", AccountType: "Unknown", CloudInstanceName: "microsoftonline.com"}
	if _, domain, ok := strings.Cut(r.PathValue("name"), "@"); ok && tenantSegment.MatchString(domain) && strings.Contains(domain, ".") {
		t, err := s.dir.Tenant(r.Context(), domain)
		switch {
		case err == nil && strings.EqualFold(t.Domain, domain):
			realm.AccountType, realm.DomainName, realm.CloudAudienceURN = "Managed", t.Domain, "urn:federation:MicrosoftOnline"
		case err != nil && !errors.Is(err, directory.ErrNotFound):
			s.refuse(w, r, serverError(err))
			return
		}
	}
	setNoStore(w)
	httpx.WriteJSON(w, http.StatusOK, realm)
}
