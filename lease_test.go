package sipdesk

import (
	"testing"
	"time"
)

// TestLeaseTiming: the default timing ends a dead node's calls within 60 s
// (TTL + sweep) and fences a cut-off node with a margin before its leases
// expire; a shorter TTL keeps the proportions.
func TestLeaseTiming(t *testing.T) {
	for _, ttl := range []time.Duration{0, 6 * time.Second, 3 * time.Second, 2 * time.Minute} {
		lt := LeaseTimingFor(ttl)
		if lt.Renew <= 0 || lt.Sweep <= 0 || lt.Fence <= lt.Renew || lt.Fence >= lt.TTL || lt.TTL-lt.Fence < lt.TTL/4 {
			t.Errorf("LeaseTimingFor(%v) = %+v", ttl, lt)
		}
	}
	if d := LeaseTTL + LeaseSweep; d > 60*time.Second {
		t.Errorf("a dead node's calls end up to %v after its death, over 60 s", d)
	}
	if got := LeaseTimingFor(6 * time.Second); got.Fence != 4*time.Second || got.Sweep != 666666666 {
		t.Errorf("LeaseTimingFor(6s) = %+v", got)
	}
}
