// Package servicebus is the Service Bus data plane: the REST surface that
// unmodified Service Bus HTTP clients use to send, receive and settle
// messages.
//
// This file set holds only the wire formats, with no state and no I/O
// beyond writing a response: the BrokerProperties header, custom (user)
// properties carried as plain HTTP headers, the JSON batch-send body
// (props.go), Shared Access Signature tokens (sas.go) and the XML error
// body (wireerror.go). The broker engine and the HTTP handler live in
// other files of this package and build on these parsers; keeping the
// formats apart lets them be fuzzed and table-tested in isolation.
//
// Sources for the formats (cited again where a rule is applied):
//   - Service Bus REST reference, "Message headers and properties",
//     "Send Message", "Send Message Batch", "Peek-Lock Message"
//     (https://learn.microsoft.com/rest/api/servicebus/; mirrored in
//     tongwu-msft/azure-rest-api-specs docs-ref-conceptual/servicebus/).
//   - Service Bus REST "Introduction" page: the list of settable broker
//     properties, including ForcePersistence and ViaPartitionKey.
//   - Microsoft.Azure.ServiceBus Constants.cs: MaxMessageIdLength,
//     MaxSessionIdLength and MaxPartitionKeyLength are all 128.
package servicebus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrBadRequest is matched, through errors.Is, by every error the parsers
// in this package return for malformed client input. The handler maps it
// to HTTP 400 and uses err.Error() as the error detail, so the messages
// are written for the client.
var ErrBadRequest = errors.New("servicebus: bad request")

// badRequest carries a client-facing message and identifies as
// ErrBadRequest without putting the sentinel's text into the message.
type badRequest struct{ msg string }

func (e badRequest) Error() string        { return e.msg }
func (e badRequest) Is(target error) bool { return target == ErrBadRequest }

func badf(format string, args ...any) error {
	return badRequest{msg: fmt.Sprintf(format, args...)}
}

// Limits on client input. The id limit is Service Bus's own; the others
// are our bounds, sized well above what a real client sends.
const (
	// MaxIDLength is the longest MessageId, SessionId, ReplyToSessionId,
	// PartitionKey or ViaPartitionKey, in UTF-16 code units as .NET counts
	// (Microsoft.Azure.ServiceBus Constants: MaxMessageIdLength,
	// MaxSessionIdLength, MaxPartitionKeyLength = 128). CorrelationId,
	// Label, To and ReplyTo have no such limit in the SDKs; only
	// MaxBrokerPropertiesSize bounds them.
	MaxIDLength = 128
	// MaxBrokerPropertiesSize bounds the BrokerProperties header (or a
	// batch member's BrokerProperties object) in bytes.
	MaxBrokerPropertiesSize = 32 << 10
	// MaxUserProperties bounds the number of custom properties on one
	// message.
	MaxUserProperties = 256
	// MaxUserPropertiesSize bounds the total bytes of custom property
	// names and formatted values on one message; 64 KB is Service Bus's
	// maximum message header size on the Standard tier (Service Bus
	// quotas page).
	MaxUserPropertiesSize = 64 << 10
	// MaxBatchMessages bounds the members of one batch-send body.
	MaxBatchMessages = 500
	// maxTimeToLive is TimeSpan.MaxValue in seconds: the largest TTL a
	// .NET broker can hold, and what Service Bus reports for "never".
	maxTimeToLive = 922337203685.4775807
)

// Message states reported in BrokerProperties.State.
const (
	StateActive    = "Active"
	StateScheduled = "Scheduled"
	StateDeferred  = "Deferred"
)

