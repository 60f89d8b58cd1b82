package publisher_test

import (
	"context"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/broker/publisher"
)

// TestVaultStore: installation records kept in the publisher's own vault
// (a secret each) read back, list, and survive a new store (a restart).
func TestVaultStore(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	sub := "/subscriptions/" + w.pub.SubscriptionID
	w.arm(t, w.pubCred, "PUT", sub+"/resourceGroups/broker", map[string]any{"location": "westeurope"})
	vault := sub + "/resourceGroups/broker/providers/Microsoft.KeyVault/vaults/pubstate"
	if c, doc := w.arm(t, w.pubCred, "PUT", vault, map[string]any{"location": "westeurope", "properties": map[string]any{
		"tenantId": w.pub.TenantID, "sku": map[string]any{"family": "A", "name": "standard"}}}); c/100 != 2 {
		t.Fatalf("vault %d %v", c, doc)
	}
	// The broker's identity: Key Vault Secrets Officer on it.
	if c, doc := w.arm(t, w.pubCred, "PUT", vault+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), map[string]any{
		"properties": map[string]any{"roleDefinitionId": sub + "/providers/Microsoft.Authorization/roleDefinitions/b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
			"principalId": w.pub.Admin.ServicePrincipalID, "principalType": "ServicePrincipal"}}); c/100 != 2 {
		t.Fatalf("role %d %v", c, doc)
	}
	kv, err := azsecrets.NewClient("https://pubstate.vault.azure.net", w.pubCred, &azsecrets.ClientOptions{ClientOptions: w.opts})
	must(t, err)
	st := publisher.NewVaultStore(kv)
	key := publisher.NormalizeID("/subscriptions/s/resourceGroups/g/providers/Microsoft.Solutions/applications/A")
	if in, err := st.Get(ctx, key); err != nil || in != nil {
		t.Fatalf("empty store: %v %v", in, err)
	}
	at := time.Now().UTC().Truncate(time.Millisecond)
	must(t, st.Put(ctx, &publisher.Installation{Key: key, Status: "registered", LastEventTime: at, ClientID: "c1"}))
	must(t, st.Put(ctx, &publisher.Installation{Key: key + "2", Status: "deleted"}))
	st = publisher.NewVaultStore(kv)
	in, err := st.Get(ctx, key)
	must(t, err)
	if in == nil || in.ClientID != "c1" || !in.LastEventTime.Equal(at) {
		t.Fatalf("read back %+v", in)
	}
	all, err := st.List(ctx)
	must(t, err)
	if len(all) != 2 || all[0].Key != key {
		t.Fatalf("list %+v", all)
	}
}
