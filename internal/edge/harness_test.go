package edge

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/siptest"
	"github.com/sipdesk/sipdesk/internal/store"
)

const testRealm = "sipdesk.local"

var testKey = []byte("0123456789abcdef0123456789abcdef")

// openStore opens a real SQLite store in a temporary folder.
func openStore(t testing.TB) sipdesk.Store {
	t.Helper()
	db, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir(), SecretKey: testKey})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var custSeq atomic.Int64

// fixture creates data in the store and bumps the config version.
type fixture struct {
	t  testing.TB
	st sipdesk.Store
}

func (f fixture) update(fn func(tx sipdesk.Tx) error) {
	f.t.Helper()
	err := f.st.Update(context.Background(), func(tx sipdesk.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		_, err := tx.BumpConfigVersion()
		return err
	})
	if err != nil {
		f.t.Fatalf("store update: %v", err)
	}
}

func (f fixture) customer() int64 {
	c := &sipdesk.Customer{Email: fmt.Sprintf("c%d@example.com", custSeq.Add(1)), PasswordHash: "x", VerifiedPhone: "+15550000001",
		BillingState: sipdesk.BillingPaid, ChannelLimit: 10, ChannelScope: sipdesk.ScopeOutbound, SIPAccountQuota: 10000}
	f.update(func(tx sipdesk.Tx) error { return tx.InsertCustomer(c) })
	return c.ID
}

func (f fixture) passwordAccount(cust int64, user, pass string, mod ...func(*sipdesk.SIPAccount)) *sipdesk.SIPAccount {
	a := &sipdesk.SIPAccount{CustomerID: cust, Name: "acct " + user, AuthType: sipdesk.AuthPassword, Username: user,
		Digest: sipdesk.NewDigestHashes(user, testRealm, pass), Status: sipdesk.StatusActive,
		CallerID: sipdesk.CallerIDSetting{DefaultNumber: "+15550000001"}}
	for _, m := range mod {
		m(a)
	}
	f.update(func(tx sipdesk.Tx) error { return tx.InsertSIPAccount(a) })
	return a
}

func (f fixture) ipAccount(cust int64, name, techPrefix string, ips ...string) *sipdesk.SIPAccount {
	a := &sipdesk.SIPAccount{CustomerID: cust, Name: name, AuthType: sipdesk.AuthIP, TechPrefix: techPrefix,
		Status: sipdesk.StatusActive, CallerID: sipdesk.CallerIDSetting{DefaultNumber: "+15550000002"}}
	for _, ip := range ips {
		e, err := sipdesk.ParseAllowedIP(ip)
		if err != nil {
			f.t.Fatal(err)
		}
		a.AllowedIPs = append(a.AllowedIPs, e)
	}
	f.update(func(tx sipdesk.Tx) error { return tx.InsertSIPAccount(a) })
	return a
}

