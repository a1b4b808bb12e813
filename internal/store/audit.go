package store

import (
	"github.com/sipdesk/sipdesk"
)

func (t *tx) InsertAudit(e *sipdesk.AuditEntry) error {
	if e.At.IsZero() {
		e.At = now()
	}
	id, err := t.insert(`INSERT INTO audit_log (customer_id, sip_account_id, actor, action, detail, at)
		VALUES (?, ?, ?, ?, ?, ?)`, e.CustomerID, e.SIPAccountID, e.Actor, e.Action, e.Detail, ms(e.At))
	if err != nil {
		return t.fail("insert audit entry", err)
	}
	e.ID = id
	return nil
}

// Audit returns the newest limit entries (all when limit <= 0) of a customer,
// or of everyone for customerID 0, newest first.
func (t *tx) Audit(customerID int64, limit int) ([]*sipdesk.AuditEntry, error) {
	q, args := scoped("SELECT id, customer_id, sip_account_id, actor, action, detail, at FROM audit_log WHERE 1 = 1", nil, "customer_id", customerID)
	rows, err := t.query(q+" ORDER BY at DESC, id DESC"+limitClause(limit), args...)
	if err != nil {
		return nil, t.fail("list audit log", err)
	}
	return collect(t, rows, "list audit log", func(s interface{ Scan(...any) error }) (*sipdesk.AuditEntry, error) {
		var e sipdesk.AuditEntry
		var at int64
		if err := s.Scan(&e.ID, &e.CustomerID, &e.SIPAccountID, &e.Actor, &e.Action, &e.Detail, &at); err != nil {
			return nil, err
		}
		e.At = fromMS(at)
		return &e, nil
	})
}
