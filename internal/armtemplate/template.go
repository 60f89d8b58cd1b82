package armtemplate

import (
	"fmt"
	"strconv"
	"strings"
)

// Limits Resource Manager documents for one template
// (learn.microsoft.com/azure/azure-resource-manager/templates/best-practices#template-limits):
// 4 MB, each resource definition 1 MB, 256 parameters, 512 variables, 800
// resources including copy count, 64 outputs. Nested deployments count
// their own; the nesting depth bound is ours.
const (
	MaxTemplateBytes = 4 << 20
	maxResourceBytes = 1 << 20
	maxParameters    = 256
	maxVariables     = 512
	maxResources     = 800
	maxOutputs       = 64
	maxNesting       = 10
)

// Template is a parsed template.
type Template struct {
	Schema          string
	ContentVersion  string
	LanguageVersion string
	// Hash is templateHash: a digest of the template text.
	Hash string

	root      *node
	params    []*paramDef
	vars      *node
	funcs     map[string]*userFunc
	resources []*resourceDef
	outputs   *node
	// symbolic: languageVersion 2.0, resources keyed by symbolic name.
	symbolic bool
}

type paramDef struct {
	name string
	n    *node
	typ  string // lower-cased
	def  *node
}

func (p *paramDef) secure() bool { return p.typ == "securestring" || p.typ == "secureobject" }

// SecureParameters names the template's securestring and secureObject
// parameters, whose values must never be stored in the clear nor shown.
func (t *Template) SecureParameters() []string {
	var names []string
	for _, p := range t.params {
		if p.secure() {
			names = append(names, p.name)
		}
	}
	return names
}

type userFunc struct {
	params  []funcParam
	output  *node
	outType string
}

type funcParam struct{ name, typ string }

// resourceDef is a resource as written (before conditions and copies).
type resourceDef struct {
	symbol string // languageVersion 2.0
	n      *node
	parent *resourceDef // for resources nested in another's "resources"
	path   string
}

// Parse reads a template. Errors are *Error with code InvalidTemplate.
func Parse(data []byte) (*Template, error) {
	if len(data) > MaxTemplateBytes {
		return nil, &Error{Code: CodeInvalidTemplate, Message: fmt.Sprintf("Deployment template validation failed: 'The template size of %d bytes exceeds the limit of %d bytes. Please see https://aka.ms/arm-template-best-practices for usage details.'.", len(data), MaxTemplateBytes)}
	}
	root, err := parseJSON(string(data), false)
	if err != nil {
		e := &Error{Code: CodeInvalidTemplate, Message: "Deployment template parse failed: '" + err.Error() + "'."}
		if je, ok := err.(*jsonError); ok {
			e.Line, e.Column, e.Path = je.line, je.col, je.path
		}
		return nil, e
	}
	t, perr := parseTemplateNode(root)
	if perr != nil {
		return nil, perr
	}
	t.Hash = strconv.FormatUint(murmur64(data), 10)
	return t, nil
}

func invalid(n *node, path, format string, args ...any) *Error {
	return validationFailed(n, path, fmt.Sprintf(format, args...))
}

