package edge

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/auth"
	"github.com/sipdesk/sipdesk/internal/edge/transport"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

func TestRegister(t *testing.T) {
	st := openStore(t)
	f := fixture{t, st}
	cust := f.customer()
	good := f.passwordAccount(cust, "alice0001", "Secret-pass-1")
	f.passwordAccount(cust, "inactive01", "Secret-pass-1", func(a *sipdesk.SIPAccount) { a.Status = sipdesk.StatusInactive })
	f.passwordAccount(cust, "inprocess1", "Secret-pass-1", func(a *sipdesk.SIPAccount) { a.Status = sipdesk.StatusInProcess })
	f.passwordAccount(cust, "aclacct01", "Secret-pass-1", func(a *sipdesk.SIPAccount) {
		a.AllowedIPs, _ = sipdesk.ParseAllowedIPs([]string{"127.0.0.50"}, false, true)
	})
	s := startEdge(t, st, func(c *Config) { c.BanFailures = -1 })

	t.Run("sha256 ok", func(t *testing.T) {
		u := newUAC(t, "udp", "127.0.0.2", s)
		r := u.login("alice0001", "Secret-pass-1", "SHA-256")
		if r.Code != 200 {
			t.Fatalf("got %d %s", r.Code, r.Reason)
		}
		if len(r.All("Contact")) != 1 || !strings.Contains(r.Get("Contact"), "expires=") {
			t.Fatalf("contacts %q", r.All("Contact"))
		}
		if n := len(s.regs.Lookup(good.ID, time.Now())); n != 1 {
			t.Fatalf("bindings %d", n)
		}
	})
	t.Run("md5 ok", func(t *testing.T) {
		u := newUAC(t, "tcp", "127.0.0.3", s)
		if r := u.login("alice0001", "Secret-pass-1", "MD5"); r.Code != 200 {
			t.Fatalf("got %d %s", r.Code, r.Reason)
		}
	})
	t.Run("challenge offers md5 and sha256", func(t *testing.T) {
		u := newUAC(t, "udp", "127.0.0.2", s)
		r := u.register("alice0001", "")
		ws := r.All("WWW-Authenticate")
		if r.Code != 401 || len(ws) != 2 || !strings.Contains(ws[0], "MD5") || !strings.Contains(ws[1], "SHA-256") || !strings.Contains(ws[0], `qop="auth"`) {
			t.Fatalf("%d %q", r.Code, ws)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		u := newUAC(t, "udp", "127.0.0.2", s)
		if r := u.login("alice0001", "wrong-Pass-12", "MD5"); r.Code != 401 {
			t.Fatalf("got %d %s", r.Code, r.Reason)
		}
	})
	t.Run("unknown user gets the same challenge", func(t *testing.T) {
		u := newUAC(t, "udp", "127.0.0.2", s)
		known := u.register("alice0001", "")
		u2 := newUAC(t, "udp", "127.0.0.2", s)
		unknown := u2.register("nobody0001", "")
		if known.Code != unknown.Code || known.Reason != unknown.Reason || len(known.Headers) != len(unknown.Headers) {
			t.Fatalf("known %d %v, unknown %d %v", known.Code, known.Headers, unknown.Code, unknown.Headers)
		}
		strip := func(v string) string { // the nonce differs, nothing else
			i := strings.Index(v, `nonce="`)
			j := strings.Index(v[i+7:], `"`)
			return v[:i] + v[i+7+j:]
		}
		for i, v := range known.All("WWW-Authenticate") {
			if strip(v) != strip(unknown.All("WWW-Authenticate")[i]) {
				t.Fatalf("challenges differ: %q vs %q", v, unknown.All("WWW-Authenticate")[i])
			}
		}
		if r := u2.login("nobody0001", "Secret-pass-1", "MD5"); r.Code != 401 {
			t.Fatalf("unknown answer: %d", r.Code)
		}
	})
	t.Run("three failures on one call-id give 403", func(t *testing.T) {
		u := newUAC(t, "udp", "127.0.0.2", s)
		var last *siptest.Msg
		for range 3 {
			last = u.login("alice0001", "wrong-Pass-12", "MD5")
		}
		if last.Code != 403 {
			t.Fatalf("got %d %s", last.Code, last.Reason)
		}
	})
	t.Run("replayed nonce count", func(t *testing.T) {
		u := newUAC(t, "udp", "127.0.0.2", s)
		r := u.register("alice0001", "")
		ch := pickChallenge(t, r.All("WWW-Authenticate"), "MD5")
		auth := siptest.Answer(ch, "REGISTER", "sip:"+testRealm, "alice0001", "Secret-pass-1", 1, "abc")
		if r := u.register("alice0001", auth); r.Code != 200 {
			t.Fatalf("first: %d", r.Code)
		}
		if r := u.register("alice0001", auth); r.Code != 401 {
			t.Fatalf("replay: %d %s", r.Code, r.Reason)
		} else if !strings.Contains(strings.Join(r.All("WWW-Authenticate"), ","), "stale=true") {
			// a retransmission that outlived its transaction, not a guess
			t.Fatalf("replay not answered as stale: %q", r.All("WWW-Authenticate"))
		}
		auth2 := siptest.Answer(ch, "REGISTER", "sip:"+testRealm, "alice0001", "Secret-pass-1", 2, "abd")
		if r := u.register("alice0001", auth2); r.Code != 200 {
			t.Fatalf("next nc: %d", r.Code)
		}
	})
	t.Run("a retransmission gets the same answer while its transaction lingers, a fresh one after", func(t *testing.T) {
		u := newUAC(t, "udp", "127.0.0.2", s)
		again := func(msg string, after time.Duration) *siptest.Msg {
			time.Sleep(after)
			return u.send(msg)
		}
		soon, late := 100*time.Millisecond, transport.NonInviteServerLinger+300*time.Millisecond
		msg := u.registerMsg("alice0001", "")
		r1, r2, r3 := u.send(msg), again(msg, soon), again(msg, late)
		if r1.Code != 401 || r2.Code != 401 || r1.Get("WWW-Authenticate") != r2.Get("WWW-Authenticate") {
			t.Fatalf("retransmitted REGISTER: %d %q, then %d %q; want the same challenge resent", r1.Code, r1.Get("WWW-Authenticate"), r2.Code, r2.Get("WWW-Authenticate"))
		}
		if r3.Code != 401 || r3.Get("WWW-Authenticate") == r1.Get("WWW-Authenticate") {
			t.Fatalf("REGISTER retransmitted after the linger: %d %q; want a fresh challenge", r3.Code, r3.Get("WWW-Authenticate"))
		}
		ch := pickChallenge(t, r1.All("WWW-Authenticate"), "MD5")
		ok := u.registerMsg("alice0001", siptest.Answer(ch, "REGISTER", "sip:"+testRealm, "alice0001", "Secret-pass-1", 1, "c1"))
		if r := u.send(ok); r.Code != 200 {
			t.Fatalf("answer: %d %s", r.Code, r.Reason)
		}
		if r := again(ok, soon); r.Code != 200 {
			t.Fatalf("retransmitted answer: %d %s; want its 200 resent", r.Code, r.Reason)
		}
		if r := again(ok, late); r.Code != 401 || !strings.Contains(strings.Join(r.All("WWW-Authenticate"), ","), "stale=true") {
			t.Fatalf("answer retransmitted after the linger: %d %q; want a stale challenge (its nonce count is used)", r.Code, r.All("WWW-Authenticate"))
		}
		bad := u.registerMsg("alice0001", siptest.Answer(ch, "REGISTER", "sip:"+testRealm, "alice0001", "wrong-Pass-12", 2, "c2"))
		b1, b2 := u.send(bad), again(bad, soon)
		if b1.Code != 401 || b2.Code != 401 || b1.Get("WWW-Authenticate") != b2.Get("WWW-Authenticate") {
			t.Fatalf("retransmitted wrong answer: %d %q, then %d %q; want the same answer resent", b1.Code, b1.Get("WWW-Authenticate"), b2.Code, b2.Get("WWW-Authenticate"))
		}
	})
	t.Run("stale nonce", func(t *testing.T) {
		u := newUAC(t, "udp", "127.0.0.2", s)
		old := auth.NewDigest(testRealm, testKey, func() time.Time { return time.Now().Add(-6 * time.Minute) })
		ch := siptest.Challenge{Realm: testRealm, Nonce: old.Nonce(), Algorithm: "MD5", QOP: "auth"}
		r := u.register("alice0001", siptest.Answer(ch, "REGISTER", "sip:"+testRealm, "alice0001", "Secret-pass-1", 1, ""))
		if r.Code != 401 || !strings.Contains(r.Get("WWW-Authenticate"), "stale=true") {
			t.Fatalf("got %d %q", r.Code, r.All("WWW-Authenticate"))
		}
	})
	for _, tc := range []struct{ user, reason string }{
		{"inactive01", "Account inactive"},
		{"inprocess1", "Account not ready"},
		{"aclacct01", "Source not allowed"},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			u := newUAC(t, "udp", "127.0.0.2", s)
			if r := u.login(tc.user, "Secret-pass-1", "MD5"); r.Code != 403 || r.Reason != tc.reason {
				t.Fatalf("got %d %s", r.Code, r.Reason)
			}
		})
	}
	t.Run("acl allows its address", func(t *testing.T) {
		u := newUAC(t, "udp", "127.0.0.50", s)
		if r := u.login("aclacct01", "Secret-pass-1", "MD5"); r.Code != 200 {
			t.Fatalf("got %d %s", r.Code, r.Reason)
		}
	})
	t.Run("too brief", func(t *testing.T) {
		u := newUAC(t, "udp", "127.0.0.2", s)
		r := u.register("alice0001", "", "Expires: 10")
		ch := pickChallenge(t, r.All("WWW-Authenticate"), "MD5")
		r = u.register("alice0001", siptest.Answer(ch, "REGISTER", "sip:"+testRealm, "alice0001", "Secret-pass-1", 1, ""), "Expires: 10")
		if r.Code != 423 || r.Get("Min-Expires") != "60" {
			t.Fatalf("got %d %s %q", r.Code, r.Reason, r.Get("Min-Expires"))
		}
	})
	t.Run("unregister star", func(t *testing.T) {
		u := newUAC(t, "udp", "127.0.0.4", s)
		if r := u.login("alice0001", "Secret-pass-1", "MD5"); r.Code != 200 {
			t.Fatal(r.Code)
		}
		before := len(s.regs.Lookup(good.ID, time.Now()))
		r := u.register("alice0001", "")
		ch := pickChallenge(t, r.All("WWW-Authenticate"), "MD5")
		u.cseq++
		msg := "REGISTER sip:" + testRealm + " SIP/2.0\nVia: SIP/2.0/UDP " + u.c.LocalAddr() + ";branch=z9hG4bK" + siptest.RandHex(6) +
			"\nFrom: <sip:alice0001@" + testRealm + ">;tag=" + u.tag + "\nTo: <sip:alice0001@" + testRealm + ">\nCall-ID: " + u.callID +
			"\nCSeq: 9 REGISTER\nContact: *\nExpires: 0\nAuthorization: " + siptest.Answer(ch, "REGISTER", "sip:"+testRealm, "alice0001", "Secret-pass-1", 1, "") +
			"\nContent-Length: 0\n\n"
		u.c.Send(msg)
		r, err := u.c.RecvResponse(2*time.Second, 200)
		if err != nil || r.Code != 200 {
			t.Fatalf("unregister: %v %+v", err, r)
		}
		if before == 0 || len(s.regs.Lookup(good.ID, time.Now())) != 0 {
			t.Fatalf("bindings before %d, after %d", before, len(s.regs.Lookup(good.ID, time.Now())))
		}
		s.pol.SettleBindings(2 * time.Second)
		var stored []*sipdesk.Registration
		st.View(context.Background(), func(tx sipdesk.Tx) error { stored, _ = tx.Registrations(good.ID); return nil })
		if len(stored) != 0 {
			t.Fatalf("stored %d", len(stored))
		}
	})
	t.Run("options", func(t *testing.T) {
		u := newUAC(t, "udp", "127.0.0.2", s)
		u.c.Send("OPTIONS sip:" + testRealm + " SIP/2.0\nVia: SIP/2.0/UDP " + u.c.LocalAddr() + ";branch=z9hG4bK" + siptest.RandHex(6) +
			"\nFrom: <sip:probe@x>;tag=1\nTo: <sip:" + testRealm + ">\nCall-ID: " + siptest.RandHex(6) + "\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n")
		r, err := u.c.RecvResponse(2*time.Second, 200)
		if err != nil || r.Code != 200 {
			t.Fatalf("%v %+v", err, r)
		}
	})
}

