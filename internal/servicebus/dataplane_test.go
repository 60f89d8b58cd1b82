package servicebus_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/rbac"
	"github.com/tenantbridge/tenantbridge/internal/servicebus"
)

// owner is a principal of ns's tenant holding Azure Service Bus Data Owner
// on the namespace.
func (e *env) owner(ns namespace) client {
	e.t.Helper()
	a := e.newApp(ns.tenant.Tenant.ID, "owner")
	e.assign(ns.tenant.Tenant.ID, a.spID, rbac.RoleServiceBusDataOwner, ns.id)
	return e.as(ns, e.busToken(ns.tenant.Tenant.ID, a))
}

func TestSendPeekLockComplete(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ns := e.newNamespace(e.contoso, "contoso-bus")
		e.queue(ns, "commands", "")
		c := e.owner(ns)

		h := http.Header{
			"Content-Type":     {"application/json"},
			"BrokerProperties": {`{"Label":"M1","MessageId":"m-1","CorrelationId":"c-9","TimeToLive":600}`},
			"Priority":         {`"High"`},
			"Attempt":          {"3"},
			"Ratio":            {"0.5"},
			"Urgent":           {"true"},
		}
		if r := c.send("commands", `{"do":"x"}`, h); r.status != http.StatusCreated {
			t.Fatalf("send: %d %s", r.status, r.body)
		}
		r := c.lock("commands", 5)
		if r.status != http.StatusCreated || string(r.body) != `{"do":"x"}` || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("peek-lock: %d %q %v", r.status, r.body, r.header)
		}
		bp := props(t, r)
		if bp["Label"] != "M1" || bp["MessageId"] != "m-1" || bp["CorrelationId"] != "c-9" || bp["DeliveryCount"] != 1.0 ||
			bp["LockToken"] == nil || bp["SequenceNumber"] == nil || bp["State"] != "Active" || bp["TimeToLive"] != 600.0 {
			t.Fatalf("BrokerProperties = %v", bp)
		}
		if _, err := servicebus.ParseTime(bp["LockedUntilUtc"].(string)); err != nil {
			t.Fatalf("LockedUntilUtc: %v", err)
		}
		// Custom properties come back with their types: strings quoted,
		// numbers and booleans bare.
		for name, want := range map[string]string{"Priority": `"High"`, "Attempt": "3", "Ratio": "0.5", "Urgent": "true"} {
			if got := r.header.Get(name); got != want {
				t.Errorf("custom property %s = %q, want %q", name, got, want)
			}
		}
		loc := r.header.Get("Location")
		if want := fmt.Sprintf("https://contoso-bus.servicebus.windows.net/commands/messages/%v/%s", bp["SequenceNumber"], bp["LockToken"]); loc != want {
			t.Fatalf("Location = %q, want %q", loc, want)
		}
		// Locked: nobody else gets it.
		if r2 := c.lock("commands", 0); r2.status != http.StatusNoContent {
			t.Fatalf("second lock while locked: %d", r2.status)
		}
		if s := c.settle(http.MethodDelete, r); s.status != http.StatusOK {
			t.Fatalf("complete: %d %s", s.status, s.body)
		}
		// A completed message never comes back, and cannot be completed twice.
		if s := c.settle(http.MethodDelete, r); s.status != http.StatusNotFound || !strings.Contains(string(s.body), "<Error><Code>404</Code>") {
			t.Fatalf("second complete: %d %s", s.status, s.body)
		}
		if r2 := c.lock("commands", 0); r2.status != http.StatusNoContent {
			t.Fatalf("lock after complete: %d %s", r2.status, r2.body)
		}
	})
}

