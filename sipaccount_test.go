package sipdesk

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseAllowedIPs(t *testing.T) {
	many := make([]string, 101)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{8, 8, byte(i / 250), byte(1 + i%250)}).String()
	}
	cases := []struct {
		name    string
		in      []string
		private bool
		ok      bool
	}{
		{"public v4", []string{"8.8.8.8"}, false, true},
		{"public v6", []string{"2a00:1450:4001::1"}, false, true},
		{"public CIDR", []string{"203.0.114.0/24"}, false, true},
		{"mapped v4 is unmapped", []string{"::ffff:8.8.8.8"}, false, true},
		{"private refused", []string{"10.1.2.3"}, false, false},
		{"loopback refused", []string{"127.0.0.2"}, false, false},
		{"documentation range refused", []string{"192.0.2.1"}, false, false},
		{"CGNAT refused", []string{"100.64.1.1"}, false, false},
		{"ULA v6 refused", []string{"fd00::1"}, false, false},
		{"link-local refused", []string{"169.254.1.1"}, false, false},
		{"loopback with flag", []string{"127.0.0.2"}, true, true},
		{"garbage", []string{"not-an-ip"}, false, false},
		{"host name", []string{"example.com"}, false, false},
		{"bad CIDR", []string{"8.8.8.0/33"}, false, false},
		{"too wide", []string{"8.0.0.0/8"}, false, false},
		{"zone", []string{"fe80::1%eth0"}, true, false},
		{"duplicate", []string{"8.8.8.8", "8.8.8.8"}, false, false},
		{"101 entries", many, false, false},
		{"100 entries", many[:100], false, true},
		{"v4 with port", []string{"8.8.8.8:5060"}, false, true},
		{"v6 with port", []string{"[2a00:1450:4001::1]:5084"}, false, true},
		{"same address with and without port", []string{"127.0.0.1:5084", "127.0.0.1", "127.0.0.1:5085"}, true, true},
		{"port twice", []string{"8.8.8.8:5060", "8.8.8.8:5060"}, false, false},
		{"port 0", []string{"8.8.8.8:0"}, false, false},
		{"port too big", []string{"8.8.8.8:65536"}, false, false},
		{"CIDR with port", []string{"8.8.8.0/24:5060"}, false, false},
		{"private with port refused", []string{"10.1.2.3:5060"}, false, false},
		{"v6 port without brackets", []string{"2a00:1450:4001::1:5084x"}, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseAllowedIPs(c.in, true, c.private)
			if (err == nil) != c.ok {
				t.Fatalf("ParseAllowedIPs(%v) err = %v, want ok=%v", c.in[:min(len(c.in), 2)], err, c.ok)
			}
			if err != nil && ErrorField(err) != "allowed_ips" {
				t.Fatalf("field = %q", ErrorField(err))
			}
		})
	}
	if _, err := ParseAllowedIPs(nil, true, false); err == nil {
		t.Fatal("an IP account without addresses was accepted")
	}
	if ps, err := ParseAllowedIPs(nil, false, false); err != nil || ps != nil {
		t.Fatal("an optional empty ACL was refused")
	}
}

func TestValidateUsernameAndPassword(t *testing.T) {
	for u, ok := range map[string]bool{
		"alice123": true, "a.b-c_d!": true, "short": false, "-leading1": false,
		"has space1": false, "semi;colon": false, "at@sign12": false, strings.Repeat("a", 65): false,
	} {
		if err := ValidateUsername(u); (err == nil) != ok {
			t.Errorf("ValidateUsername(%q) = %v, want ok=%v", u, err, ok)
		}
	}
	for p, ok := range map[string]bool{
		"Abcdefghij12": true, "abcdefghij12": false, "ABCDEFGHIJ12": false, "Abcdefghijkl": false,
		"Abc1": false, "Abcdefghij1\u00e9": false, "Abcdef ghij12": false,
	} {
		if err := ValidatePassword(p); (err == nil) != ok {
			t.Errorf("ValidatePassword(%q) = %v, want ok=%v", p, err, ok)
		}
	}
	for range 50 {
		if err := ValidatePassword(GeneratePassword()); err != nil {
			t.Fatal("generated password refused:", err)
		}
		if err := ValidateUsername(GenerateUsername()); err != nil {
			t.Fatal("generated username refused:", err)
		}
		if err := ValidateJWTSecret(GenerateJWTSecret()); err != nil {
			t.Fatal("generated secret refused:", err)
		}
	}
}

