package sipdesk

import (
	"math/rand/v2"
	"strconv"
	"strings"
)

// ReasonSetByCallerInvalid: a set_by_caller rule matched but the From user
// the device sent is not a valid number, so the account default was used.
const ReasonSetByCallerInvalid = "set_by_caller_invalid"

// Limits of Dynamic Caller ID rules.
const (
	MaxRuleNumbers   = 20 // numbers in a specific rule's pool
	MaxRulePrefixLen = 15 // digits of a prefix rule
)

// ChooseCallerID decides the Caller ID of an outbound call. It is pure: no
// I/O, and no allocation on the common path (rule matching compares strings).
//
// Trial accounts always get the verified phone without a display name,
// whatever the rules and the device say (req.To is not even looked at).
// Otherwise req.To is normalised to E.164 digits (an *Error with code
// EInvalidNumber when it is not a number) and, among req.Rules, the longest
// matching prefix rule wins, then a rule for the number's country (see
// CountryOf), then an all-calls rule; ties go to the lowest rule ID. Specific
// rules without numbers are ignored (they cannot give a Caller ID). No rule:
// the account default number (the verified phone when unset) and display name.
func ChooseCallerID(req CallerIDRequest) (CallerIDChoice, error) {
	if req.Trial {
		return CallerIDChoice{Number: req.VerifiedPhone, Reason: ReasonTrial}, nil
	}
	to, err := normalizeDialed(req.To)
	if err != nil {
		return CallerIDChoice{}, err
	}
	country := CountryOf(to)

	var prefixRule, countryRule, allRule *CallerIDRule
	bestLen := 0
	for _, r := range req.Rules {
		if r == nil {
			continue
		}
		switch r.ApplyFor {
		case ScopePrefix:
			p := r.Prefix
			if len(p) > 0 && p[0] == '+' {
				p = p[1:]
			}
			// Cheap tests first: length, then the first digit, then the rest.
			if len(p) == 0 || len(p) < bestLen || len(p) > len(to) || p[0] != to[0] || to[:len(p)] != p ||
				(len(p) == bestLen && r.ID >= prefixRule.ID) || !givesCallerID(r) {
				continue
			}
			prefixRule, bestLen = r, len(p)
		case ScopeCountry:
			if country != "" && (countryRule == nil || r.ID < countryRule.ID) &&
				strings.EqualFold(r.Country, country) && givesCallerID(r) {
				countryRule = r
			}
		case ScopeAllCalls:
			if (allRule == nil || r.ID < allRule.ID) && givesCallerID(r) {
				allRule = r
			}
		}
	}

	switch {
	case prefixRule != nil:
		return applyRule(req, prefixRule, ReasonRulePrefix), nil
	case countryRule != nil:
		return applyRule(req, countryRule, ReasonRuleCountry), nil
	case allRule != nil:
		return applyRule(req, allRule, ReasonRuleAll), nil
	}
	return accountDefault(req, 0, ReasonDefault), nil
}

// DecideCallerID is the Caller ID of an outbound call as the carrier gets
// it: From user, display name and host, P-Asserted-Identity and Privacy. The
// edge builds the carrier leg from it and the rule simulator shows it, so the
// two cannot disagree.
//
// It applies ChooseCallerID to the account's selected rules (those of
// in.Rules that belong to the account's customer), then:
//   - anonymous (a blocked rule): From "Anonymous"
//     <sip:anonymous@anonymous.invalid>, Privacy: id, and P-Asserted-Identity
//     keeps the account's default number (the verified phone for trial
//     accounts or when it has none) for the carrier, which removes it at its
//     trust boundary (RFC 3325);
//   - a number: From user and P-Asserted-Identity carry it, with the
//     choice's display name;
//   - no decision (in.To is not a number, or no number at all: no default
//     and no verified phone): the device's From user and display name pass,
//     P-Asserted-Identity is the account's default number (none when
//     unset), reason ReasonNoDecision.
func DecideCallerID(in CallerIDInput) CallerIDHeaders {
	a := in.Account
	req := CallerIDRequest{Default: a.CallerID, To: in.To, FromUser: in.FromUser, FromDisplay: in.FromDisplay, Rand: in.Rand}
	if c := in.Customer; c != nil {
		req.Trial, req.VerifiedPhone = c.Trial(), c.VerifiedPhone
	}
	for _, id := range a.CallerID.RuleIDs {
		if r := in.Rules[id]; r != nil && r.CustomerID == a.CustomerID {
			req.Rules = append(req.Rules, r)
		}
	}
	ch, err := ChooseCallerID(req)
	switch {
	case err != nil || (ch.Number == "" && !ch.Anonymous):
		return CallerIDHeaders{FromUser: in.FromUser, FromDisplay: in.FromDisplay, PAI: a.CallerID.DefaultNumber, Reason: ReasonNoDecision}
	case ch.Anonymous:
		pai := a.CallerID.DefaultNumber
		if req.Trial || pai == "" {
			pai = req.VerifiedPhone
		}
		return CallerIDHeaders{FromUser: AnonymousUser, FromDisplay: AnonymousDisplay, Anonymous: true, PAI: pai, Privacy: "id",
			RuleID: ch.RuleID, Reason: ch.Reason}
	}
	return CallerIDHeaders{FromUser: ch.Number, FromDisplay: ch.DisplayName, PAI: ch.Number, RuleID: ch.RuleID, Reason: ch.Reason}
}

