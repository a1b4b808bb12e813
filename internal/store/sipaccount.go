package store

import (
	"fmt"

	"github.com/sipdesk/sipdesk"
)

const sipAccountCols = `a.id, a.customer_id, a.name, a.auth_type, a.username, a.ha1_md5, a.ha1_sha256,
	a.ha1_sha512_256, a.tech_prefix, a.status, a.pending_version, a.held_for_review, a.prev_status,
	a.jwt_enabled, a.jwt_secret, a.jwt_prev_secret, a.jwt_prev_until, a.channel_cap,
	a.default_number, a.display_name, a.created_at, a.updated_at`

// Column names bound into the encryption of the JWT secrets.
const (
	colJWTSecret     = "sip_accounts.jwt_secret"
	colJWTPrevSecret = "sip_accounts.jwt_prev_secret"
)

func (t *tx) scanSIPAccount(s interface{ Scan(...any) error }) (*sipdesk.SIPAccount, error) {
	var a sipdesk.SIPAccount
	var authType, status, prevStatus, secret, prevSecret string
	var held, jwt int
	var prevUntil, created, updated int64
	if err := s.Scan(&a.ID, &a.CustomerID, &a.Name, &authType, &a.Username, &a.Digest.MD5, &a.Digest.SHA256,
		&a.Digest.SHA512256, &a.TechPrefix, &status, &a.PendingVersion, &held, &prevStatus,
		&jwt, &secret, &prevSecret, &prevUntil, &a.ChannelCap,
		&a.CallerID.DefaultNumber, &a.CallerID.DisplayName, &created, &updated); err != nil {
		return nil, err
	}
	a.AuthType, a.Status, a.PrevStatus = sipdesk.AuthType(authType), sipdesk.Status(status), sipdesk.Status(prevStatus)
	a.HeldForReview, a.JWTEnabled = held != 0, jwt != 0
	var err error
	if a.JWTSecret, err = t.db.open(colJWTSecret, secret); err != nil {
		return nil, err
	}
	if a.JWTPrevSecret, err = t.db.open(colJWTPrevSecret, prevSecret); err != nil {
		return nil, err
	}
	a.JWTPrevUntil, a.CreatedAt, a.UpdatedAt = fromMS(prevUntil), fromMS(created), fromMS(updated)
	return &a, nil
}

