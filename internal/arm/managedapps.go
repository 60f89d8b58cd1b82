package arm

// Microsoft.Solutions: managed application definitions (the publisher's
// side), managed applications (the customer's), listTokens and the
// lifecycle notifications. docs/managed-applications.md describes the
// behaviour, the deployment spec (managedapps_spec.go) and where
// tenantbridge differs from Azure.
//
// Both are generic ARM resources (type Microsoft.Solutions/…) whose JSON
// properties hold their state. Installing an application makes, in one
// transaction, the application (provisioningState Accepted), its managed
// resource group, the deny assignment that locks it, the publisher's
// cross-tenant role assignments on it, the application's system-assigned
// identity and the Accepted notification; then the definition's
// mainTemplate (or the template its deployment spec stands for) runs as
// a template deployment in the managed group, as the platform
// (managedapps_template.go), and one more transaction sets Succeeded with
// the deployment's outputs, or Failed with its error, each with its
// notification in the outbox. The install runs while the PUT waits: it
// answers 201 with the final state.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/armtemplate"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// TokenMinter mints managed identity tokens for listTokens;
// *sts.Service implements it.
type TokenMinter interface {
	ManagedIdentityToken(ctx context.Context, tenantID, identityObjectID, audience string) (token string, expires time.Time, err error)
}

// DefaultNotificationDeadline is how long a lifecycle notification is
// retried when Config.NotificationDeadline is zero: Azure's 10 hours.
const DefaultNotificationDeadline = 10 * time.Hour

const (
	targetAppDefinitions      target = 130
	targetAppDefNotifications target = 131
	targetApplications        target = 132
	targetAppListTokens       target = 133
)

const (
	solutionsNamespace = "Microsoft.Solutions"
	appDefType         = "Microsoft.Solutions/applicationDefinitions"
	applicationType    = "Microsoft.Solutions/applications"

	actionAppDefRead   = appDefType + "/read"
	actionAppDefWrite  = appDefType + "/write"
	actionAppDefDelete = appDefType + "/delete"
	actionAppRead      = applicationType + "/read"
	actionAppWrite     = applicationType + "/write"
	actionAppDelete    = applicationType + "/delete"
	actionListTokens   = applicationType + "/listTokens/action"
)

func appDefinitionPath(segs []string) (rp.Path, bool, error) {
	return rp.TypedPath(segs, solutionsNamespace, "applicationDefinitions", "notifications", targetAppDefinitions, targetAppDefNotifications)
}

func applicationPath(segs []string) (rp.Path, bool, error) {
	return rp.TypedPath(segs, solutionsNamespace, "applications", "listTokens", targetApplications, targetAppListTokens)
}

// solutions serves the Microsoft.Solutions paths.
func (h *Handler) solutions(rq *rp.Request) error {
	m := rq.R.Method
	switch rq.Path.Target {
	case targetAppDefNotifications:
		if rq.Path.Child != "" {
			return rp.NewError(http.StatusNotFound, "NotFound", "The notification log has no items by name.")
		}
		return rp.Only(rq, http.MethodGet, h.listNotifications)
	case targetAppListTokens:
		if rq.Path.Child != "" {
			return rp.MethodNotAllowed(m)
		}
		return rp.Only(rq, http.MethodPost, h.listTokens)
	case targetAppDefinitions:
		return rp.ServeType(rq, rq.Path.Name == "", rp.TypeHandlers{List: h.listAppDefinitions, Get: h.getAppDefinition, Put: h.putAppDefinition,
			Patch: h.patchAppDefinition, Delete: h.deleteAppDefinition})
	}
	return rp.ServeType(rq, rq.Path.Name == "", rp.TypeHandlers{List: h.listApplications, Get: h.getApplication, Put: h.putApplication,
		Patch: h.patchApplication, Delete: h.deleteApplication})
}

// ---- definitions ----

type appAuthorization struct {
	PrincipalID      string `json:"principalId"`
	RoleDefinitionID string `json:"roleDefinitionId"`
}

type notificationEndpoint struct {
	URI string `json:"uri"`
}

type notificationPolicy struct {
	NotificationEndpoints []notificationEndpoint `json:"notificationEndpoints"`
}

// appDefProps is a definition's properties, as stored and as shown.
type appDefProps struct {
	LockLevel          string              `json:"lockLevel"`
	DisplayName        string              `json:"displayName,omitempty"`
	Description        string              `json:"description,omitempty"`
	IsEnabled          bool                `json:"isEnabled"`
	Authorizations     []appAuthorization  `json:"authorizations"`
	NotificationPolicy *notificationPolicy `json:"notificationPolicy,omitempty"`
	DeploymentSpec     json.RawMessage     `json:"deploymentSpec,omitempty"`
	// MainTemplate and CreateUIDefinition are the package, inline
	// (managedapps_template.go), stored as JSON objects.
	MainTemplate       json.RawMessage `json:"mainTemplate,omitempty"`
	CreateUIDefinition json.RawMessage `json:"createUiDefinition,omitempty"`
	ProvisioningState  string          `json:"provisioningState"`
	// Marketplace is the definition's marketplace offer, which only the
	// operator publishes (managedapps_marketplace.go); LegacyPublished
	// is the flag that definitions stored before that step carry. Neither
	// is shown through ARM (appDefViewOf), where Azure has no such thing.
	Marketplace     *marketplaceState `json:"marketplace,omitempty"`
	LegacyPublished bool              `json:"isPublishedToMarketplace,omitempty"`
}

// endpoints are the URIs of the definition's notification endpoints.
func (p appDefProps) endpoints() []string {
	var out []string
	if p.NotificationPolicy != nil {
		for _, e := range p.NotificationPolicy.NotificationEndpoints {
			out = append(out, e.URI)
		}
	}
	return out
}

type appDefView struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties appDefProps       `json:"properties"`
}

func appDefViewOf(res store.Resource) (appDefView, error) {
	var p appDefProps
	if err := json.Unmarshal(res.Properties, &p); err != nil {
		return appDefView{}, rp.InternalError(fmt.Errorf("definition %s: %w", res.ID, err))
	}
	p.Authorizations = rp.NonNil(p.Authorizations)
	p.Marketplace, p.LegacyPublished = nil, false
	return appDefView{ID: res.ID, Name: res.Name, Type: appDefType, Location: res.Location, Tags: rp.TagsOf(res), Properties: p}, nil
}

// writeView answers with res as view shows it.
func writeView[V any](rq *rp.Request, status int, res store.Resource, view func(store.Resource) (V, error)) error {
	v, err := view(res)
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, status, v)
}

// getTypedAt serves GET of the resource of type typ the path names.
func getTypedAt[V any](h *Handler, rq *rp.Request, action, typ string, view func(store.Resource) (V, error)) error {
	tenantID, err := rq.AuthorizeAt(action)
	if err != nil {
		return err
	}
	res, err := rp.FindTypedAt(rq, h.st, tenantID, typ)
	if err != nil {
		return err
	}
	return writeView(rq, http.StatusOK, res, view)
}

// listTyped lists the caller's tenant's resources of type typ in the
// path's subscription or group that the caller may read.
func listTyped[V any](h *Handler, rq *rp.Request, action, typ string, view func(store.Resource) (V, error)) error {
	tenantID, err := rq.ListTenant(action)
	if err != nil {
		return err
	}
	rs, err := h.st.ListResources(rq.Ctx, store.ResourceQuery{SubscriptionID: rq.Path.Sub, ResourceGroup: rq.Path.RG, Type: typ})
	if err != nil {
		return rp.InternalError(err)
	}
	rs = slices.DeleteFunc(rs, func(res store.Resource) bool { return !strings.EqualFold(res.TenantID, tenantID) })
	return rp.WriteReadable(rq, action, rs, rp.ResourceID, view)
}

