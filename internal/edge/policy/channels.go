package policy

import (
	"context"
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
	// RenewLeases extends the leases of a node's calls and drops the
	// expired leases of dead nodes.
	RenewLeases(ctx context.Context, node string) error
	// ActiveCalls lists live leases (0: every customer).
	ActiveCalls(ctx context.Context, customerID int64) ([]*sipdesk.CallLease, error)
}

// CallRecorder stores call records, one or several in a transaction
// (ChannelAdmission is one).
type CallRecorder interface {
	SaveCallRecord(ctx context.Context, r *sipdesk.CallRecord) error
	SaveCallRecords(ctx context.Context, rs []*sipdesk.CallRecord) error
}

// ChannelOptions tune a ChannelAdmission; zero values take the defaults.
type ChannelOptions struct {
	// Renew is how often this node's leases are renewed (sipdesk.LeaseRenew).
	Renew time.Duration
	// Timeout bounds each renewal, retried release and call record save
	// (default 2s). An acquisition is bounded by its group commit
	// (CommitTimeout, 1.5 s, queueing included); past it the call is
	// refused with 503 (fail closed). Should the commit itself have gone
	// through unseen, the lease is released again (Acquire).
	Timeout time.Duration
	Log     *slog.Logger
}

// ChannelAdmission is the Admission of channel limits: one lease in the
// store per live call, acquired before anything goes to the carrier,
// released once when the call ends, renewed every Renew while the node
// lives. When the store cannot be reached, Acquire fails (the edge answers
// 503 with Retry-After) and a failed Release is retried by the renew loop
// until the store takes it.
type ChannelAdmission struct {
	st   sipdesk.Store
	ch   Channels
	node string
	opt  ChannelOptions

	gc GroupCommit // concurrent acquisitions and releases share a transaction

	mu      sync.Mutex
	live    map[string]bool // Call-IDs holding a lease from this node
	pending map[string]bool // releases the store did not take yet
	kick    chan struct{}
}

// NewChannels makes the channel-limit Admission of node on top of ch
// (normally the *app.Service), running its steps in transactions of st.
func NewChannels(st sipdesk.Store, ch Channels, node string, opt ChannelOptions) *ChannelAdmission {
	if opt.Renew <= 0 {
		opt.Renew = sipdesk.LeaseRenew
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 2 * time.Second
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	opt.Log = opt.Log.With("component", "channels", "node", node)
	return &ChannelAdmission{st: st, ch: ch, node: node, opt: opt, live: map[string]bool{}, pending: map[string]bool{}, kick: make(chan struct{}, 1)}
}

// Acquire inserts the call's lease or returns the refusal.
func (c *ChannelAdmission) Acquire(_ context.Context, in CallInfo) error {
	l := &sipdesk.CallLease{CallID: in.CallID, CustomerID: in.CustomerID, Direction: in.Direction, Node: c.node}
	if in.Account != nil {
		l.SIPAccountID = in.Account.ID
	}
	if err := c.gc.Do(c.st, func(tx sipdesk.Tx) error { return c.ch.AcquireChannelTx(tx, l) }); err != nil {
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
	c.mu.Lock()
	c.live[in.CallID] = true
	c.mu.Unlock()
	return nil
}

// Release frees the call's lease. It does not wait: the delete joins the next group commit (a call's end needs no answer from the
// store, and batching releases with acquisitions halves the transactions).
// When the store fails, the release is queued and retried.
func (c *ChannelAdmission) Release(ctx context.Context, in CallInfo) {
	c.mu.Lock()
	delete(c.live, in.CallID)
	c.mu.Unlock()
	c.gc.Post(c.st, func(tx sipdesk.Tx) error { return c.ch.ReleaseChannelTx(tx, in.CallID) },
		func(err error) { c.releaseFailed(in.CallID, err) })
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

// Pending is the number of releases waiting for the store.
func (c *ChannelAdmission) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// Run drops the leases a previous life of this node left behind, then
// renews this node's leases every Renew and retries failed releases, until
// ctx is done. The edge server runs it.
func (c *ChannelAdmission) Run(ctx context.Context) {
	c.dropStale(ctx)
	t := time.NewTicker(c.opt.Renew)
	defer t.Stop()
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.renew(ctx)
		case <-retry.C:
			c.retryReleases(ctx)
		case <-c.kick:
		}
	}
}

func (c *ChannelAdmission) renew(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	if err := c.ch.RenewLeases(rctx, c.node); err != nil && ctx.Err() == nil {
		c.opt.Log.Warn("renew leases failed", "error", err, "live", c.Live())
	}
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
		again := c.live[id] // admitted again since (the same Call-ID): keep its lease
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

// dropStale releases leases owned by this node name that this process does
// not hold: left by a crash and a restart under the same name, they would
// otherwise be renewed for ever.
func (c *ChannelAdmission) dropStale(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	ls, err := c.ch.ActiveCalls(rctx, 0)
	if err != nil {
		c.opt.Log.Warn("list leases at start", "error", err)
		return
	}
	for _, l := range ls {
		c.mu.Lock()
		mine := c.live[l.CallID]
		c.mu.Unlock()
		if l.Node != c.node || mine {
			continue
		}
		if err := c.release(rctx, l.CallID); err == nil {
			c.opt.Log.Info("stale lease dropped", "call_id", l.CallID)
		}
	}
}
