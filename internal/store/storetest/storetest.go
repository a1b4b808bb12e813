// Package storetest is the conformance suite of sipdesk.Store: every engine
// runs the same tests.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Run runs the suite. Every call of open must return a new, independent
// Store on one and the same database for the whole Run (the suite opens a
// second Store to check what other processes see) and close it in
// t.Cleanup; Close must tolerate being called again. The database may hold
// other data: the suite only asserts on what it creates, and its subtests
// do not run in parallel.
func Run(t *testing.T, open func(t *testing.T) sipdesk.Store) {
	s := &suite{open: open}
	tests := []struct {
		name string
		fn   func(t *testing.T, s *suite)
	}{
		{"customer round trips every field", testCustomerRoundTrip},
		{"duplicate email is a conflict on email", testCustomerConflict},
		{"missing customer is not found", testCustomerNotFound},
		{"API tokens round trip and are scoped to their customer", testAPITokens},
		{"SIP account round trips every field", testSIPAccountRoundTrip},
		{"SIP account update replaces every field, IPs and rules", testSIPAccountUpdate},
		{"another customer's SIP account is not found", testSIPAccountScoping},
		{"selecting another customer's rule is invalid", testSIPAccountForeignRule},
		{"duplicate username across customers is a conflict on username", testUsernameConflict},
		{"duplicate name within a customer is a conflict on name", testNameConflict},
		{"Caller ID numbers round trip, conflict on number and are scoped", testCallerIDNumbers},
		{"rules round trip with their numbers and are scoped", testRules},
		{"deleting a rule removes it from every selection", testDeleteRuleCascade},
		{"deleting a SIP account cascades to what hangs off it", testDeleteSIPAccountCascade},
		{"tickets round trip, filter by status and are scoped", testTickets},
		{"audit log is newest first and scoped", testAudit},
		{"credential resets round trip and are bound to the customer's account", testCredentialResets},
		{"outbox lists newest first and tracks sending", testMails},
		{"a mail is claimed once and can be released", testMailClaim},
		{"sessions round trip, delete and expire", testSessions},
		{"DIDs upsert, move and are scoped", testDIDs},
		{"registrations replace by contact and expire", testRegistrations},
		{"nodes are filtered by heartbeat", testNodes},
		{"config version increments and is visible to a second store", testConfigVersion},
		{"lazy and ordinary commits alternate and both persist", testLazyCommit},
		{"error in Update rolls everything back", testRollbackOnError},
		{"panic in Update rolls back and the store stays usable", testRollbackOnPanic},
		{"writes in View fail", testViewReadOnly},
		{"concurrent Updates are serialised", testConcurrentUpdates},
		{"leases count, renew, expire and release once", testLeases},
		{"lease acquire-or-refuse from two stores admits exactly the limit", testLeaseExactness},
		{"call records round trip, filter and page newest first", testCallRecords},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, s) })
	}
}

type suite struct {
	open func(t *testing.T) sipdesk.Store
}

// Helpers.

func uniq() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// digits returns n random decimal digits, for unique E.164 numbers.
func digits(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return string(b)
}

func ms(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }

// at returns a fixed time at the store's precision, off by d from a base.
func at(d time.Duration) time.Time {
	return ms(time.Date(2031, 5, 17, 10, 20, 30, 123456789, time.UTC).Add(d))
}