// BrokerProperties is the system property set of one message, carried as
// JSON in the BrokerProperties header of a single send or receive and as
// a JSON object in each member of a batch send.
//
// A zero field means "not set" and is omitted from Header(): strings when
// empty, times when zero, TimeToLive when zero (a zero TTL is not valid on
// input), ForcePersistence when false, DeliveryCount when zero.
type BrokerProperties struct {
	// Settable by the sender.
	CorrelationId    string
	ForcePersistence bool
	Label            string
	MessageId        string
	PartitionKey     string
	ReplyTo          string
	ReplyToSessionId string
	// ScheduledEnqueueTimeUtc makes the message invisible until then.
	ScheduledEnqueueTimeUtc time.Time
	SessionId               string
	// TimeToLive is in seconds, a double, as the REST docs define it.
	TimeToLive      float64
	To              string
	ViaPartitionKey string

	// Read-only: filled by the broker on receive, ignored on send.
	DeliveryCount          int64
	EnqueuedSequenceNumber int64
	EnqueuedTimeUtc        time.Time
	LockToken              string
	LockedUntilUtc         time.Time
	SequenceNumber         int64
	// State is StateActive, StateScheduled or StateDeferred. Because the
	// broker fills all read-only fields together on a received message,
	// and 0 is a real value for EnqueuedSequenceNumber (the Peek-Lock docs'
	// example shows it), a non-empty State is what makes Header() write
	// DeliveryCount, EnqueuedSequenceNumber and SequenceNumber.
	State string
}

// wireBrokerProperties is the JSON shape of Header(). Field order is
// ordinal (byte-wise) order of the names, which is the order Service Bus
// emits them in (Peek-Lock docs example: "...","LockToken","LockedUntilUtc",...).
type wireBrokerProperties struct {
	CorrelationId           string   `json:"CorrelationId,omitempty"`
	DeliveryCount           *int64   `json:"DeliveryCount,omitempty"`
	EnqueuedSequenceNumber  *int64   `json:"EnqueuedSequenceNumber,omitempty"`
	EnqueuedTimeUtc         string   `json:"EnqueuedTimeUtc,omitempty"`
	ForcePersistence        bool     `json:"ForcePersistence,omitempty"`
	Label                   string   `json:"Label,omitempty"`
	LockToken               string   `json:"LockToken,omitempty"`
	LockedUntilUtc          string   `json:"LockedUntilUtc,omitempty"`
	MessageId               string   `json:"MessageId,omitempty"`
	PartitionKey            string   `json:"PartitionKey,omitempty"`
	ReplyTo                 string   `json:"ReplyTo,omitempty"`
	ReplyToSessionId        string   `json:"ReplyToSessionId,omitempty"`
	ScheduledEnqueueTimeUtc string   `json:"ScheduledEnqueueTimeUtc,omitempty"`
	SequenceNumber          *int64   `json:"SequenceNumber,omitempty"`
	SessionId               string   `json:"SessionId,omitempty"`
	State                   string   `json:"State,omitempty"`
	TimeToLive              *float64 `json:"TimeToLive,omitempty"`
	To                      string   `json:"To,omitempty"`
	ViaPartitionKey         string   `json:"ViaPartitionKey,omitempty"`
}

// FormatTime writes t the way Service Bus REST writes every DateTime:
// RFC 1123 with the literal zone GMT ("Wed, 02 Jul 2014 01:32:27 GMT"),
// which is the RFC 2616 form the docs name. Sub-second precision is lost,
// as it is on the real wire.
func FormatTime(t time.Time) string { return t.UTC().Format(http.TimeFormat) }

