package rp

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Error is an error response in Resource Manager's envelope,
// {"error":{"code","message"}}.
type Error struct {
	Status  int
	Code    string
	Message string
	// Authenticate is the WWW-Authenticate header of a 401.
	Authenticate string
	// RetryAfter is the Retry-After header (seconds) of a 429 or 503.
	RetryAfter string
	// Err is the cause, for logs.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Message + ": " + e.Err.Error()
	}
	return e.Code + ": " + e.Message
}

// NewError is an error response with a formatted message.
func NewError(status int, code, format string, args ...any) error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// InternalError is the 500 that hides err (which the door logs), or, when
// err is store contention (store.ErrBusy), the throttling answer Busy:
// every handler's unexpected store error comes through here, so that a
// write that could not get the database's lock in time is retried by the
// client instead of failing.
func InternalError(err error) error {
	if errors.Is(err, store.ErrBusy) {
		return Busy(err)
	}
	return &Error{Status: http.StatusInternalServerError, Code: "InternalServerError",
		Message: "The server encountered an internal error. Please retry the request.", Err: err}
}

// Busy is Resource Manager's throttling answer, 429 TooManyRequests with
// Retry-After, for a request the store could not serve for lock
// contention: nothing was changed. Resource Manager and resource
// providers answer 429 with a Retry-After "the number of seconds your
// application should wait" for throttling and for "an overload condition
// that isn't directly caused by your request"
// (https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling),
// and azcore's retry policy retries a 429 after its Retry-After.
func Busy(err error) error {
	return &Error{Status: http.StatusTooManyRequests, Code: "TooManyRequests",
		Message:    "The request could not be processed because the service is busy. Please retry the request after the interval in the Retry-After header.",
		RetryAfter: store.BusyRetryAfter, Err: err}
}

// AsError is err as an error response: itself, or an internal error
// (InternalError, which answers store contention as Busy).
func AsError(err error) *Error {
	var e *Error
	if !errors.As(err, &e) {
		return InternalError(err).(*Error)
	}
	return e
}

// SafeText makes client text fit to quote in a message: printable, short.
// Quotes and backslashes stay as they are, as in Azure's messages: the
// JSON encoding of the error escapes them.
func SafeText(s string) string {
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

// BadRequest is a 400 BadRequest.
func BadRequest(format string, args ...any) error {
	return NewError(http.StatusBadRequest, "BadRequest", format, args...)
}

// MethodNotAllowed refuses a method the path does not take.
func MethodNotAllowed(m string) error {
	return NewError(http.StatusMethodNotAllowed, "MethodNotAllowed", "The requested method '%s' is not allowed for this resource.", SafeText(m))
}

// ResourceGroupNotFound is the 404 of a missing resource group.
func ResourceGroupNotFound(name string) error {
	return NewError(http.StatusNotFound, "ResourceGroupNotFound", "Resource group '%s' could not be found.", SafeText(name))
}

// ResourceNotFound is the 404 of a missing resource of type typ.
func ResourceNotFound(typ, rg, name string) error {
	return NewError(http.StatusNotFound, "ResourceNotFound", "The Resource '%s/%s' under resource group '%s' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
		typ, SafeText(name), SafeText(rg))
}

// ParentNotFound is the 404 of a child path whose parent is missing.
func ParentNotFound(typ, name string) error {
	return NewError(http.StatusNotFound, "ParentResourceNotFound", "Can not perform requested operation on nested resource. Parent resource '%s' of type '%s' not found.", SafeText(name), typ)
}

// IsResourceNotFound reports whether err is a ResourceNotFound refusal.
func IsResourceNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == "ResourceNotFound"
}

// AsParent turns a ResourceNotFound of the parent of a child path into
// ParentResourceNotFound; other errors pass unchanged.
func AsParent(err error, typ, name string) error {
	if IsResourceNotFound(err) {
		return ParentNotFound(typ, name)
	}
	return err
}

// LocationMoved refuses to move an existing resource to another location.
func LocationMoved(name, old, rg, location string) error {
	return NewError(http.StatusBadRequest, "InvalidResourceLocation", "The resource '%s' already exists in location '%s' in resource group '%s'. A resource with the same name cannot be created in location '%s'.",
		name, old, rg, SafeText(location))
}

// ErrNothingToDo rolls back a change that found nothing to change.
var ErrNothingToDo = errors.New("arm: nothing to do")

// NothingIfNotFound is ErrNothingToDo for a ResourceNotFound, else err.
func NothingIfNotFound(err error) error {
	if IsResourceNotFound(err) {
		return ErrNothingToDo
	}
	return err
}
