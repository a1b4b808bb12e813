package ui

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

type loginView struct {
	Page
	Form
	Next     string
	Passkeys bool // "Sign in with a passkey" is offered
}

func (u *UI) loginForm(q *request) error {
	next := sameSitePath(q.r.URL.Query().Get("next"), "")
	if q.customer != nil {
		return u.redirect(q, sameSitePath(next, "/sip-accounts"), "")
	}
	u.render(q, http.StatusOK, "login.html", &loginView{Page: u.page(q, "Log in", ""), Form: newForm(), Next: next, Passkeys: u.svc.PasskeysAvailable()})
	return nil
}

// loginSubmit checks the credentials. The service counts every attempt
// before it checks the password (per account and source, or per browser
// that logged in to the account before: its device cookie), so neither
// parallel guesses nor failures from elsewhere get past or lock out the
// customer's own browser; a success starts a new session.
func (u *UI) loginSubmit(q *request) error {
	f := newForm()
	email := strings.TrimSpace(q.r.PostFormValue("email"))
	next := sameSitePath(q.r.PostFormValue("next"), "")
	f.Values["email"] = email
	device := ""
	if c, err := q.r.Cookie(u.cookieName("sipdesk_device")); err == nil && len(c.Value) <= 200 {
		device = c.Value
	}
	status := http.StatusUnauthorized
	res, err := u.svc.LoginDevice(q.ctx(), email, q.r.PostFormValue("password"), device)
	switch {
	case err == nil && res.Pending != "":
		// Two-factor authentication: the code comes next.
		u.setCookie(q.w, "sipdesk_2fa", res.Pending, int(app.TwoFactorTTL/time.Second))
		to := "/login/2fa"
		if next != "" {
			to += "?next=" + url.QueryEscape(next)
		}
		return u.redirect(q, to, "")
	case err == nil:
		return u.finishLogin(q, res, next)
	case isCode(err, sipdesk.EUnauthorized):
		f.Error = "Wrong email or password."
	case isCode(err, sipdesk.ECustomerSuspended):
		f.Error = msgOf(err) // "This account is suspended. Contact support."
		status = http.StatusForbidden
	case isCode(err, sipdesk.ERateLimited):
		m := msgOf(err) // the service's reason: failures, a login in flight, the rate
		f.Error = strings.ToUpper(m[:1]) + m[1:] + "."
		status = http.StatusTooManyRequests
	case isCode(err, sipdesk.EUnavailable):
		f.Error = "Too many logins at this moment. Try again in a few seconds."
		status = http.StatusServiceUnavailable
		q.w.Header().Set("Retry-After", "5")
	default:
		return err
	}
	u.render(q, status, "login.html", &loginView{Page: u.page(q, "Log in", ""), Form: f, Next: next, Passkeys: u.svc.PasskeysAvailable()})
	return nil
}

// finishLogin starts the session of a login that passed every step.
func (u *UI) finishLogin(q *request, res *app.LoginResult, next string) error {
	if err := u.startSession(q, res.Customer.ID); err != nil {
		return err
	}
	u.setCookie(q.w, "sipdesk_device", res.Device, int(app.DeviceTTL/time.Second))
	if res.Customer.BillingState == sipdesk.BillingUnverified {
		return u.redirect(q, "/verify", "")
	}
	return u.redirect(q, sameSitePath(next, "/sip-accounts"), "")
}

func (u *UI) logout(q *request) error {
	if q.token != "" {
		if err := u.sess.DeleteSession(q.ctx(), q.token); err != nil {
			return err
		}
	}
	u.setCookie(q.w, "sipdesk_session", "", -1)
	return u.redirect(q, "/login", "You are logged out.")
}
