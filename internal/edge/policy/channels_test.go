package policy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// leaseBook is a Channels keeping leases in a map; renewals fail while
// down is set. Its transactions are countStore's (fn(nil)).
type leaseBook struct {
	mu     sync.Mutex
	leases map[string]bool
	down   atomic.Bool
}

var errDown = errors.New("connection refused")

func (b *leaseBook) AcquireChannelTx(_ sipdesk.Tx, l *sipdesk.CallLease) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.leases[l.CallID] = true
	return nil
}

func (b *leaseBook) ReleaseChannelTx(_ sipdesk.Tx, id string) error {
	if b.down.Load() {
		return errDown
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.leases, id)
	return nil
}

func (b *leaseBook) RenewLeases(ctx context.Context, _ string) ([]string, error) {
	if b.down.Load() {
		<-ctx.Done() // a frozen database: the renewal hangs until its deadline
		return nil, ctx.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var ids []string
	for id := range b.leases {
		ids = append(ids, id)
	}
	return ids, nil
}

func (b *leaseBook) SaveCallRecordTx(sipdesk.Tx, *sipdesk.CallRecord) error { return nil }
func (b *leaseBook) SetLeaseDialogTx(sipdesk.Tx, string, string) error      { return nil }
func (b *leaseBook) ClaimLostCalls(context.Context, string, int) ([]*sipdesk.LostCall, error) {
	return nil, nil
}
func (b *leaseBook) CloseOrphanRecords(context.Context) (int, error)      { return 0, nil }
func (b *leaseBook) ExpireLeases(context.Context, string, []string) error { return nil }
func (b *leaseBook) ActiveCalls(context.Context, int64) ([]*sipdesk.CallLease, error) {
	return nil, nil
}

// ender records the calls it is asked to end.
type ender struct {
	mu    sync.Mutex
	ended map[string]string // Call-ID → reason
	at    time.Time
}

func (e *ender) EndCalls(ids []string, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range ids {
		e.ended[id] = reason
	}
	if e.at.IsZero() {
		e.at = time.Now()
	}
}

func (e *ender) ByeLost(context.Context, string, Dialog) {}

func (e *ender) get(id string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ended[id]
}

// TestChannelFencing: renewals hang on a frozen store (bounded by the
// timeout); the admission ends its calls once the last successful renewal
// started Fence ago, refuses calls meanwhile, and admits again after a
// renewal succeeds. A renewal that misses a lease ends that call.
func TestChannelFencing(t *testing.T) {
	timing := sipdesk.LeaseTiming{TTL: 1500 * time.Millisecond, Renew: 200 * time.Millisecond, Fence: time.Second, Sweep: time.Hour}
	book := &leaseBook{leases: map[string]bool{}}
	c := NewChannels(&countStore{}, book, "n1", ChannelOptions{Timing: timing, Timeout: 300 * time.Millisecond})
	end := &ender{ended: map[string]string{}}
	c.SetEnder(end)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	for _, id := range []string{"a", "b"} {
		if err := c.Acquire(ctx, CallInfo{CallID: id, CustomerID: 1, Direction: sipdesk.DirOutbound}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // a renewal went through
	book.down.Store(true)
	cut := time.Now()
	deadline := cut.Add(timing.TTL)
	for end.get("a") == "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if end.get("a") != EndFenced || end.get("b") != EndFenced {
		t.Fatalf("calls ended %v, want both fenced", end.ended)
	}
	if took := end.at.Sub(cut); took > timing.Fence {
		t.Fatalf("fenced %v after the cut, past the fence interval %v", took, timing.Fence)
	}
	if err := c.Acquire(ctx, CallInfo{CallID: "c", CustomerID: 1}); sipdesk.ErrorCode(err) != sipdesk.EUnavailable {
		t.Fatalf("acquire while fenced: %v, want unavailable", err)
	}
	if !c.Fenced() {
		t.Fatal("Fenced() false while fenced")
	}
	// The calls end: their releases wait for the store.
	c.Release(ctx, CallInfo{CallID: "a"})
	c.Release(ctx, CallInfo{CallID: "b"})

	book.down.Store(false)
	deadline = time.Now().Add(3 * time.Second)
	for (c.Fenced() || c.Pending() > 0) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	book.mu.Lock()
	left := len(book.leases)
	book.mu.Unlock()
	if c.Fenced() || c.Pending() > 0 || left != 0 {
		t.Fatalf("after the store came back: fenced %v, pending %d, leases %d", c.Fenced(), c.Pending(), left)
	}
	if err := c.Acquire(ctx, CallInfo{CallID: "d", CustomerID: 1}); err != nil {
		t.Fatalf("acquire after recovery: %v", err)
	}

	// Another node took d's lease: the next renewal ends the call.
	book.mu.Lock()
	delete(book.leases, "d")
	book.mu.Unlock()
	deadline = time.Now().Add(2 * time.Second)
	for end.get("d") == "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if end.get("d") != EndLeaseLost {
		t.Fatalf("call d: %q, want lease_lost", end.get("d"))
	}
}

// staleBook lists its leases on node n1 with their start times and
// records the ones expired.
type staleBook struct {
	leaseBook
	started map[string]time.Time
	expired []string
}

func (b *staleBook) ActiveCalls(context.Context, int64) ([]*sipdesk.CallLease, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ls []*sipdesk.CallLease
	for id := range b.leases {
		ls = append(ls, &sipdesk.CallLease{CallID: id, Node: "n1", StartedAt: b.started[id]})
	}
	return ls, nil
}

func (b *staleBook) ExpireLeases(_ context.Context, _ string, ids []string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expired = append(b.expired, ids...)
	return nil
}

// TestDropStaleSparesThisLife: at start, the leases of this node name that
// started before this process are a previous life's and go to the sweep;
// a call of this life that ended while the store refused its release is
// not one of them, although it is no longer live (the start's look at the
// leases can come late on a loaded machine: TestFailClosed in
// internal/edge once saw its call's lease expired under it).
func TestDropStaleSparesThisLife(t *testing.T) {
	book := &staleBook{leaseBook: leaseBook{leases: map[string]bool{"old": true}}, started: map[string]time.Time{"old": time.Now().Add(-time.Minute)}}
	c := NewChannels(&countStore{}, book, "n1", ChannelOptions{Timeout: 300 * time.Millisecond})
	ctx := context.Background()
	call := CallInfo{CallID: "mine", CustomerID: 1, Direction: sipdesk.DirOutbound}
	if err := c.Acquire(ctx, call); err != nil {
		t.Fatal(err)
	}
	book.mu.Lock()
	book.started["mine"] = time.Now()
	book.mu.Unlock()
	book.down.Store(true)
	c.Release(ctx, call)
	for deadline := time.Now().Add(2 * time.Second); c.Pending() != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the failed release was not queued")
		}
	}
	c.dropStale(ctx)
	book.mu.Lock()
	defer book.mu.Unlock()
	if len(book.expired) != 1 || book.expired[0] != "old" {
		t.Fatalf("expired %v, want only the previous life's [old]", book.expired)
	}
}
