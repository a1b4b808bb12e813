package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Caller ID numbers and rules (store: callerid.go).

func testCallerIDNumbers(t *testing.T, su *suite) {
	s := su.open(t)
	ca, cb := newCustomer(t, s), newCustomer(t, s)
	n1 := &sipdesk.CallerIDNumber{CustomerID: ca.ID, Number: "+4930" + digits(8), CodeHash: sipdesk.HashToken("123456"), ExpiresAt: at(10 * time.Minute), Attempts: 2, CreatedAt: at(0)}
	n2 := &sipdesk.CallerIDNumber{CustomerID: ca.ID, Number: "+1555" + digits(7), Verified: true}
	update(t, s, func(tx sipdesk.Tx) error {
		if err := tx.InsertCallerIDNumber(n1); err != nil {
			return err
		}
		return tx.InsertCallerIDNumber(n2)
	})
	if n1.ID == 0 || n2.CreatedAt.IsZero() {
		t.Fatalf("InsertCallerIDNumber did not set ID/CreatedAt")
	}
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.CallerIDNumber(ca.ID, n1.ID)
		if err != nil {
			return err
		}
		equal(t, "CallerIDNumber", got, n1)
		list, err := tx.CallerIDNumbers(ca.ID)
		if err != nil {
			return err
		}
		equal(t, "CallerIDNumbers", list, []*sipdesk.CallerIDNumber{n1, n2})
		list, err = tx.CallerIDNumbers(cb.ID)
		if err != nil {
			return err
		}
		equal(t, "CallerIDNumbers of another customer", len(list), 0)
		_, err = tx.CallerIDNumber(cb.ID, n1.ID)
		wantCode(t, "CallerIDNumber by another customer", err, sipdesk.ENotFound, "")
		return nil
	})

	dup := &sipdesk.CallerIDNumber{CustomerID: ca.ID, Number: n1.Number}
	wantCode(t, "InsertCallerIDNumber twice", txErr(t, s, func(tx sipdesk.Tx) error { return tx.InsertCallerIDNumber(dup) }), sipdesk.EConflict, "number")
	// Another customer may add the same number.
	same := &sipdesk.CallerIDNumber{CustomerID: cb.ID, Number: n1.Number}
	update(t, s, func(tx sipdesk.Tx) error { return tx.InsertCallerIDNumber(same) })

	n1.Verified, n1.CodeHash, n1.ExpiresAt, n1.Attempts = true, "", time.Time{}, 0
	update(t, s, func(tx sipdesk.Tx) error { return tx.UpdateCallerIDNumber(n1) })
	hijack := *n2
	hijack.CustomerID = cb.ID
	wantCode(t, "UpdateCallerIDNumber by another customer", txErr(t, s, func(tx sipdesk.Tx) error { return tx.UpdateCallerIDNumber(&hijack) }), sipdesk.ENotFound, "")
	wantCode(t, "DeleteCallerIDNumber by another customer", txErr(t, s, func(tx sipdesk.Tx) error { return tx.DeleteCallerIDNumber(cb.ID, n2.ID) }), sipdesk.ENotFound, "")
	n2dup := *n2
	n2dup.Number = n1.Number
	wantCode(t, "UpdateCallerIDNumber to a used number", txErr(t, s, func(tx sipdesk.Tx) error { return tx.UpdateCallerIDNumber(&n2dup) }), sipdesk.EConflict, "number")
	update(t, s, func(tx sipdesk.Tx) error { return tx.DeleteCallerIDNumber(ca.ID, n2.ID) })
	wantCode(t, "DeleteCallerIDNumber twice", txErr(t, s, func(tx sipdesk.Tx) error { return tx.DeleteCallerIDNumber(ca.ID, n2.ID) }), sipdesk.ENotFound, "")
	view(t, s, func(tx sipdesk.Tx) error {
		list, err := tx.CallerIDNumbers(ca.ID)
		if err != nil {
			return err
		}
		equal(t, "CallerIDNumbers after update and delete", list, []*sipdesk.CallerIDNumber{n1})
		return nil
	})
}

