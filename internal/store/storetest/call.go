package storetest

import (
	"fmt"
	mathrand "math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Channel leases and call records (store: call.go).

func testLeases(t *testing.T, su *suite) {
	s := su.open(t)
	c := newCustomer(t, s)
	a1, a2 := newPasswordAccount(t, s, c.ID), newPasswordAccount(t, s, c.ID)
	a1.ChannelCap = 3
	update(t, s, func(tx sipdesk.Tx) error { return tx.UpdateSIPAccount(a1) })
	l := func(id string, acct int64, dir, node string, exp time.Duration) *sipdesk.CallLease {
		return &sipdesk.CallLease{CallID: id + uniq(), CustomerID: c.ID, SIPAccountID: acct, Direction: dir, Node: node, StartedAt: at(0), ExpiresAt: at(exp)}
	}
	live1, live2 := l("a", a1.ID, sipdesk.DirOutbound, "n1", time.Minute), l("b", a2.ID, sipdesk.DirOutbound, "n2", time.Minute)
	in := l("c", a1.ID, sipdesk.DirInbound, "n1", time.Minute)
	dead := l("d", a1.ID, sipdesk.DirOutbound, "n3", -time.Second)
	update(t, s, func(tx sipdesk.Tx) error {
		for _, x := range []*sipdesk.CallLease{live1, live2, in, dead} {
			if err := tx.InsertLease(x); err != nil {
				return err
			}
		}
		return nil
	})
	wantCode(t, "duplicate lease", txErr(t, s, func(tx sipdesk.Tx) error { return tx.InsertLease(live1) }), sipdesk.EConflict, "")
	view(t, s, func(tx sipdesk.Tx) error {
		live, err := tx.Leases(c.ID, at(0))
		count := func(outboundOnly bool) (cn, an int) {
			for _, x := range live {
				if outboundOnly && x.Direction != sipdesk.DirOutbound {
					continue
				}
				cn++
				if x.SIPAccountID == a1.ID {
					an++
				}
			}
			return cn, an
		}
		cn, an := count(true)
		if cn != 2 || an != 1 {
			t.Errorf("outbound count = %d/%d, want 2/1 (the expired lease does not count)", cn, an)
		}
		cn, an = count(false)
		if cn != 3 || an != 2 {
			t.Errorf("all count = %d/%d, want 3/2", cn, an)
		}
		u, err2 := tx.ChannelUse(c.ID, a1.ID, at(0))
		if err2 != nil {
			t.Errorf("ChannelUse: %v", err2)
		} else if wantN := map[bool][2]int{true: {3, 2}, false: {2, 1}}[c.ChannelScope == sipdesk.ScopeBoth]; u.CustomerInUse != wantN[0] || u.AccountInUse != wantN[1] ||
			!u.AccountFound || u.ChannelLimit != c.ChannelLimit || u.ChannelScope != c.ChannelScope {
			t.Errorf("ChannelUse = %+v, want in use %v under scope %q, limit %d", *u, wantN, c.ChannelScope, c.ChannelLimit)
		}
		if u, err2 := tx.ChannelUse(c.ID, a1.ID+1_000_000, at(0)); err2 != nil || u.AccountFound || u.AccountInUse != 0 {
			t.Errorf("ChannelUse of a missing SIP account = %+v, %v; want AccountFound false", u, err2)
		}
		if _, err2 := tx.ChannelUse(c.ID+1_000_000, a1.ID, at(0)); sipdesk.ErrorCode(err2) != sipdesk.ENotFound {
			t.Errorf("ChannelUse of a missing customer: %v, want not found", err2)
		}
		// ChannelLimits: the same limits, no counts, twice (the second
		// reuses the statement this transaction bound on SQLite).
		for range 2 {
			if u, err2 := tx.ChannelLimits(c.ID, a1.ID); err2 != nil || !u.AccountFound || u.ChannelLimit != c.ChannelLimit ||
				u.ChannelScope != c.ChannelScope || u.ChannelCap != a1.ChannelCap || u.CustomerInUse != 0 || u.AccountInUse != 0 {
				t.Errorf("ChannelLimits = %+v, %v; want limit %d, scope %q, cap %d, no counts", u, err2, c.ChannelLimit, c.ChannelScope, a1.ChannelCap)
			}
		}
		if u, err2 := tx.ChannelLimits(c.ID, a1.ID+1_000_000); err2 != nil || u.AccountFound || u.ChannelCap != 0 {
			t.Errorf("ChannelLimits of a missing SIP account = %+v, %v; want AccountFound false", u, err2)
		}
		if _, err2 := tx.ChannelLimits(c.ID+1_000_000, a1.ID); sipdesk.ErrorCode(err2) != sipdesk.ENotFound {
			t.Errorf("ChannelLimits of a missing customer: %v, want not found", err2)
		}
		ls, _ := tx.Leases(c.ID, at(0))
		if len(ls) != 3 {
			t.Errorf("Leases = %d, want 3 live", len(ls))
		}
		return err
	})
	both := c.ChannelScope == sipdesk.ScopeBoth
	use := func(what string, want [2]int) {
		t.Helper()
		update(t, s, func(tx sipdesk.Tx) error {
			u, err := tx.ChannelUse(c.ID, a1.ID, at(0))
			if err != nil {
				return err
			}
			if u.CustomerInUse != want[0] || u.AccountInUse != want[1] {
				t.Errorf("%s: ChannelUse in a write transaction = %d/%d, want %v", what, u.CustomerInUse, u.AccountInUse, want)
			}
			return nil
		})
	}
	// A write transaction reads the kept counts: the expired lease still
	// counts until a node claims it and ends its call.
	use("live leases", map[bool][2]int{true: {4, 3}, false: {3, 2}}[both])
	update(t, s, func(tx sipdesk.Tx) error { return tx.SetLeaseDialog(dead.CallID, `{"legs":[]}`) })
	update(t, s, func(tx sipdesk.Tx) error {
		lost, err := tx.ClaimExpiredLeases("n9", at(0), at(time.Minute), 10)
		if err != nil {
			return err
		}
		if len(lost) != 1 || lost[0].CallID != dead.CallID || lost[0].LostNode != "n3" || lost[0].Node != "n9" || lost[0].Dialog != `{"legs":[]}` {
			t.Errorf("claimed %+v, want the dead lease of n3 with its dialog", lost)
		}
		again, err := tx.ClaimExpiredLeases("n8", at(0), at(time.Minute), 10)
		if len(again) != 0 {
			t.Errorf("claimed again by another node: %+v", again)
		}
		return err
	})
	use("claimed lease still counts", map[bool][2]int{true: {4, 3}, false: {3, 2}}[both])
	update(t, s, func(tx sipdesk.Tx) error { _, err := tx.DeleteLease(dead.CallID); return err })
	use("after the claimed lease is freed", map[bool][2]int{true: {3, 2}, false: {2, 1}}[both])
	update(t, s, func(tx sipdesk.Tx) error {
		ids, err := tx.RenewLeases("n1", at(2*time.Minute))
		if len(ids) != 2 {
			t.Errorf("renewed %v, want 2", ids)
		}
		return err
	})
	update(t, s, func(tx sipdesk.Tx) error {
		n, err := tx.DeleteExpiredLeases(at(90 * time.Second))
		if n != 1 { // live2 (not renewed)
			t.Errorf("expired %d, want 1", n)
		}
		return err
	})
	update(t, s, func(tx sipdesk.Tx) error {
		ok, err := tx.DeleteLease(live1.CallID)
		if !ok {
			t.Error("DeleteLease of a live lease reported none")
		}
		ok, _ = tx.DeleteLease(live1.CallID)
		if ok {
			t.Error("second DeleteLease reported a lease")
		}
		return err
	})
	// Only the inbound lease is left: the counts followed every deletion.
	use("after expiry and release", map[bool][2]int{true: {1, 1}, false: {0, 0}}[both])
	// A restarted node expires a lease of its previous life (only its own)
	// and the sweep claims it.
	update(t, s, func(tx sipdesk.Tx) error {
		if err := tx.ExpireLease(in.CallID, "n2"); err != nil {
			return err
		}
		if lost, _ := tx.ClaimExpiredLeases("n1", at(0), at(time.Minute), 10); len(lost) != 0 {
			t.Errorf("another node's ExpireLease expired %+v", lost)
		}
		if err := tx.ExpireLease(in.CallID, "n1"); err != nil {
			return err
		}
		lost, err := tx.ClaimExpiredLeases("n1", at(0), at(time.Minute), 10)
		if len(lost) != 1 || lost[0].CallID != in.CallID || lost[0].LostNode != "n1" {
			t.Errorf("claimed %+v after ExpireLease, want the inbound lease", lost)
		}
		return err
	})
}

// testLeaseClaimLimit: one sweep claims at most its limit, oldest first,
// and leaves the rest expired for the next sweep. Its leases expired long
// before any other test's (2001), so the sweep sees only them.
func testLeaseClaimLimit(t *testing.T, su *suite) {
	s := su.open(t)
	c := newCustomer(t, s)
	a := newPasswordAccount(t, s, c.ID)
	now := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	var ids []string // oldest first
	update(t, s, func(tx sipdesk.Tx) error {
		for i := range 10 {
			id := fmt.Sprintf("sweep%d-%s", i, uniq())
			ids = append(ids, id)
			if err := tx.InsertLease(&sipdesk.CallLease{CallID: id, CustomerID: c.ID, SIPAccountID: a.ID, Direction: sipdesk.DirOutbound,
				Node: "dead", StartedAt: now.Add(-time.Hour), ExpiresAt: now.Add(time.Duration(i-10) * time.Second)}); err != nil {
				return err
			}
		}
		return nil
	})
	claim := func(limit int) []string {
		t.Helper()
		var got []string
		update(t, s, func(tx sipdesk.Tx) error {
			lost, err := tx.ClaimExpiredLeases("n1", now, now.Add(time.Minute), limit)
			for _, l := range lost {
				got = append(got, l.CallID)
			}
			return err
		})
		slices.Sort(got)
		return got
	}
	sorted := func(ids []string) []string { return slices.Sorted(slices.Values(ids)) }
	equal(t, "first sweep (limit 3)", claim(3), sorted(ids[:3]))
	equal(t, "second sweep (limit 100)", claim(100), sorted(ids[3:]))
	if got := claim(100); len(got) != 0 {
		t.Errorf("third sweep claimed %v, want none left", got)
	}
}

// testCountedCalls runs every case of sipdesk.CountsAgainstLimit (each
// channel scope and direction, under each billing state) through the
// domain rule and through the store's count, in a read-only transaction
// (which counts the live leases) and in a write one (which reads the kept
// counters): the SQL must count exactly the calls the rule counts.
func testCountedCalls(t *testing.T, su *suite) {
	s := su.open(t)
	for _, billing := range []sipdesk.BillingState{sipdesk.BillingUnverified, sipdesk.BillingTrial, sipdesk.BillingPaid} {
		for _, scope := range sipdesk.ChannelScopes {
			c := newCustomer(t, s)
			c.BillingState, c.ChannelScope = billing, scope
			update(t, s, func(tx sipdesk.Tx) error { return tx.UpdateCustomer(c) })
			a, other := newPasswordAccount(t, s, c.ID), newPasswordAccount(t, s, c.ID)
			// A distinct power of two of live leases per direction and
			// account, so that a wrong sum shows which cases differ.
			var wantCustomer, wantAccount int
			var counted []string
			update(t, s, func(tx sipdesk.Tx) error {
				for i, dir := range sipdesk.Directions {
					onA, onOther := 1<<(2*i), 1<<(2*i+1)
					for j := range onA + onOther {
						acct := a.ID
						if j >= onA {
							acct = other.ID
						}
						if err := tx.InsertLease(&sipdesk.CallLease{CallID: fmt.Sprintf("%s-%d-%s", dir, j, uniq()), CustomerID: c.ID, SIPAccountID: acct,
							Direction: dir, Node: "n", StartedAt: at(0), ExpiresAt: at(time.Minute)}); err != nil {
							return err
						}
					}
					if c.Counted(dir) {
						wantCustomer += onA + onOther
						wantAccount += onA
						counted = append(counted, dir)
					}
				}
				return nil
			})
			check := func(kind string, u *sipdesk.ChannelUse, err error) {
				t.Helper()
				if err != nil {
					t.Errorf("billing %s, scope %s: ChannelUse in a %s transaction: %v", billing, scope, kind, err)
				} else if u.CustomerInUse != wantCustomer || u.AccountInUse != wantAccount {
					t.Errorf("billing %s, scope %s: ChannelUse in a %s transaction counts %d/%d, but the rule counts %v: %d/%d",
						billing, scope, kind, u.CustomerInUse, u.AccountInUse, counted, wantCustomer, wantAccount)
				}
			}
			view(t, s, func(tx sipdesk.Tx) error {
				u, err := tx.ChannelUse(c.ID, a.ID, at(0))
				check("read-only", u, err)
				return nil
			})
			update(t, s, func(tx sipdesk.Tx) error {
				u, err := tx.ChannelUse(c.ID, a.ID, at(0))
				check("write", u, err)
				return nil
			})
		}
	}
}

func testLeaseExactness(t *testing.T, su *suite) {
	stores := []sipdesk.Store{su.open(t), su.open(t)} // as two edge nodes would
	c := newCustomer(t, stores[0])
	a := newPasswordAccount(t, stores[0], c.ID)
	const limit, calls = 5, 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := stores[i%2].Update(t.Context(), func(tx sipdesk.Tx) error {
				u, err := tx.ChannelUse(c.ID, a.ID, time.Now())
				if err != nil {
					return err
				}
				if u.CustomerInUse >= limit {
					return sipdesk.Errorf(sipdesk.EChannelLimit, "full")
				}
				return tx.InsertLease(&sipdesk.CallLease{CallID: fmt.Sprintf("x%d-%s", i, uniq()), CustomerID: c.ID, SIPAccountID: a.ID,
					Direction: sipdesk.DirOutbound, Node: "n", StartedAt: time.Now(), ExpiresAt: time.Now().Add(time.Minute)})
			})
			if err == nil {
				mu.Lock()
				admitted++
				mu.Unlock()
			} else if sipdesk.ErrorCode(err) != sipdesk.EChannelLimit {
				t.Errorf("acquire: %v", err)
			}
		}()
	}
	wg.Wait()
	if admitted != limit {
		t.Fatalf("admitted %d of %d concurrent calls, want exactly %d", admitted, calls, limit)
	}
}

