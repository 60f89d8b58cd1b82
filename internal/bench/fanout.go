package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/uuid"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
	"github.com/tenantbridge/tenantbridge/internal/broker/fanout"
)

// Roles and queues of the fan-out benchmark.
const (
	roleBusDataSender   = "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39" // Azure Service Bus Data Sender
	roleBusDataReceiver = "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0" // Azure Service Bus Data Receiver
	fanoutCommandQueue  = "commands"
	fanoutStatusQueue   = "status"
	// DefaultSetupConcurrency is how many customer tenants are set up at once.
	DefaultSetupConcurrency = 32
)

// FleetOptions says how to build a fleet: a provider tenant with a
// multi-tenant application and Customers customer tenants that consented
// to it.
type FleetOptions struct {
	Server    azclient.OperatorCredential
	Customers int
	// SetupConcurrency bounds the customers set up at once; default 32.
	SetupConcurrency int
	// Name prefixes every tenant; a random bench name when empty.
	Name string
	Log  io.Writer
	// Progress, when set, is called after each customer is set up.
	Progress func(done, total int)
}

// Fleet is a provider and its consented customers, set up through the
// public APIs only: the operator API creates the tenants; the provider's
// administrator registers the multi-tenant application (Graph); each
// customer's administrator provisions its service principal (Graph, what
// admin consent does), creates a namespace with a command and a status
// queue, and grants the provider's service principal Azure Service Bus
// Data Sender on the command queue and Data Receiver on the status queue,
// and itself Data Owner on the namespace, for the simulated worker
// (Resource Manager).
type Fleet struct {
	b         *bench
	copts     policy.ClientOptions
	Authority string
	Provider  *azclient.Tenant
	AppID     string
	// AppSecret is the provider application's client secret: it never
	// leaves the provider.
	AppSecret string
	Customers []*FleetCustomer
}

// FleetCustomer is one customer tenant of a Fleet.
type FleetCustomer struct {
	*armAdmin
	fanout.Customer
	Tenant       *azclient.Tenant
	Admin        azcore.TokenCredential // the customer administrator's credential
	ProviderSP   string                 // the provider's service principal in this tenant
	Namespace    string                 // the namespace's resource id
	SenderRole   string                 // the Sender assignment's id
	ReceiverRole string                 // the Receiver assignment's id
}

// ARM sends one Resource Manager request as the customer's administrator.
func (c *FleetCustomer) ARM(ctx context.Context, method, path, apiVersion string, in, out any) (int, error) {
	return c.arm(ctx, method, path, apiVersion, in, out)
}

// RoleAssignmentAPIVersion is the api-version of role assignment requests.
const RoleAssignmentAPIVersion = armRoleAPIVersion

// Graph returns a Graph client as the customer's administrator.
func (c *FleetCustomer) Graph(f *Fleet) (*azclient.Graph, error) {
	return azclient.NewGraph(azclient.GraphEndpoint, c.Admin, &f.copts)
}

// ProviderCredential returns the provider application's credential in
// tenantID: its tokens are issued in that tenant.
func (f *Fleet) ProviderCredential(tenantID string) (azcore.TokenCredential, error) {
	return azclient.NewClientSecretCredential(f.Authority, tenantID, f.AppID, f.AppSecret, f.copts)
}

// List is the customers as the messenger sees them.
func (f *Fleet) List() []fanout.Customer {
	out := make([]fanout.Customer, len(f.Customers))
	for i, c := range f.Customers {
		out[i] = c.Customer
	}
	return out
}

// Transport returns a transport that reaches the server by Azure's names
// (trusting its CA), kept alive, with no response-header timeout shorter
// than a long-poll: what WebSockets carries AMQP over.
func (f *Fleet) Transport() (*http.Transport, error) {
	local, err := f.b.cred.Local()
	if err != nil {
		return nil, err
	}
	tr, err := local.Transport()
	if err != nil {
		return nil, err
	}
	tr.ResponseHeaderTimeout = 0
	tr.MaxIdleConns = 0
	tr.MaxIdleConnsPerHost = 64
	tr.IdleConnTimeout = 5 * time.Minute
	return tr, nil
}

