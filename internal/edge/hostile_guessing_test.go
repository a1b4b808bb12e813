//go:build hostile

package edge

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// TestHostileGuessingSpread reproduces issue 14 item 6: bans are per source,
// so 80 wrong passwords from 20 addresses (4 each, under the ban of 5) and
// then the right one from a new address got 200. With the failure budget per
// SIP account (defaults: 20 failures within 10 minutes), the right password
// from a new address is refused with 403 Too many failed passwords, while
// the customer's own device, which registered before, keeps registering.
// The customer gets the notice (audit log, SIP Accounts page), the
// operator a WARN line and sipdesk_sip_account_guards_total.
func TestHostileGuessingSpread(t *testing.T) {
	st := openStore(t)
	f := fixture{t, st}
	cust := f.customer()
	acct := f.passwordAccount(cust, "guess0001", "Secret-pass-1")
	var logs siptest.LockedBuffer
	s := runEdge(t, st, slog.New(slog.NewTextHandler(&logs, nil)), Config{Addr: fmt.Sprintf("127.0.0.1:%d", siptest.FreePort(t, "127.0.0.1")),
		NonceKey: testKey, PollInterval: 50 * time.Millisecond, Carrier: "sip:127.0.0.9:5090", MinExpires: 60 * time.Second, Registry: prometheus.NewRegistry()})
	waitApplied(t, s, st)

	own := newUAC(t, "udp", "127.0.0.40", s)
	if r := own.login("guess0001", "Secret-pass-1", "MD5"); r.Code != 200 {
		t.Fatalf("the customer's device: %d %s", r.Code, r.Reason)
	}

	start := time.Now()
	codes := map[int]int{}
	for i := range 80 {
		g := newUAC(t, "udp", fmt.Sprintf("127.0.0.%d", 100+i%20), s)
		codes[g.login("guess0001", fmt.Sprintf("Wrong-guess-%d", i), "MD5").Code]++
	}
	t.Logf("80 wrong guesses from 20 addresses in %v: answers %v", time.Since(start).Round(time.Millisecond), codes)
	for i := range 20 {
		if a := mustAddr(fmt.Sprintf("127.0.0.%d", 100+i)); s.shield.Banned(a) {
			t.Fatalf("%v banned: the spread guesses should stay under the per-address ban", a)
		}
	}

	// The right password from a new address: refused.
	r := newUAC(t, "udp", "127.0.0.130", s).login("guess0001", "Secret-pass-1", "MD5")
	if r.Code != 403 || r.Reason != "Too many failed passwords" {
		t.Fatalf("the right password from a new address after 80 spread guesses: %d %s, want 403 Too many failed passwords", r.Code, r.Reason)
	}
	// An INVITE with it too.
	inv := newUAC(t, "udp", "127.0.0.131", s)
	r = inv.send(inviteMsg(inv, "+15551230001", ""))
	ch := pickChallenge(t, r.All("Proxy-Authenticate"), "MD5")
	r = inv.send(inviteMsg(inv, "+15551230001", "Proxy-Authorization: "+siptest.Answer(ch, "INVITE", "sip:+15551230001@"+testRealm, "guess0001", "Secret-pass-1", 1, "")))
	if r.Code != 403 || r.Reason != "Too many failed passwords" {
		t.Fatalf("INVITE with the right password from a new address: %d %s", r.Code, r.Reason)
	}

	// The customer's own device keeps registering (a new challenge each time).
	for i := range 3 {
		u := newUAC(t, "udp", "127.0.0.40", s)
		if r := u.login("guess0001", "Secret-pass-1", "MD5"); r.Code != 200 {
			t.Fatalf("the customer's device, re-registration %d: %d %s", i+1, r.Code, r.Reason)
		}
	}

	// What the operator and the customer see.
	if n := counterValue(s.met.AccountGuards); n != 1 {
		t.Errorf("sipdesk_sip_account_guards_total %v, want 1", n)
	}
	if !strings.Contains(logs.String(), "SIP account guarded") || !strings.Contains(logs.String(), fmt.Sprintf("sip_account=%d", acct.ID)) {
		t.Errorf("no WARN line for the guard:\n%s", logs.String())
	}
	svc := app.New(st, app.Options{Realm: testRealm})
	var notices []*sipdesk.AuditEntry
	deadline := time.Now().Add(5 * time.Second)
	for len(notices) == 0 && time.Now().Before(deadline) {
		var err error
		if notices, err = svc.GuessingNotices(context.Background(), cust); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(notices) != 1 || notices[0].SIPAccountID != acct.ID || !strings.Contains(notices[0].Detail, "20 wrong passwords within 10 minutes") {
		t.Fatalf("customer notices %+v, want one for the account", notices)
	}
	t.Logf("notice: %s", notices[0].Detail)
	if strings.Contains(logs.String(), "Secret-pass-1") || strings.Contains(notices[0].Detail, "guess0001") {
		t.Error("a password or the username in the log or the notice")
	}
}
