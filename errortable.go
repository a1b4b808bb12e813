package sipdesk

import (
	"strconv"
	"strings"
)

// Keys of the SIP edge's refusals that have no error code of their own: the
// edge answers them differently from the code they report (SIPAuthFailed is
// reported as EUnauthorized, SIPIntervalTooBrief as EInvalid), or they have no
// API code at all (inbound calls, banned sources). They are rows of the code
// table like the E* codes, but no API answer or domain error carries them.
const (
	SIPAuthFailed       = "auth_failed"        // 3 failed answers on one Call-ID
	SIPAccountGuarded   = "account_guarded"    // password guessing on the SIP account: unknown sources refused
	SIPIntervalTooBrief = "interval_too_brief" // REGISTER expiry below the minimum
	SIPBanned           = "banned"             // source banned: dropped, no answer
	SIPUnknownDID       = "unknown_did"        // inbound: unknown DID
	SIPNobodyRegistered = "nobody_registered"  // inbound: no binding for the DID's account
	SIPTooManyContacts  = "too_many_contacts"  // REGISTER: a new contact over the per-account limit
	SIPNoCarrier        = "no_carrier"         // outbound call on an edge without --carrier
	SIPOverloaded       = "overloaded"         // new call while the edge cannot keep up
)

// CodeInfo is one row of the code table: how each surface answers a code.
type CodeInfo struct {
	// Code is an E* code or a SIP* key.
	Code string
	// APICode, for SIP* keys only, is the API error code the refusal
	// reports ("" when it has none); E* codes report themselves (see the
	// function APICode).
	APICode string
	// HTTP is the status of the API's answer and of the portal's error page;
	// 0 for SIP* keys (they are never HTTP answers).
	HTTP int
	// Form is the status of a portal form shown again with the message next
	// to the field, for an error the customer can fix there; 0 when the
	// portal shows an error page instead.
	Form int
	// SIP is the edge's answer; nil when the edge never refuses with it.
	SIP *SIPRefusal
}

// SIPRefusal is how the edge turns a request down.
type SIPRefusal struct {
	Situation string // when, as docs/refusals.md says it
	Status    int    // SIP status; 0: dropped without an answer
	Reason    string // SIP reason phrase
	Answer    string // the documented answer when "`Status Reason`" does not say it all
}

// codeTable is the one table from codes to HTTP and SIP answers. The rows
// with a SIP answer come first, in the order docs/refusals.md lists them.
var codeTable = []CodeInfo{
	{Code: EUnauthorized, HTTP: 401, Form: 422, SIP: &SIPRefusal{"no or wrong credentials (same challenge for unknown users); a Bearer token over UDP or TCP (with a `Warning`)", 401, "Unauthorized",
		"`401 Unauthorized` (REGISTER) / `407 Proxy Authentication Required` (INVITE) challenge"}},
	{Code: SIPAuthFailed, APICode: EUnauthorized, SIP: &SIPRefusal{"3 failed answers on one Call-ID", 403, "Forbidden", ""}},
	{Code: SIPAccountGuarded, SIP: &SIPRefusal{"too many failed passwords for the SIP account from any sources (`--sip-account-failures` within `--sip-account-failure-window`): for `--sip-account-guard` only sources that authenticated for it within `--sip-account-trust` are accepted; any other answer, right or wrong", 403, "Too many failed passwords", ""}},
	{Code: EForbidden, HTTP: 403, Form: 422, SIP: &SIPRefusal{"REGISTER To user differs from the digest username", 403, "Forbidden", ""}},
	{Code: EInvalidToken, HTTP: 401, SIP: &SIPRefusal{"JWT (SIP over WebSocket) missing, expired, bad signature or alg, or `sub` not the From user", 401, "Unauthorized",
		"`401 Unauthorized` with `WWW-Authenticate: Bearer error=\"invalid_token\"` (RFC 8898)"}},
	{Code: EJWTNotEnabled, HTTP: 409, SIP: &SIPRefusal{"JWT not enabled on the account", 403, "JWT not enabled", ""}},
	{Code: EAccountInactive, HTTP: 409, SIP: &SIPRefusal{"account inactive", 403, "Account inactive", ""}},
	{Code: EAccountNotReady, HTTP: 409, SIP: &SIPRefusal{"account in process", 403, "Account not ready", ""}},
	{Code: ECustomerSuspended, HTTP: 403, Form: 422, SIP: &SIPRefusal{"the provider suspended the customer account (every SIP account of it: password, IP and JWT; its registrations are dropped)", 403, "Account suspended", ""}},
	{Code: ESourceNotAllowed, HTTP: 403, SIP: &SIPRefusal{"source outside the account's IP ACL", 403, "Source not allowed", ""}},
	{Code: ETechPrefixRequired, HTTP: 409, SIP: &SIPRefusal{"shared IP without a matching tech prefix", 403, "Tech prefix required", ""}},
	{Code: EChannelLimit, HTTP: 429, SIP: &SIPRefusal{"customer channel limit reached", 403, "Channel limit reached", ""}},
	{Code: EChannelCap, HTTP: 429, SIP: &SIPRefusal{"SIP account channel cap reached", 403, "SIP account channel cap reached", ""}},
	{Code: EInvalidNumber, HTTP: 422, Form: 422, SIP: &SIPRefusal{"dialed number not E.164 after normalising", 484, "Address Incomplete", ""}},
	{Code: EUnavailable, HTTP: 503, SIP: &SIPRefusal{"store unreachable (fail closed), the edge not ready (database probe failing, draining) or its channel leases not renewed (fenced), with Retry-After", 503, "Service Unavailable", ""}},
	{Code: SIPOverloaded, SIP: &SIPRefusal{"new INVITE while the edge is overloaded: its goroutines wait over `--overload-wait` (100 ms, 90th percentile, in two 250 ms samples in a row) for a CPU, or every datagram waits that long in its UDP socket, until the wait is under half that; calls up, in-dialog requests and REGISTERs go on; with Retry-After", 503, "Service Unavailable", ""}},
	{Code: SIPIntervalTooBrief, APICode: EInvalid, SIP: &SIPRefusal{"REGISTER expiry below the minimum, with Min-Expires", 423, "Interval Too Brief", ""}},
	{Code: SIPTooManyContacts, SIP: &SIPRefusal{"REGISTER of a new contact when the SIP account has `--max-contacts` live contacts (default 10) on all edges", 403, "Too many contacts", ""}},
	{Code: SIPNoCarrier, SIP: &SIPRefusal{"outbound call on an edge started without `--carrier` (the startup log warns)", 503, "No carrier configured", ""}},
	{Code: SIPBanned, SIP: &SIPRefusal{"source banned after failed authentication or a flood, at this edge or any other (shared through the store)", 0, "", ""}},
	{Code: SIPUnknownDID, SIP: &SIPRefusal{"inbound: unknown DID", 404, "Not Found", ""}},
	{Code: SIPNobodyRegistered, SIP: &SIPRefusal{"inbound: nobody registered", 480, "Temporarily Unavailable", ""}},

	{Code: EInvalid, HTTP: 422, Form: 422},
	{Code: ENotFound, HTTP: 404},
	{Code: EConflict, HTTP: 409, Form: 409},
	{Code: EQuotaExceeded, HTTP: 403, Form: 422},
	{Code: ETrialLocked, HTTP: 403, Form: 422},
	{Code: ERateLimited, HTTP: 429, Form: 429},
	{Code: ENotImplemented, HTTP: 501},
	{Code: EInternal, HTTP: 500},
}