func testCallRecords(t *testing.T, su *suite) {
	s := su.open(t)
	c, other := newCustomer(t, s), newCustomer(t, s)
	a := newPasswordAccount(t, s, c.ID)
	mk := func(disp string, start time.Duration) *sipdesk.CallRecord {
		return &sipdesk.CallRecord{CallID: uniq(), CustomerID: c.ID, SIPAccountID: a.ID, Direction: sipdesk.DirOutbound,
			From: "sip:a@x", To: "sip:+4420@y", CallerID: "+15550001", CallerIDRuleID: 7, CallerIDReason: sipdesk.ReasonRulePrefix,
			StartedAt: at(start), Disposition: disp, SIPCode: 200, Node: "n1"}
	}
	r1, r2, r3 := mk(sipdesk.DispAnswered, 0), mk(sipdesk.DispRefused, time.Minute), mk(sipdesk.DispAnswered, 2*time.Minute)
	update(t, s, func(tx sipdesk.Tx) error {
		for _, r := range []*sipdesk.CallRecord{r1, r2, r3} {
			if err := tx.InsertCallRecord(r); err != nil {
				return err
			}
		}
		return nil
	})
	r1.AnsweredAt, r1.EndedAt, r1.Reason = at(time.Second), at(time.Minute), "bye"
	update(t, s, func(tx sipdesk.Tx) error { return tx.UpdateCallRecord(r1) })
	view(t, s, func(tx sipdesk.Tx) error {
		all, err := tx.CallRecords(sipdesk.CallFilter{CustomerID: c.ID})
		equal(t, "CallRecords newest first", all, []*sipdesk.CallRecord{r3, r2, r1})
		ans, _ := tx.CallRecords(sipdesk.CallFilter{CustomerID: c.ID, Disposition: sipdesk.DispAnswered, Limit: 1})
		equal(t, "answered, limit 1", ans, []*sipdesk.CallRecord{r3})
		page, _ := tx.CallRecords(sipdesk.CallFilter{CustomerID: c.ID, BeforeID: r3.ID, Since: at(30 * time.Second)})
		equal(t, "page before r3 since 30s", page, []*sipdesk.CallRecord{r2})
		none, _ := tx.CallRecords(sipdesk.CallFilter{CustomerID: other.ID})
		if len(none) != 0 {
			t.Error("another customer sees call records")
		}
		return err
	})
}