func parseTemplateNode(root *node) (*Template, *Error) {
	if root.kind != nObject {
		return nil, invalid(root, "", "The template must be a JSON object. Please see %s for usage details.", seeTemplate)
	}
	t := &Template{root: root, funcs: map[string]*userFunc{}}
	for _, req := range []string{"$schema", "contentVersion"} {
		n := root.get(req)
		if n == nil || n.kind != nString {
			return nil, invalid(root, req, "The template property '%s' is missing or is not a string. Please see %s for usage details.", req, seeTemplate)
		}
	}
	t.Schema = root.get("$schema").str
	t.ContentVersion = root.get("contentVersion").str
	if lv := root.get("languageVersion"); lv != nil {
		if lv.kind != nString {
			return nil, invalid(lv, "languageVersion", "The template language version must be a string.")
		}
		switch lv.str {
		case "1.0", "":
		case "2.0", "1.10-experimental", "1.9-experimental":
			t.symbolic = true
		default:
			return nil, invalid(lv, "languageVersion", "The template language version '%s' is not supported. Please see %s for usage details.", lv.str, seeTemplate)
		}
		t.LanguageVersion = lv.str
	}
	if p := root.get("parameters"); p != nil {
		if p.kind != nObject {
			return nil, invalid(p, "parameters", "The template parameters section must be an object.")
		}
		if len(p.keys) > maxParameters {
			return nil, invalid(p, "parameters", "The number of template parameters '%d' exceeds the limit of '%d'. Please see https://aka.ms/arm-template-best-practices for usage details.", len(p.keys), maxParameters)
		}
		for i, name := range p.keys {
			def := p.vals[i]
			path := "parameters." + name
			if def.kind != nObject {
				return nil, invalid(def, path, "The template parameter '%s'%s is not valid: the definition must be an object.", name, at(def))
			}
			typ := def.get("type")
			if typ == nil || typ.kind != nString {
				return nil, invalid(def, path, "The template parameter '%s'%s is not valid: the parameter type is missing. Please see %s for usage details.", name, at(def), seeTemplate)
			}
			lt := strings.ToLower(typ.str)
			switch lt {
			case "string", "securestring", "int", "bool", "object", "secureobject", "array":
			default:
				return nil, invalid(typ, path+".type", "The template parameter '%s'%s is not valid: the type '%s' is not supported. Supported types are 'string, securestring, int, bool, object, secureObject, array'.", name, at(typ), typ.str)
			}
			t.params = append(t.params, &paramDef{name: name, n: def, typ: lt, def: def.get("defaultValue")})
		}
	}
	if v := root.get("variables"); v != nil {
		if v.kind != nObject {
			return nil, invalid(v, "variables", "The template variables section must be an object.")
		}
		if len(v.keys) > maxVariables {
			return nil, invalid(v, "variables", "The number of template variables '%d' exceeds the limit of '%d'. Please see https://aka.ms/arm-template-best-practices for usage details.", len(v.keys), maxVariables)
		}
		t.vars = v
	}
	if err := t.parseFunctions(root.get("functions")); err != nil {
		return nil, err
	}
	if err := t.parseResources(root.get("resources")); err != nil {
		return nil, err
	}
	if o := root.get("outputs"); o != nil {
		if o.kind != nObject {
			return nil, invalid(o, "outputs", "The template outputs section must be an object.")
		}
		if len(o.keys) > maxOutputs {
			return nil, invalid(o, "outputs", "The number of template outputs '%d' exceeds the limit of '%d'. Please see https://aka.ms/arm-template-best-practices for usage details.", len(o.keys), maxOutputs)
		}
		for i, name := range o.keys {
			def := o.vals[i]
			typ := def.get("type")
			if def.kind != nObject || typ == nil || typ.kind != nString || (def.get("value") == nil && def.get("copy") == nil) {
				return nil, invalid(def, "outputs."+name, "The template output '%s'%s is not valid: an output must have a type and a value or copy. Please see %s for usage details.", name, at(def), seeTemplate)
			}
			if err := checkType(typ.str, typeSample(typ.str)); err != nil {
				return nil, invalid(typ, "outputs."+name+".type", "The template output '%s'%s is not valid: %v.", name, at(typ), err)
			}
		}
		t.outputs = o
	}
	return t, nil
}

// typeSample is a value of a type name, to check the name is known.
func typeSample(typ string) any {
	switch strings.ToLower(typ) {
	case "string", "securestring":
		return ""
	case "int":
		return int64(0)
	case "bool":
		return false
	case "object", "secureobject":
		return NewObject()
	case "array":
		return []any{}
	}
	return nil
}

