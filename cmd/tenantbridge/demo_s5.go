package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/broker/fanout"
)

func (d *scenarioDemo) runS5(ctx context.Context) error {
	pub := d.pub

	d.step("%s registers its fleet messenger, a multi-tenant application", pub.Name)
	app, err := d.registerMultiTenantApp(ctx, "Fabrikam Fleet", "https://fabrikam.example/fleet/onboarded", nil, true)
	if err != nil {
		return err
	}
	d.note("%q appId %s; its client secret stays with %s", app.DisplayName, app.AppID, pub.Name)

	d.step("Each customer's administrator consents (password + MFA)")
	sps := make([]string, len(d.cust))
	for i, a := range d.cust {
		sp, err := d.adminConsent(ctx, a, app)
		if err != nil {
			return fmt.Errorf("%s's consent: %w", a.Name, err)
		}
		sps[i] = sp.ID
	}

	d.step("Each customer owns a command and a status queue, and grants %s one data role on each", pub.Name)
	var customers []fanout.Customer
	type workerSetup struct {
		cred    azcore.TokenCredential
		command string
		status  string
	}
	var workers []workerSetup
	for i, a := range d.cust {
		rg, err := d.createGroup(ctx, a, "ops")
		if err != nil {
			return err
		}
		nsName := fmt.Sprintf("ops-%s-%d", d.w.suffix, i)
		ns := rg + "/providers/Microsoft.ServiceBus/namespaces/" + nsName
		if _, err := d.arm(ctx, a.cred, http.MethodPut, ns, demoBusAPIVersion, map[string]any{"location": demoLocation}, nil); err != nil {
			return fmt.Errorf("%s's namespace: %w", a.Name, err)
		}
		for _, q := range []string{"commands", "status"} {
			if _, err := d.arm(ctx, a.cred, http.MethodPut, ns+"/queues/"+q, demoBusAPIVersion, map[string]any{"properties": map[string]any{}}, nil); err != nil {
				return fmt.Errorf("%s's queue %s: %w", a.Name, q, err)
			}
		}
		if err := d.assign(ctx, a.cred, a.sub(), ns+"/queues/commands", roleBusSender, sps[i]); err != nil {
			return err
		}
		if err := d.assign(ctx, a.cred, a.sub(), ns+"/queues/status", roleBusReceiver, sps[i]); err != nil {
			return err
		}
		mi, miCred, err := d.workloadIdentity(ctx, a, "ops-worker")
		if err != nil {
			return err
		}
		if err := d.assign(ctx, a.cred, a.sub(), ns+"/queues/commands", roleBusReceiver, mi.PrincipalID); err != nil {
			return err
		}
		if err := d.assign(ctx, a.cred, a.sub(), ns+"/queues/status", roleBusSender, mi.PrincipalID); err != nil {
			return err
		}
		base := "https://" + nsName + ".servicebus.windows.net/"
		customers = append(customers, fanout.Customer{TenantID: a.TenantID, Name: a.Name, CommandQueue: base + "commands", StatusQueue: base + "status"})
		workers = append(workers, workerSetup{miCred, base + "commands", base + "status"})
		d.note("%-10s %s: %s → Data Sender on commands, Data Receiver on status; its worker identity the reverse",
			a.Name, nsName, d.name(sps[i]))
	}

	d.step("Each customer's worker starts, as its own managed identity")
	// Service Bus over AMQP 1.0 (azservicebus), over WebSockets on the
	// server's HTTPS listener, reached by the namespaces' Azure names.
	copts := fanout.WebSockets(d.w.tr)
	wctx, stop := context.WithCancel(ctx)
	var running sync.WaitGroup
	d.onClose(func() { stop(); running.Wait() }) // the workers close their connections
	for i, ws := range workers {
		w, err := fanout.NewWorker(fanout.WorkerConfig{Credential: ws.cred, CommandQueue: ws.command, StatusQueue: ws.status,
			ClientOptions: copts, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return err
		}
		running.Go(func() { _ = w.Run(wctx) })
		d.note("%-10s worker waits on %s over AMQP (identity ops-worker of %s)", d.cust[i].Name, lastSegments(ws.command, 2), d.cust[i].Name)
	}

	d.step("%s sends \"ping\" to every customer and collects every reply", pub.Name)
	m, err := fanout.New(fanout.Config{
		Credential: func(tenantID string) (azcore.TokenCredential, error) {
			return azclient.NewClientSecretCredential(d.w.authority, tenantID, app.AppID, app.secret, d.w.opts)
		},
		ClientOptions: copts, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	tracker := fanout.NewTracker()
	running.Go(func() { _ = m.Listen(wctx, customers, tracker.Deliver, nil); m.Close() })
	cmdID := "ping-" + randomHex(8)
	var tids []string
	for _, c := range customers {
		tids = append(tids, c.TenantID)
	}
	call := tracker.Expect(cmdID, tids)
	defer tracker.Done(cmdID)
	sent := time.Now()
	for _, r := range m.Send(ctx, customers, fanout.Command{ID: cmdID, Name: "ping", Body: []byte(`{}`)}) {
		if r.Err != nil {
			return fmt.Errorf("sending to %s: %w", r.Customer.Name, r.Err)
		}
	}
	d.note("sent %s to %d command queues over AMQP (MessageId %s:{tenant}, CorrelationId %s)", cmdID, len(customers), cmdID, cmdID)
	timeout := time.After(demoStepTimeout)
	for range customers {
		select {
		case rep := <-call.Replies:
			var body fanout.ReplyBody
			_ = json.Unmarshal(rep.Body, &body)
			if body.Status != "ok" {
				return fmt.Errorf("%s replied %s", rep.Customer.Name, strings.TrimSpace(string(rep.Body)))
			}
			res, _ := json.Marshal(body.Result)
			d.note("%-10s replied %q after %v: %s", rep.Customer.Name, body.Status, rep.Received.Sub(sent).Round(time.Millisecond), res)
		case <-timeout:
			return fmt.Errorf("no reply from %s after %v", strings.Join(tenantNames(d, tracker.Outstanding(cmdID)), ", "), demoStepTimeout)
		}
	}
	d.crossed(pub.Name+"'s messenger", "each customer's command queue; back from each status queue",
		pub.Name+"'s client secret, presented to each customer's token endpoint: one token per customer tenant",
		"each customer's consent and its two role assignments, one queue each")
	d.crossed("each customer's worker", "its own tenant's queues only",
		"its managed identity (no secret)", "its own tenant's role assignments")
	return nil
}

func tenantNames(d *scenarioDemo, ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = d.name(id)
	}
	return out
}
