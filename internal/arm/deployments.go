package arm

// Microsoft.Resources/deployments: template deployments at a subscription
// and in a resource group, as the REST spec (resources 2021-04-01, what
// armresources' DeploymentsClient is generated from) defines them:
//
//	PUT    {scope}/providers/Microsoft.Resources/deployments/{name}                 validate, then run (an LRO)
//	GET    {scope}/providers/Microsoft.Resources/deployments[/{name}]               one, or the scope's list
//	DELETE {scope}/providers/Microsoft.Resources/deployments/{name}                 the record (not its resources)
//	POST   {scope}/providers/Microsoft.Resources/deployments/{name}/validate
//	POST   {scope}/providers/Microsoft.Resources/deployments/{name}/cancel
//	POST   {scope}/providers/Microsoft.Resources/deployments/{name}/exportTemplate
//	POST   {scope}/providers/Microsoft.Resources/deployments/{name}/whatIf          refused: not served
//	GET    {scope}/providers/Microsoft.Resources/deployments/{name}/operations[/{id}]
//	GET    {scope}/providers/Microsoft.Resources/deployments/{name}/operationStatuses/{id}  the Azure-AsyncOperation
//	GET    {scope}/providers/Microsoft.Resources/deployments/{name}/operationResults/{id}   a delete's Location
//
// {scope} is /subscriptions/{s} or /subscriptions/{s}/resourcegroups/{rg}.
// The SDK lists a group's operations at .../resourcegroups/{rg}/deployments/{name}/operations,
// without the provider segments, and that path is served too.
//
// The template language is package armtemplate's. Each resource is
// created by an in-process PUT to this handler as the deploying principal
// (deployments_run.go), so RBAC, each type's validation and the audit log
// apply exactly as to a REST call of the caller's own.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/armtemplate"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

const targetDeployments target = 150

const (
	deploymentsType = armtemplate.DeploymentsType
	// Microsoft.Resources' operations on deployments (the provider's
	// operations list: learn.microsoft.com/azure/role-based-access-control/permissions/management-and-governance#microsoftresources).
	actionDeploymentRead     = deploymentsType + "/read"
	actionDeploymentWrite    = deploymentsType + "/write"
	actionDeploymentDelete   = deploymentsType + "/delete"
	actionDeploymentCancel   = deploymentsType + "/cancel/action"
	actionDeploymentValidate = deploymentsType + "/validate/action"
	actionDeploymentExport   = deploymentsType + "/exportTemplate/action"
	actionDeploymentWhatIf   = deploymentsType + "/whatIf/action"
	actionDeploymentOpsRead  = deploymentsType + "/operations/read"
	actionDeploymentStatus   = deploymentsType + "/operationstatuses/read"
)

// deploymentNameRE is the REST spec's pattern of deploymentName
// (resources.json: minLength 1, maxLength 64, ^[-\w\._\(\)]+$).
var deploymentNameRE = regexp.MustCompile(`^[-\w._()]{1,64}$`)

// deploymentOps are the sub-paths of one deployment, lower-cased, with
// whether an id may follow.
var deploymentOps = map[string]bool{"validate": false, "cancel": false, "exporttemplate": false, "whatif": false, "operations": true, "operationstatuses": true, "operationresults": true}

