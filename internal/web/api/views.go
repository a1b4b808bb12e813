package api

import (
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

// The JSON shapes of the Contract. Field names are fixed; new ones may be
// added, none renamed.

type accountJSON struct {
	ID              int64  `json:"id"`
	Email           string `json:"email"`
	BillingState    string `json:"billing_state"`
	ChannelLimit    int    `json:"channel_limit"`
	ChannelScope    string `json:"channel_scope"`
	SIPAccountQuota int    `json:"sip_account_quota"`
	SIPAccountCount int    `json:"sip_account_count"`
	VerifiedPhone   string `json:"verified_phone"`
}

func accountView(c *sipdesk.Customer, count int) accountJSON {
	return accountJSON{
		ID: c.ID, Email: c.Email, BillingState: string(c.BillingState), ChannelLimit: c.ChannelLimit,
		ChannelScope: c.ChannelScope, SIPAccountQuota: c.SIPAccountQuota, SIPAccountCount: count,
		VerifiedPhone: c.VerifiedPhone,
	}
}

type callerIDJSON struct {
	DefaultNumber string  `json:"default_number"`
	DisplayName   string  `json:"display_name"`
	RuleIDs       []int64 `json:"rule_ids"`
}

type sipAccountJSON struct {
	ID         int64        `json:"id"`
	Name       string       `json:"name"`
	AuthType   string       `json:"auth_type"`
	Username   string       `json:"username"`
	Password   string       `json:"password,omitempty"` // only in the answer that created it
	AllowedIPs []string     `json:"allowed_ips"`
	TechPrefix string       `json:"tech_prefix"`
	Status     string       `json:"status"`
	JWTEnabled bool         `json:"jwt_enabled"`
	ChannelCap int          `json:"channel_cap"`
	CallerID   callerIDJSON `json:"caller_id"`
	CreatedAt  time.Time    `json:"created_at"`
	UpdatedAt  time.Time    `json:"updated_at"`
}

// sipAccountView shows a SIP account with its username masked.
func sipAccountView(a *sipdesk.SIPAccount) sipAccountJSON {
	rules := append([]int64{}, a.CallerID.RuleIDs...)
	return sipAccountJSON{
		ID: a.ID, Name: a.Name, AuthType: string(a.AuthType), Username: sipdesk.MaskUsername(a.Username),
		AllowedIPs: ipStrings(a.AllowedIPs), TechPrefix: a.TechPrefix, Status: string(a.Status),
		JWTEnabled: a.JWTEnabled, ChannelCap: a.ChannelCap,
		CallerID:  callerIDJSON{DefaultNumber: a.CallerID.DefaultNumber, DisplayName: a.CallerID.DisplayName, RuleIDs: rules},
		CreatedAt: a.CreatedAt.UTC(), UpdatedAt: a.UpdatedAt.UTC(),
	}
}

// ipStrings shows single addresses without their /32 or /128.
func ipStrings(ps []sipdesk.AllowedIP) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		if p.Port == 0 && p.IsSingleIP() {
			out = append(out, p.Addr().String())
		} else {
			out = append(out, p.String())
		}
	}
	return out
}

type ruleJSON struct {
	ID          int64    `json:"id"`
	Name        string   `json:"name"`
	ApplyFor    string   `json:"apply_for"`
	Country     string   `json:"country"`
	Prefix      string   `json:"prefix"`
	Type        string   `json:"type"`
	Numbers     []string `json:"numbers"`
	DisplayName string   `json:"display_name"`
	Summary     string   `json:"summary"`
}

func ruleView(r *sipdesk.CallerIDRule) ruleJSON {
	return ruleJSON{
		ID: r.ID, Name: r.Name, ApplyFor: string(r.ApplyFor), Country: r.Country, Prefix: r.Prefix,
		Type: string(r.Type), Numbers: append([]string{}, r.Numbers...), DisplayName: r.DisplayName,
		Summary: r.Summary(),
	}
}

