package ui

import (
	"net/http"

	"github.com/sipdesk/sipdesk/internal/app"
)

// connectionView is a SIP account's connection details: where to register,
// how to dial, ready-to-paste PBX settings (secrets as placeholders).
type connectionView struct {
	Page
	Conn    *app.Connection
	Account app.ConnectionAccount
}

func (u *UI) sipAccountConnection(q *request) error {
	id, err := pathID(q)
	if err != nil {
		return err
	}
	c, err := u.svc.Connection(q.ctx(), q.customer.ID, id)
	if err != nil {
		return err
	}
	v := &connectionView{Page: u.page(q, "Connection details", "sip"), Conn: c, Account: c.Accounts[0]}
	u.render(q, http.StatusOK, "connection.html", v)
	return nil
}
