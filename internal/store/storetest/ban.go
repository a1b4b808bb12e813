package storetest

import (
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Customer suspension and shared bans (store: customer.go, ban.go).

func testCustomerSuspend(t *testing.T, su *suite) {
	s := su.open(t)
	c := &sipdesk.Customer{Email: "susp-" + uniq() + "@example.com", BillingState: sipdesk.BillingPaid}
	update(t, s, func(tx sipdesk.Tx) error { return tx.InsertCustomer(c) })
	v0, err := s.ConfigVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c.SuspendedAt, c.SuspendedReason = at(0), "unpaid invoices"
	update(t, s, func(tx sipdesk.Tx) error { return tx.UpdateCustomer(c) })
	if v, _ := s.ConfigVersion(t.Context()); v <= v0 {
		t.Errorf("config version %d after a suspension, want above %d (the edges learn of it)", v, v0)
	}
	other := su.open(t) // what another node reads
	view(t, other, func(tx sipdesk.Tx) error {
		got, err := tx.Customer(c.ID, false)
		if err != nil {
			return err
		}
		if !got.Suspended() || got.SuspendedReason != "unpaid invoices" || !got.SuspendedAt.Equal(at(0)) {
			t.Errorf("suspended customer reads %v %q, want suspended at %v for unpaid invoices", got.SuspendedAt, got.SuspendedReason, at(0))
		}
		return nil
	})
	c.SuspendedAt, c.SuspendedReason = time.Time{}, ""
	update(t, s, func(tx sipdesk.Tx) error { return tx.UpdateCustomer(c) })
	view(t, other, func(tx sipdesk.Tx) error {
		got, err := tx.Customer(c.ID, false)
		if err != nil {
			return err
		}
		if got.Suspended() || got.SuspendedReason != "" {
			t.Errorf("unsuspended customer reads suspended %v %q", got.SuspendedAt, got.SuspendedReason)
		}
		return nil
	})
}

func testBans(t *testing.T, su *suite) {
	s := su.open(t)
	now := time.Now()
	a, b := "198.51.100."+digits(2), "2001:db8::"+digits(3)
	first := &sipdesk.Ban{Source: a, Reason: "failed authentication", Node: "edge-a", CreatedAt: ms(now), ExpiresAt: ms(now.Add(10 * time.Minute))}
	update(t, s, func(tx sipdesk.Tx) error {
		return tx.PutBans([]*sipdesk.Ban{first,
			{Source: b, Reason: "challenge flood", Node: "edge-b", CreatedAt: ms(now), ExpiresAt: ms(now.Add(5 * time.Minute))}})
	})
	// An earlier expiry from another edge does not shorten the ban; a
	// later one extends it with that edge's reason.
	update(t, s, func(tx sipdesk.Tx) error {
		return tx.PutBans([]*sipdesk.Ban{{Source: a, Reason: "garbage", Node: "edge-b", CreatedAt: ms(now), ExpiresAt: ms(now.Add(time.Minute))}})
	})
	find := func(st sipdesk.Store, src string) *sipdesk.Ban {
		t.Helper()
		var out *sipdesk.Ban
		view(t, st, func(tx sipdesk.Tx) error {
			bs, err := tx.Bans(now, 0)
			for _, x := range bs {
				if x.Source == src {
					out = x
				}
			}
			return err
		})
		return out
	}
	other := su.open(t)
	equal(t, "ban after an earlier expiry", find(other, a), first)
	later := &sipdesk.Ban{Source: a, Reason: "garbage", Node: "edge-b", CreatedAt: ms(now.Add(time.Second)), ExpiresAt: ms(now.Add(20 * time.Minute))}
	update(t, s, func(tx sipdesk.Tx) error { return tx.PutBans([]*sipdesk.Ban{later}) })
	equal(t, "ban after a later expiry", find(other, a), later)
	view(t, s, func(tx sipdesk.Tx) error {
		bs, err := tx.Bans(now, 1)
		if err == nil && (len(bs) != 1 || !bs[0].ExpiresAt.After(now.Add(10*time.Minute))) {
			t.Errorf("Bans with limit 1: %d, want the one of the latest expiry", len(bs))
		}
		return err
	})

	view(t, other, func(tx sipdesk.Tx) error {
		got, err := tx.Ban(a)
		equal(t, "Ban", got, later)
		return err
	})
	v0, _ := s.ConfigVersion(t.Context())
	update(t, s, func(tx sipdesk.Tx) error { return tx.DeleteBan(a) })
	if v, _ := s.ConfigVersion(t.Context()); v <= v0 {
		t.Errorf("config version %d after lifting a ban, want above %d (every edge drops it at once)", v, v0)
	}
	if find(other, a) != nil {
		t.Error("a lifted ban is still listed")
	}
	err := s.Update(t.Context(), func(tx sipdesk.Tx) error { return tx.DeleteBan(a) })
	if sipdesk.ErrorCode(err) != sipdesk.ENotFound {
		t.Errorf("lifting a ban twice: %v, want not_found", err)
	}
	err = s.View(t.Context(), func(tx sipdesk.Tx) error { _, err := tx.Ban(a); return err })
	if sipdesk.ErrorCode(err) != sipdesk.ENotFound {
		t.Errorf("Ban of a lifted source: %v, want not_found", err)
	}

	if find(other, b) == nil {
		t.Fatal("ban of b missing")
	}
	update(t, s, func(tx sipdesk.Tx) error {
		n, err := tx.DeleteExpiredBans(now.Add(6 * time.Minute))
		if err == nil && n < 1 {
			t.Errorf("DeleteExpiredBans deleted %d, want at least b's", n)
		}
		return err
	})
	view(t, s, func(tx sipdesk.Tx) error {
		bs, err := tx.Bans(time.Time{}, 0)
		for _, x := range bs {
			if x.Source == b {
				t.Error("an expired ban survived DeleteExpiredBans")
			}
		}
		return err
	})
}
