package server_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/server"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/testenv"
)

// TestMarketplaceOperatorAPI: the operator API's offers through azclient:
// publish, list (all tenants and one), unpublish; a definition that does
// not exist, an id that is no resource id, a missing id and a wrong key
// answer in the API's error shape; refusals are audited too.
func TestMarketplaceOperatorAPI(t *testing.T) {
	r := start(t, server.Config{})
	ctx := context.Background()
	pub := r.createTenant(t, "mktpub")
	c := r.client()
	op := azclient.NewOperator("https://"+r.addr, r.srv.Operator().Key, c)
	psub := "/subscriptions/" + pub.SubscriptionID
	put := func(path, body string) {
		t.Helper()
		req, _ := http.NewRequest("PUT", "https://management.azure.com"+path+"?api-version="+testenv.ARMAPIVersion(path), strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+armToken(t, c, pub))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("PUT %s: %d", path, resp.StatusCode)
		}
	}
	put(psub+"/resourceGroups/offers", `{"location":"westeurope"}`)
	def := psub + "/resourceGroups/offers/providers/Microsoft.Solutions/applicationDefinitions/srb"
	put(def, `{"location":"westeurope","properties":{"lockLevel":"None"}}`)

	o, err := op.PublishOffer(ctx, def)
	if err != nil || o.Offer != "srb" || o.Publisher != pub.Domain || o.PublisherTenantID != pub.TenantID {
		t.Fatalf("publish %+v %v", o, err)
	}
	for _, tenant := range []string{"", pub.Domain} {
		list, err := op.ListOffers(ctx, tenant)
		if err != nil || len(list) != 1 || !strings.EqualFold(list[0].ApplicationDefinitionID, def) {
			t.Fatalf("list %q: %+v %v", tenant, list, err)
		}
	}
	if _, err := op.ListOffers(ctx, "nosuchtenant.example"); statusOf(err) != http.StatusNotFound {
		t.Errorf("list of an unknown tenant: %v", err)
	}
	for _, c := range []struct {
		id     string
		status int
		code   string
	}{
		{psub + "/resourceGroups/offers/providers/Microsoft.Solutions/applicationDefinitions/ghost", 404, "ApplicationDefinitionNotFound"},
		{"not a resource id", 400, "InvalidParameter"},
	} {
		_, err := op.PublishOffer(ctx, c.id)
		var re *azclient.ResponseError
		if !errors.As(err, &re) || re.StatusCode != c.status || re.Code != c.code {
			t.Errorf("publish %q: %v, want %d %s", c.id, err, c.status, c.code)
		}
	}
	if _, err := op.UnpublishOffer(ctx, def); err != nil {
		t.Fatal(err)
	}
	if list, err := op.ListOffers(ctx, ""); err != nil || len(list) != 0 {
		t.Fatalf("after unpublish %+v %v", list, err)
	}
	bad := azclient.NewOperator("https://"+r.addr, "tbop_wrong", c)
	if _, err := bad.PublishOffer(ctx, def); statusOf(err) != http.StatusUnauthorized {
		t.Errorf("a wrong key: %v", err)
	}
	recs, err := r.srv.Store().ListAudit(ctx, store.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, rec := range recs {
		if strings.HasPrefix(rec.Action, "marketplace.") {
			actions = append(actions, rec.Action+":"+rec.Result)
		}
	}
	want := "marketplace.offer.publish:success,marketplace.offer.publish:ApplicationDefinitionNotFound,marketplace.offer.publish:InvalidParameter,marketplace.offer.unpublish:success"
	if strings.Join(actions, ",") != want {
		t.Errorf("audit %v", actions)
	}
}

func statusOf(err error) int {
	var re *azclient.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}