func (h *Handler) getAppDefinition(rq *rp.Request) error {
	return getTypedAt(h, rq, actionAppDefRead, appDefType, appDefViewOf)
}

func (h *Handler) listAppDefinitions(rq *rp.Request) error {
	return listTyped(h, rq, actionAppDefRead, appDefType, appDefViewOf)
}

var validLockLevels = map[string]string{"none": "None", "cannotdelete": "CanNotDelete", "readonly": "ReadOnly"}

func (h *Handler) putAppDefinition(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionAppDefWrite)
	if err != nil {
		return err
	}
	if n := rq.Path.Name; len(n) < 3 || len(n) > 64 || !identityNameRE.MatchString(n) {
		return rp.BadRequest("The application definition name '%s' is invalid: 3 to 64 letters, digits, '.', '_', '-', '(' or ')'.", rp.SafeText(n))
	}
	var body struct {
		Location   string            `json:"location"`
		Tags       map[string]string `json:"tags"`
		Properties *struct {
			LockLevel                string              `json:"lockLevel"`
			DisplayName              string              `json:"displayName"`
			Description              string              `json:"description"`
			IsEnabled                *bool               `json:"isEnabled"`
			Authorizations           []appAuthorization  `json:"authorizations"`
			NotificationPolicy       *notificationPolicy `json:"notificationPolicy"`
			IsPublishedToMarketplace bool                `json:"isPublishedToMarketplace"`
			DeploymentSpec           json.RawMessage     `json:"deploymentSpec"`
			MainTemplate             json.RawMessage     `json:"mainTemplate"`
			CreateUIDefinition       json.RawMessage     `json:"createUiDefinition"`
			PackageFileURI           string              `json:"packageFileUri"`
		} `json:"properties"`
	}
	if err := rp.ReadBody(rq, &body); err != nil {
		return err
	}
	location, err := rp.CheckPut(appDefType, body.Location, body.Tags, body.Properties)
	if err != nil {
		return err
	}
	p := body.Properties
	lock, ok := validLockLevels[strings.ToLower(p.LockLevel)]
	if !ok {
		return rp.BadRequest("The value '%s' of properties.lockLevel is not valid: it must be 'None', 'CanNotDelete' or 'ReadOnly'.", rp.SafeText(p.LockLevel))
	}
	if len(p.DisplayName) > 60 || len(p.Description) > 200 {
		return rp.BadRequest("properties.displayName is at most 60 characters, properties.description at most 200.")
	}
	if p.IsPublishedToMarketplace {
		// Not a property of Azure's definitions: an offer is published
		// outside Resource Manager (Partner Center in Azure, the operator
		// here; managedapps_marketplace.go). Refused rather than ignored,
		// so that nobody believes a definition is on sale that is not.
		return rp.BadRequest("properties.isPublishedToMarketplace is not a property of an application definition: an offer is published by the operator (tenantbridge marketplace offer publish --definition-id ID).")
	}
	out := appDefProps{LockLevel: lock, DisplayName: p.DisplayName, Description: p.Description, IsEnabled: p.IsEnabled == nil || *p.IsEnabled,
		ProvisioningState: "Succeeded"}
	kindOf := func(id string) (store.PrincipalType, error) {
		return principalTypeOf(rq, h.dir, tenantID, id, http.StatusBadRequest, "Principal %s does not exist in the directory %s.")
	}
	if len(p.Authorizations) > 100 {
		return rp.BadRequest("properties.authorizations: at most 100 authorizations.")
	}
	for i, a := range p.Authorizations {
		if !isGUID(a.PrincipalID) {
			return rp.BadRequest("properties.authorizations[%d].principalId must be the object id (a GUID) of a principal of the publisher tenant.", i)
		}
		role, ok := builtInRole(a.RoleDefinitionID)
		if !ok {
			return rp.NewError(http.StatusBadRequest, "InvalidRoleDefinitionId", "properties.authorizations[%d].roleDefinitionId '%s' is not a built-in role id: a managed application's authorizations are granted in the customer's tenant, where only built-in roles are common.", i, rp.SafeText(a.RoleDefinitionID))
		}
		if _, err := kindOf(strings.ToLower(a.PrincipalID)); err != nil {
			return err
		}
		out.Authorizations = append(out.Authorizations, appAuthorization{PrincipalID: strings.ToLower(a.PrincipalID), RoleDefinitionID: role.ID})
	}
	if np := p.NotificationPolicy; np != nil {
		if len(np.NotificationEndpoints) > 1 {
			return rp.BadRequest("properties.notificationPolicy.notificationEndpoints: only one endpoint is allowed.")
		}
		for i, e := range np.NotificationEndpoints {
			u, err := url.Parse(e.URI)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" || len(e.URI) > 2048 {
				return rp.BadRequest("properties.notificationPolicy.notificationEndpoints[%d].uri must be an absolute http(s) URL without user information or fragment.", i)
			}
		}
		out.NotificationPolicy = np
	}
	if _, err := parseSpec(p.DeploymentSpec, kindOf); err != nil {
		return err
	}
	if len(p.DeploymentSpec) > 0 && string(p.DeploymentSpec) != "null" {
		out.DeploymentSpec = p.DeploymentSpec
	}
	if p.PackageFileURI != "" {
		// Fetched once, now, within the operator's limits
		// (managedapps_package.go); the URI, which may carry a SAS
		// token, is not kept.
		if !isNull(p.MainTemplate) || !isNull(p.CreateUIDefinition) {
			return rp.BadRequest("properties.packageFileUri and properties.mainTemplate or properties.createUiDefinition are two ways to give the package: give one.")
		}
		mt, ui, err := h.packages.fetchPackage(rq.Ctx, p.PackageFileURI)
		if err != nil {
			return err
		}
		p.MainTemplate, p.CreateUIDefinition = withoutBOM(mt), withoutBOM(ui)
	}
	if out.MainTemplate, err = inlineJSON(p.MainTemplate, "properties.mainTemplate"); err != nil {
		return err
	}
	if out.CreateUIDefinition, err = inlineJSON(p.CreateUIDefinition, "properties.createUiDefinition"); err != nil {
		return err
	}
	if out.MainTemplate != nil {
		if out.DeploymentSpec != nil {
			return rp.BadRequest("properties.mainTemplate and properties.deploymentSpec are two ways to say what an installation deploys: give one.")
		}
		var te *armtemplate.Error
		if err := checkMainTemplate(out.MainTemplate); errors.As(err, &te) {
			return h.writeTemplateError(rq, te)
		} else if err != nil {
			return rp.InternalError(err)
		}
	}
	propsJSON, err := json.Marshal(out)
	if err != nil {
		return rp.InternalError(err)
	}
	status := http.StatusOK
	var saved store.Resource
	err = rq.Change(tenantID, func(tx store.Store, _ *directory.Service) error {
		now := h.now().UTC()
		g, err := rp.PathGroup(rq, tx)
		if err != nil {
			return err
		}
		id := rp.TypedID(rq, g, appDefType)
		rq.Target = id
		res := store.Resource{TenantID: tenantID, SubscriptionID: g.SubscriptionID, ResourceGroup: g.Name, ID: id, Type: appDefType,
			Name: rq.Path.Name, Location: location, Tags: body.Tags, Properties: propsJSON, Created: now, Updated: now}
		old, err := rp.FindTyped(rq, tx, tenantID, id, appDefType)
		var existing *store.Resource
		switch {
		case err == nil:
			if old.Location != location {
				return rp.LocationMoved(old.Name, old.Location, g.Name, location)
			}
			// The offer is the operator's, not the PUT's: it stays.
			var was appDefProps
			if err := json.Unmarshal(old.Properties, &was); err != nil {
				return rp.InternalError(err)
			}
			if was.published() {
				kept := out
				kept.Marketplace = &marketplaceState{PublishedAt: was.legacyPublishedAt(old)}
				if was.Marketplace != nil {
					kept.Marketplace = was.Marketplace
				}
				if res.Properties, err = json.Marshal(kept); err != nil {
					return rp.InternalError(err)
				}
			}
			existing = &old
		case errors.Is(err, store.ErrNotFound):
			status = http.StatusCreated
		default:
			return rp.InternalError(err)
		}
		saved, err = rp.WriteRecord(rq, tx, res, existing, rp.NewError(http.StatusConflict, "Conflict", "The resource id '%s' is taken by a resource of another type.", rp.SafeText(id)))
		return err
	})
	if err != nil {
		return err
	}
	return writeView(rq, status, saved, appDefViewOf)
}

