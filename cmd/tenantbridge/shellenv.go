package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/azclient"
)

// shellEnv is a set of environment changes printed as POSIX shell, for
// eval "$(tenantbridge env ...)".
type shellEnv struct {
	comments []string
	set      [][2]string // in order
	unset    []string
}

func (e *shellEnv) comment(format string, args ...any) {
	e.comments = append(e.comments, fmt.Sprintf(format, args...))
}

func (e *shellEnv) export(name, value string) {
	for i, kv := range e.set {
		if kv[0] == name {
			e.set[i][1] = value
			return
		}
	}
	e.set = append(e.set, [2]string{name, value})
}

func (e *shellEnv) has(name string) bool {
	return slices.ContainsFunc(e.set, func(kv [2]string) bool { return kv[0] == name })
}

// unsetUnused marks for unsetting every one of names that is not exported.
func (e *shellEnv) unsetUnused(names []string) {
	for _, n := range names {
		if !e.has(n) && !slices.Contains(e.unset, n) {
			e.unset = append(e.unset, n)
		}
	}
}

func (e *shellEnv) write(w io.Writer) error {
	var b strings.Builder
	for _, c := range e.comments {
		b.WriteString("# " + strings.Join(strings.Fields(c), " ") + "\n")
	}
	for _, kv := range e.set {
		fmt.Fprintf(&b, "export %s=%s\n", kv[0], shellQuote(kv[1]))
	}
	if len(e.unset) > 0 {
		b.WriteString("unset " + strings.Join(e.unset, " ") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// shellQuote quotes s for POSIX sh: inside single quotes nothing is
// special, so each embedded single quote ends the quoted run, is escaped
// with a backslash, and starts a new run.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// divertingVars are the environment variables that would send
// DefaultAzureCredential somewhere other than the credential `env` sets up,
// or change how it reaches the token service: each credential's own inputs,
// the authority host and region overrides, the credential chain selector, and
// the other managed-identity sources (IDENTITY_SERVER_THUMBPRINT makes App
// Service Service Fabric; IMDS_ENDPOINT makes it Azure Arc). Whatever `env`
// does not set it unsets.
var divertingVars = []string{
	"AZURE_CLIENT_ID",
	"AZURE_CLIENT_SECRET",
	"AZURE_CLIENT_CERTIFICATE_PATH",
	"AZURE_CLIENT_CERTIFICATE_PASSWORD",
	"AZURE_CLIENT_SEND_CERTIFICATE_CHAIN",
	"AZURE_USERNAME",
	"AZURE_PASSWORD",
	"AZURE_FEDERATED_TOKEN_FILE",
	"AZURE_AUTHORITY_HOST",
	"AZURE_REGIONAL_AUTHORITY_NAME",
	"MSAL_FORCE_REGION",
	"AZURE_TOKEN_CREDENTIALS",
	"IDENTITY_ENDPOINT",
	"IDENTITY_HEADER",
	"IDENTITY_SERVER_THUMBPRINT",
	"MSI_ENDPOINT",
	"MSI_SECRET",
	"IMDS_ENDPOINT",
}

// proxyEnv routes a program's HTTPS to the Azure names through the
// tenantbridge proxy. Both spellings are set, since tools differ in which
// they read first. NO_PROXY is replaced by the loopback names and the
// server's own address (the managed-identity endpoint is reached directly):
// an inherited NO_PROXY naming an Azure domain would bypass the proxy.
func proxyEnv(e *shellEnv, cred azclient.OperatorCredential) {
	direct := []string{"localhost", "127.0.0.1", "::1"}
	if l, err := cred.Local(); err == nil {
		if host, _, err := net.SplitHostPort(l.Address); err == nil && !slices.Contains(direct, host) {
			direct = append(direct, host)
		}
	}
	noProxy := strings.Join(direct, ",")
	e.export("HTTPS_PROXY", cred.ProxyURL)
	e.export("https_proxy", cred.ProxyURL)
	e.export("NO_PROXY", noProxy)
	e.export("no_proxy", noProxy)
}

// systemCABundles are where operating systems keep their PEM bundle of
// trusted roots (the list Go's crypto/x509 reads on Linux, and the BSDs'
// and macOS's).
var systemCABundles = []string{
	"/etc/ssl/certs/ca-certificates.crt",                // Debian, Ubuntu, Gentoo, Arch
	"/etc/pki/tls/certs/ca-bundle.crt",                  // Fedora, RHEL 6
	"/etc/ssl/ca-bundle.pem",                            // openSUSE
	"/etc/pki/tls/cacert.pem",                           // OpenELEC
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7+
	"/etc/ssl/cert.pem",                                 // Alpine, macOS, OpenBSD
	"/usr/local/etc/ssl/cert.pem",                       // FreeBSD
	"/usr/local/share/certs/ca-root-nss.crt",            // FreeBSD
}

// caBundleFile is the bundle `env` writes into the data directory.
const caBundleFile = "ca-bundle.pem"

// writeCABundle writes DIR/ca-bundle.pem (0644, atomically): the system's
// trusted roots followed by tenantbridge's CA, so that a program given it as
// SSL_CERT_FILE trusts both the internet and tenantbridge. It returns the
// bundle's path and the system bundle used ("" if none was found: then the
// bundle holds only tenantbridge's CA).
func writeCABundle(dataDir, caFile string, candidates []string) (path, system string, err error) {
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return "", "", fmt.Errorf("tenantbridge CA: %w", err)
	}
	if !holdsCertificate(caPEM) {
		return "", "", fmt.Errorf("tenantbridge CA %s holds no PEM certificate", caFile)
	}
	var buf bytes.Buffer
	for _, c := range candidates {
		data, err := os.ReadFile(c)
		if err != nil || !holdsCertificate(data) {
			continue
		}
		system = c
		fmt.Fprintf(&buf, "# System roots, from %s\n", c)
		buf.Write(data)
		if !bytes.HasSuffix(data, []byte("\n")) {
			buf.WriteByte('\n')
		}
		break
	}
	fmt.Fprintf(&buf, "# tenantbridge's local CA, from %s (name-constrained to the hosts tenantbridge serves)\n", caFile)
	buf.Write(caPEM)
	path, err = filepath.Abs(filepath.Join(dataDir, caBundleFile))
	if err != nil {
		return "", "", err
	}
	return path, system, writeFileAtomic(path, buf.Bytes(), 0o644)
}

// holdsCertificate reports whether data has at least one PEM certificate
// that parses.
func holdsCertificate(data []byte) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if b.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(b.Bytes); err == nil {
				return true
			}
		}
	}
}

