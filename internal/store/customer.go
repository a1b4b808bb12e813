package store

import (
	"database/sql"
	"time"

	"github.com/sipdesk/sipdesk"
)

const customerCols = `id, email, password_hash, verified_phone, billing_state, channel_limit,
	channel_scope, sip_account_quota, topup_total_cents, created_at, suspended_at, suspended_reason`

func scanCustomer(s interface{ Scan(...any) error }) (*sipdesk.Customer, error) {
	var c sipdesk.Customer
	var created, suspended int64
	var state string
	if err := s.Scan(&c.ID, &c.Email, &c.PasswordHash, &c.VerifiedPhone, &state, &c.ChannelLimit,
		&c.ChannelScope, &c.SIPAccountQuota, &c.TopUpTotalCents, &created, &suspended, &c.SuspendedReason); err != nil {
		return nil, err
	}
	c.BillingState = sipdesk.BillingState(state)
	c.CreatedAt, c.SuspendedAt = fromMS(created), fromMS(suspended)
	return &c, nil
}

func (t *tx) InsertCustomer(c *sipdesk.Customer) error {
	t.configChanged()
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now()
	}
	id, err := t.insert(`INSERT INTO customers (email, password_hash, verified_phone, billing_state,
		channel_limit, channel_scope, sip_account_quota, topup_total_cents, created_at, suspended_at, suspended_reason)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.Email, c.PasswordHash, c.VerifiedPhone, string(c.BillingState), c.ChannelLimit,
		c.ChannelScope, c.SIPAccountQuota, c.TopUpTotalCents, ms(c.CreatedAt), ms(c.SuspendedAt), c.SuspendedReason)
	if err != nil {
		return t.fail("insert customer", err)
	}
	c.ID = id
	return nil
}

func (t *tx) Customer(id int64, forUpdate bool) (*sipdesk.Customer, error) {
	q := "SELECT " + customerCols + " FROM customers WHERE id = ?"
	// SQLite write transactions are serialised already; a read-only
	// PostgreSQL transaction cannot lock.
	if forUpdate && t.db.dialect == DialectPostgres && !t.readOnly {
		q += " FOR UPDATE"
	}
	c, err := scanCustomer(t.queryRow(q, id))
	if err != nil {
		return nil, t.get("customer", "get customer", err)
	}
	return c, nil
}

func (t *tx) CustomerByEmail(email string) (*sipdesk.Customer, error) {
	c, err := scanCustomer(t.queryRow("SELECT "+customerCols+" FROM customers WHERE email = ?", email))
	if err != nil {
		return nil, t.get("customer", "get customer by email", err)
	}
	return c, nil
}

func (t *tx) UpdateCustomer(c *sipdesk.Customer) error {
	t.configChanged()
	res, err := t.exec(`UPDATE customers SET email = ?, password_hash = ?, verified_phone = ?,
		billing_state = ?, channel_limit = ?, channel_scope = ?, sip_account_quota = ?,
		topup_total_cents = ?, suspended_at = ?, suspended_reason = ? WHERE id = ?`,
		c.Email, c.PasswordHash, c.VerifiedPhone, string(c.BillingState), c.ChannelLimit,
		c.ChannelScope, c.SIPAccountQuota, c.TopUpTotalCents, ms(c.SuspendedAt), c.SuspendedReason, c.ID)
	return t.affected("customer", "update customer", res, err)
}

func (t *tx) Customers() ([]*sipdesk.Customer, error) {
	rows, err := t.query("SELECT " + customerCols + " FROM customers ORDER BY id")
	if err != nil {
		return nil, t.fail("list customers", err)
	}
	return collect(t, rows, "list customers", scanCustomer)
}

// collect scans every row with scan and closes rows.
func collect[T any](t *tx, rows *sql.Rows, what string, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, t.fail(what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, t.fail(what, err)
	}
	return out, nil
}

// API tokens.

const apiTokenCols = "id, customer_id, name, hash, created_at, last_used_at"

func scanAPIToken(s interface{ Scan(...any) error }) (*sipdesk.APIToken, error) {
	var a sipdesk.APIToken
	var created, used int64
	if err := s.Scan(&a.ID, &a.CustomerID, &a.Name, &a.Hash, &created, &used); err != nil {
		return nil, err
	}
	a.CreatedAt, a.LastUsedAt = fromMS(created), fromMS(used)
	return &a, nil
}

func (t *tx) InsertAPIToken(a *sipdesk.APIToken) error {
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now()
	}
	id, err := t.insert("INSERT INTO api_tokens (customer_id, name, hash, created_at, last_used_at) VALUES (?, ?, ?, ?, ?)",
		a.CustomerID, a.Name, a.Hash, ms(a.CreatedAt), ms(a.LastUsedAt))
	if err != nil {
		return t.fail("insert API token", err)
	}
	a.ID = id
	return nil
}

func (t *tx) APITokenByHash(hash string) (*sipdesk.APIToken, error) {
	a, err := scanAPIToken(t.queryRow("SELECT "+apiTokenCols+" FROM api_tokens WHERE hash = ?", hash))
	if err != nil {
		return nil, t.get("API token", "get API token", err)
	}
	return a, nil
}

func (t *tx) APITokens(customerID int64) ([]*sipdesk.APIToken, error) {
	q, args := scoped("SELECT "+apiTokenCols+" FROM api_tokens WHERE 1 = 1", nil, "customer_id", customerID)
	rows, err := t.query(q+" ORDER BY id", args...)
	if err != nil {
		return nil, t.fail("list API tokens", err)
	}
	return collect(t, rows, "list API tokens", scanAPIToken)
}

func (t *tx) DeleteAPIToken(customerID, id int64) error {
	q, args := scoped("DELETE FROM api_tokens WHERE id = ?", []any{id}, "customer_id", customerID)
	res, err := t.exec(q, args...)
	return t.affected("API token", "delete API token", res, err)
}

func (t *tx) TouchAPIToken(id int64, at time.Time) error {
	res, err := t.exec("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", ms(at), id)
	return t.affected("API token", "touch API token", res, err)
}
