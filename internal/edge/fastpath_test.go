package edge

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// rawUDP is a plain UDP socket on ip for a test: what it receives, byte
// for byte, and from anywhere.
func rawUDP(t *testing.T, ip string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sendRaw(t *testing.T, c *net.UDPConn, s *Server, msg string) {
	t.Helper()
	if _, err := c.WriteToUDP([]byte(siptest.Fix(msg)), s.UDPAddr()); err != nil {
		t.Fatal(err)
	}
}

// recvRaw is the next datagram on c within 2 s.
func recvRaw(t *testing.T, c *net.UDPConn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 65535)
	n, _, err := c.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	return buf[:n]
}

func parseRaw(t *testing.T, b []byte) *siptest.Msg {
	t.Helper()
	m, err := siptest.Parse(b)
	if err != nil {
		t.Fatalf("%v: %q", err, b)
	}
	return m
}

// fastRequest is a REGISTER or OPTIONS sent from c with Via's sent-by via
// (c's address when "") and the given branch.
func fastRequest(method, via, branch, callID string, cseq int, extra string) string {
	return fmt.Sprintf(`%s sip:%s SIP/2.0
Via: SIP/2.0/UDP %s;branch=%s
From: <sip:fast0001@%s>;tag=ft1
To: <sip:fast0001@%s>
Call-ID: %s
CSeq: %d %s
Contact: <sip:fast0001@%s>
Expires: 3600
Max-Forwards: 70
%sContent-Length: 0

`, method, testRealm, via, branch, testRealm, testRealm, callID, cseq, method, strings.Split(via, ";")[0], extra)
}

// fastTook reports whether the fast path holds the transaction of branch.
func fastTook(s *Server, branch string) bool {
	s.fast.mu.Lock()
	defer s.fast.mu.Unlock()
	for k, e := range s.fast.txs {
		if strings.HasPrefix(k, branch+"|") && !e.sipgo {
			return true
		}
	}
	return false
}

// TestFastPathRetransmission: a REGISTER retransmitted over UDP within the
// linger gets the same bytes again and is processed once: the challenge
// keeps its nonce and To tag, and the right answer is counted as one 200
// (processed twice, its nonce count would be taken for a replay: 401).
func TestFastPathRetransmission(t *testing.T) {
	st := openStore(t)
	f := fixture{t, st}
	f.passwordAccount(f.customer(), "fast0001", "Secret-pass-1")
	s := startEdge(t, st, func(c *Config) { c.BanFailures = -1 })
	c := rawUDP(t, "127.0.0.2")
	via, callID := c.LocalAddr().String()+";rport", siptest.RandHex(8)

	first := fastRequest("REGISTER", via, "z9hG4bKfastreg1", callID, 1, "")
	var answers [][]byte
	for range 3 {
		sendRaw(t, c, s, first)
		answers = append(answers, recvRaw(t, c))
	}
	if r := parseRaw(t, answers[0]); r.Code != 401 {
		t.Fatalf("first REGISTER: %d %s", r.Code, r.Reason)
	}
	if !bytes.Equal(answers[0], answers[1]) || !bytes.Equal(answers[0], answers[2]) {
		t.Fatalf("retransmissions answered differently:\n%s\n---\n%s", answers[0], answers[1])
	}
	if !fastTook(s, "z9hG4bKfastreg1") {
		t.Fatal("REGISTER over UDP not served by the fast path")
	}

	ch := pickChallenge(t, parseRaw(t, answers[0]).All("WWW-Authenticate"), "MD5")
	auth := "Authorization: " + siptest.Answer(ch, "REGISTER", "sip:"+testRealm, "fast0001", "Secret-pass-1", 1, "c1") + "\n"
	ok := fastRequest("REGISTER", via, "z9hG4bKfastreg2", callID, 2, auth)
	before := metricValue(s.met.Registers.WithLabelValues("200"))
	answers = answers[:0]
	for range 3 {
		sendRaw(t, c, s, ok)
		answers = append(answers, recvRaw(t, c))
	}
	for i, a := range answers {
		if r := parseRaw(t, a); r.Code != 200 || !bytes.Equal(a, answers[0]) {
			t.Fatalf("answer %d: %d %s; want the first 200 resent", i, r.Code, r.Reason)
		}
	}
	if n := metricValue(s.met.Registers.WithLabelValues("200")) - before; n != 1 {
		t.Fatalf("%v REGISTERs counted 200, want 1 (processed once)", n)
	}
}