// deploymentPath recognises the deployments paths. name is the
// deployment's; child is its sub-path, lower-cased, with "/{id}" for one
// operation or status.
func deploymentPath(segs []string) (rp.Path, bool, error) {
	is := func(i int, s string) bool { return i < len(segs) && strings.EqualFold(segs[i], s) }
	if !is(0, "subscriptions") || len(segs) < 2 || segs[1] == "" {
		return rp.Path{}, false, nil
	}
	var rest []string
	ap := rp.Path{Target: targetDeployments, Sub: segs[1]}
	switch {
	case is(2, "providers") && is(3, "Microsoft.Resources") && is(4, "deployments"):
		rest = segs[5:]
	case is(2, "resourceGroups") && len(segs) > 3 && segs[3] != "" && is(4, "providers") && is(5, "Microsoft.Resources") && is(6, "deployments"):
		ap.RG, rest = segs[3], segs[7:]
	case is(2, "resourceGroups") && len(segs) > 5 && segs[3] != "" && is(4, "deployments") && is(6, "operations"):
		ap.RG, rest = segs[3], segs[5:]
	default:
		return rp.Path{}, false, nil
	}
	scopeText := "/subscriptions/" + ap.Sub
	if ap.RG != "" {
		scopeText += "/resourceGroups/" + ap.RG
	}
	if len(rest) > 0 {
		ap.Name = rest[0]
		if !deploymentNameRE.MatchString(ap.Name) {
			return rp.Path{}, true, rp.BadPath("the deployment name '%s' is not valid: 1 to 64 letters, digits, '-', '_', '.', '(' or ')'", ap.Name)
		}
		scopeText += "/providers/" + deploymentsType + "/" + ap.Name
	}
	if len(rest) > 1 {
		op := strings.ToLower(rest[1])
		withID, known := deploymentOps[op]
		if !known || len(rest) > 3 || (len(rest) == 3 && (!withID || rest[2] == "")) {
			return rp.Path{}, true, rp.BadPath("the path below the deployment '%s' is not one Resource Manager serves", ap.Name)
		}
		ap.Child = op
		if len(rest) == 3 {
			ap.Child += "/" + rest[2]
		}
	}
	sc, err := rp.ParseScopeText(scopeText)
	if err != nil {
		return rp.Path{}, true, err
	}
	ap.Scope, ap.Sub = sc, sc.SubscriptionID()
	return ap, true, nil
}

// deployments routes the deployments paths.
func (h *Handler) deployments(rq *rp.Request) error {
	m := rq.R.Method
	if rq.Path.Name == "" {
		return rp.Only(rq, http.MethodGet, h.listDeployments)
	}
	op, id, _ := strings.Cut(rq.Path.Child, "/")
	switch op {
	case "":
		return rp.ServeType(rq, false, rp.TypeHandlers{Get: h.getDeployment, Put: h.putDeployment, Delete: h.deleteDeployment})
	case "validate":
		return rp.Only(rq, http.MethodPost, h.validateDeployment)
	case "cancel":
		return rp.Only(rq, http.MethodPost, h.cancelDeployment)
	case "exporttemplate":
		return rp.Only(rq, http.MethodPost, h.exportDeployment)
	case "whatif":
		return rp.Only(rq, http.MethodPost, h.whatIfDeployment)
	case "operations":
		return rp.Only(rq, http.MethodGet, func(rq *rp.Request) error { return h.deploymentOperations(rq, id) })
	case "operationstatuses":
		return rp.Only(rq, http.MethodGet, func(rq *rp.Request) error { return h.deploymentStatus(rq, id) })
	case "operationresults":
		return rp.Only(rq, http.MethodGet, h.deletionResult)
	}
	return rp.MethodNotAllowed(m)
}

// ---- the stored document and its views ----

// deploymentDoc is what the store keeps of a deployment (its Document).
type deploymentDoc struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Location string            `json:"location,omitempty"`
	Tags     map[string]string `json:"tags,omitempty"`
	// RunID names the current run: its correlationId and the id of its
	// Azure-AsyncOperation status.
	RunID      string                `json:"runId"`
	Properties deploymentProps       `json:"properties"`
	Template   json.RawMessage       `json:"template"`
	Operations []deploymentOperation `json:"operations,omitempty"`
	// Runner is the process (Handler) that runs an unfinished
	// deployment; its heartbeat is the record's Updated.
	Runner string `json:"runner,omitempty"`
}

// deploymentProps is DeploymentPropertiesExtended as the SDK reads it.
type deploymentProps struct {
	ProvisioningState  string              `json:"provisioningState"`
	CorrelationID      string              `json:"correlationId"`
	Timestamp          string              `json:"timestamp"`
	Duration           string              `json:"duration"`
	Mode               string              `json:"mode"`
	TemplateHash       string              `json:"templateHash,omitempty"`
	Parameters         map[string]any      `json:"parameters,omitempty"`
	Outputs            map[string]any      `json:"outputs,omitempty"`
	OutputResources    []resourceReference `json:"outputResources,omitempty"`
	ValidatedResources []resourceReference `json:"validatedResources,omitempty"`
	Dependencies       []dependencyView    `json:"dependencies,omitempty"`
	Error              map[string]any      `json:"error,omitempty"`
}

