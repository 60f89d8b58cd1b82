// Package partner is the broker's custody of a partner's delegated access,
// Microsoft's Secure Application Model: a partner administrator signs in
// with multi-factor authentication and consents on the broker's page
// (authorization code flow with PKCE, state and nonce); the broker keeps
// the refresh token in a Key Vault secret, reached only with the broker's
// own managed identity, and mints access tokens per audience on request.
//
// Every redemption of the refresh token rotates it (the cloud spends the
// presented token, and presenting a spent one revokes the whole family), so
// the successor is written to the vault as a new secret version before the
// access token is handed out. Redemptions are serialized within the
// process. A refresh token unused for 90 days expires; Status warns well
// before that and Refresh keeps the token alive.
//
// The package is a client of the wire protocols only (OAuth 2.0 / OpenID
// Connect and the Key Vault API), so it works against Entra ID and Azure
// Key Vault as against tenantbridge.
package partner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// Defaults of Config.
const (
	DefaultAuthorityHost = "https://login.microsoftonline.com"
	DefaultTenant        = "organizations"
	DefaultSecretName    = "partner-refresh-token"
	// DefaultInactivity is how long an unused refresh token lives (Entra's
	// 90 days).
	DefaultInactivity = 90 * 24 * time.Hour
	// DefaultWarnAfter is when Status starts warning that the stored
	// token has gone unused.
	DefaultWarnAfter = 60 * 24 * time.Hour
	// ContentType marks the secret as a partner refresh token.
	ContentType = "application/vnd.tenantbridge.partner-refresh-token"
)

// Tags on the vault secret: the custody's metadata, never the token.
const (
	TagUser        = "user"
	TagUserID      = "userObjectId"
	TagTenantID    = "tenantId"
	TagClientID    = "clientId"
	TagScopes      = "scopes"
	TagConsentedAt = "consentedAt"
	TagStoredAt    = "storedAt"
	TagLastUsed    = "lastUsed"
)

// Config configures a Custodian.
type Config struct {
	// AuthorityHost is the token service, e.g. https://login.microsoftonline.com
	// (the default) or a tenantbridge's.
	AuthorityHost string
	// Tenant is the authority's tenant for the consent flow: the partner's
	// tenant id or domain, or "organizations" (the default).
	Tenant string
	// ClientID is the broker's (multi-tenant) application.
	ClientID string
	// Credential authenticates the application at the token endpoint:
	// ManagedIdentityAssertion (no secret), ClientCertificate or
	// ClientSecret.
	Credential ClientCredential
	// RedirectURL is the consent callback, registered on the application
	// exactly: the Handler's URL followed by /callback.
	RedirectURL string
	// Scopes are the delegated permissions asked at consent, e.g.
	// https://graph.microsoft.com/User.Read; openid, profile and
	// offline_access are always added.
	Scopes []string
	// Secrets is the vault client, authenticated with the broker's managed
	// identity.
	Secrets *azsecrets.Client
	// SecretName is the vault secret holding the refresh token.
	SecretName string
	// HTTPClient calls the token endpoint; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Logger receives what the custody does, never a token; nil means
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Inactivity is the refresh token's lifetime when unused (default 90 days).
	Inactivity time.Duration
	// WarnAfter is the idle time after which Status warns (default 60 days).
	WarnAfter time.Duration
}

// Custodian holds a partner's refresh token in a vault and mints access
// tokens with it. It is safe for concurrent use: redemptions are serialized.
type Custodian struct {
	cfg Config
	log *slog.Logger

	mu sync.Mutex // serializes every redemption and write of the token
	// unsaved is a rotated refresh token the vault did not accept yet: the
	// stored one is spent, so this is the only live one. The next call
	// writes it first.
	unsaved *stored

	flows flowStore
}

