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
	// CodeFailed: the code could not be sent (a retry may be pending).
	CodeFailed bool
	// CodesInMailbox: no SMS channel, codes go to the dev mailbox.
	CodesInMailbox bool
	// VoiceCalls: "Call me instead" is offered; Calling: the latest code
	// is read out by a call.
	VoiceCalls, Calling bool
}

func (u *UI) verifyForm(q *request) error {
	return u.verifyPage(q, http.StatusOK, newForm())
}

func (u *UI) verifyPage(q *request, status int, f Form) error {
	m, err := u.latestCode(q, q.customer.ID, q.customer.VerifiedPhone)
	if err != nil {
		return err
	}
	u.render(q, status, "verify.html", &verifyView{Page: u.page(q, "Verify your phone", ""), Form: f, Phone: q.customer.VerifiedPhone,
		CodeFailed: m != nil && m.Failing(), CodesInMailbox: u.svc.CodesInOutbox(),
		VoiceCalls: u.svc.VoiceCalls(), Calling: m != nil && m.Channel == app.ChannelVoice})
	return nil
}

// codeFailed reports whether the latest code to number could not be sent
// (a code not tried yet is tried first), so no page claims it was.
func (u *UI) codeFailed(q *request, customerID int64, number string) (bool, error) {
	m, err := u.latestCode(q, customerID, number)
	return m != nil && m.Failing(), err
}

// latestCode is the latest verification message to number (nil: none).
func (u *UI) latestCode(q *request, customerID int64, number string) (*sipdesk.VerificationMessage, error) {
	ms, err := u.svc.CodeDeliveries(q.ctx(), customerID)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m.To == number {
			return m, nil
		}
	}
	return nil, nil
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
	return u.verifyPage(q, formStatus(err), f)
}

// verifyCall reads a new code out by a call ("Call me instead"; the same
// limits as a new code).
func (u *UI) verifyCall(q *request) error {
	err := u.svc.CallMe(q.ctx(), q.customer.ID, "")
	if isCode(err, sipdesk.EConflict) {
		return u.redirect(q, "/sip-accounts", "")
	}
	if err != nil && !userError(err) {
		return err
	}
	if err == nil {
		return u.redirect(q, "/verify", "We're calling "+q.customer.VerifiedPhone+" now: answer to hear your code.")
	}
	f := newForm()
	formError(&f, err, "code")
	return u.verifyPage(q, http.StatusOK, f)
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
		if failed, err := u.codeFailed(q, q.customer.ID, q.customer.VerifiedPhone); err != nil || failed {
			return u.redirect(q, "/verify", "") // the page says it could not be sent
		}
		return u.redirect(q, "/verify", "A new code is on its way.")
	}
	f := newForm()
	formError(&f, err, "code")
	return u.verifyPage(q, http.StatusOK, f)
}
