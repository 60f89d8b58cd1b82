package sts

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/audit"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// The managed identity endpoint, in the shape of App Service's (api-version
// 2019-08-01), which MSAL and azidentity's ManagedIdentityCredential call
// when IDENTITY_ENDPOINT and IDENTITY_HEADER are set:
//
//	GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=https://vault.azure.net[&client_id=|&object_id=|&mi_res_id=]
//	X-IDENTITY-HEADER: {IDENTITY_HEADER}
//
//	200 {"access_token":"…","expires_on":"1700000000","resource":"…","token_type":"Bearer","client_id":"…"}
//
// The server serves it at /{tenant}/msi/token. The header value is a
// workload's secret (directory.AuthenticateWorkload): it binds the caller
// to the identities granted to that workload and to nothing else. The
// token is an app-only token of the identity: appid/azp its client id,
// appidacr/azpacr "2", oid = sub its object id, xms_mirid its resource id,
// roles granted to it on the resource, in the version the resource accepts.
//
// Refusals use App Service's shape, {"statusCode":…,"message":…,"correlationId":…}:
//
//	401  X-IDENTITY-HEADER missing, or not a valid header of a workload of the tenant
//	400  api-version other than 2019-08-01; resource missing; more than one of
//	     client_id/object_id/mi_res_id; an identity the workload does not have
//	     ("Unable to load the proper Managed Identity.", as App Service says);
//	     an unknown resource or disabled identity (the AADSTS text in message)
//	404  the tenant in the path does not exist
//	405  a method other than GET
//	503  the store failed; the client may retry

const managedIdentityAPIVersion = "2019-08-01"

// maxIdentityHeader bounds X-IDENTITY-HEADER (a header is about 80 bytes).
const maxIdentityHeader = 1 << 10

// managedIdentityResponse is App Service's token response.
type managedIdentityResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresOn   string `json:"expires_on"`
	Resource    string `json:"resource"`
	TokenType   string `json:"token_type"`
	ClientID    string `json:"client_id"`
}

// managedIdentityErrorBody is App Service's error document.
type managedIdentityErrorBody struct {
	StatusCode    int    `json:"statusCode"`
	Message       string `json:"message"`
	CorrelationID string `json:"correlationId"`
}

// miError is a refusal of the managed identity endpoint.
type miError struct {
	status  int
	message string
	result  string // the audit result
	cause   error  // logged, never sent
}

func miRefusal(status int, message string) *miError {
	return &miError{status: status, message: message, result: "HTTP" + strconv.Itoa(status)}
}

// miFromAAD carries an AADSTS refusal (unknown resource, disabled
// identity) in App Service's shape, as App Service relays Entra's.
func miFromAAD(e *Error) *miError {
	status := http.StatusBadRequest
	if e.Code == codeTransient {
		status = http.StatusServiceUnavailable
	}
	return &miError{status: status, message: e.Error(), result: e.Result(), cause: e.cause}
}

func miServerError(cause error) *miError {
	e := miRefusal(http.StatusServiceUnavailable, "A transient error has occurred. Please try again.")
	e.cause = cause
	return e
}

// miRequest is a managed identity token request and what has been learnt about it.
type miRequest struct {
	tenantRef string
	tenant    store.Tenant
	resource  string
	selector  directory.IdentitySelector
	// claimedWorkload is the workload id the header names, before it is
	// checked; workload and identity are set once they are known.
	claimedWorkload string
	workload        *directory.Workload
	identity        *directory.ServicePrincipal
	baseURL         string
	now             time.Time
}

// handleManagedIdentity serves GET /{tenant}/msi/token.
func (s *Service) handleManagedIdentity(w http.ResponseWriter, r *http.Request) {
	mr := &miRequest{tenantRef: r.PathValue("tenant"), baseURL: s.miIssuer, now: s.now()}
	var issued *issuedToken
	var e *miError
	if r.Method == http.MethodGet {
		issued, e = s.managedIdentityToken(r, mr)
	} else {
		w.Header().Set("Allow", http.MethodGet)
		e = miRefusal(http.StatusMethodNotAllowed, "The managed identity endpoint accepts only GET requests.")
	}
	if err := s.recordManagedIdentity(r.Context(), mr, e); err != nil && e == nil {
		// A token that is not on record is not issued.
		issued, e = nil, miServerError(err)
	}
	if e != nil {
		s.refuseManagedIdentity(w, r, e)
		return
	}
	s.issued(r.Context(), grantManagedIdentity, "managed_identity", "", issued)
	traceID, _ := requestIDs(r)
	setNoStore(w)
	w.Header().Set("X-CORRELATION-ID", traceID)
	httpx.WriteJSON(w, http.StatusOK, managedIdentityResponse{
		AccessToken: issued.accessToken,
		ExpiresOn:   strconv.FormatInt(issued.claims.Expires, 10),
		Resource:    mr.resource,
		TokenType:   "Bearer",
		ClientID:    mr.identity.AppID,
	})
}

