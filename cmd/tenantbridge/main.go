// Command tenantbridge runs a local, multi-tenant Entra ID / Microsoft Graph
// compatible cloud and administers it with az-style verbs. Every
// tenant-scoped command authenticates through the token service and calls
// Graph through the same wire APIs any Azure SDK client uses.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jmespath-community/go-jmespath"
	"github.com/spf13/cobra"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the process exit code.
// Everything a command prints goes to stdout and stderr, so tests can run
// commands in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	c := &cli{stdout: stdout, stderr: stderr, getenv: getenv}
	root := c.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if cmd, err := root.ExecuteContextC(ctx); err != nil {
		if msg := c.serverDown(cmd, err); msg != "" {
			fmt.Fprintln(stderr, "error: "+msg)
			return 1
		}
		fmt.Fprintln(stderr, "error: "+azclient.Describe(err))
		return 1
	}
	return 0
}

// refuseUnknownSubcommands makes every group below root (a command that
// only holds others, like ad or servicebus queue) refuse a subcommand it
// does not have, as root does, with cobra's suggestions, instead of
// printing its help and exiting 0: a typo in a script must fail.
func refuseUnknownSubcommands(root *cobra.Command) {
	for _, cmd := range root.Commands() {
		if cmd.HasSubCommands() && cmd.Run == nil && cmd.RunE == nil {
			cmd.Args = cobra.ArbitraryArgs
			cmd.RunE = func(cmd *cobra.Command, args []string) error {
				if len(args) == 0 {
					return cmd.Help()
				}
				msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
				if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
					msg += "; did you mean " + strings.Join(s, " or ") + "?"
				}
				return errors.New(msg + " (see " + cmd.CommandPath() + " --help)")
			}
		}
		refuseUnknownSubcommands(cmd)
	}
}

// serverDown says, in one line, that a command failed because the server
// of its data directory does not answer, instead of the credential's or
// the dialer's own words: "" when that is not why. It is why when the
// error is one of reaching a host and the server's address (from
// operator.json) refuses a connection now. Commands that are no clients of
// a running server (serve, demo, broker, version) are left alone.
func (c *cli) serverDown(cmd *cobra.Command, err error) string {
	top := cmd
	for top.HasParent() && top.Parent().HasParent() {
		top = top.Parent()
	}
	switch top.Name() {
	case "serve", "demo", "broker", "version", "help", "completion":
		return ""
	}
	text := err.Error()
	if !errors.Is(err, syscall.ECONNREFUSED) && !strings.Contains(text, "connection refused") &&
		!strings.Contains(text, "unable to resolve an endpoint") && !strings.Contains(text, "dial tcp") {
		return ""
	}
	cred, rerr := c.serverInfo()
	if rerr != nil {
		return ""
	}
	u, perr := url.Parse(cred.URL)
	if perr != nil || u.Host == "" {
		return ""
	}
	conn, derr := net.DialTimeout("tcp", u.Host, time.Second)
	if derr == nil {
		conn.Close()
		return ""
	}
	return fmt.Sprintf("the tenantbridge server at %s (%s) does not answer: is tenantbridge serve running? (%v)",
		u.Host, filepath.Join(c.dataDir, operatorFile), derr)
}

// cli holds what every command shares: its output streams and the global flags.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string

	dataDir string // --data
	output  string // -o
	query   string // --query
	debug   bool   // --debug
	profile string // --profile

	// compiled is --query compiled, and queryKeys the key order of its
	// multi-select hashes (see multiSelectKeys); nil without --query.
	compiled  jmespath.JMESPath
	queryKeys [][]string
}

func (c *cli) rootCommand() *cobra.Command {
	defaultData := c.getenv("TENANTBRIDGE_DATA")
	if defaultData == "" {
		defaultData = filepath.Join(".", server.DefaultDataDir)
	}
	root := &cobra.Command{
		Use:   "tenantbridge",
		Short: "A local multi-tenant Entra ID and Azure cloud, and az-style commands to run it",
		Long: `tenantbridge is a multi-tenant identity and resource plane that speaks Azure's
wire protocols, so unmodified Azure SDK clients and az work against it: the
Entra ID token service (secrets, certificates, federated credentials, managed
identities, the sign-in pages), Microsoft Graph, Resource Manager with RBAC
and managed applications, Key Vault (secrets and keys) and Service Bus queues
(REST and AMQP 1.0), under Azure's own host names through its HTTPS proxy or
DNS responder.

Start one with 'tenantbridge serve', or see it work with 'tenantbridge demo'.
Commands find the server and the CLI profiles in the data directory
(--data, or $TENANTBRIDGE_DATA).`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return c.checkOutputFlags()
		},
	}
	root.PersistentFlags().StringVar(&c.dataDir, "data", defaultData, "data directory of the server and the CLI profiles (env TENANTBRIDGE_DATA)")
	root.PersistentFlags().StringVarP(&c.output, "output", "o", "",
		"output format: "+strings.Join(outputFormats, ", ")+" (default: table at a terminal, json otherwise)")
	root.PersistentFlags().StringVar(&c.query, "query", "", "JMESPath query applied to the JSON output, as az's --query (see https://jmespath.org)")
	root.PersistentFlags().BoolVar(&c.debug, "debug", false, "print each HTTP request and response (method, URL, status, headers; secrets redacted) to stderr")
	root.PersistentFlags().StringVar(&c.profile, "profile", "", "CLI profile to sign in with (see tenantbridge account list; default: the tenant's default profile)")
	root.AddCommand(
		c.serveCommand(),
		c.backupCommand(),
		c.restoreCommand(),
		c.tenantCommand(),
		c.loginCommand(),
		c.logoutCommand(),
		c.accountCommand(),
		c.adCommand(),
		c.auditCommand(),
		c.keysCommand(),
		c.identityCommand(),
		c.workloadCommand(),
		c.envCommand(),
		c.demoCommand(),
		c.benchCmd(),
		c.roleCommand(),
		c.keyvaultCommand(),
		c.servicebusCommand(),
		c.brokerCommand(),
		c.marketplaceCommand(),
		c.workerCommand(),
		c.versionCommand(),
	)
	// cobra's completion command (bash, zsh, fish, powershell), added now
	// so that it refuses an unknown shell like every other group; it
	// prints to the writer root has when it is added.
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.InitDefaultCompletionCmd()
	c.registerCompletions(root)
	refuseUnknownSubcommands(root)
	return root
}

// notef prints a note for people to stderr, keeping stdout for data.
func (c *cli) notef(format string, args ...any) {
	fmt.Fprintf(c.stderr, format+"\n", args...)
}
