package partner

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is the SHA-1 thumbprint by definition (RFC 7515 §4.1.7)
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/uuid"
)

// TokenExchangeAudience is the audience Entra expects of a federated
// credential's assertion.
const TokenExchangeAudience = "api://AzureADTokenExchange"

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// ClientCredential authenticates the broker's application at the token
// endpoint (a confidential client). tokenURL is the endpoint the request
// goes to, which a signed assertion names as its audience.
type ClientCredential interface {
	apply(ctx context.Context, tokenURL string, form url.Values) error
}

type clientSecret string

func (s clientSecret) apply(_ context.Context, _ string, form url.Values) error {
	form.Set("client_secret", string(s))
	return nil
}

// ClientSecret authenticates with an application secret.
func ClientSecret(secret string) ClientCredential { return clientSecret(secret) }

type assertionFunc func(ctx context.Context, clientID, tokenURL string) (string, error)

type clientAssertion struct {
	clientID string
	get      assertionFunc
}

func (a clientAssertion) apply(ctx context.Context, tokenURL string, form url.Values) error {
	jwt, err := a.get(ctx, a.clientID, tokenURL)
	if err != nil {
		return fmt.Errorf("client assertion: %w", err)
	}
	form.Set("client_assertion_type", assertionType)
	form.Set("client_assertion", jwt)
	return nil
}

// ManagedIdentityAssertion authenticates the application with a token of
// the broker's managed identity for api://AzureADTokenExchange, which a
// federated identity credential on the application trusts (Entra's
// "managed identity as a federated credential of an app"): the broker then
// holds no application secret at all.
func ManagedIdentityAssertion(mi azcore.TokenCredential) ClientCredential {
	return clientAssertion{get: func(ctx context.Context, _, _ string) (string, error) {
		tok, err := mi.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{TokenExchangeAudience + "/.default"}})
		if err != nil {
			return "", err
		}
		return tok.Token, nil
	}}
}

// ClientCertificate authenticates with a JWT assertion signed by key and
// naming cert by its thumbprints (x5t and x5t#S256). key must be an RSA
// private key (Entra accepts RS256 and PS256 assertions).
func ClientCertificate(clientID string, cert *x509.Certificate, key crypto.Signer) (ClientCredential, error) {
	if _, ok := key.Public().(*rsa.PublicKey); !ok {
		return nil, errors.New("client certificate: the private key must be RSA")
	}
	s1 := sha1.Sum(cert.Raw) //nolint:gosec // thumbprint, not a security hash here
	s256 := sha256.Sum256(cert.Raw)
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT",
		"x5t": base64.RawURLEncoding.EncodeToString(s1[:]), "x5t#S256": base64.RawURLEncoding.EncodeToString(s256[:])})
	return clientAssertion{clientID: clientID, get: func(_ context.Context, clientID, tokenURL string) (string, error) {
		now := time.Now()
		claims, _ := json.Marshal(map[string]any{"aud": tokenURL, "iss": clientID, "sub": clientID, "jti": uuid.NewString(),
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()})
		signing := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
		digest := sha256.Sum256([]byte(signing))
		sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			return "", err
		}
		return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
	}}, nil
}

// LoadClientCertificate reads a PEM file holding the certificate and its
// private key (PKCS#1 or PKCS#8), as az and azidentity accept.
func LoadClientCertificate(clientID, file string) (ClientCredential, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	var cert *x509.Certificate
	var key crypto.Signer
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			if cert == nil {
				if cert, err = x509.ParseCertificate(b.Bytes); err != nil {
					return nil, fmt.Errorf("client certificate %s: %w", file, err)
				}
			}
		case "RSA PRIVATE KEY":
			if key, err = x509.ParsePKCS1PrivateKey(b.Bytes); err != nil {
				return nil, fmt.Errorf("client certificate %s: private key: %w", file, err)
			}
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("client certificate %s: private key: %w", file, err)
			}
			switch k := k.(type) {
			case *rsa.PrivateKey:
				key = k
			case *ecdsa.PrivateKey:
				return nil, fmt.Errorf("client certificate %s: the private key must be RSA", file)
			}
		}
	}
	if cert == nil || key == nil {
		return nil, fmt.Errorf("client certificate %s must hold a CERTIFICATE and an RSA private key in PEM", file)
	}
	return ClientCertificate(clientID, cert, key)
}
