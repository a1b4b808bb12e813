package store

import (
	"time"

	"github.com/sipdesk/sipdesk"
)

const operatorCols = "id, email, password_hash, role, totp_secret, totp_last_step, disabled, created_at"

func scanOperator(s interface{ Scan(...any) error }) (*sipdesk.Operator, error) {
	var o sipdesk.Operator
	var disabled, created int64
	if err := s.Scan(&o.ID, &o.Email, &o.PasswordHash, &o.Role, &o.TOTPSecret, &o.TOTPLastStep, &disabled, &created); err != nil {
		return nil, err
	}
	o.Disabled, o.CreatedAt = disabled != 0, fromMS(created)
	return &o, nil
}

func (t *tx) InsertOperator(o *sipdesk.Operator) error {
	if o.CreatedAt.IsZero() {
		o.CreatedAt = now()
	}
	id, err := t.insert("INSERT INTO operators (email, password_hash, role, totp_secret, totp_last_step, disabled, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
		o.Email, o.PasswordHash, string(o.Role), o.TOTPSecret, o.TOTPLastStep, b2i(o.Disabled), ms(o.CreatedAt))
	if err != nil {
		return t.fail("insert operator", err)
	}
	o.ID = id
	return nil
}

func (t *tx) Operator(id int64) (*sipdesk.Operator, error) {
	o, err := scanOperator(t.queryRow("SELECT "+operatorCols+" FROM operators WHERE id = ?", id))
	if err != nil {
		return nil, t.get("operator", "get operator", err)
	}
	return o, nil
}

func (t *tx) OperatorByEmail(email string) (*sipdesk.Operator, error) {
	o, err := scanOperator(t.queryRow("SELECT "+operatorCols+" FROM operators WHERE email = ?", email))
	if err != nil {
		return nil, t.get("operator", "get operator by email", err)
	}
	return o, nil
}

func (t *tx) Operators() ([]*sipdesk.Operator, error) {
	rows, err := t.query("SELECT " + operatorCols + " FROM operators ORDER BY id")
	if err != nil {
		return nil, t.fail("list operators", err)
	}
	return collect(t, rows, "list operators", scanOperator)
}

func (t *tx) UseOperatorTOTPStep(id, step int64) (bool, error) {
	res, err := t.exec("UPDATE operators SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?", step, id, step)
	if err != nil {
		return false, t.fail("use totp step", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, t.fail("use totp step", err)
	}
	return n == 1, nil
}

func (t *tx) InsertOperatorSession(s *sipdesk.OperatorSession) error {
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now()
	}
	id, err := t.insert("INSERT INTO operator_sessions (operator_id, hash, created_at, expires_at) VALUES (?, ?, ?, ?)",
		s.OperatorID, s.Hash, ms(s.CreatedAt), ms(s.ExpiresAt))
	if err != nil {
		return t.fail("insert operator session", err)
	}
	s.ID = id
	return nil
}

func (t *tx) OperatorSessionByHash(hash string) (*sipdesk.OperatorSession, error) {
	var s sipdesk.OperatorSession
	var created, expires int64
	err := t.queryRow("SELECT id, operator_id, hash, created_at, expires_at FROM operator_sessions WHERE hash = ?", hash).
		Scan(&s.ID, &s.OperatorID, &s.Hash, &created, &expires)
	if err != nil {
		return nil, t.get("operator session", "get operator session", err)
	}
	s.CreatedAt, s.ExpiresAt = fromMS(created), fromMS(expires)
	return &s, nil
}

func (t *tx) DeleteOperatorSession(hash string) error {
	if _, err := t.exec("DELETE FROM operator_sessions WHERE hash = ?", hash); err != nil {
		return t.fail("delete operator session", err)
	}
	return nil
}

func (t *tx) DeleteExpiredOperatorSessions(at time.Time) (int, error) {
	res, err := t.exec("DELETE FROM operator_sessions WHERE expires_at <= ?", ms(at))
	if err != nil {
		return 0, t.fail("delete expired operator sessions", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func (t *tx) InsertOperatorToken(o *sipdesk.OperatorToken) error {
	if o.CreatedAt.IsZero() {
		o.CreatedAt = now()
	}
	id, err := t.insert("INSERT INTO operator_tokens (operator_id, name, hash, created_at, last_used_at) VALUES (?, ?, ?, ?, ?)",
		o.OperatorID, o.Name, o.Hash, ms(o.CreatedAt), ms(o.LastUsedAt))
	if err != nil {
		return t.fail("insert operator token", err)
	}
	o.ID = id
	return nil
}

func (t *tx) OperatorTokenByHash(hash string) (*sipdesk.OperatorToken, error) {
	var o sipdesk.OperatorToken
	var created, used int64
	err := t.queryRow("SELECT id, operator_id, name, hash, created_at, last_used_at FROM operator_tokens WHERE hash = ?", hash).
		Scan(&o.ID, &o.OperatorID, &o.Name, &o.Hash, &created, &used)
	if err != nil {
		return nil, t.get("operator token", "get operator token", err)
	}
	o.CreatedAt, o.LastUsedAt = fromMS(created), fromMS(used)
	return &o, nil
}

func (t *tx) TouchOperatorToken(id int64, at time.Time) error {
	if _, err := t.exec("UPDATE operator_tokens SET last_used_at = ? WHERE id = ?", ms(at), id); err != nil {
		return t.fail("touch operator token", err)
	}
	return nil
}
