package store

import (
	"github.com/sipdesk/sipdesk"
)

func (t *tx) InsertCredentialReset(r *sipdesk.CredentialReset) error {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = now()
	}
	// The account must be the customer's: the row is inserted only then.
	res, err := t.exec(`INSERT INTO credential_resets (customer_id, sip_account_id, token_hash, expires_at, used_at, created_at)
		SELECT customer_id, id, CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT)
		FROM sip_accounts WHERE id = ? AND customer_id = ?`,
		r.TokenHash, ms(r.ExpiresAt), ms(r.UsedAt), ms(r.CreatedAt), r.SIPAccountID, r.CustomerID)
	if err := t.affected("SIP account", "insert credential reset", res, err); err != nil {
		return err
	}
	var id int64
	if err := t.queryRow("SELECT id FROM credential_resets WHERE token_hash = ?", r.TokenHash).Scan(&id); err != nil {
		return t.fail("insert credential reset", err)
	}
	r.ID = id
	return nil
}

func (t *tx) CredentialResetByHash(hash string) (*sipdesk.CredentialReset, error) {
	var r sipdesk.CredentialReset
	var expires, used, created int64
	err := t.queryRow(`SELECT id, customer_id, sip_account_id, token_hash, expires_at, used_at, created_at
		FROM credential_resets WHERE token_hash = ?`, hash).
		Scan(&r.ID, &r.CustomerID, &r.SIPAccountID, &r.TokenHash, &expires, &used, &created)
	if err != nil {
		return nil, t.get("credential reset", "get credential reset", err)
	}
	r.ExpiresAt, r.UsedAt, r.CreatedAt = fromMS(expires), fromMS(used), fromMS(created)
	return &r, nil
}

// UpdateCredentialReset stores the expiry and use of a reset (its token and
// account do not change).
func (t *tx) UpdateCredentialReset(r *sipdesk.CredentialReset) error {
	res, err := t.exec("UPDATE credential_resets SET expires_at = ?, used_at = ? WHERE id = ?", ms(r.ExpiresAt), ms(r.UsedAt), r.ID)
	return t.affected("credential reset", "update credential reset", res, err)
}
