package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/skip2/go-qrcode"
	"github.com/spf13/cobra"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

// People: users with a directory role and an authenticator, so that a
// person can sign in to the browser flows without the demo; and group
// members.

// createdUser is what ad user create prints: the user and, with --role,
// the directory role it holds.
type createdUser struct {
	azclient.User
	DirectoryRoles []string `json:"directoryRoles,omitempty"`
}

func (c *cli) adUserCreate(sess sessionFunc) *cobra.Command {
	var displayName, upn, password, nickname, role string
	var forceChange bool
	cmd := showCommand(c, "create --display-name X --user-principal-name U --password P [--role NAME]", "Create a user, optionally holding a directory role", cobra.NoArgs,
		func(cmd *cobra.Command, _ []string) (*createdUser, error) {
			s, err := sess()
			if err != nil {
				return nil, err
			}
			ctx, g := cmd.Context(), s.graph
			// The role is found before the user is made, so that a
			// misspelt role creates nothing.
			var def *azclient.RoleDefinition
			if role != "" {
				if def, err = directoryRole(ctx, g, role); err != nil {
					return nil, roleManagementHint(err, s.profile.ClientID)
				}
			}
			if nickname == "" {
				nickname, _, _ = strings.Cut(upn, "@")
			}
			u, err := g.CreateUser(ctx, azclient.User{DisplayName: displayName, UserPrincipalName: upn,
				MailNickname: nickname, AccountEnabled: new(true),
				PasswordProfile: &azclient.PasswordProfile{Password: password, ForceChangePasswordNextSignIn: forceChange}})
			if err != nil {
				return nil, err
			}
			out := &createdUser{User: *u}
			if def == nil {
				return out, nil
			}
			// A Global Administrator is made through Graph, as in Entra:
			// POST /roleManagement/directory/roleAssignments
			// (https://learn.microsoft.com/graph/api/rbacapplication-post-roleassignments).
			if _, err := g.AssignDirectoryRole(ctx, u.ID, def.ID); err != nil {
				err = roleManagementHint(err, s.profile.ClientID)
				// Undo the user, so that running the command again works.
				if derr := g.DeleteUser(ctx, u.ID); derr != nil {
					return nil, fmt.Errorf("assigning %s to %s: %w (and the user could not be removed again: %s)",
						def.DisplayName, upn, err, azclient.Describe(derr))
				}
				return nil, fmt.Errorf("assigning %s to %s (the user was not kept): %w", def.DisplayName, upn, err)
			}
			out.DirectoryRoles = []string{def.DisplayName}
			return out, nil
		}, func(u *createdUser) table {
			t := userFields(&u.User)
			if len(u.DirectoryRoles) > 0 {
				t.rows = append(t.rows, []string{"directoryRoles", strings.Join(u.DirectoryRoles, ", ")})
			}
			return t
		})
	requiredFlag(cmd, &displayName, "display-name", "", "display name (required)")
	requiredFlag(cmd, &upn, "user-principal-name", "", "user principal name, e.g. alice@contoso.onmicrosoft.com (required)")
	requiredFlag(cmd, &password, "password", "", "the user's password (required)")
	cmd.Flags().StringVar(&nickname, "mail-nickname", "", "mail nickname (default: the part of the UPN before @)")
	cmd.Flags().BoolVar(&forceChange, "force-change-password-next-sign-in", false, "require a new password at the next sign-in")
	cmd.Flags().StringVar(&role, "role", "", `directory role to give the user, by name or id, e.g. "Global Administrator"`)
	return cmd
}

// roleManagementPermission is Graph's application permission
// RoleManagement.ReadWrite.Directory.
const roleManagementPermission = "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8"

