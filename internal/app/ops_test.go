package app_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

// newOperator creates an operator from the shell, as `sipdesk admin
// operator create` does, and returns it with its TOTP secret.
func newOperator(t *testing.T, f *fixture, email string, role sipdesk.OperatorRole) (*sipdesk.Operator, string) {
	t.Helper()
	n, err := f.svc.OpsCreateOperator(f.ctx, app.ShellOperator, email, "Operator-Pass-123", role)
	if err != nil {
		t.Fatal(err)
	}
	return n.Operator, n.TOTPSecret
}

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := app.TOTPCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOperatorLoginNeedsPasswordAndFreshTOTP(t *testing.T) {
	f := newFixture(t, app.Options{})
	op, secret := newOperator(t, f, "Support@Example.com", sipdesk.RoleSupport)
	ctx := app.WithSource(f.ctx, netip.MustParseAddr("192.0.2.7"))

	if _, _, err := f.svc.OperatorLogin(ctx, "support@example.com", "Operator-Pass-123", ""); sipdesk.ErrorCode(err) != sipdesk.EUnauthorized {
		t.Fatalf("no code: %v", err)
	}
	if _, _, err := f.svc.OperatorLogin(ctx, "support@example.com", "Wrong-Pass-1234", code(t, secret, f.now)); sipdesk.ErrorCode(err) != sipdesk.EUnauthorized {
		t.Fatalf("wrong password with a good code: %v", err)
	}
	if _, _, err := f.svc.OperatorLogin(ctx, "support@example.com", "Operator-Pass-123", code(t, secret, f.now.Add(-10*time.Minute))); sipdesk.ErrorCode(err) != sipdesk.EUnauthorized {
		t.Fatalf("stale code: %v", err)
	}
	c := code(t, secret, f.now)
	got, tok, err := f.svc.OperatorLogin(ctx, "support@example.com", "Operator-Pass-123", c)
	if err != nil || got.ID != op.ID || tok == "" {
		t.Fatalf("login: %v %v", got, err)
	}
	if _, _, err := f.svc.OperatorLogin(ctx, "support@example.com", "Operator-Pass-123", c); sipdesk.ErrorCode(err) != sipdesk.EUnauthorized {
		t.Fatalf("a replayed code must fail: %v", err)
	}
	s, err := f.svc.OperatorSession(f.ctx, tok)
	if err != nil || s.ID != op.ID || s.Role != sipdesk.RoleSupport {
		t.Fatalf("session: %v %v", s, err)
	}
	f.now = f.now.Add(app.OperatorSessionTTL)
	if _, err := f.svc.OperatorSession(f.ctx, tok); sipdesk.ErrorCode(err) != sipdesk.EUnauthorized {
		t.Fatalf("expired session: %v", err)
	}
}

