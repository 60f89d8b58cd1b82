package servicebus

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestSignSASKnownVector is the vector from the Azure SDK for Go
// (sdk/messaging/azservicebus/internal/sas/sas_test.go,
// TestTokenProviderWithKey): key "key", rule "keyName", audience
// "audience", expiry 1578099723.
func TestSignSASKnownVector(t *testing.T) {
	got := SignSAS("audience", "keyName", []byte("key"), time.Unix(1578099723, 0))
	want := "SharedAccessSignature sr=audience&sig=8UM0iIfFCfeBSqxSdBMW8pUbhAm7mnjSUaIZTZx8V0g%3D&se=1578099723&skn=keyName"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// TestSignSASIndependent recomputes the token from the documented recipe
// (Azure docs, service-bus-sas.md: HMAC-SHA256 over urlencode(uri)+"\n"+expiry).
func TestSignSASIndependent(t *testing.T) {
	uri := "https://MyNS.servicebus.windows.net/Orders"
	key := []byte("t1t3w9EVognlP9Lp3IcpjjFP69opitogcwAa1NVrkBs=")
	exp := time.Unix(1700000000, 0)
	got := SignSAS(uri, "RootManageSharedAccessKey", key, exp)

	enc := strings.ToLower(url.QueryEscape(uri)) // azservicebus lower-cases after escaping
	if enc != "https%3a%2f%2fmyns.servicebus.windows.net%2forders" {
		t.Fatalf("encoding: %s", enc)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(enc + "\n1700000000"))
	sig := url.QueryEscape(base64.StdEncoding.EncodeToString(m.Sum(nil)))
	want := "SharedAccessSignature sr=" + enc + "&sig=" + sig + "&se=1700000000&skn=RootManageSharedAccessKey"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	// The Go SDK's own expectation for the escaped, lower-cased audience.
	if s, _ := ParseSAS(SignSAS("http://MiCrosoft.com", "k", key, exp)); s.RawResource != "http%3a%2f%2fmicrosoft.com" {
		t.Fatalf("sr = %s", s.RawResource)
	}
}

// signRaw builds a token the way other clients do: sr as given (already
// encoded or not), sig escaped by escape.
func signRaw(sr, se, skn string, key []byte, escape func(string) string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(sr + "\n" + se))
	return "SharedAccessSignature sr=" + sr + "&sig=" + escape(base64.StdEncoding.EncodeToString(m.Sum(nil))) + "&se=" + se + "&skn=" + skn
}

