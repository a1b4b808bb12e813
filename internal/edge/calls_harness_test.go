package edge

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

const testSDP = "v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 40000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n"

// fakeCarrier is a carrier UAS in Go for the fast tests. Its behaviour
// for each new INVITE: "answer" (180, 200 and hold), "challenge" (407
// without Proxy-Authorization, then as "answer"), "486", "503", "ring"
// (180, then 487 on CANCEL), "late" (180, then a 200 that crosses the
// CANCEL), "silent" (nothing).
type fakeCarrier struct {
	t    testing.TB
	c    *siptest.Conn
	Addr string
	mode atomic.Value // string
	sdp  atomic.Value // string: the answer's SDP (testSDP when unset)
	rr   atomic.Value // string: a Record-Route header line the 200 carries (none when unset)

	mu      sync.Mutex
	invites map[string]*siptest.Msg // by Call-ID, first INVITE
	order   []string
	live    map[string]bool      // answered dialogs not ended by a BYE
	most    int                  // the most live dialogs at once
	byes    map[string]time.Time // when each dialog's BYE arrived
	reqs    chan *siptest.Msg
}

// to sends s to where m came from (the edge that sent it).
func (fc *fakeCarrier) to(m *siptest.Msg, s string) {
	if err := fc.c.SendTo(s, m.Src); err != nil {
		fc.t.Logf("carrier send: %v", err)
	}
}

func (fc *fakeCarrier) handle(m *siptest.Msg) {
	select {
	case fc.reqs <- m:
	default:
	}
	callID := m.Get("Call-ID")
	tag := "carrier" + siptest.RandHex(2)
	contact := "Contact: <sip:carrier@" + fc.Addr + ">"
	switch m.Method {
	case "INVITE":
		if strings.Contains(m.Get("To"), "tag=") { // re-INVITE
			fc.to(m, siptest.ReplyBody(m, 200, "OK", "", testSDP, contact))
			return
		}
		if fc.mode.Load() == "challenge" && m.Get("Proxy-Authorization") == "" {
			fc.to(m, siptest.Reply(m, 407, "Proxy Authentication Required", "auth"+siptest.RandHex(2),
				`Proxy-Authenticate: Digest realm="carrier.example", nonce="`+siptest.RandHex(8)+`", algorithm=MD5`))
			return
		}
		fc.mu.Lock()
		_, dup := fc.invites[callID]
		if !dup {
			fc.invites[callID] = m
			fc.order = append(fc.order, callID)
		}
		fc.mu.Unlock()
		if dup {
			return
		}
		tag = "carrier" + callID[:min(8, len(callID))]
		switch fc.mode.Load().(string) {
		case "answer", "challenge":
			fc.mu.Lock()
			fc.live[callID] = true
			fc.most = max(fc.most, len(fc.live))
			fc.mu.Unlock()
			fc.to(m, siptest.Reply(m, 180, "Ringing", tag, contact))
			sdp, _ := fc.sdp.Load().(string)
			if sdp == "" {
				sdp = testSDP
			}
			hs := []string{contact}
			if rr, _ := fc.rr.Load().(string); rr != "" {
				hs = append(hs, rr)
			}
			fc.to(m, siptest.ReplyBody(m, 200, "OK", tag, sdp, hs...))
		case "486":
			fc.to(m, siptest.Reply(m, 486, "Busy Here", tag))
		case "503":
			fc.to(m, siptest.Reply(m, 503, "Service Unavailable", tag))
		case "404":
			fc.to(m, siptest.Reply(m, 404, "Not Found", tag))
		case "480":
			fc.to(m, siptest.Reply(m, 480, "Temporarily Unavailable", tag))
		case "ring", "late":
			fc.to(m, siptest.Reply(m, 180, "Ringing", tag, contact))
		}
	case "CANCEL":
		fc.mu.Lock()
		inv := fc.invites[callID]
		late := inv != nil && fc.mode.Load() == "late"
		if late {
			fc.live[callID] = true
		}
		fc.mu.Unlock()
		if late { // answered as the CANCEL was on its way: the 200 stands
			fc.to(inv, siptest.ReplyBody(inv, 200, "OK", "carrier"+callID[:min(8, len(callID))], testSDP, contact))
		}
		fc.to(m, siptest.Reply(m, 200, "OK", tag))
		if inv != nil && !late {
			fc.to(inv, siptest.Reply(inv, 487, "Request Terminated", "carrier"+callID[:min(8, len(callID))]))
		}
	case "BYE":
		fc.mu.Lock()
		delete(fc.live, callID)
		if _, again := fc.byes[callID]; !again { // the first BYE ends the dialog
			fc.byes[callID] = time.Now()
		}
		fc.mu.Unlock()
		fc.to(m, siptest.Reply(m, 200, "OK", "", contact))
	case "OPTIONS", "UPDATE", "INFO":
		fc.to(m, siptest.Reply(m, 200, "OK", "", contact))
	}
}

