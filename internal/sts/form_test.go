package sts

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
)

// FuzzParseTokenRequest: the form parser never panics, never accepts a body
// over the limit, and what it accepts round-trips: every value is valid
// UTF-8 without NUL, non-empty, and its parameter appears once.
func FuzzParseTokenRequest(f *testing.F) {
	const form = "application/x-www-form-urlencoded"
	f.Add(form, []byte("grant_type=client_credentials&client_id=11111111-1111-1111-1111-111111111111&client_secret=abc&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"))
	f.Add(form+"; charset=utf-8", []byte("a=1&a=2"))
	f.Add(form+"; charset=latin1", []byte("a=1"))
	f.Add("application/json", []byte(`{"grant_type":"client_credentials"}`))
	f.Add("", []byte("grant_type=x"))
	f.Add(form, []byte("%zz=1&b=%"))
	f.Add(form, []byte("a=%00&b=%ff"))
	f.Add(form, []byte("&&=&a&b=&c=+%2B"))
	f.Add(form, []byte(strings.Repeat("a", maxTokenBody+1)))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		got, e := parseTokenRequest(contentType, body)
		if len(body) > maxTokenBody && e == nil {
			t.Fatalf("accepted a body of %d bytes", len(body))
		}
		if e != nil {
			if got != nil || e.Code == 0 || e.Status < 400 || e.OAuth == "" {
				t.Fatalf("bad refusal %+v (form %v)", e, got)
			}
			return
		}
		for k, v := range got {
			if k == "" || v == "" || strings.ContainsRune(k+v, 0) || strings.ToValidUTF8(k+v, "") != k+v {
				t.Fatalf("accepted %q=%q", k, v)
			}
		}
		// What was accepted is what net/url reads, when net/url can read it.
		if std, err := url.ParseQuery(string(body)); err == nil {
			for k, v := range got {
				if len(std[k]) != 1 || std[k][0] != v {
					t.Fatalf("%q: parsed %q, net/url %q", k, v, std[k])
				}
			}
		}
	})
}

func TestParseTokenRequest(t *testing.T) {
	const form = "application/x-www-form-urlencoded"
	cases := []struct {
		ct, body string
		want     map[string]string
		code     int
	}{
		{form, "grant_type=client_credentials&scope=a%2F.default+b", map[string]string{"grant_type": "client_credentials", "scope": "a/.default b"}, 0},
		{"Application/X-WWW-Form-Urlencoded; charset=UTF-8", "a=1", map[string]string{"a": "1"}, 0},
		{form, "a=&b=2", map[string]string{"b": "2"}, 0},
		{form, "", map[string]string{}, 0},
		{form, "a=1&a=1", nil, codeInvalidRequest},
		{form, "a=%", nil, codeInvalidRequest},
		{form, "a=%ff", nil, codeInvalidRequest},
		{form, "a=%00", nil, codeInvalidRequest},
		{form, "=1", nil, codeInvalidRequest},
		{form + "; charset=iso-8859-1", "a=1", nil, codeInvalidRequest},
		{"text/plain", "a=1", nil, codeInvalidRequest},
		{"", "a=1", nil, codeInvalidRequest},
		{form, strings.Repeat("x", maxTokenBody+1), nil, codeBodyTooLarge},
	}
	for _, tc := range cases {
		got, e := parseTokenRequest(tc.ct, []byte(tc.body))
		switch {
		case tc.code != 0 && (e == nil || e.Code != tc.code):
			t.Errorf("%q %q: err %v, want AADSTS%d", tc.ct, tc.body, e, tc.code)
		case tc.code == 0 && e != nil:
			t.Errorf("%q %q: %v", tc.ct, tc.body, e)
		case tc.code == 0 && len(got) != len(tc.want):
			t.Errorf("%q %q: %v, want %v", tc.ct, tc.body, got, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%q: %s = %q, want %q", tc.body, k, got[k], v)
			}
		}
	}
}

func TestParseBasicAuth(t *testing.T) {
	cases := []struct {
		header     string
		id, secret string
		bad        bool
	}{
		{"", "", "", false},
		{"Bearer abc", "", "", false},
		{"Basic " + b64("id:s%3Acret"), "id", "s:cret", false},
		{"basic " + b64("a%2Bb:c+d"), "a+b", "c d", false},
		{"Basic " + b64("nocolon"), "", "", true},
		{"Basic " + b64(":secret"), "", "", true},
		{"Basic " + b64("id:%zz"), "", "", true},
		{"Basic ***", "", "", true},
	}
	for _, tc := range cases {
		got, e := parseBasicAuth(tc.header)
		switch {
		case tc.bad:
			if e == nil || e.Status != 401 || e.OAuth != "invalid_client" {
				t.Errorf("%q: %v %v, want invalid_client", tc.header, got, e)
			}
		case tc.id == "":
			if got != nil || e != nil {
				t.Errorf("%q: %v %v, want no credential", tc.header, got, e)
			}
		case e != nil || got == nil || got.clientID != tc.id || got.secret != tc.secret:
			t.Errorf("%q: %+v %v, want %s %s", tc.header, got, e, tc.id, tc.secret)
		}
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
