package ui

import (
	"net/http"
	"time"

	"github.com/sipdesk/sipdesk"
)

type callsView struct {
	Page
	Live     bool
	Records  []callRow
	Active   []liveRow
	Accounts map[int64]string
}

type callRow struct {
	*sipdesk.CallRecord
	Account  string
	Duration string
}

type liveRow struct {
	*sipdesk.CallLease
	Account string
	Elapsed string
}

// accountNames maps the customer's SIP account ids to their names; a
// deleted account shows as "deleted".
func (u *UI) accountNames(q *request) (map[int64]string, error) {
	as, err := u.svc.SIPAccounts(q.ctx(), q.customer.ID)
	if err != nil {
		return nil, err
	}
	m := make(map[int64]string, len(as))
	for _, a := range as {
		m[a.ID] = a.Name
	}
	return m, nil
}

func nameOr(m map[int64]string, id int64) string {
	if n, ok := m[id]; ok {
		return n
	}
	return "deleted account"
}

// calls shows the latest call records, refusals included.
func (u *UI) calls(q *request) error {
	names, err := u.accountNames(q)
	if err != nil {
		return err
	}
	rs, err := u.svc.CallRecords(q.ctx(), sipdesk.CallFilter{CustomerID: q.customer.ID, Limit: 200})
	if err != nil {
		return err
	}
	v := &callsView{Page: u.page(q, "Call Records", "calls")}
	for _, r := range rs {
		v.Records = append(v.Records, callRow{CallRecord: r, Account: nameOr(names, r.SIPAccountID), Duration: r.Duration().Round(time.Second).String()})
	}
	u.render(q, http.StatusOK, "calls.html", v)
	return nil
}

// callsLive shows the calls holding a channel now, on every edge node.
func (u *UI) callsLive(q *request) error {
	names, err := u.accountNames(q)
	if err != nil {
		return err
	}
	ls, err := u.svc.ActiveCalls(q.ctx(), q.customer.ID)
	if err != nil {
		return err
	}
	v := &callsView{Page: u.page(q, "Live Calls", "live"), Live: true}
	for _, l := range ls {
		v.Active = append(v.Active, liveRow{CallLease: l, Account: nameOr(names, l.SIPAccountID), Elapsed: time.Since(l.StartedAt).Round(time.Second).String()})
	}
	u.render(q, http.StatusOK, "calls.html", v)
	return nil
}
