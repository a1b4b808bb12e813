package policy

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/sipdesk/sipdesk"
	"golang.org/x/sync/singleflight"
)

// Channel leases of the only edge on its store (ChannelOptions.Local:
// SQLite, where a second edge cannot share the database). Nothing else
// counts this edge's calls, so the live calls are counted in memory and
// the admission decides there, with the rules of the store path
// (sipdesk.CheckChannelUse); the lease rows are only what a restart (and
// the portal's live calls) read, so they are written behind, every
// LeaseWriteWindow, coalesced per call:
//
//   - a call acquired and released within one window is never written;
//   - a dialog state known before its lease is written rides on the insert;
//   - a flush that fails is merged back and retried on the next window.
//
// No fencing: no other edge can claim this one's channels, so a store
// that stops answering does not refuse calls. Renewals still run, so that
// the written rows of long calls stay live (the portal lists them, and a
// restart tells its previous life's calls by them); a renewal also hands
// rows of this node that no live call holds to the sweep (renewedLocal).

// LeaseWriteWindow is how often a single edge writes its lease changes.
// A call younger than this at a crash has no lease row: the next start
// cannot end it (docs/PERFORMANCE.md).
const LeaseWriteWindow = 250 * time.Millisecond

// maxLeaseWrites bounds the lease writes waiting for the store (one per
// call at most). Past it, inserts and dialog states are left out (the
// calls go on, counted in memory) and written once the queue has room;
// deletes are always queued: each is for a row that was written, so they
// are bounded by the inserts.
const maxLeaseWrites = 50000

// useKey counts live calls: account 0 is the customer's total.
type useKey struct {
	customer, account int64
	direction         string
}

type localCall struct {
	// lease is the call's row. Its Dialog is kept only while the row has
	// writes left out (skipped): they are written again whole. Otherwise
	// the dialog state is queued and dropped once written (about 1 KB a
	// call up, for the whole call, when it was kept).
	lease   sipdesk.CallLease
	skipped bool // a write of it was left out (queue full)
}

// leaseOp is what is left to write of one lease, in this order: delete
// the row, insert it (with its dialog), set its dialog.
type leaseOp struct {
	del    bool
	ins    *sipdesk.CallLease
	dialog string
}

// then is a followed by b, coalesced.
func (a leaseOp) then(b leaseOp) leaseOp {
	r := a
	if b.del {
		// An insert still queued never reached the store: the row to
		// delete exists only if a deletes it or a did not insert it.
		r = leaseOp{del: a.del || a.ins == nil}
	}
	if b.ins != nil {
		r.ins, r.dialog = b.ins, ""
	}
	if b.dialog != "" {
		if r.ins != nil {
			l := *r.ins
			l.Dialog = b.dialog
			r.ins = &l
		} else {
			r.dialog = b.dialog
		}
	}
	return r
}

func (o leaseOp) empty() bool { return !o.del && o.ins == nil && o.dialog == "" }

// localLeases is the state of the single-edge mode; its maps are guarded
// by the admission's mu.
type localLeases struct {
	calls     map[string]*localCall
	inUse     map[useKey]int
	queue     map[string]leaseOp
	flying    map[string]leaseOp // the batch being written
	skipped   int                // calls with skipped set
	full      bool               // the queue overflowed (logged once until it has room again)
	maxWrites int                // maxLeaseWrites (lower in tests)
	flushMu   sync.Mutex
	limits    limitCache
	warn      warnEvery
}

func newLocalLeases(st sipdesk.Store) *localLeases {
	l := &localLeases{calls: map[string]*localCall{}, inUse: map[useKey]int{}, queue: map[string]leaseOp{}, maxWrites: maxLeaseWrites,
		limits: limitCache{m: map[[2]int64]sipdesk.ChannelUse{}, version: -1}}
	// The store signals a config change of this process when the
	// transaction commits, before the portal's request returns: the next
	// call reads the new limits.
	l.limits.changes, _ = st.ConfigChanges()
	return l
}

// limitCache keeps the channel limit, scope and cap read for a (customer,
// SIP account), until the config changes: the store's in-process signal
// (portal, API on this process) or the config version moving (`sipdesk
// admin` from another process, polled every LeaseWriteWindow).
type limitCache struct {
	mu      sync.Mutex
	gen     uint64
	m       map[[2]int64]sipdesk.ChannelUse // counts zero
	changes <-chan struct{}
	version int64
	// A burst of calls of one account after a change reads its limits
	// once; other accounts' reads do not wait behind it.
	load singleflight.Group
}

