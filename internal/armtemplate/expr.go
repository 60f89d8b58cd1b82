package armtemplate

import (
	"strconv"
	"strings"
)

// The template expression language: a JSON string that starts with '[' and
// ends with ']' is an expression; "[[" at the start escapes a literal
// leading bracket (learn.microsoft.com/azure/azure-resource-manager/templates/template-expressions).
//
//	expression := primary { '.' name | '[' expression ']' }
//	primary    := 'string' | number | name [ '.' name ] '(' [ expression { ',' expression } ] ')'
//
// Strings are single-quoted with '' for a quote; function names are
// case-insensitive; a dotted name is a user-defined function
// (namespace.member).

// Limits on one expression. ARM allows 24,576 characters in a template
// expression (learn.microsoft.com/azure/azure-resource-manager/templates/best-practices#template-limits);
// the nesting bound keeps the recursive parser and evaluator off the
// stack's end.
const (
	maxExprLen   = 24576
	maxExprDepth = 64
)

type expr interface{}

type litExpr struct{ v any }

type callExpr struct {
	name string // lower-cased
	text string // as written, for messages
	args []expr
}

type propExpr struct {
	target expr
	name   string
}

type indexExpr struct {
	target expr
	index  expr
}

// isExpression reports whether a template string is an expression, and
// the literal it stands for when it is not ("[[x]" → "[x]").
func isExpression(s string) (bool, string) {
	if strings.HasPrefix(s, "[[") {
		return false, s[1:]
	}
	if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' {
		return true, s[1 : len(s)-1]
	}
	return false, s
}

type token struct {
	kind string // "string", "number", "name", "(", ")", ",", ".", "[", "]", "end"
	text string
	pos  int
}

type exprParser struct {
	src    string
	toks   []token
	i      int
	depth  int
	origin string // the whole expression, for messages
}

// parseExpr parses the text between the brackets of an expression.
func parseExpr(src string) (expr, error) {
	if len(src) > maxExprLen {
		return nil, errf("The template language expression exceeds the limit of '%d' characters", maxExprLen)
	}
	toks, err := tokenize(src)
	if err != nil {
		return nil, err
	}
	p := &exprParser{src: src, toks: toks, origin: src}
	if p.peek().kind == "end" {
		return nil, errf("The language expression '%s' is not valid: the string is empty", src)
	}
	e, err := p.expression()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != "end" {
		return nil, p.unexpected("EndOfData", t)
	}
	return e, nil
}

func tokenName(t token) string {
	switch t.kind {
	case "string":
		return "Literal"
	case "number":
		return "Integer"
	case "name":
		return "Identifier"
	case "(":
		return "LeftParenthesis"
	case ")":
		return "RightParenthesis"
	case ",":
		return "Comma"
	case ".":
		return "Dot"
	case "[":
		return "LeftSquareBracket"
	case "]":
		return "RightSquareBracket"
	}
	return "EndOfData"
}

func (p *exprParser) unexpected(want string, got token) error {
	return errf("Unable to parse language expression '%s': expected token '%s' and actual '%s'", p.origin, want, tokenName(got))
}

func tokenize(s string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case strings.IndexByte("(),.[]", c) >= 0:
			toks = append(toks, token{kind: string(c), pos: i})
			i++
		case c == '\'':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(s) {
					return nil, errf("The language expression literal limit exceeded or the string literal starting at position '%d' of '%s' is not terminated", i, s)
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(s[j])
				j++
			}
			toks = append(toks, token{kind: "string", text: b.String(), pos: i})
			i = j + 1
		case c == '-' || c == '+' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
				j++
			}
			toks = append(toks, token{kind: "number", text: s[i:j], pos: i})
			i = j
		case isNameByte(c):
			j := i
			for j < len(s) && (isNameByte(s[j]) || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			toks = append(toks, token{kind: "name", text: s[i:j], pos: i})
			i = j
		default:
			return nil, errf("The language expression '%s' is not valid: the string character '%c' at position '%d' is not expected", s, c, i)
		}
	}
	return append(toks, token{kind: "end", pos: len(s)}), nil
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '$'
}

func (p *exprParser) peek() token { return p.toks[p.i] }

func (p *exprParser) next() token {
	t := p.toks[p.i]
	if t.kind != "end" {
		p.i++
	}
	return t
}

func (p *exprParser) expression() (expr, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxExprDepth {
		return nil, errf("The language expression '%s' is nested deeper than the limit of %d", p.origin, maxExprDepth)
	}
	e, err := p.primary()
	if err != nil {
		return nil, err
	}
	for {
		switch p.peek().kind {
		case ".":
			p.next()
			t := p.next()
			if t.kind != "name" {
				return nil, p.unexpected("Identifier", t)
			}
			e = &propExpr{target: e, name: t.text}
		case "[":
			p.next()
			idx, err := p.expression()
			if err != nil {
				return nil, err
			}
			if t := p.next(); t.kind != "]" {
				return nil, p.unexpected("RightSquareBracket", t)
			}
			e = &indexExpr{target: e, index: idx}
		default:
			return e, nil
		}
	}
}

func (p *exprParser) primary() (expr, error) {
	t := p.next()
	switch t.kind {
	case "string":
		return &litExpr{v: t.text}, nil
	case "number":
		if strings.Contains(t.text, ".") {
			f, err := strconv.ParseFloat(t.text, 64)
			if err != nil {
				return nil, errf("The language expression '%s' is not valid: '%s' is not a valid number", p.origin, t.text)
			}
			return &litExpr{v: f}, nil
		}
		v, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			return nil, errf("The language expression '%s' is not valid: '%s' is not a valid integer", p.origin, t.text)
		}
		return &litExpr{v: v}, nil
	case "name":
		name := t.text
		// A user-defined function: namespace.member(…).
		if p.peek().kind == "." && p.i+1 < len(p.toks) && p.toks[p.i+1].kind == "name" &&
			p.i+2 < len(p.toks) && p.toks[p.i+2].kind == "(" {
			p.next()
			name += "." + p.next().text
		}
		if l := p.next(); l.kind != "(" {
			return nil, p.unexpected("LeftParenthesis", l)
		}
		c := &callExpr{name: strings.ToLower(name), text: name}
		if p.peek().kind == ")" {
			p.next()
			return c, nil
		}
		for {
			a, err := p.expression()
			if err != nil {
				return nil, err
			}
			c.args = append(c.args, a)
			switch n := p.next(); n.kind {
			case ",":
				continue
			case ")":
				return c, nil
			default:
				return nil, p.unexpected("RightParenthesis", n)
			}
		}
	}
	return nil, p.unexpected("Identifier", t)
}

// walkCalls visits every call in e (for finding reference() targets and
// the functions a section may not use).
func walkCalls(e expr, f func(*callExpr)) {
	switch t := e.(type) {
	case *callExpr:
		f(t)
		for _, a := range t.args {
			walkCalls(a, f)
		}
	case *propExpr:
		walkCalls(t.target, f)
	case *indexExpr:
		walkCalls(t.target, f)
		walkCalls(t.index, f)
	}
}
