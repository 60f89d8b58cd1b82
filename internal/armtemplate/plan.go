package armtemplate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Plan is a template evaluated for one deployment: the resources to
// deploy, in an order that honours every dependency, with what could be
// evaluated before the deployment runs.
type Plan struct {
	// Resources in dependency order (each after everything it depends on).
	Resources []*PlannedResource
	// Parameters are the deployment's parameter values, in template order.
	Parameters []ParameterValue
	// MaxParallel bounds how many resources Run deploys at once (ARM
	// deploys independent resources in parallel); 0 means 8.
	MaxParallel int

	t     *Template
	ev    *evaluator
	dc    Context
	depth int
}

// ParameterValue is one parameter's value; Secure ones (securestring,
// secureObject) must never be echoed back.
type ParameterValue struct {
	Name   string
	Type   string
	Value  any
	Secure bool
}

// PlannedResource is one resource (one copy instance) of the plan.
type PlannedResource struct {
	ID         string
	Type       string
	Name       string
	APIVersion string
	// Symbol is the symbolic name (languageVersion 2.0), else "".
	Symbol string
	// Existing resources ("existing": true, languageVersion 2.0) are not
	// deployed; reference() reads them.
	Existing bool
	// Body is the evaluated resource (location, tags, sku, kind,
	// properties, …) as plain values; nil while Deferred.
	Body map[string]any
	// Deferred: the body uses reference() or list*(), so it is evaluated
	// when the deployment runs, after its dependencies.
	Deferred bool
	// DependsOn are the ids of the resources this one waits for: its
	// dependsOn, the resources its reference()/list*() calls name, and
	// for a serial copy loop the previous batch.
	DependsOn []string
	// CopyName and CopyIndex place a copy instance in its loop.
	CopyName  string
	CopyIndex int
	// Nested is the plan of a nested (inline) deployment
	// (Microsoft.Resources/deployments with properties.template), when it
	// could be built before running.
	Nested *Plan
	// Line and Column place the resource in the template.
	Line, Column int

	def   *resourceDef
	sc    *scope
	plan  *Plan
	inner bool // nested deployment evaluated in its own (inner) scope
}

// DeploymentsType is the resource type of nested deployments.
const DeploymentsType = "Microsoft.Resources/deployments"

// Plan validates the parameters against the template, evaluates
// variables, conditions, copy loops and dependencies, and returns the
// ordered plan. params is a parameter file's "parameters" object: each
// value {"value": …} or a Key Vault reference {"reference": {"keyVault":
// {"id": …}, "secretName": …, "secretVersion": …}}.
func (t *Template) Plan(ctx context.Context, dc Context, params map[string]any) (*Plan, error) {
	return t.plan(ctx, dc, params, nil, 0)
}

func (t *Template) plan(ctx context.Context, dc Context, params map[string]any, outer *evaluator, depth int) (*Plan, error) {
	steps, alloc := new(int), new(int)
	if outer != nil {
		steps, alloc = outer.steps, outer.alloc
	}
	ev := &evaluator{dc: &dc, t: t, ctx: ctx, steps: steps, alloc: alloc, vars: map[string]*variable{}, outer: outer}
	p := &Plan{t: t, ev: ev, dc: dc, depth: depth}
	if outer == nil {
		if err := p.bindParameters(ctx, params); err != nil {
			return nil, err
		}
		if err := t.bindVariables(ev); err != nil {
			return nil, err
		}
		// Every variable is evaluated now, used or not, as ARM validates
		// them; afterwards the evaluator only reads them, so resources
		// evaluated in parallel while the deployment runs share them safely.
		ev.section = secVariables
		var keys []string
		if t.vars != nil {
			keys = t.vars.keys
		}
		for _, k := range keys {
			name := k
			if strings.EqualFold(k, "copy") && t.vars.get(k).kind == nArray {
				for _, c := range t.vars.get(k).arr {
					if _, err := ev.variable(c.get("name").str); err != nil {
						return nil, err
					}
				}
				continue
			}
			if _, err := ev.variable(name); err != nil {
				return nil, err
			}
		}
	}
	if err := p.expand(); err != nil {
		return nil, err
	}
	if err := p.order(); err != nil {
		return nil, err
	}
	return p, nil
}

// ---- parameters ----

