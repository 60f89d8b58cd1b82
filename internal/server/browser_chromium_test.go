package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// This file holds what the browser tests need besides their scenarios: a
// Debian Chromium that reaches Azure's names through tenantbridge's proxy
// and trusts tenantbridge's server key, a loopback redirect URI, and the
// folder the screenshots go to.

// chromiumPath finds Debian's Chromium. Without one the browser tests
// skip, except in CI, which installs it (.ci/run) and so must run them.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "chromium"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed, and CI=true: .ci/run should have installed Debian's chromium package")
	}
	t.Skip("chromium is not installed (apt-get install chromium); skipping the browser test")
	return ""
}

// browserArtifacts is the folder of a browser test's screenshots: under
// $TENANTBRIDGE_TEST_ARTIFACTS when set, kept; otherwise a fresh
// tenantbridge-browser-* folder under the temporary directory, kept when
// the test fails and removed when it passes.
type browserArtifacts struct {
	t   *testing.T
	dir string
}

func newArtifacts(t *testing.T) *browserArtifacts {
	t.Helper()
	if root := os.Getenv("TENANTBRIDGE_TEST_ARTIFACTS"); root != "" {
		dir := filepath.Join(root, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Logf("browser artifacts: %s", dir)
		return &browserArtifacts{t: t, dir: dir}
	}
	dir, err := os.MkdirTemp(os.TempDir(), "tenantbridge-browser-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("browser artifacts: %s", dir)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("browser artifacts kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return &browserArtifacts{t: t, dir: dir}
}

func (a *browserArtifacts) write(name string, data []byte) {
	a.t.Helper()
	if err := os.WriteFile(filepath.Join(a.dir, name), data, 0o644); err != nil {
		a.t.Errorf("artifact %s: %v", name, err)
	}
}

// spkiHash is what --ignore-certificate-errors-spki-list takes: the
// base64 SHA-256 of a certificate's SubjectPublicKeyInfo.
func spkiHash(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// serverCertificate is the certificate the server presents for
// login.microsoftonline.com through its proxy, verified against the
// server's CA: the key the browser is told to trust is the one our own CA
// vouches for.
func (r *running) serverCertificate(t *testing.T) *x509.Certificate {
	t.Helper()
	resp, err := r.proxied(t, r.srv.ProxyURL()).Get("https://login.microsoftonline.com/common/discovery/instance?api-version=1.1&authorization_endpoint=https://login.microsoftonline.com/common/oauth2/v2.0/authorize")
	if err != nil {
		t.Fatalf("login.microsoftonline.com through the proxy: %v", err)
	}
	resp.Body.Close()
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		t.Fatal("no server certificate through the proxy")
	}
	return resp.TLS.PeerCertificates[0]
}

// chromium is one headless Chromium process for a test.
type chromium struct {
	ctx      context.Context // the browser's context; a tab is a child of it
	proxy    string
	bypass   string
	output   *browserOutput
	flags    []string // the flags we chose, for the log
	artifact *browserArtifacts
}

// browserOutput collects the browser's output.
type browserOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *browserOutput) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *browserOutput) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

