package policy

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/sipdesk/sipdesk"
)

// CallInfo describes a call to an Admission.
type CallInfo struct {
	CallID     string // the customer leg's Call-ID
	Direction  string // "outbound" or "inbound"
	Account    *sipdesk.SIPAccount
	CustomerID int64
	Number     string // E.164 digits dialed (outbound) or the DID (inbound)
	Node       string
}

// Admission is asked before a call is forwarded (channel limits) and told
// when it ends. Acquire's error is a sipdesk *Error whose code picks the
// refusal (EChannelLimit → 403 Channel limit reached, …). Release is called
// exactly once for every successful Acquire.
type Admission interface {
	Acquire(ctx context.Context, c CallInfo) error
	Release(ctx context.Context, c CallInfo)
}

// NoAdmission admits every call (no channel limits).
type NoAdmission struct{}

func (NoAdmission) Acquire(context.Context, CallInfo) error { return nil }
func (NoAdmission) Release(context.Context, CallInfo)       {}

// Channels is what channel-limit admission needs from the service layer
// (*app.Service); tests inject failing ones. The per-call steps run inside
// a write transaction that the admission opens on the store, so that the
// acquisitions and releases arriving together share one transaction (group
// commit) while each count-and-insert stays atomic: the steps of a batch run
// one after the other inside the single writer transaction.
type Channels interface {
	// AcquireChannelTx admits the call (inserting its lease) or refuses it
	// with EChannelLimit / EChannelCap.
	AcquireChannelTx(tx sipdesk.Tx, l *sipdesk.CallLease) error
	// ReleaseChannelTx frees a call's lease; releasing twice is harmless.
	ReleaseChannelTx(tx sipdesk.Tx, callID string) error
	// SaveCallRecordTx inserts (ID 0) or updates a call record.
	SaveCallRecordTx(tx sipdesk.Tx, r *sipdesk.CallRecord) error
	// SetLeaseDialogTx stores a call's dialog state with its lease.
	SetLeaseDialogTx(tx sipdesk.Tx, callID, dialog string) error
	// RenewLeases extends the leases of a node's calls and lists the
	// Call-IDs it extended.
	RenewLeases(ctx context.Context, node string) ([]string, error)
	// ClaimLostCalls claims expired leases of other nodes for node and
	// closes their records (node_lost).
	ClaimLostCalls(ctx context.Context, node string, limit int) ([]*sipdesk.LostCall, error)
	// CloseOrphanRecords closes records left in progress without a lease.
	CloseOrphanRecords(ctx context.Context) (int, error)
	// ExpireLeases makes these leases of node expire now.
	ExpireLeases(ctx context.Context, node string, callIDs []string) error
	// ActiveCalls lists live leases (0: every customer).
	ActiveCalls(ctx context.Context, customerID int64) ([]*sipdesk.CallLease, error)
}

// CallRecorder stores call records, one or several in a transaction
// (ChannelAdmission is one).
type CallRecorder interface {
	SaveCallRecord(ctx context.Context, r *sipdesk.CallRecord) error
	SaveCallRecords(ctx context.Context, rs []*sipdesk.CallRecord) error
}

// CallEnder is what the admission asks of the SIP layer (the b2bua, wired
// by the edge server): end this node's calls, or send BYE on the legs of a
// call another node lost.
type CallEnder interface {
	// EndCalls ends the calls with these customer-leg Call-IDs: BYE on
	// both legs of an answered call, CANCEL and 503 for a ringing one; the
	// record's reason is reason. It does not wait.
	EndCalls(callIDs []string, reason string)
	// ByeLost sends BYE on the legs of a call whose node is gone and
	// returns when they are answered or ctx is done.
	ByeLost(ctx context.Context, callID string, d Dialog)
}

// Reasons the admission ends calls with (call record reason, docs/OPERATIONS.md).
const (
	// EndFenced: the node could not renew its leases for LeaseFence.
	EndFenced = "fenced"
	// EndLeaseLost: a renewal found the call's lease gone (another node
	// claimed it while this node was cut off).
	EndLeaseLost = "lease_lost"
)

