package sipdesk

import (
	"slices"
	"testing"
)

// TestDecideCallerID: the final header values of the carrier leg, the
// anonymous and no-decision fallbacks included, for the rows of SPEC.md's
// Caller ID table.
func TestDecideCallerID(t *testing.T) {
	paid := &Customer{ID: 1, VerifiedPhone: cidVerified, BillingState: BillingPaid}
	trial := &Customer{ID: 1, VerifiedPhone: cidVerified, BillingState: BillingTrial}
	noPhone := &Customer{ID: 1, BillingState: BillingPaid}
	rules := map[int64]*CallerIDRule{
		1: {ID: 1, CustomerID: 1, ApplyFor: ScopePrefix, Prefix: "44203", Type: RuleSpecific, Numbers: []string{"+442030000001"}, DisplayName: "Sales"},
		2: {ID: 2, CustomerID: 1, ApplyFor: ScopeCountry, Country: "FR", Type: RuleSpecific, Numbers: []string{"+33100000001"}},
		3: {ID: 3, CustomerID: 1, ApplyFor: ScopePrefix, Prefix: "49", Type: RuleBlocked},
		4: {ID: 4, CustomerID: 1, ApplyFor: ScopePrefix, Prefix: "1212", Type: RuleSetByCaller},
		5: {ID: 5, CustomerID: 1, ApplyFor: ScopeAllCalls, Type: RuleSpecific, Numbers: []string{"+15550000777"}},
		6: {ID: 6, CustomerID: 1, ApplyFor: ScopePrefix, Prefix: "44", Type: RuleSpecific, Numbers: []string{"+441110000001", "+441110000002"}},
		// Another customer's rule, selected by mistake: never used.
		9: {ID: 9, CustomerID: 2, ApplyFor: ScopeAllCalls, Type: RuleBlocked},
	}
	acct := func(def, name string, ids ...int64) *SIPAccount {
		return &SIPAccount{ID: 10, CustomerID: 1, CallerID: CallerIDSetting{DefaultNumber: def, DisplayName: name, RuleIDs: ids}}
	}
	second := func(int) int { return 1 }

	tests := []struct {
		name string
		in   CallerIDInput
		want CallerIDHeaders
	}{
		{name: "trial: verified phone whatever the rules and device",
			in:   CallerIDInput{Account: acct(cidDefault, "Acme", 1, 3), Customer: trial, Rules: rules, To: "4930123456", FromUser: "+15551234567", FromDisplay: "Bob"},
			want: CallerIDHeaders{FromUser: cidVerified, PAI: cidVerified, Reason: ReasonTrial}},
		{name: "prefix rule with its display name",
			in:   CallerIDInput{Account: acct(cidDefault, "Acme", 1, 2, 5), Customer: paid, Rules: rules, To: "442031234567"},
			want: CallerIDHeaders{FromUser: "+442030000001", FromDisplay: "Sales", PAI: "+442030000001", RuleID: 1, Reason: ReasonRulePrefix}},
		{name: "country rule takes the account display name",
			in:   CallerIDInput{Account: acct(cidDefault, "Acme", 1, 2, 5), Customer: paid, Rules: rules, To: "33612345678"},
			want: CallerIDHeaders{FromUser: "+33100000001", FromDisplay: "Acme", PAI: "+33100000001", RuleID: 2, Reason: ReasonRuleCountry}},
		{name: "all-calls rule",
			in:   CallerIDInput{Account: acct(cidDefault, "", 1, 2, 5), Customer: paid, Rules: rules, To: "81312345678"},
			want: CallerIDHeaders{FromUser: "+15550000777", PAI: "+15550000777", RuleID: 5, Reason: ReasonRuleAll}},
		{name: "pool: the picked number in From and PAI",
			in:   CallerIDInput{Account: acct(cidDefault, "", 6), Customer: paid, Rules: rules, To: "441612345678", Rand: second},
			want: CallerIDHeaders{FromUser: "+441110000002", PAI: "+441110000002", RuleID: 6, Reason: ReasonRulePrefix}},
		{name: "set_by_caller keeps the device's number and display",
			in:   CallerIDInput{Account: acct(cidDefault, "Acme", 4), Customer: paid, Rules: rules, To: "12125551234", FromUser: "+15550009007", FromDisplay: "Desk 7"},
			want: CallerIDHeaders{FromUser: "+15550009007", FromDisplay: "Desk 7", PAI: "+15550009007", RuleID: 4, Reason: ReasonRulePrefix}},
		{name: "set_by_caller with a device user that is no number: the default",
			in:   CallerIDInput{Account: acct(cidDefault, "Acme", 4), Customer: paid, Rules: rules, To: "12125551234", FromUser: "alice", FromDisplay: "Alice"},
			want: CallerIDHeaders{FromUser: cidDefault, FromDisplay: "Acme", PAI: cidDefault, RuleID: 4, Reason: ReasonSetByCallerInvalid}},
		{name: "blocked: anonymous From, Privacy id, PAI the default number",
			in: CallerIDInput{Account: acct(cidDefault, "Acme", 3), Customer: paid, Rules: rules, To: "4930123456", FromUser: "+15550001111", FromDisplay: "Bob"},
			want: CallerIDHeaders{FromUser: AnonymousUser, FromDisplay: AnonymousDisplay, Anonymous: true, PAI: cidDefault, Privacy: "id",
				RuleID: 3, Reason: ReasonRulePrefix}},
		{name: "blocked without a default number: PAI the verified phone",
			in: CallerIDInput{Account: acct("", "", 3), Customer: paid, Rules: rules, To: "4930123456"},
			want: CallerIDHeaders{FromUser: AnonymousUser, FromDisplay: AnonymousDisplay, Anonymous: true, PAI: cidVerified, Privacy: "id",
				RuleID: 3, Reason: ReasonRulePrefix}},
		{name: "blocked without any number: anonymous, no PAI",
			in: CallerIDInput{Account: acct("", "", 3), Customer: noPhone, Rules: rules, To: "4930123456"},
			want: CallerIDHeaders{FromUser: AnonymousUser, FromDisplay: AnonymousDisplay, Anonymous: true, Privacy: "id",
				RuleID: 3, Reason: ReasonRulePrefix}},
		{name: "no rule: default number and display",
			in:   CallerIDInput{Account: acct(cidDefault, "Acme", 1, 2, 3), Customer: paid, Rules: rules, To: "34912345678", FromUser: "100"},
			want: CallerIDHeaders{FromUser: cidDefault, FromDisplay: "Acme", PAI: cidDefault, Reason: ReasonDefault}},
		{name: "no default number: the verified phone",
			in:   CallerIDInput{Account: acct("", "Acme"), Customer: paid, Rules: rules, To: "34912345678"},
			want: CallerIDHeaders{FromUser: cidVerified, FromDisplay: "Acme", PAI: cidVerified, Reason: ReasonDefault}},
		{name: "another customer's rule is ignored",
			in:   CallerIDInput{Account: acct(cidDefault, "", 9), Customer: paid, Rules: rules, To: "34912345678"},
			want: CallerIDHeaders{FromUser: cidDefault, PAI: cidDefault, Reason: ReasonDefault}},
		{name: "a selected rule that no longer exists is ignored",
			in:   CallerIDInput{Account: acct(cidDefault, "", 77), Customer: paid, Rules: rules, To: "34912345678"},
			want: CallerIDHeaders{FromUser: cidDefault, PAI: cidDefault, Reason: ReasonDefault}},
		{name: "no decision: no default and no verified phone, the device's From passes",
			in:   CallerIDInput{Account: acct("", "Acme"), Customer: noPhone, Rules: rules, To: "34912345678", FromUser: "100", FromDisplay: "Front"},
			want: CallerIDHeaders{FromUser: "100", FromDisplay: "Front", Reason: ReasonNoDecision}},
		{name: "no decision: trial without a verified phone",
			in:   CallerIDInput{Account: acct("", ""), Customer: &Customer{BillingState: BillingTrial}, Rules: rules, To: "34912345678", FromUser: "100"},
			want: CallerIDHeaders{FromUser: "100", Reason: ReasonNoDecision}},
		{name: "no decision: no customer known",
			in:   CallerIDInput{Account: acct("", ""), To: "34912345678", FromUser: "100", FromDisplay: "Front"},
			want: CallerIDHeaders{FromUser: "100", FromDisplay: "Front", Reason: ReasonNoDecision}},
		{name: "no decision: the dialed number is not a number, PAI the default number",
			in:   CallerIDInput{Account: acct(cidDefault, "Acme", 1), Customer: paid, Rules: rules, To: "alice", FromUser: "100", FromDisplay: "Front"},
			want: CallerIDHeaders{FromUser: "100", FromDisplay: "Front", PAI: cidDefault, Reason: ReasonNoDecision}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DecideCallerID(tt.in)
			if got != tt.want {
				t.Fatalf("DecideCallerID:\n got %+v\nwant %+v", got, tt.want)
			}
			wantCID := tt.want.FromUser
			if tt.want.Anonymous {
				wantCID = AnonymousUser
			}
			if got.CallerID() != wantCID {
				t.Errorf("CallerID() = %q, want %q", got.CallerID(), wantCID)
			}
		})
	}
}