// get returns the limits of a (customer, SIP account), reading them (at
// most for timeout) when the cache lacks them.
func (l *limitCache) get(ctx context.Context, st sipdesk.Store, timeout time.Duration, customerID, accountID int64) (sipdesk.ChannelUse, error) {
	k := [2]int64{customerID, accountID}
	l.mu.Lock()
	select {
	case <-l.changes:
		l.gen++
		clear(l.m)
	default:
	}
	u, ok := l.m[k]
	gen := l.gen
	l.mu.Unlock()
	if ok {
		return u, nil
	}
	key := strconv.FormatInt(customerID, 10) + "/" + strconv.FormatInt(accountID, 10) + "/" + strconv.FormatUint(gen, 10)
	v, err, _ := l.load.Do(key, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		var got *sipdesk.ChannelUse
		err := st.View(ctx, func(tx sipdesk.Tx) (err error) {
			got, err = tx.ChannelLimits(customerID, accountID)
			return err
		})
		if err != nil {
			return nil, err
		}
		u := *got // the counts are the memory's
		l.mu.Lock()
		if l.gen == gen { // not read across a change
			l.m[k] = u
		}
		l.mu.Unlock()
		return u, nil
	})
	if err != nil {
		return u, err
	}
	return v.(sipdesk.ChannelUse), nil
}

// poll drops the limits when the config version moved.
func (l *limitCache) poll(ctx context.Context, st sipdesk.Store) {
	v, err := st.ConfigVersion(ctx)
	if err != nil {
		return
	}
	l.mu.Lock()
	if v != l.version {
		l.version = v
		l.gen++
		clear(l.m)
	}
	l.mu.Unlock()
}

// acquireLocal admits the call in memory and queues its lease row.
func (c *ChannelAdmission) acquireLocal(ctx context.Context, in CallInfo) error {
	var acct int64
	if in.Account != nil {
		acct = in.Account.ID
	}
	u, err := c.loc.limits.get(ctx, c.st, c.opt.Timeout, in.CustomerID, acct)
	if err != nil {
		return err
	}
	started := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.loc.calls[in.CallID]; dup {
		return &sipdesk.Error{Code: sipdesk.EConflict, Message: "the call holds a channel already"}
	}
	for _, d := range sipdesk.Directions {
		if sipdesk.CountsAgainstLimit(u.ChannelScope, d) {
			u.CustomerInUse += c.loc.inUse[useKey{in.CustomerID, 0, d}]
			if acct != 0 {
				u.AccountInUse += c.loc.inUse[useKey{in.CustomerID, acct, d}]
			}
		}
	}
	if err := sipdesk.CheckChannelUse(&u, in.CustomerID, acct, in.Direction); err != nil {
		return err
	}
	lc := &localCall{lease: sipdesk.CallLease{CallID: in.CallID, CustomerID: in.CustomerID, SIPAccountID: acct,
		Direction: in.Direction, Node: c.node, StartedAt: started}}
	c.loc.count(&lc.lease, 1)
	c.loc.calls[in.CallID] = lc
	c.live[in.CallID] = c.opt.Now()
	ins := lc.lease
	c.queueLocked(in.CallID, leaseOp{ins: &ins}, lc)
	return nil
}

// countStale adds (n = 1) or takes back (n = -1) a previous life's calls
// in the in-memory counts while the start ends them (dropStale).
func (c *ChannelAdmission) countStale(ls []*sipdesk.CallLease, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range ls {
		c.loc.count(l, n)
	}
}

// count adds n live calls like l to the customer's and its SIP account's
// counts (n < 0 takes them back; c.mu held).
func (l *localLeases) count(lease *sipdesk.CallLease, n int) {
	keys := [2]useKey{{lease.CustomerID, 0, lease.Direction}, {lease.CustomerID, lease.SIPAccountID, lease.Direction}}
	for i, k := range keys {
		if i == 1 && lease.SIPAccountID == 0 {
			break
		}
		if l.inUse[k] += n; l.inUse[k] <= 0 {
			delete(l.inUse, k)
		}
	}
}

// releaseLocal frees the call's channel in memory and queues the delete.
func (c *ChannelAdmission) releaseLocal(callID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.live, callID)
	lc := c.loc.calls[callID]
	if lc == nil {
		return
	}
	delete(c.loc.calls, callID)
	c.loc.count(&lc.lease, -1)
	if lc.skipped {
		c.loc.skipped--
	}
	c.queueLocked(callID, leaseOp{del: true}, nil)
}

// saveDialogLocal keeps a live call's dialog and queues it.
func (c *ChannelAdmission) saveDialogLocal(callID, js string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	lc := c.loc.calls[callID]
	if lc == nil {
		return
	}
	c.queueLocked(callID, leaseOp{dialog: js}, lc)
	if lc.skipped {
		lc.lease.Dialog = js // for requeueSkippedLocked
	}
}

// queueLocked coalesces op into the call's queued writes (c.mu held).
func (c *ChannelAdmission) queueLocked(callID string, op leaseOp, lc *localCall) {
	q := c.loc.queue
	if cur, ok := q[callID]; ok {
		if r := cur.then(op); r.empty() {
			delete(q, callID)
		} else {
			q[callID] = r
		}
		return
	}
	if len(q) >= c.loc.maxWrites && !op.del {
		if lc != nil && !lc.skipped {
			lc.skipped = true
			c.loc.skipped++
		}
		if !c.loc.full {
			c.loc.full = true
			c.opt.Log.Warn("lease writes queue full: new calls go on without a lease row until the store takes the queue",
				"queued", len(q))
		}
		return
	}
	q[callID] = op
}

