package sipdesk

import (
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// AuthType is how a SIP account proves who it is.
type AuthType string

const (
	AuthPassword AuthType = "password" // digest username + password (and JWT)
	AuthIP       AuthType = "ip"       // the source address (+ tech prefix)
)

// Status of a SIP account.
type Status string

const (
	StatusInProcess Status = "in_process" // being applied at the edge nodes
	StatusActive    Status = "active"
	StatusInactive  Status = "inactive"
)

// Limits of a SIP account's fields.
const (
	MaxNameLen        = 64
	MinUsernameLen    = 8
	MaxUsernameLen    = 64
	MaxAllowedIPs     = 100
	JWTSecretLen      = 32
	MaxDisplayNameLen = 64
)

// CallerIDSetting is a SIP account's Caller ID configuration.
type CallerIDSetting struct {
	DefaultNumber string  // "+<digits>", one of the customer's verified numbers
	DisplayName   string  // optional
	RuleIDs       []int64 // selected Dynamic Caller ID rules
}

// SIPAccount is one SIP account of a customer.
type SIPAccount struct {
	ID         int64
	CustomerID int64
	Name       string
	AuthType   AuthType
	Username   string       // password accounts; empty for IP accounts
	Digest     DigestHashes // password accounts; never the password itself
	AllowedIPs []AllowedIP  // IP accounts: identity; password accounts: optional ACL
	TechPrefix string       // 4 digits when IP accounts share an address
	Status     Status
	// PendingVersion is the config version an in_process account waits for:
	// it turns active once every live edge node has applied it.
	PendingVersion int64
	// HeldForReview keeps an in_process account there until an operator
	// approves it.
	HeldForReview bool
	// PrevStatus is the status an account returns to after in_process
	// (active or inactive), so that an auth change keeps an inactive account
	// inactive.
	PrevStatus    Status
	JWTEnabled    bool
	JWTSecret     string // in memory in clear; encrypted by the store
	JWTPrevSecret string
	JWTPrevUntil  time.Time
	ChannelCap    int // 0: no cap of its own
	CallerID      CallerIDSetting
	CreatedAt     time.Time
	UpdatedAt     time.Time
	// CustomerSuspended is set by the edge's configuration snapshot, not
	// stored: the customer is suspended, so the account is refused.
	CustomerSuspended bool
}

// ValidateName checks a SIP account label.
func ValidateName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", FieldError("name", "must be UTF-8 text")
	}
	name = strings.TrimSpace(name)
	n := utf8.RuneCountInString(name)
	if n < 1 || n > MaxNameLen {
		return "", FieldError("name", "must be 1 to %d characters", MaxNameLen)
	}
	for _, r := range name {
		if HiddenRune(r) {
			return "", FieldError("name", "must not contain control, direction or invisible characters")
		}
	}
	return name, nil
}

// HiddenRune reports a character that changes how text around it looks
// without showing itself, or is not text: controls (C0, DEL, C1), format
// characters (bidi embeddings, overrides and isolates such as U+202E,
// marks U+200E/U+200F/U+061C, zero-width U+200B-U+200D, U+2060, U+FEFF,
// soft hyphen), line and paragraph separators, and U+FFFD (what invalid
// UTF-8 and lone surrogates decode to). Names and display names refuse them:
// a customer-typed name must read the same wherever it is shown.
func HiddenRune(r rune) bool {
	return unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r) || r == utf8.RuneError
}