// TestDecideCallerIDAgreesWithChooseCallerID: whenever ChooseCallerID gives
// a number, the headers carry it with the same rule and reason.
func TestDecideCallerIDAgreesWithChooseCallerID(t *testing.T) {
	c := &Customer{ID: 1, VerifiedPhone: cidVerified, BillingState: BillingPaid}
	rs := map[int64]*CallerIDRule{}
	var ids []int64
	for _, r := range cidRules(cidPrefix(1, "44", "+441"), cidCountry(2, "FR", "+332"), cidAll(3, "+13")) {
		r.CustomerID = 1
		rs[r.ID] = r
		ids = append(ids, r.ID)
	}
	a := &SIPAccount{CustomerID: 1, CallerID: CallerIDSetting{DefaultNumber: cidDefault, DisplayName: "Acme", RuleIDs: ids}}
	for _, to := range []string{"442030001111", "33612345678", "81312345678"} {
		var sel []*CallerIDRule
		for _, id := range ids {
			sel = append(sel, rs[id])
		}
		ch, err := ChooseCallerID(CallerIDRequest{VerifiedPhone: cidVerified, Default: a.CallerID, Rules: sel, To: to})
		if err != nil {
			t.Fatal(err)
		}
		h := DecideCallerID(CallerIDInput{Account: a, Customer: c, Rules: rs, To: to})
		if h.FromUser != ch.Number || h.PAI != ch.Number || h.FromDisplay != ch.DisplayName || h.RuleID != ch.RuleID || h.Reason != ch.Reason {
			t.Errorf("to %s: headers %+v, choice %+v", to, h, ch)
		}
	}
}