func TestVerify(t *testing.T) {
	key := []byte("secret-key")
	now := time.Unix(1700000000, 0)
	exp := now.Add(time.Hour)
	se := "1700003600"
	pyQuote := func(s string) string {
		return strings.ReplaceAll(strings.ReplaceAll(url.QueryEscape(s), "%2F", "/"), "+", "%2B")
	}
	upper := func(s string) string { return url.QueryEscape(s) } // Go/.NET upper-case hex
	tests := []struct {
		name    string
		token   string
		request string
		key     []byte
		now     time.Time
		want    error
	}{
		{"go sdk namespace", SignSAS("https://ns.servicebus.windows.net/", "r", key, exp), "https://ns.servicebus.windows.net/orders/messages", key, now, nil},
		{"go sdk entity", SignSAS("sb://NS.servicebus.windows.net/Orders", "r", key, exp), "https://ns.servicebus.windows.net/orders/messages/head", key, now, nil},
		{"entity exact", SignSAS("https://ns.servicebus.windows.net/orders", "r", key, exp), "https://ns.servicebus.windows.net/orders", key, now, nil},
		{"dlq under entity", SignSAS("amqps://ns.servicebus.windows.net/orders", "r", key, exp), "https://ns.servicebus.windows.net/orders/$DeadLetterQueue/messages/head", key, now, nil},
		{"python unencoded sr", signRaw("sb://ns.servicebus.windows.net/orders", se, "r", key, pyQuote), "https://ns.servicebus.windows.net/orders/messages", key, now, nil},
		{"dotnet upper-hex sr", signRaw(upper("https://ns.servicebus.windows.net/orders"), se, "r", key, upper), "https://ns.servicebus.windows.net/orders/messages", key, now, nil},
		{"bare host sr", signRaw("ns.servicebus.windows.net", se, "r", key, upper), "https://ns.servicebus.windows.net/q/messages", key, now, nil},
		{"port on both", SignSAS("https://127.0.0.1:8443/q", "r", key, exp), "https://127.0.0.1:8443/q/messages", key, now, nil},
		{"port on one", SignSAS("sb://localhost/q", "r", key, exp), "https://localhost:8443/q/messages", key, now, nil},

		{"wrong key", SignSAS("https://ns.servicebus.windows.net/", "r", key, exp), "https://ns.servicebus.windows.net/q", []byte("other"), now, ErrSASSignature},
		{"expired", SignSAS("https://ns.servicebus.windows.net/", "r", key, exp), "https://ns.servicebus.windows.net/q", key, exp, ErrSASExpired},
		{"expired later", SignSAS("https://ns.servicebus.windows.net/", "r", key, exp), "https://ns.servicebus.windows.net/q", key, exp.Add(time.Second), ErrSASExpired},
		{"other entity", SignSAS("https://ns.servicebus.windows.net/orders", "r", key, exp), "https://ns.servicebus.windows.net/status/messages", key, now, ErrSASScope},
		{"segment prefix only", SignSAS("https://ns.servicebus.windows.net/orders", "r", key, exp), "https://ns.servicebus.windows.net/orders2/messages", key, now, ErrSASScope},
		{"parent of entity", SignSAS("https://ns.servicebus.windows.net/orders/messages", "r", key, exp), "https://ns.servicebus.windows.net/orders", key, now, ErrSASScope},
		{"other namespace", SignSAS("https://ns.servicebus.windows.net/", "r", key, exp), "https://evil.servicebus.windows.net/q", key, now, ErrSASScope},
		{"host suffix", SignSAS("https://ns.servicebus.windows.net/", "r", key, exp), "https://ns.servicebus.windows.net.evil.com/q", key, now, ErrSASScope},
		{"other port", SignSAS("https://localhost:1/q", "r", key, exp), "https://localhost:2/q", key, now, ErrSASScope},
		{"dot segments", SignSAS("https://ns.servicebus.windows.net/orders", "r", key, exp), "https://ns.servicebus.windows.net/orders/../status", key, now, ErrSASScope},
		{"relative request", SignSAS("https://ns.servicebus.windows.net/", "r", key, exp), "/q/messages", key, now, ErrSASScope},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSAS(tc.token)
			if err != nil {
				t.Fatalf("parse %s: %v", tc.token, err)
			}
			if err := s.Verify(tc.key, tc.request, tc.now); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	// A tampered field breaks the signature even when the scope would pass.
	s, _ := ParseSAS(SignSAS("https://ns.servicebus.windows.net/orders", "r", key, exp))
	s.RawResource = strings.ToLower(url.QueryEscape("https://ns.servicebus.windows.net/"))
	s.Resource = "https://ns.servicebus.windows.net/"
	if err := s.Verify(key, "https://ns.servicebus.windows.net/status", now); !errors.Is(err, ErrSASSignature) {
		t.Fatalf("widened scope: %v", err)
	}
	s, _ = ParseSAS(SignSAS("https://ns.servicebus.windows.net/orders", "r", key, exp))
	s.RawExpiry = "1800000000"
	if err := s.Verify(key, "https://ns.servicebus.windows.net/orders", now); !errors.Is(err, ErrSASSignature) {
		t.Fatalf("extended expiry: %v", err)
	}
}

func TestParseSAS(t *testing.T) {
	key := []byte("k")
	good := SignSAS("sb://ns.servicebus.windows.net/q", "Send&Listen", key, time.Unix(1700000000, 0))
	s, err := ParseSAS(good)
	if err != nil {
		t.Fatal(err)
	}
	if s.Resource != "sb://ns.servicebus.windows.net/q" || s.KeyName != "Send&Listen" || s.Expiry.Unix() != 1700000000 || len(s.Signature) != 32 {
		t.Fatalf("%+v", s)
	}
	if s.String() != good {
		t.Fatalf("String() = %s\nwant       %s", s.String(), good)
	}
	// Any field order, and the scheme in any case.
	_, rest, _ := strings.Cut(good, " ")
	parts := strings.Split(rest, "&")
	reordered := "sharedaccesssignature " + parts[3] + "&" + parts[2] + "&" + parts[0] + "&" + parts[1]
	s2, err := ParseSAS(reordered)
	if err != nil || s2.String() != good {
		t.Fatalf("reordered: %v %s", err, s2.String())
	}
	// A raw '+' in sig (client that did not escape it) is kept as '+'.
	m := hmac.New(sha256.New, key)
	m.Write([]byte("a\n1"))
	raw := base64.StdEncoding.EncodeToString(m.Sum(nil))
	if _, err := ParseSAS("SharedAccessSignature sr=a&sig=" + raw + "&se=1&skn=r"); err != nil {
		t.Fatalf("raw sig %s: %v", raw, err)
	}

	sig := url.QueryEscape(raw)
	bad := []string{
		"",
		"Bearer abc",
		"SharedAccessSignature",
		"SharedAccessSignature sr=a&sig=" + sig + "&se=1",                    // no skn
		"SharedAccessSignature sig=" + sig + "&se=1&skn=r",                   // no sr
		"SharedAccessSignature sr=a&se=1&skn=r",                              // no sig
		"SharedAccessSignature sr=a&sig=" + sig + "&skn=r",                   // no se
		"SharedAccessSignature sr=a&sr=b&sig=" + sig + "&se=1&skn=r",         // duplicate
		"SharedAccessSignature sr=a&sig=" + sig + "&se=1&skn=r&x=1",          // unknown field
		"SharedAccessSignature sr=a&sig=" + sig + "&se=1.5&skn=r",            // fractional se
		"SharedAccessSignature sr=a&sig=" + sig + "&se=-1&skn=r",             // negative se
		"SharedAccessSignature sr=a&sig=" + sig + "&se=99999999999999&skn=r", // beyond year 9999
		"SharedAccessSignature sr=a&sig=" + sig + "&se=&skn=r",               // empty value
		"SharedAccessSignature sr=a&sig=" + sig + "&se=1&skn",                // no '='
		"SharedAccessSignature sr=%zz&sig=" + sig + "&se=1&skn=r",            // bad escape
		"SharedAccessSignature sr=a&sig=%zz&se=1&skn=r",                      // bad escape
		"SharedAccessSignature sr=a&sig=bm90IGEgbWFj&se=1&skn=r",             // not 32 bytes
		"SharedAccessSignature sr=a&sig=!!!&se=1&skn=r",                      // not base64
		"SharedAccessSignature sr=a&sig=" + sig + "&se=1&skn=%zz",            // bad skn
		"SharedAccessSignature sr=" + strings.Repeat("a", MaxSASLength) + "&sig=" + sig + "&se=1&skn=r",
	}
	for _, h := range bad {
		if _, err := ParseSAS(h); !errors.Is(err, ErrSASMalformed) {
			t.Errorf("%.80q: err = %v, want ErrSASMalformed", h, err)
		}
	}
}
