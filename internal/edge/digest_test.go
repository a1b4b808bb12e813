package edge

import (
	"testing"
	"time"
)

func TestNonceCountTracker(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	clock := now
	d := newDigestAuth(testRealm, testKey, func() time.Time { return clock })
	n1 := d.Nonce()
	tr := newNCTracker()
	if !tr.Use(n1, 1, clock) {
		t.Fatal("first use refused")
	}
	if tr.Use(n1, 1, clock) {
		t.Fatal("replayed nonce count accepted")
	}
	if !tr.Use(n1, 2, clock) || tr.Use(n1, 2, clock) {
		t.Fatal("the next nonce count: want accepted once")
	}
	if tr.Use("not-a-nonce", 1, clock) {
		t.Fatal("malformed nonce accepted")
	}
	// Still remembered until the nonce has expired...
	clock = now.Add(NonceValidity)
	if tr.Use(n1, 2, clock) {
		t.Fatal("replay accepted before the nonce expired")
	}
	// ...then its bucket goes, and an expired nonce is refused outright.
	for i := range 30 {
		clock = now.Add(NonceValidity + time.Duration(i)*ncBucket)
		tr.Use(d.Nonce(), 1, clock)
	}
	if tr.Use(n1, 3, clock) {
		t.Fatal("expired nonce accepted")
	}
	tr.mu.Lock()
	n := len(tr.buckets)
	tr.mu.Unlock()
	if max := int((NonceValidity+10*time.Second)/ncBucket) + 3; n > max {
		t.Fatalf("%d buckets kept, want at most %d (old ones are dropped)", n, max)
	}
}
