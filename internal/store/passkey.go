package store

import (
	"encoding/base64"
	"strings"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Passkeys (sipdesk.PasskeyTx). Byte fields are stored as base64url text,
// the same on both engines.

var passkeyB64 = base64.RawURLEncoding

const passkeyCols = "id, customer_id, credential_id, public_key, sign_count, transports, flags, aaguid, name, created_at, last_used_at"

func (t *tx) InsertPasskey(p *sipdesk.Passkey) error {
	if p.CreatedAt.IsZero() {
		p.CreatedAt = now()
	}
	id, err := t.insert(`INSERT INTO passkeys (customer_id, credential_id, public_key, sign_count, transports, flags, aaguid, name, created_at, last_used_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, p.CustomerID, passkeyB64.EncodeToString(p.CredentialID), passkeyB64.EncodeToString(p.PublicKey),
		int64(p.SignCount), strings.Join(p.Transports, ","), int(p.Flags), passkeyB64.EncodeToString(p.AAGUID), p.Name, ms(p.CreatedAt), ms(p.LastUsedAt))
	if err != nil {
		return t.fail("insert passkey", err)
	}
	p.ID = id
	return nil
}

type passkeyRow interface{ Scan(dest ...any) error }

func scanPasskey(r passkeyRow) (*sipdesk.Passkey, error) {
	var p sipdesk.Passkey
	var cred, pub, transports, aaguid string
	var count, created, used int64
	var flags int
	if err := r.Scan(&p.ID, &p.CustomerID, &cred, &pub, &count, &transports, &flags, &aaguid, &p.Name, &created, &used); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		dst *[]byte
		src string
	}{{&p.CredentialID, cred}, {&p.PublicKey, pub}, {&p.AAGUID, aaguid}} {
		if f.src == "" {
			continue
		}
		b, err := passkeyB64.DecodeString(f.src)
		if err != nil {
			return nil, err
		}
		*f.dst = b
	}
	if transports != "" {
		p.Transports = strings.Split(transports, ",")
	}
	p.SignCount, p.Flags = uint32(count), uint8(flags) //nolint:gosec // stored from these types
	p.CreatedAt, p.LastUsedAt = fromMS(created), fromMS(used)
	return &p, nil
}

func (t *tx) Passkeys(customerID int64) ([]*sipdesk.Passkey, error) {
	rows, err := t.query("SELECT "+passkeyCols+" FROM passkeys WHERE customer_id = ? ORDER BY id", customerID)
	if err != nil {
		return nil, t.fail("list passkeys", err)
	}
	defer rows.Close()
	var out []*sipdesk.Passkey
	for rows.Next() {
		p, err := scanPasskey(rows)
		if err != nil {
			return nil, t.fail("list passkeys", err)
		}
		out = append(out, p)
	}
	return out, t.fail2("list passkeys", rows.Err())
}

func (t *tx) PasskeyByCredential(credentialID []byte) (*sipdesk.Passkey, error) {
	p, err := scanPasskey(t.queryRow("SELECT "+passkeyCols+" FROM passkeys WHERE credential_id = ?", passkeyB64.EncodeToString(credentialID)))
	if err != nil {
		return nil, t.get("passkey", "get passkey", err)
	}
	return p, nil
}

func (t *tx) UsePasskey(id int64, signCount uint32, at time.Time) error {
	// One statement decides: a counter that did not move forward (a
	// cloned key, or the same assertion twice) changes nothing.
	res, err := t.exec(`UPDATE passkeys SET sign_count = ?, last_used_at = ? WHERE id = ? AND (sign_count < ? OR (sign_count = 0 AND ? = 0))`,
		int64(signCount), ms(at), id, int64(signCount), int64(signCount))
	if err := t.affected("passkey", "use passkey", res, err); err != nil {
		if sipdesk.ErrorCode(err) == sipdesk.ENotFound {
			return sipdesk.Errorf(sipdesk.EConflict, "the passkey's signature counter went back: it may have been copied")
		}
		return err
	}
	return nil
}

func (t *tx) DeletePasskey(customerID, id int64) error {
	res, err := t.exec("DELETE FROM passkeys WHERE id = ? AND customer_id = ?", id, customerID)
	return t.affected("passkey", "delete passkey", res, err)
}
