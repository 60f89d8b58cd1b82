package servicebus

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Shared Access Signature tokens, as Service Bus accepts them in the
// Authorization header:
//
//	SharedAccessSignature sr=<uri>&sig=<base64 HMAC-SHA256>&se=<unix>&skn=<rule>
//
// Sources:
//   - Azure/azure-sdk-for-go sdk/messaging/azservicebus/internal/sas/sas.go:
//     sr = strings.ToLower(url.QueryEscape(uri)); the string to sign is
//     that sr text + "\n" + expiry; the key is the rule's key string used
//     as bytes (the base64 text itself, not its decoding); sig is
//     url.QueryEscape(base64.StdEncoding(HMAC)); skn is written raw.
//   - Its sas_test.go supplies the known vector used in our tests.
//   - Azure/azure-sdk-for-python servicebus samples
//     (authenticate_using_azure_sas_credential*.py) put sr unencoded
//     ("sb://ns/queue") and sign that same text; .NET samples use
//     WebUtility/HttpUtility.UrlEncode, whose hex digits differ in case
//     (%3A vs %3a). So the signed text is the sr field exactly as sent,
//     and Verify never re-encodes it.
//   - sr forms seen: "sb://ns.servicebus.windows.net/queue" (Python, docs),
//     "amqps://ns.servicebus.windows.net/queue" (azure-service-bus-go's
//     audience), "https://ns.servicebus.windows.net/queue" (REST docs,
//     Postman collections), and a bare host ("ns.servicebus.windows.net",
//     in the Send Message docs' Authorization description).
//   - "A token is valid for every resource whose URI starts with sr"
//     (Azure docs, service-bus-messaging/service-bus-sas.md).

// Errors from ParseSAS and Verify. The handler answers all of them with
// 401; they are distinct so that the detail and the audit record can say
// which check failed.
var (
	ErrSASMalformed = errors.New("servicebus: malformed SharedAccessSignature")
	ErrSASExpired   = errors.New("servicebus: SharedAccessSignature has expired")
	ErrSASSignature = errors.New("servicebus: SharedAccessSignature signature does not match")
	ErrSASScope     = errors.New("servicebus: SharedAccessSignature does not cover this resource")
)

const (
	sasScheme = "SharedAccessSignature"
	// MaxSASLength bounds the Authorization header we will parse.
	MaxSASLength = 4 << 10
	// maxSASExpiry is 9999-12-31T23:59:59Z, the last second .NET's
	// DateTime can express; anything later is not a real token.
	maxSASExpiry = 253402300799
)

// SAS is a parsed Shared Access Signature token.
type SAS struct {
	// Resource is sr, percent-decoded: the URI the token covers.
	Resource string
	// RawResource is sr exactly as sent; it is the text that was signed.
	RawResource string
	// Signature is sig, decoded from URL and base64 encoding.
	Signature []byte
	// Expiry is se: the token is refused from this second on.
	Expiry time.Time
	// RawExpiry is se exactly as sent; it is the text that was signed.
	RawExpiry string
	// KeyName is skn, the name of the authorization rule whose key signed.
	KeyName string
}

// SignSAS makes a token for resourceURI the way azservicebus does: the URI
// is query-escaped and then lower-cased (so "%3A" becomes "%3a" and the
// host and path lose their case), expiry is whole Unix seconds, and key is
// the rule's key string as bytes. Unlike the Go SDK, the key name is
// query-escaped too, which changes nothing for ordinary rule names and
// keeps a name with '&' or '=' parsable.
func SignSAS(resourceURI, keyName string, key []byte, expiry time.Time) string {
	sr := strings.ToLower(url.QueryEscape(resourceURI))
	se := strconv.FormatInt(expiry.Unix(), 10)
	sig := base64.StdEncoding.EncodeToString(sasMAC(key, sr, se))
	return sasScheme + " sr=" + sr + "&sig=" + url.QueryEscape(sig) + "&se=" + se + "&skn=" + url.QueryEscape(keyName)
}

func sasMAC(key []byte, sr, se string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(sr + "\n" + se))
	return m.Sum(nil)
}