type resourceReference struct {
	ID string `json:"id"`
}

type dependencyView struct {
	ID           string          `json:"id"`
	ResourceName string          `json:"resourceName"`
	ResourceType string          `json:"resourceType"`
	DependsOn    []basicResource `json:"dependsOn"`
}

type basicResource struct {
	ID           string `json:"id"`
	ResourceName string `json:"resourceName"`
	ResourceType string `json:"resourceType"`
}

// deploymentOperation is one resource's operation, DeploymentOperation
// as the SDK reads it.
type deploymentOperation struct {
	ID          string            `json:"id"`
	OperationID string            `json:"operationId"`
	Properties  deploymentOpProps `json:"properties"`
}

type deploymentOpProps struct {
	ProvisioningOperation string     `json:"provisioningOperation"`
	ProvisioningState     string     `json:"provisioningState"`
	Timestamp             string     `json:"timestamp"`
	Duration              string     `json:"duration"`
	ServiceRequestID      string     `json:"serviceRequestId,omitempty"`
	StatusCode            string     `json:"statusCode,omitempty"`
	StatusMessage         *opStatus  `json:"statusMessage,omitempty"`
	TargetResource        *targetRes `json:"targetResource,omitempty"`
}

type opStatus struct {
	Status string         `json:"status,omitempty"`
	Error  map[string]any `json:"error,omitempty"`
}

type targetRes struct {
	ID           string `json:"id"`
	ResourceName string `json:"resourceName"`
	ResourceType string `json:"resourceType"`
}

// deploymentView is DeploymentExtended.
type deploymentView struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
	Properties deploymentProps   `json:"properties"`
}

func (d *deploymentDoc) view() deploymentView {
	return deploymentView{ID: d.ID, Name: d.Name, Type: deploymentsType, Location: d.Location, Tags: d.Tags, Properties: d.Properties}
}

func decodeDeployment(rec store.Deployment) (*deploymentDoc, error) {
	var d deploymentDoc
	if err := json.Unmarshal(rec.Document, &d); err != nil {
		return nil, rp.InternalError(fmt.Errorf("deployment %s: %w", rec.Name, err))
	}
	return &d, nil
}

// terminal reports whether a provisioningState is final.
func terminal(state string) bool {
	return state == "Succeeded" || state == "Failed" || state == "Canceled"
}

// duration is an ISO 8601 duration as ARM writes them (PT1.2345S).
func duration(d time.Duration) string {
	return fmt.Sprintf("PT%.7fS", d.Seconds())
}

// deploymentNotFound is ARM's answer for a missing deployment
// (DeploymentNotFound, 404).
func deploymentNotFound(name string) error {
	return rp.NewError(http.StatusNotFound, "DeploymentNotFound", "Deployment '%s' could not be found.", rp.SafeText(name))
}

// ---- reads ----

// deploymentAt finds the path's deployment of the tenant, failing an
// unfinished one whose runner has stopped (deployments_run.go).
func (h *Handler) deploymentAt(rq *rp.Request, tenantID string) (store.Deployment, *deploymentDoc, error) {
	running := h.runs.snapshot()
	rec, err := h.st.GetDeployment(rq.Ctx, rq.Path.Sub, rq.Path.RG, rq.Path.Name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !strings.EqualFold(rec.TenantID, tenantID)) {
		return rec, nil, deploymentNotFound(rq.Path.Name)
	} else if err != nil {
		return rec, nil, rp.InternalError(err)
	}
	d, err := decodeDeployment(rec)
	if err != nil {
		return rec, nil, err
	}
	rec, d, err = h.failIfAbandoned(rq.Ctx, running, rec, d)
	return rec, d, err
}

// deploymentScope checks the caller may perform action at the path's
// scope (the deployment's id, or for a list the subscription or group)
// and that the group exists, and returns the tenant.
func (h *Handler) deploymentScope(rq *rp.Request, action string) (string, error) {
	tenantID, err := rq.AuthorizeAt(action)
	if err != nil {
		return "", err
	}
	if rq.Path.RG != "" {
		if _, err := rp.PathGroup(rq, h.st); err != nil {
			return "", err
		}
	}
	return tenantID, nil
}