func (h *Handler) deleteAppDefinition(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionAppDefDelete)
	if err != nil {
		return err
	}
	return rq.DeleteAndWrite(tenantID, func(tx store.Store, _ *directory.Service) error {
		res, err := rp.FindTypedAt(rq, tx, tenantID, appDefType)
		if err != nil {
			return rp.NothingIfNotFound(err)
		}
		rq.Target = res.ID
		return rp.DeleteRecord(rq, tx, res.ID)
	})
}

// ---- the delivery log ----

type notificationAttemptView struct {
	At         string `json:"at"`
	Status     int    `json:"status,omitempty"`
	Error      string `json:"error,omitempty"`
	DurationMs int64  `json:"durationMs"`
}

type notificationView struct {
	ID            string                    `json:"id"`
	ApplicationID string                    `json:"applicationId"`
	Endpoint      string                    `json:"endpoint"`
	Payload       json.RawMessage           `json:"payload"`
	State         string                    `json:"state"`
	Attempts      int                       `json:"attempts"`
	LastStatus    int                       `json:"lastStatus,omitempty"`
	LastError     string                    `json:"lastError,omitempty"`
	Created       string                    `json:"createdAt"`
	NextAttempt   string                    `json:"nextAttemptAt,omitempty"`
	Deadline      string                    `json:"deadline"`
	DeliveredAt   string                    `json:"deliveredAt,omitempty"`
	History       []notificationAttemptView `json:"attemptLog"`
}

// redactURL drops the query (which carries the publisher's sig secret).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	return u.String()
}

// listNotifications serves GET {definition}/notifications: the delivery
// log of the definition's lifecycle notifications, newest first.
func (h *Handler) listNotifications(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionAppDefRead)
	if err != nil {
		return err
	}
	// The scope is the definition's id (the parent of the child path).
	res, err := rp.FindTypedAt(rq, h.st, tenantID, appDefType)
	if err != nil {
		return rp.AsParent(err, appDefType, rq.Path.Name)
	}
	ob := h.st
	limit := 100
	if v := rq.R.URL.Query().Get("$top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return rp.NewError(http.StatusBadRequest, "InvalidQueryParameterValue", "The value '%s' of the query parameter '$top' is not valid.", rp.SafeText(v))
		}
		limit = min(n, rp.MaxPageSize)
	}
	msgs, err := ob.ListOutbox(rq.Ctx, store.OutboxQuery{TenantID: tenantID, Topic: res.ID, Limit: limit})
	if err != nil {
		return rp.InternalError(err)
	}
	out := make([]notificationView, 0, len(msgs))
	for _, m := range msgs {
		v := notificationView{ID: m.ID, ApplicationID: m.Key, Endpoint: redactURL(m.URL), Payload: json.RawMessage(m.Body), State: string(m.State),
			Attempts: m.Attempts, LastStatus: m.LastStatus, LastError: m.LastError, Created: stamp(m.Created), Deadline: stamp(m.Deadline),
			DeliveredAt: stamp(m.DeliveredAt), History: []notificationAttemptView{}}
		if m.State == store.OutboxPending {
			v.NextAttempt = stamp(m.NextAttempt)
		}
		if !json.Valid(m.Body) {
			v.Payload = json.RawMessage("null")
		}
		atts, err := ob.ListOutboxAttempts(rq.Ctx, m.ID)
		if err != nil {
			return rp.InternalError(err)
		}
		for _, a := range atts {
			v.History = append(v.History, notificationAttemptView{At: stamp(a.At), Status: a.Status, Error: a.Error, DurationMs: a.Duration.Milliseconds()})
		}
		out = append(out, v)
	}
	return rp.WriteJSON(rq, http.StatusOK, rp.List[notificationView]{Value: out})
}

// ---- applications ----

type appPlan struct {
	Name          string `json:"name"`
	Publisher     string `json:"publisher"`
	Product       string `json:"product"`
	Version       string `json:"version"`
	PromotionCode string `json:"promotionCode,omitempty"`
}

type appError struct {
	Code    string        `json:"code"`
	Message string        `json:"message"`
	Details []deployError `json:"details,omitempty"`
}

// appState is an application's stored properties.
type appState struct {
	Kind                    string             `json:"kind"`
	Plan                    *appPlan           `json:"plan,omitempty"`
	ManagedResourceGroupID  string             `json:"managedResourceGroupId"`
	ApplicationDefinitionID string             `json:"applicationDefinitionId,omitempty"` // as given (service catalog)
	DefinitionID            string             `json:"definitionId"`                      // the definition's id as stored
	PublisherTenantID       string             `json:"publisherTenantId"`
	Parameters              json.RawMessage    `json:"parameters,omitempty"`
	ProvisioningState       string             `json:"provisioningState"`
	Error                   *appError          `json:"error,omitempty"`
	LockLevel               string             `json:"lockLevel"`
	Authorizations          []appAuthorization `json:"authorizations"`
	IdentityType            string             `json:"identityType,omitempty"`
	IdentityPrincipalID     string             `json:"identityPrincipalId,omitempty"`
	DenyAssignmentID        string             `json:"denyAssignmentId,omitempty"`
	PublisherAssignmentIDs  []string           `json:"publisherAssignmentIds,omitempty"`
	Endpoints               []string           `json:"endpoints,omitempty"` // the definition's at install time
	ResourceUsageID         string             `json:"resourceUsageId,omitempty"`
	Registration            *specRegistration  `json:"registration,omitempty"`
	CreatedBy               string             `json:"createdBy,omitempty"`
	// Outputs are the outputs of the mainTemplate's deployment.
	Outputs map[string]any `json:"outputs,omitempty"`
}

type appIdentityView struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId,omitempty"`
	TenantID    string `json:"tenantId,omitempty"`
}

type appViewProps struct {
	ManagedResourceGroupID  string             `json:"managedResourceGroupId"`
	ApplicationDefinitionID string             `json:"applicationDefinitionId,omitempty"`
	Parameters              json.RawMessage    `json:"parameters,omitempty"`
	ProvisioningState       string             `json:"provisioningState"`
	PublisherTenantID       string             `json:"publisherTenantId"`
	Authorizations          []appAuthorization `json:"authorizations"`
	ManagementMode          string             `json:"managementMode"`
	BillingDetails          *billingDetails    `json:"billingDetails,omitempty"`
	Error                   *appError          `json:"error,omitempty"`
	Registration            *specRegistration  `json:"registration,omitempty"`
	CreatedBy               *appCreatedBy      `json:"createdBy,omitempty"`
	Outputs                 map[string]any     `json:"outputs,omitempty"`
}