// ClientOptions returns how the messenger and the workers reach the
// server's Service Bus: AMQP 1.0 over WebSockets through Transport when
// amqpAddr is empty (the HTTPS listener's wss://{ns}/$servicebus/websocket,
// what the CLI does), or AMQPS at amqpAddr (serve's --amqp-listen) with
// the namespace's name for TLS. It also names the route, for reports.
func (f *Fleet) ClientOptions(amqpAddr string) (fanout.ClientOptionsFunc, string, error) {
	tr, err := f.Transport()
	if err != nil {
		return nil, "", err
	}
	if amqpAddr == "" {
		return fanout.WebSockets(tr), "AMQP 1.0 over WebSockets (wss://NS.servicebus.windows.net/$servicebus/websocket), azservicebus", nil
	}
	return fanout.AMQPS(amqpAddr, tr.TLSClientConfig.RootCAs), "AMQP 1.0 over TLS to " + amqpAddr + ", azservicebus", nil
}

// NewFleet builds a fleet. On error, what was built is returned with it,
// for Close.
func NewFleet(ctx context.Context, opts FleetOptions) (*Fleet, error) {
	if opts.Customers < 1 {
		return nil, errors.New("a fleet needs at least one customer")
	}
	if opts.SetupConcurrency <= 0 {
		opts.SetupConcurrency = DefaultSetupConcurrency
	}
	b, err := openBench(TokenOptions{Server: opts.Server, Kinds: []Kind{KindSecret}, Concurrency: opts.SetupConcurrency, Log: opts.Log}.withDefaults())
	if err != nil {
		return nil, err
	}
	if t, ok := b.setupHTTP.Transport.(*http.Transport); ok {
		t.MaxIdleConns, t.MaxIdleConnsPerHost = 0, 2*opts.SetupConcurrency
	}
	f := &Fleet{b: b, Authority: b.authority, copts: policy.ClientOptions{Transport: b.setupHTTP}}
	name := opts.Name
	if name == "" {
		name = randomTenantName()
	}
	prov, _, err := b.createTenant(ctx, name+"p")
	if err != nil {
		return f, err
	}
	f.Provider = prov
	admin, err := f.admin(ctx, prov)
	if err != nil {
		return f, err
	}
	g, err := azclient.NewGraph(azclient.GraphEndpoint, admin.cred, &f.copts)
	if err != nil {
		return f, err
	}
	app, err := g.CreateApplication(ctx, azclient.Application{DisplayName: name + " fleet messenger", SignInAudience: "AzureADMultipleOrgs"})
	if err != nil {
		return f, fmt.Errorf("registering the provider's multi-tenant application: %s", azclient.Describe(err))
	}
	f.AppID = app.AppID
	pw, err := g.AddPassword(ctx, app.ID, azclient.PasswordCredential{DisplayName: "fanout", EndDateTime: time.Now().Add(24 * time.Hour)})
	if err != nil {
		return f, fmt.Errorf("adding the application's secret: %s", azclient.Describe(err))
	}
	f.AppSecret = pw.SecretText
	b.logf("Provider %s registered the multi-tenant application %s; setting up %d customer tenants, %d at a time...",
		prov.Name, app.AppID, opts.Customers, opts.SetupConcurrency)

	f.Customers = make([]*FleetCustomer, opts.Customers)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		errs     []error
		done     atomic.Int64
		next     atomic.Int64
		failedAt atomic.Bool
	)
	for range min(opts.SetupConcurrency, opts.Customers) {
		wg.Go(func() {
			for !failedAt.Load() && ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= opts.Customers {
					return
				}
				c, err := f.setupCustomer(ctx, fmt.Sprintf("%sc%04d", name, i))
				mu.Lock()
				f.Customers[i] = c
				if err != nil {
					errs = append(errs, fmt.Errorf("customer %d: %w", i, err))
					failedAt.Store(true)
				}
				mu.Unlock()
				if n := int(done.Add(1)); opts.Progress != nil {
					opts.Progress(n, opts.Customers)
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return f, err
	}
	if ctx.Err() != nil {
		return f, interrupted(ctx, ctx.Err())
	}
	return f, nil
}

// admin signs in as a tenant's administrator, sharing the setup transport.
func (f *Fleet) admin(ctx context.Context, ten *azclient.Tenant) (*armAdmin, error) {
	if ten.Admin == nil || ten.Admin.ClientID == "" || ten.Admin.ClientSecret == "" || ten.Admin.ServicePrincipalID == "" {
		return newARMAdmin(ctx, f.b, ten)
	}
	if ten.SubscriptionID == "" {
		return nil, errors.New("the operator API created the tenant without a subscription")
	}
	cred, err := azclient.NewClientSecretCredential(f.Authority, ten.TenantID, ten.Admin.ClientID, ten.Admin.ClientSecret, f.copts)
	if err != nil {
		return nil, err
	}
	return &armAdmin{bench: f.b, tenant: ten, cred: cred, principal: ten.Admin.ServicePrincipalID}, nil
}

// assignTo gives principal a role at scope as the administrator.
func (a *armAdmin) assignTo(ctx context.Context, principal, scope, role, roleName string) (string, error) {
	id := scope + "/providers/Microsoft.Authorization/roleAssignments/" + uuid.NewString()
	body := map[string]any{"properties": map[string]any{
		"roleDefinitionId": "/subscriptions/" + a.tenant.SubscriptionID + "/providers/Microsoft.Authorization/roleDefinitions/" + role,
		"principalId":      principal, "principalType": "ServicePrincipal"}}
	if _, err := a.arm(ctx, http.MethodPut, id, armRoleAPIVersion, body, nil); err != nil {
		return "", fmt.Errorf("assigning %s at %s: %w", roleName, scope, err)
	}
	return id, nil
}

// setupCustomer creates one customer tenant and does what its
// administrator does to onboard the provider.
func (f *Fleet) setupCustomer(ctx context.Context, name string) (*FleetCustomer, error) {
	ten, err := f.b.op.CreateTenant(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("creating tenant %s: %s", name, azclient.Describe(err))
	}
	a, err := f.admin(ctx, ten)
	if err != nil {
		return &FleetCustomer{Tenant: ten}, err
	}
	c := &FleetCustomer{armAdmin: a, Tenant: ten, Admin: a.cred}
	c.Customer.TenantID, c.Customer.Name = ten.TenantID, ten.Name
	g, err := azclient.NewGraph(azclient.GraphEndpoint, a.cred, &f.copts)
	if err != nil {
		return c, err
	}
	sp, err := g.CreateServicePrincipal(ctx, f.AppID)
	if err != nil {
		return c, fmt.Errorf("provisioning the provider's service principal in %s: %s", name, azclient.Describe(err))
	}
	c.ProviderSP = sp.ID
	rg := "/subscriptions/" + ten.SubscriptionID + "/resourceGroups/" + benchResourceGroup
	if _, err := a.arm(ctx, http.MethodPut, rg, armGroupAPIVersion, map[string]any{"location": benchVaultLocation}, nil); err != nil {
		return c, err
	}
	nsName := strings.ToLower(name) + "-sb"
	nsID := rg + "/providers/Microsoft.ServiceBus/namespaces/" + nsName
	if _, err := a.arm(ctx, http.MethodPut, nsID, armBusAPIVersion, map[string]any{"location": benchVaultLocation}, nil); err != nil {
		return c, err
	}
	c.Namespace = nsID
	for _, q := range []string{fanoutCommandQueue, fanoutStatusQueue} {
		if _, err := a.arm(ctx, http.MethodPut, nsID+"/queues/"+q, armBusAPIVersion, map[string]any{"properties": map[string]any{}}, nil); err != nil {
			return c, err
		}
	}
	base := "https://" + nsName + ".servicebus.windows.net/"
	c.CommandQueue, c.StatusQueue = base+fanoutCommandQueue, base+fanoutStatusQueue
	if c.SenderRole, err = a.assignTo(ctx, sp.ID, nsID+"/queues/"+fanoutCommandQueue, roleBusDataSender, "Azure Service Bus Data Sender"); err != nil {
		return c, err
	}
	if c.ReceiverRole, err = a.assignTo(ctx, sp.ID, nsID+"/queues/"+fanoutStatusQueue, roleBusDataReceiver, "Azure Service Bus Data Receiver"); err != nil {
		return c, err
	}
	if _, err := a.assignTo(ctx, a.principal, nsID, roleBusDataOwner, "Azure Service Bus Data Owner"); err != nil {
		return c, err
	}
	return c, nil
}

// Close deletes the fleet's namespaces and tenants, in parallel. It
// returns the tenants deleted and the first failure.
func (f *Fleet) Close(ctx context.Context) (deleted int, err error) {
	ctx = context.WithoutCancel(ctx)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		n     atomic.Int64
	)
	sem := make(chan struct{}, DefaultSetupConcurrency)
	for _, c := range f.Customers {
		if c == nil || c.Tenant == nil {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if c.Namespace != "" && c.armAdmin != nil {
				_, _ = c.arm(cctx, http.MethodDelete, c.Namespace, armBusAPIVersion, nil, nil)
			}
			if err := f.b.op.DeleteTenant(cctx, c.Tenant.TenantID); err != nil {
				mu.Lock()
				first = cmpOr(first, fmt.Errorf("deleting tenant %s: %s", c.Tenant.Name, azclient.Describe(err)))
				mu.Unlock()
				return
			}
			n.Add(1)
		})
	}
	wg.Wait()
	if f.Provider != nil {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		if err := f.b.op.DeleteTenant(cctx, f.Provider.TenantID); err != nil {
			first = cmpOr(first, fmt.Errorf("deleting tenant %s: %s", f.Provider.Name, azclient.Describe(err)))
		} else {
			n.Add(1)
		}
		cancel()
	}
	return int(n.Load()), first
}

