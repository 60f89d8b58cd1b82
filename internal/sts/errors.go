package sts

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Error is a refusal in Entra ID's wire format. Clients (MSAL, azidentity,
// the Azure CLI) show error_description to people and some branch on the
// AADSTS code, so the code and the OAuth error name must be the ones Entra
// uses for the same situation.
type Error struct {
	Status      int    // HTTP status
	OAuth       string // the OAuth 2.0 "error" value, e.g. "invalid_client"
	Code        int    // the AADSTS number
	Description string // the text after "AADSTSnnn: "
	// cause is the internal error behind a server-side failure. It is
	// logged, never sent.
	cause error
}

func (e *Error) Error() string { return fmt.Sprintf("AADSTS%d: %s", e.Code, e.Description) }

// Unwrap exposes the internal cause to errors.Is/As.
func (e *Error) Unwrap() error { return e.cause }

// Result is the audit result for the refusal, e.g. "AADSTS7000215".
func (e *Error) Result() string { return "AADSTS" + strconv.Itoa(e.Code) }

// errorSpec is one row of the error table: what Entra answers for a code.
type errorSpec struct {
	status int
	oauth  string
	format string // fmt format of the description
}

// The AADSTS codes the token service answers with, and their texts, taken
// from Entra's responses. Keeping them in one table is what keeps every
// refusal of the same kind identical on the wire.
const (
	codeTenantNotFound         = 90002
	codeInvalidRequest         = 90023
	codeTransient              = 90033
	codeNoTenantInformation    = 50059
	codeUnknownInstance        = 50049
	codeMissingParameter       = 900144
	codePostOnly               = 900561
	codeUnsupportedGrantType   = 70003
	codeInvalidScope           = 70011
	codeClientCredentialsScope = 1002012
	codeClientNotFound         = 700016
	codeClientDisabled         = 7000112
	codeInvalidSecret          = 7000215
	codeNoClientCredential     = 7000218
	codeSecretExpired          = 7000222
	codeCredentialInvalid      = 70002
	codeResourceNotFound       = 500011
	codeBodyTooLarge           = 90015
	// User grants.
	codeAuthCodeInvalid   = 70000
	codeAuthCodeRedeemed  = 54005
	codeRedirectMismatch  = 500112
	codePKCEMismatch      = 501481
	codeConsentRequired   = 65001
	codeMultipleResources = 28000
	codeRefreshExpired    = 700082
	codeRefreshRevoked    = 50173
	codeRefreshMalformed  = 9002313
	codeUserNotFound      = 50034
	codeUserDisabled      = 50057
	codeOBOAudience       = 500131
	codeOBOAssertion      = 50013
	// Single-page applications (spa redirect URIs): see the table.
	codeSPAPKCERequired     = 9002325
	codeCrossOriginNotSPA   = 9002326
	codeSPANeedsCrossOrigin = 9002327
	codePublicClientSecret  = 700025
	codeSPARefreshExpired   = 700084
	// The device code grant.
	codeAuthorizationPending  = 70016
	codeSlowDown              = 70017
	codeAuthorizationDeclined = 70018
	codeDeviceCodeExpired     = 70019
	codeDeviceCodeInvalid     = 70020

	// Client assertions: certificate credentials (clientauth_certificate.go)
	// and federated identity credentials (clientauth_federated.go). See
	// docs in each entry for where the code and text come from.
	codeMalformedJWT          = 50027
	codeSubjectMismatchIssuer = 50048
	codeAssertionClientID     = 700021
	codeAssertionAudience     = 700023
	codeAssertionTime         = 700024
	codeAssertionSignature    = 700027
	codeNoFederatedRecord     = 70021
	codeFederatedIssuer       = 700211
	codeFederatedAudience     = 700212
	codeFederatedSubject      = 700213
	codeForbiddenTokenType    = 700229
	codeEntraIssuerNotAllowed = 700236
	codeExternalOIDCEndpoint  = 50166
)

// Documentation links Entra puts in its client-assertion errors.
const (
	certificateCredentialsDoc = "https://learn.microsoft.com/entra/identity-platform/certificate-credentials"
	workloadFederationDoc     = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation"
)

