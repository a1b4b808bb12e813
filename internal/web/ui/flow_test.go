package ui

import (
	"cmp"
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sipdesk/sipdesk"
)

// TestSignupToFirstAccount: sign up, verify with the code from the mailbox,
// see the first SIP account's password once, then only a masked username.
func TestSignupToFirstAccount(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	e.signup(b, "Jane@Acme.example", "+44 7700 900 321").must(t, 200, "Verify your phone", "+447700900321")
	b.post("/verify", url.Values{"code": {"000000"}}).must(t, 422, "the code is not right").errorNextTo(t, "code", "the code is not right")
	code := codeRe.FindStringSubmatch(e.lastMail("sms:+447700900321").Text)[1]
	p := b.post("/verify", url.Values{"code": {code}}).must(t, 200, "Your trial is ready", "Copy the password now", "Main")
	var cust *sipdesk.Customer
	e.st.View(context.Background(), func(tx sipdesk.Tx) (err error) { cust, err = tx.CustomerByEmail("jane@acme.example"); return err })
	as := e.accounts(cust.ID)
	if len(as) != 1 || !strings.Contains(p.body, as[0].Username) {
		t.Fatalf("first account: %d accounts, username shown: %v", len(as), strings.Contains(p.body, as[0].Username))
	}
	list := b.get("/sip-accounts").must(t, 200, sipdesk.MaskUsername(as[0].Username), "Trial", "<strong>1</strong> concurrent outbound call")
	list.mustNot(t, as[0].Username, "Copy the password now")
	b.get("/verify").must(t, 303)

	// Log out, log back in.
	b.post("/logout", nil).must(t, 200, "You are logged out.")
	if p := b.get("/sip-accounts"); p.status != 303 {
		t.Fatalf("after logout: %d", p.status)
	}
	b.post("/login", url.Values{"email": {"jane@acme.example"}, "password": {"wrong-Password-1"}}).must(t, 401, "Wrong email or password.")
	b.post("/login", url.Values{"email": {"jane@acme.example"}, "password": {portalPassword}, "next": {"/audit"}}).must(t, 200, "Audit Log")
}

