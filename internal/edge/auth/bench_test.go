package auth

import (
	"testing"
	"time"

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
