package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/sipdesk/sipdesk"
)

const sa = "/api/v1/sip-accounts"

func TestAccountTrialThenPaid(t *testing.T) {
	e := newEnv(t)
	c := e.customer("a@example.com", "+15551230001")

	acc := e.do("GET", "/api/v1/account", c.token, nil).must(t, 200)
	if acc.str("billing_state") != "trial" || acc.get("channel_limit") != 1.0 || acc.get("sip_account_quota") != 10.0 ||
		acc.str("verified_phone") != "+15551230001" || acc.str("email") != "a@example.com" || acc.id() != c.id {
		t.Fatalf("trial account: %s", acc.raw)
	}

	list := e.do("GET", sa, c.token, nil).must(t, 200)
	items := list.items()
	if len(items) != 1 || list.get("next") != nil {
		t.Fatalf("want exactly the first account and next null: %s", list.raw)
	}
	first := items[0]
	if first["auth_type"] != "password" || first["username"] != c.user[:2]+"••••••" || first["name"] != "Main" {
		t.Fatalf("first account: %v", first)
	}
	if _, ok := first["password"]; ok || strings.Contains(list.raw, c.user) || strings.Contains(list.raw, c.pass) {
		t.Fatalf("list leaks credentials: %s", list.raw)
	}
	cid, _ := first["caller_id"].(map[string]any)
	if cid["default_number"] != "+15551230001" {
		t.Fatalf("default Caller ID is not the verified phone: %v", cid)
	}
	for _, k := range []string{"id", "name", "auth_type", "username", "allowed_ips", "tech_prefix", "status", "jwt_enabled", "channel_cap", "caller_id"} {
		if _, ok := first[k]; !ok {
			t.Errorf("SIP account JSON lacks %q", k)
		}
	}
	for _, k := range []string{"default_number", "display_name", "rule_ids"} {
		if _, ok := cid[k]; !ok {
			t.Errorf("caller_id JSON lacks %q", k)
		}
	}

	e.topUp(c)
	acc = e.do("GET", "/api/v1/account", c.token, nil).must(t, 200)
	if acc.str("billing_state") != "paid" || acc.get("channel_limit") != 10.0 {
		t.Fatalf("after topup: %s", acc.raw)
	}
}

