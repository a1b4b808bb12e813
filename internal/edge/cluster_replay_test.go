//go:build e2e && cluster

package edge

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk/internal/siptest"
)

// TestClusterReplay (must-show g): an INVITE's Proxy-Authorization answered
// at edge A, replayed at edge B from another address with a new Call-ID, is
// refused with 407 stale=true (as the same replay at A is), and no call
// reaches the carrier; the device itself, moving to B, answers B's
// challenge and calls.
func TestClusterReplay(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	cust := c.customer(10)
	c.f.passwordAccount(cust, "replay001", "Secret-pass-1")
	a, b := c.Edge("a"), c.Edge("b")
	const number = "+15551234567"
	waitAccountEverywhere(t, c, "replay001", "Secret-pass-1")

	// The device's call through A: 407, then its answer, 200.
	dev := newPhoneAt(t, "127.0.0.30", a.SIP)
	dev.dial(number)
	res := dev.final(5 * time.Second)
	if res.Code != 407 {
		t.Fatalf("INVITE without credentials at A: %d %s, want 407", res.Code, res.Reason)
	}
	ch := pickChallenge(t, res.All("Proxy-Authenticate"), "MD5")
	captured := "Proxy-Authorization: " + siptest.Answer(ch, "INVITE", "sip:"+number+"@"+testRealm, "replay001", "Secret-pass-1", 1, "")
	dev.dial(number, captured)
	if res := dev.final(5 * time.Second); res.Code != 200 {
		t.Fatalf("the device's answered INVITE at A: %d %s, want 200", res.Code, res.Reason)
	}
	dev.inDialog("BYE")
	if n := c.carrier.count(); n != 1 {
		t.Fatalf("carrier INVITEs after the device's call: %d, want 1", n)
	}

	// The attacker replays the captured header, new Call-ID, other address.
	for i, e := range []*clusterEdge{b, c.Edge("c"), a} {
		att := newPhoneAt(t, fmt.Sprintf("127.0.0.%d", 31+i), e.SIP)
		start := time.Now()
		att.dial(number, captured)
		res := att.final(5 * time.Second)
		t.Logf("replay at edge %s: %d %s in %v", e.Name, res.Code, res.Reason, time.Since(start).Round(time.Millisecond))
		if res.Code != 407 || !strings.Contains(strings.Join(res.All("Proxy-Authenticate"), ","), "stale=true") {
			t.Errorf("replay at edge %s: %d %s %q, want 407 with stale=true", e.Name, res.Code, res.Reason, res.All("Proxy-Authenticate"))
		}
	}
	time.Sleep(500 * time.Millisecond)
	if n := c.carrier.count(); n != 1 {
		t.Fatalf("carrier INVITEs after the replays: %d, want 1 (the device's own call)", n)
	}

	// The device moving to B (DNS SRV) with A's nonce: stale, then accepted.
	mv := newPhoneAt(t, "127.0.0.30", b.SIP)
	mv.dial(number, "Proxy-Authorization: "+siptest.Answer(ch, "INVITE", "sip:"+number+"@"+testRealm, "replay001", "Secret-pass-1", 2, ""))
	res = mv.final(5 * time.Second)
	if res.Code != 407 || !strings.Contains(strings.Join(res.All("Proxy-Authenticate"), ","), "stale=true") {
		t.Fatalf("the device at B with A's nonce: %d %s, want 407 stale=true", res.Code, res.Reason)
	}
	chB := pickChallenge(t, res.All("Proxy-Authenticate"), "MD5")
	mv.dial(number, "Proxy-Authorization: "+siptest.Answer(chB, "INVITE", "sip:"+number+"@"+testRealm, "replay001", "Secret-pass-1", 1, ""))
	if res := mv.final(5 * time.Second); res.Code != 200 {
		t.Fatalf("the device's answer to B's challenge: %d %s, want 200", res.Code, res.Reason)
	}
	mv.inDialog("BYE")
	if n := c.carrier.count(); n != 2 {
		t.Fatalf("carrier INVITEs: %d, want 2 (the device's two calls)", n)
	}
}

// waitAccountEverywhere waits until every edge accepts user's REGISTER
// (the account has reached every edge's configuration), each try from its
// own address so that no try counts towards a ban.
func waitAccountEverywhere(t *testing.T, c *cluster, user, pass string) {
	t.Helper()
	try := 0
	for _, e := range c.Edges {
		c.waitFor(10*time.Second, "account on edge "+e.Name, func() bool {
			try++
			u, err := siptest.Dial("udp", fmt.Sprintf("127.0.1.%d:0", try), e.SIP)
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			uu := &uac{t: t, c: u, server: e.SIP, callID: siptest.RandHex(8), tag: siptest.RandHex(4)}
			r := uu.login(user, pass, "MD5")
			return r.Code == 200
		})
	}
}
