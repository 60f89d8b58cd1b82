package fanout

import "testing"

// TestQueueRef: a queue is https://{namespace host}/{queue}, nothing else.
func TestQueueRef(t *testing.T) {
	for _, tc := range []struct {
		in, host, name string
	}{
		{"https://Contoso.servicebus.windows.net/commands", "contoso.servicebus.windows.net", "commands"},
		{"https://contoso.servicebus.windows.net/status/", "contoso.servicebus.windows.net", "status"},
		{"http://contoso.servicebus.windows.net/commands", "", ""},
		{"https://contoso.servicebus.windows.net:8443/commands", "", ""},
		{"https://contoso.servicebus.windows.net/", "", ""},
		{"https://contoso.servicebus.windows.net/a/b", "", ""},
		{"https://contoso.servicebus.windows.net/q?x=1", "", ""},
		{"commands", "", ""},
	} {
		host, name, err := queueRef(tc.in)
		if host != tc.host || name != tc.name || (err == nil) != (tc.host != "") {
			t.Errorf("queueRef(%q) = %q, %q, %v; want %q, %q", tc.in, host, name, err, tc.host, tc.name)
		}
	}
}

// TestReplyQueue: without a status queue, a worker replies only to a queue
// of its command queue's namespace, named by URL or by name.
func TestReplyQueue(t *testing.T) {
	w := &Worker{cfg: WorkerConfig{CommandQueue: "https://contoso.servicebus.windows.net/commands"}}
	for in, want := range map[string]string{
		"https://contoso.servicebus.windows.net/status": "https://contoso.servicebus.windows.net/status",
		"status": "https://contoso.servicebus.windows.net/status",
		"https://evil.servicebus.windows.net/status":   "",
		"https://contoso.servicebus.windows.net/a/b":   "",
		"http://contoso.servicebus.windows.net/status": "",
		"": "",
	} {
		got, err := w.replyQueue(in)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("replyQueue(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
