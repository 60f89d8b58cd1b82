// Package publisher is the publisher's broker for managed applications
// (seed 000, the Shared Resource Broker, done right).
//
// When a customer installs the publisher's managed application, the cloud
// POSTs lifecycle notifications to the endpoint of the application
// definition ({endpoint}/resource?sig=…). On PUT/Succeeded (and
// PATCH/Succeeded) the broker registers the installation: it creates a
// per-installation application and service principal in the publisher
// tenant through Graph, adds the service principal to the group that holds
// least-privilege roles on the publisher's shared resources, and delivers
// the credential into the managed application's own vault. On
// DELETE/Deleted it removes all of it.
//
// Two credential modes, chosen by the broker's Config.Offers for a package
// (a definition carrying an ARM template, as in Azure: the broker reads the
// application for its managed group and the package's vault output), or by
// the definition's deploymentSpec.registration.credentialMode:
//
//   - "secret": a client secret with an expiry (SecretLifetime, default 90
//     days), written to the customer's vault; Rotate adds its successor and
//     writes it to the vault RotateBefore the old one expires, and removes
//     the old one after Grace.
//   - "federated": nothing secret exists at all. The broker is an OpenID
//     Connect issuer (issuer.go: discovery and JWKS at Config.IssuerURL,
//     its signing key a Key Vault key used through Key Vault's sign
//     operation), and the per-installation application's federated
//     credential trusts that issuer and the installation's subject
//     (InstallationSubject). The installation exchanges its managed
//     identity's token (issued by the customer tenant, audience
//     api://AzureADTokenExchange) at the broker's exchange endpoint
//     (exchange.go), which verifies it against the customer tenant's
//     OpenID metadata and answers the broker's assertion; only the
//     (non-secret) client id, tenant and exchange endpoint are written to
//     the vault. The credential cannot trust the customer tenant's Entra
//     issuer directly: Entra accepts an Entra issuer only for the
//     credential owner's own tenant and a user-assigned identity there
//     (AADSTS700236; learn.microsoft.com/entra/workload-id/
//     workload-identity-federation-config-app-trust-managed-identity).
//
// The broker reaches the customer's vault as the cloud allows a publisher
// to: the broker's identity is one of the definition's authorizations, so
// it may call listTokens on the application for a token of the
// application's system-assigned identity for Key Vault (a vault accepts
// only tokens of its own tenant); the deployment spec grants that identity
// "Key Vault Secrets Officer" on the registration vault. A package cannot
// grant the application's own identity a role, so an Offer names a
// user-assigned identity of the managed group that its package makes
// Secrets Officer (Offer.DeliveryIdentity), and listTokens is asked for
// that identity's token. The same token
// tells the broker the customer's tenant id and the identity's object id
// (the federated credential's subject).
//
// Registration is idempotent on the normalized application id: each step
// is recorded in a Store (a JSON file, or the publisher's own vault) as it
// completes, so a replay returns the same result and a partial failure
// resumes where it stopped, across broker restarts.
//
// The package is a client of the wire APIs only (Graph, Resource Manager,
// Key Vault), so it runs against Azure as against tenantbridge.
package publisher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

// Credential modes of a registration.
const (
	ModeSecret    = "secret"
	ModeFederated = "federated"
)

// Defaults of Config.
const (
	DefaultARMEndpoint    = "https://management.azure.com"
	DefaultAuthorityHost  = "https://login.microsoftonline.com"
	DefaultVaultSuffix    = ".vault.azure.net"
	DefaultSecretLifetime = 90 * 24 * time.Hour
	DefaultRotateBefore   = 30 * 24 * time.Hour
	DefaultGrace          = 7 * 24 * time.Hour
	// DefaultSecretName is the customer vault's secret holding the client secret.
	DefaultSecretName = "publisher-client-secret"
	// DefaultConfigName is the customer vault's secret holding the
	// non-secret configuration (tenant, client id, mode) as JSON.
	DefaultConfigName = "publisher-config"
	// FederatedCredentialName names the federated credential on the
	// per-installation application.
	FederatedCredentialName = "managed-application"
	// TokenExchangeAudience is the federated credential's audience.
	TokenExchangeAudience = "api://AzureADTokenExchange"
	vaultAudience         = "https://vault.azure.net"
)

