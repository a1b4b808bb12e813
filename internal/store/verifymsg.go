package store

import (
	"time"

	"github.com/sipdesk/sipdesk"
)

// Verification messages: the queue internal/notify delivers. The code column
// is encrypted like the JWT secrets and emptied once it is not needed.

const verifyMsgCols = `id, public_id, customer_id, number_id, channel, purpose, to_number, code, state,
	attempts, next_at, last_error, report_hash, expires_at, created_at, updated_at`

// colVerifyCode is the column name bound into the code's encryption.
const colVerifyCode = "verification_messages.code"

func (t *tx) scanVerifyMsg(s interface{ Scan(...any) error }) (*sipdesk.VerificationMessage, error) {
	var m sipdesk.VerificationMessage
	var state, code string
	var next, expires, created, updated int64
	if err := s.Scan(&m.ID, &m.PublicID, &m.CustomerID, &m.NumberID, &m.Channel, &m.Purpose, &m.To, &code, &state,
		&m.Attempts, &next, &m.LastError, &m.ReportHash, &expires, &created, &updated); err != nil {
		return nil, err
	}
	var err error
	if m.Code, err = t.db.open(colVerifyCode, code); err != nil {
		return nil, err
	}
	m.State = sipdesk.MessageState(state)
	m.NextAt, m.ExpiresAt, m.CreatedAt, m.UpdatedAt = fromMS(next), fromMS(expires), fromMS(created), fromMS(updated)
	return &m, nil
}

func (t *tx) InsertVerificationMessage(m *sipdesk.VerificationMessage) error {
	if m.CreatedAt.IsZero() {
		m.CreatedAt = now()
	}
	m.UpdatedAt = m.CreatedAt
	id, err := t.insert(`INSERT INTO verification_messages (public_id, customer_id, number_id, channel, purpose, to_number, code, state,
		attempts, next_at, last_error, report_hash, expires_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.PublicID, m.CustomerID, m.NumberID, m.Channel, m.Purpose, m.To, t.db.seal(colVerifyCode, m.Code), string(m.State),
		m.Attempts, ms(m.NextAt), m.LastError, m.ReportHash, ms(m.ExpiresAt), ms(m.CreatedAt), ms(m.UpdatedAt))
	if err != nil {
		return t.fail("insert verification message", err)
	}
	m.ID = id
	return nil
}

func (t *tx) verifyMsg(what, where string, args ...any) (*sipdesk.VerificationMessage, error) {
	m, err := t.scanVerifyMsg(t.queryRow("SELECT "+verifyMsgCols+" FROM verification_messages WHERE "+where, args...))
	if err != nil {
		return nil, t.get("verification message", what, err)
	}
	return m, nil
}

func (t *tx) VerificationMessage(id int64) (*sipdesk.VerificationMessage, error) {
	return t.verifyMsg("get verification message", "id = ?", id)
}

func (t *tx) VerificationMessageByReport(hash string) (*sipdesk.VerificationMessage, error) {
	if hash == "" {
		return nil, notFound("verification message")
	}
	return t.verifyMsg("get verification message by report", "report_hash = ?", hash)
}

func (t *tx) LatestVerificationMessage(numberID int64) (*sipdesk.VerificationMessage, error) {
	return t.verifyMsg("get latest verification message", "number_id = ? ORDER BY id DESC LIMIT 1", numberID)
}

func (t *tx) DueVerificationMessages(customerID int64, at time.Time, limit int) ([]*sipdesk.VerificationMessage, error) {
	q, args := scoped("SELECT "+verifyMsgCols+" FROM verification_messages WHERE state = ? AND next_at <= ?",
		[]any{string(sipdesk.MessageQueued), ms(at)}, "customer_id", customerID)
	rows, err := t.query(q+" ORDER BY next_at, id"+limitClause(limit), args...)
	if err != nil {
		return nil, t.fail("list due verification messages", err)
	}
	return collect(t, rows, "list due verification messages", t.scanVerifyMsg)
}

func (t *tx) ClaimVerificationMessage(id int64, at, until time.Time, reportHash string) error {
	res, err := t.exec(`UPDATE verification_messages SET next_at = ?, report_hash = ?, attempts = attempts + 1, updated_at = ?
		WHERE id = ? AND state = ? AND next_at <= ?`,
		ms(until), reportHash, ms(at), id, string(sipdesk.MessageQueued), ms(at))
	return t.affected("verification message", "claim verification message", res, err)
}

func (t *tx) UpdateVerificationMessage(m *sipdesk.VerificationMessage) error {
	m.UpdatedAt = now()
	res, err := t.exec(`UPDATE verification_messages SET channel = ?, code = ?, state = ?, attempts = ?, next_at = ?,
		last_error = ?, report_hash = ?, expires_at = ?, updated_at = ? WHERE id = ?`,
		m.Channel, t.db.seal(colVerifyCode, m.Code), string(m.State), m.Attempts, ms(m.NextAt),
		m.LastError, m.ReportHash, ms(m.ExpiresAt), ms(m.UpdatedAt), m.ID)
	return t.affected("verification message", "update verification message", res, err)
}

func (t *tx) ReplaceVerificationMessages(numberID int64) (int, error) {
	res, err := t.exec("UPDATE verification_messages SET state = ?, code = '', updated_at = ? WHERE number_id = ? AND state = ?",
		string(sipdesk.MessageReplaced), ms(now()), numberID, string(sipdesk.MessageQueued))
	if err != nil {
		return 0, t.fail("replace verification messages", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

func (t *tx) PruneVerificationMessages(before time.Time) (int, error) {
	res, err := t.exec("DELETE FROM verification_messages WHERE created_at < ?", ms(before))
	if err != nil {
		return 0, t.fail("prune verification messages", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
