package edge

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// flakyChannels fails every call while down is set: the store is away.
type flakyChannels struct {
	policy.Channels
	down atomic.Bool
}

var errStoreDown = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")

func (f *flakyChannels) AcquireChannelTx(tx sipdesk.Tx, l *sipdesk.CallLease) error {
	if f.down.Load() {
		return errStoreDown
	}
	return f.Channels.AcquireChannelTx(tx, l)
}

func (f *flakyChannels) ReleaseChannelTx(tx sipdesk.Tx, id string) error {
	if f.down.Load() {
		return errStoreDown
	}
	return f.Channels.ReleaseChannelTx(tx, id)
}

func (f *flakyChannels) RenewLeases(ctx context.Context, node string) ([]string, error) {
	if f.down.Load() {
		return nil, errStoreDown
	}
	return f.Channels.RenewLeases(ctx, node)
}

func TestChannelLimitRefusesOverLimit(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newCallEnv(t, 2, nil, func(c *Config) { c.Registry = reg })
	var phones []*phone
	for range 2 {
		p := newPhone(t, "127.0.0.2", e.s)
		p.dial("+15551230001")
		if r := p.final(3 * time.Second); r.Code != 200 {
			t.Fatalf("call within the limit: %d %s", r.Code, r.Reason)
		}
		phones = append(phones, p)
	}
	over := newPhone(t, "127.0.0.2", e.s)
	over.dial("+15551230001")
	r := over.final(3 * time.Second)
	if r.Code != 403 || r.Reason != "Channel limit reached" {
		t.Fatalf("third call: %d %s, want 403 Channel limit reached", r.Code, r.Reason)
	}
	if n := e.carrier.count(); n != 2 {
		t.Fatalf("carrier got %d INVITEs, want 2", n)
	}
	if n := e.live(); n != 2 {
		t.Fatalf("live leases %d", n)
	}
	if g := metricValue(e.s.met.Channels.WithLabelValues(strconv.FormatInt(e.cust, 10))); g != 2 {
		t.Fatalf("channels gauge %v", g)
	}
	if c := metricValue(e.s.met.Refusals.WithLabelValues(sipdesk.EChannelLimit)); c != 1 {
		t.Fatalf("refusal counter %v", c)
	}
	// One hangs up: the next call fits.
	if r := phones[0].inDialog("BYE"); r.Code != 200 {
		t.Fatalf("BYE: %d", r.Code)
	}
	e.waitLive(1, 2*time.Second)
	next := newPhone(t, "127.0.0.2", e.s)
	next.dial("+15551230001")
	if r := next.final(3 * time.Second); r.Code != 200 {
		t.Fatalf("call after a hang-up: %d %s", r.Code, r.Reason)
	}
	// The caller hangs up one, the carrier the other.
	phones[1].inDialog("BYE")
	e.carrier.hangup(e.carrier.last())
	if bye := next.waitReq("BYE", 3*time.Second); bye.Get("Reason") != "" {
		t.Fatalf("relayed BYE carries our Reason %q", bye.Get("Reason"))
	}
	e.waitLive(0, 2*time.Second)
	if g := metricValue(e.s.met.Channels.WithLabelValues(strconv.FormatInt(e.cust, 10))); g != 0 {
		t.Fatalf("channels gauge %v after the calls", g)
	}
	rec := e.record(over.callID)
	if rec.Disposition != sipdesk.DispRefused || rec.SIPCode != 403 || rec.Reason != sipdesk.EChannelLimit || rec.SIPAccountID != e.acct.ID {
		t.Fatalf("refused record: %+v", rec)
	}
	ok := e.record(phones[0].callID)
	if ok.Disposition != sipdesk.DispAnswered || ok.AnsweredAt.IsZero() || ok.EndedAt.IsZero() || ok.Reason != "bye_caller" ||
		ok.CallerID != "+15550000002" || ok.CallerIDReason != sipdesk.ReasonDefault || ok.Node != "n1" ||
		!strings.Contains(ok.From, "+15550000999") || !strings.Contains(ok.To, "+15551230001") {
		t.Fatalf("answered record: %+v", ok)
	}
}

