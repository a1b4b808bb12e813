package edge

import (
	"testing"
	"time"

	"github.com/sipdesk/sipdesk/internal/siptest"
)

// BenchmarkCall places whole calls over UDP through an edge in this
// process, one after the other, as the bench harness's workloads do: an
// IP account's INVITE, 200, ACK, BYE; a device's INVITE, 407, ACK, INVITE
// with credentials, 200, ACK, BYE. The carrier and the phone run in the
// process too, the same in every build, so allocs/op and cpu-ns/op
// compare builds (the edge's share is not split out).
//
// Run: go test -run '^$' -bench Call -benchmem ./internal/edge
func BenchmarkCall(b *testing.B) {
	e := newCallEnv(b, 1000000, nil, nil)
	e.f.passwordAccount(e.cust, "bench0001", "Secret-pass-1")
	waitApplied(b, e.s, e.st)
	const number = "+15551230001"
	run := func(b *testing.B, p *phone, digest bool) {
		defer reportCPU(b)()
		b.ReportAllocs()
		for b.Loop() {
			p.callID, p.cseq = siptest.RandHex(8)+"@bench", 0
			p.dial(number)
			r := p.final(5 * time.Second)
			if digest {
				ch := pickChallenge(b, r.All("Proxy-Authenticate"), "MD5")
				p.dial(number, "Proxy-Authorization: "+siptest.Answer(ch, "INVITE", "sip:"+number+"@"+testRealm, "bench0001", "Secret-pass-1", 1, "c1"))
				r = p.final(5 * time.Second)
			}
			if r.Code != 200 {
				b.Fatalf("call: %d %s", r.Code, r.Reason)
			}
			if r := p.inDialog("BYE"); r.Code != 200 {
				b.Fatalf("BYE: %d %s", r.Code, r.Reason)
			}
		}
	}
	b.Run("ip", func(b *testing.B) { run(b, newPhone(b, "127.0.0.2", e.s), false) })
	b.Run("digest", func(b *testing.B) { run(b, newPhone(b, "127.0.0.3", e.s), true) })
}