func TestSIPAccountLifecycle(t *testing.T) {
	e := newEnv(t)
	c := e.customer("a@example.com", "+15551230001")
	e.topUp(c)

	created := e.do("POST", sa, c.token, map[string]any{"name": "Office PBX", "auth_type": "password"}).must(t, 201)
	id := created.id()
	user, pass := created.str("username"), created.str("password")
	if len(user) < 8 || sipdesk.ValidatePassword(pass) != nil || created.str("status") != "in_process" {
		t.Fatalf("created: %s", created.raw)
	}
	if created.header.Get("Location") != idPath(sa, id, "") {
		t.Errorf("Location %q", created.header.Get("Location"))
	}

	got := e.do("GET", idPath(sa, id, ""), c.token, nil).must(t, 200)
	if got.str("username") != user[:2]+"••••••" || got.get("password") != nil || strings.Contains(got.raw, pass) {
		t.Fatalf("get shows credentials: %s", got.raw)
	}

	// Typed credentials.
	typed := e.do("POST", sa, c.token, map[string]any{"name": "Typed", "username": "myphone01", "password": "Secret-Pass-123"}).must(t, 201)
	if typed.str("username") != "myphone01" || typed.str("password") != "Secret-Pass-123" {
		t.Fatalf("typed: %s", typed.raw)
	}

	rev := e.do("POST", idPath(sa, id, "/reveal-username"), c.token, nil).must(t, 200)
	if rev.str("username") != user {
		t.Fatalf("reveal: %s", rev.raw)
	}

	patched := e.do("PATCH", idPath(sa, id, ""), c.token, map[string]any{"name": "Renamed", "channel_cap": 3}).must(t, 200)
	if patched.str("name") != "Renamed" || patched.get("channel_cap") != 3.0 {
		t.Fatalf("patch: %s", patched.raw)
	}
	patched = e.do("PATCH", idPath(sa, id, ""), c.token, map[string]any{"channel_cap": nil, "allowed_ips": []string{"8.8.8.8", "9.9.9.0/24"}}).must(t, 200)
	if patched.get("channel_cap") != 0.0 || len(patched.get("allowed_ips").([]any)) != 2 || patched.str("name") != "Renamed" {
		t.Fatalf("patch null cap / ACL: %s", patched.raw)
	}

	// JWT needs an active account.
	e.activate()
	if s := e.do("GET", idPath(sa, id, ""), c.token, nil).must(t, 200).str("status"); s != "active" {
		t.Fatalf("status %s after activation", s)
	}
	jwt := e.do("PUT", idPath(sa, id, "/jwt"), c.token, map[string]any{"enabled": true}).must(t, 200)
	if jwt.get("enabled") != true || len(jwt.str("secret")) != 32 {
		t.Fatalf("jwt generated: %s", jwt.raw)
	}
	jwt = e.do("PUT", idPath(sa, id, "/jwt"), c.token, map[string]any{"enabled": true, "secret": strings.Repeat("aB3", 10) + "xy"}).must(t, 200)
	if _, ok := jwt.body["secret"]; ok {
		t.Fatalf("typed secret echoed: %s", jwt.raw)
	}
	if g := e.do("GET", idPath(sa, id, ""), c.token, nil).must(t, 200); g.get("jwt_enabled") != true || strings.Contains(g.raw, "aB3aB3") {
		t.Fatalf("jwt state: %s", g.raw)
	}
	st := e.do("POST", idPath(sa, id, "/softphone-token"), c.token, nil).must(t, 200)
	if parts := strings.Split(st.str("token"), "."); len(parts) != 3 || st.str("expires_at") == "" {
		t.Fatalf("softphone token: %s", st.raw)
	}
	e.do("PUT", idPath(sa, id, "/jwt"), c.token, map[string]any{"enabled": false}).must(t, 200)
	if st := e.do("POST", idPath(sa, id, "/softphone-token"), c.token, nil); st.status != 409 || st.errCode() != "jwt_not_enabled" {
		t.Fatalf("softphone token without JWT: %s", st.raw)
	}

	// Credential reset through the emailed link.
	sent := e.do("POST", idPath(sa, id, "/credential-reset"), c.token, nil).must(t, 202)
	if sent.get("sent") != true {
		t.Fatalf("reset: %s", sent.raw)
	}
	token := e.resetToken("a@example.com")
	done := e.do("POST", "/api/v1/credential-resets/"+token, "", map[string]any{
		"username": "newname99", "password": "Brand-New-Pass-9", "portal_password": portalPassword,
	}).must(t, 200)
	if done.id() != id || done.get("password") != nil {
		t.Fatalf("reset done: %s", done.raw)
	}
	if u := e.do("POST", idPath(sa, id, "/reveal-username"), c.token, nil).must(t, 200).str("username"); u != "newname99" {
		t.Fatalf("username after reset %q", u)
	}
	again := e.do("POST", "/api/v1/credential-resets/"+token, "", map[string]any{
		"password": "Brand-New-Pass-8", "portal_password": portalPassword,
	})
	if again.status != 409 || again.errCode() != "conflict" {
		t.Fatalf("reused link: %s", again.raw)
	}

	// Status.
	off := e.do("PATCH", idPath(sa, id, ""), c.token, map[string]any{"status": "inactive"}).must(t, 200)
	if off.str("status") != "inactive" && off.str("status") != "in_process" {
		t.Fatalf("inactive: %s", off.raw)
	}

	// IP account with a tech prefix: no credentials.
	ip := e.do("POST", sa, c.token, map[string]any{"name": "Dialer", "auth_type": "ip", "allowed_ips": []string{"8.8.4.4"}, "tech_prefix": "1234"}).must(t, 201)
	if ip.get("password") != nil || ip.str("username") != "" || ip.str("tech_prefix") != "1234" || ip.get("allowed_ips").([]any)[0] != "8.8.4.4" {
		t.Fatalf("ip account: %s", ip.raw)
	}
	ip2 := e.do("POST", sa, c.token, map[string]any{"name": "Dialer 2", "auth_type": "ip", "allowed_ips": []string{"8.8.4.4"}, "tech_prefix": "5678"}).must(t, 201)
	sw := e.do("PATCH", idPath(sa, ip2.id(), ""), c.token, map[string]any{"auth_type": "password"}).must(t, 200)
	if sw.str("auth_type") != "password" || sw.str("status") != "in_process" {
		t.Fatalf("switch to password: %s", sw.raw)
	}

	e.do("DELETE", idPath(sa, id, ""), c.token, nil).must(t, 204)
	if r := e.do("GET", idPath(sa, id, ""), c.token, nil); r.status != 404 || r.errCode() != "not_found" {
		t.Fatalf("deleted: %s", r.raw)
	}
}

