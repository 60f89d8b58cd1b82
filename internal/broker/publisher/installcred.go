package publisher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// The installed application's side of S1's secretless mode: with its
// managed identity, it signs in as its per-installation application in the
// publisher's tenant. No secret is involved anywhere: the identity's token
// (customer tenant, audience api://AzureADTokenExchange) goes to the
// broker's exchange, the broker's assertion goes to the publisher tenant's
// token endpoint as the client assertion (azidentity's
// ClientAssertionCredential), whose federated credential trusts the broker.

// InstallationCredentialOptions configure InstallationCredential.
type InstallationCredentialOptions struct {
	// ClientOptions reach the publisher tenant's token service.
	ClientOptions policy.ClientOptions
	// ExchangeClient reaches the broker's exchange endpoint (default: a
	// client with the system's roots).
	ExchangeClient *http.Client
}

// InstallationCredential returns the credential of the installation's
// per-installation application, from the configuration the broker wrote
// into the managed vault (federated mode) and the installation's managed
// identity.
func InstallationCredential(cfg VaultConfig, identity azcore.TokenCredential, o *InstallationCredentialOptions) (*azidentity.ClientAssertionCredential, error) {
	if o == nil {
		o = &InstallationCredentialOptions{}
	}
	if cfg.CredentialMode != ModeFederated || cfg.ExchangeEndpoint == "" || cfg.Installation == "" {
		return nil, errors.New("the configuration is not the federated mode's (no exchange endpoint or installation)")
	}
	hc := o.ExchangeClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	opts := o.ClientOptions
	if cfg.Authority != "" && opts.Cloud.ActiveDirectoryAuthorityHost == "" {
		opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: cfg.Authority, Services: opts.Cloud.Services}
	}
	get := func(ctx context.Context) (string, error) {
		tok, err := identity.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{TokenExchangeAudience + "/.default"}})
		if err != nil {
			return "", fmt.Errorf("the installation's managed identity: %w", err)
		}
		return ExchangeToken(ctx, hc, cfg.ExchangeEndpoint, cfg.Installation, tok.Token)
	}
	return azidentity.NewClientAssertionCredential(cfg.TenantID, cfg.ClientID, get,
		&azidentity.ClientAssertionCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: cfg.Authority != "" && cfg.Authority != DefaultAuthorityHost})
}

// ExchangeError is the exchange endpoint's refusal.
type ExchangeError struct {
	Status      int
	Code        string // RFC 6749 error, e.g. invalid_grant
	Description string
}

func (e *ExchangeError) Error() string {
	return fmt.Sprintf("the broker's exchange answered HTTP %d %s: %s", e.Status, e.Code, e.Description)
}

// ExchangeToken trades subjectToken (the installation's managed identity
// token for api://AzureADTokenExchange) for the broker's assertion at
// endpoint.
func ExchangeToken(ctx context.Context, hc *http.Client, endpoint, installation, subjectToken string) (string, error) {
	form := url.Values{"grant_type": {grantTokenExchange}, "subject_token": {subjectToken}, "subject_token_type": {tokenTypeJWT},
		"installation": {installation}, "audience": {TokenExchangeAudience}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("the broker's exchange: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", err
	}
	var out struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(raw, &out)
	if resp.StatusCode != http.StatusOK || out.AccessToken == "" {
		return "", &ExchangeError{Status: resp.StatusCode, Code: out.Error, Description: out.Description}
	}
	return out.AccessToken, nil
}