// ChannelOptions tune a ChannelAdmission; zero values take the defaults.
type ChannelOptions struct {
	// Timing of renewals, fencing and sweeps (sipdesk.LeaseTimingFor(0)).
	// Its TTL must be the service's (app.Options.LeaseTTL).
	Timing sipdesk.LeaseTiming
	// Timeout bounds each renewal, retried release, sweep and call record
	// save (default 2s). An acquisition is bounded by its group commit
	// (CommitTimeout, 1.5 s, queueing included); past it the call is
	// refused with 503 (fail closed). Should the commit itself have gone
	// through unseen, the lease is released again (Acquire).
	Timeout time.Duration
	Log     *slog.Logger
	Now     func() time.Time // monotonic clock readings (default time.Now)
	// Local: this edge is the only one on its store (SQLite): the live
	// calls are counted in memory and the lease rows written behind every
	// LeaseWriteWindow, without fencing (channels_local.go). Several
	// edges on one store (PostgreSQL) leave it false: each acquisition
	// counts and inserts its lease in a store transaction.
	Local bool
}

// ChannelAdmission is the Admission of channel limits: one lease in the
// store per live call, acquired before anything goes to the carrier,
// released once when the call ends, renewed every Timing.Renew while the
// node lives. When the store cannot be reached, Acquire fails (the edge
// answers 503 with Retry-After) and a failed Release is retried until the
// store takes it.
//
// Self-fencing: a renewal sets every lease of the node to expire TTL after
// the renewal started. When no renewal has succeeded for Timing.Fence
// (measured from the start of the last successful one, each bounded by
// Timeout), the node ends all its calls and refuses new ones until a
// renewal works again: TTL-Fence before any other node may claim those
// leases, so the carrier never sees more calls than the limit. A renewal
// that finds some of its leases gone ends those calls (EndLeaseLost).
//
// Sweep: every Timing.Sweep the node claims expired leases of dead nodes
// (ClaimLostCalls: exactly one node gets each), sends BYE on their legs
// from the dialog state stored with the lease, and frees them.
//
// With ChannelOptions.Local (the only edge on its store) the calls are
// counted in memory, the rows written behind and nothing is fenced: see
// channels_local.go.
type ChannelAdmission struct {
	st   sipdesk.Store
	ch   Channels
	node string
	opt  ChannelOptions

	gc GroupCommit // concurrent acquisitions and releases share a transaction

	mu   sync.Mutex
	live map[string]time.Time // Call-IDs holding a lease from this node → when acquired
	// acquiring are the Call-IDs whose lease is being written: dropStale
	// must not take a lease it lists for a previous life's while its
	// acquisition has not returned yet.
	acquiring map[string]bool
	pending   map[string]bool // releases the store did not take yet
	// born: leases of this node that started before it are a previous
	// life's (dropStale); a call of this life that ended while its release
	// is in flight or failed is in neither live nor acquiring. The two maps
	// still guard the calls up: a lease's start is wall-clock time from the
	// store, which a clock step can move before born.
	born   time.Time
	okAt   time.Time // start of the last successful renewal
	fenced bool      // calls ended; refusing until a renewal succeeds
	ender  CallEnder
	kick   chan struct{}
	warn   warnEvery
	loc    *localLeases // Local mode only
}

