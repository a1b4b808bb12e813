// Package policy is everything the SIP layers of the edge ask of the rest
// of sipdesk: the configuration snapshot (accounts, IP table, DIDs,
// customers, Caller ID rules) that requests are answered from, channel
// admission (leases), call records and the store of bindings. Protocol
// packages see it through the Policy interface and get values back; only
// this package touches the store.
package policy

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Policy is the one interface between the SIP layers and everything else.
type Policy interface {
	// Config is the configuration to answer a request from: read it once
	// per request, it is immutable.
	Config() *Snapshot
	// AdmitCall acquires the call's channel or returns the refusal (a
	// sipdesk error: EChannelLimit, EChannelCap, or unavailable).
	AdmitCall(ctx context.Context, c CallInfo) error
	// ReleaseCall frees an admitted call's channel, exactly once per call.
	ReleaseCall(ctx context.Context, c CallInfo)
	// SaveDialog stores an admitted call's dialog state once it is
	// confirmed (written behind), for another edge to end it if this one
	// dies.
	SaveDialog(callID string, d Dialog)
	// Record queues the call record of attempt key as it is now.
	Record(key any, rec sipdesk.CallRecord, final bool)
	// SaveBindings stores a change of an account's bindings and waits for
	// it; PostBindings queues it (write-behind) and calls after with the
	// outcome.
	SaveBindings(c BindingChange) error
	PostBindings(c BindingChange, after func(error))
	// RegisterBindings stores a REGISTER's change and waits for it (at
	// most until ctx ends), refusing it with SIPTooManyContacts when it
	// would leave the account more than maxContacts live contacts (0: no
	// limit); it returns the account's live bindings after the change,
	// every edge's. The check and the write share one transaction under
	// the account's lock, so the limit holds across edges.
	RegisterBindings(ctx context.Context, c BindingChange, maxContacts int) ([]*sipdesk.Registration, error)
	// StoredBindings are the live bindings the store holds for an account
	// (0: all), whichever node wrote them.
	StoredBindings(ctx context.Context, accountID int64) ([]*sipdesk.Registration, error)
}

// BindingChange is what one REGISTER (or a config change) does to an
// account's bindings.
type BindingChange struct {
	AccountID int64
	All       bool     // delete every binding of the account first
	Deletes   []string // contacts to delete
	Puts      []*sipdesk.Registration
}

// Options of an Engine.
type Options struct {
	// Admission decides channel limits (NoAdmission when nil).
	Admission Admission
	// Records stores call records (none when nil).
	Records CallRecorder
	// Background runs for the engine's life (the admission's lease
	// renewal: ChannelAdmission.Run).
	Background func(ctx context.Context)
	// PollInterval is the fallback config version check (default 1s): the
	// store signals changes (in process on SQLite, LISTEN/NOTIFY on
	// PostgreSQL); the poll catches what no signal reports, such as
	// `sipdesk admin` writing the SQLite file from another process.
	PollInterval time.Duration
	// NodeTTL: StoredBindings of one account leave out the bindings held
	// by nodes whose heartbeat is older than this (0: keep them all).
	NodeTTL time.Duration
	Log     *slog.Logger
	Now     func() time.Time
}

// Engine is the Policy of one edge node on a store.
type Engine struct {
	st        sipdesk.Store
	opt       Options
	snap      atomic.Pointer[Snapshot]
	regWrites GroupCommit
	recs      *RecordWriter
	onChange  func(ctx context.Context, old, cur *Snapshot)
	// applied is the version whose snapshot is in use and whose OnChange
	// has run: what was invalidated is gone once it reads that version.
	applied atomic.Int64
}

