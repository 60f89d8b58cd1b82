package arm_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"github.com/tenantbridge/tenantbridge/internal/arm"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// TestDeploymentHistoryCap: a group's history is bounded as Azure's: a
// deployment that would make more than 700 deletes the oldest finished
// ones down to 600; a lock on the group stops the cleanup, and at 800
// the next deployment is refused (DeploymentQuotaExceeded) while the
// cleanup runs, so that the retry succeeds. Real armresources client.
func TestDeploymentHistoryCap(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		tb := e.contoso
		subID := tb.Tenant.SubscriptionID
		admin := e.adminToken(tb)
		rg := sub(e) + "/resourceGroups/history"
		e.want(e.call(admin, "PUT", rg, map[string]any{"location": "westeurope"}), 201, "")
		dc, _ := e.deploymentsClient(subID, e.credential(tb.Tenant.ID, tb.Admin.AppID, tb.AdminSecret.SecretText))
		deploy := func(name string) error {
			p, err := dc.BeginCreateOrUpdate(e.ctx, "history", name, armresources.Deployment{Properties: &armresources.DeploymentProperties{
				Mode: to.Ptr(armresources.DeploymentModeIncremental), Template: parseJSON(t, `{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", "contentVersion": "1.0.0.0", "resources": []}`)}}, nil)
			if err != nil {
				return err
			}
			_, err = p.PollUntilDone(e.ctx, fastPoll)
			return err
		}
		must(t, deploy("seed"))
		seed, err := e.st.GetDeployment(e.ctx, subID, "history", "seed")
		must(t, err)
		// The history so far, oldest first: old-0000 … (copies of the
		// seed's record, one second apart, older than the seed).
		base := seed.Updated.Add(-time.Hour)
		fill := func(from, to int) {
			for i := from; i < to; i++ {
				d := seed
				d.Name = fmt.Sprintf("old-%04d", i)
				d.Created, d.Updated = base.Add(time.Duration(i)*time.Second), base.Add(time.Duration(i)*time.Second)
				must(t, e.st.PutDeployment(e.ctx, d))
			}
		}
		count := func() int {
			list, err := e.st.ListDeployments(e.ctx, subID, "history")
			must(t, err)
			return len(list)
		}
		has := func(name string) bool {
			_, err := e.st.GetDeployment(e.ctx, subID, "history", name)
			return err == nil
		}
		fill(0, 699) // with the seed: 700
		must(t, deploy("new-1"))
		if n := count(); n != 600 || has("old-0000") || has("old-0100") || !has("old-0101") || !has("new-1") || !has("seed") {
			t.Fatalf("after the cleanup: %d deployments, old-0000 %v, old-0100 %v, old-0101 %v, new-1 %v", n, has("old-0000"), has("old-0100"), has("old-0101"), has("new-1"))
		}
		// A name already in the history replaces its deployment: no cleanup.
		must(t, deploy("new-1"))
		if n := count(); n != 600 {
			t.Fatalf("redeploying a name: %d", n)
		}

		// 800, and a lock on the group: nothing is deleted, the next
		// deployment is refused.
		fill(1000, 1200)
		if n := count(); n != 800 {
			t.Fatalf("filled to %d", n)
		}
		lock := rg + "/providers/Microsoft.Authorization/locks/keep"
		e.want(e.call(admin, "PUT", lock, map[string]any{"properties": map[string]any{"level": "CanNotDelete"}}), 201, "")
		wantCode(t, deploy("new-2"), 400, "DeploymentQuotaExceeded")
		if n := count(); n != arm.MaxDeploymentHistory {
			t.Fatalf("locked: %d", n)
		}
		e.want(e.call(admin, "DELETE", lock, nil), 200, "")
		// Refused again, but the cleanup ran: the retry succeeds.
		wantCode(t, deploy("new-2"), 400, "DeploymentQuotaExceeded")
		if n := count(); n != 599 {
			t.Fatalf("after the cleanup at the quota: %d", n)
		}
		must(t, deploy("new-2"))
		if n := count(); n != 600 {
			t.Fatalf("the retry: %d", n)
		}
		recs, err := e.st.ListAudit(e.ctx, store.AuditQuery{TenantID: tb.Tenant.ID, Limit: 10000})
		must(t, err)
		cleanups := 0
		for _, r := range recs {
			if r.Action == "Microsoft.Resources/deployments/delete" && strings.Contains(r.Detail, "automatic deletion") {
				cleanups++
			}
		}
		if cleanups != 2 {
			t.Errorf("audited cleanups: %d", cleanups)
		}
	})
}
