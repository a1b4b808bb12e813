package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Edge data: DIDs, registrations, nodes (store: edge.go).

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

func testDeleteDID(t *testing.T, su *suite) {
	s := su.open(t)
	c := newCustomer(t, s)
	a := newPasswordAccount(t, s, c.ID)
	n := "+1904" + digits(8)
	update(t, s, func(tx sipdesk.Tx) error { return tx.UpsertDID(&sipdesk.DID{Number: n, SIPAccountID: a.ID}) })
	var gone *sipdesk.DID
	update(t, s, func(tx sipdesk.Tx) (err error) { gone, err = tx.DeleteDID(n); return err })
	equal(t, "DeleteDID returns the route", gone, &sipdesk.DID{Number: n, SIPAccountID: a.ID, CustomerID: c.ID})
	wantCode(t, "DID after delete", txErr(t, s, func(tx sipdesk.Tx) error { _, err := tx.DID(n); return err }), sipdesk.ENotFound, "")
	wantCode(t, "DeleteDID twice", txErr(t, s, func(tx sipdesk.Tx) error { _, err := tx.DeleteDID(n); return err }), sipdesk.ENotFound, "")
}

func testRegistrations(t *testing.T, su *suite) {
	s := su.open(t)
	c := newCustomer(t, s)
	a, b := newPasswordAccount(t, s, c.ID), newPasswordAccount(t, s, c.ID)
	past := ms(time.Now().Add(-time.Minute))
	future := ms(time.Now().Add(time.Hour))
	r1 := &sipdesk.Registration{SIPAccountID: a.ID, Contact: "sip:alice@198.51.100.1:5060;transport=udp", Received: "198.51.100.1:5060",
		Transport: "udp", CallID: "call-1", CSeq: 4294967295, Node: "edge-1", EdgeAddr: "10.0.0.7:5060", UserAgent: "Yealink T46", ExpiresAt: future}
	r2 := &sipdesk.Registration{SIPAccountID: a.ID, Contact: "sip:alice@[2001:db8::1]:5061", Transport: "tls", ExpiresAt: past}
	r3 := &sipdesk.Registration{SIPAccountID: b.ID, Contact: "sip:bob@203.0.113.5", Transport: "wss", ExpiresAt: past}
	update(t, s, func(tx sipdesk.Tx) error {
		if err := tx.LockRegistrations(a.ID); err != nil {
			return err
		}
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
	alive := &sipdesk.Node{Name: p + "a", Role: "edge", AppliedVersion: 7, Heartbeat: now,
		SIPAddr: "127.0.0.2:5060", HTTPAddr: "127.0.0.2:8080", Version: "v1.2.3", LiveCalls: 4, Bindings: 12, Draining: true}
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
	// Pruning removes the nodes silent since before the cut, only them.
	alive.Draining, alive.LiveCalls = false, 0
	dead.Heartbeat = now.Add(-48 * time.Hour)
	update(t, s, func(tx sipdesk.Tx) error {
		if err := tx.PutNode(alive); err != nil {
			return err
		}
		if err := tx.PutNode(dead); err != nil {
			return err
		}
		n, err := tx.DeleteNodes(now.Add(-24 * time.Hour))
		if err != nil {
			return err
		}
		if n < 1 {
			t.Errorf("DeleteNodes removed %d nodes, want at least the one silent for 48 h", n)
		}
		return nil
	})
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.Nodes(time.Time{})
		if err != nil {
			return err
		}
		equal(t, "Nodes after pruning", mine(got), []*sipdesk.Node{alive})
		return nil
	})
}
