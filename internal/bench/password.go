package bench

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

// RunPasswordGuess measures what a password-guessing burst costs the
// server: every wrong password is an argon2id hash (19 MiB for tens of
// milliseconds), so unbounded it grows the process by 19 MiB per request
// in flight and starves everything else of CPU. It creates a throwaway
// tenant with Users users (through Graph), then for Duration runs
// Concurrency goroutines sending password grants (ROPC, confidential,
// with the bench application's secret) with wrong passwords, round-robin
// over the users and never the same password twice, so that each is
// hashed until smart lockout locks its user; at the same time one
// goroutine sends client-credentials requests back to back, whose latency
// is what other clients see during the burst, and the server's resident
// memory is sampled every RSSInterval (GET /_operator/v1/stats), whose
// maximum is the reported peak.

// Defaults of PasswordGuessOptions.
const (
	DefaultGuessConcurrency = 64
	DefaultGuessUsers       = 256
	DefaultRSSInterval      = 100 * time.Millisecond
)

// PasswordGuessOptions says how to run the password-guess benchmark.
type PasswordGuessOptions struct {
	Server azclient.OperatorCredential
	// Concurrency is the number of goroutines guessing; 0 means
	// DefaultGuessConcurrency.
	Concurrency int
	// Users is how many users the guesses are spread over; 0 means
	// DefaultGuessUsers. Each locks after ten guesses, after which its
	// guesses no longer hash: more users keep the hashing up for longer.
	Users int
	// Duration is the measured window; 0 means DefaultDuration.
	Duration time.Duration
	// RSSInterval is how often the server's memory is sampled; 0 means
	// DefaultRSSInterval.
	RSSInterval time.Duration
	Keep        bool
	TenantName  string
	Log         io.Writer
}

// PasswordGuessReport is the result of RunPasswordGuess.
type PasswordGuessReport struct {
	Server      string
	Tenant      string
	TenantID    string
	Concurrency int
	Users       int
	Duration    time.Duration
	ClientCPUs  int
	Protocol    string
	// MemoryAtRest is the server's memory before the run; PeakRSSBytes the
	// largest resident size sampled during the window (RSSSamples samples).
	MemoryAtRest *ServerMemory
	MemoryNote   string
	PeakRSSBytes uint64
	RSSSamples   int
	// Guesses is how many password grants were answered in the window, by
	// answer ("AADSTS50126 (HTTP 400)": hashed and wrong; "AADSTS50053":
	// refused by smart lockout without hashing; "AADSTS90033 (HTTP 503)":
	// no hashing slot in time).
	Guesses     int
	GuessRate   float64
	GuessErrors map[string]int
	// Token is the client-credentials loop run alongside.
	Token         KindResult
	Interrupted   bool
	TenantDeleted bool
	CleanupError  string
	Notes         []string
}

