package armtemplate

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Bounds on one evaluation. A value may not grow past the template size
// limit (4 MB, learn.microsoft.com/azure/azure-resource-manager/templates/best-practices#template-limits):
// nothing a valid template builds is larger. The step bound stops a
// template whose lambdas and loops would run for ever.
const (
	maxValueBytes = 4 << 20
	maxSteps      = 2_000_000
	// maxAlloc bounds what all the function results of one deployment's
	// evaluation may add up to (each charged its own size, not its
	// elements', which were charged when they were made).
	maxAlloc = 256 << 20
)

// errNeedsRuntime marks an evaluation that needs Resource Manager
// (reference(), list*()): at plan time the element is deferred to Run.
var errNeedsRuntime = errors.New("needs the deployment's run time")

// section names where an expression stands, for the functions that may be
// used only in some places.
type section int

const (
	secParamDefault section = iota
	secVariables
	secResources
	secOutputs
	secFunction
)

// scope is what names resolve to at one point of an evaluation.
type scope struct {
	parent *scope
	// copy loop name (lower-cased; "" for the resource's own loop) → index
	copyIdx map[string]int64
	lambda  map[string]any
}

func (s *scope) copyIndex(name string) (int64, bool) {
	for c := s; c != nil; c = c.parent {
		if v, ok := c.copyIdx[strings.ToLower(name)]; ok {
			return v, true
		}
	}
	return 0, false
}

func (s *scope) lambdaVar(name string) (any, bool) {
	for c := s; c != nil; c = c.parent {
		if v, ok := c.lambda[strings.ToLower(name)]; ok {
			return v, true
		}
	}
	return nil, false
}

// evaluator evaluates expressions for one template in one deployment.
type evaluator struct {
	dc     *Context
	t      *Template
	params *Object
	vars   map[string]*variable
	// run is set while a deployment runs: reference() and list*() may then
	// be answered.
	run   *runState
	ctx   context.Context
	steps *int
	// alloc is what the evaluation has built so far, in bytes.
	alloc   *int
	section section
	// fn is set inside a user-defined function: its own parameters.
	fn *Object
	// outer is the evaluator of the enclosing template for a nested
	// deployment with outer scope ("expressionEvaluationOptions.scope":
	// "outer"): parameters and variables resolve there.
	outer *evaluator
}

// variable is a template variable, evaluated on first use.
type variable struct {
	name  string
	n     *node
	state int // 0 new, 1 evaluating, 2 done
	val   any
	err   error
	// copyInput is set for a variable made by the variables "copy" array.
	copyCount, copyInput *node
}

// lambdaValue is what lambda() returns: usable only as an argument of
// filter, map, reduce, sort, toObject.
type lambdaValue struct {
	params []string
	body   expr
	sc     *scope
}

