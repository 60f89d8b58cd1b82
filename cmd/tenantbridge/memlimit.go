package main

import (
	"fmt"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
)

// setMemoryLimit applies serve's --memory-limit: the Go runtime's soft
// limit on the memory it holds (runtime/debug.SetMemoryLimit, what the
// GOMEMLIMIT variable sets), in GOMEMLIMIT's syntax: bytes, or a number
// with B, KiB, MiB, GiB or TiB. "" leaves the runtime's own (GOMEMLIMIT,
// else none).
//
// Why a server holding many idle connections wants one: by default the
// garbage collector lets the heap grow to twice what is live before it
// collects, and a fleet's connections are mostly live memory, so their
// RSS is about twice their heap. Under a limit the collector runs sooner
// as the process nears it instead. The limit is soft: a live heap above
// it is not refused, only collected more often (at worst, the runtime
// caps the GC's CPU at half), so it bounds the headroom, not what the
// connections need (docs/benchmarks.md, "Many customers on one node";
// docs/operations.md).
func setMemoryLimit(s string) (int64, error) {
	if s == "" {
		return debug.SetMemoryLimit(-1), nil
	}
	n, err := parseMemoryLimit(s)
	if err != nil {
		return 0, err
	}
	debug.SetMemoryLimit(n)
	return n, nil
}

// parseMemoryLimit reads a size in GOMEMLIMIT's syntax.
func parseMemoryLimit(s string) (int64, error) {
	units := []struct {
		suffix string
		shift  uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}
	num, shift := strings.TrimSpace(s), uint(0)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, shift = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("memory limit %q: want a positive number of bytes, or one with KiB, MiB, GiB or TiB (e.g. 900MiB)", s)
	}
	return n << shift, nil
}
