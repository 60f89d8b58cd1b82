package azclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTransportSpreadsConnections: with Spread, new connections to the
// served names and to Address go to Address and each spread address in
// turn; other addresses are dialled as given.
func TestTransportSpreadsConnections(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	var addrs []string
	accepted := make(chan int, 16)
	for i := range 4 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
				accepted <- i
			}
		}()
		addrs = append(addrs, ln.Addr().String())
	}
	l := Local{Address: addrs[0], CAFile: caFile, Spread: addrs[1:3]}
	tr, err := l.Transport()
	if err != nil {
		t.Fatal(err)
	}
	for i, target := range []string{"login.microsoftonline.com:443", addrs[0], "myvault.vault.azure.net:443", addrs[3], "graph.microsoft.com:443"} {
		c, err := tr.DialContext(context.Background(), "tcp", target)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		want := []int{0, 1, 2, 3, 0}[i]
		if got := <-accepted; got != want {
			t.Errorf("dial %d (%s) reached server %d, want %d", i, target, got, want)
		}
	}
	if _, err := (Local{Address: addrs[0], CAFile: caFile, Spread: []string{"nohost"}}).Transport(); err == nil {
		t.Error("a spread address without a port was taken")
	}
}
