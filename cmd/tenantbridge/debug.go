package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// --debug: every HTTP request the CLI sends (to the token service, Graph,
// Resource Manager, Key Vault, Service Bus and the operator API) and its
// response, on stderr, as az --debug shows them, without a secret: the
// headers that carry credentials, and the body members and query
// parameters that hold secrets or tokens, are printed as "REDACTED".

// debugBodyLimit bounds how much of a body --debug prints.
const debugBodyLimit = 4 << 10

// redacted stands for a secret --debug does not print.
const redacted = "REDACTED"

// secretHeaders carry credentials (lower case): bearer tokens and SAS
// (Authorization, ServiceBusAuthorization), the operator key, a workload's
// identity header (X-IDENTITY-HEADER), cookies.
var secretHeaders = []string{"authorization", "proxy-authorization", "servicebusauthorization", "x-identity-header",
	"cookie", "set-cookie", "x-ms-authorization-auxiliary", "secret"}

// secretMembers are names (lower case, without - and _) of JSON members,
// form fields and query parameters that hold a secret or a token: OAuth's
// client_secret, client_assertion, assertion, code, code_verifier,
// refresh_token, access_token, id_token and password; Graph's secretText,
// passwordProfile.password and addKey's proof; Key Vault's secret value and a
// JWK's private members; Service Bus keys and connection strings, and a
// SAS's sig; a workload's identity header; listTokens' tokens; an
// authenticator's TOTP seed, which the operator API's otpauthUri carries
// in its query (otpauth://totp/…?secret=…) and Graph's software OATH
// method names secretKey.
var secretMembers = []string{"clientsecret", "clientassertion", "assertion", "codeverifier", "refreshtoken",
	"accesstoken", "idtoken", "token", "password", "secrettext", "proof", "secret", "value", "key",
	"d", "p", "q", "dp", "dq", "qi", "k", "primarykey", "secondarykey", "primaryconnectionstring",
	"secondaryconnectionstring", "sig", "identityheader", "clientsecrettext", "otpauthuri", "secretkey"}

// isSecretName reports whether a member, field or parameter name holds a
// secret. In a form or query an OAuth authorization code is one too
// (code); in JSON, code is an error's code, which --debug is for.
func isSecretName(name string, form bool) bool {
	n := strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(name))
	return slices.Contains(secretMembers, n) || form && n == "code"
}

// debugTransport prints each request and response that passes through it.
type debugTransport struct {
	next http.RoundTripper
	mu   *sync.Mutex
	w    io.Writer
}

// debugClient makes hc print its traffic when --debug is set.
func (c *cli) debugClient(hc *http.Client) *http.Client {
	if !c.debug {
		return hc
	}
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	out := *hc
	out.Transport = debugTransport{next: next, mu: &sync.Mutex{}, w: c.stderr}
	return &out
}

func (d debugTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		clone := req.Clone(req.Context())
		clone.Body = io.NopCloser(bytes.NewReader(b))
		clone.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		req = clone
	}
	var log strings.Builder
	fmt.Fprintf(&log, "DEBUG: request: %s %s\n", req.Method, redactURL(req.URL))
	writeHeaders(&log, req.Header)
	writeBody(&log, req.Header.Get("Content-Type"), reqBody, len(reqBody))
	start := time.Now()
	resp, err := d.next.RoundTrip(req)
	elapsed := time.Since(start).Round(time.Millisecond)
	if err != nil {
		fmt.Fprintf(&log, "DEBUG: response: error after %s: %v\n", elapsed, err)
		d.print(log.String())
		return nil, err
	}
	fmt.Fprintf(&log, "DEBUG: response: %s in %s\n", resp.Status, elapsed)
	writeHeaders(&log, resp.Header)
	if resp.Body != nil {
		// Read what is printed, then hand the caller the whole body.
		head, _ := io.ReadAll(io.LimitReader(resp.Body, debugBodyLimit+1))
		size := len(head)
		if size > debugBodyLimit {
			size = -1 // more than is printed
		}
		writeBody(&log, resp.Header.Get("Content-Type"), head, size)
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	}
	d.print(log.String())
	return resp, nil
}

// print writes one exchange at once, so that concurrent requests' lines
// do not interleave.
func (d debugTransport) print(s string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	io.WriteString(d.w, s)
}

// redactURL is u with the values of secret query parameters redacted.
func redactURL(u *url.URL) string {
	if u.RawQuery == "" {
		return u.String()
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		c := *u
		c.RawQuery = redacted
		return c.String()
	}
	for k, vs := range q {
		if isSecretName(k, true) {
			for i := range vs {
				vs[i] = redacted
			}
		}
	}
	c := *u
	c.RawQuery = q.Encode()
	return c.String()
}

func writeHeaders(b *strings.Builder, h http.Header) {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		for _, v := range h[k] {
			if slices.Contains(secretHeaders, strings.ToLower(k)) {
				v = redacted
			}
			fmt.Fprintf(b, "DEBUG:   %s: %s\n", k, v)
		}
	}
}

// writeBody prints a JSON or form body with its secrets redacted, and of
// any other body only its size. size is the body's length, -1 when only a
// part of it was read.
func writeBody(b *strings.Builder, contentType string, body []byte, size int) {
	if len(body) == 0 {
		return
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	var text string
	switch {
	case mt == "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			text = fmt.Sprintf("(a form of %d bytes that does not parse)", len(body))
			break
		}
		for k, vs := range form {
			if isSecretName(k, true) {
				for i := range vs {
					vs[i] = redacted
				}
			}
		}
		text = form.Encode()
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		var v any
		if size < 0 || json.Unmarshal(body, &v) != nil {
			// A body cut short, or not JSON: nothing of it can be shown
			// without showing what the redaction would have hidden.
			text = fmt.Sprintf("(%s, more than %d bytes)", mt, len(body)-1)
			if size >= 0 {
				text = fmt.Sprintf("(%d bytes of %s that do not parse)", len(body), mt)
			}
			break
		}
		out, _ := json.Marshal(redactJSON(v))
		text = string(out)
	default:
		if size < 0 {
			text = fmt.Sprintf("(%s, more than %d bytes)", contentType, len(body)-1)
		} else {
			text = fmt.Sprintf("(%s, %d bytes)", contentType, size)
		}
	}
	fmt.Fprintf(b, "DEBUG:   body: %s\n", text)
}

// redactJSON replaces the string values of secret members, at any depth.
func redactJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if _, isString := val.(string); isString && isSecretName(k, false) {
				x[k] = redacted
				continue
			}
			x[k] = redactJSON(val)
		}
	case []any:
		for i := range x {
			x[i] = redactJSON(x[i])
		}
	}
	return v
}
