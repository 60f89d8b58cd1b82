package armtemplate

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
)

type builtin func(ev *evaluator, c *callExpr, sc *scope, args []any) (any, error)

// builtins are the standard template functions, by lower-cased name
// (learn.microsoft.com/azure/azure-resource-manager/templates/template-functions).
// if and lambda are evaluated lazily in evaluator.call; list* in list.
var builtins map[string]builtin

func init() {
	// Filled in init: lambda functions reach this table again through
	// evaluator.call, a cycle a package-level initializer may not have.
	builtins = map[string]builtin{
		// string functions (template-functions-string)
		"base64":               fnBase64,
		"base64tostring":       fnBase64ToString,
		"base64tojson":         fnBase64ToJSON,
		"concat":               fnConcat,
		"contains":             fnContains,
		"datauri":              fnDataURI,
		"datauritostring":      fnDataURIToString,
		"empty":                fnEmpty,
		"endswith":             fnEndsWith,
		"first":                fnFirst,
		"format":               fnFormat,
		"guid":                 fnGUID,
		"indexof":              fnIndexOf,
		"last":                 fnLast,
		"lastindexof":          fnLastIndexOf,
		"length":               fnLength,
		"newguid":              fnNewGUID,
		"padleft":              fnPadLeft,
		"replace":              fnReplace,
		"skip":                 fnSkip,
		"split":                fnSplit,
		"startswith":           fnStartsWith,
		"string":               fnString,
		"substring":            fnSubstring,
		"take":                 fnTake,
		"tolower":              fnToLower,
		"toupper":              fnToUpper,
		"trim":                 fnTrim,
		"uniquestring":         fnUniqueString,
		"uri":                  fnURI,
		"uricomponent":         fnURIComponent,
		"uricomponenttostring": fnURIComponentToString,
		"join":                 fnJoin,
		"utcnow":               fnUTCNow,
		// array and object functions
		"array":        fnArray,
		"coalesce":     fnCoalesce,
		"createarray":  fnCreateArray,
		"createobject": fnCreateObject,
		"intersection": fnIntersection,
		"items":        fnItems,
		"json":         fnJSON,
		"max":          fnMax,
		"min":          fnMin,
		"null":         fnNull,
		"range":        fnRange,
		"union":        fnUnion,
		// lambda functions (template-functions-lambda)
		"filter":          fnFilter,
		"map":             fnMap,
		"reduce":          fnReduce,
		"sort":            fnSort,
		"toobject":        fnToObject,
		"lambdavariables": fnLambdaVariables,
		// logical
		"and":   fnAnd,
		"or":    fnOr,
		"not":   fnNot,
		"bool":  fnBool,
		"true":  func(*evaluator, *callExpr, *scope, []any) (any, error) { return true, nil },
		"false": func(*evaluator, *callExpr, *scope, []any) (any, error) { return false, nil },
		// numeric
		"add":   fnArith,
		"sub":   fnArith,
		"mul":   fnArith,
		"div":   fnArith,
		"mod":   fnArith,
		"int":   fnInt,
		"float": fnFloat,
		// comparison
		"equals":          fnEquals,
		"less":            fnCompare,
		"lessorequals":    fnCompare,
		"greater":         fnCompare,
		"greaterorequals": fnCompare,
		// date
		"datetimeadd":       fnDateTimeAdd,
		"datetimefromepoch": fnDateTimeFromEpoch,
		"datetimetoepoch":   fnDateTimeToEpoch,
		// deployment
		"deployment":  fnDeployment,
		"environment": fnEnvironment,
		"parameters":  fnParameters,
		"variables":   fnVariables,
		"copyindex":   fnCopyIndex,
		// resource
		"resourceid":             fnResourceID,
		"subscriptionresourceid": fnSubscriptionResourceID,
		"tenantresourceid":       fnTenantResourceID,
		"extensionresourceid":    fnExtensionResourceID,
		"resourcegroup":          fnResourceGroup,
		"subscription":           fnSubscription,
		"tenant":                 fnTenant,
		"managementgroup":        fnManagementGroup,
		"reference":              fnReference,
		"any":                    fnAny,
	}
}

// ---- argument helpers ----

func nargs(c *callExpr, args []any, min, max int) error {
	if len(args) < min || (max >= 0 && len(args) > max) {
		switch {
		case min == max && min == 0:
			return errf("The template language function '%s' must not have any parameters. Please see %s for usage details", c.text, seeFunctions)
		case min == max:
			return arity(c, strconv.Itoa(min))
		case max < 0:
			return arity(c, "at least "+strconv.Itoa(min))
		default:
			return arity(c, fmt.Sprintf("%d to %d", min, max))
		}
	}
	return nil
}

func str(c *callExpr, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", typeErr(c, "String", v)
	}
	return s, nil
}

func integer(c *callExpr, v any) (int64, error) {
	i, ok := v.(int64)
	if !ok {
		return 0, typeErr(c, "Integer", v)
	}
	return i, nil
}

func checkLen(c *callExpr, n int) error {
	if n > maxValueBytes {
		return errf("The result of the template function '%s' exceeds the limit of %d bytes", c.text, maxValueBytes)
	}
	return nil
}

// runes are what .NET strings index: UTF-16 code units. Templates are
// mostly ASCII; for the rest, indexing by UTF-16 unit keeps positions as
// ARM gives them.
func units(s string) []uint16 { return utf16.Encode([]rune(s)) }

func fromUnits(u []uint16) string { return string(utf16.Decode(u)) }