func TestCallerIDFlow(t *testing.T) {
	e := newEnv(t)
	c := e.customer("a@example.com", "+15551230001")
	e.topUp(c)

	add := e.do("POST", "/api/v1/caller-ids", c.token, map[string]any{"number": "+44 20 3000 1111"}).must(t, 202)
	if add.str("number") != "+442030001111" || add.get("verified") != false {
		t.Fatalf("add: %s", add.raw)
	}
	code := e.verificationCode("+442030001111")
	ver := e.do("POST", idPath("/api/v1/caller-ids", add.id(), "/verify"), c.token, map[string]any{"code": code}).must(t, 200)
	if ver.get("verified") != true {
		t.Fatalf("verify: %s", ver.raw)
	}
	if n := e.do("GET", "/api/v1/caller-ids", c.token, nil).must(t, 200).items(); len(n) != 2 {
		t.Fatalf("numbers: %v", n)
	}

	rule := e.do("POST", "/api/v1/caller-id-rules", c.token, map[string]any{
		"name": "London", "apply_for": "prefix", "prefix": "44203", "type": "specific", "numbers": []string{"+442030001111"}, "display_name": "Sales",
	}).must(t, 201)
	if rule.str("summary") != `For numbers starting with +44203 use +442030001111 "Sales"` || rule.str("apply_for") != "prefix" {
		t.Fatalf("rule: %s", rule.raw)
	}
	blocked := e.do("POST", "/api/v1/caller-id-rules", c.token, map[string]any{"name": "Hide", "apply_for": "country", "country": "de", "type": "blocked"}).must(t, 201)
	if blocked.str("country") != "DE" || len(blocked.get("numbers").([]any)) != 0 {
		t.Fatalf("blocked rule: %s", blocked.raw)
	}
	if rs := e.do("GET", "/api/v1/caller-id-rules", c.token, nil).must(t, 200).items(); len(rs) != 2 {
		t.Fatalf("rules: %v", rs)
	}
	e.do("GET", idPath("/api/v1/caller-id-rules", rule.id(), ""), c.token, nil).must(t, 200)
	pr := e.do("PATCH", idPath("/api/v1/caller-id-rules", rule.id(), ""), c.token, map[string]any{"name": "London office"}).must(t, 200)
	if pr.str("name") != "London office" || pr.str("prefix") != "44203" {
		t.Fatalf("patch rule: %s", pr.raw)
	}
	pr = e.do("PATCH", idPath("/api/v1/caller-id-rules", rule.id(), ""), c.token, map[string]any{"type": "set_by_caller"}).must(t, 200)
	if pr.str("type") != "set_by_caller" || pr.str("display_name") != "" {
		t.Fatalf("patch rule type: %s", pr.raw)
	}
	e.do("PATCH", idPath("/api/v1/caller-id-rules", rule.id(), ""), c.token, map[string]any{"type": "specific", "numbers": []string{"+442030001111"}}).must(t, 200)

	set := e.do("PUT", idPath(sa, c.first, "/caller-id"), c.token, map[string]any{
		"default_number": "+442030001111", "display_name": "Front desk", "rule_ids": []int64{rule.id(), blocked.id()},
	}).must(t, 200)
	if set.str("caller_id", "default_number") != "+442030001111" || len(set.get("caller_id", "rule_ids").([]any)) != 2 {
		t.Fatalf("set caller id: %s", set.raw)
	}

	sim := e.do("GET", "/api/v1/caller-id/simulate?sip_account="+strconv.FormatInt(c.first, 10)+"&to=%2B442030009999", c.token, nil).must(t, 200)
	if sim.str("caller_id") != "+442030001111" || sim.str("reason") != "rule_prefix" || sim.get("rule_id") != float64(rule.id()) {
		t.Fatalf("simulate prefix: %s", sim.raw)
	}
	sim = e.do("GET", "/api/v1/caller-id/simulate?sip_account="+strconv.FormatInt(c.first, 10)+"&to=0049301234567", c.token, nil).must(t, 200)
	if sim.get("anonymous") != true || sim.str("reason") != "rule_country" {
		t.Fatalf("simulate blocked: %s", sim.raw)
	}
	sim = e.do("GET", "/api/v1/caller-id/simulate?sip_account="+strconv.FormatInt(c.first, 10)+"&to=15551239999&from=100", c.token, nil).must(t, 200)
	if sim.str("caller_id") != "+442030001111" || sim.str("reason") != "default" || sim.get("rule_id") != nil || sim.str("display_name") != "Front desk" {
		t.Fatalf("simulate default: %s", sim.raw)
	}
	for _, k := range []string{"caller_id", "display_name", "rule_id", "reason", "anonymous"} {
		if _, ok := sim.body[k]; !ok {
			t.Errorf("simulation lacks %q", k)
		}
	}

	e.do("DELETE", idPath("/api/v1/caller-id-rules", blocked.id(), ""), c.token, nil).must(t, 204)
	e.do("PUT", idPath(sa, c.first, "/caller-id"), c.token, map[string]any{"default_number": c.phone}).must(t, 200)
	e.do("DELETE", idPath("/api/v1/caller-id-rules", rule.id(), ""), c.token, nil).must(t, 204)
	e.do("DELETE", idPath("/api/v1/caller-ids", add.id(), ""), c.token, nil).must(t, 204)
	if n := e.do("GET", "/api/v1/caller-ids", c.token, nil).must(t, 200).items(); len(n) != 1 {
		t.Fatalf("numbers after delete: %v", n)
	}
}

