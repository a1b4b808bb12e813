package ui

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/sipdesk/sipdesk/internal/app"
)

// A suspended customer is signed out and sees why at the login; after the
// suspension is lifted the login works again.
func TestSuspendedCustomerCannotLogIn(t *testing.T) {
	e := newEnv(t)
	cu := e.customer("susp@example.com", "+15551230042")
	cu.b.get("/sip-accounts").must(t, 200, "SIP Accounts")
	sup, err := e.svc.OpsCreateOperator(context.Background(), app.ShellOperator, "sup@ops.example.com", "Operator-Pass-123", "support")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.OpsSuspendCustomer(context.Background(), sup.Operator, cu.id, "unpaid invoices"); err != nil {
		t.Fatal(err)
	}
	p := cu.b.get("/sip-accounts")
	if p.status != 303 || !strings.HasPrefix(p.location, "/login") {
		t.Fatalf("the portal session of a suspended customer: %d %q, want a redirect to the login", p.status, p.location)
	}
	b := e.browser()
	b.post("/login", url.Values{"email": {cu.email}, "password": {portalPassword}}).
		must(t, 403, "This account is suspended. Contact support.").mustNot(t, "SIP Accounts")
	b.post("/login", url.Values{"email": {cu.email}, "password": {"Wrong-Password-1"}}).
		must(t, 401, "Wrong email or password.").mustNot(t, "suspended")

	if _, err := e.svc.OpsUnsuspendCustomer(context.Background(), sup.Operator, cu.id); err != nil {
		t.Fatal(err)
	}
	b.post("/login", url.Values{"email": {cu.email}, "password": {portalPassword}}).must(t, 200, "SIP Accounts")
	b.get("/audit").must(t, 200, "Support suspended the account: unpaid invoices")
}
