// Package ratelimit counts events per key in a time window: the one counter
// under the portal's login and re-authentication limits and the SIP edge's
// shield (failed authentications, garbage datagrams, challenge floods,
// bans, failed answers per Call-ID).
//
// A Window is safe for concurrent use, reads an injectable clock, and keeps
// its memory bounded under a flood of distinct keys (see Options.MaxKeys).
package ratelimit

import (
	"sync"
	"time"
)

// DefaultMaxKeys is the key cap of a Window whose Options leave MaxKeys 0.
const DefaultMaxKeys = 100_000

// evictSample is how many keys a full Window looks at to choose the one a
// new key replaces.
const evictSample = 16

// Options configure a Window.
type Options struct {
	// Limit is where counts saturate: Add and Count never report more,
	// so a sliding window keeps at most Limit timestamps per key. Counts
	// up to Limit are exact. Must be at least 1.
	Limit int
	// MaxKeys caps the keys held (DefaultMaxKeys if 0). Keys whose window
	// is empty are swept away as time passes; when the Window is still
	// full, a new key replaces the key with the lowest count among a
	// sample, the newest of them on a tie (see Window).
	MaxKeys int
	// Fixed selects a fixed window: it opens at a key's first event and the
	// count starts over with the first event after it has run out. One
	// counter per key, whatever the Limit; bursts of up to twice the limit
	// across a window's end go unseen. The default is a sliding window:
	// exact, it counts the events of the last span.
	Fixed bool
	// Now is the clock (time.Now if nil). It is called with the Window's
	// lock held: it must not call the Window.
	Now func() time.Time
}

// Window counts events per key of type K within a span of time.
//
// Memory: each key costs one small entry plus, in a sliding window, up to
// Limit timestamps. Keys whose window is empty are deleted by a sweep that
// Add runs every span (at least every second, at most every minute). If
// the Window still holds MaxKeys keys, a new key takes the place of the
// key with the lowest count among a sample of the keys, on a tie the most
// recently created one. The Window is never wiped: a flood of new keys
// creates keys of count 1, so it replaces its own keys, and an existing key
// whose count is above 1 (the source or account that is under way to its
// limit) keeps its count; an existing key of count 1 older than the flood
// keeps it too, as the flood's own keys are newer. Refusing new keys when
// full was rejected: an attacker could first fill the Window, then go
// uncounted.
type Window[K comparable] struct {
	span  int64 // nanoseconds
	limit int
	max   int
	fixed bool
	now   func() time.Time
	every int64 // sweep interval, nanoseconds

	mu      sync.Mutex
	m       map[K]*entry
	started bool
	base    time.Time // the time of the first event; stamps are offsets from it
	swept   int64     // offset of the last sweep
	seq     uint64    // creation order of entries
}

type entry struct {
	ts    []int64 // sliding: stamps within the window, oldest first, at most limit
	start int64   // fixed: when the window opened
	n     int     // fixed: events since start
	seq   uint64  // creation order
}

