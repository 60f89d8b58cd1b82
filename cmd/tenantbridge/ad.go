package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

// adCommand is az ad: the directory of one tenant, through Microsoft Graph.
func (c *cli) adCommand() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:   "ad",
		Short: "Manage a tenant's directory through Microsoft Graph (applications, service principals, groups, users)",
	}
	cmd.PersistentFlags().StringVarP(&tenant, "tenant", "t", "", "tenant name, domain or id (default: the only profile)")
	sess := func() (*session, error) { return c.session(tenant) }

	app := &cobra.Command{Use: "app", Short: "Application registrations"}
	app.AddCommand(c.adAppCreate(sess),
		adListCommand(c, sess, "applications", filterByAppIDUsage, (*azclient.Graph).ListApplications, appHeader, appRow),
		adShowCommand(c, sess, "show --id ID|APPID", "Show an application", objectOrAppID, (*azclient.Graph).GetApplication, appFields),
		c.adAppDelete(sess), c.adAppCredential(sess), c.adAppPermission(sess), c.adAppFederatedCredential(sess))
	sp := &cobra.Command{Use: "sp", Short: "Service principals"}
	sp.AddCommand(c.adSPCreate(sess),
		adListCommand(c, sess, "service principals", filterByAppIDUsage, (*azclient.Graph).ListServicePrincipals, spHeader, spRow),
		adShowCommand(c, sess, "show --id ID|APPID", "Show a service principal", objectOrAppID, (*azclient.Graph).GetServicePrincipal, spFields),
		c.adSPDelete(sess))
	group := &cobra.Command{Use: "group", Short: "Security groups"}
	member := &cobra.Command{Use: "member", Short: "Group members"}
	member.AddCommand(c.adGroupMemberAdd(sess), c.adGroupMemberList(sess), c.adGroupMemberRemove(sess))
	group.AddCommand(c.adGroupCreate(sess),
		adListCommand(c, sess, "groups", "OData $filter", (*azclient.Graph).ListGroups, groupHeader, groupRow),
		adShowCommand(c, sess, "show --group ID|NAME", "Show a group", groupFlag,
			func(g *azclient.Graph, ctx context.Context, ref string) (*azclient.Group, error) {
				return resolveGroup(ctx, g, ref)
			}, groupFields),
		member)
	user := &cobra.Command{Use: "user", Short: "Users"}
	user.AddCommand(c.adUserCreate(sess),
		adListCommand(c, sess, "users", "OData $filter", (*azclient.Graph).ListUsers, userHeader, userRow),
		adShowCommand(c, sess, "show --id ID|UPN", "Show a user", objectOrUPN, (*azclient.Graph).GetUser, userFields),
		c.adUserDelete(sess), c.adUserMFA(func() string { return tenant }))
	cmd.AddCommand(app, sp, group, user)
	return cmd
}

type sessionFunc func() (*session, error)

// idFlag is the required flag that names the directory object a command
// acts on.
type idFlag struct{ name, shorthand, usage string }

var (
	objectOrAppID = idFlag{"id", "", "object id or appId (required)"}
	objectOrUPN   = idFlag{"id", "", "object id or user principal name (required)"}
	groupFlag     = idFlag{"group", "g", "object id or display name of the group (required)"}
)

func (f idFlag) add(cmd *cobra.Command, p *string) {
	requiredFlag(cmd, p, f.name, f.shorthand, f.usage)
}

const filterByAppIDUsage = "OData $filter, e.g. \"appId eq '...'\""

// adListCommand is `ad … list`: --display-name and --filter make the
// $filter that list is called with.
func adListCommand[T any](c *cli, sess sessionFunc, what, filterUsage string,
	list func(g *azclient.Graph, ctx context.Context, filter string) ([]T, error), header []string, row func(T) []string) *cobra.Command {
	var displayName, filter string
	cmd := listCommand(c, "List "+what, withGraph(sess, func(ctx context.Context, g *azclient.Graph) ([]T, error) {
		return list(g, ctx, displayNameFilter(displayName, filter))
	}), header, row)
	cmd.Flags().StringVar(&displayName, "display-name", "", "only "+what+" whose display name starts with this")
	cmd.Flags().StringVar(&filter, "filter", "", filterUsage)
	return cmd
}

// adShowCommand is `ad … show`: get the object the id flag names.
func adShowCommand[T any](c *cli, sess sessionFunc, use, short string, id idFlag,
	get func(g *azclient.Graph, ctx context.Context, id string) (*T, error), fields func(*T) table) *cobra.Command {
	var ref string
	cmd := showCommand(c, use, short, cobra.NoArgs, withGraph(sess, func(ctx context.Context, g *azclient.Graph) (*T, error) {
		return get(g, ctx, ref)
	}), fields)
	id.add(cmd, &ref)
	return cmd
}

