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
	var user, password, tenant, name string
	cmd := &cobra.Command{
		Use:   "login --service-principal -u CLIENT_ID -p SECRET --tenant T [--name PROFILE]",
		Short: "Sign in to a tenant as a service principal, saved as a CLI profile that becomes the tenant's default",
		Long: `login checks the service principal's secret at the token service and saves it
as a named CLI profile (in DIR/profiles.json). It adds a profile: the other
profiles of the tenant, above all the bootstrap administrator that tenant
create saved, are kept. A login with the client of an existing profile of the
tenant gives that profile the new secret.

The new profile becomes the tenant's default, as az login makes the account
it signed in to the default; switch back with tenantbridge account set --name
PROFILE, or pick a profile for one command with --profile PROFILE.

--name defaults to the tenant's name for its first profile, and to the
tenant's name and the client id's first eight characters otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !sp {
				return errors.New("only service principal sign-in is supported: add --service-principal")
			}
			if name != "" {
				if err := checkProfileName(name); err != nil {
					return err
				}
			}
			p, err := c.login(cmd.Context(), tenant, user, password)
			if err != nil {
				return err
			}
			p.Name = name
			before, err := c.loadProfiles()
			if err != nil {
				return err
			}
			previous, hadDefault := before.tenantDefault(p.TenantID)
			if p, err = c.addProfile(p, true); err != nil {
				return err
			}
			if hadDefault && previous.Name != p.Name {
				c.notef("Saved profile %s as the default for %s; the previous default, %s, is kept: tenantbridge account set --name %s switches back.",
					p.Name, p.name(), previous.describe(), previous.Name)
			} else {
				c.notef("Saved profile %s for %s.", p.Name, p.name())
			}
			s, err := c.loadProfiles()
			if err != nil {
				return err
			}
			view := s.view(p)
			return c.render(cmd, []accountView{view}, func() table {
				return accountTable([]accountView{view})
			})
		},
	}
	cmd.Flags().BoolVar(&sp, "service-principal", false, "sign in as a service principal (the only kind supported)")
	cmd.Flags().StringVarP(&user, "username", "u", "", "client id (appId) of the service principal")
	cmd.Flags().StringVarP(&password, "password", "p", "", "client secret")
	cmd.Flags().StringVarP(&tenant, "tenant", "t", "", "tenant name, domain or id")
	cmd.Flags().StringVar(&name, "name", "", "name of the profile (default: the tenant's name, or the tenant's name and the client id's start)")
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
	var tenant, name string
	var yes bool
	cmd := &cobra.Command{
		Use:   "logout (--name PROFILE | --tenant T) [--yes]",
		Short: "Forget a CLI profile: the one --name names, or the default profile of --tenant",
		Long: `logout removes a saved profile from DIR/profiles.json. Removing a tenant's
bootstrap administrator (the profile tenant create saved) needs --yes: its
secret is shown only once, so without it the tenant may have no
administrator left to sign in as.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if name != "" && tenant != "" {
				return errors.New("give --name or --tenant, not both")
			}
			if name == "" {
				p, err := c.findProfile(tenant)
				if err != nil {
					return err
				}
				name = p.Name
			}
			s, err := c.loadProfiles()
			if err != nil {
				return err
			}
			if p, ok := s.Profiles[name]; ok && p.Bootstrap && !yes {
				return fmt.Errorf("profile %s is the bootstrap administrator of %s, whose secret is not shown again: add --yes to forget it anyway", p.Name, p.name())
			}
			p, err := c.removeProfileNamed(name)
			if err != nil {
				return err
			}
			c.notef("Signed out of %s (profile %s).", p.name(), p.Name)
			return nil
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "the profile to forget")
	cmd.Flags().StringVarP(&tenant, "tenant", "t", "", "forget this tenant's default profile (default: the only profile)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "forget even a tenant's bootstrap administrator")
	return cmd
}

