package policy

import (
	"strings"

	"github.com/sipdesk/sipdesk"
)

// The call questions the b2bua asks: who an IP trunk's call belongs to,
// what an outbound call becomes, where an inbound call goes. Refusals are
// sipdesk codes (errortable.go gives their SIP answers).

// PickIPAccount chooses among the IP accounts owning a source address by
// tech prefix and returns the dialed number without the prefix, or the
// refusal (ETechPrefixRequired).
func PickIPAccount(accts []*sipdesk.SIPAccount, dialed string) (acct *sipdesk.SIPAccount, rest string, refusal string) {
	d := strings.TrimPrefix(dialed, "+")
	for _, a := range accts {
		if a.TechPrefix != "" && strings.HasPrefix(d, a.TechPrefix) && len(d) > len(a.TechPrefix) {
			return a, d[len(a.TechPrefix):], ""
		}
	}
	var noPrefix []*sipdesk.SIPAccount
	for _, a := range accts {
		if a.TechPrefix == "" {
			noPrefix = append(noPrefix, a)
		}
	}
	if len(noPrefix) == 1 {
		return noPrefix[0], dialed, ""
	}
	return nil, dialed, sipdesk.ETechPrefixRequired
}

// OutboundCall is what an admitted outbound call becomes.
type OutboundCall struct {
	Number   string                  // E.164 digits, without "+"
	CallerID sipdesk.CallerIDHeaders // the carrier leg's From, PAI and Privacy
}

// Outbound decides an outbound call of acct to the dialed user part from a
// device that sent From user and display name: the account must be usable
// and the number E.164 after normalising; the Caller ID is
// sipdesk.DecideCallerID, the one decision the rule simulator makes too.
// It returns the refusal code instead when the call may not go on.
func (s *Snapshot) Outbound(acct *sipdesk.SIPAccount, dialed, fromUser, fromDisplay string) (OutboundCall, string) {
	if err := acct.UsableAtEdge(); err != nil {
		return OutboundCall{}, sipdesk.RefusalFor(err)
	}
	number, err := sipdesk.NormalizeNumber(dialed)
	if err != nil {
		return OutboundCall{}, sipdesk.EInvalidNumber
	}
	cid := sipdesk.DecideCallerID(sipdesk.CallerIDInput{Account: acct, Customer: s.custs[acct.CustomerID], Rules: s.rules,
		To: number, FromUser: fromUser, FromDisplay: fromDisplay})
	return OutboundCall{Number: number, CallerID: cid}, ""
}

// Inbound is the DID of a number the carrier called and the SIP account it
// routes to, or the refusal: SIPUnknownDID, or SIPNobodyRegistered when the
// account is gone or not usable.
func (s *Snapshot) Inbound(number string) (*sipdesk.DID, *sipdesk.SIPAccount, string) {
	did := s.DID(number)
	if did == nil {
		return nil, nil, sipdesk.SIPUnknownDID
	}
	acct := s.byID[did.SIPAccountID]
	if acct == nil || acct.UsableAtEdge() != nil {
		return did, nil, sipdesk.SIPNobodyRegistered
	}
	return did, acct, ""
}

// Counted reports whether a call of customerID in direction counts against
// its channel limit (sipdesk.CountsAgainstLimit; an unknown customer's
// calls count).
func (s *Snapshot) Counted(customerID int64, direction string) bool {
	c := s.custs[customerID]
	return c == nil || c.Counted(direction)
}
