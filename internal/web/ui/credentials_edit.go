package ui

import (
	"net/http"
	"strings"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

// credsView is the Edit Credentials window the email's link opens.
type credsView struct {
	Form
	Token   string
	Account accountRow
	Nonce   string // for the passkey script
	// The customer's second factor, asked with the portal password.
	TOTP     bool
	Passkeys bool
	Recovery bool // unused recovery codes (they stand in for either)
}

// credsPage is the window on its own, for a browser that is not logged in
// as the account's customer (the token and portal password suffice).
type credsPage struct {
	Page
	Creds *credsView
}

func (u *UI) editCredentialsForm(q *request) error {
	token := q.r.URL.Query().Get("token")
	a, err := u.svc.CredentialReset(q.ctx(), token)
	if err != nil {
		return u.resetLinkError(q, err)
	}
	return u.credsRender(q, http.StatusOK, a, &credsView{Form: newForm(), Token: token})
}

func (u *UI) credsRender(q *request, status int, a *sipdesk.SIPAccount, cv *credsView) error {
	cv.Account, cv.Nonce = rowOf(a), q.nonce
	st, err := u.svc.TwoFactorStatus(q.ctx(), a.CustomerID)
	if err != nil {
		return err
	}
	cv.TOTP, cv.Passkeys, cv.Recovery = st.Enabled, st.Passkeys > 0, st.RecoveryCodes > 0
	if q.customer != nil && q.customer.ID == a.CustomerID && q.customer.BillingState != sipdesk.BillingUnverified {
		return u.sipAccountsPage(q, status, &sipAccountsView{Dialog: "credentials", Creds: cv})
	}
	u.render(q, status, "credentials.html", &credsPage{Page: u.page(q, "Edit Credentials", ""), Creds: cv})
	return nil
}

// resetLinkError is the clear page of an invalid, expired or used link.
func (u *UI) resetLinkError(q *request, err error) error {
	v := &messageView{Page: u.page(q, "Link not valid", "")}
	var status int
	switch sipdesk.ErrorCode(err) {
	case sipdesk.ENotFound:
		status, v.Heading = http.StatusNotFound, "This link is not valid"
	case sipdesk.EConflict:
		status, v.Heading = http.StatusGone, "This link was already used"
	case sipdesk.EForbidden:
		status, v.Heading = http.StatusGone, "This link has expired"
	default:
		return err
	}
	v.Text = msgOf(err) + " Each Edit Credentials link works once, for 30 minutes."
	v.Link, v.LinkText = "/sip-accounts", "Go to SIP Accounts"
	u.render(q, status, "message.html", v)
	return nil
}

func (u *UI) editCredentialsSubmit(q *request) error {
	token := q.r.PostFormValue("token")
	username := strings.TrimSpace(q.r.PostFormValue("username"))
	a, err := u.svc.CompleteCredentialReset(q.ctx(), token, username, q.r.PostFormValue("password"), app.Reauth{
		Password: q.r.PostFormValue("portal_password"), Code: q.r.PostFormValue("code"),
		Passkey: app.PasskeyAnswer{Ceremony: q.r.PostFormValue("passkey_ceremony"), Response: q.r.PostFormValue("passkey_response")}})
	if err == nil {
		msg := "New credentials saved for “" + a.Name + "”. Devices registered with the old ones were signed out."
		if q.customer != nil && q.customer.ID == a.CustomerID {
			return u.redirect(q, "/sip-accounts", msg)
		}
		u.render(q, http.StatusOK, "message.html", &messageView{Page: u.page(q, "Credentials saved", ""), Heading: "Credentials saved", Text: msg,
			Link: "/login?next=/sip-accounts", LinkText: "Log in to SIP Accounts"})
		return nil
	}
	code := sipdesk.ErrorCode(err)
	if code == sipdesk.ENotFound || code == sipdesk.EForbidden || code == sipdesk.EConflict && sipdesk.ErrorField(err) == "" {
		return u.resetLinkError(q, err)
	}
	if !userError(err) {
		return err
	}
	a, err2 := u.svc.CredentialReset(q.ctx(), token)
	if err2 != nil {
		return u.resetLinkError(q, err2)
	}
	cv := &credsView{Form: newForm(), Token: token}
	cv.Values["username"] = username
	formError(&cv.Form, err, "username", "password", "portal_password", "code")
	return u.credsRender(q, formStatus(err), a, cv)
}