type appCreatedBy struct {
	ObjectID string `json:"oid"`
}

type billingDetails struct {
	ResourceUsageID string `json:"resourceUsageId"`
}

type appView struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Kind       string            `json:"kind"`
	ManagedBy  string            `json:"managedBy,omitempty"`
	Plan       *appPlan          `json:"plan,omitempty"`
	Identity   *appIdentityView  `json:"identity,omitempty"`
	Tags       map[string]string `json:"tags"`
	Properties appViewProps      `json:"properties"`
}

func stateOf(res store.Resource) (appState, error) {
	var s appState
	if err := json.Unmarshal(res.Properties, &s); err != nil {
		return s, rp.InternalError(fmt.Errorf("application %s: %w", res.ID, err))
	}
	return s, nil
}

func appViewOf(res store.Resource) (appView, error) {
	s, err := stateOf(res)
	if err != nil {
		return appView{}, err
	}
	v := appView{ID: res.ID, Name: res.Name, Type: applicationType, Location: res.Location, Kind: s.Kind, Plan: s.Plan, Tags: rp.TagsOf(res),
		Properties: appViewProps{ManagedResourceGroupID: s.ManagedResourceGroupID, ApplicationDefinitionID: s.ApplicationDefinitionID,
			Parameters: s.Parameters, ProvisioningState: s.ProvisioningState, PublisherTenantID: s.PublisherTenantID,
			Authorizations: rp.NonNil(s.Authorizations), ManagementMode: "Managed", Error: s.Error, Outputs: s.Outputs}}
	if s.Registration != nil {
		// The customer sees the registration but not where the publisher
		// keeps its bootstrap secret.
		r := *s.Registration
		r.BootstrapSecret = ""
		v.Properties.Registration = &r
	}
	if s.CreatedBy != "" {
		v.Properties.CreatedBy = &appCreatedBy{ObjectID: s.CreatedBy}
	}
	if s.ResourceUsageID != "" {
		v.Properties.BillingDetails = &billingDetails{ResourceUsageID: s.ResourceUsageID}
	}
	if s.IdentityType != "" {
		v.Identity = &appIdentityView{Type: s.IdentityType, PrincipalID: s.IdentityPrincipalID, TenantID: res.TenantID}
	}
	return v, nil
}

// getApplication serves GET of an application to whoever may read it in
// its tenant and to the publisher's principals that the definition's
// authorizations name with a role permitting read: Microsoft's own
// managed-application scripts read the application as such a principal
// before calling listTokens (microsoft/metered-billing-accelerator,
// managed-app/src/scripts/perms.sh: GET {application} for
// identity.principalId), and a publisher's broker finds the managed
// resource group and the package's outputs there.
func (h *Handler) getApplication(rq *rp.Request) error {
	if res, ok, err := h.publisherView(rq, actionAppRead); err != nil {
		return err
	} else if ok {
		rq.Action = actionAppRead
		return writeView(rq, http.StatusOK, res, appViewOf)
	}
	return getTypedAt(h, rq, actionAppRead, applicationType, appViewOf)
}

// publisherView finds the path's application for a caller that
// publisherAuthorized allows action. Anything else (no such application,
// a principal the authorizations do not name) answers false and no
// error, so the caller's ordinary RBAC check decides and no other tenant
// learns whether the application exists.
func (h *Handler) publisherView(rq *rp.Request, action string) (store.Resource, bool, error) {
	tenantID, err := rq.ScopeTenant()
	if err != nil {
		return store.Resource{}, false, nil
	}
	res, err := rp.FindTypedAt(rq, h.st, tenantID, applicationType)
	if err != nil {
		return store.Resource{}, false, nil
	}
	st, err := stateOf(res)
	if err != nil {
		return store.Resource{}, false, nil
	}
	ok, err := h.publisherAuthorized(rq, st, action)
	if err != nil || !ok {
		return store.Resource{}, false, err
	}
	return res, true, nil
}

func (h *Handler) listApplications(rq *rp.Request) error {
	return listTyped(h, rq, actionAppRead, applicationType, appViewOf)
}

// resolvedDefinition is the definition an application installs.
type resolvedDefinition struct {
	res   store.Resource
	props appDefProps
	spec  *deploymentSpec
}

// resolveServiceCatalog finds the definition an applicationDefinitionId
// names: a definition of the customer's own tenant that the caller may
// read (service catalog: same directory, as in Azure), or a marketplace
// definition of any tenant.
func (h *Handler) resolveServiceCatalog(rq *rp.Request, tenantID, ref string) (resolvedDefinition, error) {
	var rd resolvedDefinition
	notFound := rp.NewError(http.StatusNotFound, "ApplicationDefinitionNotFound", "The application definition '%s' could not be found.", rp.SafeText(ref))
	sc, err := rbac.ParseScope(ref)
	if err != nil {
		return rd, rp.BadRequest("properties.applicationDefinitionId '%s' is not a resource id.", rp.SafeText(ref))
	}
	res, err := h.st.GetResource(rq.Ctx, sc.String())
	if errors.Is(err, store.ErrNotFound) || (err == nil && !strings.EqualFold(res.Type, appDefType)) {
		return rd, notFound
	} else if err != nil {
		return rd, rp.InternalError(err)
	}
	if !strings.EqualFold(res.TenantID, tenantID) {
		return rd, notFound
	}
	d, err := rq.Decide(actionAppDefRead, res.ID)
	if err != nil {
		return rd, err
	}
	if !d.Allowed {
		return rd, rp.NewError(http.StatusForbidden, "LinkedAuthorizationFailed", "The client '%s' with object id '%s' has permission to perform action '%s' on scope '%s'; however, it does not have permission to perform action '%s' on the linked scope '%s'.",
			rp.SafeText(rq.Who()), rq.OID, actionAppWrite, rp.SafeText(rq.Path.Scope.String()), actionAppDefRead, rp.SafeText(res.ID))
	}
	rd.res = res
	return rd, nil
}

// resolveMarketplace finds the published definition a plan names: product
// is the definition's name, publisher its tenant's domain (or name or id).
func (h *Handler) resolveMarketplace(rq *rp.Request, plan *appPlan) (resolvedDefinition, error) {
	var rd resolvedDefinition
	rs, err := h.st.ResourcesNamed(rq.Ctx, appDefType, plan.Product)
	if err != nil {
		return rd, rp.InternalError(err)
	}
	for _, res := range rs {
		var p appDefProps
		if json.Unmarshal(res.Properties, &p) != nil || !p.published() {
			continue
		}
		t, err := h.st.GetTenant(rq.Ctx, res.TenantID)
		if err != nil {
			continue
		}
		if strings.EqualFold(t.Domain, plan.Publisher) || strings.EqualFold(t.Name, plan.Publisher) || strings.EqualFold(t.ID, plan.Publisher) {
			rd.res = res
			return rd, nil
		}
	}
	return rd, rp.NewError(http.StatusNotFound, "MarketplaceOfferNotFound", "No marketplace offer '%s' of publisher '%s' exists.", rp.SafeText(plan.Product), rp.SafeText(plan.Publisher))
}

