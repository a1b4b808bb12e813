package storetest

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// SIP accounts (store: sipaccount.go).

func fullAccount(customerID int64, ruleIDs []int64) *sipdesk.SIPAccount {
	u := "full" + uniq()
	return &sipdesk.SIPAccount{
		CustomerID: customerID,
		Name:       "Office phone " + u,
		AuthType:   sipdesk.AuthPassword,
		Username:   u,
		Digest:     sipdesk.NewDigestHashes(u, "sip.example.com", "Known-Password-42"),
		AllowedIPs: []sipdesk.AllowedIP{
			{Prefix: netip.MustParsePrefix("203.0.113.7/32")},
			{Prefix: netip.MustParsePrefix("198.51.100.0/24")},
			{Prefix: netip.MustParsePrefix("2001:db8:1::/48")},
			{Prefix: netip.MustParsePrefix("203.0.113.7/32"), Port: 5084},
			{Prefix: netip.MustParsePrefix("2001:db8::1/128"), Port: 5060},
		},
		TechPrefix:     "1234",
		Status:         sipdesk.StatusInProcess,
		PendingVersion: 42,
		HeldForReview:  true,
		PrevStatus:     sipdesk.StatusInactive,
		JWTEnabled:     true,
		JWTSecret:      "AbCdEfGhIjKlMnOpQrStUvWxYz012345",
		JWTPrevSecret:  "ZyXwVuTsRqPoNmLkJiHgFeDcBa987654",
		JWTPrevUntil:   at(24 * time.Hour),
		ChannelCap:     3,
		CallerID: sipdesk.CallerIDSetting{
			DefaultNumber: "+1555" + digits(7),
			DisplayName:   "Front desk",
			RuleIDs:       ruleIDs,
		},
		CreatedAt: at(0),
	}
}

func testSIPAccountRoundTrip(t *testing.T, su *suite) {
	s := su.open(t)
	c := newCustomer(t, s)
	r1, r2 := newRule(t, s, c.ID, "+15550001"), newRule(t, s, c.ID)
	a := fullAccount(c.ID, []int64{r2.ID, r1.ID}) // selection order is kept
	ip := &sipdesk.SIPAccount{
		CustomerID: c.ID,
		Name:       "trunk " + uniq(),
		AuthType:   sipdesk.AuthIP,
		AllowedIPs: []sipdesk.AllowedIP{{Prefix: netip.MustParsePrefix("192.0.2.10/32")}},
		TechPrefix: "0042",
		Status:     sipdesk.StatusActive,
	}
	ip2 := &sipdesk.SIPAccount{CustomerID: c.ID, Name: "trunk2 " + uniq(), AuthType: sipdesk.AuthIP,
		AllowedIPs: []sipdesk.AllowedIP{{Prefix: netip.MustParsePrefix("192.0.2.11/32")}}, Status: sipdesk.StatusActive}
	update(t, s, func(tx sipdesk.Tx) error {
		for _, x := range []*sipdesk.SIPAccount{a, ip, ip2} {
			if err := tx.InsertSIPAccount(x); err != nil {
				return err
			}
		}
		return nil
	})
	if a.ID == 0 || ip.ID == 0 || a.UpdatedAt.IsZero() || ip.CreatedAt.IsZero() {
		t.Fatalf("InsertSIPAccount did not set ID/CreatedAt/UpdatedAt: %+v", ip)
	}
	if !a.CreatedAt.Equal(at(0)) {
		t.Errorf("InsertSIPAccount changed a given CreatedAt to %v", a.CreatedAt)
	}
	view(t, s, func(tx sipdesk.Tx) error {
		for _, cid := range []int64{c.ID, 0} {
			got, err := tx.SIPAccount(cid, a.ID)
			if err != nil {
				return err
			}
			equal(t, fmt.Sprintf("SIPAccount(%d)", cid), got, a)
		}
		got, err := tx.SIPAccount(c.ID, ip.ID)
		if err != nil {
			return err
		}
		equal(t, "SIPAccount (IP)", got, ip)
		got, err = tx.SIPAccountByUsername(a.Username)
		if err != nil {
			return err
		}
		equal(t, "SIPAccountByUsername", got, a)
		_, err = tx.SIPAccountByUsername("")
		wantCode(t, "SIPAccountByUsername empty", err, sipdesk.ENotFound, "")
		_, err = tx.SIPAccountByUsername("missing" + uniq())
		wantCode(t, "SIPAccountByUsername unknown", err, sipdesk.ENotFound, "")

		list, err := tx.SIPAccounts(c.ID)
		if err != nil {
			return err
		}
		equal(t, "SIPAccounts", list, []*sipdesk.SIPAccount{a, ip, ip2})
		all, err := tx.SIPAccounts(0)
		if err != nil {
			return err
		}
		if i := slices.Index(ids(all, func(a *sipdesk.SIPAccount) int64 { return a.ID }), a.ID); i < 0 {
			t.Error("SIPAccounts(0) misses the account")
		} else {
			equal(t, "SIPAccounts(0) entry", all[i], a)
		}
		ipl, err := tx.IPAccounts()
		if err != nil {
			return err
		}
		gotIDs := ids(ipl, func(a *sipdesk.SIPAccount) int64 { return a.ID })
		if !slices.Contains(gotIDs, ip.ID) || !slices.Contains(gotIDs, ip2.ID) || slices.Contains(gotIDs, a.ID) {
			t.Errorf("IPAccounts ids %v, want %d and %d and not %d", gotIDs, ip.ID, ip2.ID, a.ID)
		}
		for _, x := range ipl {
			if x.ID == ip.ID {
				equal(t, "IPAccounts entry", x, ip)
			}
		}
		n, err := tx.CountSIPAccounts(c.ID)
		if err != nil {
			return err
		}
		equal(t, "CountSIPAccounts", n, 3)
		n0, err := tx.CountSIPAccounts(0)
		if err != nil {
			return err
		}
		if n0 < 3 {
			t.Errorf("CountSIPAccounts(0) = %d, want at least 3", n0)
		}
		return nil
	})
}

