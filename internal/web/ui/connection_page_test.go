package ui

import (
	"context"
	"net/url"
	"testing"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

// TestConnectionPage: linked from the SIP Accounts row and the welcome
// page; a password account's page shows the server, the masked username
// with the reveal and the snippets without secrets; an IP account's its
// addresses, tech prefix and dialing format; another customer's: 404.
func TestConnectionPage(t *testing.T) {
	e := newEnv(t)
	c := e.customer("cnp@example.com", "+15551230061")
	id := itoa64(c.first.Account.ID)
	c.b.get("/sip-accounts").must(t, 200, `href="/sip-accounts/`+id+`/connection"`)
	p := c.b.get("/sip-accounts/"+id+"/connection").must(t, 200, "Connection details", "sipdesk.local", "Registration interval",
		sipdesk.MaskUsername(c.first.Account.Username), `action="/sip-accounts/`+id+`/reveal"`, "Asterisk (pjsip.conf)", "FreeSWITCH (gateway XML)",
		"YOUR_SIP_PASSWORD")
	p.mustNot(t, c.first.Account.Username, c.first.Password)
	e.topUp(c)
	ip, err := e.svc.CreateSIPAccount(context.Background(), c.id, app.SIPAccountInput{Name: "Office PBX", AuthType: sipdesk.AuthIP,
		AllowedIPs: []string{"8.8.4.4"}, TechPrefix: "4321"}, app.ActorOperator)
	if err != nil {
		t.Fatal(err)
	}
	c.b.get("/sip-accounts/"+itoa64(ip.Account.ID)+"/connection").must(t, 200, "8.8.4.4/32", "4321", "sip:4321<number in E.164 without +>@",
		"Dial(PJSIP/4321${EXTEN}@sipdesk)").mustNot(t, "YOUR_SIP_PASSWORD")
	d := e.customer("cnp2@example.com", "+15551230062")
	d.b.get("/sip-accounts/"+id+"/connection").must(t, 404)
	// Shown after signup: the welcome page links it.
	b := e.browser()
	e.signup(b, "cnp3@example.com", "+15551230063").must(t, 200, "Verify your phone")
	code := codeRe.FindStringSubmatch(e.lastMail("sms:+15551230063").Text)[1]
	b.post("/verify", url.Values{"code": {code}}).must(t, 200, "Your trial is ready", "/connection\">Connection details")
}
