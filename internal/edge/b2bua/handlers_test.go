package b2bua_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	sipgotest "github.com/emiago/sipgo/siptest"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/auth"
	"github.com/sipdesk/sipdesk/internal/edge/b2bua"
	"github.com/sipdesk/sipdesk/internal/edge/metrics"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
	"github.com/sipdesk/sipdesk/internal/edge/policy/policytest"
	"github.com/sipdesk/sipdesk/internal/edge/registrar"
	"github.com/sipdesk/sipdesk/internal/edge/shield"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// Handler tests without sockets: the registrar and the B2BUA built with
// their constructors on a fake Policy (policytest.Fake), a real
// Authenticator and Shield, requests parsed from raw SIP text and answered
// into sipgo's siptest transaction recorders. They see what a peer sees:
// the status, reason and headers of the answer. The socket and real-peer
// suites (internal/edge) stay as they are.

const (
	realm       = "sipdesk.test"
	pass        = "Secret-pass-1"
	jwtSecret   = "abcdefghijklmnopqrstuvwxyz012345"
	carrierIP   = "198.51.100.1"
	deviceSrc   = "192.0.2.20:5062"
	trunkSrc    = "192.0.2.10:5060"
	didNumber   = "+15557000001"
	dialed      = "+15551234567"
	retryAfterS = 7 // b2bua Config.RetryAfter in seconds
)

// The configuration every test answers from.
var (
	cust     = &sipdesk.Customer{ID: 1, Email: "c1@example.com", VerifiedPhone: "+15550000001", BillingState: sipdesk.BillingPaid, ChannelLimit: 10, ChannelScope: sipdesk.ScopeOutbound}
	alice    = passwordAccount(10, "alice0001", nil)
	inactive = passwordAccount(11, "inactive01", func(a *sipdesk.SIPAccount) { a.Status = sipdesk.StatusInactive })
	inproc   = passwordAccount(12, "inprocess1", func(a *sipdesk.SIPAccount) { a.Status = sipdesk.StatusInProcess })
	acl      = passwordAccount(13, "aclacct01", func(a *sipdesk.SIPAccount) {
		a.AllowedIPs, _ = sipdesk.ParseAllowedIPs([]string{"10.9.9.9"}, false, true)
	})
	jwtOff = passwordAccount(14, "jwtoff001", nil) // no JWT secret ever
	jwtOn  = passwordAccount(15, "jwton0001", func(a *sipdesk.SIPAccount) { a.JWTSecret, a.JWTEnabled = jwtSecret, true })
	jwtDis = passwordAccount(17, "jwtdis001", func(a *sipdesk.SIPAccount) { a.JWTSecret = jwtSecret }) // secret, JWT disabled
	bob    = passwordAccount(16, "bob000001", nil)                                                     // the DID's account, never registered
	trunkA = ipAccount(20, "trunk a", trunkSrc)
	trunkB = ipAccount(21, "trunk b", trunkSrc) // same address, no prefix: ambiguous
	did    = &sipdesk.DID{Number: didNumber, SIPAccountID: bob.ID, CustomerID: cust.ID}
	// A customer an operator suspended, with an active password account.
	suspCust = &sipdesk.Customer{ID: 2, Email: "c2@example.com", BillingState: sipdesk.BillingPaid, ChannelLimit: 10,
		ChannelScope: sipdesk.ScopeOutbound, SuspendedAt: time.Unix(1800000000, 0), SuspendedReason: "unpaid"}
	suspended = passwordAccount(18, "suspend01", func(a *sipdesk.SIPAccount) { a.CustomerID = suspCust.ID })
	snap      = policy.NewSnapshot(1, []*sipdesk.SIPAccount{alice, inactive, inproc, acl, jwtOff, jwtOn, jwtDis, bob, trunkA, trunkB, suspended},
		[]*sipdesk.DID{did}, []*sipdesk.Customer{cust, suspCust}, nil)
)

