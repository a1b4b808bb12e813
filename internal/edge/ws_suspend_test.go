package edge

import (
	"context"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

// TestWSJWTSuspended: a browser softphone (JWT over WebSocket) of a
// customer an operator suspends loses its registration, then REGISTER and
// INVITE get 403 Account suspended; unsuspended, it registers again.
func TestWSJWTSuspended(t *testing.T) {
	e := newWSEnv(t)
	a := e.jwtAccount("websusp1")
	waitApplied(t, e.s, e.st)
	sup, err := e.svc.OpsCreateOperator(context.Background(), app.ShellOperator, "sup@ops.example.com", "Operator-Pass-123", sipdesk.RoleSupport)
	if err != nil {
		t.Fatal(err)
	}
	tok := func() string { return bearer(mint(t, jwtSecret, "websusp1", 10*time.Minute, time.Now())) }
	if r := newWSPhone(t, e.s, "websusp1").register(tok()); r.Code != 200 {
		t.Fatalf("REGISTER before: %d %s", r.Code, r.Reason)
	}
	if _, err := e.svc.OpsSuspendCustomer(context.Background(), sup.Operator, e.cust, "fraud check"); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, e.s, e.st)
	if n := len(e.s.regs.Lookup(a.ID, time.Now())); n != 0 {
		t.Fatalf("%d WebSocket bindings after the suspension, want 0", n)
	}
	if r := newWSPhone(t, e.s, "websusp1").register(tok()); r.Code != 403 || r.Reason != "Account suspended" {
		t.Fatalf("REGISTER while suspended: %d %s, want 403 Account suspended", r.Code, r.Reason)
	}
	p := newWSPhone(t, e.s, "websusp1")
	p.invite("+15551230001", tok(), testSDP)
	if r := p.response(3 * time.Second); r.Code != 403 || r.Reason != "Account suspended" {
		t.Fatalf("INVITE while suspended: %d %s, want 403 Account suspended", r.Code, r.Reason)
	}
	if _, err := e.svc.OpsUnsuspendCustomer(context.Background(), sup.Operator, e.cust); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, e.s, e.st)
	if r := newWSPhone(t, e.s, "websusp1").register(tok()); r.Code != 200 {
		t.Fatalf("REGISTER after the suspension was lifted: %d %s", r.Code, r.Reason)
	}
}
