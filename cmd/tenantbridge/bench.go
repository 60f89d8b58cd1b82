package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/bench"
)

// benchCmd measures a running server through its public APIs.
func (c *cli) benchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a running server under load, through its public APIs",
	}
	cmd.AddCommand(c.benchTokenCmd(), c.benchSecretGetCmd(), c.benchQueueCmd(), c.benchFanoutCmd(), c.benchPasswordGuessCmd())
	cmd.PersistentFlags().StringSlice("address", nil, "spread the load's HTTPS connections over these servers of one fleet too (host:port, repeat or comma-separate), as a load balancer would (AMQP over WebSockets too; --amqp AMQPS goes to its one address); set-up goes to the server of --data too")
	return cmd
}

// runBench points a bench run at the running server (server) with progress
// on stderr (log), runs it, and prints its report when the run got far
// enough to have one (ran), before returning the run's error.
func runBench[R any](c *cli, cmd *cobra.Command, server *azclient.OperatorCredential, log *io.Writer,
	run func(context.Context) (R, error), ran func(R) bool, print func(io.Writer, R, string) error) error {
	var err error
	if *server, err = c.serverInfo(); err != nil {
		return err
	}
	if server.Spread, err = cmd.Flags().GetStringSlice("address"); err != nil {
		return err
	}
	for _, a := range server.Spread {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("--address %q is not host:port", a)
		}
	}
	if server.Key == "" {
		return errors.New("the operator credential in " + c.dataDir + " has no key")
	}
	*log = c.stderr
	report, runErr := run(cmd.Context())
	if ran(report) {
		var err error
		if c.structured(cmd) {
			err = c.emit(cmd, report)
		} else {
			err = print(c.stdout, report, outputTable)
		}
		if err != nil {
			return err
		}
	}
	return runErr
}

