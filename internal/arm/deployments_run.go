package arm

// Validating and running template deployments. A deployment acts as the
// principal that sent it: every resource is created by an in-process PUT
// to this same handler carrying that principal's verified claims (see
// caller), so RBAC, each resource type's rules and the audit log apply to
// it exactly as to the principal's own REST calls, and the template can
// deploy nothing the principal could not create by hand. reference() and
// list*() of resources outside the template are in-process GETs and POSTs
// of the same kind.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/armtemplate"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/token"
)

// maxDeploymentBody bounds a deployment request: a template of
// armtemplate.MaxTemplateBytes with its parameters and envelope.
const maxDeploymentBody = armtemplate.MaxTemplateBytes + 1<<20

// ---- acting as the caller ----

// callerKey is the context key of an in-process request's caller. Only
// this package can make one, so no request from the network carries it.
type callerKey struct{}

// caller is who an in-process request acts as: the verified claims of the
// principal that sent the deployment, or the platform (a managed
// application's installation, managedapps_template.go) limited to one
// managed resource group; and the host the request came to.
type caller struct {
	claims token.Claims
	host   string
	// platformScope, when set, makes the caller the platform itself
	// (Microsoft.Solutions installing a managed application), which may
	// do anything at or below this scope and nothing elsewhere.
	platformScope string
	// appliance, for the platform installing a managed application, is
	// the publisher tenant's Appliance Resource Provider: the deployer of
	// the Key Vault references in the package's nested deployments to a
	// vault outside the managed resource group (deployments_keyvault.go).
	// Nil when the publisher tenant has no such principal: such
	// references fail closed.
	appliance *caller
}

// callerOf returns the in-process caller of a request, if any.
func callerOf(ctx context.Context) *caller {
	c, _ := ctx.Value(callerKey{}).(*caller)
	return c
}

// authenticateInProcess sets rq's principal from an in-process caller;
// false for a request from the network.
func authenticateInProcess(rq *rp.Request) bool {
	c := callerOf(rq.Ctx)
	if c == nil {
		return false
	}
	rq.Claims, rq.TenantID, rq.OID, rq.Home = c.claims, c.claims.TenantID, c.claims.ObjectID, c.claims.HomeTenant()
	return true
}

// platformDecision decides for the platform caller: allowed at or below
// its scope (the managed resource group, whose deny assignment binds
// everyone but the platform, as Azure's own resource provider deploys a
// managed application's mainTemplate into its locked group), refused
// elsewhere. ok is false for any other caller, whose requests the RBAC
// engine decides.
func platformDecision(rq *rp.Request, scope string) (d rbac.Decision, ok bool) {
	c := callerOf(rq.Ctx)
	if c == nil || c.platformScope == "" {
		return d, false
	}
	sc, err := rbac.ParseScope(scope)
	base, berr := rbac.ParseScope(c.platformScope)
	d.Allowed = err == nil && berr == nil && (sc.Key() == base.Key() || strings.HasPrefix(sc.Key(), base.Key()+"/"))
	return d, true
}

// recorder is the response of an in-process request.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

// inProcess sends one request to this handler as c and returns the
// status and the decoded JSON body (nil when there is none).
func (h *Handler) inProcess(ctx context.Context, c *caller, method, path, apiVersion string, body any) (int, map[string]any, error) {
	var rd io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := &url.URL{Scheme: "https", Host: c.host, Path: path, RawQuery: url.Values{"api-version": {apiVersion}}.Encode()}
	req, err := http.NewRequestWithContext(context.WithValue(ctx, callerKey{}, c), method, u.String(), rd)
	if err != nil {
		return 0, nil, err
	}
	req.Host = c.host
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := &recorder{header: http.Header{}}
	h.ServeHTTP(rec, req)
	var doc map[string]any
	if len(bytes.TrimSpace(rec.body.Bytes())) > 0 {
		if err := json.Unmarshal(rec.body.Bytes(), &doc); err != nil {
			return rec.status, nil, fmt.Errorf("arm: in-process %s %s answered %d with a body that is not a JSON object", method, path, rec.status)
		}
	}
	return rec.status, doc, nil
}

// answerError turns an ARM error answer into the template error of a
// resource (its code and message as the resource provider gave them).
func answerError(status int, doc map[string]any, target string) *armtemplate.Error {
	e, _ := doc["error"].(map[string]any)
	code, _ := e["code"].(string)
	msg, _ := e["message"].(string)
	if code == "" {
		code, msg = http.StatusText(status), fmt.Sprintf("The resource provider answered %d.", status)
	}
	return &armtemplate.Error{Code: code, Message: msg, Target: target}
}

