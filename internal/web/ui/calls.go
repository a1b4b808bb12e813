package ui

import (
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

// callsPageSize is how many call records one portal page shows.
const callsPageSize = 50

type callsView struct {
	Page
	Live     bool
	Records  []callRow
	Active   []liveRow
	Accounts []*sipdesk.SIPAccount
	Results  any // sipdesk.CallResults, for the Result filter
	Filter   url.Values
	Error    string       // a filter the server refused, in words
	Next     template.URL // the query string of the next page, "" on the last
	Paged    bool         // this is not the first page
	Export   template.URL // the query string of the CSV export of the filter
}

type callRow struct {
	*sipdesk.CallRecord
	Account  string
	FromUser string // the user part of From (masked), as the table shows it
	ToUser   string
	Duration string
	Result   string
}

// uriUser is the user part of the first sip:, sips: or tel: URI in s (a
// number, or a masked username), or s when it has none: the table shows
// who called whom; the full From and To are in the title and the CSV.
func uriUser(s string) string {
	for _, scheme := range []string{"sip:", "sips:", "tel:"} {
		if i := strings.Index(s, scheme); i >= 0 {
			u := s[i+len(scheme):]
			if j := strings.IndexAny(u, "@;>"); j >= 0 {
				u = u[:j]
			}
			if u != "" {
				return u
			}
		}
	}
	return s
}

type liveRow struct {
	Account     string `json:"account"`
	Direction   string `json:"direction"`
	Destination string `json:"destination"`
	StartedAt   string `json:"started_at"`
	Duration    string `json:"duration"`
	Node        string `json:"node"`
}

// accountNames maps the customer's SIP account ids to their names.
func accountNames(as []*sipdesk.SIPAccount) map[int64]string {
	m := make(map[int64]string, len(as))
	for _, a := range as {
		m[a.ID] = a.Name
	}
	return m
}

// nameOr is the account's name; a deleted account shows as "deleted account".
func nameOr(m map[int64]string, id int64) string {
	if n, ok := m[id]; ok {
		return n
	}
	return "deleted account"
}

// filterKeys are the call record filters the page's GET form sends (the
// names of GET /api/v1/calls).
var filterKeys = []string{"since", "until", "sip_account", "direction", "disposition", "number"}

// callFilterQuery keeps only the filters of q (no cursor, nothing else).
func callFilterQuery(q url.Values) url.Values {
	f := url.Values{}
	for _, k := range filterKeys {
		if v := q.Get(k); v != "" {
			f.Set(k, v)
		}
	}
	return f
}

// filterLabels name the filters' fields as the forms label them.
var filterLabels = map[string]string{"since": "From date", "until": "To date", "sip_account": "SIP account", "direction": "Direction",
	"disposition": "Result", "number": "Number", "kind": "What", "cursor": "Page"}

// filterError words a refused filter with the label of its field.
func filterError(err error) string {
	var e *sipdesk.Error
	if errors.As(err, &e) && filterLabels[e.Field] != "" {
		return filterLabels[e.Field] + ": " + e.Message
	}
	return sipdesk.ErrorMessage(err)
}

// calls shows the call records the filter selects, newest first, a page
// at a time (keyset: ?cursor= is the last row's place).
func (u *UI) calls(q *request) error {
	as, err := u.svc.SIPAccounts(q.ctx(), q.customer.ID)
	if err != nil {
		return err
	}
	query := q.r.URL.Query()
	v := &callsView{Page: u.page(q, "Call Records", "calls"), Accounts: as, Results: sipdesk.CallResults, Filter: callFilterQuery(query)}
	v.Export = template.URL(v.Filter.Encode()) // url.Values.Encode escapes every value
	f, err := app.CallFilterOf(query, "cursor")
	if err != nil {
		if sipdesk.ErrorCode(err) != sipdesk.EInvalid {
			return err
		}
		v.Error = filterError(err)
		u.render(q, http.StatusUnprocessableEntity, "calls.html", v)
		return nil
	}
	p, err := u.svc.CallRecordsPage(q.ctx(), q.customer.ID, f, callsPageSize)
	if err != nil {
		return err
	}
	names := accountNames(as)
	for _, r := range p.Records {
		v.Records = append(v.Records, callRow{CallRecord: r, Account: nameOr(names, r.SIPAccountID), FromUser: uriUser(r.From), ToUser: uriUser(r.To),
			Duration: r.Duration().Round(time.Second).String(), Result: sipdesk.CallResult(r)})
	}
	v.Paged = f.After != nil
	if p.Next != "" {
		next := callFilterQuery(query)
		next.Set("cursor", p.Next)
		v.Next = template.URL(next.Encode())
	}
	u.render(q, http.StatusOK, "calls.html", v)
	return nil
}

// callsExport streams the call records of the page's filter as CSV.
func (u *UI) callsExport(q *request) error {
	f, err := app.CallFilterOf(callFilterQuery(q.r.URL.Query()), "cursor")
	if err != nil {
		return err
	}
	done, err := u.svc.StartExport(q.customer.ID)
	if err != nil {
		return err
	}
	defer done()
	h := q.w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="calls.csv"`)
	if err := u.svc.WriteCallsCSV(q.ctx(), q.customer.ID, f, q.w); err != nil {
		// The status is sent: the export ends short, and the log says why.
		u.log.Warn("call records export stopped", "customer", q.customer.ID, "err", err)
	}
	return nil
}

// liveRows lists the customer's live calls as the page and its JSON show them.
func (u *UI) liveRows(q *request) ([]liveRow, error) {
	as, err := u.svc.SIPAccounts(q.ctx(), q.customer.ID)
	if err != nil {
		return nil, err
	}
	ls, err := u.svc.LiveCalls(q.ctx(), q.customer.ID)
	if err != nil {
		return nil, err
	}
	names := accountNames(as)
	rows := []liveRow{}
	for _, l := range ls {
		rows = append(rows, liveRow{Account: nameOr(names, l.SIPAccountID), Direction: l.Direction, Destination: uriUser(l.To),
			StartedAt: l.StartedAt.UTC().Format("2006-01-02 15:04:05"), Duration: time.Since(l.StartedAt).Round(time.Second).String(), Node: l.Node})
	}
	return rows, nil
}

// callsLive shows the calls holding a channel now, on every edge node;
// app.js refreshes the table from callsLiveJSON.
func (u *UI) callsLive(q *request) error {
	rows, err := u.liveRows(q)
	if err != nil {
		return err
	}
	v := &callsView{Page: u.page(q, "Live Calls", "live"), Live: true, Active: rows}
	u.render(q, http.StatusOK, "calls.html", v)
	return nil
}

// callsLiveJSON is what Live Calls polls: {"calls": [...]}.
func (u *UI) callsLiveJSON(q *request) error {
	rows, err := u.liveRows(q)
	if err != nil {
		return err
	}
	q.w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(q.w).Encode(map[string]any{"calls": rows})
}

// sipAccountStatuses is what the SIP Accounts page polls while an account
// is In Process: {"accounts": [{"id", "status", "label"}]}.
func (u *UI) sipAccountStatuses(q *request) error {
	as, err := u.svc.SIPAccounts(q.ctx(), q.customer.ID)
	if err != nil {
		return err
	}
	type st struct {
		ID     int64  `json:"id"`
		Status string `json:"status"`
		Label  string `json:"label"`
	}
	out := []st{}
	for _, a := range as {
		out = append(out, st{ID: a.ID, Status: string(a.Status), Label: statusLabel(a.Status)})
	}
	q.w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(q.w).Encode(map[string]any{"accounts": out})
}
