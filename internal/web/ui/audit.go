package ui

import (
	"html/template"
	"net/http"
	"net/url"
	"strconv"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

type auditView struct {
	Page
	Entries []auditRow
	Kinds   any // app.AuditKinds, for the filter
	Filter  url.Values
	Error   string
	Paged   bool         // not the first page
	First   template.URL // the query string of the first page
	Next    template.URL // the query string of the next page, "" on the last
}

type auditRow struct {
	*sipdesk.AuditEntry
	What    string
	Account string
	By      string // app.ActorWords
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
	sipdesk.AuditLogin:             "Signed in",
	sipdesk.AuditLoginFailed:       "Failed sign-in",
	sipdesk.AuditPasswordChanged:   "Password changed",
	sipdesk.AuditPasswordReset:     "Password reset by email",
	sipdesk.AuditTOTPEnabled:       "Two-factor authentication on",
	sipdesk.AuditTOTPDisabled:      "Two-factor authentication off",
	sipdesk.AuditRecoveryUsed:      "Recovery code used",
	sipdesk.AuditSessionRevoked:    "Session signed out",
	sipdesk.AuditPasskeyAdded:      "Passkey added",
	sipdesk.AuditPasskeyRemoved:    "Passkey removed",
	sipdesk.AuditPasskeyUsed:       "Passkey used",
	sipdesk.AuditPhoneVerified:     "Phone verified by Support",
	sipdesk.AuditCallerIDVerified:  "Caller ID number verified by Support",
}

// auditPageSize is how many entries one audit log page shows.
const auditPageSize = 50

// audit is the customer's audit log, newest first, a page at a time,
// filtered by kind of action and date (a GET form).
func (u *UI) audit(q *request) error {
	query := q.r.URL.Query()
	v := &auditView{Page: u.page(q, "Audit Log", "audit"), Kinds: app.AuditKinds, Filter: url.Values{}}
	for _, k := range []string{"kind", "since", "until"} {
		if s := query.Get(k); s != "" {
			v.Filter.Set(k, s)
		}
	}
	f, err := app.AuditFilterOf(query, "cursor")
	if err != nil {
		if sipdesk.ErrorCode(err) != sipdesk.EInvalid {
			return err
		}
		v.Error = filterError(err)
		u.render(q, http.StatusUnprocessableEntity, "audit.html", v)
		return nil
	}
	p, err := u.svc.AuditLogPage(q.ctx(), q.customer.ID, f, auditPageSize)
	if err != nil {
		return err
	}
	as, err := u.svc.SIPAccounts(q.ctx(), q.customer.ID)
	if err != nil {
		return err
	}
	names := accountNames(as)
	for _, e := range p.Entries {
		r := auditRow{AuditEntry: e, What: auditLabels[e.Action], By: app.ActorWords(e.Actor)}
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
	v.Paged = f.After != nil
	v.First = template.URL(v.Filter.Encode())
	if p.Next != "" {
		next := url.Values{}
		for k, vs := range v.Filter {
			next[k] = vs
		}
		next.Set("cursor", p.Next)
		v.Next = template.URL(next.Encode())
	}
	u.render(q, http.StatusOK, "audit.html", v)
	return nil
}
