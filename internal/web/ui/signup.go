package ui

import (
	"net/http"

	"github.com/sipdesk/sipdesk"
)

type signupView struct {
	Page
	Form
}

func (u *UI) signupForm(q *request) error {
	if q.customer != nil {
		return u.redirect(q, "/sip-accounts", "")
	}
	u.render(q, http.StatusOK, "signup.html", &signupView{Page: u.page(q, "Sign up", ""), Form: newForm()})
	return nil
}

// signupSubmit creates the customer (unverified), logs it in and sends the
// phone verification code.
func (u *UI) signupSubmit(q *request) error {
	f := newForm()
	email, phone := q.r.PostFormValue("email"), q.r.PostFormValue("phone")
	password := q.r.PostFormValue("password")
	f.Values["email"], f.Values["phone"] = email, phone
	status := http.StatusUnprocessableEntity
	if password != q.r.PostFormValue("password_confirm") {
		f.Errors["password_confirm"] = "the two passwords differ"
	} else {
		c, err := u.svc.Signup(q.ctx(), email, password, phone)
		if err == nil {
			if err := u.startSession(q, c.ID); err != nil {
				return err
			}
			if failed, err := u.codeFailed(q, c.ID, c.VerifiedPhone); err != nil || failed {
				return u.redirect(q, "/verify", "") // the page says it could not be sent
			}
			return u.redirect(q, "/verify", "We sent a 6-digit code to "+c.VerifiedPhone+".")
		}
		if !userError(err) {
			return err
		}
		if isCode(err, sipdesk.EConflict) {
			f.Errors["email"] = "an account with this email already exists: log in instead"
		} else {
			formError(&f, err, "email", "password", "phone")
		}
		status = formStatus(err)
	}
	u.render(q, status, "signup.html", &signupView{Page: u.page(q, "Sign up", ""), Form: f})
	return nil
}
