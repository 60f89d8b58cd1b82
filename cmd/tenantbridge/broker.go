package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/spf13/cobra"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/broker/partner"
	"github.com/tenantbridge/tenantbridge/internal/broker/publisher"
)

// brokerFlags configure the broker's partner custody. Each has an
// environment variable, so that a deployed broker is configured without
// a command line; a flag wins over its variable. The application's secret
// is read only from the environment (never a flag, which other users of
// the machine could see).
type brokerFlags struct {
	authority, tenant, clientID, certificate string
	redirectURL, vaultURL, vaultName, secret string
	scopes                                   []string
	warnAfter, inactivity                    time.Duration
	azure                                    bool
	logLevel                                 string
	pub                                      publisherFlags
}

// publisherFlags configure the publisher's broker for managed
// applications (seed 000); it runs in broker serve when --publisher-tenant
// is set.
type publisherFlags struct {
	tenant, group, state, path, vaultURL, sigName string
	bootstrapName                                 string
	issuerURL, issuerKey, installationIdentity    string
	deliveryIdentity                              string
	subscriptions, offers                         []string
	rotate                                        time.Duration
}

// Environment variables of the broker.
const (
	envBrokerAuthority   = "TENANTBRIDGE_BROKER_AUTHORITY"
	envBrokerTenant      = "TENANTBRIDGE_BROKER_TENANT"
	envBrokerClientID    = "TENANTBRIDGE_BROKER_CLIENT_ID"
	envBrokerSecret      = "TENANTBRIDGE_BROKER_CLIENT_SECRET"
	envBrokerCertificate = "TENANTBRIDGE_BROKER_CLIENT_CERTIFICATE"
	envBrokerRedirect    = "TENANTBRIDGE_BROKER_REDIRECT_URL"
	envBrokerScopes      = "TENANTBRIDGE_BROKER_SCOPES"
	envBrokerVaultURL    = "TENANTBRIDGE_BROKER_VAULT_URL"
	envBrokerSecretName  = "TENANTBRIDGE_BROKER_SECRET_NAME"
	envBrokerWarnAfter   = "TENANTBRIDGE_BROKER_WARN_AFTER"
	envBrokerInactivity  = "TENANTBRIDGE_BROKER_INACTIVITY"
	envBrokerAzure       = "TENANTBRIDGE_BROKER_AZURE"

	envPublisherTenant        = "TENANTBRIDGE_PUBLISHER_TENANT"
	envPublisherGroup         = "TENANTBRIDGE_PUBLISHER_GROUP"
	envPublisherState         = "TENANTBRIDGE_PUBLISHER_STATE"
	envPublisherSubscriptions = "TENANTBRIDGE_PUBLISHER_SUBSCRIPTIONS"
	envPublisherVaultURL      = "TENANTBRIDGE_PUBLISHER_VAULT_URL"
	// The notification sig: this variable, else the secret
	// --notification-secret-name of the publisher's vault.
	envPublisherSig = "TENANTBRIDGE_PUBLISHER_NOTIFICATION_SECRET"
	// The registration endpoint's bootstrap secret: this variable, else
	// the secret --bootstrap-secret-name of the publisher's vault; with
	// neither, the registration endpoint refuses every call.
	envPublisherBootstrap = "TENANTBRIDGE_PUBLISHER_BOOTSTRAP_SECRET"
	// The broker's OpenID issuer (secretless federation): its public
	// https URL, the key of --publisher-vault-url that signs, and the
	// managed group's identity the installed software runs as.
	envPublisherIssuerURL            = "TENANTBRIDGE_PUBLISHER_ISSUER_URL"
	envPublisherIssuerKey            = "TENANTBRIDGE_PUBLISHER_ISSUER_KEY"
	envPublisherInstallationIdentity = "TENANTBRIDGE_PUBLISHER_INSTALLATION_IDENTITY"
	// The offers whose packages carry no registration section:
	// PRODUCT=MODE, comma-separated.
	envPublisherOffers = "TENANTBRIDGE_PUBLISHER_OFFERS"
	// The broker's identity in the publisher tenant: its managed identity,
	// or an application with a secret (both variables).
	envPublisherClientID     = "TENANTBRIDGE_PUBLISHER_CLIENT_ID"
	envPublisherClientSecret = "TENANTBRIDGE_PUBLISHER_CLIENT_SECRET"
)

