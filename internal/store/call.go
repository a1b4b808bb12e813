package store

import (
	"time"

	"github.com/sipdesk/sipdesk"
)

// Channel leases.

const (
	qInsertLease = `INSERT INTO call_leases (call_id, customer_id, sip_account_id, direction, node, started_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`
	qDeleteLease = "DELETE FROM call_leases WHERE call_id = ?"
	// qChannelUse: the customer, the SIP account's cap and the counted live
	// leases in one statement (args: account, account, now, customer).
	qChannelUse = `SELECT c.channel_limit, c.channel_scope, COALESCE(a.channel_cap, -1), COUNT(l.call_id),
		COALESCE(SUM(CASE WHEN l.sip_account_id = ? THEN 1 ELSE 0 END), 0)
		FROM customers c
		LEFT JOIN sip_accounts a ON a.id = ? AND a.customer_id = c.id
		LEFT JOIN call_leases l ON l.customer_id = c.id AND l.expires_at > ?
			AND (c.channel_scope = '` + sipdesk.ScopeBoth + `' OR l.direction = '` + sipdesk.DirOutbound + `')
		WHERE c.id = ?
		GROUP BY c.id, c.channel_limit, c.channel_scope, a.channel_cap`
	qLockCustomer = "SELECT 1 FROM customers WHERE id = ? FOR UPDATE"
)

func (t *tx) InsertLease(l *sipdesk.CallLease) error {
	_, err := t.exec(qInsertLease, l.CallID, l.CustomerID, l.SIPAccountID, l.Direction, l.Node, ms(l.StartedAt), ms(l.ExpiresAt))
	if err != nil {
		return t.fail("insert lease", err)
	}
	return nil
}

func (t *tx) CountLeases(customerID, sipAccountID int64, outboundOnly bool, at time.Time) (int, int, error) {
	q := `SELECT COUNT(*), COALESCE(SUM(CASE WHEN sip_account_id = ? THEN 1 ELSE 0 END), 0)
		FROM call_leases WHERE customer_id = ? AND expires_at > ?`
	if outboundOnly {
		q += " AND direction = '" + sipdesk.DirOutbound + "'"
	}
	var c, a int
	if err := t.queryRow(q, sipAccountID, customerID, ms(at)).Scan(&c, &a); err != nil {
		return 0, 0, t.fail("count leases", err)
	}
	return c, a, nil
}

// ChannelUse: 2 statements on PostgreSQL (the row lock first, so that the
// count is read after any concurrent acquisition for the customer commits),
// 1 on SQLite.
func (t *tx) ChannelUse(customerID, sipAccountID int64, at time.Time) (*sipdesk.ChannelUse, error) {
	if t.db.dialect == DialectPostgres && !t.readOnly {
		var one int
		if err := t.queryRow(qLockCustomer, customerID).Scan(&one); err != nil {
			return nil, t.get("customer", "lock customer", err)
		}
	}
	var u sipdesk.ChannelUse
	if err := t.queryRow(qChannelUse, sipAccountID, sipAccountID, ms(at), customerID).
		Scan(&u.ChannelLimit, &u.ChannelScope, &u.ChannelCap, &u.CustomerInUse, &u.AccountInUse); err != nil {
		return nil, t.get("customer", "channel use", err)
	}
	u.AccountFound = u.ChannelCap >= 0
	if !u.AccountFound {
		u.ChannelCap, u.AccountInUse = 0, 0
	}
	return &u, nil
}

