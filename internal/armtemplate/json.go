package armtemplate

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// node is one JSON value of a template with where it stands in the text:
// ARM's validation messages name the line and column of the element at
// fault, so the parser keeps them.
type node struct {
	kind      nodeKind
	str       string
	num       any // int64 or float64
	b         bool
	arr       []*node
	keys      []string
	vals      []*node
	line, col int
}

type nodeKind int

const (
	nNull nodeKind = iota
	nBool
	nNumber
	nString
	nArray
	nObject
)

// get returns the member named key, matched case-insensitively as Resource
// Manager matches template element names ("Parameters" is "parameters").
func (n *node) get(key string) *node {
	if n == nil || n.kind != nObject {
		return nil
	}
	for i, k := range n.keys {
		if strings.EqualFold(k, key) {
			return n.vals[i]
		}
	}
	return nil
}

// maxJSONDepth bounds nesting so a hostile template cannot exhaust the
// stack; real templates nest a few dozen levels at most.
const maxJSONDepth = 256

// jsonParser reads JSON with the extensions Resource Manager accepts in
// templates: // and /* */ comments; and, for json()/base64ToJson() (which
// use Json.NET), single-quoted strings.
type jsonParser struct {
	s         string
	i         int
	line, col int
	lenient   bool
}

// parseJSON parses one JSON document. Errors read like ARM's parse errors
// ("… Path 'x', line 5, position 3.").
func parseJSON(s string, lenient bool) (*node, error) {
	p := &jsonParser{s: s, line: 1, col: 1, lenient: lenient}
	p.skip()
	n, err := p.value(0, "")
	if err != nil {
		return nil, err
	}
	p.skip()
	if p.i < len(p.s) {
		return nil, p.errorf("", "Additional text encountered after finished reading JSON content: %s", p.peekText())
	}
	return n, nil
}

func (p *jsonParser) peekText() string {
	r, _ := utf8.DecodeRuneInString(p.s[p.i:])
	return string(r)
}

func (p *jsonParser) errorf(path, format string, args ...any) error {
	return &jsonError{msg: fmt.Sprintf(format, args...), path: path, line: p.line, col: p.col}
}

// jsonError is a syntax error with its position.
type jsonError struct {
	msg       string
	path      string
	line, col int
}

func (e *jsonError) Error() string {
	return fmt.Sprintf("%s Path '%s', line %d, position %d.", e.msg, e.path, e.line, e.col)
}

func (p *jsonParser) advance(n int) {
	for k := 0; k < n && p.i < len(p.s); k++ {
		if p.s[p.i] == '\n' {
			p.line++
			p.col = 1
		} else if p.s[p.i]&0xC0 != 0x80 {
			p.col++
		}
		p.i++
	}
}

// skip passes white space and comments.
func (p *jsonParser) skip() {
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			p.advance(1)
		case strings.HasPrefix(p.s[p.i:], "\uFEFF"):
			p.i += 3
		case strings.HasPrefix(p.s[p.i:], "//"):
			for p.i < len(p.s) && p.s[p.i] != '\n' {
				p.advance(1)
			}
		case strings.HasPrefix(p.s[p.i:], "/*"):
			end := strings.Index(p.s[p.i+2:], "*/")
			if end < 0 {
				p.advance(len(p.s) - p.i)
				return
			}
			p.advance(end + 4)
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int, path string) (*node, error) {
	if depth > maxJSONDepth {
		return nil, p.errorf(path, "The reader's MaxDepth of %d has been exceeded.", maxJSONDepth)
	}
	if p.i >= len(p.s) {
		return nil, p.errorf(path, "Unexpected end when reading JSON.")
	}
	n := &node{line: p.line, col: p.col}
	c := p.s[p.i]
	switch {
	case c == '{':
		n.kind = nObject
		p.advance(1)
		p.skip()
		seen := map[string]bool{}
		if p.i < len(p.s) && p.s[p.i] == '}' {
			p.advance(1)
			return n, nil
		}
		for {
			p.skip()
			if p.i >= len(p.s) || (p.s[p.i] != '"' && !(p.lenient && p.s[p.i] == '\'')) {
				if p.i >= len(p.s) {
					return nil, p.errorf(path, "Unexpected end when reading JSON.")
				}
				return nil, p.errorf(path, "Invalid property identifier character: %s.", p.peekText())
			}
			key, err := p.stringLit(path)
			if err != nil {
				return nil, err
			}
			lk := strings.ToLower(key)
			if seen[lk] {
				return nil, p.errorf(joinPath(path, key), "Can not add property %s to Newtonsoft.Json.Linq.JObject. Property with the same name already exists on object.", key)
			}
			seen[lk] = true
			p.skip()
			if p.i >= len(p.s) || p.s[p.i] != ':' {
				return nil, p.errorf(joinPath(path, key), "Invalid character after parsing property name. Expected ':'.")
			}
			p.advance(1)
			p.skip()
			v, err := p.value(depth+1, joinPath(path, key))
			if err != nil {
				return nil, err
			}
			n.keys = append(n.keys, key)
			n.vals = append(n.vals, v)
			if done, err := p.afterElement(joinPath(path, key), '}'); done || err != nil {
				return n, err
			}
		}
	case c == '[':
		n.kind = nArray
		p.advance(1)
		p.skip()
		if p.i < len(p.s) && p.s[p.i] == ']' {
			p.advance(1)
			return n, nil
		}
		for {
			p.skip()
			v, err := p.value(depth+1, fmt.Sprintf("%s[%d]", path, len(n.arr)))
			if err != nil {
				return nil, err
			}
			n.arr = append(n.arr, v)
			if done, err := p.afterElement(path, ']'); done || err != nil {
				return n, err
			}
		}
	case c == '"' || (p.lenient && c == '\''):
		s, err := p.stringLit(path)
		if err != nil {
			return nil, err
		}
		n.kind, n.str = nString, s
		return n, nil
	case c == '-' || (c >= '0' && c <= '9'):
		j := p.i
		if p.s[j] == '-' {
			j++
		}
		for j < len(p.s) && strings.IndexByte("0123456789.eE+-", p.s[j]) >= 0 {
			j++
		}
		text := p.s[p.i:j]
		num, ok := parseNumber(text)
		if !ok {
			return nil, p.errorf(path, "Input string '%s' is not a valid number.", text)
		}
		p.advance(j - p.i)
		n.kind, n.num = nNumber, num
		return n, nil
	case strings.HasPrefix(p.s[p.i:], "true"):
		p.advance(4)
		n.kind, n.b = nBool, true
		return n, nil
	case strings.HasPrefix(p.s[p.i:], "false"):
		p.advance(5)
		n.kind = nBool
		return n, nil
	case strings.HasPrefix(p.s[p.i:], "null"):
		p.advance(4)
		n.kind = nNull
		return n, nil
	}
	return nil, p.errorf(path, "Unexpected character encountered while parsing value: %s.", p.peekText())
}

