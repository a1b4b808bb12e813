package ui

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/sipdesk/sipdesk"
)

type ticketsView struct {
	Page
	Tickets []*sipdesk.Ticket
}

func (u *UI) tickets(q *request) error {
	ts, err := u.svc.Tickets(q.ctx(), q.customer.ID, "")
	if err != nil {
		return err
	}
	u.render(q, http.StatusOK, "tickets.html", &ticketsView{Page: u.page(q, "Support Tickets", "tickets"), Tickets: ts})
	return nil
}

type ticketFormView struct {
	Page
	Form
	Trial bool
}

// ticketNew is the form behind "Increase channel limit" (kind=channel_limit)
// and "Ask for more SIP accounts" (kind=sip_accounts).
func (u *UI) ticketNew(q *request) error {
	f := newForm()
	f.Values["kind"] = string(sipdesk.TicketChannelLimit)
	if q.r.URL.Query().Get("kind") == string(sipdesk.TicketSIPAccounts) {
		f.Values["kind"] = string(sipdesk.TicketSIPAccounts)
	}
	u.render(q, http.StatusOK, "ticket_form.html", &ticketFormView{Page: u.page(q, "Open a ticket", "tickets"), Form: f, Trial: q.customer.Trial()})
	return nil
}

func (u *UI) ticketCreate(q *request) error {
	f := newForm()
	kind := q.r.PostFormValue("kind")
	wanted := strings.TrimSpace(q.r.PostFormValue("wanted"))
	reason := q.r.PostFormValue("reason")
	f.Values["kind"], f.Values["wanted"], f.Values["reason"] = kind, wanted, reason
	n, ok := intField(&f, "wanted", wanted)
	status := http.StatusUnprocessableEntity
	if ok && wanted == "" {
		f.Errors["wanted"] = "enter how many you need"
		ok = false
	}
	if ok {
		t, err := u.svc.OpenTicket(q.ctx(), q.customer.ID, sipdesk.TicketKind(kind), n, reason)
		if err == nil {
			return u.redirect(q, "/tickets", "Ticket #"+strconv.Itoa(int(t.ID))+" opened. We will let you know here when it is decided.")
		}
		if !userError(err) {
			return err
		}
		formError(&f, err, "kind", "wanted", "reason")
		status = formStatus(err)
	}
	u.render(q, status, "ticket_form.html", &ticketFormView{Page: u.page(q, "Open a ticket", "tickets"), Form: f, Trial: q.customer.Trial()})
	return nil
}