// ---- string functions ----

// unary makes a function of one string argument.
func unary(f func(c *callExpr, s string) (any, error)) builtin {
	return func(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
		if err := nargs(c, a, 1, 1); err != nil {
			return nil, err
		}
		s, err := str(c, a[0])
		if err != nil {
			return nil, err
		}
		return f(c, s)
	}
}

var (
	fnBase64 = unary(func(_ *callExpr, s string) (any, error) {
		return base64.StdEncoding.EncodeToString([]byte(s)), nil
	})
	fnBase64ToString = unary(func(c *callExpr, s string) (any, error) {
		b, err := decodeBase64(c, s)
		return string(b), err
	})
	fnBase64ToJSON = unary(func(c *callExpr, s string) (any, error) {
		b, err := decodeBase64(c, s)
		if err != nil {
			return nil, err
		}
		return parseJSONValue(c, string(b))
	})
	fnJSON = unary(parseJSONValue)
	// dataUri writes text/plain;charset=utf8 in base64
	// (template-functions-string#datauri: dataUri('Hello') is
	// "data:text/plain;charset=utf8;base64,SGVsbG8=").
	fnDataURI = unary(func(_ *callExpr, s string) (any, error) {
		return "data:text/plain;charset=utf8;base64," + base64.StdEncoding.EncodeToString([]byte(s)), nil
	})
	fnDataURIToString = unary(func(_ *callExpr, s string) (any, error) {
		comma := strings.IndexByte(s, ',')
		if !strings.HasPrefix(s, "data:") || comma < 0 {
			return nil, errf("The template language function 'dataUriToString' expects a data URI. The provided value is not a valid data URI")
		}
		meta, data := s[5:comma], s[comma+1:]
		if strings.HasSuffix(meta, ";base64") {
			b, err := base64.StdEncoding.DecodeString(data)
			if err != nil {
				return nil, errf("The template language function 'dataUriToString' has an invalid parameter: the data is not valid Base-64")
			}
			return string(b), nil
		}
		u, err := url.PathUnescape(data)
		if err != nil {
			return nil, errf("The template language function 'dataUriToString' has an invalid parameter: the data is not valid")
		}
		return u, nil
	})
	fnToLower = unary(func(_ *callExpr, s string) (any, error) { return strings.ToLower(s), nil })
	fnToUpper = unary(func(_ *callExpr, s string) (any, error) { return strings.ToUpper(s), nil })
	fnTrim    = unary(func(_ *callExpr, s string) (any, error) { return strings.TrimFunc(s, unicode.IsSpace), nil })
	// uriComponent escapes as .NET's Uri.EscapeDataString: everything
	// but the RFC 3986 unreserved characters.
	fnURIComponent = unary(func(_ *callExpr, s string) (any, error) {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			ch := s[i]
			if ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.IndexByte("-._~", ch) >= 0 {
				b.WriteByte(ch)
			} else {
				fmt.Fprintf(&b, "%%%02X", ch)
			}
		}
		return b.String(), nil
	})
	fnURIComponentToString = unary(func(_ *callExpr, s string) (any, error) {
		u, err := url.PathUnescape(s)
		if err != nil {
			return nil, errf("The template language function 'uriComponentToString' has an invalid parameter: '%s' is not a valid encoded URI component", s)
		}
		return u, nil
	})
)

func decodeBase64(c *callExpr, s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errf("The template language function '%s' has an invalid parameter: the input is not a valid Base-64 string", c.text)
	}
	return b, nil
}

func parseJSONValue(c *callExpr, s string) (any, error) {
	n, err := parseJSON(s, true)
	if err != nil {
		return nil, errf("The template language function '%s' has an invalid parameter: the value is not valid JSON: %v", c.text, err)
	}
	return n.toValue(), nil
}

func fnConcat(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if len(a) == 0 {
		return "", nil
	}
	if _, isArr := a[0].([]any); isArr {
		var out []any
		for _, v := range a {
			if v == nil {
				continue
			}
			arr, ok := v.([]any)
			if !ok {
				return nil, errf("The template language function 'concat' expects all its parameters to be arrays or all of them to be strings, integers or booleans")
			}
			out = append(out, arr...)
		}
		if out == nil {
			out = []any{}
		}
		return out, nil
	}
	var b strings.Builder
	for _, v := range a {
		switch v.(type) {
		case string, int64, float64, bool, nil:
			b.WriteString(toText(v))
		default:
			return nil, errf("The template language function 'concat' expects all its parameters to be arrays or all of them to be strings, integers or booleans")
		}
		if err := checkLen(c, b.Len()); err != nil {
			return nil, err
		}
	}
	return b.String(), nil
}

func fnContains(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 2, 2); err != nil {
		return nil, err
	}
	switch t := a[0].(type) {
	case string:
		// Case-sensitive for strings (template-functions-string#contains).
		return strings.Contains(t, toText(a[1])), nil
	case *Object:
		// Case-insensitive for object keys.
		k, err := str(c, a[1])
		if err != nil {
			return nil, err
		}
		_, ok := t.Get(k)
		return ok, nil
	case []any:
		for _, e := range t {
			if deepEqual(e, a[1]) {
				return true, nil
			}
		}
		return false, nil
	}
	return nil, typeErr(c, "Array, Object or String", a[0])
}

