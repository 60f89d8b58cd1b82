package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/tenantbridge/tenantbridge/internal/directory"
)

// Continuous access evaluation over AMQP: a link that was allowed stops
// the moment the trust behind its token goes — the role assignment
// deleted, or the provider's service principal removed from the tenant —
// on the same connection, with the token the client already holds.
func TestAzservicebusRevocationStopsLinks(t *testing.T) {
	w := newBusWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	other := w.r.createTenant(t, "fleetco")
	dir := w.r.srv.Directory()
	app, err := dir.CreateApplication(ctx, other.TenantID, directory.Application{DisplayName: "fleet", SignInAudience: directory.AudienceMultipleOrgs})
	mustBus(t, err)
	_, err = dir.CreateServicePrincipal(ctx, other.TenantID, app.AppID)
	mustBus(t, err)
	secret, err := dir.AddApplicationPassword(ctx, other.TenantID, app.ID, "fleet", time.Time{}, time.Time{})
	mustBus(t, err)
	cred, err := azidentity.NewClientSecretCredential(w.tc.TenantID, app.AppID, secret.SecretText,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: policy.ClientOptions{Transport: w.r.client()}})
	mustBus(t, err)
	sp := w.provision(t, app.AppID)
	const assignment = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b"
	w.grant(t, sp, assignment)

	client, err := azservicebus.NewClient(w.fqdn, cred, w.amqpsOptions())
	mustBus(t, err)
	defer client.Close(ctx)
	sender, err := client.NewSender("orders", nil)
	mustBus(t, err)
	mustBus(t, sender.SendMessage(ctx, &azservicebus.Message{Body: []byte("allowed")}, nil))

	// The namespace's tenant takes the role back: the next send on the
	// same link is refused.
	w.arm(t, "DELETE", w.namespaceID()+"/providers/Microsoft.Authorization/roleAssignments/"+assignment, "")
	err = sender.SendMessage(ctx, &azservicebus.Message{Body: []byte("after the role went")}, nil)
	var sbErr *azservicebus.Error
	if err == nil || !errors.As(err, &sbErr) || sbErr.Code != azservicebus.CodeUnauthorizedAccess {
		t.Fatalf("send after the role assignment was deleted: %v, want CodeUnauthorizedAccess", err)
	}

	// Granted again, then the service principal is removed: the token
	// the client holds stops working, and no new one is issued.
	w.grant(t, sp, assignment)
	sender2, err := client.NewSender("orders", nil)
	mustBus(t, err)
	mustBus(t, sender2.SendMessage(ctx, &azservicebus.Message{Body: []byte("allowed again")}, nil))
	mustBus(t, dir.DeleteServicePrincipal(ctx, w.tc.TenantID, sp))
	if err := sender2.SendMessage(ctx, &azservicebus.Message{Body: []byte("after the principal went")}, nil); err == nil {
		t.Fatal("a send went through after the provider's service principal was deleted")
	}
}
