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
// Lists page as ARM pages them: at most MaxPageSize items (or $top, where
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
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/sts"
	"github.com/tenantbridge/tenantbridge/internal/token"
)

// maxBody bounds a request body.
const maxBody = 1 << 20

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
	// continues at its nextLink; 0 or more than MaxPageSize means
	// MaxPageSize. Tests set it small to page without a thousand items.
	PageSize int
	// KEK (32 bytes) seals the keys of Service Bus authorization rules;
	// without it no rule is created and the rule operations are refused.
	KEK []byte
	// TokenMinter mints the managed identity tokens of a managed
	// application's listTokens (*sts.Service); without it listTokens
	// answers 501.
	TokenMinter TokenMinter
	// Notify, if not nil, is called after a commit that enqueued lifecycle
	// notifications in the outbox, so that the deliverer wakes.
	Notify func()
	// NotificationDeadline is how long a lifecycle notification is
	// retried; DefaultNotificationDeadline (10 hours, as Azure) when zero.
	NotificationDeadline time.Duration
}

// MaxPageSize is the most items of one page of a list: ARM's page size
// for resource and resource group lists ($top is capped at it).
const MaxPageSize = 1000

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
	kek      []byte
	minter   TokenMinter
	notify   func()
	// notifyDeadline bounds the retries of a lifecycle notification.
	notifyDeadline time.Duration
	// ficWrites are the user-assigned identities whose federated
	// credentials are being written (identities.go, oneFICWriter).
	ficWrites inFlight
}

// New returns the handler; a missing dependency panics at wiring time.
func New(cfg Config) *Handler {
	if cfg.Directory == nil || cfg.Store == nil || cfg.RBAC == nil || cfg.Verifier == nil || cfg.Audit == nil {
		panic("arm: Config needs Directory, Store, RBAC, Verifier and Audit")
	}
	if len(cfg.KEK) != 0 && len(cfg.KEK) != 32 {
		panic("arm: Config.KEK must be 32 bytes")
	}
	h := &Handler{dir: cfg.Directory, st: cfg.Store, rbac: cfg.RBAC, verifier: cfg.Verifier, audit: cfg.Audit, log: cfg.Logger, now: cfg.Now, pageSize: cfg.PageSize,
		kek: cfg.KEK, minter: cfg.TokenMinter, notify: cfg.Notify, notifyDeadline: cfg.NotificationDeadline}
	if h.notifyDeadline <= 0 {
		h.notifyDeadline = DefaultNotificationDeadline
	}
	if h.pageSize <= 0 || h.pageSize > MaxPageSize {
		h.pageSize = MaxPageSize
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h
}

// ---- errors ----

// armError is an error response.
type armError struct {
	status  int
	code    string
	message string
	// authenticate is the WWW-Authenticate header of a 401.
	authenticate string
	err          error // the cause, for logs
}

func (e *armError) Error() string {
	if e.err != nil {
		return e.code + ": " + e.message + ": " + e.err.Error()
	}
	return e.code + ": " + e.message
}

func newError(status int, code, format string, args ...any) *armError {
	return &armError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func internalError(err error) *armError {
	return &armError{status: http.StatusInternalServerError, code: "InternalServerError",
		message: "The server encountered an internal error. Please retry the request.", err: err}
}

// safeText makes client text fit to quote in a message: printable, short.
// Quotes and backslashes stay as they are, as in Azure's messages: the
// JSON encoding of the error escapes them.
func safeText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, s)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func writeError(w http.ResponseWriter, e *armError) {
	if e.authenticate != "" {
		w.Header().Set("WWW-Authenticate", e.authenticate)
	}
	w.Header().Set("x-ms-failure-cause", "gateway")
	httpx.WriteJSON(w, e.status, map[string]any{"error": map[string]string{"code": e.code, "message": e.message}})
}

// ---- requests ----

// request is one authenticated call.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	ctx    context.Context
	path   armPath
	claims token.Claims
	// tenantID is the token's tenant (tid), the tenant acted in;
	// oid the caller's object id there; home its home tenant (idp).
	tenantID, oid, home string
	// crossTenant is the tenant that owns the scope when it is not the
	// token's: a publisher's principal acting in a managed resource group
	// of its customer through a cross-tenant role assignment.
	crossTenant string
	// action and target name the operation for the audit record.
	action, target, detail string
}