func (h *Handler) getDeployment(rq *rp.Request) error {
	tenantID, err := h.deploymentScope(rq, actionDeploymentRead)
	if err != nil {
		return err
	}
	_, d, err := h.deploymentAt(rq, tenantID)
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, http.StatusOK, d.view())
}

func (h *Handler) listDeployments(rq *rp.Request) error {
	tenantID, err := rq.ListTenant(actionDeploymentRead)
	if err != nil {
		return err
	}
	running := h.runs.snapshot()
	recs, err := h.st.ListDeployments(rq.Ctx, rq.Path.Sub, rq.Path.RG)
	if err != nil {
		return rp.InternalError(err)
	}
	var views []deploymentView
	for _, rec := range recs {
		if !strings.EqualFold(rec.TenantID, tenantID) {
			continue
		}
		d, err := decodeDeployment(rec)
		if err != nil {
			return err
		}
		if _, d, err = h.failIfAbandoned(rq.Ctx, running, rec, d); err != nil {
			return err
		}
		views = append(views, d.view())
	}
	return rp.WriteReadable(rq, actionDeploymentRead, views, func(v deploymentView) string { return v.ID },
		func(v deploymentView) (deploymentView, error) { return v, nil })
}

// deploymentOperations lists a deployment's operations, or gets one.
func (h *Handler) deploymentOperations(rq *rp.Request, id string) error {
	tenantID, err := h.deploymentScope(rq, actionDeploymentOpsRead)
	if err != nil {
		return err
	}
	_, d, err := h.deploymentAt(rq, tenantID)
	if err != nil {
		return err
	}
	if id != "" {
		for _, op := range d.Operations {
			if strings.EqualFold(op.OperationID, id) {
				return rp.WriteJSON(rq, http.StatusOK, op)
			}
		}
		return rp.NewError(http.StatusNotFound, "DeploymentOperationNotFound", "The deployment operation '%s' of deployment '%s' could not be found.", rp.SafeText(id), rp.SafeText(d.Name))
	}
	p, err := rq.PageOf("$skiptoken", true)
	if err != nil {
		return err
	}
	return rp.WritePage(rq, p, d.Operations, func(op deploymentOperation) string { return op.OperationID })
}

// deploymentStatus answers the Azure-AsyncOperation URL of a run: its
// status (Accepted, Running, Succeeded, Failed, Canceled) and, once it
// failed, the error, as azcore's async poller reads them.
func (h *Handler) deploymentStatus(rq *rp.Request, id string) error {
	tenantID, err := h.deploymentScope(rq, actionDeploymentStatus)
	if err != nil {
		return err
	}
	_, d, err := h.deploymentAt(rq, tenantID)
	if err != nil {
		return err
	}
	if id == "" || !strings.EqualFold(id, d.RunID) {
		return rp.NewError(http.StatusNotFound, "OperationNotFound", "The operation '%s' could not be found.", rp.SafeText(id))
	}
	out := map[string]any{"status": d.Properties.ProvisioningState}
	if d.Properties.Error != nil {
		out["error"] = d.Properties.Error
	}
	return rp.WriteJSON(rq, http.StatusOK, out)
}

// exportDeployment answers the template the deployment ran.
func (h *Handler) exportDeployment(rq *rp.Request) error {
	tenantID, err := h.deploymentScope(rq, actionDeploymentExport)
	if err != nil {
		return err
	}
	_, d, err := h.deploymentAt(rq, tenantID)
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, http.StatusOK, map[string]json.RawMessage{"template": d.Template})
}

// whatIfDeployment is refused: tenantbridge does not compute what-if
// changes. 400 in ARM's shape, so that a tool reports it plainly.
func (h *Handler) whatIfDeployment(rq *rp.Request) error {
	if _, err := h.deploymentScope(rq, actionDeploymentWhatIf); err != nil {
		return err
	}
	return rp.NewError(http.StatusBadRequest, "InvalidRequestContent", "What-if (POST .../deployments/{name}/whatIf) is not supported by this Resource Manager: validate the deployment instead (POST .../validate).")
}

