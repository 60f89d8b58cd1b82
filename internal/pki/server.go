package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path/filepath"
	"slices"
	"time"
)

const (
	serverCertFile = "server.pem"
	serverKeyFile  = "server-key.pem"

	serverValidity = 365 * 24 * time.Hour
	// renewBefore is how long before expiry the server certificate is
	// replaced at start, so a long-running server never serves an expired one
	// unless it runs for a month without a restart.
	renewBefore = 30 * 24 * time.Hour
)

// LoadOrCreateServerCert returns the TLS certificate the server presents for
// every host in hosts. It reads DIR/server.pem and DIR/server-key.pem (0600)
// and (re)issues them, signed by ca, when they are missing or unreadable, when
// their SANs differ from hosts, when they expire within 30 days, or when this
// CA did not sign them: the server certificate is disposable, the CA is what
// clients trust. The key is ECDSA P-256, the certificate valid for one year
// (never beyond the CA) for server authentication only. The result carries the
// chain, leaf then CA, so clients that trust only the CA verify it.
func LoadOrCreateServerCert(dir string, ca *CA, hosts Hosts) (tls.Certificate, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return tls.Certificate{}, errors.New("pki: LoadOrCreateServerCert needs a CA")
	}
	if err := hosts.validate(); err != nil {
		return tls.Certificate{}, err
	}
	// A certificate the CA may not issue would fail in every client; say
	// why now.
	if err := ca.permitsHosts(hosts); err != nil {
		return tls.Certificate{}, err
	}
	if err := ensureDir(dir); err != nil {
		return tls.Certificate{}, err
	}
	certPath, keyPath := filepath.Join(dir, serverCertFile), filepath.Join(dir, serverKeyFile)
	if c, err := loadServerCert(certPath, keyPath, ca, hosts); err != nil {
		return tls.Certificate{}, err
	} else if c != nil {
		return *c, nil
	}
	return issueServerCert(certPath, keyPath, ca, hosts)
}

// loadServerCert returns the certificate on disk if it is still right for
// hosts and ca, nil if it must be reissued, or an error if the files exist but
// cannot be read (a permission problem is not fixed by overwriting).
func loadServerCert(certPath, keyPath string, ca *CA, hosts Hosts) (*tls.Certificate, error) {
	certData, err := readPublicFile(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("pki: read server certificate: %w", err)
	}
	keyData, err := readPrivateFile(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("pki: read server key: %w", err)
	}
	blocks, err := pemBlocks(certData, certPath)
	if err != nil || blocks[0].Type != "CERTIFICATE" {
		return nil, nil
	}
	leaf, err := x509.ParseCertificate(blocks[0].Bytes)
	if err != nil {
		return nil, nil
	}
	keyBlocks, err := pemBlocks(keyData, keyPath)
	if err != nil || len(keyBlocks) != 1 {
		return nil, nil
	}
	key, err := parsePrivateKey(keyBlocks[0], keyPath)
	if err != nil || !samePublicKey(key, leaf.PublicKey) {
		return nil, nil
	}
	if !serverCertFits(leaf, ca, hosts, time.Now()) {
		return nil, nil
	}
	return &tls.Certificate{
		Certificate: [][]byte{leaf.Raw, ca.Cert.Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}, nil
}

// serverCertFits reports whether leaf can keep serving: signed by ca (and
// valid under its constraints), for server auth, exactly hosts' names, and not
// expiring within renewBefore.
func serverCertFits(leaf *x509.Certificate, ca *CA, hosts Hosts, now time.Time) bool {
	if now.Before(leaf.NotBefore) || leaf.NotAfter.Sub(now) < renewBefore {
		return false
	}
	if err := leaf.CheckSignatureFrom(ca.Cert); err != nil {
		return false
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:       ca.Pool(),
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return false
	}
	return sameSANs(leaf, ca, hosts)
}

func sameSANs(leaf *x509.Certificate, ca *CA, hosts Hosts) bool {
	want := ca.DNSNames(hosts)
	got := make([]string, len(leaf.DNSNames))
	for i, n := range leaf.DNSNames {
		got[i] = normalizeName(n)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		return false
	}
	wantIPs := hosts.ipAddrs()
	gotIPs := make([]netip.Addr, 0, len(leaf.IPAddresses))
	for _, ip := range leaf.IPAddresses {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			return false
		}
		gotIPs = append(gotIPs, a.Unmap())
	}
	slices.SortFunc(wantIPs, netip.Addr.Compare)
	slices.SortFunc(gotIPs, netip.Addr.Compare)
	return slices.Equal(wantIPs, gotIPs)
}

func issueServerCert(certPath, keyPath string, ca *CA, hosts Hosts) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: generate server key: %w", err)
	}
	now := time.Now()
	notAfter := now.Add(serverValidity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		Subject: pkix.Name{
			Organization: []string{"tenantbridge"},
			// Not a host name: names are in the SANs, and some verifiers
			// would apply the CA's DNS constraints to a host-like CN.
			CommonName: "tenantbridge server",
		},
		DNSNames:              ca.DNSNames(hosts),
		IPAddresses:           hosts.IPs(),
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: issue server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: issue server certificate: %w", err)
	}
	// Check our own work with the same verifier clients use: a certificate
	// that does not verify must not be written, let alone served.
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:     ca.Pool(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: issued server certificate does not verify against the CA: %w", err)
	}
	keyPEM, err := marshalPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	// Key first: a crash in between leaves a pair that does not match, which
	// the next start reissues.
	if err := writeFileAtomic(keyPath, keyPEM, privateFileMode); err != nil {
		return tls.Certificate{}, err
	}
	chain := append(certPEM(der), certPEM(ca.Cert.Raw)...)
	if err := writeFileAtomic(certPath, chain, publicFileMode); err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{
		Certificate: [][]byte{der, ca.Cert.Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}, nil
}
