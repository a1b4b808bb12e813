package store

import (
	"strings"

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
	return t.auditRows(q+" ORDER BY at DESC, id DESC"+limitClause(limit), args)
}

// AuditPage lists the entries f selects, newest first (at, then id).
func (t *tx) AuditPage(f sipdesk.AuditFilter) ([]*sipdesk.AuditEntry, error) {
	q, args := scoped("SELECT id, customer_id, sip_account_id, actor, action, detail, at FROM audit_log WHERE 1 = 1", nil, "customer_id", f.CustomerID)
	if len(f.Actions) > 0 {
		q += " AND action IN (?" + strings.Repeat(", ?", len(f.Actions)-1) + ")"
		for _, a := range f.Actions {
			args = append(args, a)
		}
	}
	if !f.Since.IsZero() {
		q, args = q+" AND at >= ?", append(args, ms(f.Since))
	}
	if !f.Until.IsZero() {
		q, args = q+" AND at < ?", append(args, ms(f.Until))
	}
	if k := f.After; k != nil {
		at := ms(k.At)
		q, args = q+" AND (at < ? OR (at = ? AND id < ?))", append(args, at, at, k.ID)
	}
	return t.auditRows(q+" ORDER BY at DESC, id DESC"+limitClause(f.Limit), args)
}

func (t *tx) auditRows(q string, args []any) ([]*sipdesk.AuditEntry, error) {
	rows, err := t.query(q, args...)
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
