package edge

import (
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk/internal/siptest"
)

// The caller's leg: the edge answers the caller's INVITE itself (no
// sipgo dialog session) and keeps the dialog as strings once the ACK came.

// TestCallerAnswerUntilAck: the 200 to the caller is sent again, T1 then
// doubling, until the ACK; a BYE from the carrier meanwhile reaches the
// caller only after its ACK (RFC 3261 §15), and the 200 stops with it.
func TestCallerAnswerUntilAck(t *testing.T) {
	e := newCallEnv(t, 5, nil, func(c *Config) { c.ProbeInterval = -1 })
	p := newPhone(t, "127.0.0.2", e.s)
	p.dial("+15551230001")
	var oks []time.Time
	var ok *siptest.Msg
	for end := time.After(1800 * time.Millisecond); ; {
		select {
		case m := <-p.resps:
			if m.Code == 200 && strings.HasSuffix(m.Get("CSeq"), "INVITE") {
				oks, ok = append(oks, time.Now()), m
			}
			continue
		case <-end:
		}
		break
	}
	// Sent at 0, T1 (0.5 s) and 3×T1 (1.5 s).
	if len(oks) != 3 {
		t.Fatalf("%d 200s within 1.8 s without an ACK, want 3", len(oks))
	}
	if gap := oks[2].Sub(oks[1]); gap < 800*time.Millisecond {
		t.Errorf("second retransmission %v after the first, want about 1 s (doubling)", gap)
	}
	// The INVITE again (as from a caller that missed every answer): the
	// transaction is over, the call absorbs it: no second call, no other
	// answer.
	p.c.Send(p.inviteRaw)
	select {
	case m := <-p.resps:
		if m.Code != 200 {
			t.Fatalf("%d %s to the INVITE sent again", m.Code, m.Reason)
		}
	case <-time.After(300 * time.Millisecond):
	}
	if n := e.carrier.count(); n != 1 {
		t.Fatalf("the carrier got %d INVITEs, want 1", n)
	}
	e.carrier.hangup(e.carrier.last())
	select {
	case m := <-p.reqs:
		t.Fatalf("%s at the caller before its ACK", m.Method)
	case <-time.After(300 * time.Millisecond):
	}
	p.remote, p.contact = ok.Get("To"), siptest.URIOf(ok.Get("Contact"))
	p.ack(ok)
	p.waitReq("BYE", 2*time.Second)
	select {
	case m := <-p.resps:
		if m.Code == 200 && strings.HasSuffix(m.Get("CSeq"), "INVITE") {
			t.Fatal("200 sent again after the ACK")
		}
	case <-time.After(2500 * time.Millisecond):
	}
	e.waitLive(0, 2*time.Second)
}

// TestCallerNoAck: a caller that never ACKs the 200 gets it until the
// INVITE transaction's linger (sip.Timer_L, 5 s) is over; the call then
// ends: BYE to the carrier, channel freed, recorded as no_ack.
func TestCallerNoAck(t *testing.T) {
	e := newCallEnv(t, 5, nil, func(c *Config) { c.ProbeInterval = -1 })
	p := newPhone(t, "127.0.0.2", e.s)
	p.dial("+15551230001")
	inv := e.carrier.waitReq(t, "INVITE", 2*time.Second, nil)
	start := time.Now()
	bye := e.carrier.waitReq(t, "BYE", 8*time.Second, nil)
	took := time.Since(start)
	if took < 4*time.Second {
		t.Errorf("BYE to the carrier %v after the answer, want the 5 s linger", took)
	}
	oks := 0
	for len(p.resps) > 0 {
		if m := <-p.resps; m.Code == 200 {
			oks++
		}
	}
	if oks != 4 { // at 0, 0.5, 1.5 and 3.5 s
		t.Errorf("%d 200s sent without an ACK, want 4", oks)
	}
	if bye.Get("Call-ID") != inv.Get("Call-ID") {
		t.Errorf("BYE for %q, want the call's %q", bye.Get("Call-ID"), inv.Get("Call-ID"))
	}
	e.waitLive(0, 2*time.Second)
	if r := e.record(p.callID); r == nil || r.Reason != "no_ack" {
		t.Fatalf("record %+v, want reason no_ack", r)
	}
}

// TestCallerLegInDialog: a BYE the edge sends to the caller is in the
// caller's dialog: the caller's Contact as Request-URI, our To (with its
// tag) as From, the caller's From as To, the next CSeq of our own, and the
// INVITE's Record-Route in order as Route.
func TestCallerLegInDialog(t *testing.T) {
	e := newCallEnv(t, 5, nil, func(c *Config) { c.ProbeInterval = -1 })
	p := newPhone(t, "127.0.0.2", e.s)
	me := p.c.LocalAddr()
	routes := []string{"<sip:r1@" + me + ";lr>", "<sip:r2@" + me + ";lr;ftag=x>"}
	p.dial("+15551230001", "Record-Route: "+strings.Join(routes, ", "))
	r := p.final(3 * time.Second)
	if r.Code != 200 {
		t.Fatalf("call: %d %s", r.Code, r.Reason)
	}
	if got := strings.Join(r.All("Record-Route"), ", "); got != strings.Join(routes, ", ") {
		t.Errorf("200's Record-Route %q, want the INVITE's", got)
	}
	e.carrier.hangup(e.carrier.last())
	bye := p.waitReq("BYE", 2*time.Second)
	if ruri := strings.Fields(bye.StartLine)[1]; ruri != "sip:caller@"+me {
		t.Errorf("BYE Request-URI %q, want the caller's Contact", ruri)
	}
	if bye.Get("From") != p.remote || bye.Get("To") != p.invite.Get("From") || bye.Get("Call-ID") != p.callID {
		t.Errorf("BYE dialog: From %q To %q Call-ID %q; want From %q To %q", bye.Get("From"), bye.Get("To"), bye.Get("Call-ID"), p.remote, p.invite.Get("From"))
	}
	if n, m := cseqOf(bye); n != p.cseq+1 || m != "BYE" {
		t.Errorf("BYE CSeq %q, want %d BYE", bye.Get("CSeq"), p.cseq+1)
	}
	got := routesOf(bye)
	if strings.Join(got, " ") != strings.Join(routes, " ") {
		t.Errorf("BYE Route %q, want %q", got, routes)
	}
	e.waitLive(0, 2*time.Second)
}