func passwordAccount(id int64, user string, mod func(*sipdesk.SIPAccount)) *sipdesk.SIPAccount {
	a := &sipdesk.SIPAccount{ID: id, CustomerID: cust.ID, Name: "acct " + user, AuthType: sipdesk.AuthPassword, Username: user,
		Digest: sipdesk.NewDigestHashes(user, realm, pass), Status: sipdesk.StatusActive,
		CallerID: sipdesk.CallerIDSetting{DefaultNumber: "+15550000001"}}
	if mod != nil {
		mod(a)
	}
	return a
}

func ipAccount(id int64, name, ip string) *sipdesk.SIPAccount {
	a := &sipdesk.SIPAccount{ID: id, CustomerID: cust.ID, Name: name, AuthType: sipdesk.AuthIP, Status: sipdesk.StatusActive,
		CallerID: sipdesk.CallerIDSetting{DefaultNumber: "+15550000002"}}
	e, err := sipdesk.ParseAllowedIP(ip)
	if err != nil {
		panic(err)
	}
	a.AllowedIPs = append(a.AllowedIPs, e)
	return a
}

// env is one registrar and B2BUA on a fake policy that counts what the
// handlers asked of it.
type env struct {
	t      *testing.T
	pol    *policytest.Fake
	shield *shield.Shield
	reg    *registrar.Registrar
	calls  *b2bua.B2BUA

	// admit is the AdmitCall answer (nil: admitted).
	admit func() error

	mu       sync.Mutex
	asked    int                  // AdmitCall calls
	admitted int                  // AdmitCall calls that admitted
	released int                  // ReleaseCall calls
	records  []sipdesk.CallRecord // final call records
	partial  int                  // non-final call records
}

// newEnv builds the layers; banFailures <= 0 disables bans.
func newEnv(t *testing.T, banFailures int) *env {
	t.Helper()
	return newGuardedEnv(t, banFailures, shield.GuardConfig{})
}

// newGuardedEnv is newEnv with a failure budget per SIP account.
func newGuardedEnv(t *testing.T, banFailures int, guard shield.GuardConfig) *env {
	t.Helper()
	return newEnvWith(t, banFailures, guard, sip.Uri{Scheme: "sip", Host: carrierIP, Port: 5060})
}

// newEnvWith is newEnv with a failure budget and a carrier trunk (a zero
// Uri: no carrier configured).
func newEnvWith(t *testing.T, banFailures int, guard shield.GuardConfig, trunk sip.Uri) *env {
	t.Helper()
	e := &env{t: t}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.pol = &policytest.Fake{
		ConfigFunc: func() *policy.Snapshot { return snap },
		AdmitCallFunc: func(context.Context, policy.CallInfo) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.asked++
			if e.admit != nil {
				if err := e.admit(); err != nil {
					return err
				}
			}
			e.admitted++
			return nil
		},
		ReleaseCallFunc: func(context.Context, policy.CallInfo) {
			e.mu.Lock()
			e.released++
			e.mu.Unlock()
		},
		RecordFunc: func(_ any, rec sipdesk.CallRecord, final bool) {
			e.mu.Lock()
			defer e.mu.Unlock()
			if final {
				e.records = append(e.records, rec)
			} else {
				e.partial++
			}
		},
	}
	carrier, err := shield.ParseAddrMatcher([]string{carrierIP})
	if err != nil {
		t.Fatal(err)
	}
	met := metrics.New(nil)
	e.shield = shield.New(banFailures, time.Minute, 10*time.Minute, 0, time.Now)
	a := auth.New(auth.Config{Realm: realm, NonceKey: []byte("handler-test-nonce-key"), BanDuration: 10 * time.Minute, Guard: guard},
		e.shield, carrier, met, log, time.Now)
	e.reg = registrar.New(registrar.Config{Node: "test", MinExpires: 60 * time.Second, MaxExpires: 3600 * time.Second},
		e.pol, a, met, log, time.Now)
	e.calls = b2bua.New(b2bua.Config{Node: "test", Realm: realm, AdvertiseHost: "203.0.113.1",
		Carrier: trunk, RetryAfter: retryAfterS * time.Second},
		b2bua.Deps{Policy: e.pol, Auth: a, Registrar: e.reg, Carrier: carrier, Metrics: met, Log: log, Now: time.Now,
			UDPAddr: func() *net.UDPAddr { return nil }})
	return e
}

