package ui

import "net/http"

// sipAccountDeleteConfirm is the confirmation dialog of the trash icon.
func (u *UI) sipAccountDeleteConfirm(q *request) error {
	a, err := u.account(q)
	if err != nil {
		return err
	}
	row := rowOf(a)
	return u.sipAccountsPage(q, http.StatusOK, &sipAccountsView{Dialog: "delete", Target: &row})
}

func (u *UI) sipAccountDelete(q *request) error {
	a, err := u.account(q)
	if err != nil {
		return err
	}
	if err := u.svc.DeleteSIPAccount(q.ctx(), q.customer.ID, a.ID, q.actor()); err != nil {
		return err
	}
	return u.redirect(q, "/sip-accounts", "SIP account “"+a.Name+"” deleted.")
}