// ParseParameters reads a parameter file (with "$schema" and
// "parameters") or the bare "parameters" object of a deployment request.
func ParseParameters(data []byte) (map[string]any, error) {
	n, err := parseJSON(string(data), false)
	if err != nil {
		return nil, &Error{Code: CodeInvalidTemplate, Message: "Deployment parameters parse failed: '" + err.Error() + "'."}
	}
	if n.kind != nObject {
		return nil, &Error{Code: CodeInvalidTemplate, Message: "The deployment parameters must be a JSON object."}
	}
	if p := n.get("parameters"); p != nil && n.get("$schema") != nil {
		n = p
		if n.kind != nObject {
			return nil, &Error{Code: CodeInvalidTemplate, Message: "The parameters of a parameter file must be a JSON object."}
		}
	}
	out := map[string]any{}
	for i, k := range n.keys {
		out[k] = n.vals[i].toValue()
	}
	return out, nil
}

func paramError(format string, args ...any) *Error {
	return validationFailed(nil, "", fmt.Sprintf(format, args...))
}

func (p *Plan) bindParameters(ctx context.Context, params map[string]any) error {
	t, ev := p.t, p.ev
	ev.params = NewObject()
	supplied := map[string]any{}
	var unknown []string
	for k, v := range params {
		found := false
		for _, d := range t.params {
			if strings.EqualFold(d.name, k) {
				found = true
				supplied[strings.ToLower(k)] = v
			}
		}
		if !found {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		names := make([]string, len(t.params))
		for i, d := range t.params {
			names[i] = d.name
		}
		// ARM's wording for parameters the template does not declare.
		return paramError("The template parameters '%s' in the parameters file are not valid; they are not present in the original template and can therefore not be provided at deployment time. The only supported parameters for this template are '%s'. Please see %s for usage details.",
			strings.Join(unknown, ", "), strings.Join(names, ", "), seeParameters)
	}
	for _, d := range t.params {
		var val any
		raw, given := supplied[strings.ToLower(d.name)]
		if given {
			v, err := p.suppliedValue(ctx, d, raw)
			if err != nil {
				return err
			}
			val = v
		} else if d.def != nil {
			ev.section = secParamDefault
			v, err := ev.evalNode(d.def, &scope{}, "parameters."+d.name+".defaultValue")
			if err != nil {
				return elementError("parameter", d.name, d.n, "parameters."+d.name, err)
			}
			val = v
		} else {
			return validationFailed(d.n, "parameters."+d.name, fmt.Sprintf("The value for the template parameter '%s'%s is not provided. Please see %s for usage details.", d.name, at(d.n), seeParameters))
		}
		if err := p.checkParameter(d, FromPlain(val)); err != nil {
			return err
		}
		ev.params.Set(d.name, FromPlain(val))
		p.Parameters = append(p.Parameters, ParameterValue{Name: d.name, Type: d.n.get("type").str, Value: Plain(FromPlain(val)), Secure: d.secure()})
	}
	return nil
}

// seeKeyVaultParameter is Azure's page on Key Vault references.
const seeKeyVaultParameter = "https://aka.ms/arm-keyvault"

// suppliedValue unwraps {"value": v} or resolves a Key Vault reference
// (learn.microsoft.com/azure/azure-resource-manager/templates/key-vault-parameter).
func (p *Plan) suppliedValue(ctx context.Context, d *paramDef, raw any) (any, error) {
	o, ok := FromPlain(raw).(*Object)
	if !ok {
		return nil, paramError("The value of the deployment parameter '%s' must be an object with a 'value' or a 'reference'. Please see %s for usage details.", d.name, seeParameters)
	}
	if v, ok := o.Get("value"); ok {
		return v, nil
	}
	refV, ok := o.Get("reference")
	ref, isObj := refV.(*Object)
	if !ok || !isObj {
		return nil, paramError("The value of the deployment parameter '%s' must be an object with a 'value' or a 'reference'. Please see %s for usage details.", d.name, seeParameters)
	}
	kvV, _ := ref.Get("keyVault")
	kv, _ := kvV.(*Object)
	idV, _ := kv.Get("id")
	id, _ := idV.(string)
	nameV, _ := ref.Get("secretName")
	secretName, _ := nameV.(string)
	verV, _ := ref.Get("secretVersion")
	version, _ := verV.(string)
	if id == "" || secretName == "" {
		return nil, paramError("The Key Vault reference of the deployment parameter '%s' must have keyVault.id and secretName. Please see %s for usage details.", d.name, seeParameters)
	}
	// Only a securestring takes a secret: Azure's documentation declares
	// every referenced parameter securestring, and a parameter of another
	// type would show the secret in the deployment's record, its
	// operations and outputs, which a secure parameter never does.
	if d.typ != "securestring" {
		return nil, paramError("The deployment parameter '%s' is of type '%s'; a Key Vault reference can only give a securestring parameter. Please see %s for usage details.", d.name, d.n.get("type").str, seeKeyVaultParameter)
	}
	if p.dc.Resolver == nil {
		return nil, paramError("The Key Vault reference of the deployment parameter '%s' can't be resolved here.", d.name)
	}
	s, err := p.dc.Resolver.KeyVaultSecret(ctx, id, secretName, version)
	if err != nil {
		var ae *Error
		if errors.As(err, &ae) {
			return nil, ae
		}
		// ARM reports the failure as the parameter's.
		return nil, &Error{Code: "KeyVaultParameterReferenceSecretRetrieveFailed", Message: fmt.Sprintf("The value of deployment parameter '%s' is null. Please specify the value or use the parameter reference. See https://aka.ms/resource-manager-parameter-files for details. Reason: %v", d.name, err), Target: d.name}
	}
	return s, nil
}

// checkParameter checks a value against its definition's type,
// allowedValues, minValue/maxValue and minLength/maxLength
// (learn.microsoft.com/azure/azure-resource-manager/templates/parameters).
func (p *Plan) checkParameter(d *paramDef, v any) error {
	path := "parameters." + d.name
	want := map[string]string{"string": "String", "securestring": "String", "int": "Integer", "bool": "Boolean", "object": "Object", "secureobject": "Object", "array": "Array"}[d.typ]
	if checkType(d.typ, v) != nil {
		return validationFailed(d.n, path, fmt.Sprintf("Template parameter JToken type is not valid. Expected '%s'. Actual '%s'. Please see %s for usage details.", want, typeName(v), seeParameters))
	}
	shown := toText(v)
	if d.secure() {
		shown = "******"
	}
	invalidValue := func(why string) error {
		return validationFailed(d.n, path, fmt.Sprintf("The provided value '%s' for the template parameter '%s'%s is not valid. %s", shown, d.name, at(d.n), why))
	}
	if an := d.n.get("allowedValues"); an != nil {
		if an.kind != nArray {
			return validationFailed(an, path+".allowedValues", fmt.Sprintf("The template parameter '%s'%s is not valid: allowedValues must be an array.", d.name, at(an)))
		}
		allowed := an.toValue().([]any)
		items := []any{v}
		if arr, ok := v.([]any); ok {
			items = arr
		}
		for _, it := range items {
			if !containsValue(allowed, it) {
				list := make([]string, len(allowed))
				for i, a := range allowed {
					list[i] = toText(a)
				}
				return invalidValue("The parameter value is not part of the allowed value(s): '" + strings.Join(list, ",") + "'.")
			}
		}
	}
	limit := func(key string) (int64, bool, error) {
		n := d.n.get(key)
		if n == nil {
			return 0, false, nil
		}
		i, ok := n.num.(int64)
		if n.kind != nNumber || !ok {
			return 0, false, validationFailed(n, path+"."+key, fmt.Sprintf("The template parameter '%s'%s is not valid: %s must be an integer.", d.name, at(n), key))
		}
		return i, true, nil
	}
	if iv, ok := v.(int64); ok {
		if lo, has, err := limit("minValue"); err != nil {
			return err
		} else if has && iv < lo {
			return invalidValue(fmt.Sprintf("The value must be greater than or equal to '%d'.", lo))
		}
		if hi, has, err := limit("maxValue"); err != nil {
			return err
		} else if has && iv > hi {
			return invalidValue(fmt.Sprintf("The value must be less than or equal to '%d'.", hi))
		}
	}
	var length int64 = -1
	switch t := v.(type) {
	case string:
		length = int64(len(units(t)))
	case []any:
		length = int64(len(t))
	}
	if length >= 0 {
		if lo, has, err := limit("minLength"); err != nil {
			return err
		} else if has && length < lo {
			return invalidValue(fmt.Sprintf("The length of the value must be greater than or equal to '%d'.", lo))
		}
		if hi, has, err := limit("maxLength"); err != nil {
			return err
		} else if has && length > hi {
			return invalidValue(fmt.Sprintf("The length of the value must be less than or equal to '%d'.", hi))
		}
	}
	return nil
}

// ---- variables ----

// bindVariables records the variables (evaluated on first use), including
// those made by the variables section's "copy" array
// (learn.microsoft.com/azure/azure-resource-manager/templates/copy-variables).
func (t *Template) bindVariables(ev *evaluator) error {
	if t.vars == nil {
		return nil
	}
	for i, k := range t.vars.keys {
		vn := t.vars.vals[i]
		if strings.EqualFold(k, "copy") && vn.kind == nArray {
			for j, c := range vn.arr {
				name := c.get("name")
				if c.kind != nObject || name == nil || name.kind != nString || c.get("count") == nil || c.get("input") == nil {
					return invalid(c, fmt.Sprintf("variables.copy[%d]", j), "The template variable copy%s is not valid: it must have a name, a count and an input. Please see %s for usage details.", at(c), seeCopy)
				}
				ev.vars[strings.ToLower(name.str)] = &variable{name: name.str, n: c, copyCount: c.get("count"), copyInput: c.get("input")}
			}
			continue
		}
		ev.vars[strings.ToLower(k)] = &variable{name: k, n: vn}
	}
	return nil
}

// ---- resources ----

// instance is one resource after conditions and copies, before ordering.
type instance struct {
	r    *PlannedResource
	deps []string // dependsOn entries as evaluated
}

func (p *Plan) resourceError(def *resourceDef, name string, err error) error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	return elementError("resource", name, def.n, def.path, err)
}

