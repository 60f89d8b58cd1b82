package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

// The audit page's bounds: how many records one page shows, how many it
// reads at most to find them, and what an audit stream may hold open.
const (
	auditPageSize          = 200
	auditScanLimit         = 100_000
	auditReadBatch         = 1000
	maxStreamsPerPrincipal = 4
	maxStreamLifetime      = 30 * time.Minute // then the browser reconnects
	recheckEvery           = 10               // polls between re-checks of the viewer
)

// auditFilter is what the audit page and its stream select, from the
// query string. The tenant is the page's; everything else narrows it.
type auditFilter struct {
	Other     string // the other tenant (id or name): records between the two, either way
	otherID   string
	Principal string // the actor's object id or name, exactly
	Action    string // a prefix of the action
	Since     string // 2006-01-02T15:04 (UTC)
	Until     string
	since     time.Time
	until     time.Time
	All       bool // also records within the tenant; by default only those whose actor is not of the tenant acted in
}

const filterTime = "2006-01-02T15:04"

func (h *Handler) parseFilter(ctx context.Context, q url.Values) auditFilter {
	clip := func(s string) string {
		s = strings.TrimSpace(s)
		if len(s) > 200 {
			s = s[:200]
		}
		return s
	}
	f := auditFilter{Other: clip(q.Get("other")), Principal: clip(q.Get("principal")), Action: clip(q.Get("action")),
		Since: clip(q.Get("since")), Until: clip(q.Get("until")), All: q.Get("all") == "1"}
	if f.Other != "" {
		f.otherID = strings.ToLower(f.Other)
		if t, err := h.cfg.Directory.Tenant(ctx, f.Other); err == nil {
			f.otherID = t.ID
		} else if t, err := h.tenantByName(ctx, f.Other); err == nil {
			f.otherID = t.ID
		}
	}
	if t, err := time.Parse(filterTime, f.Since); err == nil {
		f.since = t
	} else {
		f.Since = ""
	}
	if t, err := time.Parse(filterTime, f.Until); err == nil {
		f.until = t
	} else {
		f.Until = ""
	}
	return f
}

// tenantByName finds a tenant by its short name.
func (h *Handler) tenantByName(ctx context.Context, name string) (store.Tenant, error) {
	all, err := h.cfg.Directory.ListTenants(ctx)
	if err != nil {
		return store.Tenant{}, err
	}
	for _, t := range all {
		if strings.EqualFold(t.Name, name) {
			return t, nil
		}
	}
	return store.Tenant{}, fmt.Errorf("console: no tenant %q", name)
}

// query is the filter as a query string, for the stream's URL.
func (f auditFilter) query() string {
	q := url.Values{}
	for k, v := range map[string]string{"other": f.Other, "principal": f.Principal, "action": f.Action, "since": f.Since, "until": f.Until} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.All {
		q.Set("all", "1")
	}
	return q.Encode()
}

// matches reports whether a record of tenantID's log passes the filter.
func (f auditFilter) matches(tenantID string, r store.AuditRecord) bool {
	// Across the boundary: the actor is not of the tenant it acted in
	// (another tenant's principal, the operator, an anonymous caller).
	cross := !strings.EqualFold(r.ActorTenant, r.TargetTenant)
	switch {
	case !f.All && !cross:
		return false
	case f.otherID != "" && !(strings.EqualFold(r.ActorTenant, f.otherID) && strings.EqualFold(r.TargetTenant, tenantID) ||
		strings.EqualFold(r.TargetTenant, f.otherID) && strings.EqualFold(r.ActorTenant, tenantID)):
		return false
	case f.Principal != "" && !strings.EqualFold(r.Actor, f.Principal):
		return false
	case f.Action != "" && !strings.HasPrefix(strings.ToLower(r.Action), strings.ToLower(f.Action)):
		return false
	case !f.since.IsZero() && r.Time.Before(f.since):
		return false
	case !f.until.IsZero() && !r.Time.Before(f.until):
		return false
	}
	return true
}

// recordView is one audit record as the page and the stream show it.
type recordView struct {
	Seq          int64  `json:"seq"`
	Time         string `json:"time"`
	Actor        string `json:"actor"`
	ActorTenant  string `json:"actorTenant"`
	TargetTenant string `json:"targetTenant"`
	Action       string `json:"action"`
	Target       string `json:"target"`
	Result       string `json:"result"`
	Detail       string `json:"detail"`
}

func viewOf(names tenantNames, r store.AuditRecord) recordView {
	return recordView{Seq: r.Seq, Time: r.Time.UTC().Format("2006-01-02 15:04:05Z"), Actor: r.Actor,
		ActorTenant: names.of(r.ActorTenant, r.ActorTenant), TargetTenant: names.of(r.TargetTenant, r.TargetTenant),
		Action: r.Action, Target: r.Target, Result: r.Result, Detail: r.Detail}
}

