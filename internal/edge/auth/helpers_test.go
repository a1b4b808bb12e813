package auth

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	sipgotest "github.com/emiago/sipgo/siptest"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/metrics"
	"github.com/sipdesk/sipdesk/internal/edge/shield"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

const testPass = "Secret-pass-1"

// accounts is a fixed set of SIP accounts by username.
type accounts map[string]*sipdesk.SIPAccount

func (m accounts) AccountByUser(u string) *sipdesk.SIPAccount { return m[u] }

func passwordAccount(id int64, user string) *sipdesk.SIPAccount {
	return &sipdesk.SIPAccount{ID: id, CustomerID: 1, Name: user, AuthType: sipdesk.AuthPassword, Username: user,
		Status: sipdesk.StatusActive, Digest: sipdesk.NewDigestHashes(user, testRealm, testPass)}
}

// node is one edge's Authenticator with its own shield, as a process has.
type node struct {
	a   *Authenticator
	sh  *shield.Shield
	log *lockedLog
}

type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newNode(tb testing.TB, cfg Config, now func() time.Time) *node {
	tb.Helper()
	if cfg.Realm == "" {
		cfg.Realm = testRealm
	}
	if cfg.NonceKey == nil {
		cfg.NonceKey = testKey
	}
	if cfg.BanDuration == 0 {
		cfg.BanDuration = 10 * time.Minute
	}
	if cfg.Guard.Failures == 0 { // the serve defaults
		cfg.Guard = shield.GuardConfig{Failures: shield.DefaultGuardFailures, Window: shield.DefaultGuardWindow,
			Duration: shield.DefaultGuardDuration, Trust: shield.DefaultGuardTrust}
	}
	carrier, err := shield.ParseAddrMatcher([]string{"198.51.100.1"})
	if err != nil {
		tb.Fatal(err)
	}
	ll := &lockedLog{}
	var w io.Writer = ll
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sh := shield.New(5, time.Minute, 10*time.Minute, 0, now)
	return &node{a: New(cfg, sh, carrier, metrics.New(nil), log, now), sh: sh, log: ll}
}

// req builds a request as sipgo's transport hands it over: method from
// user at src over transport, with extra header lines.
func req(tb testing.TB, method sip.RequestMethod, user, callID, src, transport string, headers ...string) *sip.Request {
	tb.Helper()
	host, port, _ := strings.Cut(src, ":")
	ruri := "sip:" + testRealm
	if method != sip.REGISTER {
		ruri = "sip:+15551234567@" + testRealm
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, ruri)
	fmt.Fprintf(&b, "Via: SIP/2.0/%s %s:%s;branch=z9hG4bK%s;rport\r\n", transport, host, port, siptest.RandHex(8))
	b.WriteString("Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\n", user, testRealm, siptest.RandHex(4))
	to := user
	if method != sip.REGISTER {
		to = "+15551234567"
	}
	fmt.Fprintf(&b, "To: <sip:%s@%s>\r\n", to, testRealm)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", callID)
	fmt.Fprintf(&b, "CSeq: 1 %s\r\n", method)
	fmt.Fprintf(&b, "Contact: <sip:%s@%s:%s>\r\n", user, host, port)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	raw, err := sip.ParseMessage([]byte(b.String()))
	if err != nil {
		tb.Fatalf("parse %q: %v", b.String(), err)
	}
	r := raw.(*sip.Request)
	r.SetSource(src)
	r.SetTransport(transport)
	return r
}

// authenticate runs Authenticate and returns the account (nil when
// refused) and the final answer sent (nil when none).
func (n *node) authenticate(tb testing.TB, r *sip.Request, accts Accounts) (*sipdesk.SIPAccount, *sip.Response) {
	tb.Helper()
	tx := sipgotest.NewServerTxRecorder(r)
	defer tx.Terminate()
	hname := "Proxy-Authorization"
	if r.Method == sip.REGISTER {
		hname = "Authorization"
	}
	acct, _ := n.a.Authenticate(r, tx, netip.MustParseAddrPort(r.Source()), hname, accts)
	var final *sip.Response
	for _, res := range tx.Result() {
		if !res.IsProvisional() {
			if final != nil {
				tb.Fatalf("answered twice: %v, %v", final, res)
			}
			final = res
		}
	}
	return acct, final
}

// challengeOf picks the MD5 challenge of a 401/407.
func challengeOf(tb testing.TB, res *sip.Response) siptest.Challenge {
	tb.Helper()
	if res == nil {
		tb.Fatal("no answer, want a challenge")
	}
	for _, h := range append(res.GetHeaders("WWW-Authenticate"), res.GetHeaders("Proxy-Authenticate")...) {
		c, err := siptest.ParseChallenge(h.Value())
		if err == nil && c.Algorithm == "MD5" {
			return c
		}
	}
	tb.Fatalf("no MD5 challenge in %d %s", res.StatusCode, res.Reason)
	return siptest.Challenge{}
}

// answerHeader is the credentials header line answering c for method.
func answerHeader(c siptest.Challenge, method sip.RequestMethod, user, pw string, nc uint32) string {
	name, uri := "Proxy-Authorization", "sip:+15551234567@"+testRealm
	if method == sip.REGISTER {
		name, uri = "Authorization", "sip:"+testRealm
	}
	return name + ": " + siptest.Answer(c, string(method), uri, user, pw, nc, "")
}

func isStale(res *sip.Response) bool {
	if res == nil {
		return false
	}
	for _, h := range append(res.GetHeaders("WWW-Authenticate"), res.GetHeaders("Proxy-Authenticate")...) {
		if strings.Contains(h.Value(), "stale=true") {
			return true
		}
	}
	return false
}

func mustAddr(tb testing.TB, ap string) netip.Addr {
	tb.Helper()
	return netip.MustParseAddrPort(ap).Addr()
}