// FanoutOptions says how to run the fan-out benchmark.
type FanoutOptions struct {
	Server    azclient.OperatorCredential
	Customers int
	// Rounds is how many commands go to every customer (after one
	// uncounted warm-up round); default 5.
	Rounds int
	// Workers bounds the messenger's concurrent sends; default 64.
	Workers          int
	SetupConcurrency int
	// RoundTimeout bounds the wait for a round's replies; default 60 s.
	RoundTimeout time.Duration
	// AMQPAddr, when set, is the server's AMQPS listener (serve's
	// --amqp-listen); otherwise AMQP goes over WebSockets on its HTTPS
	// listener.
	AMQPAddr string
	Keep     bool
	Log      io.Writer
}

// FanoutReport is the result of RunFanout.
type FanoutReport struct {
	Server, Provider, AppID string
	Customers, Rounds       int
	Workers, ClientCPUs     int
	Protocol                string
	Setup                   time.Duration
	// Warmup is the uncounted first round: every connection opened and
	// every link attached.
	Warmup time.Duration
	// Window is the measured rounds' time; Sent the commands sent (201),
	// Replies the replies matched to them; Missing the replies that did
	// not come within RoundTimeout.
	Window                 time.Duration
	Sent, Replies, Missing int
	SendErrors             map[string]int
	Throughput             float64 // replies per second over Window
	// RoundTrip is from the start of a command's send to its reply's
	// arrival at the provider; Send is the send alone.
	RoundTrip, Send Latency
	ClientCPU       time.Duration
	Cleanup         time.Duration
	TenantsDeleted  int
	CleanupError    string
	Notes           []string
	// The server's memory (GET /_operator/v1/stats) once the fleet is set
	// up, once every customer's connections and links are open (after the
	// warm-up round: what a fleet of waiting receivers costs), and after
	// the measured rounds; nil, with MemoryNote saying why, when the server
	// does not report it.
	MemoryAtRest, MemoryConnected, MemoryAfter *ServerMemory
	MemoryNote                                 string
}