// TestFailClosed: while the store is away new calls get 503 with
// Retry-After and nothing reaches the carrier; once it is back calls are
// admitted again, and a release that failed meanwhile is retried.
func TestFailClosed(t *testing.T) {
	var fl *flakyChannels
	e := newCallEnv(t, 5, func(c policy.Channels) policy.Channels { fl = &flakyChannels{Channels: c}; return fl }, nil)

	held := newPhone(t, "127.0.0.2", e.s)
	held.dial("+15551230001")
	if r := held.final(3 * time.Second); r.Code != 200 {
		t.Fatalf("call: %d", r.Code)
	}
	fl.down.Store(true)
	p := newPhone(t, "127.0.0.2", e.s)
	p.dial("+15551230001")
	r := p.final(3 * time.Second)
	if r.Code != 503 || r.Get("Retry-After") == "" {
		t.Fatalf("store down: %d %s Retry-After=%q, want 503 with Retry-After", r.Code, r.Reason, r.Get("Retry-After"))
	}
	if n := e.carrier.count(); n != 1 {
		t.Fatalf("carrier got %d INVITEs while the store was down", n)
	}
	// The held call ends while the store is down: the release is queued.
	held.inDialog("BYE")
	deadline := time.Now().Add(2 * time.Second)
	for e.adm.Pending() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if e.adm.Pending() != 1 || e.live() != 1 {
		t.Fatalf("pending releases %d, live %d", e.adm.Pending(), e.live())
	}
	fl.down.Store(false)
	e.waitLive(0, 3*time.Second)
	p2 := newPhone(t, "127.0.0.2", e.s)
	p2.dial("+15551230001")
	if r := p2.final(3 * time.Second); r.Code != 200 {
		t.Fatalf("store back: %d %s", r.Code, r.Reason)
	}
	if r := p2.inDialog("BYE"); r.Code != 200 {
		t.Fatalf("BYE: %d %s", r.Code, r.Reason)
	}
	// The release is a store write with a 500 ms timeout, retried each
	// second when it fails: under a loaded machine (the whole suite with
	// -race on two cores) it can take a retry or two.
	e.waitLive(0, 5*time.Second)
}

// TestChannelReleasedOnFailures: carrier 486 and 503, CANCEL by the caller
// (propagated to the carrier) and the ring timeout each free the channel.
func TestChannelReleasedOnFailures(t *testing.T) {
	e := newCallEnv(t, 1, nil, func(c *Config) { c.RingTimeout = 700 * time.Millisecond })
	for _, tc := range []struct {
		mode string
		code int
		disp string
	}{{"486", 486, sipdesk.DispBusy}, {"503", 503, sipdesk.DispFailed}} {
		e.carrier.mode.Store(tc.mode)
		p := newPhone(t, "127.0.0.2", e.s)
		p.dial("+15551230001")
		if r := p.final(3 * time.Second); r.Code != tc.code {
			t.Fatalf("carrier %s: caller got %d", tc.mode, r.Code)
		}
		e.waitLive(0, 2*time.Second)
		if rec := e.record(p.callID); rec.Disposition != tc.disp || rec.SIPCode != tc.code {
			t.Fatalf("carrier %s: record %+v", tc.mode, rec)
		}
	}

	t.Run("CANCEL reaches the carrier", func(t *testing.T) {
		e.carrier.drain()
		e.carrier.mode.Store("ring")
		p := newPhone(t, "127.0.0.2", e.s)
		p.dial("+15551230001")
		inv := e.carrier.waitReq(t, "INVITE", 3*time.Second, nil)
		time.Sleep(100 * time.Millisecond) // the 180 reaches the caller
		p.cancel()
		e.carrier.waitReq(t, "CANCEL", 3*time.Second, func(m *siptest.Msg) bool { return m.Get("Call-ID") == inv.Get("Call-ID") })
		if r := p.final(3 * time.Second); r.Code != 487 {
			t.Fatalf("caller got %d after CANCEL", r.Code)
		}
		e.waitLive(0, 3*time.Second)
		if rec := e.record(p.callID); rec.Disposition != sipdesk.DispCancelled {
			t.Fatalf("record %+v", rec)
		}
	})
	t.Run("ring timeout", func(t *testing.T) {
		e.carrier.drain()
		e.carrier.mode.Store("ring")
		p := newPhone(t, "127.0.0.2", e.s)
		p.dial("+15551230001")
		if r := p.final(5 * time.Second); r.Code != 408 {
			t.Fatalf("caller got %d at the ring timeout", r.Code)
		}
		e.carrier.waitReq(t, "CANCEL", 3*time.Second, nil)
		e.waitLive(0, 3*time.Second)
		if rec := e.record(p.callID); rec.Disposition != sipdesk.DispNoAnswer || rec.Reason != "ring_timeout" {
			t.Fatalf("record %+v", rec)
		}
	})
}

