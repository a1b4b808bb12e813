package edge

import (
	"runtime"
	"testing"
	"time"
)

// TestCallsOutliveTheirInviteTransaction: the caller's INVITE transaction
// ends as the 2xx goes out (b2bua callerInvite.answer) and the 2xx is not
// sent again after 5 s (Timer L, transport's inviteServerLinger). Calls up
// longer than that still end from either side: the BYE answered and
// relayed, the channels released and the records written.
func TestCallsOutliveTheirInviteTransaction(t *testing.T) {
	e := newCallEnv(t, 2, nil, nil)
	var phones [2]*phone
	for i := range phones {
		phones[i] = newPhone(t, "127.0.0.2", e.s)
		phones[i].dial("+15551230001")
		if r := phones[i].final(3 * time.Second); r.Code != 200 {
			t.Fatalf("call %d: %d %s", i, r.Code, r.Reason)
		}
	}
	toCarrier := e.carrier.last() // the carrier leg of the second call
	time.Sleep(5500 * time.Millisecond)

	if r := phones[0].inDialog("BYE"); r.Code != 200 {
		t.Fatalf("caller's BYE after Timer L: %d %s", r.Code, r.Reason)
	}
	e.carrier.waitReq(t, "BYE", 3*time.Second, nil)
	e.carrier.hangup(toCarrier)
	phones[1].waitReq("BYE", 3*time.Second)
	e.waitLive(0, 2*time.Second)
	for i, want := range []string{"bye_caller", "bye_callee"} {
		if rec := e.record(phones[i].callID); rec.Reason != want || rec.EndedAt.Sub(rec.AnsweredAt) < 5*time.Second {
			t.Errorf("call %d's record: reason %q, %v up; want %q, over 5 s", i, rec.Reason, rec.EndedAt.Sub(rec.AnsweredAt), want)
		}
	}
}

// TestCallsUpHoldNoGoroutine: a call up is state and timers, not a parked
// goroutine (the dead-dialog watch was one), so calls up cost the edge no
// stacks; probing and the end still work (TestDeadDialogProbe,
// TestSessionTimer).
func TestCallsUpHoldNoGoroutine(t *testing.T) {
	const calls = 20
	e := newCallEnv(t, calls, nil, nil)
	settle := func() int {
		time.Sleep(300 * time.Millisecond)
		return runtime.NumGoroutine()
	}
	phones := make([]*phone, calls)
	for i := range phones {
		phones[i] = newPhone(t, "127.0.0.2", e.s)
	}
	before := settle()
	for i, p := range phones {
		p.dial("+15551230001")
		if r := p.final(3 * time.Second); r.Code != 200 {
			t.Fatalf("call %d: %d %s", i, r.Code, r.Reason)
		}
	}
	e.waitLive(calls, 2*time.Second)
	up := settle() - before
	t.Logf("%d calls up: %d more goroutines", calls, up)
	if up >= calls/2 {
		t.Errorf("%d calls up hold %d more goroutines", calls, up)
	}
	for _, p := range phones {
		p.inDialog("BYE")
	}
	e.waitLive(0, 2*time.Second)
}

// TestInviteRepeatedWhileCallUp: the caller's INVITE transaction ends at
// the ACK of the 200 (b2bua bridge), so the call's own INVITE coming again
// meets no transaction. It is absorbed all the same while the call is up:
// no second carrier leg, channel or record, and no answer. A new INVITE
// with the call's Call-ID and another branch (a merged request) gets 482.
func TestInviteRepeatedWhileCallUp(t *testing.T) {
	e := newCallEnv(t, 5, nil, nil)
	p := newPhone(t, "127.0.0.2", e.s)
	p.dial("+15551230001")
	if r := p.final(3 * time.Second); r.Code != 200 {
		t.Fatalf("call: %d %s", r.Code, r.Reason)
	}
	e.carrier.waitReq(t, "ACK", 2*time.Second, nil)
	time.Sleep(100 * time.Millisecond) // our ACK reached the edge and ended the transaction

	if err := p.c.Send(p.inviteRaw); err != nil { // the same INVITE, same branch
		t.Fatal(err)
	}
	select {
	case r := <-p.resps:
		t.Fatalf("retransmitted INVITE answered: %d %s", r.Code, r.Reason)
	case <-time.After(600 * time.Millisecond): // past Timer_1xx: not even a 100 Trying
	}
	if n := e.carrier.count(); n != 1 {
		t.Fatalf("carrier got %d INVITEs, want 1", n)
	}
	if n := e.live(); n != 1 {
		t.Fatalf("%d channels held, want 1", n)
	}

	remote, contact := p.remote, p.contact
	p.cseq-- // same CSeq, new branch: a merged request
	p.dial("+15551230001")
	if r := p.final(3 * time.Second); r.Code != 482 {
		t.Fatalf("merged request: %d %s, want 482", r.Code, r.Reason)
	}
	p.remote, p.contact = remote, contact
	if r := p.inDialog("BYE"); r.Code != 200 {
		t.Fatalf("BYE: %d %s", r.Code, r.Reason)
	}
	e.carrier.waitReq(t, "BYE", 2*time.Second, nil)
	e.waitLive(0, 2*time.Second)
	if n := e.carrier.count(); n != 1 {
		t.Fatalf("carrier got %d INVITEs, want 1", n)
	}
	n := 0
	for _, r := range e.records() {
		if r.CallID == p.callID {
			n++
		}
	}
	if rec := e.record(p.callID); n != 1 || rec.Reason != "bye_caller" {
		t.Fatalf("%d records for the call, the last ended %q; want one, bye_caller", n, rec.Reason)
	}
}
