package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Output formats of Print.
const (
	FormatTable = "table"
	FormatJSON  = "json"
)

// Print writes the report as a table for people ("" or "table") or as JSON
// ("json"), where durations are milliseconds.
func Print(w io.Writer, r TokenReport, format string) error {
	return printAs(w, r, format, func() error { return printTable(w, r) })
}

// printAs writes report as indented JSON ("json") or calls table ("" or
// "table").
func printAs(w io.Writer, report any, format string, table func() error) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	case "", FormatTable:
		return table()
	}
	return fmt.Errorf("output format %q is not supported: use json or table", format)
}

// runHead is what a report says about the run above its table.
type runHead struct {
	Server, Protocol               string
	Tenant, TenantID, CleanupError string
	TenantDeleted, Interrupted     bool
	Subject                        []string // a line after the tenant's, if any
	Concurrency, ClientCPUs        int
	Warmup, Duration               time.Duration
	MemoryAtRest, MemoryAfter      *ServerMemory
	MemoryNote                     string
}

// newTable returns a table writer on w and a function writing one row.
func newTable(w io.Writer) (*tabwriter.Writer, func(cells ...string)) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	return tw, func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")) }
}

// write writes the head's lines and the blank line under them.
func (r runHead) write(line func(cells ...string)) {
	proto := r.Protocol
	if proto == "" {
		proto = "no request sent"
	}
	line("server", fmt.Sprintf("%s (%s)", r.Server, proto))
	tenant := r.Tenant
	switch {
	case r.Tenant == "":
		tenant = "(not created)"
	case r.TenantDeleted:
		tenant += " (deleted)"
	case r.CleanupError != "":
		tenant += " (NOT deleted: " + r.CleanupError + ")"
	default:
		tenant += " (kept, id " + r.TenantID + ")"
	}
	line("tenant", tenant)
	if r.Subject != nil {
		line(r.Subject...)
	}
	line("load", fmt.Sprintf("concurrency %d, warm-up %s, window %s, client GOMAXPROCS %d", r.Concurrency, r.Warmup, r.Duration, r.ClientCPUs))
	switch {
	case r.MemoryAtRest != nil:
		mem := "at rest: " + memory(*r.MemoryAtRest)
		if r.MemoryAfter != nil {
			mem += "; after the load: " + memory(*r.MemoryAfter)
		}
		line("server memory", mem)
	case r.MemoryNote != "":
		line("server memory", r.MemoryNote)
	}
	if r.Interrupted {
		line("interrupted", "yes: the results are partial")
	}
	line()
}

// measuredCells are the latency and client CPU cells of a measured row:
// "-" where n, the successful requests, or the CPU time is zero.
func measuredCells(n int, l Latency, cpu, window time.Duration) (lat []string, cpuCell string) {
	lat = []string{"-", "-", "-", "-"}
	if n > 0 {
		lat = []string{dur(l.P50), dur(l.P90), dur(l.P99), dur(l.Max)}
	}
	cpuCell = "-"
	if cpu > 0 && window > 0 {
		cpuCell = fmt.Sprintf("%.0f%% of a CPU", 100*cpu.Seconds()/window.Seconds())
	}
	return lat, cpuCell
}

// printNotes writes the lines under a table, after a blank line, if any.
func printNotes(w io.Writer, notes []string) {
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
}

// ms is a duration in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type latencyJSON struct {
	P50  float64 `json:"p50Ms"`
	P90  float64 `json:"p90Ms"`
	P99  float64 `json:"p99Ms"`
	Max  float64 `json:"maxMs"`
	Mean float64 `json:"meanMs"`
}

// MarshalJSON writes the latencies in milliseconds.
func (l Latency) MarshalJSON() ([]byte, error) {
	return json.Marshal(latencyJSON{ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max), ms(l.Mean)})
}

type kindJSON struct {
	Kind         Kind           `json:"kind"`
	Mode         string         `json:"mode,omitempty"`
	SetupError   string         `json:"setupError,omitempty"`
	WindowMs     float64        `json:"windowMs"`
	TokensPerSec float64        `json:"tokensPerSecond"`
	Tokens       int            `json:"tokens"`
	Failed       int            `json:"errors"`
	Errors       map[string]int `json:"errorsBy,omitempty"`
	Latency      *Latency       `json:"latency,omitempty"`
	Connections  int64          `json:"connectionsOpened"`
	ClientCPU    float64        `json:"clientCpuMs"`
	Presigned    int            `json:"presigned,omitempty"`
	Notes        []string       `json:"notes,omitempty"`
}