func update(t *testing.T, s sipdesk.Store, fn func(sipdesk.Tx) error) {
	t.Helper()
	if err := s.Update(t.Context(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func view(t *testing.T, s sipdesk.Store, fn func(sipdesk.Tx) error) {
	t.Helper()
	if err := s.View(t.Context(), fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %s\n want %s", what, dump(got), dump(want))
	}
}

func dump(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		s := "["
		for i := 0; i < rv.Len(); i++ {
			s += dump(rv.Index(i).Interface()) + " "
		}
		return s + "]"
	}
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		return fmt.Sprintf("&%+v", rv.Elem().Interface())
	}
	return fmt.Sprintf("%+v", v)
}

// wantCode checks that err is a sipdesk error with code (and field when not "").
func wantCode(t *testing.T, what string, err error, code, field string) {
	t.Helper()
	if got := sipdesk.ErrorCode(err); got != code {
		t.Errorf("%s: error %v has code %q, want %q", what, err, got, code)
		return
	}
	if field != "" && sipdesk.ErrorField(err) != field {
		t.Errorf("%s: error %v has field %q, want %q", what, err, sipdesk.ErrorField(err), field)
	}
	var de *sipdesk.Error
	if errors.As(err, &de) && de.Message == "" {
		t.Errorf("%s: error has no message", what)
	}
}

// txErr runs fn in its own Update and returns its error.
func txErr(t *testing.T, s sipdesk.Store, fn func(sipdesk.Tx) error) error {
	t.Helper()
	return s.Update(t.Context(), fn)
}

func newCustomer(t *testing.T, s sipdesk.Store) *sipdesk.Customer {
	t.Helper()
	c := &sipdesk.Customer{
		Email:           "c-" + uniq() + "@example.com",
		PasswordHash:    "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA",
		VerifiedPhone:   "+1" + digits(10),
		BillingState:    sipdesk.BillingPaid,
		ChannelLimit:    10,
		ChannelScope:    sipdesk.ScopeOutbound,
		SIPAccountQuota: 10,
	}
	update(t, s, func(tx sipdesk.Tx) error { return tx.InsertCustomer(c) })
	return c
}

func newPasswordAccount(t *testing.T, s sipdesk.Store, customerID int64) *sipdesk.SIPAccount {
	t.Helper()
	u := "u" + uniq()
	a := &sipdesk.SIPAccount{
		CustomerID: customerID,
		Name:       "pw " + u,
		AuthType:   sipdesk.AuthPassword,
		Username:   u,
		Digest:     sipdesk.NewDigestHashes(u, "sip.example.com", "Secret-Password-1"),
		Status:     sipdesk.StatusActive,
	}
	update(t, s, func(tx sipdesk.Tx) error { return tx.InsertSIPAccount(a) })
	return a
}

func newRule(t *testing.T, s sipdesk.Store, customerID int64, numbers ...string) *sipdesk.CallerIDRule {
	t.Helper()
	r := &sipdesk.CallerIDRule{
		CustomerID: customerID,
		Name:       "rule " + uniq(),
		ApplyFor:   sipdesk.ScopeAllCalls,
		Type:       sipdesk.RuleSpecific,
		Numbers:    numbers,
	}
	update(t, s, func(tx sipdesk.Tx) error { return tx.InsertRule(r) })
	return r
}

func ids[T any](list []T, id func(T) int64) []int64 {
	var out []int64
	for _, v := range list {
		out = append(out, id(v))
	}
	return out
}

// Customers.

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

// API tokens.

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

// SIP accounts.

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

// Caller ID.

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

// Tickets, audit, resets, mail.

func testTickets(t *testing.T, su *suite) {
	s := su.open(t)
	ca, cb := newCustomer(t, s), newCustomer(t, s)
	k1 := &sipdesk.Ticket{CustomerID: ca.ID, Kind: sipdesk.TicketChannelLimit, Wanted: 50, Reason: "call centre", Status: sipdesk.TicketOpen, CreatedAt: at(0)}
	k2 := &sipdesk.Ticket{CustomerID: ca.ID, Kind: sipdesk.TicketSIPAccounts, Wanted: 20, Status: sipdesk.TicketDeclined, Message: "no", DecidedAt: at(time.Hour)}
	update(t, s, func(tx sipdesk.Tx) error {
		if err := tx.InsertTicket(k1); err != nil {
			return err
		}
		return tx.InsertTicket(k2)
	})
	if k1.ID == 0 || k2.CreatedAt.IsZero() {
		t.Fatal("InsertTicket did not set ID/CreatedAt")
	}
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.Ticket(ca.ID, k1.ID)
		if err != nil {
			return err
		}
		equal(t, "Ticket", got, k1)
		list, err := tx.Tickets(ca.ID, "")
		if err != nil {
			return err
		}
		equal(t, "Tickets", list, []*sipdesk.Ticket{k1, k2})
		list, err = tx.Tickets(ca.ID, sipdesk.TicketOpen)
		if err != nil {
			return err
		}
		equal(t, "Tickets open", list, []*sipdesk.Ticket{k1})
		list, err = tx.Tickets(0, sipdesk.TicketDeclined)
		if err != nil {
			return err
		}
		if got := ids(list, func(k *sipdesk.Ticket) int64 { return k.ID }); !slices.Contains(got, k2.ID) || slices.Contains(got, k1.ID) {
			t.Errorf("Tickets(0, declined) = %v, want %d and not %d", got, k2.ID, k1.ID)
		}
		list, err = tx.Tickets(cb.ID, "")
		if err != nil {
			return err
		}
		equal(t, "Tickets of another customer", len(list), 0)
		_, err = tx.Ticket(cb.ID, k1.ID)
		wantCode(t, "Ticket by another customer", err, sipdesk.ENotFound, "")
		return nil
	})
	k1.Status, k1.Message, k1.DecidedAt = sipdesk.TicketApproved, "done", at(2*time.Hour)
	hijack := *k1
	hijack.CustomerID = cb.ID
	wantCode(t, "UpdateTicket by another customer", txErr(t, s, func(tx sipdesk.Tx) error { return tx.UpdateTicket(&hijack) }), sipdesk.ENotFound, "")
	update(t, s, func(tx sipdesk.Tx) error { return tx.UpdateTicket(k1) })
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.Ticket(0, k1.ID)
		if err != nil {
			return err
		}
		equal(t, "Ticket after update", got, k1)
		return nil
	})
}

