package sipmsg

import (
	"strconv"

	"github.com/emiago/sipgo/sip"
	"github.com/sipdesk/sipdesk"
)

// Refusal is one way the edge turns a request down. Every refusal has a
// fixed SIP answer and the API error code of sipdesk's contract; the same
// table is documented in docs/refusals.md (TestRefusalsDocumented keeps the
// two in step).
type Refusal int

const (
	RefuseNone               Refusal = iota
	RefuseUnauthorized               // 401/407 challenge (also unknown users)
	RefuseAuthFailed                 // 403 after 3 failed answers on one Call-ID
	RefuseAuthUserTo                 // REGISTER To user differs from the auth user
	RefuseInactive                   // account inactive
	RefuseNotReady                   // account in process
	RefuseSourceNotAllowed           // source outside the account's IP ACL
	RefuseTechPrefixRequired         // shared IP without a matching tech prefix
	RefuseChannelLimit               // customer channel limit reached
	RefuseChannelCap                 // SIP account channel cap reached
	RefuseInvalidNumber              // dialed number not E.164
	RefuseUnavailable                // store unreachable: fail closed
	RefuseIntervalTooBrief           // REGISTER expiry below the minimum
	RefuseBanned                     // source banned: dropped, no answer
	RefuseUnknownDID                 // inbound: unknown DID
	RefuseNobodyRegistered           // inbound: no binding for the DID's account
	RefuseNotAccount                 // INVITE to something that is not a number we route
	RefuseInvalidToken               // Bearer JWT missing (WS), expired, bad signature or alg
	RefuseJWTNotEnabled              // Bearer JWT for an account without JWT
)

// RefusalInfo is one row of the table.
type RefusalInfo struct {
	Situation string
	Code      int    // SIP status; 0 means dropped without an answer
	Reason    string // SIP reason phrase
	APICode   string // sipdesk.E* constant, "" when none
}

// Refusals is the one table of refusals; docs/refusals.md renders it.
var Refusals = map[Refusal]RefusalInfo{
	RefuseUnauthorized:       {"no or wrong credentials (same challenge for unknown users)", 401, "Unauthorized", sipdesk.EUnauthorized},
	RefuseAuthFailed:         {"3 failed answers on one Call-ID", 403, "Forbidden", sipdesk.EUnauthorized},
	RefuseAuthUserTo:         {"REGISTER To user differs from the digest username", 403, "Forbidden", sipdesk.EForbidden},
	RefuseInactive:           {"account inactive", 403, "Account inactive", sipdesk.EAccountInactive},
	RefuseNotReady:           {"account in process", 403, "Account not ready", sipdesk.EAccountNotReady},
	RefuseSourceNotAllowed:   {"source outside the account's IP ACL", 403, "Source not allowed", sipdesk.ESourceNotAllowed},
	RefuseTechPrefixRequired: {"shared IP without a matching tech prefix", 403, "Tech prefix required", sipdesk.ETechPrefixRequired},
	RefuseChannelLimit:       {"customer channel limit reached", 403, "Channel limit reached", sipdesk.EChannelLimit},
	RefuseChannelCap:         {"SIP account channel cap reached", 403, "SIP account channel cap reached", sipdesk.EChannelCap},
	RefuseInvalidNumber:      {"dialed number not E.164 after normalising", 484, "Address Incomplete", sipdesk.EInvalidNumber},
	RefuseUnavailable:        {"store unreachable (fail closed), with Retry-After", 503, "Service Unavailable", sipdesk.EUnavailable},
	RefuseIntervalTooBrief:   {"REGISTER expiry below the minimum, with Min-Expires", 423, "Interval Too Brief", sipdesk.EInvalid},
	RefuseBanned:             {"source banned after failed authentication", 0, "", ""},
	RefuseUnknownDID:         {"inbound: unknown DID", 404, "Not Found", ""},
	RefuseNobodyRegistered:   {"inbound: nobody registered", 480, "Temporarily Unavailable", ""},
	RefuseInvalidToken:       {"JWT (SIP over WebSocket) missing, expired, bad signature or alg, or `sub` not the From user", 401, "Unauthorized", sipdesk.EInvalidToken},
	RefuseJWTNotEnabled:      {"JWT not enabled on the account", 403, "JWT not enabled", sipdesk.EJWTNotEnabled},
}

