package graph

import (
	"errors"
	"strings"
	"testing"
)

func TestParseFilterExpr(t *testing.T) {
	good := map[string]string{
		"appId eq 'abc'":                               "appId eq 'abc'",
		"  displayName   eq   'a b'  ":                 "displayName eq 'a b'",
		"DISPLAYNAME EQ 'x'":                           "DISPLAYNAME eq 'x'",
		"displayName eq 'O''Brien'":                    "displayName eq 'O''Brien'",
		"startswith(displayName,'pre')":                "startswith(displayName,'pre')",
		"startsWith( displayName , 'a''b' ) ":          "startswith(displayName,'a''b')",
		"a eq 'x' or b eq 'y' and c eq 'z'":            "(a eq 'x' or (b eq 'y' and c eq 'z'))",
		"(a eq 'x' or b eq 'y') and c eq 'z'":          "((a eq 'x' or b eq 'y') and c eq 'z')",
		"NOT(a eq 'x')":                                "not (a eq 'x')",
		"not startswith(a,'x')":                        "not (startswith(a,'x'))",
		"a in ('x','y')":                               "a in ('x','y')",
		"a eq null":                                    "a eq null",
		"a ne true":                                    "a ne true",
		"a eq 8e2c1f4d-0000-4000-8000-00000000000a":    "a eq 8e2c1f4d-0000-4000-8000-00000000000a",
		"a eq 0e2c1f4d-0000-4000-8000-00000000000A":    "a eq 0e2c1f4d-0000-4000-8000-00000000000a",
		"a ge 2021-11-01":                              "a ge 2021-11-01T00:00:00Z",
		"a le 2021-11-01T12:00:00Z":                    "a le 2021-11-01T12:00:00Z",
		"servicePrincipalNames/any(c:c eq 'x')":        "servicePrincipalNames/any(c:c eq 'x')",
		"identifierUris/any(x:startswith(x,'api://'))": "identifierUris/any(x:startswith(x,'api://'))",
		"appRoles/any(r:r/value eq 'v')":               "appRoles/any(r:r/value eq 'v')",
		"tags/all(t:t eq 'x')":                         "tags/all(t:t eq 'x')",
	}
	for in, want := range good {
		n, err := parseFilterExpr(in)
		if err != nil {
			t.Errorf("parseFilterExpr(%q): %v", in, err)
			continue
		}
		if got := n.String(); got != want {
			t.Errorf("parseFilterExpr(%q) = %s, want %s", in, got, want)
		}
	}
	for _, in := range []string{"", "appId", "appId eq", "appId eq abc", "appId eq 'abc", "(appId eq 'a'",
		"appId eq 'a')", "startswith(displayName 'a')", "startswith(displayName,'a'", "appId eq 'a''",
		"appId eq \"a\"", "a eq 'x' and", "a eq 'x' xor b eq 'y'", "a/any(c c eq 'x')", "a in ()", "a in 'x'",
		"a eq 12x", "a eq #", "not", "a/any(", "a eq 'x' 'y'"} {
		if n, err := parseFilterExpr(in); err == nil {
			t.Errorf("parseFilterExpr(%q) = %s, want an error", in, n)
		}
	}
	// Bounds: depth and terms.
	deep := strings.Repeat("(", maxFilterDepth+1) + "a eq 'x'" + strings.Repeat(")", maxFilterDepth+1)
	if _, err := parseFilterExpr(deep); err == nil {
		t.Error("a filter nested too deeply was read")
	}
	many := "a eq 'x'" + strings.Repeat(" or a eq 'x'", maxFilterTerms)
	if _, err := parseFilterExpr(many); err == nil {
		t.Error("a filter with too many terms was read")
	}
}

