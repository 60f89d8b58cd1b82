package servicebus

import (
	"database/sql"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/sqlite"
)

// TestStoreBusyAnswers: a store write that lost the race for SQLite's
// write lock (a real store.ErrBusy, from a store whose lock another
// connection holds) is answered 503 ServerBusy with Retry-After on REST
// and com.microsoft:server-busy on AMQP; any other error stays a 500 and
// amqp:internal-error.
func TestStoreBusyAnswers(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "tb.db")
	restore := sqlite.SetBusyTimeoutForTest(20 * time.Millisecond)
	st, err := sqlite.Open(ctx, path)
	restore()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	other, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	holder, err := other.BeginTx(ctx, nil) // BEGIN IMMEDIATE: the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	_, busy := st.AppendAudit(ctx, store.AuditRecord{Time: time.Now(), Actor: "a", Action: "b", Result: "success"})
	if busy == nil {
		t.Fatal("write while the lock is held succeeded")
	}

	w := httptest.NewRecorder()
	WriteInternal(w, busy)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != store.BusyRetryAfter ||
		w.Header().Get("Content-Type") != ErrorContentType || !strings.Contains(w.Body.String(), "<Code>503</Code><Detail>ServerBusy: ") {
		t.Errorf("REST answer to store contention: %d Retry-After %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if cond, desc := AMQPCondition(busy, "internal error"); cond != CondServerBusy || !strings.HasPrefix(desc, "ServerBusy: ") {
		t.Errorf("AMQP answer to store contention: %s %q", cond, desc)
	}
	// The queue's batches too: a send while the lock is held fails busy,
	// and the AMQP front-end's rejection says server-busy.
	res := st.ApplyQueueOps(ctx, time.Now(), []store.QueueOp{{Kind: store.QueueSend, QueueID: "/subscriptions/s/resourceGroups/g/providers/Microsoft.ServiceBus/namespaces/n/queues/q",
		Messages: []store.QueueMessage{{MessageID: "m", Body: []byte("x")}}}})
	if len(res) != 1 || !errors.Is(res[0].Err, store.ErrBusy) {
		t.Fatalf("a queue batch under contention: %+v", res)
	}
	if e := storeError(res[0].Err, "The server could not store the message; retry."); string(e.Condition) != CondServerBusy {
		t.Errorf("AMQP rejection of a busy send: %s %q", e.Condition, e.Description)
	}
	if e := storeError(sql.ErrConnDone, "The server could not store the message; retry."); e.Condition != "amqp:internal-error" || e.Description != "The server could not store the message; retry." {
		t.Errorf("AMQP rejection of another failure: %s %q", e.Condition, e.Description)
	}

	other2 := sql.ErrConnDone
	w = httptest.NewRecorder()
	WriteInternal(w, other2)
	if w.Code != http.StatusInternalServerError || w.Header().Get("Retry-After") != "" {
		t.Errorf("REST answer to another error: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if cond, desc := AMQPCondition(other2, "internal error"); cond != "amqp:internal-error" || desc != "internal error" {
		t.Errorf("AMQP answer to another error: %s %q", cond, desc)
	}
}
