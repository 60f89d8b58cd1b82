package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

const customDomain = "tenantbridge.test"

func testHosts() Hosts {
	return Hosts{
		CustomDomain: customDomain,
		ListenHosts:  []string{"127.0.0.1", "localhost", "::1", "10.9.8.7", "devbox.lan", "[fd00::5]"},
	}
}

func newCA(t *testing.T, dir string, h Hosts) *CA {
	t.Helper()
	ca, err := LoadOrCreateCA(dir, h)
	if err != nil {
		t.Fatalf("LoadOrCreateCA: %v", err)
	}
	return ca
}

func TestHostsNames(t *testing.T) {
	h := Hosts{CustomDomain: " TenantBridge.Test. ", ListenHosts: []string{"127.0.0.1", "LOCALHOST", "0.0.0.0", "::", "[::1]", "", "myhost", "::ffff:10.1.2.3", "10.1.2.3"}}
	wantDNS := []string{
		"login.microsoftonline.com", "graph.microsoft.com", "management.azure.com", "*.vault.azure.net", "*.servicebus.windows.net",
		"login.windows.net", "sts.windows.net",
		"login.tenantbridge.test", "graph.tenantbridge.test", "management.tenantbridge.test", "*.vault.tenantbridge.test", "*.servicebus.tenantbridge.test",
		"localhost", "myhost",
	}
	if got := h.DNSNames(); !slices.Equal(got, wantDNS) {
		t.Errorf("DNSNames =\n %q\nwant\n %q", got, wantDNS)
	}
	var gotIPs []string
	for _, ip := range h.IPs() {
		gotIPs = append(gotIPs, ip.String())
	}
	if want := []string{"127.0.0.1", "::1", "10.1.2.3"}; !slices.Equal(gotIPs, want) {
		t.Errorf("IPs = %q, want %q", gotIPs, want)
	}
	if ip := h.IPs()[0]; len(ip) != net.IPv4len {
		t.Errorf("IPv4 SAN in %d-byte form, want 4", len(ip))
	}
	// No custom domain, no listen hosts: the Azure names, localhost and loopback.
	var empty Hosts
	if got := empty.DNSNames(); len(got) != 8 || got[7] != "localhost" {
		t.Errorf("empty Hosts DNSNames = %q", got)
	}
	if got := empty.IPs(); len(got) != 2 {
		t.Errorf("empty Hosts IPs = %v", got)
	}
}

func TestHostsValidate(t *testing.T) {
	for _, h := range []Hosts{
		{CustomDomain: "10.0.0.1"},
		{CustomDomain: "bad_domain.test"},
		{CustomDomain: "*.test"},
		{CustomDomain: "a..test"},
		{ListenHosts: []string{"127.0.0.1:8443"}},
		{ListenHosts: []string{"host with space"}},
	} {
		if _, err := LoadOrCreateCA(t.TempDir(), h); err == nil {
			t.Errorf("LoadOrCreateCA(%+v) succeeded, want an error", h)
		}
	}
}

// extension finds a certificate extension by OID.
func extension(c *x509.Certificate, oid asn1.ObjectIdentifier) (pkix.Extension, bool) {
	for _, e := range c.Extensions {
		if e.Id.Equal(oid) {
			return e, true
		}
	}
	return pkix.Extension{}, false
}

