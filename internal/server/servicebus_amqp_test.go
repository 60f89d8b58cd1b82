package server_test

// The real Service Bus SDK for Go (azservicebus), unmodified, against
// tenantbridge's AMQP front-end: over AMQPS (CustomEndpoint, the way a
// program on the host reaches a local Service Bus) and over WebSockets
// (NewWebSocketConn through the HTTPS listener), with an Entra credential
// and with a SAS connection string from listKeys.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/coder/websocket"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/server"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
)

// busWorld is a tenant with a namespace "orders-bus", a queue "orders"
// and its administrator as Azure Service Bus Data Owner on the namespace.
type busWorld struct {
	r    *running
	tc   tenantCreated
	fqdn string
	// armCred is arm's credential, made on first use: it keeps the token
	// for the calls after.
	armCred azcore.TokenCredential
}

const busDataOwner = "090c5cfd-751d-490a-894a-3ce6f1109419"

func newBusWorld(t *testing.T) *busWorld {
	t.Helper()
	return newBusWorldConfig(t, server.Config{AMQPListen: "127.0.0.1:0"})
}

// newBusWorldConfig is newBusWorld on a server started with cfg.
func newBusWorldConfig(t *testing.T, cfg server.Config) *busWorld {
	t.Helper()
	w := &busWorld{r: start(t, cfg), fqdn: "orders-bus.servicebus.windows.net"}
	w.tc = w.r.createTenant(t, "busco")
	ns := w.namespaceID()
	w.arm(t, "PUT", "/subscriptions/"+w.tc.SubscriptionID+"/resourceGroups/rg", `{"location":"westeurope"}`)
	w.arm(t, "PUT", ns, `{"location":"westeurope"}`)
	w.arm(t, "PUT", ns+"/queues/orders", `{"properties":{"maxDeliveryCount":5}}`)
	w.grant(t, w.tc.Admin.ServicePrincipalID, "4c8d1f7a-1b2c-4d3e-8f90-a1b2c3d4e5f6")
	return w
}

func (w *busWorld) namespaceID() string {
	return "/subscriptions/" + w.tc.SubscriptionID + "/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/orders-bus"
}

func (w *busWorld) grant(t *testing.T, principalID, assignmentID string) {
	t.Helper()
	w.arm(t, "PUT", w.namespaceID()+"/providers/Microsoft.Authorization/roleAssignments/"+assignmentID,
		`{"properties":{"roleDefinitionId":"/subscriptions/`+w.tc.SubscriptionID+`/providers/Microsoft.Authorization/roleDefinitions/`+busDataOwner+`","principalId":"`+principalID+`"}}`)
}

// arm calls Resource Manager as the tenant's administrator.
func (w *busWorld) arm(t *testing.T, method, path, body string) map[string]any {
	t.Helper()
	if w.armCred == nil {
		w.armCred = w.adminCredential(t)
	}
	status, raw := armCall(t, w.r, w.armCred, method, path+"?api-version="+testenv.ARMAPIVersion(path), body)
	if status/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, status, raw)
	}
	var doc map[string]any
	_ = json.Unmarshal(raw, &doc)
	return doc
}

