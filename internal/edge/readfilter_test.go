package edge

import (
	"net"
	"net/netip"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestReadFilterDropsBanned, without sockets or a store: once the shield
// bans a source, the read filter drops its packets before they are parsed
// (the "banned" refusal: no answer), and counts them; other sources and the
// carrier, even with failures of its own, get through.
func TestReadFilterDropsBanned(t *testing.T) {
	s, err := New(Config{NonceKey: []byte("0123456789abcdef"), Carrier: "sip:198.51.100.1:5060"}, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stack.UA.Close() })
	banned, other, carrier := netip.MustParseAddr("192.0.2.66"), netip.MustParseAddr("192.0.2.67"), netip.MustParseAddr("198.51.100.1")
	for range s.cfg.BanFailures {
		s.shield.Fail(banned)
		s.shield.Fail(carrier)
	}
	if !s.shield.Banned(banned) {
		t.Fatalf("not banned after %d failures", s.cfg.BanFailures)
	}
	pkt := []byte("OPTIONS sip:sipdesk.local SIP/2.0\r\n\r\n")
	read := func(a netip.Addr, tp string) []byte {
		t.Helper()
		props := sip.TransportReadProps{Transport: tp, RemoteAddr: &net.UDPAddr{IP: a.AsSlice(), Port: 5060}}
		if tp != "udp" {
			props.RemoteAddr = &net.TCPAddr{IP: a.AsSlice(), Port: 5060}
		}
		out, err := s.readFilter(props, pkt)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, tp := range []string{"udp", "tcp"} {
		if out := read(banned, tp); out != nil {
			t.Fatalf("%s packet of a banned source passed", tp)
		}
		if out := read(other, tp); string(out) != string(pkt) {
			t.Fatalf("%s packet of another source dropped", tp)
		}
		if out := read(carrier, tp); string(out) != string(pkt) {
			t.Fatalf("%s packet of the carrier dropped", tp)
		}
	}
	if n := s.dropped.Load(); n != 2 {
		t.Fatalf("dropped %d packets, want 2", n)
	}
}