// NewChannels makes the channel-limit Admission of node on top of ch
// (normally the *app.Service), running its steps in transactions of st.
func NewChannels(st sipdesk.Store, ch Channels, node string, opt ChannelOptions) *ChannelAdmission {
	if t := opt.Timing; t.TTL <= 0 || t.Renew <= 0 || t.Fence <= 0 || t.Sweep <= 0 || t.Fence >= t.TTL {
		opt.Timing = sipdesk.LeaseTimingFor(t.TTL)
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 2 * time.Second
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	opt.Log = opt.Log.With("component", "channels", "node", node)
	c := &ChannelAdmission{st: st, ch: ch, node: node, opt: opt, live: map[string]time.Time{}, acquiring: map[string]bool{}, pending: map[string]bool{},
		born: opt.Now(), okAt: opt.Now(), kick: make(chan struct{}, 1)}
	if opt.Local {
		c.loc = newLocalLeases(st)
	}
	return c
}

// SetEnder sets who ends calls for the admission (the edge's b2bua); call
// it before Run.
func (c *ChannelAdmission) SetEnder(e CallEnder) {
	c.mu.Lock()
	c.ender = e
	c.mu.Unlock()
}

var errFenced = &sipdesk.Error{Code: sipdesk.EUnavailable, Message: "channel leases cannot be renewed (fenced)"}

// fencedNow tells whether calls must be refused: fenced, or past the fence
// deadline before the loop noticed.
func (c *ChannelAdmission) fencedNow() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fenced || c.opt.Now().Sub(c.okAt) >= c.opt.Timing.Fence
}

// Fenced reports whether the node refuses calls because it cannot renew
// its leases (readiness); a Local one never does.
func (c *ChannelAdmission) Fenced() bool { return c.loc == nil && c.fencedNow() }

// Acquire inserts the call's lease or returns the refusal (Local: counts
// it in memory and queues the lease).
func (c *ChannelAdmission) Acquire(ctx context.Context, in CallInfo) error {
	if c.loc != nil {
		return c.acquireLocal(ctx, in)
	}
	if c.fencedNow() {
		return errFenced
	}
	l := &sipdesk.CallLease{CallID: in.CallID, CustomerID: in.CustomerID, Direction: in.Direction, Node: c.node}
	if in.Account != nil {
		l.SIPAccountID = in.Account.ID
	}
	c.mu.Lock()
	c.acquiring[in.CallID] = true
	c.mu.Unlock()
	err := c.gc.Do(c.st, func(tx sipdesk.Tx) error { return c.ch.AcquireChannelTx(tx, l) })
	c.mu.Lock()
	delete(c.acquiring, in.CallID)
	if err == nil && !c.fenced {
		c.live[in.CallID] = c.opt.Now() // in the same lock as the delete: dropStale sees one or the other
	}
	fenced := c.fenced
	c.mu.Unlock()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			// The deadline ended the transaction, perhaps while its commit
			// went through unseen: release the lease that may exist
			// (harmless if it does not), or it would be renewed for this
			// node's life. (A job dropped past its deadline never ran.)
			c.gc.Post(c.st, func(tx sipdesk.Tx) error { return c.ch.ReleaseChannelTx(tx, in.CallID) },
				func(err error) { c.releaseFailed(in.CallID, err) })
		}
		return err
	}
	if fenced { // fenced while the lease was being written
		c.gc.Post(c.st, func(tx sipdesk.Tx) error { return c.ch.ReleaseChannelTx(tx, in.CallID) },
			func(err error) { c.releaseFailed(in.CallID, err) })
		return errFenced
	}
	return nil
}

// Release frees the call's lease. It does not wait: the delete joins the next group commit (a call's end needs no answer from the
// store, and batching releases with acquisitions halves the transactions).
// When the store fails, the release is queued and retried.
func (c *ChannelAdmission) Release(ctx context.Context, in CallInfo) {
	if c.loc != nil {
		c.releaseLocal(in.CallID)
		return
	}
	c.mu.Lock()
	delete(c.live, in.CallID)
	c.mu.Unlock()
	c.gc.Post(c.st, func(tx sipdesk.Tx) error { return c.ch.ReleaseChannelTx(tx, in.CallID) },
		func(err error) { c.releaseFailed(in.CallID, err) })
}