// New checks cfg and returns a Custodian.
func New(cfg Config) (*Custodian, error) {
	if cfg.AuthorityHost == "" {
		cfg.AuthorityHost = DefaultAuthorityHost
	}
	cfg.AuthorityHost = strings.TrimRight(cfg.AuthorityHost, "/")
	if cfg.Tenant == "" {
		cfg.Tenant = DefaultTenant
	}
	if cfg.SecretName == "" {
		cfg.SecretName = DefaultSecretName
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Inactivity <= 0 {
		cfg.Inactivity = DefaultInactivity
	}
	if cfg.WarnAfter <= 0 {
		cfg.WarnAfter = DefaultWarnAfter
	}
	switch {
	case cfg.ClientID == "":
		return nil, errors.New("partner custody: the broker's application (client id) is not configured")
	case cfg.Credential == nil:
		return nil, errors.New("partner custody: the application's credential is not configured")
	case cfg.Secrets == nil:
		return nil, errors.New("partner custody: the vault is not configured")
	case cfg.WarnAfter >= cfg.Inactivity:
		return nil, fmt.Errorf("partner custody: the warning (after %v) must come before the token expires (after %v unused)", cfg.WarnAfter, cfg.Inactivity)
	}
	if cc, ok := cfg.Credential.(clientAssertion); ok && cc.clientID == "" {
		cc.clientID = cfg.ClientID
		cfg.Credential = cc
	}
	return &Custodian{cfg: cfg, log: cfg.Logger.With("component", "broker.partner", "secret", cfg.SecretName), flows: flowStore{m: map[string]flow{}}}, nil
}

// Errors of the custody, for errors.Is.
var (
	// ErrNotConnected: the vault holds no refresh token; a partner admin
	// must consent on the broker's page.
	ErrNotConnected = errors.New("no partner is connected: the vault holds no refresh token; a partner administrator must consent on the broker's page")
	// ErrRefreshTokenRevoked: the cloud refused the stored token as spent
	// or revoked (AADSTS50173). A spent token presented again revokes its
	// whole family, so this is what two redemptions of the same token (by
	// two broker processes sharing the vault) or a stolen copy look like.
	ErrRefreshTokenRevoked = errors.New("the stored refresh token was refused as already redeemed or revoked (AADSTS50173); the cloud has revoked its family, so a partner administrator must consent again")
	// ErrRefreshTokenExpired: unused for longer than the inactivity limit.
	ErrRefreshTokenExpired = errors.New("the stored refresh token expired after going unused (AADSTS700082); a partner administrator must consent again")
	// ErrConsentRevoked: the partner removed the grant.
	ErrConsentRevoked = errors.New("the partner's consent is gone (AADSTS65001); a partner administrator must consent again")
	// ErrMFARequired: the consent sign-in did not use MFA.
	ErrMFARequired = errors.New("the sign-in did not use multi-factor authentication (the token's amr lacks \"mfa\"); the Secure Application Model requires it")
)

// AccessToken is an access token minted from the custody.
type AccessToken struct {
	Token     string    `json:"accessToken"`
	ExpiresOn time.Time `json:"expiresOn"`
	Scope     string    `json:"scope"`
	TenantID  string    `json:"tenant"`
	User      string    `json:"user"`
	TokenType string    `json:"tokenType"`
}

// Status is the custody's state, without the token.
type Status struct {
	Secret      string    `json:"secret"`
	Version     string    `json:"version"`
	User        string    `json:"user"`
	UserID      string    `json:"userObjectId"`
	TenantID    string    `json:"tenantId"`
	Scopes      string    `json:"scopes"`
	ConsentedAt time.Time `json:"consentedAt"`
	StoredAt    time.Time `json:"storedAt"`
	LastUsed    time.Time `json:"lastUsed"`
	// ExpiresAt is when the token expires if it stays unused.
	ExpiresAt time.Time `json:"expiresAt"`
	Idle      string    `json:"idle"`
	// Warning, when set, says the token will expire unless used soon (or
	// has expired).
	Warning string `json:"warning,omitempty"`
	Expired bool   `json:"expired"`
}

// stored is the vault secret's content and metadata.
type stored struct {
	token   string
	version string
	tags    map[string]string
}

func (s *stored) time(tag string) time.Time {
	t, _ := time.Parse(time.RFC3339, s.tags[tag])
	return t
}

// AudienceScopes turns a resource (https://graph.microsoft.com) into the
// scope asking for every permission consented on it ({resource}/.default).
func AudienceScopes(audience string) []string {
	return []string{strings.TrimRight(audience, "/") + "/.default"}
}

func (c *Custodian) tokenURL(tenant string) string {
	return c.cfg.AuthorityHost + "/" + tenant + "/oauth2/v2.0/token"
}

// load reads the current version of the secret.
func (c *Custodian) load(ctx context.Context) (*stored, error) {
	resp, err := c.cfg.Secrets.GetSecret(ctx, c.cfg.SecretName, "", nil)
	if err != nil {
		var re *azcore.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
			return nil, ErrNotConnected
		}
		return nil, fmt.Errorf("read the refresh token from the vault: %w", vaultError(err))
	}
	if resp.Value == nil || *resp.Value == "" {
		return nil, ErrNotConnected
	}
	s := &stored{token: *resp.Value, tags: map[string]string{}}
	if resp.ID != nil {
		s.version = resp.ID.Version()
	}
	for k, v := range resp.Tags {
		if v != nil {
			s.tags[k] = *v
		}
	}
	return s, nil
}

