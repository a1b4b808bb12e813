package edge

import (
	"crypto/md5"
	"fmt"
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
	first, _ := cseqOf(inv)
	ours := inv.Get("From")
	check := func(m *siptest.Msg, method string, cseq int) {
		t.Helper()
		if ruri := strings.Fields(m.StartLine)[1]; ruri != "sip:carrier@"+e.carrier.Addr {
			t.Errorf("%s Request-URI %q, want the carrier's Contact", method, ruri)
		}
		if n, meth := cseqOf(m); n != cseq || meth != method {
			t.Errorf("%s CSeq %q, want %d %s", method, m.Get("CSeq"), cseq, method)
		}
		if m.Get("From") != ours || !strings.Contains(m.Get("To"), "tag=carrier") || m.Get("Call-ID") != inv.Get("Call-ID") {
			t.Errorf("%s dialog: From %q To %q Call-ID %q", method, m.Get("From"), m.Get("To"), m.Get("Call-ID"))
		}
		routes := routesOf(m)
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

// TestCarrierDigest: a carrier that challenges the edge's INVITE (407)
// gets it again with Proxy-Authorization for the configured credentials
// and the next CSeq; the call is answered, and its BYE takes the CSeq
// after that.
func TestCarrierDigest(t *testing.T) {
	e := newCallEnv(t, 5, nil, func(c *Config) { c.CarrierUsername, c.CarrierPassword = "trunk7", "Carrier-Secret-1" })
	e.carrier.mode.Store("challenge")
	p := newPhone(t, "127.0.0.2", e.s)
	p.dial("+15551230001")
	if r := p.final(3 * time.Second); r.Code != 200 {
		t.Fatalf("call: %d %s", r.Code, r.Reason)
	}
	inv := e.carrier.last()
	pa := inv.Get("Proxy-Authorization")
	param := func(k string) string {
		for _, kv := range strings.Split(strings.TrimPrefix(pa, "Digest "), ",") {
			if n, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && n == k {
				return strings.Trim(v, `"`)
			}
		}
		return ""
	}
	md5hex := func(s string) string { return fmt.Sprintf("%x", md5.Sum([]byte(s))) }
	want := md5hex(md5hex("trunk7:carrier.example:Carrier-Secret-1") + ":" + param("nonce") + ":" + md5hex("INVITE:"+param("uri")))
	if param("username") != "trunk7" || param("realm") != "carrier.example" || param("response") != want {
		t.Fatalf("Proxy-Authorization %q: response want %s", pa, want)
	}
	challenged := e.carrier.waitReq(t, "INVITE", time.Second, func(m *siptest.Msg) bool { return m.Get("Proxy-Authorization") == "" })
	seq := func(m *siptest.Msg) int { n, _ := cseqOf(m); return n }
	if seq(inv) != seq(challenged)+1 {
		t.Errorf("authorized INVITE CSeq %q after the challenged %q", inv.Get("CSeq"), challenged.Get("CSeq"))
	}
	p.inDialog("BYE")
	if bye := e.carrier.waitReq(t, "BYE", 2*time.Second, nil); seq(bye) != seq(inv)+1 {
		t.Errorf("BYE CSeq %q after the INVITE's %q", bye.Get("CSeq"), inv.Get("CSeq"))
	}
	e.waitLive(0, 2*time.Second)
}

// TestCarrierAnswerCrossesCancel: a carrier that answers as the caller
// hangs up (its 200 crosses our CANCEL) gets that 200 ACKed and then a
// BYE: no call is left up at the carrier, and the caller gets its 487.
func TestCarrierAnswerCrossesCancel(t *testing.T) {
	e := newCallEnv(t, 5, nil, nil)
	e.carrier.mode.Store("late")
	p := newPhone(t, "127.0.0.2", e.s)
	p.dial("+15551230001")
	inv := e.carrier.waitReq(t, "INVITE", 3*time.Second, nil)
	time.Sleep(100 * time.Millisecond) // the 180 reaches the caller
	p.cancel()
	if r := p.final(3 * time.Second); r.Code != 487 {
		t.Fatalf("caller got %d after CANCEL", r.Code)
	}
	same := func(m *siptest.Msg) bool { return m.Get("Call-ID") == inv.Get("Call-ID") }
	// The CANCEL matches the INVITE's transaction (RFC 3261 §9.1).
	c := e.carrier.waitReq(t, "CANCEL", 3*time.Second, same)
	n, _ := cseqOf(inv)
	if cn, cm := cseqOf(c); c.Get("Via") != inv.Get("Via") || cn != n || cm != "CANCEL" || strings.Fields(c.StartLine)[1] != strings.Fields(inv.StartLine)[1] ||
		c.Get("From") != inv.Get("From") || c.Get("To") != inv.Get("To") {
		t.Errorf("CANCEL does not match its INVITE:\n%s\n%s", c.StartLine, inv.StartLine)
	}
	e.carrier.waitReq(t, "ACK", 3*time.Second, same)
	bye := e.carrier.waitReq(t, "BYE", 3*time.Second, same)
	if !strings.Contains(bye.Get("To"), "tag=carrier") {
		t.Errorf("BYE To %q: not the answered dialog", bye.Get("To"))
	}
	e.waitLive(0, 3*time.Second)
	if n := e.carrier.liveCalls(); n != 0 {
		t.Fatalf("%d calls left up at the carrier", n)
	}
}

// routesOf is m's route set: its Route values in order, one per URI.
func routesOf(m *siptest.Msg) []string {
	var routes []string
	for _, r := range m.All("Route") {
		for _, v := range strings.Split(r, ",") {
			routes = append(routes, strings.TrimSpace(v))
		}
	}
	return routes
}

// cseqOf is a message's CSeq: its number and method.
func cseqOf(m *siptest.Msg) (int, string) {
	n, method, _ := strings.Cut(m.Get("CSeq"), " ")
	v, _ := strconv.Atoi(n)
	return v, method
}
