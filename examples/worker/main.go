// Command worker is the customer's side of cross-tenant messaging (seed
// 004) in one page: it runs under the customer's managed identity, takes
// the provider's commands from a Service Bus queue the customer owns, and
// answers on the customer's status queue, with azidentity and the Service
// Bus SDK (azservicebus, AMQP 1.0). Nothing in it is specific to
// tenantbridge.
//
//	eval "$(tenantbridge env --tenant contoso --identity worker)"
//	go run ./examples/worker contoso-sb.servicebus.windows.net commands status
//
// The identity needs Azure Service Bus Data Receiver on the command queue
// and Data Sender on the status queue. The client speaks AMQPS (port 5671),
// as on Azure; when HTTPS_PROXY applies to the namespace, as after
// `tenantbridge env`, it speaks AMQP over WebSockets through the proxy
// instead (port 443: the Service Bus SDKs' way through a proxy).
// `tenantbridge worker` is the same, with idempotency on MessageId and
// backoff.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/coder/websocket"
)

func main() {
	if len(os.Args) != 4 {
		log.Fatal("usage: worker NAMESPACE COMMAND_QUEUE STATUS_QUEUE (NAMESPACE: e.g. contoso-sb.servicebus.windows.net)")
	}
	namespace, commands, status := os.Args[1], os.Args[2], os.Args[3]
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	opts := &azidentity.ManagedIdentityCredentialOptions{}
	if id := os.Getenv("AZURE_CLIENT_ID"); id != "" {
		opts.ID = azidentity.ClientID(id) // a user-assigned identity
	}
	cred, err := azidentity.NewManagedIdentityCredential(opts)
	if err != nil {
		log.Fatal(err)
	}
	// One client is one AMQP connection, carrying both links.
	client, err := azservicebus.NewClient(namespace, cred, clientOptions(namespace))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(context.Background())
	receiver, err := client.NewReceiverForQueue(commands, nil) // peek-lock
	if err != nil {
		log.Fatal(err)
	}
	sender, err := client.NewSender(status, nil)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("taking commands from %s/%s", namespace, commands)
	for {
		// Waits until a command arrives: no polling, so an idle worker
		// costs only the connection's heartbeats.
		msgs, err := receiver.ReceiveMessages(ctx, 1, nil)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			log.Print(err)
			time.Sleep(5 * time.Second)
			continue
		}
		for _, msg := range msgs {
			handle(ctx, receiver, sender, msg)
		}
	}
}

// handle runs one command, replies with its CorrelationId and completes it.
func handle(ctx context.Context, receiver *azservicebus.Receiver, sender *azservicebus.Sender, msg *azservicebus.ReceivedMessage) {
	name := ""
	if msg.Subject != nil {
		name = *msg.Subject
	}
	status, reply := "ok", map[string]any{"status": "ok", "result": map[string]any{"pong": time.Now().UTC()}}
	if name != "ping" {
		status, reply = "error", map[string]any{"status": "error", "error": fmt.Sprintf("unknown command %q", name)}
	}
	body, _ := json.Marshal(reply)
	err := sender.SendMessage(ctx, &azservicebus.Message{
		MessageID:     to.Ptr("reply:" + msg.MessageID),
		CorrelationID: msg.CorrelationID,
		Subject:       to.Ptr(status),
		ContentType:   to.Ptr("application/json"),
		Body:          body,
	}, nil)
	if err != nil {
		log.Printf("reply to %s: %v", msg.MessageID, err)
		// Abandon: the command comes back for another try.
		_ = receiver.AbandonMessage(ctx, msg, nil)
		return
	}
	if err := receiver.CompleteMessage(ctx, msg, nil); err != nil {
		log.Printf("complete %s: %v", msg.MessageID, err)
		return
	}
	log.Printf("%s %s → %s", msg.MessageID, name, status)
}

// clientOptions are the SDK's defaults (AMQPS to the namespace's port
// 5671) unless HTTPS_PROXY applies to the namespace: AMQPS cannot cross
// an HTTP proxy, so then the client speaks AMQP over WebSockets
// (wss://NAMESPACE/$servicebus/websocket) through net/http, which uses the
// proxy and trusts SSL_CERT_FILE.
func clientOptions(namespace string) *azservicebus.ClientOptions {
	proxy, err := http.ProxyFromEnvironment(&http.Request{URL: &url.URL{Scheme: "https", Host: namespace}})
	if err != nil || proxy == nil {
		return nil
	}
	return &azservicebus.ClientOptions{
		NewWebSocketConn: func(ctx context.Context, args azservicebus.NewWebSocketConnArgs) (net.Conn, error) {
			conn, _, err := websocket.Dial(ctx, args.Host, &websocket.DialOptions{Subprotocols: []string{"AMQPWSB10"}})
			if err != nil {
				return nil, err
			}
			// Not ctx: it ends with the dial, and the connection lives on.
			return websocket.NetConn(context.Background(), conn, websocket.MessageBinary), nil
		},
	}
}
