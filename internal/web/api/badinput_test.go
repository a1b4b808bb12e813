package api

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/sipdesk/sipdesk"
)

// snapshot dumps every row a customer request could change.
func (e *env) snapshot() string {
	e.t.Helper()
	ctx := context.Background()
	dump := map[string]any{}
	err := e.st.View(ctx, func(tx sipdesk.Tx) error {
		cs, err := tx.Customers()
		if err != nil {
			return err
		}
		dump["customers"] = cs
		for _, c := range cs {
			k := fmt.Sprint(c.ID)
			as, err := tx.SIPAccounts(c.ID)
			if err != nil {
				return err
			}
			rs, err := tx.Rules(c.ID)
			if err != nil {
				return err
			}
			ns, err := tx.CallerIDNumbers(c.ID)
			if err != nil {
				return err
			}
			ts, err := tx.Tickets(c.ID, "")
			if err != nil {
				return err
			}
			toks, err := tx.APITokens(c.ID)
			if err != nil {
				return err
			}
			for _, t := range toks {
				t.LastUsedAt = t.CreatedAt // touched by authentication, at most once a minute
			}
			au, err := tx.Audit(c.ID, 10000)
			if err != nil {
				return err
			}
			dump["accounts/"+k], dump["rules/"+k], dump["numbers/"+k] = as, rs, ns
			dump["tickets/"+k], dump["tokens/"+k], dump["audit/"+k] = ts, toks, au
		}
		ms, err := tx.Mails(100000)
		dump["mails"] = ms
		return err
	})
	if err != nil {
		e.t.Fatalf("snapshot: %v", err)
	}
	v, err := e.st.ConfigVersion(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	dump["config_version"] = v
	b, err := json.Marshal(dump)
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	a := e.customer("a@example.com", "+15551230001")  // paid, with IP, inactive and active accounts
	b := e.customer("b@example.com", "+15551230002")  // paid, another customer
	tr := e.customer("t@example.com", "+15551230003") // trial
	q := e.customer("q@example.com", "+15551230004")  // trial at its quota
	e.topUp(a)
	e.topUp(b)

	ip1 := e.do("POST", sa, a.token, map[string]any{"name": "IP one", "auth_type": "ip", "allowed_ips": []string{"1.2.3.4"}}).must(t, 201).id()
	off := e.do("POST", sa, a.token, map[string]any{"name": "Off"}).must(t, 201).id()
	e.activate()
	e.do("PATCH", idPath(sa, off, ""), a.token, map[string]any{"status": "inactive"}).must(t, 200)
	ruleB := e.do("POST", "/api/v1/caller-id-rules", b.token, map[string]any{"name": "B all", "apply_for": "all", "type": "blocked"}).must(t, 201).id()
	ruleA := e.do("POST", "/api/v1/caller-id-rules", a.token, map[string]any{"name": "A all", "apply_for": "all", "type": "set_by_caller"}).must(t, 201).id()
	numB := e.do("GET", "/api/v1/caller-ids", b.token, nil).must(t, 200).items()[0]["id"].(float64)
	numA := e.do("GET", "/api/v1/caller-ids", a.token, nil).must(t, 200).items()[0]["id"].(float64)
	tokB := e.do("GET", "/api/v1/tokens", b.token, nil).must(t, 200).items()[0]["id"].(float64)
	for i := 2; i <= 10; i++ {
		e.do("POST", sa, q.token, map[string]any{"name": fmt.Sprint("Q", i)}).must(t, 201)
	}

	ips101 := make([]string, 101)
	for i := range ips101 {
		ips101[i] = fmt.Sprintf("1.2.%d.%d", 10+i/200, 1+i%200)
	}
	bSA := func(suffix string) string { return idPath(sa, b.first, suffix) }
	aSA := func(suffix string) string { return idPath(sa, a.first, suffix) }
	pw := func(p string) map[string]any {
		return map[string]any{"name": "New", "username": "goodname1", "password": p}
	}

	cases := []struct {
		name   string
		token  string
		method string
		path   string
		body   any
		status int
		code   string
		field  string
	}{
		{"private IP", a.token, "POST", sa, map[string]any{"name": "X", "auth_type": "ip", "allowed_ips": []string{"10.0.0.1"}}, 422, "invalid", "allowed_ips"},
		{"loopback IP", a.token, "POST", sa, map[string]any{"name": "X", "auth_type": "ip", "allowed_ips": []string{"127.0.0.1"}}, 422, "invalid", "allowed_ips"},
		{"malformed IP", a.token, "POST", sa, map[string]any{"name": "X", "auth_type": "ip", "allowed_ips": []string{"1.2.3"}}, 422, "invalid", "allowed_ips"},
		{"malformed CIDR", a.token, "POST", sa, map[string]any{"name": "X", "auth_type": "ip", "allowed_ips": []string{"1.2.3.4/40"}}, 422, "invalid", "allowed_ips"},
		{"private IP in a password account's ACL", a.token, "PATCH", aSA(""), map[string]any{"allowed_ips": []string{"192.168.1.1"}}, 422, "invalid", "allowed_ips"},
		{"101 IPs", a.token, "POST", sa, map[string]any{"name": "X", "auth_type": "ip", "allowed_ips": ips101}, 422, "invalid", "allowed_ips"},
		{"IP account without IPs", a.token, "POST", sa, map[string]any{"name": "X", "auth_type": "ip", "allowed_ips": []string{}}, 422, "invalid", "allowed_ips"},
		{"IP account emptied", a.token, "PATCH", idPath(sa, ip1, ""), map[string]any{"allowed_ips": []string{}}, 422, "invalid", "allowed_ips"},
		{"duplicate name on create", a.token, "POST", sa, map[string]any{"name": "Main"}, 409, "conflict", "name"},
		{"duplicate name on rename", a.token, "PATCH", aSA(""), map[string]any{"name": "Off"}, 409, "conflict", "name"},
		{"empty name", a.token, "POST", sa, map[string]any{"name": "  "}, 422, "invalid", "name"},
		{"null name", a.token, "PATCH", aSA(""), map[string]any{"name": nil}, 422, "invalid", "name"},
		{"short username", a.token, "POST", sa, map[string]any{"name": "X", "username": "abc", "password": "Good-Pass-1234"}, 422, "invalid", "username"},
		{"invalid username characters", a.token, "POST", sa, map[string]any{"name": "X", "username": "user@host1", "password": "Good-Pass-1234"}, 422, "invalid", "username"},
		{"taken username", a.token, "POST", sa, map[string]any{"name": "X", "username": b.user, "password": "Good-Pass-1234"}, 409, "conflict", "username"},
		{"short password", a.token, "POST", sa, pw("Ab1-short"), 422, "invalid", "password"},
		{"password without digit", a.token, "POST", sa, pw("Abcdefghijklmn"), 422, "invalid", "password"},
		{"password without upper case", a.token, "POST", sa, pw("abcdefghijk123"), 422, "invalid", "password"},
		{"password containing the username", a.token, "POST", sa, pw("Xgoodname1-Y9"), 422, "invalid", "password"},
		{"11th SIP account", q.token, "POST", sa, map[string]any{"name": "Q11"}, 403, "quota_exceeded", "name"},
		{"JWT on an IP account", a.token, "PUT", idPath(sa, ip1, "/jwt"), map[string]any{"enabled": true}, 422, "invalid", "enabled"},
		{"JWT on an inactive account", a.token, "PUT", idPath(sa, off, "/jwt"), map[string]any{"enabled": true}, 422, "invalid", "enabled"},
		{"JWT secret of 31 characters", a.token, "PUT", aSA("/jwt"), map[string]any{"enabled": true, "secret": strings.Repeat("a", 31)}, 422, "invalid", "secret"},
		{"JWT secret not alphanumeric", a.token, "PUT", aSA("/jwt"), map[string]any{"enabled": true, "secret": strings.Repeat("a", 31) + "-"}, 422, "invalid", "secret"},
		{"JWT without enabled", a.token, "PUT", aSA("/jwt"), map[string]any{"secret": strings.Repeat("a", 32)}, 422, "invalid", "enabled"},
		{"Caller ID change on trial", tr.token, "PUT", idPath(sa, tr.first, "/caller-id"), map[string]any{"default_number": tr.phone}, 403, "trial_locked", "default_number"},
		{"rule on trial", tr.token, "POST", "/api/v1/caller-id-rules", map[string]any{"name": "R", "apply_for": "all", "type": "blocked"}, 403, "trial_locked", "type"},
		{"unverified Caller ID number", a.token, "PUT", aSA("/caller-id"), map[string]any{"default_number": "+442030001111"}, 422, "invalid", "default_number"},
		{"unknown rule id", a.token, "PUT", aSA("/caller-id"), map[string]any{"default_number": a.phone, "rule_ids": []int64{999999}}, 422, "invalid", "rule_ids"},
		{"another customer's rule id", a.token, "PUT", aSA("/caller-id"), map[string]any{"default_number": a.phone, "rule_ids": []int64{ruleA, ruleB}}, 422, "invalid", "rule_ids"},
		{"rule with unverified number", a.token, "POST", "/api/v1/caller-id-rules", map[string]any{"name": "R", "apply_for": "all", "type": "specific", "numbers": []string{"+442030001111"}}, 422, "invalid", "numbers"},
		{"rule with bad apply_for", a.token, "POST", "/api/v1/caller-id-rules", map[string]any{"name": "R", "apply_for": "planet", "type": "blocked"}, 422, "invalid", "apply_for"},
		{"rule with unknown country", a.token, "POST", "/api/v1/caller-id-rules", map[string]any{"name": "R", "apply_for": "country", "country": "XX", "type": "blocked"}, 422, "invalid", "country"},
		{"rule with bad prefix", a.token, "PATCH", idPath("/api/v1/caller-id-rules", ruleA, ""), map[string]any{"apply_for": "prefix", "prefix": "44a"}, 422, "invalid", "prefix"},
		{"another customer's SIP account: GET", a.token, "GET", bSA(""), nil, 404, "not_found", ""},
		{"another customer's SIP account: PATCH", a.token, "PATCH", bSA(""), map[string]any{"name": "Mine"}, 404, "not_found", ""},
		{"another customer's SIP account: DELETE", a.token, "DELETE", bSA(""), nil, 404, "not_found", ""},
		{"another customer's SIP account: reveal", a.token, "POST", bSA("/reveal-username"), nil, 404, "not_found", ""},
		{"another customer's SIP account: reset", a.token, "POST", bSA("/credential-reset"), nil, 404, "not_found", ""},
		{"another customer's SIP account: JWT", a.token, "PUT", bSA("/jwt"), map[string]any{"enabled": true}, 404, "not_found", ""},
		{"another customer's SIP account: Caller ID", a.token, "PUT", bSA("/caller-id"), map[string]any{"default_number": b.phone}, 404, "not_found", ""},
		{"another customer's SIP account: softphone", a.token, "POST", bSA("/softphone-token"), nil, 404, "not_found", ""},
		{"another customer's SIP account: simulate", a.token, "GET", "/api/v1/caller-id/simulate?sip_account=" + strconv.FormatInt(b.first, 10) + "&to=15551239999", nil, 404, "not_found", ""},
		{"another customer's rule: PATCH", a.token, "PATCH", idPath("/api/v1/caller-id-rules", ruleB, ""), map[string]any{"name": "Mine"}, 404, "not_found", ""},
		{"another customer's rule: DELETE", a.token, "DELETE", idPath("/api/v1/caller-id-rules", ruleB, ""), nil, 404, "not_found", ""},
		{"another customer's Caller ID number", a.token, "DELETE", idPath("/api/v1/caller-ids", int64(numB), ""), nil, 404, "not_found", ""},
		{"another customer's API token", a.token, "DELETE", idPath("/api/v1/tokens", int64(tokB), ""), nil, 404, "not_found", ""},
		{"deleting the signup phone", a.token, "DELETE", idPath("/api/v1/caller-ids", int64(numA), ""), nil, 422, "invalid", "number"},
		{"id not a number", a.token, "GET", sa + "/abc", nil, 404, "not_found", ""},
		{"id zero", a.token, "DELETE", sa + "/0", nil, 404, "not_found", ""},
		{"id negative", a.token, "PATCH", sa + "/-1", map[string]any{"name": "X"}, 404, "not_found", ""},
		{"malformed JSON", a.token, "POST", sa, `{"name": "X"`, 400, "invalid", ""},
		{"malformed JSON syntax", a.token, "POST", sa, `{"name" "X"}`, 400, "invalid", ""},
		{"trailing garbage", a.token, "POST", sa, `{"name": "X"} {"name": "Y"}`, 400, "invalid", ""},
		{"array instead of object", a.token, "POST", sa, `[{"name": "X"}]`, 400, "invalid", ""},
		{"empty body", a.token, "POST", sa, ` `, 400, "invalid", ""},
		{"unknown field", a.token, "POST", sa, map[string]any{"name": "X", "colour": "red"}, 400, "invalid", "colour"},
		{"unknown field in PATCH", a.token, "PATCH", aSA(""), map[string]any{"username": "newuser99"}, 400, "invalid", "username"},
		{"wrong type", a.token, "POST", sa, map[string]any{"name": 5}, 400, "invalid", "name"},
		{"wrong type in a list", a.token, "POST", sa, map[string]any{"name": "X", "auth_type": "ip", "allowed_ips": []any{1}}, 400, "invalid", "allowed_ips"},
		{"wrong type in PATCH", a.token, "PATCH", aSA(""), map[string]any{"channel_cap": "ten"}, 400, "invalid", "channel_cap"},
		{"wrong type for enabled", a.token, "PUT", aSA("/jwt"), map[string]any{"enabled": "yes"}, 400, "invalid", "enabled"},
		{"oversized body", a.token, "POST", sa, `{"name": "` + strings.Repeat("x", 70<<10) + `"}`, 413, "invalid", ""},
		{"bad status", a.token, "PATCH", aSA(""), map[string]any{"status": "paused"}, 422, "invalid", "status"},
		{"status in_process asked for", a.token, "PATCH", aSA(""), map[string]any{"status": "in_process"}, 422, "invalid", "status"},
		{"bad auth_type on create", a.token, "POST", sa, map[string]any{"name": "X", "auth_type": "token"}, 422, "invalid", "auth_type"},
		{"bad auth_type on PATCH", a.token, "PATCH", aSA(""), map[string]any{"auth_type": "token"}, 422, "invalid", "auth_type"},
		{"bad tech prefix", a.token, "POST", sa, map[string]any{"name": "X", "auth_type": "ip", "allowed_ips": []string{"5.6.7.8"}, "tech_prefix": "12a4"}, 422, "invalid", "tech_prefix"},
		{"tech prefix on a password account", a.token, "POST", sa, map[string]any{"name": "X", "tech_prefix": "1234"}, 422, "invalid", "tech_prefix"},
		{"shared IP without tech prefix", a.token, "POST", sa, map[string]any{"name": "X", "auth_type": "ip", "allowed_ips": []string{"1.2.3.0/24"}}, 409, "conflict", "tech_prefix"},
		{"shared IP with another customer's account", b.token, "POST", sa, map[string]any{"name": "X", "auth_type": "ip", "allowed_ips": []string{"1.2.3.4"}, "tech_prefix": "1111"}, 409, "conflict", "tech_prefix"},
		{"channel cap above the limit", a.token, "PATCH", aSA(""), map[string]any{"channel_cap": 11}, 422, "invalid", "channel_cap"},
		{"negative channel cap", a.token, "POST", sa, map[string]any{"name": "X", "channel_cap": -1}, 422, "invalid", "channel_cap"},
		{"bad ticket kind", a.token, "POST", "/api/v1/tickets", map[string]any{"kind": "pizza", "wanted": 20}, 422, "invalid", "kind"},
		{"ticket wanted below the limit", a.token, "POST", "/api/v1/tickets", map[string]any{"kind": "channel_limit", "wanted": 5}, 422, "invalid", "wanted"},
		{"ticket wanted below the quota", a.token, "POST", "/api/v1/tickets", map[string]any{"kind": "sip_accounts", "wanted": 3}, 422, "invalid", "wanted"},
		{"channel ticket on trial", tr.token, "POST", "/api/v1/tickets", map[string]any{"kind": "channel_limit", "wanted": 5}, 403, "trial_locked", "kind"},
		{"simulate with a bad number", a.token, "GET", "/api/v1/caller-id/simulate?sip_account=" + strconv.FormatInt(a.first, 10) + "&to=abc", nil, 422, "invalid_number", "to"},
		{"simulate without a number", a.token, "GET", "/api/v1/caller-id/simulate?sip_account=" + strconv.FormatInt(a.first, 10), nil, 422, "invalid_number", "to"},
		{"simulate without an account", a.token, "GET", "/api/v1/caller-id/simulate?to=15551239999", nil, 422, "invalid", "sip_account"},
		{"Caller ID number not a number", a.token, "POST", "/api/v1/caller-ids", map[string]any{"number": "call me"}, 422, "invalid", "number"},
		{"Caller ID number on trial", tr.token, "POST", "/api/v1/caller-ids", map[string]any{"number": "+442030001111"}, 403, "trial_locked", "number"},
		{"unknown reset link", "", "POST", "/api/v1/credential-resets/NOPE", map[string]any{"password": "Good-Pass-1234", "portal_password": portalPassword}, 404, "not_found", ""},
		{"missing bearer token", "", "GET", "/api/v1/account", nil, 401, "unauthorized", ""},
		{"invalid bearer token", "sdk_NOTATOKEN", "POST", sa, map[string]any{"name": "X"}, 401, "unauthorized", ""},
		{"bad page limit", a.token, "GET", "/api/v1/tickets?limit=1000", nil, 422, "invalid", "limit"},
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.snapshot()
			r := e.do(tc.method, tc.path, tc.token, tc.body)
			if r.status != tc.status || r.errCode() != tc.code || r.errField() != tc.field {
				t.Errorf("got %d %q field %q, want %d %q field %q: %s", r.status, r.errCode(), r.errField(), tc.status, tc.code, tc.field, r.raw)
			}
			if msg := r.str("error", "message"); msg == "" {
				t.Errorf("no message: %s", r.raw)
			}
			if tc.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge")
			}
			if after := e.snapshot(); after != before {
				t.Errorf("the database changed")
			}
		})
	}
}

func TestContentTypeMustBeJSON(t *testing.T) {
	e := newEnv(t)
	c := e.customer("a@example.com", "+15551230001")
	before := e.snapshot()
	req := strings.NewReader(`name=X`)
	r := e.doRaw("POST", sa, c.token, "application/x-www-form-urlencoded", req)
	if r.status != 415 || r.errCode() != "invalid" {
		t.Fatalf("form body: %s", r.raw)
	}
	if e.snapshot() != before {
		t.Fatal("the database changed")
	}
}

// The snapshot must notice the smallest write, or TestBadInput proves nothing.
func TestSnapshotSeesChanges(t *testing.T) {
	e := newEnv(t)
	c := e.customer("a@example.com", "+15551230001")
	s0 := e.snapshot()
	e.do("POST", idPath(sa, c.first, "/reveal-username"), c.token, nil).must(t, 200) // an audit line only
	s1 := e.snapshot()
	e.do("PATCH", idPath(sa, c.first, ""), c.token, map[string]any{"name": "Renamed"}).must(t, 200)
	if s1 == s0 || e.snapshot() == s1 {
		t.Fatal("snapshot misses writes")
	}
}
