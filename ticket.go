package sipdesk

import (
	"strings"
	"time"
	"unicode/utf8"
)

// TicketKind is what a support ticket asks for.
type TicketKind string

const (
	TicketChannelLimit TicketKind = "channel_limit" // more concurrent channels
	TicketSIPAccounts  TicketKind = "sip_accounts"  // a larger SIP account quota
)

// TicketStatus is where a ticket stands.
type TicketStatus string

const (
	TicketOpen     TicketStatus = "open"
	TicketApproved TicketStatus = "approved"
	TicketDeclined TicketStatus = "declined"
)

// MaxSIPAccountQuota bounds what a ticket may ask for.
const MaxSIPAccountQuota = 10000

// Ticket is a customer's support request that an operator decides.
type Ticket struct {
	ID         int64
	CustomerID int64
	Kind       TicketKind
	Wanted     int
	Reason     string
	Status     TicketStatus
	Message    string // the operator's answer
	CreatedAt  time.Time
	DecidedAt  time.Time
}

// NewTicket validates a customer's request against the account as it is.
func NewTicket(c *Customer, kind TicketKind, wanted int, reason string) (*Ticket, error) {
	reason = strings.TrimSpace(reason)
	if utf8.RuneCountInString(reason) > 2000 {
		return nil, FieldError("reason", "must be at most 2000 characters")
	}
	switch kind {
	case TicketChannelLimit:
		if c.BillingState != BillingPaid {
			return nil, &Error{Code: ETrialLocked, Field: "kind", Message: "the channel limit increases after your first top-up; top up before asking for more channels"}
		}
		if wanted <= c.ChannelLimit || wanted > MaxChannelLimit {
			return nil, FieldError("wanted", "must be more than your current limit (%d) and at most %d", c.ChannelLimit, MaxChannelLimit)
		}
	case TicketSIPAccounts:
		if wanted <= c.SIPAccountQuota || wanted > MaxSIPAccountQuota {
			return nil, FieldError("wanted", "must be more than your current quota (%d) and at most %d", c.SIPAccountQuota, MaxSIPAccountQuota)
		}
	default:
		return nil, FieldError("kind", "must be %q or %q", TicketChannelLimit, TicketSIPAccounts)
	}
	return &Ticket{CustomerID: c.ID, Kind: kind, Wanted: wanted, Reason: reason, Status: TicketOpen}, nil
}

// Approve applies the ticket to its customer.
func (t *Ticket) Approve(c *Customer, now time.Time) error {
	if t.Status != TicketOpen {
		return Errorf(EConflict, "ticket %d is already %s", t.ID, t.Status)
	}
	switch t.Kind {
	case TicketChannelLimit:
		if err := c.SetChannelLimit(t.Wanted); err != nil {
			return err
		}
	case TicketSIPAccounts:
		c.SIPAccountQuota = t.Wanted
	}
	t.Status, t.DecidedAt = TicketApproved, now
	return nil
}

// Decline closes the ticket with a message to the customer.
func (t *Ticket) Decline(message string, now time.Time) error {
	if t.Status != TicketOpen {
		return Errorf(EConflict, "ticket %d is already %s", t.ID, t.Status)
	}
	message = strings.TrimSpace(message)
	if message == "" || utf8.RuneCountInString(message) > 2000 {
		return FieldError("message", "must be 1 to 2000 characters")
	}
	t.Status, t.Message, t.DecidedAt = TicketDeclined, message, now
	return nil
}
