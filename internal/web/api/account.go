package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/sipdesk/sipdesk"
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

// maxAudit is how far back the audit list reaches.
const maxAudit = 1000

func (a *API) listAudit(w http.ResponseWriter, r *http.Request, c caller) error {
	p, err := parsePage(r)
	if err != nil {
		return err
	}
	es, err := a.svc.Audit(r.Context(), c.id, maxAudit)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, paginate(es, func(e *sipdesk.AuditEntry) int64 { return e.ID }, p, true, auditView))
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
		Reason: r.Reason, Node: r.Node}
	if r.CallerIDRuleID != 0 {
		v.CallerIDRuleID = &r.CallerIDRuleID
	}
	return v
}

// listCalls answers call records, newest first, filtered by time range
// (since/until, RFC 3339), SIP account and disposition.
func (a *API) listCalls(w http.ResponseWriter, r *http.Request, c caller) error {
	p, err := parsePage(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := sipdesk.CallFilter{CustomerID: c.id, BeforeID: p.after, Limit: p.limit + 1, Disposition: q.Get("disposition")}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if s := q.Get(name); s != "" {
			if *dst, err = time.Parse(time.RFC3339, s); err != nil {
				return sipdesk.FieldError(name, "must be a time like 2026-11-25T10:00:00Z")
			}
		}
	}
	if s := q.Get("sip_account"); s != "" {
		id, ok := parseID(s)
		if !ok {
			return sipdesk.FieldError("sip_account", "must be a SIP account id")
		}
		f.SIPAccountID = id
	}
	switch f.Disposition {
	case "", sipdesk.DispAnswered, sipdesk.DispBusy, sipdesk.DispNoAnswer, sipdesk.DispCancelled, sipdesk.DispFailed, sipdesk.DispRefused, sipdesk.DispActive, sipdesk.DispNodeLost:
	default:
		return sipdesk.FieldError("disposition", "must be one of answered, busy, no_answer, cancelled, failed, refused, in_progress")
	}
	rs, err := a.svc.CallRecords(r.Context(), f)
	if err != nil {
		return err
	}
	out := list[callView]{Items: []callView{}}
	for i, rec := range rs {
		if i == p.limit {
			next := strconv.FormatInt(rs[i-1].ID, 10)
			out.Next = &next
			break
		}
		out.Items = append(out.Items, callRecordView(rec))
	}
	return reply(w, http.StatusOK, out)
}

type activeCallView struct {
	CallID       string    `json:"call_id"`
	SIPAccountID int64     `json:"sip_account_id"`
	Direction    string    `json:"direction"`
	Node         string    `json:"node"`
	StartedAt    time.Time `json:"started_at"`
}

// listActiveCalls answers the calls holding a channel now, on every node.
func (a *API) listActiveCalls(w http.ResponseWriter, r *http.Request, c caller) error {
	ls, err := a.svc.ActiveCalls(r.Context(), c.id)
	if err != nil {
		return err
	}
	out := list[activeCallView]{Items: []activeCallView{}}
	for _, l := range ls {
		out.Items = append(out.Items, activeCallView{CallID: l.CallID, SIPAccountID: l.SIPAccountID, Direction: l.Direction, Node: l.Node, StartedAt: l.StartedAt})
	}
	return reply(w, http.StatusOK, out)
}