func TestTicketsCallsAuditTokens(t *testing.T) {
	e := newEnv(t)
	c := e.customer("a@example.com", "+15551230001")

	tk := e.do("POST", "/api/v1/tickets", c.token, map[string]any{"kind": "sip_accounts", "wanted": 20, "reason": "more PBXs"}).must(t, 201)
	if tk.str("status") != "open" || tk.str("kind") != "sip_accounts" || tk.get("wanted") != 20.0 {
		t.Fatalf("ticket: %s", tk.raw)
	}
	e.topUp(c)
	e.do("POST", "/api/v1/tickets", c.token, map[string]any{"kind": "channel_limit", "wanted": 30, "reason": "campaign"}).must(t, 201)
	if ts := e.do("GET", "/api/v1/tickets", c.token, nil).must(t, 200).items(); len(ts) != 2 {
		t.Fatalf("tickets: %v", ts)
	}

	for _, p := range []string{"/api/v1/calls", "/api/v1/calls/active"} {
		r := e.do("GET", p, c.token, nil).must(t, 200)
		if r.raw != "{\"items\":[],\"next\":null}\n" {
			t.Fatalf("%s: %q", p, r.raw)
		}
	}

	e.do("POST", idPath(sa, c.first, "/reveal-username"), c.token, nil).must(t, 200)
	audit := e.do("GET", "/api/v1/audit", c.token, nil).must(t, 200)
	if it := audit.items(); len(it) == 0 || it[0]["action"] != sipdesk.AuditUsernameRevealed {
		t.Fatalf("audit: %s", audit.raw)
	}

	nt := e.do("POST", "/api/v1/tokens", c.token, map[string]any{"name": "ci"}).must(t, 201)
	tok := nt.str("token")
	if !strings.HasPrefix(tok, "sdk_") || nt.str("name") != "ci" {
		t.Fatalf("new token: %s", nt.raw)
	}
	e.do("GET", "/api/v1/account", tok, nil).must(t, 200)
	list := e.do("GET", "/api/v1/tokens", tok, nil).must(t, 200)
	if len(list.items()) != 2 || strings.Contains(list.raw, tok) || strings.Contains(list.raw, sipdesk.HashToken(tok)) {
		t.Fatalf("token list: %s", list.raw)
	}
	e.do("DELETE", idPath("/api/v1/tokens", nt.id(), ""), c.token, nil).must(t, 204)
	if r := e.do("GET", "/api/v1/account", tok, nil); r.status != 401 || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("revoked token: %d %v", r.status, r.header)
	}
}

