package armtemplate

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

func mustPlan(t *testing.T, tmpl string, params map[string]any) *Plan {
	t.Helper()
	tp, err := Parse([]byte(tmpl))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	p, err := tp.Plan(context.Background(), testContext(), params)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return p
}

const head = `{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", "contentVersion": "1.0.0.0", `

// A failed resource stops its dependents and nothing else; the error is
// DeploymentFailed with the failure as a detail targeting the resource.
func TestRunFailureStopsDependents(t *testing.T) {
	p := mustPlan(t, head+`"resources": [
	 {"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2022-09-01", "name": "fails"},
	 {"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2022-09-01", "name": "after", "dependsOn": ["fails"]},
	 {"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2022-09-01", "name": "independent"}]}`, nil)
	rec := &recorder{fail: map[string]bool{"fails": true}}
	_, err := p.Run(context.Background(), rec)
	var ae *Error
	if !errors.As(err, &ae) || ae.Code != CodeDeploymentFailed || len(ae.Details) != 1 {
		t.Fatalf("err = %v", err)
	}
	if d := ae.Details[0]; d.Code != "Conflict" || !strings.HasSuffix(d.Target, "/storageAccounts/fails") {
		t.Fatalf("detail = %+v", d)
	}
	got := strings.Join(rec.order, " ")
	if strings.Contains(got, "/after") || !strings.Contains(got, "/independent") {
		t.Fatalf("deployed %v", rec.order)
	}
}

// Independent resources deploy in parallel, never more than MaxParallel.
func TestRunParallelBound(t *testing.T) {
	p := mustPlan(t, head+`"resources": [{"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2022-09-01",
	  "name": "[concat('s', copyIndex())]", "copy": {"name": "c", "count": 40}}]}`, nil)
	p.MaxParallel = 3
	rec := &recorder{}
	if _, err := p.Run(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.order) != 40 || rec.maxSeen > 3 || rec.maxSeen < 2 {
		t.Fatalf("deployed %d, at most %d at once", len(rec.order), rec.maxSeen)
	}
}

// Nested deployments share their deployment's MaxParallel: nesting does
// not multiply how many resources deploy at once, and a nested deployment
// waiting for its resources holds no slot (which would deadlock a full
// set of nested ones).
func TestRunParallelBoundNested(t *testing.T) {
	p := mustPlan(t, head+`"resources": [
	 {"type": "Microsoft.Resources/deployments", "apiVersion": "2022-09-01", "name": "[concat('n', copyIndex())]", "copy": {"name": "n", "count": 6},
	  "properties": {"mode": "Incremental", "expressionEvaluationOptions": {"scope": "inner"},
	   "template": {"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#", "contentVersion": "1.0.0.0",
	    "resources": [{"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2022-09-01", "name": "[concat('s', copyIndex(), uniqueString(deployment().name))]", "copy": {"name": "c", "count": 10}}]}}},
	 {"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2022-09-01", "name": "[concat('top', copyIndex())]", "copy": {"name": "t", "count": 10}}]}`, nil)
	p.MaxParallel = 3
	rec := &recorder{}
	if _, err := p.Run(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.order) != 70 || rec.maxSeen > 3 || rec.maxSeen < 2 {
		t.Fatalf("deployed %d, at most %d at once", len(rec.order), rec.maxSeen)
	}
}

// A canceled Run stops: the resources not yet started are not deployed,
// the error is DeploymentFailed, and none of its goroutines outlive it.
func TestRunCanceled(t *testing.T) {
	p := mustPlan(t, head+`"resources": [{"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2022-09-01",
	  "name": "[concat('s', copyIndex())]", "copy": {"name": "c", "count": 200, "mode": "serial", "batchSize": 1}}]}`, nil)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	rec := &recorder{}
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := p.Run(ctx, rec)
	var ae *Error
	if !errors.As(err, &ae) || ae.Code != CodeDeploymentFailed {
		t.Fatalf("err = %v", err)
	}
	rec.mu.Lock()
	n := len(rec.order)
	rec.mu.Unlock()
	if n >= 200 {
		t.Fatalf("deployed %d of 200", n)
	}
	for deadline := time.Now().Add(time.Second); runtime.NumGoroutine() > before && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Fatalf("%d goroutines after Run, %d before", g, before)
	}
}

// A resource whose body needs reference() is deferred at plan time, gets
// an implicit dependency, and is evaluated when it runs.
func TestPlanDefersReference(t *testing.T) {
	p := mustPlan(t, head+`"resources": [
	 {"type": "Microsoft.Web/sites", "apiVersion": "2022-03-01", "name": "site", "properties": {"tier": "[reference('stg').tier]"}},
	 {"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2022-09-01", "name": "stg", "properties": {"tier": "Hot"}}]}`, nil)
	if len(p.Resources) != 2 || p.Resources[0].Name != "stg" || p.Resources[1].Name != "site" {
		t.Fatalf("order %v", p.Resources)
	}
	site := p.Resources[1]
	if !site.Deferred || site.Body != nil || len(site.DependsOn) != 1 || !strings.HasSuffix(site.DependsOn[0], "/stg") {
		t.Fatalf("site = %+v", site)
	}
	if _, err := p.Run(context.Background(), &recorder{}); err != nil {
		t.Fatal(err)
	}
	if site.Body["properties"].(map[string]any)["tier"] != "Hot" {
		t.Fatalf("site body %v", site.Body)
	}
}

