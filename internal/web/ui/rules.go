package ui

import (
	"net/http"
	"strings"

	"github.com/sipdesk/sipdesk"
)

type rulesView struct {
	Page
	Rules []ruleListRow
	Trial bool
}

type ruleListRow struct {
	ID      int64
	Name    string
	Summary string
}

// rules is Manage Rules: the customer's Dynamic Caller ID rules.
func (u *UI) rules(q *request) error {
	rs, err := u.svc.Rules(q.ctx(), q.customer.ID)
	if err != nil {
		return err
	}
	v := &rulesView{Page: u.page(q, "Caller ID Rules", "rules"), Trial: q.customer.Trial()}
	for _, r := range rs {
		v.Rules = append(v.Rules, ruleListRow{ID: r.ID, Name: r.Name, Summary: r.Summary()})
	}
	u.render(q, http.StatusOK, "rules.html", v)
	return nil
}

// ruleFormView is the create/edit form of a rule.
type ruleFormView struct {
	Page
	Form
	ID        int64
	Trial     bool
	Numbers   []string // verified Caller IDs to pick from
	Picked    map[string]bool
	Countries []sipdesk.CountryInfo
	Return    string
}

func (u *UI) ruleFormView(q *request, id int64, f Form) (*ruleFormView, error) {
	title := "New Caller ID rule"
	if id != 0 {
		title = "Edit Caller ID rule"
	}
	v := &ruleFormView{Page: u.page(q, title, "rules"), Form: f, ID: id, Trial: q.customer.Trial(),
		Picked: map[string]bool{}, Countries: sipdesk.Countries(), Return: sameSitePath(q.r.FormValue("return"), "")}
	ns, err := u.svc.CallerIDNumbers(q.ctx(), q.customer.ID)
	if err != nil {
		return nil, err
	}
	for _, n := range ns {
		if n.Verified {
			v.Numbers = append(v.Numbers, n.Number)
		}
	}
	return v, nil
}

func (u *UI) ruleNew(q *request) error {
	f := newForm()
	f.Values["apply_for"], f.Values["type"] = "prefix", "specific"
	v, err := u.ruleFormView(q, 0, f)
	if err != nil {
		return err
	}
	u.render(q, http.StatusOK, "rule_form.html", v)
	return nil
}

func (u *UI) ruleEdit(q *request) error {
	id, err := pathID(q)
	if err != nil {
		return err
	}
	r, err := u.svc.Rule(q.ctx(), q.customer.ID, id)
	if err != nil {
		return err
	}
	f := newForm()
	f.Values["name"], f.Values["apply_for"], f.Values["country"] = r.Name, string(r.ApplyFor), r.Country
	f.Values["prefix"], f.Values["type"], f.Values["display_name"] = r.Prefix, string(r.Type), r.DisplayName
	v, err := u.ruleFormView(q, id, f)
	if err != nil {
		return err
	}
	for _, n := range r.Numbers {
		v.Picked[n] = true
	}
	u.render(q, http.StatusOK, "rule_form.html", v)
	return nil
}

func (u *UI) ruleCreate(q *request) error { return u.ruleSave(q, 0) }

func (u *UI) ruleUpdate(q *request) error {
	id, err := pathID(q)
	if err != nil {
		return err
	}
	return u.ruleSave(q, id)
}

// ruleSave validates and stores a rule through the service.
func (u *UI) ruleSave(q *request, id int64) error {
	if err := q.r.ParseForm(); err != nil {
		return err
	}
	pf := q.r.PostForm
	r := &sipdesk.CallerIDRule{ID: id, Name: pf.Get("name"), ApplyFor: sipdesk.RuleScope(pf.Get("apply_for")),
		Country: pf.Get("country"), Prefix: pf.Get("prefix"), Type: sipdesk.RuleType(pf.Get("type")),
		DisplayName: pf.Get("display_name")}
	for _, n := range pf["numbers"] {
		if n = strings.TrimSpace(n); n != "" {
			r.Numbers = append(r.Numbers, n)
		}
	}
	if r.Type != sipdesk.RuleSpecific { // the form keeps the pool's checkboxes; only specific rules use them
		r.Numbers, r.DisplayName = nil, ""
	}
	err := u.svc.SaveRule(q.ctx(), q.customer.ID, r, q.actor())
	if err == nil {
		back := sameSitePath(pf.Get("return"), "/caller-id/rules")
		return u.redirect(q, back, "Rule “"+r.Name+"” saved: "+r.Summary()+".")
	}
	if !userError(err) {
		return err
	}
	f := newForm()
	for _, k := range []string{"name", "apply_for", "country", "prefix", "type", "display_name"} {
		f.Values[k] = pf.Get(k)
	}
	formError(&f, err, "name", "apply_for", "country", "prefix", "type", "numbers", "display_name")
	status := formStatus(err)
	v, err := u.ruleFormView(q, id, f)
	if err != nil {
		return err
	}
	for _, n := range pf["numbers"] {
		v.Picked[n] = true
	}
	u.render(q, status, "rule_form.html", v)
	return nil
}

func (u *UI) ruleDelete(q *request) error {
	id, err := pathID(q)
	if err != nil {
		return err
	}
	if err := u.svc.DeleteRule(q.ctx(), q.customer.ID, id, q.actor()); err != nil {
		return err
	}
	return u.redirect(q, "/caller-id/rules", "Rule deleted; no SIP account uses it any more.")
}