// testLostRecords: a lost call's in_progress record is closed node_lost
// (only the lost node's, only in progress); records left in progress with
// no lease are closed as orphans, records of live leases are not.
func testLostRecords(t *testing.T, su *suite) {
	s := su.open(t)
	c := newCustomer(t, s)
	a := newPasswordAccount(t, s, c.ID)
	mk := func(id, node, disp string) *sipdesk.CallRecord {
		return &sipdesk.CallRecord{CallID: id, CustomerID: c.ID, SIPAccountID: a.ID, Direction: sipdesk.DirOutbound,
			StartedAt: at(0), Disposition: disp, Node: node}
	}
	lost, live, orphan := uniq(), uniq(), uniq()
	rLost, rDone, rOther := mk(lost, "n3", sipdesk.DispActive), mk(lost, "n3", sipdesk.DispAnswered), mk(lost, "n4", sipdesk.DispActive)
	rLive, rOrphan := mk(live, "n1", sipdesk.DispActive), mk(orphan, "n1", sipdesk.DispActive)
	update(t, s, func(tx sipdesk.Tx) error {
		for _, r := range []*sipdesk.CallRecord{rLost, rDone, rOther, rLive, rOrphan} {
			if err := tx.InsertCallRecord(r); err != nil {
				return err
			}
		}
		return tx.InsertLease(&sipdesk.CallLease{CallID: live, CustomerID: c.ID, Direction: sipdesk.DirOutbound, Node: "n1", StartedAt: at(0), ExpiresAt: at(time.Hour)})
	})
	update(t, s, func(tx sipdesk.Tx) error {
		n, err := tx.CloseLostRecords(lost, "n3", at(time.Minute))
		if n != 1 {
			t.Errorf("closed %d lost records, want 1", n)
		}
		return err
	})
	update(t, s, func(tx sipdesk.Tx) error {
		n, err := tx.CloseOrphanRecords(at(30*time.Second), at(time.Minute))
		if n != 2 { // rOther (no lease for lost) and rOrphan; rLive has its lease
			t.Errorf("closed %d orphan records, want 2", n)
		}
		return err
	})
	view(t, s, func(tx sipdesk.Tx) error {
		rs, err := tx.CallRecords(sipdesk.CallFilter{CustomerID: c.ID})
		got := map[int64]string{}
		for _, r := range rs {
			got[r.ID] = r.Disposition + "/" + r.Reason
		}
		want := map[int64]string{rLost.ID: "node_lost/node_lost", rDone.ID: "answered/", rOther.ID: "node_lost/orphaned",
			rLive.ID: "in_progress/", rOrphan.ID: "node_lost/orphaned"}
		for id, w := range want {
			if got[id] != w {
				t.Errorf("record %d = %q, want %q", id, got[id], w)
			}
		}
		return err
	})
}

