package graph

import (
	"errors"
	"net/http"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/directory"
)

var (
	servicePrincipalListQuery = querySpec{collection: true, resource: "ServicePrincipal",
		filterable: servicePrincipalFilter, selectable: servicePrincipalProperties, advanced: true, searchable: servicePrincipalSearch, orderable: servicePrincipalOrder}
	servicePrincipalGetQuery = querySpec{resource: "ServicePrincipal", selectable: servicePrincipalProperties}
)

// loadServicePrincipal finds the service principal the path names, by
// object id or by (appId='…'), in the caller's tenant, and enforces
// ownership for owned-only callers (see loadApplication).
func (h *Handler) loadServicePrincipal(rq *request, dir *directory.Service) (*directory.ServicePrincipal, error) {
	id := normalizeID(rq.pathID("id"))
	var sp *directory.ServicePrincipal
	var err error
	if rq.path.byAppID {
		sp, err = dir.ServicePrincipalByAppID(rq.ctx, rq.tenant(), id)
	} else {
		sp, err = dir.GetServicePrincipal(rq.ctx, rq.tenant(), id)
	}
	if errors.Is(err, directory.ErrNotFound) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, err
	}
	rq.target = sp.ID
	if err := h.checkOwned(rq, dir, sp.ID); err != nil {
		return nil, err
	}
	return sp, nil
}

// loadChangeableServicePrincipal is loadServicePrincipal for changes to
// the principal itself (PATCH, DELETE, passwords). Two kinds are refused:
// Microsoft's first-party service principals (Graph, ARM, Key Vault, …),
// which every token for those resources is issued against and nothing
// recreates; and managed identities, which belong to their Azure resource
// and change only with it, as in Entra.
func (h *Handler) loadChangeableServicePrincipal(rq *request, dir *directory.Service) (*directory.ServicePrincipal, error) {
	sp, err := h.loadServicePrincipal(rq, dir)
	if err != nil {
		return nil, err
	}
	if sp.AppOwnerOrganizationID == directory.MicrosoftTenantID {
		return nil, badRequest("The service principal of Microsoft first-party application '%s' cannot be changed or deleted.", sp.AppDisplayName)
	}
	if sp.ServicePrincipalType == directory.SPTypeManagedIdentity {
		return nil, badRequest("The service principal of a managed identity is managed by its Azure resource and cannot be changed or deleted through Graph.")
	}
	return sp, nil
}

// servicePrincipalObject is loadServicePrincipal for the shared owners endpoints.
func (h *Handler) servicePrincipalObject(rq *request, dir *directory.Service) (string, error) {
	sp, err := h.loadServicePrincipal(rq, dir)
	if err != nil {
		return "", err
	}
	return sp.ID, nil
}

func (h *Handler) listServicePrincipals(rq *request) error {
	return listCollection(h, rq, "servicePrincipals", servicePrincipalListQuery, true,
		func(q directory.Query) ([]*directory.ServicePrincipal, error) {
			return h.dir.ListServicePrincipals(rq.ctx, rq.tenant(), q)
		},
		func(sp *directory.ServicePrincipal) (string, any) { return sp.ID, servicePrincipalToView(sp) })
}

func (h *Handler) getServicePrincipal(rq *request) error {
	opts, err := parseQuery(rq.r.URL.RawQuery, servicePrincipalGetQuery)
	if err != nil {
		return err
	}
	sp, err := h.loadServicePrincipal(rq, h.dir)
	if err != nil {
		return err
	}
	return h.writeEntity(rq, http.StatusOK, "servicePrincipals", opts.sel, servicePrincipalToView(sp))
}

