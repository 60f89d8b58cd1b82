package proxy

import (
	"errors"
	"net"
	"net/netip"
	"strings"
)

// maxAuthorityLen bounds a CONNECT target: a 253-byte name, a colon and a
// five-digit port, with room for brackets around an IPv6 literal.
const maxAuthorityLen = 262

var errAuthority = errors.New("want host:port, e.g. graph.microsoft.com:443")

// parseAuthority parses the request-target of a CONNECT request, which must be
// in authority form (RFC 9112 §3.2.3): host ":" port, nothing else — no
// scheme, userinfo, path or query. The host is a DNS name of letters, digits
// and hyphens (returned lower-case, without a trailing dot), an IPv4 address,
// or a bracketed IPv6 address without zone (returned canonical, without
// brackets). The port is decimal, 1 to 65535.
func parseAuthority(s string) (host string, port int, err error) {
	if s == "" || len(s) > maxAuthorityLen {
		return "", 0, errAuthority
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, errAuthority
	}
	port, ok := parsePort(p)
	if !ok {
		return "", 0, errAuthority
	}
	if strings.HasPrefix(s, "[") {
		// Brackets are for IPv6 literals only.
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", 0, errAuthority
		}
		return a.String(), port, nil
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if !a.Is4() {
			return "", 0, errAuthority
		}
		return a.String(), port, nil
	}
	name := normalizeHost(h)
	if !validDNSName(name) {
		return "", 0, errAuthority
	}
	return name, port, nil
}

// parsePort accepts 1 to 5 decimal digits naming a port from 1 to 65535; no
// sign, no spaces.
func parsePort(s string) (int, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n >= 1 && n <= 65535
}

// normalizeHost lower-cases a host name and drops one trailing dot, so that
// "Graph.Microsoft.com." and "graph.microsoft.com" compare equal.
func normalizeHost(h string) string {
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

// validDNSName accepts a lower-case host name of letters, digits and hyphens:
// labels of 1 to 63 characters that neither start nor end with a hyphen, 253
// characters in all.
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// hostHeader splits a Host header (or the host of an absolute request-target)
// into a normalized host and its port, "" if it has none.
func hostHeader(h string) (host, port string) {
	if hh, p, err := net.SplitHostPort(h); err == nil {
		return normalizeHost(hh), p
	}
	return normalizeHost(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")), ""
}

// quote keeps a hostile value from shaping a log line, an error message or a
// status line: printable ASCII only, at most 100 bytes, in single quotes.
func quote(s string) string {
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	return "'" + strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '\'' {
			return '?'
		}
		return r
	}, s) + "'"
}

// ServedHosts returns an Allowed function for the names the server
// certificate from internal/pki carries: login.microsoftonline.com (and
// its older names login.windows.net and sts.windows.net), graph.microsoft.com, management.azure.com, {vault}.vault.azure.net and
// {ns}.servicebus.windows.net, and with a custom domain D also login.D,
// graph.D, management.D, {vault}.vault.D and {ns}.servicebus.D. As with the
// certificate's wildcards, {vault} and {ns} are exactly one label. Tunnelling
// any other name would only end in a certificate error at the client.
func ServedHosts(customDomain string) func(host string) bool {
	exact := map[string]bool{
		"login.microsoftonline.com": true,
		"login.windows.net":         true,
		"sts.windows.net":           true,
		"graph.microsoft.com":       true,
		"management.azure.com":      true,
	}
	wild := []string{".vault.azure.net", ".servicebus.windows.net"}
	if d := normalizeHost(strings.TrimSpace(customDomain)); d != "" {
		exact["login."+d] = true
		exact["graph."+d] = true
		exact["management."+d] = true
		wild = append(wild, ".vault."+d, ".servicebus."+d)
	}
	return func(host string) bool {
		host = normalizeHost(host)
		if exact[host] {
			return true
		}
		for _, suffix := range wild {
			if label, ok := strings.CutSuffix(host, suffix); ok && label != "" && !strings.Contains(label, ".") {
				return validDNSName(label)
			}
		}
		return false
	}
}