func (ev *evaluator) step() error {
	*ev.steps++
	if *ev.steps > maxSteps {
		return errf("The template evaluation exceeded the limit of %d steps", maxSteps)
	}
	if ev.ctx != nil && *ev.steps%4096 == 0 {
		if err := ev.ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// evalString evaluates a template string: an expression, or a literal.
func (ev *evaluator) evalString(s string, sc *scope) (any, error) {
	isExpr, lit := isExpression(s)
	if !isExpr {
		return lit, nil
	}
	e, err := parseExpr(lit)
	if err != nil {
		return nil, err
	}
	return ev.eval(e, sc, 0)
}

// evalNode evaluates a JSON element: every string in it that is an
// expression is replaced by its value; a "copy" array inside an object
// makes properties (property iteration, learn.microsoft.com/azure/azure-resource-manager/templates/copy-properties).
func (ev *evaluator) evalNode(n *node, sc *scope, path string) (any, error) {
	if err := ev.step(); err != nil {
		return nil, err
	}
	switch n.kind {
	case nString:
		return ev.evalString(n.str, sc)
	case nArray:
		out := make([]any, 0, len(n.arr))
		for i, e := range n.arr {
			v, err := ev.evalNode(e, sc, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case nObject:
		o := NewObject()
		for i, k := range n.keys {
			vn := n.vals[i]
			if strings.EqualFold(k, "copy") && vn.kind == nArray && isPropertyCopy(vn) {
				if err := ev.propertyCopy(o, vn, sc, joinPath(path, k)); err != nil {
					return nil, err
				}
				continue
			}
			v, err := ev.evalNode(vn, sc, joinPath(path, k))
			if err != nil {
				return nil, err
			}
			o.Set(k, v)
		}
		return o, nil
	}
	return n.toValue(), nil
}

// isPropertyCopy tells a property-iteration "copy" array (objects with
// name, count, input) from a property that merely is called copy.
func isPropertyCopy(n *node) bool {
	if len(n.arr) == 0 {
		return false
	}
	for _, e := range n.arr {
		if e.kind != nObject || e.get("name") == nil || e.get("count") == nil || e.get("input") == nil {
			return false
		}
	}
	return true
}

func (ev *evaluator) propertyCopy(o *Object, n *node, sc *scope, path string) error {
	for i, c := range n.arr {
		name, count, err := ev.copySpec(c, sc, fmt.Sprintf("%s[%d]", path, i))
		if err != nil {
			return err
		}
		items := make([]any, 0, count)
		for k := int64(0); k < count; k++ {
			inner := &scope{parent: sc, copyIdx: map[string]int64{strings.ToLower(name): k}}
			v, err := ev.evalNode(c.get("input"), inner, path)
			if err != nil {
				return err
			}
			items = append(items, v)
		}
		o.Set(name, items)
	}
	return nil
}

// maxCopy is ARM's bound on one copy loop: "The count can't exceed 800"
// (learn.microsoft.com/azure/azure-resource-manager/templates/copy-resources#iteration-for-a-resource).
const maxCopy = 800

// copySpec evaluates a copy element's name and count.
func (ev *evaluator) copySpec(c *node, sc *scope, path string) (string, int64, error) {
	nn := c.get("name")
	if nn == nil || nn.kind != nString || nn.str == "" {
		return "", 0, errf("The copy name at '%s' must be a non-empty string", path)
	}
	cn := c.get("count")
	if cn == nil {
		return "", 0, errf("The copy '%s' must have a count", nn.str)
	}
	v, err := ev.evalNode(cn, sc, path+".count")
	if err != nil {
		return "", 0, err
	}
	count, ok := v.(int64)
	if !ok {
		return "", 0, errf("The copy count must be an integer. The provided value is of type '%s'", typeName(v))
	}
	if count < 0 {
		return "", 0, errf("The copy count must be a non-negative integer value. Please see %s for usage details", seeCopy)
	}
	if count > maxCopy {
		return "", 0, errf("The copy count '%d' exceeds the limit of '%d'. Please see %s for usage details", count, maxCopy, seeCopy)
	}
	return nn.str, count, nil
}

// eval evaluates one parsed expression.
func (ev *evaluator) eval(e expr, sc *scope, depth int) (any, error) {
	if depth > maxExprDepth*4 {
		return nil, errf("The template expression is nested deeper than the limit")
	}
	if err := ev.step(); err != nil {
		return nil, err
	}
	switch t := e.(type) {
	case *litExpr:
		return t.v, nil
	case *propExpr:
		target, err := ev.eval(t.target, sc, depth+1)
		if err != nil {
			return nil, err
		}
		return property(target, t.name)
	case *indexExpr:
		target, err := ev.eval(t.target, sc, depth+1)
		if err != nil {
			return nil, err
		}
		idx, err := ev.eval(t.index, sc, depth+1)
		if err != nil {
			return nil, err
		}
		return index(target, idx)
	case *callExpr:
		return ev.call(t, sc, depth)
	}
	return nil, errf("unknown expression")
}

// property reads o.name; ARM's messages when it cannot.
func property(target any, name string) (any, error) {
	o, ok := target.(*Object)
	if !ok {
		return nil, errf("The language expression property '%s' can't be evaluated, the value is of type '%s'", name, typeName(target))
	}
	v, ok := o.Get(name)
	if !ok {
		return nil, errf("The language expression property '%s' doesn't exist, available properties are '%s'", name, strings.Join(o.keys, ", "))
	}
	return v, nil
}

func index(target, idx any) (any, error) {
	switch t := target.(type) {
	case []any:
		i, ok := idx.(int64)
		if !ok {
			return nil, errf("The language expression property array index must be an integer; the value is of type '%s'", typeName(idx))
		}
		if i < 0 || i >= int64(len(t)) {
			return nil, errf("The language expression property array index '%d' is out of bounds", i)
		}
		return t[i], nil
	case *Object:
		s, ok := idx.(string)
		if !ok {
			return nil, errf("The language expression property name must be a string; the value is of type '%s'", typeName(idx))
		}
		return property(t, s)
	}
	return nil, errf("The language expression property can't be evaluated on a value of type '%s'", typeName(target))
}

func (ev *evaluator) call(c *callExpr, sc *scope, depth int) (any, error) {
	// Lazy functions: their arguments are not all evaluated.
	switch c.name {
	case "if":
		// Only the branch taken is evaluated
		// (learn.microsoft.com/azure/azure-resource-manager/templates/template-functions-logical#if).
		if len(c.args) != 3 {
			return nil, arity(c, "three")
		}
		cond, err := ev.eval(c.args[0], sc, depth+1)
		if err != nil {
			return nil, err
		}
		b, ok := cond.(bool)
		if !ok {
			return nil, typeErr(c, "Boolean", cond)
		}
		if b {
			return ev.eval(c.args[1], sc, depth+1)
		}
		return ev.eval(c.args[2], sc, depth+1)
	case "lambda":
		if len(c.args) < 1 {
			return nil, arity(c, "at least one")
		}
		lv := &lambdaValue{body: c.args[len(c.args)-1], sc: sc}
		for _, a := range c.args[:len(c.args)-1] {
			l, ok := a.(*litExpr)
			s, isStr := "", false
			if ok {
				s, isStr = l.v.(string)
			}
			if !isStr {
				return nil, errf("The template language function 'lambda' expects its parameter names to be string literals")
			}
			lv.params = append(lv.params, s)
		}
		return lv, nil
	}
	args := make([]any, len(c.args))
	for i, a := range c.args {
		v, err := ev.eval(a, sc, depth+1)
		if err != nil {
			return nil, err
		}
		if _, isLambda := v.(*lambdaValue); isLambda && !takesLambda(c.name) {
			return nil, errf("The template language function 'lambda' is not expected at this location: it can only be an argument of filter, map, reduce, sort or toObject")
		}
		args[i] = v
	}
	if strings.Contains(c.name, ".") {
		return ev.callUser(c, args, depth)
	}
	if strings.HasPrefix(c.name, "list") && c.name != "listvalues" {
		return ev.list(c, args)
	}
	f, ok := builtins[c.name]
	if !ok {
		return nil, errf("The template function '%s' is not valid. Please see %s for usage details", c.text, seeFunctions)
	}
	v, err := f(ev, c, sc, args)
	if err != nil {
		return nil, err
	}
	return v, ev.charge(c, v)
}

// charge counts a function result against the evaluation's bounds: one
// value may not exceed the template size limit, all of them together not
// maxAlloc. Only the value's own size is counted (a string's bytes, an
// array's or object's slots), so charging is cheap.
func (ev *evaluator) charge(c *callExpr, v any) error {
	n := 0
	switch t := v.(type) {
	case string:
		n = len(t)
	case []any:
		n = 16 * len(t)
	case *Object:
		n = 32 * t.Len()
	default:
		return nil
	}
	if n > maxValueBytes {
		return errf("The result of the template function '%s' exceeds the limit of %d bytes", c.text, maxValueBytes)
	}
	if ev.alloc != nil {
		*ev.alloc += n
		if *ev.alloc > maxAlloc {
			return errf("The template evaluation exceeded the limit of %d bytes", maxAlloc)
		}
	}
	return nil
}

func takesLambda(name string) bool {
	switch name {
	case "filter", "map", "reduce", "sort", "toobject", "mapvalues", "groupby":
		return true
	}
	return false
}

// callLambda applies a lambda to arguments.
func (ev *evaluator) callLambda(fn string, v any, args ...any) (any, error) {
	lv, ok := v.(*lambdaValue)
	if !ok {
		return nil, errf("The template language function '%s' expects a lambda function as its parameter", fn)
	}
	if len(lv.params) != len(args) {
		return nil, errf("The lambda function of '%s' must have %d parameter(s), but has %d", fn, len(args), len(lv.params))
	}
	sc := &scope{parent: lv.sc, lambda: map[string]any{}}
	for i, p := range lv.params {
		sc.lambda[strings.ToLower(p)] = args[i]
	}
	return ev.eval(lv.body, sc, 0)
}

func arity(c *callExpr, want string) error {
	return errf("The template language function '%s' must have %s parameter(s). Please see %s for usage details", c.text, want, seeFunctions)
}

func typeErr(c *callExpr, want string, got any) error {
	return errf("The template language function '%s' expects its parameter to be of type '%s'. The provided value is of type '%s'. Please see %s for usage details", c.text, want, typeName(got), seeFunctions)
}

// callUser calls a user-defined function. Such a function sees only its
// own parameters; it cannot read the template's variables or parameters,
// nor call reference(), list*() or other user-defined functions
// (learn.microsoft.com/azure/azure-resource-manager/templates/user-defined-functions#limitations).
func (ev *evaluator) callUser(c *callExpr, args []any, depth int) (any, error) {
	if ev.fn != nil {
		return nil, errf("The template function '%s' is not valid: a user-defined function can't call another user-defined function", c.text)
	}
	uf := ev.t.funcs[c.name]
	if uf == nil {
		return nil, errf("The template function '%s' is not defined. Please see %s for usage details", c.text, seeFunctions)
	}
	if len(args) != len(uf.params) {
		return nil, errf("The template user-defined function '%s' expects %d parameter(s), but %d were given", c.text, len(uf.params), len(args))
	}
	fnParams := NewObject()
	for i, p := range uf.params {
		if err := checkType(p.typ, args[i]); err != nil {
			return nil, errf("The template user-defined function '%s' parameter '%s' is not valid: %v", c.text, p.name, err)
		}
		fnParams.Set(p.name, args[i])
	}
	inner := &evaluator{dc: ev.dc, t: ev.t, ctx: ev.ctx, steps: ev.steps, alloc: ev.alloc, section: secFunction, fn: fnParams}
	v, err := inner.evalNode(uf.output, &scope{}, "")
	if err != nil {
		return nil, err
	}
	if err := checkType(uf.outType, v); err != nil {
		return nil, errf("The template user-defined function '%s' output is not valid: %v", c.text, err)
	}
	return v, nil
}

// checkType checks a value against a template type name (string,
// securestring, int, bool, object, secureobject, array).
func checkType(typ string, v any) error {
	var ok bool
	want := typ
	switch strings.ToLower(typ) {
	case "string", "securestring":
		_, ok = v.(string)
		want = "String"
	case "int":
		_, ok = v.(int64)
		want = "Integer"
	case "bool":
		_, ok = v.(bool)
		want = "Boolean"
	case "object", "secureobject":
		_, ok = v.(*Object)
		want = "Object"
	case "array":
		_, ok = v.([]any)
		want = "Array"
	default:
		return errf("The type '%s' is not valid. Supported types are 'string, securestring, int, bool, object, secureObject, array'", typ)
	}
	if !ok {
		return errf("Expected a value of type '%s' but received a value of type '%s'", want, typeName(v))
	}
	return nil
}

// variable returns a variable's value, evaluating it on first use.
func (ev *evaluator) variable(name string) (any, error) {
	if ev.outer != nil {
		return ev.outer.variable(name)
	}
	v := ev.vars[strings.ToLower(name)]
	if v == nil {
		return nil, errf("The template variable '%s' is not found. Please see %s for usage details", name, seeTemplate)
	}
	switch v.state {
	case 1:
		return nil, errf("The template variable '%s' is not valid: a circular reference to it was found", name)
	case 2:
		return v.val, v.err
	}
	v.state = 1
	inner := *ev
	inner.section = secVariables
	if v.copyInput != nil {
		var items []any
		_, count, err := inner.copySpec(v.n, &scope{}, "variables.copy")
		if err == nil {
			for k := int64(0); k < count; k++ {
				var item any
				item, err = inner.evalNode(v.copyInput, &scope{copyIdx: map[string]int64{strings.ToLower(v.name): k}}, "variables."+v.name)
				if err != nil {
					break
				}
				items = append(items, item)
			}
		}
		v.val, v.err = items, err
		if v.val == nil && err == nil {
			v.val = []any{}
		}
	} else {
		v.val, v.err = inner.evalNode(v.n, &scope{}, "variables."+v.name)
	}
	if v.err != nil && !errors.Is(v.err, errNeedsRuntime) {
		if _, ok := v.err.(*Error); !ok {
			v.err = elementError("variable", v.name, v.n, "variables."+v.name, v.err)
		}
	}
	v.state = 2
	if errors.Is(v.err, errNeedsRuntime) {
		v.state = 0 // evaluate again when the deployment runs
	}
	return v.val, v.err
}

// parameter returns a parameter's value.
func (ev *evaluator) parameter(name string) (any, error) {
	if ev.fn != nil {
		if v, ok := ev.fn.Get(name); ok {
			return v, nil
		}
		return nil, errf("The template function parameter '%s' is not found", name)
	}
	if ev.outer != nil {
		return ev.outer.parameter(name)
	}
	if v, ok := ev.params.Get(name); ok {
		return v, nil
	}
	return nil, errf("The template parameter '%s' is not found. Please see %s for usage details", name, seeTemplate)
}