// testCallStats: records of every customer in the window are counted by
// minute, disposition and reason; records outside it are not.
func testCallStats(t *testing.T, su *suite) {
	s := su.open(t)
	c1, c2 := newCustomer(t, s), newCustomer(t, s)
	// a window of its own (other tests insert records around at(0))
	base := time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(mathrand.Int64N(1<<20)) * time.Minute)
	rec := func(c int64, d time.Duration, disp, reason string) *sipdesk.CallRecord {
		return &sipdesk.CallRecord{CallID: uniq(), CustomerID: c, Direction: sipdesk.DirOutbound, StartedAt: base.Add(d), Disposition: disp, Reason: reason}
	}
	rs := []*sipdesk.CallRecord{
		rec(c1.ID, 5*time.Second, sipdesk.DispAnswered, "bye"),
		rec(c2.ID, 59*time.Second, sipdesk.DispAnswered, "bye"),
		rec(c1.ID, 30*time.Second, sipdesk.DispRefused, "channel_limit"),
		rec(c2.ID, 61*time.Second, sipdesk.DispRefused, "channel_limit"),
		rec(c2.ID, 62*time.Second, sipdesk.DispRefused, "channel_limit"),
		rec(c1.ID, -time.Millisecond, sipdesk.DispRefused, "channel_limit"), // before the window
		rec(c1.ID, 2*time.Minute, sipdesk.DispAnswered, "bye"),              // at its end
	}
	update(t, s, func(tx sipdesk.Tx) error {
		for _, r := range rs {
			if err := tx.InsertCallRecord(r); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.CallStats(base, base.Add(2*time.Minute))
		equal(t, "CallStats", got, []*sipdesk.CallStat{
			{Minute: base, Disposition: sipdesk.DispAnswered, Reason: "bye", N: 2},
			{Minute: base, Disposition: sipdesk.DispRefused, Reason: "channel_limit", N: 1},
			{Minute: base.Add(time.Minute), Disposition: sipdesk.DispRefused, Reason: "channel_limit", N: 2},
		})
		return err
	})
}
