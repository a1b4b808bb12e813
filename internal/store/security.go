package store

import (
	"time"

	"github.com/sipdesk/sipdesk"
)

// Sign-in security (sipdesk.SecurityTx): a customer's sessions, forgotten
// password links, the authenticator app and its recovery codes.

// colTOTPSecret is the column name bound into the secret's encryption.
const colTOTPSecret = "customer_totp.secret"

func (t *tx) Sessions(customerID int64, now time.Time) ([]*sipdesk.Session, error) {
	rows, err := t.query(`SELECT id, customer_id, hash, created_at, expires_at, user_agent, source FROM sessions
		WHERE customer_id = ? AND expires_at > ? ORDER BY created_at DESC, id DESC`, customerID, ms(now))
	if err != nil {
		return nil, t.fail("list sessions", err)
	}
	defer rows.Close()
	var out []*sipdesk.Session
	for rows.Next() {
		var s sipdesk.Session
		var created, expires int64
		if err := rows.Scan(&s.ID, &s.CustomerID, &s.Hash, &created, &expires, &s.UserAgent, &s.Source); err != nil {
			return nil, t.fail("list sessions", err)
		}
		s.CreatedAt, s.ExpiresAt = fromMS(created), fromMS(expires)
		out = append(out, &s)
	}
	return out, t.fail2("list sessions", rows.Err())
}

// fail2 is fail for a possibly nil error.
func (t *tx) fail2(what string, err error) error {
	if err == nil {
		return nil
	}
	return t.fail(what, err)
}

func (t *tx) DeleteSessionByID(customerID, id int64) error {
	res, err := t.exec("DELETE FROM sessions WHERE id = ? AND customer_id = ?", id, customerID)
	return t.affected("session", "delete session", res, err)
}

func (t *tx) DeleteCustomerSessions(customerID int64, keepHash string) (int, error) {
	res, err := t.exec("DELETE FROM sessions WHERE customer_id = ? AND hash <> ?", customerID, keepHash)
	if err != nil {
		return 0, t.fail("delete sessions", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func (t *tx) InsertPasswordReset(r *sipdesk.PasswordReset) error {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = now()
	}
	// Links that ran out a day ago are dropped on the way (they are
	// refused anyway; the table stays small).
	if _, err := t.exec("DELETE FROM password_resets WHERE expires_at < ?", ms(r.CreatedAt.Add(-24*time.Hour))); err != nil {
		return t.fail("prune password resets", err)
	}
	id, err := t.insert("INSERT INTO password_resets (customer_id, token_hash, expires_at, used_at, created_at) VALUES (?, ?, ?, ?, ?)",
		r.CustomerID, r.TokenHash, ms(r.ExpiresAt), ms(r.UsedAt), ms(r.CreatedAt))
	if err != nil {
		return t.fail("insert password reset", err)
	}
	r.ID = id
	return nil
}

func (t *tx) PasswordResetByHash(hash string) (*sipdesk.PasswordReset, error) {
	var r sipdesk.PasswordReset
	var expires, used, created int64
	err := t.queryRow(`SELECT id, customer_id, token_hash, expires_at, used_at, created_at FROM password_resets WHERE token_hash = ?`, hash).
		Scan(&r.ID, &r.CustomerID, &r.TokenHash, &expires, &used, &created)
	if err != nil {
		return nil, t.get("password reset", "get password reset", err)
	}
	r.ExpiresAt, r.UsedAt, r.CreatedAt = fromMS(expires), fromMS(used), fromMS(created)
	return &r, nil
}

func (t *tx) UsePasswordReset(hash string, at time.Time) (*sipdesk.PasswordReset, error) {
	r, err := t.PasswordResetByHash(hash)
	if err != nil {
		return nil, err
	}
	// One statement decides who used it: two submits of one link never
	// both pass.
	res, err := t.exec("UPDATE password_resets SET used_at = ? WHERE id = ? AND used_at = 0", ms(at), r.ID)
	if err := t.affected("password reset", "use password reset", res, err); err != nil {
		if sipdesk.ErrorCode(err) == sipdesk.ENotFound {
			return nil, sipdesk.Errorf(sipdesk.EConflict, "this link was already used")
		}
		return nil, err
	}
	r.UsedAt = at
	return r, nil
}

func (t *tx) TOTP(customerID int64) (*sipdesk.TOTP, error) {
	var o sipdesk.TOTP
	var sealed string
	var enabled int64
	err := t.queryRow("SELECT customer_id, secret, enabled_at, last_step FROM customer_totp WHERE customer_id = ?", customerID).
		Scan(&o.CustomerID, &sealed, &enabled, &o.LastStep)
	if err != nil {
		return nil, t.get("authenticator", "get totp", err)
	}
	if o.Secret, err = t.db.open(colTOTPSecret, sealed); err != nil {
		return nil, t.fail("open totp secret", err)
	}
	o.EnabledAt = fromMS(enabled)
	return &o, nil
}

func (t *tx) SaveTOTP(o *sipdesk.TOTP) error {
	_, err := t.exec(`INSERT INTO customer_totp (customer_id, secret, enabled_at, last_step) VALUES (?, ?, ?, ?)
		ON CONFLICT (customer_id) DO UPDATE SET secret = excluded.secret, enabled_at = excluded.enabled_at, last_step = excluded.last_step`,
		o.CustomerID, t.db.seal(colTOTPSecret, o.Secret), ms(o.EnabledAt), o.LastStep)
	if err != nil {
		return t.fail("save totp", err)
	}
	return nil
}

func (t *tx) DeleteTOTP(customerID int64) error {
	if _, err := t.exec("DELETE FROM customer_totp WHERE customer_id = ?", customerID); err != nil {
		return t.fail("delete totp", err)
	}
	return nil
}

func (t *tx) UseTOTPStep(customerID, step int64) error {
	res, err := t.exec("UPDATE customer_totp SET last_step = ? WHERE customer_id = ? AND last_step < ?", step, customerID, step)
	if err := t.affected("authenticator", "use totp step", res, err); err != nil {
		if sipdesk.ErrorCode(err) == sipdesk.ENotFound {
			return sipdesk.Errorf(sipdesk.EConflict, "this code was already used: wait for the next one")
		}
		return err
	}
	return nil
}

func (t *tx) ReplaceRecoveryCodes(customerID int64, hashes []string) error {
	if _, err := t.exec("DELETE FROM recovery_codes WHERE customer_id = ?", customerID); err != nil {
		return t.fail("replace recovery codes", err)
	}
	for _, h := range hashes {
		if _, err := t.exec("INSERT INTO recovery_codes (customer_id, hash, used_at) VALUES (?, ?, 0)", customerID, h); err != nil {
			return t.fail("insert recovery code", err)
		}
	}
	return nil
}

func (t *tx) UseRecoveryCode(customerID int64, hash string, at time.Time) error {
	// The lowest id of the matching unused codes: one row, and a second
	// use of the same code finds none.
	res, err := t.exec(`UPDATE recovery_codes SET used_at = ? WHERE id = (SELECT MIN(id) FROM recovery_codes
		WHERE customer_id = ? AND hash = ? AND used_at = 0)`, ms(at), customerID, hash)
	return t.affected("recovery code", "use recovery code", res, err)
}

func (t *tx) RecoveryCodesLeft(customerID int64) (int, error) {
	var n int
	err := t.queryRow("SELECT COUNT(*) FROM recovery_codes WHERE customer_id = ? AND used_at = 0", customerID).Scan(&n)
	if err != nil {
		return 0, t.fail("count recovery codes", err)
	}
	return n, nil
}
