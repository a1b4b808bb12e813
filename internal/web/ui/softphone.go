package ui

import (
	"net/http"
	"strconv"

	"github.com/sipdesk/sipdesk"
)

type softphoneView struct {
	Page
	Row accountRow
}

// softphone is the dial icon's target. The browser softphone (SIP over
// WebSocket with a short-lived JWT) is not built yet: the page says so.
func (u *UI) softphone(q *request) error {
	id, err := strconv.ParseInt(q.r.URL.Query().Get("account"), 10, 64)
	if err != nil || id <= 0 {
		return sipdesk.Errorf(sipdesk.ENotFound, "not found")
	}
	a, err := u.svc.SIPAccount(q.ctx(), q.customer.ID, id)
	if err != nil {
		return err
	}
	u.render(q, http.StatusOK, "softphone.html", &softphoneView{Page: u.page(q, "Softphone", "sip"), Row: rowOf(a)})
	return nil
}