// expand evaluates each resource's condition, copy, name, type and id,
// and (when it can) its body.
func (p *Plan) expand() error {
	ev := p.ev
	ev.section = secResources
	var all []*instance
	skippedNames := map[string]bool{}
	for _, def := range p.t.resources {
		insts, skipped, err := p.expandDef(def)
		if err != nil {
			return err
		}
		for _, s := range skipped {
			skippedNames[strings.ToLower(s)] = true
		}
		all = append(all, insts...)
		if len(all) > maxResources {
			return invalid(def.n, def.path, "The number of template resources '%d' exceeds the limit of '%d' (including copy count). Please see https://aka.ms/arm-template-best-practices for usage details.", len(all), maxResources)
		}
	}
	seen := map[string]*PlannedResource{}
	for _, in := range all {
		k := strings.ToLower(in.r.ID)
		if prev := seen[k]; prev != nil {
			return invalid(in.r.def.n, in.r.def.path, "The resource '%s' at line '%d' and column '%d' is defined multiple times in a template. Please see %s for usage details.", in.r.ID, in.r.Line, in.r.Column, seeResources)
		}
		seen[k] = in.r
	}
	// Dependencies: dependsOn, then reference()/list*() targets.
	for _, in := range all {
		deps := map[string]bool{}
		for _, id := range in.r.DependsOn { // a serial copy loop's previous batch
			deps[id] = true
		}
		in.r.DependsOn = nil
		for _, d := range in.deps {
			targets := p.match(all, d)
			if len(targets) == 0 {
				if skippedNames[strings.ToLower(d)] || p.skippedMatch(d, skippedNames) {
					continue // a dependency on a resource whose condition is false is dropped
				}
				return invalid(in.r.def.n, in.r.def.path+".dependsOn", "The resource '%s' is not defined in the template. Please see %s for usage details.", d, seeResources)
			}
			for _, t := range targets {
				if t != in.r {
					deps[t.ID] = true
				}
			}
		}
		for _, target := range p.referenceTargets(in) {
			for _, t := range p.match(all, target) {
				if t != in.r {
					deps[t.ID] = true
				}
			}
		}
		for id := range deps {
			in.r.DependsOn = append(in.r.DependsOn, id)
		}
		sort.Strings(in.r.DependsOn)
		p.Resources = append(p.Resources, in.r)
	}
	return nil
}

