package edge

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
)

// Fuzz targets for every parser of the edge's own (sipgo parses the SIP
// framing; these are what the edge reads out of header values itself).
// Run one with e.g. `go test -run '^$' -fuzz '^FuzzParseCredentials$'
// -fuzztime 20s ./internal/edge/`; scripts/fuzz.sh runs them all. The seed
// corpus is below and in testdata/fuzz/<Target>/.

// FuzzParseCredentials: digest Authorization / Proxy-Authorization values
// never panic the parser, an accepted value has the fields verification
// needs, re-serialised it parses to the same credentials, and no fuzzed
// answer verifies (the nonce is ours only with our key).
func FuzzParseCredentials(f *testing.F) {
	for _, s := range []string{
		`Digest username="alice0001", realm="sipdesk.local", nonce="abc", uri="sip:sipdesk.local", response="0123456789abcdef0123456789abcdef", algorithm=MD5, cnonce="x", qop=auth, nc=00000001`,
		`digest username=alice,nonce=n,response=R`,
		`Digest username="a\"b", realm="r\\", nonce="n", response="r", opaque=""`,
		`Digest username="unterminated`,
		`Digest ,,,,=`,
		`Digest username="alice", nonce="n", response="r", algorithm=SHA-256, nc=ffffffff`,
		"Digest\tusername=a nonce=b response=c",
		`Bearer eyJhbGciOiJIUzI1NiJ9.e30.x`,
		`NoOneKnowsThisScheme opaque-data=here`,
	} {
		f.Add(s)
	}
	d := newDigestAuth(testRealm, testKey, time.Now)
	ha := sipdesk.NewDigestHashes("alice0001", testRealm, "Secret-pass-1")
	f.Fuzz(func(t *testing.T, v string) {
		c, ok := ParseCredentials(v)
		if !ok {
			return
		}
		if c.Username == "" || c.Nonce == "" || c.Response == "" {
			t.Fatalf("accepted without username/nonce/response: %+v", c)
		}
		if c.Response != strings.ToLower(c.Response) {
			t.Fatalf("response not lower case: %q", c.Response)
		}
		q := func(s string) string {
			return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
		}
		re := "Digest username=" + q(c.Username) + ", realm=" + q(c.Realm) + ", nonce=" + q(c.Nonce) + ", uri=" + q(c.URI) +
			", response=" + q(c.Response) + ", algorithm=" + q(c.Algorithm) + ", cnonce=" + q(c.CNonce) + ", qop=" + q(c.QOP) +
			", nc=" + q(c.NC) + ", opaque=" + q(c.Opaque)
		c2, ok := ParseCredentials(re)
		if !ok || c2 != c {
			t.Fatalf("round trip: %+v\n -> %q\n -> %+v (%v)", c, re, c2, ok)
		}
		for _, h := range []*sipdesk.DigestHashes{&ha, nil} {
			if d.Verify(&c, "REGISTER", h) == vOK {
				t.Fatalf("fuzzed credentials verified: %q", v)
			}
		}
	})
}

// FuzzBearerToken: "Authorization: Bearer" values (RFC 8898) never panic;
// a token is returned only for the Bearer scheme, trimmed and non-empty
// when the header had more than the scheme.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc.def.ghi", "bearer   x  ", "Bearer ", "BEARER\tx", "Digest username=a", "Bearerx", "", " Bearer a b c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: testRealm})
		req.AppendHeader(sip.NewHeader("Authorization", v))
		tok, ok := bearerToken(req)
		tv := strings.TrimSpace(req.GetHeader("Authorization").Value())
		if ok != (len(tv) > 7 && strings.EqualFold(tv[:7], "bearer ")) {
			t.Fatalf("%q: ok=%v", v, ok)
		}
		if ok && tok != strings.TrimSpace(tok) {
			t.Fatalf("%q: token not trimmed: %q", v, tok)
		}
		if ok && hasDigest(req, "Authorization") {
			t.Fatalf("%q: both Bearer and Digest", v)
		}
	})
}