// refusalOrder is the order of the documented table.
var refusalOrder = []Refusal{
	RefuseUnauthorized, RefuseAuthFailed, RefuseAuthUserTo, RefuseInvalidToken, RefuseJWTNotEnabled, RefuseInactive, RefuseNotReady,
	RefuseSourceNotAllowed, RefuseTechPrefixRequired, RefuseChannelLimit, RefuseChannelCap,
	RefuseInvalidNumber, RefuseUnavailable, RefuseIntervalTooBrief, RefuseBanned,
	RefuseUnknownDID, RefuseNobodyRegistered,
}

// RefusalForError maps a domain error (e.g. from an Admission) to a refusal.
func RefusalForError(err error) Refusal {
	switch sipdesk.ErrorCode(err) {
	case "":
		return RefuseNone
	case sipdesk.EAccountInactive:
		return RefuseInactive
	case sipdesk.EAccountNotReady:
		return RefuseNotReady
	case sipdesk.ESourceNotAllowed:
		return RefuseSourceNotAllowed
	case sipdesk.ETechPrefixRequired:
		return RefuseTechPrefixRequired
	case sipdesk.EChannelLimit:
		return RefuseChannelLimit
	case sipdesk.EChannelCap:
		return RefuseChannelCap
	case sipdesk.EInvalidNumber:
		return RefuseInvalidNumber
	case sipdesk.EUnauthorized:
		return RefuseUnauthorized
	case sipdesk.EInvalidToken:
		return RefuseInvalidToken
	case sipdesk.EJWTNotEnabled:
		return RefuseJWTNotEnabled
	}
	return RefuseUnavailable
}

// RefusalsMarkdown renders the table as docs/refusals.md shows it.
func RefusalsMarkdown() string {
	s := "| situation | SIP answer | API error code |\n|---|---|---|\n"
	for _, r := range refusalOrder {
		in := Refusals[r]
		ans := "no answer (dropped)"
		if in.Code != 0 {
			ans = "`" + strconv.Itoa(in.Code) + " " + in.Reason + "`"
		}
		if r == RefuseUnauthorized {
			ans = "`401 Unauthorized` (REGISTER) / `407 Proxy Authentication Required` (INVITE) challenge"
		}
		if r == RefuseInvalidToken {
			ans = "`401 Unauthorized` with `WWW-Authenticate: Bearer error=\"invalid_token\"` (RFC 8898)"
		}
		code := "—"
		if in.APICode != "" {
			code = "`" + in.APICode + "`"
		}
		s += "| " + in.Situation + " | " + ans + " | " + code + " |\n"
	}
	return s
}

// Code is the label of a refusal in logs and metrics: its API error code,
// or a name for the refusals that have none.
func (r Refusal) Code() string {
	if c := Refusals[r].APICode; c != "" {
		return c
	}
	switch r {
	case RefuseUnknownDID:
		return "unknown_did"
	case RefuseNobodyRegistered:
		return "nobody_registered"
	case RefuseBanned:
		return "banned"
	}
	return "other"
}

// Result is the "result" of a refused request in the log: its API error
// code, or its SIP status.
func (r Refusal) Result() string {
	in := Refusals[r]
	if in.APICode != "" {
		return in.APICode
	}
	return strconv.Itoa(in.Code)
}

// Refuse answers req with the refusal's fixed code and reason (nothing for
// a dropped one).
func Refuse(tx sip.ServerTransaction, req *sip.Request, r Refusal, hdrs ...sip.Header) error {
	in := Refusals[r]
	if in.Code == 0 {
		return nil
	}
	return Respond(tx, req, in.Code, in.Reason, hdrs...)
}

// StatusRefusal is the refusal for an account's status, or RefuseNone.
func StatusRefusal(a *sipdesk.SIPAccount) Refusal {
	switch a.Status {
	case sipdesk.StatusActive:
		return RefuseNone
	case sipdesk.StatusInProcess:
		return RefuseNotReady
	default:
		return RefuseInactive
	}
}