// brokerCommand is the provider's side of the seed scenarios; today the
// partner custody of the Secure Application Model (seed 003).
func (c *cli) brokerCommand() *cobra.Command {
	cmd, _ := c.newBrokerCommand()
	return cmd
}

// newBrokerCommand builds the broker command and returns its flags, which
// hold their defaults (from the environment) as soon as they are defined:
// serve --broker-listen runs the broker with them.
func (c *cli) newBrokerCommand() (*cobra.Command, *brokerFlags) {
	f := &brokerFlags{}
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run the provider's broker: the partner-consent page and the partner's delegated access (Secure Application Model)",
		Long: `The broker is the provider's side of tenantbridge's scenarios. It is a client of the
wire APIs only (OAuth 2.0, Key Vault), so it runs against Entra ID and Azure as against
a tenantbridge: against the tenantbridge of --data when its operator.json is there,
against Azure with --azure (or when there is none).

It authenticates to the vault with its own managed identity (IDENTITY_ENDPOINT and
IDENTITY_HEADER, AZURE_CLIENT_ID for a user-assigned one; see tenantbridge env --identity),
and to the token service as its application with, in order of preference: a federated
credential trusting that managed identity (the default: no secret at all), a certificate
(--client-certificate), or a secret ($` + envBrokerSecret + `).`,
	}
	e := c.getenv
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.authority, "authority", envOr(e(envBrokerAuthority), partner.DefaultAuthorityHost), "token service host (env "+envBrokerAuthority+")")
	pf.StringVar(&f.tenant, "partner-tenant", envOr(e(envBrokerTenant), partner.DefaultTenant), "the partner's tenant id, or organizations (env "+envBrokerTenant+")")
	pf.StringVar(&f.clientID, "client-id", e(envBrokerClientID), "the broker's application (client) id (env "+envBrokerClientID+")")
	pf.StringVar(&f.certificate, "client-certificate", e(envBrokerCertificate), "PEM file with the application's certificate and RSA key (env "+envBrokerCertificate+")")
	pf.StringVar(&f.redirectURL, "redirect-url", e(envBrokerRedirect), "the consent callback registered on the application (env "+envBrokerRedirect+"; default http://LISTEN/callback)")
	pf.StringSliceVar(&f.scopes, "consent-scope", envList(e(envBrokerScopes), "https://graph.microsoft.com/User.Read"), "delegated permissions asked at consent (env "+envBrokerScopes+", space-separated)")
	pf.StringVar(&f.vaultURL, "vault-url", e(envBrokerVaultURL), "the vault holding the refresh token, e.g. https://NAME.vault.azure.net (env "+envBrokerVaultURL+")")
	pf.StringVar(&f.vaultName, "vault-name", "", "the vault by name: https://NAME.vault.azure.net")
	pf.StringVar(&f.secret, "secret-name", envOr(e(envBrokerSecretName), partner.DefaultSecretName), "the vault secret holding the refresh token (env "+envBrokerSecretName+")")
	pf.DurationVar(&f.warnAfter, "warn-after", envDuration(e(envBrokerWarnAfter), partner.DefaultWarnAfter), "warn when the refresh token has gone unused this long (env "+envBrokerWarnAfter+")")
	pf.DurationVar(&f.inactivity, "inactivity", envDuration(e(envBrokerInactivity), partner.DefaultInactivity), "how long an unused refresh token lives (env "+envBrokerInactivity+")")
	pf.BoolVar(&f.azure, "azure", envBool(e(envBrokerAzure)), "reach Azure with the system's network settings, not the tenantbridge of --data (env "+envBrokerAzure+")")
	pf.StringVar(&f.logLevel, "log-level", "", "log level: debug, info, warn or error (default info for serve, error otherwise)")

	pf.StringVar(&f.pub.tenant, "publisher-tenant", e(envPublisherTenant), "serve the publisher's managed-application broker for this tenant (env "+envPublisherTenant+")")
	pf.StringVar(&f.pub.group, "publisher-group", e(envPublisherGroup), "the group holding the roles on the shared publisher resources (env "+envPublisherGroup+")")
	pf.StringVar(&f.pub.state, "publisher-state", e(envPublisherState), "installation state: a JSON file (default DATA/publisher-state.json), or \"vault\" for the publisher's vault (env "+envPublisherState+")")
	pf.StringSliceVar(&f.pub.subscriptions, "publisher-subscription", envList(e(envPublisherSubscriptions), ""), "the publisher's subscriptions, where marketplace offers' definitions are (env "+envPublisherSubscriptions+")")
	pf.StringVar(&f.pub.vaultURL, "publisher-vault-url", e(envPublisherVaultURL), "the publisher's vault: the notification secret, and the state with --publisher-state vault (env "+envPublisherVaultURL+")")
	pf.StringVar(&f.pub.sigName, "notification-secret-name", "NotificationSecret", "the publisher vault's secret holding the notification sig (unless $"+envPublisherSig+" is set)")
	pf.StringVar(&f.pub.bootstrapName, "bootstrap-secret-name", "BootstrapSecret", "the publisher vault's secret authenticating the registration endpoint {notification-path}/register (unless $"+envPublisherBootstrap+" is set; with neither, that endpoint refuses every call)")
	pf.StringVar(&f.pub.path, "notification-path", "/managedapp", "the notification endpoint's path: register http(s)://HOST{path}?sig=SECRET on the definition")
	pf.DurationVar(&f.pub.rotate, "rotate-interval", time.Hour, "how often to rotate the installations' client secrets (0: never)")
	pf.StringVar(&f.pub.issuerURL, "issuer-url", e(envPublisherIssuerURL), "the broker's OpenID issuer for secretless installations: the public https URL (behind your TLS front end) at which this listener's path is reached (env "+envPublisherIssuerURL+")")
	pf.StringVar(&f.pub.issuerKey, "issuer-key", envOr(e(envPublisherIssuerKey), "broker-issuer"), "the RSA key of --publisher-vault-url that signs the issuer's assertions through Key Vault's sign; created when missing (env "+envPublisherIssuerKey+")")
	pf.StringSliceVar(&f.pub.offers, "publisher-offer", strings.Fields(strings.ReplaceAll(e(envPublisherOffers), ",", " ")), "an offer whose package (mainTemplate) has no registration section, as PRODUCT=secret or PRODUCT=federated (a marketplace plan's product, or a service catalog definition's id): its installations register from the notification alone, the vault from the package's output "+publisher.OutputVault+"; repeatable (env "+envPublisherOffers+", comma-separated)")
	pf.StringVar(&f.pub.deliveryIdentity, "delivery-identity", "publisher-delivery", "the user-assigned identity an offer's package makes Key Vault Secrets Officer on its vault: the broker writes the credential with its listTokens token")
	pf.StringVar(&f.pub.installationIdentity, "installation-identity", e(envPublisherInstallationIdentity), "the user-assigned identity of each managed resource group that the installed software runs as (default: the application's system-assigned identity) (env "+envPublisherInstallationIdentity+")")

	p := &cobra.Command{Use: "partner", Short: "The partner's delegated access: access tokens, status, refresh"}
	p.AddCommand(c.brokerPartnerToken(f), c.brokerPartnerStatus(f), c.brokerPartnerRefresh(f))
	cmd.AddCommand(c.brokerServe(f), p)
	return cmd, f
}

