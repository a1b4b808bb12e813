// Package storetest is the conformance suite of sipdesk.Store: every engine
// runs the same tests.
package storetest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Run runs the suite. Every call of open must return a new, independent
// Store on one and the same database for the whole Run (the suite opens a
// second Store to check what other processes see) and close it in
// t.Cleanup; Close must tolerate being called again. The database may hold
// other data: the suite only asserts on what it creates, and its subtests
// do not run in parallel. The tests live in one file per aggregate, named
// like the store's own files (customer.go, sipaccount.go, call.go, …).
func Run(t *testing.T, open func(t *testing.T) sipdesk.Store) {
	s := &suite{open: open}
	tests := []struct {
		name string
		fn   func(t *testing.T, s *suite)
	}{
		{"customer round trips every field", testCustomerRoundTrip},
		{"duplicate email is a conflict on email", testCustomerConflict},
		{"missing customer is not found", testCustomerNotFound},
		{"suspending and unsuspending a customer round trips and signals the edges", testCustomerSuspend},
		{"bans keep the later expiry per source, list live ones, lift and expire", testBans},
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
		{"verification messages queue, are claimed once, replaced and pruned", testVerificationMessages},
		{"sessions round trip, delete and expire", testSessions},
		{"sign-in security: session list, password links used once, TOTP steps and recovery codes", testSecurity},
		{"passkeys round trip, are unique, scoped, and their counters only move forward", testPasskeys},
		{"DIDs upsert, move and are scoped", testDIDs},
		{"a DID is deleted once and says what it routed to", testDeleteDID},
		{"call stats count a window by minute, disposition and reason", testCallStats},
		{"registrations replace by contact and expire", testRegistrations},
		{"nodes are filtered by heartbeat and pruned", testNodes},
		{"config version increments and is visible to a second store", testConfigVersion},
		{"lazy and ordinary commits alternate and both persist", testLazyCommit},
		{"error in Update rolls everything back", testRollbackOnError},
		{"panic in Update rolls back and the store stays usable", testRollbackOnPanic},
		{"writes in View fail", testViewReadOnly},
		{"concurrent Updates are serialised", testConcurrentUpdates},
		{"leases count, renew, expire and release once", testLeases},
		{"a lease sweep claims at most its limit, oldest first", testLeaseClaimLimit},
		{"channel use counts exactly the calls CountsAgainstLimit counts", testCountedCalls},
		{"lease acquire-or-refuse from two stores admits exactly the limit", testLeaseExactness},
		{"call records round trip, filter and page newest first", testCallRecords},
		{"call records page by time then id without gaps, and filter", testCallRecordPages},
		{"audit log pages by time then id without gaps, and filters", testAuditPages},
		{"lost calls' records close node_lost, orphans too", testLostRecords},
		{"attempt counters count to their limit, across stores, and expire", testAttempts},
		{"pending signups are taken once and expire", testPendingSignups},
		{"delivered mails are redacted and old ones pruned", testMailRedactPrune},
		{"edge requests round trip, go to their node and finish by their holder", testEdgeRequestRoundTrip},
		{"an edge request is claimed once by nodes on two stores", testEdgeRequestClaimOnce},
		{"edge requests are retried after a lost claim, expire and are pruned", testEdgeRequestExpiry},
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
