package ui

import (
	"net/http"
	"strings"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

type verifyView struct {
	Page
	Form
	Phone string
}

func (u *UI) verifyForm(q *request) error {
	u.render(q, http.StatusOK, "verify.html", &verifyView{Page: u.page(q, "Verify your phone", ""), Form: newForm(), Phone: q.customer.VerifiedPhone})
	return nil
}

// firstAccountView shows the first SIP account's credentials once, right
// after the phone is verified: the password is never shown again.
type firstAccountView struct {
	Page
	New *app.NewSIPAccount
}

func (u *UI) verifySubmit(q *request) error {
	f := newForm()
	code := strings.TrimSpace(q.r.PostFormValue("code"))
	f.Values["code"] = code
	first, err := u.svc.VerifyPhone(q.ctx(), q.customer.ID, code)
	if err == nil {
		c, err := u.svc.Customer(q.ctx(), q.customer.ID)
		if err != nil {
			return err
		}
		q.customer = c
		u.render(q, http.StatusOK, "welcome.html", &firstAccountView{Page: u.page(q, "Your first SIP account", "sip"), New: first})
		return nil
	}
	if isCode(err, sipdesk.EConflict) {
		return u.redirect(q, "/sip-accounts", "")
	}
	if !userError(err) {
		return err
	}
	formError(&f, err, "code")
	u.render(q, formStatus(err), "verify.html", &verifyView{Page: u.page(q, "Verify your phone", ""), Form: f, Phone: q.customer.VerifiedPhone})
	return nil
}

// verifyResend sends a new code (at most one a minute).
func (u *UI) verifyResend(q *request) error {
	err := u.svc.ResendSignupCode(q.ctx(), q.customer.ID)
	if isCode(err, sipdesk.EConflict) {
		return u.redirect(q, "/sip-accounts", "")
	}
	if err != nil && !userError(err) {
		return err
	}
	if err == nil {
		return u.redirect(q, "/verify", "A new code is on its way.")
	}
	f := newForm()
	formError(&f, err, "code")
	u.render(q, http.StatusOK, "verify.html", &verifyView{Page: u.page(q, "Verify your phone", ""), Form: f, Phone: q.customer.VerifiedPhone})
	return nil
}
