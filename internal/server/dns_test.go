package server_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/tenantbridge/tenantbridge/internal/server"
)

// exchange sends one query for name and type over network ("udp" or
// "tcp") to the server's DNS responder with miekg/dns's client.
func exchange(t *testing.T, r *running, network string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	resp, _, err := c.Exchange(m, r.srv.DNSAddr())
	if err != nil {
		t.Fatalf("%s query %s %s: %v", network, m.Question[0].Name, dns.TypeToString[m.Question[0].Qtype], err)
	}
	if resp.Id != m.Id || !resp.Response {
		t.Fatalf("%s query %s: reply id %d (want %d), QR %v", network, m.Question[0].Name, resp.Id, m.Id, resp.Response)
	}
	if resp.RecursionAvailable {
		t.Errorf("%s query %s: RA set; the responder is not a resolver", network, m.Question[0].Name)
	}
	return resp
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

// TestDNSResponder drives the real server's DNS responder with real UDP
// and TCP queries: the names the server answers as get its address,
// whatever their case; every other name, and every name one label too
// deep under a wildcard, gets REFUSED.
func TestDNSResponder(t *testing.T) {
	r := start(t, server.Config{DNSListen: "127.0.0.1:0", CustomDomain: "tenantbridge.test"})
	if !strings.HasPrefix(r.srv.DNSAddr(), "127.0.0.1:") {
		t.Fatalf("DNSAddr = %q", r.srv.DNSAddr())
	}
	served := []string{
		"login.microsoftonline.com.", "LOGIN.MicrosoftOnline.COM.", "graph.microsoft.com.", "management.azure.com.",
		"myvault.vault.azure.net.", "MyVault.Vault.Azure.Net.", "ns-1.servicebus.windows.net.",
		"login.tenantbridge.test.", "graph.tenantbridge.test.", "management.tenantbridge.test.",
		"kv.vault.tenantbridge.test.", "ns.servicebus.tenantbridge.test.",
		"login.windows.net.", "sts.windows.net.", // Entra's older names, in the certificate since 01fe211
	}
	refused := []string{
		"example.com.", "microsoftonline.com.", "vault.azure.net.", "servicebus.windows.net.",
		"a.b.vault.azure.net.", "x.ns.servicebus.windows.net.", "a.kv.vault.tenantbridge.test.",
		"windows.net.", "login.microsoftonline.com.evil.example.", "evil-login.microsoftonline.com.",
		"_dmarc.vault.azure.net.", `a\.b.vault.azure.net.`, `my\000vault.vault.azure.net.`,
		"localhost.", "tenantbridge.test.", "management.core.windows.net.", ".",
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, name := range served {
			resp := exchange(t, r, network, query(name, dns.TypeA))
			if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
				t.Errorf("%s A %s: %s with %d answers; want NOERROR with 1", network, name, dns.RcodeToString[resp.Rcode], len(resp.Answer))
				continue
			}
			a, ok := resp.Answer[0].(*dns.A)
			if !ok || !a.A.Equal(net.IPv4(127, 0, 0, 1)) || a.Hdr.Name != name || a.Hdr.Ttl != 30 {
				t.Errorf("%s A %s: answer %v; want %s 30 IN A 127.0.0.1", network, name, resp.Answer[0], name)
			}
			if !resp.Authoritative {
				t.Errorf("%s A %s: not authoritative", network, name)
			}
			// The other family, and other types, of a served name: the
			// name exists, the type does not.
			for _, qt := range []uint16{dns.TypeAAAA, dns.TypeMX, dns.TypeTXT, dns.TypeHTTPS, dns.TypeSOA} {
				resp := exchange(t, r, network, query(name, qt))
				if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 0 {
					t.Errorf("%s %s %s: %s with %d answers; want an empty NOERROR", network, dns.TypeToString[qt], name, dns.RcodeToString[resp.Rcode], len(resp.Answer))
				}
			}
		}
		for _, name := range refused {
			for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeANY} {
				m := query(name, qt)
				resp := exchange(t, r, network, m)
				if resp.Rcode != dns.RcodeRefused || len(resp.Answer)+len(resp.Ns)+len(resp.Extra) != 0 {
					t.Errorf("%s %s %s: %s with %d records; want REFUSED and nothing else", network, dns.TypeToString[qt], name, dns.RcodeToString[resp.Rcode], len(resp.Answer)+len(resp.Ns)+len(resp.Extra))
				}
			}
		}
	}
	// Every name the proxy tunnels, DNS answers, and only those: one
	// concrete name stands for a wildcard.
	for _, h := range r.srv.ProxiedHosts() {
		name := dns.Fqdn(strings.Replace(h, "*", "probe", 1))
		if resp := exchange(t, r, "udp", query(name, dns.TypeA)); len(resp.Answer) != 1 {
			t.Errorf("%s is proxied but DNS gives %s", name, dns.RcodeToString[resp.Rcode])
		}
	}
	// The CHAOS class (version.bind and friends) tells nothing.
	m := query("version.bind.", dns.TypeTXT)
	m.Question[0].Qclass = dns.ClassCHAOS
	if resp := exchange(t, r, "udp", m); resp.Rcode != dns.RcodeRefused {
		t.Errorf("CH TXT version.bind: %s; want REFUSED", dns.RcodeToString[resp.Rcode])
	}
	// A served name in another class is not served.
	m = query("login.microsoftonline.com.", dns.TypeA)
	m.Question[0].Qclass = dns.ClassCHAOS
	if resp := exchange(t, r, "udp", m); resp.Rcode != dns.RcodeRefused {
		t.Errorf("CH A login.microsoftonline.com: %s; want REFUSED", dns.RcodeToString[resp.Rcode])
	}
}