// Config configures a Broker.
type Config struct {
	// TenantID is the publisher's tenant.
	TenantID string
	// Credential is the broker's identity in the publisher tenant: it
	// needs Graph permissions to create applications and service
	// principals and to manage the group's members, read access to the
	// application definitions, and to be (directly or through a group) one
	// of the definitions' authorizations with a role that allows listTokens.
	Credential azcore.TokenCredential
	// ClientOptions carry the transport for every call.
	ClientOptions policy.ClientOptions
	// GraphEndpoint (default https://graph.microsoft.com/v1.0), ARMEndpoint
	// (default https://management.azure.com), AuthorityHost (the federated
	// credential's issuer host, default https://login.microsoftonline.com)
	// and VaultSuffix (default .vault.azure.net).
	GraphEndpoint, ARMEndpoint, AuthorityHost, VaultSuffix string
	// GroupID is the group holding the least-privilege roles on the
	// publisher's shared resources.
	GroupID string
	// NotificationSecret is the sig the notification endpoint requires.
	NotificationSecret string
	// BootstrapSecret authenticates the registration endpoint
	// (Authorization: Bootstrap SECRET), kept in the publisher's vault.
	// Optional: when it is empty the registration endpoint refuses every
	// call (503) and only the notification path registers.
	BootstrapSecret string
	// Subscriptions are the publisher's subscriptions, searched for a
	// marketplace offer's definition (by plan.product).
	Subscriptions []string
	// State keeps the installations; required.
	State Store
	// SecretLifetime, RotateBefore and Grace govern client secrets.
	SecretLifetime, RotateBefore, Grace time.Duration
	// GroupAttempts and GroupBackoff govern retries of the group add
	// (default 5 attempts, 500 ms doubling).
	GroupAttempts int
	GroupBackoff  time.Duration
	// SecretName and ConfigName are the customer vault's secrets.
	SecretName, ConfigName string
	// IssuerURL is the broker's OpenID Connect issuer: an https URL at
	// which this broker's Handler is reachable (the discovery document at
	// IssuerURL/.well-known/openid-configuration). Signer signs its
	// assertions (a VaultSigner: a Key Vault key, used through sign).
	// Both are needed for the federated mode; without them a federated
	// registration fails with ErrNoIssuer.
	IssuerURL string
	Signer    Signer
	// AssertionLifetime is how long the broker's assertions are valid
	// (default DefaultAssertionLifetime).
	AssertionLifetime time.Duration
	// InstallationIdentity names the user-assigned identity of the
	// managed resource group that the installed software runs as (its
	// deployment spec creates it); the exchange accepts that identity's
	// tokens. Empty: the managed application's system-assigned identity.
	// It applies to definitions with a registration section; an Offer
	// names its own.
	InstallationIdentity string
	// Offers are the publisher's packages as Azure runs them: a
	// definition with a mainTemplate and no registration section, whose
	// installations the broker registers from the lifecycle notification
	// alone. The key is the marketplace plan's product, or a service
	// catalog definition's resource id.
	Offers map[string]Offer
	Logger *slog.Logger
	Now    func() time.Time
}

// Offer says how the broker registers the installations of one package
// (a definition carrying mainTemplate, with no registration section). On
// PUT/Succeeded the broker reads the application (GET, as one of the
// definition's authorized principals): its managed resource group, and
// the vault its package made there from the output OutputVault; it
// writes the credential as DeliveryIdentity.
type Offer struct {
	// CredentialMode is ModeSecret or ModeFederated.
	CredentialMode string
	// DeliveryIdentity names the user-assigned identity of the managed
	// resource group that the package makes Key Vault Secrets Officer on
	// its vault; the broker asks listTokens for its Key Vault token.
	// Empty: the application's system-assigned identity (which a package
	// cannot grant a role, so only for definitions that grant it
	// otherwise).
	DeliveryIdentity string
	// InstallationIdentity (federated mode) names the user-assigned
	// identity of the managed resource group that the installed software
	// runs as; the exchange accepts its tokens. Empty: the application's
	// system-assigned identity.
	InstallationIdentity string
}

// OutputVault is the output of an Offer's package that names the vault
// the broker delivers into: a vault's resource id, which must lie in the
// installation's managed resource group.
const OutputVault = "vaultResourceId"

