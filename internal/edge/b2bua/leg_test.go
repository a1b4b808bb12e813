package b2bua

import (
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk/internal/edge/policy"
)

// legRequest follows RFC 3261 §12.2.1.1: a loose route set goes in Route
// with the remote target as Request-URI; a strict router becomes the
// Request-URI (and where the request goes) and the target the last route.
func TestLegRequestRouting(t *testing.T) {
	leg := policy.DialogLeg{CallID: "c1@x", From: `"Edge" <sip:edge@192.0.2.1>;tag=a1`, To: "<sip:+15551230001@carrier.example>;tag=b2",
		Target: "sip:gw@198.51.100.7:5070", CSeq: 7, Transport: "tcp", Contact: "<sip:192.0.2.1:5060>"}
	routes := func(r *sip.Request) (out []string) {
		for _, h := range r.GetHeaders("Route") {
			out = append(out, h.Value())
		}
		return out
	}

	loose := leg
	loose.Route = []string{"<sip:p1.example;lr>", "<sip:p2.example;lr>"}
	r, err := legRequest(&loose, sip.INVITE, 8)
	if err != nil {
		t.Fatal(err)
	}
	if r.Recipient.String() != "sip:gw@198.51.100.7:5070" || r.Destination() != "p1.example:5060" || r.Transport() != "TCP" {
		t.Errorf("loose: Request-URI %s, destination %s, transport %s", r.Recipient.String(), r.Destination(), r.Transport())
	}
	if got := routes(r); len(got) != 2 || got[0] != "<sip:p1.example;lr>" || got[1] != "<sip:p2.example;lr>" {
		t.Errorf("loose: Route %q", got)
	}
	if r.CSeq().SeqNo != 8 || r.CSeq().MethodName != sip.INVITE || r.Contact() == nil || !r.From().Params.Has("tag") {
		t.Errorf("loose: CSeq %v, Contact %v, From %v", r.CSeq(), r.Contact(), r.From())
	}

	strict := leg
	strict.Route = []string{"<sip:old.example>", "<sip:p2.example;lr>"}
	if r, err = legRequest(&strict, sip.BYE, 9); err != nil {
		t.Fatal(err)
	}
	if r.Recipient.String() != "sip:old.example" || r.Destination() != "old.example:5060" {
		t.Errorf("strict: Request-URI %s, destination %s", r.Recipient.String(), r.Destination())
	}
	if got := routes(r); len(got) != 2 || got[0] != "<sip:p2.example;lr>" || got[1] != "<sip:gw@198.51.100.7:5070>" {
		t.Errorf("strict: Route %q", got)
	}
	if r.Contact() != nil {
		t.Error("BYE with a Contact")
	}
	if strict.Route[1] != "<sip:p2.example;lr>" || len(strict.Route) != 2 {
		t.Errorf("the leg's route set changed: %q", strict.Route)
	}
}
