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

// countStore runs Update's fn with a nil Tx and counts transactions; a
// transaction fails when any of its fns does.
type countStore struct {
	sipdesk.Store
	updates atomic.Int64
	delay   time.Duration
}

func (s *countStore) Update(ctx context.Context, fn func(sipdesk.Tx) error) error {
	s.updates.Add(1)
	time.Sleep(s.delay)
	return fn(nil)
}

func TestGroupCommit(t *testing.T) {
	t.Run("concurrent writes share transactions", func(t *testing.T) {
		st := &countStore{delay: 2 * time.Millisecond}
		var g GroupCommit
		var ran atomic.Int64
		var wg sync.WaitGroup
		for range 200 {
			wg.Go(func() {
				if err := g.Do(st, func(sipdesk.Tx) error { ran.Add(1); return nil }); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if ran.Load() != 200 {
			t.Fatalf("ran %d writes, want 200", ran.Load())
		}
		if n := st.updates.Load(); n >= 200 {
			t.Fatalf("%d transactions for 200 concurrent writes: nothing was grouped", n)
		}
	})
	t.Run("posted writes commit without a waiter and report their outcome", func(t *testing.T) {
		st := &countStore{delay: time.Millisecond}
		var g GroupCommit
		bad := errors.New("bad")
		outcomes := make(chan error, 20)
		for i := range 20 {
			g.Post(st, func(sipdesk.Tx) error {
				if i == 7 {
					return bad
				}
				return nil
			}, func(err error) { outcomes <- err })
		}
		failed := 0
		for range 20 {
			select {
			case err := <-outcomes:
				if errors.Is(err, bad) {
					failed++
				} else if err != nil {
					t.Fatal(err)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("a posted write never reported")
			}
		}
		if failed != 1 {
			t.Fatalf("%d posted writes failed, want 1", failed)
		}
		// The committer leaves once idle.
		deadline := time.Now().Add(2 * time.Second)
		for {
			g.mu.Lock()
			busy := g.busy
			g.mu.Unlock()
			if !busy {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("committer still running after 2 s idle")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("a failing write fails alone", func(t *testing.T) {
		st := &countStore{delay: 2 * time.Millisecond}
		var g GroupCommit
		bad := errors.New("bad")
		var wg sync.WaitGroup
		var failed, ok atomic.Int64
		for i := range 100 {
			wg.Go(func() {
				err := g.Do(st, func(sipdesk.Tx) error {
					if i == 50 {
						return bad
					}
					return nil
				})
				switch {
				case errors.Is(err, bad):
					failed.Add(1)
				case err == nil:
					ok.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if failed.Load() != 1 || ok.Load() != 99 {
			t.Fatalf("failed %d ok %d, want 1 and 99", failed.Load(), ok.Load())
		}
	})
	t.Run("a channel refusal fails alone without retrying the batch", func(t *testing.T) {
		st := &countStore{delay: 2 * time.Millisecond}
		var g GroupCommit
		var wg sync.WaitGroup
		var refused, ok, runs atomic.Int64
		for i := range 100 {
			wg.Go(func() {
				err := g.Do(st, func(sipdesk.Tx) error {
					runs.Add(1)
					if i%10 == 0 {
						return &sipdesk.Error{Code: sipdesk.EChannelLimit, Message: "full"}
					}
					return nil
				})
				switch {
				case sipdesk.ErrorCode(err) == sipdesk.EChannelLimit:
					refused.Add(1)
				case err == nil:
					ok.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if refused.Load() != 10 || ok.Load() != 90 {
			t.Fatalf("refused %d ok %d, want 10 and 90", refused.Load(), ok.Load())
		}
		if runs.Load() != 100 {
			t.Fatalf("%d runs of 100 jobs: a refusal made the batch run again", runs.Load())
		}
	})
	t.Run("sequential writes", func(t *testing.T) {
		st := &countStore{}
		var g GroupCommit
		for range 10 {
			if err := g.Do(st, func(sipdesk.Tx) error { return nil }); err != nil {
				t.Fatal(err)
			}
		}
		if st.updates.Load() != 10 {
			t.Fatalf("updates %d", st.updates.Load())
		}
	})
}

// hangStore is a database whose packets hang: a transaction returns only
// when its context ends.
type hangStore struct{ sipdesk.Store }

func (hangStore) Update(ctx context.Context, fn func(sipdesk.Tx) error) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestGroupCommitDeadline: with the store hanging, every write (waited or
// posted) fails by CommitTimeout after it was submitted, including the ones
// queued behind a hanging transaction, and is never run after its deadline.
func TestGroupCommitDeadline(t *testing.T) {
	var g GroupCommit
	st := hangStore{}
	var wg sync.WaitGroup
	var worst atomic.Int64
	for i := range 12 {
		time.Sleep(time.Duration(i) * 40 * time.Millisecond) // some queue behind the first transaction
		t0 := time.Now()
		wait := func(err error) {
			took := time.Since(t0)
			if err == nil || sipdesk.RefusalFor(err) != sipdesk.EUnavailable {
				t.Errorf("write %d on a hanging store: %v, want unavailable", i, err)
			}
			for {
				w := worst.Load()
				if int64(took) <= w || worst.CompareAndSwap(w, int64(took)) {
					break
				}
			}
		}
		if i%2 == 0 {
			wg.Go(func() { wait(g.Do(st, func(sipdesk.Tx) error { return nil })) })
		} else {
			wg.Add(1)
			g.Post(st, func(sipdesk.Tx) error { return nil }, func(err error) { wait(err); wg.Done() })
		}
	}
	wg.Wait()
	if w := time.Duration(worst.Load()); w < CommitTimeout || w > CommitTimeout+300*time.Millisecond {
		t.Fatalf("slowest write failed %v after submission, want %v (+300 ms)", w, CommitTimeout)
	}
}

// TestRegisterBindingsAbandoned: a REGISTER's write whose waiter gave up
// (answered 503 at its deadline) writes nothing when its turn comes, and
// does not fail the writes it shares the transaction with.
func TestRegisterBindingsAbandoned(t *testing.T) {
	st := &countStore{delay: 50 * time.Millisecond}
	e := New(st, Options{})
	// A first transaction keeps the committer busy while the REGISTER's
	// deadline passes.
	go e.regWrites.Do(st, func(sipdesk.Tx) error { return nil })
	time.Sleep(5 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	var neighbour error
	var wg sync.WaitGroup
	wg.Go(func() { neighbour = e.regWrites.Do(st, func(sipdesk.Tx) error { return nil }) })
	// With a nil Tx the job would panic if it touched the store.
	_, err := e.RegisterBindings(ctx, BindingChange{AccountID: 1, Puts: []*sipdesk.Registration{{SIPAccountID: 1, Contact: "sip:a@192.0.2.1"}}}, 10)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("RegisterBindings: %v, want the deadline", err)
	}
	wg.Wait()
	if neighbour != nil {
		t.Fatalf("the write sharing the transaction failed: %v", neighbour)
	}
	if !e.SettleBindings(time.Second) {
		t.Fatal("writes not settled")
	}
}
