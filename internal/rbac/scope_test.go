package rbac_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
)

const subID = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"

func TestParseScope(t *testing.T) {
	sub := "/subscriptions/" + subID
	tests := []struct {
		in, want  string
		ancestors []string
	}{
		{"/", "/", []string{"/"}},
		{"/SUBSCRIPTIONS/" + subID, sub, []string{"/", sub}},
		{sub + "/resourcegroups/My_RG(1).x", sub + "/resourceGroups/My_RG(1).x", []string{"/", sub, sub + "/resourceGroups/My_RG(1).x"}},
		{sub + "/resourceGroups/rg/PROVIDERS/Microsoft.ServiceBus/namespaces/bus/queues/q", sub + "/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/bus/queues/q",
			[]string{"/", sub, sub + "/resourceGroups/rg", sub + "/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/bus",
				sub + "/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/bus/queues/q"}},
		{sub + "/providers/Microsoft.Solutions/applications/app", sub + "/providers/Microsoft.Solutions/applications/app",
			[]string{"/", sub, sub + "/providers/Microsoft.Solutions/applications/app"}},
		{sub + "/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv/providers/Microsoft.Insights/diagnosticSettings/d",
			sub + "/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv/providers/Microsoft.Insights/diagnosticSettings/d",
			[]string{"/", sub, sub + "/resourceGroups/rg", sub + "/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv",
				sub + "/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv/providers/Microsoft.Insights/diagnosticSettings/d"}},
		{"/providers/microsoft.management/MANAGEMENTGROUPS/root", "/providers/Microsoft.Management/managementGroups/root",
			[]string{"/", "/providers/Microsoft.Management/managementGroups/root"}},
	}
	for _, tc := range tests {
		sc, err := rbac.ParseScope(tc.in)
		if err != nil {
			t.Errorf("ParseScope(%q): %v", tc.in, err)
			continue
		}
		if sc.String() != tc.want {
			t.Errorf("ParseScope(%q) = %q, want %q", tc.in, sc, tc.want)
		}
		if !slices.Equal(sc.Ancestors(), tc.ancestors) {
			t.Errorf("ParseScope(%q).Ancestors() = %q, want %q", tc.in, sc.Ancestors(), tc.ancestors)
		}
	}
	bad := []string{
		"", "subscriptions/" + subID, "//", sub + "/", sub + "//resourceGroups/rg", "/subscriptions", "/subscriptions/not-a-guid",
		"/tenants/x", sub + "/resourceGroups", sub + "/resourceGroups/rg.", sub + "/resourceGroups/a b", sub + "/resourceGroups/" + strings.Repeat("r", 91),
		sub + "/resourceGroups/rg/providers", sub + "/resourceGroups/rg/providers/Microsoft.KeyVault", sub + "/resourceGroups/rg/providers/Microsoft.KeyVault/vaults",
		sub + "/resourceGroups/rg/providers/NoDot/vaults/kv", sub + "/resourceGroups/rg/things/x", sub + "/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/k\x00v",
		sub + "/resourceGroups/rg?x=1", "/providers/Microsoft.Management/managementGroups", "/providers/Microsoft.KeyVault/vaults/kv",
		"/" + strings.Repeat("a", rbac.MaxScopeLength), "/subscriptions/\xff",
	}
	for _, in := range bad {
		if sc, err := rbac.ParseScope(in); !errors.Is(err, rbac.ErrInvalidScope) {
			t.Errorf("ParseScope(%q) = %q, %v; want ErrInvalidScope", in, sc, err)
		}
	}
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"/", "/subscriptions/" + subID, "/subscriptions/" + subID + "/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/n/queues/q",
		"/providers/Microsoft.Management/managementGroups/m", "/subscriptions/" + subID + "/providers/A.B/t/n/providers/C.D/u/m", "//x", "/subscriptions/x/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		sc, err := rbac.ParseScope(in)
		if err != nil {
			if !errors.Is(err, rbac.ErrInvalidScope) {
				t.Fatalf("error %v does not wrap ErrInvalidScope", err)
			}
			return
		}
		// Canonical form: same key as the input, stable, and its own parse.
		if !strings.EqualFold(sc.String(), in) {
			t.Fatalf("canonical %q is not %q up to case", sc, in)
		}
		again, err := rbac.ParseScope(sc.String())
		if err != nil || again.String() != sc.String() || !slices.Equal(again.Ancestors(), sc.Ancestors()) {
			t.Fatalf("reparse of %q: %q %v", sc, again, err)
		}
		as := sc.Ancestors()
		if as[0] != "/" || as[len(as)-1] != sc.String() {
			t.Fatalf("ancestors of %q: %q", sc, as)
		}
		for i := 1; i < len(as); i++ {
			if i > 1 && !strings.HasPrefix(as[i], as[i-1]+"/") {
				t.Fatalf("ancestor %q does not contain %q", as[i-1], as[i])
			}
			if _, err := rbac.ParseScope(as[i]); err != nil {
				t.Fatalf("ancestor %q of %q does not parse: %v", as[i], sc, err)
			}
		}
	})
}