func testAudit(t *testing.T, su *suite) {
	s := su.open(t)
	ca, cb := newCustomer(t, s), newCustomer(t, s)
	var want []*sipdesk.AuditEntry
	update(t, s, func(tx sipdesk.Tx) error {
		for i := range 5 {
			e := &sipdesk.AuditEntry{CustomerID: ca.ID, SIPAccountID: int64(i), Actor: "customer", Action: sipdesk.AuditSIPAccountUpdated, Detail: fmt.Sprintf("change %d", i), At: at(time.Duration(i) * time.Second)}
			if i == 4 {
				e.At = at(2 * time.Second) // same time as entry 2: id breaks the tie
			}
			if err := tx.InsertAudit(e); err != nil {
				return err
			}
			want = append(want, e)
		}
		return tx.InsertAudit(&sipdesk.AuditEntry{CustomerID: cb.ID, Actor: "operator", Action: sipdesk.AuditTopUp})
	})
	newest := []*sipdesk.AuditEntry{want[3], want[4], want[2], want[1], want[0]}
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.Audit(ca.ID, 0)
		if err != nil {
			return err
		}
		equal(t, "Audit", got, newest)
		got, err = tx.Audit(ca.ID, 2)
		if err != nil {
			return err
		}
		equal(t, "Audit limit 2", got, newest[:2])
		got, err = tx.Audit(cb.ID, 10)
		if err != nil {
			return err
		}
		if len(got) != 1 || got[0].Action != sipdesk.AuditTopUp || got[0].At.IsZero() || got[0].ID == 0 {
			t.Errorf("Audit of the other customer: %s", dump(got))
		}
		all, err := tx.Audit(0, 0)
		if err != nil {
			return err
		}
		if !slices.Contains(ids(all, func(e *sipdesk.AuditEntry) int64 { return e.ID }), want[0].ID) {
			t.Error("Audit(0) misses an entry")
		}
		return nil
	})
}

