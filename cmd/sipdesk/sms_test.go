package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
	"github.com/sipdesk/sipdesk/internal/app/apptest"
	"github.com/sipdesk/sipdesk/internal/config"
)

// Support verifies numbers by hand when codes do not arrive: JSON out,
// audited, refused twice.
func TestAdminVerifyCommands(t *testing.T) {
	data := t.TempDir()
	adm := func(args ...string) (int, string, string) {
		return runCmd(t, append([]string{"admin", "--data", data}, args...)...)
	}
	// An unverified customer, as the portal's signup leaves it.
	db, _, err := openStore(context.Background(), config.Store{Data: data}, newLogger(io.Discard, "error"))
	if err != nil {
		t.Fatal(err)
	}
	svc := app.New(db, app.Options{})
	c, err := apptest.Signup(context.Background(), svc, db, "s@example.com", "Portal-Pass-123", "+447700900321")
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	cid := fmt.Sprint(c.ID)

	code, out, errs := adm("customer", "verify-phone", "--customer", cid)
	var got struct {
		CustomerID   int64                               `json:"customer_id"`
		BillingState string                              `json:"billing_state"`
		SIPAccount   struct{ Username, Password string } `json:"sip_account"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.CustomerID != c.ID || got.BillingState != "trial" || len(got.SIPAccount.Password) < 12 {
		t.Fatalf("customer verify-phone: %d %q %q", code, out, errs)
	}
	if code, _, errs := adm("customer", "verify-phone", "--customer", cid); code != 1 || !strings.Contains(errs, "already verified") {
		t.Fatalf("second verify-phone: %d %q", code, errs)
	}
	if code, _, _ := adm("customer", "verify-phone"); code != 2 {
		t.Fatal("verify-phone without --customer must be a usage error")
	}
	adm("topup", "--customer", cid, "--amount", "20")
	code, out, errs = adm("caller-id", "verify", "--customer", cid, "--number", "+44 20 7946 0001")
	if code != 0 || !strings.Contains(out, `"number": "+442079460001"`) || !strings.Contains(out, `"verified": true`) {
		t.Fatalf("caller-id verify: %d %q %q", code, out, errs)
	}
	if code, _, errs := adm("caller-id", "verify", "--customer", cid, "--number", "+442079460001"); code != 1 || !strings.Contains(errs, "already verified") {
		t.Fatalf("second caller-id verify: %d %q", code, errs)
	}
	if code, _, errs := adm("caller-id", "verify", "--customer", cid, "--number", "nope"); code != 1 || !strings.Contains(errs, "number") {
		t.Fatalf("bad number: %d %q", code, errs)
	}

	db, _, err = openStore(context.Background(), config.Store{Data: data}, newLogger(io.Discard, "error"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var actions []string
	db.View(context.Background(), func(tx sipdesk.Tx) error {
		es, err := tx.Audit(c.ID, 0)
		for _, e := range es {
			if e.Actor == string(app.ActorOperator) {
				actions = append(actions, e.Action)
			}
		}
		return err
	})
	if !strings.Contains(strings.Join(actions, " "), sipdesk.AuditPhoneVerified) || !strings.Contains(strings.Join(actions, " "), sipdesk.AuditCallerIDVerified) {
		t.Errorf("operator audit entries: %v", actions)
	}
}