func envOr(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

func envList(v, def string) []string {
	if v = strings.TrimSpace(v); v != "" {
		return strings.Fields(strings.ReplaceAll(v, ",", " "))
	}
	return []string{def}
}

func envDuration(v string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d
	}
	return def
}

func envBool(v string) bool {
	b, _ := strconv.ParseBool(v)
	return b
}

// brokerHTTP returns the client the broker reaches the cloud with: the
// tenantbridge of --data (by Azure's names, trusting only its CA), or, with
// --azure or without a local server, the system's.
func (c *cli) brokerHTTP(f *brokerFlags) (*http.Client, error) {
	if _, err := os.Stat(filepath.Join(c.dataDir, operatorFile)); f.azure || errors.Is(err, os.ErrNotExist) {
		return &http.Client{Timeout: time.Minute}, nil
	}
	cred, err := c.serverInfo()
	if err != nil {
		return nil, err
	}
	local, err := cred.Local()
	if err != nil {
		return nil, err
	}
	t, err := local.Transport()
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: t, Timeout: time.Minute}, nil
}

// custodian builds the partner custody from the flags; redirect is the
// consent callback (needed by serve only).
func (c *cli) custodian(f *brokerFlags, redirect string, logger *slog.Logger) (*partner.Custodian, error) {
	if f.clientID == "" {
		return nil, fmt.Errorf("the broker's application is not configured: pass --client-id or set %s", envBrokerClientID)
	}
	vaultURL := f.vaultURL
	if f.vaultName != "" {
		if vaultURL != "" {
			return nil, errors.New("choose one of --vault-url and --vault-name")
		}
		vaultURL = "https://" + f.vaultName + ".vault.azure.net"
	}
	if vaultURL == "" {
		return nil, fmt.Errorf("the vault is not configured: pass --vault-name or --vault-url, or set %s", envBrokerVaultURL)
	}
	hc, err := c.brokerHTTP(f)
	if err != nil {
		return nil, err
	}
	opts := azcore.ClientOptions{Transport: hc}
	opts.Retry.MaxRetries = 2
	miOpts := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts}
	if id := c.getenv("AZURE_CLIENT_ID"); id != "" {
		miOpts.ID = azidentity.ClientID(id)
	}
	mi, err := azidentity.NewManagedIdentityCredential(miOpts)
	if err != nil {
		return nil, fmt.Errorf("the broker's managed identity: %w", err)
	}
	secrets, err := azsecrets.NewClient(vaultURL, mi, &azsecrets.ClientOptions{ClientOptions: opts})
	if err != nil {
		return nil, fmt.Errorf("vault %s: %w", vaultURL, err)
	}
	var cred partner.ClientCredential
	switch secret := c.getenv(envBrokerSecret); {
	case f.certificate != "" && secret != "":
		return nil, fmt.Errorf("choose one application credential: --client-certificate or %s", envBrokerSecret)
	case f.certificate != "":
		if cred, err = partner.LoadClientCertificate(f.clientID, f.certificate); err != nil {
			return nil, err
		}
	case secret != "":
		cred = partner.ClientSecret(secret)
	default:
		cred = partner.ManagedIdentityAssertion(mi)
	}
	return partner.New(partner.Config{AuthorityHost: f.authority, Tenant: f.tenant, ClientID: f.clientID, Credential: cred,
		RedirectURL: redirect, Scopes: f.scopes, Secrets: secrets, SecretName: f.secret, HTTPClient: hc, Logger: logger,
		WarnAfter: f.warnAfter, Inactivity: f.inactivity})
}