func (f fixture) modify(a *sipdesk.SIPAccount, m func(*sipdesk.SIPAccount)) {
	m(a)
	f.update(func(tx sipdesk.Tx) error { return tx.UpdateSIPAccount(a) })
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("EDGE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startEdge runs an edge on 127.0.0.1 and a free port until the test ends.
func startEdge(t testing.TB, st sipdesk.Store, mod func(*Config)) *Server {
	t.Helper()
	cfg := Config{Addr: fmt.Sprintf("127.0.0.1:%d", siptest.FreePort(t, "127.0.0.1")), NonceKey: testKey, PollInterval: 50 * time.Millisecond,
		Carrier: "sip:127.0.0.9:5090", MinExpires: 60 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	return runEdge(t, st, testLogger(t), cfg)
}

// runEdge runs an edge with cfg and log until the test ends. The overload
// guard is off unless cfg sets it: tests share one process, and a loaded
// test machine must not refuse another test's calls.
func runEdge(t testing.TB, st sipdesk.Store, log *slog.Logger, cfg Config) *Server {
	t.Helper()
	if cfg.OverloadWait == 0 {
		cfg.OverloadWait = -1
	}
	s, err := New(cfg, st, log)
	if err != nil {
		t.Fatalf("edge.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("edge.Run: %v", err)
	case <-time.After(5 * time.Second):
		cancel()
		t.Fatal("edge did not start")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("edge did not stop")
		}
	})
	return s
}

// waitApplied waits until the edge applied the store's config version.
func waitApplied(t testing.TB, s *Server, st sipdesk.Store) {
	t.Helper()
	v, err := st.ConfigVersion(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for s.AppliedVersion() < v {
		if time.Now().After(deadline) {
			t.Fatalf("config version %d not applied (at %d)", v, s.AppliedVersion())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// uac is a raw SIP user agent client for tests.
type uac struct {
	t      testing.TB
	c      *siptest.Conn
	server string
	callID string
	tag    string
	cseq   int
}

func newUAC(t testing.TB, network, laddr string, s *Server) *uac {
	t.Helper()
	c, err := siptest.Dial(network, laddr+":0", s.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &uac{t: t, c: c, server: s.UDPAddr().String(), callID: siptest.RandHex(8), tag: siptest.RandHex(4)}
}

// register sends a REGISTER (auth may be "") and returns the response.
func (u *uac) register(user, auth string, extra ...string) *siptest.Msg {
	u.t.Helper()
	return u.send(u.registerMsg(user, auth, extra...))
}

// registerMsg is a new REGISTER (its own branch and CSeq).
func (u *uac) registerMsg(user, auth string, extra ...string) string {
	u.cseq++
	h := ""
	if auth != "" {
		h = "Authorization: " + auth + "\n"
	}
	exp := "Expires: 3600\n"
	for _, e := range extra {
		if strings.HasPrefix(e, "Expires:") {
			exp = ""
		}
		h += e + "\n"
	}
	return fmt.Sprintf(`REGISTER sip:%s SIP/2.0
Via: SIP/2.0/%s %s;branch=z9hG4bK%s;rport
From: <sip:%s@%s>;tag=%s
To: <sip:%s@%s>
Call-ID: %s
CSeq: %d REGISTER
Contact: <sip:%s@%s>
%sMax-Forwards: 70
%sContent-Length: 0

`, testRealm, u.c.Transport(), u.c.LocalAddr(), siptest.RandHex(6), user, testRealm, u.tag, user, testRealm, u.callID, u.cseq, user, u.c.LocalAddr(), exp, h)
}

// send sends msg as it is (again: a retransmission) and returns the first
// response of 200 or above.
func (u *uac) send(msg string) *siptest.Msg {
	u.t.Helper()
	if err := u.c.Send(msg); err != nil {
		u.t.Fatal(err)
	}
	m, err := u.c.RecvResponse(2*time.Second, 200)
	if err != nil {
		u.t.Fatalf("%.20s: %v", msg, err)
	}
	return m
}

// login runs the full challenge/answer exchange.
func (u *uac) login(user, pass string, alg string) *siptest.Msg {
	u.t.Helper()
	r := u.register(user, "")
	if r.Code != 401 {
		u.t.Fatalf("first REGISTER: %d %s", r.Code, r.Reason)
	}
	ch := pickChallenge(u.t, r.All("WWW-Authenticate"), alg)
	return u.register(user, siptest.Answer(ch, "REGISTER", "sip:"+testRealm, user, pass, 1, ""))
}

func pickChallenge(t testing.TB, vals []string, alg string) siptest.Challenge {
	t.Helper()
	for _, v := range vals {
		c, err := siptest.ParseChallenge(v)
		if err == nil && strings.EqualFold(c.Algorithm, alg) {
			return c
		}
	}
	t.Fatalf("no %s challenge in %q", alg, vals)
	return siptest.Challenge{}
}

// inviteMsg is an INVITE with SDP from a raw UAC.
func inviteMsg(u *uac, number, extra string) string {
	u.cseq++
	if extra != "" {
		extra += "\n"
	}
	sdp := "v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 40000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n"
	return fmt.Sprintf(`INVITE sip:%s@%s SIP/2.0
Via: SIP/2.0/%s %s;branch=z9hG4bK%s;rport
From: <sip:+15550000999@%s>;tag=%s
To: <sip:%s@%s>
Call-ID: %s
CSeq: %d INVITE
Contact: <sip:caller@%s>
Max-Forwards: 70
%sContent-Type: application/sdp
Content-Length: auto

%s`, number, testRealm, u.c.Transport(), u.c.LocalAddr(), siptest.RandHex(6), testRealm, u.tag, number, testRealm, u.callID, u.cseq, u.c.LocalAddr(), extra, sdp)
}
