package app

import (
	"context"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sipdesk/sipdesk"
)

// The client address of a request travels in its context: the web layer
// sets it once (from the connection, or from X-Forwarded-For/Forwarded when
// the connection is a trusted proxy) and the limits below read it.
type sourceKey struct{}

// WithSource returns ctx carrying the client address of the request.
func WithSource(ctx context.Context, addr netip.Addr) context.Context {
	return context.WithValue(ctx, sourceKey{}, addr)
}

// Source returns the client address WithSource put into ctx (invalid when
// none).
func Source(ctx context.Context) netip.Addr {
	a, _ := ctx.Value(sourceKey{}).(netip.Addr)
	return a
}

// sourceOf is the key a client address is counted under: the address for
// IPv4, its /64 for IPv6 (one subscriber's usual share), "" when unknown.
func sourceOf(ctx context.Context) string {
	a, _ := ctx.Value(sourceKey{}).(netip.Addr)
	if !a.IsValid() {
		return ""
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// bump reserves one attempt of key in the shared counters: an
// ERateLimited error (with msg) when key already had limit attempts in its
// window. A refused attempt is not counted.
func (s *Service) bump(tx sipdesk.Tx, key string, span time.Duration, limit int, field, msg string) error {
	n, err := tx.BumpAttempt(key, s.now(), span, limit)
	if err != nil {
		return err
	}
	if n > limit {
		return &sipdesk.Error{Code: sipdesk.ERateLimited, Field: field, Message: msg}
	}
	return nil
}

// Prune deletes what has run out: attempt counters whose window ended and
// outbox rows older than OutboxKeep. Portal nodes call it now and then.
func (s *Service) Prune(ctx context.Context) error {
	return s.update(ctx, func(tx sipdesk.Tx) error {
		if _, err := tx.PruneAttempts(s.now()); err != nil {
			return err
		}
		_, err := tx.PruneMails(s.now().Add(-OutboxKeep))
		return err
	})
}

// OutboxKeep is how long outbox rows are kept (their bodies are redacted as
// soon as they are delivered).
const OutboxKeep = 30 * 24 * time.Hour

// hashGate bounds argon2id work (19 MiB and a core's ~50 ms each): at most
// `slots` run at once and at most `queue` wait, each for at most `wait`;
// anyone beyond is refused at once with EUnavailable, so a flood of logins
// costs neither unbounded memory nor an unbounded queue.
type hashGate struct {
	slots   chan struct{}
	waiting atomic.Int32
	queue   int32
	wait    time.Duration
}

func newHashGate(slots, queue int, wait time.Duration) *hashGate {
	if slots <= 0 {
		slots = max(1, runtime.GOMAXPROCS(0)) // argon2 is CPU-bound: more slots add memory, not speed
	}
	if queue < 0 {
		queue = 4 * slots
	}
	return &hashGate{slots: make(chan struct{}, slots), queue: int32(queue), wait: wait}
}

var errBusy = sipdesk.Errorf(sipdesk.EUnavailable, "too many logins at once: try again in a moment")

// acquire takes a slot (release it with the returned func) or refuses.
func (g *hashGate) acquire(ctx context.Context) (func(), error) {
	release := func() { <-g.slots }
	select {
	case g.slots <- struct{}{}:
		return release, nil
	default:
	}
	if g.waiting.Add(1) > g.queue {
		g.waiting.Add(-1)
		return nil, errBusy
	}
	defer g.waiting.Add(-1)
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return release, nil
	case <-t.C:
		return nil, errBusy
	case <-ctx.Done():
		return nil, errBusy
	}
}

// checkPassword is CheckPassword through the gate.
func (s *Service) checkPassword(ctx context.Context, phc, password string) (bool, error) {
	release, err := s.gate.acquire(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	return CheckPassword(phc, password), nil
}

// hashPassword is HashPassword through the gate.
func (s *Service) hashPassword(ctx context.Context, password string) (string, error) {
	release, err := s.gate.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return HashPassword(password), nil
}

// inflight bounds the logins of one key (an account, a source) being
// checked at the same moment on this node. Entries exist only while a
// check runs, so memory is bounded by the gate.
type inflight struct {
	mu sync.Mutex
	n  map[string]int
}

// enter reserves a place for every key under its limit, or none.
func (f *inflight) enter(keys []string, limits []int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = map[string]int{}
	}
	for i, k := range keys {
		if f.n[k] >= limits[i] {
			return false
		}
	}
	for _, k := range keys {
		f.n[k]++
	}
	return true
}

func (f *inflight) leave(keys []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range keys {
		if f.n[k]--; f.n[k] <= 0 {
			delete(f.n, k)
		}
	}
}
