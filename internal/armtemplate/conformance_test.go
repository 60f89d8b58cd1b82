package armtemplate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// testContext is the deployment every conformance case runs in.
func testContext() Context {
	return Context{
		TenantID:              "72f988bf-86f1-41af-91ab-2d7cd011db47",
		SubscriptionID:        "00000000-0000-0000-0000-000000000001",
		SubscriptionName:      "sub1",
		ResourceGroup:         "rg1",
		ResourceGroupLocation: "westus",
		DeploymentName:        "dep1",
		Now:                   func() time.Time { return time.Date(2020, 4, 7, 14, 53, 14, 0, time.UTC) },
		NewGUID:               func() string { return "b76a51fc-bd72-4a77-b9a2-3c29e7d2e551" },
	}
}

// recorder is a Deployer that keeps what it was asked to deploy and
// answers with the resource's body plus its id, as a resource provider's
// PUT answer would look.
type recorder struct {
	mu       sync.Mutex
	order    []string
	fail     map[string]bool
	inFlight int
	maxSeen  int
}

func (r *recorder) Deploy(ctx context.Context, pr *PlannedResource) (map[string]any, error) {
	r.mu.Lock()
	r.order = append(r.order, pr.ID)
	r.inFlight++
	if r.inFlight > r.maxSeen {
		r.maxSeen = r.inFlight
	}
	fail := r.fail[pr.Name]
	r.mu.Unlock()
	time.Sleep(time.Millisecond)
	r.mu.Lock()
	r.inFlight--
	r.mu.Unlock()
	if fail {
		return nil, &Error{Code: "Conflict", Message: "the resource provider refused " + pr.Name}
	}
	state := map[string]any{}
	for k, v := range pr.Body {
		state[k] = v
	}
	state["id"] = pr.ID
	props, _ := state["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
	}
	cp := map[string]any{"provisioningState": "Succeeded"}
	for k, v := range props {
		cp[k] = v
	}
	state["properties"] = cp
	return state, nil
}

// staticResolver answers reference() of resources outside the template
// and list*() from fixed data.
type staticResolver struct {
	resources map[string]map[string]any
	secrets   map[string]string
}

func (s staticResolver) Reference(_ context.Context, id, _ string, full bool) (map[string]any, error) {
	r, ok := s.resources[strings.ToLower(id)]
	if !ok {
		return nil, &Error{Code: "ResourceNotFound", Message: "The Resource '" + id + "' was not found."}
	}
	if full {
		return r, nil
	}
	p, _ := r["properties"].(map[string]any)
	return p, nil
}

func (s staticResolver) List(_ context.Context, id, action, _ string, _ any) (any, error) {
	return map[string]any{"action": action, "keys": []any{map[string]any{"keyName": "key1", "value": "secret-of-" + id}}}, nil
}

func (s staticResolver) KeyVaultSecret(_ context.Context, vaultID, name, version string) (string, error) {
	v, ok := s.secrets[vaultID+"/"+name+"/"+version]
	if !ok {
		return "", fmt.Errorf("secret %s not found in %s", name, vaultID)
	}
	return v, nil
}

// conformanceCase is one file of testdata: a template, its parameters,
// and the documented outputs or error.
type conformanceCase struct {
	Doc        string          `json:"doc"`
	Template   json.RawMessage `json:"template"`
	Parameters map[string]any  `json:"parameters"`
	Outputs    map[string]any  `json:"outputs"`
	Error      string          `json:"error"`
	Code       string          `json:"code"`
	// Order lists resource names that must be deployed in this order.
	Order []string `json:"order"`
}

func normalize(t *testing.T, v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestConformance(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no conformance cases: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var c conformanceCase
			if err := json.Unmarshal(data, &c); err != nil {
				t.Fatalf("case file: %v", err)
			}
			if c.Outputs == nil && c.Error == "" {
				t.Fatal("a case must expect outputs or an error")
			}
			outs, order, err := runCase(c)
			if c.Error != "" {
				if err == nil {
					t.Fatalf("want error containing %q, got outputs %v", c.Error, outs)
				}
				var ae *Error
				if !errors.As(err, &ae) {
					t.Fatalf("error is %T, not *Error: %v", err, err)
				}
				if !strings.Contains(err.Error(), c.Error) {
					t.Fatalf("error %q does not contain %q", err.Error(), c.Error)
				}
				if c.Code != "" && ae.Code != c.Code {
					t.Fatalf("code %q, want %q", ae.Code, c.Code)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			got := map[string]any{}
			for _, o := range outs {
				got[o.Name] = o.Value
			}
			for name, want := range c.Outputs {
				g, ok := got[name]
				if !ok {
					t.Errorf("output %s missing", name)
					continue
				}
				if !reflect.DeepEqual(normalize(t, g), normalize(t, want)) {
					gb, _ := json.Marshal(g)
					wb, _ := json.Marshal(want)
					t.Errorf("output %s = %s, want %s", name, gb, wb)
				}
			}
			if len(got) != len(c.Outputs) {
				t.Errorf("got %d outputs, want %d: %v", len(got), len(c.Outputs), got)
			}
			if c.Order != nil {
				pos := map[string]int{}
				for i, id := range order {
					pos[id[strings.LastIndex(id, "/")+1:]] = i
				}
				for _, name := range c.Order {
					if _, ok := pos[name]; !ok {
						t.Fatalf("%s was not deployed (deployed %v)", name, order)
					}
				}
				for i := 1; i < len(c.Order); i++ {
					if pos[c.Order[i-1]] >= pos[c.Order[i]] {
						t.Errorf("deployed in order %v, want %v", order, c.Order)
					}
				}
			}
		})
	}
}

func runCase(c conformanceCase) ([]Output, []string, error) {
	tmpl, err := Parse(c.Template)
	if err != nil {
		return nil, nil, err
	}
	dc := testContext()
	dc.Resolver = staticResolver{
		resources: map[string]map[string]any{
			"/subscriptions/00000000-0000-0000-0000-000000000001/resourcegroups/other/providers/microsoft.storage/storageaccounts/existing": {
				"id":         "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/other/providers/Microsoft.Storage/storageAccounts/existing",
				"properties": map[string]any{"primaryEndpoints": map[string]any{"blob": "https://existing.blob.core.windows.net/"}},
			},
		},
		secrets: map[string]string{
			"/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv1/adminPassword/": "from-the-vault",
		},
	}
	plan, err := tmpl.Plan(context.Background(), dc, c.Parameters)
	if err != nil {
		return nil, nil, err
	}
	rec := &recorder{fail: map[string]bool{"fails": true}}
	res, err := plan.Run(context.Background(), rec)
	if err != nil {
		return nil, rec.order, err
	}
	return res.Outputs, rec.order, nil
}