// ParseTime reads an RFC 2616 date: RFC 1123, RFC 850 or ANSI C form,
// as net/http accepts them. Surrounding spaces are ignored because the
// REST docs' own example carries one ("EnqueuedTimeUtc" : " Sun, 06 Nov
// 1994 08:49:37 GMT").
func ParseTime(s string) (time.Time, error) {
	t, err := http.ParseTime(strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// Header renders p as the BrokerProperties response header. The JSON is
// pure ASCII (non-ASCII runes are \u-escaped) so that it survives any
// HTTP stack, and '<', '>' and '&' are not HTML-escaped, as .NET's
// serializer does not escape them either.
func (p BrokerProperties) Header() string {
	w := wireBrokerProperties{
		CorrelationId:    p.CorrelationId,
		ForcePersistence: p.ForcePersistence,
		Label:            p.Label,
		LockToken:        p.LockToken,
		MessageId:        p.MessageId,
		PartitionKey:     p.PartitionKey,
		ReplyTo:          p.ReplyTo,
		ReplyToSessionId: p.ReplyToSessionId,
		SessionId:        p.SessionId,
		State:            p.State,
		To:               p.To,
		ViaPartitionKey:  p.ViaPartitionKey,
	}
	if !p.EnqueuedTimeUtc.IsZero() {
		w.EnqueuedTimeUtc = FormatTime(p.EnqueuedTimeUtc)
	}
	if !p.LockedUntilUtc.IsZero() {
		w.LockedUntilUtc = FormatTime(p.LockedUntilUtc)
	}
	if !p.ScheduledEnqueueTimeUtc.IsZero() {
		w.ScheduledEnqueueTimeUtc = FormatTime(p.ScheduledEnqueueTimeUtc)
	}
	if p.TimeToLive != 0 && !math.IsNaN(p.TimeToLive) && !math.IsInf(p.TimeToLive, 0) {
		ttl := p.TimeToLive
		w.TimeToLive = &ttl
	}
	if p.DeliveryCount != 0 || p.State != "" {
		dc := p.DeliveryCount
		w.DeliveryCount = &dc
	}
	if p.State != "" {
		esn, sn := p.EnqueuedSequenceNumber, p.SequenceNumber
		w.EnqueuedSequenceNumber, w.SequenceNumber = &esn, &sn
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		// Only strings, finite floats and ints: Encode cannot fail.
		panic("servicebus: encoding BrokerProperties: " + err.Error())
	}
	return asciiJSON(bytes.TrimRight(buf.Bytes(), "\n"))
}

// asciiJSON rewrites every non-ASCII rune of valid JSON text as a \u
// escape (a surrogate pair above U+FFFF). Non-ASCII bytes only occur
// inside JSON strings, so the result is the same JSON value.
func asciiJSON(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r < utf8.RuneSelf:
			sb.WriteByte(b[0])
		case r > 0xFFFF:
			r -= 0x10000
			fmt.Fprintf(&sb, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		default:
			fmt.Fprintf(&sb, `\u%04x`, r)
		}
		b = b[n:]
	}
	return sb.String()
}

// ParseBrokerProperties parses the BrokerProperties request header.
//
// Following the REST docs ("Message headers and properties"): properties
// may come in any order; read-only properties (DeliveryCount, LockToken,
// SequenceNumber, State, ...) and unknown properties are silently
// ignored; a null value is the same as leaving the property out. A known
// settable property with the wrong JSON type, a non-positive or non-finite
// TimeToLive, an unparsable date, an id over MaxIDLength, or SessionId and
// PartitionKey both set but different is rejected with ErrBadRequest.
// An empty header is the empty property set.
func ParseBrokerProperties(header string) (BrokerProperties, error) {
	if strings.TrimSpace(header) == "" {
		return BrokerProperties{}, nil
	}
	if len(header) > MaxBrokerPropertiesSize {
		return BrokerProperties{}, badf("BrokerProperties header is larger than %d bytes", MaxBrokerPropertiesSize)
	}
	return parseBrokerJSON([]byte(header))
}

func parseBrokerJSON(raw []byte) (BrokerProperties, error) {
	var p BrokerProperties
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return p, badf("BrokerProperties must be a JSON object")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return p, badf("BrokerProperties is not valid JSON: %v", err)
	}
	strs := []struct {
		name  string
		dst   *string
		isID  bool
		limit int
	}{
		{"CorrelationId", &p.CorrelationId, false, 0},
		{"Label", &p.Label, false, 0},
		{"MessageId", &p.MessageId, true, MaxIDLength},
		{"PartitionKey", &p.PartitionKey, true, MaxIDLength},
		{"ReplyTo", &p.ReplyTo, false, 0},
		{"ReplyToSessionId", &p.ReplyToSessionId, true, MaxIDLength},
		{"SessionId", &p.SessionId, true, MaxIDLength},
		{"To", &p.To, false, 0},
		{"ViaPartitionKey", &p.ViaPartitionKey, true, MaxIDLength},
	}
	for _, f := range strs {
		v, ok := fields[f.name]
		if !ok || isNull(v) {
			continue
		}
		if err := json.Unmarshal(v, f.dst); err != nil {
			return p, badf("BrokerProperties: %s must be a string", f.name)
		}
		if f.isID && utf16Len(*f.dst) > f.limit {
			return p, badf("BrokerProperties: %s is longer than %d characters", f.name, f.limit)
		}
	}
	if v, ok := fields["ForcePersistence"]; ok && !isNull(v) {
		if err := json.Unmarshal(v, &p.ForcePersistence); err != nil {
			return p, badf("BrokerProperties: ForcePersistence must be true or false")
		}
	}
	if v, ok := fields["TimeToLive"]; ok && !isNull(v) {
		if err := json.Unmarshal(v, &p.TimeToLive); err != nil {
			return p, badf("BrokerProperties: TimeToLive must be a number of seconds")
		}
		if !(p.TimeToLive > 0) || p.TimeToLive > maxTimeToLive {
			return p, badf("BrokerProperties: TimeToLive must be a positive number of seconds no larger than %v", maxTimeToLive)
		}
	}
	if v, ok := fields["ScheduledEnqueueTimeUtc"]; ok && !isNull(v) {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return p, badf("BrokerProperties: ScheduledEnqueueTimeUtc must be a string")
		}
		t, err := ParseTime(s)
		if err != nil {
			return p, badf("BrokerProperties: ScheduledEnqueueTimeUtc is not an RFC 2616 date such as %q", "Sun, 06 Nov 1994 08:49:37 GMT")
		}
		p.ScheduledEnqueueTimeUtc = t
	}
	if p.SessionId != "" && p.PartitionKey != "" && p.SessionId != p.PartitionKey {
		return p, badf("BrokerProperties: SessionId and PartitionKey must be equal when both are set")
	}
	return p, nil
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