// Errors carry the position of the element at fault.
func TestErrorPositions(t *testing.T) {
	_, err := Parse([]byte("{\n  \"$schema\": \"x\",\n  \"contentVersion\": \"1.0.0.0\",\n  \"resources\": [,]\n}"))
	var ae *Error
	if !errors.As(err, &ae) || ae.Code != CodeInvalidTemplate || ae.Line != 4 || !strings.HasPrefix(ae.Message, "Deployment template parse failed: ") {
		t.Fatalf("err = %+v", err)
	}
	tp, err := Parse([]byte(head + "\n\"resources\": [\n  {\"type\": \"Microsoft.Storage/storageAccounts\", \"apiVersion\": \"1\", \"name\": \"[substring('ab', 5)]\"}]}"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tp.Plan(context.Background(), testContext(), nil)
	if !errors.As(err, &ae) || ae.Line != 3 || ae.Column != 3 || ae.Path != "resources[0]" {
		t.Fatalf("err = %+v", err)
	}
	want := "The template resource '[substring('ab', 5)]' at line '3' and column '3' is not valid: The index and length parameters"
	if !strings.Contains(ae.Message, want) {
		t.Fatalf("message %q lacks %q", ae.Message, want)
	}
}

// Secure parameter values never appear in messages or the plan's JSON.
func TestSecureParametersStayHidden(t *testing.T) {
	tp, err := Parse([]byte(head + `"parameters": {"pw": {"type": "securestring", "allowedValues": ["other"]}}, "resources": []}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tp.Plan(context.Background(), testContext(), map[string]any{"pw": map[string]any{"value": "hunter2"}})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v", err)
	}
	p := mustPlan(t, head+`"parameters": {"pw": {"type": "securestring"}}, "resources": []}`, map[string]any{"pw": map[string]any{"value": "hunter2"}})
	b, _ := p.MarshalJSON()
	if strings.Contains(string(b), "hunter2") || !p.Parameters[0].Secure {
		t.Fatalf("plan %s", b)
	}
}

// Hostile templates are refused with InvalidTemplate, never a panic or a
// runaway evaluation.
func TestBounds(t *testing.T) {
	cases := map[string]string{
		"string growth": head + `"variables": {"a": "[padLeft('x', 16000, 'y')]", "b": "[concat(variables('a'),variables('a'),variables('a'),variables('a'))]",
		   "c": "[concat(variables('b'),variables('b'),variables('b'),variables('b'),variables('b'),variables('b'),variables('b'),variables('b'))]",
		   "d": "[replace(variables('c'), 'y', variables('c'))]"}, "resources": [], "outputs": {"o": {"type": "string", "value": "[variables('d')]"}}}`,
		"range":              head + `"resources": [], "outputs": {"o": {"type": "array", "value": "[range(0, 10001)]"}}}`,
		"steps":              head + `"resources": [], "outputs": {"o": {"type": "array", "value": "[map(range(0, 10000), lambda('i', map(range(0, 10000), lambda('j', lambdaVariables('j')))))]"}}}`,
		"deep":               head + `"resources": [], "outputs": {"o": {"type": "string", "value": "[` + strings.Repeat("concat(", 100) + "'x'" + strings.Repeat(")", 100) + `]"}}}`,
		"too many resources": head + `"resources": [` + strings.TrimSuffix(strings.Repeat(`{"type": "A.B/c", "apiVersion": "1", "name": "[concat('n', copyIndex())]", "copy": {"name": "[concat('c')]", "count": 500}},`, 2), ",") + `]}`,
	}
	for name, tmpl := range cases {
		t.Run(name, func(t *testing.T) {
			tp, err := Parse([]byte(tmpl))
			if err == nil {
				var p *Plan
				p, err = tp.Plan(context.Background(), testContext(), nil)
				if err == nil {
					_, err = p.Run(context.Background(), &recorder{})
				}
			}
			var ae *Error
			if !errors.As(err, &ae) || ae.Code != CodeInvalidTemplate {
				t.Fatalf("err = %v", err)
			}
		})
	}
	big := make([]byte, MaxTemplateBytes+1)
	if _, err := Parse(big); err == nil {
		t.Fatal("a template over 4 MB was accepted")
	}
}

func ExampleTemplate_Plan() {
	tp, _ := Parse([]byte(head + `"parameters": {"name": {"type": "string"}},
	  "resources": [{"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2022-09-01", "name": "[parameters('name')]", "location": "[resourceGroup().location]"}]}`))
	p, err := tp.Plan(context.Background(), testContext(), map[string]any{"name": map[string]any{"value": "stg1"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range p.Resources {
		fmt.Println(r.ID, r.Body["location"])
	}
	// Output: /subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/stg1 westus
}

// A parameter file and a request's bare parameters object read alike.
func TestParseParameters(t *testing.T) {
	for _, in := range []string{
		`{"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#", "contentVersion": "1.0.0.0", "parameters": {"a": {"value": 1}}}`,
		`{"a": {"value": 1}}`,
	} {
		p, err := ParseParameters([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		plan := mustPlan(t, head+`"parameters": {"a": {"type": "int"}}, "resources": []}`, p)
		if plan.Parameters[0].Value != int64(1) {
			t.Fatalf("a = %#v", plan.Parameters[0].Value)
		}
	}
	if _, err := ParseParameters([]byte(`[1]`)); err == nil {
		t.Fatal("an array was accepted as parameters")
	}
}

// The error envelope carries ARM's TemplateViolation position.
func TestEnvelope(t *testing.T) {
	tp, _ := Parse([]byte(head + "\n\"parameters\": {\"a\": {\"type\": \"int\"}}, \"resources\": []}"))
	_, err := tp.Plan(context.Background(), testContext(), nil)
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatal(err)
	}
	env := ae.Envelope()
	info := env["additionalInfo"].([]any)[0].(map[string]any)["info"].(map[string]any)
	if env["code"] != CodeInvalidTemplate || info["lineNumber"] != 2 || info["path"] != "parameters.a" {
		t.Fatalf("envelope %v", env)
	}
}
