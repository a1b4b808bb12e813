package ui

import (
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

// Account › Security: the portal password, two-factor authentication and
// the sessions of the account. Every rule (limits, hashing, auditing) is
// the service's (internal/app/security.go).

type securityView struct {
	Page
	Form
	TwoFactor  app.TwoFactor
	Setup      *app.TOTPSetup // enrolment in progress
	QR         template.URL   // its QR code, a data: URL the service made (trusted)
	Codes      []string       // recovery codes just made: shown once
	Sessions   []sessionRow
	Passkeys   []*sipdesk.Passkey
	DeleteID   int64 // the passkey whose removal failed (its error shows there)
	CanPasskey bool  // the portal's base URL allows passkeys
}

type sessionRow struct {
	ID        int64
	Browser   string
	Source    string
	CreatedAt time.Time
	Current   bool
}

func (u *UI) security(q *request) error {
	return u.securityPage(q, http.StatusOK, &securityView{Form: newForm()})
}

func (u *UI) securityPage(q *request, status int, v *securityView) error {
	st, err := u.svc.TwoFactorStatus(q.ctx(), q.customer.ID)
	if err != nil {
		return err
	}
	ss, err := u.svc.Sessions(q.ctx(), q.customer.ID)
	if err != nil {
		return err
	}
	if v.Passkeys, err = u.svc.Passkeys(q.ctx(), q.customer.ID); err != nil {
		return err
	}
	mine := sipdesk.HashToken(q.token)
	v.Sessions = v.Sessions[:0]
	for _, s := range ss {
		v.Sessions = append(v.Sessions, sessionRow{ID: s.ID, Browser: browserName(s.UserAgent), Source: s.Source, CreatedAt: s.CreatedAt, Current: s.Hash == mine})
	}
	if v.Setup != nil {
		v.QR = template.URL(v.Setup.QR) //nolint:gosec // a PNG data: URL encoded by the service, no customer input
	}
	flash := v.Flash // set by the caller (a passkey added with its recovery codes)
	v.Page, v.TwoFactor, v.CanPasskey = u.page(q, "Security", "security"), st, u.svc.PasskeysAvailable()
	if flash != "" {
		v.Flash = flash
	}
	u.render(q, status, "security.html", v)
	return nil
}

// browserName shortens a User-Agent to what a person recognises.
func browserName(ua string) string {
	name := "Unknown browser"
	for _, b := range []struct{ key, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"Chrome/", "Chrome"}, {"Safari/", "Safari"}, {"curl/", "curl"},
	} {
		if strings.Contains(ua, b.key) {
			name = b.name
			break
		}
	}
	for _, o := range []struct{ key, name string }{
		{"Android", "Android"}, {"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Windows", "Windows"}, {"Mac OS X", "macOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o.key) {
			return name + " on " + o.name
		}
	}
	return name
}

// changePassword asks the current password; the other sessions end.
func (u *UI) changePassword(q *request) error {
	err := u.svc.ChangePassword(q.ctx(), q.customer.ID, q.token, q.r.PostFormValue("current_password"), q.r.PostFormValue("new_password"), q.actor())
	if err == nil {
		return u.redirect(q, "/account/security", "Password changed. Every other session was logged out.")
	}
	if !userError(err) {
		return err
	}
	v := &securityView{Form: newForm()}
	formError(&v.Form, err, "current_password", "new_password")
	return u.securityPage(q, formStatus(err), v)
}

// totpSetup starts (or shows again) the enrolment: the QR code and the
// secret, and the field for the first code.
func (u *UI) totpSetup(q *request) error {
	setup, err := u.svc.StartTOTP(q.ctx(), q.customer.ID)
	if isCode(err, sipdesk.EConflict) {
		return u.redirect(q, "/account/security", "Two-factor authentication is already on.")
	}
	if err != nil {
		return err
	}
	return u.securityPage(q, http.StatusOK, &securityView{Form: newForm(), Setup: setup})
}

// totpConfirm turns two-factor authentication on and shows the recovery
// codes once.
func (u *UI) totpConfirm(q *request) error {
	codes, err := u.svc.ConfirmTOTP(q.ctx(), q.customer.ID, q.r.PostFormValue("code"), q.actor())
	if err == nil {
		return u.securityPage(q, http.StatusOK, &securityView{Form: newForm(), Codes: codes})
	}
	if !userError(err) {
		return err
	}
	v := &securityView{Form: newForm()}
	formError(&v.Form, err, "code")
	setup, err2 := u.svc.StartTOTP(q.ctx(), q.customer.ID)
	if err2 != nil && !isCode(err2, sipdesk.EConflict) {
		return err2
	}
	v.Setup = setup
	return u.securityPage(q, formStatus(err), v)
}

func (u *UI) totpDisable(q *request) error {
	err := u.svc.DisableTOTP(q.ctx(), q.customer.ID, q.r.PostFormValue("password"), q.actor())
	if err == nil {
		return u.redirect(q, "/account/security", "Two-factor authentication is off.")
	}
	if !userError(err) {
		return err
	}
	v := &securityView{Form: newForm()}
	formError(&v.Form, err, "password")
	return u.securityPage(q, formStatus(err), v)
}

func (u *UI) sessionRevoke(q *request) error {
	id, err := pathID(q)
	if err != nil {
		return err
	}
	if err := u.svc.RevokeSession(q.ctx(), q.customer.ID, id, q.actor()); err != nil {
		return err // another customer's id: 404, like a missing one
	}
	return u.redirect(q, "/account/security", "Session logged out.")
}

// The second login step: the browser holds the pending token from the
// password step (a short-lived cookie) and sends the code.