func TestCheckFilter(t *testing.T) {
	type want struct {
		code     string // "" for accepted
		advanced string
	}
	for in, w := range map[string]want{
		"displayName eq 'x'":                           {},
		"startswith(displayName,'x') or appId eq 'y'":  {},
		"id in ('a','b')":                              {},
		"identifierUris/any(x:x eq 'api://a')":         {},
		"identifierUris/any(x:startswith(x,'api://'))": {},
		"displayName ne 'x'":                           {advanced: "ne"},
		"not(displayName eq 'x')":                      {advanced: "not"},
		"not identifierUris/any(x:x eq 'a')":           {advanced: "not"},
		"displayName eq null":                          {advanced: "eq"},
		"description eq null":                          {advanced: "eq"},
		"createdDateTime ge 2020-01-01T00:00:00Z":      {},
		"signInAudience eq 'AzureADMyOrg'":             {},
		"identifierUris eq 'a'":                        {code: codeUnsupportedQuery},
		"identifierUris/all(x:x eq 'a')":               {code: codeUnsupportedQuery},
		"identifierUris/any(x:x ne 'a')":               {code: codeUnsupportedQuery},
		"keyCredentials/any(k:k/keyId eq 'a')":         {code: codeUnsupportedQuery},
		"appRoles/any(r:r/value eq 'a')":               {code: codeUnsupportedQuery},
		"web/redirectUris eq 'a'":                      {code: codeUnsupportedQuery},
		"isFallbackPublicClient eq true":               {code: codeUnsupportedQuery},
		"displayName gt 'a'":                           {code: codeUnsupportedQuery},
		"endswith(displayName,'a')":                    {code: codeUnsupportedQuery},
		"contains(displayName,'a')":                    {code: codeUnsupportedQuery},
		"startswith(id,'a')":                           {code: codeUnsupportedQuery},
		"signInAudience eq null":                       {code: codeUnsupportedQuery},
		"displayName eq true":                          {code: codeUnknownSegment},
		"createdDateTime ge '2020'":                    {code: codeUnknownSegment},
		"displayName in ('a', null)":                   {code: codeUnsupportedQuery},
	} {
		n, err := parseFilterExpr(in)
		if err != nil {
			t.Errorf("parse %q: %v", in, err)
			continue
		}
		c, err := checkFilter(n, "Application", applicationFilter)
		var ge *graphError
		errors.As(err, &ge)
		switch {
		case w.code == "" && err != nil:
			t.Errorf("checkFilter(%q): %v", in, err)
		case w.code != "" && (ge == nil || ge.code != w.code || ge.status != 400):
			t.Errorf("checkFilter(%q) = %v, want %s", in, err, w.code)
		case w.code == "" && c.advanced != w.advanced:
			t.Errorf("checkFilter(%q) advanced = %q, want %q", in, c.advanced, w.advanced)
		}
	}
	// A GUID property takes a GUID, not a string.
	n, _ := parseFilterExpr("appOwnerOrganizationId eq 'x'")
	if _, err := checkFilter(n, "ServicePrincipal", servicePrincipalFilter); err == nil || !strings.Contains(err.Error(), "incompatible types") {
		t.Errorf("quoted GUID: %v", err)
	}
	// endsWith only on the user properties Graph names, and advanced.
	n, _ = parseFilterExpr("endswith(mail,'@contoso.com')")
	if c, err := checkFilter(n, "User", userFilter); err != nil || c.advanced != "endsWith" {
		t.Errorf("endswith(mail): %+v %v", c, err)
	}
}

func TestFilterMatches(t *testing.T) {
	obj := map[string]any{
		"displayName": "Orders API", "description": nil, "accountEnabled": true,
		"servicePrincipalNames":  []any{"api://orders", "11111111-1111-1111-1111-111111111111"},
		"appOwnerOrganizationId": "AAAAAAAA-0000-4000-8000-000000000001", "createdDateTime": "2024-05-01T10:00:00Z",
	}
	for in, want := range map[string]bool{
		"displayName eq 'orders api'":                                    true,
		"displayName ne 'orders api'":                                    false,
		"startswith(displayName,'ORD')":                                  true,
		"endswith(displayName,'api')":                                    true,
		"not startswith(displayName,'x')":                                true,
		"displayName in ('a','Orders API')":                              true,
		"description eq null":                                            true,
		"description ne null":                                            false,
		"displayName eq null":                                            false,
		"accountEnabled eq true":                                         true,
		"accountEnabled eq false or displayName eq 'x'":                  false,
		"servicePrincipalNames/any(c:c eq 'API://orders')":               true,
		"servicePrincipalNames/any(c:startswith(c,'https'))":             false,
		"not servicePrincipalNames/any(c:c eq 'x')":                      true,
		"appOwnerOrganizationId eq aaaaaaaa-0000-4000-8000-000000000001": true,
		"createdDateTime ge 2024-01-01":                                  true,
		"createdDateTime le 2024-01-01":                                  false,
		"missing eq 'x'":                                                 false,
		"missing ne 'x'":                                                 true,
		"displayName ge 'o' and displayName le 'p'":                      true,
	} {
		n, err := parseFilterExpr(in)
		if err != nil {
			t.Fatalf("parse %q: %v", in, err)
		}
		if got := n.matches(obj); got != want {
			t.Errorf("%s = %v, want %v", in, got, want)
		}
	}
}

