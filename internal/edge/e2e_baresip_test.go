//go:build e2e

package edge

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk/internal/siptest"
)

// TestBaresipCall: baresip registers with a password account and calls a
// sipp carrier through the B2BUA; the call is hung up once by baresip and
// once by the carrier; the carrier sees a Call-ID different from baresip's.
func TestBaresipCall(t *testing.T) {
	siptest.Need(t, "baresip")
	siptest.Need(t, "sipp")
	st := openStore(t)
	f := fixture{t, st}
	acct := f.passwordAccount(f.customer(), "alice0001", "Secret-pass-1")
	carrierPort := siptest.FreePort(t, "127.0.0.9")
	s := startEdge(t, st, func(c *Config) { c.Carrier = fmt.Sprintf("sip:127.0.0.9:%d", carrierPort) })
	b := siptest.StartBaresip(t, siptest.BaresipConfig{IP: "127.0.0.5", SIPPort: siptest.FreePort(t, "127.0.0.5"), CtrlPort: siptest.FreePort(t, "127.0.0.5"),
		AOR: "sip:alice0001@" + testRealm, Password: "Secret-pass-1", Outbound: "sip:" + s.UDPAddr().String()})
	// baresip registers at start, before the control connection is up:
	// watch the registrar instead of the REGISTER_OK event.
	deadline := time.Now().Add(10 * time.Second)
	for len(s.regs.Lookup(acct.ID, time.Now())) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("baresip did not register\n%s", tail(b.Output(), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	callIDRe := regexp.MustCompile(`(?m)^Call-ID: (\S+)`)
	for _, tc := range []struct{ name, scenario string }{{"hangup by baresip", "uas_b2bua.xml"}, {"hangup by carrier", "uas_bye.xml"}} {
		t.Run(tc.name, func(t *testing.T) {
			uas := startSippUASScenario(t, tc.scenario, "127.0.0.9", carrierPort, 1)
			if _, err := b.Cmd("dial", "sip:+15551234567@"+testRealm); err != nil {
				t.Fatal(err)
			}
			ev, err := b.WaitEvent("CALL_ESTABLISHED", 10*time.Second)
			if err != nil {
				t.Fatalf("%v\n%s", err, tail(b.Output(), 3000))
			}
			if tc.scenario == "uas_b2bua.xml" {
				time.Sleep(500 * time.Millisecond)
				if _, err := b.Cmd("hangup", ""); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := b.WaitEvent("CALL_CLOSED", 10*time.Second); err != nil {
				t.Fatalf("%v\n%s", err, tail(b.Output(), 3000))
			}
			log := uas.wait(t)
			m := callIDRe.FindStringSubmatch(log)
			if m == nil {
				t.Fatalf("no Call-ID in the carrier's log:\n%s", tail(log, 2000))
			}
			bid, _ := ev["id"].(string)
			if bid == "" || m[1] == bid || strings.Contains(log, bid) {
				t.Fatalf("carrier Call-ID %q, baresip's %q", m[1], bid)
			}
			t.Logf("baresip Call-ID %s, carrier Call-ID %s", bid, m[1])
			deadline := time.Now().Add(3 * time.Second)
			for s.ActiveCalls() != 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if n := s.ActiveCalls(); n != 0 {
				t.Fatalf("active calls after hang-up: %d", n)
			}
		})
	}
}
