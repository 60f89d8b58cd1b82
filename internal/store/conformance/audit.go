package conformance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
)

func testAudit(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	a, b, c := newID(), newID(), newID()
	at := time.Date(2025, 7, 1, 10, 0, 0, 123456789, time.FixedZone("UTC+2", 2*3600))
	recs := []store.AuditRecord{
		{Time: at, Actor: "operator", ActorTenant: a, TargetTenant: a, Action: "tenant.create", Target: a, Result: "success",
			ClientAddr: "127.0.0.1:5555", RequestID: "req-1", Detail: "created"},
		{Time: at, Actor: newID(), ActorTenant: b, TargetTenant: a, Action: "token.issue", Target: newID(), Result: "AADSTS7000215"},
		{Time: at, Actor: newID(), ActorTenant: b, TargetTenant: b, Action: "application.create", Target: newID(), Result: "success"},
		{Actor: newID(), ActorTenant: c, TargetTenant: c, Action: "secret.set", Result: "success"}, // zero Time
	}
	before := time.Now()
	var last int64
	for i := range recs {
		seq, err := st.AppendAudit(f.ctx, recs[i])
		must(t, err, "append")
		if seq <= last {
			t.Errorf("record %d: seq %d after %d, want increasing", i, seq, last)
		}
		recs[i].Seq, last = seq, seq
		recs[i].Time = stored(recs[i].Time)
	}
	after := time.Now()

	all, err := st.ListAudit(f.ctx, store.AuditQuery{})
	must(t, err, "list")
	if len(all) != len(recs) {
		t.Fatalf("listed %d records, want %d", len(all), len(recs))
	}
	for i, got := range all {
		want := recs[i]
		if i == 3 {
			checkNow(t, "zero audit Time", got.Time, before, after)
		} else {
			checkTime(t, "audit Time", got.Time, want.Time)
		}
		got.Time, want.Time = time.Time{}, time.Time{}
		if got != want {
			t.Errorf("record %d: got %+v, want %+v", i, got, want)
		}
	}

	seqs := func(rs []store.AuditRecord) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = fmt.Sprint(r.Seq)
		}
		return out
	}
	want := func(i ...int) []string {
		var out []string
		for _, n := range i {
			out = append(out, fmt.Sprint(recs[n].Seq))
		}
		return out
	}
	tests := []struct {
		name string
		q    store.AuditQuery
		want []string
	}{
		{"all", store.AuditQuery{}, want(0, 1, 2, 3)},
		{"tenant as actor and target", store.AuditQuery{TenantID: a}, want(0, 1)},
		{"tenant as actor or target", store.AuditQuery{TenantID: b}, want(1, 2)},
		{"tenant c", store.AuditQuery{TenantID: c}, want(3)},
		{"unknown tenant", store.AuditQuery{TenantID: newID()}, nil},
		{"after", store.AuditQuery{AfterSeq: recs[1].Seq}, want(2, 3)},
		{"limit", store.AuditQuery{Limit: 2}, want(0, 1)},
		{"after and limit", store.AuditQuery{AfterSeq: recs[0].Seq, Limit: 2}, want(1, 2)},
		{"tenant, after and limit", store.AuditQuery{TenantID: b, AfterSeq: recs[1].Seq, Limit: 5}, want(2)},
		{"after the last", store.AuditQuery{AfterSeq: last}, nil},
		{"newest first", store.AuditQuery{Newest: true}, want(3, 2, 1, 0)},
		{"newest two", store.AuditQuery{Newest: true, Limit: 2}, want(3, 2)},
		{"before", store.AuditQuery{BeforeSeq: recs[2].Seq}, want(0, 1)},
		{"newest before, limited", store.AuditQuery{Newest: true, BeforeSeq: recs[3].Seq, Limit: 2}, want(2, 1)},
		{"tenant, newest before", store.AuditQuery{TenantID: b, Newest: true, BeforeSeq: recs[2].Seq}, want(1)},
		{"after and before", store.AuditQuery{AfterSeq: recs[0].Seq, BeforeSeq: recs[3].Seq}, want(1, 2)},
	}
	for _, tc := range tests {
		got, err := st.ListAudit(f.ctx, tc.q)
		must(t, err, tc.name)
		checkIDs(t, tc.name, seqs(got), tc.want)
	}
	_, err = st.ListAudit(f.ctx, store.AuditQuery{Limit: -1})
	wantPlainErr(t, err, "negative limit")
}

