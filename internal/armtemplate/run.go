package armtemplate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Deployer deploys one resource of a plan (a PUT to its resource
// provider) and returns the resource's state as reference() reads it: the
// whole resource (id, name, type, location, properties, …).
type Deployer interface {
	Deploy(ctx context.Context, r *PlannedResource) (map[string]any, error)
}

// NestedObserver is what a Deployer may also be: told before a nested
// deployment (a Microsoft.Resources/deployments resource of the template)
// runs, which an error refuses, and after it ran, with its result or
// error, so that Resource Manager can authorize it and record it as a
// deployment of its own.
type NestedObserver interface {
	NestedStart(ctx context.Context, r *PlannedResource) error
	NestedEnd(ctx context.Context, r *PlannedResource, res *Result, err error)
}

// Output is one evaluated output ({"type": …, "value": …} in ARM's
// deployment properties).
type Output struct {
	Name  string
	Type  string
	Value any
}

// Result is what a deployment produced.
type Result struct {
	Outputs []Output
	// States are the deployed resources' states by id.
	States map[string]map[string]any
}

// runState is what reference() and list*() see while a plan runs.
type runState struct {
	ctx      context.Context
	plan     *Plan
	resolver Resolver
	mu       sync.Mutex
	states   map[string]*Object // lower-cased id → state
	parent   *runState
	// sem bounds the resources deployed at once: one per deployment,
	// shared by its nested deployments, so nesting does not multiply it.
	sem chan struct{}
}

// acquire takes a deployment slot, or fails when ctx is done first.
func (rs *runState) acquire(ctx context.Context) error {
	select {
	case rs.sem <- struct{}{}:
		if err := ctx.Err(); err != nil {
			<-rs.sem
			return err
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (rs *runState) state(id string) (*Object, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	s, ok := rs.states[strings.ToLower(id)]
	return s, ok
}

// find locates a template resource by what reference() was given.
func (rs *runState) find(target string) *PlannedResource {
	all := make([]*instance, len(rs.plan.Resources))
	for i, r := range rs.plan.Resources {
		all[i] = &instance{r: r}
	}
	m := rs.plan.match(all, target)
	if len(m) == 1 {
		return m[0]
	}
	return nil
}

func (rs *runState) reference(ev *evaluator, target, apiVersion string, full bool) (any, error) {
	if r := rs.find(target); r != nil {
		if r.Existing {
			return rs.external(r.ID, r.APIVersion, full)
		}
		s, ok := rs.state(r.ID)
		if !ok {
			return nil, errf("The resource '%s' is referenced before it is deployed; add it to dependsOn", r.ID)
		}
		return referenceOf(s, full), nil
	}
	for p := rs.parent; p != nil; p = p.parent {
		if r := p.find(target); r != nil {
			if s, ok := p.state(r.ID); ok {
				return referenceOf(s, full), nil
			}
		}
	}
	if !strings.HasPrefix(target, "/") {
		return nil, errf("The resource '%s' is not defined in the template. Please see %s for usage details", target, seeResources)
	}
	if apiVersion == "" {
		return nil, errf("The template function 'reference' needs an API version for the resource '%s', which is not deployed by this template", target)
	}
	return rs.external(target, apiVersion, full)
}

// referenceOf is what reference() answers of a deployed resource's
// state: the whole resource, or its properties (an empty object when it
// has none).
func referenceOf(s *Object, full bool) any {
	if full {
		return s
	}
	if props, ok := s.Get("properties"); ok {
		return props
	}
	return NewObject()
}

func (rs *runState) external(id, apiVersion string, full bool) (any, error) {
	if rs.resolver == nil {
		return nil, errf("The resource '%s' can't be referenced here", id)
	}
	v, err := rs.resolver.Reference(rs.ctx, id, apiVersion, full)
	if err != nil {
		return nil, err
	}
	return FromPlain(v), nil
}

func (rs *runState) list(ev *evaluator, id, action, apiVersion string, body any) (any, error) {
	if rs.resolver == nil {
		return nil, errf("The template function '%s' can't be evaluated here", action)
	}
	if r := rs.find(id); r != nil {
		id = r.ID
	}
	if !strings.HasPrefix(id, "/") {
		return nil, errf("The template function '%s' needs a resource id; '%s' is not one", action, id)
	}
	v, err := rs.resolver.List(rs.ctx, id, action, apiVersion, body)
	if err != nil {
		return nil, err
	}
	return FromPlain(v), nil
}

// failure is one resource's failure, as a DeploymentFailed detail.
func failure(r *PlannedResource, err error) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		d := *ae
		if d.Target == "" {
			d.Target = r.ID
		}
		return &d
	}
	var xe *exprError
	if errors.As(err, &xe) {
		// ARM's wording for expressions that fail while deploying.
		return &Error{Code: CodeInvalidTemplate, Target: r.ID, Line: r.Line, Column: r.Column,
			Message: fmt.Sprintf("Unable to process template language expressions for resource '%s' at line '%d' and column '%d'. '%s'", r.ID, r.Line, r.Column, xe.Error())}
	}
	return &Error{Code: "ResourceDeploymentFailure", Target: r.ID, Message: err.Error()}
}

// Run deploys the plan: each resource after its dependencies, independent
// ones in parallel (at most MaxParallel at once, nested deployments'
// resources included), serial copy loops in
// their batches; nested deployments run as their own plans. A failed
// resource stops its dependents; the others still deploy, and the error
// is DeploymentFailed with one detail per failure. Then the outputs are
// evaluated.
func (p *Plan) Run(ctx context.Context, d Deployer) (*Result, error) {
	return p.run(ctx, d, nil)
}

func (p *Plan) run(ctx context.Context, d Deployer, parent *runState) (*Result, error) {
	rs := &runState{ctx: ctx, plan: p, resolver: p.dc.Resolver, states: map[string]*Object{}, parent: parent}
	if parent != nil {
		rs.sem = parent.sem
	} else {
		limit := p.MaxParallel
		if limit <= 0 {
			limit = 8
		}
		rs.sem = make(chan struct{}, limit)
	}
	var evalMu sync.Mutex // the evaluator caches variables: one evaluation at a time
	done := map[string]chan struct{}{}
	failed := map[string]bool{}
	var mu sync.Mutex
	var failures []*Error
	for _, r := range p.Resources {
		done[strings.ToLower(r.ID)] = make(chan struct{})
	}
	var wg sync.WaitGroup
	for _, r := range p.Resources {
		wg.Add(1)
		go func(r *PlannedResource) {
			defer wg.Done()
			defer close(done[strings.ToLower(r.ID)])
			for _, dep := range r.DependsOn {
				if ch := done[strings.ToLower(dep)]; ch != nil {
					<-ch
				}
			}
			mu.Lock()
			for _, dep := range r.DependsOn {
				if failed[strings.ToLower(dep)] {
					failed[strings.ToLower(r.ID)] = true
					mu.Unlock()
					return
				}
			}
			mu.Unlock()
			state, err := p.deployOne(ctx, d, rs, r, &evalMu)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[strings.ToLower(r.ID)] = true
				failures = append(failures, failure(r, err))
				return
			}
			rs.mu.Lock()
			rs.states[strings.ToLower(r.ID)] = state
			rs.mu.Unlock()
		}(r)
	}
	wg.Wait()
	if len(failures) > 0 {
		return nil, &Error{Code: CodeDeploymentFailed, Details: failures,
			Message: "At least one resource deployment operation failed. Please list deployment operations for details. Please see " + seeDeploy + " for usage details."}
	}
	res := &Result{States: map[string]map[string]any{}}
	for id, s := range rs.states {
		res.States[id] = Plain(s).(map[string]any)
	}
	outs, err := p.outputs(ctx, rs)
	if err != nil {
		return nil, err
	}
	res.Outputs = outs
	return res, nil
}

// deployOne evaluates a deferred body, then deploys the resource (or runs
// the nested deployment) and returns its state. A resource holds a slot
// of rs.sem while it is read or deployed; a nested deployment holds none
// itself, its resources take theirs.
func (p *Plan) deployOne(ctx context.Context, d Deployer, rs *runState, r *PlannedResource, evalMu *sync.Mutex) (*Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.Existing {
		if err := rs.acquire(ctx); err != nil {
			return nil, err
		}
		defer func() { <-rs.sem }()
		v, err := rs.external(r.ID, r.APIVersion, true)
		if err != nil {
			return nil, err
		}
		o, _ := v.(*Object)
		return o, nil
	}
	if r.Deferred {
		evalMu.Lock()
		p.ev.run = rs
		p.ev.section = secResources
		body, err := p.bodyValue(r)
		if err == nil && strings.EqualFold(r.Type, DeploymentsType) {
			err = p.planNested(r, body)
		}
		p.ev.run = nil
		evalMu.Unlock()
		if err != nil {
			return nil, err
		}
		r.Body = Plain(body).(map[string]any)
		r.Deferred = false
	}
	if r.Nested != nil {
		obs, _ := d.(NestedObserver)
		if obs != nil {
			if err := obs.NestedStart(ctx, r); err != nil {
				return nil, err
			}
		}
		res, err := r.Nested.run(ctx, d, rs)
		if obs != nil {
			obs.NestedEnd(ctx, r, res, err)
		}
		if err != nil {
			return nil, err
		}
		outs := NewObject()
		for _, o := range res.Outputs {
			ov := NewObject()
			ov.Set("type", o.Type)
			ov.Set("value", FromPlain(o.Value))
			outs.Set(o.Name, ov)
		}
		props := NewObject()
		props.Set("outputs", outs)
		props.Set("provisioningState", "Succeeded")
		state := NewObject()
		state.Set("id", r.ID)
		state.Set("name", r.Name)
		state.Set("type", r.Type)
		state.Set("properties", props)
		return state, nil
	}
	if err := rs.acquire(ctx); err != nil {
		return nil, err
	}
	st, err := d.Deploy(ctx, r)
	<-rs.sem
	if err != nil {
		return nil, err
	}
	o, _ := FromPlain(st).(*Object)
	if o == nil {
		o = NewObject()
	}
	return o, nil
}

// outputs evaluates the outputs section: conditions, copy, and the
// declared type of each value.
func (p *Plan) outputs(ctx context.Context, rs *runState) ([]Output, error) {
	on := p.t.outputs
	if on == nil {
		return nil, nil
	}
	ev := p.ev
	ev.run, ev.section, ev.ctx = rs, secOutputs, ctx
	defer func() { ev.run = nil }()
	var out []Output
	for i, name := range on.keys {
		def := on.vals[i]
		path := "outputs." + name
		wrap := func(err error) error { return elementError("output", name, def, path, err) }
		if cond := def.get("condition"); cond != nil {
			v, err := ev.evalNode(cond, &scope{}, path+".condition")
			if err != nil {
				return nil, wrap(err)
			}
			b, ok := v.(bool)
			if !ok {
				return nil, wrap(errf("The output condition must evaluate to a boolean"))
			}
			if !b {
				continue
			}
		}
		typ := def.get("type").str
		var val any
		var err error
		if cn := def.get("copy"); cn != nil {
			// Output iteration: copy {count, input} gives an array
			// (learn.microsoft.com/azure/azure-resource-manager/templates/copy-outputs).
			if cn.kind != nObject || cn.get("count") == nil || cn.get("input") == nil {
				return nil, wrap(errf("The output copy must have a count and an input"))
			}
			cv, cerr := ev.evalNode(cn.get("count"), &scope{}, path+".copy.count")
			count, ok := cv.(int64)
			if cerr != nil {
				return nil, wrap(cerr)
			}
			if !ok || count < 0 || count > maxCopy {
				return nil, wrap(errf("The output copy count must be an integer from 0 to %d", maxCopy))
			}
			items := make([]any, 0, count)
			for k := int64(0); k < count; k++ {
				v, err := ev.evalNode(cn.get("input"), &scope{copyIdx: map[string]int64{"": k}}, path+".copy.input")
				if err != nil {
					return nil, wrap(err)
				}
				items = append(items, v)
			}
			val = items
		} else {
			val, err = ev.evalNode(def.get("value"), &scope{}, path+".value")
			if err != nil {
				return nil, wrap(err)
			}
		}
		if err := checkType(typ, val); err != nil {
			return nil, wrap(errf("The template output '%s' is not valid: %v", name, err))
		}
		if valueSize(val) > maxValueBytes {
			return nil, wrap(errf("The template output '%s' exceeds the limit of %d bytes", name, maxValueBytes))
		}
		out = append(out, Output{Name: name, Type: TypeName(typ), Value: Plain(val)})
	}
	return out, nil
}

// TypeName is a parameter's or output's type as ARM reports it in a
// deployment's parameters and outputs (String, SecureString, Int, …).
func TypeName(typ string) string {
	switch strings.ToLower(typ) {
	case "string":
		return "String"
	case "securestring":
		return "SecureString"
	case "int":
		return "Int"
	case "bool":
		return "Bool"
	case "object":
		return "Object"
	case "secureobject":
		return "SecureObject"
	case "array":
		return "Array"
	}
	return typ
}
