package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

func (c *cli) keysCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "The token-signing keys: list them and rotate (operator)",
	}
	cmd.AddCommand(c.keysListCommand(), c.keysRotateCommand())
	return cmd
}

var keyHeader = []string{"KID", "STATE", "ACTIVATES", "RETIRES", "REMOVABLE AFTER"}

func keyRow(k azclient.SigningKey) []string {
	return []string{k.KeyID, k.State, fmtTime(k.Activates), fmtTime(k.Retires), fmtTime(k.RemovableAfter)}
}

func (c *cli) keysListCommand() *cobra.Command {
	return listCommand(c, "List the signing keys: pending (published, not yet signing), active (signing) and retired (published until their tokens expire)",
		withOperator(c, func(ctx context.Context, op *azclient.Operator, _ []string) ([]azclient.SigningKey, error) {
			return op.ListKeys(ctx)
		}), keyHeader, keyRow)
}

func (c *cli) keysRotateCommand() *cobra.Command {
	var ahead time.Duration
	cmd := &cobra.Command{
		Use:   "rotate [--publish-ahead 24h]",
		Short: "Make a new signing key: published at once, signing after --publish-ahead; the current key retires then",
		Long: `rotate makes a new token-signing key in the running server. It is published
(JWKS) at once and starts signing new tokens after --publish-ahead, which gives
resource servers that cache the JWKS document time to learn it first. The
current key keeps signing until then, and stays published until every token
it signed has expired. --publish-ahead 0s switches at once (within a second).
On a fleet (servers sharing one store with serve --node-key-file) it must be
at least 60s, so that every node publishes the key before any signs with it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			op, err := c.operator()
			if err != nil {
				return err
			}
			k, err := op.RotateKeys(cmd.Context(), ahead)
			if err != nil {
				return err
			}
			err = c.render(cmd, k, func() table {
				return fields("kid", k.KeyID, "state", k.State, "activates", fmtTime(k.Activates))
			})
			if err == nil {
				c.notef("Signing key %s is published and signs new tokens from %s.", k.KeyID, fmtTime(k.Activates))
			}
			return err
		},
	}
	cmd.Flags().DurationVar(&ahead, "publish-ahead", 24*time.Hour, "how long the new key is published before it signs (e.g. 24h, 0s)")
	return cmd
}
