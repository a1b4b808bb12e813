package sipdesk

import "time"

// Call directions.
const (
	DirOutbound = "outbound" // a customer's device calls out through the carrier
	DirInbound  = "inbound"  // the carrier calls a customer's DID
	// DirSystem is a call the platform places itself through the carrier
	// (a verification code read out): it takes no lease, so it never
	// counts against a channel limit, and it has a call record.
	DirSystem = "system"
)

// Lease timing (docs/OPERATIONS.md, "Calls when a node fails or stops").
// A node renews its calls' leases every LeaseRenew (retrying every second
// after a failure); a lease not renewed for LeaseTTL belongs to a dead
// node. A node whose last successful renewal started LeaseFence ago ends
// its calls itself (self-fencing), LeaseTTL-LeaseFence before any other
// node may take its leases: that margin covers the BYEs going out and the
// clock difference between nodes. Every node sweeps expired leases every
// LeaseSweep: it claims them, sends BYE on the dead node's legs, closes the
// records (node_lost) and frees the channels. A node dying just after a
// renewal: its leases expire LeaseTTL later and the next sweep ends its
// calls, within LeaseTTL+LeaseSweep (50 s) of the death.
const (
	LeaseTTL   = 45 * time.Second
	LeaseRenew = 10 * time.Second
	LeaseFence = 30 * time.Second
	LeaseSweep = 5 * time.Second
)

// LeaseTiming is the lease timing of a deployment: the constants above, or
// all four scaled from a shorter TTL (tests, SIPDESK_LEASE_TTL).
type LeaseTiming struct{ TTL, Renew, Fence, Sweep time.Duration }

// LeaseTimingFor scales the default timing to ttl (0: the defaults).
func LeaseTimingFor(ttl time.Duration) LeaseTiming {
	if ttl <= 0 || ttl == LeaseTTL {
		return LeaseTiming{LeaseTTL, LeaseRenew, LeaseFence, LeaseSweep}
	}
	f := func(d time.Duration) time.Duration {
		return time.Duration(float64(d) * float64(ttl) / float64(LeaseTTL))
	}
	return LeaseTiming{ttl, f(LeaseRenew), f(LeaseFence), f(LeaseSweep)}
}

// LostCall is an expired lease claimed by a living node: the node that
// held it (and died or lost the store) and the dialog state it left.
type LostCall struct {
	CallLease
	LostNode string
}

// CallLease is a live call holding a channel. It lives in the store so that
// every edge node counts the same calls.
type CallLease struct {
	CallID       string // the customer leg's Call-ID as the edge keys it
	CustomerID   int64
	SIPAccountID int64
	Direction    string
	Node         string
	StartedAt    time.Time
	ExpiresAt    time.Time
	Dialog       string // what a BYE on its legs needs (JSON, policy.Dialog); "" until answered
}

// Directions lists the call directions and ChannelScopes the channel
// scopes, for code and tests that must cover every case of the rule below.
var (
	Directions    = []string{DirOutbound, DirInbound}
	ChannelScopes = []string{ScopeOutbound, ScopeBoth}
)

// CountsAgainstLimit is the one statement of which calls count against a
// customer's channel limit (and a SIP account's cap): outbound calls
// always, inbound calls only under ScopeBoth. A call that does not count
// still takes a lease, so that it shows as a live call.
//
// The store counts leases in SQL (internal/store, qChannelUse and
// qCountLive); the conformance suite (internal/store/storetest, "channel
// use counts exactly the calls CountsAgainstLimit counts") runs every
// scope, direction and billing state through both and fails if they
// disagree, so a change here must be made there too.
func CountsAgainstLimit(scope, direction string) bool {
	return direction == DirOutbound || scope == ScopeBoth
}

// Counted reports whether calls of a direction count against the
// customer's channel limit: CountsAgainstLimit under the customer's scope.
func (c *Customer) Counted(direction string) bool {
	return CountsAgainstLimit(c.ChannelScope, direction)
}

// ChannelUse is what an acquisition checks, read in one go (Tx.ChannelUse):
// the customer's limit and scope, the SIP account's cap, and the live
// leases that count under the scope (CountsAgainstLimit), for the customer
// and for the account.
type ChannelUse struct {
	ChannelLimit  int
	ChannelScope  string
	AccountFound  bool // the SIP account exists under the customer
	ChannelCap    int  // the SIP account's cap (0: none)
	CustomerInUse int
	AccountInUse  int
}