// Broker is the publisher's broker. It is safe for concurrent use;
// the work on one installation is serialized.
type Broker struct {
	cfg   Config
	log   *slog.Logger
	graph *azclient.Graph
	graw  *rest
	arm   *rest
	// iss is the broker's issuer (nil without Config.IssuerURL), remote
	// the customer tenants' keys.
	iss    *issuer
	remote *remoteKeys

	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

// Errors, for errors.Is.
var (
	// ErrNoRegistration: the definition has no registration section, so
	// there is nothing to register.
	ErrNoRegistration = errors.New("the application's definition has no registration section")
	// errAwaitCall: the installation's identity is in its managed group,
	// which only the registration call names; the notification leaves the
	// registration to the call (which the cloud sends after it, in order).
	errAwaitCall = errors.New("the managed resource group is not known until the registration call names it")
	// ErrGroup: the service principal could not be added to the group.
	ErrGroup = errors.New("adding the installation's service principal to the group failed")
)

// New checks cfg and returns a Broker.
func New(cfg Config) (*Broker, error) {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&cfg.GraphEndpoint, azclient.GraphEndpoint)
	def(&cfg.ARMEndpoint, DefaultARMEndpoint)
	def(&cfg.AuthorityHost, DefaultAuthorityHost)
	def(&cfg.VaultSuffix, DefaultVaultSuffix)
	def(&cfg.SecretName, DefaultSecretName)
	def(&cfg.ConfigName, DefaultConfigName)
	cfg.AuthorityHost = strings.TrimRight(cfg.AuthorityHost, "/")
	if cfg.SecretLifetime <= 0 {
		cfg.SecretLifetime = DefaultSecretLifetime
	}
	if cfg.RotateBefore <= 0 {
		cfg.RotateBefore = DefaultRotateBefore
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.GroupAttempts <= 0 {
		cfg.GroupAttempts = 5
	}
	if cfg.GroupBackoff <= 0 {
		cfg.GroupBackoff = 500 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.TenantID == "":
		return nil, errors.New("publisher broker: the publisher tenant is not configured")
	case cfg.Credential == nil:
		return nil, errors.New("publisher broker: the broker's credential is not configured")
	case cfg.GroupID == "":
		return nil, errors.New("publisher broker: the group of the shared resources is not configured")
	case cfg.NotificationSecret == "":
		return nil, errors.New("publisher broker: the notification secret (sig) is not configured")
	case cfg.State == nil:
		return nil, errors.New("publisher broker: the state store is not configured")
	case cfg.RotateBefore >= cfg.SecretLifetime:
		return nil, errors.New("publisher broker: rotation must start before a secret expires (RotateBefore < SecretLifetime)")
	case cfg.Grace >= cfg.RotateBefore:
		return nil, errors.New("publisher broker: the grace period must end before the old secret expires (Grace < RotateBefore)")
	}
	for key, o := range cfg.Offers {
		switch {
		case key == "":
			return nil, errors.New("publisher broker: an offer has no product or definition id")
		case o.CredentialMode != ModeSecret && o.CredentialMode != ModeFederated:
			return nil, fmt.Errorf("publisher broker: offer %s: credential mode %q is neither %s nor %s", key, o.CredentialMode, ModeSecret, ModeFederated)
		case o.CredentialMode == ModeFederated && cfg.IssuerURL == "":
			return nil, fmt.Errorf("publisher broker: offer %s: the federated mode needs the broker's issuer", key)
		}
	}
	var iss *issuer
	switch {
	case cfg.IssuerURL == "" && cfg.Signer == nil:
	case cfg.IssuerURL == "" || cfg.Signer == nil:
		return nil, errors.New("publisher broker: the issuer needs both its URL and its signer (a Key Vault key)")
	default:
		u, err := checkIssuerURL(cfg.IssuerURL)
		if err != nil {
			return nil, fmt.Errorf("publisher broker: %w", err)
		}
		if cfg.AssertionLifetime <= 0 {
			cfg.AssertionLifetime = DefaultAssertionLifetime
		}
		iss = &issuer{url: cfg.IssuerURL, path: strings.TrimRight(u.EscapedPath(), "/"), signer: cfg.Signer, lifetime: cfg.AssertionLifetime, now: cfg.Now}
	}
	opts := cfg.ClientOptions
	g, err := azclient.NewGraph(cfg.GraphEndpoint, cfg.Credential, &opts)
	if err != nil {
		return nil, err
	}
	return &Broker{cfg: cfg, log: cfg.Logger.With("component", "broker.publisher"), graph: g,
		graw:   newREST(cfg.GraphEndpoint, cfg.Credential, azclient.GraphScope, opts),
		arm:    newREST(cfg.ARMEndpoint, cfg.Credential, strings.TrimRight(DefaultARMEndpoint, "/")+"/.default", opts),
		iss:    iss,
		remote: newRemoteKeys(opts.Transport, cfg.Now),
		locks:  map[string]*sync.Mutex{}}, nil
}

// NormalizeID is the key of an application: lower-cased, with a leading "/".
func NormalizeID(appID string) string {
	id := strings.ToLower(strings.TrimSpace(appID))
	if !strings.HasPrefix(id, "/") {
		id = "/" + id
	}
	return strings.TrimRight(id, "/")
}

// UniqueSuffix is the cloud's {uniqueSuffix} placeholder for an
// application: 12 hex digits of SHA-256 of its lower-cased id.
func UniqueSuffix(appID string) string {
	sum := sha256.Sum256([]byte(NormalizeID(appID)))
	return hex.EncodeToString(sum[:])[:12]
}

func (b *Broker) lock(key string) func() {
	b.mu.Lock()
	l, ok := b.locks[key]
	if !ok {
		l = &sync.Mutex{}
		b.locks[key] = l
	}
	b.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Installation returns the record of an application, or nil.
func (b *Broker) Installation(ctx context.Context, appID string) (*Installation, error) {
	return b.cfg.State.Get(ctx, NormalizeID(appID))
}

// Installations lists every record.
func (b *Broker) Installations(ctx context.Context) ([]*Installation, error) {
	return b.cfg.State.List(ctx)
}

// Ref names where an installation's definition is.
type Ref struct {
	ApplicationID string
	DefinitionID  string // service catalog
	Product       string // marketplace plan.product
	// CustomerTenantID and IdentityObjectID, when both are set (the
	// registration call names them), are the managed application's
	// system-assigned identity; otherwise a listTokens token tells them.
	CustomerTenantID, IdentityObjectID string
	// ManagedResourceGroupID, named by the registration call.
	ManagedResourceGroupID string
}

func (b *Broker) save(ctx context.Context, in *Installation) error {
	in.UpdatedAt = b.cfg.Now().UTC()
	if err := b.cfg.State.Put(ctx, in); err != nil {
		return fmt.Errorf("save the installation's state: %w", err)
	}
	return nil
}

// Register registers the installation (see the package doc). It is
// idempotent: a registered installation is returned as it is, and a
// partial one resumes at the step that failed.
func (b *Broker) Register(ctx context.Context, ref Ref) (*Installation, error) {
	key := NormalizeID(ref.ApplicationID)
	defer b.lock(key)()
	return b.register(ctx, key, ref)
}

func (b *Broker) register(ctx context.Context, key string, ref Ref) (*Installation, error) {
	in, err := b.cfg.State.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if in == nil || in.Status == "deleted" {
		prev := in
		in = &Installation{Key: key, ApplicationID: ref.ApplicationID, Status: "registering"}
		if prev != nil {
			in.LastEventTime = prev.LastEventTime
		}
	}
	if in.Status == "registered" {
		return in, nil
	}
	in.Status = "registering"
	log := b.log.With("application", in.ApplicationID)
	if ref.DefinitionID != "" {
		in.DefinitionID = ref.DefinitionID
	}

	// 1. The registration section of the definition, or the broker's
	// configuration of the offer.
	if in.CredentialMode == "" {
		reg, defID, offer, err := b.registrationOf(ctx, in.DefinitionID, ref.Product)
		if err != nil {
			return nil, err
		}
		in.Offer = offer
		switch reg.CredentialMode {
		case ModeSecret, ModeFederated:
		default:
			return nil, fmt.Errorf("%w: unknown credentialMode %q", ErrNoRegistration, reg.CredentialMode)
		}
		if offer == "" && reg.CredentialMode == ModeSecret && reg.Vault == "" { // an offer's vault is its package's output
			return nil, fmt.Errorf("%w: the secret mode needs a vault", ErrNoRegistration)
		}
		if reg.CredentialMode == ModeFederated && b.iss == nil {
			return nil, ErrNoIssuer
		}
		in.DefinitionID, in.CredentialMode = defID, reg.CredentialMode
		in.Vault = strings.ReplaceAll(reg.Vault, "{uniqueSuffix}", UniqueSuffix(key))
		if err := b.save(ctx, in); err != nil {
			return nil, err
		}
	}
	// 1b. An offer's installation: where it is, read from the application.
	if in.Offer != "" && in.ManagedResourceGroupID == "" {
		if err := b.locate(ctx, in); err != nil {
			return nil, err
		}
		if err := b.save(ctx, in); err != nil {
			return nil, err
		}
	}
	// 2. The managed application's identity, from a token of it.
	if in.IdentityObjectID == "" && ref.CustomerTenantID != "" && ref.IdentityObjectID != "" {
		in.CustomerTenantID, in.IdentityObjectID = ref.CustomerTenantID, ref.IdentityObjectID
		if err := b.save(ctx, in); err != nil {
			return nil, err
		}
	}
	if in.Offer != "" && in.CustomerTenantID == "" {
		// The customer's tenant, from a token of the delivery identity.
		tok, err := b.arm.listToken(ctx, in.ApplicationID, DefaultARMEndpoint+"/", in.DeliveryIdentityID)
		if err != nil {
			return nil, fmt.Errorf("listTokens on the application: %w", err)
		}
		claims, err := azclient.UnverifiedClaims(tok.Token)
		if err != nil {
			return nil, fmt.Errorf("listTokens: %w", err)
		}
		tid, _ := claims["tid"].(string)
		if tid == "" {
			return nil, errors.New("listTokens: the token names no tenant (tid)")
		}
		in.CustomerTenantID = tid
		if err := b.save(ctx, in); err != nil {
			return nil, err
		}
	}
	if in.Offer == "" && in.IdentityObjectID == "" {
		tok, err := b.arm.listToken(ctx, in.ApplicationID, DefaultARMEndpoint+"/", "")
		if err != nil {
			return nil, fmt.Errorf("listTokens on the application: %w", err)
		}
		claims, err := azclient.UnverifiedClaims(tok.Token)
		if err != nil {
			return nil, fmt.Errorf("listTokens: %w", err)
		}
		tid, _ := claims["tid"].(string)
		oid, _ := claims["oid"].(string)
		if tid == "" || oid == "" {
			return nil, errors.New("listTokens: the token names no tenant (tid) or object (oid)")
		}
		in.CustomerTenantID, in.IdentityObjectID = tid, oid
		if err := b.save(ctx, in); err != nil {
			return nil, err
		}
	}
	if in.ManagedResourceGroupID == "" && ref.ManagedResourceGroupID != "" {
		if !sameSubscriptionGroup(in.ApplicationID, ref.ManagedResourceGroupID) {
			return nil, fmt.Errorf("%w: managedResourceGroupId %q is not a resource group of the application's subscription", ErrNoRegistration, ref.ManagedResourceGroupID)
		}
		in.ManagedResourceGroupID = ref.ManagedResourceGroupID
		if err := b.save(ctx, in); err != nil {
			return nil, err
		}
	}
	// 2b. In federated mode, the identity the installed software runs
	// as, when it is a user-assigned identity of the managed group.
	if name := b.installationIdentity(in); in.CredentialMode == ModeFederated && name != "" && in.WorkloadObjectID == "" {
		if in.ManagedResourceGroupID == "" {
			return nil, errAwaitCall
		}
		oid, err := b.arm.installationIdentity(ctx, in.ManagedResourceGroupID, name)
		if err != nil {
			return nil, fmt.Errorf("the installation's identity %s: %w", name, err)
		}
		in.WorkloadObjectID = oid
		if err := b.save(ctx, in); err != nil {
			return nil, err
		}
	}
	// 3. The per-installation application, found by its name if an
	// earlier attempt created it but did not record it.
	if in.AppObjectID == "" {
		in.DisplayName = displayName(in.ApplicationID)
		apps, err := b.graph.ListApplications(ctx, "displayName eq "+azclient.ODataString(in.DisplayName))
		if err != nil {
			return nil, fmt.Errorf("look for the installation's application: %w", err)
		}
		var app *azclient.Application
		if len(apps) > 0 {
			app = &apps[0]
		} else if app, err = b.graph.CreateApplication(ctx, azclient.Application{DisplayName: in.DisplayName,
			Description:    "Managed application " + in.ApplicationID + " (tenant " + in.CustomerTenantID + ")",
			SignInAudience: "AzureADMyOrg"}); err != nil {
			return nil, fmt.Errorf("create the installation's application: %w", err)
		}
		in.AppObjectID, in.ClientID = app.ID, app.AppID
		if err := b.save(ctx, in); err != nil {
			return nil, err
		}
		log.Info("created the installation's application", "appId", in.ClientID, "objectId", in.AppObjectID)
	}
	// 4. Its service principal.
	if in.SPObjectID == "" {
		sp, err := b.graph.GetServicePrincipal(ctx, in.ClientID)
		if isNotFound(err) {
			sp, err = b.graph.CreateServicePrincipal(ctx, in.ClientID)
		}
		if err != nil {
			return nil, fmt.Errorf("create the installation's service principal: %w", err)
		}
		in.SPObjectID = sp.ID
		if err := b.save(ctx, in); err != nil {
			return nil, err
		}
	}
	// 5. The group of the shared resources.
	if !in.InGroup {
		if err := b.addToGroup(ctx, in.SPObjectID); err != nil {
			log.Error("PUBLISHER BROKER: could not add the installation's service principal to the shared-resources group; the notification will be retried",
				"servicePrincipal", in.SPObjectID, "group", b.cfg.GroupID, "error", err.Error())
			return nil, err
		}
		in.InGroup, in.GroupID = true, b.cfg.GroupID
		if err := b.save(ctx, in); err != nil {
			return nil, err
		}
	}
	// 6. The credential.
	switch in.CredentialMode {
	case ModeFederated:
		if in.FederatedCredID == "" {
			id, err := b.federate(ctx, in)
			if err != nil {
				return nil, err
			}
			in.FederatedCredID = id
			if err := b.save(ctx, in); err != nil {
				return nil, err
			}
		}
	case ModeSecret:
		if in.current() == nil {
			if err := b.issueSecret(ctx, in); err != nil {
				return nil, err
			}
		}
	}
	// 7. The non-secret configuration, for the application to find its
	// publisher-side identity.
	if !in.ConfigDelivered && in.Vault != "" {
		if err := b.writeConfig(ctx, in); err != nil {
			return nil, err
		}
		in.ConfigDelivered = true
	}
	in.Status, in.RegisteredAt = "registered", b.cfg.Now().UTC()
	if err := b.save(ctx, in); err != nil {
		return nil, err
	}
	log.Info("registered the installation", "mode", in.CredentialMode, "appId", in.ClientID, "customerTenant", in.CustomerTenantID)
	return in, nil
}

// sameSubscriptionGroup reports whether group is a resource group id in
// the subscription of the application appID.
func sameSubscriptionGroup(appID, group string) bool {
	a := strings.Split(strings.TrimPrefix(NormalizeID(appID), "/"), "/")
	g := strings.Split(strings.TrimPrefix(NormalizeID(group), "/"), "/")
	return len(g) == 4 && g[0] == "subscriptions" && g[2] == "resourcegroups" && g[3] != "" && len(a) > 2 && a[1] == g[1]
}

// displayName names the per-installation application after the
// installation: its name and unique suffix.
func displayName(appID string) string {
	name := appID[strings.LastIndex(appID, "/")+1:]
	return "managedapp-" + name + "-" + UniqueSuffix(appID)
}

// registrationOf finds how to register an installation: the registration
// section of its definition, or else the Offer configured for the
// definition (by id) or the marketplace product, whose key it answers.
func (b *Broker) registrationOf(ctx context.Context, defID, product string) (*registrationSpec, string, string, error) {
	var d *definition
	var err error
	switch {
	case defID != "":
		d, err = b.arm.getDefinition(ctx, defID)
	case product != "":
		d, err = b.arm.findDefinition(ctx, b.cfg.Subscriptions, product)
	default:
		return nil, "", "", fmt.Errorf("%w: the notification names no definition", ErrNoRegistration)
	}
	if err != nil {
		return nil, "", "", fmt.Errorf("read the application definition: %w", err)
	}
	if d == nil {
		return nil, "", "", ErrNoRegistration
	}
	if r := d.registration(); r != nil {
		return r, d.ID, "", nil
	}
	key, o, ok := b.offerOf(d.ID, product)
	if !ok {
		return nil, "", "", ErrNoRegistration
	}
	return &registrationSpec{CredentialMode: o.CredentialMode}, d.ID, key, nil
}

// offerOf is the Offer configured for a definition id or a product.
func (b *Broker) offerOf(defID, product string) (string, Offer, bool) {
	for key, o := range b.cfg.Offers {
		if (defID != "" && NormalizeID(key) == NormalizeID(defID)) || (product != "" && strings.EqualFold(key, product)) {
			return key, o, true
		}
	}
	return "", Offer{}, false
}

// offer is the configuration of an offer's installation.
func (b *Broker) offer(in *Installation) Offer {
	return b.cfg.Offers[in.Offer]
}

// installationIdentity names the user-assigned identity the installed
// software runs as, or "" for the application's system-assigned one.
func (b *Broker) installationIdentity(in *Installation) string {
	if in.Offer != "" {
		return b.offer(in).InstallationIdentity
	}
	return b.cfg.InstallationIdentity
}

// locate reads an offer's installation from its application (a GET as
// one of the definition's authorized principals): the managed resource
// group, which must be a group of the application's subscription, the
// vault the package names in its output OutputVault, which must lie in
// that group (a customer chooses the package's parameters, never where
// the broker writes a credential), the delivery identity's resource id,
// and the system-assigned identity when there is one.
func (b *Broker) locate(ctx context.Context, in *Installation) error {
	app, err := b.arm.getApplication(ctx, in.ApplicationID)
	if err != nil {
		return fmt.Errorf("read the application: %w", err)
	}
	if app.Properties.ProvisioningState != "Succeeded" {
		return fmt.Errorf("the application is %s, not Succeeded", app.Properties.ProvisioningState)
	}
	mrg := app.Properties.ManagedResourceGroupID
	if !sameSubscriptionGroup(in.ApplicationID, mrg) {
		return fmt.Errorf("the application's managedResourceGroupId %q is not a resource group of its subscription", mrg)
	}
	vaultID, _ := app.Properties.Outputs[OutputVault].Value.(string)
	prefix := NormalizeID(mrg) + "/providers/microsoft.keyvault/vaults/"
	name, ok := strings.CutPrefix(NormalizeID(vaultID), prefix)
	if !ok || name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("the package's output %s %q is not a vault of the managed resource group %s", OutputVault, vaultID, mrg)
	}
	in.ManagedResourceGroupID = mrg
	in.Vault = vaultID[len(vaultID)-len(name):]
	if d := b.offer(in).DeliveryIdentity; d != "" {
		in.DeliveryIdentityID = mrg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + d
	}
	if app.Identity != nil {
		in.IdentityObjectID = app.Identity.PrincipalID
	}
	return nil
}

// addToGroup adds the member, retrying with backoff; a member already
// there is success.
func (b *Broker) addToGroup(ctx context.Context, member string) error {
	wait := b.cfg.GroupBackoff
	var err error
	for attempt := 1; attempt <= b.cfg.GroupAttempts; attempt++ {
		if err = b.graph.AddGroupMember(ctx, b.cfg.GroupID, member); err == nil {
			return nil
		}
		if in, lerr := b.graw.groupMember(ctx, b.cfg.GroupID, member); lerr == nil && in {
			return nil
		}
		b.log.Warn("adding to the shared-resources group failed; retrying", "attempt", attempt, "group", b.cfg.GroupID, "error", err.Error())
		if attempt == b.cfg.GroupAttempts {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrGroup, ctx.Err())
		case <-time.After(wait):
		}
		wait *= 2
	}
	return fmt.Errorf("%w after %d attempts: %w", ErrGroup, b.cfg.GroupAttempts, err)
}