// ---- the deployer and the resolver ----

// resourceGroupsType is the type of a resource group in a subscription
// deployment's template.
const resourceGroupsType = "Microsoft.Resources/resourceGroups"

// requestPath is where a planned resource is PUT: its id, except that a
// resource group lives at /subscriptions/{s}/resourcegroups/{name}.
func requestPath(r *armtemplate.PlannedResource) string {
	if strings.EqualFold(r.Type, resourceGroupsType) {
		segs := strings.Split(r.ID, "/")
		return "/subscriptions/" + segs[2] + "/resourcegroups/" + segs[len(segs)-1]
	}
	return r.ID
}

// templateOnly are members of a template resource that are the template's
// own and not part of the resource a provider receives.
var templateOnly = []string{"type", "name", "apiVersion", "scope", "subscriptionId", "resourceGroup", "dependsOn", "condition", "copy", "comments", "existing"}

// run is one running deployment: the deployer and resolver of its plan,
// and its document, saved by runDeployment's heartbeat.
type run struct {
	h      *Handler
	c      *caller
	rec    store.Deployment
	mu     sync.Mutex
	doc    *deploymentDoc
	start  time.Time
	cancel context.CancelFunc
	// dirty: doc changed since saved (when, by the monotonic clock).
	dirty bool
	saved time.Time
}

// Deploy creates one resource by an in-process PUT as the caller and
// records the operation.
func (x *run) Deploy(ctx context.Context, r *armtemplate.PlannedResource) (map[string]any, error) {
	body := map[string]any{}
	for k, v := range r.Body {
		if !slices.ContainsFunc(templateOnly, func(t string) bool { return strings.EqualFold(t, k) }) {
			body[k] = v
		}
	}
	began := time.Now()
	status, doc, err := x.h.inProcess(ctx, x.c, http.MethodPut, requestPath(r), r.APIVersion, body)
	if err == nil && status >= 300 {
		err = answerError(status, doc, r.ID)
	}
	if err == nil && status == http.StatusAccepted {
		// An asynchronous create: read the result.
		status, doc, err = x.h.inProcess(ctx, x.c, http.MethodGet, requestPath(r), r.APIVersion, nil)
		if err == nil && status >= 300 {
			err = answerError(status, doc, r.ID)
		}
	}
	x.record(r, "Create", status, began, err)
	if err != nil {
		return nil, err
	}
	return doc, nil
}

// record adds the resource's operation (kind: Create, Delete) to the
// document, which the heartbeat saves within opsFlush: one save per
// resource would rewrite the whole document, template included, up to
// 800 times.
func (x *run) record(r *armtemplate.PlannedResource, kind string, status int, began time.Time, err error) {
	now := x.h.now().UTC()
	segs := strings.Split(r.Name, "/")
	op := deploymentOperation{OperationID: strings.ToUpper(strings.ReplaceAll(uuid.NewSHA1(uuid.NameSpaceURL, []byte(x.doc.RunID+r.ID)).String(), "-", "")[:16]),
		Properties: deploymentOpProps{ProvisioningOperation: kind, ProvisioningState: "Succeeded", Timestamp: stamp(now), Duration: duration(time.Since(began)),
			StatusCode: http.StatusText(status), TargetResource: &targetRes{ID: r.ID, ResourceName: segs[len(segs)-1], ResourceType: r.Type}}}
	op.ID = x.doc.ID + "/operations/" + op.OperationID
	if status != 0 {
		op.Properties.StatusCode = strings.ReplaceAll(http.StatusText(status), " ", "")
	}
	if err != nil {
		op.Properties.ProvisioningState = "Failed"
		op.Properties.StatusMessage = &opStatus{Status: "Failed", Error: templateError(err).Envelope()}
	}
	x.mu.Lock()
	x.doc.Operations = append(x.doc.Operations, op)
	x.dirty = true
	x.mu.Unlock()
}

// save writes the document, its state and the heartbeat.
func (x *run) save() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.rec.State = x.doc.Properties.ProvisioningState
	x.rec.Updated = x.h.now().UTC()
	x.dirty, x.saved = false, time.Now()
	b, err := json.Marshal(x.doc)
	if err == nil {
		x.rec.Document = b
		err = x.h.st.PutDeployment(context.WithoutCancel(context.Background()), x.rec)
	}
	if err != nil {
		x.h.log.Error("arm: saving a deployment failed", "deployment", x.doc.ID, "err", err)
	}
}

