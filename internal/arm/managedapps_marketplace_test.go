package arm_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/arm"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// TestMarketplaceOffers: only the operator publishes an offer; the
// definition's own PUT neither shows nor changes it; a withdrawn offer
// installs no more; two published definitions of one tenant may not share
// a name (a plan could not tell them apart); every change is audited as
// the operator's.
func TestMarketplaceOffers(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ptid := e.contoso.Tenant.ID
		ops := e.operatorARM()
		padmin, cadmin := e.adminToken(e.contoso), e.adminToken(e.fabrikam)
		for _, rg := range []string{"offers", "more"} {
			e.want(e.call(padmin, "PUT", sub(e)+"/resourceGroups/"+rg, map[string]any{"location": "westeurope"}), 201, "")
		}
		def := sub(e) + "/resourceGroups/offers/providers/Microsoft.Solutions/applicationDefinitions/srb"
		twin := sub(e) + "/resourceGroups/more/providers/Microsoft.Solutions/applicationDefinitions/srb"
		e.want(e.call(padmin, "PUT", def, defBody("None", nil, "", nil)), 201, "")
		e.want(e.call(padmin, "PUT", twin, defBody("None", nil, "", nil)), 201, "")

		csub := "/subscriptions/" + e.fabrikam.Tenant.SubscriptionID
		e.want(e.call(cadmin, "PUT", csub+"/resourceGroups/apps", map[string]any{"location": "westeurope"}), 201, "")
		install := func(name string) response {
			return e.call(cadmin, "PUT", csub+"/resourceGroups/apps/providers/Microsoft.Solutions/applications/"+name, map[string]any{
				"location": "westeurope", "kind": "MarketPlace",
				"plan":       map[string]any{"name": "standard", "publisher": e.contoso.Tenant.Domain, "product": "srb", "version": "1.0.0"},
				"properties": map[string]any{"managedResourceGroupId": csub + "/resourceGroups/mrg-" + name}})
		}
		e.want(install("app1"), 404, "MarketplaceOfferNotFound")

		o, err := ops.PublishOffer(e.ctx, strings.ToUpper(def))
		if err != nil || !strings.EqualFold(o.ApplicationDefinitionID, def) || o.Publisher != e.contoso.Tenant.Domain || o.Offer != "srb" ||
			o.PublisherTenantID != ptid || o.PublishedAt.IsZero() {
			t.Fatalf("publish %+v %v", o, err)
		}
		if _, err := ops.PublishOffer(e.ctx, twin); !errors.Is(err, arm.ErrOfferConflict) {
			t.Errorf("a second offer of the same name: %v", err)
		}
		for _, bad := range []struct {
			id   string
			want error
		}{
			{"not an id", arm.ErrInvalidDefinitionID},
			{sub(e) + "/resourceGroups/offers/providers/Microsoft.Solutions/applicationDefinitions/ghost", arm.ErrDefinitionNotFound},
			{sub(e) + "/resourceGroups/offers", arm.ErrDefinitionNotFound}, // a resource group is no definition
		} {
			if _, err := ops.PublishOffer(e.ctx, bad.id); !errors.Is(err, bad.want) {
				t.Errorf("publish %q: %v, want %v", bad.id, err, bad.want)
			}
		}

		// The definition's PUT keeps the offer, and ARM never shows it.
		e.want(e.call(padmin, "PUT", def, defBody("ReadOnly", nil, "", nil)), 200, "")
		r := e.call(padmin, "GET", def, nil)
		e.want(r, 200, "")
		if strings.Contains(string(r.raw), "arketplace") {
			t.Errorf("the offer shows through ARM: %s", r.raw)
		}
		offers, err := ops.ListOffers(e.ctx, "")
		if err != nil || len(offers) != 1 || offers[0].PublishedAt != o.PublishedAt {
			t.Fatalf("offers %+v %v", offers, err)
		}
		if offers, err := ops.ListOffers(e.ctx, e.fabrikam.Tenant.Domain); err != nil || len(offers) != 0 {
			t.Errorf("fabrikam's offers %+v %v", offers, err)
		}
		r = install("app1")
		e.want(r, 201, "")

		if _, err := ops.UnpublishOffer(e.ctx, def); err != nil {
			t.Fatal(err)
		}
		e.want(install("app2"), 404, "MarketplaceOfferNotFound")
		// Installed applications stay.
		e.want(e.call(cadmin, "GET", csub+"/resourceGroups/apps/providers/Microsoft.Solutions/applications/app1", nil), 200, "")
		if offers, err := ops.ListOffers(e.ctx, ptid); err != nil || len(offers) != 0 {
			t.Errorf("offers after unpublish %+v %v", offers, err)
		}
		// Now the twin may be the offer.
		if _, err := ops.PublishOffer(e.ctx, twin); err != nil {
			t.Errorf("publish the twin: %v", err)
		}

		recs, err := e.st.ListAudit(e.ctx, store.AuditQuery{TenantID: ptid, Limit: 1000})
		must(t, err)
		var got []string
		for _, rec := range recs {
			if strings.HasPrefix(rec.Action, "marketplace.") {
				if rec.Actor != "operator" {
					t.Errorf("offer audit actor %+v", rec)
				}
				got = append(got, rec.Action)
			}
		}
		if strings.Join(got, ",") != "marketplace.offer.publish,marketplace.offer.unpublish,marketplace.offer.publish" {
			t.Errorf("audit %v", got)
		}
	})
}
