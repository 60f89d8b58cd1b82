package armtemplate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Object is a template object: members keep their order (string() and
// outputs show them as written) and are looked up case-insensitively, as
// Resource Manager looks up properties, parameters and variables.
type Object struct {
	keys  []string
	vals  []any
	index map[string]int // lower-cased key → position
}

// NewObject returns an empty object.
func NewObject() *Object { return &Object{index: map[string]int{}} }

// Get returns the member named key (any case).
func (o *Object) Get(key string) (any, bool) {
	if o == nil {
		return nil, false
	}
	i, ok := o.index[strings.ToLower(key)]
	if !ok {
		return nil, false
	}
	return o.vals[i], true
}

// Set adds or replaces the member named key (any case; a replaced member
// keeps its place and its first spelling).
func (o *Object) Set(key string, v any) {
	lk := strings.ToLower(key)
	if i, ok := o.index[lk]; ok {
		o.vals[i] = v
		return
	}
	o.index[lk] = len(o.keys)
	o.keys = append(o.keys, key)
	o.vals = append(o.vals, v)
}

// Keys returns the member names in order.
func (o *Object) Keys() []string { return append([]string(nil), o.keys...) }

// Len is the number of members.
func (o *Object) Len() int { return len(o.keys) }

// MarshalJSON writes the members in order.
func (o *Object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		vb, err := marshalValue(o.vals[i])
		if err != nil {
			return nil, err
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshalValue writes v as compact JSON without HTML escaping, as string()
// writes it ({"valueA":10,"valueB":"Example Text"}).
func marshalValue(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// Plain converts an evaluator value to plain Go values (map[string]any,
// []any, string, int64, float64, bool, nil) for callers that do not need
// member order.
func Plain(v any) any {
	switch t := v.(type) {
	case *Object:
		m := make(map[string]any, t.Len())
		for i, k := range t.keys {
			m[k] = Plain(t.vals[i])
		}
		return m
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = Plain(e)
		}
		return out
	}
	return v
}

// FromPlain converts plain Go values (as a Resolver or Deployer gives them,
// or as encoding/json decodes them) to evaluator values. Map members are
// ordered by name, since a Go map has no order.
func FromPlain(v any) any {
	switch t := v.(type) {
	case *Object:
		return t
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		o := NewObject()
		for _, k := range keys {
			o.Set(k, FromPlain(t[k]))
		}
		return o
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = FromPlain(e)
		}
		return out
	case []string:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = e
		}
		return out
	case int:
		return int64(t)
	case int32:
		return int64(t)
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1<<53 {
			return int64(t)
		}
		return t
	case json.Number:
		if n, ok := parseNumber(string(t)); ok {
			return n
		}
		return string(t)
	}
	return v
}

// typeName is the name ARM uses for a value's type in its messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "Null"
	case string:
		return "String"
	case int64:
		return "Integer"
	case float64:
		return "Float"
	case bool:
		return "Boolean"
	case []any:
		return "Array"
	case *Object:
		return "Object"
	}
	return fmt.Sprintf("%T", v)
}

// deepEqual compares two values as equals() does: strings case-sensitively,
// objects member by member (names case-insensitively), arrays in order.
func deepEqual(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case int64:
		switch y := b.(type) {
		case int64:
			return x == y
		case float64:
			return float64(x) == y
		}
		return false
	case float64:
		switch y := b.(type) {
		case int64:
			return x == float64(y)
		case float64:
			return x == y
		}
		return false
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !deepEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case *Object:
		y, ok := b.(*Object)
		if !ok || x.Len() != y.Len() {
			return false
		}
		for i, k := range x.keys {
			yv, ok := y.Get(k)
			if !ok || !deepEqual(x.vals[i], yv) {
				return false
			}
		}
		return true
	}
	return false
}

// toText renders a scalar as concat()/format() do: strings as they are,
// numbers in invariant culture, booleans as True/False (.NET's spelling).
// Arrays and objects are written as compact JSON.
func toText(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case int64:
		return strconv.FormatInt(t, 10)
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case bool:
		if t {
			return "True"
		}
		return "False"
	}
	b, _ := marshalValue(v)
	return string(b)
}

// valueSize estimates a value's size in bytes, for the bound on what an
// evaluation may build.
func valueSize(v any) int {
	switch t := v.(type) {
	case string:
		return len(t) + 2
	case []any:
		n := 2
		for _, e := range t {
			n += valueSize(e) + 1
		}
		return n
	case *Object:
		n := 2
		for i, k := range t.keys {
			n += len(k) + 4 + valueSize(t.vals[i])
		}
		return n
	}
	return 8
}
