package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/jmespath-community/go-jmespath"
	"github.com/jmespath-community/go-jmespath/pkg/parsing"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
	"golang.org/x/term"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

// Output formats, as az names them (-o, "Output formats for Azure CLI
// commands": json, jsonc colourised JSON, table, tsv "with no keys", yaml,
// none "no output other than errors and warnings").
const (
	outputJSON  = "json"
	outputJSONC = "jsonc"
	outputTable = "table"
	outputTSV   = "tsv"
	outputYAML  = "yaml"
	outputNone  = "none"
)

// outputFormats lists the values -o takes, in the order help shows them.
var outputFormats = []string{outputJSON, outputJSONC, outputTable, outputTSV, outputYAML, outputNone}

// annotationDefaultOutput names a command annotation that overrides the
// default format, for commands az prints as JSON (get-access-token).
const annotationDefaultOutput = "defaultOutput"

// maxTableWidth is the widest line a table of ours may print: tables are
// for people at a terminal, and 120 columns is what one shows.
const maxTableWidth = 120

// checkOutputFlags validates -o and compiles --query before a command
// runs, so that a typo fails before anything is created. The messages are
// az's (argparse's "invalid choice", knack's "invalid jmespath_type value").
func (c *cli) checkOutputFlags() error {
	if c.output != "" && !slices.Contains(outputFormats, c.output) {
		return fmt.Errorf("argument --output/-o: invalid choice: %q (choose from %s)", c.output, strings.Join(outputFormats, ", "))
	}
	c.compiled, c.queryKeys = nil, nil
	if c.query == "" {
		return nil
	}
	q, err := jmespath.Compile(c.query)
	if err != nil {
		return fmt.Errorf("argument --query: invalid jmespath_type value: %q (%v)", c.query, err)
	}
	ast, err := jmespath.NewParser().Parse(c.query)
	if err != nil {
		return fmt.Errorf("argument --query: invalid jmespath_type value: %q (%v)", c.query, err)
	}
	c.compiled, c.queryKeys = q, multiSelectKeys(ast, nil)
	return nil
}

// format returns the output format for cmd: -o, else the command's own
// default, else table for a person at a terminal and JSON for a program
// reading a pipe or file.
func (c *cli) format(cmd *cobra.Command) string {
	if c.output != "" {
		return c.output
	}
	if f := cmd.Annotations[annotationDefaultOutput]; f != "" {
		return f
	}
	if isTerminal(c.stdout) {
		return outputTable
	}
	return outputJSON
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// structured reports whether cmd prints data rather than its own table:
// any format but table, or a table of what --query selected.
func (c *cli) structured(cmd *cobra.Command) bool {
	return c.format(cmd) != outputTable || c.compiled != nil
}

// table is what a command prints in table format.
type table struct {
	header []string
	rows   [][]string
}

// render prints v in the -o format, tbl being the command's own table.
func (c *cli) render(cmd *cobra.Command, v any, tbl func() table) error {
	if !c.structured(cmd) {
		return tbl().write(c.stdout)
	}
	return c.emit(cmd, v)
}

// emit prints v, after --query, as JSON, coloured JSON, YAML, TSV, nothing,
// or a table made from the query's result, as az does. v is what -o json
// prints: it is turned into JSON first, so every format shows the same
// names and values.
func (c *cli) emit(cmd *cobra.Command, v any) error {
	f := c.format(cmd)
	if f == outputNone {
		return nil
	}
	if c.compiled == nil && (f == outputJSON || f == outputJSONC && !c.colour()) {
		return writeJSON(c.stdout, v)
	}
	data, err := toJSONValue(v)
	if err != nil {
		return err
	}
	if c.compiled != nil {
		if data, err = c.compiled.Search(data); err != nil {
			return fmt.Errorf("--query %q: %v", c.query, err)
		}
		// knack prints nothing when the result is null.
		if data == nil {
			return nil
		}
	}
	switch f {
	case outputJSON:
		return writeJSON(c.stdout, data)
	case outputJSONC:
		if !c.colour() {
			return writeJSON(c.stdout, data)
		}
		var buf bytes.Buffer
		if err := writeJSON(&buf, data); err != nil {
			return err
		}
		_, err := c.stdout.Write(colourJSON(buf.Bytes()))
		return err
	case outputYAML:
		enc := yaml.NewEncoder(c.stdout)
		enc.SetIndent(2)
		if err := enc.Encode(wholeNumbers(data)); err != nil {
			return err
		}
		return enc.Close()
	case outputTSV:
		return writeTSV(c.stdout, data, c.queryKeys)
	default: // table of the query's result
		t, err := autoTable(data, c.queryKeys)
		if err != nil {
			return err
		}
		return t.writeRuled(c.stdout)
	}
}

// colour reports whether jsonc may colour: knack's _should_enable_color
// colours only when stdout and stderr are both terminals; otherwise jsonc
// is plain JSON.
func (c *cli) colour() bool {
	return isTerminal(c.stdout) && isTerminal(c.stderr)
}

// toJSONValue turns v into what decoding its JSON gives: maps, slices,
// strings, float64, bool and nil, which the query and the formats walk.
func toJSONValue(v any) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// wholeNumbers turns the whole float64 numbers of a decoded JSON value into
// int64, so that YAML prints 1700000000 as JSON does, not as 1.7e+09.
func wholeNumbers(v any) any {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x)
		}
	case []any:
		for i := range x {
			x[i] = wholeNumbers(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = wholeNumbers(x[k])
		}
	}
	return v
}