// ParseSAS parses an Authorization header holding a SAS token. The scheme
// name is matched case-insensitively (HTTP auth schemes are), fields may
// come in any order, and sr, sig, se and skn must each appear exactly
// once; any other field, an empty value, a non-decimal or out-of-range
// se, or a sig that is not base64 of a SHA-256 MAC is ErrSASMalformed.
// sig and sr are percent-decoded without turning '+' into a space, since
// some clients leave base64's '+' unescaped.
func ParseSAS(header string) (SAS, error) {
	var s SAS
	if len(header) > MaxSASLength {
		return s, malformed("the token is too long")
	}
	scheme, rest, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, sasScheme) {
		return s, malformed("the scheme is not SharedAccessSignature")
	}
	rest = strings.TrimSpace(rest)
	seen := map[string]bool{}
	var rawSig string
	for _, field := range strings.Split(rest, "&") {
		k, v, ok := strings.Cut(field, "=")
		if !ok || v == "" {
			return s, malformed("field %q has no value", k)
		}
		if seen[k] {
			return s, malformed("field %q appears twice", k)
		}
		seen[k] = true
		switch k {
		case "sr":
			s.RawResource = v
		case "sig":
			rawSig = v
		case "se":
			s.RawExpiry = v
		case "skn":
			name, err := url.QueryUnescape(v)
			if err != nil || name == "" {
				return s, malformed("skn is not URL-encoded")
			}
			s.KeyName = name
		default:
			return s, malformed("unknown field %q", k)
		}
	}
	for _, k := range []string{"sr", "sig", "se", "skn"} {
		if !seen[k] {
			return s, malformed("field %q is missing", k)
		}
	}
	res, err := url.PathUnescape(s.RawResource)
	if err != nil || res == "" {
		return s, malformed("sr is not URL-encoded")
	}
	s.Resource = res
	sig, err := url.PathUnescape(rawSig)
	if err != nil {
		return s, malformed("sig is not URL-encoded")
	}
	s.Signature, err = base64.StdEncoding.DecodeString(sig)
	if err != nil || len(s.Signature) != sha256.Size {
		return s, malformed("sig is not a base64 HMAC-SHA256")
	}
	if strings.Trim(s.RawExpiry, "0123456789") != "" || len(s.RawExpiry) > 12 {
		return s, malformed("se is not a Unix time in seconds")
	}
	se, err := strconv.ParseInt(s.RawExpiry, 10, 64)
	if err != nil || se > maxSASExpiry {
		return s, malformed("se is not a Unix time in seconds")
	}
	s.Expiry = time.Unix(se, 0).UTC()
	return s, nil
}

func malformed(format string, args ...any) error {
	return sasError{base: ErrSASMalformed, msg: "malformed SharedAccessSignature: " + fmt.Sprintf(format, args...)}
}

// sasError keeps a specific message while matching its sentinel.
type sasError struct {
	base error
	msg  string
}

func (e sasError) Error() string { return e.msg }
func (e sasError) Unwrap() error { return e.base }

// String renders the token back into header form. A token from ParseSAS
// renders to a header that parses to the same token.
func (s SAS) String() string {
	return sasScheme + " sr=" + s.RawResource +
		"&sig=" + url.QueryEscape(base64.StdEncoding.EncodeToString(s.Signature)) +
		"&se=" + s.RawExpiry + "&skn=" + url.QueryEscape(s.KeyName)
}

// Verify checks the token against the rule's key for a request to
// requestURI (scheme, host and path, e.g.
// "https://ns.servicebus.windows.net/orders/messages/head") at time now.
// The checks run in this order, so each error means the earlier ones
// passed:
//
//  1. ErrSASSignature: HMAC-SHA256(key, RawResource+"\n"+RawExpiry),
//     compared with hmac.Equal (constant time).
//  2. ErrSASExpired: se <= now.
//  3. ErrSASScope: the token's resource must be a prefix of requestURI.
//     The scheme is not compared, because the SDKs sign sb://, amqps://
//     and https:// forms for the same entity and the REST docs show a bare
//     host; hosts compare case-insensitively (ports only when both name
//     one); paths compare case-insensitively (azservicebus lower-cases sr,
//     and entity names are case-insensitive) on whole segments, so
//     ".../orders" covers ".../orders/messages" but not ".../orders2".
//     A requestURI with "." or ".." segments is refused.
func (s SAS) Verify(key []byte, requestURI string, now time.Time) error {
	if !hmac.Equal(sasMAC(key, s.RawResource, s.RawExpiry), s.Signature) {
		return ErrSASSignature
	}
	if !now.Before(s.Expiry) {
		return ErrSASExpired
	}
	if !sasCovers(s.Resource, requestURI) {
		return ErrSASScope
	}
	return nil
}

// sasCovers reports whether the token resource covers the request URI.
func sasCovers(resource, requestURI string) bool {
	rHost, rPath, ok := splitResource(resource)
	if !ok {
		return false
	}
	u, err := url.Parse(requestURI)
	if err != nil || u.Host == "" {
		return false
	}
	if !sameHost(rHost, u.Host) {
		return false
	}
	want := segments(rPath)
	got := segments(u.Path)
	for _, seg := range got {
		if seg == "." || seg == ".." {
			return false
		}
	}
	if len(want) > len(got) {
		return false
	}
	for i := range want {
		if !strings.EqualFold(want[i], got[i]) {
			return false
		}
	}
	return true
}

// splitResource takes "scheme://host/path", "host/path" or "host" apart.
func splitResource(resource string) (host, path string, ok bool) {
	if _, after, found := strings.Cut(resource, "://"); found {
		resource = after
	}
	host, path, _ = strings.Cut(resource, "/")
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	return host, path, host != ""
}

func sameHost(a, b string) bool {
	ah, ap := splitPort(a)
	bh, bp := splitPort(b)
	if !strings.EqualFold(ah, bh) {
		return false
	}
	return ap == "" || bp == "" || ap == bp
}

func splitPort(hostport string) (host, port string) {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 || strings.Contains(hostport[i:], "]") {
		return hostport, ""
	}
	return hostport[:i], hostport[i+1:]
}

func segments(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