func TestCAIsNameConstrained(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, dir, testHosts())

	// Read what clients read: the file, not the struct.
	data, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if ca.CertFile() != filepath.Join(dir, "ca.pem") {
		t.Errorf("CertFile = %q", ca.CertFile())
	}
	blocks, err := pemBlocks(data, "ca.pem")
	if err != nil || len(blocks) != 1 {
		t.Fatalf("ca.pem: %d blocks, %v", len(blocks), err)
	}
	c, err := x509.ParseCertificate(blocks[0].Bytes)
	if err != nil {
		t.Fatal(err)
	}

	ext, ok := extension(c, asn1.ObjectIdentifier{2, 5, 29, 30})
	if !ok || !ext.Critical || !c.PermittedDNSDomainsCritical {
		t.Fatalf("NameConstraints extension present=%v critical=%v", ok, ext.Critical)
	}
	wantDNS := []string{"login.microsoftonline.com", "graph.microsoft.com", "management.azure.com", "vault.azure.net",
		"servicebus.windows.net", "login.windows.net", "sts.windows.net", customDomain, "localhost", "devbox.lan"}
	if !slices.Equal(c.PermittedDNSDomains, wantDNS) {
		t.Errorf("PermittedDNSDomains =\n %q\nwant\n %q", c.PermittedDNSDomains, wantDNS)
	}
	var gotIPs []string
	for _, r := range c.PermittedIPRanges {
		gotIPs = append(gotIPs, r.String())
	}
	if want := []string{"127.0.0.0/8", "::1/128", "10.9.8.7/32", "fd00::5/128"}; !slices.Equal(gotIPs, want) {
		t.Errorf("PermittedIPRanges = %q, want %q", gotIPs, want)
	}
	if len(c.ExcludedDNSDomains)+len(c.ExcludedIPRanges) != 0 {
		t.Errorf("unexpected exclusions")
	}

	if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("basic constraints: IsCA=%v valid=%v MaxPathLen=%d zero=%v", c.IsCA, c.BasicConstraintsValid, c.MaxPathLen, c.MaxPathLenZero)
	}
	if c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("KeyUsage = %v", c.KeyUsage)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", c.PublicKey)
	}
	if life := c.NotAfter.Sub(c.NotBefore); life < 10*365*24*time.Hour || life > 10*366*24*time.Hour {
		t.Errorf("CA validity %v, want 10 years", life)
	}
	if len(c.SubjectKeyId) == 0 {
		t.Error("CA has no subject key identifier")
	}
}

func TestServerCertVerifiesForEveryHost(t *testing.T) {
	dir := t.TempDir()
	h := testHosts()
	ca := newCA(t, dir, h)
	cert, err := LoadOrCreateServerCert(dir, ca, h)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.Certificate) != 2 || !bytes.Equal(cert.Certificate[1], ca.Cert.Raw) {
		t.Fatalf("chain has %d certificates, want leaf then CA", len(cert.Certificate))
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("server key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || leaf.IsCA {
		t.Errorf("ExtKeyUsage = %v IsCA=%v", leaf.ExtKeyUsage, leaf.IsCA)
	}
	if life := time.Until(leaf.NotAfter); life < 364*24*time.Hour || life > 366*24*time.Hour {
		t.Errorf("server certificate valid for %v more, want a year", life)
	}

	for _, name := range []string{
		"login.microsoftonline.com", "graph.microsoft.com", "management.azure.com",
		"myvault.vault.azure.net", "ns1.servicebus.windows.net",
		"login." + customDomain, "graph." + customDomain, "management." + customDomain,
		"kv1.vault." + customDomain, "ns1.servicebus." + customDomain,
		"127.0.0.1", "::1", "localhost", "10.9.8.7", "devbox.lan", "fd00::5",
	} {
		if _, err := leaf.Verify(x509.VerifyOptions{
			DNSName:   name,
			Roots:     ca.Pool(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}); err != nil {
			t.Errorf("Verify(%s): %v", name, err)
		}
	}
	// Names the certificate does not carry must not verify.
	for _, name := range []string{
		"evil.example.com", "a.b.vault.azure.net", "vault.azure.net", "login.microsoftonline.com.evil.com",
		"login.other.test", "127.0.0.2", "8.8.8.8",
	} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: ca.Pool()}); err == nil {
			t.Errorf("Verify(%s) succeeded, want failure", name)
		}
	}
}

// signLeaf issues a leaf with the CA key directly, bypassing our checks, as an
// attacker holding the key would.
func signLeaf(t *testing.T, ca *CA, dns []string, ips []net.IP) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "leaf"},
		DNSNames:    dns,
		IPAddresses: ips,
		NotBefore:   time.Now().Add(-time.Minute),
		NotAfter:    time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCAConstraintsRejectForeignLeaf(t *testing.T) {
	ca := newCA(t, t.TempDir(), testHosts())

	// Control: the same recipe for a permitted name verifies, so the failures
	// below are the constraints at work, not a broken test leaf.
	ok := signLeaf(t, ca, []string{"x.vault.azure.net"}, nil)
	if _, err := ok.Verify(x509.VerifyOptions{DNSName: "x.vault.azure.net", Roots: ca.Pool()}); err != nil {
		t.Fatalf("control leaf does not verify: %v", err)
	}

	for _, tc := range []struct {
		name string
		dns  []string
		ips  []net.IP
		host string
	}{
		{"evil.example.com", []string{"evil.example.com"}, nil, "evil.example.com"},
		{"sibling of a permitted host", []string{"evil.microsoftonline.com"}, nil, "evil.microsoftonline.com"},
		{"parent of a permitted domain", []string{"azure.net"}, nil, "azure.net"},
		{"suffix trick", []string{"login.microsoftonline.com.evil.com"}, nil, "login.microsoftonline.com.evil.com"},
		{"label trick", []string{"evilvault.azure.net"}, nil, "evilvault.azure.net"},
		{"smuggled with a permitted name", []string{"login.microsoftonline.com", "evil.example.com"}, nil, "login.microsoftonline.com"},
		{"public IP", nil, []net.IP{net.ParseIP("8.8.8.8").To4()}, "8.8.8.8"},
		{"IPv6", nil, []net.IP{net.ParseIP("2001:db8::1")}, "2001:db8::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaf := signLeaf(t, ca, tc.dns, tc.ips)
			_, err := leaf.Verify(x509.VerifyOptions{DNSName: tc.host, Roots: ca.Pool()})
			var cie x509.CertificateInvalidError
			if !errors.As(err, &cie) || cie.Reason != x509.CANotAuthorizedForThisName {
				t.Fatalf("Verify: %v, want a name constraints violation", err)
			}
		})
	}
}