// utf16Len is the length of s as .NET counts string length.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if r > 0xFFFF {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// Kind is the type of one custom property value. These are the types the
// REST header encoding can tell apart (REST docs, "Message properties").
type Kind uint8

// The custom property kinds.
const (
	KindString Kind = iota + 1
	KindBool
	KindInt    // System.Int64
	KindDouble // System.Double
	KindTime   // System.DateTime, second precision on this wire
)

var kindNames = map[Kind]string{
	KindString: "string", KindBool: "bool", KindInt: "int", KindDouble: "double", KindTime: "time",
}

// String names the kind as the storage JSON does.
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "invalid"
}

// PropertyValue is one typed custom property value. Only the field that
// matches Kind is meaningful.
type PropertyValue struct {
	Kind   Kind
	Str    string
	Bool   bool
	Int    int64
	Double float64
	Time   time.Time
}

// Constructors, for readability at call sites.
func StringValue(s string) PropertyValue  { return PropertyValue{Kind: KindString, Str: s} }
func BoolValue(b bool) PropertyValue      { return PropertyValue{Kind: KindBool, Bool: b} }
func IntValue(i int64) PropertyValue      { return PropertyValue{Kind: KindInt, Int: i} }
func DoubleValue(f float64) PropertyValue { return PropertyValue{Kind: KindDouble, Double: f} }
func TimeValue(t time.Time) PropertyValue { return PropertyValue{Kind: KindTime, Time: t.UTC()} }

// Equal reports whether v and o are the same kind and value; times compare
// as instants, whatever their location.
func (v PropertyValue) Equal(o PropertyValue) bool {
	if v.Kind != o.Kind {
		return false
	}
	switch v.Kind {
	case KindString:
		return v.Str == o.Str
	case KindBool:
		return v.Bool == o.Bool
	case KindInt:
		return v.Int == o.Int
	case KindDouble:
		return v.Double == o.Double || (math.IsNaN(v.Double) && math.IsNaN(o.Double))
	case KindTime:
		return v.Time.Equal(o.Time)
	}
	return true
}

