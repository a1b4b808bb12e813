package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

func TestOpsDIDsRolesSearchAndAudit(t *testing.T) {
	f := newFixture(t, app.Options{})
	alice, a1, err := f.svc.CreateVerifiedCustomer(f.ctx, "alice@example.com", "Portal-Pass-123", "+15551230001")
	if err != nil {
		t.Fatal(err)
	}
	bob, b1, err := f.svc.CreateVerifiedCustomer(f.ctx, "bob@example.com", "Portal-Pass-123", "+15551230002")
	if err != nil {
		t.Fatal(err)
	}
	ro, _ := newOperator(t, f, "ro@example.com", sipdesk.RoleReadonly)
	sup, _ := newOperator(t, f, "sup@example.com", sipdesk.RoleSupport)
	adm, _ := newOperator(t, f, "adm@example.com", sipdesk.RoleAdmin)

	for _, op := range []*sipdesk.Operator{ro, sup} {
		if _, err := f.svc.OpsAssignDID(f.ctx, op, "+15559990001", a1.Account.ID); sipdesk.ErrorCode(err) != sipdesk.EForbidden {
			t.Fatalf("%s assigns a DID: %v", op.Role, err)
		}
	}
	if _, err := f.svc.OpsAssignDID(f.ctx, adm, "not a number", a1.Account.ID); sipdesk.ErrorField(err) != "number" {
		t.Fatalf("bad number: %v", err)
	}
	if _, err := f.svc.OpsAssignDID(f.ctx, adm, "+15559990001", 999999); sipdesk.ErrorField(err) != "sip_account_id" {
		t.Fatalf("missing account: %v", err)
	}
	d, err := f.svc.OpsAssignDID(f.ctx, adm, "+1 555 999 0001", a1.Account.ID)
	if err != nil || d.Number != "+15559990001" || d.CustomerID != alice.ID {
		t.Fatalf("assign: %+v %v", d, err)
	}
	if _, err := f.svc.OpsAssignDID(f.ctx, adm, "+15559990002", b1.Account.ID); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]int{"": 2, "9990001": 1, "+15559990002": 1, "bob@": 1, "example.com": 2, "nobody": 0} {
		ds, err := f.svc.OpsDIDs(f.ctx, ro, q)
		if err != nil || len(ds) != want {
			t.Fatalf("search %q: %d DIDs, want %d (%v)", q, len(ds), want, err)
		}
	}
	if ds, _ := f.svc.OpsDIDs(f.ctx, sup, a1.Account.Username); len(ds) != 1 || ds[0].CustomerEmail != "alice@example.com" {
		t.Fatalf("search by SIP username: %+v", ds)
	}

	// Moving alice's number to bob: both audit logs say so.
	if _, err := f.svc.OpsAssignDID(f.ctx, adm, "+15559990001", b1.Account.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.OpsUnassignDID(f.ctx, ro, "+15559990002"); sipdesk.ErrorCode(err) != sipdesk.EForbidden {
		t.Fatalf("readonly unassigns: %v", err)
	}
	if _, err := f.svc.OpsUnassignDID(f.ctx, adm, "+15559990002"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.OpsUnassignDID(f.ctx, adm, "+15559990002"); sipdesk.ErrorCode(err) != sipdesk.ENotFound {
		t.Fatalf("unassign twice: %v", err)
	}
	words := func(id int64) string {
		es, err := f.svc.Audit(f.ctx, id, 20)
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, e := range es {
			if strings.Contains(e.Actor, "@") {
				t.Errorf("the customer sees the operator: %+v", e)
			}
			s = append(s, e.Detail)
		}
		return strings.Join(s, "\n")
	}
	aw, bw := words(alice.ID), words(bob.ID)
	for _, want := range []string{"Support assigned the number +15559990001 to SIP account", "Support removed the number +15559990001 from SIP account"} {
		if !strings.Contains(aw, want) {
			t.Errorf("alice's audit lacks %q:\n%s", want, aw)
		}
	}
	for _, want := range []string{"Support assigned the number +15559990001 to SIP account", "Support removed the number +15559990002 from SIP account"} {
		if !strings.Contains(bw, want) {
			t.Errorf("bob's audit lacks %q:\n%s", want, bw)
		}
	}
	if strings.Contains(bw, "alice") {
		t.Errorf("bob's audit names alice's account:\n%s", bw)
	}
	v, _ := f.svc.OpsCustomer(f.ctx, ro, bob.ID) // operators see who and before → after
	var saw bool
	for _, e := range v.Audit {
		saw = saw || e.Action == sipdesk.AuditDIDAssigned && strings.Contains(e.Actor, "adm@example.com") &&
			strings.Contains(e.Detail, "number +15559990001, another customer → SIP account")
	}
	if !saw {
		t.Fatalf("operator audit: %+v", v.Audit)
	}
	if ds, _ := f.svc.OpsDIDs(f.ctx, ro, ""); len(ds) != 1 || ds[0].CustomerID != bob.ID {
		t.Fatalf("after move and unassign: %+v", ds)
	}
}

func TestOpsCallCharts(t *testing.T) {
	f := newFixture(t, app.Options{})
	c, a, err := f.svc.CreateVerifiedCustomer(f.ctx, "c@example.com", "Portal-Pass-123", "+15551230001")
	if err != nil {
		t.Fatal(err)
	}
	ro, _ := newOperator(t, f, "ro@example.com", sipdesk.RoleReadonly)
	f.now = time.Date(2026, 12, 6, 10, 30, 20, 0, time.UTC)
	rec := func(ago time.Duration, disp, reason string) *sipdesk.CallRecord {
		return &sipdesk.CallRecord{CallID: ago.String() + disp, CustomerID: c.ID, SIPAccountID: a.Account.ID,
			StartedAt: f.now.Add(-ago), Disposition: disp, Reason: reason}
	}
	err = f.st.Update(f.ctx, func(tx sipdesk.Tx) error {
		for _, r := range []*sipdesk.CallRecord{
			rec(0, sipdesk.DispAnswered, "bye"),
			rec(time.Second, sipdesk.DispRefused, "channel_limit"),
			rec(10*time.Minute, sipdesk.DispRefused, "channel_limit"),
			rec(10*time.Minute+time.Second, sipdesk.DispRefused, "destination_blocked"),
			rec(2*time.Hour, sipdesk.DispRefused, "balance"), // outside the hour
		} {
			if err := tx.InsertCallRecord(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := f.svc.OpsCallCharts(f.ctx, ro)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.PerMinute) != 60 || ch.Calls != 4 || ch.Refused != 3 {
		t.Fatalf("charts: %d minutes, %d calls, %d refused", len(ch.PerMinute), ch.Calls, ch.Refused)
	}
	last := ch.PerMinute[59]
	if !last.Minute.Equal(time.Date(2026, 12, 6, 10, 30, 0, 0, time.UTC)) || last.Calls != 2 || last.Refused != 1 {
		t.Fatalf("current minute: %+v", last)
	}
	if m := ch.PerMinute[49]; m.Calls != 2 || m.Refused != 2 {
		t.Fatalf("ten minutes ago: %+v", m)
	}
	if len(ch.Refusals) != 2 || ch.Refusals[0] != (app.ReasonCount{Reason: "channel_limit", N: 2}) {
		t.Fatalf("refusals: %+v", ch.Refusals)
	}
	if _, err := f.svc.OpsCallCharts(f.ctx, nil); sipdesk.ErrorCode(err) != sipdesk.EForbidden {
		t.Fatalf("no operator: %v", err)
	}
}
