package main

import (
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
	app.AddCommand(c.adAppCreate(sess), c.adAppList(sess), c.adAppShow(sess), c.adAppDelete(sess), c.adAppCredential(sess))
	sp := &cobra.Command{Use: "sp", Short: "Service principals"}
	sp.AddCommand(c.adSPCreate(sess), c.adSPList(sess), c.adSPShow(sess), c.adSPDelete(sess))
	group := &cobra.Command{Use: "group", Short: "Security groups"}
	member := &cobra.Command{Use: "member", Short: "Group members"}
	member.AddCommand(c.adGroupMemberAdd(sess))
	group.AddCommand(c.adGroupCreate(sess), c.adGroupList(sess), c.adGroupShow(sess), member)
	user := &cobra.Command{Use: "user", Short: "Users"}
	user.AddCommand(c.adUserCreate(sess), c.adUserList(sess), c.adUserShow(sess))
	cmd.AddCommand(app, sp, group, user)
	return cmd
}

type sessionFunc func() (*session, error)

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
	return fields("displayName", a.DisplayName, "appId", a.AppID, "id", a.ID, "signInAudience", a.SignInAudience,
		"identifierUris", strings.Join(a.IdentifierURIs, " "), "publisherDomain", a.PublisherDomain,
		"passwordCredentials", strings.Join(secrets, "; "), "createdDateTime", fmtTime(a.CreatedDateTime))
}

func (c *cli) adAppCreate(sess sessionFunc) *cobra.Command {
	var displayName, audience, description string
	var uris []string
	cmd := &cobra.Command{
		Use:   "create --display-name X",
		Short: "Register an application",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := sess()
			if err != nil {
				return err
			}
			a, err := s.graph.CreateApplication(cmd.Context(), azclient.Application{
				DisplayName: displayName, Description: description, SignInAudience: audience, IdentifierURIs: uris})
			if err != nil {
				return err
			}
			return c.render(cmd, a, func() table { return appFields(a) })
		},
	}
	cmd.Flags().StringVar(&displayName, "display-name", "", "display name (required)")
	cmd.Flags().StringVar(&audience, "sign-in-audience", "AzureADMyOrg", "AzureADMyOrg (this tenant only) or AzureADMultipleOrgs (any tenant that provisions it)")
	cmd.Flags().StringSliceVar(&uris, "identifier-uris", nil, "application ID URIs, e.g. api://contoso-api")
	cmd.Flags().StringVar(&description, "description", "", "description")
	_ = cmd.MarkFlagRequired("display-name")
	return cmd
}

func (c *cli) adAppList(sess sessionFunc) *cobra.Command {
	var displayName, filter string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List applications",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := sess()
			if err != nil {
				return err
			}
			apps, err := s.graph.ListApplications(cmd.Context(), displayNameFilter(displayName, filter))
			if err != nil {
				return err
			}
			if apps == nil {
				apps = []azclient.Application{}
			}
			return c.render(cmd, apps, func() table {
				t := table{header: appHeader}
				for _, a := range apps {
					t.rows = append(t.rows, appRow(a))
				}
				return t
			})
		},
	}
	cmd.Flags().StringVar(&displayName, "display-name", "", "only applications whose display name starts with this")
	cmd.Flags().StringVar(&filter, "filter", "", "OData $filter, e.g. \"appId eq '...'\"")
	return cmd
}

func (c *cli) adAppShow(sess sessionFunc) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "show --id ID|APPID",
		Short: "Show an application",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := sess()
			if err != nil {
				return err
			}
			a, err := s.graph.GetApplication(cmd.Context(), id)
			if err != nil {
				return err
			}
			return c.render(cmd, a, func() table { return appFields(a) })
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "object id or appId (required)")
	_ = cmd.MarkFlagRequired("id")
	return cmd
}

func (c *cli) adAppDelete(sess sessionFunc) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "delete --id ID|APPID",
		Short: "Delete an application",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := sess()
			if err != nil {
				return err
			}
			a, err := s.graph.GetApplication(cmd.Context(), id)
			if err != nil {
				return err
			}
			if err := s.graph.DeleteApplication(cmd.Context(), a.ID); err != nil {
				return err
			}
			c.notef("Deleted application %s (appId %s).", a.DisplayName, a.AppID)
			return nil
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "object id or appId (required)")
	_ = cmd.MarkFlagRequired("id")
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
	cmd := &cobra.Command{
		Use:   "create --id APPID",
		Short: "Create the service principal of an application (this tenant's or another's multi-tenant app) in this tenant",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := sess()
			if err != nil {
				return err
			}
			sp, err := s.graph.CreateServicePrincipal(cmd.Context(), appID)
			if err != nil {
				return err
			}
			return c.render(cmd, sp, func() table { return spFields(sp) })
		},
	}
	cmd.Flags().StringVar(&appID, "id", "", "appId of the application (required)")
	_ = cmd.MarkFlagRequired("id")
	return cmd
}

