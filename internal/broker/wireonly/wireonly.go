// Package wireonly holds the check, shared by the broker's packages' tests,
// that the broker talks to the cloud over the wire only, so that it runs
// against Azure as against tenantbridge: a broker package's code (tests
// aside, which set the cloud up) imports none of the cloud's packages; of
// the project's own, only internal/azclient (client-side helpers) and the
// broker's own packages.
package wireonly

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/tenantbridge/tenantbridge/"

// Check fails t for every import of a cloud-internal package by the
// non-test .go files in dir.
func Check(t testing.TB, dir string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, module) && path != module+"internal/azclient" && !strings.HasPrefix(path, module+"internal/broker/") {
				t.Errorf("%s imports %s: the broker may use only the wire (and internal/azclient)", f, path)
			}
		}
	}
}
