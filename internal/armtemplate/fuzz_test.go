package armtemplate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzExpression feeds the expression parser and evaluator arbitrary text:
// every input either evaluates or fails with an error, never a panic or a
// runaway.
func FuzzExpression(f *testing.F) {
	for _, s := range []string{
		"concat('a', 'b')", "parameters('p').x[0]", "if(true(), 1, variables('nope'))",
		"format('{0:N2}', 1234)", "'it''s'", "add(-1, 2)", "createArray(1, 2)[5]",
		"map(range(0, 3), lambda('i', mul(lambdaVariables('i'), 2)))", "split('a,b', createArray(',', ''))",
		"uniqueString('x')", "guid('a')", "dateTimeAdd('2020-01-01T00:00:00Z', 'P1Y2M3DT4H5M6S', 'o')",
		"json('{''a'': [1, 2]}').a", "substring('abc', 1)", "padLeft(1, 5, '0')", "contoso.f('x')", "(", "a.b(", "'",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseExpr(s)
		if err != nil {
			return
		}
		dc := testContext()
		steps := 0
		p := NewObject()
		p.Set("p", NewObject())
		ev := &evaluator{dc: &dc, t: &Template{funcs: map[string]*userFunc{}}, params: p, vars: map[string]*variable{}, steps: &steps, section: secOutputs, ctx: context.Background()}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = ev.eval(e, &scope{}, 0)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("evaluation of %q did not end", s)
		}
	})
}

// FuzzPlan feeds Parse, Plan and Run arbitrary templates (seeded with the
// conformance suite): errors must be *Error, never a panic.
func FuzzPlan(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			if tmpl := extractTemplate(b); tmpl != nil {
				f.Add(tmpl)
			}
		}
	}
	f.Add([]byte(head + `"resources": []}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			planAndRun(t, data)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("Plan and Run of %q did not end", data)
		}
	})
}

func planAndRun(t *testing.T, data []byte) {
	{
		tp, err := Parse(data)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) {
				t.Errorf("Parse error %T: %v", err, err)
			}
			return
		}
		dc := testContext()
		p, err := tp.Plan(context.Background(), dc, nil)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) {
				t.Errorf("Plan error %T: %v", err, err)
			}
			return
		}
		if _, err := p.Run(context.Background(), &recorder{}); err != nil {
			var ae *Error
			if !errors.As(err, &ae) {
				t.Errorf("Run error %T: %v", err, err)
			}
		}
	}
}

// extractTemplate takes the "template" member of a conformance case.
func extractTemplate(b []byte) []byte {
	n, err := parseJSON(string(b), false)
	if err != nil {
		return nil
	}
	tn := n.get("template")
	if tn == nil {
		return nil
	}
	v, err := marshalValue(tn.toValue())
	if err != nil {
		return nil
	}
	return v
}
