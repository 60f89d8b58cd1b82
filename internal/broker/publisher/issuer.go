package publisher

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
)

// The broker is an OpenID Connect issuer of its own (seed 001's sample
// hosts one the same way: discovery and JWKS published, the signing key a
// Key Vault RSA key with key_ops sign). Its assertions are what the
// publisher's federated credentials trust, because Entra refuses another
// tenant's Entra tokens as federated credentials (AADSTS700236; Microsoft
// Q&A 2139753) while any other OpenID Connect issuer with HTTPS discovery
// and RS256 keys is allowed (learn.microsoft.com/entra/workload-id/
// workload-identity-federation-considerations: "only RS256 tokens"; the
// issuer's discovery document and JWKS must be reachable over HTTPS):
//
//	GET  {issuer}/.well-known/openid-configuration   discovery
//	GET  {issuer}/keys                               JWKS (jwks_uri)
//	POST {issuer}/exchange                           S1's token exchange (exchange.go)
//
// An assertion is a JWT {iss: the issuer, sub, aud: api://AzureADTokenExchange,
// iat, nbf, exp, jti} signed RS256 by Key Vault's sign operation: the
// broker computes the SHA-256 digest of the signing input and the vault
// signs it (Keys - Sign: "value: the digest"), so the private key never
// leaves the vault and the broker holds no key material at all.

// Subjects of the broker's assertions. The prefixes keep the two kinds
// apart: the exchange endpoint only ever answers with InstallationSubject.
const (
	// installationSubjectPrefix + the installation's key (its normalized
	// application id) is the subject of S1's assertions.
	installationSubjectPrefix = "installation:"
	// accessSubjectPrefix + the installation's unique suffix is the
	// subject S2's user-assigned identity trusts (a deployment spec can
	// name it as "publisher-access:{uniqueSuffix}").
	accessSubjectPrefix = "publisher-access:"
	// DefaultAssertionLifetime is how long an assertion is valid: long
	// enough for one token request, no longer (Entra only needs it at the
	// exchange).
	DefaultAssertionLifetime = 5 * time.Minute
	// TokenExchangeAppID is the application id of Entra's "AAD Token
	// Exchange Endpoint": the aud of a managed identity's token for
	// api://AzureADTokenExchange (a v2 token names its audience by app id).
	TokenExchangeAppID = "fb60f99c-7a34-4190-8149-302f77469936"
)

// InstallationSubject is the subject of the broker's assertions for an
// installation (S1): the per-installation application's federated
// credential trusts the broker's issuer and exactly this subject. The full
// normalized id, not a hash of it: nobody can install an application
// whose subject another installation's credential trusts.
func InstallationSubject(appID string) string {
	return installationSubjectPrefix + NormalizeID(appID)
}

// AccessSubject is the subject of the broker's own assertions for the
// customer's user-assigned identity in an installation's managed resource
// group (S2). The deployment spec writes it as
// "publisher-access:{uniqueSuffix}" (AccessSubjectTemplate).
func AccessSubject(appID string) string { return accessSubjectPrefix + UniqueSuffix(appID) }

// AccessSubjectTemplate is AccessSubject as a deployment spec writes it.
const AccessSubjectTemplate = accessSubjectPrefix + "{uniqueSuffix}"

// GroupAccessSubject is the subject of the broker's assertions for the
// customer's user-assigned identity when a package's mainTemplate made it
// (examples/publisher-access): "publisher-access:" and the managed
// resource group's id, lower-cased, which the template writes as
// [concat('publisher-access:', toLower(resourceGroup().id))]. A template
// has no SHA-256 to compute AccessSubject; the group's id is unique per
// installation and known to both sides, and its full text (not a hash)
// cannot be made to collide with another installation's.
func GroupAccessSubject(managedGroupID string) string {
	return accessSubjectPrefix + NormalizeID(managedGroupID)
}

// Signer signs the broker's assertions (RS256) with a key it never holds.
type Signer interface {
	// SignDigest signs a SHA-256 digest (RS256) and returns the signature
	// and the key id (kid) that names the key in the JWKS.
	SignDigest(ctx context.Context, digest []byte) (sig []byte, kid string, err error)
	// PublicKeys are the keys to publish, the signing one first.
	PublicKeys() []PublicKey
}

// PublicKey is an RSA public key of the issuer, with its key id.
type PublicKey struct {
	KeyID string
	Key   *rsa.PublicKey
}

// VaultSigner signs with a Key Vault RSA key through Key Vault's sign
// operation (azkeys): the private key is created in the vault and never
// leaves it. It needs the data actions keys/read and keys/sign/action on
// the key (Key Vault Crypto User; Crypto Officer to create it).
type VaultSigner struct {
	c    *azkeys.Client
	name string

	mu      sync.RWMutex
	version string      // the signing version
	keys    []PublicKey // the signing version's key first, then earlier ones still published
}

// VaultSignerOptions configure NewVaultSigner.
type VaultSignerOptions struct {
	// ClientOptions carry the transport.
	ClientOptions policy.ClientOptions
	// Create creates the key (RSA 2048, key_ops sign and verify) when the
	// vault has none of that name.
	Create bool
}