// ValidateUsername checks a SIP username: 8-64 RFC 3261 "user" characters,
// starting with a letter or digit. Usernames are case-sensitive in SIP, so
// they are kept as typed.
func ValidateUsername(u string) error {
	if len(u) < MinUsernameLen || len(u) > MaxUsernameLen {
		return FieldError("username", "must be %d to %d characters", MinUsernameLen, MaxUsernameLen)
	}
	if !isAlnum(u[0]) {
		return FieldError("username", "must start with a letter or a digit")
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		// RFC 3261 unreserved and user-unreserved characters, minus the ones
		// ('%', ';', '?', '/', ':', '@' and friends) that break URIs and logs.
		if !isAlnum(c) && !strings.ContainsRune("-_.!~*'&=+$,", rune(c)) {
			return FieldError("username", "may contain letters, digits and - _ . ! ~ * ' & = + $ , only")
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// ValidatePassword checks a SIP password: at least 12 characters with a
// digit and mixed case.
func ValidatePassword(p string) error {
	if err := checkPassword(p); err != "" {
		return FieldError("password", "%s", err)
	}
	return nil
}

// AllowedIP is one allowed-IP entry: an address or CIDR range and, for a
// single address, optionally a port ("127.0.0.1:5084", "[2001:db8::1]:5060").
// The edge matches a source against the entries with a port exactly first,
// and against the entries without a port only when none matched, so a
// trunk's address:port can share its address with other devices.
type AllowedIP struct {
	netip.Prefix
	Port uint16 // 0: any port
}

// String is the entry as ParseAllowedIP reads it: "a.b.c.d/n", "a::/n", or
// with a port "a.b.c.d:p" and "[a::1]:p".
func (e AllowedIP) String() string {
	if e.Port != 0 {
		return netip.AddrPortFrom(e.Addr(), e.Port).String()
	}
	return e.Prefix.String()
}

// Overlaps reports whether both entries can match one source: the ranges
// overlap and the ports are the same (an entry with a port is matched before
// any entry without one, so the two do not compete).
func (e AllowedIP) Overlaps(o AllowedIP) bool {
	return e.Port == o.Port && e.Prefix.Overlaps(o.Prefix)
}

// Matches reports whether a source address and port is admitted by e.
func (e AllowedIP) Matches(src netip.AddrPort) bool {
	return (e.Port == 0 || e.Port == src.Port()) && e.Prefix.Contains(src.Addr().Unmap())
}

// ParseAllowedIPs parses a list of IPv4/IPv6 addresses or CIDRs, each
// address optionally with a port (see AllowedIP). Unless allowPrivate, only
// public unicast addresses are accepted. An empty list is allowed when
// !required (the optional ACL of a password account).
func ParseAllowedIPs(list []string, required, allowPrivate bool) ([]AllowedIP, error) {
	if len(list) == 0 {
		if required {
			return nil, FieldError("allowed_ips", "an IP account needs at least one address")
		}
		return nil, nil
	}
	if len(list) > MaxAllowedIPs {
		return nil, FieldError("allowed_ips", "at most %d entries", MaxAllowedIPs)
	}
	out := make([]AllowedIP, 0, len(list))
	seen := make(map[AllowedIP]bool, len(list))
	for i, s := range list {
		e, err := ParseAllowedIP(strings.TrimSpace(s))
		if err != nil {
			return nil, FieldError("allowed_ips", "entry %d (%q) is not an IPv4/IPv6 address or CIDR (an address may carry a :port)", i+1, clip(s, 50))
		}
		p := e.Prefix
		if !allowPrivate && !isPublic(p) {
			return nil, FieldError("allowed_ips", "entry %d (%s) is not a public address", i+1, e)
		}
		if p.Addr().Is4() && p.Bits() < 16 || p.Addr().Is6() && p.Bits() < 32 {
			return nil, FieldError("allowed_ips", "entry %d (%s) is too wide (at most /16 for IPv4, /32 for IPv6)", i+1, p)
		}
		if seen[e] {
			return nil, FieldError("allowed_ips", "entry %d (%s) is listed twice", i+1, e)
		}
		seen[e] = true
		out = append(out, e)
	}
	return out, nil
}

// ParseAllowedIP parses one entry: an address, an address:port (IPv6 in
// brackets, port 1–65535) or a CIDR. It does not apply ParseAllowedIPs's
// public and width rules (the store reads entries back with it).
func ParseAllowedIP(s string) (AllowedIP, error) {
	if !strings.Contains(s, "/") && (strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1) {
		ap, err := netip.ParseAddrPort(s)
		if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" {
			return AllowedIP{}, errBadIP
		}
		a := ap.Addr().Unmap()
		return AllowedIP{Prefix: netip.PrefixFrom(a, a.BitLen()), Port: ap.Port()}, nil
	}
	p, err := parsePrefix(s)
	return AllowedIP{Prefix: p}, err
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, err
		}
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, errBadIP
		}
		// An IPv4-mapped IPv6 range names IPv4 addresses: keep it as IPv4,
		// as the edge sees sources, so the IPv4 rules apply to it.
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return netip.Prefix{}, errBadIP
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, errBadIP
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

var errBadIP = FieldError("allowed_ips", "bad address")

// isPublic reports whether every address of p is public unicast.
func isPublic(p netip.Prefix) bool {
	a := p.Addr()
	if a.IsPrivate() || a.IsLoopback() || a.IsUnspecified() || a.IsMulticast() ||
		a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() {
		return false
	}
	for _, r := range nonPublic {
		if r.Overlaps(p) {
			return false
		}
	}
	return true
}

// nonPublic lists special-purpose ranges (RFC 6890 and friends) that
// netip's predicates do not cover.
var nonPublic = func() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4", "255.255.255.255/32", "10.0.0.0/8",
		"172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "2001:db8::/32", "64:ff9b::/96", "100::/64", "fc00::/7", "::/128"} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}()

// ValidateTechPrefix checks a tech prefix: empty or exactly 4 digits.
func ValidateTechPrefix(p string) error {
	if p == "" {
		return nil
	}
	if len(p) != 4 || strings.Trim(p, "0123456789") != "" {
		return FieldError("tech_prefix", "must be exactly 4 digits")
	}
	return nil
}

// CheckIPConflicts enforces that an IP account's addresses may overlap another
// IP account's only when both have tech prefixes and the prefixes differ.
// Entries with different ports (none counts as one) do not overlap: the edge
// matches address:port entries exactly before address-only ones.
func CheckIPConflicts(a *SIPAccount, others []*SIPAccount) error {
	if a.AuthType != AuthIP {
		return nil
	}
	for _, o := range others {
		// An account held for an operator's review fences nobody off
		// (approval checks it against the others again).
		if o.ID == a.ID || o.AuthType != AuthIP || o.HeldForReview {
			continue
		}
		for _, p := range a.AllowedIPs {
			for _, q := range o.AllowedIPs {
				if !p.Overlaps(q) {
					continue
				}
				// One message whatever the other account is: it must not
				// tell whose it is, nor whether or which prefix it has.
				if a.TechPrefix == "" || o.TechPrefix == "" || a.TechPrefix == o.TechPrefix {
					return &Error{Code: EConflict, Field: "tech_prefix", Message: "address " + p.String() + " is in use by another account"}
				}
			}
		}
	}
	return nil
}

// Wide IP ranges (wider than these prefix lengths) wait for an operator's
// approval: a customer could otherwise claim a range to fence every other
// customer out of IP authentication in it.
const (
	WideIPv4Bits = 24
	WideIPv6Bits = 48
)

// HasWideRange reports whether an entry of ips is wider than /24 (IPv4) or
// /48 (IPv6).
func HasWideRange(ips []AllowedIP) bool {
	for _, p := range ips {
		if p.Addr().Is4() && p.Bits() < WideIPv4Bits || p.Addr().Is6() && p.Bits() < WideIPv6Bits {
			return true
		}
	}
	return false
}

// ValidateJWTSecret checks a typed JWT secret: exactly 32 letters or digits.
func ValidateJWTSecret(s string) error {
	if len(s) != JWTSecretLen {
		return FieldError("secret", "must be exactly %d letters or digits", JWTSecretLen)
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return FieldError("secret", "must be exactly %d letters or digits", JWTSecretLen)
		}
	}
	return nil
}