// save writes s as a new version of the secret, retrying briefly: a
// rotated token that is not written is lost.
func (c *Custodian) save(ctx context.Context, s *stored) error {
	tags := map[string]*string{}
	for k, v := range s.tags {
		tags[k] = &v
	}
	ct := ContentType
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt*attempt) * 200 * time.Millisecond):
			}
		}
		var resp azsecrets.SetSecretResponse
		resp, err = c.cfg.Secrets.SetSecret(ctx, c.cfg.SecretName, azsecrets.SetSecretParameters{Value: &s.token, ContentType: &ct, Tags: tags}, nil)
		if err == nil {
			if resp.ID != nil {
				s.version = resp.ID.Version()
			}
			return nil
		}
	}
	return fmt.Errorf("write the refresh token to the vault: %w", vaultError(err))
}

// vaultError keeps a vault error to its first line (azcore's carry the
// whole response).
func vaultError(err error) error {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return fmt.Errorf("%s (HTTP %d)", re.ErrorCode, re.StatusCode)
	}
	return err
}

// Token redeems the stored refresh token for an access token for scopes
// (see AudienceScopes; none means a permission the partner consented to),
// writes the rotated refresh token back to the vault
// as a new version, and only then returns the access token.
func (c *Custodian) Token(ctx context.Context, scopes []string) (*AccessToken, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.unsaved
	if s != nil {
		// The last rotation was not written: write it before anything else.
		if err := c.save(ctx, s); err != nil {
			return nil, fmt.Errorf("the rotated refresh token is held in memory only: %w", err)
		}
		c.unsaved = nil
		c.log.Info("partner refresh token written back after an earlier failure", "version", s.version)
	} else {
		var err error
		if s, err = c.load(ctx); err != nil {
			return nil, err
		}
	}
	if len(scopes) == 0 {
		scopes = c.refreshScopes(s.tags[TagScopes])
	}
	tenant := s.tags[TagTenantID]
	if tenant == "" {
		tenant = c.cfg.Tenant
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {s.token},
		"scope": {strings.Join(append(scopes[:len(scopes):len(scopes)], "offline_access"), " ")}}
	tr, err := c.redeem(ctx, c.tokenURL(tenant), form)
	if err != nil {
		err = c.refusal(err)
		c.log.Warn("partner refresh token redemption refused", "version", s.version, "tenant", tenant, "error", err.Error())
		return nil, err
	}
	now := c.cfg.Now().UTC()
	if tr.RefreshToken != "" && tr.RefreshToken != s.token {
		next := &stored{token: tr.RefreshToken, tags: s.tags}
		next.tags[TagStoredAt] = now.Format(time.RFC3339)
		next.tags[TagLastUsed] = now.Format(time.RFC3339)
		if err := c.save(ctx, next); err != nil {
			// The stored token is spent: keep the successor for the next call.
			c.unsaved = next
			c.log.Error("partner refresh token rotated but not written to the vault; kept in memory", "spent_version", s.version, "error", err.Error())
			return nil, fmt.Errorf("the refresh token was rotated but the vault refused the new one (it is held in memory until written): %w", err)
		}
		c.log.Info("partner refresh token rotated", "spent_version", s.version, "version", next.version, "tenant", tenant, "scope", tr.Scope)
	} else {
		c.log.Warn("the token endpoint returned no rotated refresh token; the stored one stays", "version", s.version)
	}
	return &AccessToken{Token: tr.AccessToken, ExpiresOn: now.Add(tr.expiresIn()), Scope: tr.Scope, TenantID: tenant,
		User: s.tags[TagUser], TokenType: "Bearer"}, nil
}

