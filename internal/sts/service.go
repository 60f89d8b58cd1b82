// Package sts is the token service: an Entra ID-compatible OAuth 2.0 and
// OpenID Connect authority. It serves the discovery documents and signing
// keys that MSAL, azidentity and OIDC libraries read, and the v1 and v2 token
// endpoints they call, answering in Entra's own shapes (claims, responses,
// AADSTS errors) so that unmodified Azure SDK clients work against it.
//
// The token endpoint is built from small parts so that each new flow is a
// new file, not an edit: a form parser (form.go), client authentication
// methods (clientauth_*.go: secrets, certificate assertions, federated
// identity credentials), and one grant per grant_type (grant_*.go) behind
// the grant interface (token.go). Managed identities get their tokens from
// the App Service-style identity endpoint (managed_identity.go).
package sts

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/oidcfed"
	"github.com/tenantbridge/tenantbridge/internal/pki"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Config holds the token service's dependencies.
type Config struct {
	Directory *directory.Service
	Keys      *pki.KeySet
	Audit     *audit.Log
	Logger    *slog.Logger     // default: discard
	Now       func() time.Time // default: time.Now
	// IsLoginHost reports whether a host (without port) is one of ours that
	// issues tokens, e.g. login.microsoftonline.com or login.contoso.test.
	// The verifier accepts issuers only on such hosts; nil accepts none but
	// Entra's own issuer URLs. A federated credential whose issuer is on
	// such a host (https://{host}/{tenant id}/v2.0 or /{tenant id}/) trusts
	// another tenant of this server, and its assertions are verified with
	// our own keys, never fetched.
	IsLoginHost func(host string) bool
	// FederationClient fetches the discovery documents and signing keys of
	// the external OpenID Connect issuers that federated identity
	// credentials trust. Its TLS trust decides which issuers are
	// reachable; nil uses the system roots. Issuers of this server itself
	// (see IsLoginHost) never go through it.
	FederationClient *http.Client
	// ManagedIdentityIssuerBase is the base URL whose issuers managed
	// identity tokens carry, e.g. "https://login.microsoftonline.com" (the
	// default) or "https://login.contoso.test" for a deployment with its
	// own domain. In Azure the identity endpoint is local to the compute,
	// but the tokens it hands out are Entra's, with Entra's issuer; a
	// federated credential that trusts a managed identity names that
	// issuer, wherever the workload reached the endpoint.
	ManagedIdentityIssuerBase string
	// ResourceAliases are other names of first-party resources, keyed by
	// the alias (lower case, no trailing slash): with its own domain D a
	// deployment serves Key Vault as {vault}.vault.D, whose 401 challenge
	// names the resource https://vault.D, and azsecrets asks for a token
	// for exactly that. A token asked for an alias is issued as for the
	// resource it names, with the alias as its audience.
	ResourceAliases map[string]string
	// KEK opens the authorization codes the sign-in pages seal (package
	// userauth); without it (nil) no code can be redeemed.
	KEK []byte
	// RefreshTokenInactivity is how long a refresh token may go unused;
	// DefaultRefreshTokenInactivity (90 days) when zero.
	RefreshTokenInactivity time.Duration
	// Observer, if set, counts the tokens issued (observe.go).
	Observer Observer
}

// Service is the token service. It is an http.Handler for the paths Entra
// serves on login.microsoftonline.com, and safe for concurrent use.
type Service struct {
	dir         *directory.Service
	keys        *pki.KeySet
	audit       *audit.Log
	log         *slog.Logger
	now         func() time.Time
	isLoginHost func(string) bool
	mux         *http.ServeMux
	grants      map[string]grant
	clientAuth  []clientAuthMethod
	federation  *oidcfed.Verifier
	miIssuer    string
	aliases     map[string]string
	kek         []byte
	verifier    *Verifier // built once; see Verifier
	obs         Observer  // nil: none
	// refreshInactivity is the lifetime of an unused refresh token.
	refreshInactivity time.Duration
}