type callerIDNumberJSON struct {
	ID        int64         `json:"id"`
	Number    string        `json:"number"`
	Verified  bool          `json:"verified"`
	CreatedAt time.Time     `json:"created_at"`
	Delivery  *deliveryJSON `json:"delivery,omitempty"` // the last code's way to the phone (unverified numbers)
}

// deliveryJSON is how the last code sent to a number went: channel (sms
// gateway, voice), state (queued, sent, delivered, undelivered, failed) and
// why the last try failed.
type deliveryJSON struct {
	Channel string `json:"channel"`
	State   string `json:"state"`
	Error   string `json:"error,omitempty"`
}

func deliveryView(m *sipdesk.VerificationMessage) *deliveryJSON {
	if m == nil {
		return nil
	}
	return &deliveryJSON{Channel: m.Channel, State: string(m.State), Error: m.LastError}
}

func callerIDNumberView(n *sipdesk.CallerIDNumber) callerIDNumberJSON {
	return callerIDNumberJSON{ID: n.ID, Number: n.Number, Verified: n.Verified, CreatedAt: n.CreatedAt.UTC()}
}

type ticketJSON struct {
	ID        int64      `json:"id"`
	Kind      string     `json:"kind"`
	Wanted    int        `json:"wanted"`
	Reason    string     `json:"reason"`
	Status    string     `json:"status"`
	Message   string     `json:"message"`
	CreatedAt time.Time  `json:"created_at"`
	DecidedAt *time.Time `json:"decided_at"`
}

func ticketView(t *sipdesk.Ticket) ticketJSON {
	return ticketJSON{
		ID: t.ID, Kind: string(t.Kind), Wanted: t.Wanted, Reason: t.Reason, Status: string(t.Status),
		Message: t.Message, CreatedAt: t.CreatedAt.UTC(), DecidedAt: timePtr(t.DecidedAt),
	}
}

type tokenJSON struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Token      string     `json:"token,omitempty"` // only in the answer that created it
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

func tokenView(t *sipdesk.APIToken) tokenJSON {
	return tokenJSON{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt.UTC(), LastUsedAt: timePtr(t.LastUsedAt)}
}

type auditJSON struct {
	ID           int64     `json:"id"`
	SIPAccountID *int64    `json:"sip_account_id"`
	Actor        string    `json:"actor"`
	By           string    `json:"by"` // the actor in words
	Action       string    `json:"action"`
	Detail       string    `json:"detail"`
	At           time.Time `json:"at"`
}

func auditView(e *sipdesk.AuditEntry) auditJSON {
	v := auditJSON{ID: e.ID, Actor: e.Actor, By: app.ActorWords(e.Actor), Action: e.Action, Detail: e.Detail, At: e.At.UTC()}
	if e.SIPAccountID != 0 {
		id := e.SIPAccountID
		v.SIPAccountID = &id
	}
	return v
}

type simulationJSON struct {
	CallerID    string `json:"caller_id"`    // as call records show it: the From user, or "anonymous"
	DisplayName string `json:"display_name"` // the From display name
	RuleID      *int64 `json:"rule_id"`
	Reason      string `json:"reason"`
	Anonymous   bool   `json:"anonymous"` // From "Anonymous" <sip:anonymous@anonymous.invalid>
	// The final header values of the carrier leg.
	FromUser string `json:"from_user"`
	PAI      string `json:"p_asserted_identity"` // user part; "" when none is sent
	Privacy  string `json:"privacy"`             // "id", or "" when none is sent
}

func simulationView(h sipdesk.CallerIDHeaders) simulationJSON {
	v := simulationJSON{CallerID: h.CallerID(), DisplayName: h.FromDisplay, Reason: h.Reason, Anonymous: h.Anonymous,
		FromUser: h.FromUser, PAI: h.PAI, Privacy: h.Privacy}
	if h.RuleID != 0 {
		id := h.RuleID
		v.RuleID = &id
	}
	return v
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