// liveCalls is the number of answered dialogs not ended yet; maxLive the
// most there were at once (since resetCounts).
func (fc *fakeCarrier) liveCalls() int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return len(fc.live)
}

func (fc *fakeCarrier) maxLive() int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.most
}

// byeAt is when the first BYE of a dialog arrived (zero: none yet).
func (fc *fakeCarrier) byeAt(callID string) time.Time {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.byes[callID]
}

// resetCounts forgets the INVITEs, BYEs and the most-live mark (live
// dialogs stay).
func (fc *fakeCarrier) resetCounts() {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.invites, fc.order, fc.byes, fc.most = map[string]*siptest.Msg{}, nil, map[string]time.Time{}, len(fc.live)
}

// count is the number of distinct INVITEs received.
func (fc *fakeCarrier) count() int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return len(fc.order)
}

// last is the latest INVITE received.
func (fc *fakeCarrier) last() *siptest.Msg {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if len(fc.order) == 0 {
		return nil
	}
	return fc.invites[fc.order[len(fc.order)-1]]
}

// waitReq waits for a request of a method (with a matching predicate;
// method "none": any request the predicate accepts).
func (fc *fakeCarrier) waitReq(t testing.TB, method string, d time.Duration, ok func(*siptest.Msg) bool) *siptest.Msg {
	t.Helper()
	end := time.After(d)
	for {
		select {
		case m := <-fc.reqs:
			if (m.Method == method || method == "none") && (ok == nil || ok(m)) {
				return m
			}
		case <-end:
			t.Fatalf("carrier: no %s within %v", method, d)
			return nil
		}
	}
}

// hangup sends a BYE from the carrier for the dialog of inv.
func (fc *fakeCarrier) hangup(inv *siptest.Msg) {
	callID := inv.Get("Call-ID")
	target := siptest.URIOf(inv.Get("Contact"))
	fc.mu.Lock()
	delete(fc.live, callID)
	fc.mu.Unlock()
	fc.to(inv, fmt.Sprintf(`BYE %s SIP/2.0
Via: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport
From: %s;tag=carrier%s
To: %s
Call-ID: %s
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

`, target, fc.Addr, siptest.RandHex(6), inv.Get("To"), callID[:min(8, len(callID))], inv.Get("From"), callID))
}

// phone is one call from a raw UAC: it answers in-dialog requests itself
// (OPTIONS with optionsCode, 0 = never) and hands responses to the test.
type phone struct {
	t           testing.TB
	c           *siptest.Conn
	edge        string
	callID, tag string
	branch      string
	invite      *siptest.Msg // the INVITE sent (parsed)
	inviteRaw   string       // and as sent (retransmissions)
	cseq        int
	remote      string // To with the edge's tag, after a final response
	contact     string // the edge's Contact
	resps       chan *siptest.Msg
	reqs        chan *siptest.Msg
	optionsCode atomic.Int32
}

func newPhone(t testing.TB, ip string, s *Server) *phone {
	t.Helper()
	return newPhoneAt(t, ip, s.UDPAddr().String())
}

// newPhoneAt is a phone on ip talking to the edge at edgeAddr (an edge in
// this process or a `sipdesk serve` process).
func newPhoneAt(t testing.TB, ip, edgeAddr string) *phone {
	t.Helper()
	c, err := siptest.Dial("udp", ip+":0", edgeAddr)
	if err != nil {
		t.Fatal(err)
	}
	p := &phone{t: t, c: c, edge: edgeAddr, callID: siptest.RandHex(8) + "@" + ip, tag: siptest.RandHex(4),
		resps: make(chan *siptest.Msg, 64), reqs: make(chan *siptest.Msg, 64)}
	p.optionsCode.Store(200)
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			m, err := c.Recv(100 * time.Millisecond)
			if err != nil {
				continue
			}
			if m.Method == "" {
				p.resps <- m
				continue
			}
			switch m.Method {
			case "OPTIONS":
				if code := int(p.optionsCode.Load()); code != 0 {
					c.Send(siptest.Reply(m, code, "Whatever", ""))
				}
			case "BYE", "UPDATE", "INFO":
				c.Send(siptest.Reply(m, 200, "OK", ""))
			}
			select {
			case p.reqs <- m:
			default:
			}
		}
	}()
	t.Cleanup(func() { stop.Store(true); <-done; c.Close() })
	return p
}

