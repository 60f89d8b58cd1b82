// Package docs runs the command blocks of README.md and the scenario pages
// (docs/scenarios), in order, against a fresh server, so that the
// commands the documentation shows keep working as written.
//
// Every ```sh block of those pages says whether it runs: "```sh runnable"
// blocks are executed; "```sh manual" blocks need a person (a browser
// sign-in, a server in the foreground, the test command itself) and are
// not. A page's runnable blocks run as one bash script with
// `set -euo pipefail`, in a fresh directory that links the repository's
// sources, so that `go build -o tenantbridge ./cmd/tenantbridge` builds
// there and the data directory is the script's own. The scripts may call
// `refused CODE COMMAND…`: COMMAND must fail and print CODE (an expected
// refusal shown in the documentation).
package docs

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// block is one fenced shell block of a page.
type block struct {
	page     string
	line     int
	runnable bool
	text     string
}

// readBlocks returns the ```sh blocks of page, and an error for a block
// that does not say whether it runs.
func readBlocks(page string) ([]block, error) {
	data, err := os.ReadFile(page)
	if err != nil {
		return nil, err
	}
	var (
		blocks []block
		cur    *block
		body   strings.Builder
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			info := strings.Fields(strings.TrimPrefix(trimmed, "```"))
			if len(info) == 0 || (info[0] != "sh" && info[0] != "bash") {
				cur = &block{page: page, line: n, runnable: false, text: "-"} // another language: skipped
				continue
			}
			b := block{page: page, line: n}
			switch {
			case len(info) > 1 && info[1] == "runnable":
				b.runnable = true
			case len(info) > 1 && info[1] == "manual":
			default:
				return nil, fmt.Errorf("%s:%d: a shell block must say \"runnable\" or \"manual\" after its language", page, n)
			}
			cur = &b
			body.Reset()
		case cur != nil && trimmed == "```":
			if cur.text != "-" {
				cur.text = body.String()
				blocks = append(blocks, *cur)
			}
			cur = nil
		case cur != nil:
			body.WriteString(line)
			body.WriteByte('\n')
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: the block never ends", page, cur.line)
	}
	return blocks, sc.Err()
}

// repoRoot is the module's root: two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s: %v", root, err)
	}
	return root
}

// needTools fails (under CI) or skips the test when a tool the pages use
// is missing.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed; the documentation's commands need it", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
}

// prelude starts every script.
const prelude = `set -euo pipefail
# refused CODE COMMAND...: COMMAND fails and its output names CODE.
refused() {
  local code=$1; shift
  local out
  if out=$("$@" 2>&1); then
    echo "expected a refusal with $code, but it succeeded: $*" >&2; echo "$out" >&2; return 1
  fi
  if ! grep -q -- "$code" <<<"$out"; then
    echo "expected $code from: $*" >&2; echo "$out" >&2; return 1
  fi
  echo "$out"
}
`

// runPages runs the runnable blocks of pages, in order, as one script in
// a fresh directory, and fails the test with the script's output if it
// fails.
func runPages(t *testing.T, pages ...string) {
	needTools(t, "bash", "curl", "jq", "openssl", "go")
	root := repoRoot(t)
	var script strings.Builder
	script.WriteString(prelude)
	runnable := 0
	for _, page := range pages {
		blocks, err := readBlocks(filepath.Join(root, page))
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			if !b.runnable {
				continue
			}
			runnable++
			fmt.Fprintf(&script, "\n# --- %s:%d\necho '+++ %s:%d' >&2\n%s", page, b.line, page, b.line, b.text)
		}
	}
	if runnable == 0 {
		t.Fatalf("%v: no runnable blocks", pages)
	}
	dir := workDir(t, root)
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TENANTBRIDGE_DATA=")
	// The script's own process group: the servers and brokers it starts
	// in the background are stopped with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Output goes to a file, not a pipe: the servers the script leaves in
	// the background would hold a pipe open after the script ends.
	logPath := filepath.Join(t.TempDir(), "output.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	out, _ := os.ReadFile(logPath)
	if err != nil {
		t.Fatalf("the commands of %v failed: %v\n%s", pages, err, lastLines(string(out), 80))
	}
	t.Logf("%d blocks ran:\n%s", runnable, lastLines(string(out), 40))
}

// workDir is a fresh directory that links the repository's sources, so
// that the pages' `go build ./cmd/tenantbridge` works there and what the
// pages create stays in it.
func workDir(t *testing.T, root string) string {
	dir := t.TempDir()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || name == "tenantbridge" || name == "world" {
			continue
		}
		if err := os.Symlink(filepath.Join(root, name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestEveryShellBlockSaysWhetherItRuns: no page of the documentation has
// a shell block the runner would silently leave out.
func TestEveryShellBlockSaysWhetherItRuns(t *testing.T) {
	root := repoRoot(t)
	pages, err := filepath.Glob(filepath.Join(root, "docs", "scenarios", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages = append(pages, filepath.Join(root, "README.md"))
	for _, p := range pages {
		if _, err := readBlocks(p); err != nil {
			t.Error(err)
		}
	}
}

// TestReadme runs the README's runnable blocks.
func TestReadme(t *testing.T) {
	runPages(t, "README.md")
}

// TestScenarios runs the scenario pages' runnable blocks in one world:
// the setup of docs/scenarios/README.md, then S1 to S5 (S2 uses what S1
// installed, S5 the application S3 made).
func TestScenarios(t *testing.T) {
	runPages(t, "docs/scenarios/README.md", "docs/scenarios/S1.md", "docs/scenarios/S2.md",
		"docs/scenarios/S3.md", "docs/scenarios/S4.md", "docs/scenarios/S5.md")
}