func testSIPAccountUpdate(t *testing.T, su *suite) {
	s := su.open(t)
	c := newCustomer(t, s)
	r1, r2, r3 := newRule(t, s, c.ID), newRule(t, s, c.ID), newRule(t, s, c.ID)
	a := fullAccount(c.ID, []int64{r1.ID, r2.ID})
	update(t, s, func(tx sipdesk.Tx) error { return tx.InsertSIPAccount(a) })
	before := a.UpdatedAt

	u := "new" + uniq()
	a.Name, a.Username, a.Digest = "Renamed "+u, u, sipdesk.NewDigestHashes(u, "sip.example.com", "Other-Password-7")
	a.AllowedIPs = []sipdesk.AllowedIP{{Prefix: netip.MustParsePrefix("2001:db8:ffff::1/128")}}
	a.TechPrefix, a.Status, a.PendingVersion, a.HeldForReview, a.PrevStatus = "", sipdesk.StatusActive, 0, false, ""
	a.JWTEnabled, a.JWTSecret, a.JWTPrevSecret, a.JWTPrevUntil = true, "NewSecretNewSecretNewSecret12345", a.JWTSecret, at(48*time.Hour)
	a.ChannelCap = 0
	a.CallerID = sipdesk.CallerIDSetting{DefaultNumber: "+4930" + digits(8), DisplayName: "", RuleIDs: []int64{r3.ID, r1.ID}}
	time.Sleep(2 * time.Millisecond)
	update(t, s, func(tx sipdesk.Tx) error { return tx.UpdateSIPAccount(a) })
	if !a.UpdatedAt.After(before) {
		t.Errorf("UpdateSIPAccount set UpdatedAt %v, want after %v", a.UpdatedAt, before)
	}
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.SIPAccount(c.ID, a.ID)
		if err != nil {
			return err
		}
		equal(t, "SIPAccount after update", got, a)
		return nil
	})

	// Clearing everything optional, as the operator (customer 0).
	op := *a
	op.CustomerID = 0
	op.AllowedIPs, op.CallerID.RuleIDs = nil, nil
	op.JWTEnabled, op.JWTSecret, op.JWTPrevSecret, op.JWTPrevUntil = false, "", "", time.Time{}
	update(t, s, func(tx sipdesk.Tx) error { return tx.UpdateSIPAccount(&op) })
	op.CustomerID = c.ID
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.SIPAccount(0, a.ID)
		if err != nil {
			return err
		}
		equal(t, "SIPAccount after clearing", got, &op)
		return nil
	})
}