// TestDNSNoAmplification checks that the responder cannot be used to
// multiply traffic: ANY gets at most the one address, zone transfers are
// refused, UDP responses stay within what the query allows (and a refusal
// is no larger than the query that earned it), and a packet that is not a
// query gets no answer at all.
func TestDNSNoAmplification(t *testing.T) {
	r := start(t, server.Config{DNSListen: "127.0.0.1:0"})
	for _, network := range []string{"udp", "tcp"} {
		for _, name := range []string{"login.microsoftonline.com.", "myvault.vault.azure.net."} {
			resp := exchange(t, r, network, query(name, dns.TypeANY))
			if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 || resp.Answer[0].Header().Rrtype != dns.TypeA {
				t.Errorf("%s ANY %s: %s %v; want the one A record (RFC 8482)", network, name, dns.RcodeToString[resp.Rcode], resp.Answer)
			}
			for _, qt := range []uint16{dns.TypeAXFR, dns.TypeIXFR} {
				m := query(name, qt)
				if qt == dns.TypeIXFR {
					m.SetIxfr(name, 1, "ns.example.", "admin.example.")
					// IXFR carries the client's SOA in the authority
					// section, which the responder does not take.
				}
				c := &dns.Client{Net: network, Timeout: 5 * time.Second}
				resp, _, err := c.Exchange(m, r.srv.DNSAddr())
				if err != nil {
					t.Fatalf("%s %s %s: %v", network, dns.TypeToString[qt], name, err)
				}
				if resp.Rcode == dns.RcodeSuccess || len(resp.Answer) != 0 {
					t.Errorf("%s %s %s: %s with %d answers; want a refusal", network, dns.TypeToString[qt], name, dns.RcodeToString[resp.Rcode], len(resp.Answer))
				}
			}
		}
	}

	// Over UDP: sizes measured on the wire.
	conn, err := net.Dial("udp", r.srv.DNSAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	roundTrip := func(m *dns.Msg) (query []byte, resp *dns.Msg, n int) {
		t.Helper()
		q, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(q); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 65535)
		n, err = conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		resp = new(dns.Msg)
		if err := resp.Unpack(buf[:n]); err != nil {
			t.Fatalf("response: %v", err)
		}
		return q, resp, n
	}
	for _, name := range []string{"login.microsoftonline.com.", "example.com.", strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61) + "."} {
		for _, edns := range []uint16{0, 512, 4096} {
			m := query(name, dns.TypeA)
			if edns != 0 {
				m.SetEdns0(edns, true)
				m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
			}
			q, resp, n := roundTrip(m)
			limit := 512
			if edns != 0 {
				limit = min(int(edns), 1232)
			}
			if n > limit {
				t.Errorf("A %s with EDNS %d: %d bytes; the query allows %d", name, edns, n, limit)
			}
			if resp.Rcode == dns.RcodeRefused && n > len(q) {
				t.Errorf("A %s: a refusal of %d bytes to a query of %d", name, n, len(q))
			}
			if resp.Rcode == dns.RcodeSuccess && n > len(q)+16 {
				t.Errorf("A %s: %d bytes to a query of %d; more than the one record", name, n, len(q))
			}
			if opt := resp.IsEdns0(); (opt != nil) != (edns != 0) {
				t.Errorf("A %s with EDNS %d: OPT in the response %v", name, edns, opt)
			} else if opt != nil && (len(opt.Option) != 0 || opt.UDPSize() != 1232) {
				t.Errorf("A %s: OPT %v; want size 1232 and no options echoed", name, opt)
			}
		}
	}
	// An EDNS version the responder does not speak: BADVERS (RFC 6891 §6.1.3).
	m := query("login.microsoftonline.com.", dns.TypeA)
	m.SetEdns0(1232, false)
	m.IsEdns0().SetVersion(1)
	if _, resp, _ := roundTrip(m); resp.Rcode != dns.RcodeBadVers || len(resp.Answer) != 0 {
		t.Errorf("EDNS version 1: %s; want BADVERS", dns.RcodeToString[resp.Rcode])
	}
	// Two questions: FORMERR, and no question echoed back.
	m = query("login.microsoftonline.com.", dns.TypeA)
	m.Question = append(m.Question, dns.Question{Name: "graph.microsoft.com.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	if q, resp, n := roundTrip(m); resp.Rcode != dns.RcodeFormatError || n > len(q) || len(resp.Answer) != 0 {
		t.Errorf("two questions: %s, %d bytes; want FORMERR no larger than the query", dns.RcodeToString[resp.Rcode], n)
	}
	// UPDATE (and NOTIFY): not implemented.
	m = new(dns.Msg)
	m.SetUpdate("vault.azure.net.")
	if _, resp, _ := roundTrip(m); resp.Rcode != dns.RcodeNotImplemented {
		t.Errorf("UPDATE: %s; want NOTIMP", dns.RcodeToString[resp.Rcode])
	}

	// A response is never answered: over one TCP connection, whose
	// replies come in order, the reply to the query sent after it is the
	// first to arrive.
	tc, err := dns.Dial("tcp", r.srv.DNSAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	bogus := query("login.microsoftonline.com.", dns.TypeA)
	bogus.Response = true
	bogus.Id = 1
	second := query("graph.microsoft.com.", dns.TypeA)
	second.Id = 2
	for _, m := range []*dns.Msg{bogus, second} {
		if err := tc.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := tc.ReadMsg()
	if err != nil {
		t.Fatal(err)
	}
	if resp.Id != 2 || len(resp.Answer) != 1 {
		t.Errorf("first reply on the connection: id %d %v; want the answer to the query (id 2), nothing for the response", resp.Id, resp.Answer)
	}
}

// TestDNSReachesServer is the point of the responder: a client whose only
// change is its resolver (as a container's would be) reaches tenantbridge
// as login.microsoftonline.com over real TLS, and still cannot resolve any
// other name through it.
func TestDNSReachesServer(t *testing.T) {
	r := start(t, server.Config{DNSListen: "127.0.0.1:0"})
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, r.srv.DNSAddr())
	}}
	_, port, _ := net.SplitHostPort(r.addr)
	dialer := &net.Dialer{Resolver: resolver, Timeout: 5 * time.Second}
	c := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: r.srv.CA().Pool()},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, _ := net.SplitHostPort(addr)
			return dialer.DialContext(ctx, network, net.JoinHostPort(host, port)) // the port: tenantbridge is not on 443 in a test
		},
	}}
	resp, err := c.Get("https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("x-ms-request-id") == "" {
		t.Errorf("discovery by DNS: %d", resp.StatusCode)
	}
	if addrs, err := resolver.LookupHost(context.Background(), "myvault.vault.azure.net"); err != nil || len(addrs) != 1 || addrs[0] != "127.0.0.1" {
		t.Errorf("LookupHost(myvault.vault.azure.net) = %v, %v; want [127.0.0.1]", addrs, err)
	}
	if addrs, err := resolver.LookupHost(context.Background(), "example.com"); err == nil {
		t.Errorf("LookupHost(example.com) = %v through tenantbridge's DNS; want a failure", addrs)
	}
}

