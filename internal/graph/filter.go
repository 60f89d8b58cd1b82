package graph

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tenantbridge/tenantbridge/internal/directory"
)

// $filter: an OData expression parser and evaluator for the directory's
// collections, held to what Microsoft Graph accepts on them.
//
// What Graph documents, and what is done here:
//
//   - Operators and functions: eq, ne, not, in, and, or, parentheses, the
//     startswith and endswith functions, ge and le, and the lambda
//     operator any on collections ("Use the $filter query parameter",
//     https://learn.microsoft.com/graph/filter-query-parameter, "Operators
//     and functions supported in filter expressions"). The all operator
//     "isn't supported in Microsoft Graph" (same page, "all operator"), nor
//     are lt, gt, has and contains on directory objects: each is refused
//     with Request_UnsupportedQuery.
//   - Each resource's filterable properties and the operators each takes
//     are from its resource page ("Supports $filter (eq, ne, not, …)") and
//     the table of "Advanced query capabilities on Microsoft Entra ID
//     objects" (https://learn.microsoft.com/graph/aad-advanced-queries,
//     "Support for filter by properties of Microsoft Entra ID (directory)
//     objects"); see the filterProp tables with each list endpoint. A
//     property not listed "does not support $filter at all": Graph's
//     "Unsupported or invalid query filter clause specified for property
//     'P' of resource 'R'." (the page's own example).
//   - Advanced queries: "The not and ne negation operators are supported
//     only with advanced query parameters", "The endsWith operator is
//     supported only with advanced query parameters by mail, otherMails,
//     userPrincipalName, and proxyAddresses", and filtering on null is
//     marked advanced in the table. Advanced query parameters are the
//     ConsistencyLevel: eventual header and $count=true; without them such
//     a filter gets Graph's documented Request_UnsupportedQuery "Operator
//     'endsWith' is not supported because the required parameters might be
//     missing. …" (same page, "Error handling for advanced queries").
//   - "The in operator is supported by default whenever eq operator is
//     supported by default" (same page), with at most 15 expressions in a
//     filter clause by default (https://learn.microsoft.com/graph/known-issues,
//     "Query parameter limitations").
//   - Multi-valued properties need any: "The any operator is required for
//     filter expressions on multi-valued properties" (application's
//     identifierUris, servicePrincipal's servicePrincipalNames). To negate
//     an any, "use the not operator, not the ne operator" (filter page).
//     Collections of complex values (keyCredentials, appRoles, …) answer
//     Graph's "Complex query on property keyCredentials is not supported."
//     (microsoftgraph/microsoft-graph-docs#18122).
//   - A malformed expression is the OData layer's 400 BadRequest "Invalid
//     filter clause" (microsoftgraph/microsoft-graph-docs#3044, e.g. a
//     boolean in quotes), with what is wrong after a colon; a literal of
//     the wrong type is the OData library's "A binary operator with
//     incompatible types was detected. …".
//
// Strings compare without regard to case, as the directory's do (a
// displayName eq 'PAGE-C' finds page-c); GUIDs likewise.

// Bounds on one expression, so that a hostile filter costs little: the
// option itself is at most maxQueryOption (2048) characters, which is also
// Graph's limit on an advanced query's URL.
const (
	maxFilterDepth = 12 // nesting of parentheses, not and any
	maxFilterTerms = 64 // comparisons, functions and in-list values
	// defaultFilterTerms is Graph's limit without advanced query
	// parameters: "requests are limited to 15 expressions in filter
	// clause by default" (known issues, "Query parameter limitations").
	defaultFilterTerms = 15
)

// filterOps is a set of the operators a property takes.
type filterOps uint16

const (
	opEq filterOps = 1 << iota
	opNe
	opNot
	opIn
	opGe
	opLe
	opStartsWith
	opEndsWith
	opNull // comparing with null (eq null, ne null)
)

// propType is a filterable property's OData type.
type propType int

const (
	typeString propType = iota
	typeBool
	typeGUID // Edm.Guid: an unquoted literal
	typeDateTime
)

func (t propType) edm() string {
	switch t {
	case typeBool:
		return "Edm.Boolean"
	case typeGUID:
		return "Edm.Guid"
	case typeDateTime:
		return "Edm.DateTimeOffset"
	}
	return "Edm.String"
}

// filterProp is one property $filter may test on a resource.
type filterProp struct {
	name       string // as Graph spells it (names match without case)
	typ        propType
	collection bool // a collection of typ: only through any(…)
	ops        filterOps
}