// TestFastPathFullQueue: past the queue bound, requests go to sipgo and
// every one is answered; /metrics counts them.
func TestFastPathFullQueue(t *testing.T) {
	defer func(w, q int) { fastWorkers, fastQueue = w, q }(fastWorkers, fastQueue)
	fastWorkers, fastQueue = 1, 2
	reg := prometheus.NewRegistry()
	s := startEdge(t, openStore(t), func(c *Config) { c.BanFailures = -1; c.Registry = reg })
	// A worker slower than the reads, as behind a busy store: the read
	// loop yields to the worker after each request it queues, so one that keeps
	// up never lets the queue fill. Under f.mu: the read loop takes it
	// before it queues a request, which orders this change before the
	// worker's lookup.
	s.fast.mu.Lock()
	serve := s.fast.handlers[sip.REGISTER]
	s.fast.handlers[sip.REGISTER] = func(r *sip.Request, tx sip.ServerTransaction) { time.Sleep(time.Millisecond); serve(r, tx) }
	s.fast.mu.Unlock()
	c := rawUDP(t, "127.0.0.2")
	c.SetReadBuffer(4 << 20)
	const n = 300
	for i := range n {
		sendRaw(t, c, s, fastRequest("REGISTER", c.LocalAddr().String()+";rport", fmt.Sprintf("z9hG4bKflood%d", i), siptest.RandHex(8), 1, ""))
	}
	seen := map[string]bool{}
	for len(seen) < n {
		r := parseRaw(t, recvRaw(t, c))
		if r.Code != 401 {
			t.Fatalf("got %d %s", r.Code, r.Reason)
		}
		seen[siptest.Param(r.Get("Via"), "branch")] = true
	}
	if s.fast.fallbacks.Load() == 0 {
		t.Fatal("the queue never filled: no request went to sipgo")
	}
	t.Logf("%d of %d went to sipgo", s.fast.fallbacks.Load(), n)
	if v := gaugeValue(t, reg, "sipdesk_sip_udp_overflow_total"); v != float64(s.fast.fallbacks.Load()) {
		t.Fatalf("sipdesk_sip_udp_overflow_total %v, want %d", v, s.fast.fallbacks.Load())
	}
}

// TestFastPathTransactionBound: past the bound of remembered
// transactions, new requests go to sipgo and are answered all the same.
func TestFastPathTransactionBound(t *testing.T) {
	defer func(n int) { fastMaxTx = n }(fastMaxTx)
	fastMaxTx = 2
	s := startEdge(t, openStore(t), nil)
	c := rawUDP(t, "127.0.0.2")
	start := time.Now()
	for i := range 5 {
		branch := fmt.Sprintf("z9hG4bKbound%d", i)
		sendRaw(t, c, s, fastRequest("OPTIONS", c.LocalAddr().String()+";rport", branch, siptest.RandHex(8), 1, ""))
		if r := parseRaw(t, recvRaw(t, c)); r.Code != 200 || siptest.Param(r.Get("Via"), "branch") != branch {
			t.Fatalf("OPTIONS %d: %d %q", i, r.Code, r.Get("Via"))
		}
		// (a slow machine may reach the end of the first answers' linger)
		if took := fastTook(s, branch); took != (i < 2) && time.Since(start) < 800*time.Millisecond {
			t.Fatalf("OPTIONS %d served by the fast path: %v (bound 2, within the linger)", i, took)
		}
	}
}

