// Package memtest helps tests measure what a structure keeps on the heap:
// the live heap with it held, less the live heap once it is dropped.
package memtest

import "runtime"

// LiveHeap is the live heap after a collection. It collects twice: what
// finalizers free is freed only by the second.
func LiveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
