package app

import (
	"testing"

	"github.com/sipdesk/sipdesk"
)

// TestStartExportBoundsConcurrentExports: MaxExports per customer, a place
// freed when an export ends, other customers unaffected.
func TestStartExportBoundsConcurrentExports(t *testing.T) {
	s := &Service{}
	var dones []func()
	for range MaxExports {
		done, err := s.StartExport(1)
		if err != nil {
			t.Fatal(err)
		}
		dones = append(dones, done)
	}
	if _, err := s.StartExport(1); sipdesk.ErrorCode(err) != sipdesk.ERateLimited {
		t.Fatalf("export over the limit: %v, want rate_limited", err)
	}
	if done, err := s.StartExport(2); err != nil {
		t.Fatalf("another customer: %v", err)
	} else {
		done()
	}
	dones[0]()
	if _, err := s.StartExport(1); err != nil {
		t.Fatalf("after one ended: %v", err)
	}
}

// TestCallResultWords: results in words, refusals from the code table.
func TestCallResultWords(t *testing.T) {
	for _, c := range []struct {
		r    sipdesk.CallRecord
		want string
	}{
		{sipdesk.CallRecord{Disposition: sipdesk.DispAnswered}, "Answered"},
		{sipdesk.CallRecord{Disposition: sipdesk.DispNoAnswer}, "No answer"},
		{sipdesk.CallRecord{Disposition: sipdesk.DispBusy}, "Busy"},
		{sipdesk.CallRecord{Disposition: sipdesk.DispRefused, Reason: sipdesk.RefusalCode(sipdesk.EChannelLimit)}, "Refused: channel limit reached"},
		{sipdesk.CallRecord{Disposition: sipdesk.DispRefused, Reason: sipdesk.RefusalCode(sipdesk.EChannelCap)}, "Refused: SIP account channel cap reached"},
		{sipdesk.CallRecord{Disposition: sipdesk.DispRefused, Reason: sipdesk.RefusalCode(sipdesk.SIPNoCarrier)}, "Refused: no carrier configured"},
		{sipdesk.CallRecord{Disposition: sipdesk.DispRefused, Reason: sipdesk.RefusalCode(sipdesk.EInvalidNumber), SIPCode: 484}, "Refused: address incomplete"},
		{sipdesk.CallRecord{Disposition: sipdesk.DispRefused}, "Refused"},
		{sipdesk.CallRecord{Disposition: sipdesk.DispNodeLost}, "Ended: edge node lost"},
	} {
		if got := sipdesk.CallResult(&c.r); got != c.want {
			t.Errorf("CallResult(%s, %q) = %q, want %q", c.r.Disposition, c.r.Reason, got, c.want)
		}
	}
}

// TestActorWords: who did it, never which staff member.
func TestActorWords(t *testing.T) {
	tok := &sipdesk.APIToken{ID: 7, CustomerID: 3, Name: "billing-sync"}
	for actor, want := range map[string]string{
		string(CustomerActor(3, "portal")):                            "You, in the portal",
		string(TokenActor(tok)):                                       "API token 'billing-sync'",
		string(CustomerActor(3, "api")):                               "An API token",
		string(CustomerActor(3, "email-link")):                        "You, with the emailed link",
		string(operatorActor(&sipdesk.Operator{ID: 2, Email: "x@y"})): "Support",
		string(ActorOperator):                                         "Support",
		string(ActorSystem):                                           "The system",
		"edge:node-1":                                                 "The system (SIP edge)",
	} {
		if got := ActorWords(actor); got != want {
			t.Errorf("ActorWords(%q) = %q, want %q", actor, got, want)
		}
	}
}

// TestMaskCallRecord: the username is masked in From and To, also an old
// one (changed since) on an outbound call of a password account.
func TestMaskCallRecord(t *testing.T) {
	a := &sipdesk.SIPAccount{ID: 1, AuthType: sipdesk.AuthPassword, Username: "fd639k3fyh"}
	r := &sipdesk.CallRecord{Direction: sipdesk.DirOutbound, From: `"fd639k3fyh" <sip:fd639k3fyh@edge>`, To: "sip:+4420@edge"}
	MaskCallRecord(r, a)
	if r.From != `"fd••••••" <sip:fd••••••@edge>` {
		t.Errorf("From %q", r.From)
	}
	old := &sipdesk.CallRecord{Direction: sipdesk.DirOutbound, From: "sip:oldname99@edge"}
	MaskCallRecord(old, a)
	if old.From != "sip:ol••••••@edge" {
		t.Errorf("old username: From %q", old.From)
	}
	in := &sipdesk.CallRecord{Direction: sipdesk.DirInbound, From: "sip:+15550001@carrier"}
	MaskCallRecord(in, a)
	if in.From != "sip:+15550001@carrier" {
		t.Errorf("an inbound caller's number is not a username: %q", in.From)
	}
}
