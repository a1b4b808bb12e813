package ui

import "net/http"

// sipAccountResetDialog is the key icon's window: "Send email".
func (u *UI) sipAccountResetDialog(q *request) error {
	a, err := u.account(q)
	if err != nil {
		return err
	}
	row := rowOf(a)
	return u.sipAccountsPage(q, http.StatusOK, &sipAccountsView{Dialog: "reset", Target: &row})
}

// sipAccountResetSend emails the Edit Credentials link.
func (u *UI) sipAccountResetSend(q *request) error {
	a, err := u.account(q)
	if err != nil {
		return err
	}
	row := rowOf(a)
	if err := u.svc.SendCredentialReset(q.ctx(), q.customer.ID, a.ID, q.actor()); err != nil {
		if !userError(err) {
			return err
		}
		v := &sipAccountsView{Dialog: "reset", Target: &row, ResetErr: msgOf(err)}
		return u.sipAccountsPage(q, formStatus(err), v)
	}
	return u.sipAccountsPage(q, http.StatusOK, &sipAccountsView{Dialog: "reset-sent", Target: &row, ResetTo: q.customer.Email})
}