// TestDecideCallerIDInvariants walks a grid of accounts, customers, rule
// selections and destinations and checks what must hold for every call.
func TestDecideCallerIDInvariants(t *testing.T) {
	rules := map[int64]*CallerIDRule{
		1: {ID: 1, CustomerID: 1, ApplyFor: ScopePrefix, Prefix: "44", Type: RuleBlocked},
		2: {ID: 2, CustomerID: 1, ApplyFor: ScopeCountry, Country: "GB", Type: RuleSpecific, Numbers: []string{"+442030000001", "+442030000002"}},
		3: {ID: 3, CustomerID: 1, ApplyFor: ScopeAllCalls, Type: RuleSetByCaller},
		4: {ID: 4, CustomerID: 1, ApplyFor: ScopePrefix, Prefix: "1", Type: RuleSpecific, Numbers: []string{"+15550000001"}, DisplayName: "US"},
		5: {ID: 5, CustomerID: 2, ApplyFor: ScopeAllCalls, Type: RuleBlocked},
	}
	selections := [][]int64{nil, {1}, {2}, {3}, {4}, {5}, {1, 2, 3, 4}, {2, 3}, {3, 5}, {1, 99}}
	n := 0
	for _, billing := range []BillingState{BillingTrial, BillingPaid} {
		for _, phone := range []string{"", cidVerified} {
			for _, def := range []string{"", cidDefault} {
				for _, sel := range selections {
					for _, to := range []string{"442031234567", "4930123456", "12125550100", "x", ""} {
						for _, dev := range [][2]string{{"+15559990000", "Dev"}, {"bob", ""}} {
							c := &Customer{ID: 1, VerifiedPhone: phone, BillingState: billing}
							a := &SIPAccount{CustomerID: 1, CallerID: CallerIDSetting{DefaultNumber: def, DisplayName: "Acme", RuleIDs: sel}}
							h := DecideCallerID(CallerIDInput{Account: a, Customer: c, Rules: rules, To: to, FromUser: dev[0], FromDisplay: dev[1]})
							n++
							fail := func(why string) {
								t.Helper()
								t.Errorf("%s: %s phone %q default %q rules %v to %q device %q: %+v", why, billing, phone, def, sel, to, dev, h)
							}
							anon := h.FromUser == AnonymousUser && h.FromDisplay == AnonymousDisplay
							if h.Anonymous != anon || h.Anonymous != (h.Privacy == "id") || (h.Privacy != "" && h.Privacy != "id") {
								fail("anonymous From, its host and Privacy: id go together")
							}
							switch {
							case h.Reason == ReasonNoDecision:
								if h.FromUser != dev[0] || h.FromDisplay != dev[1] || h.PAI != def || h.RuleID != 0 {
									fail("no decision: the device's From passes, PAI the default number")
								}
							case h.Anonymous:
								want := def
								if billing != BillingPaid || want == "" {
									want = phone
								}
								if h.PAI != want {
									fail("anonymous: PAI the default number, else the verified phone")
								}
							default:
								if h.PAI != h.FromUser || len(h.FromUser) < 2 || h.FromUser[0] != '+' {
									fail("a number: From user and PAI carry the same +E.164")
								}
							}
							if billing != BillingPaid && h.Reason != ReasonTrial && h.Reason != ReasonNoDecision {
								fail("trial: the verified phone or no decision")
							}
							if billing != BillingPaid && h.Reason == ReasonTrial && h.FromUser != phone {
								fail("trial: the verified phone")
							}
							if h.RuleID != 0 && (rules[h.RuleID] == nil || rules[h.RuleID].CustomerID != 1 || !slices.Contains(sel, h.RuleID)) {
								fail("only the account's own selected rules choose")
							}
						}
					}
				}
			}
		}
	}
	t.Logf("%d calls checked", n)
}
