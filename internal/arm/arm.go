// Package arm is the Azure Resource Manager surface of tenantbridge, served
// at management.azure.com (and management.{custom domain}): subscriptions,
// resource groups, and Microsoft.Authorization's role definitions, role
// assignments and deny assignments at any scope, in ARM's own JSON shapes,
// status codes and {"error":{"code","message"}} errors, so that the Azure
// SDKs and the az CLI work against it unchanged.
//
// Every request needs a bearer token for Resource Manager (audience
// https://management.azure.com/, https://management.core.windows.net/ or
// ARM's application id) and an api-version (any value). Every operation is
// authorised by the RBAC engine (package rbac) with the operation's ARM
// action at its scope; every change is made in one transaction together
// with its audit record, and every refusal is audited.
//
// Lists page as ARM pages them: at most rp.MaxPageSize items (or $top, where
// the operation takes it), then an absolute nextLink carrying a skip
// token, which the SDKs' pagers follow.
//
// One endpoint is tenantbridge's own, read-only:
//
//	GET /providers/TenantBridge.Authorization/explain?principalId=…&action=…&scope=…[&dataAction=true]&api-version=…
//
// answers whether a principal of the caller's tenant may perform an
// operation at a scope, and why: {"allowed": bool, "because": "…"}. It
// requires Microsoft.Authorization/roleAssignments/read at the scope.
package arm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/sts"
	"github.com/tenantbridge/tenantbridge/internal/token"
)

// TokenVerifier checks a bearer token; *sts.Verifier implements it.
type TokenVerifier interface {
	Verify(ctx context.Context, raw string, audiences ...string) (token.Claims, error)
}

// Audiences are the audiences a Resource Manager token may carry.
var Audiences = []string{"https://management.azure.com/", "https://management.azure.com",
	directory.ARMLegacyResource, strings.TrimSuffix(directory.ARMLegacyResource, "/"), directory.ARMAppID}

// Config holds the surface's dependencies. Directory, Store, RBAC,
// Verifier and Audit are required.
type Config struct {
	Directory *directory.Service
	// Store must be the directory's store: changes and their audit
	// records are written in one transaction of it.
	Store    store.Store
	RBAC     *rbac.Engine
	Verifier TokenVerifier
	// Audit records refusals (changes are recorded in their own transaction).
	Audit  *audit.Log
	Logger *slog.Logger     // default: discard
	Now    func() time.Time // default: time.Now
	// PageSize is how many items one page of a list holds before it
	// continues at its nextLink; 0 or more than rp.MaxPageSize means
	// rp.MaxPageSize. Tests set it small to page without a thousand items.
	PageSize int
	// TokenMinter mints the managed identity tokens of a managed
	// application's listTokens (*sts.Service); without it listTokens
	// answers 501.
	TokenMinter TokenMinter
	// Packages says where a managed application definition's
	// packageFileUri may point (managedapps_package.go); the zero value
	// allows no host, so every packageFileUri is refused.
	Packages PackageFetch
	// Secrets reads the Key Vault secrets that deployment parameters
	// reference (vault.Service.ResolveReference); without it every such
	// reference fails (deployments_keyvault.go).
	Secrets SecretResolver
	// Notify, if not nil, is called after a commit that enqueued lifecycle
	// notifications in the outbox, so that the deliverer wakes.
	Notify func()
	// NotificationDeadline is how long a lifecycle notification is
	// retried; DefaultNotificationDeadline (10 hours, as Azure) when zero.
	NotificationDeadline time.Duration
	// Providers are the resource providers of the services, each serving
	// its namespace's resource types (package rp). The door's own
	// namespaces (Microsoft.Resources, Microsoft.Authorization) are not
	// among them.
	Providers []*rp.Provider
}

// MaxPageSize is the most items of one page of a list: ARM's page size
// for resource and resource group lists ($top is capped at it).
const MaxPageSize = rp.MaxPageSize