// Usable reports whether the SIP account may register, call and be called:
// nil when active, an *Error with code EAccountNotReady while in process
// (being applied at the edge nodes) and EAccountInactive otherwise. It is
// the one home of this rule: the edge refuses with it and the portal and API
// answer with it.
func (a *SIPAccount) Usable() error {
	switch a.Status {
	case StatusActive:
		return nil
	case StatusInProcess:
		return &Error{Code: EAccountNotReady, Message: "the SIP account is being applied (in process): try again in a few seconds"}
	default:
		return &Error{Code: EAccountInactive, Message: "the SIP account is not active"}
	}
}

// UsableAtEdge is Usable as the SIP edge applies it. An auth change (ACL,
// credentials, auth type) puts an active account in process until every
// edge has applied it; meanwhile each edge already answers from the
// settings it has, so the devices the change does not affect keep
// registering and calling. New accounts, accounts held for review and
// inactive accounts in process stay refused.
func (a *SIPAccount) UsableAtEdge() error {
	if a.CustomerSuspended {
		return ErrSuspended()
	}
	if a.Status == StatusInProcess && !a.HeldForReview && a.PrevStatus == StatusActive && a.CreatedAt.Before(a.UpdatedAt) {
		return nil
	}
	return a.Usable()
}

// CanEnableJWT reports why JWT cannot be enabled on the account, if so.
func (a *SIPAccount) CanEnableJWT() error {
	if a.AuthType != AuthPassword {
		return FieldError("enabled", "JWT can be enabled on password accounts only")
	}
	if a.Usable() != nil {
		return FieldError("enabled", "JWT can be enabled on active accounts only")
	}
	return nil
}

