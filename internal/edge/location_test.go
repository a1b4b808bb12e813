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
	"github.com/sipdesk/sipdesk/internal/edge/b2bua"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// The location service across edges, in process: three edges on one
// PostgreSQL database (Shared), each on its own 127.0.0.x address, raw
// devices over UDP and TCP, a raw carrier. The cluster suite
// (cluster_location_test.go, tag cluster) runs the same scenarios on
// `sipdesk serve` processes with sipp.

// locCluster is three edges (A, B, C) on one PostgreSQL database.
type locCluster struct {
	t     *testing.T
	st    sipdesk.Store
	f     fixture
	svc   *app.Service
	cust  int64
	edges []*Server
}

// idle waits until no edge has a call attempt left (a test that ends with
// calls still ringing would leave the stop to wait on devices it closed).
func (c *locCluster) idle() {
	c.t.Helper()
	end := time.Now().Add(10 * time.Second)
	for _, s := range c.edges {
		for s.calls.LiveAttempts() > 0 {
			if time.Now().After(end) {
				c.t.Fatalf("edge %s still has %d call attempts", s.cfg.Node, s.calls.LiveAttempts())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func newLocCluster(t *testing.T) *locCluster {
	t.Helper()
	st, _ := openPG(t)
	c := &locCluster{t: t, st: st, f: fixture{t, st}}
	c.svc = app.New(st, app.Options{Realm: testRealm, Log: testLogger(t), AllowPrivateIPs: true})
	c.cust = c.f.customer()
	carrier := fmt.Sprintf("127.0.0.9:%d", siptest.FreePort(t, "127.0.0.9"))
	for i, name := range []string{"a", "b", "c"} {
		ip := fmt.Sprintf("127.0.0.%d", 11+i)
		adm := policy.NewChannels(st, c.svc, "edge-"+name, policy.ChannelOptions{Log: testLogger(t)})
		c.edges = append(c.edges, startEdge(t, st, func(cfg *Config) {
			cfg.Channels, cfg.Records = adm, adm
			cfg.Carrier = "sip:" + carrier
			cfg.Addr = fmt.Sprintf("%s:%d", ip, siptest.FreePort(t, ip))
			cfg.Node = "edge-" + name
			cfg.Shared = true
			cfg.PollInterval = time.Second
			if name == "a" { // browsers connect to A
				cfg.WSAddr = ip + ":0"
				cfg.WS.Origins = []string{testOrigin}
			}
		}))
	}
	for _, s := range c.edges {
		waitApplied(t, s, st)
	}
	newCarrierAt(t, carrier, c.edges[0].UDPAddr().String()) // answers every call
	return c
}

func (c *locCluster) applied() {
	c.t.Helper()
	for _, s := range c.edges {
		waitApplied(c.t, s, c.st)
	}
}

// account makes a password account with a DID.
func (c *locCluster) account(user, did string) *sipdesk.SIPAccount {
	c.t.Helper()
	a := c.f.passwordAccount(c.cust, user, "Secret-pass-1")
	c.f.update(func(tx sipdesk.Tx) error {
		return tx.UpsertDID(&sipdesk.DID{Number: did, SIPAccountID: a.ID, CustomerID: c.cust})
	})
	c.applied()
	return a
}

// locDev is a raw device on one connection to one edge: it registers with
// a given Contact, rings on INVITE (and answers 200 when answer is set),
// answers CANCEL and BYE.
type locDev struct {
	t       testing.TB
	c       *siptest.Conn
	user    string
	callID  string
	cseq    int
	resps   chan *siptest.Msg
	invites chan *siptest.Msg
	byes    chan *siptest.Msg
	answer  atomic.Bool
	busy    atomic.Bool // answer INVITEs 486 Busy Here
}

func newLocDev(t testing.TB, network, ip string, edge *Server, user string) *locDev {
	t.Helper()
	return newLocDevAt(t, network, ip, edge.UDPAddr().String(), user)
}

// newLocDevAt is a device on ip talking to the edge at edgeAddr (an edge in
// this process or a `sipdesk serve` process).
func newLocDevAt(t testing.TB, network, ip, edgeAddr, user string) *locDev {
	t.Helper()
	c, err := siptest.Dial(network, ip+":0", edgeAddr)
	if err != nil {
		t.Fatal(err)
	}
	d := &locDev{t: t, c: c, user: user, callID: siptest.RandHex(8), resps: make(chan *siptest.Msg, 64),
		invites: make(chan *siptest.Msg, 64), byes: make(chan *siptest.Msg, 64)}
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			m, err := c.Recv(100 * time.Millisecond)
			if err != nil {
				if network == "tcp" && !strings.Contains(err.Error(), "timeout") {
					return
				}
				continue
			}
			d.handle(m)
		}
	}()
	t.Cleanup(func() { stop.Store(true); c.Close(); <-done })
	return d
}

func (d *locDev) handle(m *siptest.Msg) {
	switch m.Method {
	case "":
		d.resps <- m
	case "INVITE":
		d.invites <- m
		if d.busy.Load() {
			d.c.Send(siptest.Reply(m, 486, "Busy Here", "dev"))
			return
		}
		d.c.Send(siptest.Reply(m, 180, "Ringing", "dev"))
		if d.answer.Load() {
			d.c.Send(siptest.ReplyBody(m, 200, "OK", "dev", testSDP, "Contact: <sip:"+d.user+"@"+d.c.LocalAddr()+">"))
		}
	case "CANCEL":
		d.c.Send(siptest.Reply(m, 200, "OK", "dev"))
		inv := *m
		inv.Headers = append([][2]string(nil), m.Headers...)
		for i, h := range inv.Headers {
			if strings.EqualFold(h[0], "CSeq") {
				inv.Headers[i][1] = strings.Replace(h[1], "CANCEL", "INVITE", 1)
			}
		}
		d.c.Send(siptest.Reply(&inv, 487, "Request Terminated", "dev"))
	case "BYE":
		d.byes <- m
		d.c.Send(siptest.Reply(m, 200, "OK", ""))
	}
}

// register sends a REGISTER with contact (the device's own address when
// ""), answers the challenge and returns the final answer.
func (d *locDev) register(contact string, extra ...string) *siptest.Msg {
	d.t.Helper()
	if contact == "" {
		contact = "sip:" + d.user + "@" + d.c.LocalAddr()
	}
	send := func(auth string) *siptest.Msg {
		d.cseq++
		h := strings.Join(extra, "\n")
		if h != "" {
			h += "\n"
		}
		if auth != "" {
			h += "Authorization: " + auth + "\n"
		}
		if !strings.Contains(h, "Expires:") {
			h += "Expires: 600\n"
		}
		d.c.Send(fmt.Sprintf(`REGISTER sip:%s SIP/2.0
Via: SIP/2.0/%s %s;branch=z9hG4bK%s;rport
From: <sip:%s@%s>;tag=%s
To: <sip:%s@%s>
Call-ID: %s
CSeq: %d REGISTER
Contact: <%s>
Max-Forwards: 70
%sContent-Length: 0

`, testRealm, d.c.Transport(), d.c.LocalAddr(), siptest.RandHex(6), d.user, testRealm, siptest.RandHex(3), d.user, testRealm,
			d.callID, d.cseq, contact, h))
		for {
			select {
			case m := <-d.resps:
				if m.Code >= 200 && strings.HasSuffix(m.Get("CSeq"), "REGISTER") {
					return m
				}
			case <-time.After(3 * time.Second):
				d.t.Fatalf("%s: no answer to REGISTER", d.user)
				return nil
			}
		}
	}
	r := send("")
	if r.Code != 401 {
		return r
	}
	ch := pickChallenge(d.t, r.All("WWW-Authenticate"), "MD5")
	return send(siptest.Answer(ch, "REGISTER", "sip:"+testRealm, d.user, "Secret-pass-1", 1, ""))
}

// call places an outbound call to number with digest authentication and
// returns the final status; a 200 is acknowledged and hung up.
func (d *locDev) call(number string) int {
	d.t.Helper()
	callID, tag := siptest.RandHex(8), siptest.RandHex(4)
	send := func(cseq int, method, auth, to string) *siptest.Msg {
		h := ""
		if auth != "" {
			h = "Proxy-Authorization: " + auth + "\n"
		}
		body, ctype := "", ""
		if method == "INVITE" {
			body, ctype = testSDP, "Content-Type: application/sdp\n"
		}
		d.c.Send(fmt.Sprintf(`%s sip:%s@%s SIP/2.0
Via: SIP/2.0/%s %s;branch=z9hG4bK%s;rport
From: <sip:%s@%s>;tag=%s
To: %s
Call-ID: %s
CSeq: %d %s
Contact: <sip:%s@%s>
Max-Forwards: 70
%s%sContent-Length: auto

%s`, method, number, testRealm, d.c.Transport(), d.c.LocalAddr(), siptest.RandHex(6), d.user, testRealm, tag, to,
			callID, cseq, method, d.user, d.c.LocalAddr(), h, ctype, body))
		if method == "ACK" {
			return nil
		}
		for {
			select {
			case m := <-d.resps:
				if m.Code >= 200 && m.Get("Call-ID") == callID && strings.HasSuffix(m.Get("CSeq"), method) {
					return m
				}
			case <-time.After(5 * time.Second):
				d.t.Fatalf("%s: no answer to %s", d.user, method)
				return nil
			}
		}
	}
	to := "<sip:" + number + "@" + testRealm + ">"
	r := send(1, "INVITE", "", to)
	if r.Code != 407 {
		return r.Code
	}
	send(1, "ACK", "", r.Get("To"))
	ch := pickChallenge(d.t, r.All("Proxy-Authenticate"), "MD5")
	auth := siptest.Answer(ch, "INVITE", "sip:"+number+"@"+testRealm, d.user, "Secret-pass-1", 1, "")
	r = send(2, "INVITE", auth, to)
	if r.Code == 200 {
		send(2, "ACK", "", r.Get("To"))
		send(3, "BYE", "", r.Get("To"))
	}
	return r.Code
}

// gotInvite waits for an INVITE at the device.
func (d *locDev) gotInvite(within time.Duration) *siptest.Msg {
	select {
	case m := <-d.invites:
		return m
	case <-time.After(within):
		return nil
	}
}

func mustRegister(t *testing.T, d *locDev, contact string) *siptest.Msg {
	t.Helper()
	r := d.register(contact)
	if r.Code != 200 {
		t.Fatalf("%s REGISTER: %d %s", d.c.LocalAddr(), r.Code, r.Reason)
	}
	return r
}

// TestLocationForksAcrossEdges (scenario a): a device over TCP at edge A
// and one over UDP at edge B, one SIP account; a carrier INVITE to edge C
// rings both, each over its own edge and connection (a UDP socket
// connected to B receives only what B sends; the TCP device has no other
// way in than its connection to A). The call is answered through the hop,
// hung up, and recorded once.
func TestLocationForksAcrossEdges(t *testing.T) {
	c := newLocCluster(t)
	a := c.account("fork0001", "+15557100001")
	x := newLocDev(t, "tcp", "127.0.0.3", c.edges[0], a.Username)
	y := newLocDev(t, "udp", "127.0.0.4", c.edges[1], a.Username)
	mustRegister(t, x, "")
	r := mustRegister(t, y, "")
	// Both edges' contacts in the 200 (RFC 3261 §10.3).
	if n := len(r.All("Contact")); n != 2 {
		t.Fatalf("the 200 at B lists %d contacts, want 2: %q", n, r.All("Contact"))
	}
	y.answer.Store(true)
	carrier := newPhoneAt(t, "127.0.0.9", c.edges[2].UDPAddr().String())
	start := time.Now()
	carrier.dial("+15557100001")
	ix, iy := x.gotInvite(3*time.Second), y.gotInvite(3*time.Second)
	if ix == nil || iy == nil {
		t.Fatalf("INVITE at the TCP device via A: %v, at the UDP device via B: %v", ix != nil, iy != nil)
	}
	t.Logf("both devices rang %v after the carrier's INVITE", time.Since(start).Round(time.Millisecond))
	for _, m := range []*siptest.Msg{ix, iy} {
		if m.Get(b2bua.HopHeader) != "" {
			t.Fatalf("the hop header reached the device: %q", m.Get(b2bua.HopHeader))
		}
	}
	if fin := carrier.final(5 * time.Second); fin.Code != 200 {
		t.Fatalf("carrier got %d %s, want 200", fin.Code, fin.Reason)
	}
	// One channel, held by C; the relaying edge B holds none.
	if ls, err := c.svc.ActiveCalls(context.Background(), 0); err != nil || len(ls) != 1 || ls[0].Node != "edge-c" {
		t.Fatalf("live leases %v (%v), want 1 of edge-c", ls, err)
	}
	carrier.inDialog("BYE")
	select {
	case <-y.byes:
	case <-time.After(3 * time.Second):
		t.Fatal("no BYE at the answering device through B")
	}
	// One record, written by C (the edge the carrier reached).
	var recs []*sipdesk.CallRecord
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		c.edges[2].FlushRecords(time.Second)
		recs, _ = c.svc.CallRecords(context.Background(), sipdesk.CallFilter{CustomerID: c.cust, Limit: 10})
		if len(recs) == 1 && recs[0].Disposition != sipdesk.DispActive {
			break
		}
	}
	if len(recs) != 1 || recs[0].Node != "edge-c" || recs[0].Disposition != sipdesk.DispAnswered {
		for _, r := range recs {
			t.Logf("record %+v", *r)
		}
		t.Fatalf("%d call records, want 1 answered by edge-c", len(recs))
	}
}

// TestLocationMovedDevice (scenario b): a device behind NAT re-registers
// its contact from a new port at A; an inbound call 1 s later through C
// reaches the new port only.
func TestLocationMovedDevice(t *testing.T) {
	c := newLocCluster(t)
	a := c.account("move0001", "+15557100002")
	old := newLocDev(t, "udp", "127.0.0.5", c.edges[0], a.Username)
	contact := "sip:" + a.Username + "@192.168.1.20:5060" // the device's private address
	mustRegister(t, old, contact)
	moved := newLocDev(t, "udp", "127.0.0.5", c.edges[0], a.Username)
	moved.callID = old.callID
	moved.cseq = old.cseq + 10
	if r := mustRegister(t, moved, contact); len(r.All("Contact")) != 1 {
		t.Fatalf("the 200 lists %q, want the one contact", r.All("Contact"))
	}
	time.Sleep(time.Second)
	carrier := newPhoneAt(t, "127.0.0.9", c.edges[2].UDPAddr().String())
	carrier.dial("+15557100002")
	if m := moved.gotInvite(3 * time.Second); m == nil {
		t.Fatal("no INVITE at the new port")
	}
	if m := old.gotInvite(500 * time.Millisecond); m != nil {
		t.Fatal("INVITE at the old port")
	}
	carrier.cancel()
	c.idle()
}

// TestLocationContactLimit (scenario j): 10 contacts over two edges, the
// 11th is refused with 403 Too many contacts; the 200 lists all 10.
func TestLocationContactLimit(t *testing.T) {
	c := newLocCluster(t)
	a := c.account("many0001", "+15557100003")
	var last *siptest.Msg
	for i := range 10 {
		d := newLocDev(t, "udp", "127.0.0.6", c.edges[i%2], a.Username)
		last = mustRegister(t, d, "")
	}
	if n := len(last.All("Contact")); n != 10 {
		t.Fatalf("the 10th 200 lists %d contacts, want 10", n)
	}
	d := newLocDev(t, "udp", "127.0.0.6", c.edges[2], a.Username)
	if r := d.register(""); r.Code != 403 || r.Reason != "Too many contacts" {
		t.Fatalf("11th contact: %d %s, want 403 Too many contacts", r.Code, r.Reason)
	}
}

// TestLocationConcurrentLimit: 20 devices register at once over three
// edges against the limit of 10: exactly 10 are taken.
func TestLocationConcurrentLimit(t *testing.T) {
	c := newLocCluster(t)
	a := c.account("race0001", "+15557100004")
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		d := newLocDev(t, "udp", "127.0.0.7", c.edges[i%3], a.Username)
		wg.Go(func() {
			switch r := d.register(""); r.Code {
			case 200:
				ok.Add(1)
			case 403:
				refused.Add(1)
			default:
				t.Errorf("REGISTER: %d %s", r.Code, r.Reason)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 10 || refused.Load() != 10 {
		t.Fatalf("%d registered, %d refused; want 10 and 10", ok.Load(), refused.Load())
	}
}

// TestLocationACLChange (scenario i): an ACL change that still allows
// device X keeps it registered, and it registers and calls at every edge
// while the change propagates; device Y, refused by the new ACL, is
// dropped within 1 s on the edge that held it.
func TestLocationACLChange(t *testing.T) {
	c := newLocCluster(t)
	a := c.account("acl00001", "+15557100005")
	x := newLocDev(t, "udp", "127.0.0.3", c.edges[0], a.Username)
	y := newLocDev(t, "udp", "127.0.0.4", c.edges[1], a.Username)
	mustRegister(t, x, "")
	mustRegister(t, y, "")
	acl := []string{"127.0.0.3/32"}
	changed := time.Now()
	if _, err := c.svc.UpdateSIPAccount(context.Background(), c.cust, a.ID, app.SIPAccountPatch{AllowedIPs: &acl}, app.CustomerActor(c.cust, "test")); err != nil {
		t.Fatal(err)
	}
	// During propagation (the account is in_process): X registers and
	// calls at every edge.
	for _, s := range c.edges {
		d := newLocDev(t, "udp", "127.0.0.3", s, a.Username)
		if r := d.register(""); r.Code != 200 {
			t.Fatalf("X at %s while the change propagates: %d %s", s.cfg.Node, r.Code, r.Reason)
		}
		if code := d.call("+15551234567"); code != 200 {
			t.Fatalf("X's call at %s while the change propagates: %d", s.cfg.Node, code)
		}
	}
	if got, _ := c.svc.SIPAccount(context.Background(), c.cust, a.ID); got.Status != sipdesk.StatusInProcess {
		t.Fatalf("the account is %s, want in_process (nothing moves it on in this test)", got.Status)
	}
	var gone time.Duration
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		rs, err := c.edges[2].pol.StoredBindings(context.Background(), a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !bindingFrom(rs, "127.0.0.4") {
			gone = time.Since(changed)
			break
		}
	}
	if gone == 0 || gone > time.Second {
		t.Fatalf("Y's binding still stored %v after the ACL change", time.Since(changed).Round(time.Millisecond))
	}
	t.Logf("Y dropped %v after the ACL change", gone.Round(time.Millisecond))
	rs, _ := c.edges[2].pol.StoredBindings(context.Background(), a.ID)
	if !bindingFrom(rs, x.c.LocalAddr()) {
		t.Fatal("X's binding was dropped by a change that allows it")
	}
	// An inbound call rings X only.
	carrier := newPhoneAt(t, "127.0.0.9", c.edges[2].UDPAddr().String())
	carrier.dial("+15557100005")
	if m := x.gotInvite(3 * time.Second); m == nil {
		t.Fatal("no INVITE at X after the ACL change")
	}
	if m := y.gotInvite(300 * time.Millisecond); m != nil {
		t.Fatal("INVITE at Y, refused by the new ACL")
	}
	carrier.cancel()
	c.idle()
}

func bindingFrom(rs []*sipdesk.Registration, received string) bool {
	for _, r := range rs {
		if strings.HasPrefix(r.Received, received) {
			return true
		}
	}
	return false
}

// TestLocationHopForged: an INVITE with a forged or replayed hop header
// from an outsider is refused; the device is not rung.
func TestLocationHopForged(t *testing.T) {
	c := newLocCluster(t)
	a := c.account("hop00001", "+15557100006")
	x := newLocDev(t, "udp", "127.0.0.3", c.edges[0], a.Username)
	mustRegister(t, x, "")
	contact := "sip:" + a.Username + "@" + x.c.LocalAddr()
	for name, hdr := range map[string]string{
		"no signature":  fmt.Sprintf("%s: %d;c=x;exp=%d;sig=AAAA", b2bua.HopHeader, a.ID, time.Now().Add(10*time.Second).Unix()),
		"garbage":       b2bua.HopHeader + ": hello",
		"wrong contact": fmt.Sprintf("%s: %d;c=%s;exp=%d;sig=AAAA", b2bua.HopHeader, a.ID, contact, time.Now().Add(10*time.Second).Unix()),
	} {
		out := newPhoneAt(t, "127.0.0.8", c.edges[0].UDPAddr().String())
		out.dial("x", hdr)
		if fin := out.final(3 * time.Second); fin.Code != 403 {
			t.Fatalf("%s: %d %s, want 403", name, fin.Code, fin.Reason)
		}
	}
	if m := x.gotInvite(300 * time.Millisecond); m != nil {
		t.Fatal("a forged hop rang the device")
	}
}

// TestLocationWebSocketFromOtherEdge: a browser registered over WebSocket
// at edge A rings for a carrier call that reached edge C (through A, over
// the browser's connection).
func TestLocationWebSocketFromOtherEdge(t *testing.T) {
	c := newLocCluster(t)
	a := c.f.passwordAccount(c.cust, "wsloc0001", "Secret-pass-1", func(a *sipdesk.SIPAccount) { a.JWTEnabled, a.JWTSecret = true, jwtSecret })
	c.f.update(func(tx sipdesk.Tx) error {
		return tx.UpsertDID(&sipdesk.DID{Number: "+15557100007", SIPAccountID: a.ID, CustomerID: c.cust})
	})
	c.applied()
	p := newWSPhone(t, c.edges[0], a.Username)
	if r := p.register(bearer(mint(t, jwtSecret, a.Username, 10*time.Minute, time.Now()))); r.Code != 200 {
		t.Fatalf("register: %d %s", r.Code, r.Reason)
	}
	in := newPhoneAt(t, "127.0.0.9", c.edges[2].UDPAddr().String())
	in.dial("+15557100007")
	ring := p.recv(3*time.Second, func(m *siptest.Msg) bool { return m.Method == "INVITE" })
	p.send(siptest.Reply(ring, 486, "Busy Here", "ws"+siptest.RandHex(2)))
	if r := in.final(3 * time.Second); r.Code != 486 {
		t.Fatalf("carrier got %d %s, want the browser's 486", r.Code, r.Reason)
	}
}
