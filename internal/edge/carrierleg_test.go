package edge

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk/internal/siptest"
)

// TestCarrierLegInDialog: once the carrier's 200 is ACKed the edge keeps
// only the dialog's strings; the requests it sends on that leg later (a
// relayed re-INVITE, its ACK, the BYE) still carry the carrier's tag, the
// next CSeq, the route set (the 200's Record-Route reversed) and go to the
// carrier's Contact.
func TestCarrierLegInDialog(t *testing.T) {
	e := newCallEnv(t, 5, nil, func(c *Config) { c.ProbeInterval = -1 })
	e.carrier.rr.Store("Record-Route: <sip:p2@" + e.carrier.Addr + ";lr>, <sip:p1@" + e.carrier.Addr + ";lr;ftag=x>")
	p := newPhone(t, "127.0.0.2", e.s)
	p.dial("+15551230001")
	if r := p.final(3 * time.Second); r.Code != 200 {
		t.Fatalf("call: %d %s", r.Code, r.Reason)
	}
	inv := e.carrier.last()
	seq := func(m *siptest.Msg) (int, string) {
		n, method, _ := strings.Cut(m.Get("CSeq"), " ")
		v, _ := strconv.Atoi(n)
		return v, method
	}
	first, _ := seq(inv)
	ours := inv.Get("From")
	check := func(m *siptest.Msg, method string, cseq int) {
		t.Helper()
		if ruri := strings.Fields(m.StartLine)[1]; ruri != "sip:carrier@"+e.carrier.Addr {
			t.Errorf("%s Request-URI %q, want the carrier's Contact", method, ruri)
		}
		if n, meth := seq(m); n != cseq || meth != method {
			t.Errorf("%s CSeq %q, want %d %s", method, m.Get("CSeq"), cseq, method)
		}
		if m.Get("From") != ours || !strings.Contains(m.Get("To"), "tag=carrier") || m.Get("Call-ID") != inv.Get("Call-ID") {
			t.Errorf("%s dialog: From %q To %q Call-ID %q", method, m.Get("From"), m.Get("To"), m.Get("Call-ID"))
		}
		var routes []string
		for _, r := range m.All("Route") {
			for _, v := range strings.Split(r, ",") {
				routes = append(routes, strings.TrimSpace(v))
			}
		}
		want := []string{"<sip:p1@" + e.carrier.Addr + ";lr;ftag=x>", "<sip:p2@" + e.carrier.Addr + ";lr>"}
		if strings.Join(routes, " ") != strings.Join(want, " ") {
			t.Errorf("%s Route %q, want %q", method, routes, want)
		}
	}

	if r := p.inDialog("INVITE"); r.Code != 200 {
		t.Fatalf("re-INVITE: %d %s", r.Code, r.Reason)
	}
	reinv := e.carrier.waitReq(t, "INVITE", 2*time.Second, func(m *siptest.Msg) bool { return strings.Contains(m.Get("To"), "tag=") })
	check(reinv, "INVITE", first+1)
	if reinv.Get("Contact") == "" {
		t.Error("re-INVITE without Contact")
	}
	check(e.carrier.waitReq(t, "ACK", 2*time.Second, nil), "ACK", first+1)

	p.inDialog("BYE")
	check(e.carrier.waitReq(t, "BYE", 2*time.Second, nil), "BYE", first+2)
	e.waitLive(0, 2*time.Second)
}