// TestDNSAnswerAddress checks the answer's configuration: an IPv6 answer
// answers AAAA (and A gets an empty answer); an unspecified listen address
// needs an explicit answer.
func TestDNSAnswerAddress(t *testing.T) {
	r := start(t, server.Config{DNSListen: "127.0.0.1:0", DNSAnswer: "fd00::53"})
	resp := exchange(t, r, "udp", query("graph.microsoft.com.", dns.TypeAAAA))
	if len(resp.Answer) != 1 || !resp.Answer[0].(*dns.AAAA).AAAA.Equal(net.ParseIP("fd00::53")) {
		t.Errorf("AAAA with an IPv6 answer: %v", resp.Answer)
	}
	if resp := exchange(t, r, "udp", query("graph.microsoft.com.", dns.TypeA)); resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 0 {
		t.Errorf("A with an IPv6 answer: %s %v; want an empty NOERROR", dns.RcodeToString[resp.Rcode], resp.Answer)
	}

	for _, cfg := range []server.Config{
		{DNSListen: "0.0.0.0:0"},
		{DNSListen: "[::]:0"},
		{DNSListen: "127.0.0.1:0", DNSAnswer: "0.0.0.0"},
		{DNSListen: "127.0.0.1:0", DNSAnswer: "login.microsoftonline.com"},
	} {
		cfg.DataDir = t.TempDir()
		cfg.Listen = "127.0.0.1:0"
		if srv, err := server.New(context.Background(), cfg); err == nil {
			srv.Store().Close()
			t.Errorf("New(DNSListen %q, DNSAnswer %q) succeeded; want an error", cfg.DNSListen, cfg.DNSAnswer)
		} else if !strings.Contains(err.Error(), "--dns-answer") {
			t.Errorf("New(DNSListen %q, DNSAnswer %q): %v; want advice to give --dns-answer", cfg.DNSListen, cfg.DNSAnswer, err)
		}
	}
}
