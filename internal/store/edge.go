package store

import (
	"time"

	"github.com/sipdesk/sipdesk"
)

// DIDs.

// UpsertDID routes a number to a SIP account, replacing any earlier route of
// the number. The customer is taken from the account (and checked against
// d.CustomerID when that is set); d.CustomerID is filled in.
func (t *tx) UpsertDID(d *sipdesk.DID) error {
	t.configChanged()
	q, args := scoped(`INSERT INTO dids (number, sip_account_id, customer_id)
		SELECT CAST(? AS TEXT), id, customer_id FROM sip_accounts WHERE id = ?`, []any{d.Number, d.SIPAccountID}, "customer_id", d.CustomerID)
	var customerID int64
	err := t.queryRow(q+` ON CONFLICT (number) DO UPDATE SET sip_account_id = excluded.sip_account_id,
		customer_id = excluded.customer_id RETURNING customer_id`, args...).Scan(&customerID)
	if err != nil {
		return t.get("SIP account", "upsert DID", err)
	}
	d.CustomerID = customerID
	return nil
}

func (t *tx) DID(number string) (*sipdesk.DID, error) {
	var d sipdesk.DID
	if err := t.queryRow("SELECT number, sip_account_id, customer_id FROM dids WHERE number = ?", number).
		Scan(&d.Number, &d.SIPAccountID, &d.CustomerID); err != nil {
		return nil, t.get("DID", "get DID", err)
	}
	return &d, nil
}

func (t *tx) DIDs(customerID int64) ([]*sipdesk.DID, error) {
	q, args := scoped("SELECT number, sip_account_id, customer_id FROM dids WHERE 1 = 1", nil, "customer_id", customerID)
	rows, err := t.query(q+" ORDER BY number", args...)
	if err != nil {
		return nil, t.fail("list DIDs", err)
	}
	return collect(t, rows, "list DIDs", func(s interface{ Scan(...any) error }) (*sipdesk.DID, error) {
		var d sipdesk.DID
		return &d, s.Scan(&d.Number, &d.SIPAccountID, &d.CustomerID)
	})
}

func (t *tx) DeleteDID(number string) (*sipdesk.DID, error) {
	t.configChanged()
	var d sipdesk.DID
	if err := t.queryRow("DELETE FROM dids WHERE number = ? RETURNING number, sip_account_id, customer_id", number).
		Scan(&d.Number, &d.SIPAccountID, &d.CustomerID); err != nil {
		return nil, t.get("DID", "delete DID", err)
	}
	return &d, nil
}

// Registrations.

const registrationCols = "sip_account_id, contact, received, transport, call_id, cseq, node, edge_addr, user_agent, expires_at"

