package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/spf13/cobra"

	"github.com/tenantbridge/tenantbridge/internal/broker/fanout"
)

// Environment of the worker, for the flags it defaults.
const (
	envWorkerCommandQueue = "TENANTBRIDGE_COMMAND_QUEUE"
	envWorkerStatusQueue  = "TENANTBRIDGE_STATUS_QUEUE"
)

// workerCommand is the customer's side of seed 004.
func (c *cli) workerCommand() *cobra.Command {
	var (
		commandQueue, statusQueue, logLevel string
		timeout                             time.Duration
		azure                               bool
	)
	cmd := &cobra.Command{
		Use:   "worker --command-queue URL [--status-queue URL]",
		Short: "Run a customer's worker: execute the provider's commands from a queue and reply on the status queue, as a managed identity",
		Long: `worker is the customer's side of cross-tenant messaging (seed 004).

It runs under its managed identity (ManagedIdentityCredential: IDENTITY_ENDPOINT
and IDENTITY_HEADER, and AZURE_CLIENT_ID for a user-assigned identity; see
tenantbridge env --identity), which needs Azure Service Bus Data Receiver on
the command queue and Data Sender on the status queue. It takes commands
from the command queue with the Service Bus SDK (azservicebus, AMQP 1.0, one
peek-lock receiver waiting for the next command), executes each by its
Subject (Label):

  ping   replies {"status":"ok","result":{"pong":"<the host's UTC time>"}}
  echo   replies the command's JSON body
  other  replies {"status":"error","error":"unknown command ..."}

sends the reply to the status queue with the command's CorrelationId (Subject
"ok" or "error"), then completes the command. A command whose MessageId was
already answered (a redelivery or a duplicate send) is completed without
running again. Without --status-queue the reply goes to the command's
ReplyTo, only if that is a queue of the command queue's namespace.

With a server's data directory (--data) the queues' names are reached at that
server, with AMQP over WebSockets on its HTTPS listener
(wss://NS.servicebus.windows.net/$servicebus/websocket). --azure (or no
server in the data directory) uses the network as it is: the SDK's AMQPS on
port 5671 of the namespace, or, when HTTPS_PROXY applies to the namespace,
AMQP over WebSockets through that proxy (the SDKs' way through proxies; so
with the variables tenantbridge env sets, through tenantbridge's proxy; the
CA from SSL_CERT_FILE). It runs until interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			commandQueue = envOr(commandQueue, c.getenv(envWorkerCommandQueue))
			statusQueue = envOr(statusQueue, c.getenv(envWorkerStatusQueue))
			if commandQueue == "" {
				return fmt.Errorf("the command queue is not configured: pass --command-queue or set %s", envWorkerCommandQueue)
			}
			logger, err := newLogger(c.stderr, logLevel)
			if err != nil {
				return err
			}
			copts, hc, err := c.workerTransport(azure)
			if err != nil {
				return err
			}
			opts := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: azcore.ClientOptions{Transport: hc}}
			if id := c.getenv("AZURE_CLIENT_ID"); id != "" {
				opts.ID = azidentity.ClientID(id)
			}
			mi, err := azidentity.NewManagedIdentityCredential(opts)
			if err != nil {
				return fmt.Errorf("the worker's managed identity: %w", err)
			}
			w, err := fanout.NewWorker(fanout.WorkerConfig{Credential: mi, CommandQueue: commandQueue, StatusQueue: statusQueue,
				ClientOptions: copts, Logger: logger})
			if err != nil {
				return err
			}
			c.notef("worker: taking commands from %s", commandQueue)
			err = w.Run(cmd.Context())
			c.notef("worker: stopped after %d commands (%d duplicates dropped)", w.Executed(), w.Dropped())
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&commandQueue, "command-queue", "", "command queue URL, https://NS.servicebus.windows.net/QUEUE (env "+envWorkerCommandQueue+")")
	f.StringVar(&statusQueue, "status-queue", "", "status queue URL (env "+envWorkerStatusQueue+"); default: the command's ReplyTo in the same namespace")
	f.DurationVar(&timeout, "receive-timeout", time.Minute, "ignored: over AMQP a receive waits for the next command")
	_ = f.MarkDeprecated("receive-timeout", "over AMQP a receive waits for the next command with no timeout")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.BoolVar(&azure, "azure", false, "ignore the data directory's server: reach the queues' real names")
	return cmd
}

// workerTransport says how the worker reaches its namespace: the data
// directory's server when there is one (and not --azure), over WebSockets
// through the transport that dials it for Azure's names and trusts its CA;
// otherwise the SDK's defaults, but over WebSockets through the proxy for a
// namespace HTTPS_PROXY applies to. hc is for the managed-identity
// endpoint.
func (c *cli) workerTransport(azure bool) (fanout.ClientOptionsFunc, *http.Client, error) {
	if _, err := os.Stat(filepath.Join(c.dataDir, operatorFile)); azure || errors.Is(err, os.ErrNotExist) {
		return viaProxy(http.DefaultTransport), &http.Client{Timeout: time.Minute}, nil
	}
	cred, err := c.serverInfo()
	if err != nil {
		return nil, nil, err
	}
	local, err := cred.Local()
	if err != nil {
		return nil, nil, err
	}
	t, err := local.Transport()
	if err != nil {
		return nil, nil, err
	}
	t.ResponseHeaderTimeout = 0
	return fanout.WebSockets(t), &http.Client{Transport: t, Timeout: time.Minute}, nil
}

// viaProxy is AMQP over WebSockets through rt for a namespace the
// environment's HTTPS_PROXY applies to (AMQPS cannot cross an HTTP proxy),
// and the SDK's defaults, untouched, for any other.
func viaProxy(rt http.RoundTripper) fanout.ClientOptionsFunc {
	ws := fanout.WebSockets(rt)
	return func(host string) *azservicebus.ClientOptions {
		if p, err := http.ProxyFromEnvironment(&http.Request{URL: &url.URL{Scheme: "https", Host: host}}); err == nil && p != nil {
			return ws(host)
		}
		return nil
	}
}
