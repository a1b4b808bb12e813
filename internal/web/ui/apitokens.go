package ui

import (
	"net/http"
	"strings"

	"github.com/sipdesk/sipdesk"
)

type tokensView struct {
	Page
	Form
	Tokens []*sipdesk.APIToken
	New    string // the token just created: shown once
}

func (u *UI) apiTokens(q *request) error {
	return u.tokensPage(q, http.StatusOK, &tokensView{Form: newForm()})
}

func (u *UI) tokensPage(q *request, status int, v *tokensView) error {
	ts, err := u.svc.APITokens(q.ctx(), q.customer.ID)
	if err != nil {
		return err
	}
	v.Page, v.Tokens = u.page(q, "API Tokens", "tokens"), ts
	u.render(q, status, "apitokens.html", v)
	return nil
}

// apiTokenCreate creates a personal API token; the answer shows it once.
func (u *UI) apiTokenCreate(q *request) error {
	name := strings.TrimSpace(q.r.PostFormValue("name"))
	tok, err := u.svc.CreateAPIToken(q.ctx(), q.customer.ID, name, q.actor())
	if err == nil {
		return u.tokensPage(q, http.StatusOK, &tokensView{Form: newForm(), New: tok})
	}
	if !userError(err) {
		return err
	}
	v := &tokensView{Form: newForm()}
	v.Values["name"] = name
	formError(&v.Form, err, "name")
	return u.tokensPage(q, formStatus(err), v)
}

func (u *UI) apiTokenDelete(q *request) error {
	id, err := pathID(q)
	if err != nil {
		return err
	}
	if err := u.svc.DeleteAPIToken(q.ctx(), q.customer.ID, id); err != nil {
		return err
	}
	return u.redirect(q, "/api-tokens", "Token revoked.")
}