// FuzzDialedNumber: the dialed number the edge takes from a Request-URI
// user part, through the tech-prefix choice of IP accounts, into
// NormalizeNumber: no panic, a chosen prefix is stripped, and a number
// that normalises is 7-15 digits without a leading zero.
func FuzzDialedNumber(f *testing.F) {
	for _, s := range [][2]string{{"+15551234567", ""}, {"99#15551234567", "99#"}, {"0015551234567", "00"}, {"tel:+1-555-123-4567", ""},
		{"%2B15551234567", ""}, {"1555;phone-context=x", "1"}, {"", ""}, {"+", "+"}, {"12345678901234567890", "1"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, user, prefix string) {
		var u sip.Uri
		if err := sip.ParseUri("sip:"+user+"@"+testRealm, &u); err != nil {
			return
		}
		dialed := u.User
		a := &sipdesk.SIPAccount{ID: 1, TechPrefix: prefix}
		b := &sipdesk.SIPAccount{ID: 2}
		acct, rest, ref := pickIPAccount([]*sipdesk.SIPAccount{a, b}, dialed)
		if prefix == "" { // two accounts without a prefix: ambiguous
			if acct != nil || ref != RefuseTechPrefixRequired {
				t.Fatalf("%q: two unprefixed accounts gave %v", dialed, ref)
			}
			return
		}
		if acct == nil || ref != RefuseNone {
			t.Fatalf("%q prefix %q: no account (%v)", dialed, prefix, ref)
		}
		if acct == a {
			d := strings.TrimPrefix(dialed, "+")
			if prefix == "" || !strings.HasPrefix(d, prefix) || rest != d[len(prefix):] || rest == "" {
				t.Fatalf("%q prefix %q: rest %q", dialed, prefix, rest)
			}
		}
		n, err := sipdesk.NormalizeNumber(rest)
		if err != nil {
			return
		}
		if len(n) < 7 || len(n) > 15 || n[0] == '0' || strings.Trim(n, "0123456789") != "" {
			t.Fatalf("%q: normalised to %q", rest, n)
		}
	})
}

// FuzzSessionTimer: Session-Expires, Min-SE and option-tag headers (RFC
// 4028) never panic; the interval is 0 or at least Min-SE.
func FuzzSessionTimer(f *testing.F) {
	for _, s := range [][3]string{{"1800;refresher=uac", "90", "timer"}, {"abc", "-1", "timer, 100rel"}, {"99999999999999999999", "", "TIMER"},
		{"0", "9223372036854775807", "timer"}, {"90;refresher=uas", "", "timer"}, {"", "", ""}} {
		f.Add(s[0], s[1], s[2])
	}
	s := &Server{cfg: Config{SessionExpires: 1800 * time.Second, MinSE: 90 * time.Second}}
	f.Fuzz(func(t *testing.T, se, minSE, supported string) {
		req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "15551234567", Host: testRealm})
		req.AppendHeader(sip.NewHeader("Supported", supported))
		if se != "" {
			req.AppendHeader(sip.NewHeader("Session-Expires", se))
		}
		if minSE != "" {
			req.AppendHeader(sip.NewHeader("Min-SE", minSE))
		}
		if d := s.sessionInterval(req); d != 0 && d < s.cfg.MinSE {
			t.Fatalf("interval %v below Min-SE", d)
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
		if code, _ := validate(req); code == 0 {
			if req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil || req.Via() == nil {
				t.Fatal("validate passed a request without a mandatory header")
			}
		}
	})
}

// FuzzNormOrigin: WebSocket Origin values normalise to a fixed point.
func FuzzNormOrigin(f *testing.F) {
	for _, s := range []string{"https://Portal.Example.com:443", "http://x:80", "null", "", "https://[::1]:443", "HTTPS://a/b?c", "://", "https://a:99999", "https://:443"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, o string) {
		n := normOrigin(o)
		if n != "" && normOrigin(n) != n {
			t.Fatalf("%q -> %q -> %q", o, n, normOrigin(n))
		}
	})
}

// FuzzAddrMatcher: carrier address lists (IPs, CIDRs, IP:port; host names
// are left out: they resolve) never panic; an IP:port entry matches itself.
func FuzzAddrMatcher(f *testing.F) {
	for _, s := range []string{"127.0.0.1:5090", "10.0.0.0/8", "::ffff:1.2.3.4", "[::1]:5060", "1.2.3.4/33", "::/0", "0.0.0.0:0"} {
		f.Add(s, "1.2.3.4:5060")
	}
	f.Fuzz(func(t *testing.T, entry, probe string) {
		if _, err := netip.ParseAddrPort(entry); err != nil {
			if _, err := netip.ParsePrefix(entry); err != nil {
				if _, err := netip.ParseAddr(entry); err != nil {
					return // a host name: resolution is not fuzzed
				}
			}
		}
		m, err := parseAddrMatcher([]string{entry})
		if err != nil {
			return
		}
		if ap, err := netip.ParseAddrPort(probe); err == nil {
			m.Match(ap)
		}
		if ap, err := netip.ParseAddrPort(strings.TrimSpace(entry)); err == nil && !m.Match(ap) {
			t.Fatalf("%q does not match itself", entry)
		}
	})
}
