package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// Calls when a node fails or stops: self-fencing, lost leases, the sweep of
// a dead node's calls and the graceful drain, on one edge with a real
// SQLite store, a raw UAC (phone) and the fake carrier; the lease timing is
// shortened (TTL 3 s).

var fastLeases = sipdesk.LeaseTiming{TTL: 3 * time.Second, Renew: 500 * time.Millisecond, Fence: 2 * time.Second, Sweep: 200 * time.Millisecond}

// fenceEnv is a callEnv whose edge runs until stop (or the test's end).
type fenceEnv struct {
	*callEnv
	stop func() error
}

func newFenceEnv(t *testing.T, timing sipdesk.LeaseTiming, ch func(policy.Channels) policy.Channels, mod func(*Config)) *fenceEnv {
	return newFenceEnvPre(t, timing, ch, mod, nil)
}

// newFenceEnvPre runs pre with the carrier's address before the edge starts.
func newFenceEnvPre(t *testing.T, timing sipdesk.LeaseTiming, ch func(policy.Channels) policy.Channels, mod func(*Config), pre func(e *callEnv, carrier string)) *fenceEnv {
	t.Helper()
	st := openStore(t)
	e := &callEnv{t: t, st: st, f: fixture{t, st}}
	e.svc = app.New(st, app.Options{Realm: testRealm, LeaseTTL: timing.TTL, Log: testLogger(t)})
	e.cust = e.f.customer()
	e.setLimit(5)
	e.acct = e.f.ipAccount(e.cust, "trunk", "", "127.0.0.2/32")
	var chs policy.Channels = e.svc
	if ch != nil {
		chs = ch(chs)
	}
	e.adm = policy.NewChannels(st, chs, "n1", policy.ChannelOptions{Timing: timing, Log: testLogger(t), Timeout: 300 * time.Millisecond})
	carrierPort := siptest.FreePort(t, "127.0.0.9")
	cfg := Config{Addr: fmt.Sprintf("127.0.0.1:%d", siptest.FreePort(t, "127.0.0.1")), NonceKey: testKey, PollInterval: 50 * time.Millisecond,
		MinExpires: 60 * time.Second, Node: "n1", Channels: e.adm, Records: e.adm, Carrier: fmt.Sprintf("sip:127.0.0.9:%d", carrierPort)}
	if mod != nil {
		mod(&cfg)
	}
	if pre != nil {
		pre(e, fmt.Sprintf("127.0.0.9:%d", carrierPort))
	}
	s, err := New(cfg, st, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("edge.Run: %v", err)
	}
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			done <- err
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("edge did not stop")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	e.s = s
	waitApplied(t, s, st)
	e.carrier = newCarrierAt(t, fmt.Sprintf("127.0.0.9:%d", carrierPort), s.UDPAddr().String())
	return &fenceEnv{callEnv: e, stop: stop}
}

// answered places a call that the carrier answers.
func (e *fenceEnv) answered() *phone {
	e.t.Helper()
	e.carrier.mode.Store("answer")
	p := newPhone(e.t, "127.0.0.2", e.s)
	p.dial("+15551230001")
	if r := p.final(3 * time.Second); r.Code != 200 {
		e.t.Fatalf("call: %d %s", r.Code, r.Reason)
	}
	return p
}

// ringing places a call that the carrier keeps ringing.
func (e *fenceEnv) ringing() *phone {
	e.t.Helper()
	e.carrier.mode.Store("ring")
	e.carrier.drain()
	p := newPhone(e.t, "127.0.0.2", e.s)
	p.dial("+15551230001")
	e.carrier.waitReq(e.t, "INVITE", 3*time.Second, nil)
	return p
}

