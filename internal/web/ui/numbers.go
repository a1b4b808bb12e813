package ui

import (
	"net/http"
	"strings"

	"github.com/sipdesk/sipdesk"
)

type numbersView struct {
	Page
	Form
	Numbers []*sipdesk.CallerIDNumber
	Trial   bool
	// Verify is the form of the number whose code was just mistyped.
	VerifyID  int64
	VerifyErr string
	// CodeFailed: numbers (by id) whose code could not be sent.
	CodeFailed     map[int64]bool
	CodesInMailbox bool // no SMS channel, codes go to the dev mailbox
	VoiceCalls     bool // "Call me instead" is offered
}

// numbers lists the verified Caller IDs and those waiting for their code.
func (u *UI) numbers(q *request) error {
	return u.numbersPage(q, http.StatusOK, &numbersView{Form: newForm()})
}

func (u *UI) numbersPage(q *request, status int, v *numbersView) error {
	ns, err := u.svc.CallerIDNumbers(q.ctx(), q.customer.ID)
	if err != nil {
		return err
	}
	ms, err := u.svc.CodeDeliveries(q.ctx(), q.customer.ID)
	if err != nil {
		return err
	}
	v.CodeFailed, v.CodesInMailbox, v.VoiceCalls = map[int64]bool{}, u.svc.CodesInOutbox(), u.svc.VoiceCalls()
	for id, m := range ms {
		v.CodeFailed[id] = m.Failing()
	}
	v.Page, v.Numbers, v.Trial = u.page(q, "Verified Caller IDs", "numbers"), ns, q.customer.Trial()
	u.render(q, status, "numbers.html", v)
	return nil
}

func (u *UI) numberAdd(q *request) error {
	number := strings.TrimSpace(q.r.PostFormValue("number"))
	n, err := u.svc.AddCallerIDNumber(q.ctx(), q.customer.ID, number)
	if err == nil {
		if failed, err := u.codeFailed(q, q.customer.ID, n.Number); err != nil || failed {
			return u.redirect(q, "/caller-id/numbers", "") // the page says it could not be sent
		}
		return u.redirect(q, "/caller-id/numbers", "We sent a code to "+n.Number+": enter it below to verify the number.")
	}
	if !userError(err) {
		return err
	}
	v := &numbersView{Form: newForm()}
	v.Values["number"] = number
	formError(&v.Form, err, "number")
	return u.numbersPage(q, formStatus(err), v)
}

// numberCall reads a new code for a number out by a call ("Call me
// instead"; the same limits as a new code).
func (u *UI) numberCall(q *request) error {
	id, err := pathID(q)
	if err != nil {
		return err
	}
	ns, err := u.svc.CallerIDNumbers(q.ctx(), q.customer.ID)
	if err != nil {
		return err
	}
	number := ""
	for _, n := range ns {
		if n.ID == id {
			number = n.Number
		}
	}
	if number == "" {
		return &sipdesk.Error{Code: sipdesk.ENotFound, Message: "number not found"} // as for any id not theirs
	}
	if err := u.svc.CallMe(q.ctx(), q.customer.ID, number); err != nil {
		if !userError(err) {
			return err
		}
		v := &numbersView{Form: newForm()}
		v.Error = msgOf(err)
		return u.numbersPage(q, formStatus(err), v)
	}
	return u.redirect(q, "/caller-id/numbers", "We're calling "+number+" now: answer to hear the code, then enter it below.")
}

func (u *UI) numberVerify(q *request) error {
	id, err := pathID(q)
	if err != nil {
		return err
	}
	n, err := u.svc.VerifyCallerIDNumber(q.ctx(), q.customer.ID, id, strings.TrimSpace(q.r.PostFormValue("code")))
	if err == nil {
		return u.redirect(q, "/caller-id/numbers", n.Number+" is verified: you can use it as a Caller ID.")
	}
	if !userError(err) {
		return err
	}
	return u.numbersPage(q, formStatus(err), &numbersView{Form: newForm(), VerifyID: id, VerifyErr: msgOf(err)})
}

func (u *UI) numberDelete(q *request) error {
	id, err := pathID(q)
	if err != nil {
		return err
	}
	if err := u.svc.DeleteCallerIDNumber(q.ctx(), q.customer.ID, id); err != nil {
		if !userError(err) {
			return err
		}
		v := &numbersView{Form: newForm()}
		v.Error = msgOf(err)
		return u.numbersPage(q, formStatus(err), v)
	}
	return u.redirect(q, "/caller-id/numbers", "Number removed.")
}
