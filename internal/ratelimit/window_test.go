package ratelimit

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func wantN(t *testing.T, what string, got, want int) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: %d, want %d", what, got, want)
	}
}

// TestSlidingExpiry: each event counts for exactly span, the window slides
// event by event, and keys are independent.
func TestSlidingExpiry(t *testing.T) {
	clk := newClock()
	w := New[string](time.Minute, Options{Limit: 10, Now: clk.now})
	wantN(t, "empty", w.Count("a"), 0)
	wantN(t, "first", w.Add("a"), 1)
	clk.add(20 * time.Second)
	wantN(t, "second", w.Add("a"), 2)
	clk.add(20 * time.Second)
	wantN(t, "third", w.Add("a"), 3)
	wantN(t, "other key", w.Add("b"), 1)
	clk.add(20*time.Second - time.Nanosecond)
	wantN(t, "just before the first expires", w.Count("a"), 3)
	clk.add(time.Nanosecond)
	wantN(t, "the first expired (span is half-open)", w.Count("a"), 2)
	clk.add(20 * time.Second)
	wantN(t, "the second expired", w.Count("a"), 1)
	wantN(t, "add after expiry", w.Add("a"), 2)
	clk.add(time.Minute)
	wantN(t, "all expired", w.Count("a"), 0)
	wantN(t, "b expired", w.Count("b"), 0)
	wantN(t, "fresh", w.Add("a"), 1)
}

// TestLimitSaturates: counts stop at Limit and stay exact below it: the
// newest Limit events are kept, so expiry of the oldest shows at once.
func TestLimitSaturates(t *testing.T) {
	clk := newClock()
	w := New[int](10*time.Second, Options{Limit: 3, Now: clk.now})
	for i, want := range []int{1, 2, 3, 3, 3} {
		wantN(t, fmt.Sprint("add ", i), w.Add(7), want)
		clk.add(time.Second)
	}
	// Events at 0..4 s; at 12 s the ones at 0, 1, 2 s are gone.
	clk.add(7 * time.Second)
	wantN(t, "at 12 s", w.Count(7), 2)
	clk.add(time.Second)
	wantN(t, "at 13 s", w.Count(7), 1)
	clk.add(time.Second)
	wantN(t, "at 14 s", w.Count(7), 0)

	one := New[int](time.Minute, Options{Limit: 1, Now: clk.now})
	wantN(t, "limit 1", one.Add(1), 1)
	clk.add(50 * time.Second)
	wantN(t, "limit 1 again (renews)", one.Add(1), 1)
	clk.add(50 * time.Second)
	wantN(t, "limit 1 renewed", one.Count(1), 1)
	clk.add(10 * time.Second)
	wantN(t, "limit 1 expired", one.Count(1), 0)
}

// TestFixedWindow: the window opens at the first event, counts until it has
// run out, and the next event opens a new one.
func TestFixedWindow(t *testing.T) {
	clk := newClock()
	w := New[string](time.Second, Options{Limit: 100, Fixed: true, Now: clk.now})
	for i := range 5 {
		wantN(t, "burst", w.Add("x"), i+1)
		clk.add(100 * time.Millisecond)
	}
	clk.add(499 * time.Millisecond) // 999 ms after the first event
	wantN(t, "last moment", w.Add("x"), 6)
	clk.add(time.Millisecond)
	wantN(t, "window ran out", w.Count("x"), 0)
	wantN(t, "new window", w.Add("x"), 1)
	clk.add(200 * time.Millisecond)
	wantN(t, "in the new window", w.Add("x"), 2)

	s := New[string](time.Second, Options{Limit: 2, Fixed: true, Now: clk.now})
	for _, want := range []int{1, 2, 2, 2} {
		wantN(t, "fixed saturates", s.Add("y"), want)
	}
}

// TestReset forgets one key only.
func TestReset(t *testing.T) {
	w := New[string](time.Minute, Options{Limit: 5})
	w.Add("a")
	w.Add("a")
	w.Add("b")
	w.Reset("a")
	w.Reset("never")
	wantN(t, "reset key", w.Count("a"), 0)
	wantN(t, "other key", w.Count("b"), 1)
	wantN(t, "after reset", w.Add("a"), 1)
}

// TestAtClockOutOfOrder: AddAt with a time a little before the latest event
// counts as the latest (the window never holds stamps out of order), and
// CountAt reads at the given time.
func TestAtClockOutOfOrder(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	w := New[int64](time.Minute, Options{Limit: 5})
	w.AddAt(1, t0.Add(10*time.Second))
	wantN(t, "earlier time", w.AddAt(1, t0.Add(5*time.Second)), 2)
	wantN(t, "both count until 10 s + span", w.CountAt(1, t0.Add(69*time.Second)), 2)
	wantN(t, "gone", w.CountAt(1, t0.Add(70*time.Second)), 0)
	// The zero Options clock is time.Now; At variants ignore it.
	wantN(t, "far future", w.CountAt(1, t0.Add(24*time.Hour)), 0)
}