func (p *Plan) skippedMatch(d string, skipped map[string]bool) bool {
	ld := strings.ToLower(d)
	for s := range skipped {
		if strings.HasSuffix(ld, "/"+s) || strings.HasSuffix(s, ld) {
			return true
		}
	}
	return false
}

// match finds the resources a dependsOn entry or reference() target
// names: a symbolic name (languageVersion 2.0), a resource id (fully
// qualified or "Namespace/type/name"), a copy loop's name (all its
// instances), or a resource name.
func (p *Plan) match(all []*instance, target string) []*PlannedResource {
	var out []*PlannedResource
	lt := strings.ToLower(strings.TrimSpace(target))
	if lt == "" {
		return nil
	}
	try := func(f func(r *PlannedResource) bool) bool {
		for _, in := range all {
			if f(in.r) {
				out = append(out, in.r)
			}
		}
		return len(out) > 0
	}
	if p.t.symbolic && try(func(r *PlannedResource) bool { return strings.ToLower(r.Symbol) == lt }) {
		return out
	}
	if try(func(r *PlannedResource) bool { return strings.ToLower(r.ID) == lt }) {
		return out
	}
	if strings.Contains(lt, "/") && try(func(r *PlannedResource) bool {
		return strings.HasSuffix(strings.ToLower(r.ID), "/providers/"+lt) || strings.ToLower(unqualifiedID(r)) == lt
	}) {
		return out
	}
	if try(func(r *PlannedResource) bool { return r.CopyName != "" && strings.ToLower(r.CopyName) == lt }) {
		return out
	}
	try(func(r *PlannedResource) bool { return strings.ToLower(r.Name) == lt })
	return out
}