// TestRevealOneAtATime: each reveal is a POST, audited; JS gets JSON, the
// no-JS page shows only that row revealed.
func TestRevealOneAtATime(t *testing.T) {
	e := newEnv(t)
	c := e.customer("a@acme.example", "+447700900001")
	second := c.b.post("/sip-accounts", url.Values{"name": {"Second"}, "auth_type": {"password"}}).must(t, 200, "SIP account created", "Copy the password now", "In Process")
	as := e.accounts(c.id)
	if len(as) != 2 {
		t.Fatalf("%d accounts", len(as))
	}
	_ = second
	p := c.b.post("/sip-accounts/"+itoa64(as[1].ID)+"/reveal", nil).must(t, 200, as[1].Username, `aria-label="Hide username of Second"`, `aria-label="Reveal username of Main"`)
	p.mustNot(t, as[0].Username)
	req, _ := http.NewRequest("POST", e.srv.URL+"/sip-accounts/"+itoa64(as[0].ID)+"/reveal", nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	r := c.b.do(req)
	var got map[string]string
	if err := json.Unmarshal([]byte(r.body), &got); err != nil || got["username"] != as[0].Username {
		t.Fatalf("JSON reveal: %d %s", r.status, r.body)
	}
	es, _ := e.svc.Audit(context.Background(), c.id, 50)
	n := 0
	for _, en := range es {
		if en.Action == sipdesk.AuditUsernameRevealed {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d reveals audited, want 2", n)
	}
	// Another customer's account is not found.
	o := e.customer("b@acme.example", "+447700900002")
	o.b.post("/sip-accounts/"+itoa64(as[0].ID)+"/reveal", nil).must(t, 404).mustNotChain(t, as[0].Username)
}

// TestCredentialResetFlow: key → Send email → the link → Edit Credentials
// window → errors in the window → Save changes; used and expired links
// show a clear page.
func TestCredentialResetFlow(t *testing.T) {
	e := newEnv(t)
	c := e.customer("r@acme.example", "+447700900011")
	id := itoa64(c.first.Account.ID)
	c.b.post("/sip-accounts/"+id+"/reset", nil).must(t, 200, "Check your email")
	m := e.lastMail(c.email)
	if !strings.Contains(m.HTML, "Edit Credentials") || !strings.Contains(m.Text, "http://portal.test/sip-accounts/edit-credentials?token=") {
		t.Fatalf("mail: %+v", m)
	}
	tok := e.resetToken(c.email)
	link := "/sip-accounts/edit-credentials?token=" + url.QueryEscape(tok)
	c.b.get(link).must(t, 200, "Edit Credentials", "SIP Accounts")

	post := func(user, pass, portal string) page {
		return c.b.post("/sip-accounts/edit-credentials", url.Values{"token": {tok}, "username": {user}, "password": {pass}, "portal_password": {portal}})
	}
	post("newuser01", "New-Sip-Pass-99", "wrong").must(t, 422, "Edit Credentials").errorNextTo(t, "portal_password", "the portal password is not right")
	post("no", "New-Sip-Pass-99", portalPassword).must(t, 422).errorNextTo(t, "username", "must be 8 to 64 characters")
	post("newuser01", "short", portalPassword).must(t, 422).errorNextTo(t, "password", "must be at least 12 characters")
	if a := e.accounts(c.id)[0]; a.Username != c.first.Account.Username {
		t.Fatalf("username changed by a failed save: %s", a.Username)
	}
	post("newuser01", "New-Sip-Pass-99", portalPassword).must(t, 200, "New credentials saved for “Main”")
	a := e.accounts(c.id)[0]
	if a.Username != "newuser01" || a.Digest != sipdesk.NewDigestHashes("newuser01", "sipdesk.local", "New-Sip-Pass-99") {
		t.Fatalf("not saved: %+v", a)
	}
	c.b.get(link).must(t, 410, "This link was already used")
	post("newuser02", "New-Sip-Pass-98", portalPassword).must(t, 410, "This link was already used")

	c.b.post("/sip-accounts/"+id+"/reset", nil).must(t, 200)
	tok2 := e.resetToken(c.email)
	e.advance(31 * time.Minute)
	c.b.get("/sip-accounts/edit-credentials?token="+url.QueryEscape(tok2)).must(t, 410, "This link has expired")
}

// TestValidationErrorsNextToFields posts bad forms: the error is shown next
// to its field and nothing is saved.
func TestValidationErrorsNextToFields(t *testing.T) {
	e := newEnv(t)
	c := e.customer("v@acme.example", "+447700900021")
	e.activate()
	first := itoa64(c.first.Account.ID)
	snapshot := func() string {
		var parts []string
		for _, a := range e.accounts(c.id) {
			j, _ := json.Marshal(a)
			parts = append(parts, string(j))
		}
		rs, _ := e.svc.Rules(context.Background(), c.id)
		ts, _ := e.svc.Tickets(context.Background(), c.id, "")
		ns, _ := e.svc.CallerIDNumbers(context.Background(), c.id)
		toks, _ := e.svc.APITokens(context.Background(), c.id)
		j, _ := json.Marshal([]any{rs, ts, len(ns), len(toks)})
		return strings.Join(parts, "\n") + string(j)
	}
	cases := []struct {
		name   string
		paid   bool
		path   string
		form   url.Values
		status int
		field  string
		msg    string
	}{
		{"add: empty name", false, "/sip-accounts", url.Values{"name": {""}, "auth_type": {"password"}}, 422, "name", "must be 1 to 64 characters"},
		{"add: private IP", false, "/sip-accounts", url.Values{"name": {"PBX"}, "auth_type": {"ip"}, "allowed_ips": {"10.0.0.1"}}, 422, "allowed_ips", "is not a public address"},
		{"add: IP account without IPs", false, "/sip-accounts", url.Values{"name": {"PBX"}, "auth_type": {"ip"}}, 422, "allowed_ips", "needs at least one address"},
		{"add: bad tech prefix", false, "/sip-accounts", url.Values{"name": {"PBX"}, "auth_type": {"ip"}, "allowed_ips": {"8.8.8.8"}, "tech_prefix": {"12"}}, 422, "tech_prefix", "exactly 4 digits"},
		{"add: cap over the limit", false, "/sip-accounts", url.Values{"name": {"PBX"}, "auth_type": {"password"}, "channel_cap": {"5"}}, 422, "channel_cap", "would exceed"},
		{"add: cap not a number", false, "/sip-accounts", url.Values{"name": {"PBX"}, "auth_type": {"password"}, "channel_cap": {"lots"}}, 422, "channel_cap", "must be a whole number"},
		// A conflict answers 409, as in the API (issue 12: one code table).
		{"add: duplicate name", false, "/sip-accounts", url.Values{"name": {"Main"}, "auth_type": {"password"}}, 409, "name", ""},
		{"edit: long name", false, "/sip-accounts/" + first, url.Values{"name": {strings.Repeat("x", 65)}, "auth_type": {"password"}, "active": {"1"}}, 422, "name", "must be 1 to 64 characters"},
		{"edit: switch to IP without IPs", false, "/sip-accounts/" + first, url.Values{"name": {"Main"}, "auth_type": {"ip"}, "active": {"1"}}, 422, "allowed_ips", "needs at least one address"},
		{"edit: bad ACL", false, "/sip-accounts/" + first, url.Values{"name": {"Main"}, "auth_type": {"password"}, "active": {"1"}, "allowed_ips": {"not-an-ip"}}, 422, "allowed_ips", "is not an IPv4/IPv6 address or CIDR"},
		{"jwt: short secret", false, "/sip-accounts/" + first + "/jwt", url.Values{"enabled": {"1"}, "secret": {"abc"}}, 422, "secret", "exactly 32 letters or digits"},
		{"caller id: trial", false, "/sip-accounts/" + first + "/caller-id", url.Values{"default_number": {"+447700900021"}, "display_name": {"Acme"}}, 422, "default_number", "not available for trial accounts"},
		{"caller id: bad display name", true, "/sip-accounts/" + first + "/caller-id", url.Values{"default_number": {"+447700900021"}, "display_name": {`Ac"me`}}, 422, "display_name", "must not contain quotes"},
		{"caller id: unverified number", true, "/sip-accounts/" + first + "/caller-id", url.Values{"default_number": {"+447700900999"}}, 422, "default_number", "is not one of your verified Caller ID numbers"},
		{"rule: bad prefix", true, "/caller-id/rules", url.Values{"name": {"UK"}, "apply_for": {"prefix"}, "prefix": {"abc"}, "type": {"blocked"}}, 422, "prefix", "must be digits"},
		{"rule: no country", true, "/caller-id/rules", url.Values{"name": {"UK"}, "apply_for": {"country"}, "type": {"blocked"}}, 422, "country", "is required for country rules"},
		{"rule: specific without numbers", true, "/caller-id/rules", url.Values{"name": {"UK"}, "apply_for": {"all"}, "type": {"specific"}}, 422, "numbers", "needs 1 to 20 numbers"},
		{"rule: trial", false, "/caller-id/rules", url.Values{"name": {"UK"}, "apply_for": {"all"}, "type": {"blocked"}}, 422, "type", "not available for trial accounts"},
		{"ticket: channels on trial", false, "/tickets", url.Values{"kind": {"channel_limit"}, "wanted": {"5"}}, 422, "kind", "top up before asking for more channels"},
		{"ticket: not a number", true, "/tickets", url.Values{"kind": {"channel_limit"}, "wanted": {"many"}}, 422, "wanted", "must be a whole number"},
		{"ticket: fewer than now", true, "/tickets", url.Values{"kind": {"channel_limit"}, "wanted": {"3"}}, 422, "wanted", "must be more than your current limit"},
		{"number: not a number", true, "/caller-id/numbers", url.Values{"number": {"call me"}}, 422, "number", "international format"},
		{"number: trial", false, "/caller-id/numbers", url.Values{"number": {"+442071838750"}}, 422, "number", "trial accounts"},
		{"token: long name", false, "/api-tokens", url.Values{"name": {strings.Repeat("t", 70)}}, 422, "name", "at most 64 characters"},
	}
	// Trial cases first, then the top-up and the paid ones.
	slices.SortStableFunc(cases, func(a, b struct {
		name   string
		paid   bool
		path   string
		form   url.Values
		status int
		field  string
		msg    string
	}) int {
		return cmp.Compare(boolInt(a.paid), boolInt(b.paid))
	})
	paid := false
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.paid && !paid {
				e.topUp(c)
				paid = true
			}
			before := snapshot()
			p := c.b.post(tc.path, tc.form).must(t, tc.status, `class="field-error"`)
			if tc.msg != "" {
				p.errorNextTo(t, tc.field, tc.msg)
			}
			if after := snapshot(); after != before {
				t.Fatalf("a refused form changed the database:\nbefore %s\nafter  %s", before, after)
			}
			// The typed values come back.
			for k, v := range tc.form {
				if k != "allowed_ips" && k != "rule_ids" && v[0] != "" && len(v[0]) < 60 && !strings.Contains(unesc(p.body), `value="`+v[0]+`"`) && !strings.Contains(unesc(p.body), ">"+v[0]+"<") && k != "active" && k != "enabled" && k != "default_number" && k != "auth_type" && k != "apply_for" && k != "type" && k != "kind" {
					t.Errorf("typed %s=%q not kept in the form", k, v[0])
				}
			}
		})
	}
	// Signup errors, nothing created.
	o := e.browser()
	o.post("/signup", url.Values{"email": {"nope"}, "password": {portalPassword}, "password_confirm": {portalPassword}, "phone": {"+447700900555"}}).must(t, 422).errorNextTo(t, "email", "must be a valid email address")
	o.post("/signup", url.Values{"email": {"x@acme.example"}, "password": {"short"}, "password_confirm": {"short"}, "phone": {"+447700900555"}}).must(t, 422).errorNextTo(t, "password", "must be at least 12 characters")
	o.post("/signup", url.Values{"email": {"x@acme.example"}, "password": {portalPassword}, "password_confirm": {portalPassword + "x"}, "phone": {"+447700900555"}}).must(t, 422).errorNextTo(t, "password_confirm", "the two passwords differ")
	o.post("/signup", url.Values{"email": {"x@acme.example"}, "password": {portalPassword}, "password_confirm": {portalPassword}, "phone": {"12"}}).must(t, 422).errorNextTo(t, "phone", "international format")
	// Every error at once, each next to its field and in the summary.
	all := o.post("/signup", url.Values{"email": {"nope"}, "password": {"short"}, "password_confirm": {"other"}, "phone": {"12"}}).
		must(t, 422, `data-testid="error-summary"`, "Fix these 4 things to sign up", `href="#email">Email: must be a valid email address`, `href="#password"`, `href="#password_confirm"`, `href="#phone"`)
	all.errorNextTo(t, "email", "must be a valid email address")
	all.errorNextTo(t, "password", "must be at least 12 characters")
	all.errorNextTo(t, "password_confirm", "the two passwords differ")
	all.errorNextTo(t, "phone", "international format")
	// An email that has an account gets the same answer as a new one (the
	// address is told by email instead).
	o.post("/signup", url.Values{"email": {"v@acme.example"}, "password": {portalPassword}, "password_confirm": {portalPassword}, "phone": {"+447700900555"}}).must(t, 200, "Check your email").mustNot(t, "already")
	if m := e.lastMail("v@acme.example"); !strings.Contains(m.Subject, "already have") {
		t.Fatalf("the existing address got %q", m.Subject)
	}
	cs, _ := e.svc.Customers(context.Background())
	if len(cs) != 1 {
		t.Fatalf("%d customers after refused signups", len(cs))
	}
}