// writeFileAtomic writes data to path with mode: a temporary file in the
// same directory, synced, then renamed over path, so that a reader never
// sees half a file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// trustEnv writes the CA bundle and exports it as SSL_CERT_FILE, the file
// Go (and OpenSSL-based tools) read their roots from, and for Python and
// Node, with a note on
// stderr when no system bundle was found or the platform ignores it.
func (c *cli) trustEnv(e *shellEnv, caFile string) error {
	bundle, system, err := writeCABundle(c.dataDir, caFile, systemCABundles)
	if err != nil {
		return err
	}
	e.export("SSL_CERT_FILE", bundle)
	// Python's requests (and so az and the Azure SDK for Python) replaces
	// its roots with REQUESTS_CA_BUNDLE: the whole bundle. Node adds
	// NODE_EXTRA_CA_CERTS to its built-in roots: tenantbridge's CA alone.
	e.export("REQUESTS_CA_BUNDLE", bundle)
	if abs, err := filepath.Abs(caFile); err == nil {
		e.export("NODE_EXTRA_CA_CERTS", abs)
	}
	if system == "" {
		c.notef("note: no system CA bundle was found (looked in %s); %s holds only tenantbridge's CA, so the program will trust nothing else.",
			strings.Join(systemCABundles, ", "), bundle)
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "windows" {
		c.notef("note: on %s Go programs verify certificates with the system's own store and ignore SSL_CERT_FILE; add %s to the system's trusted roots.", runtime.GOOS, caFile)
	}
	return nil
}

// errNoProxy is what `env` says when the server has no proxy.
func errNoProxy(dataDir string) error {
	return errors.New("the tenantbridge server in " + dataDir + " runs without a proxy, and unmodified programs reach it only through one: restart it with tenantbridge serve --proxy-listen 127.0.0.1:8444")
}