// testHostileText feeds keys that PostgreSQL text cannot hold (NUL,
// invalid UTF-8): every backend must reject such writes plainly and treat
// such lookups as misses, rather than fail in a backend-specific way.
func testHostileText(t *testing.T, st store.Store) {
	f := newFixture(t, st)
	tn := f.tenant()
	u := f.object(tn.ID, store.KindUser, "", nil)
	for _, bad := range []string{"a\x00b", "\xff\xfe", "ok" + strings.Repeat("\x80", 3)} {
		t.Run(fmt.Sprintf("%q", bad), func(t *testing.T) {
			wantPlainErr(t, st.CreateTenant(f.ctx, store.Tenant{ID: newID(), Name: bad, Domain: "bad.example"}), "create tenant")
			wantPlainErr(t, st.CreateObject(f.ctx, store.Object{TenantID: tn.ID, ID: newID(), Kind: store.KindUser, Names: []string{bad}}), "create object")
			_, err := st.AppendAudit(f.ctx, store.AuditRecord{Action: bad})
			wantPlainErr(t, err, "append audit")

			_, err = st.GetTenant(f.ctx, bad)
			wantErr(t, err, store.ErrNotFound, "get tenant")
			_, err = st.GetObject(f.ctx, tn.ID, store.KindUser, bad)
			wantErr(t, err, store.ErrNotFound, "get object")
			wantErr(t, st.DeleteObject(f.ctx, tn.ID, store.KindUser, bad), store.ErrNotFound, "delete object")
			for _, q := range []store.ObjectQuery{
				{TenantID: tn.ID, Kind: store.KindUser, DisplayName: bad},
				{TenantID: tn.ID, Kind: store.KindUser, DisplayNamePrefix: bad},
				{TenantID: tn.ID, Kind: store.KindUser, Name: bad},
				{TenantID: tn.ID, Kind: store.KindUser, IDs: []string{bad}},
				{TenantID: bad, Kind: store.KindUser},
				{Kind: store.KindApplication, AppID: bad},
			} {
				got, err := st.ListObjects(f.ctx, q)
				must(t, err, fmt.Sprintf("list %+v", q))
				checkIDs(t, fmt.Sprintf("list %+v", q), objectIDs(got), nil)
			}
			got, err := st.ListObjects(f.ctx, store.ObjectQuery{TenantID: tn.ID, Kind: store.KindUser, IDs: []string{bad, u.ID}})
			must(t, err, "list by ids, one bad")
			checkIDs(t, "list by ids, one bad", objectIDs(got), keyIDs(tn.ID, u.ID))
			_, err = st.ListObjects(f.ctx, store.ObjectQuery{TenantID: tn.ID, Kind: store.KindUser, After: bad})
			wantPlainErr(t, err, "list after a bad cursor")
			ls, err := st.ListLinksFrom(f.ctx, tn.ID, store.LinkMember, bad)
			must(t, err, "list links")
			checkIDs(t, "links", linkEnds(ls, false), nil)
			_, err = st.GetAppRoleAssignment(f.ctx, tn.ID, bad)
			wantErr(t, err, store.ErrNotFound, "get assignment")
			recs, err := st.ListAudit(f.ctx, store.AuditQuery{TenantID: bad})
			must(t, err, "list audit")
			if len(recs) != 0 {
				t.Errorf("audit for a bad tenant id: %d records", len(recs))
			}
		})
	}
}