func fnEmpty(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 1, 1); err != nil {
		return nil, err
	}
	switch t := a[0].(type) {
	case nil:
		return true, nil
	case string:
		return t == "", nil
	case []any:
		return len(t) == 0, nil
	case *Object:
		return t.Len() == 0, nil
	}
	return nil, typeErr(c, "Array, Object or String", a[0])
}

// startsWith, endsWith, indexOf and lastIndexOf compare case-insensitively
// (template-functions-string#startswith, #indexof).
func twoStrings(c *callExpr, a []any) (string, string, error) {
	if err := nargs(c, a, 2, 2); err != nil {
		return "", "", err
	}
	s, err := str(c, a[0])
	if err != nil {
		return "", "", err
	}
	f, err := str(c, a[1])
	if err != nil {
		return "", "", err
	}
	return strings.ToLower(s), strings.ToLower(f), nil
}

func fnStartsWith(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	s, f, err := twoStrings(c, a)
	if err != nil {
		return nil, err
	}
	return strings.HasPrefix(s, f), nil
}

func fnEndsWith(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	s, f, err := twoStrings(c, a)
	if err != nil {
		return nil, err
	}
	return strings.HasSuffix(s, f), nil
}

func unitIndex(s string, byteIdx int) int64 {
	if byteIdx < 0 {
		return -1
	}
	return int64(len(units(s[:byteIdx])))
}

func fnIndexOf(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	s, f, err := twoStrings(c, a)
	if err != nil {
		return nil, err
	}
	return unitIndex(s, strings.Index(s, f)), nil
}

func fnLastIndexOf(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	s, f, err := twoStrings(c, a)
	if err != nil {
		return nil, err
	}
	if f == "" {
		return int64(len(units(s))) - 1, nil
	}
	return unitIndex(s, strings.LastIndex(s, f)), nil
}

func fnFirst(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 1, 1); err != nil {
		return nil, err
	}
	switch t := a[0].(type) {
	case string:
		u := units(t)
		if len(u) == 0 {
			return "", nil
		}
		return fromUnits(u[:1]), nil
	case []any:
		if len(t) == 0 {
			return nil, nil
		}
		return t[0], nil
	}
	return nil, typeErr(c, "Array or String", a[0])
}

func fnLast(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 1, 1); err != nil {
		return nil, err
	}
	switch t := a[0].(type) {
	case string:
		u := units(t)
		if len(u) == 0 {
			return "", nil
		}
		return fromUnits(u[len(u)-1:]), nil
	case []any:
		if len(t) == 0 {
			return nil, nil
		}
		return t[len(t)-1], nil
	}
	return nil, typeErr(c, "Array or String", a[0])
}

func fnLength(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 1, 1); err != nil {
		return nil, err
	}
	switch t := a[0].(type) {
	case string:
		return int64(len(units(t))), nil
	case []any:
		return int64(len(t)), nil
	case *Object:
		return int64(t.Len()), nil
	}
	return nil, typeErr(c, "Array, Object or String", a[0])
}

// fnGUID is guid(): a version-5 (SHA-1, name-based, RFC 4122 §4.3) UUID
// of the arguments joined with '-', in the namespace
// 11fb06fb-712d-4ddd-98c7-e71bbd588830 (learn.microsoft.com/azure/azure-resource-manager/bicep/bicep-functions-string#guid
// documents the algorithm; Bicep emits the same function).
func fnGUID(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 1, -1); err != nil {
		return nil, err
	}
	parts, err := allStrings(c, a)
	if err != nil {
		return nil, err
	}
	ns := [16]byte{0x11, 0xfb, 0x06, 0xfb, 0x71, 0x2d, 0x4d, 0xdd, 0x98, 0xc7, 0xe7, 0x1b, 0xbd, 0x58, 0x88, 0x30}
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(strings.Join(parts, "-")))
	sum := h.Sum(nil)
	var u [16]byte
	copy(u[:], sum[:16])
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]), nil
}

func allStrings(c *callExpr, a []any) ([]string, error) {
	out := make([]string, len(a))
	for i, v := range a {
		s, ok := v.(string)
		if !ok {
			return nil, errf("The template language function '%s' expects its parameters to be of type 'String'. The parameter at position %d is of type '%s'", c.text, i, typeName(v))
		}
		out[i] = s
	}
	return out, nil
}

// fnUniqueString is uniqueString(): the arguments joined with '-', hashed
// with the 64-bit MurmurHash variant of Microsoft's ResourceStack library
// (what Resource Manager uses), and the hash's top 65 bits written as 13
// characters of lower-case RFC 4648 base-32. The constants and steps are
// those published by reimplementations checked against Azure
// (uniqueString('test') = "rbgf3xv4ufgzg"; testdata/string-misc.json holds
// published vectors).
func fnUniqueString(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 1, -1); err != nil {
		return nil, err
	}
	parts, err := allStrings(c, a)
	if err != nil {
		return nil, err
	}
	return uniqueString(strings.Join(parts, "-")), nil
}

