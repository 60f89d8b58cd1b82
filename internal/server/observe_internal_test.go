package server

import (
	"net/http"
	"testing"
)

// errorCode reads each surface's error document as the Azure SDK does.
func TestErrorCode(t *testing.T) {
	cases := []struct {
		name   string
		header string
		body   string
		want   string
	}{
		{"Entra", "", `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}`, "AADSTS7000215"},
		{"OAuth without a number", "", `{"error":"invalid_request","error_description":"The query string is not valid."}`, "invalid_request"},
		{"Graph", "", `{"error":{"code":"Request_ResourceNotFound","message":"Resource 'x' does not exist."}}`, "Request_ResourceNotFound"},
		{"ARM", "", `{"error":{"code":"AuthorizationFailed","message":"…"}}`, "AuthorizationFailed"},
		{"Key Vault: the outer code, as azcore reports it", "", `{"error":{"code":"Forbidden","message":"…","innererror":{"code":"ForbiddenByRbac"}}}`, "Forbidden"},
		{"OData", "", `{"odata.error":{"code":"Request_BadRequest","message":{"value":"…"}}}`, "Request_BadRequest"},
		{"Service Bus REST", "", `<Error><Code>401</Code><Detail>ExpiredToken: … TrackingId:1</Detail></Error>`, "401"},
		{"the header first", "QueueNotFound", `{"error":{"code":"Other"}}`, "QueueNotFound"},
		{"HTML", "", `<!doctype html><p>Sign in failed</p>`, ""},
		{"truncated JSON", "", `{"error":{"code":"Req`, ""},
		{"empty", "", ``, ""},
	}
	for _, c := range cases {
		h := http.Header{}
		if c.header != "" {
			h.Set("x-ms-error-code", c.header)
		}
		if got := errorCode(h, []byte(c.body)); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func FuzzErrorCode(f *testing.F) {
	f.Add([]byte(`{"error":{"code":"X"}}`))
	f.Add([]byte(`{"error_codes":[1,2]}`))
	f.Add([]byte(`<a:Code>1</a:Code>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_ = errorCode(http.Header{}, body) // must not panic
	})
}
