package shield

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// The shield is asked once per SIP request (Challenged, Fail) and once per
// datagram (Banned): these benchmarks time those calls for one busy source
// and for sources spread over many addresses.

func benchAddrs(n int) []netip.Addr {
	as := make([]netip.Addr, n)
	for i := range as {
		as[i] = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	}
	return as
}

func BenchmarkChallenged(b *testing.B) {
	sh := New(5, time.Minute, time.Minute, 1<<30, time.Now)
	as := benchAddrs(1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sh.Challenged(as[i&1023])
		i++
	}
}

func BenchmarkGarbage(b *testing.B) {
	sh := New(5, time.Minute, time.Minute, 0, time.Now)
	as := benchAddrs(1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sh.Garbage(as[i&1023])
		i++
	}
}

// BenchmarkReadFilter is the edge's read filter on a datagram that is not
// SIP from a source that never reaches a ban (a window of 1 µs): Banned,
// then Garbage.
func BenchmarkReadFilter(b *testing.B) {
	sh := New(5, time.Microsecond, time.Minute, 0, time.Now)
	as := benchAddrs(1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if a := as[i&1023]; !sh.Banned(a) {
			sh.Garbage(a)
		}
		i++
	}
}

func BenchmarkFailBan(b *testing.B) {
	sh := New(5, time.Minute, time.Minute, 0, time.Now)
	as := benchAddrs(1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sh.Fail(as[i&1023])
		i++
	}
}

func BenchmarkBanned(b *testing.B) {
	sh := New(5, time.Minute, time.Minute, 0, time.Now)
	as := benchAddrs(1024)
	for _, a := range as[:512] {
		for range 5 {
			sh.Fail(a)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sh.Banned(as[i&1023])
		i++
	}
}

func BenchmarkChallengedParallel(b *testing.B) {
	sh := New(5, time.Minute, time.Minute, 1<<30, time.Now)
	as := benchAddrs(1024)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			sh.Challenged(as[i&1023])
			i++
		}
	})
}

// BenchmarkAccountGuardSuccess: what the failure budget adds to a right
// answer (Refused, then Succeeded) for one of 10,000 devices.
func BenchmarkAccountGuardSuccess(b *testing.B) {
	g := NewAccountGuard(GuardConfig{Failures: DefaultGuardFailures, Window: DefaultGuardWindow, Duration: DefaultGuardDuration, Trust: DefaultGuardTrust}, time.Now)
	users, srcs := make([]string, 10_000), benchAddrs(10_000)
	for i := range users {
		users[i] = fmt.Sprintf("user%05d", i)
		g.Succeeded(users[i], srcs[i])
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if g.Refused(users[i], srcs[i]) {
			b.Fatal("refused")
		}
		g.Succeeded(users[i], srcs[i])
		if i++; i == len(users) {
			i = 0
		}
	}
}
