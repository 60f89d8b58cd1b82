package arm

// Marketplace offers. In Azure a publisher lists a managed application
// in the marketplace through Partner Center, which has no Resource
// Manager API: an application definition itself has no "published"
// property (ApplicationDefinitionProperties in the 2021-07-01 REST spec
// and armmanagedapplications have none), and a customer installs an offer
// by plan {publisher, product, name, version}. tenantbridge has no
// Partner Center, so publishing is the operator's step
// (`tenantbridge marketplace offer publish`, the operator API's
// /_operator/v1/marketplace/offers, package operator), and the publisher
// creates the definition with the unmodified SDK. The offer is kept with
// the definition's stored properties (appDefProps.Marketplace) but never
// shown through ARM; a PUT of the definition keeps it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// marketplaceState is a definition's offer, as stored.
type marketplaceState struct {
	PublishedAt time.Time `json:"publishedAt"`
}

// MarketplaceOffer is an application definition the operator published:
// customers of any tenant install it with kind MarketPlace and a plan
// whose publisher is Publisher (or the publisher tenant's name or id) and
// whose product is Offer.
type MarketplaceOffer struct {
	ApplicationDefinitionID string    `json:"applicationDefinitionId"`
	PublisherTenantID       string    `json:"publisherTenantId"`
	Publisher               string    `json:"publisher"` // the publisher tenant's domain
	Offer                   string    `json:"offer"`     // the plan's product: the definition's name
	PublishedAt             time.Time `json:"publishedAt"`
}

// Errors of the offer operations, for the operator API to map.
var (
	// ErrDefinitionNotFound: no application definition has that id.
	ErrDefinitionNotFound = errors.New("application definition not found")
	// ErrOfferConflict: another definition of the same tenant and name
	// is published, so a plan could not tell them apart.
	ErrOfferConflict = errors.New("another definition is published as this offer")
	// ErrInvalidDefinitionID: the id is not an application definition's.
	ErrInvalidDefinitionID = errors.New("not an application definition id")
)

// published reports whether the definition is a marketplace offer.
// LegacyPublished is the isPublishedToMarketplace flag that definitions
// written before the operator step carry.
func (p appDefProps) published() bool { return p.Marketplace != nil || p.LegacyPublished }

// PublishOffer publishes the application definition (its resource id) as
// a marketplace offer, as the operator, recording it in the audit log in
// the same transaction. Publishing a published definition changes
// nothing.
func (h *Handler) PublishOffer(ctx context.Context, definitionID string) (MarketplaceOffer, error) {
	return h.changeOffer(ctx, definitionID, "marketplace.offer.publish", func(tx store.Store, def store.Resource, p *appDefProps) (bool, error) {
		if p.Marketplace != nil {
			return false, nil
		}
		others, err := tx.ResourcesNamed(ctx, appDefType, def.Name)
		if err != nil {
			return false, err
		}
		for _, o := range others {
			var op appDefProps
			if strings.EqualFold(o.ID, def.ID) || !strings.EqualFold(o.TenantID, def.TenantID) || json.Unmarshal(o.Properties, &op) != nil {
				continue
			}
			if op.published() {
				return false, fmt.Errorf("%w: %s", ErrOfferConflict, o.ID)
			}
		}
		at := p.legacyPublishedAt(def)
		if at.IsZero() {
			at = h.now().UTC()
		}
		p.Marketplace, p.LegacyPublished = &marketplaceState{PublishedAt: at}, false
		return true, nil
	})
}

// legacyPublishedAt is when a definition that carried the old flag was
// published: its last change, the best the record knows; zero otherwise.
func (p appDefProps) legacyPublishedAt(def store.Resource) time.Time {
	if p.LegacyPublished {
		return def.Updated.UTC()
	}
	return time.Time{}
}

// UnpublishOffer withdraws the definition's offer: new marketplace
// installs of it are refused (MarketplaceOfferNotFound); installed
// applications stay. Unpublishing an unpublished definition changes
// nothing.
func (h *Handler) UnpublishOffer(ctx context.Context, definitionID string) (MarketplaceOffer, error) {
	return h.changeOffer(ctx, definitionID, "marketplace.offer.unpublish", func(_ store.Store, _ store.Resource, p *appDefProps) (bool, error) {
		changed := p.published()
		p.Marketplace, p.LegacyPublished = nil, false
		return changed, nil
	})
}