func TestBatchAndReceiveAndDelete(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ns := e.newNamespace(e.contoso, "contoso-batch")
		e.queue(ns, "q", "")
		c := e.owner(ns)
		batch := `[{"Body":"one","BrokerProperties":{"Label":"a"}},
			{"Body":"two","UserProperties":{"Color":"red","N":2}},
			{"Body":"three"}]`
		if r := c.send("q", batch, http.Header{"Content-Type": {"application/vnd.microsoft.servicebus.json"}}); r.status != http.StatusCreated {
			t.Fatalf("batch: %d %s", r.status, r.body)
		}
		for _, want := range []string{"one", "two", "three"} {
			r := c.receive("q", 1)
			if r.status != http.StatusOK || string(r.body) != want {
				t.Fatalf("receive: %d %q, want %q", r.status, r.body, want)
			}
			if want == "two" && (r.header.Get("Color") != `"red"` || r.header.Get("N") != "2") {
				t.Fatalf("batch user properties: %v", r.header)
			}
			if r.header.Get("Location") != "" {
				t.Fatal("receive-and-delete has a Location")
			}
		}
		if r := c.receive("q", 0); r.status != http.StatusNoContent {
			t.Fatalf("empty queue: %d", r.status)
		}
	})
}

func TestAbandonRenewAndMaxDeliveryCount(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ns := e.newNamespace(e.contoso, "contoso-retry")
		e.queue(ns, "q", `{"maxDeliveryCount":2,"lockDuration":"PT30S"}`)
		c := e.owner(ns)
		c.mustSend("q", "poison", nil)

		first := c.lock("q", 1)
		until1, _ := servicebus.ParseTime(props(t, first)["LockedUntilUtc"].(string))
		e.advance(10 * time.Second)
		renewed := c.settle(http.MethodPost, first)
		if renewed.status != http.StatusOK {
			t.Fatalf("renew: %d %s", renewed.status, renewed.body)
		}
		until2, _ := servicebus.ParseTime(props(t, renewed)["LockedUntilUtc"].(string))
		if !until2.After(until1) {
			t.Fatalf("renew did not extend the lock: %v then %v", until1, until2)
		}
		if s := c.settle(http.MethodPut, first); s.status != http.StatusOK { // abandon
			t.Fatalf("abandon: %d %s", s.status, s.body)
		}
		second := c.lock("q", 1)
		if second.status != http.StatusCreated || props(t, second)["DeliveryCount"] != 2.0 {
			t.Fatalf("redelivery after abandon: %d %v", second.status, second.header)
		}
		// The old lock is gone.
		if s := c.settle(http.MethodDelete, first); s.status != http.StatusNotFound {
			t.Fatalf("complete with an abandoned lock: %d", s.status)
		}
		// Abandoned at the limit: dead-lettered.
		if s := c.settle(http.MethodPut, second); s.status != http.StatusOK {
			t.Fatalf("abandon: %d", s.status)
		}
		if r := c.lock("q", 0); r.status != http.StatusNoContent {
			t.Fatalf("poison message delivered a third time: %d", r.status)
		}
		dl := c.lock("q/$DeadLetterQueue", 1)
		if dl.status != http.StatusCreated || string(dl.body) != "poison" || dl.header.Get("DeadLetterReason") != `"MaxDeliveryCountExceeded"` {
			t.Fatalf("dead-letter queue: %d %q %v", dl.status, dl.body, dl.header)
		}
		if !strings.Contains(dl.header.Get("Location"), "/q/$DeadLetterQueue/messages/") {
			t.Fatalf("dead-letter Location = %q", dl.header.Get("Location"))
		}
		if s := c.settle(http.MethodDelete, dl); s.status != http.StatusOK {
			t.Fatalf("complete from the dead-letter queue: %d", s.status)
		}
		// Nobody sends to a dead-letter queue.
		if r := c.send("q/$DeadLetterQueue", "x", nil); r.status == http.StatusCreated {
			t.Fatal("send to the dead-letter queue accepted")
		}
	})
}