// TestFastPathOptions: an out-of-dialog OPTIONS gets the same 200 from
// the fast path as from sipgo's transactions (an RFC 2543 request without
// a z9hG4bK branch still goes there), header for header.
func TestFastPathOptions(t *testing.T) {
	s := startEdge(t, openStore(t), nil)
	c := rawUDP(t, "127.0.0.2")
	via := c.LocalAddr().String() + ";rport"
	answer := func(branch string) *siptest.Msg {
		sendRaw(t, c, s, fastRequest("OPTIONS", via, branch, "opt-call", 1, ""))
		return parseRaw(t, recvRaw(t, c))
	}
	fast, slow := answer("z9hG4bKfastopt"), answer("rfc2543opt")
	if !fastTook(s, "z9hG4bKfastopt") || fastTook(s, "rfc2543opt") {
		t.Fatal("OPTIONS not split between the fast path and sipgo by branch")
	}
	if fast.Code != 200 || slow.Code != 200 {
		t.Fatalf("fast %d, sipgo %d", fast.Code, slow.Code)
	}
	if len(fast.Headers) != len(slow.Headers) {
		t.Fatalf("headers differ:\n%q\n%q", fast.Headers, slow.Headers)
	}
	for i, h := range fast.Headers {
		o := slow.Headers[i]
		switch {
		case h[0] != o[0]:
			t.Fatalf("header %d: %s, sipgo %s", i, h[0], o[0])
		case h[0] == "Via":
			if strings.Replace(h[1], "z9hG4bKfastopt", "rfc2543opt", 1) != o[1] {
				t.Fatalf("Via %q, sipgo %q", h[1], o[1])
			}
		case h[0] == "To":
			if siptest.URIOf(h[1]) != siptest.URIOf(o[1]) || siptest.Param(h[1], "tag") == "" {
				t.Fatalf("To %q, sipgo %q", h[1], o[1])
			}
		case h[1] != o[1]:
			t.Fatalf("%s: %q, sipgo %q", h[0], h[1], o[1])
		}
	}
	if fast.Get("Allow") == "" {
		t.Fatal("no Allow")
	}

	// In a dialog, OPTIONS stays with sipgo.
	sendRaw(t, c, s, strings.Replace(fastRequest("OPTIONS", via, "z9hG4bKdlgopt", "dlg-call", 1, ""), "To: <sip:fast0001@"+testRealm+">", "To: <sip:fast0001@"+testRealm+">;tag=abc", 1))
	if r := parseRaw(t, recvRaw(t, c)); r.Code != 200 || fastTook(s, "z9hG4bKdlgopt") {
		t.Fatalf("in-dialog OPTIONS: %d, fast path %v", r.Code, fastTook(s, "z9hG4bKdlgopt"))
	}
}

// TestFastPathResponseAddress: the answer goes where sipgo sends it (RFC
// 3261 18.2.2, RFC 3581): with rport, to the source address and port,
// which Via's received and rport tell; without, to the source address at
// Via's port.
func TestFastPathResponseAddress(t *testing.T) {
	s := startEdge(t, openStore(t), nil)
	a, b := rawUDP(t, "127.0.0.2"), rawUDP(t, "127.0.0.2")
	aPort, bPort := a.LocalAddr().(*net.UDPAddr).Port, b.LocalAddr().(*net.UDPAddr).Port

	sendRaw(t, a, s, fastRequest("REGISTER", "192.0.2.10:5070;rport", "z9hG4bKrport1", siptest.RandHex(8), 1, ""))
	r := parseRaw(t, recvRaw(t, a))
	if got := r.Get("Via"); siptest.Param(got, "received") != "127.0.0.2" || siptest.Param(got, "rport") != fmt.Sprint(aPort) {
		t.Fatalf("Via %q; want received=127.0.0.2;rport=%d", got, aPort)
	}

	sendRaw(t, a, s, fastRequest("REGISTER", fmt.Sprintf("192.0.2.10:%d", bPort), "z9hG4bKrport2", siptest.RandHex(8), 1, ""))
	if r := parseRaw(t, recvRaw(t, b)); r.Code != 401 || siptest.Param(r.Get("Via"), "branch") != "z9hG4bKrport2" {
		t.Fatalf("at Via's port: %d %q", r.Code, r.Get("Via"))
	}
	if !fastTook(s, "z9hG4bKrport1") || !fastTook(s, "z9hG4bKrport2") {
		t.Fatal("not served by the fast path")
	}
}