// TestPermitsMatchesVerifier cross-checks our own reading of the CA's
// constraints (used for the clear error at start) against Go's verifier.
func TestPermitsMatchesVerifier(t *testing.T) {
	ca := newCA(t, t.TempDir(), testHosts())
	for _, name := range []string{
		"login.microsoftonline.com", "LOGIN.microsoftonline.com", "x.login.microsoftonline.com", "microsoftonline.com",
		"*.vault.azure.net", "vault.azure.net", "evilvault.azure.net", "*.azure.net",
		"login.tenantbridge.test", "tenantbridge.test", "*.vault.tenantbridge.test", "xtenantbridge.test",
		"localhost", "a.localhost", "devbox.lan", "other.lan", "example.com",
	} {
		leaf := signLeaf(t, ca, []string{name}, nil)
		_, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool()})
		if got, want := permitsDNS(ca.Cert, name), err == nil; got != want {
			t.Errorf("permitsDNS(%q) = %v, verifier says %v (%v)", name, got, want, err)
		}
	}
	for _, s := range []string{"127.0.0.1", "127.1.2.3", "::1", "10.9.8.7", "10.9.8.8", "fd00::5", "fd00::6", "8.8.8.8"} {
		a := netip.MustParseAddr(s)
		leaf := signLeaf(t, ca, nil, []net.IP{net.IP(a.AsSlice())})
		_, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool()})
		if got, want := permitsIP(ca.Cert, a), err == nil; got != want {
			t.Errorf("permitsIP(%s) = %v, verifier says %v (%v)", s, got, want, err)
		}
	}
}

func TestTLSHandshake(t *testing.T) {
	dir := t.TempDir()
	h := testHosts()
	ca := newCA(t, dir, h)
	cert, err := LoadOrCreateServerCert(dir, ca, h)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				io.WriteString(c, "hello")
			}()
		}
	}()

	for _, serverName := range []string{"graph.microsoft.com", "myvault.vault.azure.net", "login." + customDomain, "127.0.0.1", ""} {
		t.Run("ServerName="+serverName, func(t *testing.T) {
			conf := &tls.Config{RootCAs: ca.Pool(), ServerName: serverName}
			if serverName == "" {
				conf.ServerName = "127.0.0.1" // dialing the bare listener by IP
			}
			c, err := tls.Dial("tcp", ln.Addr().String(), conf)
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer c.Close()
			if n := len(c.ConnectionState().PeerCertificates); n != 2 {
				t.Errorf("server sent %d certificates, want leaf and CA", n)
			}
			got, err := io.ReadAll(c)
			if err != nil || string(got) != "hello" {
				t.Errorf("read %q, %v", got, err)
			}
		})
	}

	// A client that trusts only the system roots, or names a host we do not
	// serve, must fail.
	if c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "evil.example.com"}); err == nil {
		c.Close()
		t.Error("handshake for evil.example.com succeeded")
	}
	if c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "graph.microsoft.com"}); err == nil {
		c.Close()
		t.Error("handshake without trusting the CA succeeded")
	}
}

