package ui

import (
	"net/http"
	"strings"

	"github.com/sipdesk/sipdesk"
)

type loginView struct {
	Page
	Form
	Next string
}

func (u *UI) loginForm(q *request) error {
	next := localPath(q.r.URL.Query().Get("next"), "")
	if q.customer != nil {
		return u.redirect(q, localPath(next, "/sip-accounts"), "")
	}
	u.render(q, http.StatusOK, "login.html", &loginView{Page: u.page(q, "Log in", ""), Form: newForm(), Next: next})
	return nil
}

// loginSubmit checks the credentials; failures are limited per email and per
// client address, and a success starts a new session.
func (u *UI) loginSubmit(q *request) error {
	f := newForm()
	email := strings.TrimSpace(q.r.PostFormValue("email"))
	next := localPath(q.r.PostFormValue("next"), "")
	f.Values["email"] = email
	keys := []string{"email:" + strings.ToLower(email), "ip:" + clientIP(q.r)}
	status := http.StatusUnauthorized
	if !u.login.allow(keys...) {
		f.Error = "Too many failed attempts. Wait 15 minutes and try again."
		status = http.StatusTooManyRequests
	} else {
		c, err := u.svc.Login(q.ctx(), email, q.r.PostFormValue("password"))
		switch {
		case err == nil:
			u.login.reset(keys[0])
			if err := u.startSession(q, c.ID); err != nil {
				return err
			}
			if c.BillingState == sipdesk.BillingUnverified {
				return u.redirect(q, "/verify", "")
			}
			return u.redirect(q, localPath(next, "/sip-accounts"), "")
		case isCode(err, sipdesk.EUnauthorized):
			u.login.fail(keys...)
			f.Error = "Wrong email or password."
		default:
			return err
		}
	}
	u.render(q, status, "login.html", &loginView{Page: u.page(q, "Log in", ""), Form: f, Next: next})
	return nil
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