// RunPasswordGuess runs the benchmark (see the package-level comment above
// the defaults).
func RunPasswordGuess(ctx context.Context, opts PasswordGuessOptions) (rep PasswordGuessReport, err error) {
	opts = opts.withDefaults()
	rep = PasswordGuessReport{Concurrency: opts.Concurrency, Users: opts.Users, Duration: opts.Duration, ClientCPUs: runtime.GOMAXPROCS(0)}
	if opts.Concurrency < 1 || opts.Concurrency > 4096 || opts.Users < 1 || opts.Users > 10000 || opts.Duration < 0 {
		return rep, fmt.Errorf("concurrency (1-4096), users (1-10000) and duration (positive) are out of range")
	}
	// One transport for both loads: a kept-alive connection per goroutine.
	b, err := openBench(TokenOptions{Server: opts.Server, Concurrency: opts.Concurrency + 1, Duration: opts.Duration, PresignRate: DefaultPresignRate, Log: opts.Log})
	if err != nil {
		return rep, err
	}
	rep.Server = b.authority
	rep.MemoryAtRest, rep.MemoryNote = b.serverMemory(ctx)
	ten, _, err := b.createTenant(ctx, opts.TenantName)
	if err != nil {
		return rep, err
	}
	rep.Tenant, rep.TenantID = ten.Name, ten.TenantID
	defer func() { rep.TenantDeleted, rep.CleanupError = b.releaseTenant(ctx, ten, opts.Keep) }()
	if err := b.setupTenant(ctx, ten); err != nil {
		return rep, interrupted(ctx, err)
	}
	rep.Token.Kind = KindSecret
	tokens, err := b.setupKind(ctx, KindSecret, &rep.Token)
	if err != nil {
		return rep, interrupted(ctx, err)
	}
	secret := tokens()
	body, _ := secret()
	clientSecret, _ := url.ParseQuery(string(body))
	users, err := b.createUsers(ctx, ten, opts.Users)
	if err != nil {
		return rep, interrupted(ctx, err)
	}
	guesses := guessBodies(b.app.AppID, clientSecret.Get("client_secret"), users)

	b.logf("Guessing passwords at concurrency %d over %d users for %s, with a client-credentials loop alongside...", opts.Concurrency, len(users), opts.Duration)
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var peak atomic.Uint64
	var samples atomic.Int64
	var sampler sync.WaitGroup
	sampler.Go(func() {
		t := time.NewTicker(opts.RSSInterval)
		defer t.Stop()
		for {
			mctx, cancel := context.WithTimeout(sampleCtx, 5*time.Second)
			m, _ := b.serverMemory(mctx)
			cancel()
			if m != nil {
				samples.Add(1)
				for old := peak.Load(); m.RSSBytes > old && !peak.CompareAndSwap(old, m.RSSBytes); old = peak.Load() {
				}
			}
			select {
			case <-sampleCtx.Done():
				return
			case <-t.C:
			}
		}
	})
	var guessPhase, tokenPhase phase
	var load sync.WaitGroup
	load.Go(func() { guessPhase = b.load.run(ctx, opts.Concurrency, opts.Duration, guesses, 256) })
	load.Go(func() {
		capHint := int(min(opts.Duration.Seconds()*5000, 1<<20)) + 256
		cpu0, cpuOK := processCPU()
		tokenPhase = b.load.run(ctx, 1, opts.Duration, tokens, capHint)
		if cpu1, ok := processCPU(); ok && cpuOK {
			rep.Token.ClientCPU = cpu1 - cpu0
		}
	})
	load.Wait()
	stopSampling()
	sampler.Wait()

	rep.PeakRSSBytes, rep.RSSSamples = peak.Load(), int(samples.Load())
	rep.Guesses = guessPhase.failed + len(guessPhase.samples)
	rep.GuessErrors = guessPhase.errors
	if len(guessPhase.samples) > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d wrong passwords were answered with a token", len(guessPhase.samples)))
	}
	if guessPhase.elapsed > 0 {
		rep.GuessRate = float64(rep.Guesses) / guessPhase.elapsed.Seconds()
	}
	t := &rep.Token
	t.Window, t.Tokens, t.Failed, t.Errors = tokenPhase.elapsed, len(tokenPhase.samples), tokenPhase.failed, tokenPhase.errors
	if tokenPhase.elapsed > 0 {
		t.Rate = float64(t.Tokens) / tokenPhase.elapsed.Seconds()
	}
	t.Latency = summarize(tokenPhase.samples)
	rep.Interrupted = guessPhase.interrupted || tokenPhase.interrupted
	if p := b.load.proto.Load(); p != nil {
		rep.Protocol = *p
	}
	b.logf("%d guesses (%.1f/s); %d tokens, p99 %s; peak RSS %s", rep.Guesses, rep.GuessRate, t.Tokens, dur(t.Latency.P99), mib(rep.PeakRSSBytes))
	return rep, nil
}

func (o PasswordGuessOptions) withDefaults() PasswordGuessOptions {
	if o.Concurrency == 0 {
		o.Concurrency = DefaultGuessConcurrency
	}
	if o.Users == 0 {
		o.Users = DefaultGuessUsers
	}
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.RSSInterval <= 0 {
		o.RSSInterval = DefaultRSSInterval
	}
	return o
}