func TestLockExpiryRedelivers(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ns := e.newNamespace(e.contoso, "contoso-expiry")
		e.queue(ns, "q", `{"lockDuration":"PT10S"}`)
		c := e.owner(ns)
		c.mustSend("q", "work", nil)
		first := c.lock("q", 1)
		if first.status != http.StatusCreated {
			t.Fatalf("lock: %d", first.status)
		}
		e.advance(11 * time.Second)
		second := c.lock("q", 1)
		if second.status != http.StatusCreated || props(t, second)["DeliveryCount"] != 2.0 {
			t.Fatalf("after the lock expired: %d %v", second.status, second.header)
		}
		// The first receiver's lock is lost: its complete fails, and the
		// second receiver's succeeds. Never two holders.
		if s := c.settle(http.MethodDelete, first); s.status != http.StatusNotFound {
			t.Fatalf("complete with an expired lock: %d", s.status)
		}
		if s := c.settle(http.MethodDelete, second); s.status != http.StatusOK {
			t.Fatalf("complete: %d", s.status)
		}
	})
}

func TestTimeToLive(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ns := e.newNamespace(e.contoso, "contoso-ttl")
		e.queue(ns, "dl", `{"deadLetteringOnMessageExpiration":true,"defaultMessageTimeToLive":"PT1M"}`)
		e.queue(ns, "drop", `{}`)
		c := e.owner(ns)
		c.mustSend("dl", "short", map[string]any{"TimeToLive": 10})
		c.mustSend("dl", "clamped", map[string]any{"TimeToLive": 3600})
		c.mustSend("drop", "gone", map[string]any{"TimeToLive": 10})

		// The queue's default is a ceiling on the message's own TTL.
		peek := c.lock("dl", 1)
		c.settle(http.MethodPut, peek)
		e.advance(30 * time.Second)
		r := c.lock("dl", 1)
		if string(r.body) != "clamped" || props(t, r)["TimeToLive"] != 60.0 {
			t.Fatalf("after 30 s: %q %v", r.body, props(t, r))
		}
		c.settle(http.MethodPut, r)
		e.advance(31 * time.Second)
		if r := c.lock("dl", 0); r.status != http.StatusNoContent {
			t.Fatalf("expired messages delivered: %d %q", r.status, r.body)
		}
		got := map[string]string{}
		for range 2 {
			d := c.receive("dl/$DeadLetterQueue", 1)
			got[string(d.body)] = d.header.Get("DeadLetterReason")
		}
		if got["short"] != `"TTLExpiredException"` || got["clamped"] != `"TTLExpiredException"` {
			t.Fatalf("dead-lettered on expiry: %v", got)
		}
		// Without deadLetteringOnMessageExpiration the message is dropped.
		if r := c.receive("drop", 0); r.status != http.StatusNoContent {
			t.Fatalf("expired message delivered: %d", r.status)
		}
		if r := c.receive("drop/$DeadLetterQueue", 0); r.status != http.StatusNoContent {
			t.Fatalf("dropped message dead-lettered: %d", r.status)
		}
	})
}

func TestDuplicateDetectionAndScheduling(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ns := e.newNamespace(e.contoso, "contoso-dedup")
		e.queue(ns, "q", `{"requiresDuplicateDetection":true,"duplicateDetectionHistoryTimeWindow":"PT1M"}`)
		c := e.owner(ns)
		c.mustSend("q", "first", map[string]any{"MessageId": "order-1"})
		c.mustSend("q", "again", map[string]any{"MessageId": "order-1"}) // 201, dropped
		if r := c.receive("q", 1); string(r.body) != "first" {
			t.Fatalf("receive: %q", r.body)
		}
		if r := c.receive("q", 0); r.status != http.StatusNoContent {
			t.Fatalf("duplicate delivered: %d %q", r.status, r.body)
		}
		e.advance(2 * time.Minute) // past the window: the id is new again
		c.mustSend("q", "later", map[string]any{"MessageId": "order-1"})
		if r := c.receive("q", 1); string(r.body) != "later" {
			t.Fatalf("after the window: %d %q", r.status, r.body)
		}

		at := e.now().Add(time.Hour).UTC().Format(http.TimeFormat)
		c.mustSend("q", "scheduled", map[string]any{"ScheduledEnqueueTimeUtc": at})
		if r := c.receive("q", 0); r.status != http.StatusNoContent {
			t.Fatalf("scheduled message delivered early: %d", r.status)
		}
		e.advance(time.Hour + time.Second)
		r := c.receive("q", 1)
		if string(r.body) != "scheduled" || props(t, r)["ScheduledEnqueueTimeUtc"] != at {
			t.Fatalf("scheduled message: %d %q %v", r.status, r.body, r.header.Get("BrokerProperties"))
		}
	})
}

