package ui

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

// addView is the Add SIP account dialog.
type addView struct {
	Form
	AuthType string
	IPs      []string
}

func (u *UI) sipAccountNew(q *request) error {
	v := &addView{Form: newForm(), AuthType: "password", IPs: []string{""}}
	return u.sipAccountsPage(q, http.StatusOK, &sipAccountsView{Dialog: "add", Add: v})
}

// sipAccountCreate creates a SIP account; its generated password is shown
// once, in the answer to this POST, and never again.
func (u *UI) sipAccountCreate(q *request) error {
	v := &addView{Form: newForm(), AuthType: q.r.PostFormValue("auth_type")}
	v.Values["name"] = q.r.PostFormValue("name")
	v.Values["tech_prefix"] = strings.TrimSpace(q.r.PostFormValue("tech_prefix"))
	v.Values["channel_cap"] = strings.TrimSpace(q.r.PostFormValue("channel_cap"))
	v.IPs = ipList(q.r)
	if v.AuthType != string(sipdesk.AuthIP) { // IP-account fields, shown for them only
		v.Values["tech_prefix"], v.IPs = "", nil
	}
	in := app.SIPAccountInput{Name: v.Values["name"], AuthType: sipdesk.AuthType(v.AuthType), AllowedIPs: v.IPs, TechPrefix: v.Values["tech_prefix"]}
	cap, ok := intField(&v.Form, "channel_cap", v.Values["channel_cap"])
	status := http.StatusUnprocessableEntity
	if ok {
		in.ChannelCap = cap
		created, err := u.svc.CreateSIPAccount(q.ctx(), q.customer.ID, in, q.actor())
		if err == nil {
			return u.sipAccountsPage(q, http.StatusOK, &sipAccountsView{Dialog: "created", Created: created})
		}
		if !userError(err) {
			return err
		}
		formError(&v.Form, err, "name", "auth_type", "allowed_ips", "tech_prefix", "channel_cap")
		status = formStatus(err)
	}
	if len(v.IPs) == 0 {
		v.IPs = []string{""}
	}
	return u.sipAccountsPage(q, status, &sipAccountsView{Dialog: "add", Add: v})
}

// ipList reads the IP list editor: one input per address (allowed_ips
// repeated), blank rows ignored; a pasted list split on commas, spaces or
// new lines.
func ipList(r *http.Request) []string {
	var out []string
	for _, v := range r.PostForm["allowed_ips"] {
		out = append(out, strings.FieldsFunc(v, func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t' })...)
	}
	return out
}

// intField reads an optional whole number (empty is 0); a malformed one is
// a field error, as the API's decoder reports it.
func intField(f *Form, name, s string) (int, bool) {
	if s == "" {
		return 0, true
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		f.Errors[name] = "must be a whole number"
		return 0, false
	}
	return n, true
}
