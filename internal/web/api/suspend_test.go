package api

import (
	"context"
	"testing"

	"github.com/sipdesk/sipdesk/internal/app"
)

// A suspended customer's API tokens answer 403 customer_suspended, without
// a Bearer challenge (the token is right); they work again once lifted.
func TestSuspendedCustomerToken(t *testing.T) {
	e := newEnv(t)
	c := e.customer("susp@example.com", "+15551230043")
	e.do("GET", "/api/v1/sip-accounts", c.token, nil).must(t, 200)
	sup, err := e.svc.OpsCreateOperator(context.Background(), app.ShellOperator, "sup@ops.example.com", "Operator-Pass-123", "support")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.OpsSuspendCustomer(context.Background(), sup.Operator, c.id, "unpaid invoices"); err != nil {
		t.Fatal(err)
	}
	r := e.do("GET", "/api/v1/sip-accounts", c.token, nil).must(t, 403)
	if r.errCode() != "customer_suspended" || r.str("error", "message") != "This account is suspended. Contact support." || r.header.Get("WWW-Authenticate") != "" {
		t.Fatalf("suspended token: %s %v", r.raw, r.header)
	}
	e.do("POST", "/api/v1/sip-accounts", c.token, map[string]any{"name": "x", "auth_type": "password"}).must(t, 403)
	if _, err := e.svc.OpsUnsuspendCustomer(context.Background(), sup.Operator, c.id); err != nil {
		t.Fatal(err)
	}
	e.do("GET", "/api/v1/sip-accounts", c.token, nil).must(t, 200)
}
