package gencache

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

type clock struct{ n atomic.Uint64 }

func (c *clock) Generation() uint64 { return c.n.Load() }

func TestServesUntilTheGenerationMoves(t *testing.T) {
	var clk clock
	c := New[string, int](&clk, 10)
	loads := 0
	load := func(v int) func() (int, error) {
		return func() (int, error) { loads++; return v, nil }
	}
	if v, _ := c.Get("a", load(1)); v != 1 {
		t.Fatalf("first get = %d", v)
	}
	if v, _ := c.Get("a", load(2)); v != 1 || loads != 1 {
		t.Fatalf("cached get = %d after %d loads", v, loads)
	}
	clk.n.Add(1)
	if v, _ := c.Get("a", load(3)); v != 3 || loads != 2 {
		t.Fatalf("get after a change = %d after %d loads", v, loads)
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	var clk clock
	c := New[string, int](&clk, 10)
	boom := errors.New("boom")
	if _, err := c.Get("a", func() (int, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if v, err := c.Get("a", func() (int, error) { return 7, nil }); err != nil || v != 7 {
		t.Fatalf("after an error: %d %v", v, err)
	}
}

// A value loaded while a write commits must not be served afterwards.
func TestLoadRacingAWriteIsNotKept(t *testing.T) {
	var clk clock
	c := New[string, string](&clk, 10)
	v, _ := c.Get("k", func() (string, error) {
		clk.n.Add(1) // a write commits while the load runs
		return "old", nil
	})
	if v != "old" {
		t.Fatalf("v = %q", v)
	}
	if v, _ := c.Get("k", func() (string, error) { return "new", nil }); v != "new" {
		t.Fatalf("stale value served: %q", v)
	}
}

// A clock that moves on every call (a deaf store) disables the cache.
type deaf struct{ n atomic.Uint64 }

func (d *deaf) Generation() uint64 { return d.n.Add(1) }

func TestDeafClockNeverHits(t *testing.T) {
	c := New[int, int](&deaf{}, 10)
	loads := 0
	for range 5 {
		_, _ = c.Get(1, func() (int, error) { loads++; return 1, nil })
	}
	if loads != 5 {
		t.Fatalf("loads = %d, want 5", loads)
	}
}

func TestBounded(t *testing.T) {
	var clk clock
	c := New[int, int](&clk, 3)
	for i := range 10 {
		_, _ = c.Get(i, func() (int, error) { return i, nil })
		if c.Len() > 3 {
			t.Fatalf("len %d > 3", c.Len())
		}
	}
}

// TestOverflowKeepsMost: a full cache lets a quarter go, not everything,
// so that a working set larger than the cache still mostly hits.
func TestOverflowKeepsMost(t *testing.T) {
	var clk clock
	c := New[int, int](&clk, 100)
	for i := range 101 {
		_, _ = c.Get(i, func() (int, error) { return i, nil })
	}
	if n := c.Len(); n < 75 || n > 100 {
		t.Fatalf("%d entries after one past 100; want 75-100", n)
	}
	// A working set of 120 read round and round: most reads hit.
	loads := 0
	for range 10 {
		for i := range 120 {
			_, _ = c.Get(i, func() (int, error) { loads++; return i, nil })
		}
	}
	if loads > 600 {
		t.Fatalf("%d loads in 1200 reads of a working set of 120 in a cache of 100", loads)
	}
}

func TestConcurrent(t *testing.T) {
	var clk clock
	c := New[int, int](&clk, 100)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				if i%100 == 0 {
					clk.n.Add(1)
				}
				k := (g + i) % 50
				v, err := c.Get(k, func() (int, error) { return k * 2, nil })
				if err != nil || v != k*2 {
					t.Errorf("get %d = %d %v", k, v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
