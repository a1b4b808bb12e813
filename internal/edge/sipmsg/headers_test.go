package sipmsg

import (
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// aRegister is a REGISTER as a desk phone sends it: most of its headers
// are outside sipgo's short list of names it lowers without allocating.
const aRegister = "REGISTER sip:sip.example.com SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-1;rport\r\n" +
	"From: <sip:alice@sip.example.com>;tag=1\r\n" +
	"To: <sip:alice@sip.example.com>\r\n" +
	"Call-ID: reg-1@192.0.2.7\r\n" +
	"CSeq: 2 REGISTER\r\n" +
	"Contact: <sip:alice@192.0.2.7:5060>;+sip.instance=\"<urn:uuid:1>\"\r\n" +
	"contact: <sip:alice@198.51.100.1:5060>\r\n" +
	"Authorization: Digest username=\"alice\", realm=\"sip.example.com\", nonce=\"n\", uri=\"sip:sip.example.com\", response=\"r\"\r\n" +
	"Max-Forwards: 70\r\n" +
	"User-Agent: Yealink SIP-T46S 66.86.0.15\r\n" +
	"Expires: 3600\r\n" +
	"Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, OPTIONS, INFO, UPDATE\r\n" +
	"Supported: path, outbound, gruu\r\n" +
	"EXPIRES: 60\r\n" +
	"Content-Length: 0\r\n\r\n"

func parseRequest(t testing.TB, raw string) *sip.Request {
	t.Helper()
	m, err := sip.NewParser().ParseSIP([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return m.(*sip.Request)
}

// The lookups find what sipgo's GetHeader and GetHeaders find, in any
// letter case and in order, and allocate nothing but the result.
func TestHeaderLookupsAsSipgo(t *testing.T) {
	req := parseRequest(t, aRegister)
	for _, name := range []string{"Contact", "contact", "CONTACT", "Expires", "expires", "User-Agent", "user-agent",
		"Authorization", "Allow", "Supported", "Via", "Call-ID", "call-id", "Max-Forwards", "Date", "X", ""} {
		want := req.GetHeaders(name)
		got := Headers(req, name)
		if len(got) != len(want) {
			t.Fatalf("Headers(%q): %d headers, GetHeaders %d", name, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("Headers(%q)[%d] = %q, GetHeaders %q", name, i, got[i], want[i])
			}
		}
		if got, want := FirstHeader(req, name), req.GetHeader(name); got != want {
			t.Fatalf("FirstHeader(%q) = %v, GetHeader %v", name, got, want)
		}
		if n := countHeaders(req, name); n != len(want) {
			t.Fatalf("countHeaders(%q) = %d, want %d", name, n, len(want))
		}
	}
	if hs := Headers(req, "Expires"); len(hs) != 2 || hs[1].Value() != "60" {
		t.Fatalf("Expires headers: %v", hs)
	}
	if n := testing.AllocsPerRun(100, func() { _ = FirstHeader(req, "User-Agent"); _ = countHeaders(req, "Expires") }); n != 0 {
		t.Fatalf("FirstHeader and countHeaders allocate %.0f times", n)
	}
	if code, reason := Validate(req); code != 0 {
		t.Fatalf("Validate: %d %s", code, reason)
	}
}

// BenchmarkValidate: the checks every request gets, on a desk phone's
// REGISTER.
func BenchmarkValidate(b *testing.B) {
	req := parseRequest(b, aRegister)
	b.ReportAllocs()
	for b.Loop() {
		if code, _ := Validate(req); code != 0 {
			b.Fatal(code)
		}
	}
}

// anInvite is a desk phone's INVITE through two proxies, compact headers
// included, with credentials and a body.
const anInvite = "INVITE sip:+4930123@sip.example.com;user=phone SIP/2.0\r\n" +
	"v: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK-p2;rport\r\n" +
	"Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-1\r\n" +
	"Record-Route: <sip:192.0.2.20;lr>\r\n" +
	"Record-Route: <sip:192.0.2.21;lr>\r\n" +
	"f: \"Alice\" <sip:alice@sip.example.com>;tag=1\r\n" +
	"t: <sip:+4930123@sip.example.com>\r\n" +
	"i: call-1@192.0.2.7\r\n" +
	"CSeq: 2 INVITE\r\n" +
	"m: <sip:alice@192.0.2.7:5060;ob>\r\n" +
	"Proxy-Authorization: Digest username=\"alice\", realm=\"sip.example.com\", nonce=\"n\", uri=\"sip:+4930123@sip.example.com\", response=\"r\"\r\n" +
	"Max-Forwards: 68\r\n" +
	"Timestamp: 54\r\n" +
	"User-Agent: Yealink SIP-T46S 66.86.0.15\r\n" +
	"Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, OPTIONS, INFO, UPDATE\r\n" +
	"Supported: timer, replaces\r\n" +
	"Session-Expires: 1800\r\n" +
	"c: application/sdp\r\n" +
	"l: 31\r\n\r\n" +
	"v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\n"

// A dialog built from DialogInvite answers, and sends in-dialog requests,
// as one built from the whole INVITE: the same headers in the same order
// in every response, the same target, route set, source and transport;
// without credentials or body.
func TestDialogInvite(t *testing.T) {
	req := parseRequest(t, anInvite)
	req.SetSource("192.0.2.20:5060")
	d := DialogInvite(req)
	for _, code := range []int{100, 180, 200, 486} {
		want := sip.NewResponseFromRequest(req, code, "x", nil)
		got := sip.NewResponseFromRequest(d, code, "x", nil)
		if tag, ok := want.To().Params.Get("tag"); ok {
			got.To().Params.Add("tag", tag) // a new tag for each response
		}
		if got.String() != want.String() {
			t.Fatalf("%d from DialogInvite:\n%s\nfrom the INVITE:\n%s", code, got, want)
		}
	}
	if d.Recipient.String() != req.Recipient.String() || d.Source() != req.Source() || d.Transport() != req.Transport() ||
		d.Contact().Value() != req.Contact().Value() || d.CSeq().SeqNo != 2 || len(d.GetHeaders("Record-Route")) != 2 {
		t.Fatalf("dialog's INVITE lost what a dialog reads:\n%s", d)
	}
	if FirstHeader(d, "Proxy-Authorization") != nil || len(d.Body()) != 0 || FirstHeader(d, "User-Agent") != nil {
		t.Fatalf("dialog's INVITE kept more than it needs:\n%s", d)
	}
	if len(req.Body()) == 0 || FirstHeader(req, "Proxy-Authorization") == nil {
		t.Fatal("DialogInvite changed the INVITE")
	}
}

// BenchmarkDialogInviteHeld: the bytes a dialog session keeps of its
// INVITE for the whole call (sipgo's ReadInvite keeps a clone of what it
// is given), given the whole INVITE and given DialogInvite, for a desk
// phone's INVITE through two proxies (anInvite, with a phone's SDP).
func BenchmarkDialogInviteHeld(b *testing.B) {
	sdp := "v=0\r\no=- 20001 20001 IN IP4 192.0.2.7\r\ns=SDP data\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n" +
		"m=audio 11786 RTP/AVP 9 0 8 18 101\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n" +
		"a=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\na=ptime:20\r\na=sendrecv\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
	head, _, _ := strings.Cut(anInvite, "l: 31\r\n")
	req := parseRequest(b, head+"l: "+strconv.Itoa(len(sdp))+"\r\n\r\n"+sdp)
	for _, c := range []struct {
		name string
		keep func() *sip.Request
	}{
		{"whole", func() *sip.Request { return req.Clone() }},
		{"DialogInvite", func() *sip.Request { return DialogInvite(req).Clone() }},
	} {
		b.Run(c.name, func(b *testing.B) {
			kept := make([]*sip.Request, 0, b.N)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for b.Loop() {
				kept = append(kept, c.keep())
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(len(kept)), "held-B/op")
			runtime.KeepAlive(kept)
		})
	}
}