type twoFactorView struct {
	Page
	Form
	Next     string
	TOTP     bool // the customer has the authenticator app
	Passkeys bool // … passkeys
	Recovery bool // … unused recovery codes
}

// twoFactorRender shows the second step with what the customer has.
func (u *UI) twoFactorRender(q *request, status int, pending string, v *twoFactorView) error {
	st, err := u.svc.PendingSecondFactors(q.ctx(), pending)
	if isCode(err, sipdesk.EForbidden) {
		u.setCookie(q.w, "sipdesk_2fa", "", -1)
		return u.redirect(q, "/login", "The login timed out: enter your email and password again.")
	}
	if err != nil {
		return err
	}
	v.Page, v.TOTP, v.Passkeys, v.Recovery = u.page(q, "Two-factor authentication", ""), st.Enabled, st.Passkeys > 0, st.RecoveryCodes > 0
	u.render(q, status, "login_2fa.html", v)
	return nil
}

func (u *UI) twoFactorForm(q *request) error {
	c, err := q.r.Cookie(u.cookieName("sipdesk_2fa"))
	if err != nil || c.Value == "" || len(c.Value) > 200 {
		return u.redirect(q, "/login", "")
	}
	return u.twoFactorRender(q, http.StatusOK, c.Value, &twoFactorView{Form: newForm(), Next: sameSitePath(q.r.URL.Query().Get("next"), "")})
}

func (u *UI) twoFactorSubmit(q *request) error {
	next := sameSitePath(q.r.PostFormValue("next"), "")
	pending := ""
	if c, err := q.r.Cookie(u.cookieName("sipdesk_2fa")); err == nil && len(c.Value) <= 200 {
		pending = c.Value
	}
	var res *app.LoginResult
	var err error
	if ans := passkeyAnswer(q); ans.Response != "" {
		res, err = u.svc.LoginPasskey(q.ctx(), pending, ans)
	} else {
		res, err = u.svc.LoginSecondFactor(q.ctx(), pending, q.r.PostFormValue("code"))
	}
	if err == nil {
		u.setCookie(q.w, "sipdesk_2fa", "", -1)
		return u.finishLogin(q, res, next)
	}
	if isCode(err, sipdesk.EForbidden) {
		u.setCookie(q.w, "sipdesk_2fa", "", -1)
		return u.redirect(q, "/login", "The login timed out: enter your email and password again.")
	}
	if !userError(err) {
		return err
	}
	v := &twoFactorView{Form: newForm(), Next: next}
	formError(&v.Form, err, "code")
	return u.twoFactorRender(q, formStatus(err), pending, v)
}

// Forgotten password: the form sends a link by email (the same answer
// whether or not the address has an account); the link's page sets the
// new password.

type forgotView struct {
	Page
	Form
	Sent  bool
	Token string
}

func (u *UI) forgotForm(q *request) error {
	u.render(q, http.StatusOK, "password_forgot.html", &forgotView{Page: u.page(q, "Forgot password", ""), Form: newForm()})
	return nil
}

func (u *UI) forgotSubmit(q *request) error {
	email := strings.TrimSpace(q.r.PostFormValue("email"))
	v := &forgotView{Page: u.page(q, "Forgot password", ""), Form: newForm()}
	v.Values["email"] = email
	err := u.svc.RequestPasswordReset(q.ctx(), email)
	if err == nil {
		v.Sent = true
		u.render(q, http.StatusOK, "password_forgot.html", v)
		return nil
	}
	if !userError(err) {
		return err
	}
	formError(&v.Form, err, "email")
	u.render(q, formStatus(err), "password_forgot.html", v)
	return nil
}

func (u *UI) resetForm(q *request) error {
	token := q.r.URL.Query().Get("token")
	if err := u.svc.CheckPasswordReset(q.ctx(), token); err != nil {
		return u.passwordLinkError(q, err)
	}
	u.render(q, http.StatusOK, "password_reset.html", &forgotView{Page: u.page(q, "Choose a new password", ""), Form: newForm(), Token: token})
	return nil
}

func (u *UI) resetSubmit(q *request) error {
	token := q.r.PostFormValue("token")
	err := u.svc.CompletePasswordReset(q.ctx(), token, q.r.PostFormValue("password"))
	if err == nil {
		if q.token != "" { // this browser's session ended with the others
			u.setCookie(q.w, "sipdesk_session", "", -1)
		}
		return u.redirect(q, "/login", "Password changed. Log in with the new password.")
	}
	if code := sipdesk.ErrorCode(err); code == sipdesk.ENotFound || code == sipdesk.EForbidden || code == sipdesk.EConflict {
		return u.passwordLinkError(q, err)
	}
	if !userError(err) {
		return err
	}
	v := &forgotView{Page: u.page(q, "Choose a new password", ""), Form: newForm(), Token: token}
	formError(&v.Form, err, "password")
	u.render(q, formStatus(err), "password_reset.html", v)
	return nil
}

// passwordLinkError is the page of an invalid, expired or used link.
func (u *UI) passwordLinkError(q *request, err error) error {
	v := &messageView{Page: u.page(q, "Link not valid", ""), Link: "/password/forgot", LinkText: "Ask for a new link"}
	var status int
	switch sipdesk.ErrorCode(err) {
	case sipdesk.ENotFound:
		status, v.Heading = http.StatusNotFound, "This link is not valid"
	case sipdesk.EConflict:
		status, v.Heading = http.StatusGone, "This link was already used"
	case sipdesk.EForbidden:
		status, v.Heading = http.StatusGone, "This link has expired"
	default:
		return err
	}
	v.Text = msgOf(err) + " Each password link works once, for 30 minutes."
	u.render(q, status, "message.html", v)
	return nil
}
