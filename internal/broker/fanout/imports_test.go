package fanout_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestWireClientOnly: the broker talks to the cloud over the wire only, so
// that it runs against Azure as against tenantbridge. Its code (tests
// aside, which set the cloud up) imports none of the cloud's packages; of
// the project's own, only azclient (client-side helpers).
func TestWireClientOnly(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	const module = "github.com/tenantbridge/tenantbridge/"
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