// federate adds (or finds) the federated credential trusting the
// broker's issuer and the installation's subject: a non-Entra issuer,
// which Entra allows for any application (Entra issuers only for the
// application's own tenant: AADSTS700236). A credential of that name
// that trusts anything else (an earlier design) is replaced.
func (b *Broker) federate(ctx context.Context, in *Installation) (string, error) {
	if b.iss == nil {
		return "", ErrNoIssuer
	}
	issuer, subject := b.iss.url, InstallationSubject(in.ApplicationID)
	fics, err := b.graph.ListFederatedCredentials(ctx, in.AppObjectID)
	if err != nil {
		return "", fmt.Errorf("list the federated credentials: %w", err)
	}
	for _, f := range fics {
		if f.Name != FederatedCredentialName {
			continue
		}
		if f.Issuer == issuer && f.Subject == subject {
			return f.ID, nil
		}
		if err := b.removeFederatedCredential(ctx, in.AppObjectID, f.ID); err != nil {
			return "", err
		}
	}
	f, err := b.graph.AddFederatedCredential(ctx, in.AppObjectID, azclient.FederatedCredential{Name: FederatedCredentialName,
		Issuer: issuer, Subject: subject, Audiences: []string{TokenExchangeAudience},
		Description: "The managed application " + in.ApplicationID + ", through the publisher's broker"})
	if err != nil {
		return "", fmt.Errorf("add the federated credential: %w", err)
	}
	return f.ID, nil
}

