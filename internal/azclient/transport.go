package azclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// AzureHosts are the public Azure host names a tenantbridge answers as. A
// leading "*." stands for any one or more labels below the domain.
var AzureHosts = []string{
	"login.microsoftonline.com",
	"sts.windows.net",
	"graph.microsoft.com",
	"management.azure.com",
	"*.vault.azure.net",
	"*.servicebus.windows.net",
}

// Local describes a tenantbridge reached over the network by Azure's own
// names: clients keep Azure's URLs and only the transport changes.
type Local struct {
	// Address is the listener's host:port, e.g. 127.0.0.1:8443.
	Address string
	// CAFile is the PEM file of tenantbridge's CA; it is the only root the
	// transport trusts.
	CAFile string
	// CustomDomain, if the server has one, adds login.D, graph.D,
	// management.D, *.vault.D and *.servicebus.D to the names dialled at
	// Address.
	CustomDomain string
	// Spread, if set, are the addresses of more servers of the same fleet
	// (several servers on one store, see package fleet): each new
	// connection that would go to Address goes to the next of Address and
	// Spread in turn, as a load balancer would send it. Their certificates
	// must hold the names the client asks for (one CA, every node
	// answering the same names).
	Spread []string
}

// Serves reports whether host (without port) is a name the local
// tenantbridge answers for, and so is dialled at its address.
func (l Local) Serves(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	patterns := AzureHosts
	if d := strings.ToLower(strings.Trim(l.CustomDomain, ". ")); d != "" {
		patterns = append(patterns[:len(patterns):len(patterns)],
			"login."+d, "graph."+d, "management."+d, "*.vault."+d, "*.servicebus."+d)
	}
	for _, p := range patterns {
		if suffix, ok := strings.CutPrefix(p, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) && len(host) > len(suffix)+1 {
				return true
			}
		} else if host == p {
			return true
		}
	}
	return false
}

// Transport returns an HTTP transport that dials l.Address for every name
// the local tenantbridge serves (and dials any other address as given),
// trusts only l's CA, and keeps TLS server-name verification on: a
// connection for graph.microsoft.com succeeds only if the server proves it
// is graph.microsoft.com under that CA. Proxies from the environment are
// ignored, since the point is to reach the local server.
func (l Local) Transport() (*http.Transport, error) {
	if _, _, err := net.SplitHostPort(l.Address); err != nil {
		return nil, fmt.Errorf("tenantbridge address %q: %w", l.Address, err)
	}
	pemBytes, err := os.ReadFile(l.CAFile)
	if err != nil {
		return nil, fmt.Errorf("tenantbridge CA: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("tenantbridge CA %s holds no PEM certificate", l.CAFile)
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	for _, a := range l.Spread {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("tenantbridge address %q: %w", a, err)
		}
	}
	targets := append([]string{l.Address}, l.Spread...)
	var next atomic.Uint64
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if l.Serves(host) || addr == l.Address {
			addr = targets[(next.Add(1)-1)%uint64(len(targets))]
		}
		return dialer.DialContext(ctx, network, addr)
	}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dial,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          20,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
	}, nil
}

// HTTPClient returns an *http.Client over Transport, which also serves as
// the azcore policy.Transporter of Azure SDK clients
// (policy.ClientOptions.Transport).
func (l Local) HTTPClient() (*http.Client, error) {
	t, err := l.Transport()
	if err != nil {
		return nil, err
	}
	return &http.Client{
		Transport: t,
		Timeout:   2 * time.Minute,
		// Never follow a redirect to another host with our headers.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects")
			}
			if req.URL.Host != via[0].URL.Host {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}, nil
}
