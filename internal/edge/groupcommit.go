package edge

import (
	"context"
	"sync"
	"time"

	"github.com/sipdesk/sipdesk"
)

// groupCommit runs the store writes of concurrent requests in one
// transaction (group commit). A request still waits for its own commit, so
// a 200 to REGISTER keeps meaning "stored" and a store failure still gets
// 503; what changes is that 50 REGISTERs arriving together cost one
// transaction (one commit on SQLite, one round trip of BEGIN/COMMIT on
// PostgreSQL) instead of 50. Its commits are lazy (sipdesk.LazyCommit).
// The zero value is ready to use.
type groupCommit struct {
	mu      sync.Mutex
	pending []*gcJob
	busy    bool // a goroutine is committing batches
}

type gcJob struct {
	fn   func(sipdesk.Tx) error
	err  error
	done chan struct{}
}

// maxGroup bounds the writes of one transaction.
const maxGroup = 256

// do runs fn inside a store write transaction shared with the writes that
// are queued at the same moment, and returns fn's outcome. fn may run more
// than once (like in Store.Update) and must not keep state between runs.
func (g *groupCommit) do(st sipdesk.Store, fn func(sipdesk.Tx) error) error {
	j := &gcJob{fn: fn, done: make(chan struct{})}
	g.mu.Lock()
	g.pending = append(g.pending, j)
	if g.busy {
		g.mu.Unlock()
		<-j.done
		return j.err
	}
	g.busy = true
	g.mu.Unlock()
	// This goroutine leads: it commits batches until its own job is done,
	// then hands the rest to a background goroutine.
	for {
		g.commitNext(st)
		select {
		case <-j.done:
			g.mu.Lock()
			if len(g.pending) == 0 {
				g.busy = false
				g.mu.Unlock()
				return j.err
			}
			g.mu.Unlock()
			go g.drain(st)
			return j.err
		default:
		}
	}
}

func (g *groupCommit) drain(st sipdesk.Store) {
	for {
		g.mu.Lock()
		if len(g.pending) == 0 {
			g.busy = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		g.commitNext(st)
	}
}

// commitNext commits the queued jobs (up to maxGroup) in one transaction.
// When that fails, each job is retried on its own, so one bad write does
// not fail its neighbours.
func (g *groupCommit) commitNext(st sipdesk.Store) {
	g.mu.Lock()
	n := min(len(g.pending), maxGroup)
	batch := g.pending[:n:n]
	g.pending = g.pending[n:]
	if len(g.pending) == 0 {
		g.pending = nil
	}
	g.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Bindings and leases are lost with their host anyway: no fsync per
	// commit on SQLite (see sipdesk.LazyCommit).
	ctx = sipdesk.LazyCommit(ctx)
	errs := make([]error, len(batch))
	err := st.Update(ctx, func(tx sipdesk.Tx) error {
		for i, j := range batch {
			errs[i] = j.fn(tx)
			if errs[i] != nil && !cleanRefusal(errs[i]) {
				return errs[i]
			}
		}
		return nil
	})
	if err != nil && len(batch) > 1 {
		for _, j := range batch {
			j.err = st.Update(ctx, j.fn)
			close(j.done)
		}
		return
	}
	for i, j := range batch {
		j.err = err
		if err == nil {
			j.err = errs[i]
		}
		close(j.done)
	}
}

// cleanRefusal reports whether a job's error is a refusal decided before
// the job wrote anything (a channel limit or cap): the job fails alone and
// its neighbours commit, instead of the whole batch being retried one by one.
func cleanRefusal(err error) bool {
	switch sipdesk.ErrorCode(err) {
	case sipdesk.EChannelLimit, sipdesk.EChannelCap:
		return true
	}
	return false
}