// Operator sets most properties share.
const (
	stringOps = opEq | opNe | opNot | opIn | opGe | opLe | opStartsWith
	idOps     = opEq | opNe | opNot | opIn
	boolOps   = opEq | opNe | opNot
	collOps   = opEq | opNot | opGe | opLe | opStartsWith
)

// ---- syntax ----

// nodeKind is what one node of a filter expression is.
type nodeKind int

const (
	nodeAnd nodeKind = iota
	nodeOr
	nodeNot
	nodeCompare // path op literal
	nodeIn      // path in (literals)
	nodeFunc    // startswith(path, literal), endswith(path, literal)
	nodeAny     // path/any(v: body)
)

// filterNode is one node of a parsed expression.
type filterNode struct {
	kind nodeKind
	op   string    // compare: eq ne ge le gt lt; func: startswith endswith
	path []string  // the operand: a property, or the range variable and a sub-property
	lits []literal // compare and func: one; in: one or more
	kids []*filterNode
	// rangeVar is an any's range variable (kids[0] is its body).
	rangeVar string
}

// litKind is the kind of a literal as written.
type litKind int

const (
	litString litKind = iota
	litBool
	litNull
	litGUID
	litDateTime
	litNumber
)

type literal struct {
	kind litKind
	s    string    // string, GUID (lower case), number as written
	b    bool      // boolean
	t    time.Time // date-time
}

func (l literal) edm() string {
	switch l.kind {
	case litBool:
		return "Edm.Boolean"
	case litNull:
		return "null"
	case litGUID:
		return "Edm.Guid"
	case litDateTime:
		return "Edm.DateTimeOffset"
	case litNumber:
		return "Edm.Int32"
	}
	return "Edm.String"
}

// String writes the literal back in OData syntax.
func (l literal) String() string {
	switch l.kind {
	case litString:
		return "'" + strings.ReplaceAll(l.s, "'", "''") + "'"
	case litBool:
		if l.b {
			return "true"
		}
		return "false"
	case litNull:
		return "null"
	case litDateTime:
		return l.t.UTC().Format(time.RFC3339Nano)
	}
	return l.s
}

// String writes the expression back in OData syntax, fully parenthesized:
// what the fuzz target reads again to check the parser is consistent.
func (n *filterNode) String() string {
	switch n.kind {
	case nodeAnd, nodeOr:
		op := " and "
		if n.kind == nodeOr {
			op = " or "
		}
		return "(" + n.kids[0].String() + op + n.kids[1].String() + ")"
	case nodeNot:
		return "not (" + n.kids[0].String() + ")"
	case nodeCompare:
		return strings.Join(n.path, "/") + " " + n.op + " " + n.lits[0].String()
	case nodeIn:
		parts := make([]string, len(n.lits))
		for i, l := range n.lits {
			parts[i] = l.String()
		}
		return strings.Join(n.path, "/") + " in (" + strings.Join(parts, ",") + ")"
	case nodeFunc:
		return n.op + "(" + strings.Join(n.path, "/") + "," + n.lits[0].String() + ")"
	case nodeAny:
		return strings.Join(n.path, "/") + "/" + n.op + "(" + n.rangeVar + ":" + n.kids[0].String() + ")"
	}
	return "?"
}

// syntaxError is a filter Graph's OData layer cannot read.
func syntaxError(format string, args ...any) *graphError {
	return &graphError{status: 400, code: codeUnknownSegment, message: "Invalid filter clause: " + fmt.Sprintf(format, args...)}
}

// token kinds of the lexer.
type tokKind int

const (
	tokEOF    tokKind = iota
	tokWord           // identifier, keyword, unquoted literal (GUID, date-time, number)
	tokString         // 'quoted'
	tokPunct          // ( ) , / :
)

type ftoken struct {
	kind tokKind
	text string // word or punctuation as written; a string's value
	pos  int
}

