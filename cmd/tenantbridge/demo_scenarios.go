package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/server"
)

// scenarioDemo builds a fresh world — a publisher tenant and three
// customer tenants — and runs the five seed scenarios (S1–S5 of the
// design) through the wire APIs, narrating what crosses which tenant
// boundary, with which credential, and what the owning tenant allowed.
//
// The cloud side is set up as its operator and its tenants' admins would:
// the operator API (tenants, managed identities, workloads, users' TOTP
// enrolment, which Graph cannot do), and Graph and Resource Manager with
// each tenant's own admin credential. The provider's side runs the broker
// packages, which reach the cloud only over the wire.
type scenarioDemo struct {
	c   *cli
	out io.Writer
	rec *bytes.Buffer // everything narrated, checked for secrets at the end
	w   *world

	mu      sync.Mutex
	secrets []string
	names   map[string]string
	closers []func()

	localHosts []string
	brokerTLS  *demoBrokerTLS

	results []*scenarioResult
	cur     *scenarioResult

	pub  *actor
	cust []*actor // contoso, northwind, adatum

	s1 s1State
}

type scenarioResult struct {
	id, title string
	steps     int
	failed    string // the step that failed, with its error
	elapsed   time.Duration
	ran       bool
}

func (d *scenarioDemo) printf(format string, args ...any) {
	fmt.Fprintf(d.out, format, args...)
}

func (d *scenarioDemo) onClose(f func()) { d.closers = append(d.closers, f) }

// close stops the brokers and workers the demo started, newest first.
func (d *scenarioDemo) close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}

// step starts a numbered step of the current scenario.
func (d *scenarioDemo) step(format string, args ...any) {
	d.cur.steps++
	d.cur.failed = fmt.Sprintf("step %d (%s)", d.cur.steps, fmt.Sprintf(format, args...))
	d.printf("\n  %s.%d %s\n", d.cur.id, d.cur.steps, fmt.Sprintf(format, args...))
}

// note prints an indented line under the current step.
func (d *scenarioDemo) note(format string, args ...any) {
	d.printf("      "+format+"\n", args...)
}

// crossed narrates one act across a tenant boundary.
func (d *scenarioDemo) crossed(from, to, credential, allowed string) {
	d.printf("      crossed   %s → %s\n", from, to)
	d.printf("      with      %s\n", credential)
	d.printf("      allowed   %s\n", allowed)
}

func (d *scenarioDemo) name(id string) string {
	if n, ok := d.names[id]; ok {
		return n
	}
	return id
}

type scenario struct {
	id, title string
	run       func(context.Context) error
}

// runScenarios builds the world on srv and runs S1–S5; it returns an error
// naming the first failed step.
func (d *scenarioDemo) runScenarios(ctx context.Context, srv *server.Server) error {
	start := time.Now()
	d.names = map[string]string{}
	if err := d.buildWorld(ctx, srv); err != nil {
		return fmt.Errorf("building the world: %w", err)
	}
	all := []scenario{
		{"S1", "Shared Resource Broker: a managed application registers with its publisher", d.runS1},
		{"S2", "The publisher in the customer's data plane: listTokens and a federated identity", d.runS2},
		{"S3", "Multi-tenant application: admin consent, customer-granted roles, revocation", d.runS3},
		{"S4", "Secure Application Model: the partner's delegated access in custody", d.runS4},
		{"S5", "Bidirectional messaging: commands to every customer, replies from all of them", d.runS5},
	}
	var failure error
	for _, s := range all {
		r := &scenarioResult{id: s.id, title: s.title}
		d.results = append(d.results, r)
		if failure != nil {
			continue
		}
		d.cur = r
		r.ran = true
		d.printf("\n%s  %s\n", s.id, s.title)
		t0 := time.Now()
		err := s.run(ctx)
		r.elapsed = time.Since(t0)
		if err != nil {
			d.printf("      FAILED: %v\n", err)
			failure = fmt.Errorf("%s failed at %s: %w", s.id, r.failed, err)
			continue
		}
		r.failed = ""
	}
	if failure == nil {
		if err := d.whatCrossed(ctx); err != nil {
			failure = fmt.Errorf("the audit view failed: %w", err)
		}
	}
	d.summary(time.Since(start))
	if failure == nil {
		failure = d.checkNoSecrets()
	}
	return failure
}