// MarshalJSON writes the result with durations in milliseconds.
func (k KindResult) MarshalJSON() ([]byte, error) {
	v := kindJSON{Kind: k.Kind, Mode: k.Mode, SetupError: k.SetupError, WindowMs: ms(k.Window), TokensPerSec: round1(k.Rate),
		Tokens: k.Tokens, Failed: k.Failed, Errors: k.Errors, Connections: k.Connections, ClientCPU: ms(k.ClientCPU),
		Presigned: k.Presigned, Notes: k.Notes}
	if k.Tokens > 0 {
		v.Latency = &k.Latency
	}
	return json.Marshal(v)
}

type reportJSON struct {
	Server        string        `json:"server"`
	Tenant        string        `json:"tenant,omitempty"`
	TenantID      string        `json:"tenantId,omitempty"`
	Concurrency   int           `json:"concurrency"`
	DurationMs    float64       `json:"durationMs"`
	WarmupMs      float64       `json:"warmupMs"`
	Protocol      string        `json:"protocol,omitempty"`
	ClientCPUs    int           `json:"clientCpus"`
	MemoryAtRest  *ServerMemory `json:"serverMemoryAtRest,omitempty"`
	MemoryAfter   *ServerMemory `json:"serverMemoryAfter,omitempty"`
	MemoryNote    string        `json:"serverMemoryNote,omitempty"`
	Results       []KindResult  `json:"results"`
	Interrupted   bool          `json:"interrupted,omitempty"`
	TenantDeleted bool          `json:"tenantDeleted"`
	CleanupError  string        `json:"cleanupError,omitempty"`
}

// MarshalJSON writes the report with durations in milliseconds.
func (r TokenReport) MarshalJSON() ([]byte, error) {
	results := r.Results
	if results == nil {
		results = []KindResult{}
	}
	return json.Marshal(reportJSON{Server: r.Server, Tenant: r.Tenant, TenantID: r.TenantID, Concurrency: r.Concurrency,
		DurationMs: ms(r.Duration), WarmupMs: ms(r.Warmup), Protocol: r.Protocol, ClientCPUs: r.ClientCPUs,
		MemoryAtRest: r.MemoryAtRest, MemoryAfter: r.MemoryAfter, MemoryNote: r.MemoryNote, Results: results,
		Interrupted: r.Interrupted, TenantDeleted: r.TenantDeleted, CleanupError: r.CleanupError})
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

func printTable(w io.Writer, r TokenReport) error {
	tw, line := newTable(w)
	runHead{Server: r.Server, Protocol: r.Protocol, Tenant: r.Tenant, TenantID: r.TenantID, CleanupError: r.CleanupError,
		TenantDeleted: r.TenantDeleted, Interrupted: r.Interrupted, Concurrency: r.Concurrency, ClientCPUs: r.ClientCPUs,
		Warmup: r.Warmup, Duration: r.Duration, MemoryAtRest: r.MemoryAtRest, MemoryAfter: r.MemoryAfter,
		MemoryNote: r.MemoryNote}.write(line)
	line("CREDENTIAL", "MODE", "TOKENS/S", "COUNT", "ERRORS", "P50", "P90", "P99", "MAX", "CONNS", "CLIENT CPU")
	for _, k := range r.Results {
		if k.SetupError != "" {
			line(string(k.Kind), k.Mode, "-", "-", "-", "-", "-", "-", "-", "-", "-")
			continue
		}
		lat, cpu := measuredCells(k.Tokens, k.Latency, k.ClientCPU, k.Window)
		line(append(append([]string{string(k.Kind), k.Mode, fmt.Sprintf("%.1f", k.Rate), fmt.Sprint(k.Tokens), fmt.Sprint(k.Failed)}, lat...),
			fmt.Sprint(k.Connections), cpu)...)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var extra []string
	for _, k := range r.Results {
		if k.SetupError != "" {
			extra = append(extra, fmt.Sprintf("%s: not measured: %s", k.Kind, k.SetupError))
		}
		for _, code := range slices.Sorted(maps.Keys(k.Errors)) {
			extra = append(extra, fmt.Sprintf("%s: %d × %s", k.Kind, k.Errors[code], code))
		}
		for _, n := range k.Notes {
			extra = append(extra, fmt.Sprintf("%s: %s", k.Kind, n))
		}
	}
	printNotes(w, extra)
	return nil
}

// dur shows a latency with three significant digits.
func dur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= 100*time.Millisecond:
		return fmt.Sprintf("%.0fms", ms(d))
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1fms", ms(d))
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", ms(d))
	}
	return fmt.Sprintf("%dµs", d.Microseconds())
}

func memory(m ServerMemory) string {
	s := fmt.Sprintf("RSS %s, heap in use %s", mib(m.RSSBytes), mib(m.HeapInuseBytes))
	if m.Goroutines > 0 {
		s += fmt.Sprintf(", %d goroutines", m.Goroutines)
	}
	return s
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
