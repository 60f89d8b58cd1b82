package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

// The shapes most admin commands share. A show, list or delete command is a
// declaration: its use line, its help, how to fetch what it acts on, and how
// to print that as a table. A fetch is a func(cmd, args) (T, error); withGraph,
// withOperator and withTenantOperator make one from a call that needs the
// tenant's Graph, the operator API, or the operator API in --tenant.

// fetchFunc gets what a command prints (or has deleted).
type fetchFunc[T any] func(cmd *cobra.Command, args []string) (T, error)

// showCommand fetches one object and prints it: as JSON, or as a table of
// its fields. Create commands are show commands whose fetch creates.
func showCommand[T any](c *cli, use, short string, args cobra.PositionalArgs, fetch fetchFunc[*T], fields func(*T) table) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := fetch(cmd, args)
			if err != nil {
				return err
			}
			return c.render(cmd, v, func() table { return fields(v) })
		},
	}
}

// listCommand fetches a list and prints it: as JSON (none as []), or as a
// table with header and a row for each item.
func listCommand[T any](c *cli, short string, fetch fetchFunc[[]T], header []string, row func(T) []string) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			items, err := fetch(cmd, args)
			if err != nil {
				return err
			}
			if items == nil {
				items = []T{}
			}
			return c.render(cmd, items, func() table {
				t := table{header: header}
				for _, item := range items {
					t.rows = append(t.rows, row(item))
				}
				return t
			})
		},
	}
}

// deleteCommand runs remove, which looks the object up and deletes it, and
// prints the note about the object it deleted.
func deleteCommand[T any](c *cli, use, short string, args cobra.PositionalArgs, remove fetchFunc[*T], note func(*T) string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := remove(cmd, args)
			if err != nil {
				return err
			}
			c.notef("%s", note(v))
			return nil
		},
	}
}

// requiredFlag adds the string flag --name (-shorthand, if not "") that a
// command cannot run without.
func requiredFlag(cmd *cobra.Command, p *string, name, shorthand, usage string) {
	cmd.Flags().StringVarP(p, name, shorthand, "", usage)
	_ = cmd.MarkFlagRequired(name)
}

// withGraph makes a fetch of call on the Graph of the tenant sess signs in
// to. ad commands take their values from flags, so call needs no args.
func withGraph[T any](sess sessionFunc, call func(ctx context.Context, g *azclient.Graph) (T, error)) fetchFunc[T] {
	return func(cmd *cobra.Command, _ []string) (T, error) {
		s, err := sess()
		if err != nil {
			var zero T
			return zero, err
		}
		return call(cmd.Context(), s.graph)
	}
}

// withOperator makes a fetch of call on the operator API.
func withOperator[T any](c *cli, call func(ctx context.Context, op *azclient.Operator, args []string) (T, error)) fetchFunc[T] {
	return func(cmd *cobra.Command, args []string) (T, error) {
		op, err := c.operator()
		if err != nil {
			var zero T
			return zero, err
		}
		return call(cmd.Context(), op, args)
	}
}

// withTenantOperator makes a fetch of call on the operator API in the
// tenant --tenant names (or the only profile's tenant).
func withTenantOperator[T any](c *cli, tenant func() string,
	call func(ctx context.Context, op *azclient.Operator, tenantID string, args []string) (T, error)) fetchFunc[T] {
	return withOperator(c, func(ctx context.Context, op *azclient.Operator, args []string) (T, error) {
		t, err := c.operatorTenant(ctx, op, tenant())
		if err != nil {
			var zero T
			return zero, err
		}
		return call(ctx, op, t.TenantID, args)
	})
}
