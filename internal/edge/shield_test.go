package edge

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/shield"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// TestBan: 5 failed answers from one source ban it (dropped, no answer);
// a legitimate user from another address still registers.
func TestBan(t *testing.T) {
	st := openStore(t)
	f := fixture{t, st}
	cust := f.customer()
	f.passwordAccount(cust, "alice0001", "Secret-pass-1")
	s := startEdge(t, st, nil)
	for i := range 5 {
		u := newUAC(t, "udp", "127.0.0.66", s)
		if r := u.login("alice0001", "wrong-Pass-12", "MD5"); r.Code != 401 {
			t.Fatalf("failure %d: %d", i+1, r.Code)
		}
	}
	u := newUAC(t, "udp", "127.0.0.66", s)
	u.cseq++
	u.c.Send("OPTIONS sip:" + testRealm + " SIP/2.0\nVia: SIP/2.0/UDP " + u.c.LocalAddr() + ";branch=z9hG4bK" + siptest.RandHex(6) +
		"\nFrom: <sip:probe@x>;tag=1\nTo: <sip:" + testRealm + ">\nCall-ID: " + siptest.RandHex(6) + "\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n")
	if r, err := u.c.Recv(700 * time.Millisecond); err == nil {
		t.Fatalf("banned source got an answer: %d %s", r.Code, r.Reason)
	}
	if s.dropped.Load() == 0 {
		t.Fatal("no packet counted as dropped")
	}
	ok := newUAC(t, "udp", "127.0.0.67", s)
	if r := ok.login("alice0001", "Secret-pass-1", "MD5"); r.Code != 200 {
		t.Fatalf("other source: %d", r.Code)
	}
}