// givesCallerID is false for specific rules without numbers, which are
// skipped.
func givesCallerID(r *CallerIDRule) bool {
	return len(r.Numbers) > 0 || r.Type != RuleSpecific
}

// accountDefault is the SIP account's default Caller ID.
func accountDefault(req CallerIDRequest, ruleID int64, reason string) CallerIDChoice {
	n := req.Default.DefaultNumber
	if n == "" {
		n = req.VerifiedPhone
	}
	return CallerIDChoice{Number: n, DisplayName: req.Default.DisplayName, RuleID: ruleID, Reason: reason}
}

func applyRule(req CallerIDRequest, r *CallerIDRule, reason string) CallerIDChoice {
	switch r.Type {
	case RuleBlocked:
		return CallerIDChoice{Number: AnonymousUser, DisplayName: AnonymousDisplay, Anonymous: true, RuleID: r.ID, Reason: reason}
	case RuleSetByCaller:
		d, err := normalizeDialed(req.FromUser)
		if err != nil {
			return accountDefault(req, r.ID, ReasonSetByCallerInvalid)
		}
		name, err := ValidateDisplayName("display_name", req.FromDisplay)
		if err != nil {
			name = ""
		}
		return CallerIDChoice{Number: "+" + d, DisplayName: name, RuleID: r.ID, Reason: reason}
	}
	// RuleSpecific (and, defensively, any unknown type with numbers).
	if len(r.Numbers) == 0 {
		return accountDefault(req, r.ID, reason)
	}
	n := r.Numbers[0]
	if k := len(r.Numbers); k > 1 {
		var i int
		if req.Rand != nil {
			i = req.Rand(k)
		} else {
			i = rand.IntN(k)
		}
		if i < 0 || i >= k { // a misbehaving Rand
			i = ((i % k) + k) % k
		}
		n = r.Numbers[i]
	}
	name := r.DisplayName
	if name == "" {
		name = req.Default.DisplayName
	}
	return CallerIDChoice{Number: n, DisplayName: name, RuleID: r.ID, Reason: reason}
}

// normalizeDialed is NormalizeNumber with a non-allocating fast path for
// numbers that are already E.164 ("+digits" or bare digits).
func normalizeDialed(s string) (string, error) {
	t := strings.TrimSpace(s)
	d := strings.TrimPrefix(t, "+")
	if len(d) >= 7 && len(d) <= 15 && d[0] != '0' {
		ok := true
		for i := 0; i < len(d); i++ {
			if d[i] < '0' || d[i] > '9' {
				ok = false
				break
			}
		}
		if ok {
			return d, nil
		}
	}
	return NormalizeNumber(s)
}