var errorTable = map[int]errorSpec{
	codeTenantNotFound: {http.StatusBadRequest, "invalid_request",
		"Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."},
	codeInvalidRequest:      {http.StatusBadRequest, "invalid_request", "%s"},
	codeTransient:           {http.StatusServiceUnavailable, "temporarily_unavailable", "A transient error has occurred. Please try again."},
	codeNoTenantInformation: {http.StatusBadRequest, "invalid_request", "No tenant-identifying information found in either the request or implied by any provided credentials."},
	codeUnknownInstance:     {http.StatusBadRequest, "invalid_instance", "Unknown or invalid instance."},
	codeMissingParameter:    {http.StatusBadRequest, "invalid_request", "The request body must contain the following parameter: '%s'."},
	codePostOnly:            {http.StatusBadRequest, "invalid_request", "The endpoint only accepts POST, OPTIONS requests. Received a %s request."},
	codeUnsupportedGrantType: {http.StatusBadRequest, "unsupported_grant_type",
		"The app requested an unsupported grant type '%s'."},
	codeInvalidScope: {http.StatusBadRequest, "invalid_scope",
		"The provided value for the input parameter 'scope' is not valid. The scope %s is not valid."},
	codeClientCredentialsScope: {http.StatusBadRequest, "invalid_scope",
		"The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."},
	codeClientNotFound: {http.StatusBadRequest, "unauthorized_client",
		"Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."},
	codeClientDisabled: {http.StatusBadRequest, "unauthorized_client", "Application '%s'(%s) is disabled."},
	codeInvalidSecret: {http.StatusUnauthorized, "invalid_client",
		"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'."},
	codeNoClientCredential: {http.StatusUnauthorized, "invalid_client",
		"The request body must contain the following parameter: 'client_assertion' or 'client_secret'."},
	codeSecretExpired: {http.StatusUnauthorized, "invalid_client",
		"The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."},
	codeCredentialInvalid: {http.StatusUnauthorized, "invalid_client", "Error validating credentials. %s"},
	codeResourceNotFound: {http.StatusBadRequest, "invalid_resource",
		"The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."},
	codeAuthCodeInvalid: {http.StatusBadRequest, "invalid_grant", "The provided value for the 'code' parameter is not valid."},
	codeAuthCodeRedeemed: {http.StatusBadRequest, "invalid_grant",
		"OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token."},
	codeRedirectMismatch: {http.StatusBadRequest, "invalid_grant",
		"The reply address '%s' does not match the reply address '%s' provided when requesting Authorization code."},
	codePKCEMismatch: {http.StatusBadRequest, "invalid_grant", "The Code_Verifier does not match the code_challenge supplied in the authorization request."},
	codeConsentRequired: {http.StatusBadRequest, "invalid_grant",
		"The user or administrator has not consented to use the application with ID '%s' named '%s'. Send an interactive authorization request for this user and resource."},
	codeMultipleResources: {http.StatusBadRequest, "invalid_scope",
		"Provided value for the input parameter scope is not valid because it contains more than one resource. Scope %s is not valid."},
	codeRefreshExpired:        {http.StatusBadRequest, "invalid_grant", "The refresh token has expired due to inactivity."},
	codeRefreshRevoked:        {http.StatusBadRequest, "invalid_grant", "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password, or the grant was used twice."},
	codeRefreshMalformed:      {http.StatusBadRequest, "invalid_grant", "Invalid request. Request is malformed or invalid. The refresh token is not valid."},
	codeUserNotFound:          {http.StatusBadRequest, "invalid_grant", "The user account %s does not exist in the directory."},
	codeUserDisabled:          {http.StatusBadRequest, "invalid_grant", "The user account is disabled."},
	codeAuthorizationPending:  {http.StatusBadRequest, "authorization_pending", "OAuth 2.0 device flow error. Authorization is pending. Continue polling."},
	codeSlowDown:              {http.StatusBadRequest, "slow_down", "OAuth 2.0 device flow error. Polling too fast: wait the interval between polls."},
	codeAuthorizationDeclined: {http.StatusBadRequest, "authorization_declined", "OAuth 2.0 device flow error. The user declined the authorization."},
	codeDeviceCodeExpired:     {http.StatusBadRequest, "expired_token", "Verification code expired."},
	codeDeviceCodeInvalid:     {http.StatusBadRequest, "invalid_grant", "The provided device code is not valid, or was already redeemed."},
	codeOBOAudience:           {http.StatusBadRequest, "invalid_grant", "Assertion audience does not match the Client app presenting the assertion. The audience in the assertion was not expected."},
	codeOBOAssertion:          {http.StatusBadRequest, "invalid_grant", "Assertion failed signature validation, or is not a user's access token for this application."},
	codeBodyTooLarge:          {http.StatusRequestEntityTooLarge, "invalid_request", "The request body is too large: at most %d bytes are accepted."},

	// Single-page applications. Texts from Entra's recorded responses:
	// 9002325 (MicrosoftDocs/azure-docs#93166), 9002326 with the request's
	// origin (MicrosoftDocs/azure-docs#100859; client credentials from a
	// browser), 9002327 (microsoft-authentication-library-for-js#2482),
	// 700025 for a credential a public client presents (Softeria/ms-365-mcp-server#664,
	// as "Public clients (native applications and single page apps) must not
	// use secrets or certificates when redeeming an authorization code",
	// v2-oauth2-auth-code-flow.md), 700084 for an expired SPA refresh
	// token (microsoft-authentication-library-for-js#6765).
	codeSPAPKCERequired: {http.StatusBadRequest, "invalid_request",
		"Proof Key for Code Exchange is required for cross-origin authorization code redemption."},
	codeCrossOriginNotSPA: {http.StatusBadRequest, "invalid_request",
		"Cross-origin token redemption is permitted only for the 'Single-Page Application' client-type. Request origin: '%s'."},
	codeSPANeedsCrossOrigin: {http.StatusBadRequest, "invalid_request",
		"Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests."},
	codePublicClientSecret: {http.StatusUnauthorized, "invalid_client",
		"Client is public so neither 'client_assertion' nor 'client_secret' should be presented."},
	codeSPARefreshExpired: {http.StatusBadRequest, "invalid_grant",
		"The refresh token was issued to a single page app (SPA), and therefore has a fixed, limited lifetime of 1.00:00:00, which cannot be extended. It is now expired and a new sign in request must be sent by the SPA to the sign in page. The token was issued on %s."},

	// MSAL.NET's recorded responses (tests/.../MockHelpers.cs) and the
	// error-code reference: a client_assertion that is not a JWT.
	codeMalformedJWT: {http.StatusBadRequest, "invalid_request", "JWT token is invalid or malformed."},
	// reference-error-codes.md: SubjectMismatchesIssuer.
	codeSubjectMismatchIssuer: {http.StatusUnauthorized, "invalid_client", "Subject mismatches Issuer claim in the client assertion."},
	// azidentity TROUBLESHOOTING.md (ClientAssertionCredential) and MSAL.NET's recorded response.
	codeAssertionClientID: {http.StatusUnauthorized, "invalid_client",
		"Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at " + certificateCredentialsDoc + " ."},
	// MSAL.NET issue #2746 (a recorded response): aud is not this tenant's token endpoint.
	codeAssertionAudience: {http.StatusUnauthorized, "invalid_client",
		"Client assertion audience claim does not match Realm issuer. Review the documentation at " + certificateCredentialsDoc + " ."},
	// MSAL.NET issue #4951 and Azure/login#180 (recorded responses).
	codeAssertionTime: {http.StatusUnauthorized, "invalid_client",
		"Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s. Review the documentation at " + certificateCredentialsDoc + " ."},
	// Two texts share the code (see certificateNotRegistered and
	// invalidAssertionSignature): the caller writes the whole text.
	codeAssertionSignature: {http.StatusUnauthorized, "invalid_client", "%s"},
	// Azure/azure-workload-identity#616 (recorded response): the client
	// has no federated identity credential at all.
	codeNoFederatedRecord: {http.StatusBadRequest, "invalid_request",
		"No matching federated identity record found for presented assertion. Assertion Issuer: '%s'. Assertion Subject: '%s'. Assertion Audience: '%s'. " + workloadFederationDoc},
	// The three precise variants Entra answers today (Azure/login#482,
	// #515, azure-workload-identity#1200, and recorded responses in
	// public test fixtures): no credential names the issuer; none of the
	// issuer's names the audience; none of those names the subject.
	codeFederatedIssuer: {http.StatusUnauthorized, "invalid_client",
		"No matching federated identity record found for presented assertion issuer '%s'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. " + workloadFederationDoc},
	codeFederatedAudience: {http.StatusUnauthorized, "invalid_client",
		"No matching federated identity record found for presented assertion audience '%s'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. " + workloadFederationDoc},
	codeFederatedSubject: {http.StatusUnauthorized, "invalid_client",
		"No matching federated identity record found for presented assertion subject '%s'. Please note that the matching is done using a case-sensitive comparison. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. " + workloadFederationDoc},
	// reference-error-codes.md: ForbiddenTokenType.
	codeForbiddenTokenType: {http.StatusUnauthorized, "invalid_client",
		"Only app-only tokens can be used as Federated Identity Credentials for Microsoft Entra issuer. Use an app-only access token (generated during a client credentials flow) instead of a user-delegated access token."},
	// Microsoft Q&A 2139753 (2025-01, recorded response; the code is not
	// in the error reference). Entra's "Configure an application to trust
	// a managed identity": the issuer is the tenant's own, and both the
	// application and the user-assigned managed identity belong to it.
	codeEntraIssuerNotAllowed: {http.StatusUnauthorized, "invalid_client",
		"Entra ID tokens issued by issuer '%s' may not be used for federated identity credential flows for applications or managed identities registered in this tenant."},
	// Azure/azure-workload-identity#642 (recorded response).
	codeExternalOIDCEndpoint: {http.StatusBadRequest, "invalid_request", "Request to External OIDC endpoint failed."},
}