// TestStatusChangeDropsBindings: inactive drops the binding within 2 s and
// the next REGISTER is refused; a password change and deletion do too.
func TestStatusChangeDropsBindings(t *testing.T) {
	st := openStore(t)
	f := fixture{t, st}
	cust := f.customer()
	a := f.passwordAccount(cust, "alice0001", "Secret-pass-1")
	b := f.passwordAccount(cust, "bob000001", "Secret-pass-1")
	c := f.passwordAccount(cust, "carol0001", "Secret-pass-1")
	s := startEdge(t, st, nil)
	for _, user := range []string{"alice0001", "bob000001", "carol0001"} {
		if r := newUAC(t, "udp", "127.0.0.2", s).login(user, "Secret-pass-1", "MD5"); r.Code != 200 {
			t.Fatal(user, r.Code)
		}
	}
	gone := func(id int64) {
		t.Helper()
		start := time.Now()
		for len(s.regs.Lookup(id, time.Now())) > 0 {
			if time.Since(start) > 2*time.Second {
				t.Fatalf("binding of %d still there after 2 s", id)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("binding of account %d gone after %v", id, time.Since(start).Round(time.Millisecond))
	}
	f.modify(a, func(x *sipdesk.SIPAccount) { x.Status = sipdesk.StatusInactive })
	gone(a.ID)
	if r := newUAC(t, "udp", "127.0.0.2", s).login("alice0001", "Secret-pass-1", "MD5"); r.Code != 403 || r.Reason != "Account inactive" {
		t.Fatalf("after inactive: %d %s", r.Code, r.Reason)
	}
	f.modify(b, func(x *sipdesk.SIPAccount) {
		x.Digest = sipdesk.NewDigestHashes("bob000001", testRealm, "New-secret-22")
	})
	gone(b.ID)
	f.update(func(tx sipdesk.Tx) error { return tx.DeleteSIPAccount(0, c.ID) })
	gone(c.ID)
	if r := newUAC(t, "udp", "127.0.0.2", s).login("carol0001", "Secret-pass-1", "MD5"); r.Code != 401 {
		t.Fatalf("deleted: %d", r.Code)
	}
}

// TestTorture sends the RFC 4475 messages shipped with sipgo over UDP and
// TCP: the server must not crash and must still answer a valid REGISTER.
func TestTorture(t *testing.T) {
	dir := filepath.Join(sipgoDir(t), "sip", "testdata", "torture")
	var files []string
	for _, sub := range []string{"valid", "invalid"} {
		m, _ := filepath.Glob(filepath.Join(dir, sub, "*.dat"))
		files = append(files, m...)
	}
	if len(files) < 30 {
		t.Fatalf("torture messages not found in %s", dir)
	}
	st := openStore(t)
	f := fixture{t, st}
	f.passwordAccount(f.customer(), "alice0001", "Secret-pass-1")
	s := startEdge(t, st, func(c *Config) { c.BanFailures = -1 })
	for _, network := range []string{"udp", "tcp"} {
		answered := 0
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			c, err := siptest.Dial(network, "127.0.0.7:0", s.UDPAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			c.SendRaw(b)
			if _, err := c.Recv(40 * time.Millisecond); err == nil {
				answered++
			}
			c.Close()
		}
		t.Logf("%s: %d torture messages sent, %d answered", network, len(files), answered)
		u := newUAC(t, network, "127.0.0.8", s)
		if r := u.login("alice0001", "Secret-pass-1", "MD5"); r.Code != 200 {
			t.Fatalf("%s: REGISTER after torture: %d", network, r.Code)
		}
	}
}

// sipgoDir is the module directory of the sipgo version go.mod names.
func sipgoDir(t *testing.T) string {
	t.Helper()
	out, err := runGo("list", "-m", "-f", "{{.Dir}}", "github.com/emiago/sipgo")
	if err != nil || strings.TrimSpace(out) == "" {
		t.Fatalf("go list sipgo: %v", err)
	}
	return strings.TrimSpace(out)
}

// TestBindingsSurviveRestart: bindings are kept in the store and loaded by
// the next edge process.
func TestBindingsSurviveRestart(t *testing.T) {
	st := openStore(t)
	f := fixture{t, st}
	a := f.passwordAccount(f.customer(), "alice0001", "Secret-pass-1")
	t.Run("first edge", func(t *testing.T) {
		s := startEdge(t, st, nil)
		if r := newUAC(t, "udp", "127.0.0.2", s).login("alice0001", "Secret-pass-1", "MD5"); r.Code != 200 {
			t.Fatal(r.Code)
		}
	})
	s := startEdge(t, st, nil)
	if n := len(s.regs.Lookup(a.ID, time.Now())); n != 1 {
		t.Fatalf("bindings after restart: %d", n)
	}
}

// TestChallengeFloodBan: a source sending more credential-less requests per
// second than ChallengeRate is banned (a scan or flood answered only with
// challenges would never fail an answer); another source still registers.
func TestChallengeFloodBan(t *testing.T) {
	st := openStore(t)
	f := fixture{t, st}
	f.passwordAccount(f.customer(), "alice0001", "Secret-pass-1")
	s := startEdge(t, st, func(c *Config) { c.ChallengeRate = 20 })
	flood := newUAC(t, "udp", "127.0.0.68", s)
	answered := 0
	for i := range 40 {
		flood.cseq++
		flood.c.Send("REGISTER sip:" + testRealm + " SIP/2.0\nVia: SIP/2.0/UDP " + flood.c.LocalAddr() + ";branch=z9hG4bK" + siptest.RandHex(8) +
			"\nFrom: <sip:scan" + strings.Repeat("1", i%3+1) + "@" + testRealm + ">;tag=1\nTo: <sip:scan@" + testRealm + ">\nCall-ID: " + siptest.RandHex(8) +
			"\nCSeq: 1 REGISTER\nContact: <sip:scan@" + flood.c.LocalAddr() + ">\nContent-Length: 0\n\n")
		if _, err := flood.c.Recv(300 * time.Millisecond); err == nil {
			answered++
		}
	}
	if answered > 21 || !s.shield.Banned(netip.MustParseAddr("127.0.0.68")) {
		t.Fatalf("flood of 40 credential-less REGISTERs: %d answered, banned %v", answered, s.shield.Banned(netip.MustParseAddr("127.0.0.68")))
	}
	if r := newUAC(t, "udp", "127.0.0.69", s).login("alice0001", "Secret-pass-1", "MD5"); r.Code != 200 {
		t.Fatalf("other source: %d", r.Code)
	}
	// The check is off by default: a busy PBX or a benchmark is not a flood.
	sh := shield.New(5, time.Minute, time.Minute, 0, time.Now)
	for range 1000 {
		if sh.Challenged(netip.MustParseAddr("127.0.0.70")) {
			t.Fatal("banned with the check off")
		}
	}
}
