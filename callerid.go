package sipdesk

// RuleScope says which calls a Dynamic Caller ID rule applies to.
type RuleScope string

const (
	ScopeAllCalls RuleScope = "all"
	ScopeCountry  RuleScope = "country"
	ScopePrefix   RuleScope = "prefix"
)

// RuleType says what Caller ID a rule gives.
type RuleType string

const (
	RuleSpecific    RuleType = "specific"      // one verified number, or a pool picked at random
	RuleSetByCaller RuleType = "set_by_caller" // keep what the device sent
	RuleBlocked     RuleType = "blocked"       // anonymous, Privacy: id
)

// CallerIDRule is a customer's Dynamic Caller ID rule; SIP accounts select the
// rules that apply to them.
type CallerIDRule struct {
	ID          int64
	CustomerID  int64
	Name        string
	ApplyFor    RuleScope
	Country     string // ISO 3166-1 alpha-2, upper case, when ApplyFor is country
	Prefix      string // E.164 digits, when ApplyFor is prefix
	Type        RuleType
	Numbers     []string // "+<digits>" verified numbers; several make a pool
	DisplayName string
}

// Reasons a Caller ID was chosen, as the simulator and call records show them.
const (
	ReasonTrial       = "trial"        // trial accounts always use the verified phone
	ReasonRulePrefix  = "rule_prefix"  // the longest matching prefix rule
	ReasonRuleCountry = "rule_country" // a country rule
	ReasonRuleAll     = "rule_all"     // an all-calls rule
	ReasonDefault     = "default"      // no rule matched: the account default
	// ReasonNoDecision: no Caller ID could be chosen (no default number and
	// no verified phone, or a dialed number that is not a number): the
	// device's From passes unchanged.
	ReasonNoDecision = "no_decision"
)

// Anonymous Caller ID of blocked rules.
const (
	AnonymousUser    = "anonymous"
	AnonymousHost    = "anonymous.invalid"
	AnonymousDisplay = "Anonymous"
)

// CallerIDRequest is everything the Caller ID decision looks at.
type CallerIDRequest struct {
	Trial         bool
	VerifiedPhone string          // "+<digits>"
	Default       CallerIDSetting // the SIP account's default number and display name
	Rules         []*CallerIDRule // the rules selected on the SIP account
	To            string          // the dialed number as received
	FromUser      string          // the From user the device sent
	FromDisplay   string          // the From display name the device sent
	// Rand returns a number in [0, n) to pick from pools; nil uses math/rand/v2.
	Rand func(n int) int
}

// CallerIDChoice is the Caller ID a call gets and why.
type CallerIDChoice struct {
	Number      string // "+<digits>", or AnonymousUser when Anonymous
	DisplayName string
	Anonymous   bool  // From "Anonymous" <sip:anonymous@anonymous.invalid>, Privacy: id
	RuleID      int64 // 0 when no rule chose it
	Reason      string
}

// CallerIDInput is one outbound call as the Caller ID decision sees it: the
// SIP account, its customer, the customer's rules and what the device sent.
type CallerIDInput struct {
	Account  *SIPAccount
	Customer *Customer // the account's customer; nil: not trial, no verified phone
	// Rules finds rules by ID; it may hold any rules (the edge passes all of
	// them): only those the account selects and that belong to its customer
	// count.
	Rules map[int64]*CallerIDRule
	// To is the dialed number. Callers normalise it first and refuse one
	// that is not a number (NormalizeNumber), as the edge and the simulator
	// do; DecideCallerID itself treats one as no decision.
	To          string
	FromUser    string // the From user the device sent
	FromDisplay string // the From display name the device sent
	// Rand returns a number in [0, n) to pick from pools; nil uses math/rand/v2.
	Rand func(n int) int
}

// CallerIDHeaders are the final Caller ID header values of the carrier leg.
type CallerIDHeaders struct {
	FromUser    string // user of the From URI: "+<digits>", AnonymousUser, or the device's own (no decision)
	FromDisplay string // display name of From; "" for none
	// Anonymous: the From URI host is AnonymousHost (not the edge's host).
	Anonymous bool
	PAI       string // user of the P-Asserted-Identity URI ("+<digits>"); "" sends no header
	Privacy   string // value of the Privacy header ("id"); "" sends no header
	RuleID    int64  // 0 when no rule chose it
	Reason    string // Reason… constants
}

// CallerID is the Caller ID as call records and the simulator show it: the
// From user, or AnonymousUser.
func (h CallerIDHeaders) CallerID() string {
	if h.Anonymous {
		return AnonymousUser
	}
	return h.FromUser
}
