package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/spf13/cobra"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

func (c *cli) loginCommand() *cobra.Command {
	var sp bool
	var user, password, tenant string
	cmd := &cobra.Command{
		Use:   "login --service-principal -u CLIENT_ID -p SECRET --tenant T",
		Short: "Sign in to a tenant as a service principal and save it as the CLI profile for that tenant",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !sp {
				return errors.New("only service principal sign-in is supported: add --service-principal")
			}
			p, err := c.login(cmd.Context(), tenant, user, password)
			if err != nil {
				return err
			}
			if old, err := c.findProfile(p.TenantID); err == nil && old.ClientID != p.ClientID {
				c.notef("Replacing the profile of %s (client %s) with client %s.", old.name(), old.ClientID, p.ClientID)
			}
			if err := c.saveProfile(p); err != nil {
				return err
			}
			view := profileView(p)
			return c.render(cmd, []accountView{view}, func() table {
				return accountTable([]accountView{view})
			})
		},
	}
	cmd.Flags().BoolVar(&sp, "service-principal", false, "sign in as a service principal (the only kind supported)")
	cmd.Flags().StringVarP(&user, "username", "u", "", "client id (appId) of the service principal")
	cmd.Flags().StringVarP(&password, "password", "p", "", "client secret")
	cmd.Flags().StringVarP(&tenant, "tenant", "t", "", "tenant name, domain or id")
	for _, f := range []string{"username", "password", "tenant"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}

// login checks a service principal's secret by getting a token for Graph,
// as az login does, and returns the profile to save.
func (c *cli) login(ctx context.Context, tenantRef, clientID, secret string) (Profile, error) {
	p := Profile{ClientID: clientID, ClientSecret: secret}
	// The operator API, where the key is at hand, names the tenant
	// canonically; a signed-in user without it still gets the id from the token.
	if op, err := c.operator(); err == nil {
		t, err := op.GetTenant(ctx, tenantRef)
		var re *azclient.ResponseError
		switch {
		case err == nil:
			p.TenantID, p.TenantName, p.Domain, p.SubscriptionID = t.TenantID, t.Name, t.Domain, t.SubscriptionID
		case errors.As(err, &re) && re.StatusCode == 404:
			return p, fmt.Errorf("tenant %q was not found", tenantRef)
		}
	}
	authTenant := p.TenantID
	if authTenant == "" {
		authTenant = tenantRef
	}
	opts, authority, err := c.clientOptions()
	if err != nil {
		return p, err
	}
	cred, err := azclient.NewClientSecretCredential(authority, authTenant, clientID, secret, opts)
	if err != nil {
		return p, err
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{azclient.GraphScope}})
	if err != nil {
		return p, err
	}
	claims, err := azclient.UnverifiedClaims(tok.Token)
	if err != nil {
		return p, fmt.Errorf("the token service returned an unreadable token: %w", err)
	}
	tid, _ := claims["tid"].(string)
	switch {
	case tid == "":
		return p, errors.New("the token service returned a token without a tenant id (tid)")
	case p.TenantID != "" && !strings.EqualFold(tid, p.TenantID):
		return p, fmt.Errorf("the token is for tenant %s, not %s", tid, p.TenantID)
	}
	p.TenantID = tid
	if p.Domain == "" && p.TenantName == "" {
		switch {
		case strings.Contains(tenantRef, "."):
			p.Domain = strings.ToLower(tenantRef)
		case !azclient.IsGUID(tenantRef):
			p.TenantName = strings.ToLower(tenantRef)
			p.Domain = p.TenantName + ".onmicrosoft.com"
		}
	}
	return p, nil
}

func (c *cli) logoutCommand() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:   "logout --tenant T",
		Short: "Forget the CLI profile of a tenant",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := c.findProfile(tenant)
			if err != nil {
				return err
			}
			if _, err := c.removeProfile(p.TenantID); err != nil {
				return err
			}
			c.notef("Signed out of %s.", p.name())
			return nil
		},
	}
	cmd.Flags().StringVarP(&tenant, "tenant", "t", "", "tenant name, domain or id (default: the only profile)")
	return cmd
}