func TestReloadReusesState(t *testing.T) {
	dir := t.TempDir()
	h := testHosts()
	ca1 := newCA(t, dir, h)
	srv1, err := LoadOrCreateServerCert(dir, ca1, h)
	if err != nil {
		t.Fatal(err)
	}
	ks1, err := LoadOrCreateKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := LoadOrCreateSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}

	ca2 := newCA(t, dir, h)
	if ca1.Cert.SerialNumber.Cmp(ca2.Cert.SerialNumber) != 0 || !bytes.Equal(ca1.Cert.Raw, ca2.Cert.Raw) {
		t.Error("CA was recreated on reload")
	}
	if !samePublicKey(ca2.Key, ca1.Cert.PublicKey) {
		t.Error("CA key changed on reload")
	}
	// A subset of the hosts is still permitted by the same CA.
	if _, err := LoadOrCreateCA(dir, Hosts{}); err != nil {
		t.Errorf("reload with fewer hosts: %v", err)
	}
	srv2, err := LoadOrCreateServerCert(dir, ca2, h)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(srv1.Certificate[0], srv2.Certificate[0]) {
		t.Error("server certificate reissued although nothing changed")
	}
	ks2, err := LoadOrCreateKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ks1.Current().KeyID != ks2.Current().KeyID || len(ks2.Published()) != 1 {
		t.Errorf("signing key changed on reload: %s -> %s (%d keys)", ks1.Current().KeyID, ks2.Current().KeyID, len(ks2.Published()))
	}
	if !ks1.Current().Key.Equal(ks2.Current().Key) || !ks1.Current().Activates.Equal(ks2.Current().Activates) {
		t.Error("reloaded signing key differs")
	}
	sec2, err := LoadOrCreateSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sec1.HashKey, sec2.HashKey) || !bytes.Equal(sec1.KEK, sec2.KEK) {
		t.Error("secrets changed on reload")
	}
}

func serial(t *testing.T, c tls.Certificate) string {
	t.Helper()
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber.String()
}

func TestServerCertReissued(t *testing.T) {
	dir := t.TempDir()
	h := testHosts()
	ca := newCA(t, dir, h)
	first, err := LoadOrCreateServerCert(dir, ca, h)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("hosts added", func(t *testing.T) {
		h2 := h
		h2.ListenHosts = append(slices.Clone(h.ListenHosts), "127.0.0.2")
		c, err := LoadOrCreateServerCert(dir, ca, h2)
		if err != nil {
			t.Fatal(err)
		}
		if serial(t, c) == serial(t, first) {
			t.Fatal("not reissued after adding a listen host")
		}
		if !slices.ContainsFunc(c.Leaf.IPAddresses, func(ip net.IP) bool { return ip.Equal(net.ParseIP("127.0.0.2")) }) {
			t.Errorf("new certificate lacks 127.0.0.2: %v", c.Leaf.IPAddresses)
		}
		// And on disk: a reload keeps it.
		again, err := LoadOrCreateServerCert(dir, ca, h2)
		if err != nil {
			t.Fatal(err)
		}
		if serial(t, again) != serial(t, c) {
			t.Error("reissued again without a change")
		}
	})

	t.Run("hosts removed", func(t *testing.T) {
		before, err := LoadOrCreateServerCert(dir, ca, h)
		if err != nil {
			t.Fatal(err)
		}
		h3 := Hosts{ListenHosts: []string{"127.0.0.1"}}
		c, err := LoadOrCreateServerCert(dir, ca, h3)
		if err != nil {
			t.Fatal(err)
		}
		if serial(t, c) == serial(t, before) {
			t.Fatal("not reissued after removing the custom domain")
		}
		if slices.Contains(c.Leaf.DNSNames, "login."+customDomain) {
			t.Error("custom domain still in the certificate")
		}
	})

	t.Run("expiring", func(t *testing.T) {
		before, err := LoadOrCreateServerCert(dir, ca, h)
		if err != nil {
			t.Fatal(err)
		}
		// Replace it with a certificate for the right names that expires in
		// 10 days.
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			DNSNames: h.DNSNames(), IPAddresses: h.IPs(),
			NotBefore: time.Now().Add(-300 * 24 * time.Hour), NotAfter: time.Now().Add(10 * 24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
		if err != nil {
			t.Fatal(err)
		}
		writeServerFiles(t, dir, der, key)
		c, err := LoadOrCreateServerCert(dir, ca, h)
		if err != nil {
			t.Fatal(err)
		}
		if c.Leaf.NotAfter.Before(time.Now().Add(300*24*time.Hour)) || serial(t, c) == serial(t, before) {
			t.Errorf("expiring certificate not replaced: NotAfter %v", c.Leaf.NotAfter)
		}
	})

	t.Run("other CA", func(t *testing.T) {
		before, err := LoadOrCreateServerCert(dir, ca, h)
		if err != nil {
			t.Fatal(err)
		}
		other := newCA(t, t.TempDir(), h)
		c, err := LoadOrCreateServerCert(dir, other, h)
		if err != nil {
			t.Fatal(err)
		}
		if serial(t, c) == serial(t, before) {
			t.Fatal("certificate from another CA kept")
		}
		if err := c.Leaf.CheckSignatureFrom(other.Cert); err != nil {
			t.Errorf("new certificate not signed by the new CA: %v", err)
		}
		if !bytes.Equal(c.Certificate[1], other.Cert.Raw) {
			t.Error("chain does not end in the new CA")
		}
	})

	t.Run("key lost", func(t *testing.T) {
		before, err := LoadOrCreateServerCert(dir, ca, h)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(dir, "server-key.pem")); err != nil {
			t.Fatal(err)
		}
		c, err := LoadOrCreateServerCert(dir, ca, h)
		if err != nil {
			t.Fatal(err)
		}
		if serial(t, c) == serial(t, before) {
			t.Fatal("certificate kept without its key")
		}
	})

	t.Run("garbage", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(dir, "server.pem"), []byte("not pem"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateServerCert(dir, ca, h); err != nil {
			t.Fatalf("corrupt server.pem not replaced: %v", err)
		}
	})
}