// New returns the token service. Directory, Keys and Audit are required: a
// token service that cannot check credentials, sign or record must not
// start, so a missing one panics at wiring time.
func New(cfg Config) *Service {
	if cfg.Directory == nil || cfg.Keys == nil || cfg.Audit == nil {
		panic("sts: Config needs Directory, Keys and Audit")
	}
	s := &Service{
		dir:         cfg.Directory,
		keys:        cfg.Keys,
		audit:       cfg.Audit,
		log:         cfg.Logger,
		now:         cfg.Now,
		isLoginHost: cfg.IsLoginHost,
		aliases:     cfg.ResourceAliases,
		kek:         cfg.KEK,
		obs:         cfg.Observer,

		refreshInactivity: cfg.RefreshTokenInactivity,
	}
	if s.refreshInactivity <= 0 {
		s.refreshInactivity = DefaultRefreshTokenInactivity
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.federation = s.newFederationVerifier(cfg.FederationClient)
	s.verifier = NewVerifier(s.keys, s.dir, s.isLoginHost, s.now)
	s.miIssuer = strings.TrimSuffix(cfg.ManagedIdentityIssuerBase, "/")
	if s.miIssuer == "" {
		s.miIssuer = "https://login.microsoftonline.com"
	}
	// Adding a grant or a client authentication method is one line here
	// and one new file.
	s.grants = map[string]grant{
		grantTypeClientCredentials: clientCredentialsGrant{s},
	}
	if len(cfg.KEK) == 32 {
		s.grants[grantTypeAuthorizationCode] = authorizationCodeGrant{s}
		s.grants[grantTypeRefreshToken] = refreshTokenGrant{s}
	}
	s.grants[grantTypeJWTBearer] = onBehalfOfGrant{s}
	s.grants[grantTypeDeviceCode] = deviceCodeGrant{s}
	s.grants[grantTypeDeviceCodeV1] = deviceCodeGrant{s}
	s.grants[grantTypePassword] = passwordGrant{s}
	s.clientAuth = []clientAuthMethod{
		secretPost{},
		secretBasic{},
		clientAssertion{},
	}
	s.routes()
	return s
}

func (s *Service) routes() {
	m := http.NewServeMux()
	// Every pattern takes every method, and "/" takes every other path, so
	// that no request reaches the mux's plain-text 404 or 405 (routing.go).
	m.HandleFunc("/{tenant}/v2.0/.well-known/openid-configuration", s.getOnly(s.handleOpenIDConfiguration(v2)))
	m.HandleFunc("/{tenant}/.well-known/openid-configuration", s.getOnly(s.handleOpenIDConfiguration(v1)))
	m.HandleFunc("/{tenant}/discovery/v2.0/keys", s.getOnly(s.handleKeys))
	m.HandleFunc("/{tenant}/discovery/keys", s.getOnly(s.handleKeys))
	m.HandleFunc("/common/discovery/instance", s.getOnly(s.handleInstanceDiscovery))
	m.HandleFunc("/common/UserRealm/{name}", s.getOnly(s.handleUserRealm)) // MSAL asks before a password grant
	// The token endpoints take every method so that a GET gets Entra's
	// AADSTS900561 rather than the mux's plain 405.
	m.HandleFunc("/{tenant}/oauth2/v2.0/token", s.handleToken(v2))
	m.HandleFunc("/{tenant}/oauth2/token", s.handleToken(v1))
	m.HandleFunc("/{tenant}/oauth2/v2.0/devicecode", s.handleDeviceCode(v2))
	m.HandleFunc("/{tenant}/oauth2/devicecode", s.handleDeviceCode(v1))
	// The managed identity endpoint (App Service's, which
	// ManagedIdentityCredential uses through IDENTITY_ENDPOINT). It takes
	// every method so that others get its own 405.
	m.HandleFunc("/{tenant}/msi/token", s.handleManagedIdentity)
	m.HandleFunc("/", s.handleNotFound)
	s.mux = m
}

// ServeHTTP routes a request to the token service's endpoints.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Verifier returns the verifier of this service's tokens for resource
// surfaces: one per service, so that every surface (and the on-behalf-of
// grant) shares its caches of checked signatures and trusts.
func (s *Service) Verifier() *Verifier { return s.verifier }

// endpointVersion tells the v1 endpoints (/oauth2/token, resource=) from the
// v2 endpoints (/oauth2/v2.0/token, scope=). Note that it does not decide the
// token's version: the resource does (see claims.go).
type endpointVersion int

const (
	v1 endpointVersion = 1
	v2 endpointVersion = 2
)

// Tenant path segments that name no tenant: Entra resolves the tenant from
// the user, which app-only flows do not have.
func isMultiTenantAlias(ref string) bool {
	return strings.EqualFold(ref, "common") || strings.EqualFold(ref, "organizations")
}

// tenantSegment is what MSAL accepts as a tenant (validTenantID); anything
// else cannot name a tenant and is refused before touching the store.
var tenantSegment = regexp.MustCompile(`^[A-Za-z0-9.-]{1,256}$`)

// resolveTenant finds the tenant a path names, by id, domain or short name.
func (s *Service) resolveTenant(ctx context.Context, ref string) (store.Tenant, *Error) {
	if !tenantSegment.MatchString(ref) {
		return store.Tenant{}, aadError(codeTenantNotFound, safeName(ref))
	}
	t, err := s.dir.Tenant(ctx, ref)
	if errors.Is(err, directory.ErrNotFound) {
		return store.Tenant{}, aadError(codeTenantNotFound, ref)
	}
	if err != nil {
		return store.Tenant{}, serverError(err)
	}
	return t, nil
}

// refuse logs a server-side failure and sends the refusal.
func (s *Service) refuse(w http.ResponseWriter, r *http.Request, e *Error) {
	if e.cause != nil {
		s.log.ErrorContext(r.Context(), "sts: request failed", "path", r.URL.Path, "err", e.cause)
	}
	writeError(w, r, s.now(), e)
}
