package graph

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/httpx"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// graphError is a failure in Graph's own terms: the HTTP status and the
// OData error code and message the caller sees. Handlers return it (or a
// directory error, which toGraphError translates) and the endpoint wrapper
// writes it, so every error body has the same shape.
type graphError struct {
	status  int
	code    string
	message string
	cause   error // logged for 500s, never shown
	// challenge replaces the 401's WWW-Authenticate (a continuous access
	// evaluation claims challenge).
	challenge string
}

func (e *graphError) Error() string { return e.code + ": " + e.message }

// Unwrap exposes the cause, so that errors.Is sees through a graphError.
func (e *graphError) Unwrap() error { return e.cause }

// The error codes Graph uses for the directory's endpoints.
const (
	codeBadRequest          = "Request_BadRequest"
	codeNotFound            = "Request_ResourceNotFound"
	codeUnsupportedQuery    = "Request_UnsupportedQuery"
	codeDuplicateKey        = "Request_MultipleObjectsWithSameKeyValue"
	codeDenied              = "Authorization_RequestDenied"
	codeInvalidToken        = "InvalidAuthenticationToken"
	codeUnknownSegment      = "BadRequest"
	codeInternalServerError = "InternalServerError"
	// codeServiceNotAvailable is Graph's 503, sent with Retry-After
	// (https://learn.microsoft.com/graph/errors).
	codeServiceNotAvailable = "serviceNotAvailable"
)

func badRequest(format string, args ...any) *graphError {
	return &graphError{status: http.StatusBadRequest, code: codeBadRequest, message: fmt.Sprintf(format, args...)}
}

func unsupportedQuery(format string, args ...any) *graphError {
	return &graphError{status: http.StatusBadRequest, code: codeUnsupportedQuery, message: fmt.Sprintf(format, args...)}
}

// notFound is Graph's 404 for an object id (or name) that does not resolve
// in the caller's tenant. The same answer is given for an object that
// exists in another tenant, so that tenants cannot probe each other.
func notFound(id string) *graphError {
	return &graphError{status: http.StatusNotFound, code: codeNotFound,
		message: fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", id)}
}

// duplicateKey is Graph's 409 for creating an object whose own key is
// taken: a second service principal of an application in a tenant, or a
// second federated credential of the same name. Taken property values
// (identifierUris, userPrincipalName) and existing references are 400s, as
// Graph answers them; see conflictError.
func duplicateKey(format string, args ...any) *graphError {
	return &graphError{status: http.StatusConflict, code: codeDuplicateKey, message: fmt.Sprintf(format, args...)}
}

// errDenied is the answer to a caller whose token lacks the permission the
// operation needs, or who may act only on objects it owns and does not own
// this one.
var errDenied = &graphError{status: http.StatusForbidden, code: codeDenied,
	message: "Insufficient privileges to complete the operation."}

func unauthenticated(message string) *graphError {
	return &graphError{status: http.StatusUnauthorized, code: codeInvalidToken, message: message}
}

// internalError is the 500 that hides cause, or serviceBusy when cause is
// store contention: every unexpected error a handler meets comes here.
func internalError(cause error) *graphError {
	if errors.Is(cause, store.ErrBusy) {
		return serviceBusy(cause)
	}
	return &graphError{status: http.StatusInternalServerError, code: codeInternalServerError,
		message: "An internal server error occurred. Please retry the request.", cause: cause}
}

// errAuditFailed is what a change gets when its audit record could not be
// written. The change and the record share one transaction, so the change
// was rolled back: an unaudited change never looks successful, and never
// happens.
func errAuditFailed(cause error) *graphError {
	if errors.Is(cause, store.ErrBusy) {
		return serviceBusy(cause)
	}
	return &graphError{status: http.StatusInternalServerError, code: codeInternalServerError,
		message: "The change was not made because its audit record could not be written. Please retry the request.", cause: cause}
}

// toGraphError translates what a handler returned. id names the object a
// directory.ErrNotFound is about, for the 404 message.
func toGraphError(err error, id string) *graphError {
	var ge *graphError
	if errors.As(err, &ge) {
		return ge
	}
	if msg, ok := directory.IsInvalid(err); ok {
		e := badRequest("%s", msg)
		if code := directory.InvalidCode(err); code != "" {
			e.code = code
		}
		return e
	}
	switch {
	case errors.Is(err, directory.ErrPasswordBusy):
		// Every password-hashing slot stayed busy: nothing was changed,
		// and the client should retry after a moment.
		return serviceBusy(err)
	case errors.Is(err, directory.ErrNotFound):
		return notFound(id)
	case errors.Is(err, directory.ErrConflict):
		return conflictError(err)
	}
	return internalError(err)
}

// serviceBusy is Graph's 503 serviceNotAvailable (writeError adds the
// Retry-After), for a request that could not be served for contention
// (password hashing, the store's write lock): nothing was changed, and
// the client should retry after a moment. Graph documents 503 "The
// service is temporarily unavailable ... You may repeat the request after
// a delay ... a Retry-After header" (https://learn.microsoft.com/graph/errors).
func serviceBusy(cause error) *graphError {
	return &graphError{status: http.StatusServiceUnavailable, code: codeServiceNotAvailable,
		message: "The service is temporarily unavailable. Please retry the request after a few seconds.", cause: cause}
}

// conflictError is Graph's answer to a taken unique value: 400
// Request_BadRequest with the directory's message, e.g. "Another object with
// the same value for property identifierUris already exists."
func conflictError(err error) *graphError {
	msg, _ := directory.ConflictMessage(err)
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return badRequest("%s", msg)
}

// errorBody is Graph's OData error document.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code       string     `json:"code"`
	Message    string     `json:"message"`
	InnerError innerError `json:"innerError"`
}

// innerError carries what support needs to find a request: its time and ids.
type innerError struct {
	Date            string `json:"date"`
	RequestID       string `json:"request-id"`
	ClientRequestID string `json:"client-request-id"`
}

// writeError sends e in Graph's shape. The request ids were put on the
// response headers by ServeHTTP; the body repeats them.
func writeError(w http.ResponseWriter, r *http.Request, e *graphError) {
	if e.status == http.StatusUnauthorized {
		challenge := e.challenge
		if challenge == "" {
			challenge = `Bearer realm="", client_id="` + directory.GraphAppID + `"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
	}
	if e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", store.BusyRetryAfter)
	}
	body := errorBody{Error: errorDetail{Code: e.code, Message: e.message, InnerError: innerError{
		Date:            time.Now().UTC().Format("2006-01-02T15:04:05"),
		RequestID:       httpx.InfoFrom(r.Context()).RequestID,
		ClientRequestID: w.Header().Get("client-request-id"),
	}}}
	httpx.WriteJSON(w, e.status, body)
}