// SaveDialog stores the dialog state of a live call with its lease
// (written behind; a failure is logged: the call goes on, only a node
// death would leave its legs without BYE).
func (c *ChannelAdmission) SaveDialog(callID string, d Dialog) {
	if c.loc != nil {
		if js, err := json.Marshal(d); err == nil {
			c.saveDialogLocal(callID, string(js))
		}
		return
	}
	c.mu.Lock()
	_, live := c.live[callID]
	c.mu.Unlock()
	if !live {
		return
	}
	js, err := json.Marshal(d)
	if err != nil {
		return
	}
	c.gc.Post(c.st, func(tx sipdesk.Tx) error { return c.ch.SetLeaseDialogTx(tx, callID, string(js)) }, func(err error) {
		if err != nil {
			c.opt.Log.Warn("dialog state not stored", "call_id", callID, "error", err)
		}
	})
}

// release frees one lease in its own transaction (retries, stale leases).
func (c *ChannelAdmission) release(ctx context.Context, callID string) error {
	return c.st.Update(ctx, func(tx sipdesk.Tx) error { return c.ch.ReleaseChannelTx(tx, callID) })
}

// releaseFailed queues a release the store did not take for the retry loop.
func (c *ChannelAdmission) releaseFailed(callID string, err error) {
	if err == nil {
		return
	}
	c.opt.Log.Warn("release channel failed; will retry", "call_id", callID, "error", err)
	c.mu.Lock()
	c.pending[callID] = true
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// SaveCallRecords saves several call records in one transaction; inserted
// records get their IDs.
func (c *ChannelAdmission) SaveCallRecords(ctx context.Context, rs []*sipdesk.CallRecord) error {
	ctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	ids := make([]int64, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	return c.st.Update(ctx, func(tx sipdesk.Tx) error {
		for i, r := range rs {
			r.ID = ids[i] // a retried transaction starts from scratch
			if err := c.ch.SaveCallRecordTx(tx, r); err != nil {
				return err
			}
		}
		return nil
	})
}

// SaveCallRecord saves one call record.
func (c *ChannelAdmission) SaveCallRecord(ctx context.Context, r *sipdesk.CallRecord) error {
	ctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	id := r.ID
	return c.st.Update(ctx, func(tx sipdesk.Tx) error {
		r.ID = id // a retried transaction starts from scratch
		return c.ch.SaveCallRecordTx(tx, r)
	})
}

// Live is the number of leases this node holds.
func (c *ChannelAdmission) Live() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.live)
}

// Pending is the number of releases waiting for the store (Local: of
// lease writes).
func (c *ChannelAdmission) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loc != nil {
		return len(c.loc.queue) + c.loc.skipped
	}
	return len(c.pending)
}

// Flush writes the lease changes posted so far now rather than at the next
// window (Local) or group commit, waiting at most Timeout: when an operator
// is told a call ended, Live calls no longer lists it.
func (c *ChannelAdmission) Flush(ctx context.Context) bool {
	if c.loc != nil {
		fctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
		defer cancel()
		return c.flushLeases(fctx) == nil
	}
	return c.gc.Settle(c.opt.Timeout)
}

// Settle waits, at most d, until the releases posted so far are committed
// and retries the failed ones once (graceful stop); it reports whether
// none is left.
func (c *ChannelAdmission) Settle(ctx context.Context, d time.Duration) bool {
	if c.loc != nil {
		return c.settleLocal(ctx, d)
	}
	c.gc.Settle(d)
	c.retryReleases(ctx)
	return c.Pending() == 0
}

// Run drops the leases a previous life of this node left behind, then
// until ctx is done: renews this node's leases (retrying failed releases
// first), fences the node when renewals fail for Timing.Fence, and sweeps
// the expired leases of dead nodes. The three run apart, so that a renewal
// hanging on the store never delays the fence. The edge server runs it.
func (c *ChannelAdmission) Run(ctx context.Context) {
	c.dropStale(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { c.renewLoop(ctx) })
	wg.Go(func() { c.sweepLoop(ctx) })
	if c.loc != nil {
		wg.Go(func() { c.writeLoop(ctx) })
	}
	tick := time.NewTicker(min(time.Second, c.opt.Timing.Fence/30))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-tick.C:
			c.checkFence()
		}
	}
}