// roleManagementHint adds to Graph's 403 for reading or assigning
// directory roles how a tenant's administrator application gets the permission it lacks:
// tenants created before their bootstrap administrator held
// RoleManagement.ReadWrite.Directory can grant it with the CLI, since
// AppRoleAssignment.ReadWrite.All lets an application grant application
// permissions.
func roleManagementHint(err error, appID string) error {
	var re *azclient.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
		return err
	}
	return fmt.Errorf("%w; the CLI's application needs RoleManagement.ReadWrite.Directory: "+
		"tenantbridge ad app permission add --id %s --api 00000003-0000-0000-c000-000000000000 --api-permissions %s=Role, "+
		"then tenantbridge ad app permission admin-consent --id %s", err, appID, roleManagementPermission, appID)
}

// directoryRole finds a built-in directory role by display name (any
// case) or id.
func directoryRole(ctx context.Context, g *azclient.Graph, role string) (*azclient.RoleDefinition, error) {
	defs, err := g.ListDirectoryRoleDefinitions(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the directory roles: %w", err)
	}
	var names []string
	for i, d := range defs {
		if strings.EqualFold(d.DisplayName, role) || strings.EqualFold(d.ID, role) || d.TemplateID != "" && strings.EqualFold(d.TemplateID, role) {
			return &defs[i], nil
		}
		names = append(names, d.DisplayName)
	}
	slices.Sort(names)
	return nil, fmt.Errorf("--role %q is not a directory role; the roles are: %s", role, strings.Join(names, ", "))
}

func (c *cli) adUserDelete(sess sessionFunc) *cobra.Command {
	var id string
	cmd := deleteCommand(c, "delete --id ID|UPN", "Delete a user", cobra.NoArgs,
		withGraph(sess, func(ctx context.Context, g *azclient.Graph) (*azclient.User, error) {
			u, err := g.GetUser(ctx, id)
			if err != nil {
				return nil, err
			}
			return u, g.DeleteUser(ctx, u.ID)
		}),
		func(u *azclient.User) string { return fmt.Sprintf("Deleted user %s (%s).", u.UserPrincipalName, u.ID) })
	objectOrUPN.add(cmd, &id)
	return cmd
}

// adUserMFA is ad user mfa: a user's authenticator. Enrolment goes through
// the operator API, because Graph has no call that creates a software
// OATH method (only list, get and delete:
// https://learn.microsoft.com/graph/api/resources/softwareoathauthenticationmethod);
// in Entra the person registers it on the security-info page.
func (c *cli) adUserMFA(tenant func() string) *cobra.Command {
	mfa := &cobra.Command{Use: "mfa", Short: "A user's multi-factor authentication (TOTP authenticator)"}
	var id string
	var replace, qr bool
	enable := showCommand(c, "enable --id ID|UPN", "Enrol a TOTP authenticator for a user and print its otpauth:// URI and QR code (shown once)", cobra.NoArgs,
		withTenantOperator(c, tenant, func(ctx context.Context, op *azclient.Operator, tenantID string, _ []string) (*azclient.Authenticator, error) {
			a, err := op.EnrollAuthenticator(ctx, tenantID, id, replace)
			var re *azclient.ResponseError
			if errors.As(err, &re) && re.StatusCode == http.StatusConflict {
				return nil, fmt.Errorf("%s already has an authenticator: pass --replace to enrol a new one (the old one's codes stop working)", id)
			}
			if err != nil {
				return nil, err
			}
			if qr {
				block, err := qrBlock(a.OtpauthURI)
				if err != nil {
					return nil, fmt.Errorf("the authenticator was enrolled but its QR code could not be drawn (use the URI): %w", err)
				}
				c.notef("Scan with an authenticator app (this is the only time the secret is shown):\n\n%s", block)
			}
			return a, nil
		}), func(a *azclient.Authenticator) table {
			return fields("userPrincipalName", a.UserPrincipalName, "userId", a.UserID, "otpauthUri", a.OtpauthURI, "secret", a.Secret)
		})
	objectOrUPN.add(enable, &id)
	enable.Flags().BoolVar(&replace, "replace", false, "replace the user's authenticator if there is one (its codes stop working)")
	enable.Flags().BoolVar(&qr, "qr", true, "draw the QR code on stderr")
	mfa.AddCommand(enable)
	return mfa
}

