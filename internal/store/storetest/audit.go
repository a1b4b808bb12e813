package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Audit log (store: audit.go).

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