// checkFence ends every call of the node once its leases have gone
// unrenewed for Timing.Fence.
func (c *ChannelAdmission) checkFence() {
	c.mu.Lock()
	since := c.opt.Now().Sub(c.okAt)
	if c.loc != nil || c.fenced || since < c.opt.Timing.Fence { // Local: nothing else can take the channels
		c.mu.Unlock()
		return
	}
	c.fenced = true
	ids := make([]string, 0, len(c.live))
	for id := range c.live {
		ids = append(ids, id)
	}
	ender := c.ender
	c.mu.Unlock()
	c.opt.Log.Error("channel leases not renewed: ending this node's calls and refusing new ones until the store answers (fenced)",
		"since_last_renewal", since.Round(time.Millisecond).String(), "calls", len(ids), "lease_ttl", c.opt.Timing.TTL.String())
	if ender != nil && len(ids) > 0 {
		ender.EndCalls(ids, EndFenced)
	}
}

// renewLoop renews every Timing.Renew, every second after a failure.
func (c *ChannelAdmission) renewLoop(ctx context.Context) {
	t := time.NewTimer(c.opt.Timing.Renew)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
		c.retryReleases(ctx)
		next := c.opt.Timing.Renew
		if !c.renew(ctx) {
			next = min(next, time.Second)
		}
		t.Reset(next)
	}
}

// renew runs one renewal and reports whether it succeeded.
func (c *ChannelAdmission) renew(ctx context.Context) bool {
	start := c.opt.Now()
	rctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	ids, err := c.ch.RenewLeases(rctx, c.node)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			if n := c.warn.due(start); n >= 0 {
				c.opt.Log.Warn("renew leases failed", "error", err, "live", c.Live(), "failures_since_last_warning", n)
			}
		}
		return false
	}
	if c.loc != nil {
		// No other node claims this one's leases: nothing was lost, and
		// the sweep may run again (it waits for a renewal within Fence,
		// so that it never claims this node's own rows).
		c.mu.Lock()
		if start.After(c.okAt) {
			c.okAt = start
		}
		c.mu.Unlock()
		c.renewedLocal(ctx, ids)
		return true
	}
	renewed := make(map[string]bool, len(ids))
	for _, id := range ids {
		renewed[id] = true
	}
	c.mu.Lock()
	if start.After(c.okAt) {
		c.okAt = start
	}
	wasFenced := c.fenced
	c.fenced = false
	var lost []string
	for id, at := range c.live {
		// A lease committed before the renewal started was visible to it.
		if !renewed[id] && at.Before(start) {
			lost = append(lost, id)
		}
	}
	ender := c.ender
	c.mu.Unlock()
	if wasFenced {
		c.opt.Log.Info("channel leases renewed again: admitting calls")
	}
	if len(lost) > 0 {
		c.opt.Log.Warn("leases taken by another node while this one was cut off: ending their calls", "calls", len(lost))
		if ender != nil {
			ender.EndCalls(lost, EndLeaseLost)
		}
	}
	return true
}

// sweepLoop claims and ends the calls of dead nodes every Timing.Sweep, and
// closes orphaned call records every minute.
func (c *ChannelAdmission) sweepLoop(ctx context.Context) {
	t := time.NewTicker(c.opt.Timing.Sweep)
	defer t.Stop()
	var lastOrphans time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if c.fencedNow() {
			continue
		}
		for c.sweep(ctx) {
		}
		if now := c.opt.Now(); now.Sub(lastOrphans) >= time.Minute {
			lastOrphans = now
			rctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
			if n, err := c.ch.CloseOrphanRecords(rctx); err == nil && n > 0 {
				c.opt.Log.Info("call records left in progress closed", "records", n)
			}
			cancel()
		}
	}
}

// sweepBatch bounds the lost calls claimed at once.
const sweepBatch = 100

