package ui

import (
	"context"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// TestChangePasswordPage: the current password is asked (its error next to
// its field), the other browser is logged out, this one stays.
func TestChangePasswordPage(t *testing.T) {
	e := newEnv(t)
	c := e.customer("chg@example.com", "+15551230031")
	other := e.browser()
	other.post("/login", url.Values{"email": {c.email}, "password": {portalPassword}}).must(t, 200, "SIP Accounts")
	c.b.get("/account/security").must(t, 200, "Change password", "This browser", "Log out")
	p := c.b.post("/account/password", url.Values{"current_password": {"wrong-password-1"}, "new_password": {"New-Password-22"}})
	p.must(t, 422)
	p.errorNextTo(t, "current_password", "the portal password is not right")
	c.b.post("/account/password", url.Values{"current_password": {portalPassword}, "new_password": {"New-Password-22"}}).
		must(t, 200, "Password changed. Every other session was logged out.")
	if loc := other.get("/sip-accounts").location; loc == "" || loc[:6] != "/login" {
		t.Fatalf("the other browser is still logged in (location %q)", loc)
	}
	c.b.get("/sip-accounts").must(t, 200, "SIP Accounts")
	e.browser().post("/login", url.Values{"email": {c.email}, "password": {"New-Password-22"}}).must(t, 200, "SIP Accounts")
	c.b.get("/audit").must(t, 200, "customer.password_changed", "customer.login")
}

var pwLinkRe = regexp.MustCompile(`/password/reset\?token=([A-Za-z0-9%_-]+)`)

// TestForgotPasswordPages: the email's link sets a new password once; the
// answer does not tell whether an address has an account.
func TestForgotPasswordPages(t *testing.T) {
	e := newEnv(t)
	c := e.customer("fgt@example.com", "+15551230032")
	b := e.browser()
	b.get("/login").must(t, 200, `href="/password/forgot"`)
	b.post("/password/forgot", url.Values{"email": {"nobody@example.com"}}).must(t, 200, "nobody@example.com</strong> has a sipdesk account")
	b.post("/password/forgot", url.Values{"email": {c.email}}).must(t, 200, "fgt@example.com</strong> has a sipdesk account")
	m := pwLinkRe.FindStringSubmatch(e.lastMail(c.email).Text)
	if m == nil {
		t.Fatal("no password link in the mail")
	}
	tok, _ := url.QueryUnescape(m[1])
	b.get("/password/reset?token="+url.QueryEscape(tok)).must(t, 200, "Choose a new password")
	p := b.post("/password/reset", url.Values{"token": {tok}, "password": {"short"}})
	p.must(t, 422)
	b.post("/password/reset", url.Values{"token": {tok}, "password": {"Reset-Password-33"}}).must(t, 200, "Password changed. Log in with the new password.")
	b.post("/password/reset", url.Values{"token": {tok}, "password": {"Reset-Password-44"}}).must(t, 410, "This link was already used")
	b.get("/password/reset?token=nope").must(t, 404, "This link is not valid")
	if loc := c.b.get("/sip-accounts").location; loc == "" {
		t.Fatal("the old session survived the reset")
	}
	b.post("/login", url.Values{"email": {c.email}, "password": {"Reset-Password-33"}}).must(t, 200, "SIP Accounts")
}

var secretRe = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)
var recoveryRe = regexp.MustCompile(`<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>`)

// TestTwoFactorPages: enrolment shows a QR code and the key, a code from
// the app turns it on and shows 10 recovery codes; the next login asks a
// code after the password, and a recovery code works once.
func TestTwoFactorPages(t *testing.T) {
	e := newEnv(t)
	c := e.customer("tfa@example.com", "+15551230033")
	p := c.b.post("/account/2fa/setup", nil).must(t, 200, `src="data:image/png;base64,`, "Code from the app")
	sm := secretRe.FindStringSubmatch(p.body)
	if sm == nil {
		t.Fatalf("no secret on the page:\n%s", p.body)
	}
	secret := sm[1]
	p = c.b.post("/account/2fa/confirm", url.Values{"code": {"000000"}})
	p.must(t, 422)
	p.errorNextTo(t, "code", "the code is not right")
	code, _ := totp.GenerateCode(secret, e.now)
	p = c.b.post("/account/2fa/confirm", url.Values{"code": {code}}).must(t, 200, "Save these recovery codes now")
	codes := recoveryRe.FindAllStringSubmatch(p.body, -1)
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes shown", len(codes))
	}
	c.b.get("/account/security").must(t, 200, "Recovery codes left: 10").mustNot(t, codes[0][1])

	// The password alone no longer logs in.
	b := e.browser()
	p = b.post("/login", url.Values{"email": {c.email}, "password": {portalPassword}, "next": {"/calls"}}).must(t, 200, "Two-factor authentication")
	if loc := b.get("/sip-accounts").location; loc == "" {
		t.Fatal("logged in without the code")
	}
	b.post("/login/2fa", url.Values{"code": {"123456"}, "next": {"/calls"}}).must(t, 422, "the code is not right")
	e.advance(30 * time.Second)
	code, _ = totp.GenerateCode(secret, e.now)
	b.post("/login/2fa", url.Values{"code": {code}, "next": {"/calls"}}).must(t, 200, "Call Records")

	// A recovery code, once.
	r := e.browser()
	r.post("/login", url.Values{"email": {c.email}, "password": {portalPassword}}).must(t, 200, "Two-factor authentication")
	r.post("/login/2fa", url.Values{"code": {codes[0][1]}}).must(t, 200, "SIP Accounts")
	r2 := e.browser()
	r2.post("/login", url.Values{"email": {c.email}, "password": {portalPassword}}).must(t, 200, "Two-factor authentication")
	r2.post("/login/2fa", url.Values{"code": {codes[0][1]}}).must(t, 422, "the code is not right")
	// Without the password step there is nothing to finish.
	e.browser().post("/login/2fa", url.Values{"code": {code}}).must(t, 200, "The login timed out")
	c.b.get("/audit").must(t, 200, "customer.totp_enabled", "customer.recovery_code_used", "customer.login_failed")
}

// TestRevokeSession: a customer logs another browser out from the list.
func TestRevokeSession(t *testing.T) {
	e := newEnv(t)
	c := e.customer("rev@example.com", "+15551230034")
	other := e.browser()
	other.post("/login", url.Values{"email": {c.email}, "password": {portalPassword}}).must(t, 200, "SIP Accounts")
	p := c.b.get("/account/security").must(t, 200)
	m := regexp.MustCompile(`/account/sessions/(\d+)/revoke`).FindAllStringSubmatch(p.body, -1)
	if len(m) != 1 {
		t.Fatalf("%d revoke buttons, want 1 (not for this browser)", len(m))
	}
	c.b.post("/account/sessions/"+m[0][1]+"/revoke", nil).must(t, 200, "Session logged out.")
	if loc := other.get("/sip-accounts").location; loc == "" {
		t.Fatal("the revoked browser is still logged in")
	}
	c.b.get("/sip-accounts").must(t, 200, "SIP Accounts")
	// Another customer's session id: nothing happens to it.
	d := e.customer("rev2@example.com", "+15551230035")
	ds, _ := e.svc.Sessions(context.Background(), d.id)
	c.b.post("/account/sessions/"+itoa64(ds[0].ID)+"/revoke", nil).must(t, 404)
	d.b.get("/sip-accounts").must(t, 200, "SIP Accounts")
}
