package registrar

import (
	"fmt"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// benchIndex is an index of n accounts with one binding each.
func benchIndex(n int, expires func(i int) time.Time) *Index {
	x := NewIndex()
	for i := range n {
		r := &sipdesk.Registration{SIPAccountID: int64(i), Contact: fmt.Sprintf("sip:u%d@10.%d.%d.%d:5060", i, i>>16&255, i>>8&255, i&255),
			Received: "10.0.0.1:5060", Transport: "udp", ExpiresAt: expires(i)}
		bnd, _ := NewBinding(r)
		x.Put(bnd)
	}
	return x
}

// BenchmarkRegistrarLookup: the bindings of one account among 100,000.
func BenchmarkRegistrarLookup(b *testing.B) {
	now := time.Now()
	const n = 100000
	x := benchIndex(n, func(int) time.Time { return now.Add(time.Hour) })
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

// BenchmarkRegistrarSweep: what the edge does every second with 100,000
// bindings refreshed ahead of their expiry: count them (/metrics, the node
// heartbeat) and sweep the expired ones.
func BenchmarkRegistrarSweep(b *testing.B) {
	now := time.Now()
	const n = 100000
	x := benchIndex(n, func(i int) time.Time { return now.Add(time.Duration(60+i%3540) * time.Second) })
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if x.Len() != n || x.Expire(now.Add(time.Duration(i%50)*time.Second)) != 0 {
			b.Fatal("bindings lost")
		}
	}
}