// reservedHeaders are request/response headers that are never custom
// properties: ParseUserProperties skips them and WriteUserProperties never
// writes a property under one of these names. Keys are lower case.
//
// Why each group is here:
//   - Service Bus REST's own headers: Authorization, BrokerProperties,
//     Content-Type (the message's content type, stored separately),
//     Location (peek-lock response) — REST docs, Send/Peek-Lock Message.
//   - .NET's restricted headers, which the REST docs say are excluded
//     from properties ("Any property name that corresponds to the
//     restricted HTTP header (for example, Connection, Expect, and so
//     on), is also excluded"): Accept, Connection, Content-Length,
//     Content-Type, Date, Expect, Host, If-Modified-Since, Keep-Alive,
//     Proxy-Connection, Range, Referer, Transfer-Encoding, Upgrade,
//     User-Agent.
//   - Hop-by-hop and framing headers (RFC 9110 §7.6.1, RFC 9112): TE,
//     Trailer, Proxy-Authenticate, Proxy-Authorization.
//   - Headers HTTP stacks and SDK pipelines add on their own, never meant
//     as message data: Cache-Control, Pragma, Cookie, Origin, Via,
//     Forwarded, X-Real-Ip, Server, WWW-Authenticate, and the trace
//     context headers Traceparent, Tracestate, Baggage, Request-Id and
//     Correlation-Context (W3C Trace Context; .NET's HttpClient
//     diagnostics handler adds Request-Id/Correlation-Context).
//
// reservedPrefixes extend this to families: "x-ms-" (x-ms-retrypolicy,
// x-ms-client-request-id, x-ms-version, ... added by Azure clients),
// "accept-", "content-" (representation metadata such as
// Content-Encoding), "if-" (conditional requests), "x-forwarded-",
// "proxy-" and "sec-" (browser fetch metadata).
var reservedHeaders = map[string]bool{
	"authorization": true, "brokerproperties": true, "content-type": true, "location": true,
	"accept": true, "connection": true, "content-length": true, "date": true, "expect": true,
	"host": true, "keep-alive": true, "range": true, "referer": true,
	"transfer-encoding": true, "upgrade": true, "user-agent": true,
	"te": true, "trailer": true,
	"cache-control": true, "pragma": true, "cookie": true, "origin": true, "via": true,
	"forwarded": true, "x-real-ip": true, "server": true, "www-authenticate": true,
	"traceparent": true, "tracestate": true, "baggage": true, "request-id": true,
	"correlation-context": true,
}

var reservedPrefixes = []string{"x-ms-", "accept-", "content-", "if-", "x-forwarded-", "proxy-", "sec-"}

// IsReservedHeader reports whether name (any case) is a header that is
// never a custom property; see reservedHeaders for the list and sources.
func IsReservedHeader(name string) bool {
	l := strings.ToLower(name)
	if reservedHeaders[l] {
		return true
	}
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

// ParseUserProperties picks the custom properties out of a send request's
// headers: every header that IsReservedHeader does not exclude.
//
// Names: Go's net/http canonicalises request header names
// ("order-time" arrives as "Order-Time"), so the case the client sent is
// lost; properties are stored under the canonical name. A header sent
// twice is rejected, since one property cannot have two values.
//
// Values are typed as the REST docs ("Message properties") prescribe:
// a value in double quotes is a DateTime if its content is an RFC 2616
// date, otherwise the string between the quotes; an unquoted true or
// false (case-sensitive) is a bool; then an Int64; then a Double. The
// docs go on to say anything else rejects the message, but the same docs'
// Send Message example sends "Priority: High" and "Customer: 12345,ABC"
// unquoted, gets 201, and Peek-Lock returns them as "High" and
// "12345,ABC" strings. We follow the recorded exchange: any other
// unquoted value is a string. Surrounding spaces and tabs are dropped as
// HTTP does. Values with control characters or invalid UTF-8, names that
// are not HTTP tokens, more than MaxUserProperties properties or more
// than MaxUserPropertiesSize bytes are rejected with ErrBadRequest.
func ParseUserProperties(h http.Header) (map[string]PropertyValue, error) {
	props := make(map[string]PropertyValue)
	size := 0
	for name, values := range h {
		if IsReservedHeader(name) {
			continue
		}
		if !validName(name) {
			return nil, badf("custom property name %q is not a valid HTTP header name", truncate(name))
		}
		if len(values) != 1 {
			return nil, badf("custom property %q is sent more than once", name)
		}
		if len(props) == MaxUserProperties {
			return nil, badf("a message has at most %d custom properties", MaxUserProperties)
		}
		v, err := ParseUserProperty(values[0])
		if err != nil {
			return nil, badf("custom property %q: %v", name, err)
		}
		size += propertySize(name, v)
		if size > MaxUserPropertiesSize {
			return nil, badf("custom properties are larger than %d bytes", MaxUserPropertiesSize)
		}
		props[name] = v
	}
	return props, nil
}

// ParseUserProperty types one custom property header value; see
// ParseUserProperties for the rules.
func ParseUserProperty(raw string) (PropertyValue, error) {
	if !utf8.ValidString(raw) {
		return PropertyValue{}, badf("value is not valid UTF-8")
	}
	if i := strings.IndexFunc(raw, isCTL); i >= 0 {
		return PropertyValue{}, badf("value contains a control character")
	}
	s := strings.Trim(raw, " \t")
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		inner := s[1 : len(s)-1]
		if t, err := http.ParseTime(inner); err == nil {
			return TimeValue(t), nil
		}
		return StringValue(inner), nil
	}
	switch s {
	case "true":
		return BoolValue(true), nil
	case "false":
		return BoolValue(false), nil
	}
	if isInteger(s) {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return IntValue(i), nil
		}
		// Too big for Int64: .NET falls through to Double, and so do we.
	}
	if isDecimal(s) {
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return DoubleValue(f), nil
		}
	}
	return StringValue(s), nil
}

