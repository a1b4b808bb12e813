package sipdesk

import (
	"context"
	"time"
)

// APIToken is a customer's personal API token; only its hash is stored.
type APIToken struct {
	ID         int64
	CustomerID int64
	Name       string
	Hash       string
	CreatedAt  time.Time
	LastUsedAt time.Time
}

// Session is a portal login; only its token's hash is stored.
type Session struct {
	ID         int64
	CustomerID int64
	Hash       string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	UserAgent  string // the browser it started in (shortened), for the sessions list
	Source     string // the client address it started from
}

// CallerIDNumber is a number a customer may use as Caller ID once verified
// with a code, like the signup phone.
type CallerIDNumber struct {
	ID         int64
	CustomerID int64
	Number     string // "+<digits>"
	Verified   bool
	CodeHash   string // pending verification code (hashed)
	ExpiresAt  time.Time
	Attempts   int
	CreatedAt  time.Time
}

// CredentialReset is a pending Edit Credentials link: single use, short-lived,
// bound to one SIP account; only its hash is stored.
type CredentialReset struct {
	ID           int64
	CustomerID   int64
	SIPAccountID int64
	TokenHash    string
	ExpiresAt    time.Time
	UsedAt       time.Time
	CreatedAt    time.Time
}

// Mail is a message in the outbox (and the dev mailbox).
type Mail struct {
	ID        int64
	To        string
	Subject   string
	Text      string
	HTML      string
	CreatedAt time.Time
	SentAt    time.Time
}

// PendingSignup is a signup waiting for its email link (only the token's
// hash is stored).
type PendingSignup struct {
	TokenHash    string
	Email        string
	PasswordHash string
	Phone        string
	ExpiresAt    time.Time
}

// RedactedMailBody replaces a mail's body once it is delivered: reset links
// and codes do not stay in the outbox.
const RedactedMailBody = "(delivered; the body is not kept)"

// DID is a number of the provider routed to a SIP account for inbound calls.
type DID struct {
	Number       string // "+<digits>"
	SIPAccountID int64
	CustomerID   int64
}

// Registration is a SIP binding of a password account.
type Registration struct {
	SIPAccountID int64
	Contact      string // the Contact URI as registered
	Received     string // source "ip:port" it came from (rport/received)
	Transport    string // udp, tcp, tls, ws, wss
	CallID       string
	CSeq         uint32
	Node         string // the edge holding the binding's flow
	// EdgeAddr is that edge's SIP address ("host:port", UDP) that the other
	// edges send an inbound call's hop to; empty: reached directly.
	EdgeAddr  string
	UserAgent string
	ExpiresAt time.Time
}

// Node is a running sipdesk process, with the config version its edge has
// applied; accounts leave in_process once every live edge node applied them.
// The rest is what the node reported at its last heartbeat, for operators
// (`sipdesk admin node list`).
type Node struct {
	Name           string
	Role           string
	AppliedVersion int64
	Heartbeat      time.Time
	SIPAddr        string // the SIP listener (UDP/TCP host:port), "" without an edge
	HTTPAddr       string // the HTTP listener (health, metrics; portal on portal roles)
	Version        string // build version
	LiveCalls      int
	Bindings       int  // registrations held in this node's memory
	Draining       bool // refusing new calls before stopping
}

// Store opens transactions on the database. Update runs fn in one write
// transaction (serialised with every other write on SQLite, row locks on
// PostgreSQL) and commits when fn returns nil; View runs fn read-only.
type Store interface {
	Update(ctx context.Context, fn func(Tx) error) error
	View(ctx context.Context, fn func(Tx) error) error
	// ConfigVersion is the counter bumped by every write the edge cares
	// about; it is cheap to read from any process.
	ConfigVersion(ctx context.Context) (int64, error)
	// ConfigChanges subscribes to config changes: ch receives a signal
	// after each committed transaction that bumped the config version, in
	// this process and (PostgreSQL, LISTEN/NOTIFY) on any node, and once
	// each time the PostgreSQL listener (re)connects, since changes may have
	// been missed meanwhile. Signals coalesce (ch holds one) and carry no
	// version: on each, read ConfigVersion again. Keep a slow poll as a
	// fallback. stop ends the subscription and closes ch, as Close does.
	ConfigChanges() (ch <-chan struct{}, stop func())
	Close() error
}

type lazyCommitKey struct{}

// LazyCommit marks the Update calls made with the returned context as lazy:
// on SQLite their commit survives a crash of sipdesk but need not reach the
// disk before Update returns, so a power loss may lose the last fraction of a
// second of them. The edge uses it for writes that a dead host loses anyway:
// bindings (devices register again), channel leases (the calls die with the
// host) and call records. The next ordinary commit makes every earlier lazy
// one durable. PostgreSQL ignores it: the database may live on another host,
// whose crash the edge and its calls survive.
func LazyCommit(ctx context.Context) context.Context {
	return context.WithValue(ctx, lazyCommitKey{}, true)
}