func (h *Handler) putApplication(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionAppWrite)
	if err != nil {
		return err
	}
	if n := rq.Path.Name; len(n) < 3 || len(n) > 64 || !identityNameRE.MatchString(n) {
		return rp.BadRequest("The application name '%s' is invalid: 3 to 64 letters, digits, '.', '_', '-', '(' or ')'.", rp.SafeText(n))
	}
	var body struct {
		Location string            `json:"location"`
		Kind     string            `json:"kind"`
		Tags     map[string]string `json:"tags"`
		Plan     *appPlan          `json:"plan"`
		Identity *struct {
			Type string `json:"type"`
		} `json:"identity"`
		Properties *struct {
			ApplicationDefinitionID string          `json:"applicationDefinitionId"`
			ManagedResourceGroupID  string          `json:"managedResourceGroupId"`
			Parameters              json.RawMessage `json:"parameters"`
		} `json:"properties"`
	}
	if err := rp.ReadBody(rq, &body); err != nil {
		return err
	}
	location, err := rp.CheckPut(applicationType, body.Location, body.Tags, body.Properties)
	if err != nil {
		return err
	}
	p := body.Properties
	// "A JObject or a well formed JSON string" (ApplicationProperties.Parameters).
	if _, err := inlineJSON(p.Parameters, "properties.parameters"); err != nil {
		return err
	}
	var kind string
	switch strings.ToLower(body.Kind) {
	case "servicecatalog":
		kind = "ServiceCatalog"
		if p.ApplicationDefinitionID == "" {
			return rp.BadRequest("properties.applicationDefinitionId is required for kind 'ServiceCatalog'.")
		}
	case "marketplace":
		kind = "MarketPlace"
		if body.Plan == nil || body.Plan.Publisher == "" || body.Plan.Product == "" || body.Plan.Name == "" || body.Plan.Version == "" {
			return rp.BadRequest("plan {name, publisher, product, version} is required for kind 'MarketPlace'.")
		}
	default:
		return rp.BadRequest("The kind '%s' is not valid: it must be 'ServiceCatalog' or 'MarketPlace'.", rp.SafeText(body.Kind))
	}
	identityType := ""
	if body.Identity != nil {
		switch strings.ToLower(strings.ReplaceAll(body.Identity.Type, " ", "")) {
		case "systemassigned":
			identityType = "SystemAssigned"
		case "", "none":
		default:
			return rp.BadRequest("identity.type '%s' is not supported: use 'SystemAssigned' or 'None'.", rp.SafeText(body.Identity.Type))
		}
	}
	mrg, err := rbac.ParseScope(p.ManagedResourceGroupID)
	segs := strings.Split(strings.TrimPrefix(mrg.String(), "/"), "/")
	if err != nil || len(segs) != 4 || !strings.EqualFold(segs[2], "resourceGroups") {
		return rp.BadRequest("properties.managedResourceGroupId '%s' is not a resource group id.", rp.SafeText(p.ManagedResourceGroupID))
	}
	if !strings.EqualFold(mrg.SubscriptionID(), rq.Path.Sub) {
		return rp.BadRequest("properties.managedResourceGroupId must be in the application's subscription '%s'.", rq.Path.Sub)
	}
	if strings.EqualFold(segs[3], rq.Path.RG) {
		return rp.BadRequest("The managed resource group must not be the application's own resource group.")
	}
	var rd resolvedDefinition
	if kind == "ServiceCatalog" {
		rd, err = h.resolveServiceCatalog(rq, tenantID, p.ApplicationDefinitionID)
	} else {
		rd, err = h.resolveMarketplace(rq, body.Plan)
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(rd.res.Properties, &rd.props); err != nil {
		return rp.InternalError(err)
	}
	if !rd.props.IsEnabled {
		return rp.BadRequest("The application definition '%s' is disabled.", rd.res.ID)
	}
	publisher := rd.res.TenantID
	rd.spec, err = parseSpec(rd.props.DeploymentSpec, nil)
	if err != nil {
		return rp.InternalError(fmt.Errorf("stored spec of %s: %w", rd.res.ID, err))
	}
	for _, ra := range rd.spec.RoleAssignments {
		if strings.EqualFold(ra.Principal, "applicationIdentity") && identityType == "" {
			return rp.BadRequest("The application definition assigns roles to the application's identity: identity.type must be 'SystemAssigned'.")
		}
	}
	// The publisher's principals, typed in the publisher's directory.
	publishers := map[string]store.PrincipalType{}
	lookup := func(id string) error {
		pt, err := principalTypeOf(rq, h.dir, publisher, id, http.StatusConflict, "The publisher's principal %s no longer exists in the directory %s.")
		if err != nil {
			return err
		}
		publishers[id] = pt
		return nil
	}
	for _, a := range rd.props.Authorizations {
		if err := lookup(a.PrincipalID); err != nil {
			return err
		}
	}
	for _, ra := range rd.spec.RoleAssignments {
		if k, ref, _ := strings.Cut(ra.Principal, ":"); strings.EqualFold(k, "publisher") {
			if err := lookup(strings.ToLower(ref)); err != nil {
				return err
			}
		}
	}

	// Install: Accepted, with everything but the spec's resources.
	var app store.Resource
	var st appState
	existed := false
	err = rq.Change(tenantID, func(tx store.Store, dir *directory.Service) error {
		now := h.now().UTC()
		g, err := rp.PathGroup(rq, tx)
		if err != nil {
			return err
		}
		id := rp.TypedID(rq, g, applicationType)
		rq.Target = id
		if old, err := rp.FindTyped(rq, tx, tenantID, id, applicationType); err == nil {
			os, err := stateOf(old)
			if err != nil {
				return err
			}
			if !strings.EqualFold(os.DefinitionID, rd.res.ID) || scopeKey(os.ManagedResourceGroupID) != mrg.Key() {
				return rp.NewError(http.StatusConflict, "ApplicationUpdateNotSupported", "The application '%s' exists with another definition or managed resource group; delete it first.", rq.Path.Name)
			}
			app, st, existed = old, os, true
			return rp.ErrNothingToDo
		} else if !errors.Is(err, store.ErrNotFound) {
			return rp.InternalError(err)
		}
		mrgExists := rp.NewError(http.StatusConflict, "ManagedResourceGroupAlreadyExists", "The managed resource group '%s' already exists: it must be new.", rp.SafeText(segs[3]))
		if _, err := tx.GetResourceGroup(rq.Ctx, mrg.SubscriptionID(), segs[3]); err == nil {
			return mrgExists
		} else if !errors.Is(err, store.ErrNotFound) {
			return rp.InternalError(err)
		}
		group := store.ResourceGroup{TenantID: tenantID, SubscriptionID: mrg.SubscriptionID(), Name: segs[3], Location: location, Created: now, Updated: now}
		if err := tx.CreateResourceGroup(rq.Ctx, group); errors.Is(err, store.ErrConflict) {
			return mrgExists
		} else if err != nil {
			return rp.InternalError(err)
		}
		mrgID := "/subscriptions/" + group.SubscriptionID + "/resourceGroups/" + group.Name
		st = appState{Kind: kind, Plan: body.Plan, ManagedResourceGroupID: mrgID, DefinitionID: rd.res.ID, PublisherTenantID: publisher,
			Parameters: withoutSecureValues(rd.props.MainTemplate, p.Parameters), ProvisioningState: "Accepted", LockLevel: rd.props.LockLevel, Authorizations: rd.props.Authorizations,
			IdentityType: identityType, Registration: rd.spec.Registration, CreatedBy: rq.OID}
		if kind == "ServiceCatalog" {
			st.ApplicationDefinitionID = rd.res.ID
		} else {
			st.ResourceUsageID = uuid.NewString()
		}
		st.Endpoints = rd.props.endpoints()
		exclude := []store.DenyPrincipal{}
		if identityType != "" {
			sp, err := dir.CreateSystemAssignedIdentity(rq.Ctx, tenantID, id, rq.Path.Name)
			if err != nil {
				return rp.DirectoryError(err)
			}
			st.IdentityPrincipalID = sp.ID
			exclude = append(exclude, store.DenyPrincipal{ID: sp.ID, Type: store.PrincipalServicePrincipal})
		}
		for i, a := range rd.props.Authorizations {
			ra := store.RoleAssignment{TenantID: tenantID, Scope: mrgID, RoleDefinitionID: a.RoleDefinitionID, PrincipalID: a.PrincipalID,
				PrincipalType: publishers[a.PrincipalID], PrincipalTenantID: publisher, CreatedOn: now,
				CreatedBy: store.DelegationCreator + strings.ToLower(id),
				ID:        uuid.NewSHA1(uuid.NameSpaceURL, fmt.Appendf(nil, "%s/authorizations/%d", strings.ToLower(id), i)).String()}
			if err := tx.CreateRoleAssignment(rq.Ctx, ra); errors.Is(err, store.ErrConflict) {
				continue
			} else if err != nil {
				return rp.InternalError(err)
			}
			st.PublisherAssignmentIDs = append(st.PublisherAssignmentIDs, ra.ID)
			if !slices.ContainsFunc(exclude, func(d store.DenyPrincipal) bool { return d.ID == a.PrincipalID }) {
				exclude = append(exclude, store.DenyPrincipal{ID: a.PrincipalID, Type: publishers[a.PrincipalID]})
			}
		}
		if perms := lockPermissions(rd.props.LockLevel); perms != nil {
			da := store.DenyAssignment{TenantID: tenantID, ID: uuid.NewString(), Name: "Deny assignment of managed application " + rq.Path.Name,
				Description: "Created by the managed application " + id + " (lock level " + rd.props.LockLevel + ").",
				Scope:       mrgID, Permissions: perms, Principals: []store.DenyPrincipal{{ID: store.EveryonePrincipalID, Type: store.PrincipalSystemDefined}},
				ExcludePrincipals: exclude, IsSystemProtected: true, CreatedOn: now, CreatedBy: applicationType}
			if err := tx.CreateDenyAssignment(rq.Ctx, da); err != nil {
				return rp.InternalError(err)
			}
			st.DenyAssignmentID = da.ID
		}
		props, err := json.Marshal(st)
		if err != nil {
			return rp.InternalError(err)
		}
		app = store.Resource{TenantID: tenantID, SubscriptionID: g.SubscriptionID, ResourceGroup: g.Name, ID: id, Type: applicationType,
			Name: rq.Path.Name, Location: location, Tags: body.Tags, Properties: props, Created: now, Updated: now}
		if err := tx.CreateResource(rq.Ctx, app); err != nil {
			return rp.InternalError(err)
		}
		return h.notifyTx(rq.Ctx, tx, app, st, "PUT")
	})
	if existed {
		return writeView(rq, http.StatusOK, app, appViewOf)
	}
	if err != nil {
		return err
	}
	h.wake()

	if rd.props.MainTemplate != nil {
		// The parameters as given, secure values included: kept only in
		// memory, for the deployment (which keeps none of them either).
		return h.finishTemplateInstall(rq, tenantID, app, st, rd.props.MainTemplate, p.Parameters, nil)
	}
	// The spec, as the template it stands for, by the same path; the
	// publisher's assignments and the registration call come with
	// Succeeded.
	in := installation{tenantID: tenantID, appID: app.ID, location: location, groupID: st.ManagedResourceGroupID, sub: mrg.SubscriptionID(),
		appSP: st.IdentityPrincipalID, publisher: publisher, suffix: uniqueSuffix(app.ID), spec: rd.spec, createdBy: rq.OID, publishers: publishers}
	tmpl, err := specTemplate(in)
	if err == nil {
		err = checkBootstrapSecret(rq.Ctx, h.st, in)
	}
	var deployErr *deployError
	if errors.As(err, &deployErr) {
		return h.endInstall(rq, tenantID, app, st, nil, &appError{Code: "DeploymentFailed", Message: "At least one resource deployment operation failed.", Details: []deployError{*deployErr}}, nil)
	} else if err != nil {
		return rp.InternalError(err)
	}
	return h.finishTemplateInstall(rq, tenantID, app, st, tmpl, nil, func(tx store.Store, app store.Resource, st appState) error {
		if err := publisherAssignments(rq.Ctx, tx, in, h.now().UTC()); err != nil {
			return err
		}
		return h.registerTx(rq.Ctx, tx, app, st)
	})
}

