package app

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sipdesk/sipdesk"
)

// Call records and the audit log as the customer reads them (portal, API,
// CSV): keyset pages with an opaque cursor, filters, usernames masked.

// MaxPage is the largest page of call records or audit entries.
const MaxPage = 500

// exportPage is how many records an export reads per transaction: memory
// stays bounded whatever the size of the filtered set.
const exportPage = 500

// encodeKey makes an opaque cursor of a (time, id) listing position.
func encodeKey(at time.Time, id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixMilli(), 10) + "." + strconv.FormatInt(id, 10)))
}

// decodeKey reads a cursor of encodeKey; ok is false for anything else.
func decodeKey(s string) (at time.Time, id int64, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return at, 0, false
	}
	a, i, found := strings.Cut(string(b), ".")
	msec, err1 := strconv.ParseInt(a, 10, 64)
	id, err2 := strconv.ParseInt(i, 10, 64)
	if !found || err1 != nil || err2 != nil || id <= 0 || msec < 0 {
		return at, 0, false
	}
	return time.UnixMilli(msec).UTC(), id, true
}

// CallCursor is the cursor of the page that follows r.
func CallCursor(r *sipdesk.CallRecord) string { return encodeKey(r.StartedAt, r.ID) }

var numberSearch = regexp.MustCompile(`^[0-9+*#]{1,32}$`)

// CallFilterOf reads the call record filters of a query string (the
// portal's GET form and GET /api/v1/calls use the same names): since and
// until (RFC 3339, or a date: until then includes that whole day),
// sip_account, direction, disposition, number, and the cursor in cursorName.
// Errors name the parameter.
func CallFilterOf(q url.Values, cursorName string) (sipdesk.CallFilter, error) {
	var f sipdesk.CallFilter
	var err error
	if f.Since, err = timeParam(q, "since", false); err != nil {
		return f, err
	}
	if f.Until, err = timeParam(q, "until", true); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return f, sipdesk.FieldError("until", "must be after since")
	}
	if s := q.Get("sip_account"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return f, sipdesk.FieldError("sip_account", "must be a SIP account id")
		}
		f.SIPAccountID = id
	}
	switch f.Direction = q.Get("direction"); f.Direction {
	case "", sipdesk.DirInbound, sipdesk.DirOutbound:
	default:
		return f, sipdesk.FieldError("direction", "must be inbound or outbound")
	}
	if f.Disposition = q.Get("disposition"); f.Disposition != "" && !sipdesk.ValidDisposition(f.Disposition) {
		ds := make([]string, len(sipdesk.CallResults))
		for i, r := range sipdesk.CallResults {
			ds[i] = r.Disposition
		}
		return f, sipdesk.FieldError("disposition", "must be one of %s", strings.Join(ds, ", "))
	}
	if f.Number = strings.TrimSpace(q.Get("number")); f.Number != "" && !numberSearch.MatchString(f.Number) {
		return f, sipdesk.FieldError("number", "must be up to 32 digits (with + * #)")
	}
	if s := q.Get(cursorName); s != "" {
		at, id, ok := decodeKey(s)
		if !ok {
			return f, sipdesk.FieldError(cursorName, "must be the \"next\" cursor of the previous page")
		}
		f.After = &sipdesk.CallKey{StartedAt: at, ID: id}
	}
	return f, nil
}