func rotl(x uint32, r uint) uint32 { return x<<r | x>>(32-r) }

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// murmur64 is the ResourceStack MurmurHash64 (two 32-bit lanes, seed 0).
func murmur64(data []byte) uint64 {
	const c1, c2 = 0xab0e9789, 0x239b961b
	var h1, h2 uint32
	n := len(data)
	i := 0
	for ; i+7 < n; i += 8 {
		k1 := le32(data[i:])
		k2 := le32(data[i+4:])
		k1 *= c2
		k1 = rotl(k1, 15)
		k1 *= c1
		h1 ^= k1
		h1 = rotl(h1, 19)
		h1 += h2
		h1 = h1*5 + 0x561ccd1b
		k2 *= c1
		k2 = rotl(k2, 17)
		k2 *= c2
		h2 ^= k2
		h2 = rotl(h2, 13)
		h2 += h1
		h2 = h2*5 + 0x0bcaa747
	}
	if rem := n - i; rem > 0 {
		var k1 uint32
		if rem >= 4 {
			k1 = le32(data[i:])
		} else {
			for j := rem - 1; j >= 0; j-- {
				k1 = k1<<8 | uint32(data[i+j])
			}
		}
		k1 *= c2
		k1 = rotl(k1, 15)
		k1 *= c1
		h1 ^= k1
		if rem > 4 {
			var k2 uint32
			for j := rem - 5; j >= 0; j-- {
				k2 = k2<<8 | uint32(data[i+4+j])
			}
			k2 *= c1
			k2 = rotl(k2, 17)
			k2 *= c2
			h2 ^= k2
		}
	}
	h2 ^= uint32(n)
	h1 ^= uint32(n)
	h1 += h2
	h2 += h1
	fmix := func(h uint32) uint32 {
		h ^= h >> 16
		h *= 0x85ebca6b
		h ^= h >> 13
		h *= 0xc2b2ae35
		h ^= h >> 16
		return h
	}
	h1 = fmix(h1)
	h2 = fmix(h2)
	h1 += h2
	h2 += h1
	return uint64(h2)<<32 | uint64(h1)
}

func uniqueString(s string) string {
	const alpha = "abcdefghijklmnopqrstuvwxyz234567"
	h := murmur64([]byte(s))
	var b [13]byte
	for i := range b {
		b[i] = alpha[h>>59]
		h <<= 5
	}
	return string(b[:])
}

// newGuid() and utcNow() may be used only in a parameter's default value
// (template-functions-string#newguid, template-functions-date#utcnow).
func onlyInDefaults(ev *evaluator, c *callExpr) error {
	if ev.section != secParamDefault {
		return errf("The template function '%s' is not expected at this location. It can only be used in the default value of a parameter. Please see %s for usage details", c.text, seeFunctions)
	}
	return nil
}

func fnNewGUID(ev *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := onlyInDefaults(ev, c); err != nil {
		return nil, err
	}
	if err := nargs(c, a, 0, 0); err != nil {
		return nil, err
	}
	return ev.dc.newGUID(), nil
}

func fnUTCNow(ev *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := onlyInDefaults(ev, c); err != nil {
		return nil, err
	}
	if err := nargs(c, a, 0, 1); err != nil {
		return nil, err
	}
	format := "yyyyMMddTHHmmssZ"
	if len(a) == 1 {
		s, err := str(c, a[0])
		if err != nil {
			return nil, err
		}
		format = s
	}
	return formatTime(ev.dc.now(), format)
}

func fnPadLeft(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 2, 3); err != nil {
		return nil, err
	}
	var s string
	switch t := a[0].(type) {
	case string:
		s = t
	case int64:
		s = strconv.FormatInt(t, 10)
	default:
		return nil, typeErr(c, "String or Integer", a[0])
	}
	total, err := integer(c, a[1])
	if err != nil {
		return nil, err
	}
	pad := " "
	if len(a) == 3 {
		if pad, err = str(c, a[2]); err != nil {
			return nil, err
		}
		if len(units(pad)) != 1 {
			return nil, errf("The template language function 'padLeft' expects its third parameter to be a single character")
		}
	}
	n := int64(len(units(s)))
	if total <= n {
		return s, nil
	}
	if total > 16*1024 {
		return nil, errf("The template language function 'padLeft' expects its total length to be at most 16384")
	}
	return strings.Repeat(pad, int(total-n)) + s, nil
}

func fnReplace(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 3, 3); err != nil {
		return nil, err
	}
	ss, err := allStrings(c, a)
	if err != nil {
		return nil, err
	}
	if ss[1] == "" {
		return nil, errf("The template language function 'replace' expects its second parameter to be a non-empty string")
	}
	if cnt := strings.Count(ss[0], ss[1]); cnt > 0 && len(ss[2]) > len(ss[1]) {
		if err := checkLen(c, len(ss[0])+cnt*(len(ss[2])-len(ss[1]))); err != nil {
			return nil, err
		}
	}
	return strings.ReplaceAll(ss[0], ss[1], ss[2]), nil
}

func fnSkip(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 2, 2); err != nil {
		return nil, err
	}
	n, err := integer(c, a[1])
	if err != nil {
		return nil, err
	}
	switch t := a[0].(type) {
	case string:
		u := units(t)
		return fromUnits(u[clamp(n, len(u)):]), nil
	case []any:
		return append([]any{}, t[clamp(n, len(t)):]...), nil
	}
	return nil, typeErr(c, "Array or String", a[0])
}

func fnTake(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 2, 2); err != nil {
		return nil, err
	}
	n, err := integer(c, a[1])
	if err != nil {
		return nil, err
	}
	switch t := a[0].(type) {
	case string:
		u := units(t)
		return fromUnits(u[:clamp(n, len(u))]), nil
	case []any:
		return append([]any{}, t[:clamp(n, len(t))]...), nil
	}
	return nil, typeErr(c, "Array or String", a[0])
}

func clamp(n int64, l int) int {
	if n < 0 {
		return 0
	}
	if n > int64(l) {
		return l
	}
	return int(n)
}