func TestQuotas(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ns := e.newNamespace(e.contoso, "contoso-quota")
		id := e.queue(ns, "small", "")
		// ARM allows no queue under 1 GiB; the test shrinks the stored
		// record to 1 MiB to reach the quota with a few messages.
		res, err := e.st.GetResource(e.ctx, id)
		must(t, err)
		var settings map[string]any
		must(t, json.Unmarshal(res.Properties, &settings))
		settings["maxSizeInMegabytes"] = 1
		res.Properties, _ = json.Marshal(settings)
		must(t, e.st.UpdateResource(e.ctx, res))
		c := e.owner(ns)
		big := strings.Repeat("x", servicebus.MaxMessageBytes+1)
		if r := c.send("small", big, nil); r.status != http.StatusForbidden || !strings.Contains(detail(t, r), "exceeds the limit") {
			t.Fatalf("oversized message: %d %s", r.status, r.body)
		}
		chunk := strings.Repeat("y", 250_000)
		for i := range 4 {
			if r := c.send("small", chunk, nil); r.status != http.StatusCreated {
				t.Fatalf("send %d: %d %s", i, r.status, r.body)
			}
		}
		if r := c.send("small", chunk, nil); r.status != http.StatusForbidden || !strings.Contains(detail(t, r), "QuotaExceeded") {
			t.Fatalf("send over the queue's size: %d %s", r.status, r.body)
		}
		c.receive("small", 1)
		if r := c.send("small", chunk, nil); r.status != http.StatusCreated {
			t.Fatalf("send after room was made: %d %s", r.status, r.body)
		}
	})
}

func TestBadInput(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ns := e.newNamespace(e.contoso, "contoso-bad")
		e.queue(ns, "q", "")
		c := e.owner(ns)
		admin := e.newApp(e.contoso.Tenant.ID, "no-role")
		noRole := e.as(ns, e.busToken(e.contoso.Tenant.ID, admin))
		armToken := e.base.Token(t, e.contoso.Tenant.ID, admin.appID, admin.secret, "https://management.azure.com/.default")
		stranger := e.newApp(e.fabrikam.Tenant.ID, "stranger")

		cases := []struct {
			name   string
			r      response
			status int
		}{
			{"malformed BrokerProperties", c.send("q", "x", http.Header{"BrokerProperties": {`{"Label":`}}), 400},
			{"BrokerProperties of the wrong type", c.send("q", "x", http.Header{"BrokerProperties": {`{"TimeToLive":"soon"}`}}), 400},
			{"custom header that is not UTF-8", c.send("q", "x", http.Header{"Bad": {"\xff\xfe"}}), 400},
			{"malformed batch", c.send("q", `[{"Body":`, http.Header{"Content-Type": {"application/vnd.microsoft.servicebus.json"}}), 400},
			{"unknown queue", c.send("nope", "x", nil), 410},
			{"receive from an unknown queue", c.lock("nope", 0), 410},
			{"bad timeout", c.e.do(c.token, http.MethodPost, ns.url("q/messages/head?timeout=soon"), nil, nil), 400},
			{"settle by a bad reference", c.e.do(c.token, http.MethodDelete, ns.url("q/messages/abc/def"), nil, nil), 404},
			{"not a messages path", c.e.do(c.token, http.MethodPost, ns.url("q/other"), nil, nil), 400},
			{"no token", e.do("", http.MethodPost, ns.url("q/messages"), nil, []byte("x")), 401},
			{"wrong audience", e.do(armToken, http.MethodPost, ns.url("q/messages"), nil, []byte("x")), 401},
			{"another tenant's token", e.do(e.busToken(e.fabrikam.Tenant.ID, stranger), http.MethodPost, ns.url("q/messages"), nil, []byte("x")), 401},
			{"no role", noRole.send("q", "x", nil), 401},
			{"unknown namespace", e.do(c.token, http.MethodPost, "https://nobody-here.servicebus.windows.net/q/messages", nil, []byte("x")), 404},
		}
		for _, tc := range cases {
			if tc.r.status != tc.status {
				t.Errorf("%s: %d %s, want %d", tc.name, tc.r.status, tc.r.body, tc.status)
				continue
			}
			if detail(t, tc.r) == "" {
				t.Errorf("%s: no detail in %q", tc.name, tc.r.body)
			}
		}
		if r := noRole.send("q", "x", nil); !strings.Contains(detail(t, r), "'Send' claim(s) are required") {
			t.Errorf("refusal text: %s", r.body)
		}
	})
}

