package dnsserve

import (
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// servesForFuzz stands for the server's router: two exact names and one
// label under a parent, the three shapes the router has.
func servesForFuzz(host string) bool {
	if host == "login.microsoftonline.com" || host == "graph.microsoft.com" {
		return true
	}
	label, parent, ok := strings.Cut(host, ".")
	return ok && label != "" && parent == "vault.azure.net"
}

// FuzzQuery feeds arbitrary packets through the path a query takes in the
// responder — the header check, miekg/dns's parser, Reply and packing — and
// checks that nothing panics, that every reply packs, stays within what
// the query allows over UDP, and gives an address only for a served name.
func FuzzQuery(f *testing.F) {
	for _, m := range seedQueries() {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, true)
		f.Add(b, false)
	}
	f.Add([]byte{}, true)
	f.Add(make([]byte, 12), true)
	f.Add([]byte("\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01"), true) // a name that points at itself

	s, err := New(Config{Serves: servesForFuzz, Answer: net.IPv4(192, 0, 2, 1), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, packet []byte, udp bool) {
		if len(packet) < 12 {
			return // miekg/dns drops it before any handler
		}
		dh := dns.Header{
			Id: binary.BigEndian.Uint16(packet), Bits: binary.BigEndian.Uint16(packet[2:]),
			Qdcount: binary.BigEndian.Uint16(packet[4:]), Ancount: binary.BigEndian.Uint16(packet[6:]),
			Nscount: binary.BigEndian.Uint16(packet[8:]), Arcount: binary.BigEndian.Uint16(packet[10:]),
		}
		if acceptQuery(dh) != dns.MsgAccept {
			return // answered with a bare header by miekg/dns, or not at all
		}
		req := new(dns.Msg)
		if err := req.Unpack(packet); err != nil {
			return
		}
		resp := s.Reply(req, udp)
		out, err := resp.Pack()
		if err != nil {
			t.Fatalf("reply does not pack: %v\n%v", err, resp)
		}
		if resp.Id != req.Id || !resp.Response || resp.RecursionAvailable {
			t.Fatalf("reply header: id %d (query %d), QR %v, RA %v", resp.Id, req.Id, resp.Response, resp.RecursionAvailable)
		}
		if udp {
			limit := dns.MinMsgSize
			if opt := req.IsEdns0(); opt != nil {
				limit = min(max(int(opt.UDPSize()), dns.MinMsgSize), maxUDPSize)
			}
			if len(out) > limit {
				t.Fatalf("UDP reply of %d bytes; the query allows %d", len(out), limit)
			}
		}
		if len(resp.Answer) > 1 || len(resp.Ns) != 0 {
			t.Fatalf("reply with %d answers and %d authority records", len(resp.Answer), len(resp.Ns))
		}
		for _, rr := range resp.Answer {
			name, ok := hostName(rr.Header().Name)
			if !ok || !servesForFuzz(name) || len(req.Question) != 1 || rr.Header().Name != req.Question[0].Name {
				t.Fatalf("answer %v to %v", rr, req.Question)
			}
			if a, ok := rr.(*dns.A); !ok || !a.A.Equal(net.IPv4(192, 0, 2, 1)) {
				t.Fatalf("answer %v; want the configured address", rr)
			}
		}
	})
}

func seedQueries() []*dns.Msg {
	var out []*dns.Msg
	for _, name := range []string{"login.microsoftonline.com.", "KV.vault.azure.net.", "a.b.vault.azure.net.", "example.com.", "."} {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeANY, dns.TypeAXFR, dns.TypeTXT} {
			m := new(dns.Msg)
			m.SetQuestion(name, qt)
			out = append(out, m)
			e := m.Copy()
			e.SetEdns0(4096, true)
			out = append(out, e)
		}
	}
	return out
}