// afterElement reads what follows an element of an object or array: a
// comma (more follow) or the closing bracket (done).
func (p *jsonParser) afterElement(path string, closing byte) (done bool, err error) {
	p.skip()
	switch {
	case p.i >= len(p.s):
		return false, p.errorf(path, "Unexpected end when reading JSON.")
	case p.s[p.i] == ',':
		p.advance(1)
		return false, nil
	case p.s[p.i] == closing:
		p.advance(1)
		return true, nil
	}
	return false, p.errorf(path, "After parsing a value an unexpected character was encountered: %s.", p.peekText())
}

// parseNumber gives an int64 for an integer that fits and a float64
// otherwise, as Json.NET reads numbers.
func parseNumber(text string) (any, bool) {
	if !strings.ContainsAny(text, ".eE") {
		if v, err := strconv.ParseInt(text, 10, 64); err == nil {
			return v, true
		}
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, false
	}
	if strings.HasPrefix(text, "0") && len(text) > 1 && text[1] != '.' && text[1] != 'e' && text[1] != 'E' {
		return nil, false
	}
	return f, true
}

func (p *jsonParser) stringLit(path string) (string, error) {
	quote := p.s[p.i]
	p.advance(1)
	var b strings.Builder
	for {
		if p.i >= len(p.s) {
			return "", p.errorf(path, "Unterminated string. Expected delimiter: %c.", quote)
		}
		c := p.s[p.i]
		if c == quote {
			p.advance(1)
			return b.String(), nil
		}
		if c == '\\' {
			if p.i+1 >= len(p.s) {
				return "", p.errorf(path, "Unterminated string. Expected delimiter: %c.", quote)
			}
			e := p.s[p.i+1]
			switch e {
			case '"', '\\', '/', '\'':
				b.WriteByte(e)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				if p.i+6 > len(p.s) {
					return "", p.errorf(path, "Unexpected end while parsing Unicode escape sequence.")
				}
				v, err := strconv.ParseUint(p.s[p.i+2:p.i+6], 16, 32)
				if err != nil {
					return "", p.errorf(path, "Invalid Unicode escape sequence.")
				}
				r := rune(v)
				adv := 6
				if r >= 0xD800 && r < 0xDC00 && p.i+12 <= len(p.s) && p.s[p.i+6] == '\\' && p.s[p.i+7] == 'u' {
					if lo, err := strconv.ParseUint(p.s[p.i+8:p.i+12], 16, 32); err == nil && lo >= 0xDC00 && lo < 0xE000 {
						r = (r-0xD800)<<10 + (rune(lo) - 0xDC00) + 0x10000
						adv = 12
					}
				}
				b.WriteRune(r)
				p.advance(adv)
				continue
			default:
				return "", p.errorf(path, "Bad JSON escape sequence: \\%c.", e)
			}
			p.advance(2)
			continue
		}
		if c < 0x20 && c != '\t' {
			return "", p.errorf(path, "Bad control character in string literal.")
		}
		r, size := utf8.DecodeRuneInString(p.s[p.i:])
		if r == utf8.RuneError && size == 1 {
			return "", p.errorf(path, "Invalid UTF-8 in string literal.")
		}
		b.WriteString(p.s[p.i : p.i+size])
		p.advance(size)
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// toValue turns a node into an evaluator value (without evaluating
// expressions): objects become *Object, numbers int64/float64.
func (n *node) toValue() any {
	switch n.kind {
	case nBool:
		return n.b
	case nNumber:
		return n.num
	case nString:
		return n.str
	case nArray:
		out := make([]any, len(n.arr))
		for i, e := range n.arr {
			out[i] = e.toValue()
		}
		return out
	case nObject:
		o := NewObject()
		for i, k := range n.keys {
			o.Set(k, n.vals[i].toValue())
		}
		return o
	}
	return nil
}