// testAuditBatch checks AppendAudits: every record stored in order, or, when
// one is bad, none of them.
func testAuditBatch(t *testing.T, st store.Store) {
	ctx := context.Background()
	tenant := newID()
	batch := []store.AuditRecord{
		{Actor: "a1", TargetTenant: tenant, Action: "token.issue", Result: "success"},
		{Actor: "a2", TargetTenant: tenant, Action: "token.issue", Result: "AADSTS7000215"},
		{Actor: "a3", TargetTenant: tenant, Action: "token.issue", Result: "success"},
	}
	if err := st.AppendAudits(ctx, batch); err != nil {
		t.Fatal(err)
	}
	got, err := st.ListAudit(ctx, store.AuditQuery{TenantID: tenant})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Actor != "a1" || got[2].Actor != "a3" || got[1].Result != "AADSTS7000215" || got[0].Time.IsZero() {
		t.Fatalf("batch stored as %+v", got)
	}
	if !(got[0].Seq < got[1].Seq && got[1].Seq < got[2].Seq) {
		t.Fatalf("sequence not increasing: %d %d %d", got[0].Seq, got[1].Seq, got[2].Seq)
	}
	// What one tenant's principals did in another.
	customer, publisher := newID(), newID()
	crossed := []store.AuditRecord{
		{Actor: "p1", ActorTenant: publisher, TargetTenant: customer, Action: "secret.get", Result: "success"},
		{Actor: "c1", ActorTenant: customer, TargetTenant: customer, Action: "secret.set", Result: "success"},
		{Actor: "p2", ActorTenant: publisher, TargetTenant: publisher, Action: "token.issue", Result: "success"},
		{Actor: "c2", ActorTenant: customer, TargetTenant: publisher, Action: "token.issue", Result: "success"},
	}
	if err := st.AppendAudits(ctx, crossed); err != nil {
		t.Fatal(err)
	}
	by, err := st.ListAudit(ctx, store.AuditQuery{TenantID: customer, ByTenantID: publisher})
	if err != nil || len(by) != 1 || by[0].Actor != "p1" {
		t.Fatalf("publisher's actions in the customer tenant: %+v, %v", by, err)
	}
	if _, err := st.ListAudit(ctx, store.AuditQuery{ByTenantID: publisher}); err == nil {
		t.Fatal("ByTenantID without TenantID accepted")
	}

	// A batch larger than one INSERT statement carries keeps its order.
	big := make([]store.AuditRecord, 150)
	bigTenant := newID()
	for i := range big {
		big[i] = store.AuditRecord{Actor: fmt.Sprintf("big%03d", i), TargetTenant: bigTenant, Action: "secret.get", Result: "success"}
	}
	if err := st.AppendAudits(ctx, big); err != nil {
		t.Fatal(err)
	}
	gotBig, err := st.ListAudit(ctx, store.AuditQuery{TenantID: bigTenant, Limit: 1000})
	if err != nil || len(gotBig) != len(big) {
		t.Fatalf("big batch: %d records, %v", len(gotBig), err)
	}
	for i, r := range gotBig {
		if r.Actor != big[i].Actor || (i > 0 && r.Seq <= gotBig[i-1].Seq) {
			t.Fatalf("big batch record %d = %s seq %d, out of order", i, r.Actor, r.Seq)
		}
	}
	bad := []store.AuditRecord{
		{Actor: "b1", TargetTenant: tenant, Action: "x", Result: "success"},
		{Actor: "b2\x00", TargetTenant: tenant, Action: "x", Result: "success"},
	}
	if err := st.AppendAudits(ctx, bad); err == nil {
		t.Fatal("a batch with a NUL byte was stored")
	}
	if got, _ := st.ListAudit(ctx, store.AuditQuery{TenantID: tenant}); len(got) != 3 {
		t.Fatalf("a failed batch left %d records, want the 3 from before", len(got))
	}
	if err := st.AppendAudits(ctx, nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	// Inside a transaction the batch is part of it.
	rollback := errors.New("roll back")
	err = st.InTx(ctx, func(tx store.Store) error {
		if err := tx.AppendAudits(ctx, []store.AuditRecord{{Actor: "c1", TargetTenant: tenant, Action: "x", Result: "success"}}); err != nil {
			return err
		}
		return rollback
	})
	if !errors.Is(err, rollback) {
		t.Fatal(err)
	}
	if got, _ := st.ListAudit(ctx, store.AuditQuery{TenantID: tenant}); len(got) != 3 {
		t.Fatalf("a rolled-back batch left %d records", len(got))
	}
}
