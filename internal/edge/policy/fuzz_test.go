package policy

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
)

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
		if err := sip.ParseUri("sip:"+user+"@"+"sipdesk.local", &u); err != nil {
			return
		}
		dialed := u.User
		a := &sipdesk.SIPAccount{ID: 1, TechPrefix: prefix}
		b := &sipdesk.SIPAccount{ID: 2}
		acct, rest, ref := PickIPAccount([]*sipdesk.SIPAccount{a, b}, dialed)
		if prefix == "" { // two accounts without a prefix: ambiguous
			if acct != nil || ref != sipdesk.ETechPrefixRequired {
				t.Fatalf("%q: two unprefixed accounts gave %v", dialed, ref)
			}
			return
		}
		if acct == nil || ref != "" {
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
