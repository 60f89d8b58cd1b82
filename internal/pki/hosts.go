package pki

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// Hosts is the set of names the server answers to. It decides both which
// names the server certificate carries and which names the CA may ever sign
// for.
type Hosts struct {
	// CustomDomain is optional, e.g. "tenantbridge.test". With it the server
	// also answers as login.D, graph.D, management.D, {vault}.vault.D and
	// {ns}.servicebus.D, for clients that cannot redirect Azure's own names.
	CustomDomain string
	// ListenHosts are the host names or IP literals of the bare listener,
	// e.g. "127.0.0.1", "localhost", "::1" (no port). Unspecified addresses
	// ("0.0.0.0", "::") are skipped: no client dials them by that name.
	ListenHosts []string
}

// azureHosts are the public Azure names tenantbridge answers as; each pairs the
// certificate name with the CA constraint that permits it.
func azureHosts() (sans, constraints []string) {
	return []string{
			"login.microsoftonline.com",
			"graph.microsoft.com",
			"management.azure.com",
			"*.vault.azure.net",
			"*.servicebus.windows.net",
			"login.windows.net",
			"sts.windows.net",
		}, []string{
			"login.microsoftonline.com",
			"graph.microsoft.com",
			"management.azure.com",
			"vault.azure.net",
			"servicebus.windows.net",
			"login.windows.net",
			"sts.windows.net",
		}
}

// LegacyLoginHosts are Entra's older names for its login host, which MSAL
// and ADAL-era clients still use as authorities (MSAL's known aliases of
// login.microsoftonline.com; sts.windows.net is the v1 issuer's host). A CA
// created before they were served does not permit them: the server then
// answers without them rather than not at all (CA.DNSNames).
var LegacyLoginHosts = []string{"login.windows.net", "sts.windows.net"}

// DNSNames returns every DNS SAN the server certificate needs:
// login.microsoftonline.com, graph.microsoft.com, management.azure.com,
// *.vault.azure.net, *.servicebus.windows.net, and with a custom domain D:
// login.D, graph.D, management.D, *.vault.D, *.servicebus.D; plus "localhost"
// and the non-IP ListenHosts. Names are lower-case, without duplicates, in
// that order, so two calls with the same Hosts compare equal.
func (h Hosts) DNSNames() []string {
	names, _ := azureHosts()
	if d := normalizeName(h.CustomDomain); d != "" {
		names = append(names, "login."+d, "graph."+d, "management."+d, "*.vault."+d, "*.servicebus."+d)
	}
	names = append(names, "localhost")
	listen, _ := h.listen()
	names = append(names, listen...)
	return dedupe(names)
}

// IPs returns the IP SANs: 127.0.0.1 and ::1 always (so loopback clients work
// whatever the listener), plus the IP ListenHosts. IPv4 addresses are in their
// 4-byte form.
func (h Hosts) IPs() []net.IP {
	addrs := h.ipAddrs()
	ips := make([]net.IP, len(addrs))
	for i, a := range addrs {
		ips[i] = net.IP(a.AsSlice())
	}
	return ips
}

func (h Hosts) ipAddrs() []netip.Addr {
	addrs := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}
	_, ips := h.listen()
	for _, a := range ips {
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// permittedDNSDomains is the CA's DNS name constraint: each entry permits
// itself and every name below it.
func (h Hosts) permittedDNSDomains() []string {
	_, domains := azureHosts()
	if d := normalizeName(h.CustomDomain); d != "" {
		domains = append(domains, d)
	}
	domains = append(domains, "localhost")
	listen, _ := h.listen()
	domains = append(domains, listen...)
	return dedupe(domains)
}

// permittedIPRanges is the CA's IP constraint: all of IPv4 loopback, ::1, and
// exactly each IP the listener answers on.
func (h Hosts) permittedIPRanges() []*net.IPNet {
	ranges := []*net.IPNet{
		{IP: net.IP{127, 0, 0, 0}, Mask: net.CIDRMask(8, 32)},
		{IP: net.IPv6loopback, Mask: net.CIDRMask(128, 128)},
	}
	_, ips := h.listen()
	for _, a := range ips {
		if a.Is4() && a.As4()[0] == 127 || a == netip.IPv6Loopback() {
			continue // already covered
		}
		ranges = append(ranges, &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(a.BitLen(), a.BitLen())})
	}
	return ranges
}

// listen splits ListenHosts into normalized DNS names and IP addresses.
func (h Hosts) listen() (names []string, ips []netip.Addr) {
	for _, raw := range h.ListenHosts {
		s := trimBrackets(strings.TrimSpace(raw))
		if s == "" {
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			a = a.Unmap().WithZone("")
			if !a.IsUnspecified() && !slices.Contains(ips, a) {
				ips = append(ips, a)
			}
			continue
		}
		names = append(names, normalizeName(s))
	}
	return dedupe(names), ips
}

// validate reports names that cannot go into a certificate, before anything is
// written to disk.
func (h Hosts) validate() error {
	if strings.TrimSpace(h.CustomDomain) != "" {
		d := normalizeName(h.CustomDomain)
		if _, err := netip.ParseAddr(trimBrackets(d)); err == nil {
			return fmt.Errorf("pki: custom domain %q is an IP address; give a DNS domain such as tenantbridge.test", h.CustomDomain)
		}
		if !validDNSName(d) || len("management."+d) > 253 {
			return fmt.Errorf("pki: custom domain %q is not a valid DNS domain", h.CustomDomain)
		}
	}
	for _, raw := range h.ListenHosts {
		s := trimBrackets(strings.TrimSpace(raw))
		if s == "" {
			continue
		}
		if _, err := netip.ParseAddr(s); err == nil {
			continue
		}
		if !validDNSName(normalizeName(s)) {
			return fmt.Errorf("pki: listen host %q is not a host name or IP address (give it without a port)", raw)
		}
	}
	return nil
}

func trimBrackets(s string) string {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		return s[1 : len(s)-1]
	}
	return s
}

func normalizeName(s string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
}

// validDNSName accepts a lower-case host name of letters, digits and hyphens
// (no wildcards: those are ours to add).
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

func dedupe(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