// armCall sends one Resource Manager request (pathAndQuery with its
// api-version) with cred's token, through the server's client, and returns
// the status and body.
func armCall(t *testing.T, r *running, cred azcore.TokenCredential, method, pathAndQuery, body string) (int, []byte) {
	t.Helper()
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, "https://management.azure.com"+pathAndQuery, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

func (w *busWorld) adminCredential(t *testing.T) azcore.TokenCredential {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(w.tc.TenantID, w.tc.Admin.ClientID, w.tc.Admin.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: policy.ClientOptions{Transport: w.r.client()}})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// ordersClient is an azservicebus client over AMQPS as the tenant's
// administrator, with a sender and a peek-lock receiver on "orders"; the
// client is closed when the test ends.
func (w *busWorld) ordersClient(t *testing.T) (*azservicebus.Client, *azservicebus.Sender, *azservicebus.Receiver) {
	t.Helper()
	client, err := azservicebus.NewClient(w.fqdn, w.adminCredential(t), w.amqpsOptions())
	mustBus(t, err)
	t.Cleanup(func() { client.Close(context.Background()) })
	sender, err := client.NewSender("orders", nil)
	mustBus(t, err)
	receiver, err := client.NewReceiverForQueue("orders", nil)
	mustBus(t, err)
	return client, sender, receiver
}

// amqpsOptions reach the AMQPS listener as a program on the host does:
// CustomEndpoint, with the namespace's name for TLS.
func (w *busWorld) amqpsOptions() *azservicebus.ClientOptions {
	return &azservicebus.ClientOptions{CustomEndpoint: w.r.srv.AMQPAddr(),
		TLSConfig:    &tls.Config{RootCAs: w.r.srv.CA().Pool(), ServerName: w.fqdn},
		RetryOptions: azservicebus.RetryOptions{MaxRetries: 1, RetryDelay: 50 * time.Millisecond}}
}

// webSocketOptions reach wss://{fqdn}/$servicebus/websocket on the HTTPS
// listener, as the SDK's documented NewWebSocketConn example does.
func (w *busWorld) webSocketOptions() *azservicebus.ClientOptions {
	return &azservicebus.ClientOptions{
		NewWebSocketConn: func(ctx context.Context, args azservicebus.NewWebSocketConnArgs) (net.Conn, error) {
			c, _, err := websocket.Dial(ctx, args.Host, &websocket.DialOptions{HTTPClient: w.r.client(), Subprotocols: []string{"AMQPWSB10"}})
			if err != nil {
				return nil, err
			}
			return websocket.NetConn(context.Background(), c, websocket.MessageBinary), nil
		},
		RetryOptions: azservicebus.RetryOptions{MaxRetries: 1, RetryDelay: 50 * time.Millisecond}}
}

func mustBus(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// exerciseQueue sends and receives through client: one message and a
// batch, peek-lock complete, abandon (delivered again with a higher count),
// dead-letter with a reason (read from the dead-letter sub-queue), and
// receive-and-delete.
func exerciseQueue(t *testing.T, client *azservicebus.Client, tag string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sender, err := client.NewSender("orders", nil)
	mustBus(t, err)
	defer sender.Close(ctx)
	subject := "order-" + tag
	mustBus(t, sender.SendMessage(ctx, &azservicebus.Message{Body: []byte("one " + tag), Subject: &subject,
		ApplicationProperties: map[string]any{"n": int64(7), "who": "alice"}}, nil))
	batch, err := sender.NewMessageBatch(ctx, nil)
	mustBus(t, err)
	for i := range 3 {
		mustBus(t, batch.AddMessage(&azservicebus.Message{Body: fmt.Appendf(nil, "batch %s %d", tag, i)}, nil))
	}
	mustBus(t, sender.SendMessageBatch(ctx, batch, nil))

	receiver, err := client.NewReceiverForQueue("orders", nil)
	mustBus(t, err)
	defer receiver.Close(ctx)
	got := receiveN(t, ctx, receiver, 4)
	first := got[0]
	if string(first.Body) != "one "+tag || first.Subject == nil || *first.Subject != subject || first.ApplicationProperties["n"] != int64(7) ||
		first.ApplicationProperties["who"] != "alice" || first.SequenceNumber == nil || first.EnqueuedTime == nil || first.LockedUntil == nil {
		t.Fatalf("received %+v", first)
	}
	mustBus(t, receiver.CompleteMessage(ctx, first, nil))
	mustBus(t, receiver.CompleteMessage(ctx, got[1], nil))
	// Abandon: the message comes back, counted.
	mustBus(t, receiver.AbandonMessage(ctx, got[2], nil))
	again := receiveN(t, ctx, receiver, 1)[0]
	if string(again.Body) != string(got[2].Body) || again.DeliveryCount != got[2].DeliveryCount+1 {
		t.Fatalf("abandoned message came back as %q count %d (was %d)", again.Body, again.DeliveryCount, got[2].DeliveryCount)
	}
	mustBus(t, receiver.CompleteMessage(ctx, again, nil))
	// Dead-letter with a reason.
	reason, desc := "BadOrder", "no such product"
	mustBus(t, receiver.DeadLetterMessage(ctx, got[3], &azservicebus.DeadLetterOptions{Reason: &reason, ErrorDescription: &desc}))
	dlq, err := client.NewReceiverForQueue("orders", &azservicebus.ReceiverOptions{SubQueue: azservicebus.SubQueueDeadLetter})
	mustBus(t, err)
	defer dlq.Close(ctx)
	dead := receiveN(t, ctx, dlq, 1)[0]
	if dead.DeadLetterReason == nil || *dead.DeadLetterReason != reason || dead.DeadLetterErrorDescription == nil || *dead.DeadLetterErrorDescription != desc ||
		string(dead.Body) != string(got[3].Body) {
		t.Fatalf("dead-lettered message %+v", dead)
	}
	mustBus(t, dlq.CompleteMessage(ctx, dead, nil))

	// Receive-and-delete.
	mustBus(t, sender.SendMessage(ctx, &azservicebus.Message{Body: []byte("rad " + tag)}, nil))
	rad, err := client.NewReceiverForQueue("orders", &azservicebus.ReceiverOptions{ReceiveMode: azservicebus.ReceiveModeReceiveAndDelete})
	mustBus(t, err)
	defer rad.Close(ctx)
	if m := receiveN(t, ctx, rad, 1)[0]; string(m.Body) != "rad "+tag {
		t.Fatalf("receive-and-delete got %q", m.Body)
	}
	// Nothing is left.
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShort()
	if left, err := receiver.ReceiveMessages(short, 1, nil); err == nil && len(left) > 0 {
		t.Fatalf("left in the queue: %q", left[0].Body)
	}
}

// receiveN receives exactly n messages, in as many calls as it takes.
func receiveN(t *testing.T, ctx context.Context, r *azservicebus.Receiver, n int) []*azservicebus.ReceivedMessage {
	t.Helper()
	var out []*azservicebus.ReceivedMessage
	for len(out) < n {
		ms, err := r.ReceiveMessages(ctx, n-len(out), nil)
		if err != nil {
			t.Fatalf("receive (%d of %d so far): %v", len(out), n, err)
		}
		out = append(out, ms...)
	}
	return out
}

func TestAzservicebusOverAMQPS(t *testing.T) {
	w := newBusWorld(t)
	client, err := azservicebus.NewClient(w.fqdn, w.adminCredential(t), w.amqpsOptions())
	mustBus(t, err)
	defer client.Close(context.Background())
	exerciseQueue(t, client, "amqps")
}

func TestAzservicebusOverWebSockets(t *testing.T) {
	w := newBusWorld(t)
	client, err := azservicebus.NewClient(w.fqdn, w.adminCredential(t), w.webSocketOptions())
	mustBus(t, err)
	defer client.Close(context.Background())
	exerciseQueue(t, client, "ws")
}

// A connection string from listKeys works unchanged (SAS on $cbs).
func TestAzservicebusConnectionString(t *testing.T) {
	w := newBusWorld(t)
	cs := w.listenSendKeys(t, "app")["primaryConnectionString"].(string)
	client, err := azservicebus.NewClientFromConnectionString(cs, w.amqpsOptions())
	mustBus(t, err)
	defer client.Close(context.Background())
	exerciseQueue(t, client, "sas")

	// A tampered key is refused.
	bad := strings.Replace(cs, "SharedAccessKey=", "SharedAccessKey=AAAA", 1)
	badClient, err := azservicebus.NewClientFromConnectionString(bad, w.amqpsOptions())
	mustBus(t, err)
	defer badClient.Close(context.Background())
	sender, err := badClient.NewSender("orders", nil)
	mustBus(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sender.SendMessage(ctx, &azservicebus.Message{Body: []byte("x")}, nil); err == nil {
		t.Fatal("a tampered SAS key sent a message")
	}
}

// A principal of another tenant is refused until the namespace's tenant
// grants it a data role; then it sends. Each refusal is audited.
func TestAzservicebusCrossTenantGrant(t *testing.T) {
	w := newBusWorld(t)
	other := w.r.createTenant(t, "provider")
	dir := w.r.srv.Directory()
	app, err := dir.CreateApplication(context.Background(), other.TenantID, directory.Application{DisplayName: "provider fleet",
		SignInAudience: directory.AudienceMultipleOrgs})
	mustBus(t, err)
	_, err = dir.CreateServicePrincipal(context.Background(), other.TenantID, app.AppID)
	mustBus(t, err)
	secret, err := dir.AddApplicationPassword(context.Background(), other.TenantID, app.ID, "fleet", time.Time{}, time.Time{})
	mustBus(t, err)
	cred, err := azidentity.NewClientSecretCredential(w.tc.TenantID, app.AppID, secret.SecretText,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: policy.ClientOptions{Transport: w.r.client()}})
	mustBus(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The provider's app has no service principal in the namespace's
	// tenant: no token, no send.
	client, err := azservicebus.NewClient(w.fqdn, cred, w.amqpsOptions())
	mustBus(t, err)
	sender, err := client.NewSender("orders", nil)
	mustBus(t, err)
	if err := sender.SendMessage(ctx, &azservicebus.Message{Body: []byte("x")}, nil); err == nil {
		t.Fatal("a principal of another tenant sent without a service principal there")
	}
	client.Close(ctx)

	// Provisioned (as admin consent would) but not granted: refused.
	sp := w.provision(t, app.AppID)
	client, err = azservicebus.NewClient(w.fqdn, cred, w.amqpsOptions())
	mustBus(t, err)
	sender, err = client.NewSender("orders", nil)
	mustBus(t, err)
	err = sender.SendMessage(ctx, &azservicebus.Message{Body: []byte("x")}, nil)
	var sbErr *azservicebus.Error
	if err == nil || !errors.As(err, &sbErr) || sbErr.Code != azservicebus.CodeUnauthorizedAccess {
		t.Fatalf("send before the grant: %v, want CodeUnauthorizedAccess", err)
	}
	client.Close(ctx)

	// Granted Data Owner on the namespace: it sends.
	w.grant(t, sp, "7b2c3d4e-5f60-4718-9a2b-3c4d5e6f7a8b")
	client, err = azservicebus.NewClient(w.fqdn, cred, w.amqpsOptions())
	mustBus(t, err)
	defer client.Close(ctx)
	sender, err = client.NewSender("orders", nil)
	mustBus(t, err)
	mustBus(t, sender.SendMessage(ctx, &azservicebus.Message{Body: []byte("from the provider")}, nil))

	// The cross-tenant act is in both tenants' audit views: the refused
	// attach and the granted one, with the provider as the actor's tenant.
	for _, q := range []store.AuditQuery{{TenantID: other.TenantID}, {TenantID: w.tc.TenantID, ByTenantID: other.TenantID}} {
		recs, err := w.r.srv.Store().ListAudit(ctx, q)
		mustBus(t, err)
		var refused, granted bool
		for _, r := range recs {
			if r.Action == "servicebus.send" && r.ActorTenant == other.TenantID && r.TargetTenant == w.tc.TenantID && r.Actor == sp {
				refused = refused || r.Result == "Unauthorized"
				granted = granted || (r.Result == "Success" && r.Detail == "AMQP link attach")
			}
		}
		if !refused || !granted {
			t.Errorf("audit view %+v: refused %v, granted %v in %+v", q, refused, granted, recs)
		}
	}
}

// listenSendKeys creates the namespace's authorization rule name with
// Listen and Send and returns its keys (listKeys), which must hold a
// connection string to the namespace.
func (w *busWorld) listenSendKeys(t *testing.T, name string) map[string]any {
	t.Helper()
	rule := w.namespaceID() + "/authorizationRules/" + name
	w.arm(t, "PUT", rule, `{"properties":{"rights":["Listen","Send"]}}`)
	keys := w.arm(t, "POST", rule+"/listKeys", ``)
	if cs, _ := keys["primaryConnectionString"].(string); !strings.Contains(cs, "Endpoint=sb://"+w.fqdn) {
		t.Fatalf("listKeys: %v", keys)
	}
	return keys
}

// provision creates, in the namespace's tenant, the service principal of
// another tenant's multi-tenant application, in the directory directly
// (as the tenant administrator's admin consent would).
func (w *busWorld) provision(t *testing.T, appID string) string {
	t.Helper()
	sp, err := w.r.srv.Directory().CreateServicePrincipal(context.Background(), w.tc.TenantID, appID)
	if err != nil {
		t.Fatalf("provision %s: %v", appID, err)
	}
	return sp.ID
}