// qrBlock draws text as a QR code (error correction M, with its quiet
// zone) in half-block characters, two modules a line: dark modules are
// spaces, so the code reads right on a terminal with a dark background,
// as authenticator apps' scanners expect.
func qrBlock(text string) (string, error) {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return "", err
	}
	return q.ToSmallString(false), nil
}

// --- groups ---

// resolveGroup finds a group by object id or, as az does, by display name
// (which must name exactly one group).
func resolveGroup(ctx context.Context, g *azclient.Graph, ref string) (*azclient.Group, error) {
	if azclient.IsGUID(ref) {
		return g.GetGroup(ctx, ref)
	}
	groups, err := g.ListGroups(ctx, "displayName eq "+azclient.ODataString(ref))
	if err != nil {
		return nil, err
	}
	switch len(groups) {
	case 0:
		return nil, fmt.Errorf("no group is named %q", ref)
	case 1:
		return &groups[0], nil
	}
	return nil, fmt.Errorf("%d groups are named %q: pass the object id", len(groups), ref)
}

var memberHeader = []string{"TYPE", "DISPLAY NAME", "NAME", "OBJECT ID"}

// memberRow shows a member's kind (user, group, servicePrincipal) and the
// name it signs in by: a user's UPN or a service principal's appId.
func memberRow(m azclient.DirectoryObject) []string {
	name := m.UserPrincipalName
	if name == "" {
		name = m.AppID
	}
	return []string{strings.TrimPrefix(m.ODataType, "#microsoft.graph."), m.DisplayName, name, m.ID}
}

func (c *cli) adGroupMemberList(sess sessionFunc) *cobra.Command {
	var group string
	cmd := listCommand(c, "List a group's direct members",
		withGraph(sess, func(ctx context.Context, g *azclient.Graph) ([]azclient.DirectoryObject, error) {
			grp, err := resolveGroup(ctx, g, group)
			if err != nil {
				return nil, err
			}
			return g.ListGroupMembers(ctx, grp.ID)
		}), memberHeader, memberRow)
	groupFlag.add(cmd, &group)
	return cmd
}

func (c *cli) adGroupMemberAdd(sess sessionFunc) *cobra.Command {
	return c.adGroupMemberChange(sess, "add", "Add a user, service principal or group to a group", "Added %s to group %s.",
		(*azclient.Graph).AddGroupMember)
}

func (c *cli) adGroupMemberRemove(sess sessionFunc) *cobra.Command {
	return c.adGroupMemberChange(sess, "remove", "Remove a member from a group", "Removed %s from group %s.",
		(*azclient.Graph).RemoveGroupMember)
}

// adGroupMemberChange is ad group member add or remove: change calls
// Graph's members/$ref with the group's and the member's object ids.
func (c *cli) adGroupMemberChange(sess sessionFunc, verb, short, done string,
	change func(g *azclient.Graph, ctx context.Context, groupID, memberID string) error) *cobra.Command {
	var group, member string
	cmd := &cobra.Command{
		Use:   verb + " --group ID|NAME --member-id ID",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := sess()
			if err != nil {
				return err
			}
			grp, err := resolveGroup(cmd.Context(), s.graph, group)
			if err != nil {
				return err
			}
			if err := change(s.graph, cmd.Context(), grp.ID, member); err != nil {
				return err
			}
			c.notef(done, member, grp.DisplayName)
			return nil
		},
	}
	groupFlag.add(cmd, &group)
	requiredFlag(cmd, &member, "member-id", "", "object id of the member (required)")
	return cmd
}

// readJSONArg reads a JSON flag the way az does: the value itself, or,
// when it starts with @, the content of the file it names.
func readJSONArg(flag, value string) ([]byte, error) {
	name, isFile := strings.CutPrefix(value, "@")
	if !isFile {
		return []byte(value), nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	defer f.Close()
	const limit = 1 << 20
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	if len(data) > limit {
		return nil, fmt.Errorf("--%s: %s is larger than 1 MiB", flag, name)
	}
	return data, nil
}