// unqualifiedID is "Namespace/type/name[/type/name…]".
func unqualifiedID(r *PlannedResource) string {
	segs := strings.Split(r.Type, "/")
	names := strings.Split(r.Name, "/")
	if len(names) != len(segs)-1 {
		return r.Type + "/" + r.Name
	}
	return strings.TrimPrefix(providerPath(r.Type, names), "/providers/")
}

// referenceTargets evaluates the first argument of every reference() and
// list*() call in a resource, as ARM does to add implicit dependencies.
func (p *Plan) referenceTargets(in *instance) []string {
	var out []string
	var walk func(n *node, top bool)
	walk = func(n *node, top bool) {
		switch n.kind {
		case nString:
			isExpr, lit := isExpression(n.str)
			if !isExpr {
				return
			}
			e, err := parseExpr(lit)
			if err != nil {
				return
			}
			walkCalls(e, func(c *callExpr) {
				if (c.name == "reference" || strings.HasPrefix(c.name, "list")) && len(c.args) > 0 {
					if v, err := p.ev.eval(c.args[0], in.r.sc, 0); err == nil {
						if s, ok := v.(string); ok {
							out = append(out, s)
						}
					}
				}
			})
		case nArray:
			for _, e := range n.arr {
				walk(e, false)
			}
		case nObject:
			for i, k := range n.keys {
				if top && (strings.EqualFold(k, "dependsOn") || strings.EqualFold(k, "resources") || strings.EqualFold(k, "copy")) {
					continue
				}
				walk(n.vals[i], false)
			}
		}
	}
	walk(in.r.def.n, true)
	return out
}

// expandDef evaluates one resource definition into its instances; skipped
// lists the names of instances whose condition is false.
func (p *Plan) expandDef(def *resourceDef) (insts []*instance, skipped []string, err error) {
	ev := p.ev
	n := def.n
	base := &scope{}
	count, copyName := int64(1), ""
	var mode, batch int64 = 0, 0 // mode 1 = serial
	if cn := n.get("copy"); cn != nil {
		if cn.kind != nObject {
			return nil, nil, invalid(cn, def.path+".copy", "The template resource copy%s must be an object. Please see %s for usage details.", at(cn), seeCopy)
		}
		name, c, err := ev.copySpec(cn, base, def.path+".copy")
		if err != nil {
			return nil, nil, p.resourceError(def, rawName(n), err)
		}
		count, copyName = c, name
		if m := cn.get("mode"); m != nil {
			if m.kind != nString || (!strings.EqualFold(m.str, "serial") && !strings.EqualFold(m.str, "parallel")) {
				return nil, nil, invalid(m, def.path+".copy.mode", "The copy mode '%s' is not valid. Allowed values are 'Serial' and 'Parallel'. Please see %s for usage details.", m.str, seeCopy)
			}
			if strings.EqualFold(m.str, "serial") {
				mode, batch = 1, 1
			}
		}
		if b := cn.get("batchSize"); b != nil {
			v, err := ev.evalNode(b, base, def.path+".copy.batchSize")
			bi, ok := v.(int64)
			if err != nil || !ok || bi < 1 || bi > maxCopy {
				return nil, nil, invalid(b, def.path+".copy.batchSize", "The copy batchSize must be an integer from 1 to %d. Please see %s for usage details.", maxCopy, seeCopy)
			}
			if mode == 1 {
				batch = bi
			}
		}
	}
	var prevBatch []*PlannedResource
	var curBatch []*PlannedResource
	for i := int64(0); i < count; i++ {
		sc := base
		if copyName != "" {
			sc = &scope{parent: base, copyIdx: map[string]int64{"": i, strings.ToLower(copyName): i}}
		}
		r := &PlannedResource{def: def, sc: sc, plan: p, Symbol: def.symbol, Line: n.line, Column: n.col, CopyName: copyName, CopyIndex: int(i)}
		if err := p.identify(r); err != nil {
			return nil, nil, err
		}
		if cond := n.get("condition"); cond != nil {
			v, err := ev.evalNode(cond, sc, def.path+".condition")
			if err != nil {
				return nil, nil, p.resourceError(def, r.Name, err)
			}
			b, ok := v.(bool)
			if !ok {
				return nil, nil, p.resourceError(def, r.Name, errf("The template resource condition must evaluate to a boolean. The provided value is of type '%s'", typeName(v)))
			}
			if !b {
				skipped = append(skipped, r.Name, r.ID, unqualifiedID(r))
				if def.symbol != "" {
					skipped = append(skipped, def.symbol)
				}
				if copyName != "" {
					skipped = append(skipped, copyName)
				}
				continue
			}
		}
		in := &instance{r: r}
		if dn := n.get("dependsOn"); dn != nil {
			v, err := ev.evalNode(dn, sc, def.path+".dependsOn")
			if err != nil {
				return nil, nil, p.resourceError(def, r.Name, err)
			}
			arr, ok := v.([]any)
			if !ok {
				return nil, nil, p.resourceError(def, r.Name, errf("The dependsOn property must be an array of strings"))
			}
			for _, d := range arr {
				s, ok := d.(string)
				if !ok {
					return nil, nil, p.resourceError(def, r.Name, errf("The dependsOn property must be an array of strings"))
				}
				in.deps = append(in.deps, s)
			}
		}
		if mode == 1 {
			for _, prev := range prevBatch {
				r.DependsOn = append(r.DependsOn, prev.ID)
			}
			curBatch = append(curBatch, r)
			if int64(len(curBatch)) == batch {
				prevBatch, curBatch = curBatch, nil
			}
		}
		if err := p.evalBody(r); err != nil {
			return nil, nil, err
		}
		insts = append(insts, in)
	}
	return insts, skipped, nil
}

