package store

import (
	"database/sql"
	"errors"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Channel leases.

const (
	qInsertLease = `INSERT INTO call_leases (call_id, customer_id, sip_account_id, direction, node, started_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`
	qDeleteLease = "DELETE FROM call_leases WHERE call_id = ? RETURNING customer_id, sip_account_id, direction"
	// channel_counts follows call_leases: +1 on insert, -n on delete.
	qCountAdd = `INSERT INTO channel_counts (customer_id, sip_account_id, direction, n) VALUES (?, ?, ?, ?)
		ON CONFLICT (customer_id, sip_account_id, direction) DO UPDATE SET n = channel_counts.n + excluded.n`
	// qChannelUse: the customer, the SIP account's cap and the counted live
	// leases in one statement (args: account, customer). "Counted" here and
	// in qCountLive is sipdesk.CountsAgainstLimit written in SQL; the
	// conformance suite (storetest testCountedCalls) checks they agree. The counters
	// include leases past their expiry until they are deleted: ChannelUse
	// deletes the customer's expired ones first.
	qChannelUse = `SELECT c.channel_limit, c.channel_scope, COALESCE(a.channel_cap, -1),
		COALESCE(SUM(k.n), 0), COALESCE(SUM(CASE WHEN k.sip_account_id = a.id THEN k.n ELSE 0 END), 0)
		FROM customers c
		LEFT JOIN sip_accounts a ON a.id = ? AND a.customer_id = c.id
		LEFT JOIN channel_counts k ON k.customer_id = c.id
			AND (c.channel_scope = '` + sipdesk.ScopeBoth + `' OR k.direction = '` + sipdesk.DirOutbound + `')
		WHERE c.id = ?
		GROUP BY c.id, c.channel_limit, c.channel_scope, a.channel_cap`
	// qCountLive counts live leases directly (read-only transactions, which
	// cannot delete expired ones); args: account, now, customer.
	qCountLive = `SELECT c.channel_limit, c.channel_scope, COALESCE(a.channel_cap, -1), COUNT(l.customer_id),
		COALESCE(SUM(CASE WHEN l.sip_account_id = ? THEN 1 ELSE 0 END), 0)
		FROM customers c
		LEFT JOIN sip_accounts a ON a.id = ? AND a.customer_id = c.id
		LEFT JOIN call_leases l ON l.customer_id = c.id AND l.expires_at > ?
			AND (c.channel_scope = '` + sipdesk.ScopeBoth + `' OR l.direction = '` + sipdesk.DirOutbound + `')
		WHERE c.id = ?
		GROUP BY c.id, c.channel_limit, c.channel_scope, a.channel_cap`
	qLockCustomer = "SELECT 1 FROM customers WHERE id = ? FOR UPDATE"
	// qHasExpired tells whether a customer has a lease past its expiry (a
	// node died holding it): a cheap prepared probe on the index, so the
	// sweep below runs only when there is something to delete.
	qHasExpired = "SELECT EXISTS (SELECT 1 FROM call_leases WHERE customer_id = ? AND expires_at <= ?)"
)

func (t *tx) InsertLease(l *sipdesk.CallLease) error {
	_, err := t.exec(qInsertLease, l.CallID, l.CustomerID, l.SIPAccountID, l.Direction, l.Node, ms(l.StartedAt), ms(l.ExpiresAt))
	if err != nil {
		return t.fail("insert lease", err)
	}
	if _, err := t.exec(qCountAdd, l.CustomerID, l.SIPAccountID, l.Direction, 1); err != nil {
		return t.fail("count lease", err)
	}
	return nil
}

// leaseKey is what channel_counts counts by.
type leaseKey struct {
	customer, account int64
	direction         string
}

// deleteLeases runs a DELETE … RETURNING customer_id, sip_account_id,
// direction on call_leases and takes the deleted leases off the counters.
func (t *tx) deleteLeases(q string, args ...any) (int, error) {
	rows, err := t.query(q, args...)
	if err != nil {
		return 0, t.fail("delete leases", err)
	}
	gone := map[leaseKey]int{}
	n := 0
	for rows.Next() {
		var k leaseKey
		if err := rows.Scan(&k.customer, &k.account, &k.direction); err != nil {
			rows.Close()
			return 0, t.fail("delete leases", err)
		}
		gone[k]++
		n++
	}
	if err := rows.Close(); err != nil {
		return 0, t.fail("delete leases", err)
	}
	if err := rows.Err(); err != nil {
		return 0, t.fail("delete leases", err)
	}
	for k, c := range gone {
		if _, err := t.exec(qCountAdd, k.customer, k.account, k.direction, -c); err != nil {
			return 0, t.fail("count leases", err)
		}
	}
	return n, nil
}

// ChannelUse in a write transaction: the row lock first on PostgreSQL (so
// that the counters are read after any concurrent acquisition for the
// customer commits), the customer's expired leases deleted (an index seek
// that finds nothing unless a node died), then one statement over the
// counters. A read-only transaction counts the live leases instead.
func (t *tx) ChannelUse(customerID, sipAccountID int64, at time.Time) (*sipdesk.ChannelUse, error) {
	var u sipdesk.ChannelUse
	var row *sql.Row
	if t.readOnly || !t.writer {
		row = t.queryRow(qCountLive, sipAccountID, sipAccountID, ms(at), customerID)
	} else {
		if t.db.dialect == DialectPostgres {
			var one int
			if err := t.queryRow(qLockCustomer, customerID).Scan(&one); err != nil {
				return nil, t.get("customer", "lock customer", err)
			}
		}
		var expired bool
		if err := t.queryRow(qHasExpired, customerID, ms(at)).Scan(&expired); err != nil {
			return nil, t.fail("expired leases", err)
		}
		if expired {
			if _, err := t.deleteLeases(`DELETE FROM call_leases WHERE customer_id = ? AND expires_at <= ?
				RETURNING customer_id, sip_account_id, direction`, customerID, ms(at)); err != nil {
				return nil, err
			}
		}
		row = t.queryRow(qChannelUse, sipAccountID, customerID)
	}
	if err := row.Scan(&u.ChannelLimit, &u.ChannelScope, &u.ChannelCap, &u.CustomerInUse, &u.AccountInUse); err != nil {
		return nil, t.get("customer", "channel use", err)
	}
	u.AccountFound = u.ChannelCap >= 0
	if !u.AccountFound {
		u.ChannelCap, u.AccountInUse = 0, 0
	}
	return &u, nil
}

func (t *tx) DeleteLease(callID string) (bool, error) {
	var k leaseKey
	err := t.queryRow(qDeleteLease, callID).Scan(&k.customer, &k.account, &k.direction)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, t.fail("delete lease", err)
	}
	if _, err := t.exec(qCountAdd, k.customer, k.account, k.direction, -1); err != nil {
		return false, t.fail("count lease", err)
	}
	return true, nil
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
	return t.deleteLeases("DELETE FROM call_leases WHERE expires_at <= ? RETURNING customer_id, sip_account_id, direction", ms(at))
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
