package operator

// Marketplace offers: publishing a managed application definition so that
// customers of every tenant may install it by plan. In Azure this is
// Partner Center's job and has no Resource Manager API (an application
// definition has no "published" property), so here it is the operator's.
//
//	POST   /_operator/v1/marketplace/offers                              {"applicationDefinitionId": ID} -> offer
//	GET    /_operator/v1/marketplace/offers[?tenant=T]                    -> {"value": [offer]}
//	DELETE /_operator/v1/marketplace/offers?applicationDefinitionId=ID    -> offer (withdrawn)

import (
	"context"
	"errors"
	"net/http"

	"github.com/tenantbridge/tenantbridge/internal/arm"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
)

// Marketplace publishes and withdraws offers; *arm.Handler implements it.
// Its changes are audited (actor "operator") in their own transaction.
type Marketplace interface {
	PublishOffer(ctx context.Context, definitionID string) (arm.MarketplaceOffer, error)
	UnpublishOffer(ctx context.Context, definitionID string) (arm.MarketplaceOffer, error)
	ListOffers(ctx context.Context, tenant string) ([]arm.MarketplaceOffer, error)
}

func (a *API) marketplaceRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /_operator/v1/marketplace/offers", a.publishOffer)
	m.HandleFunc("GET /_operator/v1/marketplace/offers", a.listOffers)
	m.HandleFunc("DELETE /_operator/v1/marketplace/offers", a.unpublishOffer)
}

func (a *API) publishOffer(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ApplicationDefinitionID string `json:"applicationDefinitionId"`
	}
	if err := httpx.ReadJSON(r, 4<<10, &req); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequestContent", err.Error())
		return
	}
	a.offerChange(w, r, "marketplace.offer.publish", req.ApplicationDefinitionID, a.marketplace.PublishOffer)
}

func (a *API) unpublishOffer(w http.ResponseWriter, r *http.Request) {
	a.offerChange(w, r, "marketplace.offer.unpublish", r.URL.Query().Get("applicationDefinitionId"), a.marketplace.UnpublishOffer)
}

func (a *API) offerChange(w http.ResponseWriter, r *http.Request, action, id string, change func(context.Context, string) (arm.MarketplaceOffer, error)) {
	if a.marketplace == nil {
		writeError(w, http.StatusNotImplemented, "NotSupported", "This server has no marketplace.")
		return
	}
	if id == "" {
		writeError(w, http.StatusBadRequest, "InvalidParameter", "applicationDefinitionId is required: the resource id of a Microsoft.Solutions/applicationDefinitions.")
		return
	}
	o, err := change(r.Context(), id)
	if err != nil {
		a.offerFail(w, r, action, id, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, o)
}

func (a *API) listOffers(w http.ResponseWriter, r *http.Request) {
	if a.marketplace == nil {
		writeError(w, http.StatusNotImplemented, "NotSupported", "This server has no marketplace.")
		return
	}
	tenant := r.URL.Query().Get("tenant")
	offers, err := a.marketplace.ListOffers(r.Context(), tenant)
	if err != nil {
		a.fail(w, r, "", tenant, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"value": offers})
}

// offerFail maps an offer error to the API's shape and audits the refusal.
func (a *API) offerFail(w http.ResponseWriter, r *http.Request, action, id string, err error) {
	status, code, msg := 0, "", ""
	switch {
	case errors.Is(err, arm.ErrInvalidDefinitionID):
		status, code, msg = http.StatusBadRequest, "InvalidParameter", "applicationDefinitionId "+quotePath(id)+" is not a resource id."
	case errors.Is(err, arm.ErrDefinitionNotFound):
		status, code, msg = http.StatusNotFound, "ApplicationDefinitionNotFound", "The application definition "+quotePath(id)+" could not be found."
	case errors.Is(err, arm.ErrOfferConflict):
		status, code, msg = http.StatusConflict, "Conflict", "Another definition of the same tenant and name is published: a plan could not tell them apart. Unpublish it first."
	default:
		a.failIn(w, r, action, "", id, err, notFound{"ApplicationDefinitionNotFound", "Application definition"})
		return
	}
	_ = a.record(r.Context(), action, "", quotePath(id), code)
	writeError(w, status, code, msg)
}
