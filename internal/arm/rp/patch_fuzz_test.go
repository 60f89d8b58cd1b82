package rp

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzPatchAsPut: whatever a PATCH body holds, PatchAsPut never panics;
// it refuses what is not a JSON object with ARM's 4xx, and otherwise hands
// the PUT a JSON object holding only the current state's members and the
// patch's named ones, with current's properties kept unless the patch
// names them.
func FuzzPatchAsPut(f *testing.F) {
	for _, s := range []string{`{}`, `{"tags":{"a":"b"}}`, `{"Tags":null}`, `{"properties":{"sku":{"name":"premium"}}}`, `{"properties":1}`,
		`{"location":"eastus","other":1}`, `[]`, `null`, `{"tags":{}} {}`, `{"properties":{"tenantId":"x"},"PROPERTIES":{}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPatch, "/x", strings.NewReader(body))
		rq := NewRequest(httptest.NewRecorder(), r, nil)
		current := map[string]any{"location": "westeurope", "tags": map[string]string{"k": "v"},
			"properties": map[string]any{"tenantId": "t", "keep": true}}
		var got map[string]json.RawMessage
		called := false
		err := PatchAsPut(rq, current, []string{"tags", "properties"}, func(rq *Request) error {
			called = true
			if !rq.IsPatch() {
				t.Fatalf("the PUT does not see a PATCH")
			}
			return ReadBody(rq, &got)
		})
		if err != nil {
			if called {
				t.Fatalf("%q: the merged body does not read back: %v", body, err)
			}
			if ae := AsError(err); ae.Status < 400 || ae.Status >= 500 || ae.Code == "" {
				t.Fatalf("%q: %d %q", body, ae.Status, ae.Code)
			}
			return
		}
		for k := range got {
			if k != "location" && k != "tags" && k != "properties" {
				t.Fatalf("%q: member %q reached the PUT", body, k)
			}
		}
		if string(got["location"]) != `"westeurope"` {
			t.Fatalf("%q: location %s", body, got["location"])
		}
		var props map[string]json.RawMessage
		if json.Unmarshal(got["properties"], &props) == nil && props != nil {
			if _, ok := props["keep"]; !ok {
				t.Fatalf("%q: current properties lost: %s", body, got["properties"])
			}
		}
	})
}
