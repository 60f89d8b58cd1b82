// Package dnsserve is tenantbridge's DNS responder (`serve --dns-listen`):
// it answers the Azure names tenantbridge serves with the server's address
// and refuses every other name, so that a container whose resolver points
// at it reaches tenantbridge as login.microsoftonline.com,
// {vault}.vault.azure.net or {ns}.servicebus.windows.net with no change to
// the program.
//
// This is the convention LocalStack uses for containers: its DNS server
// resolves the cloud's names to the emulator, and containers are given it
// as their resolver (https://docs.localstack.cloud/aws/tooling/dns-server/).
// Unlike LocalStack, which forwards every other query to an upstream
// resolver, this responder is not a recursive resolver: it never forwards a
// query and never reveals anything about a name it does not serve — every
// other name gets REFUSED (RFC 1035 §4.1.1: "refuses to perform the
// specified operation for policy reasons"). A container that needs other
// names as well lists a second resolver after it.
//
// Everything it sends is small and bounded, so it cannot be used to
// amplify traffic: one question per query, no zone transfers, ANY answered
// with at most the one address record (RFC 8482), responses over UDP kept
// within 512 bytes or the EDNS size the query advertises (RFC 6891), capped
// at 1232 bytes (DNS Flag Day 2020), and a bounded number of TCP
// connections, each with read and idle deadlines.
package dnsserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/netutil"
)

// DefaultTTL is how long a client may cache an answer: short, so that a
// restarted server on another address (a new container) is found quickly.
const DefaultTTL = 30 * time.Second

// Limits on what a client can make the responder do.
const (
	// maxUDPSize is the largest UDP response sent, whatever the query's
	// EDNS buffer size says: DNS Flag Day 2020's 1232 bytes, which avoids
	// IP fragmentation (https://www.dnsflagday.net/2020/).
	maxUDPSize = 1232
	// maxTCPConns bounds the TCP connections open at once; beyond it the
	// listener stops accepting until one closes.
	maxTCPConns = 256
	// maxTCPQueries bounds the queries on one TCP connection.
	maxTCPQueries = 128
	// readTimeout bounds how long a client takes to send a query;
	// idleTimeout how long a TCP connection waits for the next one
	// (RFC 7766 §6.2.3 suggests seconds, not minutes).
	readTimeout  = 2 * time.Second
	idleTimeout  = 8 * time.Second
	writeTimeout = 2 * time.Second
)

// Config is what the responder answers.
type Config struct {
	// Serves reports whether tenantbridge answers as host (lower-case, no
	// trailing dot): only those names get an address.
	Serves func(host string) bool
	// Answer is the address given for every served name: an IPv4 address
	// answers A queries, an IPv6 address AAAA queries; the other type gets
	// an empty answer.
	Answer net.IP
	// TTL of the answers; zero means DefaultTTL.
	TTL time.Duration
	// Logger receives one debug line per refused query; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Server answers DNS queries for the served names. It is a dns.Handler.
type Server struct {
	serves func(string) bool
	a      net.IP // the IPv4 answer, or nil
	aaaa   net.IP // the IPv6 answer, or nil
	ttl    uint32
	logger *slog.Logger
}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Serves == nil {
		return nil, errors.New("dnsserve: no Serves function")
	}
	if cfg.Answer == nil || cfg.Answer.IsUnspecified() {
		return nil, fmt.Errorf("dnsserve: the answer address %q is not one clients can reach", cfg.Answer)
	}
	s := &Server{serves: cfg.Serves, logger: cfg.Logger, ttl: uint32(DefaultTTL / time.Second)}
	if cfg.TTL > 0 {
		s.ttl = uint32(max(cfg.TTL/time.Second, 1))
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if v4 := cfg.Answer.To4(); v4 != nil {
		s.a = v4
	} else {
		s.aaaa = cfg.Answer.To16()
	}
	return s, nil
}

// ServeDNS answers one query (see Reply).
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	_ = w.WriteMsg(s.Reply(req, udp))
}

// Reply is the response to req: an address for a served name, an empty
// answer for a served name and another type, REFUSED for anything else.
// Over UDP it fits the size the query allows, with the truncation bit set
// if it had to be cut.
func (s *Server) Reply(req *dns.Msg, udp bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req) // id, opcode, RD and CD, and the first question
	m.RecursionAvailable = false
	limit := dns.MaxMsgSize
	if udp {
		limit = dns.MinMsgSize
	}
	if opt := req.IsEdns0(); opt != nil {
		// RFC 6891 §7: answer EDNS with EDNS, echoing none of the
		// query's options; an unknown version gets BADVERS.
		if udp {
			limit = min(max(int(opt.UDPSize()), dns.MinMsgSize), maxUDPSize)
		}
		m.SetEdns0(maxUDPSize, false)
		if opt.Version() != 0 {
			m.Rcode = dns.RcodeBadVers
			return fit(m, limit, udp)
		}
	}
	if req.Opcode != dns.OpcodeQuery || len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		if req.Opcode != dns.OpcodeQuery {
			m.Rcode = dns.RcodeNotImplemented
		}
		m.Question = nil
		return fit(m, limit, udp)
	}
	q := req.Question[0]
	name, ok := hostName(q.Name)
	if !ok || q.Qclass != dns.ClassINET || !s.serves(name) {
		s.refuse(m, q, "not a name tenantbridge serves")
		return fit(m, limit, udp)
	}
	switch q.Qtype {
	case dns.TypeAXFR, dns.TypeIXFR:
		// Not a zone anyone may copy.
		s.refuse(m, q, "zone transfer")
		return fit(m, limit, udp)
	case dns.TypeA:
		s.addAddress(m, q, s.a)
	case dns.TypeAAAA:
		s.addAddress(m, q, s.aaaa)
	case dns.TypeANY:
		// RFC 8482 §4.2: a subset of the records, here the one address.
		s.addAddress(m, q, s.a)
		s.addAddress(m, q, s.aaaa)
	}
	// Any other type of a served name: NOERROR with no answer (the name
	// exists, the type does not), so that clients move on to A/AAAA.
	m.Authoritative = true
	return fit(m, limit, udp)
}