func (b *Broker) removeFederatedCredential(ctx context.Context, appObjectID, id string) error {
	err := b.graw.do(ctx, "DELETE", "/applications/"+url.PathEscape(appObjectID)+"/federatedIdentityCredentials/"+url.PathEscape(id), nil, nil, nil)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("remove the federated credential: %w", err)
	}
	return nil
}

// vault returns a client of the managed application's vault, with a
// token from listTokens of the application's identity or, for an offer,
// of its delivery identity.
func (b *Broker) vault(ctx context.Context, in *Installation) (*azsecrets.Client, error) {
	tok, err := b.arm.listToken(ctx, in.ApplicationID, vaultAudience, in.DeliveryIdentityID)
	if err != nil {
		return nil, fmt.Errorf("listTokens for the vault: %w", err)
	}
	opts := b.cfg.ClientOptions
	return azsecrets.NewClient("https://"+in.Vault+b.cfg.VaultSuffix, staticToken(tok), &azsecrets.ClientOptions{ClientOptions: opts})
}

// issueSecret adds a client secret and writes it into the customer's
// vault. A secret added by an earlier attempt that never reached the vault
// is removed first (its text is gone: the broker keeps none).
func (b *Broker) issueSecret(ctx context.Context, in *Installation) error {
	kept := in.Passwords[:0]
	for _, p := range in.Passwords {
		if !p.Delivered {
			if err := b.graph.RemovePassword(ctx, in.AppObjectID, p.KeyID); err != nil && !isNotFound(err) {
				return fmt.Errorf("remove an undelivered secret: %w", err)
			}
			continue
		}
		kept = append(kept, p)
	}
	in.Passwords = kept
	now := b.cfg.Now().UTC()
	exp := now.Add(b.cfg.SecretLifetime)
	pc, err := b.graph.AddPassword(ctx, in.AppObjectID, azclient.PasswordCredential{DisplayName: "managed application " + now.Format("2006-01-02"),
		EndDateTime: exp})
	if err != nil {
		return fmt.Errorf("add a client secret: %w", err)
	}
	in.Passwords = append(in.Passwords, Password{KeyID: pc.KeyID, Expires: exp})
	if err := b.save(ctx, in); err != nil {
		return err
	}
	kv, err := b.vault(ctx, in)
	if err != nil {
		return err
	}
	value, ct := pc.SecretText, "application/vnd.tenantbridge.client-secret"
	tags := map[string]*string{"clientId": &in.ClientID, "tenantId": &b.cfg.TenantID, "keyId": &pc.KeyID}
	resp, err := kv.SetSecret(ctx, b.cfg.SecretName, azsecrets.SetSecretParameters{Value: &value, ContentType: &ct, Tags: tags,
		SecretAttributes: &azsecrets.SecretAttributes{Expires: &exp}}, nil)
	if err != nil {
		return fmt.Errorf("write the client secret into the managed application's vault %s: %w", in.Vault, err)
	}
	p := &in.Passwords[len(in.Passwords)-1]
	p.Delivered = true
	if resp.ID != nil {
		p.SecretVersion = resp.ID.Version()
	}
	return b.save(ctx, in)
}