const (
	qPutRegistration = `INSERT INTO registrations (` + registrationCols + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (sip_account_id, contact) DO UPDATE SET received = excluded.received,
		transport = excluded.transport, call_id = excluded.call_id, cseq = excluded.cseq,
		node = excluded.node, edge_addr = excluded.edge_addr, user_agent = excluded.user_agent, expires_at = excluded.expires_at`
	qDeleteRegistration = "DELETE FROM registrations WHERE sip_account_id = ? AND contact = ?"
)

func (t *tx) PutRegistration(r *sipdesk.Registration) error {
	_, err := t.exec(qPutRegistration,
		r.SIPAccountID, r.Contact, r.Received, r.Transport, r.CallID, int64(r.CSeq), r.Node, r.EdgeAddr, r.UserAgent, ms(r.ExpiresAt))
	if err != nil {
		return t.fail("put registration", err)
	}
	return nil
}

// DeleteRegistration removes one binding; removing a missing one is not an
// error (bindings expire on their own).
func (t *tx) DeleteRegistration(sipAccountID int64, contact string) error {
	if _, err := t.exec(qDeleteRegistration, sipAccountID, contact); err != nil {
		return t.fail("delete registration", err)
	}
	return nil
}

func (t *tx) DeleteRegistrations(sipAccountID int64) error {
	if _, err := t.exec("DELETE FROM registrations WHERE sip_account_id = ?", sipAccountID); err != nil {
		return t.fail("delete registrations", err)
	}
	return nil
}

// LockRegistrations: see sipdesk.Tx.
func (t *tx) LockRegistrations(sipAccountID int64) error {
	if t.db.dialect != DialectPostgres {
		return nil
	}
	var one int
	if err := t.queryRow("SELECT 1 FROM sip_accounts WHERE id = ? FOR UPDATE", sipAccountID).Scan(&one); err != nil {
		return t.get("SIP account", "lock registrations", err)
	}
	return nil
}

// Registrations lists the bindings of an account (all for 0), expired ones
// included until DeleteExpiredRegistrations runs.
func (t *tx) Registrations(sipAccountID int64) ([]*sipdesk.Registration, error) {
	q, args := "SELECT "+registrationCols+" FROM registrations WHERE 1 = 1", []any(nil)
	if sipAccountID != 0 {
		q, args = q+" AND sip_account_id = ?", append(args, sipAccountID)
	}
	rows, err := t.query(q+" ORDER BY sip_account_id, contact", args...)
	if err != nil {
		return nil, t.fail("list registrations", err)
	}
	return collect(t, rows, "list registrations", func(s interface{ Scan(...any) error }) (*sipdesk.Registration, error) {
		var r sipdesk.Registration
		var cseq, expires int64
		if err := s.Scan(&r.SIPAccountID, &r.Contact, &r.Received, &r.Transport, &r.CallID, &cseq, &r.Node, &r.EdgeAddr, &r.UserAgent, &expires); err != nil {
			return nil, err
		}
		r.CSeq, r.ExpiresAt = uint32(cseq), fromMS(expires)
		return &r, nil
	})
}

// DeleteExpiredRegistrations removes the bindings that expired at or before
// now and returns how many.
func (t *tx) DeleteExpiredRegistrations(now time.Time) (int, error) {
	res, err := t.exec("DELETE FROM registrations WHERE expires_at <= ?", ms(now))
	if err != nil {
		return 0, t.fail("delete expired registrations", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, t.fail("delete expired registrations", err)
	}
	return int(n), nil
}

// Nodes.

const nodeCols = "name, role, applied_version, heartbeat, sip_addr, http_addr, version, live_calls, bindings, draining"

func (t *tx) PutNode(n *sipdesk.Node) error {
	_, err := t.exec(`INSERT INTO nodes (`+nodeCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET role = excluded.role, applied_version = excluded.applied_version,
		heartbeat = excluded.heartbeat, sip_addr = excluded.sip_addr, http_addr = excluded.http_addr,
		version = excluded.version, live_calls = excluded.live_calls, bindings = excluded.bindings,
		draining = excluded.draining`,
		n.Name, n.Role, n.AppliedVersion, ms(n.Heartbeat), n.SIPAddr, n.HTTPAddr, n.Version, n.LiveCalls, n.Bindings, b2i(n.Draining))
	if err != nil {
		return t.fail("put node", err)
	}
	return nil
}

// Nodes returns the nodes whose heartbeat is at or after aliveSince (all for
// the zero time), by name.
func (t *tx) Nodes(aliveSince time.Time) ([]*sipdesk.Node, error) {
	rows, err := t.query("SELECT "+nodeCols+" FROM nodes WHERE heartbeat >= ? ORDER BY name", ms(aliveSince))
	if err != nil {
		return nil, t.fail("list nodes", err)
	}
	return collect(t, rows, "list nodes", func(s interface{ Scan(...any) error }) (*sipdesk.Node, error) {
		var n sipdesk.Node
		var hb, draining int64
		if err := s.Scan(&n.Name, &n.Role, &n.AppliedVersion, &hb, &n.SIPAddr, &n.HTTPAddr, &n.Version, &n.LiveCalls, &n.Bindings, &draining); err != nil {
			return nil, err
		}
		n.Heartbeat, n.Draining = fromMS(hb), draining != 0
		return &n, nil
	})
}

// DeleteNodes removes the nodes whose last heartbeat is before before.
func (t *tx) DeleteNodes(before time.Time) (int, error) {
	res, err := t.exec("DELETE FROM nodes WHERE heartbeat < ?", ms(before))
	if err != nil {
		return 0, t.fail("delete nodes", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, t.fail("delete nodes", err)
	}
	return int(n), nil
}