func testCredentialResets(t *testing.T, su *suite) {
	s := su.open(t)
	ca, cb := newCustomer(t, s), newCustomer(t, s)
	a := newPasswordAccount(t, s, ca.ID)
	r := &sipdesk.CredentialReset{CustomerID: ca.ID, SIPAccountID: a.ID, TokenHash: sipdesk.HashToken(uniq()), ExpiresAt: at(30 * time.Minute), CreatedAt: at(0)}
	update(t, s, func(tx sipdesk.Tx) error { return tx.InsertCredentialReset(r) })
	if r.ID == 0 {
		t.Fatal("InsertCredentialReset did not set ID")
	}
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.CredentialResetByHash(r.TokenHash)
		if err != nil {
			return err
		}
		equal(t, "CredentialResetByHash", got, r)
		_, err = tx.CredentialResetByHash(sipdesk.HashToken("unknown"))
		wantCode(t, "CredentialResetByHash unknown", err, sipdesk.ENotFound, "")
		return nil
	})
	r.UsedAt = at(time.Minute)
	update(t, s, func(tx sipdesk.Tx) error { return tx.UpdateCredentialReset(r) })
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.CredentialResetByHash(r.TokenHash)
		if err != nil {
			return err
		}
		equal(t, "CredentialResetByHash after use", got, r)
		return nil
	})
	foreign := &sipdesk.CredentialReset{CustomerID: cb.ID, SIPAccountID: a.ID, TokenHash: sipdesk.HashToken(uniq()), ExpiresAt: at(time.Hour)}
	wantCode(t, "InsertCredentialReset for another customer's account", txErr(t, s, func(tx sipdesk.Tx) error { return tx.InsertCredentialReset(foreign) }), sipdesk.ENotFound, "")
	wantCode(t, "UpdateCredentialReset unknown", txErr(t, s, func(tx sipdesk.Tx) error {
		return tx.UpdateCredentialReset(&sipdesk.CredentialReset{ID: 1 << 50})
	}), sipdesk.ENotFound, "")
	dup := &sipdesk.CredentialReset{CustomerID: ca.ID, SIPAccountID: a.ID, TokenHash: r.TokenHash}
	wantCode(t, "InsertCredentialReset with a used hash", txErr(t, s, func(tx sipdesk.Tx) error { return tx.InsertCredentialReset(dup) }), sipdesk.EConflict, "")
}

func testMails(t *testing.T, su *suite) {
	s := su.open(t)
	m1 := &sipdesk.Mail{To: "a-" + uniq() + "@example.com", Subject: "Welcome", Text: "Hello", HTML: "<p>Hello</p>", CreatedAt: at(0)}
	m2 := &sipdesk.Mail{To: "b-" + uniq() + "@example.com", Subject: "Code", Text: "123456"}
	m3 := &sipdesk.Mail{To: "c-" + uniq() + "@example.com", Subject: "Sent", SentAt: at(time.Minute)}
	update(t, s, func(tx sipdesk.Tx) error {
		for _, m := range []*sipdesk.Mail{m1, m2, m3} {
			if err := tx.InsertMail(m); err != nil {
				return err
			}
		}
		return nil
	})
	if m1.ID == 0 || m2.CreatedAt.IsZero() {
		t.Fatal("InsertMail did not set ID/CreatedAt")
	}
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.Mail(m1.ID)
		if err != nil {
			return err
		}
		equal(t, "Mail", got, m1)
		_, err = tx.Mail(1 << 50)
		wantCode(t, "Mail unknown", err, sipdesk.ENotFound, "")
		list, err := tx.Mails(3)
		if err != nil {
			return err
		}
		equal(t, "Mails newest first", list, []*sipdesk.Mail{m3, m2, m1})
		list, err = tx.Mails(1)
		if err != nil {
			return err
		}
		equal(t, "Mails limit 1", list, []*sipdesk.Mail{m3})
		unsent, err := tx.UnsentMails(0)
		if err != nil {
			return err
		}
		got3 := ids(unsent, func(m *sipdesk.Mail) int64 { return m.ID })
		i1, i2 := slices.Index(got3, m1.ID), slices.Index(got3, m2.ID)
		if i1 < 0 || i2 < 0 || i1 > i2 || slices.Contains(got3, m3.ID) {
			t.Errorf("UnsentMails = %v, want %d before %d and not %d", got3, m1.ID, m2.ID, m3.ID)
		}
		return nil
	})
	m1.SentAt = at(time.Hour)
	update(t, s, func(tx sipdesk.Tx) error { return tx.MarkMailSent(m1.ID, m1.SentAt) })
	wantCode(t, "MarkMailSent unknown", txErr(t, s, func(tx sipdesk.Tx) error { return tx.MarkMailSent(1<<50, at(0)) }), sipdesk.ENotFound, "")
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.Mail(m1.ID)
		if err != nil {
			return err
		}
		equal(t, "Mail after MarkMailSent", got, m1)
		unsent, err := tx.UnsentMails(0)
		if err != nil {
			return err
		}
		if slices.Contains(ids(unsent, func(m *sipdesk.Mail) int64 { return m.ID }), m1.ID) {
			t.Error("UnsentMails lists a sent mail")
		}
		return nil
	})
}