// accountView is a profile without its secret.
type accountView struct {
	TenantID       string `json:"tenantId"`
	Name           string `json:"name,omitempty"`
	Domain         string `json:"domain,omitempty"`
	SubscriptionID string `json:"subscriptionId,omitempty"`
	User           struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"user"`
}

func profileView(p Profile) accountView {
	v := accountView{TenantID: p.TenantID, Name: p.TenantName, Domain: p.Domain, SubscriptionID: p.SubscriptionID}
	v.User.Name, v.User.Type = p.ClientID, "servicePrincipal"
	return v
}

func accountTable(vs []accountView) table {
	t := table{header: []string{"TENANT", "DOMAIN", "TENANT ID", "CLIENT ID"}}
	for _, v := range vs {
		t.rows = append(t.rows, []string{v.Name, v.Domain, v.TenantID, v.User.Name})
	}
	return t
}

func (c *cli) accountCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "account",
		Short: "CLI profiles and access tokens",
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the tenants the CLI is signed in to",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := c.loadProfiles()
			if err != nil {
				return err
			}
			vs := []accountView{}
			for _, p := range s.sorted() {
				vs = append(vs, profileView(p))
			}
			return c.render(cmd, vs, func() table { return accountTable(vs) })
		},
	}
	cmd.AddCommand(list, c.getAccessTokenCommand())
	return cmd
}

// accessTokenView is az account get-access-token's output.
type accessTokenView struct {
	AccessToken  string `json:"accessToken"`
	ExpiresOn    string `json:"expiresOn"`
	ExpiresOnUTC int64  `json:"expires_on"`
	Subscription string `json:"subscription,omitempty"`
	Tenant       string `json:"tenant"`
	TokenType    string `json:"tokenType"`
}

func (c *cli) getAccessTokenCommand() *cobra.Command {
	var tenant, resource string
	var scopes []string
	cmd := &cobra.Command{
		Use:         "get-access-token [--resource R | --scope S] [--tenant T]",
		Short:       "Get an access token for the signed-in service principal of a tenant",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{annotationDefaultOutput: outputJSON},
		RunE: func(cmd *cobra.Command, args []string) error {
			if resource != "" && len(scopes) > 0 {
				return errors.New("give --resource or --scope, not both")
			}
			if len(scopes) == 0 {
				if resource == "" {
					resource = "https://management.azure.com/"
				}
				// As az does: the v1 resource plus "/.default", so ARM's
				// "https://management.azure.com/" becomes ".../.default" with two slashes.
				scopes = []string{resource + "/.default"}
			}
			s, err := c.session(tenant)
			if err != nil {
				return err
			}
			tok, err := s.token(cmd.Context(), scopes)
			if err != nil {
				return err
			}
			v := accessTokenView{
				AccessToken:  tok.Token,
				ExpiresOn:    tok.ExpiresOn.Local().Format("2006-01-02 15:04:05.000000"),
				ExpiresOnUTC: tok.ExpiresOn.Unix(),
				Subscription: s.profile.SubscriptionID,
				Tenant:       s.profile.TenantID,
				TokenType:    "Bearer",
			}
			return c.render(cmd, v, func() table {
				return fields("accessToken", v.AccessToken, "expiresOn", v.ExpiresOn,
					"expires_on", strconv.FormatInt(v.ExpiresOnUTC, 10), "tenant", v.Tenant, "tokenType", v.TokenType)
			})
		},
	}
	cmd.Flags().StringVar(&resource, "resource", "", "resource to get a token for, e.g. https://graph.microsoft.com (default https://management.azure.com/)")
	cmd.Flags().StringSliceVar(&scopes, "scope", nil, "scopes to get a token for, e.g. https://graph.microsoft.com/.default")
	cmd.Flags().StringVarP(&tenant, "tenant", "t", "", "tenant name, domain or id (default: the only profile)")
	return cmd
}
