package arm

// A managed application definition's package: its mainTemplate and
// createUiDefinition, given inline as the armmanagedapplications SDK sends
// them (ApplicationDefinitionProperties.MainTemplate and
// CreateUIDefinition, "a JObject or well-formed JSON string"). The
// template is checked when the definition is written; installing an
// application runs it as a template deployment (deployments*.go) into
// the managed resource group, as the platform, and the application's
// outputs are the deployment's.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/armtemplate"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/token"
)

// platformActor names the platform in the claims of its in-process
// requests, so in their audit records and as the creator of what it
// makes: the same actor as the platform's own reads of a registration's
// bootstrap secret (vault.Service.ResolveReference).
const platformActor = "Microsoft.Solutions"

// inlineJSON is a member that may be a JSON object or a well-formed JSON
// string holding one, as the REST spec allows for mainTemplate,
// createUiDefinition and an application's parameters. It answers the
// object's text, nil for an absent or null member, or an error naming
// the member.
func inlineJSON(raw json.RawMessage, member string) (json.RawMessage, error) {
	if isNull(raw) {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(s)
	}
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '{' || !json.Valid(t) {
		return nil, rp.NewError(http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: '%s must be a JSON object or a string holding one.'.", member)
	}
	return raw, nil
}

// withoutSecureValues is an application's parameters as they are kept
// and shown: the value of each securestring or secureObject parameter of
// the definition's template removed (a Key Vault reference, which is no
// secret, stays). Azure returns no secure parameter's value from a
// deployment ("secureString ... values aren't saved to the deployment
// history"; learn.microsoft.com/azure/azure-resource-manager/templates/
// data-types#secure-strings-and-objects), and the application is read by
// the customer's readers and the publisher's authorized principals.
// Parameters that are not an object of objects are kept as they are
// (the install refuses them).
func withoutSecureValues(template, params json.RawMessage) json.RawMessage {
	if isNull(template) || isNull(params) {
		return params
	}
	t, err := armtemplate.Parse(template)
	if err != nil {
		return params
	}
	secure := t.SecureParameters()
	if len(secure) == 0 {
		return params
	}
	raw, err := inlineJSON(params, "properties.parameters")
	if err != nil {
		return params
	}
	var values map[string]map[string]json.RawMessage
	if json.Unmarshal(raw, &values) != nil {
		return params
	}
	for name, v := range values {
		if v != nil && slices.ContainsFunc(secure, func(s string) bool { return strings.EqualFold(s, name) }) {
			delete(v, "value")
		}
	}
	out, err := json.Marshal(values)
	if err != nil {
		return params
	}
	return out
}

// checkMainTemplate parses a definition's mainTemplate. A template that
// does not parse is refused as Resource Manager refuses it in a
// deployment: 400 InvalidTemplate with its line and position
// (armtemplate.Error); the error of an application's install for a
// template Azure could not validate says the same
// ("Deployment template validation failed: …", azure-powershell#12042).
func checkMainTemplate(raw json.RawMessage) error {
	_, err := armtemplate.Parse(raw)
	return err
}

// installTemplate runs an application's template (its definition's
// mainTemplate, or the template its spec stands for) as the deployment
// named after the application in its managed resource group, with
// parameters, and waits for it. The deployment acts as the
// platform (caller.platformScope): in Azure the managed applications
// resource provider deploys the package, not the customer, so the
// deployment creates what the template lists in the locked group, where
// the deny assignment refuses the customer, and nothing outside it. It
// answers the deployment's outputs, or the error the application fails
// with.
func (h *Handler) installTemplate(ctx context.Context, host, tenantID, appName string, st appState, template, parameters json.RawMessage) (map[string]any, *appError) {
	failed := func(e *armtemplate.Error) *appError {
		return &appError{Code: armtemplate.CodeDeploymentFailed,
			Message: "At least one resource deployment operation failed. Please list deployment operations for details. Please see https://aka.ms/DeployOperations for usage details.",
			Details: []deployError{{Code: e.Code, Message: e.Message}}}
	}
	mrg, err := rbac.ParseScope(st.ManagedResourceGroupID)
	segs := strings.Split(strings.TrimPrefix(mrg.String(), "/"), "/")
	if err != nil || len(segs) != 4 {
		return nil, failed(&armtemplate.Error{Code: "InternalServerError", Message: "The managed resource group id is not valid."})
	}
	sub, rg := segs[1], segs[3]
	params, perr := inlineJSON(parameters, "properties.parameters")
	if perr != nil {
		return nil, failed(&armtemplate.Error{Code: armtemplate.CodeInvalidTemplate, Message: "The application's parameters must be a JSON object of {\"name\": {\"value\": …}}."})
	}
	body, err := json.Marshal(map[string]any{"properties": map[string]any{"mode": "Incremental", "template": template, "parameters": params}})
	if err != nil {
		return nil, failed(templateError(err))
	}
	c := &caller{claims: token.Claims{TenantID: tenantID, ObjectID: platformActor, AppID: platformActor, IdentType: "app"},
		host: host, platformScope: st.ManagedResourceGroupID}
	if c.appliance, err = h.applianceCaller(ctx, host, st.PublisherTenantID); err != nil {
		return nil, failed(&armtemplate.Error{Code: "InternalServerError", Message: "The managed applications service's principal could not be read."})
	}
	p, err := h.prepareFrom(ctx, sub, rg, appName, tenantID, c, body)
	if err != nil {
		// Validation failed: nothing was deployed
		// ("ApplianceProvisioningFailed … Deployment template validation
		// failed", azure-powershell#12042); its error is the detail.
		return nil, failed(templateError(err))
	}
	sc, err := rp.ParseScopeText(st.ManagedResourceGroupID + "/providers/" + deploymentsType + "/" + appName)
	if err != nil {
		return nil, failed(templateError(err))
	}
	brq := rp.Background(ctx, door{h})
	brq.Path = rp.Path{Target: targetDeployments, Scope: sc, Sub: sub, RG: rg, Name: appName}
	d := h.newDeploymentDoc(brq, p)
	x, runCtx, err := h.acceptDeployment(ctx, tenantID, sub, rg, d, p)
	if err != nil {
		return nil, failed(templateError(err))
	}
	h.runDeployment(runCtx, x, p)
	x.mu.Lock()
	defer x.mu.Unlock()
	pr := x.doc.Properties
	if pr.ProvisioningState == "Succeeded" {
		return pr.Outputs, nil
	}
	return nil, deploymentAppError(pr.Error)
}

// applianceCaller is the publisher tenant's Appliance Resource Provider
// as a deployer: its service principal in that tenant, which a publisher
// grants deploy/action on its vault (az ad sp list --display-name
// "Appliance Resource Provider"). Nil, without error, when the tenant
// holds none (references to the publisher's vault then fail closed).
// Azure does not scope that grant to one offer: every package of the
// publisher tenant may reference a vault the principal may deploy from
// (docs/managed-applications.md).
func (h *Handler) applianceCaller(ctx context.Context, host, publisherTenantID string) (*caller, error) {
	if publisherTenantID == "" {
		return nil, nil
	}
	sp, err := h.dir.ServicePrincipalByAppID(ctx, publisherTenantID, directory.ApplianceRPAppID)
	if errors.Is(err, directory.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return &caller{claims: token.Claims{TenantID: publisherTenantID, ObjectID: sp.ID, AppID: directory.ApplianceRPAppID, IdentType: "app"},
		host: host}, nil
}

// deploymentAppError is the application's error for a deployment's
// error envelope: DeploymentFailed with the code and message of each
// failure that caused it as a detail (a DeploymentFailed, the
// deployment's own or a nested deployment's, is unwrapped to its
// details).
func deploymentAppError(env map[string]any) *appError {
	out := &appError{Code: armtemplate.CodeDeploymentFailed,
		Message: "At least one resource deployment operation failed. Please list deployment operations for details. Please see https://aka.ms/DeployOperations for usage details."}
	var walk func(m map[string]any)
	walk = func(m map[string]any) {
		code, _ := m["code"].(string)
		list, _ := m["details"].([]any) // as armtemplate.Error.Envelope writes them
		if code == armtemplate.CodeDeploymentFailed && len(list) > 0 {
			for _, d := range list {
				if dm, ok := d.(map[string]any); ok {
					walk(dm)
				}
			}
			return
		}
		msg, _ := m["message"].(string)
		out.Details = append(out.Details, deployError{Code: code, Message: msg})
	}
	if env != nil {
		walk(env)
	}
	return out
}

// finishTemplateInstall deploys the template of an application that is
// Accepted (a package's mainTemplate with the application's parameters,
// or a spec's) and ends the install with the outcome.
func (h *Handler) finishTemplateInstall(rq *rp.Request, tenantID string, app store.Resource, st appState, template, params json.RawMessage,
	succeeded func(tx store.Store, app store.Resource, st appState) error) error {
	outputs, failure := h.installTemplate(rq.Ctx, rq.R.Host, tenantID, app.Name, st, template, params)
	return h.endInstall(rq, tenantID, app, st, outputs, failure, succeeded)
}

// endInstall sets the application Succeeded, with the deployment's
// outputs and what succeeded adds in the same transaction, or Failed
// with failure, each with its notification; it answers 201 with the
// final state (the install runs while the PUT waits).
func (h *Handler) endInstall(rq *rp.Request, tenantID string, app store.Resource, st appState, outputs map[string]any, failure *appError,
	succeeded func(tx store.Store, app store.Resource, st appState) error) error {
	rq.Action = actionAppWrite
	if failure != nil {
		rq.Detail = "deployment failed: " + failure.Code
		if len(failure.Details) > 0 {
			rq.Detail += " " + failure.Details[0].Code
		}
		st.ProvisioningState, st.Error = "Failed", failure
	} else {
		st.ProvisioningState, st.Outputs = "Succeeded", outputs
	}
	err := rq.Change(tenantID, func(tx store.Store, _ *directory.Service) error {
		var err error
		if app, err = h.saveState(rq.Ctx, tx, app, st, "PUT"); err != nil {
			return err
		}
		if failure == nil && succeeded != nil {
			return succeeded(tx, app, st)
		}
		return nil
	})
	if err != nil {
		return err
	}
	h.wake()
	return writeView(rq, http.StatusCreated, app, appViewOf)
}