// SetStatus applies a customer's status change: only active and inactive can
// be asked for; an in_process account records the wish for when it is applied.
func (a *SIPAccount) SetStatus(s Status) error {
	if s != StatusActive && s != StatusInactive {
		return FieldError("status", "must be \"active\" or \"inactive\"")
	}
	if a.Status == StatusInProcess {
		a.PrevStatus = s
		return nil
	}
	a.Status = s
	return nil
}

// MarkInProcess puts the account in process until config version v is
// applied at every edge node; it returns afterwards to its previous status.
func (a *SIPAccount) MarkInProcess(v int64) {
	if a.Status != StatusInProcess {
		if a.Status == StatusInactive {
			a.PrevStatus = StatusInactive
		} else {
			a.PrevStatus = StatusActive
		}
	}
	a.Status = StatusInProcess
	a.PendingVersion = v
}

// Applied moves an in_process account to its next status once the edge nodes
// have applied config version applied; it reports whether it changed.
func (a *SIPAccount) Applied(applied int64) bool {
	if a.Status != StatusInProcess || a.HeldForReview || a.PendingVersion > applied {
		return false
	}
	a.Status = a.PrevStatus
	if a.Status == "" || a.Status == StatusInProcess {
		a.Status = StatusActive
	}
	return true
}

// ValidateChannelCap checks a per-SIP-account cap against the account limit:
// the caps of all the customer's SIP accounts together never exceed it.
func ValidateChannelCap(cap int, otherCaps int, limit int) error {
	if cap < 0 {
		return FieldError("channel_cap", "must be 0 (no cap) or more")
	}
	if cap > 0 && cap+otherCaps > limit {
		return FieldError("channel_cap", "the caps of all SIP accounts together (%d) would exceed the account's channel limit (%d)", cap+otherCaps, limit)
	}
	return nil
}

// ValidateDisplayName checks a Caller ID display name.
func ValidateDisplayName(field, s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", FieldError(field, "must be UTF-8 text")
	}
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > MaxDisplayNameLen {
		return "", FieldError(field, "must be at most %d characters", MaxDisplayNameLen)
	}
	for _, r := range s {
		if HiddenRune(r) || r == '"' || r == '\\' || r == '<' || r == '>' {
			return "", FieldError(field, "must not contain quotes, backslashes, angle brackets, control, direction or invisible characters")
		}
	}
	return s, nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