// A receiver waiting on an empty queue is woken by the send, not by a
// polling timer: it returns well before its 30 s timeout.
func TestLongPollWakesOnSend(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ns := e.newNamespace(e.contoso, "contoso-poll")
		e.queue(ns, "q", "")
		c := e.owner(ns)
		got := make(chan response, 1)
		start := time.Now()
		go func() { got <- c.receive("q", 30) }()
		time.Sleep(200 * time.Millisecond)
		c.mustSend("q", "wake", nil)
		r := <-got
		if r.status != http.StatusOK || string(r.body) != "wake" {
			t.Fatalf("long poll: %d %q", r.status, r.body)
		}
		if waited := time.Since(start); waited > 15*time.Second {
			t.Fatalf("the long poll returned after %v: it was not woken by the send", waited)
		}
	})
}

// Concurrent receivers never share a message: each of many messages is
// completed exactly once.
func TestConcurrentReceiversShareNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ns := e.newNamespace(e.contoso, "contoso-many")
		e.queue(ns, "q", "")
		c := e.owner(ns)
		const n = 60
		for i := range n {
			c.mustSend("q", fmt.Sprint(i), nil)
		}
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for {
					r := c.lock("q", 0)
					if r.status == http.StatusNoContent {
						return
					}
					if r.status != http.StatusCreated {
						t.Errorf("lock: %d %s", r.status, r.body)
						return
					}
					if s := c.settle(http.MethodDelete, r); s.status != http.StatusOK {
						t.Errorf("complete: %d", s.status)
					}
					mu.Lock()
					seen[string(r.body)]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(seen) != n {
			t.Fatalf("received %d distinct messages, want %d", len(seen), n)
		}
		for body, k := range seen {
			if k != 1 {
				t.Fatalf("message %s received %d times", body, k)
			}
		}
	})
}

// The seed-004 grant: a provider's service principal provisioned into the
// customer tenant, Data Sender on the command queue and Data Receiver on
// the status queue, can do exactly that.
func TestCrossTenantQueueGrants(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ns := e.newNamespace(e.fabrikam, "fabrikam-bus")
		commands := e.queue(ns, "commands", "")
		status := e.queue(ns, "status", "")
		provider := e.newApp(e.contoso.Tenant.ID, "provider")
		sp, err := e.dir.CreateServicePrincipal(e.ctx, e.fabrikam.Tenant.ID, provider.appID)
		must(t, err)
		e.assign(e.fabrikam.Tenant.ID, sp.ID, rbac.RoleServiceBusDataSender, commands)
		e.assign(e.fabrikam.Tenant.ID, sp.ID, rbac.RoleServiceBusDataReceiver, status)
		customer := e.owner(ns)
		p := e.as(ns, e.busToken(e.fabrikam.Tenant.ID, provider))

		if r := p.send("commands", "restart", nil); r.status != http.StatusCreated {
			t.Fatalf("provider send to commands: %d %s", r.status, r.body)
		}
		if r := p.send("status", "x", nil); r.status != http.StatusUnauthorized {
			t.Fatalf("provider send to status: %d", r.status)
		}
		if r := p.lock("commands", 0); r.status != http.StatusUnauthorized || !strings.Contains(detail(t, r), "'Listen' claim(s) are required") {
			t.Fatalf("provider receive from commands: %d %s", r.status, r.body)
		}
		customer.mustSend("status", "healthy", nil)
		if r := p.receive("status", 1); r.status != http.StatusOK || string(r.body) != "healthy" {
			t.Fatalf("provider receive from status: %d %q", r.status, r.body)
		}
		// The provider's token from its home tenant is not the customer's.
		home := e.as(ns, e.busToken(e.contoso.Tenant.ID, provider))
		if r := home.send("commands", "x", nil); r.status != http.StatusUnauthorized {
			t.Fatalf("home-tenant token accepted: %d", r.status)
		}
		if r := customer.receive("commands", 1); string(r.body) != "restart" {
			t.Fatalf("customer receive: %d %q", r.status, r.body)
		}
	})
}

