package shield

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestBanCarrierExempt(t *testing.T) {
	sh := New(2, time.Minute, time.Minute, 0, time.Now)
	a := netip.MustParseAddr("127.0.0.9")
	sh.Fail(a)
	if !sh.Fail(a) || !sh.Banned(a) {
		t.Fatal("not banned after 2 failures")
	}
	m, _ := ParseAddrMatcher([]string{"127.0.0.1:5090", "10.0.0.0/8"})
	if !m.Match(netip.MustParseAddrPort("127.0.0.1:5090")) || m.Match(netip.MustParseAddrPort("127.0.0.1:5091")) || !m.Match(netip.MustParseAddrPort("10.1.2.3:1")) {
		t.Fatal("carrier matcher")
	}
}

// FuzzAddrMatcher: carrier address lists (IPs, CIDRs, IP:port; host names
// are left out: they resolve) never panic; an IP:port entry matches itself.
func FuzzAddrMatcher(f *testing.F) {
	for _, s := range []string{"127.0.0.1:5090", "10.0.0.0/8", "::ffff:1.2.3.4", "[::1]:5060", "1.2.3.4/33", "::/0", "0.0.0.0:0"} {
		f.Add(s, "1.2.3.4:5060")
	}
	f.Fuzz(func(t *testing.T, entry, probe string) {
		if _, err := netip.ParseAddrPort(entry); err != nil {
			if _, err := netip.ParsePrefix(entry); err != nil {
				if _, err := netip.ParseAddr(entry); err != nil {
					return // a host name: resolution is not fuzzed
				}
			}
		}
		m, err := ParseAddrMatcher([]string{entry})
		if err != nil {
			return
		}
		if ap, err := netip.ParseAddrPort(probe); err == nil {
			m.Match(ap)
		}
		if ap, err := netip.ParseAddrPort(strings.TrimSpace(entry)); err == nil && !m.Match(ap) {
			t.Fatalf("%q does not match itself", entry)
		}
	})
}