// ---- changes ----

// deleteDeployment removes a finished deployment's record; its resources
// stay. A running one cannot be deleted (the REST spec: "A template
// deployment that is currently running cannot be deleted"). Azure answers
// 202 and a Location; the record is gone at once here, so the Location
// answers 204 at the first poll.
func (h *Handler) deleteDeployment(rq *rp.Request) error {
	tenantID, err := h.deploymentScope(rq, actionDeploymentDelete)
	if err != nil {
		return err
	}
	_, d, err := h.deploymentAt(rq, tenantID)
	if isDeploymentNotFound(err) {
		rq.W.WriteHeader(http.StatusNoContent)
		return nil
	} else if err != nil {
		return err
	}
	if !terminal(d.Properties.ProvisioningState) {
		return deploymentActive(d)
	}
	rq.Target = d.ID
	err = rq.Change(tenantID, func(tx store.Store, _ *directory.Service) error {
		return tx.DeleteDeployment(rq.Ctx, rq.Path.Sub, rq.Path.RG, rq.Path.Name)
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	rq.W.Header().Set("Location", absoluteURL(rq, d.ID+"/operationResults/"+d.RunID))
	rq.W.WriteHeader(http.StatusAccepted)
	return nil
}

// deletionResult answers the Location of a delete, as azcore's location
// poller reads it: 204 once the deployment is gone, 202 while it is not.
func (h *Handler) deletionResult(rq *rp.Request) error {
	tenantID, err := h.deploymentScope(rq, actionDeploymentRead)
	if err != nil {
		return err
	}
	if _, _, err := h.deploymentAt(rq, tenantID); isDeploymentNotFound(err) {
		rq.W.WriteHeader(http.StatusNoContent)
		return nil
	} else if err != nil {
		return err
	}
	rq.W.WriteHeader(http.StatusAccepted)
	return nil
}

func isDeploymentNotFound(err error) bool {
	var ae *rp.Error
	return errors.As(err, &ae) && ae.Code == "DeploymentNotFound"
}

// deploymentActive is ARM's refusal to replace or delete a deployment
// that still runs (DeploymentActive, 409; the message as Resource Manager
// words it).
func deploymentActive(d *deploymentDoc) error {
	return rp.NewError(http.StatusConflict, "DeploymentActive", "Unable to edit or replace deployment '%s': previous deployment from '%s' is still active. Please see https://aka.ms/arm-deploy for usage details.",
		rp.SafeText(d.Name), d.Properties.Timestamp)
}

// cancelDeployment cancels a deployment that is Accepted or Running (the
// REST spec: "You can cancel a deployment only if the provisioningState
// is Accepted or Running"): 204, and the run ends Canceled once the
// resources being created have answered. Another state is refused with
// 409; the code, DeploymentCannotBeCanceled, is ours (the spec names
// none).
func (h *Handler) cancelDeployment(rq *rp.Request) error {
	tenantID, err := h.deploymentScope(rq, actionDeploymentCancel)
	if err != nil {
		return err
	}
	_, d, err := h.deploymentAt(rq, tenantID)
	if err != nil {
		return err
	}
	rq.Target = d.ID
	if terminal(d.Properties.ProvisioningState) || !h.runs.cancel(d.ID, d.RunID) {
		return rp.NewError(http.StatusConflict, "DeploymentCannotBeCanceled", "The deployment '%s' is %s: only a deployment that is Accepted or Running can be canceled.", rp.SafeText(d.Name), d.Properties.ProvisioningState)
	}
	_ = h.audit.Record(rq.Ctx, h.auditRecord(rq, tenantID, "success"))
	rq.W.WriteHeader(http.StatusNoContent)
	return nil
}

// absoluteURL is the URL of path on the host the rp.Request came to.
func absoluteURL(rq *rp.Request, path string) string {
	base := httpx.InfoFrom(rq.Ctx).BaseURL
	if base == "" {
		base = "https://" + rq.R.Host
	}
	return strings.TrimRight(base, "/") + path + "?api-version=" + rq.R.URL.Query().Get("api-version")
}

// newRunID is a run's correlation id.
func newRunID() string { return uuid.NewString() }
