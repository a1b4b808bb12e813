package ui

import (
	"slices"
	"strings"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

// sipAccountSave saves the General panel of the Edit dialog: name, status
// toggle, auth type with the IP list, tech prefix, channel cap. Only what
// changed goes into the patch, so a rename does not re-apply auth settings.
func (u *UI) sipAccountSave(q *request) error {
	a, err := u.account(q)
	if err != nil {
		return err
	}
	ev, err := u.editViewOf(q, a)
	if err != nil {
		return err
	}
	f := &ev.General
	name := q.r.PostFormValue("name")
	prefix := strings.TrimSpace(q.r.PostFormValue("tech_prefix"))
	capStr := strings.TrimSpace(q.r.PostFormValue("channel_cap"))
	auth := sipdesk.AuthType(q.r.PostFormValue("auth_type"))
	if auth == "" {
		auth = a.AuthType
	}
	if auth == sipdesk.AuthPassword {
		prefix = "" // the field is for IP accounts only
	}
	active := q.r.PostFormValue("active") != ""
	ips := ipList(q.r)
	f.Values["name"], f.Values["tech_prefix"], f.Values["channel_cap"] = name, prefix, capStr
	ev.AuthType, ev.IPs, ev.Active = string(auth), append(slices.Clone(ips), ""), active

	p := app.SIPAccountPatch{Name: &name}
	if auth != a.AuthType {
		p.AuthType = &auth
		p.AllowedIPs, p.TechPrefix = &ips, &prefix
	} else if !slices.Equal(ips, ev.Row.IPs) || prefix != a.TechPrefix {
		p.AllowedIPs, p.TechPrefix = &ips, &prefix
	}
	if active != ev.Row.Active {
		st := sipdesk.StatusInactive
		if active {
			st = sipdesk.StatusActive
		}
		p.Status = &st
	}
	if n, ok := intField(f, "channel_cap", capStr); ok {
		p.ChannelCap = &n
		_, err = u.svc.UpdateSIPAccount(q.ctx(), q.customer.ID, a.ID, p, q.actor())
		if err == nil {
			msg := "SIP account “" + strings.TrimSpace(name) + "” saved."
			switch {
			case auth != a.AuthType && auth == sipdesk.AuthPassword:
				msg = "Switched to password authentication. We emailed you an Edit Credentials link to set the new username and password."
			case auth != a.AuthType:
				msg = "Switched to IP authentication. The account is In Process until every edge node has applied it."
			}
			return u.redirect(q, "/sip-accounts", msg)
		}
		if !userError(err) {
			return err
		}
		formError(f, err, "name", "status", "auth_type", "allowed_ips", "tech_prefix", "channel_cap")
	}
	return u.sipAccountsPage(q, formStatus(err), &sipAccountsView{Dialog: "edit", Edit: ev})
}