// lex splits a filter into tokens. Words are runs of letters, digits and
// '_', or, when they start like a literal (a digit, or eight hex digits and
// a '-'), of the characters a GUID, date-time or number is written with.
func lex(s string) ([]ftoken, error) {
	var out []ftoken
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '(' || c == ')' || c == ',' || c == '/' || c == ':':
			out = append(out, ftoken{tokPunct, string(c), i})
			i++
		case c == '\'':
			v, rest, ok := parseStringLiteral(s[i:])
			if !ok {
				return nil, syntaxError("There is an unterminated string literal at position %d in '%s'.", i, safeText(s))
			}
			out = append(out, ftoken{tokString, v, i})
			i = len(s) - len(rest)
		case isWordStart(c):
			j := i
			for j < len(s) && isIdentByte(s[j]) {
				j++
			}
			if isDigit(c) || (j-i == 8 && isHex(s[i:j]) && j < len(s) && s[j] == '-') {
				for j < len(s) && isLiteralByte(s[j]) {
					j++
				}
			}
			out = append(out, ftoken{tokWord, s[i:j], i})
			i = j
		default:
			r, _ := utf8.DecodeRuneInString(s[i:])
			return nil, syntaxError("Syntax error: character '%s' is not valid at position %d in '%s'.", string(r), i, safeText(s))
		}
		if len(out) > 4*maxFilterTerms+16 {
			return nil, unsupportedQuery("The filter expression is too complex.")
		}
	}
	return append(out, ftoken{tokEOF, "", len(s)}), nil
}