// TestEditFlows: status toggle, IP switch and back (through the email),
// JWT generated once, Caller ID after top-up, delete with confirmation.
func TestEditFlows(t *testing.T) {
	e := newEnv(t)
	c := e.customer("f@acme.example", "+447700900031")
	e.activate()
	id := itoa64(c.first.Account.ID)
	c.b.post("/sip-accounts/"+id, url.Values{"name": {"Main line"}, "auth_type": {"password"}}).must(t, 200, "SIP account “Main line” saved.", "Inactive")
	if a := e.accounts(c.id)[0]; a.Status != sipdesk.StatusInactive || a.Name != "Main line" {
		t.Fatalf("%+v", a)
	}
	c.b.post("/sip-accounts/"+id, url.Values{"name": {"Main line"}, "auth_type": {"password"}, "active": {"1"}}).must(t, 200, "Active")
	c.b.post("/sip-accounts/"+id, url.Values{"name": {"Main line"}, "auth_type": {"ip"}, "active": {"1"}, "allowed_ips": {"8.8.8.8", "", "9.9.9.0/24"}, "tech_prefix": {""}}).
		must(t, 200, "Switched to IP authentication", "8.8.8.8, 9.9.9.0/24", "In Process")
	e.activate()
	c.b.post("/sip-accounts/"+id, url.Values{"name": {"Main line"}, "auth_type": {"password"}, "active": {"1"}, "allowed_ips": {"8.8.8.8"}, "tech_prefix": {"1234"}}).
		must(t, 200, "Switched to password authentication. We emailed you an Edit Credentials link")
	e.activate()
	if a := e.accounts(c.id)[0]; a.AuthType != sipdesk.AuthPassword || a.Status != sipdesk.StatusActive || len(a.AllowedIPs) != 0 {
		t.Fatalf("%+v", a)
	}
	e.resetToken(c.email)

	p := c.b.post("/sip-accounts/"+id+"/jwt", url.Values{"enabled": {"1"}}).must(t, 200, "Copy the secret now")
	secret := strings.Split(strings.Split(p.body, `id="jwt-new-secret">`)[1], "<")[0]
	if len(secret) != 32 {
		t.Fatalf("secret %q", secret)
	}
	c.b.get("/sip-accounts/"+id+"/edit?tab=jwt").must(t, 200, "checked").mustNotChain(t, secret)
	c.b.get("/sip-accounts").must(t, 200, ">JWT<", `aria-label="Launch softphone for Main line"`)
	typed := strings.Repeat("Ab1", 10) + "Zz"
	c.b.post("/sip-accounts/"+id+"/jwt", url.Values{"enabled": {"1"}, "secret": {typed}}).must(t, 200, "JWT authentication enabled.").mustNotChain(t, typed)

	// Trial: the Caller ID fields are disabled; after top-up they are not.
	c.b.get("/sip-accounts/"+id+"/edit?tab=callerid").must(t, 200, `<fieldset class="plain" disabled>`, "Changing the Caller ID is not available for trial accounts")
	e.topUp(c)
	c.b.get("/sip-accounts/"+id+"/edit?tab=callerid").must(t, 200, `<fieldset class="plain" >`).mustNotChain(t, "not available for trial accounts")
	c.b.post("/caller-id/rules", url.Values{"name": {"UK"}, "apply_for": {"country"}, "country": {"GB"}, "type": {"specific"}, "numbers": {"+447700900031"}, "display_name": {"Acme"},
		"return": {"/sip-accounts/" + id + "/edit?tab=callerid"}}).must(t, 200, "Rule “UK” saved", "For United Kingdom use +447700900031", "Selected: <span data-selected-count>0</span> of <span data-rule-total>1</span>")
	rs, _ := e.svc.Rules(context.Background(), c.id)
	c.b.post("/sip-accounts/"+id+"/caller-id", url.Values{"default_number": {"+447700900031"}, "display_name": {"Support"}, "rule_ids": {itoa64(rs[0].ID)}}).
		must(t, 200, "Caller ID settings saved.", "Selected: <span data-selected-count>1</span> of <span data-rule-total>1</span>", `value="Support"`)
	c.b.get("/sip-accounts/"+id+"/edit?tab=callerid&to=%2B442071234567").must(t, 200, "+447700900031</strong> “Acme”", "Rule “UK” (destination country)")

	// Delete with confirmation.
	c.b.get("/sip-accounts/"+id+"/delete").must(t, 200, "Delete <strong>Main line</strong>?")
	c.b.post("/sip-accounts/"+id+"/delete", nil).must(t, 200, "SIP account “Main line” deleted.", "No SIP accounts yet")
	if n := len(e.accounts(c.id)); n != 0 {
		t.Fatalf("%d accounts after delete", n)
	}
}

