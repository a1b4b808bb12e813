package policy

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/sipdesk/sipdesk"
)

// BanTarget is the edge's shield as BanSync sees it.
type BanTarget interface {
	// SetShared replaces the bans recorded by every edge (a map it keeps).
	SetShared(m map[netip.Addr]time.Time)
	// Lift forgets a local ban an operator lifted.
	Lift(a netip.Addr)
}

// Limits of the shared bans: the bans one edge holds in memory from the
// store (the latest expiries first), the bans waiting to be written, and
// how many go in one transaction.
const (
	MaxSharedBans = 10_000
	banQueue      = 1024
	banBatch      = 256
)

// BanSync shares the bans of the edges through the store: the bans this
// edge imposes are written behind (batched, off the request path; when the
// queue is full a ban stays local), and the bans every edge recorded are
// read every PollInterval and at each config change signal (an operator's
// lift signals one) and handed to the shield as one immutable map, so that
// packets are checked without a store read or a lock. A ban this edge
// imposed or read before that is gone from the store was lifted: the
// shield forgets it.
type BanSync struct {
	st     sipdesk.Store
	node   string
	target BanTarget
	every  time.Duration
	log    *slog.Logger
	now    func() time.Time
	queue  chan *sipdesk.Ban
	// known are the sources stored in the last read or written since: one
	// missing from the next read was lifted. Only Run's goroutine uses it.
	known map[netip.Addr]bool
}

// NewBanSync makes the BanSync of edge node, reading every every (1s when
// 0).
func NewBanSync(st sipdesk.Store, node string, target BanTarget, every time.Duration, log *slog.Logger, now func() time.Time) *BanSync {
	if every <= 0 {
		every = time.Second
	}
	return &BanSync{st: st, node: node, target: target, every: every, log: log, now: now,
		queue: make(chan *sipdesk.Ban, banQueue), known: map[netip.Addr]bool{}}
}

// Post queues a ban this edge imposed for the store; it never blocks.
func (b *BanSync) Post(a netip.Addr, reason string, until time.Time) {
	select {
	case b.queue <- &sipdesk.Ban{Source: a.Unmap().String(), Reason: reason, Node: b.node, CreatedAt: b.now(), ExpiresAt: until}:
	default: // a flood of bans: this one holds on this edge only
	}
}

// Run writes and reads the bans until ctx is done; each minute it deletes
// the expired ones.
func (b *BanSync) Run(ctx context.Context) {
	changes, stop := b.st.ConfigChanges()
	defer stop()
	poll := time.NewTicker(b.every)
	defer poll.Stop()
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	b.read(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case ban := <-b.queue:
			b.write(ctx, ban)
		case _, ok := <-changes:
			if !ok {
				changes = nil
				continue
			}
			b.read(ctx)
		case <-poll.C:
			b.read(ctx)
		case <-sweep.C:
			b.update(ctx, "expire bans", func(tx sipdesk.Tx) error {
				_, err := tx.DeleteExpiredBans(b.now())
				return err
			})
		}
	}
}

// write stores first and the bans queued behind it, at most banBatch.
func (b *BanSync) write(ctx context.Context, first *sipdesk.Ban) {
	bs := []*sipdesk.Ban{first}
more:
	for len(bs) < banBatch {
		select {
		case x := <-b.queue:
			bs = append(bs, x)
		default:
			break more
		}
	}
	if b.update(ctx, "record bans", func(tx sipdesk.Tx) error { return tx.PutBans(bs) }) {
		for _, x := range bs {
			if a, err := netip.ParseAddr(x.Source); err == nil {
				b.known[a] = true
			}
		}
	}
}

// read hands the stored bans to the shield and lifts the ones gone.
func (b *BanSync) read(ctx context.Context) {
	var bs []*sipdesk.Ban
	rctx, cancel := context.WithTimeout(ctx, RefreshTimeout)
	err := b.st.View(rctx, func(tx sipdesk.Tx) (err error) {
		bs, err = tx.Bans(b.now(), MaxSharedBans)
		return err
	})
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			b.log.Warn("read shared bans", "error", err)
		}
		return // the bans held stay in force
	}
	m := make(map[netip.Addr]time.Time, len(bs))
	for _, x := range bs {
		if a, err := netip.ParseAddr(x.Source); err == nil {
			m[a.Unmap()] = x.ExpiresAt
		}
	}
	b.target.SetShared(m)
	if len(bs) >= MaxSharedBans {
		// Not every ban was read: an absent one may just be beyond the
		// limit, so nothing counts as lifted; this edge's own bans hold.
		if len(b.known) > 2*MaxSharedBans {
			b.known = map[netip.Addr]bool{}
		}
		return
	}
	for a := range b.known {
		if _, ok := m[a]; !ok {
			b.target.Lift(a) // lifted by an operator, or expired and swept
			delete(b.known, a)
		}
	}
	for a := range m {
		b.known[a] = true
	}
}

func (b *BanSync) update(ctx context.Context, what string, fn func(sipdesk.Tx) error) bool {
	uctx, cancel := context.WithTimeout(ctx, RefreshTimeout)
	err := b.st.Update(uctx, fn)
	cancel()
	if err != nil && ctx.Err() == nil {
		b.log.Warn(what, "error", err)
	}
	return err == nil
}