// Reference reads a resource outside the template as the caller: its
// properties, or the whole resource.
func (x *run) Reference(ctx context.Context, resourceID, apiVersion string, full bool) (map[string]any, error) {
	status, doc, err := x.h.inProcess(ctx, x.c, http.MethodGet, resourceID, apiVersion, nil)
	if err != nil {
		return nil, err
	}
	if status >= 300 {
		return nil, answerError(status, doc, resourceID)
	}
	if full {
		return doc, nil
	}
	props, _ := doc["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
	}
	return props, nil
}

// List invokes a list* action as the caller (a POST of the action).
func (x *run) List(ctx context.Context, resourceID, action, apiVersion string, body any) (any, error) {
	status, doc, err := x.h.inProcess(ctx, x.c, http.MethodPost, strings.TrimRight(resourceID, "/")+"/"+action, apiVersion, body)
	if err != nil {
		return nil, err
	}
	if status >= 300 {
		return nil, answerError(status, doc, resourceID)
	}
	return doc, nil
}

// templateError is err as a template error.
func templateError(err error) *armtemplate.Error {
	var te *armtemplate.Error
	if errors.As(err, &te) {
		return te
	}
	var ae *rp.Error
	if errors.As(err, &ae) {
		return &armtemplate.Error{Code: ae.Code, Message: ae.Message}
	}
	if errors.Is(err, context.Canceled) {
		return &armtemplate.Error{Code: "DeploymentCanceled", Message: "The deployment was canceled."}
	}
	return &armtemplate.Error{Code: "InternalServerError", Message: "The deployment failed with an internal error."}
}

// ---- running deployments and their heartbeat ----

// Defaults of deploymentRuns: a running deployment's record is saved at
// least every heartbeat; an unfinished one not saved for staleAfter was
// left by a server that stopped, and is Failed when next read.
const (
	defaultHeartbeat  = 5 * time.Second
	defaultStaleAfter = 20 * time.Second
)

// opsFlush is how soon a running deployment's new operations are saved
// (its heartbeat when shorter).
const opsFlush = time.Second

// deploymentRuns are the deployments this handler runs. The zero value
// is ready to use.
type deploymentRuns struct {
	mu       sync.Mutex
	byID     map[string]*run // lower-cased deployment id
	instance string
	// heartbeat and staleAfter: the defaults when zero.
	heartbeat, staleAfter time.Duration
	// perTenant: maxRunningPerTenant when zero.
	perTenant int
}

func (rs *deploymentRuns) self() string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.instance == "" {
		rs.instance = uuid.NewString()
	}
	return rs.instance
}

// maxRunningPerTenant bounds the deployments of one tenant running here
// at once: each holds a goroutine, up to MaxParallel in-process requests
// and a heartbeat. One more is refused as Resource Manager refuses a
// subscription's writes over its limits: 429 with Retry-After
// (learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling).
const maxRunningPerTenant = 64

// runningRetryAfter is the Retry-After, in seconds, of that refusal.
const runningRetryAfter = "10"

// add registers x as the run of deployment id. It is refused when the
// deployment already runs here (two PUTs of one name raced past the
// record's check: DeploymentActive) or when x's tenant runs
// maxRunningPerTenant deployments (429).
func (rs *deploymentRuns) add(id string, x *run) error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.byID == nil {
		rs.byID = map[string]*run{}
	}
	if old := rs.byID[strings.ToLower(id)]; old != nil {
		return deploymentActive(old.doc)
	}
	limit := rs.perTenant
	if limit <= 0 {
		limit = maxRunningPerTenant
	}
	n := 0
	for _, o := range rs.byID {
		if strings.EqualFold(o.rec.TenantID, x.rec.TenantID) {
			n++
		}
	}
	if n >= limit {
		return rp.NewError(http.StatusTooManyRequests, "TooManyRequests",
			"The tenant '%s' has %d deployments running, the limit of this Resource Manager. Please try again after '%s' seconds.", x.rec.TenantID, n, runningRetryAfter)
	}
	rs.byID[strings.ToLower(id)] = x
	return nil
}

func (rs *deploymentRuns) remove(id string, x *run) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.byID[strings.ToLower(id)] == x {
		delete(rs.byID, strings.ToLower(id))
	}
}

// cancel cancels the run of the deployment id with runID, if it runs here.
func (rs *deploymentRuns) cancel(id, runID string) bool {
	rs.mu.Lock()
	x := rs.byID[strings.ToLower(id)]
	rs.mu.Unlock()
	if x == nil || x.doc.RunID != runID {
		return false
	}
	x.cancel()
	return true
}