func (c *cli) benchTokenCmd() *cobra.Command {
	var (
		opts       bench.TokenOptions
		credential string
	)
	cmd := &cobra.Command{
		Use:   "token [--concurrency N] [--duration D] [--warmup D] [--credential secret|certificate|federated|all]",
		Short: "Load the token endpoint with client-credentials requests and report tokens/s and latency per credential kind",
		Long: `token measures the running server's token service (the server of --data).

It creates a throwaway tenant (bench<digits>) through the operator API and, as
that tenant's administrator through Graph, registers an application with a
client secret, a certificate (RSA-2048, made in memory) and a federated
credential trusting a managed identity of the same tenant (a user-assigned
identity and a workload, through the operator API; the identity's token for
api://AzureADTokenExchange is the assertion). Then, for each credential kind,
--concurrency goroutines post client_credentials requests for
https://graph.microsoft.com/.default to the tenant's v2 token endpoint, back
to back, over one transport with kept-alive connections (HTTP/1.1, one
connection per goroutine; --http2 for one multiplexed HTTP/2 connection):
first for --warmup, uncounted, then for --duration.

It reports, per kind, successful tokens per second, the count, the errors (by
AADSTS code and status) and the p50, p90, p99 and maximum latency of the
successful requests (exact, from every sample), the connections opened and
the CPU the load generator itself used; and the server's memory at rest, when
the server reports it. The certificate kind signs a fresh PS256 assertion per
request, which costs the client about a millisecond of CPU; --presign signs
them before the clock starts instead (at most (warm-up + duration) ×
--presign-rate of them).

The tenant is deleted at the end (unless --keep), also after Ctrl-C, which
stops the load early and reports what was measured.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			kinds, err := bench.ParseKinds(credential)
			if err != nil {
				return err
			}
			opts.Kinds = kinds
			if opts.Concurrency < 1 {
				return errors.New("--concurrency must be at least 1")
			}
			if opts.Duration <= 0 {
				return errors.New("--duration must be positive")
			}
			return runBench(c, cmd, &opts.Server, &opts.Log, func(ctx context.Context) (bench.TokenReport, error) {
				return bench.RunToken(ctx, opts)
			}, func(r bench.TokenReport) bool { return r.Tenant != "" || len(r.Results) > 0 }, bench.Print)
		},
	}
	f := cmd.Flags()
	f.IntVarP(&opts.Concurrency, "concurrency", "c", bench.DefaultConcurrency, "goroutines sending requests back to back")
	f.DurationVarP(&opts.Duration, "duration", "d", bench.DefaultDuration, "measured window of each credential kind")
	f.DurationVar(&opts.Warmup, "warmup", 2*time.Second, "uncounted load before each kind's window")
	f.StringVar(&credential, "credential", "all", "credential kinds: secret, certificate, federated (comma-separated) or all")
	f.BoolVar(&opts.Presign, "presign", false, "sign the certificate kind's assertions before the clock starts")
	f.IntVar(&opts.PresignRate, "presign-rate", bench.DefaultPresignRate, "with --presign: assertions made per second of warm-up and window")
	f.BoolVar(&opts.HTTP2, "http2", false, "send every request over one HTTP/2 connection instead of one HTTP/1.1 connection per goroutine")
	f.BoolVar(&opts.Keep, "keep", false, "keep the bench tenant instead of deleting it")
	return cmd
}

func (c *cli) benchSecretGetCmd() *cobra.Command {
	var opts bench.SecretGetOptions
	cmd := &cobra.Command{
		Use:   "secret-get [--concurrency N] [--duration D] [--warmup D] [--keep]",
		Short: "Load Key Vault with authorized secret reads and report reads/s and latency",
		Long: `secret-get measures the running server's Key Vault data plane (the server of --data).

It creates a throwaway tenant (bench<digits>) through the operator API and, as
that tenant's administrator through Resource Manager, a resource group and a
vault (bench<digits>-kv, Azure RBAC permission model). It assigns the
administrator's service principal Key Vault Secrets Officer on the vault to
store one secret through the data plane, then Key Vault Secrets User, and
removes the Officer assignment, so that every measured read is authorized by
Key Vault Secrets User alone.

Then --concurrency goroutines send GET
https://{vault}.vault.azure.net/secrets/{name}/?api-version=7.5 back to back
with one bearer token (client credentials for https://vault.azure.net/.default,
fetched once and refreshed only if the run outlives it), over one transport
with one kept-alive HTTP/1.1 connection per goroutine dialing the listen
address: first for --warmup, uncounted, then for --duration.

It reports authorized reads per second, the count, the errors (by Key Vault
error code and status), the p50, p90, p99 and maximum latency (exact, from
every sample), the connections opened, the CPU the load generator used, and
the server's memory at rest and after the load (GET /_operator/v1/stats).

The tenant and its vault are deleted at the end (unless --keep), also after
Ctrl-C, which stops the load early and reports what was measured.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Concurrency < 1 {
				return errors.New("--concurrency must be at least 1")
			}
			if opts.Duration <= 0 {
				return errors.New("--duration must be positive")
			}
			return runBench(c, cmd, &opts.Server, &opts.Log, func(ctx context.Context) (bench.SecretGetReport, error) {
				return bench.RunSecretGet(ctx, opts)
			}, func(r bench.SecretGetReport) bool { return r.Tenant != "" }, bench.PrintSecretGet)
		},
	}
	f := cmd.Flags()
	f.IntVarP(&opts.Concurrency, "concurrency", "c", bench.DefaultConcurrency, "goroutines sending reads back to back")
	f.DurationVarP(&opts.Duration, "duration", "d", bench.DefaultDuration, "measured window")
	f.DurationVar(&opts.Warmup, "warmup", 2*time.Second, "uncounted load before the window")
	f.BoolVar(&opts.Keep, "keep", false, "keep the bench tenant and its vault instead of deleting them")
	return cmd
}