func testSIPAccountScoping(t *testing.T, su *suite) {
	s := su.open(t)
	ca, cb := newCustomer(t, s), newCustomer(t, s)
	a := newPasswordAccount(t, s, ca.ID)
	view(t, s, func(tx sipdesk.Tx) error {
		_, err := tx.SIPAccount(cb.ID, a.ID)
		wantCode(t, "SIPAccount by another customer", err, sipdesk.ENotFound, "")
		list, err := tx.SIPAccounts(cb.ID)
		if err != nil {
			return err
		}
		equal(t, "SIPAccounts of another customer", len(list), 0)
		n, err := tx.CountSIPAccounts(cb.ID)
		if err != nil {
			return err
		}
		equal(t, "CountSIPAccounts of another customer", n, 0)
		return nil
	})
	hijack := *a
	hijack.CustomerID, hijack.Name = cb.ID, "stolen"
	wantCode(t, "UpdateSIPAccount by another customer", txErr(t, s, func(tx sipdesk.Tx) error { return tx.UpdateSIPAccount(&hijack) }), sipdesk.ENotFound, "")
	wantCode(t, "DeleteSIPAccount by another customer", txErr(t, s, func(tx sipdesk.Tx) error { return tx.DeleteSIPAccount(cb.ID, a.ID) }), sipdesk.ENotFound, "")
	wantCode(t, "UpdateSIPAccount unknown", txErr(t, s, func(tx sipdesk.Tx) error {
		x := *a
		x.ID = 1 << 50
		return tx.UpdateSIPAccount(&x)
	}), sipdesk.ENotFound, "")
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.SIPAccount(ca.ID, a.ID)
		if err != nil {
			return err
		}
		equal(t, "SIPAccount untouched", got, a)
		return nil
	})
	update(t, s, func(tx sipdesk.Tx) error { return tx.DeleteSIPAccount(ca.ID, a.ID) })
	wantCode(t, "DeleteSIPAccount twice", txErr(t, s, func(tx sipdesk.Tx) error { return tx.DeleteSIPAccount(ca.ID, a.ID) }), sipdesk.ENotFound, "")
}

func testSIPAccountForeignRule(t *testing.T, su *suite) {
	s := su.open(t)
	ca, cb := newCustomer(t, s), newCustomer(t, s)
	rb := newRule(t, s, cb.ID)
	a := fullAccount(ca.ID, []int64{rb.ID})
	wantCode(t, "InsertSIPAccount selecting another customer's rule", txErr(t, s, func(tx sipdesk.Tx) error { return tx.InsertSIPAccount(a) }), sipdesk.EInvalid, "rule_ids")
	a = newPasswordAccount(t, s, ca.ID)
	a.CallerID.RuleIDs = []int64{rb.ID}
	wantCode(t, "UpdateSIPAccount selecting another customer's rule", txErr(t, s, func(tx sipdesk.Tx) error { return tx.UpdateSIPAccount(a) }), sipdesk.EInvalid, "rule_ids")
	a.CallerID.RuleIDs = []int64{1 << 50}
	wantCode(t, "UpdateSIPAccount selecting a missing rule", txErr(t, s, func(tx sipdesk.Tx) error { return tx.UpdateSIPAccount(a) }), sipdesk.EInvalid, "rule_ids")
}

func testUsernameConflict(t *testing.T, su *suite) {
	s := su.open(t)
	ca, cb := newCustomer(t, s), newCustomer(t, s)
	a := newPasswordAccount(t, s, ca.ID)
	dup := &sipdesk.SIPAccount{CustomerID: cb.ID, Name: "other", AuthType: sipdesk.AuthPassword, Username: a.Username, Status: sipdesk.StatusActive}
	wantCode(t, "InsertSIPAccount with a used username", txErr(t, s, func(tx sipdesk.Tx) error { return tx.InsertSIPAccount(dup) }), sipdesk.EConflict, "username")
	b := newPasswordAccount(t, s, cb.ID)
	b.Username = a.Username
	wantCode(t, "UpdateSIPAccount to a used username", txErr(t, s, func(tx sipdesk.Tx) error { return tx.UpdateSIPAccount(b) }), sipdesk.EConflict, "username")

	// IP accounts have no username: any number of them is fine.
	update(t, s, func(tx sipdesk.Tx) error {
		for i, c := range []int64{ca.ID, ca.ID, cb.ID} {
			ip := &sipdesk.SIPAccount{CustomerID: c, Name: fmt.Sprintf("ip %d %s", i, uniq()), AuthType: sipdesk.AuthIP,
				AllowedIPs: []sipdesk.AllowedIP{{Prefix: netip.MustParsePrefix("192.0.2.1/32")}}, Status: sipdesk.StatusActive}
			if err := tx.InsertSIPAccount(ip); err != nil {
				return err
			}
		}
		return nil
	})
}

