package ui

import (
	"slices"
	"strconv"

	"github.com/sipdesk/sipdesk"
)

// sipAccountCallerID saves the Caller ID panel: default number, display
// name and the selected rules. Trial accounts are refused by the service
// (the fields are disabled in the form too).
func (u *UI) sipAccountCallerID(q *request) error {
	a, err := u.account(q)
	if err != nil {
		return err
	}
	if err := q.r.ParseForm(); err != nil {
		return err
	}
	in := sipdesk.CallerIDSetting{DefaultNumber: q.r.PostFormValue("default_number"), DisplayName: q.r.PostFormValue("display_name")}
	badRule := false
	for _, s := range q.r.PostForm["rule_ids"] {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			badRule = true
			continue
		}
		in.RuleIDs = append(in.RuleIDs, id)
	}
	if !badRule {
		_, err = u.svc.SetCallerID(q.ctx(), q.customer.ID, a.ID, in, q.actor())
		if err == nil {
			return u.redirect(q, "/sip-accounts/"+strconv.Itoa(int(a.ID))+"/edit?tab=callerid", "Caller ID settings saved.")
		}
		if !userError(err) {
			return err
		}
	}
	ev, err2 := u.editViewOf(q, a)
	if err2 != nil {
		return err2
	}
	ev.Tab = "callerid"
	ev.DefaultNumber, ev.DisplayName = in.DefaultNumber, in.DisplayName
	for i := range ev.Rules {
		ev.Rules[i].Checked = slices.Contains(in.RuleIDs, ev.Rules[i].ID)
	}
	ev.count()
	if badRule {
		ev.CallerID.Errors["rule_ids"] = "unknown rule"
	} else {
		formError(&ev.CallerID, err, "default_number", "display_name", "rule_ids")
	}
	return u.sipAccountsPage(q, formStatus(err), &sipAccountsView{Dialog: "edit", Edit: ev})
}
