package servicebus

import (
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"
)

// The fuzz targets check two things for every parser of client input: it
// never panics, and what it accepts survives a format and a re-parse
// unchanged, so the broker can store and re-emit anything it let in.

func FuzzParseBrokerProperties(f *testing.F) {
	for _, s := range []string{
		`{"Label":"M1","State":"Active","TimeToLive":10}`,
		`{"SessionId":"a","PartitionKey":"a","ScheduledEnqueueTimeUtc":"Sun, 06 Nov 1994 08:49:37 GMT"}`,
		`{"MessageId":"é😀","ForcePersistence":true,"TimeToLive":0.001,"CorrelationId":"<&>"}`,
		`{"TimeToLive":-1}`, `[]`, `null`, `{"Label":"\u0000"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		p, err := ParseBrokerProperties(header)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v is not ErrBadRequest", err)
			}
			return
		}
		out := p.Header()
		// Our own output may exceed the request-size bound after \u
		// escaping, so re-parse without it.
		back, err := parseBrokerJSON([]byte(out))
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if !reflect.DeepEqual(back, p) {
			t.Fatalf("round trip:\n in  %+v\n out %+v\n via %s", p, back, out)
		}
	})
}

func FuzzParseUserProperties(f *testing.F) {
	for _, s := range [][2]string{
		{"Priority", "High"}, {"Customer", `"12345,ABC"`}, {"order-time", `"Fri, 04 Mar 2011 08:49:37 GMT"`},
		{"N", "42"}, {"D", "2.50"}, {"B", "true"}, {"Big", "9223372036854775808"}, {"X", `"`}, {"E", "1e400"},
		{"Content-Type", "text/plain"}, {"bad name", "x"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		props, err := ParseUserProperties(http.Header{name: {value}})
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v is not ErrBadRequest", err)
			}
			return
		}
		out := http.Header{}
		WriteUserProperties(out, props)
		back, err := ParseUserProperties(out)
		if err != nil {
			t.Fatalf("re-parse of %v: %v", out, err)
		}
		if !equalProps(back, props) {
			t.Fatalf("header round trip: %+v -> %v -> %+v", props, out, back)
		}
		b, err := MarshalUserProperties(props)
		if err != nil {
			t.Fatalf("store %+v: %v", props, err)
		}
		stored, err := UnmarshalUserProperties(b)
		if err != nil || !equalProps(stored, props) {
			t.Fatalf("storage round trip: %+v -> %s -> %+v, %v", props, b, stored, err)
		}
	})
}

func FuzzParseBatch(f *testing.F) {
	for _, s := range []string{
		`[{"Body":"This is the first message","BrokerProperties":{"Label":"M1","TimeToLiveTimeSpan":"0.00:00:40"}}]`,
		`[{"Body":"x","BrokerProperties":{"Label":"M2"},"UserProperties":{"Priority":"Low","n":5,"d":5.0,"b":false}}]`,
		`[{"UserProperties":{"big":9223372036854775808,"e":1E2,"neg":-0}},{}]`,
		`[]`, `{}`, `[null]`, `[{"Body":5}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, err := ParseBatch(body)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v is not ErrBadRequest", err)
			}
			return
		}
		out, err := MarshalBatch(msgs)
		if err != nil {
			t.Fatalf("MarshalBatch: %v", err)
		}
		back, err := ParseBatch(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if !equalBatch(back, msgs) {
			t.Fatalf("round trip differs via %s", out)
		}
	})
}

func FuzzParseSAS(f *testing.F) {
	key := []byte("key")
	f.Add(SignSAS("sb://ns.servicebus.windows.net/q", "RootManageSharedAccessKey", key, time.Unix(1700000000, 0)))
	f.Add("SharedAccessSignature sr=audience&sig=8UM0iIfFCfeBSqxSdBMW8pUbhAm7mnjSUaIZTZx8V0g%3D&se=1578099723&skn=keyName")
	f.Add("SharedAccessSignature sr=your-namespace&sig=Fg8yUyR4MOmXfHfj55f5hY4jGb8x2Yc%2b3%2fULKZYxKZk%3d&se=1404256819&skn=RootManageSharedAccessKey")
	f.Add("sharedaccesssignature skn=a+b&se=0001&sr=a=b&sig=Fg8yUyR4MOmXfHfj55f5hY4jGb8x2Yc+3/ULKZYxKZk=")
	f.Add("SharedAccessSignature sr=a&sr=a")
	f.Fuzz(func(t *testing.T, header string) {
		s, err := ParseSAS(header)
		if err != nil {
			if !errors.Is(err, ErrSASMalformed) {
				t.Fatalf("error %v is not ErrSASMalformed", err)
			}
			return
		}
		// Verify must not panic on anything ParseSAS accepts.
		_ = s.Verify(key, "https://ns.servicebus.windows.net/q/messages", time.Unix(1600000000, 0))
		_ = s.Verify(key, header, time.Unix(1600000000, 0))
		out := s.String()
		if len(out) > MaxSASLength {
			return // re-escaping grew it past the bound; nothing to compare
		}
		back, err := ParseSAS(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if !reflect.DeepEqual(back, s) {
			t.Fatalf("round trip:\n in  %+v\n out %+v\n via %s", s, back, out)
		}
	})
}