// VaultConfig is the non-secret configuration written to the customer's
// vault (secret ConfigName): what the installed application needs to
// authenticate as its publisher-side identity.
type VaultConfig struct {
	TenantID       string `json:"tenantId"`
	ClientID       string `json:"clientId"`
	CredentialMode string `json:"credentialMode"`
	// SecretName is the vault secret holding the client secret (secret mode).
	SecretName string `json:"secretName,omitempty"`
	Authority  string `json:"authority"`
	// ExchangeEndpoint (federated mode) is the broker's exchange, where
	// the installation trades its managed identity's token for the
	// broker's assertion; Installation is the id to name there.
	ExchangeEndpoint string `json:"exchangeEndpoint,omitempty"`
	Installation     string `json:"installation,omitempty"`
}

func (b *Broker) writeConfig(ctx context.Context, in *Installation) error {
	kv, err := b.vault(ctx, in)
	if err != nil {
		return err
	}
	c := VaultConfig{TenantID: b.cfg.TenantID, ClientID: in.ClientID, CredentialMode: in.CredentialMode, Authority: b.cfg.AuthorityHost}
	switch in.CredentialMode {
	case ModeSecret:
		c.SecretName = b.cfg.SecretName
	case ModeFederated:
		c.ExchangeEndpoint, c.Installation = b.ExchangeURL(), in.ApplicationID
	}
	v, _ := json.Marshal(c)
	value, ct := string(v), "application/json"
	if _, err := kv.SetSecret(ctx, b.cfg.ConfigName, azsecrets.SetSecretParameters{Value: &value, ContentType: &ct}, nil); err != nil {
		return fmt.Errorf("write the configuration into the managed application's vault %s: %w", in.Vault, err)
	}
	return nil
}

