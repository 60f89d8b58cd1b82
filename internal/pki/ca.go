package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const (
	caCertFile = "ca.pem"
	caKeyFile  = "ca-key.pem"

	caValidity = 10 * 365 * 24 * time.Hour
	// backdate lets a certificate be valid on a client whose clock runs a
	// little behind ours (containers, VMs just resumed).
	backdate = time.Hour
)

// CA is the local certificate authority that clients trust so that they accept
// tenantbridge as login.microsoftonline.com and the rest. Because clients add
// it to their trust store, it is name-constrained (X.509 NameConstraints,
// critical): even if its key leaked, it could only vouch for the hosts
// tenantbridge serves, never for a bank or a package registry. Permitted DNS
// domains are login.microsoftonline.com, graph.microsoft.com,
// management.azure.com, vault.azure.net, servicebus.windows.net, the custom
// domain if any, localhost and the non-IP listen hosts; permitted IP ranges
// are 127.0.0.0/8, ::1/128 and each IP listen host as a /32 or /128. Its key
// is ECDSA P-256, it is valid for 10 years and can sign only end-entity
// certificates (MaxPathLen 0).
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer

	certFile string
}

// LoadOrCreateCA reads DIR/ca.pem and DIR/ca-key.pem (the key 0600, PKCS#8
// PEM); if both are missing it creates them. If only one exists, or they do not
// match, it fails rather than guess: replacing a CA silently would break every
// client that trusts the old one. If the existing CA's own constraints do not
// permit every name in hosts (say a custom domain was added), it fails naming
// the name, and says that moving DIR/ca.pem and DIR/ca-key.pem away creates a
// new CA, which clients must then trust again.
func LoadOrCreateCA(dir string, hosts Hosts) (*CA, error) {
	if err := hosts.validate(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	certPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	haveCert, err := exists(certPath)
	if err != nil {
		return nil, err
	}
	haveKey, err := exists(keyPath)
	if err != nil {
		return nil, err
	}
	switch {
	case !haveCert && !haveKey:
		if err := createCA(certPath, keyPath, hosts); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		// On fs.ErrExist another process created it first: load theirs.
	case haveCert && !haveKey:
		return nil, fmt.Errorf("pki: %s exists but %s is missing; restore the key, or move %s away to create a new CA (which clients must then trust again)", certPath, keyPath, certPath)
	case !haveCert && haveKey:
		return nil, fmt.Errorf("pki: %s exists but %s is missing; restore the certificate, or move %s away to create a new CA (which clients must then trust again)", keyPath, certPath, keyPath)
	}
	ca, err := loadCA(certPath, keyPath)
	if err != nil {
		return nil, err
	}
	if err := ca.permitsHosts(hosts); err != nil {
		return nil, err
	}
	return ca, nil
}

func createCA(certPath, keyPath string, hosts Hosts) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: generate CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		// SerialNumber nil: x509 draws a random RFC 5280 serial.
		Subject: pkix.Name{
			Organization: []string{"tenantbridge"},
			// A per-CA suffix tells several tenantbridge CAs apart in a
			// trust store.
			CommonName: "tenantbridge local CA " + strings.ToLower(rand.Text()[:8]),
		},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		// Critical, so a verifier that does not understand name
		// constraints rejects the CA instead of trusting it for everything.
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         hosts.permittedDNSDomains(),
		PermittedIPRanges:           hosts.permittedIPRanges(),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("pki: create CA certificate: %w", err)
	}
	keyPEM, err := marshalPrivateKey(key)
	if err != nil {
		return err
	}
	// Key first: if we stop between the two, the next start reports the
	// missing certificate instead of finding a certificate whose key is lost.
	if err := createFileAtomic(keyPath, keyPEM, privateFileMode); err != nil {
		return err
	}
	return createFileAtomic(certPath, certPEM(der), publicFileMode)
}

func loadCA(certPath, keyPath string) (*CA, error) {
	certData, err := readPublicFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("pki: read CA certificate: %w", err)
	}
	blocks, err := pemBlocks(certData, certPath)
	if err != nil {
		return nil, err
	}
	if len(blocks) != 1 || blocks[0].Type != "CERTIFICATE" {
		return nil, fmt.Errorf("pki: %s must hold exactly one CERTIFICATE block", certPath)
	}
	cert, err := x509.ParseCertificate(blocks[0].Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", certPath, err)
	}
	keyData, err := readPrivateFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("pki: read CA key: %w", err)
	}
	keyBlocks, err := pemBlocks(keyData, keyPath)
	if err != nil {
		return nil, err
	}
	if len(keyBlocks) != 1 {
		return nil, fmt.Errorf("pki: %s must hold exactly one PRIVATE KEY block", keyPath)
	}
	key, err := parsePrivateKey(keyBlocks[0], keyPath)
	if err != nil {
		return nil, err
	}
	if !samePublicKey(key, cert.PublicKey) {
		return nil, fmt.Errorf("pki: %s and %s do not match (the key is not the certificate's); restore the right pair, or move both away to create a new CA (which clients must then trust again)", keyPath, certPath)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, fmt.Errorf("pki: %s is not a CA certificate", certPath)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("pki: %s may not sign certificates (no certSign key usage)", certPath)
	}
	now := time.Now()
	if now.After(cert.NotAfter) {
		return nil, fmt.Errorf("pki: the CA in %s expired on %s; move %s and %s away to create a new CA (which clients must then trust again)", certPath, cert.NotAfter.Format(time.DateOnly), certPath, keyPath)
	}
	if now.Before(cert.NotBefore) {
		return nil, fmt.Errorf("pki: the CA in %s is not valid until %s; is the clock right?", certPath, cert.NotBefore.Format(time.RFC3339))
	}
	return &CA{Cert: cert, Key: key, certFile: certPath}, nil
}