func TestAllowedIPRoundTripAndMatch(t *testing.T) {
	for in, want := range map[string]string{
		"8.8.8.8": "8.8.8.8/32", "8.8.8.0/24": "8.8.8.0/24", "8.8.8.8:5060": "8.8.8.8:5060",
		"[2001:db8::1]:5060": "[2001:db8::1]:5060", "[::ffff:8.8.8.8]:5060": "8.8.8.8:5060", "2001:db8::/48": "2001:db8::/48",
	} {
		e, err := ParseAllowedIP(in)
		if err != nil || e.String() != want {
			t.Errorf("ParseAllowedIP(%q) = %v, %v; want %s", in, e, err, want)
			continue
		}
		if again, err := ParseAllowedIP(e.String()); err != nil || again != e {
			t.Errorf("round trip of %q: %v, %v", e.String(), again, err)
		}
	}
	e, _ := ParseAllowedIP("127.0.0.1:5084")
	any, _ := ParseAllowedIP("127.0.0.1")
	src := netip.MustParseAddrPort("127.0.0.1:5084")
	other := netip.MustParseAddrPort("127.0.0.1:5090")
	if !e.Matches(src) || e.Matches(other) || !any.Matches(other) || !any.Matches(src) {
		t.Fatal("port matching")
	}
	if !e.Matches(netip.MustParseAddrPort("[::ffff:127.0.0.1]:5084")) {
		t.Fatal("a mapped source must match its IPv4 entry")
	}
}

func TestCheckIPConflicts(t *testing.T) {
	ip := func(id int64, prefix string, ips ...string) *SIPAccount {
		ps, _ := ParseAllowedIPs(ips, true, false)
		return &SIPAccount{ID: id, AuthType: AuthIP, AllowedIPs: ps, TechPrefix: prefix}
	}
	others := []*SIPAccount{ip(1, "1234", "8.8.8.8"), ip(2, "", "9.9.9.0/24"), {ID: 3, AuthType: AuthPassword}, ip(4, "", "8.8.4.8:5084")}
	cases := []struct {
		name string
		a    *SIPAccount
		ok   bool
	}{
		{"distinct address", ip(9, "", "8.8.4.4"), true},
		{"shared address, distinct prefixes", ip(9, "5678", "8.8.8.8"), true},
		{"shared address, no prefix", ip(9, "", "8.8.8.8"), false},
		{"shared address, same prefix", ip(9, "1234", "8.8.8.8"), false},
		{"inside another's CIDR without prefix", ip(9, "1111", "9.9.9.9"), false},
		{"itself", ip(1, "1234", "8.8.8.8"), true},
		{"port on another's address", ip(9, "", "8.8.8.8:5060"), true},
		{"port inside another's CIDR", ip(9, "", "9.9.9.9:5060"), true},
		{"address-only where another has a port", ip(9, "", "8.8.4.8"), true},
		{"other port on the same address", ip(9, "", "8.8.4.8:5085"), true},
		{"same address and port", ip(9, "", "8.8.4.8:5084"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckIPConflicts(c.a, others)
			if (err == nil) != c.ok {
				t.Fatalf("err = %v, want ok=%v", err, c.ok)
			}
			if err != nil && (ErrorCode(err) != EConflict || ErrorField(err) != "tech_prefix") {
				t.Fatalf("err = %#v", err)
			}
			// The message names neither the other account's prefix nor
			// whether it has one: only the caller's own entry.
			if e, _ := err.(*Error); err != nil && (strings.Contains(e.Message, "1234") || strings.Contains(e.Message, "prefix") ||
				!strings.HasSuffix(e.Message, " is in use by another account")) {
				t.Fatalf("message %q says more than that the address is in use", e.Message)
			}
		})
	}
	// An account waiting for an operator (a wide range) fences nobody off.
	held := ip(5, "", "7.7.0.0/16")
	held.HeldForReview = true
	if err := CheckIPConflicts(ip(9, "", "7.7.7.7"), []*SIPAccount{held}); err != nil {
		t.Fatalf("a held range refused another account: %v", err)
	}
	if !HasWideRange(held.AllowedIPs) || HasWideRange(ip(9, "", "7.7.7.0/24").AllowedIPs) {
		t.Fatal("HasWideRange: /16 is wide, /24 is not")
	}
	if v6 := ip(9, "", "2a00:1450::/47").AllowedIPs; !HasWideRange(v6) || HasWideRange(ip(9, "", "2a00:1450::/48").AllowedIPs) {
		t.Fatal("HasWideRange: IPv6 /47 is wide, /48 is not")
	}
}