func (t *tx) DeleteLease(callID string) (bool, error) {
	res, err := t.exec(qDeleteLease, callID)
	if err != nil {
		return false, t.fail("delete lease", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

func (t *tx) RenewLeases(node string, until time.Time) (int, error) {
	res, err := t.exec("UPDATE call_leases SET expires_at = ? WHERE node = ?", ms(until), node)
	if err != nil {
		return 0, t.fail("renew leases", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func (t *tx) DeleteExpiredLeases(at time.Time) (int, error) {
	res, err := t.exec("DELETE FROM call_leases WHERE expires_at <= ?", ms(at))
	if err != nil {
		return 0, t.fail("delete expired leases", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func (t *tx) Leases(customerID int64, at time.Time) ([]*sipdesk.CallLease, error) {
	q, args := scoped(`SELECT call_id, customer_id, sip_account_id, direction, node, started_at, expires_at
		FROM call_leases WHERE expires_at > ?`, []any{ms(at)}, "customer_id", customerID)
	rows, err := t.query(q+" ORDER BY started_at, call_id", args...)
	if err != nil {
		return nil, t.fail("list leases", err)
	}
	return collect(t, rows, "list leases", func(s interface{ Scan(...any) error }) (*sipdesk.CallLease, error) {
		var l sipdesk.CallLease
		var started, expires int64
		err := s.Scan(&l.CallID, &l.CustomerID, &l.SIPAccountID, &l.Direction, &l.Node, &started, &expires)
		l.StartedAt, l.ExpiresAt = fromMS(started), fromMS(expires)
		return &l, err
	})
}

// Call records.

const callRecordCols = `id, call_id, customer_id, sip_account_id, direction, from_uri, to_uri, caller_id, caller_id_rule_id,
	caller_id_reason, started_at, answered_at, ended_at, disposition, sip_code, reason, node`

const (
	qInsertCallRecord = `INSERT INTO call_records (call_id, customer_id, sip_account_id, direction, from_uri, to_uri, caller_id,
		caller_id_rule_id, caller_id_reason, started_at, answered_at, ended_at, disposition, sip_code, reason, node)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qUpdateCallRecord = `UPDATE call_records SET caller_id = ?, caller_id_rule_id = ?, caller_id_reason = ?, answered_at = ?,
		ended_at = ?, disposition = ?, sip_code = ?, reason = ? WHERE id = ?`
)

func (t *tx) InsertCallRecord(r *sipdesk.CallRecord) error {
	if r.StartedAt.IsZero() {
		r.StartedAt = now()
	}
	id, err := t.insert(qInsertCallRecord,
		r.CallID, r.CustomerID, r.SIPAccountID, r.Direction, r.From, r.To, r.CallerID, r.CallerIDRuleID, r.CallerIDReason,
		ms(r.StartedAt), ms(r.AnsweredAt), ms(r.EndedAt), r.Disposition, r.SIPCode, r.Reason, r.Node)
	if err != nil {
		return t.fail("insert call record", err)
	}
	r.ID = id
	return nil
}

// UpdateCallRecord stores how a call went on (answer, end, outcome).
func (t *tx) UpdateCallRecord(r *sipdesk.CallRecord) error {
	res, err := t.exec(qUpdateCallRecord,
		r.CallerID, r.CallerIDRuleID, r.CallerIDReason, ms(r.AnsweredAt), ms(r.EndedAt), r.Disposition, r.SIPCode, r.Reason, r.ID)
	return t.affected("call record", "update call record", res, err)
}

func (t *tx) CallRecords(f sipdesk.CallFilter) ([]*sipdesk.CallRecord, error) {
	q, args := scoped("SELECT "+callRecordCols+" FROM call_records WHERE 1 = 1", nil, "customer_id", f.CustomerID)
	if f.SIPAccountID != 0 {
		q, args = q+" AND sip_account_id = ?", append(args, f.SIPAccountID)
	}
	if f.Disposition != "" {
		q, args = q+" AND disposition = ?", append(args, f.Disposition)
	}
	if !f.Since.IsZero() {
		q, args = q+" AND started_at >= ?", append(args, ms(f.Since))
	}
	if !f.Until.IsZero() {
		q, args = q+" AND started_at < ?", append(args, ms(f.Until))
	}
	if f.BeforeID > 0 {
		q, args = q+" AND id < ?", append(args, f.BeforeID)
	}
	rows, err := t.query(q+" ORDER BY id DESC"+limitClause(f.Limit), args...)
	if err != nil {
		return nil, t.fail("list call records", err)
	}
	return collect(t, rows, "list call records", func(s interface{ Scan(...any) error }) (*sipdesk.CallRecord, error) {
		var r sipdesk.CallRecord
		var started, answered, ended int64
		err := s.Scan(&r.ID, &r.CallID, &r.CustomerID, &r.SIPAccountID, &r.Direction, &r.From, &r.To, &r.CallerID,
			&r.CallerIDRuleID, &r.CallerIDReason, &started, &answered, &ended, &r.Disposition, &r.SIPCode, &r.Reason, &r.Node)
		r.StartedAt, r.AnsweredAt, r.EndedAt = fromMS(started), fromMS(answered), fromMS(ended)
		return &r, err
	})
}