// FormatUserProperty writes v as Service Bus writes a custom property
// header on receive (Peek-Lock docs example: Priority: "High"): strings
// and dates in double quotes, dates in RFC 1123 GMT form, bools and
// numbers bare. A Double always carries a '.' or an exponent so that it
// reads back as a Double, not an Int64.
func FormatUserProperty(v PropertyValue) string {
	switch v.Kind {
	case KindString:
		return `"` + v.Str + `"`
	case KindBool:
		return strconv.FormatBool(v.Bool)
	case KindInt:
		return strconv.FormatInt(v.Int, 10)
	case KindDouble:
		s := strconv.FormatFloat(v.Double, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eEnN") { // NaN and Inf have no digits to extend
			s += ".0"
		}
		return s
	case KindTime:
		return `"` + FormatTime(v.Time) + `"`
	}
	return `""`
}

// WriteUserProperties sets one header per custom property on a receive
// response. Names are written exactly as stored (the map key is set
// directly, bypassing canonicalisation), so a batch-sent "priority" goes
// out as "priority". Names that IsReservedHeader excludes or that are not
// HTTP tokens are skipped, as Service Bus skips restricted names.
func WriteUserProperties(h http.Header, props map[string]PropertyValue) {
	for name, v := range props {
		if IsReservedHeader(name) || !validName(name) {
			continue
		}
		h[name] = []string{FormatUserProperty(v)}
	}
}

// storedValue is the storage JSON of a PropertyValue: the kind by name
// and the value in its natural JSON form (a time as RFC 3339).
type storedValue struct {
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
}