// CheckChannels decides whether one more call may start, given the calls
// in use (counted ones only) for the customer and for the SIP account.
func CheckChannels(c *Customer, a *SIPAccount, customerInUse, accountInUse int) error {
	if customerInUse >= c.ChannelLimit {
		return &Error{Code: EChannelLimit, Message: "Channel limit reached"}
	}
	if a != nil && a.ChannelCap > 0 && accountInUse >= a.ChannelCap {
		return &Error{Code: EChannelCap, Message: "SIP account channel cap reached"}
	}
	return nil
}

// CheckChannelUse decides whether a call of direction on SIP account
// sipAccountID (0: none) may start, given u read for its customer and
// account: calls that do not count (CountsAgainstLimit) always pass; a SIP
// account that is not the customer's is not found; then CheckChannels. The
// store path (app.AcquireChannelTx) and the in-memory one of a single edge
// (policy.ChannelAdmission) both decide with it.
func CheckChannelUse(u *ChannelUse, customerID, sipAccountID int64, direction string) error {
	if !CountsAgainstLimit(u.ChannelScope, direction) {
		return nil
	}
	c := &Customer{ID: customerID, ChannelLimit: u.ChannelLimit, ChannelScope: u.ChannelScope}
	var a *SIPAccount
	if sipAccountID != 0 {
		if !u.AccountFound {
			return &Error{Code: ENotFound, Message: "SIP account not found"}
		}
		a = &SIPAccount{ID: sipAccountID, CustomerID: customerID, ChannelCap: u.ChannelCap}
	}
	return CheckChannels(c, a, u.CustomerInUse, u.AccountInUse)
}

// Dispositions of a call record.
const (
	DispAnswered  = "answered"
	DispBusy      = "busy"        // 486/600
	DispNoAnswer  = "no_answer"   // 408/480 or our timeout
	DispCancelled = "cancelled"   // the caller hung up before answer
	DispFailed    = "failed"      // any other final failure
	DispRefused   = "refused"     // refused by sipdesk (see Reason)
	DispActive    = "in_progress" // not ended yet
	DispNodeLost  = "node_lost"   // its edge died; another edge ended it
)

// CallRecord is one call attempt.
type CallRecord struct {
	ID             int64
	CallID         string
	CustomerID     int64
	SIPAccountID   int64
	Direction      string
	From           string // as received
	To             string // as received
	CallerID       string // the Caller ID sent to the carrier
	CallerIDRuleID int64
	CallerIDReason string
	StartedAt      time.Time
	AnsweredAt     time.Time
	EndedAt        time.Time
	Disposition    string
	SIPCode        int
	Reason         string // API error code of a refusal, or the end reason
	Node           string
}

// Duration is the answered time of the call.
func (r *CallRecord) Duration() time.Duration {
	if r.AnsweredAt.IsZero() || r.EndedAt.IsZero() {
		return 0
	}
	return r.EndedAt.Sub(r.AnsweredAt)
}

// DispositionOf classifies a final SIP response code.
func DispositionOf(code int) string {
	switch {
	case code >= 200 && code < 300:
		return DispAnswered
	case code == 486 || code == 600 || code == 603:
		return DispBusy
	case code == 408 || code == 480:
		return DispNoAnswer
	case code == 487:
		return DispCancelled
	}
	return DispFailed
}

// CallStat is a count of call records started in one minute with one
// disposition and reason (the operator dashboard's charts).
type CallStat struct {
	Minute      time.Time // the minute's start, UTC
	Disposition string
	Reason      string
	N           int
}

// CallStatsMaxRows bounds a CallStats answer.
const CallStatsMaxRows = 5000

// CallFilter selects call records.
type CallFilter struct {
	CustomerID   int64 // 0: every customer
	SIPAccountID int64
	Disposition  string
	Direction    string // "" or DirInbound/DirOutbound
	// Number matches From, To or the Caller ID containing it (digits, +, *, #).
	Number       string
	Since, Until time.Time
	BeforeID     int64 // pagination (the API's old numeric cursor): records older than this id
	// After, when set, keeps the records after it in the listing's order
	// (started_at, then id, both descending): keyset paging.
	After *CallKey
	Limit int
}

// CallKey is a call record's place in the listing order.
type CallKey struct {
	StartedAt time.Time
	ID        int64
}
