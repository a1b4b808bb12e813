package store

import (
	"strings"
	"testing"

	"github.com/sipdesk/sipdesk"
)

// A queued code is encrypted at rest (the column never holds the digits)
// and the column is emptied once the message no longer needs it.
func TestVerificationCodeEncryptedAtRest(t *testing.T) {
	db := openT(t, Options{DataDir: t.TempDir(), SecretKey: testKey(t)})
	c := &sipdesk.Customer{Email: "v@example.com", PasswordHash: "x", VerifiedPhone: "+447700900123", BillingState: sipdesk.BillingUnverified}
	m := &sipdesk.VerificationMessage{PublicID: "vm_1", NumberID: 1, Channel: "kannel", Purpose: sipdesk.PurposeSignup,
		To: "+447700900123", Code: "918273", State: sipdesk.MessageQueued}
	err := db.Update(t.Context(), func(tx sipdesk.Tx) error {
		if err := tx.InsertCustomer(c); err != nil {
			return err
		}
		m.CustomerID = c.ID
		return tx.InsertVerificationMessage(m)
	})
	if err != nil {
		t.Fatal(err)
	}
	raw := func() string {
		var s string
		if err := db.write.QueryRowContext(t.Context(), "SELECT code FROM verification_messages WHERE id = ?", m.ID).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := raw(); s == "" || strings.Contains(s, "918273") {
		t.Errorf("stored code column %q: want it encrypted", s)
	}
	m.State, m.Code = sipdesk.MessageSent, ""
	if err := db.Update(t.Context(), func(tx sipdesk.Tx) error { return tx.UpdateVerificationMessage(m) }); err != nil {
		t.Fatal(err)
	}
	if s := raw(); s != "" {
		t.Errorf("code column after sending: %q, want empty", s)
	}
}