// options sends OPTIONS to the edge and returns the status code.
func options(t *testing.T, s *Server) int {
	t.Helper()
	c, err := siptest.Dial("udp", "127.0.0.3:0", s.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := s.UDPAddr().String()
	c.Send(fmt.Sprintf("OPTIONS sip:%s SIP/2.0\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s\nFrom: <sip:probe@127.0.0.3>;tag=1\nTo: <sip:%s>\nCall-ID: %s\nCSeq: 1 OPTIONS\nMax-Forwards: 70\nContent-Length: 0\n\n",
		addr, c.LocalAddr(), siptest.RandHex(4), addr, siptest.RandHex(6)))
	m, err := c.RecvResponse(2*time.Second, 200)
	if err != nil {
		t.Fatalf("OPTIONS: %v", err)
	}
	return m.Code
}

func (e *fenceEnv) lease(callID string) *sipdesk.CallLease {
	e.t.Helper()
	ls, err := e.svc.ActiveCalls(context.Background(), 0)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, l := range ls {
		if l.CallID == callID {
			return l
		}
	}
	return nil
}

// TestFencing: the store stops taking renewals (and every other lease
// write) with an answered and a ringing call up. The edge ends both before
// the answered call's lease could expire for another node (BYE with a
// Reason on both legs; CANCEL to the carrier and 503 to the ringing
// caller), refuses new calls and OPTIONS with 503 while fenced, and admits
// again once renewals work.
func TestFencing(t *testing.T) {
	var fl *flakyChannels
	e := newFenceEnv(t, fastLeases, func(c policy.Channels) policy.Channels { fl = &flakyChannels{Channels: c}; return fl }, nil)
	up := e.answered()
	inv := e.carrier.last()
	ring := e.ringing()
	time.Sleep(fastLeases.Renew + 200*time.Millisecond) // one renewal went through
	l := e.lease(up.callID)
	if l == nil {
		t.Fatal("no lease for the answered call")
	}
	fl.down.Store(true)
	cut := time.Now()

	var bye *siptest.Msg
	var fenced time.Time
	cancelled := false
	e.carrier.waitReq(t, "none", fastLeases.TTL, func(m *siptest.Msg) bool {
		switch {
		case m.Method == "BYE" && m.Get("Call-ID") == inv.Get("Call-ID"):
			bye, fenced = m, time.Now()
		case m.Method == "CANCEL":
			cancelled = true
		}
		return bye != nil && cancelled
	})
	if !strings.Contains(bye.Get("Reason"), "Channel lease not renewed") {
		t.Errorf("carrier BYE Reason %q", bye.Get("Reason"))
	}
	// The lease in the store expires at l.ExpiresAt or later (a renewal
	// may have extended it): the BYE left with at least half the margin
	// (TTL − Fence) to spare.
	if margin := l.ExpiresAt.Sub(fenced); margin < (fastLeases.TTL-fastLeases.Fence)/2 {
		t.Fatalf("fenced %v after the cut, only %v before the lease expiry", fenced.Sub(cut), margin)
	}
	if b := up.waitReq("BYE", 2*time.Second); !strings.Contains(b.Get("Reason"), "Channel lease not renewed") {
		t.Errorf("caller BYE Reason %q", b.Get("Reason"))
	}
	if r := ring.final(2 * time.Second); r.Code != 503 || r.Get("Retry-After") == "" {
		t.Fatalf("ringing call: %d %s Retry-After=%q, want 503 with Retry-After", r.Code, r.Reason, r.Get("Retry-After"))
	}
	t.Logf("store cut: calls ended after %v, %v before the lease could expire elsewhere",
		fenced.Sub(cut).Round(time.Millisecond), l.ExpiresAt.Sub(fenced).Round(time.Millisecond))

	code := 0 // the readiness follows the fence within a database probe (0.5 s)
	for end := time.Now().Add(2 * time.Second); code != 503 && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		code = options(t, e.s)
	}
	if code != 503 {
		t.Fatalf("OPTIONS while fenced: %d, want 503", code)
	}
	p := newPhone(t, "127.0.0.2", e.s)
	p.dial("+15551230001")
	if r := p.final(3 * time.Second); r.Code != 503 || r.Get("Retry-After") == "" {
		t.Fatalf("new call while fenced: %d, want 503 with Retry-After", r.Code)
	}

	fl.down.Store(false)
	deadline := time.Now().Add(3 * time.Second)
	for e.adm.Fenced() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for end := time.Now().Add(2 * time.Second); code != 200 && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		code = options(t, e.s)
	}
	if code != 200 {
		t.Fatalf("OPTIONS after the store came back: %d", code)
	}
	e.waitLive(0, 3*time.Second) // the fenced calls' releases were retried
	again := e.answered()
	again.inDialog("BYE")
	e.waitLive(0, 2*time.Second)

	if r := e.record(up.callID); r.Disposition != sipdesk.DispAnswered || r.Reason != policy.EndFenced {
		t.Errorf("answered call's record: %s/%s, want answered/fenced", r.Disposition, r.Reason)
	}
	if r := e.record(ring.callID); r.Disposition != sipdesk.DispFailed || r.SIPCode != 503 || r.Reason != policy.EndFenced {
		t.Errorf("ringing call's record: %s/%d/%s, want failed/503/fenced", r.Disposition, r.SIPCode, r.Reason)
	}
	if n := e.s.calls.LiveAttempts(); n != 0 {
		t.Errorf("%d attempts left in the live table", n)
	}
}

