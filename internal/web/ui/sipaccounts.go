package ui

import (
	"net/http"
	"time"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

// accountRow is one SIP account as the table shows it: the username masked
// unless this very response reveals it.
type accountRow struct {
	ID         int64
	Name       string
	AuthType   sipdesk.AuthType
	Masked     string
	Revealed   string
	IPs        []string
	TechPrefix string
	Status     sipdesk.Status
	// Active is the status the toggle shows: for in_process accounts, the
	// one they return to.
	Active     bool
	JWT        bool
	ChannelCap int
}

func rowOf(a *sipdesk.SIPAccount) accountRow {
	r := accountRow{ID: a.ID, Name: a.Name, AuthType: a.AuthType, Masked: sipdesk.MaskUsername(a.Username),
		TechPrefix: a.TechPrefix, Status: a.Status, JWT: a.JWTEnabled, ChannelCap: a.ChannelCap}
	for _, p := range a.AllowedIPs {
		r.IPs = append(r.IPs, ipString(p.String()))
	}
	r.Active = a.Status == sipdesk.StatusActive || a.Status == sipdesk.StatusInProcess && a.PrevStatus != sipdesk.StatusInactive
	return r
}

// ipString shows single addresses without their /32 or /128.
func ipString(p string) string {
	for _, suf := range []string{"/32", "/128"} {
		if len(p) > len(suf) && p[len(p)-len(suf):] == suf {
			return p[:len(p)-len(suf)]
		}
	}
	return p
}

// sipAccountsView is the SIP Accounts page with at most one dialog open.
type sipAccountsView struct {
	Page
	Rows         []accountRow
	Count        int
	Quota        int
	ChannelLimit int
	CapsUsed     int
	Trial        bool
	Dialog       string // "", add, created, edit, reset, reset-sent, delete, credentials
	Add          *addView
	Created      *app.NewSIPAccount
	Edit         *editView
	Target       *accountRow // the account of the reset and delete dialogs
	Creds        *credsView
	ResetTo      string // the address the reset email went to
	ResetErr     string
	Guessing     []guessingNotice // password guessing stopped on an account (last day)
}

// guessingNotice is a guard an edge started on one of the SIP accounts.
type guessingNotice struct {
	Account string
	At      time.Time
	Detail  string
}

// sipAccountsPage fills the table and the header cubes and renders.
func (u *UI) sipAccountsPage(q *request, status int, v *sipAccountsView) error {
	as, err := u.svc.SIPAccounts(q.ctx(), q.customer.ID)
	if err != nil {
		return err
	}
	c := q.customer
	v.Page = u.page(q, "SIP Accounts", "sip")
	v.Count, v.Quota, v.ChannelLimit, v.Trial = len(as), c.SIPAccountQuota, c.ChannelLimit, c.Trial()
	revealed := int64(0)
	if len(v.Rows) == 1 && v.Rows[0].Revealed != "" {
		revealed = v.Rows[0].ID
	}
	keep := v.Rows
	v.Rows = nil
	for _, a := range as {
		r := rowOf(a)
		if r.ID == revealed {
			r.Revealed = keep[0].Revealed
		}
		v.Rows = append(v.Rows, r)
		v.CapsUsed += a.ChannelCap
	}
	if err := u.guessingNotices(q, as, v); err != nil {
		return err
	}
	if v.Dialog != "" {
		v.Page.Title = dialogTitle(v) + " · SIP Accounts"
	}
	u.render(q, status, "sipaccounts.html", v)
	return nil
}

// guessingNotices fills the page's password-guessing notices.
func (u *UI) guessingNotices(q *request, as []*sipdesk.SIPAccount, v *sipAccountsView) error {
	es, err := u.svc.GuessingNotices(q.ctx(), q.customer.ID)
	if err != nil {
		return err
	}
	names := map[int64]string{}
	for _, a := range as {
		names[a.ID] = a.Name
	}
	for _, e := range es {
		if name, ok := names[e.SIPAccountID]; ok { // a deleted account's notice is moot
			v.Guessing = append(v.Guessing, guessingNotice{Account: name, At: e.At, Detail: e.Detail})
		}
	}
	return nil
}

func dialogTitle(v *sipAccountsView) string {
	switch v.Dialog {
	case "add":
		return "Add SIP account"
	case "created":
		return "SIP account created"
	case "edit":
		return "Edit SIP account"
	case "reset", "reset-sent":
		return "Reset password"
	case "delete":
		return "Delete SIP account"
	case "credentials":
		return "Edit Credentials"
	}
	return "SIP Accounts"
}

func (u *UI) sipAccounts(q *request) error {
	return u.sipAccountsPage(q, http.StatusOK, &sipAccountsView{})
}

// account loads the {id} SIP account of the logged-in customer.
func (u *UI) account(q *request) (*sipdesk.SIPAccount, error) {
	id, err := pathID(q)
	if err != nil {
		return nil, err
	}
	return u.svc.SIPAccount(q.ctx(), q.customer.ID, id)
}
