package postgres

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/store/sqlstore"
)

// changeChannel is the channel migration 0006's triggers notify.
const changeChannel = "tenantbridge_changes"

// Reconnection back-off of the change listener.
const (
	listenRetryMin = 100 * time.Millisecond
	listenRetryMax = 5 * time.Second
)

// listenForChanges keeps one connection listening on changeChannel and
// moves st's generation on every notification about st's schema, so that
// what this process caches never outlives another process's commit by
// more than the notification's delivery. While it is not listening the
// store is deaf and serves nothing from caches. ready is closed after the
// first attempt, successful or not, so that Open can return a store that
// already hears.
//
// The payload is "{schema} {application_name}"; Open gives this process's
// pool connections an application_name of their own, so that the
// process's own commits, which moved the generation already, are skipped.
func listenForChanges(ctx context.Context, cfg *pgx.ConnConfig, self string, st *sqlstore.Store, ready chan<- struct{}) {
	wait := listenRetryMin
	first := true
	for ctx.Err() == nil {
		err := listenOnce(ctx, cfg, self, st, func() {
			wait = listenRetryMin
			if first {
				first = false
				close(ready)
			}
		})
		st.SetHearing(false)
		if ctx.Err() != nil {
			break
		}
		slog.Warn("postgres: change listener lost; caches are bypassed until it is back", "err", err, "retry", wait)
		if first {
			first = false
			close(ready)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, listenRetryMax)
	}
	if first {
		close(ready)
	}
}

// listenOnce connects, listens, and relays notifications until the
// connection fails or ctx ends. listening is called once LISTEN is in
// place, after the store is marked hearing.
func listenOnce(ctx context.Context, cfg *pgx.ConnConfig, self string, st *sqlstore.Store, listening func()) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var schema string
	if err := conn.QueryRow(ctx, "SELECT coalesce(current_schema(), '')").Scan(&schema); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+changeChannel+"; LISTEN "+sqlstore.QueueWakeChannel); err != nil {
		return err
	}
	// Hearing starts a new generation: whatever was cached while deaf
	// (nothing was) or before (everything may be stale) is not served.
	st.SetHearing(true)
	// Queue wake-ups sent while no one listened are lost: every waiting
	// receiver looks again.
	st.DeliverQueueWakes(nil)
	listening()
	mine := schema + " " + self
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		switch n.Channel {
		case changeChannel:
			// A schema whose name extends this one's past a space could
			// make a false match: one needless new generation, never a
			// missed one.
			if strings.HasPrefix(n.Payload, schema+" ") && n.Payload != mine {
				st.NoteExternalChange()
			}
		case sqlstore.QueueWakeChannel:
			if ws, ok := queueWakesOf(n.Payload, schema, self); ok {
				st.DeliverQueueWakes(ws)
			}
		}
	}
}

// queueWakesOf reads a sqlstore.QueueWakeChannel payload, "{schema}
// {application_name} {wake-ups}", keeping those of schema sent by other
// processes than self (whose own broker woke its receivers already).
func queueWakesOf(payload, schema, self string) ([]store.QueueWake, bool) {
	rest, ok := strings.CutPrefix(payload, schema+" ")
	if !ok {
		return nil, false
	}
	from, js, ok := strings.Cut(rest, " ")
	if !ok || from == self {
		return nil, false
	}
	return sqlstore.ParseQueueWakes(js)
}
