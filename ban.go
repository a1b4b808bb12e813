package sipdesk

import "time"

// Ban is a source address an edge node banned (failed authentications, a
// flood of challenges or garbage), recorded so that every edge refuses it
// and an operator can lift it.
type Ban struct {
	Source    string // the IP address
	Reason    string // what the edge saw, e.g. "failed authentication"
	Node      string // the edge node that banned it
	CreatedAt time.Time
	ExpiresAt time.Time
}

// BanTx holds the shared bans' part of a transaction (internal/store/ban.go).
type BanTx interface {
	// PutBans records bans; a source already banned keeps one row with the
	// later expiry (and that ban's reason and node).
	PutBans(bs []*Ban) error
	// Bans lists the bans live at now, the latest expiry first, at most
	// limit of them (0: all).
	Bans(now time.Time, limit int) ([]*Ban, error)
	// Ban is the stored ban of a source (ENotFound when none).
	Ban(source string) (*Ban, error)
	// DeleteBan lifts the ban of a source (ENotFound when none is stored)
	// and signals a config change, so every edge drops it at once.
	DeleteBan(source string) error
	// DeleteExpiredBans deletes the bans that ended before now.
	DeleteExpiredBans(now time.Time) (int, error)
}

// Audit actions of suspensions and bans.
const (
	AuditCustomerSuspended   = "customer.suspended"
	AuditCustomerUnsuspended = "customer.unsuspended"
	AuditBanLifted           = "ban.lifted"
)