// multiSelectKeys collects the key lists of the query's multi-select hashes
// ({name: displayName, id: appId}), in the order the query names them: az
// keeps that order in tsv and table output (knack queries with
// Options(OrderedDict)), where a plain object's keys are sorted.
func multiSelectKeys(n parsing.ASTNode, acc [][]string) [][]string {
	if n.NodeType == parsing.ASTMultiSelectHash {
		var keys []string
		for _, kv := range n.Children {
			if k, ok := kv.Value.(string); ok {
				keys = append(keys, k)
			}
		}
		acc = append(acc, keys)
	}
	for _, ch := range n.Children {
		acc = multiSelectKeys(ch, acc)
	}
	return acc
}

// objectKeys returns m's keys in the order the query named them when m was
// made by one of its multi-select hashes, and sorted otherwise.
func objectKeys(m map[string]any, queryKeys [][]string) []string {
	for _, ks := range queryKeys {
		if len(ks) != len(m) {
			continue
		}
		all := true
		for _, k := range ks {
			if _, ok := m[k]; !ok {
				all = false
				break
			}
		}
		if all {
			return ks
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// writeTSV prints data as az's tsv does (knack's _TsvOutput): a list is
// one line per item, anything else one line; an object's values go in
// key order (see objectKeys), a nested list prints as its length and a
// nested object as an empty field; no header. Scalars are written as
// Python's str() writes them, so a nested true is "True" and null is
// "None", while a bare true is "true".
func writeTSV(w io.Writer, data any, queryKeys [][]string) error {
	items, ok := data.([]any)
	if !ok {
		items = []any{data}
	}
	var b strings.Builder
	for _, item := range items {
		switch x := item.(type) {
		case map[string]any:
			for i, k := range objectKeys(x, queryKeys) {
				if i > 0 {
					b.WriteByte('\t')
				}
				b.WriteString(tsvField(x[k]))
			}
		case []any:
			for i, v := range x {
				if i > 0 {
					b.WriteByte('\t')
				}
				b.WriteString(tsvField(v))
			}
		case bool:
			b.WriteString(strconv.FormatBool(x))
		default:
			b.WriteString(tsvField(x))
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// tsvField is one value of a tsv line, as knack's _dump_obj writes it.
func tsvField(v any) string {
	switch x := v.(type) {
	case []any:
		return strconv.Itoa(len(x))
	case map[string]any:
		return ""
	}
	return pythonText(v)
}

// pythonText is a JSON scalar as Python's str() writes it, which az's tsv
// and table output show: True, False, None, 5 (not 5.0 for a whole number).
func pythonText(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case string:
		return x
	}
	return fmt.Sprint(v)
}

// autoTable makes a table of a query's result as az does (knack's
// _TableOutput): a row per item; an object's scalar values under its keys
// with the first letter capitalised, leaving out id, type and etag and
// values that are null, lists or objects; a list's values under Column1…;
// a scalar under Result.
func autoTable(data any, queryKeys [][]string) (table, error) {
	items, ok := data.([]any)
	if !ok {
		items = []any{data}
	}
	var t table
	col := map[string]int{}
	var rows []map[string]string
	for _, item := range items {
		row := map[string]string{}
		add := func(k, v string) {
			if _, ok := col[k]; !ok {
				col[k] = len(t.header)
				t.header = append(t.header, k)
			}
			row[k] = v
		}
		switch x := item.(type) {
		case map[string]any:
			for _, k := range objectKeys(x, queryKeys) {
				switch v := x[k].(type) {
				case nil, []any, map[string]any:
					continue
				default:
					if k == "id" || k == "type" || k == "etag" {
						continue
					}
					add(capitalise(k), pythonText(v))
				}
			}
		case []any:
			for i, v := range x {
				add("Column"+strconv.Itoa(i+1), pythonText(v))
			}
		default:
			add("Result", pythonText(x))
		}
		rows = append(rows, row)
	}
	if len(items) > 0 && len(t.header) == 0 {
		return t, errors.New("table output unavailable: use the --query option to select the fields to show, or another --output")
	}
	for _, r := range rows {
		cells := make([]string, len(t.header))
		for k, v := range r {
			cells[col[k]] = v
		}
		t.rows = append(t.rows, cells)
	}
	return t, nil
}

// capitalise upper-cases the first letter of k, as knack's
// _capitalize_first_char does for a column's name.
func capitalise(k string) string {
	r, size := utf8.DecodeRuneInString(k)
	if size == 0 {
		return k
	}
	return strings.ToUpper(string(r)) + k[size:]
}

// tableGap is the space between two columns.
const tableGap = 2

func (t table) write(w io.Writer) error {
	rows := t.fitted()
	tw := tabwriter.NewWriter(w, 0, 0, tableGap, ' ', 0)
	if len(t.header) > 0 {
		fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	}
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// fitted is t's rows with each cell on one line and, in a list table (one
// with a header), cut to fit maxTableWidth.
func (t table) fitted() [][]string {
	rows := make([][]string, len(t.rows))
	for i, r := range t.rows {
		rows[i] = make([]string, len(r))
		for j, s := range r {
			rows[i][j] = cleanCell(s)
		}
	}
	if len(t.header) > 0 {
		fitColumns(t.header, rows)
	}
	return rows
}

// minColumn is the narrowest a column is cut to: enough of an id or a
// name to recognise it.
const minColumn = 12

// fitColumns makes a list table fit maxTableWidth, giving up the least
// first: times are shown to the minute ("2026-12-01 10:00", UTC), then to
// the day, then the widest column that is not of ids or times loses a character at a time,
// and only then columns of ids (GUIDs) and times, never below their header
// or minColumn. A cut value ends in "…"; a path or URL keeps its start and
// its end, which names the resource, around the "…". -o json prints every
// value whole.
func fitColumns(header []string, rows [][]string) {
	widths := make([]int, len(header))
	ids := make([]bool, len(header))
	times := make([]bool, len(header))
	for i, h := range header {
		widths[i] = utf8.RuneCountInString(h)
		ids[i], times[i] = true, true
	}
	for _, r := range rows {
		for i := range min(len(r), len(widths)) {
			widths[i] = max(widths[i], utf8.RuneCountInString(r[i]))
			ids[i] = ids[i] && (r[i] == "-" || azclient.IsGUID(r[i]))
			_, err := time.Parse(time.RFC3339, r[i])
			times[i] = times[i] && (r[i] == "-" || err == nil)
		}
	}
	total := func() int {
		n := tableGap * (len(widths) - 1)
		for _, w := range widths {
			n += w
		}
		return n
	}
	if total() <= maxTableWidth {
		return
	}
	// Times to the minute, then, if that is not enough, to the day.
	for _, layout := range []string{minuteLayout, time.DateOnly} {
		for i := range widths {
			if !times[i] || total() <= maxTableWidth {
				continue
			}
			widths[i] = utf8.RuneCountInString(header[i])
			for _, r := range rows {
				if t, ok := cellTime(r[i]); ok {
					r[i] = t.UTC().Format(layout)
				}
				widths[i] = max(widths[i], utf8.RuneCountInString(r[i]))
			}
		}
	}
	for _, cutIDs := range []bool{false, true} { // ids and times last
		for total() > maxTableWidth {
			widest := -1
			for i, w := range widths {
				if (ids[i] || times[i]) == cutIDs && w > max(minColumn, utf8.RuneCountInString(header[i])) && (widest < 0 || w > widths[widest]) {
					widest = i
				}
			}
			if widest < 0 {
				break // as narrow as these columns get
			}
			widths[widest]--
		}
	}
	for _, r := range rows {
		for i := range min(len(r), len(widths)) {
			r[i] = cutCell(r[i], widths[i])
		}
	}
}

// minuteLayout is a time in a table cut to fit: to the minute, in UTC.
const minuteLayout = "2006-01-02 15:04"

// cellTime reads a time fmtTime (RFC 3339) or fitColumns wrote.
func cellTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339, minuteLayout} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// cutCell shortens s to width runes, marking the cut with "…".
func cutCell(s string, width int) string {
	runes := []rune(s)
	if len(runes) <= width {
		return s
	}
	if strings.HasPrefix(s, "/") || strings.Contains(s, "://") {
		tail := (width - 1) / 2
		head := width - 1 - tail
		return string(runes[:head]) + "…" + string(runes[len(runes)-tail:])
	}
	return string(runes[:width-1]) + "…"
}

// writeRuled prints t as az's tables look (tabulate's "simple" format): the
// header, a rule of dashes under each column, then the rows.
func (t table) writeRuled(w io.Writer) error {
	if len(t.header) == 0 {
		return nil
	}
	rows := t.fitted()
	rule := make([]string, len(t.header))
	for i, h := range t.header {
		width := utf8.RuneCountInString(h)
		for _, r := range rows {
			width = max(width, utf8.RuneCountInString(r[i]))
		}
		rule[i] = strings.Repeat("-", width)
	}
	tw := tabwriter.NewWriter(w, 0, 0, tableGap, ' ', 0)
	for _, r := range append([][]string{t.header, rule}, rows...) {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// cleanCell keeps a value on one table line: a name from the server can hold
// anything.
func cleanCell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// fields is a one-object table: a name column and a value column.
func fields(pairs ...string) table {
	var t table
	for i := 0; i+1 < len(pairs); i += 2 {
		t.rows = append(t.rows, []string{pairs[i], pairs[i+1]})
	}
	return t
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// ANSI colours of jsonc: object keys, strings, and numbers, true, false
// and null, as pygments' terminal formatter paints JSON for az.
const (
	colourKey     = "\x1b[94m"
	colourString  = "\x1b[33m"
	colourLiteral = "\x1b[36m"
	colourReset   = "\x1b[0m"
)

// colourJSON paints indented JSON for a terminal. It walks the text
// token by token, so it never changes a character of the JSON itself.
func colourJSON(src []byte) []byte {
	var out bytes.Buffer
	for i := 0; i < len(src); {
		ch := src[i]
		switch {
		case ch == '"':
			j := i + 1
			for j < len(src) && src[j] != '"' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, len(src))
			// A string followed by a colon is a key.
			k := j
			for k < len(src) && src[k] == ' ' {
				k++
			}
			colour := colourString
			if k < len(src) && src[k] == ':' {
				colour = colourKey
			}
			out.WriteString(colour)
			out.Write(src[i:j])
			out.WriteString(colourReset)
			i = j
		case ch == '-' || ch >= '0' && ch <= '9' || ch == 't' || ch == 'f' || ch == 'n':
			j := i
			for j < len(src) && !strings.ContainsRune(",]} \n", rune(src[j])) {
				j++
			}
			out.WriteString(colourLiteral)
			out.Write(src[i:j])
			out.WriteString(colourReset)
			i = j
		default:
			out.WriteByte(ch)
			i++
		}
	}
	return out.Bytes()
}
