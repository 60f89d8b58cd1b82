package server_test

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/server"
)

// surfaceFormat checks that an error body is in a surface's own format.
type surfaceFormat func(body []byte, status int) error

// entraError is the token service's: error, error_description starting
// with the AADSTS code, error_codes.
func entraError(body []byte, _ int) error {
	var doc struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Codes       []int  `json:"error_codes"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return err
	}
	if doc.Error == "" || len(doc.Codes) == 0 || !strings.HasPrefix(doc.Description, fmt.Sprintf("AADSTS%d: ", doc.Codes[0])) {
		return fmt.Errorf("not Entra's error document")
	}
	return nil
}

// codeMessageError is {"error":{"code","message"}}: Graph's OData error,
// Resource Manager's, Key Vault's, the operator API's and the front
// door's own (421).
func codeMessageError(body []byte, _ int) error {
	var doc struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return err
	}
	if doc.Error == nil || doc.Error.Code == "" || doc.Error.Message == "" {
		return fmt.Errorf(`not {"error":{"code","message"}}`)
	}
	return nil
}

// serviceBusError is <Error><Code>status</Code><Detail>…</Detail></Error>.
func serviceBusError(body []byte, status int) error {
	var doc struct {
		XMLName xml.Name `xml:"Error"`
		Code    int      `xml:"Code"`
		Detail  string   `xml:"Detail"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil {
		return err
	}
	if doc.Code != status || doc.Detail == "" {
		return fmt.Errorf("code %d, detail %q", doc.Code, doc.Detail)
	}
	return nil
}

// Every host the router serves answers unknown paths, wrong methods and
// junk (invalid UTF-8, NUL, percent-encoded dot-dot, overlong segments)
// with a 4xx in its own error format: never a 5xx, never Go's text/plain
// "404 page not found" or "405 method not allowed".
func TestUnknownRequestsAnswerInEachSurfacesFormat(t *testing.T) {
	r := start(t, server.Config{CustomDomain: "tenantbridge.test"})
	c := r.client()
	junk := []string{
		"/", "/nope", "/nope/deeper/still", "/%ff", "/%ff%fe/%c0%af", "/%00", "/a%00b/c",
		"/%2e%2e/%2e%2e/etc/passwd", "/a/%2e%2e/b", "/%25ff", "/" + strings.Repeat("x", 4000),
		"/common/%ff/v2.0", "/v1.0/%ff", "/v1.0/applications/%ff%fe", "/subscriptions/%ff",
		"/secrets/%ff?api-version=7.4", "/secrets/a%00?api-version=7.4", "/q%ff/messages", "/q/messages/%ff/%fe",
		"/_operator/v1/%ff", "/_operator/%00",
	}
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH", "PROPFIND"}
	hosts := []struct {
		host   string
		format surfaceFormat
	}{
		{"login.microsoftonline.com", entraError},
		{"login.tenantbridge.test", entraError},
		{"sts.windows.net", entraError},
		{"graph.microsoft.com", codeMessageError},
		{"management.azure.com", codeMessageError},
		{"nosuchvault.vault.azure.net", codeMessageError},
		{"nosuchns.servicebus.windows.net", serviceBusError},
		{"nosuchns.servicebus.tenantbridge.test", serviceBusError},
		{"elsewhere.example.com", codeMessageError},
		{"127.0.0.1", nil}, // the bare address: the operator API or the token service, by path
	}
	failures := 0
	for _, h := range hosts {
		for _, path := range junk {
			for _, m := range methods {
				if failures > 20 {
					t.Fatal("too many failures")
				}
				// Names the certificate lacks are reached under one it has,
				// with their own Host header, as a misconfigured client would.
				urlHost := h.host
				if urlHost == "sts.windows.net" || urlHost == "elsewhere.example.com" {
					urlHost = "localhost"
				}
				req, err := http.NewRequest(m, "https://"+urlHost+path, nil)
				if err != nil {
					t.Fatalf("%s %s: %v", m, path, err)
				}
				req.Host = h.host
				if m != "GET" {
					req.Body, req.ContentLength = io.NopCloser(strings.NewReader("x=1")), 3
				}
				res, err := c.Do(req)
				if err != nil {
					t.Errorf("%s https://%s%.60s: %v", m, h.host, path, err)
					failures++
					continue
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				format := h.format
				if format == nil {
					format = entraError
					if strings.HasPrefix(res.Request.URL.Path, "/_operator/") {
						format = codeMessageError
					}
				}
				what := fmt.Sprintf("%s https://%s%.60s", m, h.host, path)
				if res.StatusCode < 400 || res.StatusCode > 499 {
					t.Errorf("%s: %d %.200s, want a 4xx", what, res.StatusCode, body)
					failures++
					continue
				}
				if strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
					t.Errorf("%s: %d text/plain %.100q", what, res.StatusCode, body)
					failures++
					continue
				}
				if err := format(body, res.StatusCode); err != nil {
					t.Errorf("%s: %d %.200s: %v", what, res.StatusCode, body, err)
					failures++
				}
			}
		}
	}
}