// displayNameFilter combines --display-name (a prefix, as az matches it)
// and --filter into one $filter.
func displayNameFilter(displayName, filter string) string {
	var parts []string
	if displayName != "" {
		parts = append(parts, "startswith(displayName,"+azclient.ODataString(displayName)+")")
	}
	if filter != "" {
		if displayName != "" {
			filter = "(" + filter + ")"
		}
		parts = append(parts, filter)
	}
	return strings.Join(parts, " and ")
}

// --- applications ---

var appHeader = []string{"DISPLAY NAME", "APP ID", "OBJECT ID", "SIGN-IN AUDIENCE", "CREATED"}

func appRow(a azclient.Application) []string {
	return []string{a.DisplayName, a.AppID, a.ID, a.SignInAudience, fmtTime(a.CreatedDateTime)}
}

func appFields(a *azclient.Application) table {
	var secrets []string
	for _, p := range a.PasswordCredentials {
		secrets = append(secrets, fmt.Sprintf("%s (%s…, expires %s)", p.KeyID, p.Hint, fmtTime(p.EndDateTime)))
	}
	var web, public, access []string
	if a.Web != nil {
		web = a.Web.RedirectURIs
	}
	if a.PublicClient != nil {
		public = a.PublicClient.RedirectURIs
	}
	for _, r := range a.RequiredResourceAccess {
		var ids []string
		for _, ra := range r.ResourceAccess {
			ids = append(ids, ra.ID+"="+ra.Type)
		}
		access = append(access, r.ResourceAppID+": "+strings.Join(ids, " "))
	}
	return fields("displayName", a.DisplayName, "appId", a.AppID, "id", a.ID, "signInAudience", a.SignInAudience,
		"identifierUris", strings.Join(a.IdentifierURIs, " "), "publisherDomain", a.PublisherDomain,
		"web.redirectUris", strings.Join(web, " "), "publicClient.redirectUris", strings.Join(public, " "),
		"requiredResourceAccess", strings.Join(access, "; "),
		"passwordCredentials", strings.Join(secrets, "; "), "createdDateTime", fmtTime(a.CreatedDateTime))
}

// adAppCreate is az ad app create with az's flag names: the lists take
// several values (comma-separated or the flag repeated; az takes them
// space-separated) and --required-resource-accesses takes az's JSON, a
// requiredResourceAccess array or a manifest holding one, or @FILE.
func (c *cli) adAppCreate(sess sessionFunc) *cobra.Command {
	var displayName, audience, description, access string
	var uris, webRedirects, publicRedirects []string
	cmd := showCommand(c, "create --display-name X", "Register an application", cobra.NoArgs,
		withGraph(sess, func(ctx context.Context, g *azclient.Graph) (*azclient.Application, error) {
			app := azclient.Application{DisplayName: displayName, Description: description, SignInAudience: audience, IdentifierURIs: uris}
			if len(webRedirects) > 0 {
				app.Web = &azclient.RedirectURIs{RedirectURIs: webRedirects}
			}
			if len(publicRedirects) > 0 {
				app.PublicClient = &azclient.RedirectURIs{RedirectURIs: publicRedirects}
			}
			if access != "" {
				rra, err := parseRequiredResourceAccess(access)
				if err != nil {
					return nil, err
				}
				app.RequiredResourceAccess = rra
			}
			return g.CreateApplication(ctx, app)
		}), appFields)
	cmd.Flags().StringVar(&displayName, "display-name", "", "display name (required)")
	cmd.Flags().StringVar(&audience, "sign-in-audience", "AzureADMyOrg", "AzureADMyOrg (this tenant only) or AzureADMultipleOrgs (any tenant that provisions it)")
	cmd.Flags().StringSliceVar(&uris, "identifier-uris", nil, "application ID URIs, e.g. api://contoso.onmicrosoft.com/orders (Entra's formats: api://{appId}, api://{tenantId}/name, https://{tenant}.onmicrosoft.com/name)")
	cmd.Flags().StringSliceVar(&webRedirects, "web-redirect-uris", nil, "redirect URIs of the web platform (https, or http on loopback)")
	cmd.Flags().StringSliceVar(&publicRedirects, "public-client-redirect-uris", nil, "redirect URIs of the public-client (mobile and desktop) platform, e.g. http://localhost")
	cmd.Flags().StringVar(&access, "required-resource-accesses", "", `API permissions the app asks for: JSON or @FILE, e.g. [{"resourceAppId":"00000003-0000-0000-c000-000000000000","resourceAccess":[{"id":"e1fe6dd8-ba31-4d61-89e7-88639da4683d","type":"Scope"}]}]`)
	cmd.Flags().StringVar(&description, "description", "", "description")
	_ = cmd.MarkFlagRequired("display-name")
	return cmd
}