func testMailClaim(t *testing.T, su *suite) {
	s := su.open(t)
	m := &sipdesk.Mail{To: uniq() + "@example.com", Subject: "claim", Text: "t"}
	update(t, s, func(tx sipdesk.Tx) error { return tx.InsertMail(m) })
	update(t, s, func(tx sipdesk.Tx) error { return tx.MarkMailSent(m.ID, at(time.Minute)) })
	wantCode(t, "second claim", txErr(t, s, func(tx sipdesk.Tx) error { return tx.MarkMailSent(m.ID, at(2*time.Minute)) }), sipdesk.ENotFound, "")
	update(t, s, func(tx sipdesk.Tx) error { return tx.MarkMailSent(m.ID, time.Time{}) })
	update(t, s, func(tx sipdesk.Tx) error { return tx.MarkMailSent(m.ID, at(3*time.Minute)) })
}

func testSessions(t *testing.T, su *suite) {
	s := su.open(t)
	c := newCustomer(t, s)
	live := &sipdesk.Session{CustomerID: c.ID, Hash: "h" + uniq(), CreatedAt: at(0), ExpiresAt: at(time.Hour)}
	old := &sipdesk.Session{CustomerID: c.ID, Hash: "h" + uniq(), CreatedAt: at(0), ExpiresAt: at(-time.Hour)}
	update(t, s, func(tx sipdesk.Tx) error {
		if err := tx.InsertSession(live); err != nil {
			return err
		}
		return tx.InsertSession(old)
	})
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.SessionByHash(live.Hash)
		if err != nil {
			return err
		}
		equal(t, "SessionByHash", got, live)
		return nil
	})
	update(t, s, func(tx sipdesk.Tx) error {
		n, err := tx.DeleteExpiredSessions(at(0))
		if err == nil && n < 1 {
			t.Errorf("DeleteExpiredSessions deleted %d", n)
		}
		return err
	})
	wantCode(t, "expired session", txErr(t, s, func(tx sipdesk.Tx) error { _, err := tx.SessionByHash(old.Hash); return err }), sipdesk.ENotFound, "")
	update(t, s, func(tx sipdesk.Tx) error { return tx.DeleteSession(live.Hash) })
	wantCode(t, "deleted session", txErr(t, s, func(tx sipdesk.Tx) error { _, err := tx.SessionByHash(live.Hash); return err }), sipdesk.ENotFound, "")
}

// Edge data.

func testDIDs(t *testing.T, su *suite) {
	s := su.open(t)
	ca, cb := newCustomer(t, s), newCustomer(t, s)
	a1, a2, b1 := newPasswordAccount(t, s, ca.ID), newPasswordAccount(t, s, ca.ID), newPasswordAccount(t, s, cb.ID)
	n1, n2 := "+1900"+digits(8), "+1901"+digits(8)
	d1 := &sipdesk.DID{Number: n1, SIPAccountID: a1.ID}
	d2 := &sipdesk.DID{Number: n2, SIPAccountID: a2.ID, CustomerID: ca.ID}
	update(t, s, func(tx sipdesk.Tx) error {
		if err := tx.UpsertDID(d1); err != nil {
			return err
		}
		return tx.UpsertDID(d2)
	})
	equal(t, "UpsertDID fills CustomerID", d1.CustomerID, ca.ID)
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.DID(n1)
		if err != nil {
			return err
		}
		equal(t, "DID", got, &sipdesk.DID{Number: n1, SIPAccountID: a1.ID, CustomerID: ca.ID})
		list, err := tx.DIDs(ca.ID)
		if err != nil {
			return err
		}
		equal(t, "DIDs", list, []*sipdesk.DID{d1, d2})
		list, err = tx.DIDs(cb.ID)
		if err != nil {
			return err
		}
		equal(t, "DIDs of another customer", len(list), 0)
		_, err = tx.DID("+1999" + digits(8))
		wantCode(t, "DID unknown", err, sipdesk.ENotFound, "")
		return nil
	})
	// Moving a number to another customer's account.
	moved := &sipdesk.DID{Number: n1, SIPAccountID: b1.ID}
	update(t, s, func(tx sipdesk.Tx) error { return tx.UpsertDID(moved) })
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.DID(n1)
		if err != nil {
			return err
		}
		equal(t, "DID after move", got, &sipdesk.DID{Number: n1, SIPAccountID: b1.ID, CustomerID: cb.ID})
		all, err := tx.DIDs(0)
		if err != nil {
			return err
		}
		var numbers []string
		for _, d := range all {
			numbers = append(numbers, d.Number)
		}
		if !slices.Contains(numbers, n1) || !slices.Contains(numbers, n2) {
			t.Errorf("DIDs(0) misses numbers: %v", numbers)
		}
		return nil
	})
	wantCode(t, "UpsertDID to a missing account", txErr(t, s, func(tx sipdesk.Tx) error {
		return tx.UpsertDID(&sipdesk.DID{Number: "+1902" + digits(8), SIPAccountID: 1 << 50})
	}), sipdesk.ENotFound, "")
	wantCode(t, "UpsertDID to another customer's account", txErr(t, s, func(tx sipdesk.Tx) error {
		return tx.UpsertDID(&sipdesk.DID{Number: "+1903" + digits(8), SIPAccountID: b1.ID, CustomerID: ca.ID})
	}), sipdesk.ENotFound, "")
}