func rawName(n *node) string {
	if nn := n.get("name"); nn != nil && nn.kind == nString {
		return nn.str
	}
	return ""
}

// identify evaluates a resource instance's type, name and apiVersion and
// computes its id. These may not use reference() or list*().
func (p *Plan) identify(r *PlannedResource) error {
	ev, def, n := p.ev, r.def, r.def.n
	get := func(key string) (string, error) {
		v, err := ev.evalNode(n.get(key), r.sc, def.path+"."+key)
		if errors.Is(err, errNeedsRuntime) {
			err = errf("The template function 'reference' is not expected at this location: the resource %s must be known before the deployment runs", key)
		}
		if err != nil {
			return "", p.resourceError(def, rawName(n), err)
		}
		s, ok := v.(string)
		if !ok || s == "" {
			return "", p.resourceError(def, rawName(n), errf("The %s property must be a non-empty string", key))
		}
		return s, nil
	}
	var err error
	if r.Type, err = get("type"); err != nil {
		return err
	}
	if r.Name, err = get("name"); err != nil {
		return err
	}
	if r.APIVersion, err = get("apiVersion"); err != nil {
		return err
	}
	if def.parent != nil {
		parent, perr := p.parentOf(def)
		if perr != nil {
			return perr
		}
		if !strings.Contains(r.Type, "/") {
			r.Type = parent.Type + "/" + r.Type
			r.Name = parent.Name + "/" + r.Name
		}
	}
	if ex := n.get("existing"); ex != nil {
		if !p.t.symbolic || ex.kind != nBool {
			return invalid(ex, def.path+".existing", "The template resource '%s'%s is not valid: 'existing' is allowed only with languageVersion '2.0' and must be a boolean. Please see %s for usage details.", r.Name, at(n), seeResources)
		}
		r.Existing = ex.b
	}
	typeSegs := strings.Split(r.Type, "/")
	nameSegs := strings.Split(r.Name, "/")
	if len(typeSegs) < 2 || len(typeSegs) != len(nameSegs)+1 {
		// ARM's wording (learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-invalid-template#solution-2---incorrect-segment-lengths).
		return validationFailed(n, def.path, fmt.Sprintf("The template resource '%s' for type '%s'%s has incorrect segment lengths. A nested resource type must have identical number of segments as its resource name. A root resource type must have segment length one greater than its resource name. Please see %s for usage details.", r.Name, r.Type, at(n), seeResources))
	}
	for _, s := range append(typeSegs, nameSegs...) {
		if s == "" {
			return validationFailed(n, def.path, fmt.Sprintf("The template resource '%s' for type '%s'%s is not valid: a segment of its name or type is empty. Please see %s for usage details.", r.Name, r.Type, at(n), seeResources))
		}
	}
	prefix := ""
	if sn := n.get("scope"); sn != nil {
		v, err := ev.evalNode(sn, r.sc, def.path+".scope")
		if err != nil {
			return p.resourceError(def, r.Name, err)
		}
		s, ok := v.(string)
		if !ok || s == "" {
			return p.resourceError(def, r.Name, errf("The scope property must be a non-empty string"))
		}
		if !strings.HasPrefix(s, "/") && p.t.symbolic {
			target := p.symbolID(s)
			if target == "" {
				return p.resourceError(def, r.Name, errf("The scope '%s' does not name a resource of the template", s))
			}
			s = target
		}
		if !strings.HasPrefix(s, "/") {
			return p.resourceError(def, r.Name, errf("The scope '%s' must be a fully qualified resource id", s))
		}
		prefix = strings.TrimRight(s, "/")
	} else {
		sub, rg := p.dc.SubscriptionID, p.dc.ResourceGroup
		// Nested deployments and existing resources may name another
		// resource group or subscription (languageVersion 2.0 "existing"
		// resources: learn.microsoft.com/azure/azure-resource-manager/templates/resource-declaration).
		if strings.EqualFold(r.Type, DeploymentsType) || r.Existing {
			for key, dst := range map[string]*string{"subscriptionId": &sub, "resourceGroup": &rg} {
				if kn := n.get(key); kn != nil {
					v, err := ev.evalNode(kn, r.sc, def.path+"."+key)
					s, ok := v.(string)
					if err != nil || !ok || s == "" {
						return p.resourceError(def, r.Name, errf("The %s property must be a non-empty string", key))
					}
					*dst = s
				}
			}
		}
		prefix = "/subscriptions/" + sub
		if rg != "" {
			prefix += "/resourceGroups/" + rg
		}
	}
	r.ID = prefix + providerPath(r.Type, nameSegs)
	return nil
}

