package api

import (
	"net/http"

	"github.com/sipdesk/sipdesk"
)

func (a *API) listTickets(w http.ResponseWriter, r *http.Request, c caller) error {
	p, err := parsePage(r)
	if err != nil {
		return err
	}
	ts, err := a.svc.Tickets(r.Context(), c.id, "")
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, paginate(ts, func(t *sipdesk.Ticket) int64 { return t.ID }, p, false, ticketView))
}

func (a *API) openTicket(w http.ResponseWriter, r *http.Request, c caller) error {
	var in struct {
		Kind   string `json:"kind"`
		Wanted int    `json:"wanted"`
		Reason string `json:"reason"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	t, err := a.svc.OpenTicket(r.Context(), c.id, sipdesk.TicketKind(in.Kind), in.Wanted, in.Reason)
	if err != nil {
		return err
	}
	return reply(w, http.StatusCreated, ticketView(t))
}