// createServicePrincipal provisions an application's service principal
// into the caller's tenant. An owned-only caller may do so only for an
// application of this tenant that it owns, and becomes the new principal's
// owner, all in one transaction.
func (h *Handler) createServicePrincipal(rq *request) error {
	body, err := readBody(rq, false)
	if err != nil {
		return err
	}
	var in servicePrincipalInput
	if err := decodeBody(body, &in, servicePrincipalReadOnly); err != nil {
		return err
	}
	if in.AppID == nil || *in.AppID == "" {
		return badRequest("Property 'appId' is required.")
	}
	if err := checkDisplayName(in.DisplayName); err != nil {
		return err
	}
	appID := strings.ToLower(*in.AppID)
	var created *directory.ServicePrincipal
	err = h.change(rq, func(tx *directory.Service) (string, error) {
		if rq.access == ownedOnly {
			app, err := tx.ApplicationByAppID(rq.ctx, appID)
			if errors.Is(err, directory.ErrNotFound) || (err == nil && app.TenantID != rq.tenant()) {
				return "", errDenied
			}
			if err != nil {
				return "", err
			}
			if err := h.checkOwned(rq, tx, app.ID); err != nil {
				return "", err
			}
		}
		sp, err := tx.CreateServicePrincipal(rq.ctx, rq.tenant(), appID)
		if errors.Is(err, directory.ErrConflict) {
			return "", duplicateKey("The service principal cannot be created, updated, or restored because the service principal name %s is already in use.", appID)
		}
		if err != nil {
			return "", err
		}
		if in.AccountEnabled != nil || in.AppRoleAssignmentRequired != nil || in.DisplayName != nil || in.Tags != nil {
			sp, err = tx.UpdateServicePrincipal(rq.ctx, rq.tenant(), sp.ID, func(p *directory.ServicePrincipal) error {
				in.applyTo(p)
				return nil
			})
			if err != nil {
				return "", err
			}
		}
		if rq.access == ownedOnly {
			if err := tx.AddOwner(rq.ctx, rq.tenant(), sp.ID, rq.caller.objectID); err != nil {
				return "", err
			}
		}
		created = sp
		return sp.ID, nil
	})
	if err != nil {
		return err
	}
	return h.writeEntity(rq, http.StatusCreated, "servicePrincipals", nil, servicePrincipalToView(created))
}

func (h *Handler) updateServicePrincipal(rq *request) error {
	body, err := readBody(rq, false)
	if err != nil {
		return err
	}
	var in servicePrincipalInput
	if err := decodeBody(body, &in, append([]string{"appId"}, servicePrincipalReadOnly...)); err != nil {
		return err
	}
	if err := checkDisplayName(in.DisplayName); err != nil {
		return err
	}
	err = h.change(rq, func(tx *directory.Service) (string, error) {
		sp, err := h.loadChangeableServicePrincipal(rq, tx)
		if err != nil {
			return "", err
		}
		_, err = tx.UpdateServicePrincipal(rq.ctx, rq.tenant(), sp.ID, func(p *directory.ServicePrincipal) error {
			in.applyTo(p)
			return nil
		})
		return sp.ID, err
	})
	if err != nil {
		return err
	}
	return noContent(rq)
}

func (h *Handler) deleteServicePrincipal(rq *request) error {
	err := h.change(rq, func(tx *directory.Service) (string, error) {
		sp, err := h.loadChangeableServicePrincipal(rq, tx)
		if err != nil {
			return "", err
		}
		return sp.ID, tx.DeleteServicePrincipal(rq.ctx, rq.tenant(), sp.ID)
	})
	if err != nil {
		return err
	}
	return noContent(rq)
}

func (h *Handler) addServicePrincipalPassword(rq *request) error {
	name, start, end, err := passwordOptions(rq)
	if err != nil {
		return err
	}
	var cred directory.PasswordCredential
	err = h.change(rq, func(tx *directory.Service) (string, error) {
		sp, err := h.loadChangeableServicePrincipal(rq, tx)
		if err != nil {
			return "", err
		}
		cred, err = tx.AddServicePrincipalPassword(rq.ctx, rq.tenant(), sp.ID, name, start, end)
		return sp.ID, err
	})
	if err != nil {
		return err
	}
	return h.writeSecret(rq, cred)
}

func (h *Handler) removeServicePrincipalPassword(rq *request) error {
	keyID, _, err := readKeyID(rq)
	if err != nil {
		return err
	}
	err = h.change(rq, func(tx *directory.Service) (string, error) {
		sp, err := h.loadChangeableServicePrincipal(rq, tx)
		if err != nil {
			return "", err
		}
		return sp.ID, tx.RemoveServicePrincipalPassword(rq.ctx, rq.tenant(), sp.ID, keyID)
	})
	if err != nil {
		return err
	}
	return noContent(rq)
}