func TestStatusMachine(t *testing.T) {
	a := &SIPAccount{Status: StatusActive}
	a.MarkInProcess(5)
	if a.Applied(4) || a.Status != StatusInProcess {
		t.Fatal("applied before its version")
	}
	if err := a.SetStatus(StatusInactive); err != nil || a.Status != StatusInProcess {
		t.Fatal("status wish while in process must wait", err)
	}
	if !a.Applied(5) || a.Status != StatusInactive {
		t.Fatalf("after apply: %s, want inactive (the wish)", a.Status)
	}
	if err := a.SetStatus(StatusInProcess); err == nil {
		t.Fatal("customers cannot ask for in_process")
	}
	a.HeldForReview = true
	a.MarkInProcess(6)
	if a.Applied(10) {
		t.Fatal("held account activated without review")
	}
	a.HeldForReview = false
	if !a.Applied(10) || a.Status != StatusInactive {
		t.Fatalf("an auth change must keep an inactive account inactive, got %s", a.Status)
	}
	b := &SIPAccount{AuthType: AuthPassword, Status: StatusInactive}
	if b.CanEnableJWT() == nil {
		t.Fatal("JWT on an inactive account")
	}
	b.Status, b.AuthType = StatusActive, AuthIP
	if b.CanEnableJWT() == nil {
		t.Fatal("JWT on an IP account")
	}
}

func TestCustomerTopUpAndTickets(t *testing.T) {
	c := &Customer{ID: 1, BillingState: BillingTrial, ChannelLimit: TrialChannelLimit, SIPAccountQuota: DefaultSIPAccountQuota}
	if _, err := NewTicket(c, TicketChannelLimit, 5, ""); ErrorCode(err) != ETrialLocked {
		t.Fatalf("trial channel ticket: %v", err)
	}
	if err := c.TopUp(0, 10); err == nil {
		t.Fatal("zero top-up accepted")
	}
	if err := c.TopUp(5000, 10); err != nil || c.BillingState != BillingPaid || c.ChannelLimit != 10 {
		t.Fatalf("after top-up: %+v %v", c, err)
	}
	tk, err := NewTicket(c, TicketChannelLimit, 30, "call center")
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.Approve(c, c.CreatedAt); err != nil || c.ChannelLimit != 30 {
		t.Fatalf("approve: %v limit %d", err, c.ChannelLimit)
	}
	if err := tk.Decline("no", c.CreatedAt); ErrorCode(err) != EConflict {
		t.Fatal("decided twice")
	}
	if _, err := NewTicket(c, TicketSIPAccounts, 5, ""); ErrorField(err) != "wanted" {
		t.Fatal("quota ticket below current quota accepted")
	}
	if err := c.TopUp(100, 10); err != nil || c.ChannelLimit != 30 {
		t.Fatal("a later top-up must not lower a raised limit")
	}
}

func TestDigestHashes(t *testing.T) {
	// RFC 2617 §3.5 example: Mufasa / testrealm@host.com / Circle Of Life.
	d := NewDigestHashes("Mufasa", "testrealm@host.com", "Circle Of Life")
	if d.MD5 != "939e7578ed9e3c518a452acee763bce9" {
		t.Fatalf("MD5 HA1 = %s", d.MD5)
	}
	// RFC 7616 §3.9.1: Mufasa / http-auth@example.org / Circle of Life.
	d = NewDigestHashes("Mufasa", "http-auth@example.org", "Circle of Life")
	if d.HA1("SHA-256") != "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232" {
		t.Fatalf("SHA-256 HA1 = %s", d.SHA256)
	}
	if d.HA1("sha-512-256") == "" || d.HA1("SHA-1") != "" {
		t.Fatal("algorithm lookup")
	}
}

func TestNormalizeNumber(t *testing.T) {
	for in, want := range map[string]string{
		"+44 20 3000 1111": "442030001111", "0044-20-3000-1111": "442030001111", "(415) 555.0100": "4155550100",
		"tel:+1-212-555-0100;ext=1": "12125550100", "sip:+4420300011@example.com": "4420300011",
		"12": "", "+0123456789": "", "44a2030001111": "", "+1234567890123456": "", "++4420300011": "",
	} {
		got, err := NormalizeNumber(in)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("NormalizeNumber(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