// MarshalJSON keeps the kind, so an Int64 5 and a Double 5.0 stay apart
// in storage.
func (v PropertyValue) MarshalJSON() ([]byte, error) {
	var val any
	switch v.Kind {
	case KindString:
		val = v.Str
	case KindBool:
		val = v.Bool
	case KindInt:
		val = strconv.FormatInt(v.Int, 10) // a string: exact for every int64
	case KindDouble:
		if math.IsNaN(v.Double) || math.IsInf(v.Double, 0) {
			return nil, fmt.Errorf("servicebus: property value %v cannot be stored", v.Double)
		}
		val = v.Double
	case KindTime:
		val = v.Time.UTC().Format(time.RFC3339Nano)
	default:
		return nil, fmt.Errorf("servicebus: property value has no kind")
	}
	raw, err := json.Marshal(val)
	if err != nil {
		return nil, err
	}
	return json.Marshal(storedValue{Type: v.Kind.String(), Value: raw})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (v *PropertyValue) UnmarshalJSON(b []byte) error {
	var sv storedValue
	if err := json.Unmarshal(b, &sv); err != nil {
		return err
	}
	var out PropertyValue
	var err error
	switch sv.Type {
	case "string":
		out.Kind = KindString
		err = json.Unmarshal(sv.Value, &out.Str)
	case "bool":
		out.Kind = KindBool
		err = json.Unmarshal(sv.Value, &out.Bool)
	case "int":
		out.Kind = KindInt
		var s string
		if err = json.Unmarshal(sv.Value, &s); err == nil {
			out.Int, err = strconv.ParseInt(s, 10, 64)
		}
	case "double":
		out.Kind = KindDouble
		err = json.Unmarshal(sv.Value, &out.Double)
	case "time":
		out.Kind = KindTime
		var s string
		if err = json.Unmarshal(sv.Value, &s); err == nil {
			out.Time, err = time.Parse(time.RFC3339Nano, s)
			out.Time = out.Time.UTC()
		}
	default:
		err = fmt.Errorf("unknown property type %q", sv.Type)
	}
	if err != nil {
		return fmt.Errorf("servicebus: stored property value: %w", err)
	}
	*v = out
	return nil
}

// MarshalUserProperties encodes custom properties for storage, keeping
// each value's kind.
func MarshalUserProperties(props map[string]PropertyValue) ([]byte, error) {
	if props == nil {
		props = map[string]PropertyValue{}
	}
	return json.Marshal(props)
}

// UnmarshalUserProperties decodes what MarshalUserProperties wrote.
func UnmarshalUserProperties(b []byte) (map[string]PropertyValue, error) {
	props := map[string]PropertyValue{}
	if err := json.Unmarshal(b, &props); err != nil {
		return nil, err
	}
	return props, nil
}

// BatchMessage is one member of a batch-send body.
type BatchMessage struct {
	Body           []byte
	Properties     BrokerProperties
	UserProperties map[string]PropertyValue
}

// ParseBatch parses a batch-send body (Content-Type
// application/vnd.microsoft.servicebus.json; the "...yml" in the old
// Send Message Batch page is a typo the live page corrects):
//
//	[{"Body":"This is the first message","BrokerProperties":{"Label":"M1"},
//	  "UserProperties":{"Priority":"Low"}}, ...]
//
// Body is the message text itself, not base64: the docs' example sends
// plain text and no decoding step is documented. A missing Body is an
// empty body. BrokerProperties follows ParseBrokerProperties' rules.
// UserProperties values are typed by JSON: a string is a string (no date
// sniffing; JSON says what it is), true/false a bool, a number without
// '.', 'e' or 'E' that fits an Int64 an Int64, any other number a Double;
// null, objects and arrays are rejected. Unknown member keys are ignored,
// as unknown broker properties are. The body's total size is the
// caller's to bound (the handler reads it through a limit).
func ParseBatch(body []byte) ([]BatchMessage, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '[' {
		return nil, badf("a batch must be a JSON array of messages")
	}
	var members []json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil {
		return nil, badf("the batch is not valid JSON: %v", err)
	}
	if len(members) == 0 {
		return nil, badf("a batch must hold at least one message")
	}
	if len(members) > MaxBatchMessages {
		return nil, badf("a batch holds at most %d messages", MaxBatchMessages)
	}
	out := make([]BatchMessage, 0, len(members))
	for i, raw := range members {
		m, err := parseBatchMember(raw)
		if err != nil {
			return nil, badf("batch message %d: %v", i, err)
		}
		out = append(out, m)
	}
	return out, nil
}

func parseBatchMember(raw json.RawMessage) (BatchMessage, error) {
	var m BatchMessage
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return m, badf("must be a JSON object")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return m, badf("%v", err)
	}
	if v, ok := fields["Body"]; ok && !isNull(v) {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return m, badf("Body must be a string")
		}
		m.Body = []byte(s)
	}
	if v, ok := fields["BrokerProperties"]; ok && !isNull(v) {
		p, err := parseBrokerJSON(v)
		if err != nil {
			return m, err
		}
		m.Properties = p
	}
	m.UserProperties = map[string]PropertyValue{}
	if v, ok := fields["UserProperties"]; ok && !isNull(v) {
		props, err := parseJSONUserProperties(v)
		if err != nil {
			return m, err
		}
		m.UserProperties = props
	}
	return m, nil
}

func parseJSONUserProperties(raw json.RawMessage) (map[string]PropertyValue, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, badf("UserProperties must be a JSON object")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, badf("UserProperties: %v", err)
	}
	if len(fields) > MaxUserProperties {
		return nil, badf("a message has at most %d custom properties", MaxUserProperties)
	}
	props := make(map[string]PropertyValue, len(fields))
	seen := make(map[string]string, len(fields))
	size := 0
	for name, v := range fields {
		if !validName(name) {
			return nil, badf("custom property name %q is not a valid HTTP header name", truncate(name))
		}
		// Names travel as HTTP headers on receive, where case is lost.
		if other, dup := seen[strings.ToLower(name)]; dup {
			return nil, badf("custom properties %q and %q differ only in case", other, name)
		}
		seen[strings.ToLower(name)] = name
		pv, err := jsonPropertyValue(v)
		if err != nil {
			return nil, badf("custom property %q: %v", name, err)
		}
		size += propertySize(name, pv)
		if size > MaxUserPropertiesSize {
			return nil, badf("custom properties are larger than %d bytes", MaxUserPropertiesSize)
		}
		props[name] = pv
	}
	return props, nil
}

