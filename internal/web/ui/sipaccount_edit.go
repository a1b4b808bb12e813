package ui

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/sipdesk/sipdesk"
)

// editView is the Edit SIP account dialog: three panels (General, JWT,
// Caller ID), each its own form, so a save never half-applies.
type editView struct {
	Row accountRow
	Tab string // general, jwt, callerid

	General  Form
	AuthType string
	IPs      []string
	Active   bool

	JWT       Form
	JWTSecret string // generated just now: shown once

	CallerID      Form
	Trial         bool
	VerifiedPhone string
	Numbers       []string // verified Caller ID numbers
	DefaultNumber string
	DisplayName   string
	Rules         []ruleRow
	Selected      int
	Query         string
	RulesTab      string // all, selected

	Sim simView
}

// ruleRow is a rule in the Caller ID panel.
type ruleRow struct {
	ID      int64
	Name    string
	Summary string
	Search  string // what the search box matches: name, prefix, numbers
	Checked bool
	Hidden  bool
}

// simView is the rule simulator: which Caller ID does a call to To get.
type simView struct {
	To     string
	Asked  bool
	Err    string
	Number string
	Name   string
	Why    string
}

func (u *UI) sipAccountEdit(q *request) error {
	a, err := u.account(q)
	if err != nil {
		return err
	}
	ev, err := u.editViewOf(q, a)
	if err != nil {
		return err
	}
	qs := q.r.URL.Query()
	switch t := qs.Get("tab"); t {
	case "jwt", "callerid":
		ev.Tab = t
	}
	ev.Query = strings.TrimSpace(qs.Get("q"))
	if qs.Get("rules") == "selected" {
		ev.RulesTab = "selected"
	}
	ev.filterRules()
	if qs.Has("to") {
		ev.Tab = "callerid"
		if err := u.simulate(q, a, ev, qs.Get("to")); err != nil {
			return err
		}
	}
	return u.sipAccountsPage(q, http.StatusOK, &sipAccountsView{Dialog: "edit", Edit: ev})
}

// editViewOf fills every panel from the account as stored.
func (u *UI) editViewOf(q *request, a *sipdesk.SIPAccount) (*editView, error) {
	row := rowOf(a)
	ev := &editView{Row: row, Tab: "general", General: newForm(), JWT: newForm(), CallerID: newForm(),
		AuthType: string(a.AuthType), IPs: append(slices.Clone(row.IPs), ""), Active: row.Active,
		Trial: q.customer.Trial(), VerifiedPhone: q.customer.VerifiedPhone,
		DefaultNumber: a.CallerID.DefaultNumber, DisplayName: a.CallerID.DisplayName, RulesTab: "all"}
	ev.General.Values["name"] = a.Name
	ev.General.Values["tech_prefix"] = a.TechPrefix
	if a.ChannelCap > 0 {
		ev.General.Values["channel_cap"] = strconv.Itoa(a.ChannelCap)
	}
	ns, err := u.svc.CallerIDNumbers(q.ctx(), q.customer.ID)
	if err != nil {
		return nil, err
	}
	for _, n := range ns {
		if n.Verified {
			ev.Numbers = append(ev.Numbers, n.Number)
		}
	}
	rules, err := u.svc.Rules(q.ctx(), q.customer.ID)
	if err != nil {
		return nil, err
	}
	for _, r := range rules {
		ev.Rules = append(ev.Rules, ruleRow{ID: r.ID, Name: r.Name, Summary: r.Summary(), Search: ruleSearch(r),
			Checked: slices.Contains(a.CallerID.RuleIDs, r.ID)})
	}
	ev.count()
	return ev, nil
}

// ruleSearch is the lower-case text the rule search matches.
func ruleSearch(r *sipdesk.CallerIDRule) string {
	parts := []string{r.Name, r.Prefix, "+" + r.Prefix, r.Country, sipdesk.CountryName(r.Country), r.DisplayName}
	parts = append(parts, r.Numbers...)
	for _, n := range r.Numbers {
		parts = append(parts, strings.TrimPrefix(n, "+"))
	}
	return strings.ToLower(strings.Join(parts, " "))
}

func (ev *editView) count() {
	ev.Selected = 0
	for _, r := range ev.Rules {
		if r.Checked {
			ev.Selected++
		}
	}
}

// filterRules hides (never drops: hidden rows still submit their checkbox)
// the rules outside the search or the Selected tab.
func (ev *editView) filterRules() {
	q := strings.ToLower(ev.Query)
	for i := range ev.Rules {
		r := &ev.Rules[i]
		r.Hidden = q != "" && !strings.Contains(r.Search, q) || ev.RulesTab == "selected" && !r.Checked
	}
}

// simulate asks the service which Caller ID a call to `to` gets.
func (u *UI) simulate(q *request, a *sipdesk.SIPAccount, ev *editView, to string) error {
	ev.Sim = simView{To: strings.TrimSpace(to), Asked: true}
	if ev.Sim.To == "" {
		ev.Sim.Err = "enter a number to simulate, e.g. +442071234567"
		return nil
	}
	ch, err := u.svc.SimulateCallerID(q.ctx(), q.customer.ID, a.ID, ev.Sim.To, "")
	if err != nil {
		if !userError(err) {
			return err
		}
		ev.Sim.Err = msgOf(err)
		return nil
	}
	ev.Sim.Number, ev.Sim.Name = ch.Number, ch.DisplayName
	if ch.Anonymous {
		ev.Sim.Number = "Anonymous (caller ID withheld)"
	}
	ruleName := ""
	for _, r := range ev.Rules {
		if r.ID == ch.RuleID {
			ruleName = r.Name
		}
	}
	switch ch.Reason {
	case sipdesk.ReasonTrial:
		ev.Sim.Why = "Trial accounts always call with the phone number verified at signup."
	case sipdesk.ReasonRulePrefix:
		ev.Sim.Why = "Rule “" + ruleName + "” (longest matching prefix)."
	case sipdesk.ReasonRuleCountry:
		ev.Sim.Why = "Rule “" + ruleName + "” (destination country)."
	case sipdesk.ReasonRuleAll:
		ev.Sim.Why = "Rule “" + ruleName + "” (all calls)."
	case sipdesk.ReasonSetByCallerInvalid:
		ev.Sim.Why = "Rule “" + ruleName + "” keeps the caller's number, but the device sent none: the account default is used."
	case sipdesk.ReasonNoDecision:
		ev.Sim.Number = "the device's own number"
		ev.Sim.Why = "No Caller ID can be chosen (no default number and no verified phone): the From the device sends passes unchanged."
	default:
		ev.Sim.Why = "No selected rule matches: the account's default Caller ID."
	}
	return nil
}

func msgOf(err error) string {
	if e := domainErr(err); e != nil {
		return e.Message
	}
	return "Something went wrong on our side. Please try again."
}
