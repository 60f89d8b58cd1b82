package arm

import (
	"errors"
	"net/http"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
)

// FuzzResourceFilter: the $filter parser of Resources - List never panics;
// what it refuses is a 400 InvalidFilterInQueryString, and what it accepts
// has at most maxFilterTerms conditions.
func FuzzResourceFilter(f *testing.F) {
	for _, s := range []string{
		"", "resourceType eq 'Microsoft.KeyVault/vaults'", "name eq 'a' and location ne 'b' or resourceGroup eq 'c'",
		"substringof('x', name)", "tagName eq 'a' and tagValue eq 'b'", "startswith(tagName, 'p')", "name eq 'it''s'",
		"name eq '", "(", "substringof(", "startswith(tagName,", "and", "name eq 'a' or",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := parseResourceFilter(s)
		if err != nil {
			var ae *rp.Error
			if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Code != "InvalidFilterInQueryString" {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		n := 0
		for _, all := range flt.any {
			if len(all) == 0 {
				t.Fatalf("%q: an empty conjunction", s)
			}
			n += len(all)
		}
		if n > maxFilterTerms {
			t.Fatalf("%q: %d conditions", s, n)
		}
		flt.match(genericResource{ID: "/subscriptions/s/resourceGroups/rg/providers/A/b/c", Name: "c", Type: "A/b", Tags: map[string]string{"k": "v"}})
	})
}
