package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

// operatorFile is where the server writes how to reach it (url, CA, key).
const operatorFile = "operator.json"

// serverInfo reads the data directory's operator.json: every command needs
// its url and CA to reach the server; operator commands also need its key.
func (c *cli) serverInfo() (azclient.OperatorCredential, error) {
	path := filepath.Join(c.dataDir, operatorFile)
	cred, err := azclient.ReadOperatorCredential(path)
	if errors.Is(err, os.ErrNotExist) {
		return cred, fmt.Errorf("no tenantbridge server in %s (%s not found): start one with tenantbridge serve --data %s, or pass --data", c.dataDir, operatorFile, c.dataDir)
	}
	return cred, err
}

// operator returns a client of the operator API.
func (c *cli) operator() (*azclient.Operator, error) {
	cred, err := c.serverInfo()
	if err != nil {
		return nil, err
	}
	if cred.Key == "" {
		return nil, fmt.Errorf("the operator credential in %s has no key", c.dataDir)
	}
	local, err := cred.Local()
	if err != nil {
		return nil, err
	}
	hc, err := local.HTTPClient()
	if err != nil {
		return nil, err
	}
	return azclient.NewOperator("https://"+local.Address, cred.Key, c.debugClient(hc)), nil
}

// clientOptions returns azcore options whose transport reaches the server by
// Azure's host names, trusting only its CA, and the token authority URL.
func (c *cli) clientOptions() (policy.ClientOptions, string, error) {
	cred, err := c.serverInfo()
	if err != nil {
		return policy.ClientOptions{}, "", err
	}
	local, err := cred.Local()
	if err != nil {
		return policy.ClientOptions{}, "", err
	}
	hc, err := local.HTTPClient()
	if err != nil {
		return policy.ClientOptions{}, "", err
	}
	// The transport of every Azure SDK client and credential of the
	// command (--debug prints what passes through it).
	opts := policy.ClientOptions{Transport: c.debugClient(hc)}
	// A CLI should fail fast when the server is down, not back off for long.
	opts.Retry.MaxRetries = 1
	authority, err := cred.AuthorityURL()
	return opts, authority, err
}

// session is a signed-in tenant: its profile, a credential for the token
// service and a Graph client.
type session struct {
	profile Profile
	cred    *azidentity.ClientSecretCredential
	graph   *azclient.Graph
}

// session signs in to the tenant --tenant names (or the only profile).
func (c *cli) session(tenantRef string) (*session, error) {
	p, err := c.findProfile(tenantRef)
	if err != nil {
		return nil, err
	}
	opts, authority, err := c.clientOptions()
	if err != nil {
		return nil, err
	}
	cred, err := azclient.NewClientSecretCredential(authority, p.TenantID, p.ClientID, p.ClientSecret, opts)
	if err != nil {
		return nil, err
	}
	g, err := azclient.NewGraph(azclient.GraphEndpoint, cred, &opts)
	if err != nil {
		return nil, err
	}
	return &session{profile: p, cred: cred, graph: g}, nil
}

// token gets an access token for scopes with the session's credential.
func (s *session) token(ctx context.Context, scopes []string) (azcore.AccessToken, error) {
	return s.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: scopes})
}
