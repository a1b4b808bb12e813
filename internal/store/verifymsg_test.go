package store

import (
	"strings"
	"testing"
	"time"

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

// An edge request's payload (a voice call's carries the code) is encrypted
// at rest and dropped once the request is final.
func TestEdgeRequestPayloadEncryptedAtRest(t *testing.T) {
	db := openT(t, Options{DataDir: t.TempDir(), SecretKey: testKey(t)})
	r := &sipdesk.EdgeRequest{Kind: sipdesk.EdgeVoiceCall, Payload: `{"code":"918273"}`, ExpiresAt: now().Add(time.Minute)}
	if err := db.Update(t.Context(), func(tx sipdesk.Tx) error { return tx.InsertEdgeRequest(r) }); err != nil {
		t.Fatal(err)
	}
	raw := func() string {
		var s string
		if err := db.write.QueryRowContext(t.Context(), "SELECT payload FROM edge_requests WHERE id = ?", r.ID).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := raw(); s == "" || strings.Contains(s, "918273") {
		t.Errorf("stored payload %q: want it encrypted", s)
	}
	err := db.Update(t.Context(), func(tx sipdesk.Tx) error {
		if _, err := tx.ClaimEdgeRequest("edge", []string{sipdesk.EdgeVoiceCall}, now(), now().Add(time.Minute)); err != nil {
			return err
		}
		return tx.FinishEdgeRequest(r.ID, "edge", sipdesk.EdgeDone, "answered", now())
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := raw(); s != "" {
		t.Errorf("payload after the request finished: %q, want empty", s)
	}
}
