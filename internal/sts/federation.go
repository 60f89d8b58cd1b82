package sts

import (
	"crypto"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/oidcfed"
)

// Workload identity federation needs the signing keys of the issuers that
// federated credentials trust. A foreign issuer's come from its discovery
// document and JWK Set, fetched through oidcfed with the configured HTTP
// client; this server's own issuers (another tenant of this very server,
// as when a managed identity's token is the assertion) are resolved from
// the server's own key set, without a round trip to itself.

// federationFetchTimeout bounds the default federation client's requests
// (oidcfed also bounds each request).
const federationFetchTimeout = 15 * time.Second

// newFederationVerifier returns the verifier of federated assertions.
func (s *Service) newFederationVerifier(client *http.Client) *oidcfed.Verifier {
	if client == nil {
		// System roots, the environment's proxy settings.
		client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: federationFetchTimeout}
	}
	return oidcfed.NewVerifier(oidcfed.Config{
		Client:    client,
		Local:     s.localKeys,
		Now:       s.now,
		ClockSkew: assertionClockSkew,
	})
}

// ownIssuerTenant reports whether issuer is one of this server's issuer
// forms and which tenant (by id) it names:
//
//   - https://login.microsoftonline.com/{tid}/v2.0 and https://sts.windows.net/{tid}/,
//     Entra's own forms, which we use when reached as Entra;
//   - https://{host}[:port]/{tid}/v2.0 and https://{host}[:port]/{tid}/ for a
//     host that Config.IsLoginHost accepts (the bare listener, a custom
//     login domain).
//
// {tid} must be a tenant id (a GUID); whether that tenant exists is the
// caller's question.
func (s *Service) ownIssuerTenant(issuer string) (string, bool) {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme != "https" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" ||
		strings.ContainsAny(issuer, "?#") {
		return "", false
	}
	host := strings.ToLower(u.Hostname())
	seg, rest, ok := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if !ok || !strings.HasPrefix(u.Path, "/") {
		return "", false
	}
	id, err := uuid.Parse(seg)
	if err != nil || len(seg) != 36 {
		return "", false
	}
	v1, v2 := rest == "", rest == "v2.0"
	if !v1 && !v2 {
		return "", false
	}
	switch {
	case host == "sts.windows.net" && u.Port() == "":
		ok = v1
	case host == entraHost && u.Port() == "":
		ok = true
	case s.isLoginHost != nil && s.isLoginHost(host):
		ok = true
	default:
		ok = false
	}
	return id.String(), ok
}

// localKeys implements oidcfed.LocalKeys: an issuer of ours is verified
// against our own published signing keys (pending, current and retired).
// The tenant's existence is checked before verification, with the
// request's context (see authenticateFederated).
func (s *Service) localKeys(issuer, kid string) (crypto.PublicKey, bool, bool) {
	if _, ok := s.ownIssuerTenant(issuer); !ok {
		return nil, false, false
	}
	k, ok := s.keys.Lookup(kid)
	if !ok || k.Key == nil {
		return nil, true, false
	}
	return &k.Key.PublicKey, true, true
}
