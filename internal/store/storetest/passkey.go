package storetest

import (
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Passkeys (store: passkey.go).

func testPasskeys(t *testing.T, su *suite) {
	s := su.open(t)
	c := newCustomer(t, s)
	other := newCustomer(t, s)
	p := &sipdesk.Passkey{CustomerID: c.ID, CredentialID: []byte("cred-" + uniq()), PublicKey: []byte{0xa5, 1, 2, 3, 0xff},
		SignCount: 0, Transports: []string{"internal", "hybrid"}, Flags: 0x5d, AAGUID: make([]byte, 16), Name: "Laptop", CreatedAt: at(0)}
	update(t, s, func(tx sipdesk.Tx) error { return tx.InsertPasskey(p) })
	q := &sipdesk.Passkey{CustomerID: c.ID, CredentialID: []byte("cred2-" + uniq()), PublicKey: []byte{9}, SignCount: 7, Name: "Key", CreatedAt: at(time.Second)}
	update(t, s, func(tx sipdesk.Tx) error { return tx.InsertPasskey(q) })
	dup := &sipdesk.Passkey{CustomerID: other.ID, CredentialID: p.CredentialID, PublicKey: []byte{1}, Name: "Copy"}
	wantCode(t, "same credential id", txErr(t, s, func(tx sipdesk.Tx) error { return tx.InsertPasskey(dup) }), sipdesk.EConflict, "passkey")
	view(t, s, func(tx sipdesk.Tx) error {
		ps, err := tx.Passkeys(c.ID)
		if err != nil {
			return err
		}
		if len(ps) != 2 {
			t.Fatalf("Passkeys: %d rows", len(ps))
		}
		equal(t, "Passkeys[0]", ps[0], p)
		equal(t, "Passkeys[1]", ps[1], q)
		got, err := tx.PasskeyByCredential(q.CredentialID)
		if err != nil {
			return err
		}
		equal(t, "PasskeyByCredential", got, q)
		if ps, _ := tx.Passkeys(other.ID); len(ps) != 0 {
			t.Errorf("another customer's passkeys: %d", len(ps))
		}
		return nil
	})
	wantCode(t, "unknown credential", txErr(t, s, func(tx sipdesk.Tx) error { _, err := tx.PasskeyByCredential([]byte("nope")); return err }), sipdesk.ENotFound, "")

	// Counters: 0 → 0 is an authenticator without one; a counter must
	// otherwise move forward.
	update(t, s, func(tx sipdesk.Tx) error { return tx.UsePasskey(p.ID, 0, at(time.Minute)) })
	update(t, s, func(tx sipdesk.Tx) error { return tx.UsePasskey(q.ID, 8, at(time.Minute)) })
	wantCode(t, "same counter", txErr(t, s, func(tx sipdesk.Tx) error { return tx.UsePasskey(q.ID, 8, at(2*time.Minute)) }), sipdesk.EConflict, "")
	wantCode(t, "counter back", txErr(t, s, func(tx sipdesk.Tx) error { return tx.UsePasskey(q.ID, 3, at(2*time.Minute)) }), sipdesk.EConflict, "")
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.PasskeyByCredential(q.CredentialID)
		if err != nil {
			return err
		}
		if got.SignCount != 8 || !got.LastUsedAt.Equal(at(time.Minute)) {
			t.Errorf("after use: count %d, last used %v", got.SignCount, got.LastUsedAt)
		}
		return nil
	})

	wantCode(t, "another customer's passkey", txErr(t, s, func(tx sipdesk.Tx) error { return tx.DeletePasskey(other.ID, p.ID) }), sipdesk.ENotFound, "")
	update(t, s, func(tx sipdesk.Tx) error { return tx.DeletePasskey(c.ID, p.ID) })
	view(t, s, func(tx sipdesk.Tx) error {
		ps, err := tx.Passkeys(c.ID)
		if err == nil && len(ps) != 1 {
			t.Errorf("after delete: %d passkeys", len(ps))
		}
		return err
	})
}