// managedGroup gets the application's managed resource group.
func managedGroup(ctx context.Context, tx store.Store, st appState) (store.ResourceGroup, error) {
	mrg, err := rbac.ParseScope(st.ManagedResourceGroupID)
	if err != nil {
		return store.ResourceGroup{}, err
	}
	segs := strings.Split(strings.TrimPrefix(mrg.String(), "/"), "/")
	return tx.GetResourceGroup(ctx, mrg.SubscriptionID(), segs[3])
}

// lockPermissions are the deny assignment's permissions for a lock level:
// none for None, deletes for CanNotDelete, everything but reads for
// ReadOnly. Data actions are not denied.
func lockPermissions(level string) []store.Permission {
	switch level {
	case "CanNotDelete":
		return []store.Permission{{Actions: []string{"*/delete"}}}
	case "ReadOnly":
		return []store.Permission{{Actions: []string{"*"}, NotActions: []string{"*/read"}}}
	}
	return nil
}

// saveState writes the application's state and enqueues the notification
// of it (eventType), in tx, and returns the record.
func (h *Handler) saveState(ctx context.Context, tx store.Store, app store.Resource, st appState, eventType string) (store.Resource, error) {
	props, err := json.Marshal(st)
	if err != nil {
		return app, rp.InternalError(err)
	}
	app.Properties, app.Updated = props, h.now().UTC()
	if err := tx.UpdateResource(ctx, app); err != nil {
		return app, rp.InternalError(err)
	}
	return app, h.notifyTx(ctx, tx, app, st, eventType)
}

// changeState saves the application's state, with its notification, in a
// transaction of its own.
func (h *Handler) changeState(rq *rp.Request, tenantID string, app *store.Resource, st appState, eventType string) error {
	return rq.Change(tenantID, func(tx store.Store, _ *directory.Service) error {
		var err error
		*app, err = h.saveState(rq.Ctx, tx, *app, st, eventType)
		return err
	})
}

func (h *Handler) wake() {
	if h.notify != nil {
		h.notify()
	}
}

// notification is the lifecycle notification's payload, as Azure sends it
// (learn.microsoft.com/azure/azure-resource-manager/managed-applications/publish-notifications).
type notification struct {
	EventType               string          `json:"eventType"`
	ApplicationID           string          `json:"applicationId"`
	EventTime               string          `json:"eventTime"`
	ProvisioningState       string          `json:"provisioningState"`
	ApplicationDefinitionID string          `json:"applicationDefinitionId,omitempty"`
	BillingDetails          *billingDetails `json:"billingDetails,omitempty"`
	Plan                    *appPlan        `json:"plan,omitempty"`
	Error                   *appError       `json:"error,omitempty"`
}

