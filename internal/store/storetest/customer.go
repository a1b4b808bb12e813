package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Customers and API tokens (store: customer.go).

func testCustomerRoundTrip(t *testing.T, su *suite) {
	s := su.open(t)
	c := &sipdesk.Customer{
		Email:           "round-" + uniq() + "@example.com",
		PasswordHash:    "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA",
		VerifiedPhone:   "+4930" + digits(7),
		BillingState:    sipdesk.BillingTrial,
		ChannelLimit:    1,
		ChannelScope:    sipdesk.ScopeBoth,
		SIPAccountQuota: 7,
		TopUpTotalCents: 12345,
		CreatedAt:       at(0),
		SuspendedAt:     at(time.Hour),
		SuspendedReason: "chargeback «42»",
	}
	update(t, s, func(tx sipdesk.Tx) error { return tx.InsertCustomer(c) })
	if c.ID == 0 {
		t.Fatal("InsertCustomer did not set ID")
	}
	d := &sipdesk.Customer{Email: "default-" + uniq() + "@example.com", BillingState: sipdesk.BillingUnverified}
	update(t, s, func(tx sipdesk.Tx) error { return tx.InsertCustomer(d) })
	if d.CreatedAt.IsZero() || time.Since(d.CreatedAt) > time.Minute {
		t.Errorf("InsertCustomer set CreatedAt %v, want about now", d.CreatedAt)
	}

	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.Customer(c.ID, false)
		if err != nil {
			return err
		}
		equal(t, "Customer", got, c)
		got, err = tx.CustomerByEmail(c.Email)
		if err != nil {
			return err
		}
		equal(t, "CustomerByEmail", got, c)
		got, err = tx.Customer(d.ID, false)
		if err != nil {
			return err
		}
		equal(t, "Customer with defaults", got, d)
		all, err := tx.Customers()
		if err != nil {
			return err
		}
		got1, got2 := slices.Index(ids(all, func(c *sipdesk.Customer) int64 { return c.ID }), c.ID), slices.Index(ids(all, func(c *sipdesk.Customer) int64 { return c.ID }), d.ID)
		if got1 < 0 || got2 < 0 || got1 > got2 {
			t.Errorf("Customers: positions %d, %d of the new customers, want both in id order", got1, got2)
		} else {
			equal(t, "Customers entry", all[got1], c)
		}
		return nil
	})

	c.Email = "changed-" + uniq() + "@example.com"
	c.PasswordHash, c.VerifiedPhone, c.BillingState = "$argon2id$new", "+1"+digits(10), sipdesk.BillingPaid
	c.ChannelLimit, c.ChannelScope, c.SIPAccountQuota, c.TopUpTotalCents = 25, sipdesk.ScopeOutbound, 50, 99999
	update(t, s, func(tx sipdesk.Tx) error {
		if err := tx.UpdateCustomer(c); err != nil {
			return err
		}
		got, err := tx.Customer(c.ID, true)
		if err != nil {
			return err
		}
		equal(t, "Customer after UpdateCustomer (forUpdate)", got, c)
		return nil
	})
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.CustomerByEmail(c.Email)
		if err != nil {
			return err
		}
		equal(t, "CustomerByEmail after update", got, c)
		return nil
	})
}

func testCustomerConflict(t *testing.T, su *suite) {
	s := su.open(t)
	a := newCustomer(t, s)
	dup := &sipdesk.Customer{Email: a.Email, BillingState: sipdesk.BillingTrial}
	err := txErr(t, s, func(tx sipdesk.Tx) error { return tx.InsertCustomer(dup) })
	wantCode(t, "InsertCustomer with a used email", err, sipdesk.EConflict, "email")

	b := newCustomer(t, s)
	b.Email = a.Email
	err = txErr(t, s, func(tx sipdesk.Tx) error { return tx.UpdateCustomer(b) })
	wantCode(t, "UpdateCustomer to a used email", err, sipdesk.EConflict, "email")
}