// parseFunctions reads user-defined functions
// (learn.microsoft.com/azure/azure-resource-manager/templates/user-defined-functions).
func (t *Template) parseFunctions(f *node) *Error {
	if f == nil {
		return nil
	}
	if f.kind != nArray {
		return invalid(f, "functions", "The template functions section must be an array.")
	}
	for i, nsn := range f.arr {
		path := fmt.Sprintf("functions[%d]", i)
		ns := nsn.get("namespace")
		members := nsn.get("members")
		if ns == nil || ns.kind != nString || ns.str == "" || members == nil || members.kind != nObject {
			return invalid(nsn, path, "The template function namespace%s is not valid: it must have a namespace and members.", at(nsn))
		}
		for j, name := range members.keys {
			m := members.vals[j]
			mpath := path + ".members." + name
			out := m.get("output")
			if m.kind != nObject || out == nil || out.get("value") == nil || out.get("type") == nil || out.get("type").kind != nString {
				return invalid(m, mpath, "The template function '%s.%s'%s is not valid: it must have an output with a type and a value.", ns.str, name, at(m))
			}
			uf := &userFunc{output: out.get("value"), outType: out.get("type").str}
			if ps := m.get("parameters"); ps != nil {
				if ps.kind != nArray {
					return invalid(ps, mpath+".parameters", "The template function '%s.%s' parameters must be an array.", ns.str, name)
				}
				for _, p := range ps.arr {
					pn, pt := p.get("name"), p.get("type")
					if pn == nil || pn.kind != nString || pt == nil || pt.kind != nString {
						return invalid(p, mpath+".parameters", "The template function '%s.%s'%s is not valid: each parameter must have a name and a type.", ns.str, name, at(p))
					}
					uf.params = append(uf.params, funcParam{name: pn.str, typ: pt.str})
				}
			}
			key := strings.ToLower(ns.str + "." + name)
			if t.funcs[key] != nil {
				return invalid(m, mpath, "The template function '%s.%s' is defined more than once.", ns.str, name)
			}
			t.funcs[key] = uf
		}
	}
	return nil
}

func (t *Template) parseResources(r *node) *Error {
	if r == nil {
		if t.symbolic {
			return nil
		}
		return invalid(nil, "resources", "The template property 'resources' is missing. Please see %s for usage details.", seeResources)
	}
	if t.symbolic {
		if r.kind != nObject {
			return invalid(r, "resources", "The template resources section must be an object keyed by symbolic name when languageVersion is '2.0'. Please see %s for usage details.", seeResources)
		}
		for i, sym := range r.keys {
			def := &resourceDef{symbol: sym, n: r.vals[i], path: "resources." + sym}
			if err := checkResourceShape(def); err != nil {
				return err
			}
			t.resources = append(t.resources, def)
		}
		return nil
	}
	if r.kind != nArray {
		return invalid(r, "resources", "The template resources section must be an array. Please see %s for usage details.", seeResources)
	}
	var walk func(list *node, parent *resourceDef, path string) *Error
	walk = func(list *node, parent *resourceDef, path string) *Error {
		for i, rn := range list.arr {
			def := &resourceDef{n: rn, parent: parent, path: fmt.Sprintf("%s[%d]", path, i)}
			if err := checkResourceShape(def); err != nil {
				return err
			}
			t.resources = append(t.resources, def)
			if children := rn.get("resources"); children != nil {
				if children.kind != nArray {
					return invalid(children, def.path+".resources", "The nested resources of a template resource must be an array.")
				}
				if rn.get("copy") != nil && len(children.arr) > 0 {
					return invalid(rn, def.path, "The template resource%s is not valid: a resource with a copy loop can't have nested resources. Please see %s for usage details.", at(rn), seeCopy)
				}
				if err := walk(children, def, def.path+".resources"); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(r, nil, "resources")
}

func checkResourceShape(def *resourceDef) *Error {
	n := def.n
	if n.kind != nObject {
		return invalid(n, def.path, "The template resource%s is not valid: a resource must be an object. Please see %s for usage details.", at(n), seeResources)
	}
	for _, req := range []string{"type", "name", "apiVersion"} {
		v := n.get(req)
		if v == nil || v.kind != nString || v.str == "" {
			name := ""
			if nn := n.get("name"); nn != nil && nn.kind == nString {
				name = nn.str
			}
			return invalid(n, def.path, "The template resource '%s'%s is not valid: the '%s' property cannot be null or empty. Please see %s for usage details.", name, at(n), req, seeResources)
		}
	}
	return nil
}
