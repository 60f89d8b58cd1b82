package main

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/tenantbridge/tenantbridge/internal/server"
)

// demoCommand is `tenantbridge demo`: the five seed scenarios, end to end.
func (c *cli) demoCommand() *cobra.Command {
	var listen, logLevel string
	var exit, keep bool
	cmd := &cobra.Command{
		Use:   "demo [--data DIR] [--listen ADDR] [--keep]",
		Short: "A guided demo: the five seed scenarios (S1–S5) end to end, across a publisher and three customer tenants",
		Long: `demo starts tenantbridge in-process on the embedded store (in a fresh
temporary directory unless --data is given), builds a world of one publisher
tenant (fabrikam) and three customer tenants (contoso, northwind, adatum), and
runs the five seed scenarios through the same wire APIs as any Azure client:

  S1  a managed application registers with its publisher's broker, which
      delivers a credential into the installation's own vault (client secret,
      or federated with nothing secret); uninstalling removes it all
  S2  the publisher in the customer's data plane: listTokens, and a
      user-assigned identity whose federated credential trusts the publisher
  S3  a multi-tenant application: admin consent (sign-in with password and
      MFA), a role the customer grants, a token in the customer's tenant, and
      revocation (continuous access evaluation on the token already issued)
  S4  the Secure Application Model: a partner administrator's consent with MFA,
      the refresh token in a vault, access tokens minted with rotation
  S5  commands to every customer's queue, replies from all of them

Each step says what crossed which tenant boundary, with which credential,
and what the owning tenant allowed. It ends with a summary table and exits 0
when every scenario passed (non-zero, naming the failed step, otherwise).
With --keep the server keeps running afterwards, for the CLI to explore.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if exit && keep {
				return errors.New("--exit and --keep contradict each other")
			}
			logger, err := newLogger(c.stderr, logLevel)
			if err != nil {
				return err
			}
			created := false
			if f := cmd.Flag("data"); f == nil || !f.Changed {
				dir, err := os.MkdirTemp("", "tenantbridge-demo-")
				if err != nil {
					return err
				}
				c.dataDir, created = dir, true
			}
			ctx := cmd.Context()
			bt, err := newDemoBrokerTLS()
			if err != nil {
				return err
			}
			srv, err := server.New(ctx, server.Config{DataDir: c.dataDir, Listen: listen, Logger: logger,
				FederationRoots: []*x509.Certificate{bt.ca}})
			if err != nil {
				return err
			}
			ln, err := srv.Listen()
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			stop := serveInBackground(ctx, srv, ln)
			rec := &bytes.Buffer{}
			d := &scenarioDemo{c: c, out: io.MultiWriter(c.stdout, rec), rec: rec, brokerTLS: bt}
			runErr := d.runScenarios(ctx, srv)
			if keep {
				d.printExplore(srv)
				<-ctx.Done()
			}
			d.close()
			stopErr := stop()
			if created && !keep {
				_ = os.RemoveAll(c.dataDir)
			}
			return errors.Join(runErr, stopErr)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "HTTPS listen address (port 0 picks a free port)")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the server (and the demo's brokers and workers) running afterwards, to explore")
	cmd.Flags().BoolVar(&exit, "exit", false, "stop when the demo is done (the default; kept for scripts)")
	cmd.Flags().StringVar(&logLevel, "log-level", "warn", "server log level: debug, info, warn or error")
	return cmd
}

func (d *scenarioDemo) printExplore(srv *server.Server) {
	url := ""
	if cred, err := d.c.serverInfo(); err == nil {
		url = cred.URL
	}
	d.printf("\ntenantbridge keeps serving on %s. In another terminal, explore with the CLI:\n\n", url)
	d.printf("  export TENANTBRIDGE_DATA=%s\n", dataDirOf(srv))
	d.printf("  export SSL_CERT_FILE=%s\n", srv.CA().CertFile())
	d.printf("  tenantbridge tenant list\n")
	if d.pub != nil && len(d.cust) > 0 {
		d.printf("  tenantbridge ad app list --tenant %s\n", d.pub.Name)
		d.printf("  tenantbridge ad sp list --tenant %s\n", d.cust[2].Name)
		d.printf("  tenantbridge audit --tenant %s --by-tenant %s\n", d.cust[0].Name, d.pub.Name)
		d.printf("  tenantbridge servicebus namespace list --tenant %s\n", d.cust[1].Name)
		// A person can then try the browser flows (S3, S4) as any of the
		// Global Administrators the demo made: the sign-in name, the
		// password, and the TOTP secret as the otpauth:// URL an
		// authenticator app takes. Printed only here, once the demo is
		// over and only with --keep: these are live credentials of the
		// kept server.
		d.printf("\nTo sign in as a person (docs/scenarios/S3.md, S4.md), each tenant's Global Administrator:\n\n")
		for _, a := range append([]*actor{d.pub}, d.cust...) {
			if a == nil || a.upn == "" {
				continue
			}
			d.printf("  %-10s %s  password %s\n             TOTP %s\n", a.Name, a.upn, a.password, a.totpURL)
		}
	}
	// The web console (package console) is on the same address; the
	// administrators above sign in to it with the sign-in pages.
	d.printf("\nThe console (trust graph and cross-tenant audit): %s/console/\n", url)
	d.printf("  sign in as a Global Administrator above (their own tenant), or as the operator\n")
	d.printf("  with the key in %s (every tenant); your browser must trust %s\n", srv.OperatorFile(), srv.CA().CertFile())
	d.printf("\nPress Ctrl-C to stop.\n")
}