func jsonPropertyValue(v json.RawMessage) (PropertyValue, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return PropertyValue{}, badf("missing value")
	}
	switch c := v[0]; {
	case c == '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return PropertyValue{}, badf("%v", err)
		}
		if strings.IndexFunc(s, isCTL) >= 0 {
			return PropertyValue{}, badf("value contains a control character, which an HTTP header cannot carry")
		}
		return StringValue(s), nil
	case c == 't' || c == 'f':
		var b bool
		if err := json.Unmarshal(v, &b); err != nil {
			return PropertyValue{}, badf("%v", err)
		}
		return BoolValue(b), nil
	case c == '-' || (c >= '0' && c <= '9'):
		s := string(v)
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return IntValue(i), nil
			}
		}
		var f float64
		if err := json.Unmarshal(v, &f); err != nil {
			return PropertyValue{}, badf("number out of range")
		}
		return DoubleValue(f), nil
	}
	return PropertyValue{}, badf("value must be a string, number or boolean")
}

// MarshalBatch writes messages in the batch-send body format that
// ParseBatch reads. Bodies are written as JSON strings, so a body that is
// not valid UTF-8 does not survive; the REST batch format has no binary
// form.
func MarshalBatch(msgs []BatchMessage) ([]byte, error) {
	type member struct {
		Body             string                     `json:"Body"`
		BrokerProperties json.RawMessage            `json:"BrokerProperties"`
		UserProperties   map[string]json.RawMessage `json:"UserProperties,omitempty"`
	}
	out := make([]member, 0, len(msgs))
	for _, m := range msgs {
		mm := member{Body: string(m.Body), BrokerProperties: json.RawMessage(m.Properties.Header())}
		if len(m.UserProperties) > 0 {
			mm.UserProperties = make(map[string]json.RawMessage, len(m.UserProperties))
		}
		for name, v := range m.UserProperties {
			var raw []byte
			var err error
			switch v.Kind {
			case KindString:
				raw, err = json.Marshal(v.Str)
			case KindBool:
				raw, err = json.Marshal(v.Bool)
			case KindInt:
				raw = []byte(strconv.FormatInt(v.Int, 10))
			case KindDouble:
				raw = []byte(FormatUserProperty(v))
				if !json.Valid(raw) {
					err = fmt.Errorf("property %q: %v is not a JSON number", name, v.Double)
				}
			case KindTime:
				// JSON has no date type; a batch carries dates as strings.
				raw, err = json.Marshal(FormatTime(v.Time))
			default:
				err = fmt.Errorf("property %q has no kind", name)
			}
			if err != nil {
				return nil, fmt.Errorf("servicebus: %w", err)
			}
			mm.UserProperties[name] = raw
		}
		out = append(out, mm)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// propertySize is what one property costs as a response header: name and
// formatted value. Measuring the formatted form, not the input, makes the
// bound the same however the client spelled the value, so whatever is
// accepted once is accepted again after a format and re-parse.
func propertySize(name string, v PropertyValue) int {
	return len(name) + len(FormatUserProperty(v))
}

// validName reports whether s is an RFC 9110 token, the only form an
// HTTP header name can take.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isCTL reports the characters an HTTP field value may not hold: controls
// other than horizontal tab, and DEL.
func isCTL(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7F }

func isInteger(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// isDecimal accepts [+-]digits[.digits][(e|E)[+-]digits] with at least
// one digit in the mantissa: the plain decimal form .NET's double.Parse
// reads. It keeps out what strconv.ParseFloat would otherwise also take
// (hex floats, "Inf", "NaN", underscores).
func isDecimal(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	mant, exp, hasExp := strings.Cut(strings.ToLower(s), "e")
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := func(x string) bool { return strings.Trim(x, "0123456789") == "" }
	if !digits(intPart) || !digits(frac) || intPart+frac == "" {
		return false
	}
	if hasExp {
		if exp != "" && (exp[0] == '+' || exp[0] == '-') {
			exp = exp[1:]
		}
		return exp != "" && digits(exp)
	}
	return true
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
