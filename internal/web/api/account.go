package api

import (
	"net/http"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

func (a *API) getAccount(w http.ResponseWriter, r *http.Request, c caller) error {
	cust, err := a.svc.Customer(r.Context(), c.id)
	if err != nil {
		return err
	}
	as, err := a.svc.SIPAccounts(r.Context(), c.id)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, accountView(cust, len(as)))
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request, c caller) error {
	p, err := parsePage(r)
	if err != nil {
		return err
	}
	ts, err := a.svc.APITokens(r.Context(), c.id)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, paginate(ts, func(t *sipdesk.APIToken) int64 { return t.ID }, p, false, tokenView))
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request, c caller) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := decodeOptional(w, r, &in); err != nil {
		return err
	}
	token, err := a.svc.CreateAPIToken(r.Context(), c.id, in.Name, c.actor)
	if err != nil {
		return err
	}
	ts, err := a.svc.APITokens(r.Context(), c.id)
	if err != nil {
		return err
	}
	hash := sipdesk.HashToken(token)
	for _, t := range ts {
		if t.Hash == hash {
			v := tokenView(t)
			v.Token = token
			return reply(w, http.StatusCreated, v)
		}
	}
	return sipdesk.Errorf(sipdesk.EInternal, "created token not found")
}

func (a *API) deleteToken(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	ts, err := a.svc.APITokens(r.Context(), c.id)
	if err != nil {
		return err
	}
	found := false
	for _, t := range ts {
		found = found || t.ID == id
	}
	if !found {
		return sipdesk.Errorf(sipdesk.ENotFound, "API token not found")
	}
	if err := a.svc.DeleteAPIToken(r.Context(), c.id, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listAudit answers the audit log, newest first, filtered by kind of
// action and time range, a page at a time (after: the "next" cursor).
func (a *API) listAudit(w http.ResponseWriter, r *http.Request, c caller) error {
	q := r.URL.Query()
	limit, err := parseLimit(q)
	if err != nil {
		return err
	}
	f, err := app.AuditFilterOf(q, "after")
	if err != nil {
		return err
	}
	p, err := a.svc.AuditLogPage(r.Context(), c.id, f, limit)
	if err != nil {
		return err
	}
	out := list[auditJSON]{Items: []auditJSON{}}
	for _, e := range p.Entries {
		out.Items = append(out.Items, auditView(e))
	}
	if p.Next != "" {
		out.Next = &p.Next
	}
	return reply(w, http.StatusOK, out)
}

// callView is a call record as the API shows it.
type callView struct {
	ID             int64      `json:"id"`
	CallID         string     `json:"call_id"`
	SIPAccountID   int64      `json:"sip_account_id"`
	Direction      string     `json:"direction"`
	From           string     `json:"from"`
	To             string     `json:"to"`
	CallerID       string     `json:"caller_id"`
	CallerIDRuleID *int64     `json:"caller_id_rule_id"`
	CallerIDReason string     `json:"caller_id_reason"`
	StartedAt      time.Time  `json:"started_at"`
	AnsweredAt     *time.Time `json:"answered_at"`
	EndedAt        *time.Time `json:"ended_at"`
	Duration       float64    `json:"duration_seconds"`
	Disposition    string     `json:"disposition"`
	SIPCode        int        `json:"sip_code"`
	Reason         string     `json:"reason"`
	Node           string     `json:"node"`
	Result         string     `json:"result"` // the outcome in words
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func callRecordView(r *sipdesk.CallRecord) callView {
	v := callView{ID: r.ID, CallID: r.CallID, SIPAccountID: r.SIPAccountID, Direction: r.Direction, From: r.From, To: r.To,
		CallerID: r.CallerID, CallerIDReason: r.CallerIDReason, StartedAt: r.StartedAt, AnsweredAt: optTime(r.AnsweredAt),
		EndedAt: optTime(r.EndedAt), Duration: r.Duration().Seconds(), Disposition: r.Disposition, SIPCode: r.SIPCode,
		Reason: r.Reason, Node: r.Node, Result: sipdesk.CallResult(r)}
	if r.CallerIDRuleID != 0 {
		v.CallerIDRuleID = &r.CallerIDRuleID
	}
	return v
}

// listCalls answers call records, newest first (start time, then id),
// filtered by time range (since/until), SIP account, direction,
// disposition and number, a page at a time (after: the "next" cursor), or
// with format=csv every record the filters select as one CSV stream.
func (a *API) listCalls(w http.ResponseWriter, r *http.Request, c caller) error {
	q := r.URL.Query()
	limit, err := parseLimit(q)
	if err != nil {
		return err
	}
	// A numeric after is the cursor of earlier versions (a record id).
	var beforeID int64
	if id, ok := parseID(q.Get("after")); ok {
		beforeID = id
		q.Del("after")
	}
	f, err := app.CallFilterOf(q, "after")
	if err != nil {
		return err
	}
	f.BeforeID = beforeID
	switch q.Get("format") {
	case "", "json":
	case "csv":
		done, err := a.svc.StartExport(c.id)
		if err != nil {
			return err
		}
		defer done()
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="calls.csv"`)
		if err := a.svc.WriteCallsCSV(r.Context(), c.id, f, w); err != nil {
			a.log.Warn("call records export stopped", "customer", c.id, "err", err) // the status is sent
		}
		return nil
	default:
		return sipdesk.FieldError("format", "must be json or csv")
	}
	p, err := a.svc.CallRecordsPage(r.Context(), c.id, f, limit)
	if err != nil {
		return err
	}
	out := list[callView]{Items: []callView{}}
	for _, rec := range p.Records {
		out.Items = append(out.Items, callRecordView(rec))
	}
	if p.Next != "" {
		out.Next = &p.Next
	}
	return reply(w, http.StatusOK, out)
}

type activeCallView struct {
	CallID       string    `json:"call_id"`
	SIPAccountID int64     `json:"sip_account_id"`
	Direction    string    `json:"direction"`
	Node         string    `json:"node"`
	StartedAt    time.Time `json:"started_at"`
	To           string    `json:"to"` // the destination (user part masked like call records); "" for a moment after the call starts
}

// listActiveCalls answers the calls holding a channel now, on every node.
func (a *API) listActiveCalls(w http.ResponseWriter, r *http.Request, c caller) error {
	ls, err := a.svc.LiveCalls(r.Context(), c.id)
	if err != nil {
		return err
	}
	out := list[activeCallView]{Items: []activeCallView{}}
	for _, l := range ls {
		out.Items = append(out.Items, activeCallView{CallID: l.CallID, SIPAccountID: l.SIPAccountID, Direction: l.Direction, Node: l.Node, StartedAt: l.StartedAt, To: l.To})
	}
	return reply(w, http.StatusOK, out)
}