// dial sends the INVITE; extra header lines may follow.
func (p *phone) dial(number string, extra ...string) {
	p.cseq++
	p.branch = "z9hG4bK" + siptest.RandHex(6)
	h := ""
	for _, e := range extra {
		h += e + "\n"
	}
	msg := fmt.Sprintf(`INVITE sip:%s@%s SIP/2.0
Via: SIP/2.0/UDP %s;branch=%s;rport
From: "Dev Ice" <sip:+15550000999@%s>;tag=%s
To: <sip:%s@%s>
Call-ID: %s
CSeq: %d INVITE
Contact: <sip:caller@%s>
Max-Forwards: 70
%sContent-Type: application/sdp
Content-Length: auto

%s`, number, testRealm, p.c.LocalAddr(), p.branch, testRealm, p.tag, number, testRealm, p.callID, p.cseq, p.c.LocalAddr(), h, testSDP)
	p.invite, _ = siptest.Parse([]byte(siptest.Fix(msg)))
	p.inviteRaw = msg
	if err := p.c.Send(msg); err != nil {
		p.t.Fatal(err)
	}
}

// final waits for the final response to the INVITE and ACKs it.
func (p *phone) final(d time.Duration) *siptest.Msg {
	p.t.Helper()
	end := time.After(d)
	for {
		select {
		case m := <-p.resps:
			if m.Code < 200 || !strings.HasSuffix(m.Get("CSeq"), "INVITE") {
				continue
			}
			p.remote = m.Get("To")
			p.contact = siptest.URIOf(m.Get("Contact"))
			p.ack(m)
			return m
		case <-end:
			p.t.Fatalf("no final response within %v", d)
			return nil
		}
	}
}

func (p *phone) ack(res *siptest.Msg) {
	ruri, branch := p.invite.StartLine[len("INVITE "):strings.LastIndex(p.invite.StartLine, " ")], p.branch
	if res.Code < 300 {
		ruri, branch = p.contact, "z9hG4bK"+siptest.RandHex(6)
	}
	p.c.Send(fmt.Sprintf(`ACK %s SIP/2.0
Via: SIP/2.0/UDP %s;branch=%s;rport
From: %s
To: %s
Call-ID: %s
CSeq: %d ACK
Max-Forwards: 70
Content-Length: 0

`, ruri, p.c.LocalAddr(), branch, p.invite.Get("From"), res.Get("To"), p.callID, p.cseq))
}

// cancel CANCELs the pending INVITE.
func (p *phone) cancel() {
	ruri := p.invite.StartLine[len("INVITE "):strings.LastIndex(p.invite.StartLine, " ")]
	p.c.Send(fmt.Sprintf(`CANCEL %s SIP/2.0
Via: SIP/2.0/UDP %s;branch=%s;rport
From: %s
To: %s
Call-ID: %s
CSeq: %d CANCEL
Max-Forwards: 70
Content-Length: 0

`, ruri, p.c.LocalAddr(), p.branch, p.invite.Get("From"), p.invite.Get("To"), p.callID, p.cseq))
}

// inDialog sends BYE or UPDATE in the established dialog and waits for its
// final response.
func (p *phone) inDialog(method string, extra ...string) *siptest.Msg {
	p.t.Helper()
	p.cseq++
	h := ""
	for _, e := range extra {
		h += e + "\n"
	}
	p.c.Send(fmt.Sprintf(`%s %s SIP/2.0
Via: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport
From: %s
To: %s
Call-ID: %s
CSeq: %d %s
Contact: <sip:caller@%s>
Max-Forwards: 70
%sContent-Length: 0

`, method, p.contact, p.c.LocalAddr(), siptest.RandHex(6), p.invite.Get("From"), p.remote, p.callID, p.cseq, method, p.c.LocalAddr(), h))
	end := time.After(5 * time.Second)
	for {
		select {
		case m := <-p.resps:
			if m.Code >= 200 && strings.HasSuffix(m.Get("CSeq"), method) {
				return m
			}
		case <-end:
			p.t.Fatalf("no answer to %s", method)
			return nil
		}
	}
}