// notificationURL is {endpoint}/resource?{endpoint's query}.
func notificationURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", err
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/resource"
	u.RawPath = ""
	return u.String(), nil
}

// notifyTx enqueues, in tx, the notification of the application's current
// state to each endpoint of its definition (the definition's current
// endpoints, or those it had at install time once it is gone).
func (h *Handler) notifyTx(ctx context.Context, tx store.Store, app store.Resource, st appState, eventType string) error {
	endpoints := st.Endpoints
	if def, err := tx.GetResource(ctx, st.DefinitionID); err == nil {
		var p appDefProps
		if json.Unmarshal(def.Properties, &p) == nil {
			endpoints = p.endpoints()
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return rp.InternalError(err)
	}
	if len(endpoints) == 0 {
		return nil
	}
	now := h.now().UTC()
	n := notification{EventType: eventType, ApplicationID: app.ID, EventTime: now.Format("2006-01-02T15:04:05.0000000Z"),
		ProvisioningState: st.ProvisioningState, Error: st.Error}
	if st.Kind == "MarketPlace" {
		n.Plan, n.BillingDetails = st.Plan, &billingDetails{ResourceUsageID: st.ResourceUsageID}
	} else {
		n.ApplicationDefinitionID = st.DefinitionID
	}
	if st.ProvisioningState != "Failed" {
		n.Error = nil
	}
	body, err := json.Marshal(n)
	if err != nil {
		return rp.InternalError(err)
	}
	for _, e := range endpoints {
		u, err := notificationURL(e)
		if err != nil {
			continue // validated when the definition was written
		}
		m := store.OutboxMessage{ID: uuid.NewString(), TenantID: st.PublisherTenantID, Topic: st.DefinitionID, Key: strings.ToLower(app.ID),
			URL: u, ContentType: "application/json", Body: body, NextAttempt: now, Deadline: now.Add(h.notifyDeadline)}
		if _, err := tx.EnqueueOutbox(ctx, m); err != nil {
			return rp.InternalError(fmt.Errorf("enqueue notification: %w", err))
		}
	}
	return nil
}

func (h *Handler) deleteApplication(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionAppDelete)
	if err != nil {
		return err
	}
	res, err := rp.FindTypedAt(rq, h.st, tenantID, applicationType)
	if rp.IsResourceNotFound(err) {
		rq.W.WriteHeader(http.StatusNoContent)
		return nil
	} else if err != nil {
		return err
	}
	st, err := stateOf(res)
	if err != nil {
		return err
	}
	rq.Target = res.ID
	if st.ProvisioningState != "Deleting" {
		st.ProvisioningState, st.Error = "Deleting", nil
		if err := h.changeState(rq, tenantID, &res, st, "DELETE"); err != nil {
			return err
		}
		h.wake()
	}
	err = rq.Change(tenantID, func(tx store.Store, dir *directory.Service) error {
		g, err := managedGroup(rq.Ctx, tx, st)
		if err == nil {
			if err := rq.DeleteGroupResources(tx, dir, g); err != nil {
				return err
			}
			// Its resources, role and deny assignments go with it.
			if err := tx.DeleteResourceGroup(rq.Ctx, g.SubscriptionID, g.Name); err != nil {
				return rp.InternalError(err)
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return rp.InternalError(err)
		}
		if st.DenyAssignmentID != "" {
			if err := tx.DeleteDenyAssignment(rq.Ctx, tenantID, st.DenyAssignmentID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return rp.InternalError(err)
			}
		}
		for _, id := range st.PublisherAssignmentIDs {
			if err := tx.DeleteRoleAssignment(rq.Ctx, tenantID, id); err != nil && !errors.Is(err, store.ErrNotFound) {
				return rp.InternalError(err)
			}
		}
		if st.IdentityPrincipalID != "" {
			if err := dir.DeleteManagedIdentity(rq.Ctx, tenantID, st.IdentityPrincipalID); err != nil && !errors.Is(err, directory.ErrNotFound) {
				return rp.InternalError(err)
			}
		}
		if err := rp.DeleteRecord(rq, tx, res.ID); err != nil {
			return err
		}
		st.ProvisioningState = "Deleted"
		return h.notifyTx(rq.Ctx, tx, res, st, "DELETE")
	})
	if err != nil {
		return err
	}
	h.wake()
	rq.W.WriteHeader(http.StatusOK)
	return nil
}

// ---- listTokens ----

// listTokenView is one token of listTokens' answer. The sources disagree
// on its spelling: the managed applications article's example writes
// access_token, expires_in, expires_on, not_before and token_type, the
// REST spec (ManagedIdentityToken, what the SDKs are generated from)
// accessToken, expiresIn, expiresOn, notBefore and tokenType. Until one
// settles it, both are written, with the same values.
type listTokenView struct {
	AccessToken           string `json:"access_token"`
	ExpiresIn             string `json:"expires_in"`
	ExpiresOn             string `json:"expires_on"`
	NotBefore             string `json:"not_before"`
	AuthorizationAudience string `json:"authorizationAudience"`
	ResourceID            string `json:"resourceId"`
	TokenType             string `json:"token_type"`

	AccessTokenCamel string `json:"accessToken"`
	ExpiresInCamel   string `json:"expiresIn"`
	ExpiresOnCamel   string `json:"expiresOn"`
	NotBeforeCamel   string `json:"notBefore"`
	TokenTypeCamel   string `json:"tokenType"`
}

// newListTokenView fills both spellings.
func newListTokenView(token, expiresIn, expiresOn, notBefore, audience, resourceID string) listTokenView {
	return listTokenView{AccessToken: token, ExpiresIn: expiresIn, ExpiresOn: expiresOn, NotBefore: notBefore,
		AuthorizationAudience: audience, ResourceID: resourceID, TokenType: "Bearer",
		AccessTokenCamel: token, ExpiresInCamel: expiresIn, ExpiresOnCamel: expiresOn, NotBeforeCamel: notBefore, TokenTypeCamel: "Bearer"}
}

// listTokens serves POST {application}/listTokens: tokens of the
// application's system-assigned identity, or of user-assigned identities
// of its managed resource group, for principals of the publisher tenant
// that the definition's authorizations name (directly or through a group)
// with a role that permits Microsoft.Solutions/applications/listTokens/action.
func (h *Handler) listTokens(rq *rp.Request) error {
	tenantID, err := rq.ScopeTenant()
	if err != nil {
		return err
	}
	rq.Action = actionListTokens
	// The application's id is the parent of the listTokens path.
	res, err := rp.FindTypedAt(rq, h.st, tenantID, applicationType)
	if err != nil {
		return err
	}
	rq.Target = res.ID
	st, err := stateOf(res)
	if err != nil {
		return err
	}
	if ok, err := h.publisherAuthorized(rq, st, actionListTokens); err != nil {
		return err
	} else if !ok {
		return rp.NewError(http.StatusForbidden, "AuthorizationFailed",
			"The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s': only the publisher's authorized principals may list the application's tokens.",
			rp.SafeText(rq.Who()), rq.OID, actionListTokens, rp.SafeText(res.ID))
	}
	var body struct {
		AuthorizationAudience  string   `json:"authorizationAudience"`
		UserAssignedIdentities []string `json:"userAssignedIdentities"`
	}
	if rq.R.ContentLength != 0 {
		if err := rp.ReadBody(rq, &body); err != nil {
			return err
		}
	}
	audience := body.AuthorizationAudience
	if audience == "" {
		audience = "https://management.azure.com/"
	}
	if len(body.UserAssignedIdentities) > 20 {
		return rp.BadRequest("userAssignedIdentities: at most 20 identities.")
	}
	type target struct{ objectID, resourceID string }
	var targets []target
	for i, ref := range body.UserAssignedIdentities {
		sp, err := h.dir.ManagedIdentityByResourceID(rq.Ctx, tenantID, ref)
		if errors.Is(err, directory.ErrNotFound) || (err == nil && (!sp.IsUserAssigned() || scopeKey(groupIDOf(sp.ManagedIdentityResourceID())) != scopeKey(st.ManagedResourceGroupID))) {
			return rp.BadRequest("userAssignedIdentities[%d] '%s' is not a user-assigned identity of the managed resource group.", i, rp.SafeText(ref))
		} else if err != nil {
			return rp.InternalError(err)
		}
		targets = append(targets, target{sp.ID, sp.ManagedIdentityResourceID()})
	}
	if len(targets) == 0 {
		if st.IdentityPrincipalID == "" {
			return rp.BadRequest("The application has no system-assigned identity: name userAssignedIdentities of its managed resource group.")
		}
		targets = append(targets, target{st.IdentityPrincipalID, res.ID})
	}
	if h.minter == nil {
		return rp.NewError(http.StatusNotImplemented, "FeatureNotSupported", "This server mints no managed identity tokens.")
	}
	now := h.now()
	out := []listTokenView{}
	for _, t := range targets {
		tok, exp, err := h.minter.ManagedIdentityToken(rq.Ctx, tenantID, t.objectID, audience)
		if err != nil {
			if strings.Contains(err.Error(), "audience") {
				return rp.BadRequest("The authorizationAudience '%s' is not a resource this tenant knows.", rp.SafeText(audience))
			}
			return rp.InternalError(err)
		}
		out = append(out, newListTokenView(tok, strconv.FormatInt(int64(exp.Sub(now).Seconds()), 10),
			strconv.FormatInt(exp.Unix(), 10), strconv.FormatInt(now.Unix(), 10), audience, t.resourceID))
	}
	_ = h.audit.Record(rq.Ctx, h.auditRecord(rq, tenantID, "success"))
	return rp.WriteJSON(rq, http.StatusOK, map[string]any{"value": out})
}

// groupIDOf is the resource group id a resource id lies in.
func groupIDOf(id string) string {
	segs := strings.Split(strings.TrimPrefix(id, "/"), "/")
	if len(segs) < 4 {
		return ""
	}
	return "/" + strings.Join(segs[:4], "/")
}

// publisherAuthorized reports whether the caller is a principal of the
// publisher tenant named by the application's authorizations (directly or
// through a group it is a member of) with a role permitting action
// (listTokens, or read).
func (h *Handler) publisherAuthorized(rq *rp.Request, st appState, action string) (bool, error) {
	if !strings.EqualFold(rq.TenantID, st.PublisherTenantID) {
		return false, nil
	}
	ids := map[string]bool{strings.ToLower(rq.OID): true}
	groups, err := h.dir.TransitiveMemberOf(rq.Ctx, st.PublisherTenantID, rq.OID)
	if err != nil && !errors.Is(err, directory.ErrNotFound) {
		return false, rp.InternalError(err)
	}
	for _, g := range groups {
		ids[strings.ToLower(g)] = true
	}
	for _, a := range st.Authorizations {
		if !ids[strings.ToLower(a.PrincipalID)] {
			continue
		}
		if role, ok := builtInRole(a.RoleDefinitionID); ok && rbac.Permits(role.Permissions, action, false) {
			return true, nil
		}
	}
	return false, nil
}

// registration is the body of the registration call (the spec's
// registration.endpoint), sent once an installation Succeeded.
type registration struct {
	ApplicationID           string   `json:"applicationId"`
	ApplicationDefinitionID string   `json:"applicationDefinitionId,omitempty"` // service catalog
	Plan                    *appPlan `json:"plan,omitempty"`                    // marketplace
	CustomerTenantID        string   `json:"customerTenantId"`
	ManagedResourceGroupID  string   `json:"managedResourceGroupId"`
	IdentityPrincipalID     string   `json:"identityPrincipalId,omitempty"`
	EventTime               string   `json:"eventTime"`
}

// RegistrationAuthRef is the outbox AuthRef of a registration call: the
// publisher's tenant id and the bootstrap secret's URI, separated by a
// space (a tenant id has none). The deliverer's Authorize (the server's)
// resolves it with ParseRegistrationAuthRef and the vault service's
// ResolveReference into "Bootstrap {secret}".
func RegistrationAuthRef(publisherTenantID, secretURI string) string {
	return publisherTenantID + " " + secretURI
}

// ParseRegistrationAuthRef splits a RegistrationAuthRef.
func ParseRegistrationAuthRef(ref string) (publisherTenantID, secretURI string, ok bool) {
	publisherTenantID, secretURI, ok = strings.Cut(ref, " ")
	return publisherTenantID, secretURI, ok && publisherTenantID != "" && secretURI != ""
}

// registerTx enqueues, in tx (the one that sets Succeeded), the
// registration call of the application when its spec has
// registration.endpoint: to the publisher's tenant, with the definition
// as topic and the application as key (after its Accepted and Succeeded
// notifications), and the bootstrap secret as a reference that the
// deliverer resolves at send time, never its value.
func (h *Handler) registerTx(ctx context.Context, tx store.Store, app store.Resource, st appState) error {
	r := st.Registration
	if r == nil || r.Endpoint == "" {
		return nil
	}
	now := h.now().UTC()
	b := registration{ApplicationID: app.ID, CustomerTenantID: app.TenantID, ManagedResourceGroupID: st.ManagedResourceGroupID,
		IdentityPrincipalID: st.IdentityPrincipalID, EventTime: now.Format("2006-01-02T15:04:05.0000000Z")}
	if st.Kind == "MarketPlace" {
		b.Plan = st.Plan
	} else {
		b.ApplicationDefinitionID = st.DefinitionID
	}
	body, err := json.Marshal(b)
	if err != nil {
		return rp.InternalError(err)
	}
	m := store.OutboxMessage{ID: uuid.NewString(), TenantID: st.PublisherTenantID, Topic: st.DefinitionID, Key: strings.ToLower(app.ID),
		URL: r.Endpoint, ContentType: "application/json", Body: body, AuthRef: RegistrationAuthRef(st.PublisherTenantID, r.BootstrapSecret),
		NextAttempt: now, Deadline: now.Add(h.notifyDeadline)}
	if _, err := tx.EnqueueOutbox(ctx, m); err != nil {
		return rp.InternalError(fmt.Errorf("enqueue registration: %w", err))
	}
	return nil
}

// applicationGroups maps the managed resource groups of the subscription's
// managed applications (lower-cased ids) to the applications' ids: the
// groups' managedBy (rp.Provider.GroupManagers).
func applicationGroups(rq *rp.Request, subscriptionID string) (map[string]string, error) {
	apps, err := rq.Store().ListResources(rq.Ctx, store.ResourceQuery{SubscriptionID: subscriptionID, Type: applicationType})
	if err != nil {
		return nil, rp.InternalError(err)
	}
	out := map[string]string{}
	for _, a := range apps {
		st, err := stateOf(a)
		if err != nil {
			return nil, err
		}
		if st.ManagedResourceGroupID != "" {
			out[strings.ToLower(st.ManagedResourceGroupID)] = a.ID
		}
	}
	return out, nil
}