// sweep claims a batch of lost calls, sends their BYEs, frees their leases;
// it reports whether a full batch was claimed (more may wait).
func (c *ChannelAdmission) sweep(ctx context.Context) bool {
	rctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	lost, err := c.ch.ClaimLostCalls(rctx, c.node, sweepBatch)
	cancel()
	if err != nil || len(lost) == 0 {
		if err != nil && ctx.Err() == nil {
			c.opt.Log.Warn("claim lost calls", "error", err)
		}
		return false
	}
	c.mu.Lock()
	ender := c.ender
	c.mu.Unlock()
	// The BYEs go out together; the leases are freed once the carrier has
	// had them (answered, or a few seconds), so the channel is never free
	// while the carrier still counts the call.
	bctx, bcancel := context.WithTimeout(ctx, min(4*time.Second, c.opt.Timing.TTL/2))
	var wg sync.WaitGroup
	for _, l := range lost {
		var d Dialog
		if l.Dialog != "" && json.Unmarshal([]byte(l.Dialog), &d) == nil && ender != nil {
			wg.Go(func() { ender.ByeLost(bctx, l.CallID, d) })
		}
	}
	wg.Wait()
	bcancel()
	for _, l := range lost {
		rctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
		if err := c.release(rctx, l.CallID); err != nil {
			c.releaseFailed(l.CallID, err)
		}
		cancel()
		c.opt.Log.Warn("call of a lost node ended", "call_id", l.CallID, "lost_node", l.LostNode, "had_dialog", l.Dialog != "")
	}
	return len(lost) == sweepBatch
}

func (c *ChannelAdmission) retryReleases(ctx context.Context) {
	c.mu.Lock()
	ids := make([]string, 0, len(c.pending))
	for id := range c.pending {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	for _, id := range ids {
		c.mu.Lock()
		_, again := c.live[id] // admitted again since (the same Call-ID): keep its lease
		c.mu.Unlock()
		if again {
			c.mu.Lock()
			delete(c.pending, id)
			c.mu.Unlock()
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
		err := c.release(rctx, id)
		cancel()
		if err != nil {
			return // the store is still away
		}
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		c.opt.Log.Info("channel released after retry", "call_id", id)
	}
}

// dropStale hands the leases of this node name that started before this
// process and that it does not hold to the sweep: left by a crash and a
// restart under the same name, their calls are ended like a dead node's
// (BYE from the stored dialog, records node_lost) instead of being renewed
// for ever.
func (c *ChannelAdmission) dropStale(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	ls, err := c.ch.ActiveCalls(rctx, 0)
	if err != nil {
		c.opt.Log.Warn("list leases at start", "error", err)
		return
	}
	var stale []string
	var held []*sipdesk.CallLease
	c.mu.Lock()
	for _, l := range ls {
		if _, mine := c.live[l.CallID]; l.Node == c.node && !mine && !c.acquiring[l.CallID] && l.StartedAt.Before(c.born) {
			stale = append(stale, l.CallID)
			held = append(held, l)
		}
	}
	c.mu.Unlock()
	if len(stale) == 0 {
		return
	}
	if c.loc != nil {
		// The carrier still counts them until their BYEs: so does the
		// in-memory count (the store path counts their rows).
		c.countStale(held, 1)
		defer c.countStale(held, -1)
	}
	if err := c.ch.ExpireLeases(rctx, c.node, stale); err != nil {
		c.opt.Log.Warn("expire leases of a previous life", "error", err)
		return
	}
	c.opt.Log.Info("calls of this node's previous life handed to the sweep", "calls", len(stale))
	for c.sweep(ctx) {
	}
}

// warnEvery lets a repeated warning through at most once per 10 s and
// counts the ones held back.
type warnEvery struct {
	mu     sync.Mutex
	last   time.Time
	missed int
}

// due reports the number of warnings held back since the last one, or -1
// when this one is held back too.
func (w *warnEvery) due(now time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.last.IsZero() && now.Sub(w.last) < 10*time.Second {
		w.missed++
		return -1
	}
	n := w.missed
	w.last, w.missed = now, 0
	return n
}