func testRegistrations(t *testing.T, su *suite) {
	s := su.open(t)
	c := newCustomer(t, s)
	a, b := newPasswordAccount(t, s, c.ID), newPasswordAccount(t, s, c.ID)
	past := ms(time.Now().Add(-time.Minute))
	future := ms(time.Now().Add(time.Hour))
	r1 := &sipdesk.Registration{SIPAccountID: a.ID, Contact: "sip:alice@198.51.100.1:5060;transport=udp", Received: "198.51.100.1:5060",
		Transport: "udp", CallID: "call-1", CSeq: 4294967295, Node: "edge-1", UserAgent: "Yealink T46", ExpiresAt: future}
	r2 := &sipdesk.Registration{SIPAccountID: a.ID, Contact: "sip:alice@[2001:db8::1]:5061", Transport: "tls", ExpiresAt: past}
	r3 := &sipdesk.Registration{SIPAccountID: b.ID, Contact: "sip:bob@203.0.113.5", Transport: "wss", ExpiresAt: past}
	update(t, s, func(tx sipdesk.Tx) error {
		for _, r := range []*sipdesk.Registration{r1, r2, r3} {
			if err := tx.PutRegistration(r); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.Registrations(a.ID)
		if err != nil {
			return err
		}
		equal(t, "Registrations", byContact(got), byContact([]*sipdesk.Registration{r1, r2}))
		return nil
	})
	// Re-registering the same contact replaces the binding.
	r1b := *r1
	r1b.CallID, r1b.CSeq, r1b.Received, r1b.ExpiresAt = "call-2", 7, "198.51.100.1:40000", ms(future.Add(time.Hour))
	update(t, s, func(tx sipdesk.Tx) error { return tx.PutRegistration(&r1b) })
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.Registrations(a.ID)
		if err != nil {
			return err
		}
		equal(t, "Registrations after re-register", byContact(got), byContact([]*sipdesk.Registration{r2, &r1b}))
		all, err := tx.Registrations(0)
		if err != nil {
			return err
		}
		n := 0
		for _, r := range all {
			if r.SIPAccountID == a.ID || r.SIPAccountID == b.ID {
				n++
			}
		}
		equal(t, "Registrations(0) of the test accounts", n, 3)
		return nil
	})
	update(t, s, func(tx sipdesk.Tx) error {
		n, err := tx.DeleteExpiredRegistrations(time.Now())
		if err != nil {
			return err
		}
		if n < 2 {
			t.Errorf("DeleteExpiredRegistrations = %d, want at least 2", n)
		}
		n, err = tx.DeleteExpiredRegistrations(time.Now())
		if err != nil {
			return err
		}
		equal(t, "DeleteExpiredRegistrations again", n, 0)
		return nil
	})
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.Registrations(a.ID)
		if err != nil {
			return err
		}
		equal(t, "Registrations after expiry", got, []*sipdesk.Registration{&r1b})
		got, err = tx.Registrations(b.ID)
		if err != nil {
			return err
		}
		equal(t, "Registrations of b after expiry", len(got), 0)
		return nil
	})
	r4 := &sipdesk.Registration{SIPAccountID: a.ID, Contact: "sip:alice@192.0.2.9", ExpiresAt: future}
	update(t, s, func(tx sipdesk.Tx) error {
		if err := tx.PutRegistration(r4); err != nil {
			return err
		}
		if err := tx.DeleteRegistration(a.ID, r1.Contact); err != nil {
			return err
		}
		return tx.DeleteRegistration(a.ID, "sip:nobody@192.0.2.1") // missing: no error
	})
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.Registrations(a.ID)
		if err != nil {
			return err
		}
		equal(t, "Registrations after DeleteRegistration", got, []*sipdesk.Registration{r4})
		return nil
	})
	update(t, s, func(tx sipdesk.Tx) error { return tx.DeleteRegistrations(a.ID) })
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.Registrations(a.ID)
		if err != nil {
			return err
		}
		equal(t, "Registrations after DeleteRegistrations", len(got), 0)
		return nil
	})
	err := txErr(t, s, func(tx sipdesk.Tx) error {
		return tx.PutRegistration(&sipdesk.Registration{SIPAccountID: 1 << 50, Contact: "sip:x@192.0.2.1", ExpiresAt: future})
	})
	if err == nil {
		t.Error("PutRegistration for a missing account succeeded")
	}
}