// aadError builds the refusal for code, filling the table's text with args.
// An unknown code is a programming error; it still yields a valid response.
func aadError(code int, args ...any) *Error {
	spec, ok := errorTable[code]
	if !ok {
		spec = errorSpec{http.StatusBadRequest, "invalid_request", "The request is not valid."}
	}
	return &Error{Status: spec.status, OAuth: spec.oauth, Code: code, Description: fmt.Sprintf(spec.format, args...)}
}

// serverError is the refusal for a failure on our side (the store is down):
// the client may retry, and the cause goes to the log only.
func serverError(cause error) *Error {
	e := aadError(codeTransient)
	e.cause = cause
	return e
}

// errorBody is Entra's error document. Field order follows Entra's.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri"`
}

// entraTimestamp is the layout of Entra's error timestamps.
const entraTimestamp = "2006-01-02 15:04:05Z"

// requestIDs returns the trace id (our request id, so that a user's error
// message leads to our log line) and the correlation id (the client's
// client-request-id when it is a GUID, as Entra echoes it).
func requestIDs(r *http.Request) (traceID, correlationID string) {
	traceID = httpx.InfoFrom(r.Context()).RequestID
	if traceID == "" {
		traceID = uuid.NewString()
	}
	if id, err := uuid.Parse(r.Header.Get("client-request-id")); err == nil {
		correlationID = id.String()
	} else {
		correlationID = uuid.NewString()
	}
	return traceID, correlationID
}

