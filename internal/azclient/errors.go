package azclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// ResponseError is an error response from Graph, ARM or the operator API:
// {"error":{"code":...,"message":...}}. It unwraps to the
// *azcore.ResponseError of the same response, when there is one.
type ResponseError struct {
	StatusCode int
	Code       string // e.g. "Request_ResourceNotFound"
	Message    string
	RequestID  string // the server's x-ms-request-id (or request-id), if it sent one
	Method     string
	URL        string // without the query string

	wrapped error
}

// Error is one line: the service's code and message, and the status.
func (e *ResponseError) Error() string {
	msg := oneLine(e.Message)
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	if e.Code != "" {
		return fmt.Sprintf("%s: %s (HTTP %d)", e.Code, msg, e.StatusCode)
	}
	return fmt.Sprintf("%s (HTTP %d)", msg, e.StatusCode)
}

// Unwrap returns the azcore.ResponseError, if any.
func (e *ResponseError) Unwrap() error { return e.wrapped }

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// newResponseError builds a ResponseError from a response whose body is
// (or can be) read with body.
func newResponseError(resp *http.Response, body []byte, wrapped error) *ResponseError {
	e := &ResponseError{StatusCode: resp.StatusCode, wrapped: wrapped}
	if resp.Request != nil {
		e.Method = resp.Request.Method
		u := *resp.Request.URL
		u.RawQuery = ""
		e.URL = u.String()
	}
	e.RequestID = resp.Header.Get("x-ms-request-id")
	if e.RequestID == "" {
		e.RequestID = resp.Header.Get("request-id")
	}
	var odata struct {
		Error json.RawMessage `json:"error"`
		// OAuth-style errors.
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &odata) == nil && len(odata.Error) > 0 {
		var inner struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		var s string
		switch {
		case json.Unmarshal(odata.Error, &inner) == nil:
			e.Code, e.Message = inner.Code, inner.Message
		case json.Unmarshal(odata.Error, &s) == nil:
			e.Code, e.Message = s, odata.Description
		}
	}
	if e.Message == "" && e.Code == "" {
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 200 || !isPrintable(e.Message) {
			e.Message = ""
		}
	}
	return e
}

// responseError reads resp (through azcore, which caches the body) into a
// ResponseError.
func responseError(resp *http.Response) error {
	azErr := runtime.NewResponseError(resp)
	body, _ := runtime.Payload(resp)
	return newResponseError(resp, body, azErr)
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\t' && r != '\r' {
			return false
		}
	}
	return true
}

// oneLine collapses runs of white space, including newlines, into one space.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

var aadstsCode = regexp.MustCompile(`AADSTS\d+`)

// TokenError is what the token service said when it refused a token.
type TokenError struct {
	StatusCode  int
	OAuthError  string // the OAuth error, e.g. "unauthorized_client"
	Code        string // the AADSTS code, e.g. "AADSTS700016", if any
	Description string // the first sentence group of error_description, without trace ids
}

// AsTokenError extracts the token service's refusal from an azidentity
// error (also when wrapped by an azcore pipeline). ok is false if err is not
// a refusal by the token endpoint.
func AsTokenError(err error) (te TokenError, ok bool) {
	var af *azidentity.AuthenticationFailedError
	if !errors.As(err, &af) {
		return te, false
	}
	if af.RawResponse == nil {
		// azidentity keeps the message only inside its own Error text.
		if m := aadstsCode.FindString(af.Error()); m != "" {
			return TokenError{Code: m, Description: firstLine(af.Error())}, true
		}
		return te, false
	}
	te.StatusCode = af.RawResponse.StatusCode
	body, _ := runtime.Payload(af.RawResponse)
	var oauth struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(body, &oauth)
	te.OAuthError = oauth.Error
	te.Description = trimTrace(oauth.Description)
	te.Code = aadstsCode.FindString(oauth.Description)
	if te.Description == "" {
		te.Description = oauth.Error
	}
	if te.Description == "" {
		te.Description = http.StatusText(te.StatusCode)
	}
	return te, true
}

// trimTrace keeps an Entra error description up to its trace and
// correlation ids, on one line.
func trimTrace(s string) string {
	for _, marker := range []string{"Trace ID:", "Correlation ID:", "Timestamp:"} {
		if i := strings.Index(s, marker); i >= 0 {
			s = s[:i]
		}
	}
	return oneLine(s)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(s)
}

// Describe renders any error from this package's clients (or from
// azidentity) as one line fit for a person: token refusals show their
// AADSTS code and description, service errors their code and message, and
// anything else its text with the line breaks folded.
func Describe(err error) string {
	if err == nil {
		return ""
	}
	if te, ok := AsTokenError(err); ok {
		if te.Code != "" && !strings.Contains(te.Description, te.Code) {
			return "token request refused: " + te.Code + ": " + te.Description
		}
		return "token request refused: " + te.Description
	}
	var re *ResponseError
	if errors.As(err, &re) {
		// Keep any context the caller added in front of the service's message.
		msg := err.Error()
		if !strings.Contains(msg, "\n") {
			return msg
		}
		return re.Error()
	}
	var af *azidentity.AuthenticationFailedError
	if errors.As(err, &af) {
		return "authentication failed: " + firstLine(af.Error())
	}
	return oneLine(err.Error())
}
