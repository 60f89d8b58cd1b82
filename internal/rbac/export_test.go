package rbac

// CacheSizes reports how many decisions e's cache holds, stale or not,
// and how many grants they share.
func CacheSizes(e *Engine) (decisions, grants int) {
	e.grantsMu.Lock()
	defer e.grantsMu.Unlock()
	return e.decisions.Len(), len(e.grants)
}