func testRules(t *testing.T, su *suite) {
	s := su.open(t)
	ca, cb := newCustomer(t, s), newCustomer(t, s)
	r1 := &sipdesk.CallerIDRule{CustomerID: ca.ID, Name: "Germany", ApplyFor: sipdesk.ScopeCountry, Country: "DE",
		Type: sipdesk.RuleSpecific, Numbers: []string{"+4930111", "+4930222", "+4930333"}, DisplayName: "Berlin office"}
	r2 := &sipdesk.CallerIDRule{CustomerID: ca.ID, Name: "UK mobiles", ApplyFor: sipdesk.ScopePrefix, Prefix: "447", Type: sipdesk.RuleBlocked}
	r3 := &sipdesk.CallerIDRule{CustomerID: ca.ID, Name: "Rest", ApplyFor: sipdesk.ScopeAllCalls, Type: sipdesk.RuleSetByCaller}
	update(t, s, func(tx sipdesk.Tx) error {
		for _, r := range []*sipdesk.CallerIDRule{r1, r2, r3} {
			if err := tx.InsertRule(r); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx sipdesk.Tx) error {
		for _, cid := range []int64{ca.ID, 0} {
			got, err := tx.Rule(cid, r1.ID)
			if err != nil {
				return err
			}
			equal(t, "Rule", got, r1)
		}
		list, err := tx.Rules(ca.ID)
		if err != nil {
			return err
		}
		equal(t, "Rules", list, []*sipdesk.CallerIDRule{r1, r2, r3})
		all, err := tx.Rules(0)
		if err != nil {
			return err
		}
		if !slices.Contains(ids(all, func(r *sipdesk.CallerIDRule) int64 { return r.ID }), r2.ID) {
			t.Error("Rules(0) misses a rule")
		}
		list, err = tx.Rules(cb.ID)
		if err != nil {
			return err
		}
		equal(t, "Rules of another customer", len(list), 0)
		_, err = tx.Rule(cb.ID, r1.ID)
		wantCode(t, "Rule by another customer", err, sipdesk.ENotFound, "")
		return nil
	})

	r1.Name, r1.ApplyFor, r1.Country, r1.Prefix, r1.Numbers, r1.DisplayName = "Berlin", sipdesk.ScopePrefix, "", "4930", []string{"+4930999"}, ""
	update(t, s, func(tx sipdesk.Tx) error { return tx.UpdateRule(r1) })
	hijack := *r2
	hijack.CustomerID = cb.ID
	wantCode(t, "UpdateRule by another customer", txErr(t, s, func(tx sipdesk.Tx) error { return tx.UpdateRule(&hijack) }), sipdesk.ENotFound, "")
	wantCode(t, "DeleteRule by another customer", txErr(t, s, func(tx sipdesk.Tx) error { return tx.DeleteRule(cb.ID, r2.ID) }), sipdesk.ENotFound, "")
	update(t, s, func(tx sipdesk.Tx) error { return tx.DeleteRule(ca.ID, r3.ID) })
	wantCode(t, "DeleteRule twice", txErr(t, s, func(tx sipdesk.Tx) error { return tx.DeleteRule(ca.ID, r3.ID) }), sipdesk.ENotFound, "")
	view(t, s, func(tx sipdesk.Tx) error {
		list, err := tx.Rules(ca.ID)
		if err != nil {
			return err
		}
		equal(t, "Rules after update and delete", list, []*sipdesk.CallerIDRule{r1, r2})
		return nil
	})
}

func testDeleteRuleCascade(t *testing.T, su *suite) {
	s := su.open(t)
	c := newCustomer(t, s)
	r1, r2 := newRule(t, s, c.ID), newRule(t, s, c.ID)
	a, b := fullAccount(c.ID, []int64{r1.ID, r2.ID}), fullAccount(c.ID, []int64{r2.ID})
	update(t, s, func(tx sipdesk.Tx) error {
		if err := tx.InsertSIPAccount(a); err != nil {
			return err
		}
		return tx.InsertSIPAccount(b)
	})
	update(t, s, func(tx sipdesk.Tx) error { return tx.DeleteRule(c.ID, r2.ID) })
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.SIPAccount(c.ID, a.ID)
		if err != nil {
			return err
		}
		equal(t, "selection of a", got.CallerID.RuleIDs, []int64{r1.ID})
		got, err = tx.SIPAccount(c.ID, b.ID)
		if err != nil {
			return err
		}
		equal(t, "selection of b", len(got.CallerID.RuleIDs), 0)
		return nil
	})
}