// IsLazyCommit reports whether ctx was made by LazyCommit.
func IsLazyCommit(ctx context.Context) bool {
	v, _ := ctx.Value(lazyCommitKey{}).(bool)
	return v
}

// Tx is one transaction. Getters return an ENotFound *Error when nothing
// matches; unique violations come back as EConflict. Every customer-scoped
// getter takes the customer id and matches nothing of another customer;
// customerID 0 means any customer (operator and edge use).
//
// The writes of what the edge reads (customers, SIP accounts with their IPs
// and Caller ID selection, Caller ID rules and their numbers, verified
// Caller ID numbers, DIDs) bump the config version themselves, once per
// transaction, in the same transaction.
type Tx interface {
	// BumpConfigVersion increments the config version and returns it; each
	// call increments it again. Writes need not call it (see above).
	BumpConfigVersion() (int64, error)
	// ChangeVersion returns the config version under which this
	// transaction's changes reach the edges (an in_process SIP account waits
	// for it): the config version as bumped by this transaction, bumping it
	// now if nothing did yet. Later writes in the transaction do not bump
	// it again.
	ChangeVersion() (int64, error)

	InsertCustomer(c *Customer) error // sets ID and CreatedAt
	// Customer returns a customer; forUpdate locks the row until commit
	// (PostgreSQL; SQLite write transactions are serialised already).
	Customer(id int64, forUpdate bool) (*Customer, error)
	CustomerByEmail(email string) (*Customer, error)
	UpdateCustomer(c *Customer) error
	Customers() ([]*Customer, error)

	InsertAPIToken(t *APIToken) error
	APITokenByHash(hash string) (*APIToken, error)
	APITokens(customerID int64) ([]*APIToken, error)
	DeleteAPIToken(customerID, id int64) error
	TouchAPIToken(id int64, at time.Time) error

	InsertSession(s *Session) error
	SessionByHash(hash string) (*Session, error)
	DeleteSession(hash string) error
	DeleteExpiredSessions(now time.Time) (int, error)
	SecurityTx
	PasskeyTx

	InsertSIPAccount(a *SIPAccount) error // sets ID, CreatedAt, UpdatedAt
	SIPAccount(customerID, id int64) (*SIPAccount, error)
	SIPAccounts(customerID int64) ([]*SIPAccount, error) // customerID 0: all, for the edge snapshot
	SIPAccountByUsername(username string) (*SIPAccount, error)
	IPAccounts() ([]*SIPAccount, error) // every IP-auth account, for conflict checks
	UpdateSIPAccount(a *SIPAccount) error
	DeleteSIPAccount(customerID, id int64) error
	CountSIPAccounts(customerID int64) (int, error)

	InsertCallerIDNumber(n *CallerIDNumber) error
	CallerIDNumbers(customerID int64) ([]*CallerIDNumber, error)
	CallerIDNumber(customerID, id int64) (*CallerIDNumber, error)
	UpdateCallerIDNumber(n *CallerIDNumber) error
	DeleteCallerIDNumber(customerID, id int64) error

	InsertRule(r *CallerIDRule) error
	Rule(customerID, id int64) (*CallerIDRule, error)
	Rules(customerID int64) ([]*CallerIDRule, error) // customerID 0: all
	UpdateRule(r *CallerIDRule) error
	DeleteRule(customerID, id int64) error // also drops it from every selection

	InsertTicket(t *Ticket) error
	Ticket(customerID, id int64) (*Ticket, error)
	Tickets(customerID int64, status TicketStatus) ([]*Ticket, error) // "" status: all
	UpdateTicket(t *Ticket) error

	InsertAudit(e *AuditEntry) error
	Audit(customerID int64, limit int) ([]*AuditEntry, error) // newest first
	AuditPage(f AuditFilter) ([]*AuditEntry, error)           // newest first (at, id), keyset paged

	InsertCredentialReset(r *CredentialReset) error
	CredentialResetByHash(hash string) (*CredentialReset, error)
	UpdateCredentialReset(r *CredentialReset) error

	InsertMail(m *Mail) error
	Mails(limit int) ([]*Mail, error) // newest first
	Mail(id int64) (*Mail, error)
	// MarkMailSent claims a mail (at non-zero: only an unsent one, else
	// ENotFound, so two nodes never both send it) or releases it (zero at).
	MarkMailSent(id int64, at time.Time) error
	UnsentMails(limit int) ([]*Mail, error)
	RedactMail(id int64) error                // a delivered mail: bodies replaced
	PruneMails(before time.Time) (int, error) // mails created before

	// Attempt counters shared by the portal nodes (logins, verification,
	// signups): see internal/store/attempt.go.
	BumpAttempt(key string, now time.Time, span time.Duration, limit int) (int, error)
	RefundAttempt(key string) error
	Attempts(key string, now time.Time) (int, error)
	ClearAttempts(key string) error
	PruneAttempts(now time.Time) (int, error) // and expired pending signups
	InsertPendingSignup(p *PendingSignup) error
	TakePendingSignup(hash string, now time.Time) (*PendingSignup, error) // single use

	// Verification messages (internal/store/verifymsg.go): the queue of
	// codes on their way to phones. ClaimVerificationMessage takes a due
	// queued message for one try (until: when an unfinished try is due
	// again; one claimer wins, else ENotFound) and counts the attempt.
	InsertVerificationMessage(m *VerificationMessage) error // sets ID, CreatedAt, UpdatedAt
	VerificationMessage(id int64) (*VerificationMessage, error)
	VerificationMessageByReport(hash string) (*VerificationMessage, error)
	LatestVerificationMessage(numberID int64) (*VerificationMessage, error)
	DueVerificationMessages(customerID int64, now time.Time, limit int) ([]*VerificationMessage, error) // oldest first; 0: all customers
	ClaimVerificationMessage(id int64, now, until time.Time, reportHash string) error
	UpdateVerificationMessage(m *VerificationMessage) error
	ReplaceVerificationMessages(numberID int64) (int, error) // queued ones of the number → replaced, codes dropped
	PruneVerificationMessages(before time.Time) (int, error)

	UpsertDID(d *DID) error
	DID(number string) (*DID, error)
	DIDs(customerID int64) ([]*DID, error) // 0: all
	// DeleteDID removes a number's route and returns what it was (not
	// found: ENotFound).
	DeleteDID(number string) (*DID, error)

	// Registrations: PutRegistration replaces the binding of the same
	// account and contact.
	PutRegistration(r *Registration) error
	DeleteRegistration(sipAccountID int64, contact string) error
	DeleteRegistrations(sipAccountID int64) error
	Registrations(sipAccountID int64) ([]*Registration, error) // 0: all
	DeleteExpiredRegistrations(now time.Time) (int, error)
	// LockRegistrations serialises the binding changes of one SIP account
	// until the transaction ends (a per-account contact limit holds across
	// edges): PostgreSQL locks the account's row, SQLite writes are
	// serialised anyway.
	LockRegistrations(sipAccountID int64) error

	// Channel leases. DeleteLease reports whether the lease existed, so a
	// release is idempotent.
	InsertLease(l *CallLease) error // with l.Dialog ("" until answered)
	// ChannelUse locks the customer's row (PostgreSQL; SQLite writes are
	// serialised) and reads its limit, scope, the SIP account's cap and the
	// live leases counted under the scope (customer and account). A missing
	// customer is not found; a missing SIP account has AccountFound false.
	ChannelUse(customerID, sipAccountID int64, now time.Time) (*ChannelUse, error)
	// ChannelLimits is ChannelUse without the counts (zero) and without
	// the lock: what an edge that counts its calls in memory reads.
	ChannelLimits(customerID, sipAccountID int64) (*ChannelUse, error)
	DeleteLease(callID string) (bool, error)
	// RenewLeases extends the node's leases and lists the Call-IDs it
	// extended (a lease missing from the list was taken away).
	RenewLeases(node string, until time.Time) ([]string, error)
	DeleteExpiredLeases(now time.Time) (int, error)
	// SetLeaseDialog stores a live call's dialog state (what a BYE needs)
	// with its lease; no lease: nothing happens.
	SetLeaseDialog(callID, dialog string) error
	// ClaimExpiredLeases hands at most limit leases expired at now to node
	// until `until` (the rows lock: two nodes never claim the same lease),
	// remembering the node that let them expire in LostNode.
	ClaimExpiredLeases(node string, now, until time.Time, limit int) ([]*LostCall, error)
	// ExpireLease makes a lease of node expire now (a restarted node's
	// leases of its previous life), for the sweep to claim.
	ExpireLease(callID, node string) error
	// CloseLostRecords closes the in_progress records of a lost call
	// (disposition node_lost).
	CloseLostRecords(callID, node string, at time.Time) (int, error)
	// CloseOrphanRecords closes in_progress records started before
	// `before` that have no lease any more (their final update never
	// reached the store).
	CloseOrphanRecords(before, at time.Time) (int, error)
	Leases(customerID int64, now time.Time) ([]*CallLease, error) // live leases; 0: all

	InsertCallRecord(r *CallRecord) error
	UpdateCallRecord(r *CallRecord) error
	CallRecords(f CallFilter) ([]*CallRecord, error) // newest first (started_at, id)
	// CallStats counts the call records started in [since, until) of every
	// customer by minute, disposition and refusal reason (at most
	// CallStatsMaxRows groups, oldest minute first).
	CallStats(since, until time.Time) ([]*CallStat, error)

	PutNode(n *Node) error
	Nodes(aliveSince time.Time) ([]*Node, error)
	// DeleteNodes removes the nodes whose last heartbeat is before before
	// (dead nodes are pruned) and returns how many.
	DeleteNodes(before time.Time) (int, error)

	OperatorTx    // operators, their sessions and API tokens (operator.go)
	EdgeRequestTx // what portals ask edges to do (edgerequest.go)
	BanTx         // bans shared by the edge nodes (ban.go)
}