// TestMaxDurationBye: both legs get a BYE with a Reason header.
func TestMaxDurationBye(t *testing.T) {
	e := newCallEnv(t, 1, nil, func(c *Config) { c.MaxCallDuration = 600 * time.Millisecond })
	p := newPhone(t, "127.0.0.2", e.s)
	p.dial("+15551230001")
	if r := p.final(3 * time.Second); r.Code != 200 {
		t.Fatalf("call: %d", r.Code)
	}
	const want = `SIP;cause=200;text="Maximum call duration reached"`
	if bye := p.waitReq("BYE", 3*time.Second); bye.Get("Reason") != want {
		t.Fatalf("caller BYE Reason %q", bye.Get("Reason"))
	}
	if bye := e.carrier.waitReq(t, "BYE", 3*time.Second, nil); bye.Get("Reason") != want {
		t.Fatalf("carrier BYE Reason %q", bye.Get("Reason"))
	}
	e.waitLive(0, 2*time.Second)
	if rec := e.record(p.callID); rec.Reason != "max_duration" || rec.Disposition != sipdesk.DispAnswered {
		t.Fatalf("record %+v", rec)
	}
}

// TestDeadDialogProbe: a caller without session timers that stops
// answering the in-dialog OPTIONS (or answers 481) loses the call.
func TestDeadDialogProbe(t *testing.T) {
	e := newCallEnv(t, 5, nil, func(c *Config) {
		c.ProbeInterval = 300 * time.Millisecond
		c.ProbeTimeout = 700 * time.Millisecond
	})
	alive := newPhone(t, "127.0.0.2", e.s)
	alive.dial("+15551230001")
	if r := alive.final(3 * time.Second); r.Code != 200 || r.Get("Session-Expires") != "" {
		t.Fatalf("call: %d Session-Expires=%q", r.Code, r.Get("Session-Expires"))
	}
	for _, code := range []int32{0, 481} {
		p := newPhone(t, "127.0.0.2", e.s)
		p.optionsCode.Store(code)
		p.dial("+15551230001")
		if r := p.final(3 * time.Second); r.Code != 200 {
			t.Fatalf("call: %d", r.Code)
		}
		p.waitReq("OPTIONS", 2*time.Second)
		bye := e.carrier.waitReq(t, "BYE", 4*time.Second, nil)
		if !strings.Contains(bye.Get("Reason"), "Dead dialog") {
			t.Fatalf("carrier BYE Reason %q", bye.Get("Reason"))
		}
		if rec := e.record(p.callID); rec.Reason != "dead_dialog" {
			t.Fatalf("options answer %d: record %+v", code, rec)
		}
	}
	// The one answering its probes is still up.
	alive.waitReq("OPTIONS", 2*time.Second)
	e.waitLive(1, 3*time.Second)
	alive.inDialog("BYE")
	e.waitLive(0, 2*time.Second)
}