// accountView is a profile without its secret, in az account list's shape
// where there is one (tenantId, isDefault, user).
type accountView struct {
	Profile        string `json:"profile"`
	TenantID       string `json:"tenantId"`
	Name           string `json:"name,omitempty"`
	Domain         string `json:"domain,omitempty"`
	SubscriptionID string `json:"subscriptionId,omitempty"`
	// IsDefault: the profile --tenant selects for its tenant.
	IsDefault bool `json:"isDefault"`
	// Active: the profile commands use without --tenant (account set).
	Active    bool `json:"active"`
	Bootstrap bool `json:"bootstrap"`
	User      struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"user"`
}

// view is p as account commands show it.
func (s profileStore) view(p Profile) accountView {
	d, _ := s.tenantDefault(p.TenantID)
	v := accountView{Profile: p.Name, TenantID: p.TenantID, Name: p.TenantName, Domain: p.Domain, SubscriptionID: p.SubscriptionID,
		IsDefault: d.Name == p.Name, Active: s.Active == p.Name, Bootstrap: p.Bootstrap}
	v.User.Name, v.User.Type = p.ClientID, "servicePrincipal"
	return v
}

func accountTable(vs []accountView) table {
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return ""
	}
	t := table{header: []string{"PROFILE", "TENANT", "CLIENT ID", "DEFAULT", "ACTIVE", "BOOTSTRAP"}}
	for _, v := range vs {
		tenant := v.Name
		if tenant == "" {
			tenant = v.Domain
		}
		if tenant == "" {
			tenant = v.TenantID
		}
		t.rows = append(t.rows, []string{v.Profile, tenant, v.User.Name, yes(v.IsDefault), yes(v.Active), yes(v.Bootstrap)})
	}
	return t
}

func (c *cli) accountCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "account",
		Short: "CLI profiles (list, show, set) and access tokens",
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the CLI profiles: which tenant each signs in to, as which client, and which are the defaults",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := c.loadProfiles()
			if err != nil {
				return err
			}
			vs := []accountView{}
			for _, p := range s.sorted() {
				vs = append(vs, s.view(p))
			}
			return c.render(cmd, vs, func() table { return accountTable(vs) })
		},
	}
	var showTenant, showName string
	show := &cobra.Command{
		Use:   "show [--name PROFILE | --tenant T]",
		Short: "Show the profile a command would sign in with (or the profile --name names)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if showName != "" && showTenant != "" {
				return errors.New("give --name or --tenant, not both")
			}
			s, err := c.loadProfiles()
			if err != nil {
				return err
			}
			var p Profile
			if showName != "" {
				p, err = c.named(s, showName)
			} else {
				p, err = c.findProfile(showTenant)
			}
			if err != nil {
				return err
			}
			v := s.view(p)
			return c.render(cmd, v, func() table {
				return fields("profile", v.Profile, "tenant", p.name(), "tenantId", v.TenantID, "domain", v.Domain,
					"subscriptionId", v.SubscriptionID, "clientId", v.User.Name, "isDefault", strconv.FormatBool(v.IsDefault),
					"active", strconv.FormatBool(v.Active), "bootstrap", strconv.FormatBool(v.Bootstrap))
			})
		},
	}
	show.Flags().StringVarP(&showName, "name", "n", "", "the profile to show")
	show.Flags().StringVarP(&showTenant, "tenant", "t", "", "show this tenant's default profile")
	var setTenant, setName string
	set := &cobra.Command{
		Use:   "set (--name PROFILE | --tenant T)",
		Short: "Make a profile its tenant's default and the one commands use without --tenant, as az account set does",
		Long: `set makes the profile --name names the default of its tenant (the profile
--tenant selects) and the active profile, which commands use when they are
given no --tenant. With --tenant, the tenant's default profile becomes the
active one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case setName != "" && setTenant != "":
				return errors.New("give --name or --tenant, not both")
			case setName == "" && setTenant == "":
				return errors.New("name the profile with --name, or its tenant with --tenant")
			case setName == "":
				p, err := c.findProfile(setTenant)
				if err != nil {
					return err
				}
				setName = p.Name
			}
			p, err := c.setDefault(setName, true)
			if err != nil {
				return err
			}
			c.notef("Profile %s is the default for %s and the active profile.", p.Name, p.name())
			return nil
		},
	}
	set.Flags().StringVarP(&setName, "name", "n", "", "the profile to make the default")
	set.Flags().StringVarP(&setTenant, "tenant", "t", "", "make this tenant's default profile the active one")
	cmd.AddCommand(list, show, set, c.getAccessTokenCommand())
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