// msg describes a request as a peer sends it.
type msg struct {
	method  sip.RequestMethod
	ruser   string // Request-URI user; "" for REGISTER
	from    string // From user
	to      string // To user (REGISTER: the AOR)
	callID  string
	cseq    int
	src     string   // source ip:port
	headers []string // extra header lines
	// contactParams follow the Contact URI (";expires=30").
	contactParams string
	transport     string // default TCP
}

// overWS is m sent over WebSocket (Bearer tokens are accepted over
// WebSocket and TLS only).
func overWS(m msg) msg { m.transport = "WS"; return m }

// parse builds the request from raw SIP text, with its source and
// transport set the way sipgo's transport layer sets them.
func (e *env) parse(m msg) *sip.Request {
	e.t.Helper()
	host, port, _ := strings.Cut(m.src, ":")
	ruri := "sip:" + realm
	if m.method != sip.REGISTER {
		ruri = "sip:" + m.ruser + "@" + realm
	}
	if m.cseq == 0 {
		m.cseq = 1
	}
	if m.transport == "" {
		m.transport = "TCP"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", m.method, ruri)
	fmt.Fprintf(&b, "Via: SIP/2.0/%s %s:%s;branch=z9hG4bK%s;rport\r\n", m.transport, host, port, siptest.RandHex(8))
	b.WriteString("Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\n", m.from, realm, siptest.RandHex(4))
	fmt.Fprintf(&b, "To: <sip:%s@%s>\r\n", m.to, realm)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", m.callID)
	fmt.Fprintf(&b, "CSeq: %d %s\r\n", m.cseq, m.method)
	fmt.Fprintf(&b, "Contact: <sip:%s@%s:%s;transport=tcp>%s\r\n", m.from, host, port, m.contactParams)
	for _, h := range m.headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	raw, err := sip.ParseMessage([]byte(b.String()))
	if err != nil {
		e.t.Fatalf("parse %q: %v", b.String(), err)
	}
	req, ok := raw.(*sip.Request)
	if !ok {
		e.t.Fatalf("not a request: %q", b.String())
	}
	req.SetSource(m.src)
	t := m.transport
	if t == "" {
		t = "TCP"
	}
	req.SetTransport(t)
	return req
}

// send hands the request to its handler (REGISTER: the registrar, INVITE:
// the B2BUA) and returns the final answer a peer receives, nil when none.
func (e *env) send(m msg) *sip.Response {
	e.t.Helper()
	req := e.parse(m)
	tx := sipgotest.NewServerTxRecorder(req)
	defer tx.Terminate()
	switch m.method {
	case sip.REGISTER:
		e.reg.HandleRegister(req, tx)
	case sip.INVITE:
		e.calls.HandleInvite(req, tx)
	default:
		e.t.Fatalf("no handler for %s", m.method)
	}
	var finals []*sip.Response
	for _, r := range tx.Result() {
		if !r.IsProvisional() {
			finals = append(finals, r)
		}
	}
	switch len(finals) {
	case 0:
		return nil
	case 1:
		return finals[0]
	}
	e.t.Fatalf("%s answered %d times: %v", m.method, len(finals), finals)
	return nil
}

// challengeHeader is the header of the digest challenge to a method.
func challengeHeader(method sip.RequestMethod) (challenge, answer string) {
	if method == sip.REGISTER {
		return "WWW-Authenticate", "Authorization"
	}
	return "Proxy-Authenticate", "Proxy-Authorization"
}

// login sends m without credentials, answers the MD5 challenge as user
// with password pw (nc 1) and returns the answer to that.
func (e *env) login(m msg, user, pw string) *sip.Response {
	e.t.Helper()
	c := e.challenge(e.send(m), m.method)
	return e.answer(m, c, user, pw)
}

// answer sends m again (next CSeq) with the answer to challenge c as user
// with password pw.
func (e *env) answer(m msg, c siptest.Challenge, user, pw string) *sip.Response {
	e.t.Helper()
	_, hdr := challengeHeader(m.method)
	m.cseq++
	m.headers = append(m.headers[:len(m.headers):len(m.headers)],
		hdr+": "+siptest.Answer(c, string(m.method), "sip:"+realm, user, pw, 1, ""))
	return e.send(m)
}

// challenge checks res is the digest challenge to method and returns its
// MD5 challenge.
func (e *env) challenge(res *sip.Response, method sip.RequestMethod) siptest.Challenge {
	e.t.Helper()
	ch, _ := challengeHeader(method)
	wantCode, wantReason := 401, "Unauthorized"
	if method != sip.REGISTER {
		wantCode, wantReason = 407, "Proxy Authentication Required"
	}
	want(e.t, res, wantCode, wantReason)
	for _, h := range res.GetHeaders(ch) {
		c, err := siptest.ParseChallenge(h.Value())
		if err == nil && strings.EqualFold(c.Algorithm, "MD5") && c.Realm == realm && c.Nonce != "" {
			return c
		}
	}
	e.t.Fatalf("%d without an MD5 %s: %v", res.StatusCode, ch, res)
	return siptest.Challenge{}
}

// want checks the answer's status and reason.
func want(t *testing.T, res *sip.Response, code int, reason string) {
	t.Helper()
	if res == nil {
		t.Fatalf("no answer, want %d %s", code, reason)
	}
	if res.StatusCode != code || res.Reason != reason {
		t.Fatalf("answer %d %s, want %d %s", res.StatusCode, res.Reason, code, reason)
	}
}

// header is the value of a header of res, failing when it is absent.
func header(t *testing.T, res *sip.Response, name string) string {
	t.Helper()
	h := res.GetHeader(name)
	if h == nil {
		t.Fatalf("%d %s without %s: %v", res.StatusCode, res.Reason, name, res)
	}
	return h.Value()
}

// refusedCall checks what the policy saw of a refused call: one final
// record with the refusal's disposition, status and code, no record of a
// call going on, as many releases as admissions, and AdmitCall asked
// `asked` times.
func (e *env) refusedCall(code string, status, asked int) {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.records) != 1 {
		e.t.Fatalf("%d final call records, want 1: %+v", len(e.records), e.records)
	}
	r := e.records[0]
	if r.Disposition != sipdesk.DispRefused || r.SIPCode != status || r.Reason != sipdesk.RefusalCode(code) {
		e.t.Fatalf("call record %s %d %q, want %s %d %q", r.Disposition, r.SIPCode, r.Reason, sipdesk.DispRefused, status, sipdesk.RefusalCode(code))
	}
	if e.partial != 0 {
		e.t.Fatalf("a refused call recorded %d records of a call going on", e.partial)
	}
	e.balanced(asked)
}