// parentOf finds the (single) instance of a nested resource's parent.
func (p *Plan) parentOf(def *resourceDef) (*PlannedResource, error) {
	parent := &PlannedResource{def: def.parent, sc: &scope{}, plan: p}
	if err := p.identify(parent); err != nil {
		return nil, err
	}
	return parent, nil
}

// symbolID is the id of the resource with a symbolic name.
func (p *Plan) symbolID(sym string) string {
	for _, def := range p.t.resources {
		if strings.EqualFold(def.symbol, sym) && def.n.get("copy") == nil {
			r := &PlannedResource{def: def, sc: &scope{}, plan: p}
			if p.identify(r) == nil {
				return r.ID
			}
		}
	}
	return ""
}

// evalBody evaluates a resource's body; one that needs reference() or
// list*() is deferred to Run. A nested deployment gets its plan.
func (p *Plan) evalBody(r *PlannedResource) error {
	body, err := p.bodyValue(r)
	if errors.Is(err, errNeedsRuntime) {
		r.Deferred = true
		return nil
	}
	if err == nil && valueSize(body) > maxResourceBytes {
		err = errf("The resource definition exceeds the limit of %d bytes", maxResourceBytes)
	}
	if err != nil {
		return p.resourceError(r.def, r.Name, err)
	}
	r.Body = Plain(body).(map[string]any)
	if strings.EqualFold(r.Type, DeploymentsType) {
		return p.planNested(r, body)
	}
	return nil
}

// bodyValue evaluates everything of a resource but its bookkeeping
// (condition, copy, dependsOn, nested resources) and, for a nested
// deployment, its inner template, which its own plan evaluates.
func (p *Plan) bodyValue(r *PlannedResource) (*Object, error) {
	out := NewObject()
	n := r.def.n
	for i, k := range n.keys {
		switch strings.ToLower(k) {
		case "condition", "copy", "dependson", "resources", "existing", "comments":
			continue
		case "type":
			out.Set(k, r.Type)
			continue
		case "name":
			out.Set(k, r.Name)
			continue
		case "properties":
			if strings.EqualFold(r.Type, DeploymentsType) && n.vals[i].kind == nObject {
				props := NewObject()
				pn := n.vals[i]
				for j, pk := range pn.keys {
					if strings.EqualFold(pk, "template") {
						continue
					}
					v, err := p.ev.evalNode(pn.vals[j], r.sc, r.def.path+".properties."+pk)
					if err != nil {
						return nil, err
					}
					props.Set(pk, v)
				}
				out.Set(k, props)
				continue
			}
		}
		v, err := p.ev.evalNode(n.vals[i], r.sc, r.def.path+"."+k)
		if err != nil {
			return nil, err
		}
		out.Set(k, v)
	}
	return out, nil
}

