package store

import (
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Channel leases.

const (
	qInsertLease = `INSERT INTO call_leases (call_id, customer_id, sip_account_id, direction, node, started_at, expires_at, dialog)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	qDeleteLease = "DELETE FROM call_leases WHERE call_id = ? RETURNING customer_id, sip_account_id, direction"
	// The dialog of an answered call whose row was written before it.
	qSetLeaseDialog = "UPDATE call_leases SET dialog = ? WHERE call_id = ?"
	// channel_counts follows call_leases: +1 on insert, -n on delete.
	qCountAdd = `INSERT INTO channel_counts (customer_id, sip_account_id, direction, n) VALUES (?, ?, ?, ?)
		ON CONFLICT (customer_id, sip_account_id, direction) DO UPDATE SET n = channel_counts.n + excluded.n`
	// qChannelUse: the customer, the SIP account's cap and the counted live
	// leases in one statement (args: account, customer). "Counted" here and
	// in qCountLive is sipdesk.CountsAgainstLimit written in SQL; the
	// conformance suite (storetest testCountedCalls) checks they agree. The counters
	// include leases past their expiry until a sweep claims and deletes
	// them (ClaimExpiredLeases).
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
	// qChannelLimits: the customer's limit and scope and the SIP account's
	// cap, without counting (args: account, customer).
	qChannelLimits = `SELECT c.channel_limit, c.channel_scope, COALESCE(a.channel_cap, -1)
		FROM customers c LEFT JOIN sip_accounts a ON a.id = ? AND a.customer_id = c.id
		WHERE c.id = ?`
)

func (t *tx) InsertLease(l *sipdesk.CallLease) error {
	_, err := t.exec(qInsertLease, l.CallID, l.CustomerID, l.SIPAccountID, l.Direction, l.Node, ms(l.StartedAt), ms(l.ExpiresAt), l.Dialog)
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
// customer commits), then one statement over the counters. Expired leases
// still count until a node's sweep claims them and ends their calls
// (ClaimExpiredLeases): freeing a dead node's channel before its carrier
// leg got a BYE would let the carrier see one call too many. A read-only
// transaction counts the live leases instead.
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

func (t *tx) ChannelLimits(customerID, sipAccountID int64) (*sipdesk.ChannelUse, error) {
	var u sipdesk.ChannelUse
	if err := t.queryRow(qChannelLimits, sipAccountID, customerID).Scan(&u.ChannelLimit, &u.ChannelScope, &u.ChannelCap); err != nil {
		return nil, t.get("customer", "channel limits", err)
	}
	u.AccountFound = u.ChannelCap >= 0
	u.ChannelCap = max(u.ChannelCap, 0)
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

func (t *tx) RenewLeases(node string, until time.Time) ([]string, error) {
	rows, err := t.query("UPDATE call_leases SET expires_at = ? WHERE node = ? RETURNING call_id", ms(until), node)
	if err != nil {
		return nil, t.fail("renew leases", err)
	}
	return collect(t, rows, "renew leases", func(s interface{ Scan(...any) error }) (string, error) {
		var id string
		return id, s.Scan(&id)
	})
}

func (t *tx) SetLeaseDialog(callID, dialog string) error {
	if _, err := t.exec(qSetLeaseDialog, dialog, callID); err != nil {
		return t.fail("set lease dialog", err)
	}
	return nil
}

// ClaimExpiredLeases: one UPDATE whose WHERE is evaluated again on each
// locked row (PostgreSQL read committed; SQLite has one writer), so a lease
// another node claimed meanwhile (no longer expired) is skipped. A lease
// claimed before by a node that died too keeps its first lost_node.
//
// The candidates are chosen once, in a MATERIALIZED CTE: under "call_id
// IN (… LIMIT ? … SKIP LOCKED)" PostgreSQL may run the subquery again (a
// semi-join rescan), each time skipping the rows it just claimed, and claim
// more than limit (see ClaimEdgeRequest).
func (t *tx) ClaimExpiredLeases(node string, now, until time.Time, limit int) ([]*sipdesk.LostCall, error) {
	// On PostgreSQL the candidates are locked in the CTE, skipping rows
	// another node is claiming (or a stuck transaction holds): no waiting,
	// no deadlock between sweeping nodes.
	lock := ""
	if t.db.dialect == DialectPostgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	rows, err := t.query(`WITH c AS MATERIALIZED (SELECT call_id FROM call_leases WHERE expires_at <= ? ORDER BY expires_at LIMIT ?`+lock+`)
		UPDATE call_leases SET node = ?, expires_at = ?,
			lost_node = CASE WHEN lost_node = '' THEN node ELSE lost_node END
		FROM c WHERE call_leases.call_id = c.call_id AND call_leases.expires_at <= ?
		RETURNING call_leases.call_id, customer_id, sip_account_id, direction, started_at, expires_at, lost_node, dialog`,
		ms(now), limit, node, ms(until), ms(now))
	if err != nil {
		return nil, t.fail("claim leases", err)
	}
	return collect(t, rows, "claim leases", func(s interface{ Scan(...any) error }) (*sipdesk.LostCall, error) {
		l := &sipdesk.LostCall{CallLease: sipdesk.CallLease{Node: node}}
		var started, expires int64
		err := s.Scan(&l.CallID, &l.CustomerID, &l.SIPAccountID, &l.Direction, &started, &expires, &l.LostNode, &l.Dialog)
		l.StartedAt, l.ExpiresAt = fromMS(started), fromMS(expires)
		return l, err
	})
}

func (t *tx) ExpireLease(callID, node string) error {
	if _, err := t.exec("UPDATE call_leases SET expires_at = 0 WHERE call_id = ? AND node = ?", callID, node); err != nil {
		return t.fail("expire lease", err)
	}
	return nil
}

func (t *tx) CloseLostRecords(callID, node string, at time.Time) (int, error) {
	res, err := t.exec(`UPDATE call_records SET ended_at = ?, disposition = ?, reason = ?
		WHERE call_id = ? AND node = ? AND disposition = ?`,
		ms(at), sipdesk.DispNodeLost, sipdesk.DispNodeLost, callID, node, sipdesk.DispActive)
	if err != nil {
		return 0, t.fail("close lost records", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func (t *tx) CloseOrphanRecords(before, at time.Time) (int, error) {
	res, err := t.exec(`UPDATE call_records SET ended_at = ?, disposition = ?, reason = 'orphaned'
		WHERE disposition = ? AND started_at < ?
		AND NOT EXISTS (SELECT 1 FROM call_leases l WHERE l.call_id = call_records.call_id)`,
		ms(at), sipdesk.DispNodeLost, sipdesk.DispActive, ms(before))
	if err != nil {
		return 0, t.fail("close orphan records", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func (t *tx) DeleteExpiredLeases(at time.Time) (int, error) {
	return t.deleteLeases("DELETE FROM call_leases WHERE expires_at <= ? RETURNING customer_id, sip_account_id, direction", ms(at))
}

func (t *tx) Leases(customerID int64, at time.Time) ([]*sipdesk.CallLease, error) {
	q, args := scoped(`SELECT call_id, customer_id, sip_account_id, direction, node, started_at, expires_at, dialog
		FROM call_leases WHERE expires_at > ?`, []any{ms(at)}, "customer_id", customerID)
	rows, err := t.query(q+" ORDER BY started_at, call_id", args...)
	if err != nil {
		return nil, t.fail("list leases", err)
	}
	return collect(t, rows, "list leases", func(s interface{ Scan(...any) error }) (*sipdesk.CallLease, error) {
		var l sipdesk.CallLease
		var started, expires int64
		err := s.Scan(&l.CallID, &l.CustomerID, &l.SIPAccountID, &l.Direction, &l.Node, &started, &expires, &l.Dialog)
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
	if f.Direction != "" {
		q, args = q+" AND direction = ?", append(args, f.Direction)
	}
	if f.Number != "" {
		like := "%" + likeEscaper.Replace(f.Number) + "%"
		q, args = q+` AND (from_uri LIKE ? ESCAPE '\' OR to_uri LIKE ? ESCAPE '\' OR caller_id LIKE ? ESCAPE '\')`, append(args, like, like, like)
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
	if k := f.After; k != nil {
		at := ms(k.StartedAt)
		q, args = q+" AND (started_at < ? OR (started_at = ? AND id < ?))", append(args, at, at, k.ID)
	}
	rows, err := t.query(q+" ORDER BY started_at DESC, id DESC"+limitClause(f.Limit), args...)
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

// CallStats groups by the minute (started_at in ms / 60000, integer
// division on both databases); the started_at index bounds the scan to
// the window.
func (t *tx) CallStats(since, until time.Time) ([]*sipdesk.CallStat, error) {
	rows, err := t.query(`SELECT started_at / 60000 AS m, disposition, reason, COUNT(*) FROM call_records
		WHERE started_at >= ? AND started_at < ? GROUP BY m, disposition, reason ORDER BY m, disposition, reason`+
		limitClause(sipdesk.CallStatsMaxRows), ms(since), ms(until))
	if err != nil {
		return nil, t.fail("call stats", err)
	}
	return collect(t, rows, "call stats", func(s interface{ Scan(...any) error }) (*sipdesk.CallStat, error) {
		var c sipdesk.CallStat
		var m int64
		err := s.Scan(&m, &c.Disposition, &c.Reason, &c.N)
		c.Minute = time.UnixMilli(m * 60000).UTC()
		return &c, err
	})
}

// likeEscaper escapes LIKE's wildcards (with ESCAPE '\\').
var likeEscaper = strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`)