func isDigit(c byte) bool     { return c >= '0' && c <= '9' }
func isLetter(c byte) bool    { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isWordStart(c byte) bool { return isLetter(c) || isDigit(c) || c == '_' || c == '$' }
func isIdentByte(c byte) bool { return isLetter(c) || isDigit(c) || c == '_' || c == '$' }
func isLiteralByte(c byte) bool {
	return isLetter(c) || isDigit(c) || c == '-' || c == ':' || c == '.' || c == '+'
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// parser is a recursive-descent reader of one filter expression.
type parser struct {
	src   string
	toks  []ftoken
	i     int
	depth int
	terms int
	vars  []string // range variables in scope
}

// parseFilterExpr reads a whole $filter value into its syntax tree,
// within the bounds above. It knows OData's grammar only; what a resource
// allows is checkFilter's.
func parseFilterExpr(s string) (*filterNode, error) {
	if strings.TrimSpace(s) == "" {
		return nil, syntaxError("The filter expression is empty.")
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{src: s, toks: toks}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, p.unexpected(t)
	}
	return n, nil
}

func (p *parser) peek() ftoken { return p.toks[p.i] }
func (p *parser) next() ftoken {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) unexpected(t ftoken) error {
	if t.kind == tokEOF {
		return syntaxError("Expression expected at position %d in '%s'.", t.pos, safeText(p.src))
	}
	return syntaxError("Syntax error at position %d in '%s'.", t.pos, safeText(p.src))
}

func (p *parser) isWord(w string) bool {
	t := p.peek()
	return t.kind == tokWord && strings.EqualFold(t.text, w)
}

func (p *parser) isPunct(c string) bool {
	t := p.peek()
	return t.kind == tokPunct && t.text == c
}

func (p *parser) expect(c string) error {
	if !p.isPunct(c) {
		return p.unexpected(p.peek())
	}
	p.next()
	return nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxFilterDepth {
		return unsupportedQuery("The filter expression is nested too deeply: at most %d levels.", maxFilterDepth)
	}
	return nil
}

func (p *parser) term() error {
	p.terms++
	if p.terms > maxFilterTerms {
		return unsupportedQuery("The filter expression has too many terms: at most %d.", maxFilterTerms)
	}
	return nil
}

func (p *parser) or() (*filterNode, error) {
	left, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.isWord("or") {
		p.next()
		right, err := p.and()
		if err != nil {
			return nil, err
		}
		left = &filterNode{kind: nodeOr, kids: []*filterNode{left, right}}
	}
	return left, nil
}

func (p *parser) and() (*filterNode, error) {
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.isWord("and") {
		p.next()
		right, err := p.unary()
		if err != nil {
			return nil, err
		}
		left = &filterNode{kind: nodeAnd, kids: []*filterNode{left, right}}
	}
	return left, nil
}

func (p *parser) unary() (*filterNode, error) {
	if p.isWord("not") && p.toks[p.i+1].kind != tokEOF && !(p.toks[p.i+1].kind == tokWord && isOperator(p.toks[p.i+1].text)) {
		p.next()
		if err := p.enter(); err != nil {
			return nil, err
		}
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		p.depth--
		return &filterNode{kind: nodeNot, kids: []*filterNode{x}}, nil
	}
	return p.primary()
}

func isOperator(w string) bool {
	switch strings.ToLower(w) {
	case "eq", "ne", "gt", "ge", "lt", "le", "in", "has", "and", "or":
		return true
	}
	return false
}

func (p *parser) primary() (*filterNode, error) {
	t := p.peek()
	if t.kind == tokPunct && t.text == "(" {
		p.next()
		if err := p.enter(); err != nil {
			return nil, err
		}
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		p.depth--
		return x, p.expect(")")
	}
	if t.kind != tokWord || !isLetter(t.text[0]) && t.text[0] != '_' && t.text[0] != '$' {
		return nil, p.unexpected(t)
	}
	// A function call: name(…).
	if p.toks[p.i+1].kind == tokPunct && p.toks[p.i+1].text == "(" {
		name := strings.ToLower(t.text)
		p.next()
		p.next()
		if err := p.term(); err != nil {
			return nil, err
		}
		path, err := p.path()
		if err != nil {
			return nil, err
		}
		if err := p.expect(","); err != nil {
			return nil, err
		}
		lit, err := p.literal()
		if err != nil {
			return nil, err
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		return &filterNode{kind: nodeFunc, op: name, path: path, lits: []literal{lit}}, nil
	}
	path, err := p.path()
	if err != nil {
		return nil, err
	}
	// A lambda: path/any(v: body) or path/all(…).
	if p.isPunct("/") {
		p.next()
		op := p.next()
		if op.kind != tokWord || !(strings.EqualFold(op.text, "any") || strings.EqualFold(op.text, "all")) {
			return nil, p.unexpected(op)
		}
		if err := p.expect("("); err != nil {
			return nil, err
		}
		v := p.next()
		if v.kind != tokWord || !isLetter(v.text[0]) {
			return nil, p.unexpected(v)
		}
		if err := p.expect(":"); err != nil {
			return nil, err
		}
		if err := p.enter(); err != nil {
			return nil, err
		}
		p.vars = append(p.vars, v.text)
		body, err := p.or()
		if err != nil {
			return nil, err
		}
		p.vars = p.vars[:len(p.vars)-1]
		p.depth--
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		return &filterNode{kind: nodeAny, op: strings.ToLower(op.text), path: path, rangeVar: v.text, kids: []*filterNode{body}}, nil
	}
	opTok := p.next()
	if opTok.kind != tokWord || !isOperator(opTok.text) || strings.EqualFold(opTok.text, "and") || strings.EqualFold(opTok.text, "or") {
		return nil, p.unexpected(opTok)
	}
	op := strings.ToLower(opTok.text)
	if err := p.term(); err != nil {
		return nil, err
	}
	if op == "in" {
		if err := p.expect("("); err != nil {
			return nil, err
		}
		var lits []literal
		for {
			lit, err := p.literal()
			if err != nil {
				return nil, err
			}
			lits = append(lits, lit)
			if p.isPunct(")") {
				p.next()
				break
			}
			if err := p.expect(","); err != nil {
				return nil, err
			}
			if err := p.term(); err != nil {
				return nil, err
			}
		}
		return &filterNode{kind: nodeIn, op: op, path: path, lits: lits}, nil
	}
	lit, err := p.literal()
	if err != nil {
		return nil, err
	}
	return &filterNode{kind: nodeCompare, op: op, path: path, lits: []literal{lit}}, nil
}

// path reads a property path: name or name/sub (a range variable's
// property); a trailing /any or /all is left for the caller.
func (p *parser) path() ([]string, error) {
	t := p.next()
	if t.kind != tokWord || !(isLetter(t.text[0]) || t.text[0] == '_') {
		return nil, p.unexpected(t)
	}
	path := []string{t.text}
	for p.isPunct("/") {
		nt := p.toks[p.i+1]
		if nt.kind == tokWord && (strings.EqualFold(nt.text, "any") || strings.EqualFold(nt.text, "all")) &&
			p.toks[p.i+2].kind == tokPunct && p.toks[p.i+2].text == "(" {
			break
		}
		p.next()
		seg := p.next()
		if seg.kind != tokWord || !(isLetter(seg.text[0]) || seg.text[0] == '_' || seg.text[0] == '$') {
			return nil, p.unexpected(seg)
		}
		path = append(path, seg.text)
		if len(path) > 4 {
			return nil, unsupportedQuery("The filter expression is nested too deeply.")
		}
	}
	return path, nil
}

// literal reads one literal: 'string', true, false, null, a GUID, a
// date-time or a number.
func (p *parser) literal() (literal, error) {
	t := p.next()
	switch t.kind {
	case tokString:
		return literal{kind: litString, s: t.text}, nil
	case tokWord:
		lw := strings.ToLower(t.text)
		switch {
		case lw == "true" || lw == "false":
			return literal{kind: litBool, b: lw == "true"}, nil
		case lw == "null":
			return literal{kind: litNull}, nil
		case len(t.text) == 36 && validID(t.text):
			return literal{kind: litGUID, s: lw}, nil
		case isDigit(t.text[0]):
			if d, err := time.Parse(time.RFC3339Nano, t.text); err == nil {
				return literal{kind: litDateTime, t: d.UTC()}, nil
			}
			if d, err := time.Parse("2006-01-02", t.text); err == nil {
				return literal{kind: litDateTime, t: d.UTC()}, nil
			}
			for i := 0; i < len(t.text); i++ {
				if !isDigit(t.text[i]) {
					return literal{}, syntaxError("Unrecognized literal '%s' at position %d in '%s'.", safeText(t.text), t.pos, safeText(p.src))
				}
			}
			return literal{kind: litNumber, s: t.text}, nil
		}
		return literal{}, syntaxError("A literal was expected at position %d in '%s'; '%s' is not one.", t.pos, safeText(p.src), safeText(t.text))
	}
	return literal{}, p.unexpected(t)
}

// ---- what a resource allows ----

// filterCheck is the result of checking a parsed filter against a
// resource: whether it needs advanced query parameters, and why.
type filterCheck struct {
	advanced string // the first operator that needs them ("" if none)
	terms    int
}

// checkFilter holds a parsed expression to what Graph allows on the
// resource (props) and returns which operator, if any, makes it an
// advanced query.
func checkFilter(n *filterNode, resource string, props []filterProp) (filterCheck, error) {
	var c filterCheck
	err := c.check(n, resource, props, false)
	return c, err
}

func (c *filterCheck) need(op string) {
	if c.advanced == "" {
		c.advanced = op
	}
}

func findProp(props []filterProp, name string) (filterProp, bool) {
	for _, p := range props {
		if strings.EqualFold(p.name, name) {
			return p, true
		}
	}
	return filterProp{}, false
}

func unsupportedProperty(prop, resource string) *graphError {
	return unsupportedQuery("Unsupported or invalid query filter clause specified for property '%s' of resource '%s'.", safeText(prop), resource)
}

func (c *filterCheck) check(n *filterNode, resource string, props []filterProp, underNot bool) error {
	switch n.kind {
	case nodeAnd, nodeOr:
		for _, k := range n.kids {
			if err := c.check(k, resource, props, underNot); err != nil {
				return err
			}
		}
		return nil
	case nodeNot:
		c.need("not")
		return c.check(n.kids[0], resource, props, true)
	case nodeAny:
		prop, ok := findProp(props, n.path[0])
		if len(n.path) != 1 || !ok || !prop.collection {
			if len(n.path) == 1 && !ok && propertyExists(resource, n.path[0]) {
				return unsupportedQuery("Complex query on property %s is not supported.", safeText(n.path[0]))
			}
			return unsupportedProperty(strings.Join(n.path, "/"), resource)
		}
		if n.op == "all" {
			return unsupportedQuery("Unsupported query: the 'all' lambda operator is not supported on property '%s' of resource '%s'.", prop.name, resource)
		}
		return c.checkLambdaBody(n.kids[0], n.rangeVar, prop, resource)
	}
	// A comparison, in-list or function on one property.
	prop, ok := findProp(props, n.path[0])
	if len(n.path) != 1 || !ok {
		return unsupportedProperty(strings.Join(n.path, "/"), resource)
	}
	if prop.collection {
		// "The any operator is required for filter expressions on
		// multi-valued properties."
		return unsupportedProperty(prop.name, resource)
	}
	return c.checkLeaf(n, prop, resource)
}

// checkLeaf checks one comparison, in-list or function of a property (or,
// inside any, of the range variable standing for an item of prop).
func (c *filterCheck) checkLeaf(n *filterNode, prop filterProp, resource string) error {
	c.terms += len(n.lits)
	var need filterOps
	opName := n.op
	switch n.kind {
	case nodeCompare:
		switch n.op {
		case "eq":
			need = opEq
		case "ne":
			need = opNe
		case "ge":
			need = opGe
		case "le":
			need = opLe
		default: // gt, lt, has
			return unsupportedQuery("Unsupported property filter clause operator '%s'.", opName)
		}
	case nodeIn:
		need = opIn
	case nodeFunc:
		switch n.op {
		case "startswith":
			need, opName = opStartsWith, "startsWith"
		case "endswith":
			need, opName = opEndsWith, "endsWith"
		default:
			return unsupportedQuery("Unsupported Query: function '%s' is not supported.", safeText(n.op))
		}
	}
	if prop.ops&need == 0 {
		return unsupportedProperty(prop.name, resource)
	}
	if need == opNe || need == opEndsWith {
		c.need(opName)
	}
	for _, l := range n.lits {
		if l.kind == litNull {
			if prop.ops&opNull == 0 || (n.kind != nodeCompare || (n.op != "eq" && n.op != "ne")) {
				return unsupportedProperty(prop.name, resource)
			}
			c.need(opName)
			continue
		}
		if !literalFits(l, prop.typ) {
			if n.kind == nodeFunc {
				return syntaxError("No function signature for the function with name '%s' matches the specified arguments.", n.op)
			}
			return syntaxError("A binary operator with incompatible types was detected. Found operand types '%s' and '%s' for operator kind '%s'.",
				prop.typ.edm(), l.edm(), operatorKind(n.op))
		}
		if n.kind == nodeFunc && prop.typ != typeString {
			return unsupportedProperty(prop.name, resource)
		}
	}
	return nil
}

func operatorKind(op string) string {
	switch op {
	case "eq":
		return "Equal"
	case "ne":
		return "NotEqual"
	case "ge":
		return "GreaterThanOrEqual"
	case "le":
		return "LessThanOrEqual"
	case "in":
		return "In"
	}
	return op
}

func literalFits(l literal, t propType) bool {
	switch t {
	case typeString:
		return l.kind == litString
	case typeBool:
		return l.kind == litBool
	case typeGUID:
		return l.kind == litGUID
	case typeDateTime:
		return l.kind == litDateTime
	}
	return false
}

// checkLambdaBody checks an any's body: one comparison or function of the
// range variable itself (collections of primitives only).
func (c *filterCheck) checkLambdaBody(n *filterNode, v string, prop filterProp, resource string) error {
	switch n.kind {
	case nodeCompare, nodeFunc, nodeIn:
	default:
		return unsupportedQuery("Unsupported query: the body of any on property '%s' must be one comparison of '%s'.", prop.name, safeText(v))
	}
	if len(n.path) != 1 || n.path[0] != v {
		if len(n.path) > 1 && n.path[0] == v {
			return unsupportedQuery("Complex query on property %s is not supported.", prop.name)
		}
		return unsupportedQuery("Unsupported query: the body of any on property '%s' must test '%s'.", prop.name, safeText(v))
	}
	if n.kind == nodeCompare && n.op == "ne" {
		// "use the not operator, not the ne operator"
		return unsupportedQuery("Unsupported property filter clause operator 'NotEqualsMatch'.")
	}
	if n.kind == nodeIn {
		return unsupportedProperty(prop.name, resource)
	}
	item := prop
	item.collection = false
	return c.checkLeaf(n, item, resource)
}

// propertyExists reports whether a name is a property of the resource's
// view at all (for the "Complex query" answer on complex collections).
func propertyExists(resource, name string) bool {
	var names []string
	switch resource {
	case "Application":
		names = applicationProperties
	case "ServicePrincipal":
		names = servicePrincipalProperties
	case "User":
		names = userProperties
	case "Group":
		names = groupProperties
	}
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// ---- evaluation ----

// matches evaluates the expression on one object, given as its Graph
// view decoded from JSON (property name → string, bool, nil, []any, …).
// A property's name in the expression matches its view key without case.
func (n *filterNode) matches(obj map[string]any) bool {
	return n.eval(obj, "", nil)
}

func lookup(obj map[string]any, name string) any {
	if v, ok := obj[name]; ok {
		return v
	}
	for k, v := range obj {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

func (n *filterNode) eval(obj map[string]any, rangeVar string, item any) bool {
	switch n.kind {
	case nodeAnd:
		return n.kids[0].eval(obj, rangeVar, item) && n.kids[1].eval(obj, rangeVar, item)
	case nodeOr:
		return n.kids[0].eval(obj, rangeVar, item) || n.kids[1].eval(obj, rangeVar, item)
	case nodeNot:
		return !n.kids[0].eval(obj, rangeVar, item)
	case nodeAny:
		coll, _ := lookup(obj, n.path[0]).([]any)
		for _, it := range coll {
			if n.kids[0].eval(obj, n.rangeVar, it) {
				return true
			}
		}
		return false
	}
	var v any
	if rangeVar != "" && len(n.path) == 1 && n.path[0] == rangeVar {
		v = item
	} else {
		v = lookup(obj, n.path[0])
	}
	switch n.kind {
	case nodeIn:
		for _, l := range n.lits {
			if compare(v, "eq", l) {
				return true
			}
		}
		return false
	case nodeFunc:
		s, ok := v.(string)
		if !ok {
			return false
		}
		p := strings.ToLower(n.lits[0].s)
		if n.op == "startswith" {
			return strings.HasPrefix(strings.ToLower(s), p)
		}
		return strings.HasSuffix(strings.ToLower(s), p)
	}
	return compare(v, n.op, n.lits[0])
}

// compare applies eq, ne, ge or le to a property value and a literal.
// null equals only null; any comparison of null other than eq/ne is false.
func compare(v any, op string, l literal) bool {
	if l.kind == litNull || v == nil {
		same := l.kind == litNull && v == nil
		switch op {
		case "eq":
			return same
		case "ne":
			return !same
		}
		return false
	}
	var c int
	switch l.kind {
	case litBool:
		b, ok := v.(bool)
		if !ok {
			return op == "ne"
		}
		if b == l.b {
			c = 0
		} else {
			c = 1
		}
		if op == "eq" || op == "ne" {
			return (c == 0) == (op == "eq")
		}
		return false
	case litDateTime:
		s, ok := v.(string)
		t, err := time.Parse(time.RFC3339Nano, s)
		if !ok || err != nil {
			return op == "ne"
		}
		c = t.Compare(l.t)
	default: // string, GUID
		s, ok := v.(string)
		if !ok {
			return op == "ne"
		}
		c = strings.Compare(strings.ToLower(s), strings.ToLower(l.s))
	}
	switch op {
	case "eq":
		return c == 0
	case "ne":
		return c != 0
	case "ge":
		return c >= 0
	case "le":
		return c <= 0
	}
	return false
}

// ---- narrowing the store query ----

// pushDown narrows a directory query by what the filter requires of every
// match (the comparisons joined to the whole by and), so that the store
// reads fewer objects; the whole expression is still evaluated on each.
// It reports false when the filter can match nothing.
func (n *filterNode) pushDown(q *directory.Query) bool {
	if n == nil {
		return true
	}
	for _, c := range conjuncts(n) {
		if len(c.path) != 1 {
			continue
		}
		prop := strings.ToLower(c.path[0])
		switch {
		case c.kind == nodeCompare && c.op == "eq" && c.lits[0].kind == litString:
			v := c.lits[0].s
			switch prop {
			case "id":
				if !validID(v) {
					return false
				}
				q.IDs = intersect(q.IDs, []string{strings.ToLower(v)})
				if len(q.IDs) == 0 {
					return false
				}
			case "appid":
				if !validID(v) {
					return false
				}
				q.AppID = strings.ToLower(v)
			case "displayname":
				if v == "" {
					return false
				}
				q.DisplayName = v
			}
		case c.kind == nodeIn && prop == "id":
			var ids []string
			for _, l := range c.lits {
				if l.kind == litString && validID(l.s) {
					ids = append(ids, strings.ToLower(l.s))
				}
			}
			if len(ids) == 0 {
				return false
			}
			q.IDs = intersect(q.IDs, ids)
			if len(q.IDs) == 0 {
				return false
			}
		case c.kind == nodeFunc && c.op == "startswith" && prop == "displayname" && c.lits[0].s != "":
			q.DisplayNamePrefix = c.lits[0].s
		}
	}
	return true
}

// intersect narrows an id list (nil: no list yet) by another.
func intersect(have, more []string) []string {
	if have == nil {
		return more
	}
	out := []string{}
	for _, id := range have {
		for _, m := range more {
			if id == m {
				out = append(out, id)
				break
			}
		}
	}
	return out
}

// conjuncts lists the nodes joined by and at the top of the expression.
func conjuncts(n *filterNode) []*filterNode {
	if n.kind == nodeAnd {
		return append(conjuncts(n.kids[0]), conjuncts(n.kids[1])...)
	}
	return []*filterNode{n}
}
