package oidcfed

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// token is a parsed, not yet verified, compact JWS.
type token struct {
	alg, kid     string
	claims       Assertion // KeyID and Algorithm not yet filled in
	signingInput []byte    // header "." payload, as received
	signature    []byte
}

// b64 is base64url without padding, rejecting non-zero trailing bits so
// that each signature and segment has exactly one encoding.
var b64 = base64.RawURLEncoding.Strict()

// parseToken reads raw strictly. The errors are ErrMalformed or
// ErrAlgorithm.
func parseToken(raw string) (*token, error) {
	malformed := func(format string, args ...any) (*token, error) {
		return nil, &Error{Kind: ErrMalformed, Detail: fmt.Sprintf(format, args...)}
	}
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return malformed("empty")
	}
	if len(raw) > maxTokenBytes {
		return malformed("longer than %d bytes", maxTokenBytes)
	}
	// Only the base64url alphabet and the separators: the decoder would
	// otherwise skip \r and \n, giving one token several spellings.
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return malformed("not a compact JWS: unexpected character at offset %d", i)
		}
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return malformed("not a compact JWS: %d segments, want 3", len(parts))
	}

	hdrJSON, err := b64.DecodeString(parts[0])
	if err != nil {
		return malformed("header is not base64url")
	}
	hdr, err := jsonObject(hdrJSON)
	if err != nil {
		return malformed("header is not a JSON object")
	}
	t := &token{}
	alg, ok, err := stringMember(hdr, "alg")
	if err != nil || !ok || alg == "" {
		return malformed("header alg is missing or not a string")
	}
	if !allowedAlg(alg) {
		return nil, &Error{Kind: ErrAlgorithm, Detail: fmt.Sprintf("alg %q", clip(alg))}
	}
	t.alg = alg
	if t.kid, _, err = stringMember(hdr, "kid"); err != nil {
		return malformed("header kid is not a string")
	}
	// RFC 7515 §4.1.11: critical extensions we do not understand (we
	// understand none, b64 included) make the token unusable.
	if _, ok := hdr["crit"]; ok {
		return malformed("header has crit extensions")
	}

	payload, err := b64.DecodeString(parts[1])
	if err != nil {
		return malformed("payload is not base64url")
	}
	if t.claims, err = parseClaims(payload); err != nil {
		return nil, &Error{Kind: ErrMalformed, Issuer: t.claims.Issuer, KeyID: t.kid, Detail: err.Error()}
	}
	if t.signature, err = b64.DecodeString(parts[2]); err != nil || len(t.signature) == 0 {
		return nil, &Error{Kind: ErrMalformed, Issuer: t.claims.Issuer, KeyID: t.kid, Detail: "signature is missing or not base64url"}
	}
	t.signingInput = []byte(raw[:len(parts[0])+1+len(parts[1])])
	return t, nil
}

// parseClaims reads the claims Verify reports. On error the returned
// assertion holds the issuer if it was read, for the error text.
func parseClaims(payload []byte) (Assertion, error) {
	var a Assertion
	m, err := jsonObject(payload)
	if err != nil {
		return a, errors.New("payload is not a JSON object")
	}
	var ok bool
	if a.Issuer, ok, err = stringMember(m, "iss"); err != nil || !ok || a.Issuer == "" {
		return Assertion{}, errors.New("iss is missing or not a string")
	}
	if a.Subject, ok, err = stringMember(m, "sub"); err != nil || !ok || a.Subject == "" {
		return a, errors.New("sub is missing or not a string")
	}
	if a.Audiences, err = audiences(m["aud"]); err != nil {
		return a, err
	}
	if a.Expires, ok, err = numericDate(m, "exp"); err != nil || !ok {
		return a, errors.New("exp is missing or not a number")
	}
	if a.NotBefore, _, err = numericDate(m, "nbf"); err != nil {
		return a, errors.New("nbf is not a number")
	}
	if a.IssuedAt, _, err = numericDate(m, "iat"); err != nil {
		return a, errors.New("iat is not a number")
	}
	if a.ID, _, err = stringMember(m, "jti"); err != nil {
		return a, errors.New("jti is not a string")
	}
	return a, nil
}

// jsonObject decodes a JSON object into its members. Member names are
// matched exactly (encoding/json's struct decoding would also take "ISS"
// for "iss").
func jsonObject(data []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	if m == nil { // the JSON was null
		return nil, errors.New("not an object")
	}
	return m, nil
}

// stringMember reads m[name] as a string. A member that is absent or null
// gives ok=false; one of another type is an error.
func stringMember(m map[string]json.RawMessage, name string) (s string, ok bool, err error) {
	raw, present := m[name]
	if !present || string(raw) == "null" {
		return "", false, nil
	}
	if len(raw) == 0 || raw[0] != '"' {
		return "", false, fmt.Errorf("%s is not a string", name)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, err
	}
	return s, true, nil
}

// audiences reads aud: a string or an array of strings, none empty.
func audiences(raw json.RawMessage) ([]string, error) {
	missing := errors.New("aud is missing or not a string or array of strings")
	if len(raw) == 0 {
		return nil, missing
	}
	var out []string
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, missing
		}
		out = []string{s}
	case '[':
		if err := json.Unmarshal(raw, &out); err != nil {
			return nil, missing
		}
	default:
		return nil, missing
	}
	if len(out) == 0 {
		return nil, missing
	}
	for _, s := range out {
		if s == "" {
			return nil, errors.New("aud has an empty value")
		}
	}
	return out, nil
}

// maxNumericDate is the end of year 9999: later dates are not dates.
const maxNumericDate = 253402300799

// numericDate reads m[name] as a JSON number of seconds since the epoch
// (RFC 7519 NumericDate, fractions allowed). Absent or null gives ok=false.
func numericDate(m map[string]json.RawMessage, name string) (t time.Time, ok bool, err error) {
	raw, present := m[name]
	if !present || string(raw) == "null" {
		return time.Time{}, false, nil
	}
	// A JSON number, not a string holding one.
	if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return time.Time{}, false, fmt.Errorf("%s is not a number", name)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, false, fmt.Errorf("%s is out of range", name)
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64((f-sec)*1e9)).UTC(), true, nil
}

// checkIssuerURL accepts an absolute https URL with a host and without
// userinfo, query or fragment.
func checkIssuerURL(iss string) error {
	if strings.ContainsAny(iss, "?#") {
		return errors.New("issuer has a query or fragment")
	}
	return checkHTTPSURL(iss, "issuer")
}

// checkHTTPSURL accepts an absolute https URL with a host, without
// userinfo or fragment. what names it in the error.
func checkHTTPSURL(s, what string) error {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return fmt.Errorf("%s contains whitespace or control characters", what)
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%s is not a URL", what)
	}
	switch {
	case u.Scheme != "https":
		return fmt.Errorf("%s is not an https URL", what)
	case u.Hostname() == "" || u.Opaque != "":
		return fmt.Errorf("%s has no host", what)
	case u.User != nil:
		return fmt.Errorf("%s has userinfo", what)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("%s has a fragment", what)
	}
	return nil
}