// failingStore fails every write while down is set.
type failingStore struct {
	sipdesk.Store
	down atomic.Bool
}

func (f *failingStore) Update(ctx context.Context, fn func(sipdesk.Tx) error) error {
	if f.down.Load() {
		return sipdesk.Errorf(sipdesk.EUnavailable, "store down (test)")
	}
	return f.Store.Update(ctx, fn)
}

// TestRegisterWriteBehind: a 200 binds at once and the binding reaches the
// store; after a failed store write REGISTERs get 503 until the store takes
// writes again.
func TestRegisterWriteBehind(t *testing.T) {
	fs := &failingStore{Store: openStore(t)}
	f := fixture{t, fs.Store}
	acct := f.passwordAccount(f.customer(), "bob000001", "Secret-pass-1")
	s := startEdge(t, fs, func(c *Config) { c.BanFailures = -1 })
	stored := func() int {
		s.pol.SettleBindings(2 * time.Second)
		var rs []*sipdesk.Registration
		fs.View(context.Background(), func(tx sipdesk.Tx) error { rs, _ = tx.Registrations(acct.ID); return nil })
		return len(rs)
	}

	u := newUAC(t, "udp", "127.0.0.2", s)
	if r := u.login("bob000001", "Secret-pass-1", "MD5"); r.Code != 200 {
		t.Fatalf("register: %d %s", r.Code, r.Reason)
	}
	if n := stored(); n != 1 {
		t.Fatalf("stored bindings %d, want 1", n)
	}

	fs.down.Store(true)
	codes := []int{}
	for range 3 {
		u := newUAC(t, "udp", "127.0.0.3", s)
		r := u.login("bob000001", "Secret-pass-1", "MD5")
		codes = append(codes, r.Code)
		s.pol.SettleBindings(2 * time.Second)
	}
	// The first write fails behind its 200; the next ones are refused.
	if codes[1] != 503 || codes[2] != 503 {
		t.Fatalf("REGISTER codes with the store down: %v, want 503 after the first failure", codes)
	}

	fs.down.Store(false)
	u2 := newUAC(t, "udp", "127.0.0.4", s)
	if r := u2.login("bob000001", "Secret-pass-1", "MD5"); r.Code != 200 {
		t.Fatalf("register after the store is back: %d %s", r.Code, r.Reason)
	}
	if n := stored(); n != 2 {
		t.Fatalf("stored bindings %d after recovery, want 2 (the first and the last)", n)
	}
}