func fnSplit(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 2, 2); err != nil {
		return nil, err
	}
	s, err := str(c, a[0])
	if err != nil {
		return nil, err
	}
	var delims []string
	switch t := a[1].(type) {
	case string:
		delims = []string{t}
	case []any:
		if delims, err = allStrings(c, t); err != nil {
			return nil, err
		}
	default:
		return nil, typeErr(c, "String or Array", a[1])
	}
	// .NET String.Split(string[], None): at each position the first
	// delimiter (in the order given) that matches splits.
	var out []any
	start := 0
	for i := 0; i < len(s); {
		matched := ""
		for _, d := range delims {
			if d != "" && strings.HasPrefix(s[i:], d) {
				matched = d
				break
			}
		}
		if matched == "" {
			i++
			continue
		}
		out = append(out, s[start:i])
		i += len(matched)
		start = i
	}
	return append(out, s[start:]), nil
}

func fnString(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 1, 1); err != nil {
		return nil, err
	}
	return toText(a[0]), nil
}

func fnSubstring(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 1, 3); err != nil {
		return nil, err
	}
	s, err := str(c, a[0])
	if err != nil {
		return nil, err
	}
	u := units(s)
	var start int64
	length := int64(-1)
	if len(a) > 1 {
		if start, err = integer(c, a[1]); err != nil {
			return nil, err
		}
	}
	if len(a) > 2 {
		if length, err = integer(c, a[2]); err != nil {
			return nil, err
		}
	} else {
		length = int64(len(u)) - start
	}
	if start < 0 || length < 0 || start+length > int64(len(u)) {
		// The wording ARM documents (template-functions-string#substring).
		return nil, errf("The index and length parameters must refer to a location within the string. The index parameter: '%d', the length parameter: '%d', the length of the string parameter: '%d'", start, length, len(u))
	}
	return fromUnits(u[start : start+length]), nil
}

// fnURI combines a base URI and a relative one as .NET's Uri(Uri, string)
// does (template-functions-string#uri).
func fnURI(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 2, 2); err != nil {
		return nil, err
	}
	ss, err := allStrings(c, a)
	if err != nil {
		return nil, err
	}
	base, err := url.Parse(ss[0])
	if err != nil || !base.IsAbs() {
		return nil, errf("The template language function 'uri' expects its first parameter to be an absolute URI. The provided value is '%s'", ss[0])
	}
	rel, err := url.Parse(ss[1])
	if err != nil {
		return nil, errf("The template language function 'uri' expects its second parameter to be a valid relative URI")
	}
	return base.ResolveReference(rel).String(), nil
}

func fnJoin(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 2, 2); err != nil {
		return nil, err
	}
	arr, ok := a[0].([]any)
	if !ok {
		return nil, typeErr(c, "Array", a[0])
	}
	d, err := str(c, a[1])
	if err != nil {
		return nil, err
	}
	parts := make([]string, len(arr))
	n := 0
	for i, v := range arr {
		switch v.(type) {
		case string, int64, float64, bool:
		default:
			return nil, errf("The template language function 'join' expects an array of strings, integers or booleans; element %d is of type '%s'", i, typeName(v))
		}
		parts[i] = toText(v)
		n += len(parts[i]) + len(d)
	}
	if err := checkLen(c, n); err != nil {
		return nil, err
	}
	return strings.Join(parts, d), nil
}

// format is .NET's composite formatting: {index[,alignment][:format]},
// {{ and }} for braces (template-functions-string#format).
func fnFormat(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 1, -1); err != nil {
		return nil, err
	}
	f, err := str(c, a[0])
	if err != nil {
		return nil, err
	}
	args := a[1:]
	bad := func() error {
		return errf("The template language function 'format' has an invalid format string: '%s'. Input string was not in a correct format", f)
	}
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		ch := f[i]
		if ch == '}' {
			if i+1 < len(f) && f[i+1] == '}' {
				b.WriteByte('}')
				i++
				continue
			}
			return nil, bad()
		}
		if ch != '{' {
			b.WriteByte(ch)
			continue
		}
		if i+1 < len(f) && f[i+1] == '{' {
			b.WriteByte('{')
			i++
			continue
		}
		end := strings.IndexByte(f[i:], '}')
		if end < 0 {
			return nil, bad()
		}
		item := f[i+1 : i+end]
		i += end
		spec := ""
		if k := strings.IndexByte(item, ':'); k >= 0 {
			item, spec = item[:k], item[k+1:]
		}
		align := 0
		if k := strings.IndexByte(item, ','); k >= 0 {
			al, err := strconv.Atoi(strings.TrimSpace(item[k+1:]))
			if err != nil || al > 1000 || al < -1000 {
				return nil, bad()
			}
			align, item = al, item[:k]
		}
		idx, err := strconv.Atoi(strings.TrimSpace(item))
		if err != nil || idx < 0 {
			return nil, bad()
		}
		if idx >= len(args) {
			return nil, errf("The template language function 'format' has an invalid format string: index (zero based) must be greater than or equal to zero and less than the size of the argument list")
		}
		s, err := formatItem(args[idx], spec)
		if err != nil {
			return nil, err
		}
		if w := align; w > 0 && len(s) < w {
			s = strings.Repeat(" ", w-len(s)) + s
		} else if w < 0 && len(s) < -w {
			s += strings.Repeat(" ", -w-len(s))
		}
		b.WriteString(s)
		if err := checkLen(c, b.Len()); err != nil {
			return nil, err
		}
	}
	return b.String(), nil
}

