package edge

import (
	"fmt"
	"slices"
	"testing"

	"github.com/sipdesk/sipdesk/internal/siptest"
)

// optionsMsg is an OPTIONS, out of dialog or (toTag) inside one.
func optionsMsg(u *uac, toTag string) string {
	u.cseq++
	to := ""
	if toTag != "" {
		to = ";tag=" + toTag
	}
	return fmt.Sprintf("OPTIONS sip:%s SIP/2.0\nVia: SIP/2.0/%s %s;branch=z9hG4bK%s;rport\nFrom: <sip:probe@%s>;tag=%s\nTo: <sip:%s>%s\nCall-ID: %s\nCSeq: %d OPTIONS\nMax-Forwards: 70\nContent-Length: 0\n\n",
		u.server, u.c.Transport(), u.c.LocalAddr(), siptest.RandHex(6), testRealm, u.tag, u.server, to, u.callID, u.cseq)
}

// TestDrainingRefusesNewWork: a ready edge answers OPTIONS 200; once
// draining, an OPTIONS health check, a new INVITE and a new REGISTER get
// 503 with Retry-After, while an in-dialog OPTIONS (a live call's probe)
// still gets 200.
func TestDrainingRefusesNewWork(t *testing.T) {
	st := openStore(t)
	f := fixture{t, st}
	cust := f.customer()
	f.passwordAccount(cust, "alice", "Alice-Pass-123")
	s := startEdge(t, st, nil)
	waitApplied(t, s, st)
	u := newUAC(t, "udp", "127.0.0.1", s)
	if r := u.send(optionsMsg(u, "")); r.Code != 200 {
		t.Fatalf("OPTIONS to a ready edge: %d %s", r.Code, r.Reason)
	}
	if got := s.NotReady(); len(got) != 0 {
		t.Fatalf("a started edge is not ready: %v", got)
	}

	s.SetDraining()
	if got := s.NotReady(); !slices.Equal(got, []string{NotReadyDraining}) || !s.Draining() {
		t.Fatalf("NotReady %v after SetDraining", got)
	}
	for name, msg := range map[string]string{
		"OPTIONS":  optionsMsg(u, ""),
		"INVITE":   inviteMsg(u, "+15551234567", ""),
		"REGISTER": u.registerMsg("alice", ""),
	} {
		r := u.send(msg)
		if r.Code != 503 || r.Get("Retry-After") != "5" {
			t.Errorf("%s while draining: %d %s (Retry-After %q), want 503 with Retry-After 5", name, r.Code, r.Reason, r.Get("Retry-After"))
		}
	}
	if r := u.send(optionsMsg(u, "abc")); r.Code != 200 {
		t.Fatalf("in-dialog OPTIONS while draining: %d %s, want 200", r.Code, r.Reason)
	}
}