// changeOffer applies fn to the stored properties of the definition and,
// when fn changed them, writes them and the operator's audit record in
// one transaction.
func (h *Handler) changeOffer(ctx context.Context, definitionID, action string, fn func(tx store.Store, def store.Resource, p *appDefProps) (bool, error)) (MarketplaceOffer, error) {
	var offer MarketplaceOffer
	sc, err := rbac.ParseScope(definitionID)
	if err != nil {
		return offer, fmt.Errorf("%w: %q", ErrInvalidDefinitionID, rp.SafeText(definitionID))
	}
	err = h.dir.InTx(ctx, func(dir *directory.Service) error {
		tx := dir.Store()
		def, err := tx.GetResource(ctx, sc.String())
		if errors.Is(err, store.ErrNotFound) || (err == nil && !strings.EqualFold(def.Type, appDefType)) {
			return ErrDefinitionNotFound
		} else if err != nil {
			return err
		}
		var p appDefProps
		if err := json.Unmarshal(def.Properties, &p); err != nil {
			return fmt.Errorf("definition %s: %w", def.ID, err)
		}
		changed, err := fn(tx, def, &p)
		if err != nil {
			return err
		}
		if offer, err = offerOf(ctx, tx, def, p); err != nil || !changed {
			return err
		}
		if def.Properties, err = json.Marshal(p); err != nil {
			return err
		}
		def.Updated = h.now().UTC()
		if err := tx.UpdateResource(ctx, def); err != nil {
			return err
		}
		rec := store.AuditRecord{Actor: "operator", Action: action, TargetTenant: def.TenantID, Target: def.ID, Result: audit.Success}
		return audit.New(tx, h.log).Record(ctx, rec)
	})
	return offer, err
}

// offerOf is the offer view of a definition.
func offerOf(ctx context.Context, st store.Store, def store.Resource, p appDefProps) (MarketplaceOffer, error) {
	o := MarketplaceOffer{ApplicationDefinitionID: def.ID, PublisherTenantID: def.TenantID, Offer: def.Name}
	t, err := st.GetTenant(ctx, def.TenantID)
	if err != nil {
		return o, fmt.Errorf("publisher tenant of %s: %w", def.ID, err)
	}
	o.Publisher = t.Domain
	if p.Marketplace != nil {
		o.PublishedAt = p.Marketplace.PublishedAt
	} else {
		o.PublishedAt = p.legacyPublishedAt(def)
	}
	return o, nil
}

// ListOffers lists the published definitions of the tenant (its id or
// domain), or of every tenant when tenant is empty, ordered by id.
func (h *Handler) ListOffers(ctx context.Context, tenant string) ([]MarketplaceOffer, error) {
	var tenants []store.Tenant
	if tenant != "" {
		t, err := h.dir.Tenant(ctx, tenant)
		if err != nil {
			return nil, err
		}
		tenants = []store.Tenant{t}
	} else {
		ts, err := h.dir.ListTenants(ctx)
		if err != nil {
			return nil, err
		}
		tenants = ts
	}
	out := []MarketplaceOffer{}
	for _, t := range tenants {
		if t.SubscriptionID == "" {
			continue
		}
		rs, err := h.st.ListResources(ctx, store.ResourceQuery{SubscriptionID: t.SubscriptionID, Type: appDefType})
		if err != nil {
			return nil, err
		}
		for _, def := range rs {
			var p appDefProps
			if !strings.EqualFold(def.TenantID, t.ID) || json.Unmarshal(def.Properties, &p) != nil || !p.published() {
				continue
			}
			o, err := offerOf(ctx, h.st, def, p)
			if err != nil {
				return nil, err
			}
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b MarketplaceOffer) int {
		return strings.Compare(strings.ToLower(a.ApplicationDefinitionID), strings.ToLower(b.ApplicationDefinitionID))
	})
	return out, nil
}
