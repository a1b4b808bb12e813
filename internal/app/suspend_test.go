package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

func TestSuspendCustomer(t *testing.T) {
	f := newFixture(t, app.Options{})
	c, _, err := f.svc.CreateVerifiedCustomer(f.ctx, "c@example.com", "Portal-Pass-123", "+15551230001")
	if err != nil {
		t.Fatal(err)
	}
	ro, _ := newOperator(t, f, "ro@example.com", sipdesk.RoleReadonly)
	sup, _ := newOperator(t, f, "sup@example.com", sipdesk.RoleSupport)
	session, err := f.svc.CreateSession(f.ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	token, err := f.svc.CreateAPIToken(f.ctx, c.ID, "ci", app.CustomerActor(c.ID, "portal"))
	if err != nil {
		t.Fatal(err)
	}

	// readonly: refused, nothing changed.
	if _, err := f.svc.OpsSuspendCustomer(f.ctx, ro, c.ID, "fraud"); sipdesk.ErrorCode(err) != sipdesk.EForbidden {
		t.Fatalf("readonly suspends: %v, want forbidden", err)
	}
	if _, err := f.svc.SessionCustomer(f.ctx, session); err != nil {
		t.Fatalf("the session ended after a refused suspension: %v", err)
	}
	if got, _ := f.svc.Customer(f.ctx, c.ID); got.Suspended() {
		t.Fatal("a refused suspension suspended the customer")
	}
	if _, err := f.svc.OpsSuspendCustomer(f.ctx, sup, c.ID, "  "); sipdesk.ErrorCode(err) != sipdesk.EInvalid {
		t.Fatalf("no reason: %v, want invalid", err)
	}
	if _, err := f.svc.OpsSuspendCustomer(f.ctx, sup, c.ID, "a\u202eb"); sipdesk.ErrorCode(err) != sipdesk.EInvalid {
		t.Fatalf("hidden characters in the reason: %v, want invalid", err)
	}

	got, err := f.svc.OpsSuspendCustomer(f.ctx, sup, c.ID, "unpaid invoices")
	if err != nil || !got.Suspended() || got.SuspendedReason != "unpaid invoices" {
		t.Fatalf("support suspends: %+v %v", got, err)
	}
	if _, err := f.svc.OpsSuspendCustomer(f.ctx, sup, c.ID, "again"); sipdesk.ErrorCode(err) != sipdesk.EConflict {
		t.Fatalf("suspending twice: %v, want conflict", err)
	}
	if _, err := f.svc.SessionCustomer(f.ctx, session); sipdesk.ErrorCode(err) != sipdesk.EUnauthorized {
		t.Fatalf("the portal session of a suspended customer: %v, want ended", err)
	}
	_, err = f.svc.Login(f.ctx, "c@example.com", "Portal-Pass-123")
	if sipdesk.ErrorCode(err) != sipdesk.ECustomerSuspended || !strings.Contains(err.Error(), "This account is suspended. Contact support.") {
		t.Fatalf("login of a suspended customer: %v", err)
	}
	if _, err := f.svc.Login(f.ctx, "c@example.com", "Wrong-Pass-123"); sipdesk.ErrorCode(err) != sipdesk.EUnauthorized {
		t.Fatalf("a wrong password must not learn of the suspension: %v", err)
	}
	if _, err := f.svc.AuthenticateToken(f.ctx, token); sipdesk.ErrorCode(err) != sipdesk.ECustomerSuspended || sipdesk.HTTPStatus(sipdesk.ErrorCode(err)) != 403 {
		t.Fatalf("API token of a suspended customer: %v, want 403 customer_suspended", err)
	}

	if _, err := f.svc.OpsUnsuspendCustomer(f.ctx, ro, c.ID); sipdesk.ErrorCode(err) != sipdesk.EForbidden {
		t.Fatalf("readonly unsuspends: %v", err)
	}
	if got, _ := f.svc.Customer(f.ctx, c.ID); !got.Suspended() {
		t.Fatal("a refused unsuspension unsuspended the customer")
	}
	f.now = f.now.Add(time.Minute) // past the login's per-minute pace
	if got, err = f.svc.OpsUnsuspendCustomer(f.ctx, sup, c.ID); err != nil || got.Suspended() || got.SuspendedReason != "" {
		t.Fatalf("unsuspend: %+v %v", got, err)
	}
	if _, err := f.svc.Login(f.ctx, "c@example.com", "Portal-Pass-123"); err != nil {
		t.Fatalf("login after unsuspension: %v", err)
	}
	if id, err := f.svc.AuthenticateToken(f.ctx, token); err != nil || id != c.ID {
		t.Fatalf("API token after unsuspension: %v %v", id, err)
	}

	// The customer reads it in words, the operator with the staff member.
	es, _ := f.svc.Audit(f.ctx, c.ID, 10)
	var words []string
	for _, e := range es {
		words = append(words, e.Detail)
	}
	all := strings.Join(words, "\n")
	for _, w := range []string{"Support suspended the account: unpaid invoices", "Support lifted the suspension of the account"} {
		if !strings.Contains(all, w) {
			t.Errorf("customer's audit log lacks %q:\n%s", w, all)
		}
	}
	v, err := f.svc.OpsCustomer(f.ctx, ro, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range v.Audit {
		if e.Action == sipdesk.AuditCustomerSuspended && strings.Contains(e.Actor, "sup@example.com") && e.Detail == "active → suspended: unpaid invoices" {
			found = true
		}
	}
	if !found {
		t.Errorf("the operator's audit lacks who suspended, and why: %+v", v.Audit)
	}
}

func TestLiftBan(t *testing.T) {
	f := newFixture(t, app.Options{})
	ro, _ := newOperator(t, f, "ro@example.com", sipdesk.RoleReadonly)
	sup, _ := newOperator(t, f, "sup@example.com", sipdesk.RoleSupport)
	if err := f.st.Update(f.ctx, func(tx sipdesk.Tx) error {
		return tx.PutBans([]*sipdesk.Ban{{Source: "203.0.113.9", Reason: "failed authentication", Node: "edge-a", ExpiresAt: f.now.Add(10 * time.Minute)}})
	}); err != nil {
		t.Fatal(err)
	}
	bs, err := f.svc.OpsBans(f.ctx, ro)
	if err != nil || len(bs) != 1 || bs[0].Source != "203.0.113.9" || bs[0].Node != "edge-a" {
		t.Fatalf("readonly lists bans: %v %v", bs, err)
	}
	if err := f.svc.OpsLiftBan(f.ctx, ro, "203.0.113.9"); sipdesk.ErrorCode(err) != sipdesk.EForbidden {
		t.Fatalf("readonly lifts: %v, want forbidden", err)
	}
	if bs, _ := f.svc.OpsBans(f.ctx, ro); len(bs) != 1 {
		t.Fatal("a refused lift lifted the ban")
	}
	if err := f.svc.OpsLiftBan(f.ctx, sup, "not an address"); sipdesk.ErrorCode(err) != sipdesk.EInvalid {
		t.Fatalf("lift of a bad address: %v", err)
	}
	if err := f.svc.OpsLiftBan(f.ctx, sup, "::ffff:203.0.113.9"); err != nil {
		t.Fatalf("support lifts (a v4-mapped address is the v4 one): %v", err)
	}
	if bs, _ := f.svc.OpsBans(f.ctx, ro); len(bs) != 0 {
		t.Fatalf("bans after the lift: %v", bs)
	}
	if err := f.svc.OpsLiftBan(f.ctx, sup, "203.0.113.9"); sipdesk.ErrorCode(err) != sipdesk.ENotFound {
		t.Fatalf("lifting twice: %v, want not_found", err)
	}
	var es []*sipdesk.AuditEntry
	_ = f.st.View(f.ctx, func(tx sipdesk.Tx) (err error) { es, err = tx.Audit(0, 10); return err })
	ok := false
	for _, e := range es {
		ok = ok || e.Action == sipdesk.AuditBanLifted && strings.Contains(e.Actor, "sup@example.com") && strings.Contains(e.Detail, "203.0.113.9 (failed authentication, node edge-a")
	}
	if !ok {
		t.Errorf("no audit entry of the lift: %+v", es)
	}
}