// auditPage shows the newest records of the tenant's log that pass the
// filter, then follows the log live (auditStream).
func (h *Handler) auditPage(w http.ResponseWriter, r *http.Request, v *viewer, tenantID string) {
	ctx := r.Context()
	t, err := h.cfg.Directory.Tenant(ctx, tenantID)
	if err != nil {
		h.message(w, http.StatusNotFound, "Not found", "There is no such page.")
		return
	}
	f := h.parseFilter(ctx, r.URL.Query())
	// Read the log newest first, a batch at a time, until a page of
	// matches is found or auditScanLimit records were read. The stream
	// goes on from the newest record of the tenant's log.
	var (
		page    []store.AuditRecord
		after   int64
		before  int64
		scanned int
	)
	for scanned < auditScanLimit && len(page) < auditPageSize {
		batch, err := h.cfg.Store.ListAudit(ctx, store.AuditQuery{TenantID: t.ID, BeforeSeq: before, Newest: true, Limit: auditReadBatch})
		if err != nil {
			h.serverError(w, r, err)
			return
		}
		if after == 0 && len(batch) > 0 {
			after = batch[0].Seq
		}
		for _, rec := range batch {
			if len(page) < auditPageSize && f.matches(t.ID, rec) {
				page = append(page, rec)
			}
			before = rec.Seq
		}
		scanned += len(batch)
		if len(batch) < auditReadBatch {
			break
		}
	}
	names := tenantNames{h: h, ctx: ctx, m: map[string]string{}}
	views := make([]recordView, 0, len(page))
	for _, rec := range page {
		views = append(views, viewOf(names, rec))
	}
	// The stream goes on from the newest record there was, so nothing
	// committed in between is missed.
	stream := Prefix + "tenants/" + t.ID + "/audit/stream?" + f.query()
	if !strings.HasSuffix(stream, "?") {
		stream += "&"
	}
	stream += "after=" + strconv.FormatInt(after, 10)
	h.render(w, http.StatusOK, "audit", pageData{Title: "Audit of " + t.Name, Viewer: v, Tenant: t, Filter: f, Records: views,
		Stream: stream, Truncated: scanned >= auditScanLimit && len(page) < auditPageSize})
}

// auditStream sends the tenant's new audit records that pass the filter
// as server-sent events ("audit", the record as JSON, its sequence number
// as the event id), with a comment as heartbeat. Bounded: at most
// maxStreamsPerPrincipal streams per signed-in principal, each closed at
// the session's end, at sign-out, when the viewer is no longer an
// administrator, or after maxStreamLifetime (EventSource reconnects,
// sending the last id).
func (h *Handler) auditStream(w http.ResponseWriter, r *http.Request, v *viewer, tenantID string) {
	ctx := r.Context()
	f := h.parseFilter(ctx, r.URL.Query())
	after, err := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	given := err == nil
	if id, err := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64); err == nil {
		after, given = id, true
	}
	if after < 0 {
		after = 0
	}
	if !given {
		// Live from now: skip what the log already holds.
		if after, err = h.lastSeq(ctx, tenantID); err != nil {
			h.serverError(w, r, err)
			return
		}
	}
	closed, ok := h.openStream(v)
	if !ok {
		w.Header().Set("Retry-After", "30")
		h.message(w, http.StatusTooManyRequests, "Too many streams",
			fmt.Sprintf("At most %d live audit views may be open at once; close one and reload.", maxStreamsPerPrincipal))
		return
	}
	defer h.closeStream(v, closed)
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprintf(w, "retry: 3000\n: tenantbridge audit of %s\n\n", tenantID)
	if err := rc.Flush(); err != nil {
		return
	}
	end := time.NewTimer(min(time.Until(v.Expires), maxStreamLifetime))
	defer end.Stop()
	poll := time.NewTicker(h.cfg.PollInterval)
	defer poll.Stop()
	beat := time.NewTicker(h.cfg.Heartbeat)
	defer beat.Stop()
	names := tenantNames{h: h, ctx: ctx, m: map[string]string{}}
	polls := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-closed:
			_, _ = fmt.Fprint(w, "event: end\ndata: signed out\n\n")
			_ = rc.Flush()
			return
		case <-end.C:
			_, _ = fmt.Fprint(w, "event: end\ndata: session over\n\n")
			_ = rc.Flush()
			return
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-poll.C:
			polls++
			if polls%recheckEvery == 0 {
				if now, err := h.viewerOf(r); err != nil || now == nil || now.ID != v.ID {
					_, _ = fmt.Fprint(w, "event: end\ndata: no longer allowed\n\n")
					_ = rc.Flush()
					return
				}
			}
			batch, err := h.cfg.Store.ListAudit(ctx, store.AuditQuery{TenantID: tenantID, AfterSeq: after, Limit: auditPageSize})
			if err != nil {
				h.log.WarnContext(ctx, "console: audit stream", "err", err)
				continue
			}
			for _, rec := range batch {
				after = rec.Seq
				if !f.matches(tenantID, rec) {
					continue
				}
				data, _ := json.Marshal(viewOf(names, rec))
				if _, err := fmt.Fprintf(w, "event: audit\nid: %d\ndata: %s\n\n", rec.Seq, data); err != nil {
					return
				}
			}
			if len(batch) > 0 && rc.Flush() != nil {
				return
			}
		}
	}
}

// lastSeq is the sequence number of the tenant's newest audit record (0
// for none).
func (h *Handler) lastSeq(ctx context.Context, tenantID string) (int64, error) {
	batch, err := h.cfg.Store.ListAudit(ctx, store.AuditQuery{TenantID: tenantID, Newest: true, Limit: 1})
	if err != nil || len(batch) == 0 {
		return 0, err
	}
	return batch[0].Seq, nil
}

// openStream counts a stream for the viewer's principal, refusing past the
// cap; the channel closes at the session's sign-out.
func (h *Handler) openStream(v *viewer) (chan struct{}, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := v.principal()
	if h.streams[p] >= maxStreamsPerPrincipal {
		return nil, false
	}
	h.streams[p]++
	ch := make(chan struct{})
	if h.byID[v.ID] == nil {
		h.byID[v.ID] = map[chan struct{}]bool{}
	}
	h.byID[v.ID][ch] = true
	return ch, true
}

func (h *Handler) closeStream(v *viewer, ch chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := v.principal()
	if h.streams[p]--; h.streams[p] <= 0 {
		delete(h.streams, p)
	}
	if set := h.byID[v.ID]; set != nil {
		delete(set, ch)
		if len(set) == 0 {
			delete(h.byID, v.ID)
		}
	}
}
