package token

// SetVerifiedMax bounds vc at n tokens, for tests of eviction.
func SetVerifiedMax(vc *VerifiedCache, n int) { vc.max = n }

// VerifiedHolds reports whether vc holds raw, and how many tokens it holds.
func VerifiedHolds(vc *VerifiedCache, raw string) (bool, int) {
	vc.mu.RLock()
	defer vc.mu.RUnlock()
	_, ok := vc.entries[sha256Sum(raw)]
	return ok, len(vc.entries)
}

// VerifiedStable reports how many stable strings vc's table holds.
func VerifiedStable(vc *VerifiedCache) int {
	vc.mu.RLock()
	defer vc.mu.RUnlock()
	return len(vc.stable)
}