// waitReq waits for a request from the edge.
func (p *phone) waitReq(method string, d time.Duration) *siptest.Msg {
	p.t.Helper()
	end := time.After(d)
	for {
		select {
		case m := <-p.reqs:
			if m.Method == method {
				return m
			}
		case <-end:
			p.t.Fatalf("phone: no %s within %v", method, d)
			return nil
		}
	}
}

// callEnv is an edge with channel admission on a real SQLite store, a
// service, a customer with an IP account on 127.0.0.2 and a fake carrier.
type callEnv struct {
	t       testing.TB
	st      sipdesk.Store
	svc     *app.Service
	f       fixture
	cust    int64
	acct    *sipdesk.SIPAccount
	s       *Server
	adm     *policy.ChannelAdmission
	carrier *fakeCarrier
}

func newCallEnv(t testing.TB, limit int, ch func(policy.Channels) policy.Channels, mod func(*Config)) *callEnv {
	t.Helper()
	st := openStore(t)
	e := &callEnv{t: t, st: st, f: fixture{t, st}}
	e.svc = app.New(st, app.Options{Realm: testRealm, Log: testLogger(t)})
	e.cust = e.f.customer()
	e.setLimit(limit)
	e.acct = e.f.ipAccount(e.cust, "trunk", "", "127.0.0.2/32")
	var chs policy.Channels = e.svc
	if ch != nil {
		chs = ch(chs)
	}
	e.adm = policy.NewChannels(st, chs, "n1", policy.ChannelOptions{Log: testLogger(t), Timeout: 500 * time.Millisecond})
	carrierPort := siptest.FreePort(t, "127.0.0.9")
	e.s = startEdge(t, st, func(c *Config) {
		c.Node = "n1"
		c.Channels, c.Records = e.adm, e.adm
		c.Carrier = fmt.Sprintf("sip:127.0.0.9:%d", carrierPort)
		if mod != nil {
			mod(c)
		}
	})
	waitApplied(t, e.s, st)
	e.carrier = newCarrierAt(t, fmt.Sprintf("127.0.0.9:%d", carrierPort), e.s.UDPAddr().String())
	return e
}

func newCarrierAt(t testing.TB, addr, edgeAddr string) *fakeCarrier {
	t.Helper()
	c, err := siptest.Dial("udp", addr, edgeAddr)
	if err != nil {
		t.Fatal(err)
	}
	fc := &fakeCarrier{t: t, c: c, Addr: addr, invites: map[string]*siptest.Msg{}, live: map[string]bool{}, byes: map[string]time.Time{},
		reqs: make(chan *siptest.Msg, 4096)}
	fc.mode.Store("answer")
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			m, err := c.Recv(100 * time.Millisecond)
			if err != nil || m.Method == "" {
				continue
			}
			fc.handle(m)
		}
	}()
	t.Cleanup(func() { stop.Store(true); <-done; c.Close() })
	return fc
}

func (e *callEnv) setLimit(n int) {
	e.t.Helper()
	e.f.update(func(tx sipdesk.Tx) error {
		c, err := tx.Customer(e.cust, true)
		if err != nil {
			return err
		}
		c.ChannelLimit = n
		return tx.UpdateCustomer(c)
	})
}

// live is the number of live leases in the store.
func (e *callEnv) live() int {
	e.t.Helper()
	ls, err := e.svc.ActiveCalls(context.Background(), 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(ls)
}

// waitLive waits for the number of live leases.
func (e *callEnv) waitLive(n int, d time.Duration) {
	e.t.Helper()
	end := time.Now().Add(d)
	for {
		got := e.live()
		if got == n {
			return
		}
		if time.Now().After(end) {
			e.t.Fatalf("live leases: %d, want %d", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// records returns the customer's call records, oldest first.
func (e *callEnv) records() []*sipdesk.CallRecord {
	e.t.Helper()
	e.s.FlushRecords(3 * time.Second)
	rs, err := e.svc.CallRecords(context.Background(), sipdesk.CallFilter{CustomerID: e.cust, Limit: 500})
	if err != nil {
		e.t.Fatal(err)
	}
	for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
		rs[i], rs[j] = rs[j], rs[i]
	}
	return rs
}

func (e *callEnv) record(callID string) *sipdesk.CallRecord {
	e.t.Helper()
	for _, r := range e.records() {
		if r.CallID == callID {
			return r
		}
	}
	e.t.Fatalf("no call record for %s", callID)
	return nil
}

// drain forgets the requests received so far.
func (fc *fakeCarrier) drain() {
	for {
		select {
		case <-fc.reqs:
		default:
			return
		}
	}
}