// refusal maps the token endpoint's refusals of a refresh token to the
// custody's errors.
func (c *Custodian) refusal(err error) error {
	var te *TokenError
	if !errors.As(err, &te) {
		return err
	}
	switch te.AADSTS {
	case codeRefreshRevoked:
		return fmt.Errorf("%w: %v", ErrRefreshTokenRevoked, te)
	case codeRefreshExpired:
		return fmt.Errorf("%w: %v", ErrRefreshTokenExpired, te)
	case codeConsentMissing:
		return fmt.Errorf("%w: %v", ErrConsentRevoked, te)
	case codeRefreshMalformed:
		return fmt.Errorf("the cloud does not know the stored refresh token (AADSTS9002313); a partner administrator must consent again: %v", te)
	}
	return err
}

// Refresh redeems the stored refresh token (for the consented scopes) to
// keep it from expiring, and writes its successor back.
func (c *Custodian) Refresh(ctx context.Context) (*Status, error) {
	if _, err := c.Token(ctx, nil); err != nil {
		return nil, err
	}
	return c.Status(ctx)
}

// refreshScopes picks a scope to redeem the token for when none is asked:
// one the partner consented to (as stored), else one configured.
func (c *Custodian) refreshScopes(consented string) []string {
	for _, s := range append(strings.Fields(consented), c.cfg.Scopes...) {
		if !oidcScope(s) {
			return []string{s}
		}
	}
	return []string{"openid"}
}

func oidcScope(s string) bool {
	switch s {
	case "openid", "profile", "email", "offline_access":
		return true
	}
	return false
}

// Status reports the stored token's metadata and, once it has gone unused
// for longer than WarnAfter, a warning (also logged).
func (c *Custodian) Status(ctx context.Context) (*Status, error) {
	s, err := c.load(ctx)
	if err != nil {
		return nil, err
	}
	now := c.cfg.Now()
	st := &Status{Secret: c.cfg.SecretName, Version: s.version, User: s.tags[TagUser], UserID: s.tags[TagUserID],
		TenantID: s.tags[TagTenantID], Scopes: s.tags[TagScopes], ConsentedAt: s.time(TagConsentedAt),
		StoredAt: s.time(TagStoredAt), LastUsed: s.time(TagLastUsed)}
	if st.LastUsed.IsZero() {
		st.LastUsed = st.StoredAt
	}
	if st.LastUsed.IsZero() {
		st.Warning = "the stored refresh token carries no last-use time; redeem it (broker partner refresh) to record one"
		c.log.Warn("partner refresh token has no last-use time", "version", s.version)
		return st, nil
	}
	idle := now.Sub(st.LastUsed)
	st.ExpiresAt = st.LastUsed.Add(c.cfg.Inactivity)
	st.Idle = idle.Truncate(time.Minute).String()
	switch {
	case !now.Before(st.ExpiresAt):
		st.Expired = true
		st.Warning = fmt.Sprintf("the refresh token expired on %s after going unused since %s; a partner administrator must consent again",
			st.ExpiresAt.Format(time.RFC3339), st.LastUsed.Format(time.RFC3339))
	case idle > c.cfg.WarnAfter:
		st.Warning = fmt.Sprintf("the refresh token has gone unused for %d days and expires on %s unless it is redeemed (broker partner refresh)",
			int(idle.Hours()/24), st.ExpiresAt.Format(time.RFC3339))
	}
	if st.Warning != "" {
		c.log.Warn("partner refresh token near its inactivity expiry", "version", s.version, "tenant", st.TenantID, "user", st.User,
			"last_used", st.LastUsed, "expires_at", st.ExpiresAt, "expired", st.Expired)
	}
	return st, nil
}

// KeepAlive checks the status every interval until ctx ends, and redeems
// the token when it has gone unused for longer than WarnAfter.
func (c *Custodian) KeepAlive(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		st, err := c.Status(ctx)
		switch {
		case err == nil && st.Warning != "" && !st.Expired:
			if _, err := c.Refresh(ctx); err != nil {
				c.log.Error("partner refresh token keep-alive failed", "error", err.Error())
			}
		case err != nil && !errors.Is(err, ErrNotConnected) && ctx.Err() == nil:
			c.log.Error("partner refresh token status", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