// NewVaultSigner reads the current version of the key name in the vault
// at vaultURL (https://NAME.vault.azure.net), creating it if asked.
func NewVaultSigner(ctx context.Context, vaultURL, name string, cred azcore.TokenCredential, o *VaultSignerOptions) (*VaultSigner, error) {
	if o == nil {
		o = &VaultSignerOptions{}
	}
	c, err := azkeys.NewClient(vaultURL, cred, &azkeys.ClientOptions{ClientOptions: o.ClientOptions})
	if err != nil {
		return nil, err
	}
	s := &VaultSigner{c: c, name: name}
	if err := s.Refresh(ctx); isNotFound(err) && o.Create {
		kty, size := azkeys.KeyTypeRSA, int32(2048)
		sign, verify := azkeys.KeyOperationSign, azkeys.KeyOperationVerify
		if _, err := c.CreateKey(ctx, name, azkeys.CreateKeyParameters{Kty: &kty, KeySize: &size,
			KeyOps: []*azkeys.KeyOperation{&sign, &verify}}, nil); err != nil {
			return nil, fmt.Errorf("create the issuer's key %s in %s: %w", name, vaultURL, err)
		}
		return s, s.Refresh(ctx)
	} else if err != nil {
		return nil, err
	}
	return s, nil
}

// Refresh reads the key's current version. When the key was rotated, the
// new version signs from now on and the previous one stays published (up
// to three versions), so assertions it signed still verify.
func (s *VaultSigner) Refresh(ctx context.Context) error {
	resp, err := s.c.GetKey(ctx, s.name, "", nil)
	if err != nil {
		return fmt.Errorf("read the issuer's key %s: %w", s.name, err)
	}
	k := resp.Key
	if k == nil || k.Kty == nil || k.KID == nil || (*k.Kty != azkeys.KeyTypeRSA && *k.Kty != azkeys.KeyTypeRSAHSM) || len(k.N) == 0 || len(k.E) == 0 {
		return fmt.Errorf("the issuer's key %s is not an RSA key", s.name)
	}
	if len(k.KeyOps) > 0 && !hasOp(k.KeyOps, azkeys.KeyOperationSign) {
		return fmt.Errorf("the issuer's key %s does not allow sign (key_ops)", s.name)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(k.N), E: int(new(big.Int).SetBytes(k.E).Int64())}
	if pub.N.BitLen() < 2048 || pub.E < 3 {
		return fmt.Errorf("the issuer's key %s is too weak (RS256 needs 2048 bits or more)", s.name)
	}
	pk := PublicKey{KeyID: thumbprint(pub), Key: pub}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version = k.KID.Version()
	keys := []PublicKey{pk}
	for _, old := range s.keys {
		if old.KeyID != pk.KeyID && len(keys) < 3 {
			keys = append(keys, old)
		}
	}
	s.keys = keys
	return nil
}

func hasOp(ops []*azkeys.KeyOperation, op azkeys.KeyOperation) bool {
	for _, o := range ops {
		if o != nil && strings.EqualFold(string(*o), string(op)) {
			return true
		}
	}
	return false
}

// SignDigest implements Signer: Key Vault signs (RS256) with the current
// version, and the signature is checked against its public key before it
// is used.
func (s *VaultSigner) SignDigest(ctx context.Context, digest []byte) ([]byte, string, error) {
	s.mu.RLock()
	version, key := s.version, s.keys[0]
	s.mu.RUnlock()
	alg := azkeys.SignatureAlgorithmRS256
	resp, err := s.c.Sign(ctx, s.name, version, azkeys.SignParameters{Algorithm: &alg, Value: digest}, nil)
	if err != nil {
		return nil, "", fmt.Errorf("sign with the vault key %s: %w", s.name, err)
	}
	if err := rsa.VerifyPKCS1v15(key.Key, crypto.SHA256, digest, resp.Result); err != nil {
		return nil, "", fmt.Errorf("the vault's signature with %s does not verify: %w", s.name, err)
	}
	return resp.Result, key.KeyID, nil
}

// PublicKeys implements Signer.
func (s *VaultSigner) PublicKeys() []PublicKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]PublicKey(nil), s.keys...)
}

// thumbprint is the RFC 7638 JWK thumbprint of an RSA key (base64url of
// SHA-256 over {"e","kty","n"}): a key id that names the key itself.
func thumbprint(pub *rsa.PublicKey) string {
	canon := `{"e":"` + b64(big.NewInt(int64(pub.E)).Bytes()) + `","kty":"RSA","n":"` + b64(pub.N.Bytes()) + `"}`
	sum := sha256.Sum256([]byte(canon))
	return b64(sum[:])
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// issuer is the broker's OpenID Connect issuer.
type issuer struct {
	url      string // the issuer identifier, exactly as in iss
	path     string // its path ("" for the root)
	signer   Signer
	lifetime time.Duration
	now      func() time.Time
}

// checkIssuerURL: an https URL without query or fragment (OpenID Connect
// Discovery 1.0 §2; Entra fetches {issuer}/.well-known/openid-configuration).
func checkIssuerURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.HasSuffix(s, "/") {
		return nil, fmt.Errorf("the issuer URL %q is not an https URL without a trailing slash, query or fragment", s)
	}
	return u, nil
}

