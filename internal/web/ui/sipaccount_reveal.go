package ui

import (
	"encoding/json"
	"net/http"
)

// sipAccountReveal shows one username: each reveal is its own POST and the
// service audit-logs it. app.js asks for JSON and masks the previously
// revealed row; without JS the page comes back with this row revealed.
func (u *UI) sipAccountReveal(q *request) error {
	id, err := pathID(q)
	if err != nil {
		return err
	}
	name, err := u.svc.RevealUsername(q.ctx(), q.customer.ID, id, q.actor())
	if err != nil {
		return err
	}
	if wantsJSON(q.r) {
		q.w.Header().Set("Content-Type", "application/json")
		return json.NewEncoder(q.w).Encode(map[string]string{"username": name})
	}
	return u.sipAccountsPage(q, http.StatusOK, &sipAccountsView{Rows: []accountRow{{ID: id, Revealed: name}}})
}
