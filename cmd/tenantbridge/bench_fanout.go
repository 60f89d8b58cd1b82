package main

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantbridge/tenantbridge/internal/bench"
)

func (c *cli) benchFanoutCmd() *cobra.Command {
	var opts bench.FanoutOptions
	cmd := &cobra.Command{
		Use:   "fanout --customers N [--rounds R] [--workers W] [--setup-concurrency S] [--amqp ADDR] [--keep]",
		Short: "Measure cross-tenant command → reply round trips from a provider to N customer tenants (seed 004)",
		Long: `fanout measures the provider's fleet messaging against the running server (the server of --data).

Setup (timed separately): through the operator API, a provider tenant and N
customer tenants (bench<digits>p, bench<digits>c0000…); the provider's
administrator registers a multi-tenant application with a client secret
(Graph); each customer's administrator provisions the application's service
principal (Graph, what admin consent does), creates a resource group, a
namespace and the queues "commands" and "status", and grants the provider's
service principal Azure Service Bus Data Sender on commands and Data
Receiver on status, and itself Data Owner for the simulated worker (Resource
Manager). --setup-concurrency customers are set up at once.

Then one simulated worker per customer (the customer administrator's
credential) waits on its command queue and answers "ping" on the status
queue, and the provider's messenger (internal/broker/fanout) listens to every
status queue with one peek-lock receiver each, with tokens issued in each
customer tenant. Both speak AMQP 1.0 through the real Service Bus SDK
(azservicebus), one connection per namespace on each side: over WebSockets on
the server's HTTPS listener (wss://NS.servicebus.windows.net/$servicebus/websocket,
what tenantbridge worker does), or with --amqp ADDR over AMQPS to serve's
--amqp-listen. After one uncounted warm-up round, --rounds times, a ping goes
to every customer (--workers concurrent sends) and the round ends when every
reply came back, matched by CorrelationId.

It reports the setup time, replies per second, and the p50/p90/p99/max of
the round trip: from the start of a command's send to its reply's arrival at
the provider, and the server's memory (RSS, heap in use, goroutines, from the
operator API's stats) once the fleet is set up, once every connection and
link is open, and after the rounds. The client runs both the provider and
every worker.

Every tenant is deleted at the end (unless --keep).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Customers < 1 || opts.Customers > 10_000 {
				return errors.New("--customers must be from 1 to 10000")
			}
			if opts.Rounds < 1 {
				return errors.New("--rounds must be at least 1")
			}
			return runBench(c, cmd, &opts.Server, &opts.Log, func(ctx context.Context) (bench.FanoutReport, error) {
				return bench.RunFanout(ctx, opts)
			}, func(r bench.FanoutReport) bool { return r.Provider != "" }, bench.PrintFanout)
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.Customers, "customers", 10, "customer tenants")
	f.IntVar(&opts.Rounds, "rounds", 5, "commands sent to every customer (after one warm-up round)")
	f.IntVar(&opts.Workers, "workers", 64, "concurrent sends of the provider's messenger")
	f.IntVar(&opts.SetupConcurrency, "setup-concurrency", bench.DefaultSetupConcurrency, "customer tenants set up at once")
	f.DurationVar(&opts.RoundTimeout, "round-timeout", time.Minute, "how long a round waits for its replies")
	f.StringVar(&opts.AMQPAddr, "amqp", "", "the server's AMQPS address (serve's --amqp-listen) to use instead of AMQP over WebSockets on its HTTPS listener")
	f.BoolVar(&opts.Keep, "keep", false, "keep the tenants instead of deleting them")
	return cmd
}