// CertFile returns the absolute path of the CA certificate PEM that clients
// trust, e.g. as SSL_CERT_FILE.
func (ca *CA) CertFile() string { return ca.certFile }

// Pool returns a new certificate pool holding only this CA, so a client that
// uses it trusts tenantbridge and nothing else. Each call returns a fresh pool
// the caller may change.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// permitsHosts checks every name the server certificate will carry against the
// CA's own name constraints, so a mismatch is reported now, clearly, instead
// of as a TLS failure in some client later.
func (ca *CA) permitsHosts(h Hosts) error {
	for _, name := range h.DNSNames() {
		if !permitsDNS(ca.Cert, name) && !slices.Contains(LegacyLoginHosts, name) {
			return ca.notPermitted(fmt.Sprintf("DNS name %q", name))
		}
	}
	for _, ip := range h.ipAddrs() {
		if !permitsIP(ca.Cert, ip) {
			return ca.notPermitted(fmt.Sprintf("IP address %s", ip))
		}
	}
	return nil
}

// DNSNames are the DNS names of hosts that the server certificate
// carries: all of them, but the legacy login hosts that an older CA's
// constraints do not permit.
func (ca *CA) DNSNames(h Hosts) []string {
	return slices.DeleteFunc(h.DNSNames(), func(name string) bool {
		return slices.Contains(LegacyLoginHosts, name) && !permitsDNS(ca.Cert, name)
	})
}

func (ca *CA) notPermitted(what string) error {
	dir := filepath.Dir(ca.certFile)
	allowed := strings.Join(ca.Cert.PermittedDNSDomains, ", ")
	for _, r := range ca.Cert.PermittedIPRanges {
		allowed += ", " + r.String()
	}
	return fmt.Errorf("pki: the CA in %s does not permit %s (its name constraints allow only: %s); "+
		"to serve it, move %s and %s away and start again: a new CA will be created, which clients must then trust again",
		dir, what, strings.TrimPrefix(allowed, ", "),
		filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile))
}

// permitsDNS applies cert's DNS name constraints to name as RFC 5280 (and Go's
// verifier) do: a constraint permits itself and its subdomains, a leading "."
// only its subdomains, "" everything; exclusions win; no permitted list means
// no restriction.
func permitsDNS(cert *x509.Certificate, name string) bool {
	for _, c := range cert.ExcludedDNSDomains {
		if dnsMatch(c, name) || excludesWildcard(c, name) {
			return false
		}
	}
	if len(cert.PermittedDNSDomains) == 0 {
		return true
	}
	for _, c := range cert.PermittedDNSDomains {
		if dnsMatch(c, name) {
			return true
		}
	}
	return false
}

func dnsMatch(constraint, name string) bool {
	constraint, name = strings.ToLower(constraint), strings.ToLower(name)
	switch {
	case constraint == "":
		return true
	case strings.HasPrefix(constraint, "."):
		return strings.HasSuffix(name, constraint)
	default:
		return name == constraint || strings.HasSuffix(name, "."+constraint)
	}
}

// excludesWildcard: an excluded name such as "a.example.com" rules out the
// wildcard "*.example.com", which would cover it.
func excludesWildcard(constraint, name string) bool {
	rest, ok := strings.CutPrefix(name, "*.")
	if !ok {
		return false
	}
	_, parent, ok := strings.Cut(strings.TrimPrefix(strings.ToLower(constraint), "."), ".")
	return ok && parent == rest
}

func permitsIP(cert *x509.Certificate, a netip.Addr) bool {
	ip := net.IP(a.AsSlice())
	for _, r := range cert.ExcludedIPRanges {
		if r.Contains(ip) {
			return false
		}
	}
	if len(cert.PermittedIPRanges) == 0 {
		return true
	}
	for _, r := range cert.PermittedIPRanges {
		if r.Contains(ip) {
			return true
		}
	}
	return false
}
