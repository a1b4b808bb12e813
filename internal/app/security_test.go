package app_test

import (
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

const secPass = "Portal-Pass-123"

func auditActions(t *testing.T, f *fixture, id int64) []string {
	t.Helper()
	es, err := f.svc.Audit(f.ctx, id, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Action)
	}
	return out
}

// TestChangePassword: the current password is asked, the other sessions
// end, this one stays, the new password logs in.
func TestChangePassword(t *testing.T) {
	f := newFixture(t, app.Options{})
	c, _, _ := f.svc.CreateVerifiedCustomer(f.ctx, "cp@example.com", secPass, "+15551230021")
	mine, _ := f.svc.CreateSessionFor(f.ctx, c.ID, "Firefox")
	other, _ := f.svc.CreateSessionFor(f.ctx, c.ID, "Chrome")
	actor := app.CustomerActor(c.ID, "portal")
	if err := f.svc.ChangePassword(f.ctx, c.ID, mine, "wrong-pass-1234", "New-Pass-45678", actor); sipdesk.ErrorField(err) != "current_password" {
		t.Fatalf("wrong current password: %v", err)
	}
	if err := f.svc.ChangePassword(f.ctx, c.ID, mine, secPass, "short", actor); sipdesk.ErrorField(err) != "new_password" {
		t.Fatalf("weak new password: %v", err)
	}
	if err := f.svc.ChangePassword(f.ctx, c.ID, mine, secPass, "New-Pass-45678", actor); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SessionCustomer(f.ctx, mine); err != nil {
		t.Fatalf("this session ended: %v", err)
	}
	if _, err := f.svc.SessionCustomer(f.ctx, other); err == nil {
		t.Fatal("the other session is still alive")
	}
	if _, err := f.svc.Login(f.ctx, "cp@example.com", secPass); sipdesk.ErrorCode(err) != sipdesk.EUnauthorized {
		t.Fatalf("old password: %v", err)
	}
	if _, err := f.svc.Login(f.ctx, "cp@example.com", "New-Pass-45678"); err != nil {
		t.Fatalf("new password: %v", err)
	}
	got := auditActions(t, f, c.ID)
	for _, want := range []string{sipdesk.AuditPasswordChanged, sipdesk.AuditLogin, sipdesk.AuditLoginFailed} {
		if !slices.Contains(got, want) {
			t.Errorf("audit has no %s: %v", want, got)
		}
	}
}

var resetLink = regexp.MustCompile(`/password/reset\?token=([A-Za-z0-9_%.-]+)`)

func lastResetToken(t *testing.T, f *fixture) string {
	t.Helper()
	ms, err := f.svc.Mails(f.ctx, 1)
	if err != nil || len(ms) == 0 {
		t.Fatalf("no mail: %v", err)
	}
	m := resetLink.FindStringSubmatch(ms[0].Text)
	if m == nil {
		t.Fatalf("no reset link in %q", ms[0].Text)
	}
	return m[1]
}