func (c *cli) adSPList(sess sessionFunc) *cobra.Command {
	var displayName, filter string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List service principals",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := sess()
			if err != nil {
				return err
			}
			sps, err := s.graph.ListServicePrincipals(cmd.Context(), displayNameFilter(displayName, filter))
			if err != nil {
				return err
			}
			if sps == nil {
				sps = []azclient.ServicePrincipal{}
			}
			return c.render(cmd, sps, func() table {
				t := table{header: spHeader}
				for _, sp := range sps {
					t.rows = append(t.rows, spRow(sp))
				}
				return t
			})
		},
	}
	cmd.Flags().StringVar(&displayName, "display-name", "", "only service principals whose display name starts with this")
	cmd.Flags().StringVar(&filter, "filter", "", "OData $filter, e.g. \"appId eq '...'\"")
	return cmd
}

func (c *cli) adSPShow(sess sessionFunc) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "show --id ID|APPID",
		Short: "Show a service principal",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := sess()
			if err != nil {
				return err
			}
			sp, err := s.graph.GetServicePrincipal(cmd.Context(), id)
			if err != nil {
				return err
			}
			return c.render(cmd, sp, func() table { return spFields(sp) })
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "object id or appId (required)")
	_ = cmd.MarkFlagRequired("id")
	return cmd
}

func (c *cli) adSPDelete(sess sessionFunc) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "delete --id ID|APPID",
		Short: "Delete a service principal from this tenant",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := sess()
			if err != nil {
				return err
			}
			sp, err := s.graph.GetServicePrincipal(cmd.Context(), id)
			if err != nil {
				return err
			}
			if err := s.graph.DeleteServicePrincipal(cmd.Context(), sp.ID); err != nil {
				return err
			}
			c.notef("Deleted service principal %s (appId %s).", sp.DisplayName, sp.AppID)
			return nil
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "object id or appId (required)")
	_ = cmd.MarkFlagRequired("id")
	return cmd
}

// --- groups ---

func groupFields(g *azclient.Group) table {
	return fields("displayName", g.DisplayName, "id", g.ID, "mailNickname", g.MailNickname, "description", g.Description,
		"securityEnabled", fmt.Sprint(g.SecurityEnabled), "createdDateTime", fmtTime(g.CreatedDateTime))
}

func (c *cli) adGroupCreate(sess sessionFunc) *cobra.Command {
	var displayName, nickname, description string
	cmd := &cobra.Command{
		Use:   "create --display-name X --mail-nickname Y",
		Short: "Create a security group",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := sess()
			if err != nil {
				return err
			}
			g, err := s.graph.CreateGroup(cmd.Context(), azclient.Group{DisplayName: displayName, MailNickname: nickname,
				Description: description, SecurityEnabled: true})
			if err != nil {
				return err
			}
			return c.render(cmd, g, func() table { return groupFields(g) })
		},
	}
	cmd.Flags().StringVar(&displayName, "display-name", "", "display name (required)")
	cmd.Flags().StringVar(&nickname, "mail-nickname", "", "mail nickname (required)")
	cmd.Flags().StringVar(&description, "description", "", "description")
	_ = cmd.MarkFlagRequired("display-name")
	_ = cmd.MarkFlagRequired("mail-nickname")
	return cmd
}

func (c *cli) adGroupList(sess sessionFunc) *cobra.Command {
	var displayName, filter string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List groups",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := sess()
			if err != nil {
				return err
			}
			gs, err := s.graph.ListGroups(cmd.Context(), displayNameFilter(displayName, filter))
			if err != nil {
				return err
			}
			if gs == nil {
				gs = []azclient.Group{}
			}
			return c.render(cmd, gs, func() table {
				t := table{header: []string{"DISPLAY NAME", "OBJECT ID", "MAIL NICKNAME", "CREATED"}}
				for _, g := range gs {
					t.rows = append(t.rows, []string{g.DisplayName, g.ID, g.MailNickname, fmtTime(g.CreatedDateTime)})
				}
				return t
			})
		},
	}
	cmd.Flags().StringVar(&displayName, "display-name", "", "only groups whose display name starts with this")
	cmd.Flags().StringVar(&filter, "filter", "", "OData $filter")
	return cmd
}

