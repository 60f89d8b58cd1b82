package servicebus

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

var jul2 = time.Date(2014, 7, 2, 1, 32, 27, 0, time.UTC)

func TestParseBrokerProperties(t *testing.T) {
	long := strings.Repeat("x", MaxIDLength+1)
	ok128 := strings.Repeat("é", MaxIDLength) // 128 UTF-16 units, 256 bytes
	tests := []struct {
		name   string
		header string
		want   BrokerProperties
		bad    string // substring of the error, "" for success
	}{
		{name: "empty", header: "", want: BrokerProperties{}},
		{name: "docs send example", header: `{"Label":"M1","State":"Active","TimeToLive":10}`,
			want: BrokerProperties{Label: "M1", TimeToLive: 10}},
		{name: "all settable", header: `{"CorrelationId":"c","ForcePersistence":true,"Label":"l","MessageId":"m",
			"PartitionKey":"s","ReplyTo":"r","ReplyToSessionId":"rs","ScheduledEnqueueTimeUtc":"Wed, 02 Jul 2014 01:32:27 GMT",
			"SessionId":"s","TimeToLive":0.5,"To":"t","ViaPartitionKey":"v"}`,
			want: BrokerProperties{CorrelationId: "c", ForcePersistence: true, Label: "l", MessageId: "m", PartitionKey: "s",
				ReplyTo: "r", ReplyToSessionId: "rs", ScheduledEnqueueTimeUtc: jul2, SessionId: "s", TimeToLive: 0.5, To: "t", ViaPartitionKey: "v"}},
		{name: "read-only and unknown ignored",
			header: `{"DeliveryCount":3,"LockToken":"x","SequenceNumber":9,"State":"Deferred","EnqueuedTimeUtc":"garbage","TimeToLiveTimeSpan":"0.00:00:40","label":5}`,
			want:   BrokerProperties{}},
		{name: "null is absent", header: `{"Label":null,"TimeToLive":null}`, want: BrokerProperties{}},
		{name: "docs date with leading space", header: `{"ScheduledEnqueueTimeUtc":" Sun, 06 Nov 1994 08:49:37 GMT"}`,
			want: BrokerProperties{ScheduledEnqueueTimeUtc: time.Date(1994, 11, 6, 8, 49, 37, 0, time.UTC)}},
		{name: "RFC 850 date", header: `{"ScheduledEnqueueTimeUtc":"Sunday, 06-Nov-94 08:49:37 GMT"}`,
			want: BrokerProperties{ScheduledEnqueueTimeUtc: time.Date(1994, 11, 6, 8, 49, 37, 0, time.UTC)}},
		{name: "id of 128 UTF-16 units", header: `{"MessageId":"` + ok128 + `"}`, want: BrokerProperties{MessageId: ok128}},
		{name: "max TTL", header: `{"TimeToLive":922337203685.4775}`, want: BrokerProperties{TimeToLive: 922337203685.4775}},

		{name: "not JSON", header: `Label=M1`, bad: "JSON object"},
		{name: "truncated", header: `{"Label":"M1"`, bad: "not valid JSON"},
		{name: "array", header: `["Label"]`, bad: "JSON object"},
		{name: "null", header: `null`, bad: "JSON object"},
		{name: "trailing data", header: `{"Label":"a"} {}`, bad: "not valid JSON"},
		{name: "label number", header: `{"Label":5}`, bad: "Label must be a string"},
		{name: "TTL string", header: `{"TimeToLive":"10"}`, bad: "TimeToLive must be a number"},
		{name: "TTL negative", header: `{"TimeToLive":-1}`, bad: "positive"},
		{name: "TTL zero", header: `{"TimeToLive":0}`, bad: "positive"},
		{name: "TTL huge", header: `{"TimeToLive":1e300}`, bad: "positive"},
		{name: "TTL overflow", header: `{"TimeToLive":1e400}`, bad: "TimeToLive must be a number"},
		{name: "TTL NaN", header: `{"TimeToLive":NaN}`, bad: "not valid JSON"},
		{name: "ForcePersistence string", header: `{"ForcePersistence":"true"}`, bad: "ForcePersistence"},
		{name: "bad date", header: `{"ScheduledEnqueueTimeUtc":"2014-07-02T01:32:27Z"}`, bad: "RFC 2616"},
		{name: "date number", header: `{"ScheduledEnqueueTimeUtc":5}`, bad: "must be a string"},
		{name: "session != partition", header: `{"SessionId":"a","PartitionKey":"b"}`, bad: "must be equal"},
		{name: "long MessageId", header: `{"MessageId":"` + long + `"}`, bad: "MessageId is longer than 128"},
		{name: "long SessionId", header: `{"SessionId":"` + long + `"}`, bad: "SessionId is longer"},
		{name: "long PartitionKey", header: `{"PartitionKey":"` + long + `"}`, bad: "PartitionKey is longer"},
		{name: "long ReplyToSessionId", header: `{"ReplyToSessionId":"` + long + `"}`, bad: "ReplyToSessionId is longer"},
		{name: "long ViaPartitionKey", header: `{"ViaPartitionKey":"` + long + `"}`, bad: "ViaPartitionKey is longer"},
		{name: "header too large", header: `{"Label":"` + strings.Repeat("a", MaxBrokerPropertiesSize) + `"}`, bad: "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseBrokerProperties(tc.header)
			if tc.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("err = %v, want one containing %q", err, tc.bad)
				}
				if !errors.Is(err, ErrBadRequest) {
					t.Fatalf("err %v is not ErrBadRequest", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestBrokerPropertiesHeader(t *testing.T) {
	// The Peek-Lock docs' response header, byte for byte.
	p := BrokerProperties{
		DeliveryCount: 1, EnqueuedSequenceNumber: 0, EnqueuedTimeUtc: jul2, Label: "M1",
		LockToken: "7da9cfd5-40d5-4bb1-8d64-ec5a52e1c547", LockedUntilUtc: jul2.Add(time.Minute),
		MessageId: "31907572164743c38741631acd554d6f", SequenceNumber: 2, State: StateActive, TimeToLive: 10,
	}
	want := `{"DeliveryCount":1,"EnqueuedSequenceNumber":0,"EnqueuedTimeUtc":"Wed, 02 Jul 2014 01:32:27 GMT","Label":"M1","LockToken":"7da9cfd5-40d5-4bb1-8d64-ec5a52e1c547","LockedUntilUtc":"Wed, 02 Jul 2014 01:33:27 GMT","MessageId":"31907572164743c38741631acd554d6f","SequenceNumber":2,"State":"Active","TimeToLive":10}`
	if got := p.Header(); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if got := (BrokerProperties{}).Header(); got != `{}` {
		t.Fatalf("empty: got %s", got)
	}
	// Non-UTC times are written in GMT; HTML characters are not escaped;
	// non-ASCII is \u-escaped so the header stays ASCII.
	cet := time.FixedZone("CET", 3600)
	p = BrokerProperties{Label: "a<b>&c é 😀", ScheduledEnqueueTimeUtc: jul2.In(cet), TimeToLive: 1.5}
	want = `{"Label":"a<b>&c \u00e9 \ud83d\ude00","ScheduledEnqueueTimeUtc":"Wed, 02 Jul 2014 01:32:27 GMT","TimeToLive":1.5}`
	if got := p.Header(); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	var back map[string]any
	if err := json.Unmarshal([]byte(p.Header()), &back); err != nil || back["Label"] != "a<b>&c é 😀" {
		t.Fatalf("header does not decode back: %v %v", back, err)
	}
}

func TestBrokerPropertiesRoundTrip(t *testing.T) {
	p := BrokerProperties{CorrelationId: "c\"x\\", ForcePersistence: true, Label: "ü", MessageId: "m",
		PartitionKey: "s", ReplyTo: "r", ReplyToSessionId: "rs", ScheduledEnqueueTimeUtc: jul2, SessionId: "s",
		TimeToLive: 0.1, To: "t", ViaPartitionKey: "v"}
	got, err := ParseBrokerProperties(p.Header())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("got  %+v\nwant %+v", got, p)
	}
}

func TestParseUserProperty(t *testing.T) {
	tests := []struct {
		raw  string
		want PropertyValue
	}{
		{`"High"`, StringValue("High")},
		{`"12345,ABC"`, StringValue("12345,ABC")},
		{`""`, StringValue("")},
		{`"Fri, 04 Mar 2011 08:49:37 GMT"`, TimeValue(time.Date(2011, 3, 4, 8, 49, 37, 0, time.UTC))},
		{`"Friday, 04-Mar-11 08:49:37 GMT"`, TimeValue(time.Date(2011, 3, 4, 8, 49, 37, 0, time.UTC))},
		{`"Fri Mar  4 08:49:37 2011"`, TimeValue(time.Date(2011, 3, 4, 8, 49, 37, 0, time.UTC))},
		{`"true"`, StringValue("true")},
		{`"5"`, StringValue("5")},
		{`true`, BoolValue(true)},
		{`false`, BoolValue(false)},
		{`True`, StringValue("True")}, // case-sensitive per the docs
		{`42`, IntValue(42)},
		{`-9223372036854775808`, IntValue(-9223372036854775808)},
		{`+7`, IntValue(7)},
		{`9223372036854775808`, DoubleValue(9223372036854775808)},
		{`299.98`, DoubleValue(299.98)},
		{`1e3`, DoubleValue(1000)},
		{`-.5`, DoubleValue(-0.5)},
		{`1.`, DoubleValue(1)},
		{`  42 `, IntValue(42)},
		// Unquoted text: the docs' Send Message example, accepted as a string.
		{`High`, StringValue("High")},
		{`12345,ABC`, StringValue("12345,ABC")},
		{`Fri, 04 Mar 2011 08:49:37 GMT`, StringValue("Fri, 04 Mar 2011 08:49:37 GMT")},
		{`NaN`, StringValue("NaN")},
		{`Inf`, StringValue("Inf")},
		{`0x10`, StringValue("0x10")},
		{`1_000`, StringValue("1_000")},
		{`1e`, StringValue("1e")},
		{`"abc`, StringValue(`"abc`)},
		{`"`, StringValue(`"`)},
		{``, StringValue("")},
	}
	for _, tc := range tests {
		got, err := ParseUserProperty(tc.raw)
		if err != nil {
			t.Errorf("%q: %v", tc.raw, err)
			continue
		}
		if !got.Equal(tc.want) {
			t.Errorf("%q: got %+v, want %+v", tc.raw, got, tc.want)
		}
	}
	for _, raw := range []string{"a\x00b", "a\nb", "\x7f", "\xff"} {
		if _, err := ParseUserProperty(raw); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%q: err = %v, want ErrBadRequest", raw, err)
		}
	}
}

func TestFormatUserProperty(t *testing.T) {
	tests := []struct {
		v    PropertyValue
		want string
	}{
		{StringValue("High"), `"High"`},
		{StringValue(""), `""`},
		{BoolValue(true), `true`},
		{IntValue(-3), `-3`},
		{DoubleValue(2), `2.0`},
		{DoubleValue(299.98), `299.98`},
		{DoubleValue(1e21), `1e+21`},
		{TimeValue(jul2.In(time.FixedZone("X", -7200))), `"Wed, 02 Jul 2014 01:32:27 GMT"`},
	}
	for _, tc := range tests {
		got := FormatUserProperty(tc.v)
		if got != tc.want {
			t.Errorf("%+v: got %s, want %s", tc.v, got, tc.want)
		}
		back, err := ParseUserProperty(got)
		if err != nil || !back.Equal(tc.v) {
			t.Errorf("%s reads back as %+v, %v", got, back, err)
		}
	}
}

func TestParseUserProperties(t *testing.T) {
	// The docs' Send Message request, as net/http hands it to a handler.
	h := http.Header{}
	h.Set("Authorization", "SharedAccessSignature sr=x&sig=y&se=1&skn=z")
	h.Set("BrokerProperties", `{"Label":"M1"}`)
	h.Set("Priority", "High")
	h.Set("Customer", "12345,ABC")
	h.Set("Content-Type", "application/atom+xml;type=entry;charset=utf-8")
	h.Set("Content-Length", "18")
	h.Set("Expect", "100-continue")
	h.Set("X-Ms-Retrypolicy", "NoRetry")
	h.Set("X-Ms-Client-Request-Id", "abc")
	h.Set("Accept-Encoding", "gzip")
	h.Set("User-Agent", "azsdk-go")
	h.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	h.Set("order-time", `"Fri, 04 Mar 2011 08:49:37 GMT"`)
	h.Set("Count", "3")
	got, err := ParseUserProperties(h)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]PropertyValue{
		"Priority":   StringValue("High"),
		"Customer":   StringValue("12345,ABC"),
		"Order-Time": TimeValue(time.Date(2011, 3, 4, 8, 49, 37, 0, time.UTC)), // canonicalised name
		"Count":      IntValue(3),
	}
	if !equalProps(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}

	// Written back on receive, as in the Peek-Lock docs' response.
	out := http.Header{}
	WriteUserProperties(out, got)
	if out.Get("Priority") != `"High"` || out.Get("Customer") != `"12345,ABC"` || out.Get("Count") != "3" ||
		out.Get("Order-Time") != `"Fri, 04 Mar 2011 08:49:37 GMT"` {
		t.Fatalf("written headers: %v", out)
	}
	again, err := ParseUserProperties(out)
	if err != nil || !equalProps(again, got) {
		t.Fatalf("round trip: %+v, %v", again, err)
	}
}

func TestParseUserPropertiesRejects(t *testing.T) {
	many := http.Header{}
	for i := 0; i <= MaxUserProperties; i++ {
		many[http.CanonicalHeaderKey("P"+strings.Repeat("a", i%10)+string(rune('a'+i%26))+strconv.Itoa(i))] = []string{"1"}
	}
	big := http.Header{"Big": {strings.Repeat("a", MaxUserPropertiesSize)}}
	tests := []struct {
		name string
		h    http.Header
		bad  string
	}{
		{"twice", http.Header{"Priority": {"a", "b"}}, "more than once"},
		{"bad name", http.Header{"Bad Name": {"a"}}, "not a valid HTTP header name"},
		{"control char", http.Header{"P": {"a\rb"}}, "control character"},
		{"invalid utf8", http.Header{"P": {"\xc3"}}, "UTF-8"},
		{"too many", many, "at most"},
		{"too big", big, "larger than"},
	}
	for _, tc := range tests {
		_, err := ParseUserProperties(tc.h)
		if err == nil || !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tc.bad) {
			t.Errorf("%s: err = %v, want ErrBadRequest containing %q", tc.name, err, tc.bad)
		}
	}
}

