package storetest

import (
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Credential resets (store: credential.go).

func testCredentialResets(t *testing.T, su *suite) {
	s := su.open(t)
	ca, cb := newCustomer(t, s), newCustomer(t, s)
	a := newPasswordAccount(t, s, ca.ID)
	r := &sipdesk.CredentialReset{CustomerID: ca.ID, SIPAccountID: a.ID, TokenHash: sipdesk.HashToken(uniq()), ExpiresAt: at(30 * time.Minute), CreatedAt: at(0)}
	update(t, s, func(tx sipdesk.Tx) error { return tx.InsertCredentialReset(r) })
	if r.ID == 0 {
		t.Fatal("InsertCredentialReset did not set ID")
	}
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.CredentialResetByHash(r.TokenHash)
		if err != nil {
			return err
		}
		equal(t, "CredentialResetByHash", got, r)
		_, err = tx.CredentialResetByHash(sipdesk.HashToken("unknown"))
		wantCode(t, "CredentialResetByHash unknown", err, sipdesk.ENotFound, "")
		return nil
	})
	r.UsedAt = at(time.Minute)
	update(t, s, func(tx sipdesk.Tx) error { return tx.UpdateCredentialReset(r) })
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.CredentialResetByHash(r.TokenHash)
		if err != nil {
			return err
		}
		equal(t, "CredentialResetByHash after use", got, r)
		return nil
	})
	foreign := &sipdesk.CredentialReset{CustomerID: cb.ID, SIPAccountID: a.ID, TokenHash: sipdesk.HashToken(uniq()), ExpiresAt: at(time.Hour)}
	wantCode(t, "InsertCredentialReset for another customer's account", txErr(t, s, func(tx sipdesk.Tx) error { return tx.InsertCredentialReset(foreign) }), sipdesk.ENotFound, "")
	wantCode(t, "UpdateCredentialReset unknown", txErr(t, s, func(tx sipdesk.Tx) error {
		return tx.UpdateCredentialReset(&sipdesk.CredentialReset{ID: 1 << 50})
	}), sipdesk.ENotFound, "")
	dup := &sipdesk.CredentialReset{CustomerID: ca.ID, SIPAccountID: a.ID, TokenHash: r.TokenHash}
	wantCode(t, "InsertCredentialReset with a used hash", txErr(t, s, func(tx sipdesk.Tx) error { return tx.InsertCredentialReset(dup) }), sipdesk.EConflict, "")
}
