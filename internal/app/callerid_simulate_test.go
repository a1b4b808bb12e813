package app_test

import (
	"testing"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

// TestSimulateCallerIDHeaders: the simulator answers the carrier leg's final
// header values, the anonymous and no-decision fallbacks included.
func TestSimulateCallerIDHeaders(t *testing.T) {
	f := newFixture(t, app.Options{})
	c, first, err := f.svc.CreateVerifiedCustomer(f.ctx, "h@example.com", "Portal-Pass-123", "+15551230016")
	if err != nil {
		t.Fatal(err)
	}
	id := first.Account.ID
	sim := func(call app.CallerIDCall) sipdesk.CallerIDHeaders {
		t.Helper()
		h, err := f.svc.SimulateCallerIDHeaders(f.ctx, c.ID, id, call)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}

	// Trial: the verified phone in From and P-Asserted-Identity.
	if h := sim(app.CallerIDCall{To: "+442030001111", FromUser: "100"}); h != (sipdesk.CallerIDHeaders{FromUser: "+15551230016", PAI: "+15551230016", Reason: sipdesk.ReasonTrial}) {
		t.Fatalf("trial: %+v", h)
	}
	if _, err := f.svc.TopUp(f.ctx, c.ID, 5000); err != nil {
		t.Fatal(err)
	}
	blocked := &sipdesk.CallerIDRule{Name: "UK", ApplyFor: sipdesk.ScopePrefix, Prefix: "44", Type: sipdesk.RuleBlocked}
	byCaller := &sipdesk.CallerIDRule{Name: "NYC", ApplyFor: sipdesk.ScopePrefix, Prefix: "1212", Type: sipdesk.RuleSetByCaller}
	for _, r := range []*sipdesk.CallerIDRule{blocked, byCaller} {
		if err := f.svc.SaveRule(f.ctx, c.ID, r, app.ActorOperator); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.svc.SetCallerID(f.ctx, c.ID, id, sipdesk.CallerIDSetting{DisplayName: "Desk", RuleIDs: []int64{blocked.ID, byCaller.ID}}, app.ActorOperator); err != nil {
		t.Fatal(err)
	}
	// Blocked without a default number: P-Asserted-Identity is the verified phone.
	want := sipdesk.CallerIDHeaders{FromUser: sipdesk.AnonymousUser, FromDisplay: sipdesk.AnonymousDisplay, Anonymous: true,
		PAI: "+15551230016", Privacy: "id", RuleID: blocked.ID, Reason: sipdesk.ReasonRulePrefix}
	if h := sim(app.CallerIDCall{To: "0044 20 3000 1111"}); h != want {
		t.Fatalf("blocked:\n got %+v\nwant %+v", h, want)
	}
	// set_by_caller keeps the device's number and display name.
	want = sipdesk.CallerIDHeaders{FromUser: "+15550001234", FromDisplay: "Front", PAI: "+15550001234", RuleID: byCaller.ID, Reason: sipdesk.ReasonRulePrefix}
	if h := sim(app.CallerIDCall{To: "+12125550100", FromUser: "+15550001234", FromDisplay: "Front"}); h != want {
		t.Fatalf("set_by_caller:\n got %+v\nwant %+v", h, want)
	}
	// No default number and no verified phone: no decision, the device's From passes.
	if err := f.st.Update(f.ctx, func(tx sipdesk.Tx) error {
		cc, err := tx.Customer(c.ID, true)
		if err != nil {
			return err
		}
		cc.VerifiedPhone = ""
		return tx.UpdateCustomer(cc)
	}); err != nil {
		t.Fatal(err)
	}
	want = sipdesk.CallerIDHeaders{FromUser: "100", FromDisplay: "Reception", Reason: sipdesk.ReasonNoDecision}
	if h := sim(app.CallerIDCall{To: "+34912345678", FromUser: "100", FromDisplay: "Reception"}); h != want {
		t.Fatalf("no decision:\n got %+v\nwant %+v", h, want)
	}
	ch, err := f.svc.SimulateCallerID(f.ctx, c.ID, id, "+34912345678", "100")
	if err != nil || ch.Number != "100" || ch.Reason != sipdesk.ReasonNoDecision {
		t.Fatalf("no decision as a choice: %+v %v", ch, err)
	}
	if _, err := f.svc.SimulateCallerIDHeaders(f.ctx, c.ID, id, app.CallerIDCall{To: "abc"}); sipdesk.ErrorCode(err) != sipdesk.EInvalidNumber || sipdesk.ErrorField(err) != "to" {
		t.Fatalf("bad number: %v", err)
	}
}
