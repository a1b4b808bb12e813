package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestAdminOperatorCommands(t *testing.T) {
	data := t.TempDir()
	adm := func(args ...string) (int, string, string) {
		return runCmd(t, append([]string{"admin", "--data", data}, args...)...)
	}
	code, out, errs := adm("operator", "create", "--email", "desk@example.com", "--password", "Operator-Pass-123", "--role", "support")
	if code != 0 {
		t.Fatalf("operator create: %d %s", code, errs)
	}
	var created struct {
		OperatorID int64  `json:"operator_id"`
		TOTPSecret string `json:"totp_secret"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.OperatorID == 0 || len(created.TOTPSecret) < 16 || strings.ToUpper(created.TOTPSecret) != created.TOTPSecret {
		t.Fatalf("operator create printed %q (%v)", out, err)
	}
	if code, _, errs := adm("operator", "create", "--email", "x@example.com", "--password", "Operator-Pass-123", "--role", "boss"); code != 1 || !strings.Contains(errs, "role") {
		t.Fatalf("unknown role: %d %s", code, errs)
	}
	if code, _, errs := adm("operator", "create", "--email", "desk@example.com", "--password", "Operator-Pass-123", "--role", "admin"); code != 1 || !strings.Contains(errs, "exists") {
		t.Fatalf("duplicate: %d %s", code, errs)
	}
	code, out, errs = adm("operator", "token", "create", "--operator", fmt.Sprint(created.OperatorID), "--name", "billing")
	if code != 0 || !strings.HasPrefix(out, "sdo_") {
		t.Fatalf("token create: %d %q %s", code, out, errs)
	}
	if code, _, _ := adm("operator", "token", "create", "--operator", "999"); code != 1 {
		t.Fatal("token for an unknown operator")
	}
}