// New makes the Engine of a node on st.
func New(st sipdesk.Store, opt Options) *Engine {
	if opt.Admission == nil {
		opt.Admission = NoAdmission{}
	}
	if opt.PollInterval <= 0 {
		opt.PollInterval = time.Second
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	e := &Engine{st: st, opt: opt, recs: NewRecordWriter(opt.Records, opt.Log)}
	e.snap.Store(emptySnapshot())
	e.applied.Store(-1)
	return e
}

// OnChange sets the function called after a new snapshot replaced old
// (the registrar drops the bindings the change invalidates).
func (e *Engine) OnChange(f func(ctx context.Context, old, cur *Snapshot)) { e.onChange = f }

// AppliedVersion is the config version applied in full: its snapshot is
// in use and the bindings it invalidated are dropped (-1 before the first).
func (e *Engine) AppliedVersion() int64 { return e.applied.Load() }

// Config is the snapshot in use.
func (e *Engine) Config() *Snapshot { return e.snap.Load() }

// AdmitCall asks the Admission.
func (e *Engine) AdmitCall(ctx context.Context, c CallInfo) error {
	return e.opt.Admission.Acquire(ctx, c)
}

// ReleaseCall tells the Admission.
func (e *Engine) ReleaseCall(ctx context.Context, c CallInfo) { e.opt.Admission.Release(ctx, c) }

// SaveDialog tells the Admission when it keeps dialogs (ChannelAdmission).
func (e *Engine) SaveDialog(callID string, d Dialog) {
	if ds, ok := e.opt.Admission.(interface{ SaveDialog(string, Dialog) }); ok {
		ds.SaveDialog(callID, d)
	}
}

// Record queues a call record.
func (e *Engine) Record(key any, rec sipdesk.CallRecord, final bool) { e.recs.Record(key, rec, final) }

// FlushRecords waits until the queued call records are written (tests).
func (e *Engine) FlushRecords(d time.Duration) bool { return e.recs.Flush(d) }

// SettleBindings waits until the queued binding writes are done (tests).
func (e *Engine) SettleBindings(d time.Duration) bool { return e.regWrites.Settle(d) }

func (c BindingChange) write(tx sipdesk.Tx) error {
	if c.All {
		if err := tx.DeleteRegistrations(c.AccountID); err != nil {
			return err
		}
	}
	for _, ct := range c.Deletes {
		if err := tx.DeleteRegistration(c.AccountID, ct); err != nil && sipdesk.ErrorCode(err) != sipdesk.ENotFound {
			return err
		}
	}
	for _, r := range c.Puts {
		if err := tx.PutRegistration(r); err != nil {
			return err
		}
	}
	return nil
}

// SaveBindings writes a change in the next group commit and waits for it.
func (e *Engine) SaveBindings(c BindingChange) error { return e.regWrites.Do(e.st, c.write) }

// PostBindings queues a change for the next group commit: the binding is
// live in memory at once and its store write follows within milliseconds,
// shared with the REGISTERs that arrive together.
func (e *Engine) PostBindings(c BindingChange, after func(error)) {
	e.regWrites.Post(e.st, c.write, after)
}

// RegisterBindings: see Policy.
func (e *Engine) RegisterBindings(ctx context.Context, c BindingChange, maxContacts int) ([]*sipdesk.Registration, error) {
	now := e.opt.Now()
	var out []*sipdesk.Registration
	fn := func(tx sipdesk.Tx) error {
		out = nil
		if ctx.Err() != nil {
			// The REGISTER was answered 503 already: a binding stored now
			// would ring a device that believes it is not registered, and
			// take a place under the contact limit.
			return errAbandoned
		}
		if err := tx.LockRegistrations(c.AccountID); err != nil {
			return err
		}
		rs, err := tx.Registrations(c.AccountID)
		if err != nil {
			return err
		}
		out = c.after(rs, now)
		if maxContacts > 0 && len(out) > maxContacts && c.adds(rs, now) {
			out = nil
			return sipdesk.Errorf(sipdesk.SIPTooManyContacts, "more than %d contacts", maxContacts)
		}
		return c.write(tx)
	}
	done := make(chan error, 1)
	go func() { done <- e.regWrites.Do(e.st, fn) }()
	select {
	case err := <-done:
		if err != nil {
			return nil, err
		}
		return out, nil
	case <-ctx.Done():
		// The queued write is skipped (errAbandoned), unless its
		// transaction is committing at this very moment: then the device,
		// answered 503, registers again over a binding that exists.
		return nil, ctx.Err()
	}
}

// after is the live bindings of the account once c applies to rs.
func (c BindingChange) after(rs []*sipdesk.Registration, now time.Time) []*sipdesk.Registration {
	var out []*sipdesk.Registration
	for _, r := range rs {
		if c.All || !r.ExpiresAt.After(now) || slices.Contains(c.Deletes, r.Contact) ||
			slices.ContainsFunc(c.Puts, func(p *sipdesk.Registration) bool { return p.Contact == r.Contact }) {
			continue
		}
		out = append(out, r)
	}
	return append(out, c.Puts...)
}

// adds reports whether c puts a contact that is not live in rs yet (a
// refresh of a live contact is never refused by the contact limit).
func (c BindingChange) adds(rs []*sipdesk.Registration, now time.Time) bool {
	for _, p := range c.Puts {
		if !slices.ContainsFunc(rs, func(r *sipdesk.Registration) bool {
			return r.Contact == p.Contact && r.ExpiresAt.After(now) && !c.All
		}) {
			return true
		}
	}
	return false
}

// StoredBindings reads the live bindings of an account (0: all). For one
// account with NodeTTL set, bindings held by a node that stopped beating
// are left out: its flows died with it (or it is cut off), and ringing
// them would hold the caller until the fork times out.
func (e *Engine) StoredBindings(ctx context.Context, accountID int64) ([]*sipdesk.Registration, error) {
	now := e.opt.Now()
	var out []*sipdesk.Registration
	err := e.st.View(ctx, func(tx sipdesk.Tx) error {
		out = out[:0]
		rs, err := tx.Registrations(accountID)
		if err != nil {
			return err
		}
		var alive map[string]bool
		if e.opt.NodeTTL > 0 && accountID != 0 {
			ns, err := tx.Nodes(now.Add(-e.opt.NodeTTL))
			if err != nil {
				return err
			}
			alive = make(map[string]bool, len(ns))
			for _, n := range ns {
				alive[n.Name] = true
			}
		}
		for _, r := range rs {
			if r.ExpiresAt.After(now) && (alive == nil || r.Node == "" || alive[r.Node]) {
				out = append(out, r)
			}
		}
		return nil
	})
	return out, err
}

// Ping checks that the store answers (the edge's readiness probe).
func (e *Engine) Ping(ctx context.Context) error {
	_, err := e.st.ConfigVersion(ctx)
	return err
}

// Refresh rebuilds the snapshot when the config version moved.
func (e *Engine) Refresh(ctx context.Context) error {
	v, err := e.st.ConfigVersion(ctx)
	if err != nil {
		return err
	}
	old := e.snap.Load()
	if v == old.version {
		return nil
	}
	ns, err := LoadSnapshot(ctx, e.st, v)
	if err != nil {
		return err
	}
	e.snap.Store(ns)
	if e.onChange != nil {
		e.onChange(ctx, old, ns)
	}
	e.applied.Store(v)
	if old.version >= 0 {
		e.opt.Log.Info("config applied", "config_version", v, "sip_accounts", len(ns.byID))
	}
	return nil
}

// StartRecords starts the call record writer; stop writes the records
// queued by then and ends it (call it after the last call ended).
func (e *Engine) StartRecords() (stop func()) {
	recStop, recDone := make(chan struct{}), make(chan struct{})
	go e.recs.Run(recStop, recDone)
	return func() {
		close(recStop)
		<-recDone
	}
}

// Deadlines of the engine's own store calls: a config refresh (version
// read and, when it moved, the snapshot load) and the sweep of expired
// bindings. A failed refresh is retried by the poll after a backoff that
// doubles from PollInterval up to refreshBackoffMax; a change signal (the
// store's listener signals when it reconnects) retries at once.
const (
	RefreshTimeout    = 5 * time.Second
	sweepTimeout      = 5 * time.Second
	refreshBackoffMax = 10 * time.Second
)

// Run keeps the snapshot current, runs Background and deletes expired
// bindings from the store, until ctx is done.
func (e *Engine) Run(ctx context.Context) {
	if e.opt.Background != nil {
		done := make(chan struct{})
		go func() { defer close(done); e.opt.Background(ctx) }()
		defer func() { <-done }()
	}
	changes, stop := e.st.ConfigChanges()
	defer stop()
	poll := time.NewTicker(e.opt.PollInterval)
	defer poll.Stop()
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	backoff, retryAt := time.Duration(0), time.Time{}
	refresh := func() {
		rctx, cancel := context.WithTimeout(ctx, RefreshTimeout)
		err := e.Refresh(rctx)
		cancel()
		switch {
		case err == nil:
			backoff, retryAt = 0, time.Time{}
		case ctx.Err() == nil:
			backoff = min(max(2*backoff, e.opt.PollInterval), refreshBackoffMax)
			retryAt = time.Now().Add(backoff)
			e.opt.Log.Warn("config refresh", "error", err, "retry_in", backoff)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-changes:
			if !ok { // the store closed
				changes = nil
				continue
			}
			refresh()
		case <-poll.C:
			if time.Now().After(retryAt) {
				refresh()
			}
		case <-sweep.C:
			now := e.opt.Now()
			sctx, cancel := context.WithTimeout(ctx, sweepTimeout)
			err := e.st.Update(sctx, func(tx sipdesk.Tx) error {
				_, err := tx.DeleteExpiredRegistrations(now)
				return err
			})
			cancel()
			if err != nil && ctx.Err() == nil {
				e.opt.Log.Warn("expire registrations", "error", err)
			}
		}
	}
}
