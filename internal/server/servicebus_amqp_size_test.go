package server_test

// Message size limits by tier: a Standard namespace's queues take 256 KB,
// a Premium namespace's 1 MB (maxMessageSizeInKilobytes); over AMQP and
// REST alike. The Premium client dials WebSockets with the subprotocol
// "amqp", as azservicebus's own WebSocket example does.

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/coder/websocket"
)

func TestServiceBusMessageSizeByTier(t *testing.T) {
	w := newBusWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rg := "/subscriptions/" + w.tc.SubscriptionID + "/resourceGroups/rg"
	premium := rg + "/providers/Microsoft.ServiceBus/namespaces/big-bus"
	w.arm(t, "PUT", premium, `{"location":"westeurope","sku":{"name":"Premium","tier":"Premium"}}`)
	q := w.arm(t, "PUT", premium+"/queues/scans", `{"properties":{}}`)
	if p, _ := q["properties"].(map[string]any); p["maxMessageSizeInKilobytes"] != float64(1024) {
		t.Fatalf("premium queue %v", q)
	}
	if p, _ := w.arm(t, "GET", w.namespaceID()+"/queues/orders", "")["properties"].(map[string]any); p["maxMessageSizeInKilobytes"] != float64(256) {
		t.Fatalf("standard queue %v", p)
	}
	w.arm(t, "PUT", premium+"/providers/Microsoft.Authorization/roleAssignments/5c8d1f7a-1b2c-4d3e-8f90-a1b2c3d4e5f7",
		`{"properties":{"roleDefinitionId":"/subscriptions/`+w.tc.SubscriptionID+`/providers/Microsoft.Authorization/roleDefinitions/`+busDataOwner+`","principalId":"`+w.tc.Admin.ServicePrincipalID+`"}}`)

	// Standard: 300 KB is refused, before anything is stored.
	std, err := azservicebus.NewClient(w.fqdn, w.adminCredential(t), w.amqpsOptions())
	mustBus(t, err)
	defer std.Close(context.Background())
	s, err := std.NewSender("orders", nil)
	mustBus(t, err)
	if err := s.SendMessage(ctx, &azservicebus.Message{Body: bytes.Repeat([]byte{'s'}, 300<<10)}, nil); err == nil {
		t.Fatal("a Standard queue took a 300 KB message")
	}

	// Premium: 900 KB goes through and comes back whole; 1.1 MB does not.
	big, err := azservicebus.NewClient("big-bus.servicebus.windows.net", w.adminCredential(t), &azservicebus.ClientOptions{
		NewWebSocketConn: func(ctx context.Context, args azservicebus.NewWebSocketConnArgs) (net.Conn, error) {
			c, _, err := websocket.Dial(ctx, args.Host, &websocket.DialOptions{HTTPClient: w.r.client(), Subprotocols: []string{"amqp"}})
			if err != nil {
				return nil, err
			}
			if c.Subprotocol() != "amqp" {
				t.Errorf("subprotocol %q, want amqp", c.Subprotocol())
			}
			return websocket.NetConn(context.Background(), c, websocket.MessageBinary), nil
		},
		RetryOptions: azservicebus.RetryOptions{MaxRetries: 1, RetryDelay: 50 * time.Millisecond}})
	mustBus(t, err)
	defer big.Close(context.Background())
	bs, err := big.NewSender("scans", nil)
	mustBus(t, err)
	body := bytes.Repeat([]byte("0123456789"), 90<<10)
	mustBus(t, bs.SendMessage(ctx, &azservicebus.Message{Body: body}, nil))
	if err := bs.SendMessage(ctx, &azservicebus.Message{Body: bytes.Repeat([]byte{'x'}, 1100<<10)}, nil); err == nil {
		t.Fatal("a Premium queue took a 1.1 MB message")
	}
	rcv, err := big.NewReceiverForQueue("scans", nil)
	mustBus(t, err)
	ms, err := rcv.ReceiveMessages(ctx, 1, nil)
	mustBus(t, err)
	if !bytes.Equal(ms[0].Body, body) {
		t.Fatalf("received %d bytes, sent %d", len(ms[0].Body), len(body))
	}
	mustBus(t, rcv.CompleteMessage(ctx, ms[0], nil))

	// REST follows the same limits.
	tok, err := w.adminCredential(t).GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://servicebus.azure.net/.default"}})
	mustBus(t, err)
	post := func(host, queue string, n int) int {
		req, _ := http.NewRequest("POST", "https://"+host+"/"+queue+"/messages", strings.NewReader(strings.Repeat("r", n)))
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		resp, err := w.r.client().Do(req)
		mustBus(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(w.fqdn, "orders", 300<<10); code != http.StatusForbidden {
		t.Fatalf("REST 300 KB to Standard: %d", code)
	}
	if code := post("big-bus.servicebus.windows.net", "scans", 900<<10); code != http.StatusCreated {
		t.Fatalf("REST 900 KB to Premium: %d", code)
	}
}