func (c *cli) adGroupShow(sess sessionFunc) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "show --group ID",
		Short: "Show a group",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := sess()
			if err != nil {
				return err
			}
			g, err := s.graph.GetGroup(cmd.Context(), id)
			if err != nil {
				return err
			}
			return c.render(cmd, g, func() table { return groupFields(g) })
		},
	}
	cmd.Flags().StringVarP(&id, "group", "g", "", "object id of the group (required)")
	_ = cmd.MarkFlagRequired("group")
	return cmd
}

func (c *cli) adGroupMemberAdd(sess sessionFunc) *cobra.Command {
	var group, member string
	cmd := &cobra.Command{
		Use:   "add --group ID --member-id ID",
		Short: "Add a user, service principal or group to a group",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := sess()
			if err != nil {
				return err
			}
			if err := s.graph.AddGroupMember(cmd.Context(), group, member); err != nil {
				return err
			}
			c.notef("Added %s to group %s.", member, group)
			return nil
		},
	}
	cmd.Flags().StringVarP(&group, "group", "g", "", "object id of the group (required)")
	cmd.Flags().StringVar(&member, "member-id", "", "object id of the member (required)")
	_ = cmd.MarkFlagRequired("group")
	_ = cmd.MarkFlagRequired("member-id")
	return cmd
}

// --- users ---

func userFields(u *azclient.User) table {
	enabled := ""
	if u.AccountEnabled != nil {
		enabled = fmt.Sprint(*u.AccountEnabled)
	}
	return fields("displayName", u.DisplayName, "userPrincipalName", u.UserPrincipalName, "id", u.ID,
		"mailNickname", u.MailNickname, "accountEnabled", enabled)
}

func (c *cli) adUserCreate(sess sessionFunc) *cobra.Command {
	var displayName, upn, password, nickname string
	var forceChange bool
	cmd := &cobra.Command{
		Use:   "create --display-name X --user-principal-name U --password P",
		Short: "Create a user",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if nickname == "" {
				nickname, _, _ = strings.Cut(upn, "@")
			}
			s, err := sess()
			if err != nil {
				return err
			}
			enabled := true
			u, err := s.graph.CreateUser(cmd.Context(), azclient.User{DisplayName: displayName, UserPrincipalName: upn,
				MailNickname: nickname, AccountEnabled: &enabled,
				PasswordProfile: &azclient.PasswordProfile{Password: password, ForceChangePasswordNextSignIn: forceChange}})
			if err != nil {
				return err
			}
			return c.render(cmd, u, func() table { return userFields(u) })
		},
	}
	cmd.Flags().StringVar(&displayName, "display-name", "", "display name (required)")
	cmd.Flags().StringVar(&upn, "user-principal-name", "", "user principal name, e.g. alice@contoso.onmicrosoft.com (required)")
	cmd.Flags().StringVar(&password, "password", "", "the user's password (required)")
	cmd.Flags().StringVar(&nickname, "mail-nickname", "", "mail nickname (default: the part of the UPN before @)")
	cmd.Flags().BoolVar(&forceChange, "force-change-password-next-sign-in", false, "require a new password at the next sign-in")
	for _, f := range []string{"display-name", "user-principal-name", "password"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}

func (c *cli) adUserList(sess sessionFunc) *cobra.Command {
	var displayName, filter string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := sess()
			if err != nil {
				return err
			}
			us, err := s.graph.ListUsers(cmd.Context(), displayNameFilter(displayName, filter))
			if err != nil {
				return err
			}
			if us == nil {
				us = []azclient.User{}
			}
			return c.render(cmd, us, func() table {
				t := table{header: []string{"DISPLAY NAME", "USER PRINCIPAL NAME", "OBJECT ID"}}
				for _, u := range us {
					t.rows = append(t.rows, []string{u.DisplayName, u.UserPrincipalName, u.ID})
				}
				return t
			})
		},
	}
	cmd.Flags().StringVar(&displayName, "display-name", "", "only users whose display name starts with this")
	cmd.Flags().StringVar(&filter, "filter", "", "OData $filter")
	return cmd
}

func (c *cli) adUserShow(sess sessionFunc) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "show --id ID|UPN",
		Short: "Show a user",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := sess()
			if err != nil {
				return err
			}
			u, err := s.graph.GetUser(cmd.Context(), id)
			if err != nil {
				return err
			}
			return c.render(cmd, u, func() table { return userFields(u) })
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "object id or user principal name (required)")
	_ = cmd.MarkFlagRequired("id")
	return cmd
}
