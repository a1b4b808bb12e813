package sipmsg

import (
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
