package azclient

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// ClientOptions returns azcore client options whose transport reaches the
// local tenantbridge by Azure's names (see Transport).
func (l Local) ClientOptions() (policy.ClientOptions, error) {
	hc, err := l.HTTPClient()
	if err != nil {
		return policy.ClientOptions{}, err
	}
	return policy.ClientOptions{Transport: hc}, nil
}

// NewClientSecretCredential returns an azidentity client-secret credential
// for the application clientID in tenantID, asking the token service at
// authorityHost (e.g. https://login.microsoftonline.com/ or a tenantbridge
// listen URL). Instance discovery is off: the authority is trusted as given.
// opts carries the transport; it may be the zero value.
func NewClientSecretCredential(authorityHost, tenantID, clientID, secret string, opts policy.ClientOptions) (*azidentity.ClientSecretCredential, error) {
	if authorityHost != "" {
		opts.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: authorityHost}
	}
	return azidentity.NewClientSecretCredential(tenantID, clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            opts,
		DisableInstanceDiscovery: true,
	})
}

// UnverifiedClaims decodes the payload of a JWT without checking its
// signature: for showing a token to a person, never for trusting it.
func UnverifiedClaims(jwt string) (map[string]any, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT: expected three dot-separated parts")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, errors.New("not a JWT: payload is not base64url")
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, errors.New("not a JWT: payload is not a JSON object")
	}
	return claims, nil
}