// publisherBroker builds the publisher's broker from the flags, or nil
// when --publisher-tenant is not set.
func (c *cli) publisherBroker(ctx context.Context, f *brokerFlags, logger *slog.Logger) (*publisher.Broker, error) {
	pf := f.pub
	if pf.tenant == "" {
		return nil, nil
	}
	hc, err := c.brokerHTTP(f)
	if err != nil {
		return nil, err
	}
	opts := azcore.ClientOptions{Transport: hc}
	opts.Retry.MaxRetries = 2
	var cred azcore.TokenCredential
	if id, secret := c.getenv(envPublisherClientID), c.getenv(envPublisherClientSecret); id != "" && secret != "" {
		authority := f.authority
		if authority == partner.DefaultAuthorityHost {
			authority = ""
		}
		cred, err = azclient.NewClientSecretCredential(authority, pf.tenant, id, secret, opts)
	} else {
		miOpts := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts}
		if id := c.getenv("AZURE_CLIENT_ID"); id != "" {
			miOpts.ID = azidentity.ClientID(id)
		}
		cred, err = azidentity.NewManagedIdentityCredential(miOpts)
	}
	if err != nil {
		return nil, fmt.Errorf("the publisher broker's credential: %w", err)
	}
	var vault *azsecrets.Client
	if pf.vaultURL != "" {
		if vault, err = azsecrets.NewClient(pf.vaultURL, cred, &azsecrets.ClientOptions{ClientOptions: opts}); err != nil {
			return nil, fmt.Errorf("vault %s: %w", pf.vaultURL, err)
		}
	}
	sig := c.getenv(envPublisherSig)
	if sig == "" && vault != nil {
		resp, err := vault.GetSecret(ctx, pf.sigName, "", nil)
		if err != nil {
			return nil, fmt.Errorf("the notification secret %s of %s: %w", pf.sigName, pf.vaultURL, err)
		}
		if resp.Value != nil {
			sig = *resp.Value
		}
	}
	if sig == "" {
		return nil, fmt.Errorf("the notification secret is not configured: set %s, or keep it in --publisher-vault-url as --notification-secret-name", envPublisherSig)
	}
	bootstrap := c.getenv(envPublisherBootstrap)
	if bootstrap == "" && vault != nil {
		resp, err := vault.GetSecret(ctx, pf.bootstrapName, "", nil)
		var re *azcore.ResponseError
		switch {
		case errors.As(err, &re) && re.StatusCode == http.StatusNotFound:
		case err != nil:
			return nil, fmt.Errorf("the bootstrap secret %s of %s: %w", pf.bootstrapName, pf.vaultURL, err)
		case resp.Value != nil:
			bootstrap = *resp.Value
		}
	}
	if bootstrap == "" {
		logger.Warn("no bootstrap secret: the registration endpoint refuses every call (registration by notification only)",
			"env", envPublisherBootstrap, "vaultSecret", pf.bootstrapName)
	}
	var st publisher.Store
	switch {
	case pf.state == "vault" && vault == nil:
		return nil, errors.New("--publisher-state vault needs --publisher-vault-url")
	case pf.state == "vault":
		st = publisher.NewVaultStore(vault)
	default:
		file := pf.state
		if file == "" {
			file = filepath.Join(c.dataDir, "publisher-state.json")
		}
		if st, err = publisher.NewFileStore(file); err != nil {
			return nil, err
		}
	}
	var subs []string
	for _, s := range pf.subscriptions {
		if s != "" {
			subs = append(subs, s)
		}
	}
	var signer publisher.Signer
	if pf.issuerURL != "" {
		if pf.vaultURL == "" {
			return nil, errors.New("--issuer-url needs --publisher-vault-url: the issuer's key is in the publisher's vault")
		}
		vs, err := publisher.NewVaultSigner(ctx, pf.vaultURL, pf.issuerKey, cred, &publisher.VaultSignerOptions{ClientOptions: opts, Create: true})
		if err != nil {
			return nil, err
		}
		signer = vs
	}
	offers, err := parseOffers(pf.offers, pf.deliveryIdentity, pf.installationIdentity)
	if err != nil {
		return nil, err
	}
	return publisher.New(publisher.Config{TenantID: pf.tenant, Credential: cred, ClientOptions: opts, GroupID: pf.group,
		NotificationSecret: sig, BootstrapSecret: bootstrap, Subscriptions: subs, State: st, Logger: logger,
		IssuerURL: pf.issuerURL, Signer: signer, InstallationIdentity: pf.installationIdentity, Offers: offers})
}

