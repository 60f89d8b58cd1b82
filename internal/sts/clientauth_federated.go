package sts

import (
	"context"
	"errors"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/oidcfed"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Federated identity credentials (workload identity federation): the
// client presents a token that an external OpenID Connect issuer signed for
// a workload, and one of the client's federated identity credentials
// trusts that issuer, subject and audience. The client is an application
// (its credentials live on the application object, so a multi-tenant app
// federates in every tenant holding its service principal) or a
// user-assigned managed identity (which then gets a token as itself in its
// own tenant).
//
// The order is Entra's: the assertion is matched against the credentials
// first (so that an assertion naming an issuer nobody trusts never makes
// this server fetch from it), then its signature is verified with the
// issuer's keys, then exp and nbf. Federated assertions are bearer tokens
// the workload reuses until they expire (azidentity re-reads a projected
// token file every ten minutes, a managed identity token lasts an hour),
// so they are not single-use, as in Entra.
//
// It earns appidacr/azpacr "2".

// authenticateFederated checks a federated assertion for the client.
func (s *Service) authenticateFederated(ctx context.Context, req *tokenRequest, c *client, a *clientAssertionJWT) (string, *Error) {
	fic, e := matchFederatedCredential(c.federatedCredentials(), a.issuer, a.subject, a.audiences)
	if e != nil {
		return "", e
	}
	own := false
	tid, isEntra := s.ownIssuerTenant(fic.Issuer)
	if isEntra {
		// Another tenant of this server: it must still exist.
		t, err := s.dir.Tenant(ctx, tid)
		switch {
		case errors.Is(err, directory.ErrNotFound) || (err == nil && !strings.EqualFold(t.ID, tid)):
			return "", aadError(codeAssertionSignature, "Client assertion failed signature validation. [Reason - The issuer's tenant does not exist.]")
		case err != nil:
			return "", serverError(err)
		}
		own = true
	}
	verified, err := s.federation.VerifyFor(ctx, a.raw, func(iss string) bool { return iss == fic.Issuer })
	if err != nil {
		return "", federationError(err, a, req)
	}
	// The match was made on the claims as read before verification; make
	// sure the verified ones make the same.
	again, e := matchFederatedCredential([]directory.FederatedIdentityCredential{fic}, verified.Issuer, verified.Subject, verified.Audiences)
	if e != nil || again.ID != fic.ID {
		return "", aadError(codeMalformedJWT)
	}
	if own && a.identType != "app" {
		// Entra takes only app-only tokens (managed identities, apps) from
		// its own issuers as federated credentials.
		return "", aadError(codeForbiddenTokenType)
	}
	if own {
		if e := s.checkEntraAssertion(ctx, req, c, tid, fic.Issuer, verified.Subject); e != nil {
			return "", e
		}
	}
	req.audit.credential = "federated:" + fic.Name
	return "2", nil
}

// checkEntraAssertion applies Entra's rule for assertions that Entra
// itself issued ("Configure an application to trust a managed identity",
// learn.microsoft.com/entra/workload-id/workload-identity-federation-config-app-trust-managed-identity):
// the issuer is the tenant the credential's owner is registered in ("Both
// the Microsoft Entra app and managed identity must belong to the same
// tenant"), and the assertion is a token of a user-assigned managed
// identity of that tenant ("Only user-assigned managed identities can be
// used as a federated credential for apps. system-assigned identities
// aren't supported"). Anything else is refused with AADSTS700236 (Q&A
// 2139753: a system-assigned identity of tenant A presented to an app of
// tenant B), and the refusal is also recorded in the view of the tenant
// whose token was presented. Reaching another tenant without a secret is
// a multi-tenant application, registered in the identity's tenant and
// provisioned in the other.
func (s *Service) checkEntraAssertion(ctx context.Context, req *tokenRequest, c *client, issuerTenant, issuer, subject string) *Error {
	reason := ""
	switch {
	case !strings.EqualFold(issuerTenant, c.homeTenant):
		reason = "issuer tenant is not the credential owner's tenant"
	default:
		sp, err := s.dir.GetServicePrincipal(ctx, issuerTenant, subject)
		switch {
		case errors.Is(err, directory.ErrNotFound):
			reason = "subject is not a managed identity of the tenant"
		case err != nil:
			return serverError(err)
		case !sp.IsManagedIdentity():
			reason = "subject is not a managed identity of the tenant"
		case !sp.IsUserAssigned():
			reason = "subject is a system-assigned managed identity"
		}
	}
	if reason == "" {
		return nil
	}
	e := aadError(codeEntraIssuerNotAllowed, clip(issuer, 256))
	if !strings.EqualFold(issuerTenant, c.homeTenant) && !strings.EqualFold(issuerTenant, req.tenant.ID) {
		// The presented identity's tenant sees its token refused too.
		err := s.audit.Record(ctx, store.AuditRecord{
			Actor:        safeName(subject),
			ActorTenant:  issuerTenant,
			TargetTenant: c.homeTenant,
			Action:       "token.federated-credential",
			Target:       c.appID,
			Result:       e.Result(),
			Detail:       "a token of this tenant was presented as a federated credential of another tenant's client: " + reason,
		})
		if err != nil {
			return serverError(err)
		}
	}
	req.audit.credential = "federated-refused:" + reason
	return e
}

// federationError maps a verification failure to Entra's answer.
func federationError(err error, a *clientAssertionJWT, req *tokenRequest) *Error {
	var fe *oidcfed.Error
	if !errors.As(err, &fe) {
		return serverError(err)
	}
	switch {
	case errors.Is(err, oidcfed.ErrMalformed), errors.Is(err, oidcfed.ErrAlgorithm):
		return aadError(codeMalformedJWT)
	case errors.Is(err, oidcfed.ErrIssuerNotAllowed):
		return aadError(codeFederatedIssuer, clip(a.issuer, 256))
	case errors.Is(err, oidcfed.ErrIssuerUnreachable):
		e := aadError(codeExternalOIDCEndpoint)
		e.cause = err // logged: why the issuer could not be reached
		return e
	case errors.Is(err, oidcfed.ErrKeyNotFound), errors.Is(err, oidcfed.ErrSignature):
		return aadError(codeAssertionSignature, "Client assertion failed signature validation. [Reason - "+fe.Kind.Error()+".]")
	case errors.Is(err, oidcfed.ErrExpired), errors.Is(err, oidcfed.ErrNotYetValid):
		if e := checkAssertionTime(a, req.now); e != nil {
			return e
		}
		// Our skew and the verifier's are the same; should the edge fall
		// between them, the verifier's word stands.
		return aadError(codeAssertionTime, entraInstant(req.now), entraInstant(a.notBefore), entraInstant(a.expires))
	}
	return serverError(err)
}

// tokenExchangeAudiences are the two names of Entra's token exchange
// audience: a federated credential names "api://AzureADTokenExchange",
// while a v2 token for it (a managed identity's token, another tenant's)
// carries the token exchange app's id as aud. Entra treats them as one.
var tokenExchangeAudiences = []string{directory.TokenExchangeAudience, directory.TokenExchangeAppID}

// expandAudiences adds the other name of the token exchange audience.
func expandAudiences(audiences []string) []string {
	out := append([]string(nil), audiences...)
	for _, a := range audiences {
		for i, name := range tokenExchangeAudiences {
			if strings.EqualFold(a, name) {
				out = append(out, tokenExchangeAudiences[1-i])
			}
		}
	}
	return out
}

// matchFederatedCredential finds the credential that trusts an assertion's
// issuer, audience and subject (exactly, case-sensitively), and otherwise
// answers as Entra does: AADSTS70021 when the client has no federated
// credential at all, AADSTS700211 when none names the issuer, AADSTS700212
// when none of the issuer's names the audience, AADSTS700213 when none of
// those names the subject. It is pure.
func matchFederatedCredential(fics []directory.FederatedIdentityCredential, issuer, subject string, audiences []string) (directory.FederatedIdentityCredential, *Error) {
	none := directory.FederatedIdentityCredential{}
	if len(fics) == 0 {
		return none, aadError(codeNoFederatedRecord, clip(issuer, 256), clip(subject, 256), clip(strings.Join(audiences, ","), 256))
	}
	auds := expandAudiences(audiences)
	var byIssuer, byAudience []directory.FederatedIdentityCredential
	for _, f := range fics {
		if f.Issuer == issuer {
			byIssuer = append(byIssuer, f)
		}
	}
	if len(byIssuer) == 0 {
		return none, aadError(codeFederatedIssuer, clip(issuer, 256))
	}
	for _, f := range byIssuer {
		if _, ok := directory.MatchFederatedCredential([]directory.FederatedIdentityCredential{f}, f.Issuer, f.Subject, auds); ok {
			byAudience = append(byAudience, f)
		}
	}
	if len(byAudience) == 0 {
		return none, aadError(codeFederatedAudience, clip(strings.Join(audiences, ","), 256))
	}
	f, ok := directory.MatchFederatedCredential(byAudience, issuer, subject, auds)
	if !ok {
		return none, aadError(codeFederatedSubject, clip(subject, 256))
	}
	return f, nil
}