// TestLeaseLost: a call whose lease another node took (deleted here, as a
// claim would) is ended at the next renewal: the counters agree with the
// calls up.
func TestLeaseLost(t *testing.T) {
	e := newFenceEnv(t, fastLeases, nil, nil)
	p := e.answered()
	inv := e.carrier.last()
	if err := e.svc.ReleaseChannel(context.Background(), p.callID); err != nil {
		t.Fatal(err)
	}
	bye := e.carrier.waitReq(t, "BYE", 2*fastLeases.Renew+time.Second, func(m *siptest.Msg) bool { return m.Get("Call-ID") == inv.Get("Call-ID") })
	if !strings.Contains(bye.Get("Reason"), "Channel lease lost") {
		t.Errorf("BYE Reason %q", bye.Get("Reason"))
	}
	p.waitReq("BYE", 2*time.Second)
	if r := e.record(p.callID); r.Reason != policy.EndLeaseLost {
		t.Errorf("record reason %q, want lease_lost", r.Reason)
	}
	if e.s.ActiveCalls() != 0 || e.s.calls.LiveAttempts() != 0 {
		t.Errorf("%d calls still bridged, %d attempts live", e.s.ActiveCalls(), e.s.calls.LiveAttempts())
	}
}

// zombieChannels reports renewals of every lease it acquired without
// writing them: the node believes its leases are renewed while they
// expire, as the leases of a dead node do.
type zombieChannels struct {
	policy.Channels
	mu  sync.Mutex
	ids []string
}

func (z *zombieChannels) AcquireChannelTx(tx sipdesk.Tx, l *sipdesk.CallLease) error {
	z.mu.Lock()
	z.ids = append(z.ids, l.CallID)
	z.mu.Unlock()
	return z.Channels.AcquireChannelTx(tx, l)
}

func (z *zombieChannels) RenewLeases(context.Context, string) ([]string, error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	return append([]string(nil), z.ids...), nil
}