// buildWorld creates the four tenants.
func (d *scenarioDemo) buildWorld(ctx context.Context, srv *server.Server) error {
	cred, err := d.c.serverInfo()
	if err != nil {
		return err
	}
	w := &world{d: d, srv: srv, opcred: cred, suffix: randomHex(6)}
	d.w = w
	if w.op, err = azclient.NewOperatorFromCredential(cred); err != nil {
		return err
	}
	local, err := cred.Local()
	if err != nil {
		return err
	}
	if w.tr, err = local.Transport(); err != nil {
		return err
	}
	w.tr.ResponseHeaderTimeout = 0 // long-polls of the messaging scenario
	w.hc = &http.Client{Transport: w.tr, Timeout: time.Minute}
	if w.opts, w.authority, err = d.c.clientOptions(); err != nil {
		return err
	}
	w.opts.Transport = w.hc

	d.printf("tenantbridge demo: the five seed scenarios, end to end, through the wire APIs\n\n")
	d.printf("  server          %s (in-process, embedded store)\n", cred.URL)
	d.printf("  data directory  %s\n", dataDirOf(srv))
	d.printf("  clients         the Azure SDK for Go and plain HTTPS, reaching the cloud by its Azure names\n")
	d.printf("                  (login.microsoftonline.com, graph.microsoft.com, management.azure.com,\n")
	d.printf("                  *.vault.azure.net, *.servicebus.windows.net)\n")
	d.printf("\nThe world: the operator creates one publisher tenant and three customer tenants\n")
	if d.pub, err = d.newActor(ctx, "fabrikam", "publisher"); err != nil {
		return err
	}
	for _, n := range []string{"contoso", "northwind", "adatum"} {
		a, err := d.newActor(ctx, n, "customer")
		if err != nil {
			return err
		}
		d.cust = append(d.cust, a)
	}
	return nil
}

// whatCrossed shows, for each customer, what the publisher's principals
// did in it (audit --tenant CUSTOMER --by-tenant PUBLISHER).
func (d *scenarioDemo) whatCrossed(ctx context.Context) error {
	d.printf("\nWhat crossed: each customer's audit log, narrowed to what %s's principals did in it\n", d.pub.Name)
	d.printf("  (tenantbridge audit --tenant CUSTOMER --by-tenant %s)\n", d.pub.Name)
	for _, c := range d.cust {
		recs, err := d.w.op.Audit(ctx, azclient.AuditQuery{Tenant: c.TenantID, ByTenant: d.pub.TenantID})
		if err != nil {
			return fmt.Errorf("reading %s's audit log: %w", c.Name, err)
		}
		counts, refusals := map[string]int{}, map[string]int{}
		for _, r := range recs {
			counts[r.Action]++
			if r.Result != "success" {
				refusals[r.Action+" "+r.Result]++
			}
		}
		d.printf("  %-10s %d records: %s\n", c.Name, len(recs), countList(counts))
		if len(refusals) > 0 {
			d.printf("  %-10s refused: %s\n", "", countList(refusals))
		}
	}
	return nil
}

func (d *scenarioDemo) summary(total time.Duration) {
	d.printf("\nSummary\n\n")
	t := table{header: []string{"SCENARIO", "STEPS", "RESULT", "TIME"}}
	for _, r := range d.results {
		res := "passed"
		switch {
		case !r.ran:
			res = "not run"
		case r.failed != "":
			res = "FAILED at " + r.failed
		}
		el := "-"
		if r.ran {
			el = r.elapsed.Round(10 * time.Millisecond).String()
		}
		t.rows = append(t.rows, []string{r.id + " " + shortTitle(r.title), fmt.Sprint(r.steps), res, el})
	}
	var buf strings.Builder
	_ = t.write(&buf)
	for line := range strings.Lines(buf.String()) {
		d.printf("  %s", line)
	}
	d.printf("\n  total %s\n", total.Round(10*time.Millisecond))
}

// countList is "a ×2, b ×1", sorted.
func countList(m map[string]int) string {
	var out []string
	for k, n := range m {
		out = append(out, fmt.Sprintf("%s ×%d", k, n))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func shortTitle(t string) string {
	if i := strings.Index(t, ":"); i > 0 {
		return t[:i]
	}
	return t
}

// checkNoSecrets fails if any secret the demo handled reached its output.
func (d *scenarioDemo) checkNoSecrets() error {
	out := d.rec.String()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.secrets {
		if strings.Contains(out, s) {
			return errors.New("SECURITY: a secret value appeared in the demo's output")
		}
	}
	d.printf("  no secret value appeared in this output (%d secrets and tokens checked)\n", len(d.secrets))
	return nil
}