func testNameConflict(t *testing.T, su *suite) {
	s := su.open(t)
	ca, cb := newCustomer(t, s), newCustomer(t, s)
	a := newPasswordAccount(t, s, ca.ID)
	dup := &sipdesk.SIPAccount{CustomerID: ca.ID, Name: a.Name, AuthType: sipdesk.AuthPassword, Username: "x" + uniq(), Status: sipdesk.StatusActive}
	err := txErr(t, s, func(tx sipdesk.Tx) error { return tx.InsertSIPAccount(dup) })
	wantCode(t, "InsertSIPAccount with a used name", err, sipdesk.EConflict, "name")
	if msg := sipdesk.ErrorMessage(err); msg != "name: name is already used by another SIP account" {
		t.Errorf("conflict message %q", msg)
	}
	b := newPasswordAccount(t, s, ca.ID)
	b.Name = a.Name
	wantCode(t, "UpdateSIPAccount to a used name", txErr(t, s, func(tx sipdesk.Tx) error { return tx.UpdateSIPAccount(b) }), sipdesk.EConflict, "name")
	// The same name in another customer is fine.
	other := &sipdesk.SIPAccount{CustomerID: cb.ID, Name: a.Name, AuthType: sipdesk.AuthPassword, Username: "y" + uniq(), Status: sipdesk.StatusActive}
	update(t, s, func(tx sipdesk.Tx) error { return tx.InsertSIPAccount(other) })
}

func testDeleteSIPAccountCascade(t *testing.T, su *suite) {
	s := su.open(t)
	c := newCustomer(t, s)
	r := newRule(t, s, c.ID)
	a, keep := fullAccount(c.ID, []int64{r.ID}), newPasswordAccount(t, s, c.ID)
	did, keepDID := "+1800"+digits(8), "+1801"+digits(8)
	reset := &sipdesk.CredentialReset{CustomerID: c.ID, TokenHash: sipdesk.HashToken(uniq()), ExpiresAt: at(time.Hour)}
	update(t, s, func(tx sipdesk.Tx) error {
		if err := tx.InsertSIPAccount(a); err != nil {
			return err
		}
		reset.SIPAccountID = a.ID
		if err := tx.InsertCredentialReset(reset); err != nil {
			return err
		}
		if err := tx.UpsertDID(&sipdesk.DID{Number: did, SIPAccountID: a.ID}); err != nil {
			return err
		}
		if err := tx.UpsertDID(&sipdesk.DID{Number: keepDID, SIPAccountID: keep.ID}); err != nil {
			return err
		}
		for _, id := range []int64{a.ID, keep.ID} {
			if err := tx.PutRegistration(&sipdesk.Registration{SIPAccountID: id, Contact: "sip:x@192.0.2.1:5060", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
				return err
			}
		}
		return nil
	})
	update(t, s, func(tx sipdesk.Tx) error { return tx.DeleteSIPAccount(c.ID, a.ID) })
	view(t, s, func(tx sipdesk.Tx) error {
		_, err := tx.SIPAccount(0, a.ID)
		wantCode(t, "SIPAccount after delete", err, sipdesk.ENotFound, "")
		regs, err := tx.Registrations(a.ID)
		if err != nil {
			return err
		}
		equal(t, "registrations of the deleted account", len(regs), 0)
		regs, err = tx.Registrations(keep.ID)
		if err != nil {
			return err
		}
		equal(t, "registrations of the other account", len(regs), 1)
		_, err = tx.DID(did)
		wantCode(t, "DID of the deleted account", err, sipdesk.ENotFound, "")
		if _, err := tx.DID(keepDID); err != nil {
			t.Errorf("DID of the other account: %v", err)
		}
		_, err = tx.CredentialResetByHash(reset.TokenHash)
		wantCode(t, "credential reset of the deleted account", err, sipdesk.ENotFound, "")
		if _, err := tx.Rule(c.ID, r.ID); err != nil {
			t.Errorf("the selected rule went with the account: %v", err)
		}
		n, err := tx.CountSIPAccounts(c.ID)
		if err != nil {
			return err
		}
		equal(t, "CountSIPAccounts after delete", n, 1)
		return nil
	})
	// The name and username are free again.
	again := fullAccount(c.ID, nil)
	again.Name, again.Username = a.Name, a.Username
	update(t, s, func(tx sipdesk.Tx) error { return tx.InsertSIPAccount(again) })
}
