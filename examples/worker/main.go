// Command worker is the customer's side of cross-tenant messaging (seed
// 004) in one page: it runs under the customer's managed identity, takes
// the provider's commands from a Service Bus queue the customer owns, and
// answers on the customer's status queue, using only azidentity and the
// Service Bus REST API. Nothing in it is specific to tenantbridge.
//
//	eval "$(tenantbridge env --tenant contoso --identity worker)"
//	go run ./examples/worker https://contoso-sb.servicebus.windows.net/commands https://contoso-sb.servicebus.windows.net/status
//
// The identity needs Azure Service Bus Data Receiver on the command queue
// and Data Sender on the status queue. `tenantbridge worker` is the same,
// with idempotency on MessageId and backoff.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: worker COMMAND_QUEUE_URL STATUS_QUEUE_URL")
	}
	commands, status := strings.TrimSuffix(os.Args[1], "/"), strings.TrimSuffix(os.Args[2], "/")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opts := &azidentity.ManagedIdentityCredentialOptions{}
	if id := os.Getenv("AZURE_CLIENT_ID"); id != "" {
		opts.ID = azidentity.ClientID(id)
	}
	cred, err := azidentity.NewManagedIdentityCredential(opts)
	if err != nil {
		log.Fatal(err)
	}
	do := func(method, url string, header http.Header, body string) (*http.Response, []byte, error) {
		// azidentity caches the token and refreshes it before it expires.
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://servicebus.azure.net/.default"}})
		if err != nil {
			return nil, nil, err
		}
		req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
		if err != nil {
			return nil, nil, err
		}
		for k, v := range header {
			req.Header[k] = v
		}
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp, data, err
	}
	for ctx.Err() == nil {
		// Peek-lock with a 60 s long-poll: the server answers as soon as a
		// command arrives, and an idle worker costs one request a minute.
		resp, body, err := do(http.MethodPost, commands+"/messages/head?timeout=60", nil, "")
		if err != nil || resp.StatusCode == http.StatusNoContent {
			if err != nil && ctx.Err() == nil {
				log.Print(err)
				time.Sleep(5 * time.Second)
			}
			continue
		}
		if resp.StatusCode != http.StatusCreated {
			log.Printf("receive: %s %s", resp.Status, body)
			time.Sleep(5 * time.Second)
			continue
		}
		var cmd struct{ MessageId, CorrelationId, Label string }
		_ = json.Unmarshal([]byte(resp.Header.Get("BrokerProperties")), &cmd)
		reply, label := map[string]any{"status": "ok", "result": map[string]any{"pong": time.Now().UTC()}}, "ok"
		if cmd.Label != "ping" {
			reply, label = map[string]any{"status": "error", "error": fmt.Sprintf("unknown command %q", cmd.Label)}, "error"
		}
		out, _ := json.Marshal(reply)
		props, _ := json.Marshal(map[string]string{"MessageId": "reply:" + cmd.MessageId, "CorrelationId": cmd.CorrelationId, "Label": label})
		sent, data, err := do(http.MethodPost, status+"/messages",
			http.Header{"Content-Type": {"application/json"}, "Brokerproperties": {string(props)}}, string(out))
		if err != nil || sent.StatusCode != http.StatusCreated {
			log.Printf("reply to %s: %v %s", cmd.CorrelationId, err, data)
			continue // the lock expires and the command comes back
		}
		// Complete: DELETE on the lock's Location.
		if done, data, err := do(http.MethodDelete, resp.Header.Get("Location"), nil, ""); err != nil || done.StatusCode != http.StatusOK {
			log.Printf("complete %s: %v %s", cmd.MessageId, err, data)
			continue
		}
		log.Printf("%s %s → %s", cmd.CorrelationId, cmd.Label, label)
	}
}
