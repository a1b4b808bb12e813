package storetest

import (
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Sign-in security (store: security.go).

func testSecurity(t *testing.T, su *suite) {
	s := su.open(t)
	c := newCustomer(t, s)
	keep := &sipdesk.Session{CustomerID: c.ID, Hash: "k" + uniq(), CreatedAt: at(0), ExpiresAt: at(time.Hour), UserAgent: "Firefox", Source: "192.0.2.1"}
	drop := &sipdesk.Session{CustomerID: c.ID, Hash: "d" + uniq(), CreatedAt: at(time.Second), ExpiresAt: at(time.Hour)}
	update(t, s, func(tx sipdesk.Tx) error {
		if err := tx.InsertSession(keep); err != nil {
			return err
		}
		return tx.InsertSession(drop)
	})
	view(t, s, func(tx sipdesk.Tx) error {
		ss, err := tx.Sessions(c.ID, at(0))
		if err != nil {
			return err
		}
		if len(ss) != 2 || ss[0].ID != drop.ID {
			t.Errorf("Sessions: %+v", ss)
		}
		equal(t, "Sessions[1]", ss[1], keep)
		return nil
	})
	update(t, s, func(tx sipdesk.Tx) error {
		n, err := tx.DeleteCustomerSessions(c.ID, keep.Hash)
		if n != 1 {
			t.Errorf("DeleteCustomerSessions ended %d", n)
		}
		return err
	})
	wantCode(t, "another customer's session", txErr(t, s, func(tx sipdesk.Tx) error { return tx.DeleteSessionByID(c.ID+1000, keep.ID) }), sipdesk.ENotFound, "")
	update(t, s, func(tx sipdesk.Tx) error { return tx.DeleteSessionByID(c.ID, keep.ID) })

	r := &sipdesk.PasswordReset{CustomerID: c.ID, TokenHash: "r" + uniq(), ExpiresAt: at(time.Hour), CreatedAt: at(0)}
	update(t, s, func(tx sipdesk.Tx) error { return tx.InsertPasswordReset(r) })
	update(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.UsePasswordReset(r.TokenHash, at(time.Minute))
		if err == nil && got.CustomerID != c.ID {
			t.Errorf("UsePasswordReset: %+v", got)
		}
		return err
	})
	wantCode(t, "second use", txErr(t, s, func(tx sipdesk.Tx) error { _, err := tx.UsePasswordReset(r.TokenHash, at(time.Minute)); return err }), sipdesk.EConflict, "")

	o := &sipdesk.TOTP{CustomerID: c.ID, Secret: "JBSWY3DPEHPK3PXP"}
	update(t, s, func(tx sipdesk.Tx) error { return tx.SaveTOTP(o) })
	o.EnabledAt, o.LastStep = at(0), 100
	update(t, s, func(tx sipdesk.Tx) error { return tx.SaveTOTP(o) })
	view(t, s, func(tx sipdesk.Tx) error {
		got, err := tx.TOTP(c.ID)
		if err == nil {
			equal(t, "TOTP", got, o)
		}
		return err
	})
	update(t, s, func(tx sipdesk.Tx) error { return tx.UseTOTPStep(c.ID, 101) })
	wantCode(t, "step used", txErr(t, s, func(tx sipdesk.Tx) error { return tx.UseTOTPStep(c.ID, 101) }), sipdesk.EConflict, "")
	wantCode(t, "older step", txErr(t, s, func(tx sipdesk.Tx) error { return tx.UseTOTPStep(c.ID, 99) }), sipdesk.EConflict, "")

	update(t, s, func(tx sipdesk.Tx) error { return tx.ReplaceRecoveryCodes(c.ID, []string{"a", "b", "c"}) })
	update(t, s, func(tx sipdesk.Tx) error { return tx.UseRecoveryCode(c.ID, "b", at(0)) })
	wantCode(t, "code used twice", txErr(t, s, func(tx sipdesk.Tx) error { return tx.UseRecoveryCode(c.ID, "b", at(0)) }), sipdesk.ENotFound, "")
	view(t, s, func(tx sipdesk.Tx) error {
		n, err := tx.RecoveryCodesLeft(c.ID)
		if n != 2 {
			t.Errorf("RecoveryCodesLeft = %d", n)
		}
		return err
	})
	update(t, s, func(tx sipdesk.Tx) error { return tx.DeleteTOTP(c.ID) })
	wantCode(t, "deleted TOTP", txErr(t, s, func(tx sipdesk.Tx) error { _, err := tx.TOTP(c.ID); return err }), sipdesk.ENotFound, "")
}
