package policy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sipdesk/sipdesk"
)

// GroupCommit runs the store writes of concurrent requests in one
// transaction (group commit). A request still waits for its own commit, so
// a 200 to REGISTER keeps meaning "stored" and a store failure still gets
// 503; what changes is that 50 REGISTERs arriving together cost one
// transaction (one commit on SQLite, one round trip of BEGIN/COMMIT on
// PostgreSQL) instead of 50. Its commits are lazy (sipdesk.LazyCommit).
//
// One committer goroutine runs the transactions and stays while writes keep
// coming: SQLite's (transpiled C) frames need a deep stack, and growing the
// stack of every request goroutine that happened to lead a batch cost ~10 %
// of the CPU at 1,000 calls/s. The zero value is ready to use.
type GroupCommit struct {
	mu      sync.Mutex
	pending []*gcJob
	busy    bool          // the committer goroutine runs
	kick    chan struct{} // wakes an idle committer (made on first use)
	open    atomic.Int64  // jobs submitted and not finished
}

type gcJob struct {
	fn       func(sipdesk.Tx) error
	err      error
	done     chan struct{}
	after    func(error) // posted jobs: called with the outcome instead of a waiter
	deadline time.Time   // the job fails (unavailable) unless committed by then
}

// CommitTimeout is how long a write may wait for its commit, queueing
// included: past it the job fails (a call or REGISTER gets 503), so that a
// database that stops answering (packets hang) costs a request at most this
// long, under the 2 s the edge promises. A job is never started after its
// deadline, and a transaction never runs past the earliest deadline of its
// jobs: a waiter does not give up on a job that could still commit.
const CommitTimeout = 1500 * time.Millisecond

// errAbandoned is a job's answer when its waiter gave up (deadline) before
// the job ran: it writes nothing.
var errAbandoned = errors.New("policy: the waiter gave up before the write ran")

// errCommitTimeout is the outcome of a job whose deadline passed before it
// could run.
var errCommitTimeout = &sipdesk.Error{Code: sipdesk.EUnavailable, Message: "the store did not answer in time"}

// maxGroup bounds the writes of one transaction.
const maxGroup = 256

// gcLinger is how long an idle committer waits for more writes before it
// exits.
const gcLinger = 200 * time.Millisecond

// Do runs fn inside a store write transaction shared with the writes that
// are queued at the same moment, and returns fn's outcome. fn may run more
// than once (like in Store.Update) and must not keep state between runs.
func (g *GroupCommit) Do(st sipdesk.Store, fn func(sipdesk.Tx) error) error {
	j := &gcJob{fn: fn, done: make(chan struct{}), deadline: time.Now().Add(CommitTimeout)}
	g.submit(st, j)
	<-j.done
	return j.err
}

// Post queues fn like Do but does not wait: after receives its outcome (on
// the committer goroutine, so it must be quick).
func (g *GroupCommit) Post(st sipdesk.Store, fn func(sipdesk.Tx) error, after func(error)) {
	g.submit(st, &gcJob{fn: fn, done: make(chan struct{}), after: after, deadline: time.Now().Add(CommitTimeout)})
}

func (g *GroupCommit) submit(st sipdesk.Store, j *gcJob) {
	g.open.Add(1)
	g.mu.Lock()
	if g.kick == nil {
		g.kick = make(chan struct{}, 1)
	}
	g.pending = append(g.pending, j)
	if !g.busy {
		g.busy = true
		g.mu.Unlock()
		go g.run(st)
		return
	}
	g.mu.Unlock()
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// run commits batches until no write has come for gcLinger.
func (g *GroupCommit) run(st sipdesk.Store) {
	idle := time.NewTimer(gcLinger)
	defer idle.Stop()
	for {
		g.mu.Lock()
		n := len(g.pending)
		g.mu.Unlock()
		if n > 0 {
			g.commitNext(st)
			continue
		}
		idle.Reset(gcLinger)
		select {
		case <-g.kick:
		case <-idle.C:
			g.mu.Lock()
			if len(g.pending) == 0 {
				g.busy = false
				g.mu.Unlock()
				return
			}
			g.mu.Unlock()
		}
	}
}

// commitNext commits the queued jobs (up to maxGroup) in one transaction
// bounded by the earliest deadline among them; jobs already past theirs
// fail without running. When the transaction fails, each job is retried on
// its own within its own deadline, so one bad write does not fail its
// neighbours (the retries run in submission order, so each still ends by
// its deadline).
func (g *GroupCommit) commitNext(st sipdesk.Store) {
	g.mu.Lock()
	n := min(len(g.pending), maxGroup)
	batch := g.pending[:n:n]
	g.pending = g.pending[n:]
	if len(g.pending) == 0 {
		g.pending = nil
	}
	g.mu.Unlock()
	now := time.Now()
	live := batch[:0:0]
	for _, j := range batch {
		if now.Before(j.deadline) {
			live = append(live, j)
		} else {
			g.finish(j, errCommitTimeout)
		}
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), live[0].deadline) // the earliest: jobs queue in order
	defer cancel()
	// Bindings and leases are lost with their host anyway: no fsync per
	// commit on SQLite (see sipdesk.LazyCommit).
	ctx = sipdesk.LazyCommit(ctx)
	errs := make([]error, len(live))
	err := st.Update(ctx, func(tx sipdesk.Tx) error {
		for i, j := range live {
			errs[i] = j.fn(tx)
			if errs[i] != nil && !cleanRefusal(errs[i]) {
				return errs[i]
			}
		}
		return nil
	})
	for i, j := range live {
		switch {
		case err != nil && len(live) > 1:
			g.finish(j, alone(st, j))
		case err != nil:
			g.finish(j, err)
		default:
			g.finish(j, errs[i])
		}
	}
}

// alone runs one job in its own transaction, bounded by its deadline.
func alone(st sipdesk.Store, j *gcJob) error {
	if !time.Now().Before(j.deadline) {
		return errCommitTimeout
	}
	ctx, cancel := context.WithDeadline(context.Background(), j.deadline)
	defer cancel()
	return st.Update(sipdesk.LazyCommit(ctx), j.fn)
}

// finish hands a job its outcome.
func (g *GroupCommit) finish(j *gcJob, err error) {
	j.err = err
	close(j.done)
	if j.after != nil {
		j.after(err)
	}
	g.open.Add(-1)
}

// Settle waits until every submitted job has finished (tests), at most d.
func (g *GroupCommit) Settle(d time.Duration) bool { return Drained(&g.open, d) }

// Drained waits until n is 0, at most d, and reports whether it got there.
func Drained(n *atomic.Int64, d time.Duration) bool {
	end := time.Now().Add(d)
	for n.Load() > 0 {
		if time.Now().After(end) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

// cleanRefusal reports whether a job's error is a refusal decided before
// the job wrote anything (a channel limit or cap, a contact limit): the job fails alone and
// its neighbours commit, instead of the whole batch being retried one by one.
func cleanRefusal(err error) bool {
	if errors.Is(err, errAbandoned) {
		return true
	}
	switch sipdesk.ErrorCode(err) {
	case sipdesk.EChannelLimit, sipdesk.EChannelCap, sipdesk.SIPTooManyContacts:
		return true
	}
	return false
}