func (t *tx) InsertSIPAccount(a *sipdesk.SIPAccount) error {
	t.configChanged()
	n := now()
	if a.CreatedAt.IsZero() {
		a.CreatedAt = n
	}
	a.UpdatedAt = n
	id, err := t.insert(`INSERT INTO sip_accounts (customer_id, name, auth_type, username, ha1_md5,
		ha1_sha256, ha1_sha512_256, tech_prefix, status, pending_version, held_for_review, prev_status,
		jwt_enabled, jwt_secret, jwt_prev_secret, jwt_prev_until, channel_cap, default_number,
		display_name, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.CustomerID, a.Name, string(a.AuthType), a.Username, a.Digest.MD5,
		a.Digest.SHA256, a.Digest.SHA512256, a.TechPrefix, string(a.Status), a.PendingVersion, b2i(a.HeldForReview), string(a.PrevStatus),
		b2i(a.JWTEnabled), t.db.seal(colJWTSecret, a.JWTSecret), t.db.seal(colJWTPrevSecret, a.JWTPrevSecret), ms(a.JWTPrevUntil), a.ChannelCap, a.CallerID.DefaultNumber,
		a.CallerID.DisplayName, ms(a.CreatedAt), ms(a.UpdatedAt))
	if err != nil {
		return t.fail("insert SIP account", err)
	}
	a.ID = id
	return t.putSIPAccountDetails(a, a.CustomerID, false)
}

func (t *tx) UpdateSIPAccount(a *sipdesk.SIPAccount) error {
	t.configChanged()
	updated := now()
	q, args := scoped(`UPDATE sip_accounts SET name = ?, auth_type = ?, username = ?, ha1_md5 = ?,
		ha1_sha256 = ?, ha1_sha512_256 = ?, tech_prefix = ?, status = ?, pending_version = ?,
		held_for_review = ?, prev_status = ?, jwt_enabled = ?, jwt_secret = ?, jwt_prev_secret = ?,
		jwt_prev_until = ?, channel_cap = ?, default_number = ?, display_name = ?, updated_at = ?
		WHERE id = ?`, []any{a.Name, string(a.AuthType), a.Username, a.Digest.MD5,
		a.Digest.SHA256, a.Digest.SHA512256, a.TechPrefix, string(a.Status), a.PendingVersion,
		b2i(a.HeldForReview), string(a.PrevStatus), b2i(a.JWTEnabled), t.db.seal(colJWTSecret, a.JWTSecret), t.db.seal(colJWTPrevSecret, a.JWTPrevSecret),
		ms(a.JWTPrevUntil), a.ChannelCap, a.CallerID.DefaultNumber, a.CallerID.DisplayName, ms(updated),
		a.ID}, "customer_id", a.CustomerID)
	var customerID int64
	if err := t.queryRow(q+" RETURNING customer_id", args...).Scan(&customerID); err != nil {
		return t.get("SIP account", "update SIP account", err)
	}
	a.UpdatedAt = updated
	return t.putSIPAccountDetails(a, customerID, true)
}

// putSIPAccountDetails writes the allowed IPs and the rule selection of a;
// the rules must be the account's customer's.
func (t *tx) putSIPAccountDetails(a *sipdesk.SIPAccount, customerID int64, replace bool) error {
	if replace {
		if _, err := t.exec("DELETE FROM sip_account_ips WHERE sip_account_id = ?", a.ID); err != nil {
			return t.fail("replace allowed IPs", err)
		}
		if _, err := t.exec("DELETE FROM sip_account_rules WHERE sip_account_id = ?", a.ID); err != nil {
			return t.fail("replace rule selection", err)
		}
	}
	for i, p := range a.AllowedIPs {
		if !p.IsValid() {
			return sipdesk.FieldError("allowed_ips", "entry %d is not a valid address", i+1)
		}
		if _, err := t.exec("INSERT INTO sip_account_ips (sip_account_id, position, cidr) VALUES (?, ?, ?)", a.ID, i, p.String()); err != nil {
			return t.fail("insert allowed IP", err)
		}
	}
	for i, rid := range a.CallerID.RuleIDs {
		res, err := t.exec(`INSERT INTO sip_account_rules (sip_account_id, rule_id, position)
			SELECT CAST(? AS BIGINT), id, CAST(? AS BIGINT) FROM caller_id_rules WHERE id = ? AND customer_id = ?`,
			a.ID, i, rid, customerID)
		if err != nil {
			return t.fail("select rule", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return t.fail("select rule", err)
		} else if n == 0 {
			return sipdesk.FieldError("rule_ids", "Caller ID rule %d not found", rid)
		}
	}
	return nil
}

// sipAccounts loads the accounts matching where (over sip_accounts a) with
// their allowed IPs and rule selections.
func (t *tx) sipAccounts(where string, args ...any) ([]*sipdesk.SIPAccount, error) {
	rows, err := t.query("SELECT "+sipAccountCols+" FROM sip_accounts a WHERE "+where+" ORDER BY a.id", args...)
	if err != nil {
		return nil, t.fail("list SIP accounts", err)
	}
	list, err := collect(t, rows, "list SIP accounts", t.scanSIPAccount)
	if err != nil || len(list) == 0 {
		return list, err
	}
	byID := make(map[int64]*sipdesk.SIPAccount, len(list))
	for _, a := range list {
		byID[a.ID] = a
	}

	rows, err = t.query(`SELECT i.sip_account_id, i.cidr FROM sip_account_ips i
		JOIN sip_accounts a ON a.id = i.sip_account_id WHERE `+where+` ORDER BY i.sip_account_id, i.position`, args...)
	if err != nil {
		return nil, t.fail("list allowed IPs", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var cidr string
		if err := rows.Scan(&id, &cidr); err != nil {
			return nil, t.fail("list allowed IPs", err)
		}
		p, err := sipdesk.ParseAllowedIP(cidr)
		if err != nil {
			return nil, fmt.Errorf("store: SIP account %d: bad stored address %q: %w", id, cidr, err)
		}
		if a := byID[id]; a != nil {
			a.AllowedIPs = append(a.AllowedIPs, p)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, t.fail("list allowed IPs", err)
	}
	rows.Close()

	rows, err = t.query(`SELECT r.sip_account_id, r.rule_id FROM sip_account_rules r
		JOIN sip_accounts a ON a.id = r.sip_account_id WHERE `+where+` ORDER BY r.sip_account_id, r.position`, args...)
	if err != nil {
		return nil, t.fail("list rule selections", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, rid int64
		if err := rows.Scan(&id, &rid); err != nil {
			return nil, t.fail("list rule selections", err)
		}
		if a := byID[id]; a != nil {
			a.CallerID.RuleIDs = append(a.CallerID.RuleIDs, rid)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, t.fail("list rule selections", err)
	}
	return list, nil
}

func (t *tx) SIPAccount(customerID, id int64) (*sipdesk.SIPAccount, error) {
	q, args := scoped("a.id = ?", []any{id}, "a.customer_id", customerID)
	list, err := t.sipAccounts(q, args...)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, notFound("SIP account")
	}
	return list[0], nil
}

func (t *tx) SIPAccounts(customerID int64) ([]*sipdesk.SIPAccount, error) {
	q, args := scoped("1 = 1", nil, "a.customer_id", customerID)
	return t.sipAccounts(q, args...)
}

func (t *tx) SIPAccountByUsername(username string) (*sipdesk.SIPAccount, error) {
	if username == "" {
		return nil, notFound("SIP account")
	}
	// "username <> ''" lets SQLite use the partial unique index.
	list, err := t.sipAccounts("a.username = ? AND a.username <> ''", username)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, notFound("SIP account")
	}
	return list[0], nil
}

func (t *tx) IPAccounts() ([]*sipdesk.SIPAccount, error) {
	return t.sipAccounts("a.auth_type = '" + string(sipdesk.AuthIP) + "'")
}

// DeleteSIPAccount deletes the account; its allowed IPs, rule selections,
// registrations, credential resets and DIDs go with it (ON DELETE CASCADE).
func (t *tx) DeleteSIPAccount(customerID, id int64) error {
	t.configChanged()
	q, args := scoped("DELETE FROM sip_accounts WHERE id = ?", []any{id}, "customer_id", customerID)
	res, err := t.exec(q, args...)
	return t.affected("SIP account", "delete SIP account", res, err)
}

func (t *tx) CountSIPAccounts(customerID int64) (int, error) {
	q, args := scoped("SELECT COUNT(*) FROM sip_accounts WHERE 1 = 1", nil, "customer_id", customerID)
	var n int
	if err := t.queryRow(q, args...).Scan(&n); err != nil {
		return 0, t.fail("count SIP accounts", err)
	}
	return n, nil
}
