package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Transactions and the config version (store: tx.go, db.go).

func testConfigVersion(t *testing.T, su *suite) {
	s1, s2 := su.open(t), su.open(t)
	v0, err := s1.ConfigVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var v1, v2 int64
	c := &sipdesk.Customer{Email: "cv-" + uniq() + "@example.com", BillingState: sipdesk.BillingTrial}
	update(t, s1, func(tx sipdesk.Tx) error {
		var err error
		if v1, err = tx.BumpConfigVersion(); err != nil {
			return err
		}
		if v2, err = tx.BumpConfigVersion(); err != nil {
			return err
		}
		return tx.InsertCustomer(c)
	})
	if v1 != v0+1 || v2 != v0+2 {
		t.Errorf("BumpConfigVersion from %d gave %d, %d; want %d, %d", v0, v1, v2, v0+1, v0+2)
	}
	for i, s := range []sipdesk.Store{s1, s2} {
		v, err := s.ConfigVersion(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if v != v2 {
			t.Errorf("store %d: ConfigVersion = %d, want %d", i+1, v, v2)
		}
	}
	view(t, s2, func(tx sipdesk.Tx) error {
		_, err := tx.CustomerByEmail(c.Email)
		return err
	})
	// A bump in a transaction that fails is not seen.
	err = txErr(t, s2, func(tx sipdesk.Tx) error {
		if _, err := tx.BumpConfigVersion(); err != nil {
			return err
		}
		return errors.New("abort")
	})
	if err == nil || err.Error() != "abort" {
		t.Errorf("Update returned %v, want fn's error unchanged", err)
	}
	if v, _ := s1.ConfigVersion(t.Context()); v != v2 {
		t.Errorf("ConfigVersion after a rolled back bump = %d, want %d", v, v2)
	}
}

func testLazyCommit(t *testing.T, su *suite) {
	s := su.open(t)
	var emails []string
	for i, ctx := range []context.Context{sipdesk.LazyCommit(t.Context()), t.Context(), sipdesk.LazyCommit(t.Context())} {
		c := &sipdesk.Customer{Email: fmt.Sprintf("lazy%d-%s@example.com", i, uniq()), BillingState: sipdesk.BillingTrial}
		if err := s.Update(ctx, func(tx sipdesk.Tx) error { return tx.InsertCustomer(c) }); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		emails = append(emails, c.Email)
	}
	// A failed lazy transaction rolls back like any other.
	boom := errors.New("boom")
	if err := s.Update(sipdesk.LazyCommit(t.Context()), func(tx sipdesk.Tx) error {
		if err := tx.InsertCustomer(&sipdesk.Customer{Email: "lazy-rb-" + uniq() + "@example.com"}); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("failed lazy Update returned %v", err)
	}
	view(t, s, func(tx sipdesk.Tx) error {
		for _, e := range emails {
			if _, err := tx.CustomerByEmail(e); err != nil {
				t.Errorf("%s: %v", e, err)
			}
		}
		return nil
	})
}

func testRollbackOnError(t *testing.T, su *suite) {
	s := su.open(t)
	v0, err := s.ConfigVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	c := &sipdesk.Customer{Email: "rb-" + uniq() + "@example.com", BillingState: sipdesk.BillingTrial}
	var acc *sipdesk.SIPAccount
	err = s.Update(t.Context(), func(tx sipdesk.Tx) error {
		if err := tx.InsertCustomer(c); err != nil {
			return err
		}
		acc = fullAccount(c.ID, nil)
		if err := tx.InsertSIPAccount(acc); err != nil {
			return err
		}
		if err := tx.InsertAudit(&sipdesk.AuditEntry{CustomerID: c.ID, Action: sipdesk.AuditSIPAccountCreated}); err != nil {
			return err
		}
		if _, err := tx.BumpConfigVersion(); err != nil {
			return err
		}
		return fmt.Errorf("wrapped: %w", boom)
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update returned %v, want fn's error", err)
	}
	view(t, s, func(tx sipdesk.Tx) error {
		_, err := tx.CustomerByEmail(c.Email)
		wantCode(t, "customer of a failed Update", err, sipdesk.ENotFound, "")
		_, err = tx.SIPAccountByUsername(acc.Username)
		wantCode(t, "SIP account of a failed Update", err, sipdesk.ENotFound, "")
		audit, err := tx.Audit(c.ID, 0)
		if err != nil {
			return err
		}
		equal(t, "audit of a failed Update", len(audit), 0)
		return nil
	})
	if v, _ := s.ConfigVersion(t.Context()); v != v0 {
		t.Errorf("ConfigVersion = %d after a failed Update, want %d", v, v0)
	}
}

func testRollbackOnPanic(t *testing.T, su *suite) {
	s := su.open(t)
	c := &sipdesk.Customer{Email: "panic-" + uniq() + "@example.com", BillingState: sipdesk.BillingTrial}
	func() {
		defer func() {
			if r := recover(); r != "kaboom" {
				t.Errorf("recovered %v, want the panic to propagate", r)
			}
		}()
		s.Update(t.Context(), func(tx sipdesk.Tx) error {
			if err := tx.InsertCustomer(c); err != nil {
				return err
			}
			panic("kaboom")
		})
	}()
	view(t, s, func(tx sipdesk.Tx) error {
		_, err := tx.CustomerByEmail(c.Email)
		wantCode(t, "customer of a panicked Update", err, sipdesk.ENotFound, "")
		return nil
	})
	// The writer is free again.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := s.Update(ctx, func(tx sipdesk.Tx) error { return tx.InsertCustomer(c) }); err != nil {
		t.Fatalf("Update after a panic: %v", err)
	}
}

func testViewReadOnly(t *testing.T, su *suite) {
	s := su.open(t)
	c := &sipdesk.Customer{Email: "ro-" + uniq() + "@example.com", BillingState: sipdesk.BillingTrial}
	err := s.View(t.Context(), func(tx sipdesk.Tx) error { return tx.InsertCustomer(c) })
	if err == nil {
		t.Error("InsertCustomer in View succeeded")
	}
	view(t, s, func(tx sipdesk.Tx) error {
		_, err := tx.CustomerByEmail(c.Email)
		wantCode(t, "customer inserted in View", err, sipdesk.ENotFound, "")
		return nil
	})
}

func testConcurrentUpdates(t *testing.T, su *suite) {
	stores := []sipdesk.Store{su.open(t), su.open(t)} // as two processes would
	c := newCustomer(t, stores[0])
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- stores[i%2].Update(t.Context(), func(tx sipdesk.Tx) error {
				got, err := tx.Customer(c.ID, true)
				if err != nil {
					return err
				}
				time.Sleep(time.Millisecond) // widen the window a lost update needs
				got.ChannelLimit++
				return tx.UpdateCustomer(got)
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Update: %v", err)
		}
	}
	view(t, stores[1], func(tx sipdesk.Tx) error {
		got, err := tx.Customer(c.ID, false)
		if err != nil {
			return err
		}
		equal(t, "ChannelLimit after concurrent increments", got.ChannelLimit, c.ChannelLimit+n)
		return nil
	})
}