// TestSessionTimer: a caller with Supported: timer gets Session-Expires
// with refresher=uac; refreshes keep the call, a missing one ends it.
func TestSessionTimer(t *testing.T) {
	e := newCallEnv(t, 5, nil, func(c *Config) { c.MinSE = time.Second; c.ProbeInterval = -1 })
	p := newPhone(t, "127.0.0.2", e.s)
	p.dial("+15551230001", "Supported: timer", "Session-Expires: 3")
	r := p.final(3 * time.Second)
	if r.Code != 200 || r.Get("Session-Expires") != "3;refresher=uac" || !strings.Contains(r.Get("Require"), "timer") {
		t.Fatalf("200: %d Session-Expires=%q Require=%q", r.Code, r.Get("Session-Expires"), r.Get("Require"))
	}
	start := time.Now()
	time.Sleep(1500 * time.Millisecond)
	up := p.inDialog("UPDATE", "Supported: timer", "Session-Expires: 3;refresher=uac")
	if up.Code != 200 || up.Get("Session-Expires") == "" {
		t.Fatalf("refresh: %d Session-Expires=%q", up.Code, up.Get("Session-Expires"))
	}
	// Without the refresh the call would have ended at 2 s (3 − 3/3).
	time.Sleep(1200 * time.Millisecond)
	if e.live() != 1 {
		t.Fatal("call ended despite the refresh")
	}
	bye := e.carrier.waitReq(t, "BYE", 3*time.Second, nil)
	if !strings.Contains(bye.Get("Reason"), "Session timer expired") {
		t.Fatalf("BYE Reason %q", bye.Get("Reason"))
	}
	if el := time.Since(start); el < 3*time.Second || el > 5*time.Second {
		t.Fatalf("ended after %v", el)
	}
	e.waitLive(0, 2*time.Second)
}

// TestIdentityHeadersNotPassed: P-Asserted-Identity, P-Preferred-Identity
// and Remote-Party-ID of the device never reach the carrier; the carrier
// sees only our P-Asserted-Identity.
func TestIdentityHeadersNotPassed(t *testing.T) {
	e := newCallEnv(t, 5, nil, nil)
	p := newPhone(t, "127.0.0.2", e.s)
	p.dial("+15551230001", "P-Asserted-Identity: <sip:+19999999999@evil.example>",
		"P-Preferred-Identity: <sip:+18888888888@evil.example>", `Remote-Party-ID: "Boss" <sip:+17777777777@evil.example>;party=calling;screen=yes`,
		"Privacy: none")
	if r := p.final(3 * time.Second); r.Code != 200 {
		t.Fatalf("call: %d", r.Code)
	}
	inv := e.carrier.last()
	pai := inv.All("P-Asserted-Identity")
	if len(pai) != 1 || !strings.Contains(pai[0], "+15550000002@") {
		t.Fatalf("carrier P-Asserted-Identity %q", pai)
	}
	for _, h := range []string{"P-Preferred-Identity", "Remote-Party-ID", "Privacy"} {
		if v := inv.All(h); len(v) > 0 {
			t.Fatalf("carrier got %s: %q", h, v)
		}
	}
	if !strings.Contains(inv.Get("From"), "+15550000002@") {
		t.Fatalf("carrier From %q", inv.Get("From"))
	}
	p.inDialog("BYE")
}

// TestScopeBothCountsInbound: under scope "both" an inbound call holds a
// channel, so an outbound call over the limit is refused; under
// "outbound" it is a live call that does not count.
func TestScopeBothCountsInbound(t *testing.T) {
	e := newCallEnv(t, 1, nil, nil)
	// Inbound calls to an IP account go to its first address, port 5060.
	newCarrierAt(t, "127.0.0.2:5060", e.s.UDPAddr().String())
	e.f.update(func(tx sipdesk.Tx) error {
		return tx.UpsertDID(&sipdesk.DID{Number: "+15557770001", SIPAccountID: e.acct.ID, CustomerID: e.cust})
	})
	for _, scope := range []string{sipdesk.ScopeBoth, sipdesk.ScopeOutbound} {
		e.f.update(func(tx sipdesk.Tx) error {
			c, err := tx.Customer(e.cust, true)
			if err != nil {
				return err
			}
			c.ChannelScope = scope
			return tx.UpdateCustomer(c)
		})
		waitApplied(t, e.s, e.st)
		in := newPhone(t, "127.0.0.9", e.s) // from the carrier's address
		in.dial("+15557770001")
		if r := in.final(3 * time.Second); r.Code != 200 {
			t.Fatalf("inbound: %d %s", r.Code, r.Reason)
		}
		e.waitLive(1, time.Second)
		out := newPhone(t, "127.0.0.2", e.s)
		out.dial("+15551230001")
		r := out.final(3 * time.Second)
		if scope == sipdesk.ScopeBoth && (r.Code != 403 || r.Reason != "Channel limit reached") {
			t.Fatalf("scope both: outbound got %d %s", r.Code, r.Reason)
		}
		if scope == sipdesk.ScopeOutbound {
			if r.Code != 200 {
				t.Fatalf("scope outbound: outbound got %d %s", r.Code, r.Reason)
			}
			out.inDialog("BYE")
		}
		in.inDialog("BYE")
		e.waitLive(0, 2*time.Second)
	}
}

