package httpx_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/httpx"
)

type body struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

func TestDecodeJSONIsStrict(t *testing.T) {
	cases := map[string]string{
		"unknown field": `{"name":"a","extra":1}`,
		"wrong type":    `{"count":"one"}`,
		"trailing data": `{"name":"a"} {"name":"b"}`,
		"not JSON":      `name=a`,
		"empty":         `   `,
		"truncated":     `{"name":`,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			var b body
			if err := httpx.DecodeJSON([]byte(in), &b); err == nil {
				t.Fatalf("%q accepted", in)
			}
		})
	}
	var b body
	if err := httpx.DecodeJSON([]byte(`{"name":"a","count":2}`), &b); err != nil || b.Name != "a" || b.Count != 2 {
		t.Fatalf("valid body: %+v %v", b, err)
	}
}

func TestReadJSONLimits(t *testing.T) {
	r := httptest.NewRequest("POST", "/", strings.NewReader(`{"name":"`+strings.Repeat("a", 100)+`"}`))
	r.Header.Set("Content-Type", "application/json")
	var b body
	if err := httpx.ReadJSON(r, 50, &b); err != httpx.ErrBodyTooLarge {
		t.Fatalf("oversized body: %v", err)
	}
	r = httptest.NewRequest("POST", "/", strings.NewReader(`{"name":"a"}`))
	r.Header.Set("Content-Type", "text/plain")
	if err := httpx.ReadJSON(r, 1<<10, &b); err == nil {
		t.Fatal("non-JSON content type accepted")
	}
}

func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"name":"a","count":1}`))
	f.Add([]byte(`{"name":"\u0000"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var b body
		_ = httpx.DecodeJSON(in, &b) // must not panic
	})
}
