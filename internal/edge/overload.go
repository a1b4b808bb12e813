package edge

import (
	"context"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// overload sheds new calls while the process cannot keep up.
//
// sipgo starts a goroutine for every message it reads, so when more calls
// come than the CPU can serve, nothing waits in the kernel's socket buffer
// (which is bounded and drops): the messages wait in memory as runnable
// goroutines, each with its parsed request and, soon, its transaction;
// every call then waits behind all of them, the callers retransmit, and the
// retransmissions queue too. At twice the rate the edge can serve, its
// memory grew past 1.4 GB in 50 s and p50 reached 1.5 s.
//
// The signal is how long work waits before the edge gets to it, the
// longer of two waits over the last sample:
//   - how long runnable goroutines wait for a CPU (the Go runtime's
//     /sched/latencies:seconds, its 90th percentile): under a few
//     milliseconds while the edge keeps up, hundreds once it does not;
//   - how long datagrams wait in the UDP socket before they are read (the
//     shortest wait of the sample, transport.UDPConn.QueueWait). The read
//     loop yields after each datagram it accepts, so an edge that cannot
//     keep up over UDP leaves the backlog in the socket, where the CPU wait
//     does not see it: at 1.5 times the clean call rate, p50 went past 1 s
//     with 85,000 retransmissions in 40 s and the guard never turned on.
//     The shortest wait stands for the queue that does not drain (CoDel's
//     signal): a burst that drains within the sample does not count.
//
// When it passes enter, new INVITEs get 503 with Retry-After (gate,
// health.go) at a fraction of a call's cost, until it falls under leave:
// calls up and in-dialog requests go on, registrations too (over UDP they
// have their own bounded queue).
// It takes two samples in a row over enter: one alone can be a single
// garbage collection on a busy single core (seen at 1,500 calls/s, a load
// the edge keeps up with), an overload lasts.
type overload struct {
	enter, leave time.Duration
	on           atomic.Bool
	shed         atomic.Int64 // INVITEs refused while overloaded
	over         int          // samples in a row over enter (the watcher's)
}

// overloadEvery is the sampling period; overloadAfter the samples in a
// row over the wait that turn the guard on; it turns off once the wait is
// under 1/overloadLeave of that.
const (
	overloadEvery = 250 * time.Millisecond
	overloadAfter = 2
	overloadLeave = 2
)

const schedLatencies = "/sched/latencies:seconds"

// watch samples the scheduler's latency and the socket's wait (queue, nil:
// none) every interval until ctx is done.
func (o *overload) watch(ctx context.Context, every time.Duration, queue func() (time.Duration, bool), changed func(on bool, wait time.Duration)) {
	sample := []metrics.Sample{{Name: schedLatencies}}
	metrics.Read(sample)
	prevCounts := append([]uint64(nil), sample[0].Value.Float64Histogram().Counts...)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(sample)
		h := sample[0].Value.Float64Histogram()
		wait, ok := quantileSince(h.Buckets, prevCounts, h.Counts, 0.9)
		prevCounts = append(prevCounts[:0], h.Counts...)
		if queue != nil {
			if q, qok := queue(); qok {
				wait, ok = max(wait, q), true
			}
		}
		// !ok: no goroutine woke up and no datagram came in the period,
		// nothing to judge by.
		if ok && o.update(wait) {
			changed(o.on.Load(), wait)
		}
	}
}

// update moves the state by one sample's p90; it reports a change.
func (o *overload) update(p90 time.Duration) bool {
	if p90 > o.enter {
		o.over++
	} else {
		o.over = 0
	}
	switch on := o.on.Load(); {
	case !on && o.over >= overloadAfter:
		o.on.Store(true)
		return true
	case on && p90 < o.leave:
		o.on.Store(false)
		return true
	}
	return false
}

// quantileSince is the q quantile of the values counted between two reads
// of a cumulative histogram (counts[i] in [buckets[i], buckets[i+1])), as
// the lower bound of its bucket, so that "over the threshold" is never a
// bucket that merely reaches it; false when nothing was counted.
func quantileSince(buckets []float64, before, after []uint64, q float64) (time.Duration, bool) {
	var total uint64
	for i := range after {
		total += after[i] - before[i]
	}
	if total == 0 {
		return 0, false
	}
	want := uint64(q*float64(total-1)) + 1 // ranks start at 1
	var seen uint64
	for i := range after {
		seen += after[i] - before[i]
		if seen >= want {
			return time.Duration(max(0, buckets[i]) * float64(time.Second)), true
		}
	}
	return 0, false
}
