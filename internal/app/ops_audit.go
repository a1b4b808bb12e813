package app

import (
	"regexp"
	"strings"

	"github.com/sipdesk/sipdesk"
)

// forCustomer is an audit entry as the customer sees it (portal, API):
// the staff member behind an operator action stays private ("operator"),
// and the change reads in words ("Support raised the channel limit from
// 10 to 25"). Operators see the entries as recorded.
func forCustomer(e *sipdesk.AuditEntry) *sipdesk.AuditEntry {
	if !strings.HasPrefix(e.Actor, string(ActorOperator)) {
		return e
	}
	c := *e
	c.Actor = string(ActorOperator)
	if w := auditWords(e); w != "" {
		c.Detail = w
	}
	return &c
}

var fromTo = regexp.MustCompile(`(\d+) → (\d+)`)

// auditWords tells an operator action on the customer's account in words,
// or "" when the recorded detail reads well enough.
func auditWords(e *sipdesk.AuditEntry) string {
	switch e.Action {
	case sipdesk.AuditChannelLimit:
		return "Support " + change("the channel limit", e.Detail)
	case sipdesk.AuditTopUp:
		amount, _, _ := strings.Cut(strings.TrimPrefix(e.Detail, "amount "), ",")
		s := "Support recorded a top-up of " + amount
		if i := strings.Index(e.Detail, "channel limit "); i >= 0 {
			if m := fromTo.FindStringSubmatch(e.Detail[i:]); m != nil && m[1] != m[2] {
				s += " and " + change("the channel limit", m[0])
			}
		}
		return s
	case sipdesk.AuditTicketDecided:
		if strings.Contains(e.Detail, "declined") {
			return "Support declined your " + strings.SplitN(e.Detail, " declined", 2)[0]
		}
		what := "the channel limit"
		if strings.Contains(e.Detail, string(sipdesk.TicketSIPAccounts)) {
			what = "the SIP account quota"
		}
		head, _, _ := strings.Cut(e.Detail, " approved")
		return "Support approved your " + head + " and " + change(what, e.Detail)
	case sipdesk.AuditSIPAccountApprove:
		return "Support approved the SIP account"
	case sipdesk.AuditDIDAssigned, sipdesk.AuditDIDUnassigned:
		return didWords(e)
	case sipdesk.AuditCallHungUp:
		return "Support ended a live call (" + e.Detail + ")"
	case sipdesk.AuditCustomerSuspended:
		_, reason, _ := strings.Cut(e.Detail, ": ")
		return "Support suspended the account: " + reason
	case sipdesk.AuditCustomerUnsuspended:
		return "Support lifted the suspension of the account"
	}
	return ""
}

// change words "a → b" in detail: "raised the channel limit from a to b".
func change(what, detail string) string {
	m := fromTo.FindStringSubmatch(detail)
	if m == nil {
		return "changed " + what
	}
	verb := "set"
	if len(m[1]) < len(m[2]) || len(m[1]) == len(m[2]) && m[1] < m[2] {
		verb = "raised"
	} else if m[1] != m[2] {
		verb = "lowered"
	}
	return verb + " " + what + " from " + m[1] + " to " + m[2]
}