// New makes a Window over span (events older than span no longer count).
// It panics if o.Limit < 1.
func New[K comparable](span time.Duration, o Options) *Window[K] {
	if o.Limit < 1 {
		panic("ratelimit: Options.Limit must be at least 1")
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	every := min(max(span, time.Second), time.Minute)
	return &Window[K]{span: int64(span), limit: o.Limit, max: o.MaxKeys, fixed: o.Fixed, now: o.Now, every: int64(every), m: make(map[K]*entry)}
}

// Add records an event for k now and returns k's count within the window,
// this event included (at most Limit).
func (w *Window[K]) Add(k K) int { return w.AddAt(k, w.now()) }

// Count returns k's count within the window now (at most Limit). The clock
// is read only for a key that has events.
func (w *Window[K]) Count(k K) int {
	w.mu.Lock()
	e := w.m[k]
	if e == nil {
		w.mu.Unlock()
		return 0
	}
	n := w.count(e, w.offset(w.now()))
	w.mu.Unlock()
	return n
}

// AddAt is Add for a caller that already read the time t. Times a little
// out of order (read before another caller's Add) count as the latest
// event's time.
func (w *Window[K]) AddAt(k K, t time.Time) int {
	w.mu.Lock()
	n := w.add(k, w.offset(t))
	w.mu.Unlock()
	return n
}

func (w *Window[K]) add(k K, now int64) int {
	if now-w.swept >= w.every {
		w.sweep(now)
	}
	e := w.m[k]
	if e == nil {
		if len(w.m) >= w.max {
			w.evict(now)
		}
		w.seq++
		e = &entry{seq: w.seq}
		if !w.fixed {
			e.ts = make([]int64, 0, min(w.limit, 8))
		}
		w.m[k] = e
	}
	if w.fixed {
		if now-e.start >= w.span || e.n == 0 {
			e.start, e.n = now, 0
		}
		if e.n < w.limit {
			e.n++
		}
		return e.n
	}
	e.expire(now - w.span)
	if n := len(e.ts); n > 0 && now < e.ts[n-1] {
		now = e.ts[n-1]
	}
	switch {
	case len(e.ts) == w.limit:
		copy(e.ts, e.ts[1:])
		e.ts[len(e.ts)-1] = now
	case len(e.ts) == cap(e.ts):
		ts := make([]int64, len(e.ts), min(2*cap(e.ts), w.limit))
		copy(ts, e.ts)
		e.ts = append(ts, now)
	default:
		e.ts = append(e.ts, now)
	}
	return len(e.ts)
}

// CountAt is Count at the time t.
func (w *Window[K]) CountAt(k K, t time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.m[k]
	if e == nil {
		return 0
	}
	return w.count(e, w.offset(t))
}

// Reset forgets k's events (the key's empty entry stays for its next
// events until a sweep deletes it).
func (w *Window[K]) Reset(k K) {
	w.mu.Lock()
	if e := w.m[k]; e != nil {
		e.ts, e.n = e.ts[:0], 0
	}
	w.mu.Unlock()
}

// Sweep deletes the keys with no event left in the window at t. Add sweeps
// by itself; calling Sweep only frees memory sooner.
func (w *Window[K]) Sweep(t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sweep(w.offset(t))
}

// Len returns the number of keys held, expired ones not yet swept included.
func (w *Window[K]) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.m)
}

// offset turns t into nanoseconds since the Window's first event
// (monotonic when both times carry a monotonic reading).
func (w *Window[K]) offset(t time.Time) int64 {
	if !w.started {
		w.started, w.base = true, t
	}
	return int64(t.Sub(w.base))
}

// count is e's count at now.
func (w *Window[K]) count(e *entry, now int64) int {
	if w.fixed {
		if now-e.start >= w.span {
			return 0
		}
		return e.n
	}
	cut := now - w.span
	n := 0
	for i := len(e.ts) - 1; i >= 0 && e.ts[i] > cut; i-- {
		n++
	}
	return n
}

// expire drops the stamps at or before cut.
func (e *entry) expire(cut int64) {
	i := 0
	for i < len(e.ts) && e.ts[i] <= cut {
		i++
	}
	if i > 0 {
		e.ts = e.ts[:copy(e.ts, e.ts[i:])]
	}
}

func (w *Window[K]) sweep(now int64) {
	w.swept = now
	for k, e := range w.m {
		if w.count(e, now) == 0 {
			delete(w.m, k)
		}
	}
}

// evict makes room for one key in a full Window: expired keys go first
// (a full sweep at most every sweep interval), then the key with the
// lowest count among a sample, the newest on a tie.
func (w *Window[K]) evict(now int64) {
	if now-w.swept >= w.every/4 {
		w.sweep(now)
		if len(w.m) < w.max {
			return
		}
	}
	var (
		victim K
		best   *entry
		bestN  int
		seen   int
	)
	for k, e := range w.m { // map iteration starts at a random place
		n := w.count(e, now)
		if best == nil || n < bestN || (n == bestN && e.seq > best.seq) {
			victim, best, bestN = k, e, n
		}
		if seen++; seen == evictSample || n == 0 {
			break
		}
	}
	delete(w.m, victim)
}