// Handler serves Resource Manager. It is safe for concurrent use.
type Handler struct {
	dir      *directory.Service
	st       store.Store
	rbac     *rbac.Engine
	verifier TokenVerifier
	audit    *audit.Log
	log      *slog.Logger
	now      func() time.Time
	pageSize int
	minter   TokenMinter
	secrets  SecretResolver
	packages PackageFetch
	notify   func()
	// notifyDeadline bounds the retries of a lifecycle notification.
	notifyDeadline time.Duration
	// runs are the template deployments running here (deployments_run.go).
	runs deploymentRuns
	// providers are the registered providers, in registration order;
	// byNamespace finds one by its lower-cased namespace.
	providers   []*rp.Provider
	byNamespace map[string]*rp.Provider
}

// New returns the handler; a missing dependency panics at wiring time.
func New(cfg Config) *Handler {
	if cfg.Directory == nil || cfg.Store == nil || cfg.RBAC == nil || cfg.Verifier == nil || cfg.Audit == nil {
		panic("arm: Config needs Directory, Store, RBAC, Verifier and Audit")
	}
	h := &Handler{dir: cfg.Directory, st: cfg.Store, rbac: cfg.RBAC, verifier: cfg.Verifier, audit: cfg.Audit, log: cfg.Logger, now: cfg.Now, pageSize: cfg.PageSize,
		minter: cfg.TokenMinter, secrets: cfg.Secrets, packages: cfg.Packages, notify: cfg.Notify, notifyDeadline: cfg.NotificationDeadline}
	if h.notifyDeadline <= 0 {
		h.notifyDeadline = DefaultNotificationDeadline
	}
	if h.pageSize <= 0 || h.pageSize > rp.MaxPageSize {
		h.pageSize = rp.MaxPageSize
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.register(append(h.ownProviders(), cfg.Providers...))
	return h
}

// register adds the providers to the registry, in order; a provider
// without Parse or Serve, or a namespace registered twice, panics at
// wiring time.
func (h *Handler) register(ps []*rp.Provider) {
	if h.byNamespace == nil {
		h.byNamespace = map[string]*rp.Provider{}
	}
	for _, p := range ps {
		key := strings.ToLower(p.Namespace)
		if p.Parse == nil || p.Serve == nil || h.byNamespace[key] != nil {
			panic("arm: provider " + p.Namespace + " needs Parse and Serve and may be registered once")
		}
		h.providers = append(h.providers, p)
		h.byNamespace[key] = p
	}
}

// ServeHTTP authenticates, checks api-version, routes, and turns every
// failure into ARM's error shape.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	info := httpx.InfoFrom(ctx)
	if info.RequestID == "" {
		info.RequestID = uuid.NewString()
		ctx = httpx.WithInfo(ctx, info)
		r = r.WithContext(ctx)
	}
	w.Header().Set("x-ms-request-id", info.RequestID)
	w.Header().Set("x-ms-correlation-request-id", info.RequestID)
	rq := rp.NewRequest(w, r, door{h})
	defer func() {
		if v := recover(); v != nil {
			h.log.ErrorContext(ctx, "arm: panic", "panic", v, "stack", string(debug.Stack()))
			writeError(w, rp.AsError(rp.InternalError(nil)))
		}
	}()
	if err := h.serve(rq); err != nil {
		ae := rp.AsError(err)
		if ae.Status >= 500 {
			h.log.ErrorContext(ctx, "arm: request failed", "action", rq.Action, "err", err)
		}
		if rq.OID != "" && (ae.Status == http.StatusForbidden || (r.Method != http.MethodGet && r.Method != http.MethodHead)) {
			h.recordRefusal(rq, ae.Code)
		}
		writeError(w, ae)
	}
}

// writeError writes ARM's error envelope.
func writeError(w http.ResponseWriter, e *rp.Error) {
	if e.Authenticate != "" {
		w.Header().Set("WWW-Authenticate", e.Authenticate)
	}
	if e.RetryAfter != "" {
		w.Header().Set("Retry-After", e.RetryAfter)
	}
	w.Header().Set("x-ms-failure-cause", "gateway")
	httpx.WriteJSON(w, e.Status, map[string]any{"error": map[string]string{"code": e.Code, "message": e.Message}})
}

