package main

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/bench"
	"github.com/tenantbridge/tenantbridge/internal/broker/fanout"
)

// TestWorkerCommand runs `tenantbridge worker` as a customer's managed
// identity (a user-assigned identity with Data Receiver on the command
// queue and Data Sender on the status queue) and the provider's messenger
// against it: a ping is answered with a pong, an unknown command with an
// error, both with the command's CorrelationId.
func TestWorkerCommand(t *testing.T) {
	ctx := context.Background()
	dir := startServer(t)
	cred, err := azclient.ReadOperatorCredential(filepath.Join(dir, operatorFile))
	if err != nil {
		t.Fatal(err)
	}
	f, err := bench.NewFleet(ctx, bench.FleetOptions{Server: cred, Customers: 1, Name: "wrk"})
	if err != nil {
		t.Fatal(err)
	}
	c := f.Customers[0]
	op, err := azclient.NewOperatorFromCredential(cred)
	if err != nil {
		t.Fatal(err)
	}
	id, err := op.CreateIdentity(ctx, c.TenantID, "worker", "bench")
	if err != nil {
		t.Fatal(err)
	}
	wl, err := op.CreateWorkload(ctx, c.TenantID, azclient.NewWorkload{Name: "worker-vm", ResourceGroup: "bench", Identities: []string{"worker"}})
	if err != nil {
		t.Fatal(err)
	}
	for queue, role := range map[string]string{"commands": "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0", "status": "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"} {
		scope := c.Namespace + "/queues/" + queue
		body := map[string]any{"properties": map[string]any{
			"roleDefinitionId": "/subscriptions/" + c.Tenant.SubscriptionID + "/providers/Microsoft.Authorization/roleDefinitions/" + role,
			"principalId":      id.PrincipalID, "principalType": "ServicePrincipal"}}
		if _, err := c.ARM(ctx, http.MethodPut, scope+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), bench.RoleAssignmentAPIVersion, body, nil); err != nil {
			t.Fatal(err)
		}
	}
	endpoint, err := cred.IdentityEndpoint(c.TenantID)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("IDENTITY_ENDPOINT", endpoint) // azidentity reads these from the process environment
	t.Setenv("IDENTITY_HEADER", wl.IdentityHeader)
	env := map[string]string{"AZURE_CLIENT_ID": id.ClientID}

	wctx, stop := context.WithCancel(ctx)
	var out, errOut lockedBuffer
	code := make(chan int, 1)
	go func() {
		code <- run(wctx, []string{"--data", dir, "worker", "--command-queue", c.CommandQueue, "--status-queue", c.StatusQueue, "--log-level", "warn"},
			&out, &errOut, func(k string) string { return env[k] })
	}()

	copts, _, err := f.ClientOptions("")
	if err != nil {
		t.Fatal(err)
	}
	m, err := fanout.New(fanout.Config{Credential: f.ProviderCredential, ClientOptions: copts})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	replies := m.Replies(wctx, f.List(), func(_ fanout.Customer, err error) { t.Log(err) })
	for _, cmd := range []fanout.Command{{ID: "c1", Name: "ping"}, {ID: "c2", Name: "format-disk"}} {
		if res := m.Send(ctx, f.List(), cmd); res[0].Err != nil {
			t.Fatal(res[0].Err)
		}
		select {
		case r := <-replies:
			var b fanout.ReplyBody
			if err := json.Unmarshal(r.Body, &b); err != nil {
				t.Fatal(err)
			}
			switch {
			case r.CorrelationID != cmd.ID:
				t.Errorf("reply to %s has CorrelationId %q", cmd.ID, r.CorrelationID)
			case cmd.Name == "ping" && (r.Label != fanout.LabelOK || b.Result["pong"] == nil):
				t.Errorf("ping answered %s %s", r.Label, r.Body)
			case cmd.Name != "ping" && (r.Label != fanout.LabelError || !strings.Contains(b.Error, "unknown command")):
				t.Errorf("%s answered %s %s", cmd.Name, r.Label, r.Body)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no reply to %s; worker stderr: %s", cmd.Name, errOut.String())
		}
	}
	stop()
	select {
	case n := <-code:
		if n != 0 {
			t.Errorf("worker exited %d: %s", n, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not stop")
	}
	if !strings.Contains(errOut.String(), "stopped after 2 commands") {
		t.Errorf("worker stderr: %s", errOut.String())
	}

	// Without a command queue it says what is missing.
	fails(t, dir, "command queue is not configured", "worker")
}