// managedIdentityToken checks the request, authenticates the workload,
// picks its identity and mints the token.
func (s *Service) managedIdentityToken(r *http.Request, mr *miRequest) (*issuedToken, *miError) {
	ctx := r.Context()
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, miRefusal(http.StatusBadRequest, "The query string is not valid.")
	}
	for name, values := range q {
		if len(values) > 1 {
			return nil, miRefusal(http.StatusBadRequest, "The query parameter '"+safeName(name)+"' is given more than once.")
		}
	}
	if v := q.Get("api-version"); v != managedIdentityAPIVersion {
		return nil, miRefusal(http.StatusBadRequest, "The api-version '"+safeName(v)+"' is not supported; use "+managedIdentityAPIVersion+".")
	}
	mr.resource, _ = cutSuffixFold(q.Get("resource"), "/.default")
	if mr.resource == "" {
		return nil, miRefusal(http.StatusBadRequest, "The request must name the resource the token is for in the 'resource' query parameter.")
	}
	mr.selector = directory.IdentitySelector{
		ClientID:   q.Get("client_id"),
		ObjectID:   firstNonEmpty(q.Get("object_id"), q.Get("principal_id")),
		ResourceID: firstNonEmpty(q.Get("mi_res_id"), q.Get("msi_res_id")),
	}
	if (q.Get("object_id") != "" && q.Get("principal_id") != "") || (q.Get("mi_res_id") != "" && q.Get("msi_res_id") != "") {
		return nil, miRefusal(http.StatusBadRequest, "Only one of client_id, object_id and mi_res_id may be given.")
	}

	header := r.Header.Get("X-IDENTITY-HEADER")
	if header == "" {
		return nil, miRefusal(http.StatusUnauthorized, "The X-IDENTITY-HEADER header is required.")
	}
	if len(header) > maxIdentityHeader {
		return nil, miRefusal(http.StatusUnauthorized, "The X-IDENTITY-HEADER header is not valid.")
	}
	if id, _, ok := strings.Cut(strings.TrimSpace(header), "."); ok {
		if _, err := uuid.Parse(id); err == nil {
			mr.claimedWorkload = id
		}
	}
	t, e := s.resolveTenant(ctx, mr.tenantRef)
	if e != nil {
		if e.Code == codeTenantNotFound {
			return nil, miRefusal(http.StatusNotFound, "Tenant '"+safeName(mr.tenantRef)+"' not found.")
		}
		return nil, miFromAAD(e)
	}
	mr.tenant = t
	w, err := s.dir.AuthenticateWorkload(ctx, t.ID, header)
	if errors.Is(err, directory.ErrWorkloadHeader) {
		return nil, miRefusal(http.StatusUnauthorized, "The X-IDENTITY-HEADER header is not valid.")
	}
	if err != nil {
		return nil, miServerError(err)
	}
	mr.workload = w

	mi, err := s.dir.WorkloadIdentity(ctx, w, mr.selector)
	if msg, ok := directory.IsInvalid(err); ok {
		return nil, miRefusal(http.StatusBadRequest, msg)
	}
	if errors.Is(err, directory.ErrNotFound) || (err == nil && !mi.IsManagedIdentity()) {
		return nil, miRefusal(http.StatusBadRequest, "Unable to load the proper Managed Identity.")
	}
	if err != nil {
		return nil, miServerError(err)
	}
	mr.identity = mi
	if !mi.AccountEnabled {
		return nil, miFromAAD(aadError(codeClientDisabled, mi.AppID, mi.DisplayName))
	}
	issued, e := s.issueAppToken(ctx, appTokenRequest{
		baseURL:      mr.baseURL,
		tenant:       t,
		tenantName:   t.Name,
		resourceName: mr.resource,
		client:       &client{appID: mi.AppID, homeTenant: t.ID, sp: mi, acr: "2", method: "managed_identity"},
		now:          mr.now,
	})
	if e != nil {
		return nil, miFromAAD(e)
	}
	return issued, nil
}

// recordManagedIdentity audits a managed identity token, issued or refused:
// the identity acted (or, before it is known, the workload that claimed to).
func (s *Service) recordManagedIdentity(ctx context.Context, mr *miRequest, e *miError) error {
	actor := mr.claimedWorkload
	switch {
	case mr.identity != nil:
		actor = mr.identity.ID
	case mr.workload != nil:
		actor = mr.workload.ID
	}
	target := mr.tenant.ID
	if target == "" {
		target = safeName(mr.tenantRef)
	}
	result := audit.Success
	if e != nil {
		result = e.result
	}
	return s.audit.Record(ctx, store.AuditRecord{
		Actor:        actor,
		ActorTenant:  mr.tenant.ID,
		TargetTenant: target,
		Action:       "token.issue",
		Target:       clip(mr.resource, 256),
		Result:       result,
		Detail:       "managed identity",
	})
}

// refuseManagedIdentity logs a server-side failure and sends the refusal.
func (s *Service) refuseManagedIdentity(w http.ResponseWriter, r *http.Request, e *miError) {
	if e.cause != nil {
		s.log.ErrorContext(r.Context(), "sts: managed identity request failed", "path", r.URL.Path, "err", e.cause)
	}
	traceID, _ := requestIDs(r)
	setNoStore(w)
	w.Header().Set("X-CORRELATION-ID", traceID)
	httpx.WriteJSON(w, e.status, managedIdentityErrorBody{StatusCode: e.status, Message: e.message, CorrelationID: traceID})
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
