package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"time"
)

// demoBrokerTLS is the HTTPS identity of the demo's publisher broker: its
// own certificate authority (in memory, for the demo's lifetime) and a
// certificate for 127.0.0.1. The broker is an OpenID Connect issuer, and
// the cloud fetches its discovery document and JWKS over HTTPS as Entra
// would; the demo's server trusts this authority for those fetches
// (server.Config.FederationRoots), as a deployment trusts a broker's
// public certificate through the system's roots.
type demoBrokerTLS struct {
	ca     *x509.Certificate
	cert   tls.Certificate
	client *http.Client // trusts the authority: the installation's route to the broker
}

func newDemoBrokerTLS() (*demoBrokerTLS, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fabrikam broker (tenantbridge demo) CA"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign, PermittedIPRanges: []*net.IPNet{{IP: net.IPv4(127, 0, 0, 1).To4(), Mask: net.CIDRMask(32, 32)}},
		PermittedDNSDomainsCritical: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &demoBrokerTLS{ca: ca, cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}}, nil
}

// localTLSServer serves h over HTTPS (the broker's certificate) on a
// loopback port until the demo ends; it returns https://127.0.0.1:PORT.
func (d *scenarioDemo) localTLSServer(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{d.brokerTLS.cert}, MinVersion: tls.VersionTLS12}}
	go func() { _ = s.ServeTLS(ln, "", "") }()
	d.onClose(func() { _ = s.Close() })
	d.localHosts = append(d.localHosts, ln.Addr().String())
	return "https://" + ln.Addr().String(), nil
}