// Endpoints of the issuer, under its path.
const (
	discoveryPath = "/.well-known/openid-configuration"
	jwksPath      = "/keys"
	exchangePath  = "/exchange"
)

// IssuerURL is the broker's issuer ("" when it has none).
func (b *Broker) IssuerURL() string {
	if b.iss == nil {
		return ""
	}
	return b.iss.url
}

// ExchangeURL is the broker's exchange endpoint ("" without an issuer).
func (b *Broker) ExchangeURL() string {
	if b.iss == nil {
		return ""
	}
	return b.iss.url + exchangePath
}

// assertion mints an assertion for subject, audience api://AzureADTokenExchange.
func (is *issuer) assertion(ctx context.Context, subject string) (string, time.Time, error) {
	now := is.now().UTC().Truncate(time.Second)
	exp := now.Add(is.lifetime)
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", time.Time{}, err
	}
	claims, err := json.Marshal(map[string]any{"iss": is.url, "sub": subject, "aud": TokenExchangeAudience,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": exp.Unix(), "jti": hex.EncodeToString(jti[:])})
	if err != nil {
		return "", time.Time{}, err
	}
	// Twice at most: when the key turns over between reading its id and
	// signing, the header is written again for the key that signed.
	for range 2 {
		keys := is.signer.PublicKeys()
		if len(keys) == 0 {
			return "", time.Time{}, errors.New("the issuer has no key")
		}
		head, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": keys[0].KeyID})
		if err != nil {
			return "", time.Time{}, err
		}
		input := b64(head) + "." + b64(claims)
		digest := sha256.Sum256([]byte(input))
		sig, kid, err := is.signer.SignDigest(ctx, digest[:])
		if err != nil {
			return "", time.Time{}, err
		}
		if kid == keys[0].KeyID {
			return input + "." + b64(sig), exp, nil
		}
	}
	return "", time.Time{}, errors.New("the issuer's key changed while signing")
}

// AccessAssertion is the broker's own assertion for the customer's
// user-assigned identity of an installation (S2): the identity's federated
// credential trusts the broker's issuer and AccessSubject(appID). Present
// it as the client assertion at the customer tenant's token endpoint
// (azidentity.ClientAssertionCredential).
func (b *Broker) AccessAssertion(ctx context.Context, appID string) (string, error) {
	if b.iss == nil {
		return "", ErrNoIssuer
	}
	a, _, err := b.iss.assertion(ctx, AccessSubject(appID))
	return a, err
}

// GroupAccessAssertion is AccessAssertion for an identity a package's
// mainTemplate made in the managed resource group managedGroupID: its
// subject is GroupAccessSubject(managedGroupID).
func (b *Broker) GroupAccessAssertion(ctx context.Context, managedGroupID string) (string, error) {
	if b.iss == nil {
		return "", ErrNoIssuer
	}
	a, _, err := b.iss.assertion(ctx, GroupAccessSubject(managedGroupID))
	return a, err
}

// ErrNoIssuer: the broker has no issuer (Config.IssuerURL and Signer).
var ErrNoIssuer = errors.New("the broker has no OpenID issuer configured (IssuerURL and Signer): secretless federation needs one")

// serveDiscovery answers the discovery document.
func (is *issuer) serveDiscovery(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer":                                is.url,
		"jwks_uri":                              is.url + jwksPath,
		"token_endpoint":                        is.url + exchangePath,
		"grant_types_supported":                 []string{grantTokenExchange},
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"claims_supported":                      []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti"},
	})
}

// serveJWKS answers the JWK Set: the signing key and the earlier versions
// still published.
func (is *issuer) serveJWKS(w http.ResponseWriter) {
	keys := []map[string]string{}
	for _, k := range is.signer.PublicKeys() {
		keys = append(keys, map[string]string{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": k.KeyID,
			"n": b64(k.Key.N.Bytes()), "e": b64(big.NewInt(int64(k.Key.E)).Bytes())})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
}

// serveIssuer serves the issuer's endpoints; it reports false for any
// other path.
func (b *Broker) serveIssuer(w http.ResponseWriter, r *http.Request) bool {
	if b.iss == nil || !strings.HasPrefix(r.URL.Path, b.iss.path+"/") {
		return false
	}
	switch rest := strings.TrimPrefix(r.URL.Path, b.iss.path); rest {
	case discoveryPath, jwksPath:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "GET only")
			return true
		}
		if rest == discoveryPath {
			b.iss.serveDiscovery(w)
		} else {
			b.iss.serveJWKS(w)
		}
	case exchangePath:
		b.serveExchange(w, r)
	default:
		return false
	}
	return true
}