// parseOffers reads --publisher-offer PRODUCT=MODE values.
func parseOffers(values []string, delivery, installation string) (map[string]publisher.Offer, error) {
	offers := map[string]publisher.Offer{}
	for _, v := range values {
		key, mode, ok := strings.Cut(strings.TrimSpace(v), "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" || (mode != publisher.ModeSecret && mode != publisher.ModeFederated) {
			return nil, fmt.Errorf("--publisher-offer %q: want PRODUCT=%s or PRODUCT=%s", v, publisher.ModeSecret, publisher.ModeFederated)
		}
		o := publisher.Offer{CredentialMode: mode, DeliveryIdentity: delivery}
		if mode == publisher.ModeFederated {
			o.InstallationIdentity = installation
		}
		offers[key] = o
	}
	return offers, nil
}

func (c *cli) brokerLogger(f *brokerFlags, def string) (*slog.Logger, error) {
	return newLogger(c.stderr, envOr(f.logLevel, def))
}

func (c *cli) brokerServe(f *brokerFlags) *cobra.Command {
	var listen string
	var check time.Duration
	cmd := &cobra.Command{
		Use:   "serve [--listen ADDR]",
		Short: "Serve the partner-consent page and keep the partner's refresh token alive; with --publisher-tenant, the managed-application broker",
		Long: `Serve the partner-consent page: "Connect partner" sends the partner's administrator to
sign in (with multi-factor authentication) and consent; the refresh token lands in the vault.
The page is plain HTTP: put it behind your TLS front end, and register its /callback
(--redirect-url) on the application exactly. Every --check-interval the broker checks the
stored token and redeems it when it has gone unused longer than --warn-after.

With --publisher-tenant it also serves the publisher's managed-application broker (seed 000):
lifecycle notifications at POST {--notification-path}/resource?sig=SECRET register each
installation (application, service principal, group membership, credential in the managed
application's vault) and remove it on deletion; the cloud's registration call at POST
{--notification-path}/register (Authorization: Bootstrap SECRET, the secret from
$TENANTBRIDGE_PUBLISHER_BOOTSTRAP_SECRET or the vault's --bootstrap-secret-name; without one the endpoint
refuses every call with 503) registers the same way, idempotently. An offer whose package is an ARM
template with no registration section (--publisher-offer PRODUCT=MODE) registers from the notification
alone, as against Azure: the broker reads the application, delivers into the vault its package names in
the output vaultResourceId, as the package's --delivery-identity. Client secrets are rotated every
--rotate-interval. With --issuer-url (and --publisher-vault-url, whose key --issuer-key signs through
Key Vault) the broker is an OpenID issuer: secretless installations trade their managed identity's
token for its assertion, which their per-installation application's federated credential trusts.
Without --client-id it serves only that.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.runBroker(cmd.Context(), f, listen, check)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8500", "HTTP listen address of the consent page (port 0 picks a free port)")
	cmd.Flags().DurationVar(&check, "check-interval", time.Hour, "how often to check the stored token and keep it alive (0: never)")
	return cmd
}

// runBroker serves the broker on listen until ctx ends: the partner-consent
// page (with --client-id) and, with --publisher-tenant, the publisher's
// managed-application broker.
func (c *cli) runBroker(ctx context.Context, f *brokerFlags, listen string, check time.Duration) error {
	logger, err := c.brokerLogger(f, "info")
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	redirect := f.redirectURL
	if redirect == "" {
		redirect = "http://" + ln.Addr().String() + "/callback"
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pub, err := c.publisherBroker(ctx, f, logger)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	if pub == nil || f.clientID != "" {
		cust, err := c.custodian(f, redirect, logger)
		if err != nil {
			return err
		}
		if check > 0 {
			go cust.KeepAlive(ctx, check)
		}
		mux.Handle("/", cust.Handler())
	}
	if pub != nil {
		mux.Handle(strings.TrimRight(f.pub.path, "/")+"/resource", pub.Handler())
		mux.Handle(strings.TrimRight(f.pub.path, "/")+"/register", pub.Handler())
		if f.pub.rotate > 0 {
			go pub.RunRotation(ctx, f.pub.rotate)
		}
		if iss := pub.IssuerURL(); iss != "" {
			u, err := url.Parse(iss)
			if err != nil {
				return err
			}
			mux.Handle(strings.TrimRight(u.Path, "/")+"/", pub.Handler())
			c.notef("OpenID issuer %s (discovery, JWKS and the installations' exchange), served at this listener's path %s", iss, u.Path)
		}
		c.notef("Managed-application notifications: http://%s%s?sig=… (register it on the definition)", ln.Addr(), strings.TrimRight(f.pub.path, "/"))
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	if pub == nil || f.clientID != "" {
		c.notef("Partner consent page: http://%s/ (callback %s)", ln.Addr(), redirect)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shut, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	return srv.Shutdown(shut)
}

// brokerAccessToken is what partner token prints with -o json.
type brokerAccessToken struct {
	AccessToken string `json:"accessToken"`
	ExpiresOn   string `json:"expiresOn"`
	ExpiresOnTS int64  `json:"expires_on"`
	Tenant      string `json:"tenant"`
	TokenType   string `json:"tokenType"`
	Scope       string `json:"scope"`
	User        string `json:"user"`
}

func (c *cli) brokerPartnerToken(f *brokerFlags) *cobra.Command {
	var audience string
	var scopes []string
	cmd := &cobra.Command{
		Use:   "token (--audience URL | --scope SCOPE...)",
		Short: "Mint an access token from the partner's refresh token, writing the rotated refresh token back first",
		Long: `Redeem the partner's refresh token for an access token for an audience (e.g.
https://graph.microsoft.com, https://api.partnercenter.microsoft.com) or for scopes, write the
rotated refresh token to the vault as a new version, and print the access token (or, with
-o json, the token and its expiry, as az account get-access-token).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ask := scopes
			switch {
			case audience != "" && len(scopes) > 0:
				return errors.New("choose one of --audience and --scope")
			case audience != "":
				ask = partner.AudienceScopes(audience)
			case len(scopes) == 0:
				return errors.New("say what the token is for: --audience URL or --scope SCOPE")
			}
			logger, err := c.brokerLogger(f, "error")
			if err != nil {
				return err
			}
			cust, err := c.custodian(f, f.redirectURL, logger)
			if err != nil {
				return err
			}
			at, err := cust.Token(cmd.Context(), ask)
			if err != nil {
				return err
			}
			if !c.structured(cmd) {
				_, err := fmt.Fprintln(c.stdout, at.Token)
				return err
			}
			return c.emit(cmd, brokerAccessToken{AccessToken: at.Token, ExpiresOn: at.ExpiresOn.Local().Format("2006-01-02 15:04:05.000000"),
				ExpiresOnTS: at.ExpiresOn.Unix(), Tenant: at.TenantID, TokenType: at.TokenType, Scope: at.Scope, User: at.User})
		},
	}
	cmd.Flags().StringVar(&audience, "audience", "", "the resource the token is for, e.g. https://graph.microsoft.com")
	cmd.Flags().StringSliceVar(&scopes, "scope", nil, "scopes instead of an audience")
	return cmd
}