func (rs *deploymentRuns) intervals() (beat, stale time.Duration) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	beat, stale = rs.heartbeat, rs.staleAfter
	if beat <= 0 {
		beat = defaultHeartbeat
	}
	if stale <= 0 {
		stale = defaultStaleAfter
	}
	return beat, stale
}

// snapshot is the set of the lower-cased ids of the deployments running
// here. Taken before a record is read, it tells whether the record may
// still change: a run saves its final state before it leaves the set.
func (rs *deploymentRuns) snapshot() map[string]bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := make(map[string]bool, len(rs.byID))
	for id := range rs.byID {
		out[id] = true
	}
	return out
}

// failIfAbandoned fails an unfinished deployment that no server runs any
// more: one that was not running here when its record was read (running,
// a snapshot taken before) and that was run here, or whose record has not
// been saved for staleAfter (its server stopped). So a deployment running
// when a server stops is Failed once it is next read after a restart.
func (h *Handler) failIfAbandoned(ctx context.Context, running map[string]bool, rec store.Deployment, d *deploymentDoc) (store.Deployment, *deploymentDoc, error) {
	if terminal(d.Properties.ProvisioningState) || running[strings.ToLower(d.ID)] {
		return rec, d, nil
	}
	_, stale := h.runs.intervals()
	if d.Runner != h.runs.self() && h.now().Sub(rec.Updated) < stale {
		return rec, d, nil // another server may be running it
	}
	d.Properties.ProvisioningState = "Failed"
	d.Properties.Error = (&armtemplate.Error{Code: "DeploymentInterrupted",
		Message: "The deployment was interrupted: the server running it stopped before it finished. Deploy it again."}).Envelope()
	d.Runner = ""
	b, err := json.Marshal(d)
	if err != nil {
		return rec, nil, rp.InternalError(err)
	}
	rec.State, rec.Document, rec.Updated = "Failed", b, h.now().UTC()
	if err := h.st.PutDeployment(ctx, rec); err != nil {
		return rec, nil, rp.InternalError(err)
	}
	return rec, d, nil
}

// ---- validating ----

// deploymentRequest is a PUT or validate body (Deployment).
type deploymentRequest struct {
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties *struct {
		Mode           string          `json:"mode"`
		Template       json.RawMessage `json:"template"`
		TemplateLink   json.RawMessage `json:"templateLink"`
		Parameters     json.RawMessage `json:"parameters"`
		ParametersLink json.RawMessage `json:"parametersLink"`
	} `json:"properties"`
}

// prepared is a validated deployment, ready to run.
type prepared struct {
	req      deploymentRequest
	mode     string
	template json.RawMessage
	plan     *armtemplate.Plan
	run      *run
}