func testCustomerNotFound(t *testing.T, su *suite) {
	s := su.open(t)
	view(t, s, func(tx sipdesk.Tx) error {
		_, err := tx.Customer(1<<50, false)
		wantCode(t, "Customer", err, sipdesk.ENotFound, "")
		_, err = tx.CustomerByEmail("nobody-" + uniq() + "@example.com")
		wantCode(t, "CustomerByEmail", err, sipdesk.ENotFound, "")
		return nil
	})
	err := txErr(t, s, func(tx sipdesk.Tx) error {
		return tx.UpdateCustomer(&sipdesk.Customer{ID: 1 << 50, Email: "x-" + uniq() + "@example.com"})
	})
	wantCode(t, "UpdateCustomer", err, sipdesk.ENotFound, "")
}

func testAPITokens(t *testing.T, su *suite) {
	s := su.open(t)
	a, b := newCustomer(t, s), newCustomer(t, s)
	t1 := &sipdesk.APIToken{CustomerID: a.ID, Name: "ci", Hash: sipdesk.HashToken(uniq()), CreatedAt: at(0), LastUsedAt: at(time.Hour)}
	t2 := &sipdesk.APIToken{CustomerID: a.ID, Name: "laptop", Hash: sipdesk.HashToken(uniq())}
	update(t, s, func(tx sipdesk.Tx) error {
		if err := tx.InsertAPIToken(t1); err != nil {
			return err
		}
		return tx.InsertAPIToken(t2)
	})
	if t1.ID == 0 || t2.ID == 0 || t2.CreatedAt.IsZero() {
		t.Fatalf("InsertAPIToken did not set ID/CreatedAt: %+v %+v", t1, t2)
	}
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.APITokenByHash(t1.Hash)
		if err != nil {
			return err
		}
		equal(t, "APITokenByHash", got, t1)
		list, err := tx.APITokens(a.ID)
		if err != nil {
			return err
		}
		equal(t, "APITokens", list, []*sipdesk.APIToken{t1, t2})
		list, err = tx.APITokens(b.ID)
		if err != nil {
			return err
		}
		equal(t, "APITokens of another customer", len(list), 0)
		_, err = tx.APITokenByHash(sipdesk.HashToken("unknown"))
		wantCode(t, "APITokenByHash unknown", err, sipdesk.ENotFound, "")
		return nil
	})

	dup := &sipdesk.APIToken{CustomerID: b.ID, Name: "dup", Hash: t1.Hash}
	wantCode(t, "InsertAPIToken with a used hash", txErr(t, s, func(tx sipdesk.Tx) error { return tx.InsertAPIToken(dup) }), sipdesk.EConflict, "")

	t2.LastUsedAt = at(2 * time.Hour)
	update(t, s, func(tx sipdesk.Tx) error { return tx.TouchAPIToken(t2.ID, t2.LastUsedAt) })
	wantCode(t, "TouchAPIToken unknown", txErr(t, s, func(tx sipdesk.Tx) error { return tx.TouchAPIToken(1<<50, at(0)) }), sipdesk.ENotFound, "")
	wantCode(t, "DeleteAPIToken of another customer", txErr(t, s, func(tx sipdesk.Tx) error { return tx.DeleteAPIToken(b.ID, t1.ID) }), sipdesk.ENotFound, "")
	update(t, s, func(tx sipdesk.Tx) error { return tx.DeleteAPIToken(a.ID, t1.ID) })
	wantCode(t, "DeleteAPIToken twice", txErr(t, s, func(tx sipdesk.Tx) error { return tx.DeleteAPIToken(a.ID, t1.ID) }), sipdesk.ENotFound, "")
	view(t, s, func(tx sipdesk.Tx) error {
		list, err := tx.APITokens(a.ID)
		if err != nil {
			return err
		}
		equal(t, "APITokens after delete and touch", list, []*sipdesk.APIToken{t2})
		return nil
	})
	// Operator access (customer 0).
	update(t, s, func(tx sipdesk.Tx) error { return tx.DeleteAPIToken(0, t2.ID) })
}
