//go:build e2e

package edge

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/siptest"
	"github.com/sipdesk/sipdesk/internal/web/ops"
)

// refusedScenario derives a sipp scenario from name in testdata/sipp that
// stops at the final answer to the authenticated request (after the
// challenge) and expects code there: REGISTER → 401 → REGISTER + auth →
// code; INVITE → 407 → ACK → INVITE + auth → code → ACK.
func refusedScenario(t *testing.T, name string, code int) string {
	t.Helper()
	b, err := os.ReadFile(scenario(name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	switch name {
	case "register_auth.xml":
		s = strings.Replace(s, `<recv response="200" rtd="1"/>`, fmt.Sprintf(`<recv response="%d" rtd="1"/>`, code), 1)
	case "invite_auth.xml":
		i := strings.LastIndex(s, `<recv response="100" optional="true"/>`)
		s = strings.Replace(s[:i], ` start_rtd="1"`, "", 1) + fmt.Sprintf(`<recv response="100" optional="true"/>
  <recv response="%d"/>
  <send>
    <![CDATA[

      ACK sip:[service]@[domain] SIP/2.0
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      CSeq: 2 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
</scenario>
`, code)
	default:
		t.Fatalf("no refused variant of %s", name)
	}
	p := filepath.Join(t.TempDir(), "refused_"+name)
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sippAnswers runs sipp with args plus a message trace and returns the
// status lines of the answers it received ("SIP/2.0 403 Account suspended").
func sippAnswers(t *testing.T, args ...string) ([]string, string, error) {
	t.Helper()
	trace := filepath.Join(t.TempDir(), "msg.log")
	out, err := runSipp(t, append(args, "-trace_msg", "-message_file", trace)...)
	b, _ := os.ReadFile(trace)
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "SIP/2.0 ") {
			lines = append(lines, l)
		}
	}
	return lines, out, err
}

// TestSippSuspendedCustomer: a customer's password account registers and
// its IP account calls; an operator suspends the customer through the
// service: the registration is dropped at once, the next REGISTER and
// INVITE (password and IP accounts) get 403 Account suspended; unsuspended,
// both work again.
func TestSippSuspendedCustomer(t *testing.T) {
	siptest.Need(t, "sipp")
	st := openStore(t)
	f := fixture{t, st}
	cust := f.customer()
	acct := f.passwordAccount(cust, "suspuser1", "Susp-Pass-123")
	f.ipAccount(cust, "trunk", "", "127.0.0.5/32")
	svc := app.New(st, app.Options{Realm: testRealm, Log: testLogger(t)})
	sup, err := svc.OpsCreateOperator(context.Background(), app.ShellOperator, "sup@ops.example.com", "Operator-Pass-123", sipdesk.RoleSupport)
	if err != nil {
		t.Fatal(err)
	}
	carrierPort := siptest.FreePort(t, "127.0.0.9")
	s := startEdge(t, st, func(c *Config) { c.Carrier = fmt.Sprintf("sip:127.0.0.9:%d", carrierPort) })
	waitApplied(t, s, st)
	dir := t.TempDir()
	users := filepath.Join(dir, "users.csv")
	os.WriteFile(users, []byte("SEQUENTIAL\nsuspuser1;Susp-Pass-123;x;acct;[authentication username=suspuser1 password=Susp-Pass-123]\n"), 0o600)
	trunk := filepath.Join(dir, "trunk.csv")
	os.WriteFile(trunk, []byte("SEQUENTIAL\n+15551234567;trunk;Trunk\n"), 0o600)
	// The password account's device is on 127.0.0.7, the IP account's PBX
	// on 127.0.0.5.
	common := []string{"-key", "domain", testRealm, "-bind_local", "-m", "1", "-timeout", "20s", "-recv_timeout", "5000"}
	register := func(code int) ([]string, string, error) {
		sf := scenario("register_auth.xml")
		if code != 200 {
			sf = refusedScenario(t, "register_auth.xml", code)
		}
		return sippAnswers(t, append([]string{"-sf", sf, "-inf", users, "-i", "127.0.0.7"}, append(common, s.UDPAddr().String())...)...)
	}
	invitePassword := func() ([]string, string, error) {
		return sippAnswers(t, append([]string{"-sf", refusedScenario(t, "invite_auth.xml", 403), "-inf", users, "-s", "+15551234567", "-mp", "21100", "-i", "127.0.0.7"},
			append(common, s.UDPAddr().String())...)...)
	}
	inviteIP := func() ([]string, string, error) {
		return sippAnswers(t, append([]string{"-sf", sippUAC(t, "hangup"), "-inf", trunk, "-d", "200", "-mp", "21200", "-i", "127.0.0.5"},
			append(common, s.UDPAddr().String())...)...)
	}
	has := func(lines []string, want string) bool {
		for _, l := range lines {
			if l == want {
				return true
			}
		}
		return false
	}

	if lines, out, err := register(200); err != nil || !has(lines, "SIP/2.0 200 OK") {
		t.Fatalf("REGISTER before the suspension: %v %v\n%s", err, lines, tail(out, 2000))
	}
	if n := len(s.regs.Lookup(acct.ID, time.Now())); n != 1 {
		t.Fatalf("bindings before the suspension: %d", n)
	}

	if _, err := svc.OpsSuspendCustomer(context.Background(), sup.Operator, cust, "unpaid invoices"); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, s, st)
	if n := len(s.regs.Lookup(acct.ID, time.Now())); n != 0 {
		t.Fatalf("bindings after the suspension: %d, want the registration dropped", n)
	}
	s.pol.SettleBindings(5 * time.Second)
	if rs, _ := s.pol.StoredBindings(context.Background(), acct.ID); len(rs) != 0 {
		t.Fatalf("stored bindings after the suspension: %d", len(rs))
	}
	for _, c := range []struct {
		what string
		run  func() ([]string, string, error)
	}{
		{"REGISTER", func() ([]string, string, error) { return register(403) }},
		{"INVITE of the password account", invitePassword},
		{"INVITE of the IP account", inviteIP},
	} {
		lines, out, err := c.run()
		if err != nil || !has(lines, "SIP/2.0 403 Account suspended") {
			t.Fatalf("%s of a suspended customer: %v, answers %v, want 403 Account suspended\n%s", c.what, err, lines, tail(out, 2000))
		}
		t.Logf("%s while suspended: %s", c.what, strings.Join(lines, ", "))
	}

	if _, err := svc.OpsUnsuspendCustomer(context.Background(), sup.Operator, cust); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, s, st)
	if lines, out, err := register(200); err != nil || !has(lines, "SIP/2.0 200 OK") {
		t.Fatalf("REGISTER after the suspension was lifted: %v %v\n%s", err, lines, tail(out, 2000))
	}
	uas := startSippUAS(t, "127.0.0.9", carrierPort, 1)
	if lines, out, err := inviteIP(); err != nil || !has(lines, "SIP/2.0 200 OK") || has(lines, "SIP/2.0 403 Account suspended") {
		t.Fatalf("INVITE after the suspension was lifted: %v %v\n%s", err, lines, tail(out, 2000))
	}
	if log := uas.wait(t); !strings.Contains(log, "INVITE sip:+15551234567@127.0.0.9") {
		t.Fatalf("the carrier did not get the call:\n%s", tail(log, 2000))
	}
}