// byContact sorts bindings by contact: the store's order follows the
// database's collation.
func byContact(list []*sipdesk.Registration) []*sipdesk.Registration {
	slices.SortFunc(list, func(a, b *sipdesk.Registration) int { return strings.Compare(a.Contact, b.Contact) })
	return list
}

func testNodes(t *testing.T, su *suite) {
	s := su.open(t)
	p := "node-" + uniq() + "-"
	now := ms(time.Now())
	alive := &sipdesk.Node{Name: p + "a", Role: "edge", AppliedVersion: 7, Heartbeat: now}
	dead := &sipdesk.Node{Name: p + "b", Role: "all", AppliedVersion: 3, Heartbeat: now.Add(-time.Hour)}
	update(t, s, func(tx sipdesk.Tx) error {
		if err := tx.PutNode(alive); err != nil {
			return err
		}
		return tx.PutNode(dead)
	})
	mine := func(list []*sipdesk.Node) []*sipdesk.Node {
		var out []*sipdesk.Node
		for _, n := range list {
			if len(n.Name) > len(p) && n.Name[:len(p)] == p {
				out = append(out, n)
			}
		}
		return out
	}
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.Nodes(now.Add(-time.Minute))
		if err != nil {
			return err
		}
		equal(t, "Nodes alive", mine(got), []*sipdesk.Node{alive})
		got, err = tx.Nodes(time.Time{})
		if err != nil {
			return err
		}
		equal(t, "Nodes all", mine(got), []*sipdesk.Node{alive, dead})
		return nil
	})
	dead.Heartbeat, dead.AppliedVersion, dead.Role = now.Add(time.Second), 9, "edge"
	update(t, s, func(tx sipdesk.Tx) error { return tx.PutNode(dead) })
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.Nodes(now)
		if err != nil {
			return err
		}
		equal(t, "Nodes after heartbeat", mine(got), []*sipdesk.Node{alive, dead})
		return nil
	})
}

// Transactions.

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

func testLeases(t *testing.T, su *suite) {
	s := su.open(t)
	c := newCustomer(t, s)
	a1, a2 := newPasswordAccount(t, s, c.ID), newPasswordAccount(t, s, c.ID)
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
		cn, an, err := tx.CountLeases(c.ID, a1.ID, true, at(0))
		if cn != 2 || an != 1 {
			t.Errorf("outbound count = %d/%d, want 2/1 (the expired lease does not count)", cn, an)
		}
		cn, an, _ = tx.CountLeases(c.ID, a1.ID, false, at(0))
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
	// A write transaction reads the kept counts (after deleting the
	// customer's expired lease): the same figures as counting.
	use("live leases", map[bool][2]int{true: {3, 2}, false: {2, 1}}[both])
	update(t, s, func(tx sipdesk.Tx) error {
		n, err := tx.RenewLeases("n1", at(2*time.Minute))
		if n != 2 {
			t.Errorf("renewed %d, want 2", n)
		}
		return err
	})
	update(t, s, func(tx sipdesk.Tx) error {
		n, err := tx.DeleteExpiredLeases(at(90 * time.Second))
		if n != 1 { // live2 (not renewed); dead went with ChannelUse above
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