// parseRequiredResourceAccess reads --required-resource-accesses as az
// does: a requiredResourceAccess array, or an application manifest (an
// object) whose requiredResourceAccess it takes.
func parseRequiredResourceAccess(value string) ([]azclient.RequiredResourceAccess, error) {
	data, err := readJSONArg("required-resource-accesses", value)
	if err != nil {
		return nil, err
	}
	var out []azclient.RequiredResourceAccess
	if trimmed := strings.TrimSpace(string(data)); strings.HasPrefix(trimmed, "{") {
		var manifest struct {
			RequiredResourceAccess []azclient.RequiredResourceAccess `json:"requiredResourceAccess"`
		}
		err = json.Unmarshal(data, &manifest)
		out = manifest.RequiredResourceAccess
	} else {
		err = json.Unmarshal(data, &out)
	}
	if err != nil {
		return nil, fmt.Errorf("--required-resource-accesses is not a JSON array of {resourceAppId, resourceAccess: [{id, type}]}: %w", err)
	}
	if out == nil {
		out = []azclient.RequiredResourceAccess{}
	}
	return out, nil
}

func (c *cli) adAppDelete(sess sessionFunc) *cobra.Command {
	var id string
	var yes bool
	cmd := deleteCommand(c, "delete --id ID|APPID [--yes]", "Delete an application (--yes when a CLI profile signs in with it)", cobra.NoArgs,
		withGraph(sess, func(ctx context.Context, g *azclient.Graph) (*azclient.Application, error) {
			a, err := g.GetApplication(ctx, id)
			if err != nil {
				return nil, err
			}
			if err := c.confirmNotProfileApp("", a.AppID, yes); err != nil {
				return nil, err
			}
			return a, g.DeleteApplication(ctx, a.ID)
		}),
		func(a *azclient.Application) string {
			return fmt.Sprintf("Deleted application %s (appId %s).", a.DisplayName, a.AppID)
		})
	objectOrAppID.add(cmd, &id)
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "delete it even when a CLI profile signs in with it")
	return cmd
}

// credentialResetView is what az ad app credential reset prints.
type credentialResetView struct {
	AppID    string `json:"appId"`
	Password string `json:"password"`
	Tenant   string `json:"tenant"`
}

func (c *cli) adAppCredential(sess sessionFunc) *cobra.Command {
	cred := &cobra.Command{Use: "credential", Short: "Application client secrets"}
	var id, displayName string
	var years int
	var appendCred bool
	reset := &cobra.Command{
		Use:   "reset --id ID|APPID",
		Short: "Create a new client secret (and, without --append, remove the existing ones)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if years < 1 || years > 100 {
				return errors.New("--years must be between 1 and 100")
			}
			s, err := sess()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			a, err := s.graph.GetApplication(ctx, id)
			if err != nil {
				return err
			}
			if !appendCred {
				for _, p := range a.PasswordCredentials {
					if err := s.graph.RemovePassword(ctx, a.ID, p.KeyID); err != nil {
						return fmt.Errorf("removing secret %s: %w", p.KeyID, err)
					}
				}
			}
			now := time.Now().UTC()
			pc, err := s.graph.AddPassword(ctx, a.ID, azclient.PasswordCredential{
				DisplayName: displayName, StartDateTime: now, EndDateTime: now.AddDate(years, 0, 0)})
			if err != nil {
				return err
			}
			if pc.SecretText == "" {
				return errors.New("the server returned no secret text")
			}
			if strings.EqualFold(a.AppID, s.profile.ClientID) {
				// The CLI's own sign-in: keep the profile working.
				p := s.profile
				p.ClientSecret = pc.SecretText
				if err := c.saveProfile(p); err != nil {
					return fmt.Errorf("the secret was reset but the CLI profile could not be updated: %w", err)
				}
				c.notef("Updated the CLI profile of %s with the new secret.", p.name())
			}
			v := credentialResetView{AppID: a.AppID, Password: pc.SecretText, Tenant: s.profile.TenantID}
			return c.render(cmd, v, func() table {
				return fields("appId", v.AppID, "password", v.Password, "tenant", v.Tenant)
			})
		},
	}
	reset.Flags().StringVar(&id, "id", "", "object id or appId (required)")
	reset.Flags().StringVar(&displayName, "display-name", "", "display name of the secret")
	reset.Flags().IntVar(&years, "years", 1, "years the secret is valid")
	reset.Flags().BoolVar(&appendCred, "append", false, "keep the existing secrets")
	_ = reset.MarkFlagRequired("id")
	cred.AddCommand(reset)
	return cred
}