// TestForgotPassword: the link works once, for 30 minutes, ends every
// session; unknown addresses get the same answer and no mail; requests
// are limited per address.
func TestForgotPassword(t *testing.T) {
	f := newFixture(t, app.Options{})
	c, _, _ := f.svc.CreateVerifiedCustomer(f.ctx, "fp@example.com", secPass, "+15551230022")
	sess, _ := f.svc.CreateSession(f.ctx, c.ID)
	before, _ := f.svc.Mails(f.ctx, 100)
	if err := f.svc.RequestPasswordReset(f.ctx, "nobody@example.com"); err != nil {
		t.Fatalf("unknown address: %v", err)
	}
	if after, _ := f.svc.Mails(f.ctx, 100); len(after) != len(before) {
		t.Fatal("a mail was sent to an unknown address")
	}
	if err := f.svc.RequestPasswordReset(f.ctx, "FP@example.com"); err != nil {
		t.Fatal(err)
	}
	tok := lastResetToken(t, f)
	if err := f.svc.CompletePasswordReset(f.ctx, tok, "short"); sipdesk.ErrorField(err) != "password" {
		t.Fatalf("weak password: %v", err)
	}
	if err := f.svc.CompletePasswordReset(f.ctx, tok, "Reset-Pass-9876"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.CompletePasswordReset(f.ctx, tok, "Again-Pass-9876"); sipdesk.ErrorCode(err) != sipdesk.EConflict {
		t.Fatalf("second use: %v", err)
	}
	if _, err := f.svc.SessionCustomer(f.ctx, sess); err == nil {
		t.Fatal("session alive after a password reset")
	}
	if _, err := f.svc.Login(f.ctx, "fp@example.com", "Reset-Pass-9876"); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
	// Expired after 30 minutes.
	if err := f.svc.RequestPasswordReset(f.ctx, "fp@example.com"); err != nil {
		t.Fatal(err)
	}
	tok = lastResetToken(t, f)
	f.now = f.now.Add(app.PasswordResetTTL + time.Second)
	if err := f.svc.CompletePasswordReset(f.ctx, tok, "Late-Pass-98765"); sipdesk.ErrorCode(err) != sipdesk.EForbidden {
		t.Fatalf("expired link: %v", err)
	}
	// Three requests per address and window.
	f.now = f.now.Add(time.Hour)
	for i := range 4 {
		err := f.svc.RequestPasswordReset(f.ctx, "fp@example.com")
		if i < 3 && err != nil || i == 3 && sipdesk.ErrorCode(err) != sipdesk.ERateLimited {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
}

// TestTOTPLogin: enrolment with a code from the app, then the password
// alone no longer logs in, the code does (once), a recovery code does
// (once), wrong codes are limited.
func TestTOTPLogin(t *testing.T) {
	f := newFixture(t, app.Options{})
	c, _, _ := f.svc.CreateVerifiedCustomer(f.ctx, "tf@example.com", secPass, "+15551230023")
	actor := app.CustomerActor(c.ID, "portal")
	setup, err := f.svc.StartTOTP(f.ctx, c.ID)
	if err != nil || setup.Secret == "" || len(setup.QR) < 100 {
		t.Fatalf("start: %+v %v", setup, err)
	}
	again, _ := f.svc.StartTOTP(f.ctx, c.ID)
	if again.Secret != setup.Secret {
		t.Fatal("a reload changed the pending secret")
	}
	if _, err := f.svc.ConfirmTOTP(f.ctx, c.ID, "000000", actor); sipdesk.ErrorField(err) != "code" {
		t.Fatalf("wrong code: %v", err)
	}
	code, _ := totp.GenerateCode(setup.Secret, f.now)
	codes, err := f.svc.ConfirmTOTP(f.ctx, c.ID, code, actor)
	if err != nil || len(codes) != app.RecoveryCodeCount {
		t.Fatalf("confirm: %v %v", codes, err)
	}
	if st, _ := f.svc.TwoFactorStatus(f.ctx, c.ID); !st.Enabled || st.RecoveryCodes != 10 {
		t.Fatalf("status: %+v", st)
	}
	login := func() string {
		t.Helper()
		r, err := f.svc.LoginDevice(f.ctx, "tf@example.com", secPass, "")
		if err != nil || r.Customer != nil || r.Pending == "" {
			t.Fatalf("password step: %+v %v", r, err)
		}
		return r.Pending
	}
	// The enrolment's code was used: the same step does not log in.
	if _, err := f.svc.LoginSecondFactor(f.ctx, login(), code); err == nil {
		t.Fatal("the enrolment code logged in")
	}
	f.now = f.now.Add(30 * time.Second)
	code, _ = totp.GenerateCode(setup.Secret, f.now)
	r, err := f.svc.LoginSecondFactor(f.ctx, login(), code)
	if err != nil || r.Customer == nil || r.Customer.ID != c.ID {
		t.Fatalf("code login: %+v %v", r, err)
	}
	if _, err := f.svc.LoginSecondFactor(f.ctx, login(), code); sipdesk.ErrorCode(err) != sipdesk.EConflict {
		t.Fatalf("replayed code: %v", err)
	}
	if _, err := f.svc.LoginSecondFactor(f.ctx, login(), codes[3]); err != nil {
		t.Fatalf("recovery code: %v", err)
	}
	if _, err := f.svc.LoginSecondFactor(f.ctx, login(), codes[3]); sipdesk.ErrorField(err) != "code" {
		t.Fatalf("recovery code used twice: %v", err)
	}
	if st, _ := f.svc.TwoFactorStatus(f.ctx, c.ID); st.RecoveryCodes != 9 {
		t.Fatalf("codes left: %+v", st)
	}
	// A forged or stale pending token.
	if _, err := f.svc.LoginSecondFactor(f.ctx, "x"+login(), code); sipdesk.ErrorCode(err) != sipdesk.EForbidden {
		t.Fatalf("forged pending: %v", err)
	}
	p := login()
	f.now = f.now.Add(app.TwoFactorTTL + time.Second)
	if _, err := f.svc.LoginSecondFactor(f.ctx, p, code); sipdesk.ErrorCode(err) != sipdesk.EForbidden {
		t.Fatalf("stale pending: %v", err)
	}
	// Wrong codes: 5 per window (one was spent above), then locked.
	p = login()
	var last error
	for range 6 {
		_, last = f.svc.LoginSecondFactor(f.ctx, p, "123456")
	}
	if sipdesk.ErrorCode(last) != sipdesk.ERateLimited {
		t.Fatalf("wrong codes not limited: %v", last)
	}
	// Off again, with the password.
	if err := f.svc.DisableTOTP(f.ctx, c.ID, "nope-nope-nope", actor); sipdesk.ErrorField(err) != "password" {
		t.Fatalf("disable with a wrong password: %v", err)
	}
	if err := f.svc.DisableTOTP(f.ctx, c.ID, secPass, actor); err != nil {
		t.Fatal(err)
	}
	if r, err := f.svc.LoginDevice(f.ctx, "tf@example.com", secPass, ""); err != nil || r.Customer == nil {
		t.Fatalf("login after disabling: %+v %v", r, err)
	}
	got := auditActions(t, f, c.ID)
	for _, want := range []string{sipdesk.AuditTOTPEnabled, sipdesk.AuditTOTPDisabled, sipdesk.AuditRecoveryUsed, sipdesk.AuditLogin, sipdesk.AuditLoginFailed} {
		if !slices.Contains(got, want) {
			t.Errorf("audit has no %s: %v", want, got)
		}
	}
}

// TestSessionList: the customer's live sessions with their browser, and
// revoking one ends it (another customer's cannot be revoked).
func TestSessionList(t *testing.T) {
	f := newFixture(t, app.Options{})
	c, _, _ := f.svc.CreateVerifiedCustomer(f.ctx, "sl@example.com", secPass, "+15551230024")
	d, _, _ := f.svc.CreateVerifiedCustomer(f.ctx, "sl2@example.com", secPass, "+15551230025")
	a, _ := f.svc.CreateSessionFor(f.ctx, c.ID, "Mozilla/5.0 Firefox")
	b, _ := f.svc.CreateSessionFor(f.ctx, c.ID, "Mozilla/5.0 Chrome")
	ss, err := f.svc.Sessions(f.ctx, c.ID)
	if err != nil || len(ss) != 2 || ss[0].UserAgent == "" {
		t.Fatalf("sessions: %+v %v", ss, err)
	}
	var bID int64
	for _, s := range ss {
		if s.Hash == sipdesk.HashToken(b) {
			bID = s.ID
		}
	}
	if err := f.svc.RevokeSession(f.ctx, d.ID, bID, app.CustomerActor(d.ID, "portal")); sipdesk.ErrorCode(err) != sipdesk.ENotFound {
		t.Fatalf("another customer's session: %v", err)
	}
	if err := f.svc.RevokeSession(f.ctx, c.ID, bID, app.CustomerActor(c.ID, "portal")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SessionCustomer(f.ctx, b); err == nil {
		t.Fatal("revoked session alive")
	}
	if _, err := f.svc.SessionCustomer(f.ctx, a); err != nil {
		t.Fatalf("the other session ended: %v", err)
	}
}
