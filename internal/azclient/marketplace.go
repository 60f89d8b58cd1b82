package azclient

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// MarketplaceOffer is a managed application definition the operator
// published: customers of every tenant install it by plan {publisher,
// product: Offer, name, version}. Azure publishes through Partner Center,
// which has no Resource Manager API; tenantbridge's operator API does it.
type MarketplaceOffer struct {
	ApplicationDefinitionID string    `json:"applicationDefinitionId"`
	PublisherTenantID       string    `json:"publisherTenantId"`
	Publisher               string    `json:"publisher"`
	Offer                   string    `json:"offer"`
	PublishedAt             time.Time `json:"publishedAt"`
}

func definitionIDRequired(id string) error {
	if strings.TrimSpace(id) == "" {
		return errors.New("an application definition id is required")
	}
	return nil
}

// PublishOffer publishes the application definition (its resource id) as
// a marketplace offer. Publishing a published definition changes nothing.
func (o *Operator) PublishOffer(ctx context.Context, definitionID string) (*MarketplaceOffer, error) {
	if err := definitionIDRequired(definitionID); err != nil {
		return nil, err
	}
	var out MarketplaceOffer
	if err := o.do(ctx, http.MethodPost, "/marketplace/offers", map[string]string{"applicationDefinitionId": definitionID}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UnpublishOffer withdraws the definition's offer; installed applications
// stay.
func (o *Operator) UnpublishOffer(ctx context.Context, definitionID string) (*MarketplaceOffer, error) {
	if err := definitionIDRequired(definitionID); err != nil {
		return nil, err
	}
	var out MarketplaceOffer
	q := url.Values{"applicationDefinitionId": {definitionID}}
	if err := o.do(ctx, http.MethodDelete, "/marketplace/offers?"+q.Encode(), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListOffers lists the published offers of a tenant (id or domain), or of
// every tenant when tenant is empty.
func (o *Operator) ListOffers(ctx context.Context, tenant string) ([]MarketplaceOffer, error) {
	p := "/marketplace/offers"
	if tenant != "" {
		p += "?" + url.Values{"tenant": {tenant}}.Encode()
	}
	var out struct {
		Value []MarketplaceOffer `json:"value"`
	}
	if err := o.do(ctx, http.MethodGet, p, nil, &out); err != nil {
		return nil, err
	}
	return out.Value, nil
}