// Deprovision removes what the installation's registration created: the
// service principal's group membership, the service principal, the
// application (with its secrets and federated credential), and the secrets
// in the customer's vault when the vault is still there. The record stays
// as a tombstone (status deleted) so that stale events cannot revive it.
func (b *Broker) Deprovision(ctx context.Context, appID string) error {
	key := NormalizeID(appID)
	defer b.lock(key)()
	return b.deprovision(ctx, key)
}

func (b *Broker) deprovision(ctx context.Context, key string) error {
	in, err := b.cfg.State.Get(ctx, key)
	if err != nil || in == nil || in.Status == "deleted" {
		return err
	}
	log := b.log.With("application", in.ApplicationID)
	b.removeVaultSecrets(ctx, in)
	if in.FederatedCredID != "" && in.AppObjectID != "" {
		// First the trust itself: from here on no assertion of the
		// broker signs the installation in (and the exchange refuses it
		// once the record is a tombstone).
		if err := b.removeFederatedCredential(ctx, in.AppObjectID, in.FederatedCredID); err != nil {
			return err
		}
		in.FederatedCredID = ""
		if err := b.save(ctx, in); err != nil {
			return err
		}
	}
	if in.SPObjectID != "" {
		group := in.GroupID
		if group == "" {
			group = b.cfg.GroupID
		}
		if err := b.graw.removeGroupMember(ctx, group, in.SPObjectID); err != nil {
			return fmt.Errorf("remove the service principal from the group: %w", err)
		}
		in.InGroup = false
		if err := b.graph.DeleteServicePrincipal(ctx, in.SPObjectID); err != nil && !isNotFound(err) {
			return fmt.Errorf("delete the service principal: %w", err)
		}
		in.SPObjectID = ""
		if err := b.save(ctx, in); err != nil {
			return err
		}
	}
	if in.AppObjectID == "" && in.DisplayName != "" {
		// Created but perhaps not recorded.
		if apps, err := b.graph.ListApplications(ctx, "displayName eq "+azclient.ODataString(in.DisplayName)); err == nil && len(apps) > 0 {
			in.AppObjectID = apps[0].ID
		}
	}
	if in.AppObjectID != "" {
		if err := b.graph.DeleteApplication(ctx, in.AppObjectID); err != nil && !isNotFound(err) {
			return fmt.Errorf("delete the application: %w", err)
		}
	}
	*in = Installation{Key: in.Key, ApplicationID: in.ApplicationID, DefinitionID: in.DefinitionID, Status: "deleted",
		LastEventTime: in.LastEventTime}
	if err := b.save(ctx, in); err != nil {
		return err
	}
	log.Info("deprovisioned the installation")
	return nil
}