var codeIndex = func() map[string]*CodeInfo {
	m := make(map[string]*CodeInfo, len(codeTable))
	for i := range codeTable {
		m[codeTable[i].Code] = &codeTable[i]
	}
	return m
}()

// CodeTable returns a copy of the table, rows with a SIP answer first in the
// documented order.
func CodeTable() []CodeInfo {
	return append([]CodeInfo(nil), codeTable...)
}

// HTTPStatus is the status with which the API and the portal's error pages
// answer an error code; 500 for codes outside the table. SIP* keys answer as
// the code they report.
func HTTPStatus(code string) int {
	r := codeIndex[code]
	switch {
	case r == nil:
		return 500
	case r.HTTP != 0:
		return r.HTTP
	case r.APICode != "" && r.APICode != code:
		return HTTPStatus(r.APICode)
	}
	return 500
}

// FormStatus is the status of a portal form shown again with the error's
// message, or 0 when the error is not one the customer can fix in the form
// (the portal then answers with an error page of HTTPStatus).
func FormStatus(code string) int {
	if r := codeIndex[code]; r != nil {
		return r.Form
	}
	return 0
}

// SIPAnswerFor is the edge's answer to a refusal code: a SIP status and
// reason phrase, status 0 meaning drop the request unanswered. A code the
// edge does not refuse with gets the answer of EUnavailable: the edge fails
// closed.
func SIPAnswerFor(code string) (status int, reason string) {
	r := codeIndex[code]
	if r == nil || r.SIP == nil {
		r = codeIndex[EUnavailable]
	}
	return r.SIP.Status, r.SIP.Reason
}

// RefusalFor is the refusal code for a domain error (e.g. from channel
// admission): "" for nil, the error's code when the edge has an answer for
// it, EUnavailable for any other error (fail closed).
func RefusalFor(err error) string {
	if err == nil {
		return ""
	}
	code := ErrorCode(err)
	if r := codeIndex[code]; r != nil && r.SIP != nil {
		return code
	}
	return EUnavailable
}

// RefusalCode is the code a refusal is counted and recorded under (metrics,
// call records): the API error code it reports, or its own key when it has
// none (SIPBanned, SIPUnknownDID, SIPNobodyRegistered).
func RefusalCode(code string) string {
	if c := APICode(code); c != "" {
		return c
	}
	return code
}

// APICode is the API error code a code reports: the code itself for E*
// codes, the code a SIP* key stands for, "" when none.
func APICode(code string) string {
	r := codeIndex[code]
	switch {
	case r == nil:
		return ""
	case r.APICode != "":
		return r.APICode
	case r.HTTP != 0:
		return r.Code
	}
	return ""
}

// RefusalCodes lists the codes the edge refuses with, in the documented
// order.
func RefusalCodes() []string {
	var cs []string
	for _, r := range codeTable {
		if r.SIP != nil {
			cs = append(cs, r.Code)
		}
	}
	return cs
}

// RefusalsMarkdown renders the edge's refusals as docs/refusals.md shows
// them.
func RefusalsMarkdown() string {
	var b strings.Builder
	b.WriteString("| situation | SIP answer | API error code |\n|---|---|---|\n")
	for _, r := range codeTable {
		if r.SIP == nil {
			continue
		}
		ans := r.SIP.Answer
		switch {
		case ans != "":
		case r.SIP.Status == 0:
			ans = "no answer (dropped)"
		default:
			ans = "`" + strconv.Itoa(r.SIP.Status) + " " + r.SIP.Reason + "`"
		}
		code := "—"
		if c := APICode(r.Code); c != "" {
			code = "`" + c + "`"
		}
		b.WriteString("| " + r.SIP.Situation + " | " + ans + " | " + code + " |\n")
	}
	return b.String()
}