// ARM's queue GET reports the counts the store keeps.
func TestQueueCountsInARM(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ns := e.newNamespace(e.contoso, "contoso-counts")
		id := e.queue(ns, "q", "")
		c := e.owner(ns)
		c.mustSend("q", "a", nil)
		c.mustSend("q", "b", map[string]any{"ScheduledEnqueueTimeUtc": e.now().Add(time.Hour).UTC().Format(http.TimeFormat)})
		r := e.arm(e.adminARMToken(e.contoso), http.MethodGet, id, "")
		var v struct {
			Properties struct {
				MessageCount int64 `json:"messageCount"`
				SizeInBytes  int64 `json:"sizeInBytes"`
				CountDetails struct {
					Active    int64 `json:"activeMessageCount"`
					Scheduled int64 `json:"scheduledMessageCount"`
				} `json:"countDetails"`
			} `json:"properties"`
		}
		must(t, json.Unmarshal(r.body, &v))
		if v.Properties.MessageCount != 2 || v.Properties.CountDetails.Active != 1 || v.Properties.CountDetails.Scheduled != 1 || v.Properties.SizeInBytes <= 2 {
			t.Fatalf("queue GET: %s", r.body)
		}
	})
}

// Peek (tenantbridge's browse) lists messages without locking them.
func TestPeek(t *testing.T) {
	forEachStore(t, func(t *testing.T, e *env) {
		ns := e.newNamespace(e.contoso, "contoso-peek")
		e.queue(ns, "q", "")
		c := e.owner(ns)
		c.mustSend("q", "one", map[string]any{"Label": "first"})
		if r := c.send("q", "\xff\x00", http.Header{"Color": {`"blue"`}}); r.status != http.StatusCreated {
			t.Fatalf("send: %d", r.status)
		}
		r := e.do(c.token, http.MethodGet, ns.url("q/messages?top=10"), nil, nil)
		var got []struct {
			Body             *string
			BodyBase64       []byte
			BrokerProperties map[string]any
			UserProperties   map[string]any
		}
		must(t, json.Unmarshal(r.body, &got))
		if r.status != http.StatusOK || len(got) != 2 || *got[0].Body != "one" || got[0].BrokerProperties["Label"] != "first" ||
			got[1].Body != nil || string(got[1].BodyBase64) != "\xff\x00" || got[1].UserProperties["Color"] != "blue" {
			t.Fatalf("peek: %d %s", r.status, r.body)
		}
		first := int64(got[0].BrokerProperties["SequenceNumber"].(float64))
		r = e.do(c.token, http.MethodGet, ns.url(fmt.Sprintf("q/messages?top=10&fromSequenceNumber=%d", first+1)), nil, nil)
		got = nil
		must(t, json.Unmarshal(r.body, &got))
		if len(got) != 1 || got[0].Body != nil {
			t.Fatalf("peek from the second: %s", r.body)
		}
		// Nothing was locked.
		if l := c.lock("q", 1); l.status != http.StatusCreated || props(t, l)["DeliveryCount"] != 1.0 {
			t.Fatalf("lock after peek: %d %v", l.status, l.header)
		}
		if r := e.do(c.token, http.MethodGet, ns.url("q/messages?top=1000"), nil, nil); r.status != http.StatusBadRequest {
			t.Fatalf("peek top=1000: %d", r.status)
		}
	})
}