func TestOperatorLoginIsRateLimited(t *testing.T) {
	f := newFixture(t, app.Options{})
	_, secret := newOperator(t, f, "admin@example.com", sipdesk.RoleAdmin)
	ctx := app.WithSource(f.ctx, netip.MustParseAddr("192.0.2.8"))
	for i := 0; i < app.LoginMaxAccount; i++ {
		if _, _, err := f.svc.OperatorLogin(ctx, "admin@example.com", "Operator-Pass-123", "000000"); sipdesk.ErrorCode(err) != sipdesk.EUnauthorized {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	// Locked: even the right password and code are refused now.
	if _, _, err := f.svc.OperatorLogin(ctx, "admin@example.com", "Operator-Pass-123", code(t, secret, f.now)); sipdesk.ErrorCode(err) != sipdesk.ERateLimited {
		t.Fatalf("after %d failures: %v", app.LoginMaxAccount, err)
	}
}

func TestOperatorRolesAreEnforcedInTheService(t *testing.T) {
	f := newFixture(t, app.Options{})
	c, _, err := f.svc.CreateVerifiedCustomer(f.ctx, "c@example.com", "Portal-Pass-123", "+15551230001")
	if err != nil {
		t.Fatal(err)
	}
	ro, _ := newOperator(t, f, "ro@example.com", sipdesk.RoleReadonly)
	sup, _ := newOperator(t, f, "sup@example.com", sipdesk.RoleSupport)
	adm, _ := newOperator(t, f, "adm@example.com", sipdesk.RoleAdmin)
	if c, err = f.svc.TopUp(f.ctx, c.ID, 1000); err != nil { // from the shell: paid, 10 channels
		t.Fatal(err)
	}
	tk, err := f.svc.OpenTicket(f.ctx, c.ID, sipdesk.TicketChannelLimit, 25, "more lines")
	if err != nil {
		t.Fatal(err)
	}

	forbidden := func(what string, err error) {
		t.Helper()
		if sipdesk.ErrorCode(err) != sipdesk.EForbidden || sipdesk.HTTPStatus(sipdesk.ErrorCode(err)) != 403 {
			t.Fatalf("%s: want forbidden (403), got %v", what, err)
		}
	}
	_, err = f.svc.OpsTopUp(f.ctx, ro, c.ID, 5000)
	forbidden("readonly top-up", err)
	_, err = f.svc.OpsTopUp(f.ctx, sup, c.ID, 5000)
	forbidden("support top-up", err)
	_, err = f.svc.OpsSetChannelLimit(f.ctx, sup, c.ID, 50)
	forbidden("support channel limit", err)
	_, err = f.svc.OpsDecideTicket(f.ctx, ro, tk.ID, true, "")
	forbidden("readonly ticket", err)
	_, err = f.svc.OpsCreateOperator(f.ctx, sup, "x@example.com", "Operator-Pass-123", sipdesk.RoleAdmin)
	forbidden("support creates an operator", err)
	_, err = f.svc.OpsCreateOperatorToken(f.ctx, ro, ro.ID, "")
	forbidden("readonly creates a token", err)

	// Nothing changed.
	got, _ := f.svc.Customer(f.ctx, c.ID)
	if got.ChannelLimit != 10 || got.TopUpTotalCents != 1000 {
		t.Fatalf("refused actions changed the customer: %+v", got)
	}
	if ts, _ := f.svc.Tickets(f.ctx, c.ID, sipdesk.TicketOpen); len(ts) != 1 {
		t.Fatalf("refused decision changed the ticket: %d open", len(ts))
	}

	// Support answers the ticket; admin records a top-up; both audited
	// with the operator and before → after.
	if _, err := f.svc.OpsDecideTicket(f.ctx, sup, tk.ID, true, "Done, enjoy"); err != nil {
		t.Fatal(err)
	}
	if got, err = f.svc.OpsTopUp(f.ctx, adm, c.ID, 5000); err != nil || got.TopUpTotalCents != 6000 || got.ChannelLimit != 25 {
		t.Fatalf("admin top-up: %v %v", got, err)
	}
	if _, err := f.svc.OpsSetChannelLimit(f.ctx, adm, c.ID, 30); err != nil {
		t.Fatal(err)
	}
	// The customer sees the actions in words, without the staff member.
	es, _ := f.svc.Audit(f.ctx, c.ID, 10)
	var words []string
	for _, e := range es {
		if strings.Contains(e.Actor, "@") {
			t.Errorf("the customer sees the operator: %+v", e)
		}
		words = append(words, e.Detail)
	}
	all := strings.Join(words, "\n")
	for _, want := range []string{"Support raised the channel limit from 25 to 30", "Support approved your ticket 1 and raised the channel limit from 10 to 25", "Support recorded a top-up of 50.00", "Support recorded a top-up of 10.00 and raised the channel limit from 1 to 10"} {
		if !strings.Contains(all, want) {
			t.Errorf("customer audit lacks %q:\n%s", want, all)
		}
	}
	v, _ := f.svc.OpsCustomer(f.ctx, ro, c.ID) // operators see who
	es = v.Audit
	var sawTicket, sawTopUp bool
	for _, e := range es {
		switch e.Action {
		case sipdesk.AuditTicketDecided:
			sawTicket = strings.HasPrefix(e.Actor, "operator:") && strings.Contains(e.Actor, "sup@example.com") && strings.Contains(e.Detail, "10 → 25")
		case sipdesk.AuditTopUp:
			sawTopUp = sawTopUp || strings.Contains(e.Actor, "adm@example.com") && strings.Contains(e.Detail, "amount 50.00")
		}
	}
	if !sawTicket || !sawTopUp {
		t.Fatalf("audit: %+v", es)
	}
}

func TestOperatorToken(t *testing.T) {
	f := newFixture(t, app.Options{})
	ro, _ := newOperator(t, f, "ro@example.com", sipdesk.RoleReadonly)
	tok, err := f.svc.OpsCreateOperatorToken(f.ctx, app.ShellOperator, ro.ID, "billing")
	if err != nil || !strings.HasPrefix(tok, "sdo_") {
		t.Fatalf("token %q: %v", tok, err)
	}
	got, err := f.svc.AuthenticateOperatorToken(context.Background(), tok)
	if err != nil || got.ID != ro.ID || got.Role != sipdesk.RoleReadonly {
		t.Fatalf("authenticate: %v %v", got, err)
	}
	for _, bad := range []string{"", "sdk_x", tok + "x", "sdo_" + strings.Repeat("a", 40)} {
		if _, err := f.svc.AuthenticateOperatorToken(f.ctx, bad); sipdesk.ErrorCode(err) != sipdesk.EUnauthorized {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	// Stored hashed: the token itself is nowhere in the table.
	var ops []*sipdesk.Operator
	_ = f.st.View(f.ctx, func(tx sipdesk.Tx) (err error) {
		_, err = tx.OperatorTokenByHash(tok)
		if sipdesk.ErrorCode(err) != sipdesk.ENotFound {
			t.Errorf("token stored in clear: %v", err)
		}
		ops, err = tx.Operators()
		return err
	})
	if len(ops) != 1 || strings.Contains(ops[0].PasswordHash, "Operator-Pass") {
		t.Fatalf("operators: %+v", ops)
	}
}

func TestOperatorSearchAndViews(t *testing.T) {
	f := newFixture(t, app.Options{})
	c, first, err := f.svc.CreateVerifiedCustomer(f.ctx, "Alice@Example.com", "Portal-Pass-123", "+15551230001")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.CreateVerifiedCustomer(f.ctx, "bob@example.com", "Portal-Pass-123", "+15551230002"); err != nil {
		t.Fatal(err)
	}
	ro, _ := newOperator(t, f, "ro@example.com", sipdesk.RoleReadonly)
	for q, want := range map[string]int{"": 2, "alice": 1, "15551230002": 1, first.Account.Username: 1, "nobody": 0, "example.com": 2} {
		cs, err := f.svc.OpsSearchCustomers(f.ctx, ro, q)
		if err != nil || len(cs) != want {
			t.Fatalf("search %q: %d customers, want %d (%v)", q, len(cs), want, err)
		}
	}
	v, err := f.svc.OpsCustomer(f.ctx, ro, c.ID)
	if err != nil || len(v.SIPAccounts) != 1 || v.Customer.Email != "alice@example.com" {
		t.Fatalf("customer view: %+v %v", v, err)
	}
	if _, err := f.svc.OpsCustomer(f.ctx, nil, c.ID); sipdesk.ErrorCode(err) != sipdesk.EForbidden {
		t.Fatalf("no operator: %v", err)
	}
	d, err := f.svc.OpsDashboard(f.ctx, ro)
	if err != nil || d.Customers != 2 {
		t.Fatalf("dashboard: %+v %v", d, err)
	}
}
