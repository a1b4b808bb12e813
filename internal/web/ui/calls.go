package ui

import "net/http"

type callsView struct {
	Page
	Live bool
}

// calls and callsLive show the call records and the calls in progress. The
// service has no call records yet, so both tables are empty for now.
func (u *UI) calls(q *request) error {
	u.render(q, http.StatusOK, "calls.html", &callsView{Page: u.page(q, "Call Records", "calls")})
	return nil
}

func (u *UI) callsLive(q *request) error {
	u.render(q, http.StatusOK, "calls.html", &callsView{Page: u.page(q, "Live Calls", "live"), Live: true})
	return nil
}
