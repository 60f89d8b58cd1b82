package proxy

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

var tempDirs []string

// tempDir makes a directory that lives as long as the test binary, for
// fixtures shared between tests.
func tempDir() (string, error) {
	d, err := os.MkdirTemp("", "tenantbridge-proxy-test-")
	if err == nil {
		tempDirs = append(tempDirs, d)
	}
	return d, err
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range tempDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

func TestParseAuthority(t *testing.T) {
	for _, tc := range []struct {
		in   string
		host string
		port int
		ok   bool
	}{
		{"graph.microsoft.com:443", "graph.microsoft.com", 443, true},
		{"Graph.Microsoft.COM.:443", "graph.microsoft.com", 443, true},
		{"myvault.vault.azure.net:443", "myvault.vault.azure.net", 443, true},
		{"graph.microsoft.com:80", "graph.microsoft.com", 80, true},
		{"localhost:65535", "localhost", 65535, true},
		{"127.0.0.1:443", "127.0.0.1", 443, true},
		{"[::1]:443", "::1", 443, true},
		{"[0:0::1]:443", "::1", 443, true},
		{"graph.microsoft.com", "", 0, false},
		{"graph.microsoft.com:", "", 0, false},
		{":443", "", 0, false},
		{"graph.microsoft.com:0", "", 0, false},
		{"graph.microsoft.com:65536", "", 0, false},
		{"graph.microsoft.com:+443", "", 0, false},
		{"graph.microsoft.com:0443x", "", 0, false},
		{"graph.microsoft.com:044300", "", 0, false},
		{"graph.microsoft.com: 443", "", 0, false},
		{"https://graph.microsoft.com:443", "", 0, false},
		{"user@graph.microsoft.com:443", "", 0, false},
		{"graph.microsoft.com:443/path", "", 0, false},
		{"/graph.microsoft.com:443", "", 0, false},
		{"gr_aph.microsoft.com:443", "", 0, false},
		{"-graph.microsoft.com:443", "", 0, false},
		{"graph..microsoft.com:443", "", 0, false},
		{"graph.microsoft.com..:443", "", 0, false},
		{".:443", "", 0, false},
		{"*.vault.azure.net:443", "", 0, false},
		{"::1:443", "", 0, false},
		{"[fe80::1%eth0]:443", "", 0, false},
		{"[127.0.0.1]:443", "", 0, false},
		{"[graph.microsoft.com]:443", "", 0, false},
		{"graph.micrösoft.com:443", "", 0, false},
		{strings.Repeat("a", 64) + ".com:443", "", 0, false},
		{strings.Repeat("a.", 130) + "com:443", "", 0, false},
		{"", "", 0, false},
	} {
		host, port, err := parseAuthority(tc.in)
		if (err == nil) != tc.ok || host != tc.host || port != tc.port {
			t.Errorf("parseAuthority(%q) = %q, %d, %v; want %q, %d, ok=%v", tc.in, host, port, err, tc.host, tc.port, tc.ok)
		}
	}
}

func FuzzParseAuthority(f *testing.F) {
	for _, s := range []string{
		"graph.microsoft.com:443", "GRAPH.microsoft.com.:443", "[::1]:443", "127.0.0.1:80",
		"a:1", "[fe80::1%25eth0]:443", "host", ":443", "x:65536", "[::ffff:1.2.3.4]:443",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, port, err := parseAuthority(s)
		if err != nil {
			if host != "" || port != 0 {
				t.Fatalf("%q: error with a result %q %d", s, host, port)
			}
			return
		}
		if port < 1 || port > 65535 {
			t.Fatalf("%q: port %d", s, port)
		}
		if host == "" || host != strings.ToLower(host) || strings.HasSuffix(host, ".") {
			t.Fatalf("%q: host %q not normalized", s, host)
		}
		for _, c := range []byte(host) {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == ':') {
				t.Fatalf("%q: host %q has byte %q", s, host, c)
			}
		}
		// The canonical form parses to itself.
		again := net.JoinHostPort(host, strconv.Itoa(port))
		h2, p2, err := parseAuthority(again)
		if err != nil || h2 != host || p2 != port {
			t.Fatalf("%q -> %q: reparsed as %q %d %v", s, again, h2, p2, err)
		}
		// What goes into a status line is safe there.
		if q := quote(s); strings.ContainsAny(q, "\r\n") {
			t.Fatalf("quote(%q) = %q", s, q)
		}
	})
}

func TestServedHosts(t *testing.T) {
	plain, custom := ServedHosts(""), ServedHosts("Tenantbridge.Test.")
	for _, tc := range []struct {
		host          string
		plain, custom bool
	}{
		{"login.microsoftonline.com", true, true},
		{"graph.microsoft.com", true, true},
		{"management.azure.com", true, true},
		{"myvault.vault.azure.net", true, true},
		{"ns-1.servicebus.windows.net", true, true},
		{"a.b.vault.azure.net", false, false},
		{"vault.azure.net", false, false},
		{".vault.azure.net", false, false},
		{"my_vault.vault.azure.net", false, false},
		{"sts.windows.net", true, true},
		{"login.windows.net", true, true},
		{"windows.net", false, false},
		{"example.com", false, false},
		{"login.tenantbridge.test", false, true},
		{"graph.tenantbridge.test", false, true},
		{"management.tenantbridge.test", false, true},
		{"v.vault.tenantbridge.test", false, true},
		{"n.servicebus.tenantbridge.test", false, true},
		{"tenantbridge.test", false, false},
		{"other.tenantbridge.test", false, false},
		{"127.0.0.1", false, false},
		{"localhost", false, false},
	} {
		if got := plain(tc.host); got != tc.plain {
			t.Errorf("ServedHosts(\"\")(%q) = %v", tc.host, got)
		}
		if got := custom(tc.host); got != tc.custom {
			t.Errorf("ServedHosts(custom)(%q) = %v", tc.host, got)
		}
	}
}
