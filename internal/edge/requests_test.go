package edge

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/media/prompts"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// operator makes a console operator of role.
func (e *callEnv) operator(role sipdesk.OperatorRole) *sipdesk.Operator {
	e.t.Helper()
	n, err := e.svc.OpsCreateOperator(context.Background(), app.ShellOperator, string(role)+"@ops.example.com", "Operator-Pass-123", role)
	if err != nil {
		e.t.Fatal(err)
	}
	return n.Operator
}

// An operator hangs up a live call: the edge holding it (found through the
// edge request table, woken by the store's in-process signal) sends BYE to
// the caller and the carrier at once; the record says the operator ended
// it. Readonly may not; a call that is not live is not found.
func TestHangUpByEdgeRequest(t *testing.T) {
	e := newCallEnv(t, 2, nil, nil)
	p := newPhone(t, "127.0.0.2", e.s)
	p.dial("+15551230001")
	if r := p.final(3 * time.Second); r.Code != 200 {
		t.Fatalf("call: %d %s", r.Code, r.Reason)
	}
	inv := e.carrier.waitReq(t, "INVITE", 3*time.Second, nil)
	e.waitLive(1, 2*time.Second)
	ctx := context.Background()
	support := e.operator(sipdesk.RoleSupport)

	if _, err := e.svc.OpsHangUp(ctx, e.operator(sipdesk.RoleReadonly), p.callID); sipdesk.ErrorCode(err) != sipdesk.EForbidden {
		t.Fatalf("readonly hang-up: %v", err)
	}
	if _, err := e.svc.OpsHangUp(ctx, support, "nope@x"); sipdesk.ErrorCode(err) != sipdesk.ENotFound {
		t.Fatalf("hang-up of no call: %v", err)
	}
	if n := e.live(); n != 1 {
		t.Fatalf("live calls after refused hang-ups: %d", n)
	}
	start := time.Now()
	r, err := e.svc.OpsHangUp(ctx, support, p.callID)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if r.State != sipdesk.EdgeDone || r.ClaimedBy != "n1" || !strings.Contains(r.Result, "BYE sent") {
		t.Fatalf("hang-up request: %+v", r)
	}
	t.Logf("hang-up answered in %v", took)
	if took > 2*time.Second { // the in-process signal, not the 1 s poll, plus the BYEs
		t.Errorf("hang-up took %v", took)
	}
	bye := p.waitReq("BYE", 3*time.Second)
	if !strings.Contains(bye.Get("Reason"), "Ended by the operator") {
		t.Errorf("caller's BYE Reason: %q", bye.Get("Reason"))
	}
	e.carrier.waitReq(t, "BYE", 3*time.Second, func(m *siptest.Msg) bool { return m.Get("Call-ID") == inv.Get("Call-ID") })
	e.waitLive(0, 3*time.Second)
	e.s.FlushRecords(3 * time.Second)
	if rec := e.record(p.callID); rec.Reason != sipdesk.EndOperatorHangUp || rec.Disposition != sipdesk.DispAnswered {
		t.Fatalf("call record: %+v", rec)
	}
	// Once more: the call is gone.
	if _, err := e.svc.OpsHangUp(ctx, support, p.callID); sipdesk.ErrorCode(err) != sipdesk.ENotFound {
		t.Fatal("a second hang-up of an ended call succeeded")
	}
}

// "Call me instead" through an edge request: the edge with VoiceCalls
// places the call, the callee gets the code's prompts, and the request
// says done; an edge without VoiceCalls leaves it in the queue.
func TestVoiceCallByEdgeRequest(t *testing.T) {
	e := newCallEnv(t, 1, nil, func(c *Config) { c.VoiceCalls = true })
	sink := newRTPSink(t, "127.0.0.9")
	port := sink.conn.LocalAddr().(*net.UDPAddr).Port
	e.carrier.sdp.Store(fmt.Sprintf("v=0\no=- 1 1 IN IP4 127.0.0.9\ns=-\nc=IN IP4 127.0.0.9\nt=0 0\nm=audio %d RTP/AVP 0\n", port))
	const code = "307152"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := e.svc.PlaceVoiceCall(ctx, sipdesk.VoiceCallRequest{CustomerID: e.cust, Number: "+15557654321", Code: code, From: "+15550009999"})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != sipdesk.EdgeDone || r.ClaimedBy != "n1" || r.Payload != "" {
		t.Fatalf("voice call request: %+v", r)
	}
	time.Sleep(200 * time.Millisecond)
	want, _ := prompts.Code(prompts.ULaw, code)
	if got, _ := sink.payload(); !bytes.Equal(got, want) {
		t.Fatalf("RTP payload: %d bytes, want the prompts for %s: %d bytes (first difference at %d)", len(got), code, len(want), firstDiff(got, want))
	}

	// An edge without --voice-calls does not take voice calls.
	quiet := newCallEnv(t, 1, nil, nil)
	qctx, qcancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer qcancel()
	r, err = quiet.svc.PlaceVoiceCall(qctx, sipdesk.VoiceCallRequest{CustomerID: quiet.cust, Number: "+15557654321", Code: code})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != sipdesk.EdgeQueued || quiet.carrier.count() != 0 {
		t.Fatalf("voice call on an edge without VoiceCalls: %+v, carrier INVITEs %d", r, quiet.carrier.count())
	}
}