// formatItem applies a .NET standard numeric format (N, D, F, X, P, E
// families) in the invariant culture; other values are written as text.
func formatItem(v any, spec string) (string, error) {
	if spec == "" {
		return toText(v), nil
	}
	var f float64
	isInt := false
	var iv int64
	switch t := v.(type) {
	case int64:
		f, iv, isInt = float64(t), t, true
	case float64:
		f = t
	default:
		return toText(v), nil
	}
	letter := spec[0] | 0x20
	prec := -1
	if len(spec) > 1 {
		p, err := strconv.Atoi(spec[1:])
		if err != nil || p < 0 || p > 99 {
			return "", errf("The format specifier '%s' is not valid", spec)
		}
		prec = p
	}
	switch letter {
	case 'n':
		if prec < 0 {
			prec = 2
		}
		return groupThousands(strconv.FormatFloat(math.Abs(f), 'f', prec, 64), f < 0), nil
	case 'f':
		if prec < 0 {
			prec = 2
		}
		return strconv.FormatFloat(f, 'f', prec, 64), nil
	case 'd':
		if !isInt {
			return "", errf("The format specifier '%s' requires an integer", spec)
		}
		s := strconv.FormatInt(absInt(iv), 10)
		if prec > len(s) {
			s = strings.Repeat("0", prec-len(s)) + s
		}
		if iv < 0 {
			s = "-" + s
		}
		return s, nil
	case 'x':
		if !isInt {
			return "", errf("The format specifier '%s' requires an integer", spec)
		}
		s := strconv.FormatUint(uint64(iv), 16)
		if spec[0] == 'X' {
			s = strings.ToUpper(s)
		}
		if prec > len(s) {
			s = strings.Repeat("0", prec-len(s)) + s
		}
		return s, nil
	case 'p':
		if prec < 0 {
			prec = 2
		}
		return groupThousands(strconv.FormatFloat(math.Abs(f*100), 'f', prec, 64), f < 0) + " %", nil
	}
	return "", errf("The format specifier '%s' is not supported", spec)
}

func absInt(i int64) int64 {
	if i < 0 {
		return -i
	}
	return i
}

func groupThousands(s string, neg bool) string {
	intPart, frac := s, ""
	if k := strings.IndexByte(s, '.'); k >= 0 {
		intPart, frac = s[:k], s[k:]
	}
	var b strings.Builder
	for i, ch := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	out := b.String() + frac
	if neg {
		out = "-" + out
	}
	return out
}

// ---- array and object functions ----

func fnArray(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 1, 1); err != nil {
		return nil, err
	}
	if arr, ok := a[0].([]any); ok {
		return arr, nil
	}
	return []any{a[0]}, nil
}

func fnCoalesce(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 1, -1); err != nil {
		return nil, err
	}
	for _, v := range a {
		if v != nil {
			return v, nil
		}
	}
	return nil, nil
}

func fnCreateArray(_ *evaluator, _ *callExpr, _ *scope, a []any) (any, error) {
	return append([]any{}, a...), nil
}

func fnCreateObject(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if len(a)%2 != 0 {
		return nil, errf("The template language function 'createObject' must have an even number of parameters")
	}
	o := NewObject()
	for i := 0; i < len(a); i += 2 {
		k, err := str(c, a[i])
		if err != nil {
			return nil, err
		}
		o.Set(k, a[i+1])
	}
	return o, nil
}

func fnIntersection(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 2, -1); err != nil {
		return nil, err
	}
	switch first := a[0].(type) {
	case []any:
		var out []any
		for _, e := range first {
			in := true
			for _, other := range a[1:] {
				arr, ok := other.([]any)
				if !ok {
					return nil, typeErr(c, "Array", other)
				}
				if !containsValue(arr, e) {
					in = false
					break
				}
			}
			if in && !containsValue(out, e) {
				out = append(out, e)
			}
		}
		if out == nil {
			out = []any{}
		}
		return out, nil
	case *Object:
		out := NewObject()
		for i, k := range first.keys {
			in := true
			for _, other := range a[1:] {
				o, ok := other.(*Object)
				if !ok {
					return nil, typeErr(c, "Object", other)
				}
				v, ok := o.Get(k)
				if !ok || !deepEqual(v, first.vals[i]) {
					in = false
					break
				}
			}
			if in {
				out.Set(k, first.vals[i])
			}
		}
		return out, nil
	}
	return nil, typeErr(c, "Array or Object", a[0])
}

func containsValue(arr []any, v any) bool {
	for _, e := range arr {
		if deepEqual(e, v) {
			return true
		}
	}
	return false
}

// union merges arrays (without duplicates) or objects (later values win,
// nested objects merged recursively; template-functions-array#union).
func fnUnion(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 2, -1); err != nil {
		return nil, err
	}
	switch a[0].(type) {
	case []any:
		out := []any{}
		for _, v := range a {
			arr, ok := v.([]any)
			if !ok {
				return nil, typeErr(c, "Array", v)
			}
			for _, e := range arr {
				if !containsValue(out, e) {
					out = append(out, e)
				}
			}
		}
		return out, nil
	case *Object:
		out := NewObject()
		for _, v := range a {
			o, ok := v.(*Object)
			if !ok {
				return nil, typeErr(c, "Object", v)
			}
			mergeObject(out, o)
		}
		return out, nil
	}
	return nil, typeErr(c, "Array or Object", a[0])
}