// requeueSkippedLocked queues again the calls whose writes were left out,
// once the queue has room (c.mu held): the whole row, deleted first, so
// that it is right whatever part of it was written.
func (c *ChannelAdmission) requeueSkippedLocked() {
	if c.loc.skipped == 0 || len(c.loc.queue) >= c.loc.maxWrites/2 {
		return
	}
	for id, lc := range c.loc.calls {
		if lc.skipped {
			ins := lc.lease
			c.loc.queue[id] = leaseOp{del: true, ins: &ins}
			lc.skipped, lc.lease.Dialog = false, ""
		}
	}
	c.loc.skipped, c.loc.full = 0, false
}

// flushLeases writes the queued lease changes in one transaction. When it
// fails and the store answers (one write is bad: a customer deleted…),
// the writes go one by one and the ones failing alone are dropped; when
// the store is away, they are merged back for the next window.
func (c *ChannelAdmission) flushLeases(ctx context.Context) error {
	c.loc.flushMu.Lock()
	defer c.loc.flushMu.Unlock()
	c.mu.Lock()
	c.requeueSkippedLocked()
	batch := c.loc.queue
	if len(batch) == 0 {
		c.mu.Unlock()
		return nil
	}
	c.loc.queue = make(map[string]leaseOp, len(batch))
	c.loc.flying = batch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.loc.flying = nil
		c.mu.Unlock()
	}()
	expires := time.Now().Add(c.opt.Timing.TTL)
	write := func(tx sipdesk.Tx, id string, op leaseOp) error {
		if op.del {
			if err := c.ch.ReleaseChannelTx(tx, id); err != nil {
				return err
			}
		}
		if op.ins != nil {
			l := *op.ins
			l.ExpiresAt = expires
			if err := tx.InsertLease(&l); err != nil {
				return err
			}
		}
		if op.dialog != "" {
			return c.ch.SetLeaseDialogTx(tx, id, op.dialog)
		}
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	// Leases are lost with their host anyway: no fsync (sipdesk.LazyCommit).
	err := c.st.Update(sipdesk.LazyCommit(wctx), func(tx sipdesk.Tx) error {
		for id, op := range batch {
			if err := write(tx, id, op); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		return nil
	}
	if _, perr := c.st.ConfigVersion(wctx); perr == nil && len(batch) > 1 {
		failed := map[string]leaseOp{}
		var last error
		for id, op := range batch {
			if e := c.st.Update(sipdesk.LazyCommit(wctx), func(tx sipdesk.Tx) error { return write(tx, id, op) }); e != nil {
				failed[id], last = op, e
			}
		}
		if len(failed) < len(batch) {
			for id := range failed {
				c.opt.Log.Warn("lease write dropped", "call_id", id, "error", last)
			}
			return nil
		}
		batch = failed
	}
	c.mu.Lock()
	for id, op := range batch {
		if cur, ok := c.loc.queue[id]; ok {
			op = op.then(cur)
		}
		if op.empty() {
			delete(c.loc.queue, id)
		} else {
			c.loc.queue[id] = op
		}
	}
	c.mu.Unlock()
	return err
}

// writeLoop flushes the lease writes every LeaseWriteWindow (and once
// more when ctx ends), and polls the config version for the limits.
func (c *ChannelAdmission) writeLoop(ctx context.Context) {
	t := time.NewTicker(LeaseWriteWindow)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), c.opt.Timeout)
			_ = c.flushLeases(fctx)
			cancel()
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
		c.loc.limits.poll(rctx, c.st)
		cancel()
		if err := c.flushLeases(ctx); err != nil && ctx.Err() == nil {
			if n := c.loc.warn.due(time.Now()); n >= 0 {
				c.opt.Log.Warn("lease writes failed; calls go on, kept in memory", "error", err, "queued", c.Pending(),
					"failures_since_last_warning", n)
			}
		}
	}
}

// renewedLocal takes a successful renewal's Call-IDs: rows of this node
// that no live call holds and no write queued or being written touches
// (a previous life's that the start could not list, a delete dropped)
// are handed to the sweep, which ends their calls like a dead node's.
func (c *ChannelAdmission) renewedLocal(ctx context.Context, ids []string) {
	var stale []string
	c.mu.Lock()
	for _, id := range ids {
		_, live := c.loc.calls[id]
		_, queued := c.loc.queue[id]
		_, flying := c.loc.flying[id]
		if !live && !queued && !flying {
			stale = append(stale, id)
		}
	}
	c.mu.Unlock()
	if len(stale) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	if err := c.ch.ExpireLeases(rctx, c.node, stale); err != nil {
		c.opt.Log.Warn("expire leases no call holds", "error", err)
		return
	}
	c.opt.Log.Info("leases of this node no call holds handed to the sweep", "calls", len(stale))
}

// settleLocal writes the queued lease changes, retrying until d.
func (c *ChannelAdmission) settleLocal(ctx context.Context, d time.Duration) bool {
	end := time.Now().Add(d)
	for {
		if c.flushLeases(ctx) == nil && c.Pending() == 0 {
			return true
		}
		if time.Now().After(end) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
