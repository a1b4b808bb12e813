package sipdesk

import (
	"net/mail"
	"strings"
	"time"
	"unicode"
)

// BillingState is where a customer account stands with the provider.
type BillingState string

const (
	BillingUnverified BillingState = "unverified" // signed up, phone not yet verified
	BillingTrial      BillingState = "trial"      // verified, no top-up yet
	BillingPaid       BillingState = "paid"       // topped up at least once
)

// Channel limit scopes: which calls count against the limit.
const (
	ScopeOutbound = "outbound"
	ScopeBoth     = "both"
)

// Defaults of a customer account. PaidChannelLimit is the default of the
// operator setting; the service is given the configured value.
const (
	TrialChannelLimit       = 1
	DefaultPaidChannelLimit = 10
	DefaultSIPAccountQuota  = 10
	MaxChannelLimit         = 100000
)

// Customer is one customer account of the provider.
type Customer struct {
	ID              int64
	Email           string
	PasswordHash    string // argon2id PHC string
	VerifiedPhone   string // E.164 with '+'
	BillingState    BillingState
	ChannelLimit    int
	ChannelScope    string
	SIPAccountQuota int
	TopUpTotalCents int64
	CreatedAt       time.Time
	// SuspendedAt is when an operator suspended the account (zero: not
	// suspended), with the operator's reason: every SIP account of it is
	// refused at the edge, the portal and the API turn the customer away.
	SuspendedAt     time.Time
	SuspendedReason string
}

// Suspended reports whether an operator suspended the account.
func (c *Customer) Suspended() bool { return !c.SuspendedAt.IsZero() }

// ErrSuspended is how the portal, the API and the edge turn a suspended
// customer away.
func ErrSuspended() error {
	return &Error{Code: ECustomerSuspended, Message: "This account is suspended. Contact support."}
}

// Trial reports whether the customer is limited by the trial rules.
func (c *Customer) Trial() bool { return c.BillingState != BillingPaid }

// TopUp records an amount and moves a trial account to paid, raising its
// channel limit to paidLimit unless an operator already set a higher one.
func (c *Customer) TopUp(amountCents int64, paidLimit int) error {
	if amountCents <= 0 {
		return FieldError("amount", "must be greater than zero")
	}
	if c.BillingState == BillingUnverified {
		return Errorf(EForbidden, "the customer has not verified a phone number yet")
	}
	c.TopUpTotalCents += amountCents
	if c.BillingState != BillingPaid {
		c.BillingState = BillingPaid
		if c.ChannelLimit < paidLimit {
			c.ChannelLimit = paidLimit
		}
	}
	return nil
}

// SetChannelLimit validates and sets the account-wide channel limit.
func (c *Customer) SetChannelLimit(n int) error {
	if n < 0 || n > MaxChannelLimit {
		return FieldError("channel_limit", "must be between 0 and %d", MaxChannelLimit)
	}
	c.ChannelLimit = n
	return nil
}

// SetChannelScope validates and sets which calls count against the limit.
func (c *Customer) SetChannelScope(scope string) error {
	if scope != ScopeOutbound && scope != ScopeBoth {
		return FieldError("channel_scope", "must be %q or %q", ScopeOutbound, ScopeBoth)
	}
	c.ChannelScope = scope
	return nil
}

// NormalizeEmail validates an email address and returns it lower-cased.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || len(s) > 254 || !strings.Contains(s[strings.LastIndexByte(s, '@'):], ".") {
		return "", FieldError("email", "must be a valid email address")
	}
	return strings.ToLower(s), nil
}

// ValidatePortalPassword checks the customer's portal password policy: the
// same as SIP passwords, as both guard calls that cost money.
func ValidatePortalPassword(p string) error {
	if err := checkPassword(p); err != "" {
		return FieldError("password", "%s", err)
	}
	return nil
}

// checkPassword returns what is wrong with a password, or "".
func checkPassword(p string) string {
	if len(p) < 12 {
		return "must be at least 12 characters"
	}
	if len(p) > 128 {
		return "must be at most 128 characters"
	}
	var lower, upper, digit bool
	for _, r := range p {
		switch {
		case r < 0x21 || r > 0x7e:
			return "must use printable ASCII characters only"
		case unicode.IsLower(r):
			lower = true
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsDigit(r):
			digit = true
		}
	}
	if !lower || !upper || !digit {
		return "must contain a digit, a lower-case and an upper-case letter"
	}
	return ""
}
