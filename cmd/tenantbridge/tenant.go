package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

func (c *cli) tenantCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tenant",
		Short: "Create, list, show and delete tenants (operator)",
	}
	cmd.AddCommand(c.tenantCreateCommand(), c.tenantListCommand(), c.tenantShowCommand(), c.tenantDeleteCommand())
	return cmd
}

func (c *cli) tenantCreateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "create NAME",
		Short: "Create a tenant NAME.onmicrosoft.com with a bootstrap admin, saved as the CLI profile for it",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			op, err := c.operator()
			if err != nil {
				return err
			}
			t, err := op.CreateTenant(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if t.Admin == nil || t.Admin.ClientID == "" || t.Admin.ClientSecret == "" {
				return fmt.Errorf("tenant %s was created but the server returned no admin credential", t.Name)
			}
			if err := c.saveProfile(profileOf(t)); err != nil {
				return fmt.Errorf("tenant %s was created but its admin credential could not be saved: %w", t.Name, err)
			}
			err = c.render(cmd, t, func() table {
				return fields(
					"tenantId", t.TenantID,
					"name", t.Name,
					"domain", t.Domain,
					"subscriptionId", t.SubscriptionID,
					"admin.clientId", t.Admin.ClientID,
					"admin.clientSecret", t.Admin.ClientSecret,
					"admin.secretExpires", fmtTime(t.Admin.SecretExpires),
				)
			})
			if err == nil {
				c.notef("The admin credential is saved as the CLI profile for %s (%s); the secret is not shown again.", t.Name, c.profilesPath())
			}
			return err
		},
	}
}

func profileOf(t *azclient.Tenant) Profile {
	return Profile{TenantID: t.TenantID, TenantName: t.Name, Domain: t.Domain, SubscriptionID: t.SubscriptionID,
		ClientID: t.Admin.ClientID, ClientSecret: t.Admin.ClientSecret, Bootstrap: true}
}

func tenantRow(t azclient.Tenant) []string {
	return []string{t.Name, t.Domain, t.TenantID, t.SubscriptionID, fmtTime(t.Created)}
}

var tenantHeader = []string{"NAME", "DOMAIN", "TENANT ID", "SUBSCRIPTION ID", "CREATED"}

func (c *cli) tenantListCommand() *cobra.Command {
	return listCommand(c, "List tenants",
		withOperator(c, func(ctx context.Context, op *azclient.Operator, _ []string) ([]azclient.Tenant, error) {
			return op.ListTenants(ctx)
		}), tenantHeader, tenantRow)
}

func (c *cli) tenantShowCommand() *cobra.Command {
	return showCommand(c, "show NAME|ID|DOMAIN", "Show a tenant", exactArgs(1, "NAME|ID|DOMAIN"),
		withOperator(c, func(ctx context.Context, op *azclient.Operator, args []string) (*azclient.Tenant, error) {
			return op.GetTenant(ctx, args[0])
		}),
		func(t *azclient.Tenant) table {
			return fields("tenantId", t.TenantID, "name", t.Name, "domain", t.Domain,
				"subscriptionId", t.SubscriptionID, "created", fmtTime(t.Created))
		})
}

func (c *cli) tenantDeleteCommand() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete NAME|ID|DOMAIN --yes",
		Short: "Delete a tenant and everything in it",
		Args:  exactArgs(1, "NAME|ID|DOMAIN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !yes {
				return fmt.Errorf("deleting tenant %s removes everything in it; add --yes to confirm", args[0])
			}
			op, err := c.operator()
			if err != nil {
				return err
			}
			t, err := op.GetTenant(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := op.DeleteTenant(cmd.Context(), t.TenantID); err != nil {
				return err
			}
			if _, err := c.removeProfile(t.TenantID); err != nil {
				return fmt.Errorf("tenant %s was deleted but its profile could not be removed: %w", t.Name, err)
			}
			c.notef("Deleted tenant %s (%s).", t.Name, t.TenantID)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "confirm the deletion")
	return cmd
}

func (c *cli) auditCommand() *cobra.Command {
	var tenant, byTenant string
	var after int64
	var limit int
	cmd := &cobra.Command{
		Use:   "audit --tenant T [--by-tenant OTHER]",
		Short: "Show the audit log of a tenant: what was done in it and what it did elsewhere (operator)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			op, err := c.operator()
			if err != nil {
				return err
			}
			recs, err := op.Audit(cmd.Context(), azclient.AuditQuery{Tenant: tenant, ByTenant: byTenant, After: after, Limit: limit})
			if err != nil {
				return err
			}
			if recs == nil {
				recs = []azclient.AuditRecord{}
			}
			if c.structured(cmd) {
				return c.emit(cmd, recs)
			}
			names := map[string]string{}
			if ts, err := op.ListTenants(cmd.Context()); err == nil {
				for _, t := range ts {
					names[t.TenantID] = t.Name
				}
			}
			return auditTable(recs, names).write(c.stdout)
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant name, domain or id (required)")
	cmd.Flags().StringVar(&byTenant, "by-tenant", "", "only what principals of this other tenant did in --tenant: what crossed the boundary")
	cmd.Flags().Int64Var(&after, "after", 0, "only records with a sequence number above N")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most N records (default: the server's limit)")
	_ = cmd.MarkFlagRequired("tenant")
	return cmd
}

// auditTable shows records with ids (of tenants, and in the demo of
// principals) replaced by names where known.
func auditTable(recs []azclient.AuditRecord, names map[string]string) table {
	name := func(id string) string {
		if n, ok := names[id]; ok {
			return n
		}
		return id
	}
	t := table{header: []string{"SEQ", "TIME", "ACTION", "RESULT", "ACTOR", "ACTOR TENANT", "TARGET TENANT", "TARGET"}}
	for _, r := range recs {
		t.rows = append(t.rows, []string{strconv.FormatInt(r.Seq, 10), r.Time.UTC().Format("15:04:05.000"), r.Action, r.Result,
			name(r.Actor), name(r.ActorTenant), name(r.TargetTenant), name(r.Target)})
	}
	return t
}

// exactArgs is cobra.ExactArgs with a message that names the argument.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %d argument(s): %s (got %d)", cmd.CommandPath(), n, names, len(args))
		}
		return nil
	}
}