// Validate checks a Dynamic Caller ID rule and normalises it in place (trimmed
// name, lower-case apply_for and type, upper-case country, prefix digits
// without '+' or "00", numbers as "+<digits>"); fields that do not apply to
// the rule's scope are cleared. verified reports whether a number ("+<digits>")
// is one of the customer's verified Caller ID numbers; nil skips that check.
// Errors are FieldErrors naming the JSON field: name, apply_for, country,
// prefix, type, numbers, display_name. On error the rule is left unchanged.
func (r *CallerIDRule) Validate(verified func(number string) bool) error {
	name, err := ValidateName(r.Name)
	if err != nil {
		return err
	}
	scope := RuleScope(strings.ToLower(strings.TrimSpace(string(r.ApplyFor))))
	var country, prefix string
	switch scope {
	case ScopeAllCalls:
	case ScopeCountry:
		country = strings.ToUpper(strings.TrimSpace(r.Country))
		if country == "" {
			return FieldError("country", "is required for country rules")
		}
		if !KnownCountry(country) {
			return FieldError("country", "unknown country code %q (ISO 3166-1 alpha-2, e.g. GB)", clip(country, 8))
		}
	case ScopePrefix:
		if prefix, err = normalizeRulePrefix(r.Prefix); err != nil {
			return err
		}
	default:
		return FieldError("apply_for", "must be one of all, country, prefix")
	}

	typ := RuleType(strings.ToLower(strings.TrimSpace(string(r.Type))))
	var numbers []string
	switch typ {
	case RuleSpecific:
		if len(r.Numbers) < 1 || len(r.Numbers) > MaxRuleNumbers {
			return FieldError("numbers", "a specific rule needs 1 to %d numbers", MaxRuleNumbers)
		}
		numbers = make([]string, 0, len(r.Numbers))
		for _, raw := range r.Numbers {
			n, err := NormalizePhone("numbers", raw)
			if err != nil {
				return FieldError("numbers", "%q is not a phone number in international format", clip(raw, 32))
			}
			for _, prev := range numbers {
				if prev == n {
					return FieldError("numbers", "%s is listed twice", n)
				}
			}
			if verified != nil && !verified(n) {
				return FieldError("numbers", "%s is not one of your verified Caller ID numbers", n)
			}
			numbers = append(numbers, n)
		}
	case RuleSetByCaller, RuleBlocked:
		if len(r.Numbers) > 0 {
			return FieldError("numbers", "must be empty for %s rules", typ)
		}
	default:
		return FieldError("type", "must be one of specific, set_by_caller, blocked")
	}

	display, err := ValidateDisplayName("display_name", r.DisplayName)
	if err != nil {
		return err
	}
	if display != "" && typ != RuleSpecific {
		return FieldError("display_name", "only specific rules have a display name")
	}

	r.Name, r.ApplyFor, r.Country, r.Prefix = name, scope, country, prefix
	r.Type, r.Numbers, r.DisplayName = typ, numbers, display
	return nil
}

// normalizeRulePrefix turns a typed prefix ("+44 203", "0044203", "44203")
// into 1 to 15 E.164 digits.
func normalizeRulePrefix(s string) (string, error) {
	s = strings.TrimSpace(s)
	var digits [MaxRulePrefixLen + 2]byte // room for a leading "00"
	n := 0
	plus := strings.HasPrefix(s, "+")
	if plus {
		s = s[1:]
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if n == len(digits) {
				return "", FieldError("prefix", "must be at most %d digits", MaxRulePrefixLen)
			}
			digits[n] = c
			n++
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return "", FieldError("prefix", "must be digits, e.g. 44203")
		}
	}
	d := string(digits[:n])
	if !plus && strings.HasPrefix(d, "00") {
		d = d[2:]
	}
	if d == "" {
		return "", FieldError("prefix", "is required for prefix rules (digits, e.g. 44203)")
	}
	if len(d) > MaxRulePrefixLen {
		return "", FieldError("prefix", "must be at most %d digits", MaxRulePrefixLen)
	}
	if d[0] == '0' {
		return "", FieldError("prefix", "must start with the country code, e.g. 44203")
	}
	return d, nil
}

// Summary is the portal's "For <destination> use <Caller ID>" line of a rule,
// e.g. `For numbers starting with +44203 use +442030001111 "Sales"`.
func (r *CallerIDRule) Summary() string {
	var dest string
	switch r.ApplyFor {
	case ScopeAllCalls:
		dest = "all calls"
	case ScopeCountry:
		if dest = CountryName(r.Country); dest == "" {
			dest = r.Country
		}
	case ScopePrefix:
		dest = "numbers starting with +" + strings.TrimPrefix(r.Prefix, "+")
	default:
		dest = string(r.ApplyFor)
	}
	var cid string
	switch r.Type {
	case RuleBlocked:
		cid = "Anonymous"
	case RuleSetByCaller:
		cid = "the caller's own number"
	default:
		switch len(r.Numbers) {
		case 0:
			cid = "no number"
		case 1:
			cid = r.Numbers[0]
		default:
			cid = "a random number from " + strconv.Itoa(len(r.Numbers))
		}
	}
	s := "For " + dest + " use " + cid
	if r.DisplayName != "" && r.Type != RuleBlocked {
		s += ` "` + r.DisplayName + `"`
	}
	return s
}