func writeServerFiles(t *testing.T, dir string, der []byte, key *ecdsa.PrivateKey) {
	t.Helper()
	keyPEM, err := marshalPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "server-key.pem"), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "server.pem"), certPEM(der), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCARefusesNewNames(t *testing.T) {
	dir := t.TempDir()
	newCA(t, dir, Hosts{CustomDomain: "a.test", ListenHosts: []string{"127.0.0.1"}})

	for _, tc := range []struct {
		hosts Hosts
		name  string
	}{
		{Hosts{CustomDomain: "b.test"}, `"login.b.test"`},
		{Hosts{CustomDomain: "a.test", ListenHosts: []string{"devbox.lan"}}, `"devbox.lan"`},
		{Hosts{ListenHosts: []string{"10.0.0.1"}}, "10.0.0.1"},
	} {
		_, err := LoadOrCreateCA(dir, tc.hosts)
		if err == nil {
			t.Errorf("LoadOrCreateCA(%+v) succeeded, want an error", tc.hosts)
			continue
		}
		msg := err.Error()
		for _, want := range []string{tc.name, "not permit", filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem"), "trust"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not mention %q", msg, want)
			}
		}
		// The server certificate refuses the same hosts with the same error.
		ca, err := LoadOrCreateCA(dir, Hosts{CustomDomain: "a.test"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateServerCert(dir, ca, tc.hosts); err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("LoadOrCreateServerCert(%+v): %v", tc.hosts, err)
		}
	}
	// Subdomains of the custom domain and other loopback addresses stay permitted.
	if _, err := LoadOrCreateCA(dir, Hosts{CustomDomain: "x.a.test", ListenHosts: []string{"127.0.0.5"}}); err != nil {
		t.Errorf("permitted hosts refused: %v", err)
	}
}