func (c *cli) benchQueueCmd() *cobra.Command {
	var opts bench.QueueOptions
	cmd := &cobra.Command{
		Use:   "queue [--protocol rest|amqp] [--senders N] [--receivers N] [--duration D] [--warmup D] [--size BYTES] [--keep]",
		Short: "Load a Service Bus queue with send → peek-lock → complete and report messages/s end to end",
		Long: `queue measures the running server's Service Bus data plane (the server of --data).

It creates a throwaway tenant (bench<digits>) through the operator API and, as
that tenant's administrator through Resource Manager, a resource group, a
namespace (bench<digits>-sb) and a queue "bench" with the default properties,
and gives the administrator Azure Service Bus Data Owner on the namespace.

Then --senders goroutines POST messages of --size bytes to
https://{namespace}.servicebus.windows.net/bench/messages back to back (each
201 means the message is durable), while --receivers goroutines peek-lock
(POST .../messages/head?timeout=5) and complete (DELETE on the Location) back
to back, all with one bearer token over kept-alive HTTP/1.1 connections
dialing the listen address: first for --warmup, uncounted, then for
--duration.

With --protocol amqp the same load goes over AMQP 1.0 instead, through the
real Service Bus SDK (azservicebus) to the server's AMQPS listener (--amqp,
serve's --amqp-listen; TLS trusting the data directory's CA, the namespace's
name for SNI) with the administrator's Entra credential: each sender calls
SendMessage back to back (or, with --batch N, SendMessageBatch with N
messages), each receiver has a peek-lock receiver taking one message at a
time (ReceiveMessages with a 5 s limit) and calls CompleteMessage; every
sender and receiver is a link (and two sessions) of its own, spread over
--connections AMQP connections (by default one per 24 of them: servers
before 073cbb2 granted only 64 sessions per connection). With --amqp-client go-amqp the same
links are made with go-amqp, the AMQP 1.0 library under the SDK, used
directly (a $cbs put-token per connection, a session per link, peek-lock as
receiver settle mode second with one credit, complete as accepted): a load
generator that leaves more of the machine's CPU to the server, as the
RabbitMQ comparison's amqp091-go does.

It reports messages completed per second (end to end), sends per second, the
errors, the send latency and the end-to-end latency (from a message's send to
its completion, by the send time written in its body), the CPU the load
generator used, and the server's memory at rest and after the load.

The tenant and its namespace are deleted at the end (unless --keep).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Senders < 1 || opts.Receivers < 1 {
				return errors.New("--senders and --receivers must be at least 1")
			}
			if opts.Duration <= 0 {
				return errors.New("--duration must be positive")
			}
			if opts.MessageBytes < 1 || opts.MessageBytes > 200_000 {
				return errors.New("--size must be from 1 to 200000 bytes")
			}
			if opts.Transport != bench.TransportREST && opts.Transport != bench.TransportAMQP {
				return errors.New("--protocol must be rest or amqp")
			}
			if opts.Batch < 1 || opts.Connections < 0 {
				return errors.New("--batch must be at least 1, --connections at least 0")
			}
			if opts.Transport == bench.TransportREST && (opts.Batch > 1 || cmd.Flags().Changed("connections") || cmd.Flags().Changed("amqp") || cmd.Flags().Changed("amqp-client")) {
				return errors.New("--batch, --connections, --amqp and --amqp-client are for --protocol amqp")
			}
			if opts.AMQPClient != bench.AMQPClientSDK && opts.AMQPClient != bench.AMQPClientGoAMQP {
				return errors.New("--amqp-client must be sdk or go-amqp")
			}
			return runBench(c, cmd, &opts.Server, &opts.Log, func(ctx context.Context) (bench.QueueReport, error) {
				return bench.RunQueue(ctx, opts)
			}, func(r bench.QueueReport) bool { return r.Tenant != "" }, bench.PrintQueue)
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.Senders, "senders", bench.DefaultConcurrency, "goroutines sending back to back")
	f.IntVar(&opts.Receivers, "receivers", bench.DefaultConcurrency, "goroutines peek-locking and completing back to back")
	f.DurationVarP(&opts.Duration, "duration", "d", bench.DefaultDuration, "measured window")
	f.DurationVar(&opts.Warmup, "warmup", 2*time.Second, "uncounted load before the window")
	f.IntVar(&opts.MessageBytes, "size", 256, "message body size in bytes")
	f.StringVar(&opts.Transport, "protocol", bench.TransportREST, "the data plane's wire protocol: rest (HTTPS) or amqp (AMQP 1.0 through azservicebus)")
	f.StringVar(&opts.AMQPAddr, "amqp", bench.DefaultAMQPAddr, "with --protocol amqp: the server's AMQPS address (serve's --amqp-listen)")
	f.IntVar(&opts.Batch, "batch", 1, "with --protocol amqp: messages per send (SendMessageBatch when above 1)")
	f.IntVar(&opts.Connections, "connections", 0, "with --protocol amqp: AMQP connections (azservicebus clients) the senders' and receivers' links share (0: one per 24 senders and receivers)")
	f.StringVar(&opts.AMQPClient, "amqp-client", bench.AMQPClientSDK, "with --protocol amqp: the client, sdk (azservicebus) or go-amqp (the AMQP library under it, used directly: a lighter load generator)")
	f.BoolVar(&opts.Keep, "keep", false, "keep the bench tenant and its namespace instead of deleting them")
	return cmd
}
