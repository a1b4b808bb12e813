package ui

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// TestPasskeyPages: the Security page offers passkeys through the
// same-origin script (the CSP keeps no inline script); a ceremony starts
// with JSON options for the portal's host; a passkey without a name or an
// answer is refused next to the name field; the login page offers
// "Sign in with a passkey"; the Edit Credentials link's begin wants a
// valid token. (The ceremonies themselves: internal/app/passkey_test.go
// with a software authenticator, e2e/passkeys.mjs in Chromium.)
func TestPasskeyPages(t *testing.T) {
	e := newEnv(t)
	c := e.customer("pk@example.com", "+15551230041")
	p := c.b.get("/account/security").must(t, 200, "Passkeys", "No passkeys yet.", `data-passkey="create"`, `src="/static/passkey.js?v=`, `for="passkey-name"`)
	csp := p.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'nonce-") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("CSP: %s", csp)
	}
	if strings.Contains(p.body, "<script>") || strings.Contains(p.body, "onclick=") {
		t.Fatal("inline script on the Security page")
	}
	begin := c.b.post("/account/passkeys/begin", url.Values{}).must(t, 200)
	var o struct {
		Options struct {
			PublicKey struct {
				Challenge string `json:"challenge"`
				RP        struct {
					ID string `json:"id"`
				} `json:"rp"`
				AuthenticatorSelection struct {
					ResidentKey string `json:"residentKey"`
				} `json:"authenticatorSelection"`
			} `json:"publicKey"`
		} `json:"options"`
		Ceremony string `json:"ceremony"`
	}
	if err := json.Unmarshal([]byte(begin.body), &o); err != nil {
		t.Fatalf("%v: %s", err, begin.body)
	}
	if o.Options.PublicKey.RP.ID != "portal.test" || len(o.Options.PublicKey.Challenge) < 20 || o.Ceremony == "" ||
		o.Options.PublicKey.AuthenticatorSelection.ResidentKey != "required" {
		t.Fatalf("options: %s", begin.body)
	}
	c.b.post("/account/passkeys", url.Values{"name": {""}, "passkey_ceremony": {o.Ceremony}}).must(t, 422).
		errorNextTo(t, "name", "give the passkey a name")
	c.b.post("/account/passkeys", url.Values{"name": {"Laptop"}, "passkey_ceremony": {o.Ceremony}}).must(t, 422).
		errorNextTo(t, "name", "the browser did not create a passkey")
	c.b.post("/account/passkeys", url.Values{"name": {"Laptop"}, "passkey_ceremony": {o.Ceremony}, "passkey_response": {`{"id":"x"}`}}).must(t, 422).
		errorNextTo(t, "name", "could not be read")
	// Removing one that is not there (or another customer's): 404.
	c.b.post("/account/passkeys/99/delete", url.Values{"password": {portalPassword}}).must(t, 404)

	out := e.browser()
	out.get("/login").must(t, 200, "Sign in with a passkey", `action="/login/passkey"`)
	lb := out.post("/login/passkey/begin", url.Values{}).must(t, 200, `"ceremony"`, `"userVerification":"required"`)
	if strings.Contains(lb.body, "allowCredentials") {
		t.Fatalf("a passwordless login names credentials: %s", lb.body)
	}
	out.post("/login/passkey/begin?step=2fa", url.Values{}).must(t, 403, "The login timed out")
	out.post("/login/passkey", url.Values{"passkey_ceremony": {"forged.token"}, "passkey_response": {`{}`}}).must(t, 422, "timed out or was already used")
	out.post("/sip-accounts/edit-credentials/passkey", url.Values{"token": {"nope"}}).must(t, 404, "This link is not valid")
}
