package servicebus

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzParseRoute: any path and method parse without panicking, and what
// parses names a queue and a known operation, a settle naming its message
// and lock.
func FuzzParseRoute(f *testing.F) {
	for _, p := range []string{"/q/messages", "/q/messages/head", "/q/$DeadLetterQueue/messages/head", "/q/messages/12/abc",
		"/q/messages/x/y/z", "//messages", "/q/$deadletterqueue/messages", "/", ""} {
		for _, m := range []string{"GET", "POST", "PUT", "DELETE", "PATCH"} {
			f.Add(m, p)
		}
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		rt, ok := parseRoute(method, path)
		if !ok {
			return
		}
		if rt.queue == "" || strings.Contains(rt.queue, "/") || rt.op == opNone {
			t.Fatalf("parseRoute(%q, %q) = %+v", method, path, rt)
		}
		settle := rt.op == opUnlock || rt.op == opComplete || rt.op == opRenew
		if settle != (rt.messageRef != "" && rt.lockToken != "") {
			t.Fatalf("parseRoute(%q, %q) = %+v: settle without its message and lock", method, path, rt)
		}
		if rt.op == opSend && (rt.deadLetter || method != http.MethodPost) {
			t.Fatalf("parseRoute(%q, %q) = %+v", method, path, rt)
		}
	})
}