// who names the caller in AuthorizationFailed: the UPN of a user, the
// application id of an application.
func (rq *request) who() string {
	if rq.claims.UPN != "" {
		return rq.claims.UPN
	}
	if rq.claims.PreferredUsername != "" && !rq.claims.IsAppOnly() {
		return rq.claims.PreferredUsername
	}
	if id := rq.claims.ClientID(); id != "" {
		return id
	}
	return rq.oid
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
	rq := &request{w: w, r: r, ctx: ctx}
	defer func() {
		if v := recover(); v != nil {
			h.log.ErrorContext(ctx, "arm: panic", "panic", v, "stack", string(debug.Stack()))
			writeError(w, internalError(nil))
		}
	}()
	if err := h.serve(rq); err != nil {
		var ae *armError
		if !errors.As(err, &ae) {
			ae = internalError(err)
		}
		if ae.status >= 500 {
			h.log.ErrorContext(ctx, "arm: request failed", "action", rq.action, "err", err)
		}
		if rq.oid != "" && (ae.status == http.StatusForbidden || (r.Method != http.MethodGet && r.Method != http.MethodHead)) {
			h.recordRefusal(rq, ae.code)
		}
		writeError(w, ae)
	}
}

func (h *Handler) serve(rq *request) error {
	path, perr := parsePath(rq.r.URL.Path)
	if err := h.authenticate(rq, path, perr == nil); err != nil {
		return err
	}
	if rq.r.URL.Query().Get("api-version") == "" {
		return newError(http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
	}
	if perr != nil {
		return newError(http.StatusBadRequest, "InvalidResourceId", "The resource id '%s' is not valid: %s", safeText(rq.r.URL.Path), safeText(perr.Error()))
	}
	rq.path = path
	m := rq.r.Method
	switch path.target {
	case targetSubscriptions:
		return h.only(rq, m, http.MethodGet, h.listSubscriptions)
	case targetSubscription:
		return h.only(rq, m, http.MethodGet, h.getSubscription)
	case targetResourceGroups:
		return h.only(rq, m, http.MethodGet, h.listResourceGroups)
	case targetResourceGroup:
		return h.serveType(rq, false, typeHandlers{get: h.getResourceGroup, put: h.putResourceGroup, del: h.deleteResourceGroup})
	case targetRoleDefinitions:
		switch {
		case m == http.MethodGet && path.name == "":
			return h.listRoleDefinitions(rq)
		case m == http.MethodGet:
			return h.getRoleDefinition(rq)
		case m == http.MethodPut && path.name != "":
			return h.putRoleDefinition(rq)
		case m == http.MethodDelete && path.name != "":
			return h.deleteRoleDefinition(rq)
		}
	case targetRoleAssignments:
		switch {
		case m == http.MethodGet && path.name == "":
			return h.listRoleAssignments(rq)
		case m == http.MethodGet:
			return h.getRoleAssignment(rq)
		case m == http.MethodPut && path.name != "":
			return h.putRoleAssignment(rq)
		case m == http.MethodDelete && path.name != "":
			return h.deleteRoleAssignment(rq)
		}
	case targetDenyAssignments:
		if m == http.MethodGet {
			if path.name == "" {
				return h.listDenyAssignments(rq)
			}
			return h.getDenyAssignment(rq)
		}
	case targetExplain:
		return h.only(rq, m, http.MethodGet, h.explain)
	case targetVaults:
		return h.vaults(rq)
	case targetIdentities, targetIdentityCredentials:
		return h.identities(rq)
	case targetSBNamespaces, targetSBQueues:
		return h.serviceBus(rq)
	case targetAppDefinitions, targetAppDefNotifications, targetApplications, targetAppListTokens:
		return h.solutions(rq) // managedapps.go
	case targetResourceList:
		return h.listResources(rq) // resourcelist.go
	case targetResource:
		return h.resource(rq)
	}
	return methodNotAllowed(m)
}

func (h *Handler) only(rq *request, method, want string, fn func(*request) error) error {
	if method != want {
		return methodNotAllowed(method)
	}
	return fn(rq)
}

// resource answers a resource id of a type this surface does not serve
// (yet): its group must exist, and then the resource does not.
func (h *Handler) resource(rq *request) error {
	if _, err := h.scopeTenant(rq); err != nil {
		return err
	}
	if rq.path.rg != "" {
		if _, err := h.st.GetResourceGroup(rq.ctx, rq.path.sub, rq.path.rg); errors.Is(err, store.ErrNotFound) {
			return rgNotFound(rq.path.rg)
		} else if err != nil {
			return internalError(err)
		}
	}
	return newError(http.StatusNotFound, "ResourceNotFound", "The Resource '%s' was not found.", safeText(rq.path.scope.String()))
}

// ---- authentication ----

// authenticate verifies the bearer token. A refused token is a 401 whose
// WWW-Authenticate names the login authority of the subscription's tenant
// when the path names a known subscription (how clients discover it),
// else of the common endpoint.
func (h *Handler) authenticate(rq *request, path armPath, pathOK bool) error {
	fail := func(code, message string) error {
		tenant := "common"
		if pathOK && path.sub != "" {
			if ts, err := h.st.TenantsBySubscription(rq.ctx, path.sub); err == nil && len(ts) == 1 {
				tenant = ts[0]
			}
		}
		return &armError{status: http.StatusUnauthorized, code: code, message: message,
			authenticate: fmt.Sprintf(`Bearer authorization_uri="%s/%s", error="invalid_token", error_description="%s"`, loginBase(rq.r), tenant, message)}
	}
	header := rq.r.Header.Get("Authorization")
	scheme, raw, _ := strings.Cut(header, " ")
	raw = strings.TrimSpace(raw)
	if header == "" {
		return fail("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
	}
	if !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return fail("AuthenticationFailed", "Authentication failed. The 'Authorization' header is provided in an invalid format.")
	}
	claims, err := h.verifier.Verify(rq.ctx, raw, Audiences...)
	if err != nil {
		h.log.InfoContext(rq.ctx, "arm: token refused", "err", err)
		switch {
		case errors.Is(err, token.ErrExpired):
			return fail("ExpiredAuthenticationToken", "The access token has expired.")
		case errors.Is(err, token.ErrTrustRevoked):
			e := fail("InvalidAuthenticationToken", "The access token was issued through a trust that has since been revoked: continuous access evaluation requires a new token.")
			if ae, ok := e.(*armError); ok {
				ae.authenticate = token.ClaimsChallenge(loginBase(rq.r)+"/common/oauth2/authorize", directory.ARMAppID, time.Now())
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
	rq.claims, rq.tenantID, rq.oid, rq.home = claims, claims.TenantID, claims.ObjectID, claims.HomeTenant()
	return nil
}

// loginBase is the login authority for the host the request came in on:
// login.microsoftonline.com, or login.{domain} for management.{domain}.
func loginBase(r *http.Request) string {
	host := strings.ToLower(r.Host)
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	if d, ok := strings.CutPrefix(host, "management."); ok && d != "azure.com" && d != "" {
		return "https://login." + d
	}
	return "https://login.microsoftonline.com"
}

// scopeTenant finds the tenant that owns the request's scope and checks
// that it is the token's: a subscription of no tenant is
// SubscriptionNotFound, one of another tenant InvalidAuthenticationTokenTenant.
// The root and management groups belong to the token's tenant.
func (h *Handler) scopeTenant(rq *request) (string, error) {
	sub := rq.path.sub
	if sub == "" {
		return rq.tenantID, nil
	}
	ts, err := h.st.TenantsBySubscription(rq.ctx, sub)
	if err != nil {
		return "", internalError(err)
	}
	if len(ts) != 1 {
		return "", newError(http.StatusNotFound, "SubscriptionNotFound", "The subscription '%s' could not be found.", safeText(sub))
	}
	if !strings.EqualFold(ts[0], rq.tenantID) {
		// A principal of another tenant that the scope's tenant has
		// granted a role (a managed application's publisher) may act
		// with a token of its own tenant, as in Azure.
		if ok, err := h.grantedAcross(rq, ts[0]); err != nil {
			return "", err
		} else if ok {
			rq.crossTenant = ts[0]
			return ts[0], nil
		}
		return "", &armError{status: http.StatusUnauthorized, code: "InvalidAuthenticationTokenTenant",
			message: fmt.Sprintf("The access token is from the wrong issuer 'https://sts.windows.net/%s/'. It must match the tenant 'https://sts.windows.net/%s/' associated with this subscription. Please use the authority (URL) '%s/%s' to get the token.",
				rq.tenantID, ts[0], loginBase(rq.r), ts[0]),
			authenticate: fmt.Sprintf(`Bearer authorization_uri="%s/%s", error="invalid_token", error_description="The access token is from the wrong issuer."`, loginBase(rq.r), ts[0])}
	}
	return ts[0], nil
}

// grantedAcross reports whether the tenant that owns the scope holds a
// role assignment for a principal of the token's tenant: the caller or a
// group of its tenant that it is a member of.
func (h *Handler) grantedAcross(rq *request, owner string) (bool, error) {
	ids := []string{strings.ToLower(rq.oid)}
	groups, err := h.dir.TransitiveMemberOf(rq.ctx, rq.tenantID, rq.oid)
	if err != nil && !errors.Is(err, directory.ErrNotFound) {
		return false, internalError(err)
	}
	for _, g := range groups {
		ids = append(ids, strings.ToLower(g))
	}
	as, err := h.st.ListRoleAssignments(rq.ctx, store.RoleAssignmentQuery{TenantID: owner, PrincipalIDs: ids, PrincipalTenantID: rq.tenantID})
	if err != nil {
		return false, internalError(err)
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
func (h *Handler) decide(rq *request, action, scope string) (rbac.Decision, error) {
	d, err := h.rbac.Decide(rq.ctx, rbac.Request{
		// The principal (oid) lives in the token's tenant, which owns the
		// scope: a provider's service principal provisioned into the
		// customer tenant is a principal of that tenant.
		PrincipalID: rq.oid, PrincipalTenantID: rq.tenantID, TenantID: cmpOr(rq.crossTenant, rq.tenantID), Action: action, Scope: scope,
	})
	switch {
	case errors.Is(err, rbac.ErrInvalidScope):
		return d, newError(http.StatusBadRequest, "InvalidResourceId", "The scope '%s' is not valid.", safeText(scope))
	case errors.Is(err, rbac.ErrUnknownScope):
		return d, newError(http.StatusNotFound, "SubscriptionNotFound", "The subscription of scope '%s' could not be found.", safeText(scope))
	case err != nil:
		return d, internalError(err)
	}
	return d, nil
}

// authorize refuses with AuthorizationFailed unless the caller may perform
// action at scope. It names the action for the audit record.
func (h *Handler) authorize(rq *request, action, scope string) error {
	rq.action = action
	d, err := h.decide(rq, action, scope)
	if err != nil {
		return err
	}
	if !d.Allowed {
		rq.detail = d.Because.String()
		if da := d.Because.Deny; da != nil {
			// Azure's refusal by a deny assignment (recorded responses, e.g.
			// of a managed application's managed resource group).
			return newError(http.StatusForbidden, "DenyAssignmentAuthorizationFailed",
				"The client '%s' with object id '%s' has permission to perform action '%s' on scope '%s'; however, the access is denied because of the deny assignment with name '%s' and Id '%s' at scope '%s'.",
				safeText(rq.who()), rq.oid, action, safeText(scope), safeText(da.Name), da.ID, safeText(da.Scope))
		}
		return newError(http.StatusForbidden, "AuthorizationFailed",
			"The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials.",
			safeText(rq.who()), rq.oid, action, safeText(scope))
	}
	return nil
}

// ---- changes and audit ----

// change runs fn and the success audit record in one transaction; target
// and detail of rq go into the record.
func (h *Handler) change(rq *request, targetTenant string, fn func(tx store.Store, dir *directory.Service) error) error {
	return h.dir.InTx(rq.ctx, func(dir *directory.Service) error {
		tx := dir.Store()
		if err := fn(tx, dir); err != nil {
			return err
		}
		rec := h.auditRecord(rq, targetTenant, audit.Success)
		if err := audit.New(tx, h.log).Record(rq.ctx, rec); err != nil {
			return internalError(fmt.Errorf("audit: %w", err))
		}
		return nil
	})
}

func (h *Handler) recordRefusal(rq *request, code string) {
	tenant := rq.tenantID
	if rq.path.sub != "" {
		if ts, err := h.st.TenantsBySubscription(rq.ctx, rq.path.sub); err == nil && len(ts) == 1 {
			tenant = ts[0]
		}
	}
	_ = h.audit.Record(rq.ctx, h.auditRecord(rq, tenant, code))
}

func (h *Handler) auditRecord(rq *request, targetTenant, result string) store.AuditRecord {
	action := rq.action
	if action == "" {
		action = "arm." + strings.ToLower(rq.r.Method)
	}
	target := rq.target
	if target == "" {
		target = rq.path.scope.String()
	}
	detail := "appid=" + rq.claims.ClientID()
	if rq.detail != "" {
		detail += " " + rq.detail
	}
	if len(detail) > 1000 {
		detail = detail[:1000]
	}
	return store.AuditRecord{Actor: rq.oid, ActorTenant: rq.home, TargetTenant: targetTenant,
		Action: action, Target: target, Result: result, Detail: detail}
}

// ---- bodies ----

// readBody decodes a JSON body leniently (ARM ignores read-only and
// unknown properties that clients echo back), within maxBody.
func readBody(rq *request, v any) error {
	if ct := rq.r.Header.Get("Content-Type"); ct != "" && !strings.Contains(strings.ToLower(ct), "json") {
		return newError(http.StatusUnsupportedMediaType, "UnsupportedMediaType", "The content media type '%s' is not supported. Only 'application/json' is supported.", safeText(ct))
	}
	body := http.MaxBytesReader(rq.w, rq.r.Body, maxBody)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return newError(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The request content size exceeds the maximum size of %d bytes.", maxBody)
		}
		return newError(http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: '%s'.", safeText(err.Error()))
	}
	if dec.More() {
		return newError(http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: 'trailing data after the JSON value'.")
	}
	return nil
}

func writeJSON(rq *request, status int, v any) error {
	if rq.r.Method == http.MethodHead {
		if status == http.StatusOK {
			status = http.StatusNoContent // ARM's answer to a HEAD that finds the resource
		}
		rq.w.WriteHeader(status)
		return nil
	}
	httpx.WriteJSON(rq.w, status, v)
	return nil
}

// list is ARM's collection shape: one page of it, and the absolute URL of
// the next page when there is one (the SDKs' pagers follow nextLink until
// it is absent).
type list[T any] struct {
	Value    []T    `json:"value"`
	NextLink string `json:"nextLink,omitempty"`
}

// ---- paging ----

// pageRequest is where one page of a list starts and how long it is.
type pageRequest struct {
	// after is the sort key of the last item of the previous page
	// (decoded from the skip token); "" for the first page.
	after string
	size  int
	// tokenName is the query parameter that carries the skip token:
	// $skiptoken for Microsoft.Resources lists, $skipToken for
	// Microsoft.Authorization's.
	tokenName string
}

// pageOf reads the paging parameters of a list request: the skip token
// (any letter case) and, where the operation takes one (top), $top, which
// caps the page at 1..MaxPageSize items.
func (h *Handler) pageOf(rq *request, tokenName string, top bool) (pageRequest, error) {
	p := pageRequest{size: h.pageSize, tokenName: tokenName}
	q := rq.r.URL.Query()
	for k, vs := range q {
		switch {
		case strings.EqualFold(k, "$skiptoken") && len(vs) > 0 && vs[0] != "":
			raw, err := base64.RawURLEncoding.DecodeString(vs[0])
			if err != nil || !utf8.Valid(raw) || len(raw) > 2048 {
				return p, newError(http.StatusBadRequest, "InvalidSkipToken", "The skip token '%s' is not valid.", safeText(vs[0]))
			}
			p.after = string(raw)
		case top && strings.EqualFold(k, "$top") && len(vs) > 0:
			n, err := strconv.Atoi(vs[0])
			if err != nil || n < 1 {
				return p, newError(http.StatusBadRequest, "InvalidQueryParameterValue", "The value '%s' of the query parameter '$top' is not valid: it must be a positive integer.", safeText(vs[0]))
			}
			p.size = min(n, MaxPageSize)
		}
	}
	return p, nil
}

// page selects one page of items, which must be sorted by key, ascending
// and unique: the items after p.after that keep accepts (nil accepts all),
// at most p.size of them. next is the key of the page's last item when
// another accepted item follows, else "".
func page[T any](p pageRequest, items []T, key func(T) string, keep func(T) (bool, error)) (out []T, next string, err error) {
	for _, it := range items {
		if p.after != "" && key(it) <= p.after {
			continue
		}
		if keep != nil {
			ok, err := keep(it)
			if err != nil {
				return nil, "", err
			}
			if !ok {
				continue
			}
		}
		if len(out) == p.size {
			return out, key(out[len(out)-1]), nil
		}
		out = append(out, it)
	}
	return out, "", nil
}

// nextLink is the absolute URL of the page after the one that ends at
// key next ("" when there is none): this request's URL with the skip
// token replaced, every other parameter ($filter, $top, api-version) kept.
func nextLink(rq *request, p pageRequest, next string) string {
	if next == "" {
		return ""
	}
	base := httpx.InfoFrom(rq.ctx).BaseURL
	if base == "" {
		base = "https://" + rq.r.Host
	}
	q := rq.r.URL.Query()
	for k := range q {
		if strings.EqualFold(k, "$skiptoken") {
			delete(q, k)
		}
	}
	q.Set(p.tokenName, base64.RawURLEncoding.EncodeToString([]byte(next)))
	return strings.TrimRight(base, "/") + rq.r.URL.EscapedPath() + "?" + q.Encode()
}

// writePage writes one page of views, sorted by key, with its nextLink.
func writePage[V any](rq *request, p pageRequest, views []V, key func(V) string) error {
	out, next, err := page(p, views, key, nil)
	if err != nil {
		return err
	}
	if out == nil {
		out = []V{}
	}
	return writeJSON(rq, http.StatusOK, list[V]{Value: out, NextLink: nextLink(rq, p, next)})
}
