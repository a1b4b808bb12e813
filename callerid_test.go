package sipdesk

import (
	"strconv"
	"strings"
	"testing"
)

const (
	cidVerified = "+447700900001"
	cidDefault  = "+442071234567"
)

func cidPrefix(id int64, prefix, number string) *CallerIDRule {
	return &CallerIDRule{ID: id, Name: "p" + prefix, ApplyFor: ScopePrefix, Prefix: prefix, Type: RuleSpecific, Numbers: []string{number}}
}

func cidCountry(id int64, iso, number string) *CallerIDRule {
	return &CallerIDRule{ID: id, Name: "c" + iso, ApplyFor: ScopeCountry, Country: iso, Type: RuleSpecific, Numbers: []string{number}}
}

func cidAll(id int64, number string) *CallerIDRule {
	return &CallerIDRule{ID: id, Name: "all", ApplyFor: ScopeAllCalls, Type: RuleSpecific, Numbers: []string{number}}
}

func cidRules(rs ...*CallerIDRule) []*CallerIDRule { return rs }

func TestChooseCallerID(t *testing.T) {
	def := CallerIDSetting{DefaultNumber: cidDefault, DisplayName: "Acme"}
	pool := &CallerIDRule{ID: 7, ApplyFor: ScopePrefix, Prefix: "44", Type: RuleSpecific,
		Numbers: []string{"+441110000000", "+442220000000", "+443330000000"}}
	blocked := &CallerIDRule{ID: 8, ApplyFor: ScopePrefix, Prefix: "4420", Type: RuleBlocked}
	byCaller := &CallerIDRule{ID: 9, ApplyFor: ScopeAllCalls, Type: RuleSetByCaller}
	named := cidPrefix(10, "44203", "+442039990000")
	named.DisplayName = "Sales"
	nanp := cidRules(cidCountry(1, "US", "+12025550001"), cidCountry(2, "CA", "+14165550001"), cidCountry(3, "JM", "+18765550001"))
	plusSeven := cidRules(cidCountry(1, "RU", "+74950000001"), cidCountry(2, "KZ", "+77010000001"))
	fixed := func(i int) func(int) int { return func(int) int { return i } }

	tests := []struct {
		name string
		req  CallerIDRequest
		want CallerIDChoice
		code string // expected error code
	}{
		{name: "trial ignores rules, device and default",
			req: CallerIDRequest{Trial: true, VerifiedPhone: cidVerified, Default: def, To: "+442030001111",
				Rules: cidRules(cidPrefix(1, "44", "+441"), blocked), FromUser: "+15551234567", FromDisplay: "Bob"},
			want: CallerIDChoice{Number: cidVerified, Reason: ReasonTrial}},
		{name: "trial with unparsable destination still gets verified phone",
			req:  CallerIDRequest{Trial: true, VerifiedPhone: cidVerified, To: "alice"},
			want: CallerIDChoice{Number: cidVerified, Reason: ReasonTrial}},
		{name: "no rules: account default",
			req:  CallerIDRequest{VerifiedPhone: cidVerified, Default: def, To: "+442030001111"},
			want: CallerIDChoice{Number: cidDefault, DisplayName: "Acme", Reason: ReasonDefault}},
		{name: "no default number: verified phone with default display name",
			req:  CallerIDRequest{VerifiedPhone: cidVerified, Default: CallerIDSetting{DisplayName: "Acme"}, To: "+442030001111"},
			want: CallerIDChoice{Number: cidVerified, DisplayName: "Acme", Reason: ReasonDefault}},
		{name: "no default at all: verified phone, no display name",
			req:  CallerIDRequest{VerifiedPhone: cidVerified, To: "+442030001111", Rules: cidRules(cidPrefix(1, "33", "+331"))},
			want: CallerIDChoice{Number: cidVerified, Reason: ReasonDefault}},
		{name: "all-calls rule",
			req:  CallerIDRequest{VerifiedPhone: cidVerified, Default: def, To: "+4930123456", Rules: cidRules(cidAll(4, "+491111111"))},
			want: CallerIDChoice{Number: "+491111111", DisplayName: "Acme", RuleID: 4, Reason: ReasonRuleAll}},
		{name: "country beats all-calls",
			req: CallerIDRequest{Default: def, To: "+442030001111",
				Rules: cidRules(cidAll(1, "+441"), cidCountry(2, "GB", "+442"))},
			want: CallerIDChoice{Number: "+442", DisplayName: "Acme", RuleID: 2, Reason: ReasonRuleCountry}},
		{name: "prefix beats country and all-calls",
			req: CallerIDRequest{Default: def, To: "+442030001111",
				Rules: cidRules(cidAll(1, "+441"), cidCountry(2, "GB", "+442"), cidPrefix(3, "4420", "+443"))},
			want: CallerIDChoice{Number: "+443", DisplayName: "Acme", RuleID: 3, Reason: ReasonRulePrefix}},
		{name: "longest prefix wins regardless of order and id",
			req: CallerIDRequest{Default: def, To: "+442030001111",
				Rules: cidRules(cidPrefix(1, "44", "+441"), cidPrefix(5, "44203", "+445"), cidPrefix(2, "4420", "+442"))},
			want: CallerIDChoice{Number: "+445", DisplayName: "Acme", RuleID: 5, Reason: ReasonRulePrefix}},
		{name: "prefix tie: lowest id",
			req: CallerIDRequest{Default: def, To: "+442030001111",
				Rules: cidRules(cidPrefix(9, "4420", "+449"), cidPrefix(3, "4420", "+443"), cidPrefix(6, "4420", "+446"))},
			want: CallerIDChoice{Number: "+443", DisplayName: "Acme", RuleID: 3, Reason: ReasonRulePrefix}},
		{name: "country tie: lowest id",
			req: CallerIDRequest{Default: def, To: "+442030001111",
				Rules: cidRules(cidCountry(12, "GB", "+4412"), cidCountry(11, "GB", "+4411"))},
			want: CallerIDChoice{Number: "+4411", DisplayName: "Acme", RuleID: 11, Reason: ReasonRuleCountry}},
		{name: "all-calls tie: lowest id",
			req:  CallerIDRequest{Default: def, To: "+442030001111", Rules: cidRules(cidAll(22, "+4422"), cidAll(21, "+4421"))},
			want: CallerIDChoice{Number: "+4421", DisplayName: "Acme", RuleID: 21, Reason: ReasonRuleAll}},
		{name: "non-matching prefix falls through to country",
			req: CallerIDRequest{Default: def, To: "+442030001111",
				Rules: cidRules(cidPrefix(1, "4421", "+441"), cidPrefix(2, "33", "+33"), cidCountry(3, "gb", "+443"))},
			want: CallerIDChoice{Number: "+443", DisplayName: "Acme", RuleID: 3, Reason: ReasonRuleCountry}},
		{name: "other country's rule does not match",
			req:  CallerIDRequest{Default: def, To: "+442030001111", Rules: cidRules(cidCountry(1, "FR", "+331"))},
			want: CallerIDChoice{Number: cidDefault, DisplayName: "Acme", Reason: ReasonDefault}},
		{name: "number of no country: country rules skipped, all-calls applies",
			req:  CallerIDRequest{Default: def, To: "+80012345678", Rules: cidRules(cidCountry(1, "US", "+1"), cidAll(2, "+442"))},
			want: CallerIDChoice{Number: "+442", DisplayName: "Acme", RuleID: 2, Reason: ReasonRuleAll}},
		{name: "specific rule without numbers and nil rules are ignored",
			req: CallerIDRequest{Default: def, To: "+442030001111",
				Rules: cidRules(nil, &CallerIDRule{ID: 1, ApplyFor: ScopePrefix, Prefix: "44", Type: RuleSpecific}, cidAll(2, "+442"))},
			want: CallerIDChoice{Number: "+442", DisplayName: "Acme", RuleID: 2, Reason: ReasonRuleAll}},
		{name: "pool with fixed Rand",
			req:  CallerIDRequest{Default: def, To: "+442030001111", Rules: cidRules(pool), Rand: fixed(2)},
			want: CallerIDChoice{Number: "+443330000000", DisplayName: "Acme", RuleID: 7, Reason: ReasonRulePrefix}},
		{name: "pool with out-of-range Rand is clamped into the pool",
			req:  CallerIDRequest{Default: def, To: "+442030001111", Rules: cidRules(pool), Rand: fixed(4)},
			want: CallerIDChoice{Number: "+442220000000", DisplayName: "Acme", RuleID: 7, Reason: ReasonRulePrefix}},
		{name: "blocked: anonymous",
			req:  CallerIDRequest{Default: def, To: "+442030001111", Rules: cidRules(pool, blocked)},
			want: CallerIDChoice{Number: AnonymousUser, DisplayName: AnonymousDisplay, Anonymous: true, RuleID: 8, Reason: ReasonRulePrefix}},
		{name: "set_by_caller keeps the device's number and name",
			req: CallerIDRequest{Default: def, To: "+442030001111", Rules: cidRules(byCaller),
				FromUser: "+1 (416) 555-0100", FromDisplay: "  Alice  "},
			want: CallerIDChoice{Number: "+14165550100", DisplayName: "Alice", RuleID: 9, Reason: ReasonRuleAll}},
		{name: "set_by_caller with a bad display name drops it",
			req: CallerIDRequest{Default: def, To: "+442030001111", Rules: cidRules(byCaller),
				FromUser: "442030009999", FromDisplay: `Evil" <sip:x>`},
			want: CallerIDChoice{Number: "+442030009999", RuleID: 9, Reason: ReasonRuleAll}},
		{name: "set_by_caller with a non-number From: default, reason says so",
			req: CallerIDRequest{VerifiedPhone: cidVerified, Default: def, To: "+442030001111", Rules: cidRules(byCaller),
				FromUser: "alice", FromDisplay: "Alice"},
			want: CallerIDChoice{Number: cidDefault, DisplayName: "Acme", RuleID: 9, Reason: ReasonSetByCallerInvalid}},
		{name: "rule display name beats the default's",
			req:  CallerIDRequest{Default: def, To: "+442030001111", Rules: cidRules(named)},
			want: CallerIDChoice{Number: "+442039990000", DisplayName: "Sales", RuleID: 10, Reason: ReasonRulePrefix}},
		{name: "input with spaces",
			req:  CallerIDRequest{Default: def, To: " +44 20 3000 1111 ", Rules: cidRules(named)},
			want: CallerIDChoice{Number: "+442039990000", DisplayName: "Sales", RuleID: 10, Reason: ReasonRulePrefix}},
		{name: "input with 00",
			req:  CallerIDRequest{Default: def, To: "00442030001111", Rules: cidRules(named)},
			want: CallerIDChoice{Number: "+442039990000", DisplayName: "Sales", RuleID: 10, Reason: ReasonRulePrefix}},
		{name: "input with dashes and brackets",
			req:  CallerIDRequest{Default: def, To: "+44 (20) 3000-1111", Rules: cidRules(named)},
			want: CallerIDChoice{Number: "+442039990000", DisplayName: "Sales", RuleID: 10, Reason: ReasonRulePrefix}},
		{name: "input as tel URI",
			req:  CallerIDRequest{Default: def, To: "tel:+442030001111;phone-context=x", Rules: cidRules(named)},
			want: CallerIDChoice{Number: "+442039990000", DisplayName: "Sales", RuleID: 10, Reason: ReasonRulePrefix}},
		{name: "input as sip URI",
			req:  CallerIDRequest{Default: def, To: "sip:+442030001111@carrier.example", Rules: cidRules(named)},
			want: CallerIDChoice{Number: "+442039990000", DisplayName: "Sales", RuleID: 10, Reason: ReasonRulePrefix}},
		{name: "invalid: letters", req: CallerIDRequest{Default: def, To: "call-me"}, code: EInvalidNumber},
		{name: "invalid: too short", req: CallerIDRequest{Default: def, To: "+44123"}, code: EInvalidNumber},
		{name: "invalid: too long", req: CallerIDRequest{Default: def, To: "+4412345678901234"}, code: EInvalidNumber},
		{name: "invalid: empty", req: CallerIDRequest{Default: def, To: ""}, code: EInvalidNumber},
		{name: "invalid: national number with trunk zero", req: CallerIDRequest{Default: def, To: "02030001111"}, code: EInvalidNumber},
		{name: "country GB",
			req:  CallerIDRequest{Default: def, To: "+447400123456", Rules: cidRules(cidCountry(1, "GB", "+441"), cidCountry(2, "FR", "+331"))},
			want: CallerIDChoice{Number: "+441", DisplayName: "Acme", RuleID: 1, Reason: ReasonRuleCountry}},
		{name: "+1: US",
			req:  CallerIDRequest{Default: def, To: "+1 212 555 0100", Rules: nanp},
			want: CallerIDChoice{Number: "+12025550001", DisplayName: "Acme", RuleID: 1, Reason: ReasonRuleCountry}},
		{name: "+1: Canada by area code",
			req:  CallerIDRequest{Default: def, To: "+14165550100", Rules: nanp},
			want: CallerIDChoice{Number: "+14165550001", DisplayName: "Acme", RuleID: 2, Reason: ReasonRuleCountry}},
		{name: "+1: Jamaica by area code",
			req:  CallerIDRequest{Default: def, To: "+18765550100", Rules: nanp},
			want: CallerIDChoice{Number: "+18765550001", DisplayName: "Acme", RuleID: 3, Reason: ReasonRuleCountry}},
		{name: "+1: Puerto Rico matches neither US nor CA rule",
			req:  CallerIDRequest{Default: def, To: "+17875550100", Rules: nanp},
			want: CallerIDChoice{Number: cidDefault, DisplayName: "Acme", Reason: ReasonDefault}},
		{name: "+7: Russia",
			req:  CallerIDRequest{Default: def, To: "+74951234567", Rules: plusSeven},
			want: CallerIDChoice{Number: "+74950000001", DisplayName: "Acme", RuleID: 1, Reason: ReasonRuleCountry}},
		{name: "+7: Kazakhstan",
			req:  CallerIDRequest{Default: def, To: "+77011234567", Rules: plusSeven},
			want: CallerIDChoice{Number: "+77010000001", DisplayName: "Acme", RuleID: 2, Reason: ReasonRuleCountry}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ChooseCallerID(tt.req)
			if tt.code != "" {
				if ErrorCode(err) != tt.code {
					t.Fatalf("err = %v (code %q), want code %q", err, ErrorCode(err), tt.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestChooseCallerIDPoolReachesEveryMember(t *testing.T) {
	numbers := []string{"+441110000000", "+442220000000", "+443330000000", "+444440000000"}
	rule := &CallerIDRule{ID: 1, ApplyFor: ScopeAllCalls, Type: RuleSpecific, Numbers: numbers}
	req := CallerIDRequest{To: "+33123456789", Rules: []*CallerIDRule{rule}}

	// Every index the Rand may return maps to its member.
	for i, want := range numbers {
		req.Rand = func(n int) int {
			if n != len(numbers) {
				t.Fatalf("Rand(%d), want Rand(%d)", n, len(numbers))
			}
			return i
		}
		got, err := ChooseCallerID(req)
		if err != nil || got.Number != want {
			t.Errorf("Rand()=%d: got %q, %v; want %q", i, got.Number, err, want)
		}
	}

	// The default source (math/rand/v2) reaches every member.
	req.Rand = nil
	seen := map[string]int{}
	for range 400 {
		got, err := ChooseCallerID(req)
		if err != nil {
			t.Fatal(err)
		}
		seen[got.Number]++
	}
	for _, n := range numbers {
		if seen[n] == 0 {
			t.Errorf("pool member %s never picked in 400 calls: %v", n, seen)
		}
	}
	if len(seen) != len(numbers) {
		t.Errorf("picked numbers outside the pool: %v", seen)
	}
}

func TestChooseCallerIDDoesNotAllocate(t *testing.T) {
	rules := cidBenchRules(1000)
	req := CallerIDRequest{VerifiedPhone: cidVerified, Default: CallerIDSetting{DefaultNumber: cidDefault}, Rules: rules, To: "+442030001111"}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ChooseCallerID(req); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Errorf("ChooseCallerID allocates %.1f times per call with an E.164 destination", allocs)
	}
}

// normalizeDialed's fast path must agree with NormalizeNumber.
func TestChooseCallerIDNormalizeFastPath(t *testing.T) {
	for _, s := range []string{
		"+442030001111", "442030001111", " +442030001111 ", "00442030001111", "+00442030001111",
		"0442030001111", "+1234567", "123456", "+123456789012345", "1234567890123456",
		"++442030001111", "+44+2030001111", "+44 20 3000 1111", "tel:+442030001111", "", "+",
		"4420300011x1", "sip:442030001111@h", "+0442030001111",
	} {
		got, gerr := normalizeDialed(s)
		want, werr := NormalizeNumber(s)
		if got != want || (gerr == nil) != (werr == nil) {
			t.Errorf("normalizeDialed(%q) = %q, %v; NormalizeNumber = %q, %v", s, got, gerr, want, werr)
		}
	}
}

func TestCallerIDRuleValidate(t *testing.T) {
	verifiedSet := map[string]bool{"+442030001111": true, "+442030002222": true, "+14165550100": true}
	verified := func(n string) bool { return verifiedSet[n] }
	long := strings.Repeat("x", 65)
	many := make([]string, 21)
	for i := range many {
		many[i] = "+4420300" + strconv.Itoa(10000+i)
	}

	tests := []struct {
		name  string
		rule  CallerIDRule
		field string       // "" = valid
		want  CallerIDRule // normalised rule when valid
	}{
		{name: "valid prefix rule, normalised",
			rule: CallerIDRule{Name: "  London  ", ApplyFor: "Prefix", Prefix: "+44 203", Country: "GB", Type: "SPECIFIC",
				Numbers: []string{"0044 20 3000 1111"}, DisplayName: " Sales "},
			want: CallerIDRule{Name: "London", ApplyFor: ScopePrefix, Prefix: "44203", Type: RuleSpecific,
				Numbers: []string{"+442030001111"}, DisplayName: "Sales"}},
		{name: "valid prefix with 00",
			rule: CallerIDRule{Name: "x", ApplyFor: ScopePrefix, Prefix: "0044203", Type: RuleBlocked},
			want: CallerIDRule{Name: "x", ApplyFor: ScopePrefix, Prefix: "44203", Type: RuleBlocked}},
		{name: "valid country rule with pool",
			rule: CallerIDRule{Name: "UK", ApplyFor: ScopeCountry, Country: "gb", Prefix: "44", Type: RuleSpecific,
				Numbers: []string{"+442030001111", "+44 20 3000 2222"}},
			want: CallerIDRule{Name: "UK", ApplyFor: ScopeCountry, Country: "GB", Type: RuleSpecific,
				Numbers: []string{"+442030001111", "+442030002222"}}},
		{name: "valid all-calls set_by_caller",
			rule: CallerIDRule{Name: "passthrough", ApplyFor: ScopeAllCalls, Type: RuleSetByCaller},
			want: CallerIDRule{Name: "passthrough", ApplyFor: ScopeAllCalls, Type: RuleSetByCaller}},
		{name: "empty name", rule: CallerIDRule{Name: "   ", ApplyFor: ScopeAllCalls, Type: RuleBlocked}, field: "name"},
		{name: "name too long", rule: CallerIDRule{Name: long, ApplyFor: ScopeAllCalls, Type: RuleBlocked}, field: "name"},
		{name: "bad apply_for", rule: CallerIDRule{Name: "x", ApplyFor: "region", Type: RuleBlocked}, field: "apply_for"},
		{name: "missing apply_for", rule: CallerIDRule{Name: "x", Type: RuleBlocked}, field: "apply_for"},
		{name: "unknown country", rule: CallerIDRule{Name: "x", ApplyFor: ScopeCountry, Country: "XX", Type: RuleBlocked}, field: "country"},
		{name: "missing country", rule: CallerIDRule{Name: "x", ApplyFor: ScopeCountry, Type: RuleBlocked}, field: "country"},
		{name: "alpha-3 country", rule: CallerIDRule{Name: "x", ApplyFor: ScopeCountry, Country: "GBR", Type: RuleBlocked}, field: "country"},
		{name: "empty prefix", rule: CallerIDRule{Name: "x", ApplyFor: ScopePrefix, Prefix: "+", Type: RuleBlocked}, field: "prefix"},
		{name: "prefix with letters", rule: CallerIDRule{Name: "x", ApplyFor: ScopePrefix, Prefix: "44abc", Type: RuleBlocked}, field: "prefix"},
		{name: "prefix too long", rule: CallerIDRule{Name: "x", ApplyFor: ScopePrefix, Prefix: "4420300011112222", Type: RuleBlocked}, field: "prefix"},
		{name: "national prefix", rule: CallerIDRule{Name: "x", ApplyFor: ScopePrefix, Prefix: "020", Type: RuleBlocked}, field: "prefix"},
		{name: "bad type", rule: CallerIDRule{Name: "x", ApplyFor: ScopeAllCalls, Type: "random"}, field: "type"},
		{name: "specific without numbers", rule: CallerIDRule{Name: "x", ApplyFor: ScopeAllCalls, Type: RuleSpecific}, field: "numbers"},
		{name: "specific with 21 numbers", rule: CallerIDRule{Name: "x", ApplyFor: ScopeAllCalls, Type: RuleSpecific, Numbers: many}, field: "numbers"},
		{name: "unverified number", rule: CallerIDRule{Name: "x", ApplyFor: ScopeAllCalls, Type: RuleSpecific,
			Numbers: []string{"+442030001111", "+449999999999"}}, field: "numbers"},
		{name: "invalid number", rule: CallerIDRule{Name: "x", ApplyFor: ScopeAllCalls, Type: RuleSpecific, Numbers: []string{"sales"}}, field: "numbers"},
		{name: "duplicate numbers", rule: CallerIDRule{Name: "x", ApplyFor: ScopeAllCalls, Type: RuleSpecific,
			Numbers: []string{"+442030001111", "0044 20 3000 1111"}}, field: "numbers"},
		{name: "blocked with numbers", rule: CallerIDRule{Name: "x", ApplyFor: ScopeAllCalls, Type: RuleBlocked, Numbers: []string{"+442030001111"}}, field: "numbers"},
		{name: "set_by_caller with numbers", rule: CallerIDRule{Name: "x", ApplyFor: ScopeAllCalls, Type: RuleSetByCaller, Numbers: []string{"+442030001111"}}, field: "numbers"},
		{name: "display name with quote", rule: CallerIDRule{Name: "x", ApplyFor: ScopeAllCalls, Type: RuleSpecific,
			Numbers: []string{"+442030001111"}, DisplayName: `a"b`}, field: "display_name"},
		{name: "display name too long", rule: CallerIDRule{Name: "x", ApplyFor: ScopeAllCalls, Type: RuleSpecific,
			Numbers: []string{"+442030001111"}, DisplayName: long}, field: "display_name"},
		{name: "display name on blocked rule", rule: CallerIDRule{Name: "x", ApplyFor: ScopeAllCalls, Type: RuleBlocked, DisplayName: "Sales"}, field: "display_name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.rule
			orig := tt.rule
			err := r.Validate(verified)
			if tt.field != "" {
				if ErrorCode(err) != EInvalid || ErrorField(err) != tt.field {
					t.Fatalf("err = %v (code %q field %q), want field %q", err, ErrorCode(err), ErrorField(err), tt.field)
				}
				if r.Name != orig.Name || r.ApplyFor != orig.ApplyFor || r.Prefix != orig.Prefix || r.Country != orig.Country {
					t.Errorf("rule changed on error: %+v", r)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if r.Name != tt.want.Name || r.ApplyFor != tt.want.ApplyFor || r.Country != tt.want.Country ||
				r.Prefix != tt.want.Prefix || r.Type != tt.want.Type || r.DisplayName != tt.want.DisplayName ||
				strings.Join(r.Numbers, ",") != strings.Join(tt.want.Numbers, ",") {
				t.Errorf("normalised to %+v\nwant %+v", r, tt.want)
			}
		})
	}

	// The unverified number is named in the message.
	r := CallerIDRule{Name: "x", ApplyFor: ScopeAllCalls, Type: RuleSpecific, Numbers: []string{"+449999999999"}}
	if err := r.Validate(verified); err == nil || !strings.Contains(err.Error(), "+449999999999") {
		t.Errorf("unverified number error = %v, want it to name the number", err)
	}
	// nil verified skips the check.
	if err := r.Validate(nil); err != nil {
		t.Errorf("Validate(nil) = %v", err)
	}
}

func TestCallerIDRuleSummary(t *testing.T) {
	tests := []struct {
		rule CallerIDRule
		want string
	}{
		{CallerIDRule{ApplyFor: ScopeAllCalls, Type: RuleSpecific, Numbers: []string{"+442030001111"}},
			"For all calls use +442030001111"},
		{CallerIDRule{ApplyFor: ScopePrefix, Prefix: "44203", Type: RuleSpecific, Numbers: []string{"+442030001111"}, DisplayName: "Sales"},
			`For numbers starting with +44203 use +442030001111 "Sales"`},
		{CallerIDRule{ApplyFor: ScopeCountry, Country: "GB", Type: RuleSpecific, Numbers: []string{"+441", "+442", "+443"}},
			"For United Kingdom use a random number from 3"},
		{CallerIDRule{ApplyFor: ScopeCountry, Country: "KZ", Type: RuleSpecific, Numbers: []string{"+441", "+442"}, DisplayName: "Support"},
			`For Kazakhstan use a random number from 2 "Support"`},
		{CallerIDRule{ApplyFor: ScopeCountry, Country: "US", Type: RuleSetByCaller},
			"For United States use the caller's own number"},
		{CallerIDRule{ApplyFor: ScopePrefix, Prefix: "1876", Type: RuleBlocked},
			"For numbers starting with +1876 use Anonymous"},
	}
	for _, tt := range tests {
		if got := tt.rule.Summary(); got != tt.want {
			t.Errorf("Summary() = %q, want %q", got, tt.want)
		}
	}
}

func TestCountryOf(t *testing.T) {
	tests := map[string]string{
		"442030001111":  "GB",
		"447911123456":  "GG",
		"441534123456":  "JE",
		"441624123456":  "IM",
		"12125550100":   "US",
		"14165550100":   "CA",
		"16045550100":   "CA",
		"15145550100":   "CA",
		"18765550100":   "JM",
		"17875550100":   "PR",
		"19395550100":   "PR",
		"12425550100":   "BS",
		"18095550100":   "DO",
		"74951234567":   "RU",
		"78121234567":   "RU",
		"77011234567":   "KZ",
		"77272123456":   "KZ",
		"76123456789":   "KZ",
		"33123456789":   "FR",
		"4930123456":    "DE",
		"3906698123456": "VA",
		"390612345678":  "IT",
		"358181234567":  "AX",
		"358912345678":  "FI",
		"262269123456":  "YT",
		"262262123456":  "RE",
		"61891641234":   "CX",
		"61212345678":   "AU",
		"59997654321":   "CW",
		"59971234567":   "BQ",
		"38344123456":   "XK",
		"2125288123":    "EH",
		"212522123456":  "MA",
		"80012345678":   "",
		"88212345678":   "",
		"":              "",
		"1":             "US",
	}
	for in, want := range tests {
		if got := CountryOf(in); got != want {
			t.Errorf("CountryOf(%q) = %q, want %q", in, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { CountryOf("14165550100") }); n != 0 {
		t.Errorf("CountryOf allocates %.1f times", n)
	}
}

func TestCountryTable(t *testing.T) {
	if len(countryTable) < 235 {
		t.Errorf("country table has %d entries, want every country with a calling code (~240)", len(countryTable))
	}
	seen := map[string]bool{}
	for _, c := range countryTable {
		if len(c.ISO) != 2 || strings.ToUpper(c.ISO) != c.ISO {
			t.Errorf("bad ISO code %q", c.ISO)
		}
		if seen[c.ISO] {
			t.Errorf("duplicate ISO code %q", c.ISO)
		}
		seen[c.ISO] = true
		if c.Name == "" || len(c.Codes) == 0 {
			t.Errorf("%s: missing name or calling code", c.ISO)
		}
		for _, p := range c.Codes {
			if p == "" || p[0] == '0' || strings.Trim(p, "0123456789") != "" {
				t.Errorf("%s: bad code %q", c.ISO, p)
			}
		}
	}
	if !KnownCountry("gb") || !KnownCountry("KZ") || KnownCountry("XX") || KnownCountry("") || KnownCountry("GBR") {
		t.Error("KnownCountry")
	}
	if CountryName("gb") != "United Kingdom" || CountryName("JM") != "Jamaica" || CountryName("XX") != "" {
		t.Error("CountryName")
	}
	cs := Countries()
	cs[0].Codes[0] = "999"
	if countryTable[0].Codes[0] == "999" {
		t.Error("Countries() shares the table")
	}
}

// cidBenchRules builds n rules of one account: mostly prefix rules of 2 to 7
// digits across many countries, some country rules and one all-calls rule.
func cidBenchRules(n int) []*CallerIDRule {
	ccs := []string{"1", "7", "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45",
		"46", "47", "48", "49", "52", "55", "61", "81", "86", "91", "234", "353", "358", "380", "420", "971"}
	rules := make([]*CallerIDRule, 0, n)
	for i := 0; len(rules) < n-1; i++ {
		id := int64(len(rules) + 1)
		if i%4 == 3 {
			c := countryTable[i%len(countryTable)]
			rules = append(rules, cidCountry(id, c.ISO, "+441"+strconv.Itoa(1000000+i)))
			continue
		}
		p := ccs[i%len(ccs)] + strconv.Itoa(i*7919%100000)
		p = p[:min(len(p), 2+i%6)]
		rules = append(rules, cidPrefix(id, p, "+442"+strconv.Itoa(1000000+i)))
	}
	return append(rules, cidAll(int64(n), "+443"))
}

func BenchmarkChooseCallerID1000Rules(b *testing.B) {
	rules := cidBenchRules(1000)
	for _, bc := range []struct{ name, to string }{
		{"e164", "+442030001111"},
		{"formatted", "tel:+44 (20) 3000-1111"},
		{"nanp", "+14165550100"},
	} {
		req := CallerIDRequest{VerifiedPhone: cidVerified, Default: CallerIDSetting{DefaultNumber: cidDefault, DisplayName: "Acme"},
			Rules: rules, To: bc.to, Rand: func(int) int { return 0 }}
		if _, err := ChooseCallerID(req); err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ChooseCallerID(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
