package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

type sbNamespaceJSON struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	ResourceGroup string `json:"resourceGroup"`
	Sku           struct {
		Name string `json:"name"`
	} `json:"sku"`
	Properties struct {
		ServiceBusEndpoint string `json:"serviceBusEndpoint"`
	} `json:"properties"`
}

type sbQueueJSON struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Properties struct {
		LockDuration                        string `json:"lockDuration"`
		MaxDeliveryCount                    int64  `json:"maxDeliveryCount"`
		DefaultMessageTimeToLive            string `json:"defaultMessageTimeToLive"`
		RequiresDuplicateDetection          bool   `json:"requiresDuplicateDetection"`
		DuplicateDetectionHistoryTimeWindow string `json:"duplicateDetectionHistoryTimeWindow"`
		DeadLetteringOnMessageExpiration    bool   `json:"deadLetteringOnMessageExpiration"`
		MaxSizeInMegabytes                  int64  `json:"maxSizeInMegabytes"`
		RequiresSession                     bool   `json:"requiresSession"`
		MaxMessageSizeInKilobytes           int64  `json:"maxMessageSizeInKilobytes"`
		MessageCount                        int64  `json:"messageCount"`
		CountDetails                        struct {
			ActiveMessageCount     int64 `json:"activeMessageCount"`
			DeadLetterMessageCount int64 `json:"deadLetterMessageCount"`
		} `json:"countDetails"`
	} `json:"properties"`
}

type sbMessageJSON struct {
	SequenceNumber   int64          `json:"sequenceNumber"`
	MessageID        string         `json:"messageId"`
	Body             *string        `json:"body"`
	BodyBase64       string         `json:"bodyBase64"`
	ContentType      string         `json:"contentType"`
	Label            string         `json:"label"`
	DeliveryCount    int64          `json:"deliveryCount"`
	TimeToLive       *float64       `json:"timeToLiveSeconds"`
	LockToken        string         `json:"lockToken"`
	Properties       map[string]any `json:"properties"`
	DeadLetterReason string         `json:"deadLetterReason"`
	Settlement       string         `json:"settlement"`
}