func mergeObject(dst, src *Object) {
	for i, k := range src.keys {
		v := src.vals[i]
		if cur, ok := dst.Get(k); ok {
			co, ok1 := cur.(*Object)
			so, ok2 := v.(*Object)
			if ok1 && ok2 {
				merged := NewObject()
				mergeObject(merged, co)
				mergeObject(merged, so)
				dst.Set(k, merged)
				continue
			}
		}
		dst.Set(k, v)
	}
}

// items gives an object's members as {key, value} objects, in the order
// of the keys (template-functions-object#items: "sorted alphabetically").
func fnItems(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 1, 1); err != nil {
		return nil, err
	}
	o, ok := a[0].(*Object)
	if !ok {
		return nil, typeErr(c, "Object", a[0])
	}
	keys := o.Keys()
	sort.SliceStable(keys, func(i, j int) bool { return strings.ToLower(keys[i]) < strings.ToLower(keys[j]) })
	out := make([]any, len(keys))
	for i, k := range keys {
		v, _ := o.Get(k)
		item := NewObject()
		item.Set("key", k)
		item.Set("value", v)
		out[i] = item
	}
	return out, nil
}

func minMax(c *callExpr, a []any, less bool) (any, error) {
	if err := nargs(c, a, 1, -1); err != nil {
		return nil, err
	}
	vals := a
	if len(a) == 1 {
		arr, ok := a[0].([]any)
		if !ok {
			return nil, typeErr(c, "Array", a[0])
		}
		vals = arr
	}
	if len(vals) == 0 {
		return nil, errf("The template language function '%s' expects at least one integer", c.text)
	}
	var best int64
	for i, v := range vals {
		n, err := integer(c, v)
		if err != nil {
			return nil, err
		}
		if i == 0 || (less && n < best) || (!less && n > best) {
			best = n
		}
	}
	return best, nil
}

func fnMax(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) { return minMax(c, a, false) }
func fnMin(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) { return minMax(c, a, true) }

func fnNull(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	return nil, nargs(c, a, 0, 0)
}

func fnAny(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 1, 1); err != nil {
		return nil, err
	}
	return a[0], nil
}

// range(startIndex, count): count ≤ 10000 and start+count ≤ 2147483647
// (template-functions-array#range).
func fnRange(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 2, 2); err != nil {
		return nil, err
	}
	start, err := integer(c, a[0])
	if err != nil {
		return nil, err
	}
	count, err := integer(c, a[1])
	if err != nil {
		return nil, err
	}
	if count < 0 || count > 10000 || start+count > math.MaxInt32 || start < math.MinInt32 {
		return nil, errf("The template language function 'range' has an invalid parameter: the count must be between 0 and 10000 and the sum of the start index and the count at most 2147483647")
	}
	out := make([]any, count)
	for i := range out {
		out[i] = start + int64(i)
	}
	return out, nil
}

// ---- lambda functions ----

func lambdaArgs(c *callExpr, a []any, n int) ([]any, error) {
	if err := nargs(c, a, n, n); err != nil {
		return nil, err
	}
	arr, ok := a[0].([]any)
	if !ok {
		return nil, typeErr(c, "Array", a[0])
	}
	return arr, nil
}

func fnFilter(ev *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	arr, err := lambdaArgs(c, a, 2)
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, e := range arr {
		keep, err := ev.callLambda("filter", a[1], e)
		if err != nil {
			return nil, err
		}
		b, ok := keep.(bool)
		if !ok {
			return nil, errf("The lambda function of 'filter' must return a boolean; it returned a value of type '%s'", typeName(keep))
		}
		if b {
			out = append(out, e)
		}
	}
	return out, nil
}

func fnMap(ev *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	arr, err := lambdaArgs(c, a, 2)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(arr))
	for i, e := range arr {
		if out[i], err = ev.callLambda("map", a[1], e); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func fnReduce(ev *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	arr, err := lambdaArgs(c, a, 3)
	if err != nil {
		return nil, err
	}
	acc := a[1]
	for _, e := range arr {
		if acc, err = ev.callLambda("reduce", a[2], acc, e); err != nil {
			return nil, err
		}
	}
	return acc, nil
}

// sort orders by a lambda that tells whether its first argument comes
// before its second (template-functions-lambda#sort).
func fnSort(ev *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	arr, err := lambdaArgs(c, a, 2)
	if err != nil {
		return nil, err
	}
	out := append([]any{}, arr...)
	var sortErr error
	sort.SliceStable(out, func(i, j int) bool {
		if sortErr != nil {
			return false
		}
		r, err := ev.callLambda("sort", a[1], out[i], out[j])
		if err != nil {
			sortErr = err
			return false
		}
		b, ok := r.(bool)
		if !ok {
			sortErr = errf("The lambda function of 'sort' must return a boolean; it returned a value of type '%s'", typeName(r))
		}
		return b
	})
	return out, sortErr
}

func fnToObject(ev *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if len(a) != 2 && len(a) != 3 {
		return nil, arity(c, "two or three")
	}
	arr, ok := a[0].([]any)
	if !ok {
		return nil, typeErr(c, "Array", a[0])
	}
	out := NewObject()
	for _, e := range arr {
		k, err := ev.callLambda("toObject", a[1], e)
		if err != nil {
			return nil, err
		}
		ks, ok := k.(string)
		if !ok {
			return nil, errf("The key lambda function of 'toObject' must return a string; it returned a value of type '%s'", typeName(k))
		}
		v := e
		if len(a) == 3 {
			if v, err = ev.callLambda("toObject", a[2], e); err != nil {
				return nil, err
			}
		}
		out.Set(ks, v)
	}
	return out, nil
}

func fnLambdaVariables(_ *evaluator, c *callExpr, sc *scope, a []any) (any, error) {
	if err := nargs(c, a, 1, 1); err != nil {
		return nil, err
	}
	name, err := str(c, a[0])
	if err != nil {
		return nil, err
	}
	v, ok := sc.lambdaVar(name)
	if !ok {
		return nil, errf("The lambda variable '%s' is not defined", name)
	}
	return v, nil
}

// ---- logical ----

func bools(c *callExpr, a []any, min int) ([]bool, error) {
	if err := nargs(c, a, min, -1); err != nil {
		return nil, err
	}
	out := make([]bool, len(a))
	for i, v := range a {
		b, ok := v.(bool)
		if !ok {
			return nil, typeErr(c, "Boolean", v)
		}
		out[i] = b
	}
	return out, nil
}

func fnAnd(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	bs, err := bools(c, a, 2)
	if err != nil {
		return nil, err
	}
	for _, b := range bs {
		if !b {
			return false, nil
		}
	}
	return true, nil
}

func fnOr(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	bs, err := bools(c, a, 2)
	if err != nil {
		return nil, err
	}
	for _, b := range bs {
		if b {
			return true, nil
		}
	}
	return false, nil
}

func fnNot(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 1, 1); err != nil {
		return nil, err
	}
	bs, err := bools(c, a, 1)
	if err != nil {
		return nil, err
	}
	return !bs[0], nil
}