// isNull reports whether a raw member is absent or null.
func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// prepareDeployment reads the body, parses the template and plans it for
// the path's deployment, acting as c. A template or parameter error is an
// *armtemplate.Error; a request error an *rp.Error.
func (h *Handler) prepareDeployment(rq *rp.Request, tenantID string, c *caller) (*prepared, error) {
	if ct := rq.R.Header.Get("Content-Type"); ct != "" && !strings.Contains(strings.ToLower(ct), "json") {
		return nil, rp.NewError(http.StatusUnsupportedMediaType, "UnsupportedMediaType", "The content media type '%s' is not supported. Only 'application/json' is supported.", rp.SafeText(ct))
	}
	raw, err := io.ReadAll(http.MaxBytesReader(rq.W, rq.R.Body, maxDeploymentBody))
	if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
		return nil, rp.NewError(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The request content size exceeds the maximum size of %d bytes.", maxDeploymentBody)
	} else if err != nil {
		// The body could not be read (the client went away): not a
		// size the client should shrink.
		return nil, rp.NewError(http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: '%s'.", rp.SafeText(err.Error()))
	}
	return h.prepareFrom(rq.Ctx, rq.Path.Sub, rq.Path.RG, rq.Path.Name, tenantID, c, raw)
}

// prepareFrom is prepareDeployment on a body already read.
func (h *Handler) prepareFrom(ctx context.Context, sub, rg, name, tenantID string, c *caller, raw []byte) (*prepared, error) {
	var p prepared
	if err := json.Unmarshal(raw, &p.req); err != nil {
		return nil, rp.NewError(http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: '%s'.", rp.SafeText(err.Error()))
	}
	props := p.req.Properties
	if props == nil {
		return nil, rp.NewError(http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: 'Required property 'properties' not found in JSON.'.")
	}
	switch strings.ToLower(props.Mode) {
	case "incremental":
		p.mode = "Incremental"
	case "complete":
		p.mode = "Complete"
	default:
		return nil, rp.NewError(http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: 'The deployment mode '%s' is not valid: it must be 'Incremental' or 'Complete'.'.", rp.SafeText(props.Mode))
	}
	if rg == "" {
		// Subscription deployments need a location and deploy
		// incrementally only (learn.microsoft.com/azure/azure-resource-manager/templates/deploy-to-subscription).
		if rp.NormalizeLocation(p.req.Location) == "" {
			return nil, rp.NewError(http.StatusBadRequest, "LocationRequired", "The location property is required for this definition.")
		}
		if p.mode == "Complete" {
			return nil, rp.NewError(http.StatusBadRequest, "InvalidDeploymentMode", "Complete mode is not supported for a deployment at subscription scope: use Incremental.")
		}
	}
	if !isNull(props.TemplateLink) || !isNull(props.ParametersLink) {
		// Linked templates would make this server fetch URLs.
		return nil, &armtemplate.Error{Code: armtemplate.CodeInvalidTemplate, Message: "Linked templates and parameter files (templateLink, parametersLink) are not supported by this Resource Manager: give properties.template and properties.parameters inline."}
	}
	if isNull(props.Template) {
		return nil, &armtemplate.Error{Code: armtemplate.CodeInvalidTemplate, Message: "The deployment must have properties.template or properties.templateLink."}
	}
	p.template = props.Template
	var asString string
	if json.Unmarshal(props.Template, &asString) == nil {
		// "It can be a JObject or well-formed JSON string."
		p.template = json.RawMessage(asString)
	}
	tmpl, err := armtemplate.Parse(p.template)
	if err != nil {
		return nil, err
	}
	params := map[string]any{}
	if !isNull(props.Parameters) {
		if params, err = armtemplate.ParseParameters(props.Parameters); err != nil {
			return nil, err
		}
	}
	dc, err := h.templateContext(ctx, sub, rg, name, tenantID, p.req.Location, c)
	if err != nil {
		return nil, err
	}
	p.run = &run{h: h, c: c}
	dc.Resolver = p.run
	if p.plan, err = tmpl.Plan(ctx, dc, params); err != nil {
		return nil, err
	}
	if err := h.checkServed(p.plan, rg); err != nil {
		return nil, err
	}
	return &p, nil
}

// templateContext is the deployment's context for the template language:
// its tenant, subscription, group and the cloud's endpoints as this
// server serves them.
func (h *Handler) templateContext(ctx context.Context, sub, rg, name, tenantID, location string, c *caller) (armtemplate.Context, error) {
	dc := armtemplate.Context{TenantID: tenantID, SubscriptionID: sub, DeploymentName: name, Location: rp.NormalizeLocation(location), Now: h.now}
	if t, err := h.st.GetTenant(ctx, tenantID); err == nil {
		dc.SubscriptionName = t.Name
	}
	if rg != "" {
		g, err := h.st.GetResourceGroup(ctx, sub, rg)
		if errors.Is(err, store.ErrNotFound) {
			return dc, rp.ResourceGroupNotFound(rg)
		} else if err != nil {
			return dc, rp.InternalError(err)
		}
		dc.ResourceGroup, dc.ResourceGroupLocation, dc.ResourceGroupTags = g.Name, g.Location, g.Tags
		dc.Location = ""
	}
	env := armtemplate.AzureCloud()
	if d, ok := strings.CutPrefix(strings.ToLower(c.host), "management."); ok && d != "azure.com" {
		// A custom domain: environment() names this server's hosts.
		env.Name, env.ResourceManager, env.LoginEndpoint = "TenantBridge", "https://management."+d+"/", "https://login."+d+"/"
		env.Audiences = []string{"https://management." + d + "/"}
		env.KeyVaultDNS, env.Portal, env.Graph, env.GraphAudience = ".vault."+d, "https://management."+d, "https://graph."+d+"/", "https://graph."+d+"/"
	}
	dc.Environment = env
	return dc, nil
}

// checkServed refuses resources this Resource Manager cannot create:
// deploymentScripts (they run a container: tenantbridge runs none) and
// types no provider here serves, as Azure refuses a type with no
// registered provider (NoRegisteredProviderFound).
func (h *Handler) checkServed(p *armtemplate.Plan, rg string) error {
	for _, r := range p.Resources {
		switch {
		case r.Existing:
			continue
		case r.Nested != nil:
			if err := h.checkServed(r.Nested, rg); err != nil {
				return err
			}
			continue
		case strings.EqualFold(r.Type, "Microsoft.Resources/deploymentScripts"):
			return &armtemplate.Error{Code: armtemplate.CodeInvalidTemplate, Target: r.ID, Line: r.Line, Column: r.Column,
				Message: fmt.Sprintf("Deployment template validation failed: 'The resource '%s' at line '%d' and column '%d' is of type 'Microsoft.Resources/deploymentScripts', which this Resource Manager does not run: a deployment script needs a container runtime, and tenantbridge has none. Create what the script would create as template resources instead.'.", r.ID, r.Line, r.Column)}
		case strings.EqualFold(r.Type, deploymentsType):
			// A nested deployment whose plan waits for reference():
			// its resources are checked when it is planned.
			continue
		case strings.EqualFold(r.Type, resourceGroupsType) && rg == "":
			continue
		}
		if !h.servesType(r.Type) {
			return &armtemplate.Error{Code: "NoRegisteredProviderFound", Target: r.ID,
				Message: fmt.Sprintf("No registered resource provider found for location '%s' and API version '%s' for type '%s'.", "", r.APIVersion, r.Type)}
		}
	}
	return nil
}

// servesType reports whether a registered provider, or the door itself
// (Microsoft.Authorization), serves resources of type typ.
func (h *Handler) servesType(typ string) bool {
	ns, rest, _ := strings.Cut(typ, "/")
	if p := h.byNamespace[strings.ToLower(ns)]; p != nil {
		for _, t := range p.Types {
			if strings.EqualFold(t.Name, rest) {
				return true
			}
		}
		return false
	}
	if !strings.EqualFold(ns, "Microsoft.Authorization") {
		return false
	}
	// Management locks (locks.go) deploy as any resource, also as an
	// extension resource of another through "scope"
	// (learn.microsoft.com/azure/azure-resource-manager/management/lock-resources#arm-template).
	_, ok := authorizationTypes[strings.ToLower(rest)]
	return ok || strings.EqualFold(rest, "locks")
}

// ---- the operations ----

// writeTemplateError answers a template error as Resource Manager does:
// 400 with the error's envelope (code, message, details, position).
func (h *Handler) writeTemplateError(rq *rp.Request, e *armtemplate.Error) error {
	h.recordRefusal(rq, e.Code)
	httpx.WriteJSON(rq.W, http.StatusBadRequest, map[string]any{"error": e.Envelope()})
	return nil
}

// callerFor is the caller a deployment request acts as.
func callerFor(rq *rp.Request) *caller {
	if c := callerOf(rq.Ctx); c != nil {
		return c
	}
	return &caller{claims: rq.Claims, host: rq.R.Host}
}

// validateDeployment serves POST .../validate: 200 with the properties the
// deployment would have (validatedResources), or 400 with the error.
func (h *Handler) validateDeployment(rq *rp.Request) error {
	tenantID, err := h.deploymentScope(rq, actionDeploymentValidate)
	if err != nil {
		return err
	}
	p, err := h.prepareDeployment(rq, tenantID, callerFor(rq))
	var te *armtemplate.Error
	if errors.As(err, &te) {
		return h.writeTemplateError(rq, te)
	} else if err != nil {
		return err
	}
	doc := h.newDeploymentDoc(rq, p)
	doc.Properties.ProvisioningState = "Succeeded"
	for _, r := range p.plan.Resources {
		doc.Properties.ValidatedResources = append(doc.Properties.ValidatedResources, resourceReference{ID: r.ID})
	}
	return rp.WriteJSON(rq, http.StatusOK, map[string]any{"id": doc.ID, "name": doc.Name, "type": deploymentsType, "properties": doc.Properties})
}

// newDeploymentDoc is the document of a new run of the path's deployment.
func (h *Handler) newDeploymentDoc(rq *rp.Request, p *prepared) *deploymentDoc {
	id := rq.Path.Scope.String()
	runID := newRunID()
	d := &deploymentDoc{ID: id, Name: rq.Path.Name, Location: rp.NormalizeLocation(p.req.Location), Tags: p.req.Tags, RunID: runID, Template: p.template,
		Properties: deploymentProps{ProvisioningState: "Accepted", CorrelationID: runID, Timestamp: stamp(h.now()), Duration: duration(0), Mode: p.mode,
			TemplateHash: p.plan.TemplateHash(), Parameters: map[string]any{}}}
	for _, v := range p.plan.Parameters {
		pv := map[string]any{"type": armtemplate.TypeName(v.Type)}
		if !v.Secure {
			pv["value"] = v.Value
		}
		d.Properties.Parameters[v.Name] = pv
	}
	for _, r := range p.plan.Resources {
		dep := dependencyView{ID: r.ID, ResourceName: r.Name, ResourceType: r.Type, DependsOn: []basicResource{}}
		if len(r.DependsOn) == 0 {
			continue
		}
		for _, on := range r.DependsOn {
			segs := strings.Split(on, "/")
			dep.DependsOn = append(dep.DependsOn, basicResource{ID: on, ResourceName: segs[len(segs)-1], ResourceType: typeOfID(on)})
		}
		d.Properties.Dependencies = append(d.Properties.Dependencies, dep)
	}
	return d
}

// typeOfID is the resource type of a provider resource id.
func typeOfID(id string) string {
	segs := strings.Split(strings.TrimPrefix(id, "/"), "/")
	for i := len(segs) - 2; i >= 0; i-- {
		if strings.EqualFold(segs[i], "providers") && i+1 < len(segs) {
			typ := segs[i+1]
			for j := i + 2; j < len(segs); j += 2 {
				typ += "/" + segs[j]
			}
			return typ
		}
	}
	return ""
}

// putDeployment serves PUT: validate, store the deployment Accepted,
// answer 201 (200 when it replaces one) with Azure-AsyncOperation and
// Location, and run it in the background: Running, then Succeeded,
// Failed or Canceled.
func (h *Handler) putDeployment(rq *rp.Request) error {
	tenantID, err := h.deploymentScope(rq, actionDeploymentWrite)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	running := h.runs.snapshot()
	if old, err := h.st.GetDeployment(rq.Ctx, rq.Path.Sub, rq.Path.RG, rq.Path.Name); err == nil {
		if !strings.EqualFold(old.TenantID, tenantID) {
			return rp.InternalError(fmt.Errorf("deployment %s of another tenant in the scope", rq.Path.Name))
		}
		od, err := decodeDeployment(old)
		if err != nil {
			return err
		}
		if _, od, err = h.failIfAbandoned(rq.Ctx, running, old, od); err != nil {
			return err
		}
		if !terminal(od.Properties.ProvisioningState) {
			return deploymentActive(od)
		}
		status = http.StatusOK
	} else if !errors.Is(err, store.ErrNotFound) {
		return rp.InternalError(err)
	} else if err := h.makeRoomInHistory(rq, tenantID); err != nil { // deployments_history.go
		return err
	}
	c := callerFor(rq)
	p, err := h.prepareDeployment(rq, tenantID, c)
	var te *armtemplate.Error
	if errors.As(err, &te) {
		return h.writeTemplateError(rq, te)
	} else if err != nil {
		return err
	}
	d := h.newDeploymentDoc(rq, p)
	// The answer says Accepted even when the run is over before it is
	// written: a poller that read a final state here would not poll.
	view := d.view()
	if _, err := h.startDeployment(rq.Ctx, tenantID, rq.Path.Sub, rq.Path.RG, d, p); err != nil {
		if re := (*rp.Error)(nil); errors.As(err, &re) && re.Status == http.StatusTooManyRequests {
			rq.W.Header().Set("Retry-After", runningRetryAfter)
		}
		return err
	}
	rq.Target = d.ID
	rq.Record(tenantID, "success")
	statusURL := absoluteURL(rq, d.ID+"/operationStatuses/"+d.RunID)
	rq.W.Header().Set("Azure-AsyncOperation", statusURL)
	rq.W.Header().Set("Location", statusURL)
	return rp.WriteJSON(rq, status, view)
}

// startDeployment stores the deployment Accepted and runs it in the
// background, detached from the request.
func (h *Handler) startDeployment(ctx context.Context, tenantID, sub, rg string, d *deploymentDoc, p *prepared) (*run, error) {
	x, runCtx, err := h.acceptDeployment(ctx, tenantID, sub, rg, d, p)
	if err != nil {
		return nil, err
	}
	go h.runDeployment(runCtx, x, p)
	return x, nil
}

// acceptDeployment stores the deployment Accepted and registers its run,
// ready for runDeployment with the returned context, which is detached
// from ctx's cancellation and canceled by the deployment's cancel.
func (h *Handler) acceptDeployment(ctx context.Context, tenantID, sub, rg string, d *deploymentDoc, p *prepared) (*run, context.Context, error) {
	x := p.run
	x.doc, x.start = d, h.now()
	d.Runner = h.runs.self()
	x.rec = store.Deployment{TenantID: tenantID, SubscriptionID: sub, ResourceGroup: rg, Name: d.Name, State: "Accepted"}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, nil, rp.InternalError(err)
	}
	x.rec.Document = b
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	x.cancel = cancel
	// Registered before it is stored, so that no read takes it for a
	// deployment abandoned by its server.
	if err := h.runs.add(d.ID, x); err != nil {
		cancel()
		return nil, nil, err
	}
	if err := h.st.PutDeployment(ctx, x.rec); err != nil {
		h.runs.remove(d.ID, x)
		cancel()
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, rp.ResourceGroupNotFound(rg)
		}
		return nil, nil, rp.InternalError(err)
	}
	return x, runCtx, nil
}

// runDeployment runs the plan, keeping the record's heartbeat, and
// saves the outcome.
func (h *Handler) runDeployment(ctx context.Context, x *run, p *prepared) {
	defer h.runs.remove(x.doc.ID, x)
	defer x.cancel()
	beat, _ := h.runs.intervals()
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(min(beat, opsFlush))
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				x.mu.Lock()
				due := x.dirty || time.Since(x.saved) >= beat
				x.mu.Unlock()
				if due {
					x.save()
				}
			}
		}
	}()
	x.mu.Lock()
	x.doc.Properties.ProvisioningState = "Running"
	x.mu.Unlock()
	x.save()
	res, err := p.plan.Run(ctx, x)
	if err == nil && p.mode == "Complete" {
		err = h.deleteUnlisted(ctx, x, p.plan)
	}
	close(stop)
	<-stopped // no heartbeat save after the final one
	x.mu.Lock()
	pr := &x.doc.Properties
	pr.Duration = duration(h.now().Sub(x.start))
	switch {
	case ctx.Err() != nil:
		pr.ProvisioningState = "Canceled"
		pr.Error = (&armtemplate.Error{Code: "DeploymentCanceled", Message: "The deployment was canceled."}).Envelope()
	case err != nil:
		pr.ProvisioningState = "Failed"
		pr.Error = templateError(err).Envelope()
	default:
		pr.ProvisioningState = "Succeeded"
		pr.Outputs = map[string]any{}
		for _, o := range res.Outputs {
			pr.Outputs[o.Name] = map[string]any{"type": o.Type, "value": o.Value}
		}
		for _, r := range p.plan.Resources {
			if !r.Existing && r.Nested == nil {
				pr.OutputResources = append(pr.OutputResources, resourceReference{ID: r.ID})
			}
		}
	}
	x.doc.Runner = ""
	x.mu.Unlock()
	x.save()
}