// TestTicketFromChannelCube: "Increase channel limit" opens a ticket.
func TestTicketFromChannelCube(t *testing.T) {
	e := newEnv(t)
	c := e.customer("t@acme.example", "+447700900041")
	e.topUp(c)
	c.b.get("/sip-accounts").must(t, 200, `href="/tickets/new?kind=channel_limit"`)
	c.b.post("/tickets", url.Values{"kind": {"channel_limit"}, "wanted": {"25"}, "reason": {"Campaign"}}).must(t, 200, "Ticket #1 opened", "Channel limit → 25", "Campaign", "Open")
}

func unesc(s string) string { return html.UnescapeString(s) }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestCallPagesShowRecordsAndLiveCalls(t *testing.T) {
	e := newEnv(t)
	c := e.customer("calls@acme.example", "+15551234321")
	ctx := context.Background()
	c.b.get("/calls").must(t, 200, "No calls yet")
	rec := &sipdesk.CallRecord{CallID: "x1", CustomerID: c.id, SIPAccountID: c.first.Account.ID, Direction: sipdesk.DirOutbound,
		From: "sip:dev@edge", To: "+442030001111", CallerID: "+15551234321", Disposition: sipdesk.DispRefused, SIPCode: 403, Reason: sipdesk.EChannelLimit}
	if err := e.svc.SaveCallRecord(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.AcquireChannel(ctx, &sipdesk.CallLease{CallID: "live-1", CustomerID: c.id, SIPAccountID: c.first.Account.ID, Direction: sipdesk.DirOutbound, Node: "edge-7"}); err != nil {
		t.Fatal(err)
	}
	c.b.get("/calls").must(t, 200, "+442030001111", "Main", "Refused: channel limit reached")
	c.b.get("/calls/live").must(t, 200, "edge-7", "outbound", "Main").mustNot(t, "No calls in progress")
	other := e.customer("other@acme.example", "+15551234322")
	other.b.get("/calls").must(t, 200, "No calls yet")
	other.b.get("/calls/live").must(t, 200, "No calls in progress")
}

func TestResendSignupCode(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	e.signup(b, "re@acme.example", "+447700900555").must(t, 200, "Verify your phone", "Send a new code")
	b.post("/verify/resend", nil).must(t, 200, "less than a minute ago")
	e.advance(2 * time.Minute)
	b.post("/verify/resend", nil).must(t, 200, "A new code is on its way.")
	code := codeRe.FindStringSubmatch(e.lastMail("sms:+447700900555").Text)[1]
	b.post("/verify", url.Values{"code": {code}}).must(t, 200, "Your trial is ready")
}