// TestFastPathCall: over UDP, a call's ACK and BYE skip sipgo's
// transactions. The ACK of the 2xx confirms the caller's leg (the 200 is
// not sent again); a BYE retransmitted within the linger gets the same
// 200 and is relayed to the carrier once; the ACK of a failure still ends
// sipgo's INVITE transaction (the 486 is not sent again).
func TestFastPathCall(t *testing.T) {
	e := newCallEnv(t, 1, nil, nil)
	p := newPhone(t, "127.0.0.2", e.s)
	p.dial("+15551230001")
	if r := p.final(3 * time.Second); r.Code != 200 {
		t.Fatalf("call: %d %s", r.Code, r.Reason)
	}
	noResend := func(p *phone, what string) {
		t.Helper()
		end := time.After(1200 * time.Millisecond) // T1 is 500 ms: a resend would come within
		for {
			select {
			case m := <-p.resps:
				if strings.HasSuffix(m.Get("CSeq"), "INVITE") {
					t.Fatalf("%s sent again after its ACK: %d %s", what, m.Code, m.Reason)
				}
			case <-end:
				return
			}
		}
	}
	noResend(p, "200")
	if n := e.s.fast.acks.Load(); n != 1 {
		t.Fatalf("fast path took %d ACKs, want 1", n)
	}

	// The BYE, sent three times with one branch.
	p.cseq++
	branch := "z9hG4bKfastbye" + siptest.RandHex(4)
	bye := fmt.Sprintf(`BYE %s SIP/2.0
Via: SIP/2.0/UDP %s;branch=%s;rport
From: %s
To: %s
Call-ID: %s
CSeq: %d BYE
Max-Forwards: 70
Content-Length: 0

`, p.contact, p.c.LocalAddr(), branch, p.invite.Get("From"), p.remote, p.callID, p.cseq)
	var answers []*siptest.Msg
	for range 3 {
		p.c.Send(bye)
		select {
		case m := <-p.resps:
			answers = append(answers, m)
		case <-time.After(2 * time.Second):
			t.Fatalf("BYE %d not answered", len(answers)+1)
		}
	}
	for i, a := range answers {
		if a.Code != 200 || a.Get("To") != answers[0].Get("To") || a.Get("Via") != answers[0].Get("Via") {
			t.Fatalf("answer %d to the BYE: %d %s, To %q; want the first 200 again", i, a.Code, a.Reason, a.Get("To"))
		}
	}
	if !fastTook(e.s, branch) {
		t.Fatal("BYE over UDP not served by the fast path")
	}
	e.waitLive(0, 2*time.Second)
	// The lease goes before the carrier's BYE is sent: wait for that BYE,
	// then for any second one the three copies might have caused.
	e.carrier.waitReq(t, "BYE", 2*time.Second, nil)
	quiet := time.After(300 * time.Millisecond)
	for done := false; !done; {
		select {
		case m := <-e.carrier.reqs:
			if m.Method == "BYE" {
				t.Fatal("carrier got a second BYE")
			}
		case <-quiet:
			done = true
		}
	}
	if r := e.record(p.callID); r.Disposition != sipdesk.DispAnswered || r.Reason != "bye_caller" {
		t.Fatalf("record: %+v", r)
	}

	// A failure's ACK goes to sipgo's INVITE transaction and ends it.
	acks := e.s.fast.acks.Load()
	e.carrier.mode.Store("486")
	q := newPhone(t, "127.0.0.2", e.s)
	q.dial("+15551230001")
	if r := q.final(3 * time.Second); r.Code != 486 {
		t.Fatalf("call to a busy callee: %d %s", r.Code, r.Reason)
	}
	noResend(q, "486")
	if n := e.s.fast.acks.Load(); n != acks {
		t.Fatalf("fast path took the refusal's ACK")
	}
}

