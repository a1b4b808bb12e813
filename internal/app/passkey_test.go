package app_test

import (
	"context"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

// addPasskey registers k for the customer through the service.
func addPasskey(t *testing.T, f *fixture, id int64, k *softKey, name string) *sipdesk.Passkey {
	t.Helper()
	o, err := f.svc.BeginPasskeyRegistration(f.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := f.svc.FinishPasskeyRegistration(f.ctx, id, name, k.create(o), app.CustomerActor(id, "portal"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPasskeyRegisterAndLogin: a passkey is added with its name, asked
// after the password, logs in on its own, and is removed with the
// password; every step is audited in words.
func TestPasskeyRegisterAndLogin(t *testing.T) {
	f := newFixture(t, app.Options{})
	c, _, _ := f.svc.CreateVerifiedCustomer(f.ctx, "pk@example.com", secPass, "+15551230031")
	k := newSoftKey(t)
	o, err := f.svc.BeginPasskeyRegistration(f.ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.FinishPasskeyRegistration(f.ctx, c.ID, "  ", k.create(o), app.ActorSystem); sipdesk.ErrorField(err) != "name" {
		t.Fatalf("no name: %v", err)
	}
	p := addPasskey(t, f, c.ID, k, "Work laptop")
	if p.Name != "Work laptop" || p.SignCount != 0 || !slices.Equal(p.Transports, []string{"internal"}) {
		t.Fatalf("stored: %+v", p)
	}
	// The second factor now: the password alone gives a pending login.
	res, err := f.svc.LoginDevice(f.ctx, "pk@example.com", secPass, "")
	if err != nil || res.Pending == "" || res.Customer != nil {
		t.Fatalf("password step: %+v %v", res, err)
	}
	if _, err := f.svc.LoginSecondFactor(f.ctx, res.Pending, "123456"); sipdesk.ErrorCode(err) != sipdesk.EUnauthorized {
		t.Fatalf("a code without an authenticator app: %v", err)
	}
	o, err = f.svc.BeginPasskeyLogin(f.ctx, res.Pending)
	if err != nil {
		t.Fatal(err)
	}
	ans := k.get(o)
	got, err := f.svc.LoginPasskey(f.ctx, res.Pending, ans)
	if err != nil || got.Customer.ID != c.ID {
		t.Fatalf("passkey step: %+v %v", got, err)
	}
	// The same answer again: the challenge is spent.
	if _, err := f.svc.LoginPasskey(f.ctx, res.Pending, ans); sipdesk.ErrorCode(err) != sipdesk.EForbidden {
		t.Fatalf("replayed answer: %v", err)
	}
	// Passwordless.
	o, err = f.svc.BeginPasskeyLogin(f.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.svc.LoginPasskey(f.ctx, "", k.get(o)); err != nil || got.Customer.ID != c.ID {
		t.Fatalf("passwordless: %+v %v", got, err)
	}
	// A second-step ceremony cannot finish a passwordless login.
	o, _ = f.svc.BeginPasskeyLogin(f.ctx, res.Pending)
	if _, err := f.svc.LoginPasskey(f.ctx, "", k.get(o)); sipdesk.ErrorCode(err) != sipdesk.EForbidden {
		t.Fatalf("a second-step ceremony passwordless: %v", err)
	}
	ps, _ := f.svc.Passkeys(f.ctx, c.ID)
	if len(ps) != 1 || ps[0].SignCount != 2 || ps[0].LastUsedAt.IsZero() {
		t.Fatalf("after use: %+v", ps[0])
	}
	if err := f.svc.DeletePasskey(f.ctx, c.ID, p.ID, "wrong-password-1", app.ActorSystem); sipdesk.ErrorField(err) != "password" {
		t.Fatalf("remove with a wrong password: %v", err)
	}
	if err := f.svc.DeletePasskey(f.ctx, c.ID, p.ID, secPass, app.CustomerActor(c.ID, "portal")); err != nil {
		t.Fatal(err)
	}
	if r, err := f.svc.LoginDevice(f.ctx, "pk@example.com", secPass, ""); err != nil || r.Customer == nil {
		t.Fatalf("without passkeys the password logs in: %+v %v", r, err)
	}
	es, _ := f.svc.Audit(f.ctx, c.ID, 100)
	var details []string
	for _, e := range es {
		details = append(details, e.Action+": "+e.Detail)
	}
	all := strings.Join(details, "\n")
	for _, want := range []string{"customer.passkey_added: passkey “Work laptop” added", "customer.passkey_used: logged in with the password and the passkey “Work laptop”",
		"customer.passkey_used: logged in with the passkey “Work laptop”", "customer.passkey_removed: passkey “Work laptop” removed"} {
		if !strings.Contains(all, want) {
			t.Errorf("audit lacks %q:\n%s", want, all)
		}
	}
}

// TestPasskeyRefusals: a counter that goes back (a cloned key), another
// origin, another customer's passkey, an expired or forged ceremony.
func TestPasskeyRefusals(t *testing.T) {
	f := newFixture(t, app.Options{})
	c, _, _ := f.svc.CreateVerifiedCustomer(f.ctx, "pr@example.com", secPass, "+15551230032")
	d, _, _ := f.svc.CreateVerifiedCustomer(f.ctx, "pd@example.com", secPass, "+15551230033")
	k := newSoftKey(t)
	addPasskey(t, f, c.ID, k, "Key")
	kd := newSoftKey(t)
	addPasskey(t, f, d.ID, kd, "D's key")
	login := func(k *softKey) error {
		o, err := f.svc.BeginPasskeyLogin(f.ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.LoginPasskey(f.ctx, "", k.get(o))
		return err
	}
	k.count = 10
	if err := login(k); err != nil {
		t.Fatal(err)
	}
	k.count = 5 // the next answer signs 6 < 11
	if err := login(k); sipdesk.ErrorCode(err) != sipdesk.EUnauthorized {
		t.Fatalf("counter went back: %v", err)
	}
	k.count = 20
	k.origin = "http://evil.test"
	if err := login(k); sipdesk.ErrorCode(err) != sipdesk.EUnauthorized {
		t.Fatalf("another origin: %v", err)
	}
	k.origin = "http://portal.test"
	// D's passkey for C's second step.
	res, _ := f.svc.LoginDevice(f.ctx, "pr@example.com", secPass, "")
	o, _ := f.svc.BeginPasskeyLogin(f.ctx, res.Pending)
	if _, err := f.svc.LoginPasskey(f.ctx, res.Pending, kd.get(o)); sipdesk.ErrorCode(err) != sipdesk.EUnauthorized {
		t.Fatalf("another customer's passkey: %v", err)
	}
	// A forged ceremony token, and one past its 5 minutes.
	o, _ = f.svc.BeginPasskeyLogin(f.ctx, "")
	a := k.get(o)
	a.Ceremony = strings.Replace(a.Ceremony, ".", ".x", 1)
	if _, err := f.svc.LoginPasskey(f.ctx, "", a); sipdesk.ErrorCode(err) != sipdesk.EForbidden {
		t.Fatalf("forged ceremony: %v", err)
	}
	o, _ = f.svc.BeginPasskeyLogin(f.ctx, "")
	f.now = f.now.Add(app.TwoFactorTTL + time.Second)
	if _, err := f.svc.LoginPasskey(f.ctx, "", k.get(o)); sipdesk.ErrorCode(err) != sipdesk.EForbidden {
		t.Fatalf("expired ceremony: %v", err)
	}
	// The failures are in the customer's audit log.
	es, _ := f.svc.Audit(f.ctx, c.ID, 100)
	n := 0
	for _, e := range es {
		if e.Action == sipdesk.AuditLoginFailed && strings.Contains(e.Detail, "passkey “Key” refused") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d refused passkey logins audited, want 2", n)
	}
}

// TestCredentialChangeAsksSecondFactor: with a passkey, Edit Credentials
// wants it (or a code) after the portal password.
func TestCredentialChangeAsksSecondFactor(t *testing.T) {
	f := newFixture(t, app.Options{})
	c, na, err := f.svc.CreateVerifiedCustomer(f.ctx, "cc@example.com", secPass, "+15551230034")
	if err != nil {
		t.Fatal(err)
	}
	k := newSoftKey(t)
	addPasskey(t, f, c.ID, k, "Key")
	if err := f.svc.SendCredentialReset(f.ctx, c.ID, na.Account.ID, app.ActorSystem); err != nil {
		t.Fatal(err)
	}
	token := resetTokenOf(t, f)
	_, err = f.svc.CompleteCredentialReset(f.ctx, token, "", "New-Sip-Pass-99", app.Reauth{Password: secPass})
	if sipdesk.ErrorField(err) != "code" || !strings.Contains(sipdesk.ErrorMessage(err), "passkey") {
		t.Fatalf("no second factor: %v", err)
	}
	if _, err := f.svc.CompleteCredentialReset(f.ctx, token, "", "New-Sip-Pass-99", app.Reauth{Password: secPass, Code: "123456"}); sipdesk.ErrorField(err) != "code" {
		t.Fatalf("a code without an app: %v", err)
	}
	o, err := f.svc.BeginPasskeyConfirm(f.ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CompleteCredentialReset(f.ctx, token, "", "New-Sip-Pass-99", app.Reauth{Password: secPass, Passkey: k.get(o)}); err != nil {
		t.Fatalf("with the passkey: %v", err)
	}
	es, _ := f.svc.Audit(f.ctx, c.ID, 10)
	if !slices.ContainsFunc(es, func(e *sipdesk.AuditEntry) bool {
		return e.Action == sipdesk.AuditPasskeyUsed && e.Detail == "confirmed a SIP credential change with the passkey “Key”"
	}) {
		t.Fatalf("the passkey's use is not audited: %+v", es)
	}
	// A login ceremony cannot confirm a change.
	if err := f.svc.SendCredentialReset(f.ctx, c.ID, na.Account.ID, app.ActorSystem); err != nil {
		t.Fatal(err)
	}
	token = resetTokenOf(t, f)
	o, _ = f.svc.BeginPasskeyLogin(f.ctx, "")
	if _, err := f.svc.CompleteCredentialReset(f.ctx, token, "", "New-Sip-Pass-98", app.Reauth{Password: secPass, Passkey: k.get(o)}); sipdesk.ErrorCode(err) != sipdesk.EForbidden {
		t.Fatalf("a login ceremony: %v", err)
	}
	// The limit holds across password and second-factor failures: 5.
	for range 5 {
		f.svc.CompleteCredentialReset(f.ctx, token, "", "New-Sip-Pass-98", app.Reauth{Password: secPass, Code: "000000"})
	}
	if _, err := f.svc.CompleteCredentialReset(f.ctx, token, "", "New-Sip-Pass-98", app.Reauth{Password: secPass, Passkey: k.get(mustConfirm(t, f, c.ID))}); sipdesk.ErrorCode(err) != sipdesk.ERateLimited {
		t.Fatalf("6th attempt: %v", err)
	}
}

func mustConfirm(t *testing.T, f *fixture, id int64) *app.PasskeyOptions {
	o, err := f.svc.BeginPasskeyConfirm(f.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestPasskeysNeedAHostName: on an IP address the portal offers none.
func TestPasskeysNeedAHostName(t *testing.T) {
	f := newFixture(t, app.Options{})
	if !f.svc.PasskeysAvailable() {
		t.Fatal("http://portal.test has passkeys")
	}
	svc := app.New(f.st, app.Options{BaseURL: "http://127.0.0.1:8080"})
	if svc.PasskeysAvailable() {
		t.Fatal("an IP address has passkeys")
	}
	if _, err := svc.BeginPasskeyLogin(context.Background(), ""); sipdesk.ErrorCode(err) != sipdesk.EUnavailable {
		t.Fatalf("begin on an IP: %v", err)
	}
}

func resetTokenOf(t *testing.T, f *fixture) string {
	t.Helper()
	link := regexp.MustCompile(`edit-credentials\?token=(\S+)`).FindStringSubmatch(lastMail(t, f).Text)
	if link == nil {
		t.Fatal("no Edit Credentials link")
	}
	tok, err := url.QueryUnescape(link[1])
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestCredentialChangeWithTOTP: with the authenticator app, Edit
// Credentials wants a code from it or a recovery code; a code works once.
func TestCredentialChangeWithTOTP(t *testing.T) {
	f := newFixture(t, app.Options{})
	c, na, err := f.svc.CreateVerifiedCustomer(f.ctx, "ct@example.com", secPass, "+15551230035")
	if err != nil {
		t.Fatal(err)
	}
	setup, err := f.svc.StartTOTP(f.ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	code, _ := totp.GenerateCode(setup.Secret, f.now)
	recovery, err := f.svc.ConfirmTOTP(f.ctx, c.ID, code, app.ActorSystem)
	if err != nil {
		t.Fatal(err)
	}
	change := func(r app.Reauth) error {
		t.Helper()
		if err := f.svc.SendCredentialReset(f.ctx, c.ID, na.Account.ID, app.ActorSystem); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.CompleteCredentialReset(f.ctx, resetTokenOf(t, f), "", "New-Sip-Pass-99", r)
		return err
	}
	if err := change(app.Reauth{Password: secPass}); sipdesk.ErrorField(err) != "code" || !strings.Contains(sipdesk.ErrorMessage(err), "authenticator app") {
		t.Fatalf("no code: %v", err)
	}
	if err := change(app.Reauth{Password: secPass, Code: "000000"}); sipdesk.ErrorField(err) != "code" {
		t.Fatalf("wrong code: %v", err)
	}
	f.now = f.now.Add(30 * time.Second) // the enrolment used this step's code
	code, _ = totp.GenerateCode(setup.Secret, f.now)
	if err := change(app.Reauth{Password: secPass, Code: code}); err != nil {
		t.Fatalf("the app's code: %v", err)
	}
	if err := change(app.Reauth{Password: secPass, Code: code}); sipdesk.ErrorField(err) != "code" {
		t.Fatalf("the same code again: %v", err)
	}
	if err := change(app.Reauth{Password: secPass, Code: recovery[3]}); err != nil {
		t.Fatalf("a recovery code: %v", err)
	}
	if st, _ := f.svc.TwoFactorStatus(f.ctx, c.ID); st.RecoveryCodes != app.RecoveryCodeCount-1 {
		t.Fatalf("recovery codes left: %d", st.RecoveryCodes)
	}
}

// TestPasskeyOnlyRecoveryCodes: a customer whose only second factor is a
// passkey gets recovery codes with the first one; a code logs in and
// confirms a credential change once; turning the app off keeps them while
// a passkey is left, and removing the last second factor drops them.
func TestPasskeyOnlyRecoveryCodes(t *testing.T) {
	f := newFixture(t, app.Options{})
	c, na, err := f.svc.CreateVerifiedCustomer(f.ctx, "rc@example.com", secPass, "+15551230037")
	if err != nil {
		t.Fatal(err)
	}
	k := newSoftKey(t)
	o, err := f.svc.BeginPasskeyRegistration(f.ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	p, codes, err := f.svc.FinishPasskeyRegistration(f.ctx, c.ID, "Phone", k.create(o), app.CustomerActor(c.ID, "portal"))
	if err != nil || len(codes) != app.RecoveryCodeCount {
		t.Fatalf("first passkey: %d codes, %v", len(codes), err)
	}
	st, _ := f.svc.TwoFactorStatus(f.ctx, c.ID)
	if st.Enabled || st.Passkeys != 1 || st.RecoveryCodes != app.RecoveryCodeCount {
		t.Fatalf("status: %+v", st)
	}
	// A second passkey brings no new codes (the first ones still work).
	o, _ = f.svc.BeginPasskeyRegistration(f.ctx, c.ID)
	k2 := newSoftKey(t)
	if _, again, err := f.svc.FinishPasskeyRegistration(f.ctx, c.ID, "Laptop", k2.create(o), app.ActorSystem); err != nil || again != nil {
		t.Fatalf("second passkey: %v %v", again, err)
	}

	// The second login step takes a recovery code, once.
	res, err := f.svc.LoginDevice(f.ctx, "rc@example.com", secPass, "")
	if err != nil || res.Pending == "" {
		t.Fatalf("password step: %+v %v", res, err)
	}
	if ask, err := f.svc.PendingSecondFactors(f.ctx, res.Pending); err != nil || ask.Enabled || ask.Passkeys != 2 || ask.RecoveryCodes != app.RecoveryCodeCount {
		t.Fatalf("what the second step asks: %+v %v", ask, err)
	}
	if got, err := f.svc.LoginSecondFactor(f.ctx, res.Pending, strings.ToUpper(codes[0])); err != nil || got.Customer.ID != c.ID {
		t.Fatalf("recovery code: %+v %v", got, err)
	}
	if _, err := f.svc.LoginSecondFactor(f.ctx, res.Pending, codes[0]); sipdesk.ErrorCode(err) != sipdesk.EUnauthorized {
		t.Fatalf("the same code twice: %v", err)
	}

	// A credential change through the API's code field, with a recovery code.
	if err := f.svc.SendCredentialReset(f.ctx, c.ID, na.Account.ID, app.ActorSystem); err != nil {
		t.Fatal(err)
	}
	token := resetTokenOf(t, f)
	_, err = f.svc.CompleteCredentialReset(f.ctx, token, "", "New-Sip-Pass-97", app.Reauth{Password: secPass})
	if sipdesk.ErrorField(err) != "code" || !strings.Contains(sipdesk.ErrorMessage(err), "recovery code") {
		t.Fatalf("no second factor: %v", err)
	}
	if _, err := f.svc.CompleteCredentialReset(f.ctx, token, "", "New-Sip-Pass-97", app.Reauth{Password: secPass, Code: "123456"}); sipdesk.ErrorField(err) != "code" {
		t.Fatalf("a made-up code: %v", err)
	}
	if _, err := f.svc.CompleteCredentialReset(f.ctx, token, "", "New-Sip-Pass-97", app.Reauth{Password: secPass, Code: codes[1]}); err != nil {
		t.Fatalf("with a recovery code: %v", err)
	}

	// The app on, then off: the codes it made stay while passkeys remain.
	setup, err := f.svc.StartTOTP(f.ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	now, _ := totp.GenerateCode(setup.Secret, time.Now())
	appCodes, err := f.svc.ConfirmTOTP(f.ctx, c.ID, now, app.ActorSystem)
	if err != nil || len(appCodes) != app.RecoveryCodeCount {
		t.Fatalf("the app: %d codes, %v", len(appCodes), err)
	}
	if err := f.svc.DisableTOTP(f.ctx, c.ID, secPass, app.ActorSystem); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.svc.TwoFactorStatus(f.ctx, c.ID); st.RecoveryCodes != app.RecoveryCodeCount {
		t.Fatalf("after the app is off, with passkeys: %+v", st)
	}
	// Removing the passkeys: codes go with the last one.
	ps, _ := f.svc.Passkeys(f.ctx, c.ID)
	if len(ps) != 2 || (ps[0].ID != p.ID && ps[1].ID != p.ID) {
		t.Fatalf("passkeys: %+v", ps)
	}
	for i, q := range ps {
		if err := f.svc.DeletePasskey(f.ctx, c.ID, q.ID, secPass, app.ActorSystem); err != nil {
			t.Fatal(err)
		}
		if st, _ := f.svc.TwoFactorStatus(f.ctx, c.ID); i == 0 && st.RecoveryCodes == 0 {
			t.Fatalf("codes dropped while a passkey is left: %+v", st)
		}
	}
	if st, _ := f.svc.TwoFactorStatus(f.ctx, c.ID); st.Passkeys != 0 || st.RecoveryCodes != 0 {
		t.Fatalf("no second factor left: %+v", st)
	}
	r, err := f.svc.LoginDevice(f.ctx, "rc@example.com", secPass, "")
	if err != nil || r.Customer == nil {
		t.Fatalf("the password alone logs in again: %+v %v", r, err)
	}
}