// noCall checks a request refused before it became a call attempt: no
// record, nothing asked of admission.
func (e *env) noCall() {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.records) != 0 || e.partial != 0 {
		e.t.Fatalf("call records %+v (%d partial), want none", e.records, e.partial)
	}
	e.balanced(0)
}

// balanced checks AdmitCall was asked `asked` times and every admission
// was released; e.mu is held.
func (e *env) balanced(asked int) {
	e.t.Helper()
	if e.asked != asked {
		e.t.Fatalf("AdmitCall asked %d times, want %d", e.asked, asked)
	}
	if e.admitted != e.released {
		e.t.Fatalf("%d calls admitted, %d released", e.admitted, e.released)
	}
}

// register is a REGISTER of user from src.
func register(user, src string, headers ...string) msg {
	return msg{method: sip.REGISTER, from: user, to: user, callID: "reg-" + siptest.RandHex(6), src: src, headers: headers}
}

// invite is an outbound INVITE of user (empty for an IP account) to number
// from src.
func invite(user, number, src string, headers ...string) msg {
	from := user
	if from == "" {
		from = "+15550000002"
	}
	return msg{method: sip.INVITE, ruser: number, from: from, to: number, callID: "inv-" + siptest.RandHex(6), src: src, headers: headers}
}

// fromCarrier is an INVITE from the carrier to a DID.
func fromCarrier(number string) msg {
	return msg{method: sip.INVITE, ruser: number, from: "+15559990000", to: number, callID: "in-" + siptest.RandHex(6), src: carrierIP + ":5060"}
}

func addr(s string) netip.Addr { return netip.MustParseAddrPort(s).Addr() }