// refuse turns m into a REFUSED response.
func (s *Server) refuse(m *dns.Msg, q dns.Question, why string) {
	m.Rcode = dns.RcodeRefused
	s.logger.Debug("dns: query refused", "name", clip(q.Name), "type", dns.TypeToString[q.Qtype], "reason", why)
}

// addAddress adds the answer ip (if any) for q's name, as A or AAAA by its
// family.
func (s *Server) addAddress(m *dns.Msg, q dns.Question, ip net.IP) {
	if ip == nil {
		return
	}
	hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: s.ttl}
	if v4 := ip.To4(); v4 != nil {
		hdr.Rrtype = dns.TypeA
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: v4})
		return
	}
	hdr.Rrtype = dns.TypeAAAA
	m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: ip})
}

// fit keeps m within limit bytes; over UDP a response cut short says so
// (TC), and the client retries over TCP. The response is compressed, so
// that the answer names the question's name with a two-byte pointer and
// adds only 16 bytes (A) or 28 (AAAA) to the query's size.
func fit(m *dns.Msg, limit int, udp bool) *dns.Msg {
	if udp {
		m.Truncate(limit)
	}
	m.Compress = true // Truncate turns it off when the message fits
	return m
}

// hostName is the query name as the router knows host names: lower-case,
// without the trailing dot. Only letters, digits and hyphens in labels of
// 1 to 63 bytes are host names (RFC 1123 §2.1); anything else — escaped
// bytes, an underscore, an empty label, the root — is not one tenantbridge
// serves.
func hostName(qname string) (string, bool) {
	name := strings.ToLower(strings.TrimSuffix(qname, "."))
	if name == "" || len(name) > 253 {
		return "", false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return "", false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", false
			}
		}
	}
	return name, true
}

// clip keeps a hostile name from flooding the log.
func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

// acceptQuery lets through only plain queries of one question with at
// most one additional record (EDNS's OPT): a response is never read as a
// query (no reply, so two responders cannot bounce packets), other opcodes
// (NOTIFY, UPDATE) get NOTIMP, and anything else FORMERR — all with just
// a header, smaller than the query.
func acceptQuery(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	if dh.Bits&qr != 0 {
		return dns.MsgIgnore
	}
	if opcode := int(dh.Bits>>11) & 0xF; opcode != dns.OpcodeQuery {
		return dns.MsgRejectNotImplemented
	}
	if dh.Qdcount != 1 || dh.Ancount != 0 || dh.Nscount != 0 || dh.Arcount > 1 {
		return dns.MsgReject
	}
	return dns.MsgAccept
}

// Listen opens a UDP socket and a TCP listener on the same address; with
// port 0 both get the same free port.
func Listen(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	for range 10 {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		_, p, _ := net.SplitHostPort(pc.LocalAddr().String())
		ln, err := net.Listen("tcp", net.JoinHostPort(host, p))
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if port != "0" {
			return nil, nil, err
		}
		// The free UDP port was taken for TCP: try another.
	}
	return nil, nil, fmt.Errorf("dns listener: no port free for both UDP and TCP on %s", host)
}

// Serve answers on pc (UDP) and ln (TCP) until ctx is done or either
// fails; then it stops both, waiting for queries in flight. It closes pc
// and ln.
func (s *Server) Serve(ctx context.Context, pc net.PacketConn, ln net.Listener) error {
	servers := []*dns.Server{
		{PacketConn: pc, Handler: s, MsgAcceptFunc: acceptQuery, ReadTimeout: readTimeout, WriteTimeout: writeTimeout},
		{Listener: netutil.LimitListener(ln, maxTCPConns), Handler: s, MsgAcceptFunc: acceptQuery,
			ReadTimeout: readTimeout, WriteTimeout: writeTimeout, MaxTCPQueries: maxTCPQueries,
			IdleTimeout: func() time.Duration { return idleTimeout }},
	}
	type run struct {
		started chan struct{}
		done    chan error
	}
	runs := make([]run, len(servers))
	failed := make(chan struct{}, len(servers))
	for i, srv := range servers {
		r := run{started: make(chan struct{}), done: make(chan error, 1)}
		srv.NotifyStartedFunc = sync.OnceFunc(func() { close(r.started) })
		runs[i] = r
		go func() {
			err := srv.ActivateAndServe()
			r.done <- err
			failed <- struct{}{}
		}()
	}
	select {
	case <-ctx.Done():
	case <-failed:
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var errs []error
	for i, srv := range servers {
		select {
		case <-runs[i].started:
			if err := srv.ShutdownContext(shutdownCtx); err != nil {
				errs = append(errs, err)
			}
			if err := <-runs[i].done; err != nil {
				errs = append(errs, err)
			}
		case err := <-runs[i].done: // never started
			errs = append(errs, err)
		}
	}
	pc.Close()
	ln.Close()
	return errors.Join(errs...)
}