// removeVaultSecrets deletes the broker's secrets from the customer's
// vault, best effort: on deletion the vault goes with the managed
// resource group.
func (b *Broker) removeVaultSecrets(ctx context.Context, in *Installation) {
	if in.Vault == "" {
		return
	}
	kv, err := b.vault(ctx, in)
	if err != nil {
		b.log.Debug("the managed vault is out of reach (gone with the application)", "application", in.ApplicationID, "error", err.Error())
		return
	}
	for _, name := range []string{b.cfg.SecretName, b.cfg.ConfigName} {
		if _, err := kv.DeleteSecret(ctx, name, nil); err != nil && !isNotFound(err) {
			b.log.Debug("delete a secret of the managed vault", "secret", name, "error", err.Error())
		}
	}
}

// RotateResult says what a Rotate pass did.
type RotateResult struct {
	Rotated []string `json:"rotated"` // application ids given a new secret
	Retired []string `json:"retired"` // application ids whose old secret was removed
	Failed  []string `json:"failed"`
}

// Rotate renews every secret-mode installation's client secret that
// expires within RotateBefore: it adds a new secret, writes it into the
// customer's vault (a new version of the same secret), and only then
// schedules the old one for removal after Grace; superseded secrets past
// their grace are removed. Failures are logged and reported, and the pass
// continues with the next installation.
func (b *Broker) Rotate(ctx context.Context) (RotateResult, error) {
	var res RotateResult
	all, err := b.cfg.State.List(ctx)
	if err != nil {
		return res, err
	}
	for _, in := range all {
		if in.Status != "registered" || in.CredentialMode != ModeSecret {
			continue
		}
		rotated, retired, err := b.rotateOne(ctx, in.Key)
		if err != nil {
			b.log.Error("client secret rotation failed", "application", in.ApplicationID, "error", err.Error())
			res.Failed = append(res.Failed, in.ApplicationID)
			continue
		}
		if rotated {
			res.Rotated = append(res.Rotated, in.ApplicationID)
		}
		if retired {
			res.Retired = append(res.Retired, in.ApplicationID)
		}
	}
	if len(res.Failed) > 0 {
		return res, fmt.Errorf("rotation failed for %d installation(s)", len(res.Failed))
	}
	return res, nil
}

func (b *Broker) rotateOne(ctx context.Context, key string) (rotated, retired bool, err error) {
	defer b.lock(key)()
	in, err := b.cfg.State.Get(ctx, key)
	if err != nil || in == nil || in.Status != "registered" {
		return false, false, err
	}
	now := b.cfg.Now().UTC()
	if cur := in.current(); cur == nil || !now.Before(cur.Expires.Add(-b.cfg.RotateBefore)) {
		var oldKey string
		if cur != nil {
			oldKey = cur.KeyID
		}
		if err := b.issueSecret(ctx, in); err != nil {
			return false, false, err
		}
		rotated = true
		b.log.Info("client secret rotated; the new one is in the customer's vault", "application", in.ApplicationID, "retiring", oldKey)
	}
	// Every delivered secret but the current one is superseded (also one
	// whose retirement an interrupted pass did not record).
	cur, changed := in.current(), false
	for i := range in.Passwords {
		if p := &in.Passwords[i]; p != cur && p.Delivered && p.RetireAt.IsZero() {
			p.RetireAt, changed = now.Add(b.cfg.Grace), true
		}
	}
	kept := in.Passwords[:0]
	for _, p := range in.Passwords {
		if !p.RetireAt.IsZero() && !now.Before(p.RetireAt) {
			if err := b.graph.RemovePassword(ctx, in.AppObjectID, p.KeyID); err != nil && !isNotFound(err) {
				return rotated, false, fmt.Errorf("remove the superseded secret: %w", err)
			}
			retired = true
			continue
		}
		kept = append(kept, p)
	}
	in.Passwords = kept
	if retired || changed {
		if err := b.save(ctx, in); err != nil {
			return rotated, retired, err
		}
	}
	return rotated, retired, nil
}

// RunRotation calls Rotate every interval until ctx ends.
func (b *Broker) RunRotation(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := b.Rotate(ctx); err != nil && ctx.Err() == nil {
			b.log.Error("rotation pass", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
