package sts

import (
	"mime"
	"net/url"
	"strings"
	"unicode/utf8"
)

// maxTokenBody is the largest token request body accepted. The largest real
// requests (a client assertion with a certificate chain, a claims challenge)
// stay well under 16 KiB; 64 KiB leaves room without inviting abuse.
const maxTokenBody = 64 << 10

// tokenForm is a token request's parameters: each name once, its value
// decoded. A parameter sent empty is the same as one not sent.
type tokenForm map[string]string

// get returns the parameter's value, "" when absent.
func (f tokenForm) get(name string) string { return f[name] }

// parseTokenRequest parses a token request body, which OAuth 2.0 requires to
// be application/x-www-form-urlencoded (RFC 6749 §3.2). It is strict,
// because every parameter may carry a credential or decide what a token
// says: a body over the limit, another content type, malformed encoding,
// invalid UTF-8, NUL bytes and a parameter sent twice are all refused (RFC 6749 §3.2:
// "Request and response parameters MUST NOT be included more than once").
// It is pure so that it can be fuzzed.
func parseTokenRequest(contentType string, body []byte) (tokenForm, *Error) {
	if len(body) > maxTokenBody {
		return nil, aadError(codeBodyTooLarge, maxTokenBody)
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil || mediaType != "application/x-www-form-urlencoded" {
		return nil, aadError(codeInvalidRequest, "The request body must be application/x-www-form-urlencoded.")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return nil, aadError(codeInvalidRequest, "The request body must be encoded as UTF-8.")
	}
	form := tokenForm{}
	for pair := range strings.SplitSeq(string(body), "&") {
		if pair == "" {
			continue
		}
		rawName, rawValue, _ := strings.Cut(pair, "=")
		name, err1 := url.QueryUnescape(rawName)
		value, err2 := url.QueryUnescape(rawValue)
		if err1 != nil || err2 != nil {
			return nil, aadError(codeInvalidRequest, "The request body is not valid form encoding.")
		}
		if name == "" || !utf8.ValidString(name) || !utf8.ValidString(value) || strings.ContainsRune(name+value, 0) {
			return nil, aadError(codeInvalidRequest, "The request body is not valid form encoding.")
		}
		if _, dup := form[name]; dup {
			return nil, aadError(codeInvalidRequest, "The request body contains the parameter '"+safeName(name)+"' more than once.")
		}
		form[name] = value
	}
	// An empty value is no value: "client_secret=" must not count as a
	// credential presented.
	for k, v := range form {
		if v == "" {
			delete(form, k)
		}
	}
	return form, nil
}

// safeName shortens and cleans a client-supplied name before it is echoed
// in an error description or an audit record.
func safeName(s string) string { return clip(s, 64) }

// clip cuts s to at most n bytes and replaces control characters and
// invalid UTF-8, so that client input cannot forge log or audit lines.
func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
}
