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

func (e *env) tokenOf(role sipdesk.OperatorRole) string {
	e.t.Helper()
	n, err := e.svc.OpsCreateOperator(e.ctx, app.ShellOperator, "api-"+string(role)+"@ops.example.com", "Operator-Pass-123", role)
	if err != nil {
		e.t.Fatal(err)
	}
	tok, err := e.svc.OpsCreateOperatorToken(e.ctx, app.ShellOperator, n.Operator.ID, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *env) ban(source string) {
	e.t.Helper()
	if err := e.st.Update(e.ctx, func(tx sipdesk.Tx) error {
		return tx.PutBans([]*sipdesk.Ban{{Source: source, Reason: "failed authentication", Node: "edge-a", ExpiresAt: time.Now().Add(10 * time.Minute)}})
	}); err != nil {
		e.t.Fatal(err)
	}
}

func TestConsoleSuspendAndBans(t *testing.T) {
	e := newEnv(t)
	ro, sup := e.signIn(sipdesk.RoleReadonly), e.signIn(sipdesk.RoleSupport)
	id := itoa(e.cust.ID)

	st, body := e.get(ro, "/ops/customers/"+id)
	if st != 200 || strings.Contains(body, `action="/ops/customers/`+id+`/suspend"`) || !strings.Contains(body, `data-field="state">active`) {
		t.Fatalf("readonly's customer page: %d, suspend form shown or state missing", st)
	}
	if st, _ := e.post(ro, "/ops/customers/"+id+"/suspend", url.Values{"reason": {"fraud"}}); st != http.StatusForbidden {
		t.Fatalf("readonly suspends: %d, want 403", st)
	}
	if c, _ := e.svc.Customer(e.ctx, e.cust.ID); c.Suspended() {
		t.Fatal("readonly's refused suspension changed the customer")
	}
	_, body = e.get(sup, "/ops/customers/"+id)
	if !strings.Contains(body, `action="/ops/customers/`+id+`/suspend"`) || !strings.Contains(body, `<label for="reason">`) {
		t.Fatal("support's customer page lacks the Suspend form with a labelled reason")
	}
	if st, body := e.post(sup, "/ops/customers/"+id+"/suspend", url.Values{"reason": {""}}); st != 422 || !strings.Contains(body, "reason") {
		t.Fatalf("suspend without a reason: %d", st)
	}
	if st, _ := e.post(sup, "/ops/customers/"+id+"/suspend", url.Values{"reason": {"<b>unpaid</b> invoices"}}); st != http.StatusSeeOther {
		t.Fatalf("support suspends: %d", st)
	}
	_, body = e.get(sup, "/ops/customers/"+id)
	if !strings.Contains(body, "Account suspended") || !strings.Contains(body, "&lt;b&gt;unpaid&lt;/b&gt; invoices") ||
		!strings.Contains(body, `action="/ops/customers/`+id+`/unsuspend"`) || strings.Contains(body, "<b>unpaid") {
		t.Fatalf("the customer page after the suspension lacks the flash, the escaped reason or the Unsuspend button:\n%s", body)
	}
	if _, body := e.get(ro, "/ops/customers?q=cust@"); !strings.Contains(body, "data-suspended") {
		t.Fatal("the search results do not show the suspension")
	}
	if st, _ := e.post(ro, "/ops/customers/"+id+"/unsuspend", nil); st != http.StatusForbidden {
		t.Fatalf("readonly unsuspends: %d", st)
	}
	if st, _ := e.post(sup, "/ops/customers/"+id+"/unsuspend", nil); st != http.StatusSeeOther {
		t.Fatalf("support unsuspends: %d", st)
	}
	if c, _ := e.svc.Customer(e.ctx, e.cust.ID); c.Suspended() {
		t.Fatal("still suspended after Unsuspend")
	}

	// Bans: everyone sees them, support lifts.
	e.ban("203.0.113.9")
	_, body = e.get(ro, "/ops/bans")
	if !strings.Contains(body, `data-ban="203.0.113.9"`) || !strings.Contains(body, "edge-a") || strings.Contains(body, "/ops/bans/lift") {
		t.Fatal("readonly's Bans page: the ban is missing or the Lift button shown")
	}
	if st, _ := e.post(ro, "/ops/bans/lift", url.Values{"source": {"203.0.113.9"}}); st != http.StatusForbidden {
		t.Fatalf("readonly lifts: %d", st)
	}
	_, body = e.get(sup, "/ops/bans")
	if !strings.Contains(body, `action="/ops/bans/lift"`) || !strings.Contains(body, `aria-label="Lift the ban of 203.0.113.9"`) {
		t.Fatal("support's Bans page lacks the Lift button")
	}
	if st, _ := e.post(sup, "/ops/bans/lift", url.Values{"source": {"203.0.113.9"}}); st != http.StatusSeeOther {
		t.Fatalf("support lifts: %d", st)
	}
	if _, body = e.get(sup, "/ops/bans"); strings.Contains(body, `data-ban="203.0.113.9"`) || !strings.Contains(body, "Ban of 203.0.113.9 lifted") {
		t.Fatal("the ban is still listed after the lift, or no flash")
	}
	if st, _ := e.post(sup, "/ops/bans/lift", url.Values{"source": {"not-an-ip"}}); st != 422 {
		t.Fatalf("lift of a bad source: %d", st)
	}
}

func TestOperatorAPISuspendAndBans(t *testing.T) {
	e := newEnv(t)
	ro, sup := e.tokenOf(sipdesk.RoleReadonly), e.tokenOf(sipdesk.RoleSupport)
	id := itoa(e.cust.ID)
	code := func(m map[string]any) any {
		if er, ok := m["error"].(map[string]any); ok {
			return er["code"]
		}
		return nil
	}

	if st, m := e.api(ro, "POST", "/customers/"+id+"/suspend", `{"reason": "fraud"}`); st != 403 || code(m) != "forbidden" {
		t.Fatalf("readonly suspends: %d %v", st, m)
	}
	if st, m := e.api(sup, "POST", "/customers/"+id+"/suspend", `{}`); st != 422 || m["error"].(map[string]any)["field"] != "reason" {
		t.Fatalf("suspend without a reason: %d %v", st, m)
	}
	if st, m := e.api(sup, "POST", "/customers/"+id+"/suspend", `{"reason": "unpaid invoices"}`); st != 200 || m["suspended"] != true ||
		m["suspended_reason"] != "unpaid invoices" || m["suspended_at"] == nil {
		t.Fatalf("support suspends: %d %v", st, m)
	}
	if st, m := e.api(sup, "POST", "/customers/"+id+"/suspend", `{"reason": "again"}`); st != 409 || code(m) != "conflict" {
		t.Fatalf("suspend twice: %d %v", st, m)
	}
	if st, m := e.api(ro, "GET", "/customers?q=cust@", ""); st != 200 || m["items"].([]any)[0].(map[string]any)["suspended"] != true {
		t.Fatalf("search shows the suspension: %d %v", st, m)
	}
	if st, m := e.api(ro, "POST", "/customers/"+id+"/unsuspend", ""); st != 403 || code(m) != "forbidden" {
		t.Fatalf("readonly unsuspends: %d %v", st, m)
	}
	if st, m := e.api(sup, "POST", "/customers/"+id+"/unsuspend", ""); st != 200 || m["suspended"] != false || m["suspended_at"] != nil {
		t.Fatalf("support unsuspends: %d %v", st, m)
	}

	e.ban("2001:db8::7")
	st, m := e.api(ro, "GET", "/bans", "")
	items, _ := m["items"].([]any)
	if st != 200 || len(items) != 1 || m["next"] != nil {
		t.Fatalf("GET /bans: %d %v", st, m)
	}
	if b := items[0].(map[string]any); b["source"] != "2001:db8::7" || b["node"] != "edge-a" || b["reason"] != "failed authentication" || b["expires_at"] == nil {
		t.Fatalf("ban: %v", b)
	}
	if st, m := e.api(ro, "DELETE", "/bans/2001:db8::7", ""); st != 403 || code(m) != "forbidden" {
		t.Fatalf("readonly lifts: %d %v", st, m)
	}
	if st, _ := e.api(sup, "DELETE", "/bans/2001:db8::7", ""); st != 204 {
		t.Fatalf("support lifts: %d", st)
	}
	if st, m := e.api(sup, "DELETE", "/bans/2001:db8::7", ""); st != 404 || code(m) != "not_found" {
		t.Fatalf("lift again: %d %v", st, m)
	}
	if st, m := e.api(sup, "DELETE", "/bans/nope", ""); st != 422 || code(m) != "invalid" {
		t.Fatalf("lift of a bad source: %d %v", st, m)
	}
	if _, m := e.api(ro, "GET", "/bans", ""); len(m["items"].([]any)) != 0 {
		t.Fatalf("bans after the lift: %v", m)
	}
}