func (h *Handler) serve(rq *rp.Request) error {
	path, provider, perr := h.parsePath(rq.R.URL.Path)
	if err := h.authenticate(rq, path, perr == nil); err != nil {
		return err
	}
	if rq.R.URL.Query().Get("api-version") == "" {
		return rp.NewError(http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
	}
	if perr != nil {
		return rp.NewError(http.StatusBadRequest, "InvalidResourceId", "The resource id '%s' is not valid: %s", rp.SafeText(rq.R.URL.Path), rp.SafeText(perr.Error()))
	}
	if err := h.checkAPIVersion(rq, path, provider); err != nil { // apiversion_check.go
		return err
	}
	rq.Path = path
	if err := h.checkLocks(rq); err != nil { // locks.go
		return err
	}
	if provider != nil {
		if err := h.checkRegistered(rq, provider); err != nil { // providers.go
			return err
		}
		return provider.Serve(rq)
	}
	m := rq.R.Method
	switch path.Target {
	case targetSubscriptions:
		return rp.Only(rq, http.MethodGet, h.listSubscriptions)
	case targetSubscription:
		return rp.Only(rq, http.MethodGet, h.getSubscription)
	case targetResourceGroups:
		return rp.Only(rq, http.MethodGet, h.listResourceGroups)
	case targetResourceGroup:
		return rp.ServeType(rq, false, rp.TypeHandlers{Get: h.getResourceGroup, Put: h.putResourceGroup, Patch: h.patchResourceGroup, Delete: h.deleteResourceGroup})
	case targetRoleDefinitions:
		switch {
		case m == http.MethodGet && path.Name == "":
			return h.listRoleDefinitions(rq)
		case m == http.MethodGet:
			return h.getRoleDefinition(rq)
		case m == http.MethodPut && path.Name != "":
			return h.putRoleDefinition(rq)
		case m == http.MethodDelete && path.Name != "":
			return h.deleteRoleDefinition(rq)
		}
	case targetRoleAssignments:
		switch {
		case m == http.MethodGet && path.Name == "":
			return h.listRoleAssignments(rq)
		case m == http.MethodGet:
			return h.getRoleAssignment(rq)
		case m == http.MethodPut && path.Name != "":
			return h.putRoleAssignment(rq)
		case m == http.MethodDelete && path.Name != "":
			return h.deleteRoleAssignment(rq)
		}
	case targetDenyAssignments:
		if m == http.MethodGet {
			if path.Name == "" {
				return h.listDenyAssignments(rq)
			}
			return h.getDenyAssignment(rq)
		}
	case targetExplain:
		return rp.Only(rq, http.MethodGet, h.explain)
	case targetDeployments:
		return h.deployments(rq) // deployments.go
	case targetResourceList:
		return h.listResources(rq) // resourcelist.go
	case targetProviders, targetProvider, targetProviderAction, targetLocations:
		return h.providersSurface(rq) // providers.go
	case targetLocks:
		return h.locks(rq) // locks.go
	case targetTags:
		return h.tags(rq) // tags.go
	case targetTagNames:
		return rp.Only(rq, http.MethodGet, h.tagNames) // tags.go
	case targetResource:
		return h.resource(rq)
	}
	return rp.MethodNotAllowed(m)
}

// resource answers a resource id of a type this surface does not serve
// (yet): its group must exist, and then the resource does not.
func (h *Handler) resource(rq *rp.Request) error {
	if _, err := rq.ScopeTenant(); err != nil {
		return err
	}
	if rq.Path.RG != "" {
		if _, err := h.st.GetResourceGroup(rq.Ctx, rq.Path.Sub, rq.Path.RG); errors.Is(err, store.ErrNotFound) {
			return rp.ResourceGroupNotFound(rq.Path.RG)
		} else if err != nil {
			return rp.InternalError(err)
		}
	}
	return rp.NewError(http.StatusNotFound, "ResourceNotFound", "The Resource '%s' was not found.", rp.SafeText(rq.Path.Scope.String()))
}

// ---- authentication ----

// authenticate verifies the bearer token. A refused token is a 401 whose
// WWW-Authenticate names the login authority of the subscription's tenant
// when the path names a known subscription (how clients discover it),
// else of the common endpoint.
func (h *Handler) authenticate(rq *rp.Request, path rp.Path, pathOK bool) error {
	if authenticateInProcess(rq) { // a template deployment's own request (deployments_run.go)
		return nil
	}
	fail := func(code, message string) error {
		tenant := "common"
		if pathOK && path.Sub != "" {
			if ts, err := h.st.TenantsBySubscription(rq.Ctx, path.Sub); err == nil && len(ts) == 1 {
				tenant = ts[0]
			}
		}
		return &rp.Error{Status: http.StatusUnauthorized, Code: code, Message: message,
			Authenticate: fmt.Sprintf(`Bearer authorization_uri="%s/%s", error="invalid_token", error_description="%s"`, rp.LoginBase(rq.R), tenant, message)}
	}
	header := rq.R.Header.Get("Authorization")
	scheme, raw, _ := strings.Cut(header, " ")
	raw = strings.TrimSpace(raw)
	if header == "" {
		return fail("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
	}
	if !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return fail("AuthenticationFailed", "Authentication failed. The 'Authorization' header is provided in an invalid format.")
	}
	claims, err := h.verifier.Verify(rq.Ctx, raw, Audiences...)
	if err != nil {
		h.log.InfoContext(rq.Ctx, "arm: token refused", "err", err)
		switch {
		case errors.Is(err, token.ErrExpired):
			return fail("ExpiredAuthenticationToken", "The access token has expired.")
		case errors.Is(err, token.ErrTrustRevoked):
			e := fail("InvalidAuthenticationToken", "The access token was issued through a trust that has since been revoked: continuous access evaluation requires a new token.")
			if ae, ok := e.(*rp.Error); ok {
				ae.Authenticate = token.ClaimsChallenge(rp.LoginBase(rq.R)+"/common/oauth2/authorize", directory.ARMAppID, time.Now())
			}
			return e
		case errors.Is(err, sts.ErrWrongAudience):
			return fail("InvalidAuthenticationTokenAudience", "The access token has been obtained for wrong audience or resource. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.azure.com/'.")
		}
		return fail("InvalidAuthenticationToken", "The access token is invalid.")
	}
	if claims.TenantID == "" || claims.ObjectID == "" {
		return fail("InvalidAuthenticationToken", "The access token is invalid.")
	}
	rq.Claims, rq.TenantID, rq.OID, rq.Home = claims, claims.TenantID, claims.ObjectID, claims.HomeTenant()
	return nil
}

// scopeTenant finds the tenant that owns the request's scope and checks
// that it is the token's: a subscription of no tenant is
// SubscriptionNotFound, one of another tenant InvalidAuthenticationTokenTenant.
// The root and management groups belong to the token's tenant.
func (h *Handler) scopeTenant(rq *rp.Request) (string, error) {
	sub := rq.Path.Sub
	if sub == "" {
		return rq.TenantID, nil
	}
	ts, err := h.st.TenantsBySubscription(rq.Ctx, sub)
	if err != nil {
		return "", rp.InternalError(err)
	}
	if len(ts) != 1 {
		return "", rp.NewError(http.StatusNotFound, "SubscriptionNotFound", "The subscription '%s' could not be found.", rp.SafeText(sub))
	}
	if !strings.EqualFold(ts[0], rq.TenantID) {
		// A principal of another tenant that the scope's tenant has
		// granted a role (a managed application's publisher) may act
		// with a token of its own tenant, as in Azure.
		if ok, err := h.grantedAcross(rq, ts[0]); err != nil {
			return "", err
		} else if ok {
			rq.CrossTenant = ts[0]
			return ts[0], nil
		}
		return "", &rp.Error{Status: http.StatusUnauthorized, Code: "InvalidAuthenticationTokenTenant",
			Message: fmt.Sprintf("The access token is from the wrong issuer 'https://sts.windows.net/%s/'. It must match the tenant 'https://sts.windows.net/%s/' associated with this subscription. Please use the authority (URL) '%s/%s' to get the token.",
				rq.TenantID, ts[0], rp.LoginBase(rq.R), ts[0]),
			Authenticate: fmt.Sprintf(`Bearer authorization_uri="%s/%s", error="invalid_token", error_description="The access token is from the wrong issuer."`, rp.LoginBase(rq.R), ts[0])}
	}
	return ts[0], nil
}

// grantedAcross reports whether the tenant that owns the scope holds a
// role assignment for a principal of the token's tenant: the caller or a
// group of its tenant that it is a member of.
func (h *Handler) grantedAcross(rq *rp.Request, owner string) (bool, error) {
	ids := []string{strings.ToLower(rq.OID)}
	groups, err := h.dir.TransitiveMemberOf(rq.Ctx, rq.TenantID, rq.OID)
	if err != nil && !errors.Is(err, directory.ErrNotFound) {
		return false, rp.InternalError(err)
	}
	for _, g := range groups {
		ids = append(ids, strings.ToLower(g))
	}
	as, err := h.st.ListRoleAssignments(rq.Ctx, store.RoleAssignmentQuery{TenantID: owner, PrincipalIDs: ids, PrincipalTenantID: rq.TenantID})
	if err != nil {
		return false, rp.InternalError(err)
	}
	// Only a delegation (a managed application's authorizations) lets
	// another tenant's token in; a stray assignment naming a foreign
	// principal grants nothing.
	for _, a := range as {
		if a.IsDelegation() {
			return true, nil
		}
	}
	return false, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// ---- authorization ----

// decide asks the engine whether the caller may perform action at scope.
func (h *Handler) decide(rq *rp.Request, action, scope string) (rbac.Decision, error) {
	d, err := h.rbac.Decide(rq.Ctx, rbac.Request{
		// The principal (oid) lives in the token's tenant, which owns the
		// scope: a provider's service principal provisioned into the
		// customer tenant is a principal of that tenant.
		PrincipalID: rq.OID, PrincipalTenantID: rq.TenantID, TenantID: cmpOr(rq.CrossTenant, rq.TenantID), Action: action, Scope: scope,
	})
	switch {
	case errors.Is(err, rbac.ErrInvalidScope):
		return d, rp.NewError(http.StatusBadRequest, "InvalidResourceId", "The scope '%s' is not valid.", rp.SafeText(scope))
	case errors.Is(err, rbac.ErrUnknownScope):
		return d, rp.NewError(http.StatusNotFound, "SubscriptionNotFound", "The subscription of scope '%s' could not be found.", rp.SafeText(scope))
	case err != nil:
		return d, rp.InternalError(err)
	}
	return d, nil
}

// ---- changes and audit ----

// change runs fn and the success audit record in one transaction; target
// and detail of rq go into the record.
func (h *Handler) change(rq *rp.Request, targetTenant string, fn func(tx store.Store, dir *directory.Service) error) error {
	return h.dir.InTx(rq.Ctx, func(dir *directory.Service) error {
		tx := dir.Store()
		if err := fn(tx, dir); err != nil {
			return err
		}
		rec := h.auditRecord(rq, targetTenant, audit.Success)
		if err := audit.New(tx, h.log).Record(rq.Ctx, rec); err != nil {
			return rp.InternalError(fmt.Errorf("audit: %w", err))
		}
		return nil
	})
}

func (h *Handler) recordRefusal(rq *rp.Request, code string) {
	tenant := rq.TenantID
	if rq.Path.Sub != "" {
		if ts, err := h.st.TenantsBySubscription(rq.Ctx, rq.Path.Sub); err == nil && len(ts) == 1 {
			tenant = ts[0]
		}
	}
	_ = h.audit.Record(rq.Ctx, h.auditRecord(rq, tenant, code))
}

func (h *Handler) auditRecord(rq *rp.Request, targetTenant, result string) store.AuditRecord {
	action := rq.Action
	if action == "" {
		action = "arm." + strings.ToLower(rq.R.Method)
	}
	target := rq.Target
	if target == "" {
		target = rq.Path.Scope.String()
	}
	detail := "appid=" + rq.Claims.ClientID()
	if rq.Detail != "" {
		detail += " " + rq.Detail
	}
	if len(detail) > 1000 {
		detail = detail[:1000]
	}
	return store.AuditRecord{Actor: rq.OID, ActorTenant: rq.Home, TargetTenant: targetTenant,
		Action: action, Target: target, Result: result, Detail: detail}
}