// RunFanout builds a fleet (NewFleet), starts one simulated worker per
// customer (fanout.Worker with the customer administrator's credential)
// and the provider's messenger listening to every status queue, then sends
// Rounds "ping" commands to every customer, one round after the other, and
// measures each command → reply round trip.
func RunFanout(ctx context.Context, opts FanoutOptions) (rep FanoutReport, err error) {
	if opts.Rounds <= 0 {
		opts.Rounds = 5
	}
	if opts.Workers <= 0 {
		opts.Workers = fanout.DefaultWorkers
	}
	if opts.RoundTimeout <= 0 {
		opts.RoundTimeout = time.Minute
	}
	rep = FanoutReport{Customers: opts.Customers, Rounds: opts.Rounds, Workers: opts.Workers, ClientCPUs: runtime.GOMAXPROCS(0)}
	if err := checkOpenFiles(opts.Customers); err != nil {
		return rep, err
	}
	logf := func(format string, args ...any) {
		if opts.Log != nil {
			fmt.Fprintf(opts.Log, format+"\n", args...)
		}
	}
	t0 := time.Now()
	last := time.Now()
	f, err := NewFleet(ctx, FleetOptions{Server: opts.Server, Customers: opts.Customers, SetupConcurrency: opts.SetupConcurrency, Log: opts.Log,
		Progress: func(done, total int) {
			if done == total || time.Since(last) > 5*time.Second {
				last = time.Now()
				logf("fanout: %d/%d customers set up (%s)", done, total, time.Since(t0).Round(time.Millisecond))
			}
		}})
	rep.Setup = time.Since(t0)
	if f != nil {
		rep.Server = f.Authority
		if f.Provider != nil {
			rep.Provider, rep.AppID = f.Provider.Name, f.AppID
		}
		defer func() {
			if opts.Keep {
				logf("Keeping the fleet (provider %s).", rep.Provider)
				return
			}
			c0 := time.Now()
			logf("fanout: deleting %d tenants...", len(f.Customers)+1)
			var cerr error
			rep.TenantsDeleted, cerr = f.Close(ctx)
			rep.Cleanup = time.Since(c0)
			if cerr != nil {
				rep.CleanupError = cerr.Error()
			}
		}()
	}
	if err != nil {
		return rep, err
	}
	logf("fanout: setup of %d customers took %s", opts.Customers, rep.Setup.Round(time.Millisecond))
	err = f.measure(ctx, opts, &rep, logf)
	return rep, err
}