// createUsers creates n users through Graph, eight at a time (each is a
// password hash on the server), and returns their sign-in names.
func (b *bench) createUsers(ctx context.Context, ten *azclient.Tenant, n int) ([]string, error) {
	b.logf("Creating %d users...", n)
	names := make([]string, n)
	errs := make(chan error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range next {
				enabled := true
				names[i] = fmt.Sprintf("guess%04d@%s", i, ten.Domain)
				_, err := b.admin.graph.CreateUser(ctx, azclient.User{DisplayName: "bench user " + strconv.Itoa(i), UserPrincipalName: names[i],
					MailNickname: fmt.Sprintf("guess%04d", i), AccountEnabled: &enabled,
					PasswordProfile: &azclient.PasswordProfile{Password: "Bench-" + strconv.Itoa(i) + "-Correct-Horse"}})
				if err != nil {
					errs <- fmt.Errorf("creating user %s through Graph: %s", names[i], azclient.Describe(err))
				}
			}
		})
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return names, ctx.Err()
}

// guessBodies makes password grants with wrong passwords: each worker
// goes round the users from its own starting point, with a password no
// request used before.
func guessBodies(clientID, clientSecret string, users []string) bodySource {
	var workers atomic.Int64
	prefix := url.Values{"grant_type": {"password"}, "client_id": {clientID}, "client_secret": {clientSecret},
		"scope": {azclient.GraphScope}}.Encode()
	return func() func() ([]byte, error) {
		w := int(workers.Add(1) - 1)
		i := 0
		buf := make([]byte, 0, len(prefix)+256)
		return func() ([]byte, error) {
			user := users[(w*7+i)%len(users)]
			buf = append(buf[:0], prefix...)
			buf = append(buf, "&username="...)
			buf = append(buf, url.QueryEscape(user)...)
			buf = fmt.Appendf(buf, "&password=Wrong-%d-%d", w, i)
			i++
			return buf, nil
		}
	}
}

// PrintPasswordGuess writes the report as a table or as JSON.
func PrintPasswordGuess(w io.Writer, r PasswordGuessReport, format string) error {
	return printAs(w, r, format, func() error {
		tw, line := newTable(w)
		head := runHead{Server: r.Server, Protocol: r.Protocol, Tenant: r.Tenant, TenantID: r.TenantID, CleanupError: r.CleanupError,
			TenantDeleted: r.TenantDeleted, Interrupted: r.Interrupted, Concurrency: r.Concurrency, ClientCPUs: r.ClientCPUs,
			Duration: r.Duration, MemoryAtRest: r.MemoryAtRest, MemoryNote: r.MemoryNote,
			Subject: []string{"users", strconv.Itoa(r.Users)}}
		head.write(line)
		line("peak RSS", fmt.Sprintf("%s (max of %d samples during the window)", mib(r.PeakRSSBytes), r.RSSSamples))
		line("guesses", fmt.Sprintf("%d (%.1f/s)", r.Guesses, r.GuessRate))
		for _, k := range sortedKeys(r.GuessErrors) {
			line("", fmt.Sprintf("%s: %d", k, r.GuessErrors[k]))
		}
		t := r.Token
		lat, cpu := measuredCells(t.Tokens, t.Latency, t.ClientCPU, t.Window)
		line("client_credentials", fmt.Sprintf("%d tokens (%.1f/s), %d errors, p50 %s p90 %s p99 %s max %s, client CPU %s",
			t.Tokens, t.Rate, t.Failed, lat[0], lat[1], lat[2], lat[3], cpu))
		for _, k := range sortedKeys(t.Errors) {
			line("", fmt.Sprintf("%s: %d", k, t.Errors[k]))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		printNotes(w, r.Notes)
		return nil
	})
}

// sortedKeys are m's keys in order, so that tables read the same every run.
func sortedKeys(m map[string]int) []string {
	return slices.Sorted(maps.Keys(m))
}