func TestCAFileProblems(t *testing.T) {
	h := testHosts()
	t.Run("only certificate", func(t *testing.T) {
		dir := t.TempDir()
		newCA(t, dir, h)
		os.Remove(filepath.Join(dir, "ca-key.pem"))
		_, err := LoadOrCreateCA(dir, h)
		if err == nil || !strings.Contains(err.Error(), "ca-key.pem") || !strings.Contains(err.Error(), "missing") {
			t.Fatalf("err = %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "ca-key.pem")); err == nil {
			t.Error("a new key was created next to the old certificate")
		}
	})
	t.Run("only key", func(t *testing.T) {
		dir := t.TempDir()
		newCA(t, dir, h)
		os.Remove(filepath.Join(dir, "ca.pem"))
		_, err := LoadOrCreateCA(dir, h)
		if err == nil || !strings.Contains(err.Error(), "ca.pem") || !strings.Contains(err.Error(), "missing") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("mismatch", func(t *testing.T) {
		dir, other := t.TempDir(), t.TempDir()
		newCA(t, dir, h)
		newCA(t, other, h)
		key, err := os.ReadFile(filepath.Join(other, "ca-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "ca-key.pem"), key, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err = LoadOrCreateCA(dir, h)
		if err == nil || !strings.Contains(err.Error(), "do not match") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("corrupt", func(t *testing.T) {
		dir := t.TempDir()
		newCA(t, dir, h)
		if err := os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("garbage"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateCA(dir, h); err == nil {
			t.Fatal("corrupt ca.pem accepted")
		}
	})
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestFileModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("POSIX modes")
	}
	dir := filepath.Join(t.TempDir(), "data")
	h := testHosts()
	ca := newCA(t, dir, h)
	if _, err := LoadOrCreateServerCert(dir, ca, h); err != nil {
		t.Fatal(err)
	}
	ks, err := LoadOrCreateKeySet(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateSecrets(dir); err != nil {
		t.Fatal(err)
	}
	signingFile := filepath.Join(dir, "signing", ks.Current().KeyID+".pem")
	want := map[string]os.FileMode{
		dir:                                           0o700,
		filepath.Join(dir, "ca.pem"):                  0o644,
		filepath.Join(dir, "ca-key.pem"):              0o600,
		filepath.Join(dir, "server.pem"):              0o644,
		filepath.Join(dir, "server-key.pem"):          0o600,
		filepath.Join(dir, "signing"):                 0o700,
		signingFile:                                   0o600,
		filepath.Join(dir, "keys"):                    0o700,
		filepath.Join(dir, "keys", "secret-hash.key"): 0o600,
		filepath.Join(dir, "keys", "kek.key"):         0o600,
	}
	for p, m := range want {
		if got := mode(t, p); got != m {
			t.Errorf("%s: mode %v, want %v", p, got, m)
		}
	}
	// No temporary files left behind.
	for _, d := range []string{dir, filepath.Join(dir, "signing"), filepath.Join(dir, "keys")} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tmp-") {
				t.Errorf("temporary file left: %s", filepath.Join(d, e.Name()))
			}
		}
	}

	// Loosened key files and directories are tightened on the next load.
	for _, p := range []string{filepath.Join(dir, "ca-key.pem"), filepath.Join(dir, "server-key.pem"), signingFile,
		filepath.Join(dir, "keys", "secret-hash.key"), filepath.Join(dir, "keys", "kek.key")} {
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{filepath.Join(dir, "signing"), filepath.Join(dir, "keys")} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ca = newCA(t, dir, h)
	if _, err := LoadOrCreateServerCert(dir, ca, h); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKeySet(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateSecrets(dir); err != nil {
		t.Fatal(err)
	}
	for p, m := range want {
		if got := mode(t, p); got != m {
			t.Errorf("after reload %s: mode %v, want %v", p, got, m)
		}
	}
}

// TestCAWithoutLegacyLoginHosts: a data directory whose CA was created
// before login.windows.net and sts.windows.net were served keeps working:
// its CA still loads, and the server certificate leaves out the names the
// CA does not permit instead of failing to start.
func TestCAWithoutLegacyLoginHosts(t *testing.T) {
	dir := t.TempDir()
	hosts := Hosts{ListenHosts: []string{"127.0.0.1"}}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	old := slices.DeleteFunc(hosts.permittedDNSDomains(), func(n string) bool { return slices.Contains(LegacyLoginHosts, n) })
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: "tenantbridge local CA old"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
		MaxPathLenZero: true, PermittedDNSDomainsCritical: true, PermittedDNSDomains: old, PermittedIPRanges: hosts.permittedIPRanges()}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := marshalPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, caKeyFile), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, caCertFile), certPEM(der), 0o644); err != nil {
		t.Fatal(err)
	}
	ca, err := LoadOrCreateCA(dir, hosts)
	if err != nil {
		t.Fatalf("an older CA no longer loads: %v", err)
	}
	cert, err := LoadOrCreateServerCert(dir, ca, hosts)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range LegacyLoginHosts {
		if slices.Contains(leaf.DNSNames, n) {
			t.Errorf("the certificate names %s, which its CA does not permit", n)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "login.microsoftonline.com"}); err != nil {
		t.Errorf("login.microsoftonline.com: %v", err)
	}
	// A new CA permits them, and its certificate carries them.
	fresh := t.TempDir()
	ca2, err := LoadOrCreateCA(fresh, hosts)
	if err != nil {
		t.Fatal(err)
	}
	cert2, err := LoadOrCreateServerCert(fresh, ca2, hosts)
	if err != nil {
		t.Fatal(err)
	}
	leaf2, _ := x509.ParseCertificate(cert2.Certificate[0])
	for _, n := range LegacyLoginHosts {
		if _, err := leaf2.Verify(x509.VerifyOptions{Roots: ca2.Pool(), DNSName: n}); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}
