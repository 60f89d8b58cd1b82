package sts

import (
	"strings"
	"testing"
)

// FuzzParseUserScopes: any scope parameter parses or is refused with an
// Entra error, never a panic, and what parses names one resource.
func FuzzParseUserScopes(f *testing.F) {
	for _, s := range []string{"openid profile offline_access", "User.Read", "https://graph.microsoft.com/User.Read Mail.Read",
		"api://x/.default", "api://a/x api://b/y", "/", "a//b", "https://graph.microsoft.com/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		us, e := parseUserScopes(strings.Fields(raw))
		if e != nil {
			return
		}
		if us.resource == "" {
			t.Fatalf("%q parsed without a resource", raw)
		}
		for _, v := range us.values {
			if v == "" || strings.EqualFold(v, ".default") {
				t.Fatalf("%q: value %q", raw, v)
			}
		}
	})
}
