package auth

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestReplayAcrossNodes: an INVITE's Proxy-Authorization answered at node
// A, replayed at node B (same nonce key) from another address with a new
// Call-ID, is refused with a fresh stale=true challenge, as the same
// replay at A is; nothing of it counts as a failed password.
func TestReplayAcrossNodes(t *testing.T) {
	a, b := newNode(t, Config{}, time.Now), newNode(t, Config{}, time.Now)
	accts := accounts{"alice0001": passwordAccount(10, "alice0001")}

	_, res := a.authenticate(t, req(t, sip.INVITE, "alice0001", "call-1", "192.0.2.20:5062", "UDP"), accts)
	if res == nil || res.StatusCode != 407 {
		t.Fatalf("INVITE without credentials: %v, want 407", res)
	}
	captured := answerHeader(challengeOf(t, res), sip.INVITE, "alice0001", testPass, 1)
	if acct, res := a.authenticate(t, req(t, sip.INVITE, "alice0001", "call-1", "192.0.2.20:5062", "UDP", captured), accts); acct == nil {
		t.Fatalf("the device's own answer at A: %v, want accepted", res)
	}
	for _, tc := range []struct {
		name string
		at   *node
	}{{"at A", a}, {"at B", b}} {
		acct, res := tc.at.authenticate(t, req(t, sip.INVITE, "alice0001", "replay-"+tc.name, "203.0.113.66:5060", "UDP", captured), accts)
		if acct != nil || res == nil || res.StatusCode != 407 || !isStale(res) {
			t.Errorf("replay %s: account %v, answer %v; want 407 with stale=true", tc.name, acct, res)
		}
	}
	for _, n := range []*node{a, b} {
		if strings.Contains(n.log.String(), "auth failed") {
			t.Errorf("a replay of a right answer was counted as a failed password: %s", n.log.String())
		}
	}
}

// TestDeviceAlternatingNodes: a device whose requests alternate between
// two nodes (DNS SRV) and reuse the last nonce it got, as devices do, gets
// a stale=true challenge at the other node, answers it and is accepted,
// every time, without ever counting as a failure (no ban).
func TestDeviceAlternatingNodes(t *testing.T) {
	nodes := []*node{newNode(t, Config{}, time.Now), newNode(t, Config{}, time.Now)}
	accts := accounts{"alice0001": passwordAccount(10, "alice0001")}
	const src = "192.0.2.20:5062"
	_, res := nodes[0].authenticate(t, req(t, sip.REGISTER, "alice0001", "reg", src, "UDP"), accts)
	ch, nc := challengeOf(t, res), uint32(1)
	for i := range 10 {
		n := nodes[i%2]
		acct, res := n.authenticate(t, req(t, sip.REGISTER, "alice0001", "reg", src, "UDP", answerHeader(ch, sip.REGISTER, "alice0001", testPass, nc)), accts)
		nc++
		if i == 0 {
			if acct == nil {
				t.Fatalf("answer to the node's own nonce: %v", res)
			}
			continue
		}
		if acct != nil || res == nil || res.StatusCode != 401 || !isStale(res) {
			t.Fatalf("round %d: the other node's nonce: account %v, answer %v; want 401 stale=true", i, acct, res)
		}
		ch, nc = challengeOf(t, res), 1
		if acct, res := n.authenticate(t, req(t, sip.REGISTER, "alice0001", "reg", src, "UDP", answerHeader(ch, sip.REGISTER, "alice0001", testPass, nc)), accts); acct == nil {
			t.Fatalf("round %d: answer to the fresh challenge: %v", i, res)
		}
		nc++
	}
	for i, n := range nodes {
		if n.sh.Banned(mustAddr(t, src)) || strings.Contains(n.log.String(), "auth failed") {
			t.Fatalf("node %d counted the device's stale answers as failures: %s", i, n.log.String())
		}
	}
}

// TestForeignNonceWrongPassword: a wrong answer to another node's nonce is
// a failed password like any other (the stale path is for right answers).
func TestForeignNonceWrongPassword(t *testing.T) {
	a, b := newNode(t, Config{}, time.Now), newNode(t, Config{}, time.Now)
	accts := accounts{"alice0001": passwordAccount(10, "alice0001")}
	_, res := a.authenticate(t, req(t, sip.REGISTER, "alice0001", "reg", "192.0.2.30:5060", "UDP"), accts)
	ch := challengeOf(t, res)
	for i := range 5 {
		_, res := b.authenticate(t, req(t, sip.REGISTER, "alice0001", fmt.Sprint("g", i), "192.0.2.30:5060", "UDP", answerHeader(ch, sip.REGISTER, "alice0001", "Wrong-pass-9", 1)), accts)
		if res == nil || res.StatusCode != 401 || isStale(res) {
			t.Fatalf("wrong answer %d: %v, want a plain 401", i, res)
		}
	}
	if !b.sh.Banned(mustAddr(t, "192.0.2.30:5060")) {
		t.Fatal("5 wrong answers to a foreign nonce did not ban the source")
	}
}
