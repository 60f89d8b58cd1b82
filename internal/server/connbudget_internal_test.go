package server

import (
	"log/slog"
	"testing"
)

// TestConnBudgetSize: by default the budget is the open-file limit less a
// twentieth (at least 256), so 19,000 of this machine's 20,000.
func TestConnBudgetSize(t *testing.T) {
	for limit, want := range map[uint64]uint64{20_000: 19_000, 1_048_576: 996_148, 4_096: 3_840, 1_024: 768} {
		if got := limit - budgetReserve(limit); got != want {
			t.Errorf("limit %d: budget %d, want %d", limit, got, want)
		}
	}
	if newConnBudget(-1, slog.Default()) != nil {
		t.Error("a negative maximum still makes a budget")
	}
	if b := newConnBudget(5, slog.Default()); b == nil || b.max != 5 {
		t.Errorf("an explicit maximum: %+v", b)
	}
	if limit, ok := openFileLimit(); ok && limit > 2*budgetReserve(limit) {
		if b := newConnBudget(0, slog.Default()); b == nil || uint64(b.max) != limit-budgetReserve(limit) {
			t.Errorf("the default budget for a limit of %d: %+v", limit, b)
		}
	}
}
