package registrar

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// The size the registrar checks against the UDP limit is the size of the
// message sent: byteCount counts what String builds, body included.
func TestByteCountIsWireSize(t *testing.T) {
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: "sip.example.com"})
	req.AppendHeader(sip.NewHeader("Via", "SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-1"))
	req.AppendHeader(sip.NewHeader("From", "<sip:alice@sip.example.com>;tag=1"))
	req.AppendHeader(sip.NewHeader("To", "<sip:alice@sip.example.com>"))
	req.AppendHeader(sip.NewHeader("Call-ID", "c1"))
	req.AppendHeader(sip.NewHeader("CSeq", "1 REGISTER"))
	for _, body := range [][]byte{nil, []byte(strings.Repeat("b", 300))} {
		res := sip.NewResponseFromRequest(req, 200, "OK", body)
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "192.0.2.7", Port: 5060}})
		var n byteCount
		res.StringWrite(&n)
		if want := len(res.String()); int(n) != want {
			t.Fatalf("byteCount %d, String %d bytes", n, want)
		}
	}
}
