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

// fakeClock is a settable time.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// TestShieldWindows: failures count in a sliding window and a ban lasts its
// duration; garbage counts in a fixed window; challenges per second; each
// ban starts the source's counts over.
func TestShieldWindows(t *testing.T) {
	clk := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	sh := New(3, time.Minute, 10*time.Minute, 5, clk.now)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")

	// Failures: the first one expires before the third arrives.
	sh.Fail(a)
	clk.t = clk.t.Add(40 * time.Second)
	sh.Fail(a)
	clk.t = clk.t.Add(20 * time.Second)
	if sh.Fail(a) || sh.Banned(a) {
		t.Fatal("banned for 3 failures over 60 s (window 1 minute)")
	}
	if !sh.Fail(a) || !sh.Banned(a) {
		t.Fatal("not banned for 3 failures within the minute")
	}
	if sh.Banned(b) {
		t.Fatal("another source banned")
	}
	clk.t = clk.t.Add(10*time.Minute - time.Second)
	if !sh.Banned(a) {
		t.Fatal("ban lifted early")
	}
	clk.t = clk.t.Add(time.Second)
	if sh.Banned(a) {
		t.Fatal("ban outlived its duration")
	}
	if first, second := sh.Fail(a), sh.Fail(a); first || second {
		t.Fatal("the ban did not start the count over")
	}
	if !sh.Fail(a) {
		t.Fatal("3 fresh failures did not ban")
	}
	clk.t = clk.t.Add(11 * time.Minute)

	// Garbage: 20 within the window.
	for i := range garbageLimit - 1 {
		if sh.Garbage(b) {
			t.Fatalf("banned after %d garbage datagrams", i+1)
		}
	}
	clk.t = clk.t.Add(61 * time.Second) // the window ran out
	for i := range garbageLimit - 1 {
		if sh.Garbage(b) {
			t.Fatalf("banned after %d garbage datagrams in a new window", i+1)
		}
	}
	if !sh.Garbage(b) || !sh.Banned(b) {
		t.Fatal("20 garbage datagrams within the window did not ban")
	}
	clk.t = clk.t.Add(11 * time.Minute)

	// Challenges: more than 5 within one second.
	for i := range 5 {
		if sh.Challenged(b) {
			t.Fatalf("banned after %d challenges", i+1)
		}
	}
	clk.t = clk.t.Add(time.Second)
	for range 5 {
		sh.Challenged(b)
	}
	if !sh.Challenged(b) || !sh.Banned(b) {
		t.Fatal("6 challenges within a second did not ban")
	}
	if sh.Challenged(b) {
		t.Fatal("a banned source banned again")
	}

	off := New(-1, time.Minute, time.Minute, 5, clk.now)
	for range 100 {
		if off.Fail(a) || off.Garbage(a) || off.Challenged(a) || off.Banned(a) {
			t.Fatal("bans disabled, yet banned")
		}
	}
}

// TestShieldSpoofedFlood: challenges from a million spoofed addresses keep
// the shield's memory at its cap, and the real attacker guessing passwords
// meanwhile is still banned on its 5th failure.
func TestShieldSpoofedFlood(t *testing.T) {
	clk := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	sh := New(5, time.Minute, 10*time.Minute, 200, clk.now)
	attacker := netip.MustParseAddr("198.51.100.66")
	n := 1_000_000
	if testing.Short() {
		n = 200_000
	}
	fails := 0
	for i := range n {
		sh.Challenged(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
		if i%(n/4) == n/8 {
			fails++
			if sh.Fail(attacker) {
				t.Fatalf("banned after %d failures", fails)
			}
		}
		if i%10_000 == 0 {
			clk.t = clk.t.Add(time.Millisecond)
		}
	}
	if sh.Fail(attacker) != true || !sh.Banned(attacker) {
		t.Fatal("attacker not banned on its 5th failure")
	}
	if k := sh.challenges.Len(); k > 100_000 {
		t.Fatalf("%d challenge keys held", k)
	}
}

// TestCallFails: failed answers count per Call-ID for two minutes.
func TestCallFails(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewCallFails()
	if c.Inc("a", t0) != 1 || c.Inc("b", t0) != 1 || c.Inc("a", t0.Add(time.Second)) != 2 {
		t.Fatal("counts")
	}
	if n := c.Inc("a", t0.Add(time.Minute)); n != 3 {
		t.Fatalf("third failure within 2 minutes: %d", n)
	}
	c.Sweep(t0.Add(5 * time.Minute))
	if n := c.Inc("a", t0.Add(5*time.Minute)); n != 1 {
		t.Fatalf("after 2 minutes: %d", n)
	}
}