// renderPartnerStatus prints st, and returns the warning as the command's
// error so that the exit status is non-zero (for monitoring).
func (c *cli) renderPartnerStatus(cmd *cobra.Command, st *partner.Status) error {
	err := c.render(cmd, st, func() table {
		return fields("SECRET", st.Secret, "VERSION", st.Version, "USER", st.User, "TENANT", st.TenantID, "SCOPES", st.Scopes,
			"CONSENTED", fmtTime(st.ConsentedAt), "LAST USED", fmtTime(st.LastUsed), "EXPIRES IF UNUSED", fmtTime(st.ExpiresAt),
			"WARNING", st.Warning)
	})
	if err != nil {
		return err
	}
	if st.Warning != "" {
		return errors.New("warning: " + st.Warning)
	}
	return nil
}

func (c *cli) brokerPartnerStatus(f *brokerFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the stored refresh token's custody (never the token); exit non-zero with a warning when it nears its inactivity expiry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := c.brokerLogger(f, "error")
			if err != nil {
				return err
			}
			cust, err := c.custodian(f, f.redirectURL, logger)
			if err != nil {
				return err
			}
			st, err := cust.Status(cmd.Context())
			if err != nil {
				return err
			}
			return c.renderPartnerStatus(cmd, st)
		},
	}
}

func (c *cli) brokerPartnerRefresh(f *brokerFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "refresh",
		Short: "Redeem the stored refresh token to keep it alive, writing its successor back",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := c.brokerLogger(f, "error")
			if err != nil {
				return err
			}
			cust, err := c.custodian(f, f.redirectURL, logger)
			if err != nil {
				return err
			}
			st, err := cust.Refresh(cmd.Context())
			if err != nil {
				return err
			}
			c.notef("Refreshed: the vault holds version %s of %s.", st.Version, st.Secret)
			return c.renderPartnerStatus(cmd, st)
		},
	}
}