func fnBool(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 1, 1); err != nil {
		return nil, err
	}
	switch t := a[0].(type) {
	case bool:
		return t, nil
	case string:
		switch strings.ToLower(t) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, errf("The template language function 'bool' has an invalid parameter: '%s' is not a valid boolean", t)
	case int64:
		return t != 0, nil
	}
	return nil, typeErr(c, "String, Integer or Boolean", a[0])
}

// ---- numeric ----

func fnArith(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 2, 2); err != nil {
		return nil, err
	}
	x, err := integer(c, a[0])
	if err != nil {
		return nil, err
	}
	y, err := integer(c, a[1])
	if err != nil {
		return nil, err
	}
	overflow := errf("The template language function '%s' overflowed a 64-bit integer", c.text)
	switch c.name {
	case "add":
		r := x + y
		if (r > x) != (y > 0) {
			return nil, overflow
		}
		return r, nil
	case "sub":
		r := x - y
		if (r < x) != (y > 0) {
			return nil, overflow
		}
		return r, nil
	case "mul":
		if x != 0 && y != 0 {
			r := x * y
			if r/y != x || (x == -1 && y == math.MinInt64) || (y == -1 && x == math.MinInt64) {
				return nil, overflow
			}
			return r, nil
		}
		return int64(0), nil
	}
	if y == 0 {
		return nil, errf("The template language function '%s' cannot divide by zero", c.text)
	}
	if x == math.MinInt64 && y == -1 {
		return nil, overflow
	}
	if c.name == "div" {
		return x / y, nil
	}
	return x % y, nil
}

func fnInt(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 1, 1); err != nil {
		return nil, err
	}
	switch t := a[0].(type) {
	case int64:
		return t, nil
	case float64:
		if math.Abs(t) >= math.MaxInt64 {
			return nil, errf("The template language function 'int' has an invalid parameter: the value is too large")
		}
		return int64(t), nil
	case string:
		v, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
		if err != nil {
			return nil, errf("The template language function 'int' has an invalid parameter: '%s' is not a valid integer", t)
		}
		return v, nil
	}
	return nil, typeErr(c, "String or Integer", a[0])
}

func fnFloat(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 1, 1); err != nil {
		return nil, err
	}
	switch t := a[0].(type) {
	case int64:
		return float64(t), nil
	case float64:
		return t, nil
	case string:
		v, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
		if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, errf("The template language function 'float' has an invalid parameter: '%s' is not a valid number", t)
		}
		return v, nil
	}
	return nil, typeErr(c, "String or Integer", a[0])
}

// ---- comparison ----

func fnEquals(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 2, 2); err != nil {
		return nil, err
	}
	return deepEqual(a[0], a[1]), nil
}

// less and friends compare two numbers or two strings (ordinally).
func fnCompare(_ *evaluator, c *callExpr, _ *scope, a []any) (any, error) {
	if err := nargs(c, a, 2, 2); err != nil {
		return nil, err
	}
	var cmp int
	switch x := a[0].(type) {
	case string:
		y, ok := a[1].(string)
		if !ok {
			return nil, typeErr(c, "String", a[1])
		}
		cmp = strings.Compare(x, y)
	case int64, float64:
		fx := toFloat(x)
		var fy float64
		switch y := a[1].(type) {
		case int64, float64:
			fy = toFloat(y)
		default:
			return nil, typeErr(c, "Integer", a[1])
		}
		switch {
		case fx < fy:
			cmp = -1
		case fx > fy:
			cmp = 1
		}
	default:
		return nil, typeErr(c, "Integer or String", a[0])
	}
	switch c.name {
	case "less":
		return cmp < 0, nil
	case "lessorequals":
		return cmp <= 0, nil
	case "greater":
		return cmp > 0, nil
	}
	return cmp >= 0, nil
}

func toFloat(v any) float64 {
	switch t := v.(type) {
	case int64:
		return float64(t)
	case float64:
		return t
	}
	return 0
}