// TestSippBanSharedAcrossEdges: two edges on one store (one SQLite file,
// two edge servers in this process, each with its own shield and ban
// sync). A source that guesses passwords at edge A is banned there; edge B
// drops it too within 2 s (it learned the ban from the store, not from its
// own counts). Lifting the ban through the operator API lets the source
// register at both edges again at once.
func TestSippBanSharedAcrossEdges(t *testing.T) {
	siptest.Need(t, "sipp")
	st := openStore(t)
	f := fixture{t, st}
	cust := f.customer()
	f.passwordAccount(cust, "banuser1", "Ban-Pass-1234")
	a := startEdge(t, st, func(c *Config) { c.Node = "edge-a"; c.PollInterval = time.Second })
	b := startEdge(t, st, func(c *Config) { c.Node = "edge-b"; c.PollInterval = time.Second })
	waitApplied(t, a, st)
	waitApplied(t, b, st)
	svc := app.New(st, app.Options{Realm: testRealm, Log: testLogger(t)})
	op, err := svc.OpsCreateOperator(context.Background(), app.ShellOperator, "sup@ops.example.com", "Operator-Pass-123", sipdesk.RoleSupport)
	if err != nil {
		t.Fatal(err)
	}
	token, err := svc.OpsCreateOperatorToken(context.Background(), app.ShellOperator, op.Operator.ID, "test")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ops.New(svc, ops.Options{}).Register(mux)
	web := httptest.NewServer(mux)
	t.Cleanup(web.Close)

	dir := t.TempDir()
	wrong := filepath.Join(dir, "wrong.csv")
	os.WriteFile(wrong, []byte("SEQUENTIAL\nbanuser1;x;x;acct;[authentication username=banuser1 password=Wrong-Pass-1]\n"), 0o600)
	right := filepath.Join(dir, "right.csv")
	os.WriteFile(right, []byte("SEQUENTIAL\nbanuser1;x;x;acct;[authentication username=banuser1 password=Ban-Pass-1234]\n"), 0o600)
	src := netip.MustParseAddr("127.0.0.6")
	register := func(s *Server, inf string, calls int) ([]string, string, error) {
		return sippAnswers(t, "-sf", scenario("register_auth.xml"), "-inf", inf, "-key", "domain", testRealm, "-i", src.String(), "-bind_local",
			"-m", fmt.Sprint(calls), "-r", "1", "-rp", "100", "-timeout", "15s", "-recv_timeout", "1500", s.UDPAddr().String())
	}
	count := func(lines []string, prefix string) (n int) {
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				n++
			}
		}
		return n
	}

	// Guessing at edge A: 5 wrong answers ban the source there.
	lines, out, _ := register(a, wrong, 5)
	if !a.shield.Banned(src) {
		t.Fatalf("edge A did not ban the guessing source; answers %v\n%s", lines, tail(out, 2000))
	}
	banned := time.Now() // sipp ends at the 5th failure's answer
	for !b.shield.Banned(src) {
		if time.Since(banned) > 2*time.Second {
			t.Fatal("edge B did not apply edge A's ban within 2 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("edge B applied edge A's ban after %v", time.Since(banned).Round(time.Millisecond))
	// Edge B never saw a failure from the source: it drops the right password.
	lines, _, err = register(b, right, 1)
	if err == nil || count(lines, "SIP/2.0 ") != 0 {
		t.Fatalf("edge B answered the banned source: %v %v", err, lines)
	}

	// The operator API lists the ban with its node, and lifts it.
	req, _ := http.NewRequest("GET", web.URL+ops.APIPrefix+"/bans", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"source":"127.0.0.6"`) || !strings.Contains(string(body), `"node":"edge-a"`) {
		t.Fatalf("GET /bans: %d %s", res.StatusCode, body)
	}
	req, _ = http.NewRequest("DELETE", web.URL+ops.APIPrefix+"/bans/127.0.0.6", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err = http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE /bans/127.0.0.6: %v %v", res, err)
	}
	res.Body.Close()
	lifted := time.Now()
	for a.shield.Banned(src) || b.shield.Banned(src) {
		if time.Since(lifted) > 500*time.Millisecond {
			t.Fatalf("the lift did not reach both edges within 500 ms (poll every 1 s: it must come with the change signal)")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("both edges dropped the lifted ban %v after the DELETE answered", time.Since(lifted).Round(10*time.Microsecond))
	for name, s := range map[string]*Server{"A": a, "B": b} {
		if lines, out, err := register(s, right, 1); err != nil || count(lines, "SIP/2.0 200 OK") != 1 {
			t.Fatalf("REGISTER at edge %s after the lift: %v %v\n%s", name, err, lines, tail(out, 2000))
		}
	}
}
