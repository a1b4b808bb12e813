package sipdesk

import "time"

// OperatorRole is what a member of the provider's staff may do.
type OperatorRole string

// Operator roles, from least to most power.
const (
	RoleReadonly OperatorRole = "readonly" // sees everything, changes nothing
	RoleSupport  OperatorRole = "support"  // answers tickets, approves accounts
	RoleAdmin    OperatorRole = "admin"    // also money, limits, quotas, operators
)

// OperatorPower is the least role an operator action needs.
type OperatorPower int

// Powers of operator actions.
const (
	PowerView    OperatorPower = iota // read anything
	PowerSupport                      // tickets, In Process approvals
	PowerAdmin                        // top-ups, channel limits, quotas, operators
)

func (r OperatorRole) power() OperatorPower {
	switch r {
	case RoleAdmin:
		return PowerAdmin
	case RoleSupport:
		return PowerSupport
	}
	return PowerView
}

// May reports whether the role may perform an action needing p. An unknown
// role may only read.
func (r OperatorRole) May(p OperatorPower) bool { return r.power() >= p }

// Valid reports a known role.
func (r OperatorRole) Valid() bool {
	return r == RoleReadonly || r == RoleSupport || r == RoleAdmin
}

// Operator is a member of the provider's staff using the operator console
// or the operator API. Only the password's hash is stored; the TOTP secret
// is needed in clear to check codes.
type Operator struct {
	ID           int64
	Email        string
	PasswordHash string
	Role         OperatorRole
	TOTPSecret   string // base32
	TOTPLastStep int64  // the last accepted TOTP time step: a code works once
	Disabled     bool
	CreatedAt    time.Time
}

// OperatorSession is a console login; only its token's hash is stored.
type OperatorSession struct {
	ID         int64
	OperatorID int64
	Hash       string
	CreatedAt  time.Time
	ExpiresAt  time.Time
}

// OperatorToken is an operator API token (sdo_…); only its hash is stored.
type OperatorToken struct {
	ID         int64
	OperatorID int64
	Name       string
	Hash       string
	CreatedAt  time.Time
	LastUsedAt time.Time
}

// OperatorTx holds the operators' part of a transaction (internal/store/operator.go).
type OperatorTx interface {
	InsertOperator(o *Operator) error // sets ID and CreatedAt; an email taken is EConflict
	Operator(id int64) (*Operator, error)
	OperatorByEmail(email string) (*Operator, error)
	Operators() ([]*Operator, error)
	// UseOperatorTOTPStep records step as the operator's last TOTP step
	// when it is later than the recorded one, and reports whether it was.
	UseOperatorTOTPStep(id, step int64) (bool, error)

	InsertOperatorSession(s *OperatorSession) error
	OperatorSessionByHash(hash string) (*OperatorSession, error)
	DeleteOperatorSession(hash string) error
	DeleteExpiredOperatorSessions(now time.Time) (int, error)

	InsertOperatorToken(t *OperatorToken) error
	OperatorTokenByHash(hash string) (*OperatorToken, error)
	TouchOperatorToken(id int64, at time.Time) error
}