// TestInboundFork: an unknown DID gets 404, a DID whose account has no
// binding 480; a DID of an account with two bindings forks to both, the
// best failure is relayed when both fail, and the first 2xx wins.
func TestInboundFork(t *testing.T) {
	e := newCallEnv(t, 5, nil, nil)
	acct := e.f.passwordAccount(e.cust, "forkuser01", "Secret-pass-1")
	idle := e.f.passwordAccount(e.cust, "idleuser01", "Secret-pass-1")
	ua1 := newCarrierAt(t, "127.0.0.21:"+strconv.Itoa(siptest.FreePort(t, "127.0.0.21")), e.s.UDPAddr().String())
	ua2 := newCarrierAt(t, "127.0.0.22:"+strconv.Itoa(siptest.FreePort(t, "127.0.0.22")), e.s.UDPAddr().String())
	e.f.update(func(tx sipdesk.Tx) error {
		for _, d := range []*sipdesk.DID{{Number: "+15557770002", SIPAccountID: acct.ID, CustomerID: e.cust},
			{Number: "+15557770003", SIPAccountID: idle.ID, CustomerID: e.cust}} {
			if err := tx.UpsertDID(d); err != nil {
				return err
			}
		}
		for _, ua := range []*fakeCarrier{ua1, ua2} {
			if err := tx.PutRegistration(&sipdesk.Registration{SIPAccountID: acct.ID, Contact: "sip:forkuser01@" + ua.Addr,
				Received: ua.Addr, Transport: "udp", CallID: siptest.RandHex(4), CSeq: 1, Node: "n1", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
				return err
			}
		}
		return nil
	})
	waitApplied(t, e.s, e.st)
	for _, tc := range []struct {
		did, m1, m2 string
		code        int
	}{
		{"+15559990000", "", "", 404},
		{"+15557770003", "", "", 480},
		{"+15557770002", "404", "480", 480},
		{"+15557770002", "486", "404", 486},
		{"+15557770002", "404", "answer", 200},
	} {
		ua1.mode.Store(tc.m1)
		ua2.mode.Store(tc.m2)
		in := newPhone(t, "127.0.0.9", e.s)
		in.dial(tc.did)
		r := in.final(5 * time.Second)
		if r.Code != tc.code {
			t.Fatalf("DID %s with %s/%s: %d %s, want %d", tc.did, tc.m1, tc.m2, r.Code, r.Reason, tc.code)
		}
		if r.Code == 200 {
			in.inDialog("BYE")
			ua2.waitReq(t, "BYE", 3*time.Second, nil)
		}
	}
	e.waitLive(0, 2*time.Second)
	recs := e.records()
	if n := len(recs); n != 4 { // the unknown DID has no account: no record
		t.Fatalf("%d inbound records", n)
	}
}

func metricValue(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}

// TestRegisterMetrics: REGISTER answers are counted by status code.
func TestRegisterMetrics(t *testing.T) {
	st := openStore(t)
	f := fixture{t, st}
	f.passwordAccount(f.customer(), "metricuser1", "Secret-pass-1")
	reg := prometheus.NewRegistry()
	s := startEdge(t, st, func(c *Config) { c.Registry = reg })
	waitApplied(t, s, st)
	u := newUAC(t, "udp", "127.0.0.1", s)
	if r := u.login("metricuser1", "Secret-pass-1", "MD5"); r.Code != 200 {
		t.Fatalf("register: %d", r.Code)
	}
	// The counter is bumped after the answer is sent: give it a moment.
	var c401, c200 float64
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if c401, c200 = metricValue(s.met.Registers.WithLabelValues("401")), metricValue(s.met.Registers.WithLabelValues("200")); c401 == 1 && c200 == 1 {
			break
		}
	}
	if c401 != 1 || c200 != 1 {
		t.Fatalf("registers: 401=%v 200=%v", c401, c200)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	if !names["sipdesk_sip_registers_total"] {
		t.Fatalf("not registered on Config.Registry: %v", names)
	}
}