// --- service principals ---

var spHeader = []string{"DISPLAY NAME", "APP ID", "OBJECT ID", "TYPE", "APP OWNER TENANT"}

func spRow(sp azclient.ServicePrincipal) []string {
	return []string{sp.DisplayName, sp.AppID, sp.ID, sp.ServicePrincipalType, sp.AppOwnerOrganizationID}
}

func spFields(sp *azclient.ServicePrincipal) table {
	enabled := ""
	if sp.AccountEnabled != nil {
		enabled = fmt.Sprint(*sp.AccountEnabled)
	}
	return fields("displayName", sp.DisplayName, "appId", sp.AppID, "id", sp.ID, "servicePrincipalType", sp.ServicePrincipalType,
		"appOwnerOrganizationId", sp.AppOwnerOrganizationID, "servicePrincipalNames", strings.Join(sp.ServicePrincipalNames, " "),
		"signInAudience", sp.SignInAudience, "accountEnabled", enabled)
}

func (c *cli) adSPCreate(sess sessionFunc) *cobra.Command {
	var appID string
	cmd := showCommand(c, "create --id APPID",
		"Create the service principal of an application (this tenant's or another's multi-tenant app) in this tenant", cobra.NoArgs,
		withGraph(sess, func(ctx context.Context, g *azclient.Graph) (*azclient.ServicePrincipal, error) {
			return g.CreateServicePrincipal(ctx, appID)
		}), spFields)
	requiredFlag(cmd, &appID, "id", "", "appId of the application (required)")
	return cmd
}

func (c *cli) adSPDelete(sess sessionFunc) *cobra.Command {
	var id string
	var yes bool
	cmd := deleteCommand(c, "delete --id ID|APPID [--yes]", "Delete a service principal from this tenant (--yes when a CLI profile signs in with it)", cobra.NoArgs,
		withGraph(sess, func(ctx context.Context, g *azclient.Graph) (*azclient.ServicePrincipal, error) {
			sp, err := g.GetServicePrincipal(ctx, id)
			if err != nil {
				return nil, err
			}
			s, err := sess()
			if err != nil {
				return nil, err
			}
			if err := c.confirmNotProfileApp(s.profile.TenantID, sp.AppID, yes); err != nil {
				return nil, err
			}
			return sp, g.DeleteServicePrincipal(ctx, sp.ID)
		}),
		func(sp *azclient.ServicePrincipal) string {
			return fmt.Sprintf("Deleted service principal %s (appId %s).", sp.DisplayName, sp.AppID)
		})
	objectOrAppID.add(cmd, &id)
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "delete it even when a CLI profile signs in with it")
	return cmd
}

// --- groups ---

var groupHeader = []string{"DISPLAY NAME", "OBJECT ID", "MAIL NICKNAME", "CREATED"}

func groupRow(g azclient.Group) []string {
	return []string{g.DisplayName, g.ID, g.MailNickname, fmtTime(g.CreatedDateTime)}
}

func groupFields(g *azclient.Group) table {
	return fields("displayName", g.DisplayName, "id", g.ID, "mailNickname", g.MailNickname, "description", g.Description,
		"securityEnabled", fmt.Sprint(g.SecurityEnabled), "createdDateTime", fmtTime(g.CreatedDateTime))
}

func (c *cli) adGroupCreate(sess sessionFunc) *cobra.Command {
	var displayName, nickname, description string
	cmd := showCommand(c, "create --display-name X --mail-nickname Y", "Create a security group", cobra.NoArgs,
		withGraph(sess, func(ctx context.Context, g *azclient.Graph) (*azclient.Group, error) {
			return g.CreateGroup(ctx, azclient.Group{DisplayName: displayName, MailNickname: nickname,
				Description: description, SecurityEnabled: true})
		}), groupFields)
	requiredFlag(cmd, &displayName, "display-name", "", "display name (required)")
	requiredFlag(cmd, &nickname, "mail-nickname", "", "mail nickname (required)")
	cmd.Flags().StringVar(&description, "description", "", "description")
	return cmd
}

// --- users ---

var userHeader = []string{"DISPLAY NAME", "USER PRINCIPAL NAME", "OBJECT ID"}

func userRow(u azclient.User) []string {
	return []string{u.DisplayName, u.UserPrincipalName, u.ID}
}

func userFields(u *azclient.User) table {
	enabled := ""
	if u.AccountEnabled != nil {
		enabled = fmt.Sprint(*u.AccountEnabled)
	}
	return fields("displayName", u.DisplayName, "userPrincipalName", u.UserPrincipalName, "id", u.ID,
		"mailNickname", u.MailNickname, "accountEnabled", enabled)
}
