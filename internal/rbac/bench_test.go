package rbac_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/storetest"
)

// BenchmarkDecideWhileAnotherTenantWrites is one tenant's decision asked
// again after each write to another tenant (one role assignment, not
// timed), as when customers are onboarded while the fleet runs: with the
// decision cache per tenant it is answered from the cache.
func BenchmarkDecideWhileAnotherTenantWrites(b *testing.B) {
	st := storetest.SQLite(b)
	e := newEnv(b, st)
	A, B := e.a.ID, e.b.ID
	sub := "/subscriptions/" + e.a.SubscriptionID
	q := sub + "/resourceGroups/shared/providers/Microsoft.ServiceBus/namespaces/bus/queues/commands"
	sp := e.sp(A)
	g := e.group(A, sp)
	for range 20 {
		e.assign(A, sub, rbac.RoleReader, uuid.NewString(), store.PrincipalUser, "")
	}
	e.assign(A, sub+"/resourceGroups/shared", rbac.RoleServiceBusDataSender, g, store.PrincipalGroup, "")
	req := rbac.Request{PrincipalID: sp, Action: sendData, DataAction: true, Scope: q}
	bSub := "/subscriptions/" + e.b.SubscriptionID
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		e.assign(B, bSub, rbac.RoleReader, uuid.NewString(), store.PrincipalUser, "")
		b.StartTimer()
		d, err := e.eng.Decide(e.ctx, req)
		if err != nil || !d.Allowed {
			b.Fatal(d, err)
		}
	}
}