func TestReservedHeaders(t *testing.T) {
	for _, n := range []string{"Authorization", "brokerproperties", "CONTENT-TYPE", "Content-Encoding", "x-ms-foo",
		"Accept-Language", "If-Match", "X-Forwarded-For", "Sec-Fetch-Mode", "Proxy-Authorization", "TE", "Traceparent",
		"Request-Id", "Host", "Date", "Location"} {
		if !IsReservedHeader(n) {
			t.Errorf("%s should be reserved", n)
		}
	}
	for _, n := range []string{"Priority", "Customer", "X-Custom", "DeadLetterReason", "Label"} {
		if IsReservedHeader(n) {
			t.Errorf("%s should be a custom property", n)
		}
	}
	// Reserved names never go out as properties.
	h := http.Header{}
	WriteUserProperties(h, map[string]PropertyValue{"Content-Type": StringValue("x"), "bad name": StringValue("y"), "priority": IntValue(1)})
	//lint:ignore SA1008 the point is that the non-canonical name is kept
	if len(h) != 1 || h["priority"][0] != "1" {
		t.Fatalf("headers = %v; want only priority, case kept", h)
	}
}

func TestUserPropertiesStorage(t *testing.T) {
	props := map[string]PropertyValue{
		"s": StringValue("x\"y"), "b": BoolValue(false), "i": IntValue(-9223372036854775808),
		"big": IntValue(9007199254740993), // beyond float64's exact range
		"d":   DoubleValue(5), "t": TimeValue(time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)),
	}
	b, err := MarshalUserProperties(props)
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalUserProperties(b)
	if err != nil {
		t.Fatal(err)
	}
	if !equalProps(back, props) {
		t.Fatalf("got %+v\nwant %+v\njson %s", back, props, b)
	}
	if back["d"].Kind != KindDouble || back["i"].Kind != KindInt {
		t.Fatal("kinds lost")
	}
	if b, _ := MarshalUserProperties(nil); string(b) != "{}" {
		t.Fatalf("nil map: %s", b)
	}
	for _, bad := range []string{`{"a":{"type":"weird","value":1}}`, `{"a":{"type":"int","value":"x"}}`, `[]`, `{"a":{"type":"time","value":"no"}}`} {
		if _, err := UnmarshalUserProperties([]byte(bad)); err == nil {
			t.Errorf("%s: want error", bad)
		}
	}
	if _, err := MarshalUserProperties(map[string]PropertyValue{"x": {}}); err == nil {
		t.Error("kindless value: want error")
	}
}

