package ui

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

// TestRenderEveryPage renders every page and dialog with realistic data
// (a paid customer with several SIP accounts, numbers, rules, tickets and
// tokens) and checks what each must show.
func TestRenderEveryPage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.customer("ops@acme-voip.example", "+447700900123")
	b := c.b
	e.topUp(c)
	actor := app.CustomerActor(c.id, "portal")
	ipAcc, err := e.svc.CreateSIPAccount(ctx, c.id, app.SIPAccountInput{Name: "Dialer DC1", AuthType: sipdesk.AuthIP, AllowedIPs: []string{"198.51.100.7", "203.0.113.0/24"}, TechPrefix: "1234"}, actor)
	if err == nil {
		t.Fatal("documentation ranges must be refused as non-public")
	}
	ipAcc, err = e.svc.CreateSIPAccount(ctx, c.id, app.SIPAccountInput{Name: "Dialer DC1", AuthType: sipdesk.AuthIP, AllowedIPs: []string{"8.8.4.4", "9.9.9.0/24"}, TechPrefix: "1234"}, actor)
	if err != nil {
		t.Fatal(err)
	}
	pbx, err := e.svc.CreateSIPAccount(ctx, c.id, app.SIPAccountInput{Name: "Office PBX", AuthType: sipdesk.AuthPassword, ChannelCap: 2}, actor)
	if err != nil {
		t.Fatal(err)
	}
	e.activate()
	if _, err := e.svc.SetJWT(ctx, c.id, c.first.Account.ID, true, "", actor); err != nil {
		t.Fatal(err)
	}
	n, err := e.svc.AddCallerIDNumber(ctx, c.id, "+442071838750")
	if err != nil {
		t.Fatal(err)
	}
	code := codeRe.FindStringSubmatch(e.lastMail("sms:+442071838750").Text)[1]
	if _, err := e.svc.VerifyCallerIDNumber(ctx, c.id, n.ID, code); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AddCallerIDNumber(ctx, c.id, "+14155550100"); err != nil { // left unverified
		t.Fatal(err)
	}
	uk := &sipdesk.CallerIDRule{Name: "UK sales", ApplyFor: sipdesk.ScopeCountry, Country: "GB", Type: sipdesk.RuleSpecific, Numbers: []string{"+442071838750"}, DisplayName: "Acme"}
	london := &sipdesk.CallerIDRule{Name: "London", ApplyFor: sipdesk.ScopePrefix, Prefix: "44207", Type: sipdesk.RuleSpecific, Numbers: []string{"+442071838750"}}
	anon := &sipdesk.CallerIDRule{Name: "Withheld", ApplyFor: sipdesk.ScopeAllCalls, Type: sipdesk.RuleBlocked}
	for _, r := range []*sipdesk.CallerIDRule{uk, london, anon} {
		if err := e.svc.SaveRule(ctx, c.id, r, actor); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.SetCallerID(ctx, c.id, c.first.Account.ID, sipdesk.CallerIDSetting{DefaultNumber: "+447700900123", DisplayName: "Acme", RuleIDs: []int64{uk.ID, london.ID}}, actor); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.OpenTicket(ctx, c.id, sipdesk.TicketChannelLimit, 30, "Campaign in May"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateAPIToken(ctx, c.id, "billing-sync", actor); err != nil {
		t.Fatal(err)
	}
	first := itoa64(c.first.Account.ID)

	t.Run("SIP Accounts page", func(t *testing.T) {
		p := b.get("/sip-accounts").must(t, 200,
			"VoIP Services", "SIP Accounts", "3</strong> of 10 used", "Add SIP account", "Increase channel limit",
			"Channel limit", "<strong>10</strong>", "Paid",
			"<th scope=\"col\">Name</th>", "Auth Type", "Username/IP", "Status", "Controls",
			"Main", "Dialer DC1", "Office PBX", sipdesk.MaskUsername(c.first.Account.Username),
			"8.8.4.4, 9.9.9.0/24", "tech prefix 1234", "cap 2 channels",
			`aria-label="Reveal username of Main"`, `aria-label="Reset password of Main"`, `aria-label="Edit Main"`,
			`aria-label="Delete Main"`, `aria-label="Launch softphone for Main"`, `href="/softphone?account=`+first+`"`,
			`data-tip="Reset password or change username"`, `data-tip="Launch softphone"`, ">JWT<", "Active")
		p.mustNot(t, c.first.Account.Username, pbx.Account.Username, pbx.Password, c.first.Password)
		// Key for password accounts only, dial for JWT accounts only.
		p.mustNot(t, `aria-label="Reset password of Dialer DC1"`, `aria-label="Launch softphone for Office PBX"`)
		if got := strings.Count(p.body, "data-tip="); got < 10 {
			t.Fatalf("only %d tooltips", got)
		}
	})
	t.Run("Add dialog", func(t *testing.T) {
		b.get("/sip-accounts/new").must(t, 200, "<dialog", `id="dlg-title">Add SIP account`, `name="name"`, `name="auth_type" value="ip"`, `name="allowed_ips"`, `name="channel_cap"`, "Add address")
	})
	t.Run("Edit dialog general", func(t *testing.T) {
		b.get("/sip-accounts/"+itoa64(ipAcc.Account.ID)+"/edit").must(t, 200, "Edit SIP account: Dialer DC1", `value="Dialer DC1"`,
			`value="8.8.4.4"`, `value="9.9.9.0/24"`, `value="1234"`, `name="active" value="1" checked`, "Switching to password authentication")
	})
	t.Run("Edit dialog JWT", func(t *testing.T) {
		p := b.get("/sip-accounts/"+first+"/edit?tab=jwt").must(t, 200, "Enable JWT authentication", `name="enabled" value="1" checked`, "Leave empty to keep the current secret", `data-generate-secret="jwt-secret"`, `data-copy="jwt-secret"`)
		p.mustNot(t, "Copy the secret now")
	})
	t.Run("Edit dialog Caller ID panel", func(t *testing.T) {
		p := b.get("/sip-accounts/"+first+"/edit?tab=callerid").must(t, 200, "Default Caller ID", `<option value="+447700900123" selected>`,
			`<option value="+442071838750"`, `value="Acme"`, "Dynamic Caller ID rules", "Create New", "Manage Rules", "All Rules", "Select All",
			`Selected: <span data-selected-count>2</span> of <span data-rule-total>3</span>`,
			"For United Kingdom use +442071838750 \"Acme\"", "For numbers starting with +44207 use +442071838750", "For all calls use Anonymous",
			"Rule simulator")
		p.mustNot(t, "not available for trial accounts", "+14155550100")
	})
	t.Run("Caller ID panel search and Selected tab without JS", func(t *testing.T) {
		p := b.get("/sip-accounts/"+first+"/edit?tab=callerid&q=Withheld").must(t, 200)
		if got := strings.Count(p.body, "<li data-rule data-search=") - len(hiddenRule.FindAllString(p.body, -1)); got != 1 {
			t.Fatalf("search Withheld shows %d rules, want 1", got)
		}
		p = b.get("/sip-accounts/"+first+"/edit?tab=callerid&rules=selected").must(t, 200)
		if got := len(hiddenRule.FindAllString(p.body, -1)); got != 1 {
			t.Fatalf("Selected tab hides %d rules, want 1 (the unselected one)", got)
		}
	})
	t.Run("Rule simulator", func(t *testing.T) {
		b.get("/sip-accounts/"+first+"/edit?tab=callerid&to=%2B442071234567").must(t, 200, "gets Caller ID <strong data-sim-number>+442071838750</strong>", "Rule “London” (longest matching prefix).")
		b.get("/sip-accounts/"+first+"/edit?tab=callerid&to=%2B33142000000").must(t, 200, "<strong data-sim-number>+447700900123</strong> “Acme”", "No selected rule matches")
		b.get("/sip-accounts/"+first+"/edit?tab=callerid&to=abc").must(t, 200, `class="field-error"`, "international format")
	})
	t.Run("Reset dialog and sent", func(t *testing.T) {
		b.get("/sip-accounts/"+first+"/reset").must(t, 200, "Reset password or change username", "Send email", c.email)
		b.post("/sip-accounts/"+first+"/reset", nil).must(t, 200, "Check your email", "Edit Credentials", "dev mailbox")
	})
	t.Run("Edit Credentials window", func(t *testing.T) {
		tok := e.resetToken(c.email)
		p := b.get("/sip-accounts/edit-credentials?token="+url.QueryEscape(tok)).must(t, 200, "<dialog", "Edit Credentials", `name="username"`,
			`name="password"`, `data-toggle-password="cred-password"`, `name="portal_password"`, "Save changes", "Office PBX", "Main")
		p.mustNot(t, c.first.Account.Username)
		// A browser that is not logged in gets the window on its own.
		e.browser().get("/sip-accounts/edit-credentials?token="+url.QueryEscape(tok)).must(t, 200, "Edit Credentials", "Save changes").mustNotChain(t, "Office PBX")
	})
	t.Run("Delete dialog", func(t *testing.T) {
		b.get("/sip-accounts/"+itoa64(pbx.Account.ID)+"/delete").must(t, 200, "Delete <strong>Office PBX</strong>?", "cannot be undone", "Delete SIP account")
	})
	t.Run("Softphone", func(t *testing.T) {
		p := b.get("/softphone?account="+first).must(t, 200, "Softphone: Main", "data-softphone", `data-ws="ws://127.0.0.1:5066"`,
			`data-aor="sip:`, `data-token="ey`, "vendor/jssip.min.js", "softphone.js", "Dial pad", "Hang up", "Mute")
		if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' ws://127.0.0.1:5066;") {
			t.Fatalf("softphone CSP: %q", csp)
		}
		req, _ := http.NewRequest("GET", e.srv.URL+"/softphone?account="+first, nil)
		req.Header.Set("Accept", "application/json")
		if j := b.do(req); j.status != 200 || !strings.Contains(j.body, `"token":"ey`) || !strings.Contains(j.body, `"expires_at"`) {
			t.Fatalf("token refresh: %d %s", j.status, j.body)
		}
	})
	t.Run("Caller ID rules", func(t *testing.T) {
		b.get("/caller-id/rules").must(t, 200, "Caller ID Rules", "UK sales", "For United Kingdom use +442071838750", "Create New", `aria-label="Delete rule London"`)
		b.get("/caller-id/rules/new").must(t, 200, "New Caller ID rule", `name="apply_for"`, `<option value="GB"`, "+442071838750").mustNotChain(t, "+14155550100</label>")
		b.get("/caller-id/rules/"+itoa64(uk.ID)+"/edit").must(t, 200, "Edit Caller ID rule", `value="UK sales"`, `<option value="GB" selected>`, `value="+442071838750" checked`)
	})
	t.Run("Verified Caller IDs", func(t *testing.T) {
		b.get("/caller-id/numbers").must(t, 200, "+447700900123", "signup phone", "+442071838750", "Verified", "+14155550100", "6-digit code", "Send code")
	})
	t.Run("Tickets", func(t *testing.T) {
		b.get("/tickets").must(t, 200, "Channel limit → 30", "Campaign in May", "Open")
		b.get("/tickets/new?kind=channel_limit").must(t, 200, `value="channel_limit" checked`, "How many do you need")
		b.get("/tickets/new?kind=sip_accounts").must(t, 200, `value="sip_accounts" checked`)
	})
	t.Run("Calls", func(t *testing.T) {
		b.get("/calls").must(t, 200, "Call Records", "No calls yet")
		b.get("/calls/live").must(t, 200, "Live Calls", "No calls in progress")
	})
	t.Run("Audit log", func(t *testing.T) {
		b.get("/audit").must(t, 200, "Audit Log", "SIP account created", "JWT settings changed", "Caller ID rule changed", "Edit Credentials email sent", "You, in the portal")
	})
	t.Run("API tokens", func(t *testing.T) {
		b.get("/api-tokens").must(t, 200, "billing-sync", "Create a token", "openapi.json")
		p := b.post("/api-tokens", url.Values{"name": {"ci"}}).must(t, 200, "Copy the token now", "sdk_")
		b.get("/api-tokens").must(t, 200, "ci").mustNotChain(t, strings.Split(strings.Split(p.body, `id="new-token">`)[1], "<")[0])
	})
	t.Run("logged-out pages", func(t *testing.T) {
		o := e.browser()
		o.get("/login").must(t, 200, "Log in", `name="email"`, `name="password"`, "Create an account")
		o.get("/signup").must(t, 200, "Create your account", `name="phone"`, `name="password_confirm"`)
		p := o.get("/sip-accounts")
		if p.status != 303 || p.location != "/login?next=%2Fsip-accounts" {
			t.Fatalf("logged out: %d %q", p.status, p.location)
		}
		o.get("/sip-accounts/edit-credentials?token=nope").must(t, 404, "This link is not valid")
	})
	t.Run("verify page", func(t *testing.T) {
		o := e.browser()
		e.signup(o, "new@acme.example", "+447700900555").
			must(t, 200, "Verify your phone", "+447700900555", "dev mailbox", `name="code"`, "We sent a 6-digit code")
		p := o.get("/sip-accounts")
		if p.status != 303 || p.location != "/verify" {
			t.Fatalf("unverified: %d %q", p.status, p.location)
		}
	})
}

var hiddenRule = regexp.MustCompile(`data-rule data-search="[^"]*" hidden>`)

func (p page) mustNotChain(t *testing.T, s ...string) page { p.mustNot(t, s...); return p }
