package api

import (
	"net/http"

	"github.com/sipdesk/sipdesk"
)

func (a *API) getAccount(w http.ResponseWriter, r *http.Request, c caller) error {
	cust, err := a.svc.Customer(r.Context(), c.id)
	if err != nil {
		return err
	}
	as, err := a.svc.SIPAccounts(r.Context(), c.id)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, accountView(cust, len(as)))
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request, c caller) error {
	p, err := parsePage(r)
	if err != nil {
		return err
	}
	ts, err := a.svc.APITokens(r.Context(), c.id)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, paginate(ts, func(t *sipdesk.APIToken) int64 { return t.ID }, p, false, tokenView))
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request, c caller) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := decodeOptional(w, r, &in); err != nil {
		return err
	}
	token, err := a.svc.CreateAPIToken(r.Context(), c.id, in.Name, c.actor)
	if err != nil {
		return err
	}
	ts, err := a.svc.APITokens(r.Context(), c.id)
	if err != nil {
		return err
	}
	hash := sipdesk.HashToken(token)
	for _, t := range ts {
		if t.Hash == hash {
			v := tokenView(t)
			v.Token = token
			return reply(w, http.StatusCreated, v)
		}
	}
	return sipdesk.Errorf(sipdesk.EInternal, "created token not found")
}

func (a *API) deleteToken(w http.ResponseWriter, r *http.Request, c caller) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	ts, err := a.svc.APITokens(r.Context(), c.id)
	if err != nil {
		return err
	}
	found := false
	for _, t := range ts {
		found = found || t.ID == id
	}
	if !found {
		return sipdesk.Errorf(sipdesk.ENotFound, "API token not found")
	}
	if err := a.svc.DeleteAPIToken(r.Context(), c.id, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// maxAudit is how far back the audit list reaches.
const maxAudit = 1000

func (a *API) listAudit(w http.ResponseWriter, r *http.Request, c caller) error {
	p, err := parsePage(r)
	if err != nil {
		return err
	}
	es, err := a.svc.Audit(r.Context(), c.id, maxAudit)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, paginate(es, func(e *sipdesk.AuditEntry) int64 { return e.ID }, p, true, auditView))
}

// Call records and live calls come with the edge; until then both lists
// are empty.
func (a *API) listCalls(w http.ResponseWriter, r *http.Request, c caller) error {
	if _, err := parsePage(r); err != nil {
		return err
	}
	return reply(w, http.StatusOK, list[struct{}]{Items: []struct{}{}})
}

func (a *API) listActiveCalls(w http.ResponseWriter, r *http.Request, c caller) error {
	return reply(w, http.StatusOK, list[struct{}]{Items: []struct{}{}})
}
