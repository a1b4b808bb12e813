package auth

import (
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

// BenchmarkDigestVerify: one REGISTER answer checked (nonce HMAC, HA2,
// response, constant-time compare, nonce-count record), per algorithm.
func BenchmarkDigestVerify(b *testing.B) {
	for _, alg := range []string{"MD5", "SHA-256"} {
		b.Run(alg, func(b *testing.B) {
			d := NewDigest(testRealm, testKey, time.Now)
			ha := sipdesk.NewDigestHashes("alice0001", testRealm, "Secret-pass-1")
			ch, _ := siptest.ParseChallenge(d.Challenges(false, false)[0])
			ch.Algorithm = alg
			creds := make([]Credentials, 0, 1024)
			for i := range 1024 {
				c, _ := ParseCredentials(siptest.Answer(ch, "REGISTER", "sip:"+testRealm, "alice0001", "Secret-pass-1", uint32(i+1), "cn"))
				creds = append(creds, c)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c := creds[i%len(creds)]
				if i%len(creds) == 0 {
					d.nc = newNCTracker()
				}
				if v := d.Verify(&c, "REGISTER", &ha); v != OK {
					b.Fatalf("verdict %d", v)
				}
			}
		})
	}
}

// BenchmarkAuthenticateRegister: one REGISTER's right digest answer through
// Authenticator.Authenticate (parse, account lookup, Verify, the shield and
// account checks around it), as the registrar calls it; each answer has a
// fresh nonce count; the failure budget per account is on (the serve
// defaults), so each success also refreshes the source's trust.
func BenchmarkAuthenticateRegister(b *testing.B) {
	n := newNode(b, Config{}, time.Now)
	accts := accounts{"alice0001": passwordAccount(10, "alice0001")}
	ch, _ := siptest.ParseChallenge(n.a.digest.Challenges(false, false)[0])
	const batch = 4096
	reqs := make([]*sip.Request, batch)
	fill := func() {
		ch.Nonce = n.a.Nonce()
		for i := range reqs {
			reqs[i] = req(b, sip.REGISTER, "alice0001", "bench", "192.0.2.7:5060", "UDP", answerHeader(ch, sip.REGISTER, "alice0001", testPass, uint32(i+1)))
		}
	}
	src := netip.MustParseAddrPort("192.0.2.7:5060")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%batch == 0 {
			b.StopTimer()
			fill()
			b.StartTimer()
		}
		if acct, r := n.a.Authenticate(reqs[i%batch], nil, src, "Authorization", accts); acct == nil {
			b.Fatalf("refused: %s", r)
		}
	}
}
