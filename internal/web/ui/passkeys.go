package ui

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/sipdesk/sipdesk"
	"github.com/sipdesk/sipdesk/internal/app"
)

// Passkeys: the WebAuthn ceremonies run in the browser (static/passkey.js,
// a same-origin script: the CSP stays strict). Each starts with a POST
// that answers the options as JSON with a signed ceremony token; the
// script then submits an ordinary form with the token and the browser's
// answer (passkey_ceremony, passkey_response), so errors are shown like
// every other form's. Every rule is the service's (internal/app/passkey.go).

// passkeyOptions answers a ceremony's options, or {"error": reason}.
func passkeyOptions(q *request, o *app.PasskeyOptions, err error) error {
	q.w.Header().Set("Content-Type", "application/json")
	if err != nil {
		status := sipdesk.HTTPStatus(sipdesk.ErrorCode(err)) // the code table, shared with the API
		if status == http.StatusInternalServerError {
			return err
		}
		q.w.WriteHeader(status)
		m := msgOf(err)
		return json.NewEncoder(q.w).Encode(map[string]string{"error": strings.ToUpper(m[:1]) + m[1:] + "."})
	}
	return json.NewEncoder(q.w).Encode(o)
}

func passkeyAnswer(q *request) app.PasskeyAnswer {
	return app.PasskeyAnswer{Ceremony: q.r.PostFormValue("passkey_ceremony"), Response: q.r.PostFormValue("passkey_response")}
}

// passkeyBegin starts adding a passkey (Security page).
func (u *UI) passkeyBegin(q *request) error {
	o, err := u.svc.BeginPasskeyRegistration(q.ctx(), q.customer.ID)
	return passkeyOptions(q, o, err)
}

// passkeyAdd stores the new passkey under its name.
func (u *UI) passkeyAdd(q *request) error {
	name := q.r.PostFormValue("name")
	_, codes, err := u.svc.FinishPasskeyRegistration(q.ctx(), q.customer.ID, name, passkeyAnswer(q), q.actor())
	added := "Passkey “" + strings.TrimSpace(name) + "” added. Logins now ask for it (or your authenticator code) after the password."
	if err == nil && len(codes) > 0 { // shown once, on this page (like the app's)
		v := &securityView{Form: newForm(), Codes: codes}
		v.Flash = added
		return u.securityPage(q, http.StatusOK, v)
	}
	if err == nil {
		return u.redirect(q, "/account/security", added)
	}
	if !userError(err) {
		return err
	}
	v := &securityView{Form: newForm()}
	v.Values["passkey_name"] = name
	if sipdesk.ErrorField(err) == "name" {
		v.Errors["passkey_name"] = msgOf(err)
	} else {
		v.Error = msgOf(err)
	}
	return u.securityPage(q, formStatus(err), v)
}

func (u *UI) passkeyDelete(q *request) error {
	id, err := pathID(q)
	if err != nil {
		return err
	}
	err = u.svc.DeletePasskey(q.ctx(), q.customer.ID, id, q.r.PostFormValue("password"), q.actor())
	if err == nil {
		return u.redirect(q, "/account/security", "Passkey removed.")
	}
	if !userError(err) || isCode(err, sipdesk.ENotFound) {
		return err
	}
	v := &securityView{Form: newForm(), DeleteID: id}
	v.Errors["passkey_password"] = msgOf(err)
	return u.securityPage(q, formStatus(err), v)
}

// loginPasskeyBegin starts "Sign in with a passkey" (no pending cookie)
// or the passkey step after the password (the pending cookie).
func (u *UI) loginPasskeyBegin(q *request) error {
	pending := ""
	if q.r.URL.Query().Get("step") == "2fa" {
		if c, err := q.r.Cookie(u.cookieName("sipdesk_2fa")); err == nil && len(c.Value) <= 200 {
			pending = c.Value
		}
		if pending == "" {
			return passkeyOptions(q, nil, sipdesk.Errorf(sipdesk.EForbidden, "the login timed out: enter your email and password again"))
		}
	}
	o, err := u.svc.BeginPasskeyLogin(q.ctx(), pending)
	return passkeyOptions(q, o, err)
}

// loginPasskey finishes "Sign in with a passkey".
func (u *UI) loginPasskey(q *request) error {
	next := sameSitePath(q.r.PostFormValue("next"), "")
	res, err := u.svc.LoginPasskey(q.ctx(), "", passkeyAnswer(q))
	if err == nil {
		return u.finishLogin(q, res, next)
	}
	if !userError(err) {
		return err
	}
	f := newForm()
	f.Error = "Your passkey was not accepted: " + msgOf(err) + ". Log in with your email and password instead."
	if isCode(err, sipdesk.ERateLimited) || isCode(err, sipdesk.EForbidden) {
		m := msgOf(err)
		f.Error = strings.ToUpper(m[:1]) + m[1:] + "."
	}
	u.render(q, formStatus(err), "login.html", &loginView{Page: u.page(q, "Log in", ""), Form: f, Next: next, Passkeys: u.svc.PasskeysAvailable()})
	return nil
}

// credentialsPasskeyBegin asks for a passkey to confirm an Edit
// Credentials change; the link's token says whose.
func (u *UI) credentialsPasskeyBegin(q *request) error {
	a, err := u.svc.CredentialReset(q.ctx(), q.r.PostFormValue("token"))
	if err != nil {
		return passkeyOptions(q, nil, err)
	}
	o, err := u.svc.BeginPasskeyConfirm(q.ctx(), a.CustomerID)
	return passkeyOptions(q, o, err)
}