// TestFastPathChallenge: a device's INVITE without credentials over UDP is
// challenged on the fast path; its retransmissions get the same 407 (same
// nonce and To tag) and the ACK is absorbed. Its answer to the challenge
// goes through sipgo's INVITE transaction and becomes a call.
func TestFastPathChallenge(t *testing.T) {
	e := newCallEnv(t, 1, nil, nil)
	e.f.passwordAccount(e.cust, "fast0001", "Secret-pass-1")
	waitApplied(t, e.s, e.st)
	c := rawUDP(t, "127.0.0.3")
	addr, callID := c.LocalAddr().String(), siptest.RandHex(8)
	invite := func(branch string, cseq int, extra string) string {
		return fmt.Sprintf(`INVITE sip:+15551230001@%s SIP/2.0
Via: SIP/2.0/UDP %s;branch=%s;rport
From: <sip:fast0001@%s>;tag=ft1
To: <sip:+15551230001@%s>
Call-ID: %s
CSeq: %d INVITE
Contact: <sip:fast0001@%s>
Max-Forwards: 70
%sContent-Type: application/sdp
Content-Length: auto

%s`, testRealm, addr, branch, testRealm, testRealm, callID, cseq, addr, extra, testSDP)
	}
	first := invite("z9hG4bKfastinv1", 1, "")
	var answers [][]byte
	for range 3 {
		sendRaw(t, c, e.s, first)
		answers = append(answers, recvRaw(t, c))
	}
	res := parseRaw(t, answers[0])
	if res.Code != 407 {
		t.Fatalf("INVITE without credentials: %d %s", res.Code, res.Reason)
	}
	if !bytes.Equal(answers[0], answers[1]) || !bytes.Equal(answers[0], answers[2]) {
		t.Fatalf("retransmissions answered differently:\n%s\n---\n%s", answers[0], answers[1])
	}
	if !fastTook(e.s, "z9hG4bKfastinv1") {
		t.Fatal("INVITE without credentials not served by the fast path")
	}
	sendRaw(t, c, e.s, fmt.Sprintf(`ACK sip:+15551230001@%s SIP/2.0
Via: SIP/2.0/UDP %s;branch=z9hG4bKfastinv1;rport
From: <sip:fast0001@%s>;tag=ft1
To: %s
Call-ID: %s
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

`, testRealm, addr, testRealm, res.Get("To"), callID))

	ch := pickChallenge(t, res.All("Proxy-Authenticate"), "MD5")
	auth := "Proxy-Authorization: " + siptest.Answer(ch, "INVITE", "sip:+15551230001@"+testRealm, "fast0001", "Secret-pass-1", 1, "c1") + "\n"
	sendRaw(t, c, e.s, invite("z9hG4bKfastinv2", 2, auth))
	var ok *siptest.Msg
	for ok == nil {
		m := parseRaw(t, recvRaw(t, c))
		if m.Code == 407 {
			t.Fatalf("a 407 after the ACK: %s", m.Get("CSeq"))
		}
		if m.Code >= 200 {
			if m.Code != 200 || m.Get("CSeq") != "2 INVITE" {
				t.Fatalf("answered INVITE: %d %s (%s)", m.Code, m.Reason, m.Get("CSeq"))
			}
			ok = m
		}
	}
	inDialog := func(method, branch string, cseq int) string {
		return fmt.Sprintf(`%s %s SIP/2.0
Via: SIP/2.0/UDP %s;branch=%s;rport
From: <sip:fast0001@%s>;tag=ft1
To: %s
Call-ID: %s
CSeq: %d %s
Max-Forwards: 70
Content-Length: 0

`, method, siptest.URIOf(ok.Get("Contact")), addr, branch, testRealm, ok.Get("To"), callID, cseq, method)
	}
	sendRaw(t, c, e.s, inDialog("ACK", "z9hG4bKfastack2", 2))
	sendRaw(t, c, e.s, inDialog("BYE", "z9hG4bKfastbye3", 3))
	for {
		if m := parseRaw(t, recvRaw(t, c)); m.Get("CSeq") == "3 BYE" {
			if m.Code != 200 {
				t.Fatalf("BYE: %d %s", m.Code, m.Reason)
			}
			break
		}
	}
	if fastTook(e.s, "z9hG4bKfastinv2") {
		t.Fatal("the INVITE with credentials went to the fast path; it needs sipgo's dialog")
	}
	if n := e.carrier.count(); n != 1 {
		t.Fatalf("carrier got %d INVITEs, want 1", n)
	}
}

// TestFastPathChallengeOnce: an INVITE whose 407 is never ACKed (a scanner,
// or a forged source) gets one 407, not the Timer G retransmissions of an
// INVITE transaction (0.5, 1, 2 s... for 32 s): a forged INVITE is not
// turned into a train of answers toward its victim.
func TestFastPathChallengeOnce(t *testing.T) {
	st := openStore(t)
	fixture{t, st}.passwordAccount(fixture{t, st}.customer(), "fast0001", "Secret-pass-1")
	s := startEdge(t, st, func(c *Config) { c.BanFailures = -1 })
	c := rawUDP(t, "127.0.0.3")
	addr := c.LocalAddr().String()
	sendRaw(t, c, s, fmt.Sprintf(`INVITE sip:+15551230001@%s SIP/2.0
Via: SIP/2.0/UDP %s;branch=z9hG4bKonce1;rport
From: <sip:fast0001@%s>;tag=ft1
To: <sip:+15551230001@%s>
Call-ID: %s
CSeq: 1 INVITE
Contact: <sip:fast0001@%s>
Max-Forwards: 70
Content-Length: 0

`, testRealm, addr, testRealm, testRealm, siptest.RandHex(8), addr))
	if r := parseRaw(t, recvRaw(t, c)); r.Code != 407 {
		t.Fatalf("INVITE without credentials: %d %s", r.Code, r.Reason)
	}
	c.SetReadDeadline(time.Now().Add(2500 * time.Millisecond)) // sipgo would resend at 0.5 and 1.5 s
	buf := make([]byte, 65535)
	if n, _, err := c.ReadFromUDP(buf); err == nil {
		t.Fatalf("a second answer to one INVITE: %q", buf[:n])
	}
}