func TestSearch(t *testing.T) {
	spec := querySpec{resource: "Application", searchable: applicationSearch}
	obj := map[string]any{"displayName": "Contoso OrdersAPI (prod)", "description": "Billing"}
	for in, want := range map[string]bool{
		`"displayName:orders"`:                            true,
		`"displayName:cont"`:                              true,
		`"displayName:api prod"`:                          true,
		`"displayName:rders"`:                             false,
		`"displayName:x" OR "description:bill"`:           true,
		`"displayName:x" AND "description:bill"`:          false,
		`"DISPLAYNAME:contoso" and "description:billing"`: true,
	} {
		e, err := parseSearch(in, spec)
		if err != nil {
			t.Fatalf("parseSearch(%s): %v", in, err)
		}
		if got := e.matches(obj); got != want {
			t.Errorf("%s = %v, want %v", in, got, want)
		}
	}
	for _, in := range []string{`displayName:x`, `"displayName:x`, `"appId:x"`, `"displayName"`, `"displayName:x" OR`,
		`"displayName:x" XOR "displayName:y"`, `"displayName: "`, `"displayName:a" OR "displayName:b" AND "displayName:c"`} {
		if _, err := parseSearch(in, spec); err == nil {
			t.Errorf("parseSearch(%s) accepted", in)
		}
	}
}

// FuzzFilter: the parser never panics, refuses with a 400 in Graph's
// terms, stays within its bounds, and what it reads, written back, reads
// the same; checking and evaluating a parsed filter never panics either.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{"appId eq 'a'", "startswith(displayName,'x''y')", "id eq ''", "displayName eq 'a' or x",
		"startswith(", "not (a eq null) and b in ('x',2021-01-01)", "servicePrincipalNames/any(c:c eq 'x')",
		"appRoles/any(r:r/value eq 'v')", "a eq 8e2c1f4d-0000-4000-8000-00000000000a", "((((a eq 'x'))))",
		"tags/all(t:startswith(t,'a'))", "NOT identifierUris/any(x:x ge 'a')", "a eq true or b ne false"} {
		f.Add(s)
	}
	obj := map[string]any{"displayName": "x", "id": "a", "tags": []any{"a", 1.0, nil}, "accountEnabled": true, "appRoles": []any{map[string]any{"value": "v"}}}
	f.Fuzz(func(t *testing.T, in string) {
		n, err := parseFilterExpr(in)
		if err != nil {
			var ge *graphError
			if !errors.As(err, &ge) || ge.status != 400 {
				t.Fatalf("parseFilterExpr(%q): %v is not a 400", in, err)
			}
			return
		}
		out := n.String()
		again, err := parseFilterExpr(out)
		if err != nil || again.String() != out {
			t.Fatalf("parseFilterExpr(%q) = %s; reads back as %v, %v", in, out, again, err)
		}
		for _, props := range [][]filterProp{applicationFilter, servicePrincipalFilter, userFilter, groupFilter} {
			if _, err := checkFilter(n, "Application", props); err != nil {
				var ge *graphError
				if !errors.As(err, &ge) || ge.status != 400 {
					t.Fatalf("checkFilter(%q): %v is not a 400", in, err)
				}
			}
		}
		n.matches(obj)
	})
}
