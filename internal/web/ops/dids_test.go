package ops_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

func (e *env) sipAccount() *sipdesk.SIPAccount {
	e.t.Helper()
	as, err := e.svc.SIPAccounts(e.ctx, e.cust.ID)
	if err != nil || len(as) == 0 {
		e.t.Fatalf("the customer's SIP account: %v", err)
	}
	return as[0]
}

func TestConsoleDIDs(t *testing.T) {
	e := newEnv(t)
	a := e.sipAccount()
	ro, sup, adm := e.signIn(sipdesk.RoleReadonly), e.signIn(sipdesk.RoleSupport), e.signIn(sipdesk.RoleAdmin)
	form := url.Values{"number": {"+1 555 000 7001"}, "sip_account_id": {itoa(a.ID)}}

	for _, c := range []*http.Client{ro, sup} {
		if st, body := e.get(c, "/ops/dids"); st != 200 || strings.Contains(body, ">Assign<") || !strings.Contains(body, "No number matches") {
			t.Fatalf("readonly/support DIDs page: %d", st)
		}
		if st, _ := e.post(c, "/ops/dids", form); st != http.StatusForbidden {
			t.Fatalf("readonly/support assigns: %d", st)
		}
	}
	if st, body := e.post(adm, "/ops/dids", url.Values{"number": {"12ab"}, "sip_account_id": {itoa(a.ID)}}); st != 422 || !strings.Contains(body, "number") {
		t.Fatalf("bad number: %d %s", st, body)
	}
	if st, _ := e.post(adm, "/ops/dids", form); st != http.StatusSeeOther {
		t.Fatalf("admin assigns: %d", st)
	}
	st, body := e.get(adm, "/ops/dids?q=cust@")
	if st != 200 || !strings.Contains(body, `data-did="&#43;15550007001"`) || !strings.Contains(body, ">Unassign<") {
		t.Fatalf("admin's DIDs page after assigning: %d %s", st, body)
	}
	if _, body := e.get(ro, "/ops/dids?q=5550007001"); !strings.Contains(body, `data-did="&#43;15550007001"`) || strings.Contains(body, ">Unassign<") {
		t.Fatal("readonly does not see the number, or sees Unassign")
	}
	if st, _ := e.post(ro, "/ops/dids/unassign", url.Values{"number": {"+15550007001"}}); st != http.StatusForbidden {
		t.Fatalf("readonly unassigns: %d", st)
	}
	if st, _ := e.post(adm, "/ops/dids/unassign", url.Values{"number": {"+15550007001"}}); st != http.StatusSeeOther {
		t.Fatalf("admin unassigns: %d", st)
	}
	if _, body := e.get(adm, "/ops/dids"); strings.Contains(body, `data-did="&#43;15550007001"`) {
		t.Fatal("the number is still listed")
	}
	if _, body := e.get(adm, "/ops/customers/"+itoa(e.cust.ID)); !strings.Contains(body, "number &#43;15550007001, SIP account") || !strings.Contains(body, "admin@ops.example.com") {
		t.Fatal("the customer page's audit log lacks the DID changes")
	}
}

func TestOperatorAPIDIDs(t *testing.T) {
	e := newEnv(t)
	a := e.sipAccount()
	tok := func(role sipdesk.OperatorRole) string {
		op, _ := e.operator(role)
		s, err := e.svc.OpsCreateOperatorToken(e.ctx, app.ShellOperator, op.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ro, sup, adm := tok(sipdesk.RoleReadonly), tok(sipdesk.RoleSupport), tok(sipdesk.RoleAdmin)
	body := `{"number": "+15550007002", "sip_account_id": ` + itoa(a.ID) + `}`
	for _, tk := range []string{ro, sup} {
		if st, m := e.api(tk, "POST", "/dids", body); st != 403 || m["error"].(map[string]any)["code"] != "forbidden" {
			t.Fatalf("readonly/support assigns: %d %v", st, m)
		}
	}
	if st, m := e.api(adm, "POST", "/dids", body); st != 200 || m["number"] != "+15550007002" || m["customer_id"] != float64(e.cust.ID) {
		t.Fatalf("admin assigns: %d %v", st, m)
	}
	if st, m := e.api(adm, "POST", "/dids", `{"number": "nope", "sip_account_id": 1}`); st != 422 || m["error"].(map[string]any)["field"] != "number" {
		t.Fatalf("bad number: %d %v", st, m)
	}
	if st, m := e.api(adm, "POST", "/dids", `{"number": "+15550007003", "sip_account_id": 987654}`); st != 422 || m["error"].(map[string]any)["field"] != "sip_account_id" {
		t.Fatalf("unknown account: %d %v", st, m)
	}
	st, m := e.api(ro, "GET", "/dids?q=cust@example", "")
	if st != 200 || len(m["items"].([]any)) != 1 {
		t.Fatalf("search: %d %v", st, m)
	}
	if it := m["items"].([]any)[0].(map[string]any); it["number"] != "+15550007002" || it["sip_account_id"] != float64(a.ID) || it["customer_email"] != "cust@example.com" {
		t.Fatalf("item: %v", it)
	}
	if st, _ := e.api(ro, "DELETE", "/dids/+15550007002", ""); st != 403 {
		t.Fatalf("readonly unassigns: %d", st)
	}
	if st, _ := e.api(adm, "DELETE", "/dids/+15550007002", ""); st != 204 {
		t.Fatalf("admin unassigns: %d", st)
	}
	if st, m := e.api(adm, "DELETE", "/dids/+15550007002", ""); st != 404 {
		t.Fatalf("unassign twice: %d %v", st, m)
	}
	if st, m := e.api(ro, "GET", "/dids", ""); st != 200 || len(m["items"].([]any)) != 0 {
		t.Fatalf("after unassign: %d %v", st, m)
	}
}

func TestDashboardCharts(t *testing.T) {
	e := newEnv(t)
	err := e.st.Update(e.ctx, func(tx sipdesk.Tx) error {
		for i, r := range []struct {
			ago          time.Duration
			disp, reason string
		}{{0, sipdesk.DispAnswered, "bye"}, {time.Minute, sipdesk.DispRefused, "channel_limit"}, {2 * time.Minute, sipdesk.DispRefused, "channel_limit"},
			{3 * time.Minute, sipdesk.DispRefused, "<b>odd</b>"}, {3 * time.Hour, sipdesk.DispRefused, "too_old"}} {
			if err := tx.InsertCallRecord(&sipdesk.CallRecord{CallID: "c" + itoa(int64(i)), CustomerID: e.cust.ID,
				StartedAt: e.now.Add(-r.ago), Disposition: r.disp, Reason: r.reason}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st, body := e.get(e.signIn(sipdesk.RoleReadonly), "/ops/")
	if st != 200 {
		t.Fatalf("dashboard: %d", st)
	}
	for _, want := range []string{
		`<svg class="chart"`, `role="img" aria-labelledby="calls-title calls-desc"`, `aria-labelledby="refusals-title refusals-desc"`,
		`<span data-stat="calls-hour">4</span>`, `<span data-stat="refused-hour">3</span>`,
		`<tr data-refusal="channel_limit"><td data-label="Reason">channel_limit</td><td data-label="Refusals">2</td></tr>`,
		`&lt;b&gt;odd&lt;/b&gt;`, "4 calls in the last hour, 3 refused",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("dashboard lacks %s", want)
		}
	}
	for _, bad := range []string{"<script", "<b>odd", "too_old", " style="} {
		if strings.Contains(body, bad) {
			t.Errorf("dashboard has %s", bad)
		}
	}
}