func (f *Fleet) measure(ctx context.Context, opts FanoutOptions, rep *FanoutReport, logf func(string, ...any)) error {
	rep.MemoryAtRest, rep.MemoryNote = f.serverMemory(ctx) // before any connection
	copts, route, err := f.ClientOptions(opts.AMQPAddr)
	if err != nil {
		return err
	}
	rep.Protocol = route
	m, err := fanout.New(fanout.Config{Credential: f.ProviderCredential, ClientOptions: copts, Workers: opts.Workers,
		MaxIdleClients: len(f.Customers)})
	if err != nil {
		return err
	}
	defer m.Close()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for _, c := range f.Customers {
		w, err := fanout.NewWorker(fanout.WorkerConfig{Credential: c.Admin, CommandQueue: c.CommandQueue, StatusQueue: c.StatusQueue, ClientOptions: copts})
		if err != nil {
			return err
		}
		wg.Go(func() { _ = w.Run(rctx) })
	}
	tr := fanout.NewTracker()
	var listenErrs atomic.Int64
	wg.Go(func() {
		_ = m.Listen(rctx, f.List(), tr.Deliver, func(fanout.Customer, error) { listenErrs.Add(1) })
	})
	customers := f.List()
	tids := make([]string, len(customers))
	for i, c := range customers {
		tids[i] = c.TenantID
	}
	var rtt, sendLat []time.Duration
	rep.SendErrors = map[string]int{}
	round := func(counted bool) error {
		id := uuid.NewString()
		call := tr.Expect(id, tids)
		defer tr.Done(id)
		results := m.Send(ctx, customers, fanout.Command{ID: id, Name: "ping", Body: []byte(`{}`)})
		started := make(map[string]time.Time, len(results))
		want := 0
		for _, r := range results {
			if r.Err != nil {
				if counted {
					rep.SendErrors[errorKey(r.Err)]++
				}
				continue
			}
			want++
			started[r.Customer.TenantID] = r.Started
			if counted {
				rep.Sent++
				sendLat = append(sendLat, r.Elapsed)
			}
		}
		timer := time.NewTimer(opts.RoundTimeout)
		defer timer.Stop()
		for got := 0; got < want; got++ {
			select {
			case r := <-call.Replies:
				if counted {
					rep.Replies++
					rtt = append(rtt, r.Received.Sub(started[r.Customer.TenantID]))
				}
			case <-timer.C:
				if counted {
					rep.Missing += want - got
				}
				return fmt.Errorf("%d of %d replies did not come within %s", want-got, want, opts.RoundTimeout)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	logf("fanout: warm-up round (tokens, connections, links)...")
	w0 := time.Now()
	if err := round(false); err != nil {
		return fmt.Errorf("warm-up round: %w", err)
	}
	rep.Warmup = time.Since(w0)
	rep.MemoryConnected, _ = f.serverMemory(ctx)
	logf("fanout: warm-up round took %s; measuring %d rounds to %d customers...", rep.Warmup.Round(time.Millisecond), opts.Rounds, len(customers))
	cpu0, cpuOK := processCPU()
	start := time.Now()
	var roundErr error
	for r := 0; r < opts.Rounds && ctx.Err() == nil; r++ {
		r0 := time.Now()
		if err := round(true); err != nil {
			roundErr = err
			logf("fanout: round %d: %s", r+1, err)
			continue
		}
		logf("fanout: round %d: %d replies in %s", r+1, len(customers), time.Since(r0).Round(time.Millisecond))
	}
	rep.Window = time.Since(start)
	if cpu1, ok := processCPU(); ok && cpuOK {
		rep.ClientCPU = cpu1 - cpu0
	}
	rep.MemoryAfter, _ = f.serverMemory(ctx)
	if rep.Window > 0 {
		rep.Throughput = float64(rep.Replies) / rep.Window.Seconds()
	}
	rep.RoundTrip, rep.Send = summarize(rtt), summarize(sendLat)
	if n := listenErrs.Load(); n > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d status-queue receive failures (retried)", n))
	}
	if u := tr.Unmatched(); u > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d replies matched no pending command", u))
	}
	rep.Notes = append(rep.Notes, "the client runs the provider and every customer's simulated worker: its CPU is both sides'")
	if len(rep.SendErrors) == 0 {
		rep.SendErrors = nil
	}
	return roundErr
}

// fanoutFilesPerCustomer is the connections the bench holds per customer:
// one AMQP connection per namespace on each side, the provider's
// messenger's and the customer's worker's (each a socket); and
// fanoutSpareFiles is room for everything else (the setup's HTTP/2
// connections, the operator's, the runtime's own).
const (
	fanoutFilesPerCustomer = 2
	fanoutSpareFiles       = 256
)

// checkOpenFiles refuses a fleet larger than this process can hold open,
// before any tenant is created: otherwise the run fails deep in the
// warm-up, after minutes of setup, with "too many open files". The server
// holds the same number of connections and needs the same room.
func checkOpenFiles(customers int) error {
	limit, ok := openFileLimit()
	need := uint64(customers)*fanoutFilesPerCustomer + fanoutSpareFiles
	if !ok || limit >= need {
		return nil
	}
	return fmt.Errorf("%d customers need about %d open files (%d connections per customer and room for the rest), and this process may open %d (ulimit -n); raise the limit for the bench and the server, or use at most %d customers",
		customers, need, fanoutFilesPerCustomer, limit, (max(limit, fanoutSpareFiles)-fanoutSpareFiles)/fanoutFilesPerCustomer)
}

// serverMemory is the server's memory, read with a deadline of its own
// (the fleet's setup transport may be busy); nil and a note when the
// server does not report it.
func (f *Fleet) serverMemory(ctx context.Context) (*ServerMemory, string) {
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return f.b.serverMemory(mctx)
}

// errorKey groups an error for the report.
func errorKey(err error) string {
	var fe *fanout.Error
	if errors.As(err, &fe) {
		if fe.Code == "" {
			return fe.Op + " refused by the token service"
		}
		return fmt.Sprintf("%s %s", fe.Op, fe.Code)
	}
	return oneLine(err.Error())
}

// MarshalJSON writes the report with durations in milliseconds.
func (r FanoutReport) MarshalJSON() ([]byte, error) {
	type alias struct {
		Server, Provider, AppID, Protocol                   string
		Customers, Rounds, Workers, ClientCPUs              int
		SetupMs, WarmupMs, WindowMs, CleanupMs, ClientCPUMs float64
		Sent, Replies, Missing                              int
		SendErrors                                          map[string]int `json:",omitempty"`
		RepliesPerSecond                                    float64
		RoundTrip, Send                                     Latency
		TenantsDeleted                                      int
		CleanupError                                        string        `json:",omitempty"`
		Notes                                               []string      `json:",omitempty"`
		ServerMemoryAtRest                                  *ServerMemory `json:",omitempty"`
		ServerMemoryConnected                               *ServerMemory `json:",omitempty"`
		ServerMemoryAfter                                   *ServerMemory `json:",omitempty"`
		MemoryNote                                          string        `json:",omitempty"`
	}
	return json.Marshal(alias{Server: r.Server, Provider: r.Provider, AppID: r.AppID, Protocol: r.Protocol, Customers: r.Customers,
		Rounds: r.Rounds, Workers: r.Workers, ClientCPUs: r.ClientCPUs, SetupMs: ms(r.Setup), WarmupMs: ms(r.Warmup), WindowMs: ms(r.Window),
		CleanupMs: ms(r.Cleanup), ClientCPUMs: ms(r.ClientCPU), Sent: r.Sent, Replies: r.Replies, Missing: r.Missing,
		SendErrors: r.SendErrors, RepliesPerSecond: round1(r.Throughput), RoundTrip: r.RoundTrip, Send: r.Send,
		TenantsDeleted: r.TenantsDeleted, CleanupError: r.CleanupError, Notes: r.Notes,
		ServerMemoryAtRest: r.MemoryAtRest, ServerMemoryConnected: r.MemoryConnected, ServerMemoryAfter: r.MemoryAfter, MemoryNote: r.MemoryNote})
}

// PrintFanout writes the report as a table or as JSON.
func PrintFanout(w io.Writer, r FanoutReport, format string) error {
	return printAs(w, r, format, func() error {
		tw, line := newTable(w)
		proto := r.Protocol
		if proto == "" {
			proto = "no request sent"
		}
		line("server", fmt.Sprintf("%s (%s)", r.Server, proto))
		line("provider", fmt.Sprintf("%s, multi-tenant application %s", r.Provider, r.AppID))
		line("fleet", fmt.Sprintf("%d customer tenants, %d rounds, %d concurrent sends, client GOMAXPROCS %d", r.Customers, r.Rounds, r.Workers, r.ClientCPUs))
		line("setup", dur(r.Setup))
		line("warm-up", dur(r.Warmup)+" (connections opened, links attached)")
		if mem := fanoutMemory(r); mem != "" {
			line("server memory", mem)
		}
		cleanup := fmt.Sprintf("%d tenants deleted in %s", r.TenantsDeleted, dur(r.Cleanup))
		if r.CleanupError != "" {
			cleanup += " (" + r.CleanupError + ")"
		}
		line("cleanup", cleanup)
		line()
		line("REPLIES/S", "SENT", "REPLIES", "MISSING", "RTT P50", "RTT P90", "RTT P99", "RTT MAX", "SEND P99", "CLIENT CPU")
		lat, cpu := measuredCells(r.Replies, r.RoundTrip, r.ClientCPU, r.Window)
		line(append(append([]string{fmt.Sprintf("%.1f", r.Throughput), fmt.Sprint(r.Sent), fmt.Sprint(r.Replies), fmt.Sprint(r.Missing)}, lat...),
			dur(r.Send.P99), cpu)...)
		if err := tw.Flush(); err != nil {
			return err
		}
		var extra []string
		keys := make([]string, 0, len(r.SendErrors))
		for k := range r.SendErrors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			extra = append(extra, fmt.Sprintf("%d × send error %s", r.SendErrors[k], k))
		}
		printNotes(w, append(extra, r.Notes...))
		return nil
	})
}

// fanoutMemory is the report's server memory on one line, or its note.
func fanoutMemory(r FanoutReport) string {
	var parts []string
	for _, m := range []struct {
		label string
		m     *ServerMemory
	}{{"set up", r.MemoryAtRest}, {"fleet connected", r.MemoryConnected}, {"after the rounds", r.MemoryAfter}} {
		if m.m != nil {
			parts = append(parts, m.label+": "+memory(*m.m))
		}
	}
	if len(parts) == 0 {
		return r.MemoryNote
	}
	return strings.Join(parts, "; ")
}