func TestParseBatch(t *testing.T) {
	// The docs' Send Message Batch example (with its typographic quotes fixed).
	body := `[
	  {"Body":"This is the first message","BrokerProperties":{"Label":"M1","TimeToLiveTimeSpan":"0.00:00:40"}},
	  {"Body":"This is the second message","BrokerProperties":{"Label":"M2"},"UserProperties":{"Priority":"Low"}},
	  {"Body":"This is the third message","BrokerProperties":{"Label":"M3"},"UserProperties":{"Priority":"Medium","Customer":"ABC"}},
	  {"UserProperties":{"n":5,"d":5.0,"e":1e2,"big":9223372036854775808,"neg":-1,"b":true,"f":false}}
	]`
	got, err := ParseBatch([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("%d messages", len(got))
	}
	if string(got[0].Body) != "This is the first message" || got[0].Properties.Label != "M1" || len(got[0].UserProperties) != 0 {
		t.Fatalf("message 0: %+v", got[0])
	}
	if !equalProps(got[2].UserProperties, map[string]PropertyValue{"Priority": StringValue("Medium"), "Customer": StringValue("ABC")}) {
		t.Fatalf("message 2: %+v", got[2].UserProperties)
	}
	wantTyped := map[string]PropertyValue{"n": IntValue(5), "d": DoubleValue(5), "e": DoubleValue(100),
		"big": DoubleValue(9223372036854775808), "neg": IntValue(-1), "b": BoolValue(true), "f": BoolValue(false)}
	if !equalProps(got[3].UserProperties, wantTyped) || len(got[3].Body) != 0 {
		t.Fatalf("message 3: %+v", got[3])
	}

	// Round trip through MarshalBatch.
	b, err := MarshalBatch(got)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseBatch(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if !equalBatch(again, got) {
		t.Fatalf("round trip differs:\n%s", b)
	}
}

func TestParseBatchRejects(t *testing.T) {
	tooMany := "[" + strings.TrimSuffix(strings.Repeat(`{"Body":"x"},`, MaxBatchMessages+1), ",") + "]"
	tests := []struct{ body, bad string }{
		{``, "JSON array"},
		{`{}`, "JSON array"},
		{`null`, "JSON array"},
		{`[]`, "at least one"},
		{`[`, "not valid JSON"},
		{`[1]`, "must be a JSON object"},
		{`[null]`, "must be a JSON object"},
		{`[{"Body":5}]`, "Body must be a string"},
		{`[{"Body":"x","BrokerProperties":"Label"}]`, "BrokerProperties must be a JSON object"},
		{`[{"BrokerProperties":{"TimeToLive":-5}}]`, "positive"},
		{`[{"BrokerProperties":{"SessionId":"a","PartitionKey":"b"}}]`, "must be equal"},
		{`[{"UserProperties":[]}]`, "UserProperties must be a JSON object"},
		{`[{"UserProperties":{"a":null}}]`, "string, number or boolean"},
		{`[{"UserProperties":{"a":{}}}]`, "string, number or boolean"},
		{`[{"UserProperties":{"a":[1]}}]`, "string, number or boolean"},
		{`[{"UserProperties":{"a":1e999}}]`, "out of range"},
		{`[{"UserProperties":{"bad name":1}}]`, "not a valid HTTP header name"},
		{`[{"UserProperties":{"a":"x\ny"}}]`, "control character"},
		{`[{"UserProperties":{"Prio":1,"prio":2}}]`, "differ only in case"},
		{tooMany, "at most"},
	}
	for _, tc := range tests {
		_, err := ParseBatch([]byte(tc.body))
		if err == nil || !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tc.bad) {
			t.Errorf("%.60s: err = %v, want ErrBadRequest containing %q", tc.body, err, tc.bad)
		}
	}
}

func equalProps(a, b map[string]PropertyValue) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !v.Equal(w) {
			return false
		}
	}
	return true
}

func equalBatch(a, b []BatchMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if string(a[i].Body) != string(b[i].Body) || !reflect.DeepEqual(a[i].Properties, b[i].Properties) ||
			!equalProps(a[i].UserProperties, b[i].UserProperties) {
			return false
		}
	}
	return true
}