// startChromium starts headless Chromium that goes through the server's
// proxy for every name but loopback, and that accepts the certificates
// whose keys are pinned (and no others).
func startChromium(t *testing.T, r *running, art *browserArtifacts, pins ...string) *chromium {
	t.Helper()
	path := chromiumPath(t)
	userData, err := os.MkdirTemp("", "tenantbridge-chromium-*")
	if err != nil {
		t.Fatal(err)
	}
	c := &chromium{proxy: r.srv.ProxyURL(), output: &browserOutput{}, artifact: art,
		// Chromium never sends loopback names to a proxy (its implicit
		// bypass rules); saying so keeps the redirect URI's localhost
		// direct whatever the defaults become.
		bypass: "localhost;127.0.0.1;[::1]"}
	chosen := [][2]string{
		{"proxy-server", c.proxy},
		{"proxy-bypass-list", c.bypass},
		{"ignore-certificate-errors-spki-list", strings.Join(pins, ",")},
		{"user-data-dir", userData},
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root in CI containers
		chromedp.WindowSize(1000, 860),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-pings", true),
		chromedp.CombinedOutput(c.output),
	)
	c.flags = []string{"--headless", "--no-sandbox", "--window-size=1000,860"}
	for _, f := range chosen {
		opts = append(opts, chromedp.Flag(f[0], f[1]))
		c.flags = append(c.flags, "--"+f[0]+"="+f[1])
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		os.RemoveAll(userData)
		if t.Failed() {
			art.write("chromium.log", c.output.Bytes())
		}
	})
	// The first Run starts the browser; it must have no deadline.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v\n%s", path, err, c.output.Bytes())
	}
	c.ctx = ctx
	version, _ := exec.Command(path, "--version").Output()
	t.Logf("%s; flags %s", strings.TrimSpace(string(version)), strings.Join(c.flags, " "))
	return c
}

// browserTab is one page in a browser context of its own (its own cookies, so
// its own sign-in session), going through the same proxy.
type browserTab struct {
	t   *testing.T
	ctx context.Context
	c   *chromium
}

func (c *chromium) newTab(t *testing.T) *browserTab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(c.ctx, chromedp.WithNewBrowserContext(func(p *target.CreateBrowserContextParams) {
		p.ProxyServer, p.ProxyBypassList = c.proxy, c.bypass
	}))
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("new tab: %v", err)
	}
	return &browserTab{t: t, ctx: ctx, c: c}
}

// do runs the steps with a deadline; on failure it saves what the page
// looked like, then fails the test.
func (b *browserTab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fail(what, err)
	}
}

func (b *browserTab) fail(what string, err error) {
	b.t.Helper()
	name := strings.NewReplacer(" ", "-", "/", "-").Replace(what)
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	png, serr := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if serr != nil {
		png, serr = chromedp.Run(ctx, chromedp.CaptureScreenshot())
	}
	if serr == nil {
		b.c.artifact.write("failed-"+name+".png", png)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	b.c.artifact.write("failed-"+name+".html", []byte(html))
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
	if len(text) > 1500 {
		text = text[:1500] + "…"
	}
	b.t.Fatalf("%s: %v (at %s); the page says:\n%s", what, err, loc, text)
}

// screenshot saves the whole page as a PNG artifact.
func (b *browserTab) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.fail("screenshot "+name, err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		b.t.Fatalf("screenshot %s is not a PNG", name)
	}
	b.c.artifact.write(name+".png", png)
}

// text returns the visible text of the element.
func (b *browserTab) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.fail("text of "+sel, err)
	}
	return s
}

// location is the page's URL.
func (b *browserTab) location() string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		b.fail("location", err)
	}
	return s
}

// expectHeading waits for the page whose h1 reads heading, and for sel on it.
func (b *browserTab) expectHeading(heading, sel string) {
	b.t.Helper()
	b.do("wait for "+heading, chromedp.WaitVisible(chromedp.CSS(sel)))
	if got := strings.TrimSpace(b.text("main h1")); got != heading {
		b.fail("page "+heading, fmt.Errorf("heading is %q, want %q", got, heading))
	}
}

// clientCallback is the client's redirect URI: an http://localhost listener
// that records the parameters each redirect brings.
type clientCallback struct {
	uri  string
	hits chan url.Values
}

func newCallback(t *testing.T) *clientCallback {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	cb := &clientCallback{uri: "http://localhost:" + port + "/callback", hits: make(chan url.Values, 8)}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		select {
		case cb.hits <- r.URL.Query():
		default:
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!doctype html><title>Client callback</title><h1>Back at the client</h1>")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return cb
}

// wait returns the parameters of the next redirect to the client.
func (cb *clientCallback) wait(b *browserTab) url.Values {
	b.t.Helper()
	select {
	case q := <-cb.hits:
		return q
	case <-time.After(15 * time.Second):
		b.fail("redirect to the client", errors.New("no request reached "+cb.uri))
		return nil
	}
}