// TestRegisterRefreshSkipsWrite: a refresh that changes nothing but the
// expiry, while the store's copy still covers 90 % of the new interval, is
// answered from memory without a store write; anything else is written.
func TestRegisterRefreshSkipsWrite(t *testing.T) {
	st := openStore(t)
	f := fixture{t, st}
	acct := f.passwordAccount(f.customer(), "carol0001", "Secret-pass-1")
	s := startEdge(t, st, func(c *Config) { c.BanFailures = -1 })
	storedCSeq := func() uint32 {
		s.pol.SettleBindings(2 * time.Second)
		var rs []*sipdesk.Registration
		st.View(context.Background(), func(tx sipdesk.Tx) error { rs, _ = tx.Registrations(acct.ID); return nil })
		if len(rs) != 1 {
			t.Fatalf("stored bindings %d, want 1", len(rs))
		}
		return rs[0].CSeq
	}
	u := newUAC(t, "udp", "127.0.0.2", s)
	if r := u.login("carol0001", "Secret-pass-1", "MD5"); r.Code != 200 {
		t.Fatalf("register: %d", r.Code)
	}
	first := storedCSeq()
	if r := u.login("carol0001", "Secret-pass-1", "MD5"); r.Code != 200 {
		t.Fatalf("refresh: %d", r.Code)
	}
	if got := storedCSeq(); got != first {
		t.Fatalf("a plain refresh was written (stored CSeq %d, first %d)", got, first)
	}
	if n := len(s.regs.Lookup(acct.ID, time.Now())); n != 1 {
		t.Fatalf("bindings in memory %d", n)
	}

}