func TestPagination(t *testing.T) {
	e := newEnv(t)
	c := e.customer("a@example.com", "+15551230001")
	for _, n := range []string{"B", "C", "D"} {
		e.do("POST", sa, c.token, map[string]any{"name": n}).must(t, 201)
	}
	p1 := e.do("GET", sa+"?limit=3", c.token, nil).must(t, 200)
	next, _ := p1.get("next").(string)
	if len(p1.items()) != 3 || next == "" {
		t.Fatalf("page 1: %s", p1.raw)
	}
	p2 := e.do("GET", sa+"?limit=3&after="+next, c.token, nil).must(t, 200)
	if it := p2.items(); len(it) != 1 || it[0]["name"] != "D" || p2.get("next") != nil {
		t.Fatalf("page 2: %s", p2.raw)
	}
	if r := e.do("GET", sa+"?limit=0", c.token, nil); r.status != 422 || r.errField() != "limit" {
		t.Fatalf("bad limit: %s", r.raw)
	}
	a1 := e.do("GET", "/api/v1/audit?limit=2", c.token, nil).must(t, 200)
	an, _ := a1.get("next").(string)
	a2 := e.do("GET", "/api/v1/audit?limit=100&after="+an, c.token, nil).must(t, 200)
	if len(a1.items()) != 2 || an == "" || len(a2.items()) == 0 || a2.items()[0]["id"].(float64) >= a1.items()[1]["id"].(float64) {
		t.Fatalf("audit pages: %s / %s", a1.raw, a2.raw)
	}
}

func TestRoutingErrors(t *testing.T) {
	e := newEnv(t)
	c := e.customer("a@example.com", "+15551230001")
	r := e.do("GET", "/api/v1/nope", c.token, nil)
	if r.status != 404 || r.errCode() != "not_found" {
		t.Fatalf("unknown route: %s", r.raw)
	}
	r = e.do("PUT", "/api/v1/account", c.token, nil)
	if r.status != 405 || r.errCode() != "method_not_allowed" || !strings.Contains(r.header.Get("Allow"), "GET") {
		t.Fatalf("wrong method: %d %v %s", r.status, r.header, r.raw)
	}
	doc := e.do("GET", "/api/v1/openapi.json", "", nil).must(t, 200)
	if doc.str("openapi") == "" {
		t.Fatalf("openapi: %.200s", doc.raw)
	}
	if r.header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("content type %q", r.header.Get("Content-Type"))
	}
}

