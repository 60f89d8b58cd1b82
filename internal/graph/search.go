package graph

import (
	"strings"
	"unicode"
)

// $search on directory collections, as Graph documents it
// (https://learn.microsoft.com/graph/search-query-parameter, "Using $search
// on directory object collections"): the value is one or more clauses
// "property:text" in double quotes, joined by AND or OR; the directory
// tokenizes the property's value (on spaces, symbols and changes of case)
// and a clause matches when every token of its text begins a token of the
// value, without regard to case. It works "only in advanced queries": the
// ConsistencyLevel: eventual header is required (applyAdvanced), $count is
// not.

const maxSearchClauses = 8

type searchClause struct {
	prop   string   // canonical property name
	tokens []string // lower case
}

// searchExpr is clauses joined by and (every clause) or or (any clause).
type searchExpr struct {
	clauses []searchClause
	or      bool
}

func searchSyntax(v string) *graphError {
	return badRequest("Syntax error: the $search value '%s' is not valid. Use \"property:text\" clauses joined by AND or OR.", safeText(v))
}

// parseSearch reads a $search value against the searchable properties.
func parseSearch(v string, spec querySpec) (*searchExpr, error) {
	e := &searchExpr{}
	rest := strings.TrimSpace(v)
	joiner := ""
	for {
		if !strings.HasPrefix(rest, `"`) {
			return nil, searchSyntax(v)
		}
		end := strings.IndexByte(rest[1:], '"')
		if end < 0 {
			return nil, searchSyntax(v)
		}
		clause := rest[1 : end+1]
		rest = strings.TrimSpace(rest[end+2:])
		prop, text, ok := strings.Cut(clause, ":")
		if !ok {
			return nil, searchSyntax(v)
		}
		i := -1
		for j, p := range spec.searchable {
			if strings.EqualFold(p, strings.TrimSpace(prop)) {
				i = j
			}
		}
		if i < 0 {
			return nil, unsupportedQuery("Unsupported or invalid query search clause specified for property '%s' of resource '%s'.", safeText(prop), spec.resource)
		}
		toks := tokenize(text)
		if len(toks) == 0 {
			return nil, searchSyntax(v)
		}
		e.clauses = append(e.clauses, searchClause{prop: spec.searchable[i], tokens: toks})
		if len(e.clauses) > maxSearchClauses {
			return nil, unsupportedQuery("The $search value has too many clauses: at most %d.", maxSearchClauses)
		}
		if rest == "" {
			break
		}
		word, after, _ := strings.Cut(rest, " ")
		word = strings.ToUpper(word)
		if word != "AND" && word != "OR" || (joiner != "" && word != joiner) {
			return nil, searchSyntax(v)
		}
		joiner, rest = word, strings.TrimSpace(after)
	}
	e.or = joiner == "OR"
	return e, nil
}

// tokenize splits text into lower-case tokens at anything that is not a
// letter or digit, and where a lower-case letter is followed by an upper-case one.
func tokenize(s string) []string {
	var out []string
	var cur []rune
	var prev rune
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	for _, r := range s {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			flush()
		case unicode.IsUpper(r) && unicode.IsLower(prev):
			flush()
			cur = append(cur, r)
		default:
			cur = append(cur, r)
		}
		prev = r
	}
	flush()
	return out
}

func (c searchClause) matches(obj map[string]any) bool {
	s, _ := lookup(obj, c.prop).(string)
	have := tokenize(s)
	for _, want := range c.tokens {
		found := false
		for _, h := range have {
			if strings.HasPrefix(h, want) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func (e *searchExpr) matches(obj map[string]any) bool {
	for _, c := range e.clauses {
		ok := c.matches(obj)
		if e.or && ok {
			return true
		}
		if !e.or && !ok {
			return false
		}
	}
	return !e.or
}
