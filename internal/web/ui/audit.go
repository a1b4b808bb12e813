package ui

import (
	"net/http"
	"strconv"

	"github.com/sipdesk/sipdesk"
)

type auditView struct {
	Page
	Entries []auditRow
}

type auditRow struct {
	*sipdesk.AuditEntry
	What    string
	Account string
}

var auditLabels = map[string]string{
	sipdesk.AuditUsernameRevealed:  "Username revealed",
	sipdesk.AuditSIPAccountCreated: "SIP account created",
	sipdesk.AuditSIPAccountUpdated: "SIP account updated",
	sipdesk.AuditSIPAccountDeleted: "SIP account deleted",
	sipdesk.AuditCredentialsChange: "Credentials changed",
	sipdesk.AuditCredentialReset:   "Edit Credentials email sent",
	sipdesk.AuditAuthTypeChanged:   "Authentication type changed",
	sipdesk.AuditStatusChanged:     "Status changed",
	sipdesk.AuditJWTChanged:        "JWT settings changed",
	sipdesk.AuditCallerIDChanged:   "Caller ID changed",
	sipdesk.AuditSIPAccountApprove: "SIP account approved",
	sipdesk.AuditChannelLimit:      "Channel limit changed",
	sipdesk.AuditTopUp:             "Account topped up",
	sipdesk.AuditTicketDecided:     "Ticket decided",
	sipdesk.AuditTokenCreated:      "API token created",
	sipdesk.AuditRuleChanged:       "Caller ID rule changed",
	sipdesk.AuditPasswordGuessing:  "Password guessing stopped",
	sipdesk.AuditDIDAssigned:       "Number assigned",
	sipdesk.AuditDIDUnassigned:     "Number removed",
}

// audit is the customer's audit log, newest first.
func (u *UI) audit(q *request) error {
	es, err := u.svc.Audit(q.ctx(), q.customer.ID, 200)
	if err != nil {
		return err
	}
	as, err := u.svc.SIPAccounts(q.ctx(), q.customer.ID)
	if err != nil {
		return err
	}
	names := map[int64]string{}
	for _, a := range as {
		names[a.ID] = a.Name
	}
	v := &auditView{Page: u.page(q, "Audit Log", "audit")}
	for _, e := range es {
		r := auditRow{AuditEntry: e, What: auditLabels[e.Action]}
		if r.What == "" {
			r.What = e.Action
		}
		if e.SIPAccountID != 0 {
			if r.Account = names[e.SIPAccountID]; r.Account == "" {
				r.Account = "#" + strconv.Itoa(int(e.SIPAccountID)) + " (deleted)"
			}
		}
		v.Entries = append(v.Entries, r)
	}
	u.render(q, http.StatusOK, "audit.html", v)
	return nil
}