// planNested builds the plan of a nested deployment with an inline
// template (learn.microsoft.com/azure/azure-resource-manager/templates/linked-templates#nested-template).
// With expressionEvaluationOptions.scope "inner" the inner template has
// its own parameters (given in properties.parameters) and variables; with
// "outer" (the default) its expressions see the parent's.
func (p *Plan) planNested(r *PlannedResource, body *Object) error {
	propsN := r.def.n.get("properties")
	if propsN == nil || propsN.kind != nObject {
		return p.resourceError(r.def, r.Name, errf("A deployment resource must have properties"))
	}
	if propsN.get("templateLink") != nil {
		return p.resourceError(r.def, r.Name, errf("Linked templates (properties.templateLink) are not supported; give the template inline in properties.template"))
	}
	tn := propsN.get("template")
	if tn == nil {
		return p.resourceError(r.def, r.Name, errf("The deployment resource must have properties.template"))
	}
	if p.depth+1 > maxNesting {
		return p.resourceError(r.def, r.Name, errf("Nested deployments are nested deeper than the limit of %d", maxNesting))
	}
	inner, terr := parseTemplateNode(tn)
	if terr != nil {
		return terr
	}
	inner.Hash = p.t.Hash
	propsV, _ := body.Get("properties")
	props, _ := propsV.(*Object)
	innerScope := false
	if eo, ok := props.Get("expressionEvaluationOptions"); ok {
		if eoo, ok := eo.(*Object); ok {
			if s, ok := eoo.Get("scope"); ok {
				ss, _ := s.(string)
				switch strings.ToLower(ss) {
				case "inner":
					innerScope = true
				case "outer":
				default:
					return p.resourceError(r.def, r.Name, errf("The expressionEvaluationOptions scope '%v' is not valid. Allowed values are 'inner' and 'outer'", s))
				}
			}
		}
	}
	r.inner = innerScope
	dc := p.dc
	dc.DeploymentName = r.Name
	if nr, ok := dc.Resolver.(NestedResolver); ok {
		dc.Resolver = nr.Nested()
	}
	if idx := strings.Index(strings.ToLower(r.ID), "/resourcegroups/"); idx >= 0 {
		rest := r.ID[idx+len("/resourceGroups/"):]
		rg := rest[:strings.IndexByte(rest, '/')]
		if !strings.EqualFold(rg, dc.ResourceGroup) {
			dc.ResourceGroupLocation, dc.ResourceGroupTags = "", nil
		}
		dc.ResourceGroup = rg
	}
	dc.SubscriptionID = strings.Split(r.ID, "/")[2]
	ctx := p.ev.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	var nested *Plan
	var err error
	if innerScope {
		params := map[string]any{}
		if pv, ok := props.Get("parameters"); ok {
			po, ok := pv.(*Object)
			if !ok {
				return p.resourceError(r.def, r.Name, errf("The deployment parameters must be an object"))
			}
			params = Plain(po).(map[string]any)
		}
		nested, err = inner.plan(ctx, dc, params, nil, p.depth+1)
	} else {
		if len(inner.params) > 0 || inner.vars != nil {
			// With outer scope the nested template's own parameters and
			// variables would never be read.
			return p.resourceError(r.def, r.Name, errf("A nested template evaluated in the outer scope can't declare parameters or variables; set expressionEvaluationOptions.scope to 'inner'"))
		}
		nested, err = inner.plan(ctx, dc, nil, p.ev, p.depth+1)
	}
	if err != nil {
		return err
	}
	r.Nested = nested
	return nil
}

// order sorts the resources so each comes after its dependencies and
// refuses a cycle (ARM: "Circular dependency detected on resource").
func (p *Plan) order() error {
	byID := map[string]*PlannedResource{}
	for _, r := range p.Resources {
		byID[strings.ToLower(r.ID)] = r
	}
	state := map[*PlannedResource]int{}
	var out []*PlannedResource
	var visit func(r *PlannedResource) *PlannedResource
	visit = func(r *PlannedResource) *PlannedResource {
		switch state[r] {
		case 1:
			return r
		case 2:
			return nil
		}
		state[r] = 1
		for _, d := range r.DependsOn {
			if dep := byID[strings.ToLower(d)]; dep != nil {
				if c := visit(dep); c != nil {
					return c
				}
			}
		}
		state[r] = 2
		out = append(out, r)
		return nil
	}
	for _, r := range p.Resources {
		if c := visit(r); c != nil {
			return validationFailed(c.def.n, c.def.path, fmt.Sprintf("Circular dependency detected on resource: '%s'. Please see %s for usage details.", c.ID, seeResources))
		}
	}
	p.Resources = out
	return nil
}

// MarshalJSON writes a plan for logs and tests (secure parameter values
// masked).
func (p *Plan) MarshalJSON() ([]byte, error) {
	params := make([]ParameterValue, len(p.Parameters))
	for i, v := range p.Parameters {
		if v.Secure {
			v.Value = nil
		}
		params[i] = v
	}
	type plan struct {
		Parameters []ParameterValue
		Resources  []*PlannedResource
	}
	return json.Marshal(plan{Parameters: params, Resources: p.Resources})
}

// TemplateHash is the templateHash of the plan's template (Template.Hash),
// which a deployment's properties show.
func (p *Plan) TemplateHash() string { return p.t.Hash }