// deleteUnlisted is Complete mode's last step: the group's resources of
// the types this Resource Manager serves that the template does not list
// are deleted, each by an in-process DELETE as the caller
// (learn.microsoft.com/azure/azure-resource-manager/templates/deployment-modes#complete-mode).
func (h *Handler) deleteUnlisted(ctx context.Context, x *run, p *armtemplate.Plan) error {
	listed := map[string]bool{}
	var walk func(p *armtemplate.Plan)
	walk = func(p *armtemplate.Plan) {
		for _, r := range p.Resources {
			listed[strings.ToLower(r.ID)] = true
			if r.Nested != nil {
				walk(r.Nested)
			}
		}
	}
	walk(p)
	rq := rp.Background(ctx, door{h})
	rq.Path = rp.Path{Sub: x.rec.SubscriptionID, RG: x.rec.ResourceGroup}
	items, err := h.trackedResources(rq, x.rec.TenantID)
	if err != nil {
		return err
	}
	for _, it := range items {
		if listed[strings.ToLower(it.ID)] {
			continue
		}
		began := time.Now()
		status, doc, err := h.inProcess(ctx, x.c, http.MethodDelete, it.ID, h.latestAPIVersion(it.Type), nil) // apiversion_check.go
		if err == nil && status >= 300 {
			err = answerError(status, doc, it.ID)
		}
		r := &armtemplate.PlannedResource{ID: it.ID, Type: it.Type, Name: it.Name}
		x.record(r, "Delete", status, began, err)
		if err != nil {
			return &armtemplate.Error{Code: armtemplate.CodeDeploymentFailed, Message: "At least one resource deployment operation failed. Please list deployment operations for details. Please see https://aka.ms/DeployOperations for usage details.",
				Details: []*armtemplate.Error{templateError(err)}}
		}
	}
	return nil
}