// writeError sends e in Entra's shape.
func writeError(w http.ResponseWriter, r *http.Request, now time.Time, e *Error) {
	traceID, correlationID := requestIDs(r)
	ts := now.UTC().Format(entraTimestamp)
	var desc strings.Builder
	fmt.Fprintf(&desc, "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
		e.Code, e.Description, traceID, correlationID, ts)
	setNoStore(w)
	setRequestIDHeaders(w, r, traceID, correlationID)
	if e.Status == http.StatusServiceUnavailable {
		// temporarily_unavailable: "The authorization server is currently
		// unable to handle the request due to a temporary overloading or
		// maintenance" (RFC 6749 section 4.1.2.1); the Retry-After tells
		// azidentity/MSAL (azcore's retry policy retries 503) when to.
		w.Header().Set("Retry-After", store.BusyRetryAfter)
	}
	httpx.WriteJSON(w, e.Status, errorBody{
		Error:            e.OAuth,
		ErrorDescription: desc.String(),
		ErrorCodes:       []int{e.Code},
		Timestamp:        ts,
		TraceID:          traceID,
		CorrelationID:    correlationID,
		ErrorURI:         "https://login.microsoftonline.com/error?code=" + strconv.Itoa(e.Code),
	})
}

// setNoStore marks a response as never cacheable: it carries a token or
// says something about credentials.
func setNoStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
}

// setRequestIDHeaders sets the headers Entra uses to tie a response to its
// logs: x-ms-request-id always, client-request-id when the client asked for
// it back (MSAL sends return-client-request-id).
func setRequestIDHeaders(w http.ResponseWriter, r *http.Request, traceID, correlationID string) {
	w.Header().Set("x-ms-request-id", traceID)
	if strings.EqualFold(r.Header.Get("return-client-request-id"), "true") {
		w.Header().Set("client-request-id", correlationID)
	}
}
