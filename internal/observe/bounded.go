package observe

import "sync"

// maxErrorCodes bounds the distinct error_code label values. The codes are
// the server's own (a fixed vocabulary), so the bound is never reached in
// practice; it is there so that a code that carries client text by
// mistake cannot grow the registry without end.
const maxErrorCodes = 300

// maxCodeLen bounds one error code label value.
const maxCodeLen = 64

// bounded admits the first max distinct code-shaped values and folds the
// rest to "other".
type bounded struct {
	mu   sync.RWMutex
	seen map[string]bool
	max  int
}

func newBounded(max int) *bounded { return &bounded{seen: map[string]bool{}, max: max} }

// fold returns v when it is admitted, "other" otherwise; "" stays "".
func (b *bounded) fold(v string) string {
	if v == "" {
		return ""
	}
	b.mu.RLock()
	ok := b.seen[v]
	b.mu.RUnlock()
	if ok {
		return v
	}
	if !codeShaped(v) {
		return "other"
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.seen[v] {
		if len(b.seen) >= b.max {
			return "other"
		}
		b.seen[v] = true
	}
	return v
}

// codeShaped reports whether v looks like an error code: letters, digits,
// '_', '.', '-', at most maxCodeLen of them. Graph's
// "Request_ResourceNotFound", ARM's "AuthorizationFailed", Entra's
// "AADSTS700016" and Service Bus's "404" are; a sentence is not.
func codeShaped(v string) bool {
	if len(v) > maxCodeLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}