// timeParam reads an RFC 3339 time or a YYYY-MM-DD date (UTC); a date as
// an upper bound means the end of that day.
func timeParam(q url.Values, name string, upper bool) (time.Time, error) {
	s := strings.TrimSpace(q.Get(name))
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return t, sipdesk.FieldError(name, "must be a date like 2026-11-25 or a time like 2026-11-25T10:00:00Z")
	}
	if upper {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

// CallPage is one page of call records and the cursor of the next ("" at
// the end).
type CallPage struct {
	Records []*sipdesk.CallRecord
	Next    string
}

// CallRecordsPage lists one page (limit 1..MaxPage) of the customer's call
// records that f selects, newest first, usernames masked (MaskCallRecord).
func (s *Service) CallRecordsPage(ctx context.Context, customerID int64, f sipdesk.CallFilter, limit int) (*CallPage, error) {
	if limit <= 0 || limit > MaxPage {
		limit = MaxPage
	}
	f.CustomerID, f.Limit = customerID, limit+1
	p := &CallPage{}
	err := s.view(ctx, func(tx sipdesk.Tx) error {
		as, err := tx.SIPAccounts(customerID)
		if err != nil {
			return err
		}
		rs, err := tx.CallRecords(f)
		if err != nil {
			return err
		}
		if len(rs) > limit {
			rs = rs[:limit]
			p.Next = CallCursor(rs[limit-1])
		}
		p.Records = maskCalls(rs, as)
		return nil
	})
	return p, err
}

// ExportCalls calls fn with every call record f selects, newest first,
// masked like CallRecordsPage, reading exportPage records per transaction
// (no transaction stays open while fn writes to a slow client). It stops
// at fn's first error.
func (s *Service) ExportCalls(ctx context.Context, customerID int64, f sipdesk.CallFilter, fn func(*sipdesk.CallRecord) error) error {
	for {
		p, err := s.CallRecordsPage(ctx, customerID, f, exportPage)
		if err != nil {
			return err
		}
		for _, r := range p.Records {
			if err := fn(r); err != nil {
				return err
			}
		}
		if p.Next == "" {
			return nil
		}
		last := p.Records[len(p.Records)-1]
		f.After = &sipdesk.CallKey{StartedAt: last.StartedAt, ID: last.ID}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

func maskCalls(rs []*sipdesk.CallRecord, as []*sipdesk.SIPAccount) []*sipdesk.CallRecord {
	byID := make(map[int64]*sipdesk.SIPAccount, len(as))
	for _, a := range as {
		byID[a.ID] = a
	}
	for _, r := range rs {
		MaskCallRecord(r, byID[r.SIPAccountID])
	}
	return rs
}

// MaskCallRecord hides SIP usernames in a record's From and To as the SIP
// Accounts page does (sipdesk.MaskUsername): the account's username
// wherever it appears, and the user part of From on an outbound call of a
// password account (or of a deleted one, acct nil), which is the username
// the device authenticated with, perhaps one changed since.
func MaskCallRecord(r *sipdesk.CallRecord, acct *sipdesk.SIPAccount) {
	if acct != nil && acct.Username != "" {
		m := sipdesk.MaskUsername(acct.Username)
		r.From = strings.ReplaceAll(r.From, acct.Username, m)
		r.To = strings.ReplaceAll(r.To, acct.Username, m)
	}
	if r.Direction == sipdesk.DirOutbound && (acct == nil || acct.AuthType == sipdesk.AuthPassword) {
		r.From = maskURIUser(r.From)
	}
}

// maskURIUser masks the user part of the sip: or sips: URI in s (and a
// display name equal to it).
func maskURIUser(s string) string {
	i := strings.Index(s, "sip:")
	if j := strings.Index(s, "sips:"); j >= 0 && (i < 0 || j < i) {
		i = j + 1
	}
	if i < 0 {
		return s
	}
	start := i + len("sip:")
	at := strings.IndexByte(s[start:], '@')
	if at <= 0 {
		return s
	}
	user := s[start : start+at]
	if strings.Contains(user, "••") {
		return s // masked already
	}
	m := sipdesk.MaskUsername(user)
	out := s[:start] + m + s[start+at:]
	if len(user) >= 4 {
		out = strings.ReplaceAll(out[:start], user, m) + out[start:]
	}
	return out
}

// AuditKinds group the actions of the audit log for its filter, in the
// order the portal offers them.
var AuditKinds = []struct {
	Kind, Label string
	Actions     []string
}{
	{"sign_in", "Sign-in and security", []string{sipdesk.AuditLogin, sipdesk.AuditLoginFailed, sipdesk.AuditPasswordChanged,
		sipdesk.AuditPasswordReset, sipdesk.AuditTOTPEnabled, sipdesk.AuditTOTPDisabled, sipdesk.AuditRecoveryUsed, sipdesk.AuditSessionRevoked,
		sipdesk.AuditPasskeyAdded, sipdesk.AuditPasskeyRemoved, sipdesk.AuditPasskeyUsed}},
	{"sip_accounts", "SIP accounts", []string{sipdesk.AuditSIPAccountCreated, sipdesk.AuditSIPAccountUpdated, sipdesk.AuditSIPAccountDeleted,
		sipdesk.AuditSIPAccountApprove, sipdesk.AuditStatusChanged, sipdesk.AuditAuthTypeChanged, sipdesk.AuditJWTChanged, sipdesk.AuditPasswordGuessing}},
	{"credentials", "Credentials and reveals", []string{sipdesk.AuditUsernameRevealed, sipdesk.AuditCredentialsChange, sipdesk.AuditCredentialReset}},
	{"caller_id", "Caller ID", []string{sipdesk.AuditCallerIDChanged, sipdesk.AuditRuleChanged, sipdesk.AuditCallerIDVerified}},
	{"billing", "Billing and limits", []string{sipdesk.AuditTopUp, sipdesk.AuditChannelLimit, sipdesk.AuditTicketDecided, sipdesk.AuditPhoneVerified}},
	{"api_tokens", "API tokens", []string{sipdesk.AuditTokenCreated}},
}

// AuditFilterOf reads the audit log filters of a query string: kind (one
// of AuditKinds), since and until (as CallFilterOf) and the cursor in
// cursorName.
func AuditFilterOf(q url.Values, cursorName string) (sipdesk.AuditFilter, error) {
	var f sipdesk.AuditFilter
	var err error
	if f.Since, err = timeParam(q, "since", false); err != nil {
		return f, err
	}
	if f.Until, err = timeParam(q, "until", true); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return f, sipdesk.FieldError("until", "must be after since")
	}
	if k := q.Get("kind"); k != "" {
		names := make([]string, len(AuditKinds))
		for i, ak := range AuditKinds {
			names[i] = ak.Kind
			if ak.Kind == k {
				f.Actions = ak.Actions
			}
		}
		if f.Actions == nil {
			return f, sipdesk.FieldError("kind", "must be one of %s", strings.Join(names, ", "))
		}
	}
	if s := q.Get(cursorName); s != "" {
		at, id, ok := decodeKey(s)
		if !ok {
			return f, sipdesk.FieldError(cursorName, "must be the \"next\" cursor of the previous page")
		}
		f.After = &sipdesk.AuditKey{At: at, ID: id}
	}
	return f, nil
}

// AuditPage is one page of the audit log and the cursor of the next.
type AuditPage struct {
	Entries []*sipdesk.AuditEntry
	Next    string
}

// AuditLogPage lists one page (limit 1..MaxPage) of the customer's audit
// log that f selects, newest first, as the customer sees it (forCustomer).
func (s *Service) AuditLogPage(ctx context.Context, customerID int64, f sipdesk.AuditFilter, limit int) (*AuditPage, error) {
	if limit <= 0 || limit > MaxPage {
		limit = MaxPage
	}
	f.CustomerID, f.Limit = customerID, limit+1
	var es []*sipdesk.AuditEntry
	err := s.view(ctx, func(tx sipdesk.Tx) (err error) {
		es, err = tx.AuditPage(f)
		return err
	})
	if err != nil {
		return nil, err
	}
	p := &AuditPage{}
	if len(es) > limit {
		es = es[:limit]
		p.Next = encodeKey(es[limit-1].At, es[limit-1].ID)
	}
	for _, e := range es {
		p.Entries = append(p.Entries, forCustomer(e))
	}
	return p, nil
}

// TokenActor is the customer acting through one API token: the audit log
// names the token ("API token 'billing-sync'"), as it was called then.
func TokenActor(t *sipdesk.APIToken) Actor {
	return CustomerActor(t.CustomerID, "api:"+strconv.FormatInt(t.ID, 10)+":"+t.Name)
}

// ActorWords says who did something in words for the customer whose log
// it is: "You, in the portal", "API token 'billing-sync'", "Support" (an
// operator, never which one), "The system".
func ActorWords(actor string) string {
	if strings.HasPrefix(actor, string(ActorOperator)) {
		return "Support"
	}
	if _, via, ok := strings.Cut(strings.TrimPrefix(actor, "customer:"), "/"); ok && strings.HasPrefix(actor, "customer:") {
		switch {
		case via == "portal":
			return "You, in the portal"
		case via == "email-link":
			return "You, with the emailed link"
		case via == "api":
			return "An API token"
		case strings.HasPrefix(via, "api:"):
			if _, name, ok := strings.Cut(strings.TrimPrefix(via, "api:"), ":"); ok {
				return "API token '" + name + "'"
			}
			return "An API token"
		}
		return "You"
	}
	if strings.HasPrefix(actor, "edge:") {
		return "The system (SIP edge)"
	}
	return "The system"
}

// MaxExports is how many call record exports one customer may stream at
// once: each holds a connection and reads the store page after page.
const MaxExports = 2

// StartExport reserves one of the customer's MaxExports export places
// (ERateLimited when none is free); call done when the export ends.
func (s *Service) StartExport(customerID int64) (done func(), err error) {
	key := []string{strconv.FormatInt(customerID, 10)}
	if !s.exports.enter(key, []int{MaxExports}) {
		return nil, sipdesk.Errorf(sipdesk.ERateLimited, "%d exports are already running: wait for one to finish", MaxExports)
	}
	return func() { s.exports.leave(key) }, nil
}

// CallsCSVHeader is the first row of a call records export.
var CallsCSVHeader = []string{"id", "started_at", "sip_account_id", "sip_account", "direction", "from", "to", "caller_id",
	"duration_seconds", "disposition", "sip_code", "result", "reason", "call_id"}

// WriteCallsCSV streams every call record f selects as CSV (RFC 4180,
// CallsCSVHeader first), flushing w after each page read when it can. A
// cell starting with = + - @ (or a tab or carriage return) gets a leading
// ' so that a spreadsheet shows it as text instead of running it as a
// formula.
func (s *Service) WriteCallsCSV(ctx context.Context, customerID int64, f sipdesk.CallFilter, w io.Writer) error {
	as, err := s.SIPAccounts(ctx, customerID)
	if err != nil {
		return err
	}
	names := make(map[int64]string, len(as))
	for _, a := range as {
		names[a.ID] = a.Name
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(CallsCSVHeader); err != nil {
		return err
	}
	n := 0
	err = s.ExportCalls(ctx, customerID, f, func(r *sipdesk.CallRecord) error {
		name, ok := names[r.SIPAccountID]
		if !ok {
			name = "deleted account"
		}
		row := []string{strconv.FormatInt(r.ID, 10), r.StartedAt.UTC().Format(time.RFC3339), strconv.FormatInt(r.SIPAccountID, 10),
			name, r.Direction, r.From, r.To, r.CallerID, strconv.FormatFloat(r.Duration().Seconds(), 'f', -1, 64), r.Disposition,
			strconv.Itoa(r.SIPCode), sipdesk.CallResult(r), r.Reason, r.CallID}
		for i, c := range row {
			row[i] = csvSafe(c)
		}
		if err := cw.Write(row); err != nil {
			return err
		}
		if n++; n%exportPage == 0 {
			return flush(cw, w)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush(cw, w)
}

func flush(cw *csv.Writer, w io.Writer) error {
	cw.Flush()
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	return cw.Error()
}

// csvSafe defuses spreadsheet formulas (OWASP "CSV injection").
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// LiveCall is a call holding a channel now, with the destination its
// record gives (masked like the call records; "" while the edge has not
// stored the record yet).
type LiveCall struct {
	*sipdesk.CallLease
	To string
}

// LiveCalls lists the customer's live calls on every edge node, oldest
// first, with their destinations.
func (s *Service) LiveCalls(ctx context.Context, customerID int64) ([]LiveCall, error) {
	var out []LiveCall
	err := s.view(ctx, func(tx sipdesk.Tx) error {
		ls, err := tx.Leases(customerID, s.now())
		if err != nil || len(ls) == 0 {
			return err
		}
		as, err := tx.SIPAccounts(customerID)
		if err != nil {
			return err
		}
		// Live calls are bounded by the channel limit: their in-progress
		// records, newest first, cover them.
		rs, err := tx.CallRecords(sipdesk.CallFilter{CustomerID: customerID, Disposition: sipdesk.DispActive, Limit: 4*len(ls) + 20})
		if err != nil {
			return err
		}
		to := make(map[string]string, len(rs))
		for _, r := range maskCalls(rs, as) {
			to[r.CallID] = r.To
		}
		for _, l := range ls {
			out = append(out, LiveCall{CallLease: l, To: to[l.CallID]})
		}
		return nil
	})
	return out, err
}
