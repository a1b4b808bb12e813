package sipmsg

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// Fuzz targets for every parser of the edge's own (sipgo parses the SIP
// framing; these are what the edge reads out of header values itself).
// Run one with e.g. `go test -run '^$' -fuzz '^FuzzParseCredentials$'
// -fuzztime 20s ./internal/edge/...`; scripts/fuzz.sh runs them all. The seed
// corpus is below and in testdata/fuzz/<Target>/.

// FuzzBearerToken: "Authorization: Bearer" values (RFC 8898) never panic;
// a token is returned only for the Bearer scheme, trimmed and non-empty
// when the header had more than the scheme.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc.def.ghi", "bearer   x  ", "Bearer ", "BEARER\tx", "Digest username=a", "Bearerx", "", " Bearer a b c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: "sipdesk.local"})
		req.AppendHeader(sip.NewHeader("Authorization", v))
		tok, ok := BearerToken(req)
		tv := strings.TrimSpace(req.GetHeader("Authorization").Value())
		if ok != (len(tv) > 7 && strings.EqualFold(tv[:7], "bearer ")) {
			t.Fatalf("%q: ok=%v", v, ok)
		}
		if ok && tok != strings.TrimSpace(tok) {
			t.Fatalf("%q: token not trimmed: %q", v, tok)
		}
		if ok && HasDigest(req, "Authorization") {
			t.Fatalf("%q: both Bearer and Digest", v)
		}
	})
}

// FuzzValidate: whole requests through sipgo's parser and the edge's
// validate: no panic, and what validate passes has every header the
// handlers dereference.
func FuzzValidate(f *testing.F) {
	f.Add([]byte("OPTIONS sip:sipdesk.local SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("REGISTER sip:sipdesk.local SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK2\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:a@x>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContact: <sip:a@1.2.3.4?Route=x>\r\nRequire: foo\r\nDate: Fri, 01 Jan 2010 16:00:00 EST\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("NEWMETHOD sip:x SIP/2.0\r\nv: SIP/2.0/TCP h\r\nf: a\r\nt: b\r\ni: c\r\nCSeq: 1 INVITE\r\nl: 3\r\n\r\nabc"))
	p := sip.NewParser()
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := p.ParseSIP(b)
		if err != nil {
			return
		}
		req, ok := m.(*sip.Request)
		if !ok {
			return
		}
		if code, _ := Validate(req); code == 0 {
			if req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil || req.Via() == nil {
				t.Fatal("validate passed a request without a mandatory header")
			}
		}
	})
}
