package graph

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/uuid"
)

// TestSortedPicker: the page the picker keeps while scanning is the page
// a sort of the whole collection gives, for every page size, cursor and
// direction, while it holds at most about two pages of items.
func TestSortedPicker(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var all []sortedItem
	for range 300 {
		id := uuid.NewString()
		all = append(all, sortedItem{id: id, key: fmt.Sprintf("k%02d", r.IntN(40)), e: entity{"id": json.RawMessage(`"` + id + `"`)}})
	}
	for _, desc := range []bool{false, true} {
		sorted := slices.Clone(all)
		slices.SortFunc(sorted, func(a, b sortedItem) int { return compareSorted(a, b, desc) })
		for _, top := range []int{1, 7, 100, 999} {
			for _, at := range []int{-1, 0, 150, 298, 299} {
				opts := queryOptions{top: top, desc: desc}
				want := sorted
				if at >= 0 {
					opts.after, opts.afterKey = sorted[at].id, sorted[at].key
					want = sorted[at+1:]
				}
				picker := sortedPicker{opts: opts}
				for _, it := range all {
					picker.add(it)
					if len(picker.items) > 2*(top+1) {
						t.Fatalf("desc=%v top=%d: %d items kept", desc, top, len(picker.items))
					}
				}
				p := picker.page()
				n := min(top, len(want))
				if len(p.items) != n || p.more != (len(want) > top) {
					t.Fatalf("desc=%v top=%d at=%d: %d items, more=%v; want %d of %d", desc, top, at, len(p.items), p.more, n, len(want))
				}
				for i, e := range p.items {
					if string(e["id"]) != string(want[i].e["id"]) {
						t.Fatalf("desc=%v top=%d at=%d: item %d is %s, want %s", desc, top, at, i, e["id"], want[i].e["id"])
					}
				}
				if n > 0 && (p.last != want[n-1].id || p.lastKey != want[n-1].key) {
					t.Fatalf("desc=%v top=%d at=%d: cursor %s %s, want %s %s", desc, top, at, p.last, p.lastKey, want[n-1].id, want[n-1].key)
				}
			}
		}
	}
}
