package ui

import (
	"fmt"
	"testing"
	"time"
)

// TestLimiterFloodKeepsLocks: failures spread over 150,000 new emails (the
// old limiter wiped itself at 100,000 keys) do not lift the lock on an email
// guessed 5 times, nor on the spraying address.
func TestLimiterFloodKeepsLocks(t *testing.T) {
	t0 := time.Now()
	l := newLimiter(5, 15*time.Minute)
	l.now = func() time.Time { return t0 }
	for range 5 {
		l.fail("email:v@acme.example", "ip:203.0.113.1")
	}
	if l.allow("email:v@acme.example") || !l.allow("ip:203.0.113.1") {
		t.Fatal("limits before the flood")
	}
	for i := range 150_000 {
		l.fail(fmt.Sprintf("email:spray%d@acme.example", i), fmt.Sprintf("ip:10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
	}
	if l.allow("email:v@acme.example") {
		t.Fatal("a flood of new keys lifted the lock on a guessed email")
	}
	if l.w.Len() > 100_000 {
		t.Fatalf("%d keys held", l.w.Len())
	}
	l.now = func() time.Time { return t0.Add(15 * time.Minute) }
	if !l.allow("email:v@acme.example", "ip:203.0.113.1") {
		t.Fatal("lock outlived the window")
	}
}