// TestSweep: keys whose window is empty are deleted by the periodic sweep
// that Add runs and by Sweep; live keys stay.
func TestSweep(t *testing.T) {
	clk := newClock()
	w := New[int](time.Minute, Options{Limit: 5, Now: clk.now})
	for i := range 1000 {
		w.Add(i)
	}
	clk.add(30 * time.Second)
	w.Add(-1)
	wantN(t, "before expiry", w.Len(), 1001)
	clk.add(31 * time.Second) // the 1000 keys expired; -1 is live
	w.Add(-2)                 // a sweep is due (every span, here 1 minute)
	wantN(t, "after the periodic sweep", w.Len(), 2)
	clk.add(time.Minute)
	w.Sweep(clk.now())
	wantN(t, "after Sweep", w.Len(), 0)

	f := New[int](time.Second, Options{Limit: 5, Fixed: true, Now: clk.now})
	for i := range 100 {
		f.Add(i)
	}
	clk.add(time.Second)
	f.Add(-1)
	wantN(t, "fixed window swept", f.Len(), 1)
}

// TestFloodOfKeys: a million distinct keys keep the Window at its cap, and
// the keys that were there before the flood keep their counts, a key of
// count 1 included; the flood's own keys are still counted (a new key is
// never left out).
func TestFloodOfKeys(t *testing.T) {
	clk := newClock()
	const maxKeys = 10_000
	w := New[string](time.Minute, Options{Limit: 10, MaxKeys: maxKeys, Now: clk.now})
	wantN(t, "victim", w.Add("old-one"), 1)
	for range 4 {
		w.Add("target")
	}
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	biggest := 0
	for i := range n {
		if c := w.Add(fmt.Sprint("flood-", i)); c != 1 {
			t.Fatalf("flood key %d: count %d", i, c)
		}
		if i%1000 == 0 {
			biggest = max(biggest, w.Len())
			clk.add(time.Millisecond) // the clock moves, but not past the span
		}
	}
	biggest = max(biggest, w.Len())
	if biggest > maxKeys {
		t.Fatalf("%d keys held, cap %d", biggest, maxKeys)
	}
	wantN(t, "target's count after the flood", w.Count("target"), 4)
	wantN(t, "old key of count 1 after the flood", w.Count("old-one"), 1)
	wantN(t, "target goes on counting", w.Add("target"), 5)
	wantN(t, "newest flood key is counted", w.Count(fmt.Sprint("flood-", n-1)), 1)
}

// TestFloodEvictsExpiredFirst: when full, keys whose window is empty make
// room before any live key.
func TestFloodEvictsExpiredFirst(t *testing.T) {
	clk := newClock()
	w := New[int](time.Minute, Options{Limit: 5, MaxKeys: 100, Now: clk.now})
	for i := range 100 {
		w.Add(i)
	}
	clk.add(2 * time.Minute)
	w.Add(1000)
	w.Add(1000)
	for i := range 99 {
		w.Add(2000 + i)
	}
	wantN(t, "held", w.Len(), 100)
	wantN(t, "live key", w.Count(1000), 2)
}

// TestConcurrentAdds: parallel Adds on shared and own keys are all counted,
// each Add's answer is distinct, and nothing races (go test -race).
func TestConcurrentAdds(t *testing.T) {
	const workers, each = 8, 2000
	w := New[string](time.Hour, Options{Limit: workers * each})
	answers := make([][]int, workers)
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			own := fmt.Sprint("own-", g)
			for range each {
				answers[g] = append(answers[g], w.Add("shared"))
				w.Add(own)
				w.Count(own)
			}
		})
	}
	wg.Wait()
	wantN(t, "shared", w.Count("shared"), workers*each)
	for g := range workers {
		wantN(t, fmt.Sprint("own-", g), w.Count(fmt.Sprint("own-", g)), each)
	}
	all := slices.Concat(answers...)
	slices.Sort(all)
	for i, n := range all {
		if n != i+1 {
			t.Fatalf("answers are not 1..%d: position %d is %d", len(all), i, n)
		}
	}

	f := New[int](time.Hour, Options{Limit: 1 << 20, Fixed: true})
	for range workers {
		wg.Go(func() {
			for range each {
				f.Add(1)
			}
		})
	}
	wg.Wait()
	wantN(t, "fixed shared", f.Count(1), workers*each)
}

func TestLimitRequired(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for Limit 0")
		}
	}()
	New[int](time.Second, Options{})
}

// BenchmarkAdd: the hot path (one Add per SIP request in the shield): a
// busy key set well under the cap, sliding and fixed, and under a flood of
// new keys at the cap.
func BenchmarkAdd(b *testing.B) {
	keys := make([]int, 1024)
	for i := range keys {
		keys[i] = i * 7919
	}
	for _, c := range []struct {
		name string
		o    Options
	}{
		{"sliding-5", Options{Limit: 5}},
		{"sliding-200", Options{Limit: 200}},
		{"fixed-200", Options{Limit: 200, Fixed: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			w := New[int](time.Minute, c.o)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				w.Add(keys[i&1023])
				i++
			}
		})
	}
	b.Run("flood-at-cap", func(b *testing.B) {
		w := New[int](time.Minute, Options{Limit: 5, MaxKeys: 10_000})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			w.Add(i)
			i++
		}
	})
}
