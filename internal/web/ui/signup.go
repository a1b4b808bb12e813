package ui

import (
	"net/http"
	"strings"

	"github.com/sipdesk/sipdesk/internal/app"
)

type signupView struct {
	Page
	Form
	Summary []summaryItem // every field error, linked to its field
}

type summaryItem struct{ ID, Label, Msg string }

func (u *UI) signupForm(q *request) error {
	if q.customer != nil {
		return u.redirect(q, "/sip-accounts", "")
	}
	u.render(q, http.StatusOK, "signup.html", &signupView{Page: u.page(q, "Sign up", ""), Form: newForm()})
	return nil
}

// signupSubmit checks the fields and sends the signup email. The answer is
// the same whether the email already has an account or not (that address
// gets a note instead of a link), so the form tells nobody which emails
// exist.
func (u *UI) signupSubmit(q *request) error {
	f := newForm()
	email, phone := q.r.PostFormValue("email"), q.r.PostFormValue("phone")
	password := q.r.PostFormValue("password")
	f.Values["email"], f.Values["phone"] = email, phone
	status := http.StatusUnprocessableEntity
	// Every field's error at once, before any work.
	for _, err := range app.CheckSignup(email, password, phone) {
		formError(&f, err, "email", "password", "phone")
	}
	if password != q.r.PostFormValue("password_confirm") {
		f.Errors["password_confirm"] = "the two passwords differ"
	}
	if len(f.Errors) == 0 {
		err := u.svc.Signup(q.ctx(), email, password, phone)
		if err == nil {
			text := "We sent an email to " + strings.TrimSpace(email) + ". Open its link within an hour to finish your signup."
			if u.opt.DevMailbox {
				text += " (No mail server is set up: find it in the dev mailbox at /dev/mail.)"
			}
			u.render(q, http.StatusOK, "message.html", &messageView{Page: u.page(q, "Check your email", ""), Heading: "Check your email", Text: text})
			return nil
		}
		if !userError(err) {
			return err
		}
		formError(&f, err, "email", "password", "phone")
		status = formStatus(err)
	}
	v := &signupView{Page: u.page(q, "Sign up", ""), Form: f}
	for _, fl := range []struct{ id, label string }{{"email", "Email"}, {"password", "Portal password"},
		{"password_confirm", "Repeat the password"}, {"phone", "Mobile phone number"}} {
		if m := f.Errors[fl.id]; m != "" {
			v.Summary = append(v.Summary, summaryItem{ID: fl.id, Label: fl.label, Msg: m})
		}
	}
	u.render(q, status, "signup.html", v)
	return nil
}

// signupConfirmForm is the email link's page: a button, so that a mail
// scanner fetching the link does not use it up.
func (u *UI) signupConfirmForm(q *request) error {
	u.render(q, http.StatusOK, "signup_confirm.html", &signupConfirmView{Page: u.page(q, "Finish your signup", ""), Token: q.r.URL.Query().Get("token")})
	return nil
}

type signupConfirmView struct {
	Page
	Token string
}

// signupConfirm creates the account of the link, logs it in and sends the
// phone code.
func (u *UI) signupConfirm(q *request) error {
	c, err := u.svc.ConfirmSignup(q.ctx(), q.r.PostFormValue("token"))
	if err != nil {
		if !userError(err) {
			return err
		}
		u.render(q, formStatus(err), "message.html", &messageView{Page: u.page(q, "Signup", ""), Heading: "This link cannot be used", Text: msgOf(err)})
		return nil
	}
	if err := u.startSession(q, c.ID); err != nil {
		return err
	}
	if failed, err := u.codeFailed(q, c.ID, c.VerifiedPhone); err != nil || failed {
		return u.redirect(q, "/verify", "") // the page says it could not be sent
	}
	return u.redirect(q, "/verify", "We sent a 6-digit code to "+c.VerifiedPhone+".")
}
