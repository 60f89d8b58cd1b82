package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// annotationDefaultOutput names a command annotation that overrides the
// table default, for commands az prints as JSON (get-access-token).
const annotationDefaultOutput = "defaultOutput"

// format returns the output format for cmd.
func (c *cli) format(cmd *cobra.Command) string {
	if c.output != "" {
		return c.output
	}
	if f := cmd.Annotations[annotationDefaultOutput]; f != "" {
		return f
	}
	return outputTable
}

// table is what a command prints in table format.
type table struct {
	header []string
	rows   [][]string
}

// render prints v as JSON or tbl as a table, as -o asks.
func (c *cli) render(cmd *cobra.Command, v any, tbl func() table) error {
	if c.format(cmd) == outputJSON {
		return writeJSON(c.stdout, v)
	}
	return tbl().write(c.stdout)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (t table) write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(t.header) > 0 {
		fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	}
	for _, r := range t.rows {
		cells := make([]string, len(r))
		for i, s := range r {
			cells[i] = cleanCell(s)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
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