func TestInternalErrorsAreGeneric(t *testing.T) {
	e := newEnv(t)
	rec := httptest.NewRecorder()
	e.api.writeError(rec, httptest.NewRequest("GET", "/api/v1/account", nil), errors.New("db password is hunter2"))
	var b errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 500 || b.Error.Code != "internal" || strings.Contains(rec.Body.String(), "hunter2") {
		t.Fatalf("internal: %d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(e.log.String(), "hunter2") {
		t.Fatalf("the real error is not logged: %s", e.log)
	}
}

func TestStatusTableCoversEveryCode(t *testing.T) {
	for _, code := range []string{sipdesk.EInvalid, sipdesk.ENotFound, sipdesk.EConflict, sipdesk.EUnauthorized, sipdesk.EForbidden,
		sipdesk.EQuotaExceeded, sipdesk.ETrialLocked, sipdesk.EAccountInactive, sipdesk.EAccountNotReady, sipdesk.ESourceNotAllowed,
		sipdesk.ETechPrefixRequired, sipdesk.EChannelLimit, sipdesk.EChannelCap, sipdesk.EInvalidNumber, sipdesk.EInvalidToken,
		sipdesk.EJWTNotEnabled, sipdesk.ERateLimited, sipdesk.EUnavailable, sipdesk.ENotImplemented, sipdesk.EInternal} {
		s := sipdesk.HTTPStatus(code)
		if s < 400 || s == 500 && code != sipdesk.EInternal {
			t.Errorf("%s: no error status", code)
		}
	}
	if sipdesk.HTTPStatus(sipdesk.EInvalid) != http.StatusUnprocessableEntity || sipdesk.HTTPStatus(sipdesk.ERateLimited) != 429 || sipdesk.HTTPStatus(sipdesk.ENotImplemented) != 501 {
		t.Error("status table changed")
	}
	_ = context.Background
}

func TestCallsLists(t *testing.T) {
	e := newEnv(t)
	c := e.customer("calls@example.com", "+15551239001")
	ctx := context.Background()
	for i, disp := range []string{sipdesk.DispAnswered, sipdesk.DispRefused, sipdesk.DispAnswered} {
		r := &sipdesk.CallRecord{CallID: fmt.Sprint("c", i), CustomerID: c.id, SIPAccountID: c.first, Direction: sipdesk.DirOutbound,
			From: "sip:u@x", To: "sip:+442030001111@edge", CallerID: "+15551239001", Disposition: disp, SIPCode: 200, Node: "n1"}
		if err := e.svc.SaveCallRecord(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.svc.AcquireChannel(ctx, &sipdesk.CallLease{CallID: "live1", CustomerID: c.id, SIPAccountID: c.first, Direction: sipdesk.DirOutbound, Node: "n1"}); err != nil {
		t.Fatal(err)
	}
	r := e.do("GET", "/api/v1/calls?limit=2", c.token, nil)
	next, _ := r.get("next").(string)
	if items := r.items(); r.status != 200 || len(items) != 2 || next == "" || items[0]["call_id"] != "c2" {
		t.Fatalf("first page: %d %s", r.status, r.raw)
	}
	r = e.do("GET", "/api/v1/calls?limit=2&after="+next, c.token, nil)
	if items := r.items(); len(items) != 1 || r.get("next") != nil || items[0]["call_id"] != "c0" {
		t.Fatalf("second page: %s", r.raw)
	}
	r = e.do("GET", "/api/v1/calls?disposition=refused", c.token, nil)
	if items := r.items(); len(items) != 1 || items[0]["disposition"] != "refused" {
		t.Fatalf("filtered: %s", r.raw)
	}
	if r = e.do("GET", "/api/v1/calls?since=2999-01-01T00:00:00Z", c.token, nil); len(r.items()) != 0 {
		t.Fatal("since filter ignored")
	}
	for _, q := range []string{"since=yesterday", "disposition=maybe", "sip_account=x"} {
		if r = e.do("GET", "/api/v1/calls?"+q, c.token, nil); r.status != 422 || r.errField() == "" {
			t.Errorf("%s: %d %s", q, r.status, r.raw)
		}
	}
	r = e.do("GET", "/api/v1/calls/active", c.token, nil)
	if items := r.items(); len(items) != 1 || items[0]["call_id"] != "live1" {
		t.Fatalf("active: %s", r.raw)
	}
	other := e.customer("calls2@example.com", "+15551239002")
	if r = e.do("GET", "/api/v1/calls/active", other.token, nil); len(r.items()) != 0 {
		t.Fatal("another customer sees live calls")
	}
	if r = e.do("GET", "/api/v1/calls", other.token, nil); len(r.items()) != 0 {
		t.Fatal("another customer sees call records")
	}
}
