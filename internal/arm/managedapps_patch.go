package arm

// PATCH of application definitions and applications (the 2021-07-01
// spec's ApplicationDefinitions_Update and Applications_Update, which
// armmanagedapplications' Update methods send). A definition's patch
// (ApplicationDefinitionPatchable) has tags only. An application's
// (ApplicationPatchable) changes its tags here; the members that would
// move it to another definition, plan, kind or managed resource group,
// or redeploy it with other parameters, are refused as a PUT refuses
// them (409 ApplicationUpdateNotSupported) when they differ. Both answer
// 200 with the resource; a missing one is 404, as PATCH never creates.

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// patchTags replaces the tags of the resource of type typ the path names
// when the patch has them (null clears them), after check has accepted
// the rest of the patch, in one audited change, and answers the view.
func patchTags[V any](h *Handler, rq *rp.Request, action, typ string, view func(store.Resource) (V, error),
	check func(res store.Resource, patch map[string]json.RawMessage) error) error {
	tenantID, err := rq.AuthorizeAt(action)
	if err != nil {
		return err
	}
	var patch map[string]json.RawMessage
	if err := rp.ReadBody(rq, &patch); err != nil {
		return err
	}
	if patch == nil {
		return rp.BadRequest("The request content must be a JSON object.")
	}
	var saved store.Resource
	err = rq.Change(tenantID, func(tx store.Store, _ *directory.Service) error {
		res, err := rp.FindTypedAt(rq, tx, tenantID, typ)
		if err != nil {
			return err
		}
		rq.Target = res.ID
		if check != nil {
			if err := check(res, patch); err != nil {
				return err
			}
		}
		raw, ok := member(patch, "tags")
		if !ok {
			saved = res
			return rp.ErrNothingToDo
		}
		var tags map[string]string
		if err := json.Unmarshal(raw, &tags); err != nil {
			return rp.NewError(http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: 'tags must be an object of strings'.")
		}
		if err := rp.CheckTags(tags); err != nil {
			return err
		}
		res.Tags, res.Updated = tags, h.now().UTC()
		if err := tx.UpdateResource(rq.Ctx, res); err != nil {
			return rp.InternalError(err)
		}
		saved = res
		return nil
	})
	if err != nil && !errors.Is(err, rp.ErrNothingToDo) {
		return err
	}
	return writeView(rq, http.StatusOK, saved, view)
}

// member finds a member of a JSON object whatever its letter case.
func member(obj map[string]json.RawMessage, name string) (json.RawMessage, bool) {
	for k, v := range obj {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

func (h *Handler) patchAppDefinition(rq *rp.Request) error {
	return patchTags(h, rq, actionAppDefWrite, appDefType, appDefViewOf, nil)
}

func (h *Handler) patchApplication(rq *rp.Request) error {
	return patchTags(h, rq, actionAppWrite, applicationType, appViewOf, func(res store.Resource, patch map[string]json.RawMessage) error {
		st, err := stateOf(res)
		if err != nil {
			return err
		}
		refuse := func(what string) error {
			return rp.NewError(http.StatusConflict, "ApplicationUpdateNotSupported",
				"The application '%s' cannot change its %s by an update; delete it and install again.", rp.SafeText(res.Name), what)
		}
		var body struct {
			Kind       *string         `json:"kind"`
			Plan       json.RawMessage `json:"plan"`
			Properties *struct {
				ApplicationDefinitionID *string         `json:"applicationDefinitionId"`
				ManagedResourceGroupID  *string         `json:"managedResourceGroupId"`
				Parameters              json.RawMessage `json:"parameters"`
			} `json:"properties"`
		}
		b, _ := json.Marshal(patch)
		if err := json.Unmarshal(b, &body); err != nil {
			return rp.NewError(http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: '%s'.", rp.SafeText(err.Error()))
		}
		if body.Kind != nil && !strings.EqualFold(*body.Kind, st.Kind) {
			return refuse("kind")
		}
		if !isNull(body.Plan) {
			var plan appPlan
			if json.Unmarshal(body.Plan, &plan) != nil || st.Plan == nil || !strings.EqualFold(plan.Publisher, st.Plan.Publisher) ||
				!strings.EqualFold(plan.Product, st.Plan.Product) || plan.Name != st.Plan.Name || plan.Version != st.Plan.Version {
				return refuse("plan")
			}
		}
		if p := body.Properties; p != nil {
			if p.ApplicationDefinitionID != nil && !strings.EqualFold(*p.ApplicationDefinitionID, st.ApplicationDefinitionID) {
				return refuse("application definition")
			}
			if p.ManagedResourceGroupID != nil && scopeKey(*p.ManagedResourceGroupID) != scopeKey(st.ManagedResourceGroupID) {
				return refuse("managed resource group")
			}
			current := st.Parameters
			if isNull(current) {
				current = json.RawMessage("{}")
			}
			// Compared as kept: without the secure parameters' values,
			// which the application never shows back.
			given := p.Parameters
			if def, err := h.st.GetResource(rq.Ctx, st.DefinitionID); err == nil {
				var dp appDefProps
				if json.Unmarshal(def.Properties, &dp) == nil {
					given = withoutSecureValues(dp.MainTemplate, given)
				}
			}
			if !isNull(given) && !jsonEqual(given, current) {
				return refuse("parameters")
			}
		}
		return nil
	})
}

// jsonEqual compares two JSON texts by value.
func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
