package edge

import (
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/siptest"
)

func runGo(args ...string) (string, error) {
	b, err := exec.Command("go", args...).Output()
	return string(b), err
}

// BenchmarkDigestVerify: one REGISTER answer checked (nonce HMAC, HA2,
// response, constant-time compare, nonce-count record), per algorithm.
func BenchmarkDigestVerify(b *testing.B) {
	for _, alg := range []string{"MD5", "SHA-256"} {
		b.Run(alg, func(b *testing.B) {
			d := newDigestAuth(testRealm, testKey, time.Now)
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
				if v := d.Verify(&c, "REGISTER", &ha); v != vOK {
					b.Fatalf("verdict %d", v)
				}
			}
		})
	}
}

// BenchmarkRegistrarLookup: the bindings of one account among 100,000.
func BenchmarkRegistrarLookup(b *testing.B) {
	x := newRegIndex()
	now := time.Now()
	const n = 100000
	for i := range n {
		r := &sipdesk.Registration{SIPAccountID: int64(i), Contact: fmt.Sprintf("sip:u%d@10.%d.%d.%d:5060", i, i>>16&255, i>>8&255, i&255),
			Received: "10.0.0.1:5060", Transport: "udp", ExpiresAt: now.Add(time.Hour)}
		bnd, _ := newBinding(r)
		x.Put(bnd)
	}
	if x.Len() != n {
		b.Fatal(x.Len())
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if len(x.Lookup(int64(i*7919%n), now)) != 1 {
				b.Fatal("missing binding")
			}
		}
	})
}