// TestSweepEndsLostCall: a call's lease expires without its node ending
// it (its renewals never land: as a dead node's). The
// sweep claims the lease, sends BYE on both legs from the dialog state
// stored with the lease (not from the call in memory), closes the record
// node_lost and frees the channel.
func TestSweepEndsLostCall(t *testing.T) {
	dead := sipdesk.LeaseTiming{TTL: 2 * time.Second, Renew: 400 * time.Millisecond, Fence: 1500 * time.Millisecond, Sweep: 200 * time.Millisecond}
	e := newFenceEnv(t, dead, func(c policy.Channels) policy.Channels { return &zombieChannels{Channels: c} }, nil)
	p := e.answered()
	inv := e.carrier.last()
	// The dialog state is stored with the lease once the call is up.
	var d policy.Dialog
	deadline := time.Now().Add(2 * time.Second)
	for {
		if l := e.lease(p.callID); l != nil && l.Dialog != "" {
			if err := json.Unmarshal([]byte(l.Dialog), &d); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no dialog state stored with the lease")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(d.Legs) != 2 || d.Node != "n1" {
		t.Fatalf("dialog %+v", d)
	}
	for _, leg := range d.Legs {
		if leg.Side == policy.LegCarrier && (leg.CallID != inv.Get("Call-ID") || !strings.Contains(leg.To, "tag=carrier") || leg.CSeq < 2) {
			t.Errorf("carrier leg %+v", leg)
		}
		if leg.Side == policy.LegCustomer && (leg.CallID != p.callID || !strings.Contains(leg.To, p.tag) || !strings.Contains(leg.Target, "caller@")) {
			t.Errorf("customer leg %+v", leg)
		}
	}

	bye := e.carrier.waitReq(t, "BYE", dead.TTL+2*time.Second, func(m *siptest.Msg) bool { return m.Get("Call-ID") == inv.Get("Call-ID") })
	if !strings.Contains(bye.Get("To"), "tag=carrier") || !strings.Contains(bye.Get("Reason"), "Edge lost") {
		t.Errorf("carrier BYE From %q To %q Reason %q", bye.Get("From"), bye.Get("To"), bye.Get("Reason"))
	}
	cb := p.waitReq("BYE", 2*time.Second)
	if !strings.Contains(cb.Get("To"), p.tag) {
		t.Errorf("caller BYE To %q, want our tag %s", cb.Get("To"), p.tag)
	}
	e.waitLive(0, 3*time.Second)
	if r := e.record(p.callID); r.Disposition != sipdesk.DispNodeLost || r.EndedAt.IsZero() {
		t.Errorf("record %s ended %v, want node_lost", r.Disposition, r.EndedAt)
	}
	if err := e.stop(); err != nil { // while the phone still answers the BYE of the call in memory
		t.Fatal(err)
	}
}

// TestDrain: the edge stops with an answered and a ringing call. At once
// OPTIONS and new calls get 503 with Retry-After; the calls go on until
// the drain timeout, then both are ended (BYE with a Reason; CANCEL and
// 503 for the ringing one); every record is closed, every lease released.
func TestDrain(t *testing.T) {
	const drain = 1500 * time.Millisecond
	e := newFenceEnv(t, fastLeases, nil, func(c *Config) { c.DrainTimeout = drain })
	up := e.answered()
	inv := e.carrier.last()
	ring := e.ringing()
	e.carrier.drain()
	stopped := make(chan error, 1)
	start := time.Now()
	go func() { stopped <- e.stop() }()
	deadline := time.Now().Add(time.Second)
	for !e.s.Draining() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if code := options(t, e.s); code != 503 {
		t.Fatalf("OPTIONS while draining: %d, want 503", code)
	}
	p := newPhone(t, "127.0.0.2", e.s)
	p.dial("+15551230001")
	if r := p.final(2 * time.Second); r.Code != 503 || r.Get("Retry-After") == "" {
		t.Fatalf("new call while draining: %d, want 503 with Retry-After", r.Code)
	}
	// The calls up go on until the timeout.
	for time.Since(start) < drain-300*time.Millisecond {
		select {
		case m := <-e.carrier.reqs:
			if m.Method == "BYE" || m.Method == "CANCEL" {
				t.Fatalf("%s to the carrier %v into the drain", m.Method, time.Since(start))
			}
		case <-time.After(20 * time.Millisecond):
		}
	}
	bye := e.carrier.waitReq(t, "BYE", 3*time.Second, func(m *siptest.Msg) bool { return m.Get("Call-ID") == inv.Get("Call-ID") })
	if !strings.Contains(bye.Get("Reason"), "Server shutting down") {
		t.Errorf("carrier BYE Reason %q", bye.Get("Reason"))
	}
	ended := time.Since(start)
	up.waitReq("BYE", 2*time.Second)
	if r := ring.final(2 * time.Second); r.Code != 503 {
		t.Fatalf("ringing call at the drain timeout: %d, want 503", r.Code)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	t.Logf("drain: calls ended %v after the stop (timeout %v)", ended.Round(time.Millisecond), drain)
	if n := e.live(); n != 0 {
		t.Fatalf("%d leases left after the stop", n)
	}
	if r := e.record(up.callID); r.Disposition != sipdesk.DispAnswered || r.Reason != "drained" || r.EndedAt.IsZero() {
		t.Errorf("answered call's record: %+v", r)
	}
	if r := e.record(ring.callID); r.Disposition != sipdesk.DispFailed || r.SIPCode != 503 || r.Reason != "drained" {
		t.Errorf("ringing call's record: %+v", r)
	}
	for _, r := range e.records() {
		if r.Disposition == sipdesk.DispActive {
			t.Errorf("record left in progress: %+v", r)
		}
	}
}

// TestRestartEndsPreviousLife: a node killed and restarted under the same
// name finds leases of its previous life: it ends their calls as a dead
// node's (BYE from the stored dialog, record node_lost) and frees them.
func TestRestartEndsPreviousLife(t *testing.T) {
	const callID, carrierCallID = "previous-life@127.0.0.2", "carrier-leg-1"
	e := newFenceEnvPre(t, fastLeases, nil, nil, func(e *callEnv, carrier string) {
		d := policy.Dialog{Node: "n1", Legs: []policy.DialogLeg{{Side: policy.LegCarrier, CallID: carrierCallID,
			From: "<sip:+15550000002@127.0.0.1>;tag=ours", To: "<sip:+15551230001@" + carrier + ">;tag=theirs",
			Target: "sip:carrier@" + carrier, CSeq: 2, Transport: "UDP"}}}
		js, _ := json.Marshal(d)
		now := time.Now()
		started := now.Add(-time.Minute) // in the previous life, before this one began
		e.f.update(func(tx sipdesk.Tx) error {
			if err := tx.InsertLease(&sipdesk.CallLease{CallID: callID, CustomerID: e.cust, SIPAccountID: e.acct.ID, Direction: sipdesk.DirOutbound,
				Node: "n1", StartedAt: started, ExpiresAt: now.Add(time.Hour)}); err != nil {
				return err
			}
			if err := tx.SetLeaseDialog(callID, string(js)); err != nil {
				return err
			}
			return tx.InsertCallRecord(&sipdesk.CallRecord{CallID: callID, CustomerID: e.cust, SIPAccountID: e.acct.ID,
				Direction: sipdesk.DirOutbound, StartedAt: started, Disposition: sipdesk.DispActive, Node: "n1"})
		})
	})
	bye := e.carrier.waitReq(t, "BYE", 3*time.Second, func(m *siptest.Msg) bool { return m.Get("Call-ID") == carrierCallID })
	if !strings.Contains(bye.Get("From"), "tag=ours") || !strings.Contains(bye.Get("To"), "tag=theirs") || !strings.HasPrefix(bye.Get("CSeq"), "10002 ") {
		t.Errorf("BYE From %q To %q CSeq %q", bye.Get("From"), bye.Get("To"), bye.Get("CSeq"))
	}
	e.waitLive(0, 3*time.Second)
	if r := e.record(callID); r.Disposition != sipdesk.DispNodeLost {
		t.Errorf("record %s, want node_lost", r.Disposition)
	}
}
