package shield

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAccountGuard: failures from many sources, a few each, start a guard
// once; during it only trusted sources pass; it ends Duration after the
// last failure that renewed it; trust ends after Trust.
func TestAccountGuard(t *testing.T) {
	clock := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	g := NewAccountGuard(GuardConfig{Failures: 20, Window: 10 * time.Minute, Duration: 30 * time.Minute, Trust: 24 * time.Hour}, now)
	own, other := netip.MustParseAddr("192.0.2.20"), netip.MustParseAddr("203.0.113.99")
	g.Succeeded("alice0001", own)
	clock = clock.Add(time.Hour)
	starts := 0
	for i := range 80 {
		if started, until := g.Fail("alice0001"); started {
			starts++
			if i != 19 || !until.Equal(clock.Add(30*time.Minute)) {
				t.Fatalf("guard started at failure %d until %v", i+1, until)
			}
		}
	}
	if starts != 1 {
		t.Fatalf("%d guard starts, want 1", starts)
	}
	if !g.Refused("alice0001", other) || g.Refused("alice0001", own) || g.Refused("bob000001", other) {
		t.Fatal("during the guard: want others refused, the own device and other usernames accepted")
	}
	clock = clock.Add(29 * time.Minute)
	g.Fail("alice0001") // below the budget within the window: no renewal
	clock = clock.Add(2 * time.Minute)
	if g.Refused("alice0001", other) {
		t.Fatal("the guard outlived its duration")
	}
	// Trust ends too.
	clock = clock.Add(24 * time.Hour)
	for range 20 {
		g.Fail("alice0001")
	}
	if !g.Refused("alice0001", own) {
		t.Fatal("a source trusted more than a day ago is still accepted")
	}
	if off := NewAccountGuard(GuardConfig{}, now); func() bool { s, _ := off.Fail("x"); off.Succeeded("x", own); return s || off.Refused("x", other) }() {
		t.Fatal("a guard with Failures 0 acted")
	}
}

// TestAccountGuardConcurrent: failures from many goroutines start exactly
// one guard.
func TestAccountGuardConcurrent(t *testing.T) {
	g := NewAccountGuard(GuardConfig{Failures: 20, Window: time.Minute, Duration: time.Minute, Trust: time.Hour}, time.Now)
	var starts atomic.Int32
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if s, _ := g.Fail("alice0001"); s {
					starts.Add(1)
				}
				g.Succeeded(fmt.Sprint("u", w), netip.MustParseAddr("192.0.2.1"))
			}
		}()
	}
	wg.Wait()
	if n := starts.Load(); n != 1 {
		t.Fatalf("%d guard starts, want 1", n)
	}
}