// tbStdin is tb with stdin.
func tbStdin(t *testing.T, dir string, stdin []byte, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := &cli{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	root := c.rootCommand()
	root.SetArgs(append([]string{"--data", dir}, args...))
	root.SetIn(bytes.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	code := 0
	if err := root.ExecuteContext(ctx); err != nil {
		errOut.WriteString("error: " + azclient.Describe(err) + "\n")
		code = 1
	}
	return result{out.String(), errOut.String(), code}
}

func TestServiceBusCommandsAgainstServer(t *testing.T) {
	dir := startServer(t)
	var tenant tenantJSON
	okJSON(t, dir, &tenant, "tenant", "create", "messaging")
	const ns = "tb-bus-cli"
	q := []string{"--namespace-name", ns, "--queue-name", "orders"}

	// Namespace: the group is made, the caller becomes Data Owner.
	r := tb(t, dir, "servicebus", "namespace", "create", "--name", ns, "--resource-group", "msgs", "-o", "json")
	if r.code != 0 {
		t.Fatalf("namespace create: exit %d\n%s%s", r.code, r.stderr, r.stdout)
	}
	if !strings.Contains(r.stderr, "Created resource group msgs") || !strings.Contains(r.stderr, "Azure Service Bus Data Owner") {
		t.Errorf("namespace create notes: %q", r.stderr)
	}
	var n sbNamespaceJSON
	okJSONText(t, r.stdout, &n)
	wantNS := "/subscriptions/" + tenant.SubscriptionID + "/resourceGroups/msgs/providers/Microsoft.ServiceBus/namespaces/" + ns
	if n.ID != wantNS || n.ResourceGroup != "msgs" || n.Sku.Name != "Standard" || !strings.Contains(n.Properties.ServiceBusEndpoint, ns+".servicebus.windows.net") {
		t.Errorf("created namespace %+v", n)
	}
	if r := tb(t, dir, "servicebus", "namespace", "create", "--name", strings.ToUpper(ns), "--resource-group", "other"); r.code == 0 || !strings.Contains(r.stderr, "error: Conflict") {
		t.Errorf("second namespace of the name: exit %d\n%s", r.code, r.stderr)
	}
	var nss []sbNamespaceJSON
	okJSON(t, dir, &nss, "servicebus", "namespace", "list")
	if len(nss) != 1 || nss[0].ID != wantNS {
		t.Errorf("namespace list %+v", nss)
	}
	okJSON(t, dir, &n, "servicebus", "namespace", "show", "--name", ns)
	if n.ID != wantNS {
		t.Errorf("namespace show %+v", n)
	}
	if out := ok(t, dir, "servicebus", "namespace", "list", "-g", "msgs"); !strings.Contains(out, ns) {
		t.Errorf("namespace list -g: %s", out)
	}

	// Queue, with every property flag; Go durations are sent as ISO 8601.
	var qu sbQueueJSON
	okJSON(t, dir, &qu, "servicebus", "queue", "create", "--namespace-name", ns, "--name", "orders",
		"--lock-duration", "30s", "--max-delivery-count", "3", "--default-message-time-to-live", "P1D",
		"--enable-duplicate-detection", "--duplicate-detection-history-time-window", "1h30m",
		"--enable-dead-lettering-on-message-expiration", "--max-size", "2048")
	p := qu.Properties
	if qu.ID != wantNS+"/queues/orders" || p.LockDuration != "PT30S" || p.MaxDeliveryCount != 3 || p.DefaultMessageTimeToLive != "P1D" ||
		!p.RequiresDuplicateDetection || p.DuplicateDetectionHistoryTimeWindow != "PT1H30M" || !p.DeadLetteringOnMessageExpiration ||
		p.MaxSizeInMegabytes != 2048 {
		t.Errorf("created queue %+v", qu)
	}
	// Sessions are set at creation; a Standard namespace takes no message size.
	okJSON(t, dir, &qu, "servicebus", "queue", "create", "--namespace-name", ns, "--name", "fifo", "--enable-session")
	if !qu.Properties.RequiresSession || qu.Properties.MaxMessageSizeInKilobytes != 256 {
		t.Errorf("session queue %+v", qu)
	}
	fails(t, dir, "requiresSession cannot be changed", "servicebus", "queue", "create", "--namespace-name", ns, "--name", "fifo")
	fails(t, dir, "Premium namespace", "servicebus", "queue", "create", "--namespace-name", ns, "--name", "big", "--max-message-size", "1024")
	fails(t, dir, "lockDuration", "servicebus", "queue", "create", "--namespace-name", ns, "--name", "bad", "--lock-duration", "1h")
	fails(t, dir, "not a duration", "servicebus", "queue", "create", "--namespace-name", ns, "--name", "bad", "--lock-duration", "soon")

	// Send: a multi-line body with custom properties, and a binary body on stdin.
	var sent struct {
		MessageID string `json:"messageId"`
		Size      int    `json:"size"`
	}
	okJSON(t, dir, &sent, "servicebus", "message", "send", q[0], q[1], q[2], q[3], "--body", "hello\n  world\t!",
		"--properties", "Priority=High", "--properties", "count=5", "--properties", "Ratio=1.5", "--properties", "urgent=true",
		"--label", "greeting", "--message-id", "m-1", "--ttl", "10m", "--content-type", "text/plain")
	if sent.MessageID != "m-1" || sent.Size != len("hello\n  world\t!") {
		t.Errorf("send %+v", sent)
	}
	binary := []byte{0xff, 0x00, 0xfe, '\n'}
	r = tbStdin(t, dir, binary, "servicebus", "message", "send", q[0], q[1], q[2], q[3], "-o", "json")
	if r.code != 0 {
		t.Fatalf("send from stdin: exit %d\n%s", r.code, r.stderr)
	}
	okJSONText(t, r.stdout, &sent)
	if sent.MessageID == "" || sent.Size != len(binary) {
		t.Errorf("send from stdin %+v", sent)
	}

	// Peek leaves them; it shows the properties typed.
	var msgs []sbMessageJSON
	okJSON(t, dir, &msgs, append([]string{"servicebus", "message", "peek", "--top", "10"}, q...)...)
	if len(msgs) != 2 {
		t.Fatalf("peek: %+v", msgs)
	}
	m := msgs[0]
	if m.MessageID != "m-1" || m.Body == nil || *m.Body != "hello\n  world\t!" || m.Label != "greeting" || m.ContentType != "text/plain" ||
		m.Properties["Priority"] != "High" || m.Properties["Count"] != float64(5) || m.Properties["Ratio"] != 1.5 ||
		m.Properties["Urgent"] != true || m.TimeToLive == nil || *m.TimeToLive != 600 {
		t.Errorf("peeked message %+v (body %q)", m, deref(m.Body))
	}
	if got, _ := base64.StdEncoding.DecodeString(msgs[1].BodyBase64); msgs[1].Body != nil || !bytes.Equal(got, binary) {
		t.Errorf("peeked binary message %+v", msgs[1])
	}
	okJSON(t, dir, &msgs, append([]string{"servicebus", "message", "peek", "--from-sequence", "2"}, q...)...)
	if len(msgs) != 1 || msgs[0].SequenceNumber < 2 {
		t.Errorf("peek --from-sequence 2: %+v", msgs)
	}
	okJSON(t, dir, &qu, "servicebus", "queue", "show", "--namespace-name", ns, "--name", "orders")
	if qu.Properties.CountDetails.ActiveMessageCount != 2 || qu.Properties.MessageCount != 2 {
		t.Errorf("queue show counts %+v", qu.Properties)
	}
	if out := ok(t, dir, "servicebus", "queue", "show", "--namespace-name", ns, "--name", "orders", "-o", "table"); !strings.Contains(out, "ActiveMessageCount") {
		t.Errorf("queue show table:\n%s", out)
	}

	// Peek-lock and complete the first; its body comes back byte for byte,
	// in the table too.
	r = tb(t, dir, append([]string{"servicebus", "message", "receive", "--peek-lock", "--complete", "-o", "table"}, q...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "Body (15 bytes):\nhello\n  world\t!\n") || !strings.Contains(r.stdout, "completed") ||
		!strings.Contains(r.stdout, `Property Priority  "High"`) {
		t.Errorf("receive --peek-lock --complete: exit %d\n%s%s", r.code, r.stderr, r.stdout)
	}
	// Abandon the second: it stays, delivered once.
	okJSON(t, dir, &msgs, append([]string{"servicebus", "message", "receive", "--abandon"}, q...)...)
	if len(msgs) != 1 || msgs[0].Settlement != "abandoned" || msgs[0].LockToken == "" || msgs[0].DeliveryCount != 1 {
		t.Errorf("receive --abandon %+v", msgs)
	}
	// Receive-and-delete takes it.
	okJSON(t, dir, &msgs, append([]string{"servicebus", "message", "receive", "--max-messages", "5", "--timeout", "1"}, q...)...)
	if len(msgs) != 1 || msgs[0].Settlement != "deleted" || msgs[0].DeliveryCount != 2 || msgs[0].BodyBase64 == "" {
		t.Errorf("receive-and-delete %+v", msgs)
	}
	r = tb(t, dir, append([]string{"servicebus", "message", "receive", "--timeout", "0s", "-o", "json"}, q...)...)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "[]" || !strings.Contains(r.stderr, "No message arrived") {
		t.Errorf("receive of an empty queue: exit %d\n%s%s", r.code, r.stderr, r.stdout)
	}

	// Dead letters: a message abandoned max-delivery-count times moves to
	// the dead-letter queue, where peek and receive --dead-letter find it.
	ok(t, dir, "servicebus", "queue", "create", "--namespace-name", ns, "--name", "poison", "--max-delivery-count", "1")
	pq := []string{"--namespace-name", ns, "--queue-name", "poison"}
	ok(t, dir, append([]string{"servicebus", "message", "send", "--body", "bad input", "--message-id", "p-1"}, pq...)...)
	ok(t, dir, append([]string{"servicebus", "message", "receive", "--abandon"}, pq...)...)
	okJSON(t, dir, &msgs, append([]string{"servicebus", "message", "peek"}, pq...)...)
	if len(msgs) != 0 {
		t.Errorf("poison queue after abandon %+v", msgs)
	}
	okJSON(t, dir, &msgs, append([]string{"servicebus", "message", "peek", "--dead-letter"}, pq...)...)
	if len(msgs) != 1 || msgs[0].MessageID != "p-1" || msgs[0].DeadLetterReason == "" {
		t.Errorf("peek --dead-letter %+v", msgs)
	}
	okJSON(t, dir, &qu, "servicebus", "queue", "show", "--namespace-name", ns, "--name", "poison")
	if qu.Properties.CountDetails.DeadLetterMessageCount != 1 {
		t.Errorf("dead-letter count %+v", qu.Properties)
	}
	okJSON(t, dir, &msgs, append([]string{"servicebus", "message", "receive", "--dead-letter", "--peek-lock", "--complete"}, pq...)...)
	if len(msgs) != 1 || msgs[0].MessageID != "p-1" || msgs[0].Body == nil || *msgs[0].Body != "bad input" || msgs[0].Settlement != "completed" {
		t.Errorf("receive --dead-letter %+v", msgs)
	}
	okJSON(t, dir, &msgs, append([]string{"servicebus", "message", "peek", "--dead-letter"}, pq...)...)
	if len(msgs) != 0 {
		t.Errorf("dead-letter queue after complete %+v", msgs)
	}

	var qs []sbQueueJSON
	okJSON(t, dir, &qs, "servicebus", "queue", "list", "--namespace-name", ns)
	if len(qs) != 3 { // the two above, and fifo
		t.Errorf("queue list %+v", qs)
	}

	// Errors: one clear line each.
	nope := []string{"--namespace-name", ns, "--queue-name", "nope"}
	fails(t, dir, "queue nope not found in namespace "+ns, append([]string{"servicebus", "message", "send", "--body", "x"}, nope...)...)
	fails(t, dir, "queue nope not found in namespace "+ns, append([]string{"servicebus", "message", "receive", "--timeout", "0s"}, nope...)...)
	fails(t, dir, "queue nope not found in namespace "+ns, append([]string{"servicebus", "message", "peek"}, nope...)...)
	fails(t, dir, "not found", "servicebus", "queue", "show", "--namespace-name", ns, "--name", "nope")
	fails(t, dir, "not found", "servicebus", "queue", "delete", "--namespace-name", ns, "--name", "nope")
	fails(t, dir, "namespace no-such-ns not found", "servicebus", "queue", "show", "--namespace-name", "no-such-ns", "--name", "orders")
	fails(t, dir, "namespace no-such-ns not found", "servicebus", "message", "peek", "--namespace-name", "no-such-ns", "--queue-name", "orders")
	fails(t, dir, "exclude each other", append([]string{"servicebus", "message", "receive", "--complete", "--abandon"}, q...)...)
	fails(t, dir, "NAME=VALUE", append([]string{"servicebus", "message", "send", "--body", "x", "--properties", "novalue"}, q...)...)
	fails(t, dir, "HTTP header", append([]string{"servicebus", "message", "send", "--body", "x", "--properties", "Content-Type=x"}, q...)...)
	fails(t, dir, "--ttl", append([]string{"servicebus", "message", "send", "--body", "x", "--ttl", "later"}, q...)...)
	fails(t, dir, "--timeout", append([]string{"servicebus", "message", "receive", "--timeout", "soon"}, q...)...)
	fails(t, dir, "--top", append([]string{"servicebus", "message", "peek", "--top", "0"}, q...)...)

	// Delete the queue, then the namespace.
	r = tb(t, dir, "servicebus", "queue", "delete", "--namespace-name", ns, "--name", "orders")
	if r.code != 0 || !strings.Contains(r.stderr, "Deleted queue orders") {
		t.Fatalf("queue delete: exit %d\n%s%s", r.code, r.stderr, r.stdout)
	}
	fails(t, dir, "queue orders not found", append([]string{"servicebus", "message", "peek"}, q...)...)
	r = tb(t, dir, "servicebus", "namespace", "delete", "--name", ns)
	if r.code != 0 || !strings.Contains(r.stderr, "Deleted namespace "+ns) {
		t.Fatalf("namespace delete: exit %d\n%s%s", r.code, r.stderr, r.stdout)
	}
	okJSON(t, dir, &nss, "servicebus", "namespace", "list")
	if len(nss) != 0 {
		t.Errorf("namespaces after delete %+v", nss)
	}
	fails(t, dir, "not found", "servicebus", "namespace", "show", "--name", ns)
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestServiceBusDurations(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"30s", "PT30S"}, {"1m", "PT1M"}, {"90m", "PT1H30M"}, {"36h", "P1DT12H"}, {"1.5s", "PT1.5S"},
		{"PT30S", "PT30S"}, {"p14d", "P14D"}, {"P1DT2H30M15.5S", "P1DT2H30M15.5S"},
	} {
		got, err := isoDurationFlag(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("isoDurationFlag(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "P", "PT", "0s", "-5s", "P1H", "soon", "PT0S"} {
		if got, err := isoDurationFlag(bad); err == nil {
			t.Errorf("isoDurationFlag(%q) = %q; want an error", bad, got)
		}
	}
}
